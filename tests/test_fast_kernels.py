"""The fast training kernels (spc.frontends.torch.kernels) against straightforward reference forms.

Every dispatch path — native (fused C), band GEMMs, chunked scan, FFT — is run directly on shapes
that cover its edges (one step, fewer steps than taps, a short last chunk, columns split between
threads with a ragged tail) and compared in float64: membranes within 1e-12, spikes equal away from
the threshold, gradients within 1e-10. `gradcheck` checks every custom backward where the function
is differentiable (the membranes, and the GEMM forms with a smooth epilogue); the spiking paths'
surrogate gradients are compared with autograd through the reference forms, whose surrogate is
SpikingJelly's ATan. The fall-back when no native kernels can be built runs in a subprocess.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import spc
from spc.frontends.torch.firing import Spikes, spikes
from spc.frontends.torch.kernels import filters, fused, native
from spc.frontends.torch.kernels.banded import band_scan, toeplitz_weight
from spc.frontends.torch.kernels.fft import causal_conv, smooth_length
from spc.frontends.torch.kernels.scan import ChunkMatrices, recurrent_scan
from spc.frontends.torch.neurons.lif import leaky_recurrence

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
SHAPES = [(1, 3), (5, 7), (150, 37), (70, 600)]  # (T, columns); 600 columns: two threads, ragged tails
RULES = [None, Spikes(0.1), Spikes(-0.2, alpha=3.0, strict=True)]

needs_native = pytest.mark.skipif(native.library() is None, reason=f"native kernels: {native.status()}")


# ---- reference forms --------------------------------------------------------------------------


def ref_fir(x, taps, bias):
    k = taps.shape[0]
    padded = torch.cat([x.new_zeros((k - 1,) + x.shape[1:]), x])
    return bias + sum(taps[i] * padded[i : i + x.shape[0]] for i in range(k))


def ref_chain(x, decays, gains):
    states, out = [x.new_zeros(x.shape[1:]) for _ in decays], []
    for xt in x.unbind(0):
        u = xt
        for i, (a, b) in enumerate(zip(decays, gains)):
            states[i] = a * states[i] + b * u
            u = states[i]
        out.append(u)
    return torch.stack(out)


def ref_band(x, weight, bias):
    return (weight @ x.reshape(x.shape[0], -1) + bias[:, None]).view(x.shape)


def fired(h, rule):
    return h if rule is None else spikes(h, rule)


class Smooth:
    """A differentiable epilogue (tanh) with the epilogue protocol, for gradcheck of the plumbing."""

    def forward_into(self, h, out):
        torch.tanh(h, out=out)

    def backward_(self, h, grad):
        t = torch.tanh(h)
        return h.copy_(grad * (1 - t * t))


def assert_same(got, ref, h_ref=None, rule=None):
    """Membranes within 1e-12 (scaled); spikes equal except within 1e-9 of the threshold."""
    if rule is None:
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12 * max(1.0, ref.abs().max().item()))
        return
    near = (h_ref - rule.threshold).abs() <= 1e-9
    assert torch.equal(got[~near], ref[~near])


def assert_grads(outs, refs, inputs, seed=0):
    g = torch.randn(outs.shape, dtype=F64, generator=torch.Generator().manual_seed(seed))
    got = torch.autograd.grad(outs, inputs, g, allow_unused=True, retain_graph=True)
    want = torch.autograd.grad(refs, inputs, g, allow_unused=True, retain_graph=True)
    for a, b in zip(got, want):
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * scale)


def _inputs(steps, columns, k, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = (2 * torch.randn(steps, columns, dtype=F64, generator=gen)).requires_grad_()
    taps = torch.randn(k, dtype=F64, generator=gen).requires_grad_()
    bias = torch.randn((), dtype=F64, generator=gen).requires_grad_()
    return x, taps, bias


def _gemm_fir(x, taps, bias, rule, chunk=None):
    k = taps.shape[0]
    chunk = chunk or filters.chunk_size(k - 1)
    return band_scan(x, toeplitz_weight(taps, chunk), k, chunk, bias, rule, toeplitz=True)


def _fft_fir(x, taps, bias, rule):
    return fired(causal_conv(x, taps.flip(0)) + bias, rule)


def _gemm_chain(x, decays, gains, rule, chunk=None):
    mats = (torch.from_numpy(m).to(x) for m in filters._chain_matrices(decays, gains, chunk or filters.chunk_size(len(decays))))
    return recurrent_scan(x, ChunkMatrices(*mats), rule)


FIR_PATHS = {"native": fused.fir, "banded-gemm": _gemm_fir, "fft": _fft_fir}
CHAIN_PATHS = {"native": fused.chain, "scan-gemm": _gemm_chain}


# ---- every path against its reference --------------------------------------------------------


@pytest.mark.parametrize("path", FIR_PATHS)
@pytest.mark.parametrize("steps,columns", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 20])
def test_fir_paths_match_the_reference(path, steps, columns, k):
    if path == "native" and native.library() is None:
        pytest.skip(native.status())
    x, taps, bias = _inputs(steps, columns, k)
    h_ref = ref_fir(x, taps, bias)
    for rule in RULES:
        out, ref = FIR_PATHS[path](x, taps, bias, rule), fired(h_ref, rule)
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x, taps, bias))


@pytest.mark.parametrize("path", CHAIN_PATHS)
@pytest.mark.parametrize("steps,columns", SHAPES)
@pytest.mark.parametrize("decays,gains", [((0.8,), (0.5,)), ((0.951229, 0.9), (1.0, 0.1)), ((0.3, 0.99, 0.5), (2.0, 1.0, 0.7))])
def test_chain_paths_match_the_reference(path, steps, columns, decays, gains):
    if path == "native" and native.library() is None:
        pytest.skip(native.status())
    x, _, _ = _inputs(steps, columns, 1)
    h_ref = ref_chain(x, decays, gains)
    for rule in RULES:
        out, ref = CHAIN_PATHS[path](x, decays, gains, rule), fired(h_ref, rule)
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x,))


@pytest.mark.parametrize("steps,columns", SHAPES)
@pytest.mark.parametrize("width,chunk", [(1, 4), (3, 4), (8, 16), (20, 64)])
def test_time_indexed_band_matches_the_dense_product(steps, columns, width, chunk):
    x, _, _ = _inputs(steps, columns, 1)
    gen = torch.Generator().manual_seed(1)
    ones = torch.ones(steps, steps, dtype=F64)
    raw = torch.randn(steps, steps, dtype=F64, generator=gen).requires_grad_()
    weight = raw * torch.tril(ones) * torch.triu(ones, -(width - 1))  # as MaskedPSN masks it
    bias = torch.randn(steps, dtype=F64, generator=gen).requires_grad_()
    h_ref = ref_band(x, weight, bias)
    for rule in RULES:
        out, ref = band_scan(x, weight, width, chunk, bias, rule), fired(h_ref, rule)
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x, raw, bias))


@needs_native
@pytest.mark.parametrize("steps,columns", SHAPES)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_native_lif_matches_the_unrolled_loop(steps, columns, reset):
    x, _, _ = _inputs(steps, columns, 1)
    h, out = fused.lif(x, 0.7, 0.4, 0.5, reset, 2.0)
    h_ref, ref = leaky_recurrence(x, 0.7, 0.4, 0.5, reset, 2.0)
    assert_same(h, h_ref)
    assert_same(out, ref, h_ref, Spikes(0.5))
    assert_grads(out, ref, (x,))


# ---- gradcheck of every custom backward -------------------------------------------------------


def test_gradcheck_band_scan_membrane_and_smooth_epilogue():
    x, taps, bias = _inputs(9, 3, 3)
    for rule in (None, Smooth()):
        assert torch.autograd.gradcheck(lambda x, w, b: _gemm_fir(x, w, b, rule, chunk=4), (x, taps, bias))
    ones = torch.ones(9, 9, dtype=F64)
    weight = (torch.randn(9, 9, dtype=F64) * torch.tril(ones) * torch.triu(ones, -2)).requires_grad_()
    per_step = torch.randn(9, dtype=F64, requires_grad=True)
    for rule in (None, Smooth()):
        assert torch.autograd.gradcheck(lambda x, w, b: band_scan(x, w, 3, 4, b, rule), (x, weight, per_step))


def test_gradcheck_recurrent_scan_membrane_and_smooth_epilogue():
    x, _, _ = _inputs(10, 3, 1)
    for rule in (None, Smooth()):
        assert torch.autograd.gradcheck(lambda x: _gemm_chain(x, (0.9, 0.5), (1.0, 0.3), rule, chunk=3), (x,))


@needs_native
def test_gradcheck_native_membranes():
    x, taps, bias = _inputs(6, 3, 3)
    assert torch.autograd.gradcheck(lambda x, w, b: fused.fir(x, w, b), (x, taps, bias))
    assert torch.autograd.gradcheck(lambda x: fused.chain(x, (0.9, 0.5), (1.0, 0.3)), (x,))
    wide, taps, bias = _inputs(4, 600, 3)  # two threads; fast mode keeps the Jacobian small
    assert torch.autograd.gradcheck(lambda x, w, b: fused.fir(x, w, b), (wide, taps, bias), fast_mode=True)
    assert torch.autograd.gradcheck(lambda x: fused.chain(x, (0.9,), (0.3,)), (wide,), fast_mode=True)


def test_gradcheck_fft_convolution():
    x, taps, _ = _inputs(7, 2, 4)
    assert torch.autograd.gradcheck(causal_conv, (x, taps))
    assert [smooth_length(n) for n in (1, 7, 11, 4351)] == [1, 8, 12, 4374]


# ---- dispatch, modules, memory, fall-back ------------------------------------------------------


@needs_native
def test_dispatch_rule_and_the_modules_that_follow_it():
    torch.manual_seed(0)
    x = torch.randn(40, 2, 8)
    with filters.record_paths() as paths:
        spc.SlidingPSN(k=16)(x)
        spc.SPSN()(x)
        spc.LIF()(x)
        spc.MaskedPSN(k=3, T=200, lambda_init=1.0)(torch.randn(200, 2, 8))
    assert paths == {"fir": "native", "chain": "native", "lif": "native", "time-matrix": "banded-gemm"}
    with filters.record_paths() as paths:
        spc.MaskedPSN(k=3, T=40, lambda_init=1.0)(x)
    assert paths == {"time-matrix": "dense-gemm"}
    for k, path in ((32, "native"), (33, "banded-gemm"), (1025, "fft")):
        with filters.record_paths() as paths:
            filters.fir(x, torch.randn(k), torch.zeros(()))
        assert paths == {"fir": path}
    with filters.record_paths() as paths:  # a dtype the native kernels do not take
        filters.fir(x.bfloat16(), torch.randn(4).bfloat16())
        filters.chain(x.bfloat16(), (0.5,), (1.0,))
    assert paths == {"fir": "banded-gemm", "chain": "scan-gemm"}
    assert not filters.banded_pays(64, 16) and filters.banded_pays(1024, 16)


def _saved_bytes(fn, *inputs):
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return sum(storages.values())


@pytest.mark.parametrize("path", ["native-fir", "gemm-fir", "native-chain", "gemm-chain", "native-lif"])
def test_fused_paths_keep_at_most_their_input_and_one_membrane(path):
    if path.startswith("native") and native.library() is None:
        pytest.skip(native.status())
    x, taps, bias = _inputs(256, 512, 16)
    run = {
        "native-fir": lambda: fused.fir(x, taps, bias, Spikes()),
        "gemm-fir": lambda: _gemm_fir(x, taps, bias, Spikes()),
        "native-chain": lambda: fused.chain(x, (0.9, 0.8), (1.0, 0.2), Spikes()),
        "gemm-chain": lambda: _gemm_chain(x, (0.9, 0.8), (1.0, 0.2), Spikes()),
        "native-lif": lambda: fused.lif(x, 0.5, 0.5, 1.0, "zero", 2.0),
    }[path]
    assert _saved_bytes(run) <= 1.05 * x.nbytes + 2**18  # the input (or LIF's membrane), S/C of it, small matrices


_FALLBACK = """
import json, sys, torch, spc
from spc.frontends.torch.kernels import filters, native
torch.manual_seed(0)
x = torch.randn(30, 2, 300, dtype=torch.float64, requires_grad=True)
layers = [spc.SlidingPSN(k=5).double(), spc.SPSN(tau_syn=5.0, tau_mem=3.0), spc.LIF(tau=3.0), spc.LI(tau=4.0)]
with filters.record_paths() as paths:
    outs = [layer(x) for layer in layers]
grads = torch.autograd.grad(sum((o * (i + 1)).sum() for i, o in enumerate(outs)), x)[0]
json.dump({"status": native.status(), "paths": paths, "outs": [o.tolist() for o in outs], "grad": grads.tolist()}, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("env", [{"SPC_NATIVE": "0"}, {"CC": "false"}], ids=["disabled", "compiler-fails"])
def test_without_native_kernels_the_torch_forms_give_the_same_results(tmp_path, env):
    out = tmp_path / "out.json"
    environment = {**os.environ, "SPC_CACHE_DIR": str(tmp_path / "cache"), **env}
    subprocess.run([sys.executable, "-c", _FALLBACK, str(out)], check=True, env=environment, cwd=ROOT, timeout=120)
    theirs = json.loads(out.read_text())
    assert theirs["status"].startswith(("disabled", "build failed"))
    assert theirs["paths"] == {"fir": "banded-gemm", "chain": "scan-gemm", "lif": "loop"}
    if native.library() is None:
        return
    torch.manual_seed(0)
    x = torch.randn(30, 2, 300, dtype=F64, requires_grad=True)
    layers = [spc.SlidingPSN(k=5).double(), spc.SPSN(tau_syn=5.0, tau_mem=3.0), spc.LIF(tau=3.0), spc.LI(tau=4.0)]
    outs = [layer(x) for layer in layers]
    grads = torch.autograd.grad(sum((o * (i + 1)).sum() for i, o in enumerate(outs)), x)[0]
    for mine, their in zip(outs, theirs["outs"]):
        torch.testing.assert_close(mine, torch.tensor(their, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(grads, torch.tensor(theirs["grad"], dtype=F64), rtol=0, atol=1e-10)


def test_benchmark_quick_run(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "b1_training_speed.py"), "--quick", "--output-dir", str(tmp_path)], check=True, cwd=ROOT, timeout=120, capture_output=True)
    rows = json.loads((tmp_path / "b1_training_speed_quick.json").read_text())["results"]
    assert {r["path"] for r in rows} >= {"plain LIF loop", "memory floor", "spc SlidingPSN k=16", "spc SPSN", "spc LIF", "SpikingJelly SlidingPSN k=16"}
    assert all(r.get("seconds", 0) > 0 and r["dispatch"] is not None for r in rows)
