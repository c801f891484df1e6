"""The fast training kernels (spc.frontends.torch.kernels) against straightforward reference forms.

Every dispatch path — native (fused C), band GEMMs, chunked scan, FFT — is run directly on shapes
that cover its edges (one step, fewer steps than taps, a short last chunk, columns split between
threads with a ragged tail) and compared in float64: membranes within 1e-12, spikes equal away from
the threshold, gradients within 1e-10. `gradcheck` checks every custom backward where the function
is differentiable (the membranes, and the GEMM forms with a smooth epilogue); the spiking paths'
surrogate gradients are compared with autograd through the reference forms, whose surrogate is
SpikingJelly's ATan. The per-channel kernels (channel-wise FIR and its moments, DSN, PRF) are
compared with the torch forms they replace, run through the same entry points with the native
kernels switched off; so are MPE-PSN's training gate (the same hashed draws) and PSU. The fall-back when no native kernels can be built runs in a subprocess.
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
from spc.frontends.torch.kernels import buffers, filters, fused, native
from spc.frontends.torch.kernels.banded import band_scan, toeplitz_weight
from spc.frontends.torch.kernels.buffers import rows
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
@pytest.mark.parametrize("k", [1, 3, 20, 64])
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


# ---- per-channel kernels: native against the torch forms --------------------------------------

# x [T, B, C, *space]: one step; spatial dims; 37 channels (blocks wrap around the channels' period)
# over two threads; a period (C·space = 600) longer than one thread's columns
CHANNEL_SHAPES = [(1, 2, 3), (6, 3, 4, 2), (40, 20, 37), (9, 2, 300, 2)]


def both_paths(run):
    """run() with the native kernels, then with the torch forms (native ones switched off)."""
    with filters.record_paths() as paths:
        out = run()
    assert set(paths.values()) == {"native"}
    with pytest.MonkeyPatch.context() as patch, filters.record_paths() as paths:
        patch.setattr(native, "usable", lambda *tensors: False)
        ref = run()
    assert "native" not in paths.values()
    return out, ref


def _channel_inputs(shape, k, shared=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rows_ = 1 if shared else shape[2]
    x = (2 * torch.randn(shape, dtype=F64, generator=gen)).requires_grad_()
    taps = torch.randn(rows_, k, dtype=F64, generator=gen).requires_grad_()
    bias = torch.randn(rows_, dtype=F64, generator=gen).requires_grad_()
    return x, taps, bias


def _prf_parameters(channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    delta = torch.exp(torch.empty(channels, dtype=F64).uniform_(-7, -2, generator=gen)).requires_grad_()
    angle = torch.empty(channels, dtype=F64).uniform_(0, 6.3, generator=gen).requires_grad_()
    return delta, angle


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES)
@pytest.mark.parametrize("k,dilation,shared", [(1, 1, False), (3, 2, False), (5, 1, True)])
def test_native_channel_fir_matches_the_grouped_convolution(shape, k, dilation, shared):
    x, taps, bias = _channel_inputs(shape, k, shared)
    _, h_ref = both_paths(lambda: filters.channel_fir(x, taps, dilation, bias))
    for rule in RULES:
        out, ref = both_paths(lambda: filters.channel_fir(x, taps, dilation, bias, rule))
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x, taps, bias))


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES)
def test_native_channel_moments_match_the_batch_statistics(shape):
    x, taps, _ = _channel_inputs(shape, 3)
    out, ref = both_paths(lambda: torch.cat(filters.channel_moments(x, taps, 2)))
    assert_same(out, ref)
    assert_grads(out, ref, (x, taps))


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES)
@pytest.mark.parametrize("shared", [False, True])
def test_native_dsn_matches_the_chunked_scan(shape, shared):
    x, taps, bias = _channel_inputs(shape, 3, shared)
    _, h_ref = both_paths(lambda: filters.gated(x, taps, bias))
    for rule in (None, Spikes(0.3)):
        out, ref = both_paths(lambda: filters.gated(x, taps, bias, rule))
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x, taps, bias))


@needs_native
def test_native_dsn_gate_saturates_exactly():
    """Gates far beyond exp's range (clamped inside the kernel) are exactly open or shut, in float32."""
    x = torch.randn(20, 2, 2)
    h = filters.gated(x, torch.zeros(2, 1), torch.tensor([1e4, -1e4]))
    assert torch.equal(h[:, :, 0], torch.zeros(20, 2)) and torch.equal(h[:, :, 1], x[:, :, 1])
    z = torch.linspace(-30, 30, 601)
    a = 1 - filters.gated(torch.ones(1, 1, 601), torch.zeros(601, 1), z)[0, 0]  # h = 1 − a for x = 1
    torch.testing.assert_close(a, torch.sigmoid(z), rtol=4e-7, atol=1e-7)


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES + [(300, 2, 3)])
def test_native_resonator_matches_the_fft_convolution(shape):
    x, _, _ = _channel_inputs(shape, 1)
    delta, angle = _prf_parameters(shape[2])
    _, h_ref = both_paths(lambda: filters.resonator(x, delta, angle, 2.0))
    for rule in (None, Spikes(0.01, alpha=3.0)):
        out, ref = both_paths(lambda: filters.resonator(x, delta, angle, 2.0, rule))
        assert_same(out, ref, h_ref, rule)
        assert_grads(out, ref, (x, delta, angle))


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES + [(130, 2, 300)])
@pytest.mark.parametrize("late", [True, False], ids=["A", "B"])
def test_native_random_gate_matches_the_torch_form(shape, late):
    """MPE-PSN's training form: the same hashed draws, membrane, spikes and gradients (θ's too)."""
    x, _, _ = _channel_inputs(shape, 1)
    threshold = torch.tensor(0.3, dtype=F64, requires_grad=True)
    key = (2**32 - 5, 12345)
    h, h_ref = both_paths(lambda: filters.random_gate(x, threshold, late, 0.25, key, fire=False))
    out, ref = both_paths(lambda: filters.random_gate(x, threshold, late, 0.25, key, alpha=3.0))
    assert_same(h, h_ref)
    assert_same(out, ref, h_ref, Spikes(0.3, strict=True))
    assert_grads(out, ref, (x, threshold))
    assert_grads(h, h_ref, (x,))


@needs_native
@pytest.mark.parametrize("shape", CHANNEL_SHAPES + [(300, 2, 3), (129, 2, 300)])
@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_native_psu_matches_the_torch_form(shape, tau):
    x, _, _ = _channel_inputs(shape, 1)
    h, h_ref = both_paths(lambda: filters.psu(x, tau, 0.7))
    assert_same(h, h_ref)
    for rule in (None, Spikes(0.4, alpha=3.0, strict=True)):
        out, ref = both_paths(lambda: filters.psu(x, tau, 0.7, rule))
        assert_same(out, ref, h_ref, rule)
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


@needs_native
def test_gradcheck_native_per_channel_membranes():
    x, taps, bias = _channel_inputs((7, 2, 3), 3)
    re, im, gain = (torch.tensor(v, dtype=F64, requires_grad=True) for v in ([0.9, 0.5, -0.3], [0.3, -0.6, 0.8], [0.1, 1.0, 0.5]))
    assert torch.autograd.gradcheck(lambda x, w, b: fused.channel_fir(x, w, b, 2), (x, taps, bias))
    assert torch.autograd.gradcheck(lambda x, w: torch.cat(fused.channel_moments(x, w, 2)), (x, taps))
    assert torch.autograd.gradcheck(fused.gated, (x, taps, bias))
    assert torch.autograd.gradcheck(fused.resonator, (x, re, im, gain))
    wide, taps, bias = _channel_inputs((4, 50, 3, 4), 2)  # two threads, spatial dims; fast mode keeps the Jacobian small
    assert torch.autograd.gradcheck(lambda x, w, b: fused.channel_fir(x, w, b, 1), (wide, taps, bias), fast_mode=True)
    assert torch.autograd.gradcheck(fused.gated, (wide, taps, bias), fast_mode=True)
    assert torch.autograd.gradcheck(fused.resonator, (wide, re, im, gain), fast_mode=True)


@needs_native
def test_gradcheck_native_random_gate_and_psu_membranes():
    threshold = torch.tensor(0.2, dtype=F64)
    for shape in ((7, 2, 3), (4, 50, 3, 4)):  # the second: two threads, fast mode
        x, _, _ = _channel_inputs(shape, 1)
        fast = x.numel() > 100
        for late in (True, False):
            assert torch.autograd.gradcheck(lambda x: fused.mpe(x, threshold, late, 0.25, (7, 8), 2.0, fire=False), (x,), fast_mode=fast)
        assert torch.autograd.gradcheck(lambda x: fused.psu(x, 1.5, 0.8), (x,), fast_mode=fast)
    long, _, _ = _channel_inputs((150, 1, 2), 1)  # three checkpoints, the last tile short
    assert torch.autograd.gradcheck(lambda x: fused.psu(x, 1.2, 0.8), (long,), fast_mode=True)


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
        spc.ChannelwisePSN(8, k=3)(x)
        spc.DSN(8)(x)
        spc.PRF(8)(x)
        spc.MPEPSN("A")(x)
        spc.PSU(40)(x)
    assert paths == {"fir": "native", "chain": "native", "lif": "native", "time-matrix": "banded-gemm", "channel-fir": "native", "gated": "native", "resonator": "native", "random-gate": "native", "psu": "native"}
    with filters.record_paths() as paths:
        spc.MaskedPSN(k=3, T=40, lambda_init=1.0)(x)
    assert paths == {"time-matrix": "dense-gemm"}
    for k, path in ((64, "native"), (65, "banded-gemm"), (1025, "fft")):
        with filters.record_paths() as paths:
            filters.fir(x, torch.randn(k), torch.zeros(()))
        assert paths == {"fir": path}
    with filters.record_paths() as paths:  # a dtype the native kernels do not take
        filters.fir(x.bfloat16(), torch.randn(4).bfloat16())
        filters.chain(x.bfloat16(), (0.5,), (1.0,))
        filters.channel_fir(x.bfloat16(), torch.randn(8, 2).bfloat16())
    assert paths == {"fir": "banded-gemm", "chain": "scan-gemm", "channel-fir": "grouped-conv"}
    assert not filters.banded_pays(64, 16) and filters.banded_pays(1024, 16)


def test_large_outputs_reuse_the_buffers_of_dead_tensors(monkeypatch):
    """A fresh 32 MiB output costs page faults; the pool hands the last one's pages back, but only
    once no tensor or view over them is left, and never holds more than POOL_BYTES."""
    like, shape = torch.zeros(1), (512, 8192)  # 16 MiB of float32
    first = buffers.empty(shape, like)
    address = first.data_ptr()
    view = first[10:]
    del first
    second = buffers.empty(shape, like)
    assert second.data_ptr() != address  # the view still holds the first buffer
    second.fill_(1.0)
    del view
    third = buffers.empty(shape, like)
    assert third.data_ptr() == address and third.shape == shape and third.dtype == torch.float32
    assert buffers.empty((4, 4), like).shape == (4, 4)  # small: not pooled
    assert not third._is_view()  # a tensor of its own: autograd may add the next gradient into it
    monkeypatch.setattr(buffers, "POOL_BYTES", 0)
    plain = buffers.empty(shape, like)
    assert plain.data_ptr() not in (address, second.data_ptr())
    del second, third
    buffers.release()
    assert buffers._pool.buffers == []


@needs_native
def test_native_input_gradients_take_further_gradients_in_place():
    """A native backward hands autograd a tensor of its own, not a view, so that autograd adds the
    next gradient of the same input into it instead of allocating the sum."""
    x, taps, bias = _channel_inputs((20, 4, 8), 3)
    outs = [fused.channel_fir(x, taps, bias, 1), fused.gated(x, taps, bias), fused.fir(x, taps[0], bias[0])]
    with torch.profiler.profile() as prof:
        torch.autograd.grad(outs, x, [torch.ones_like(o) for o in outs])
    ops = {e.key for e in prof.key_averages()}
    assert "aten::add_" in ops and "aten::add" not in ops


def _saved_bytes(fn, *inputs):
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return sum(storages.values())


@pytest.mark.parametrize("path", ["native-fir", "gemm-fir", "native-chain", "gemm-chain", "native-lif", "native-channel-fir", "native-moments", "native-gated", "native-resonator", "native-random-gate", "native-psu"])
def test_fused_paths_keep_at_most_their_input_and_one_membrane(path):
    if path.startswith("native") and native.library() is None:
        pytest.skip(native.status())
    x, taps, bias = _inputs(256, 512, 16)
    cx, ctaps, cbias = _channel_inputs((256, 4, 128), 4)
    coefficients = [torch.rand(128, dtype=F64, requires_grad=True) for _ in range(3)]
    run = {
        "native-fir": lambda: fused.fir(x, taps, bias, Spikes()),
        "gemm-fir": lambda: _gemm_fir(x, taps, bias, Spikes()),
        "native-chain": lambda: fused.chain(x, (0.9, 0.8), (1.0, 0.2), Spikes()),
        "gemm-chain": lambda: _gemm_chain(x, (0.9, 0.8), (1.0, 0.2), Spikes()),
        "native-lif": lambda: fused.lif(x, 0.5, 0.5, 1.0, "zero", 2.0),
        "native-channel-fir": lambda: fused.channel_fir(cx, ctaps, cbias, 2, Spikes()),
        "native-moments": lambda: fused.channel_moments(cx, ctaps, 2),
        "native-gated": lambda: fused.gated(cx, ctaps, cbias, Spikes()),
        "native-resonator": lambda: fused.resonator(cx, *coefficients, Spikes()),
        "native-random-gate": lambda: fused.mpe(x, bias, True, 0.25, (1, 2), 2.0),
        "native-psu": lambda: fused.psu(x, 2.0, 1.0, Spikes()),
    }[path]
    assert _saved_bytes(run) <= 1.05 * x.nbytes + 2**18  # the input (or LIF's membrane), S/C of it, small matrices


def run_layers():
    """Every neuron with a native kernel, forward and backward on one float64 input:
    (the paths taken, the outputs, the gradients of the input and of every parameter)."""
    torch.manual_seed(0)
    x = torch.randn(30, 2, 300, dtype=F64, requires_grad=True)
    dsn = spc.DSN(300, k=3, threshold=0.3).double()
    torch.nn.init.normal_(dsn.weight)
    layers = [spc.SlidingPSN(k=5).double(), spc.SPSN(tau_syn=5.0, tau_mem=3.0), spc.LIF(tau=3.0), spc.LI(tau=4.0)]
    layers += [spc.ChannelwisePSN(300, k=3, dilation=2).double(), dsn, spc.PRF(300, threshold=0.05).double()]
    layers += [spc.MPEPSN("A", threshold=0.5).double(), spc.MPEPSN("B").double(), spc.PSU(T=30, tau=1.5, threshold=0.3)]  # MPE-PSN in training: drawn
    with filters.record_paths() as paths:
        outs = [layer(x) for layer in layers]
    inputs = [x] + [p for layer in layers for p in layer.parameters()]
    grads = torch.autograd.grad(sum((o * (i + 1)).sum() for i, o in enumerate(outs)), inputs)
    return paths, outs, grads


_FALLBACK = """
import json, sys
sys.path.insert(0, "tests")
from test_fast_kernels import native, run_layers
paths, outs, grads = run_layers()
json.dump({"status": native.status(), "paths": paths, "outs": [o.tolist() for o in outs], "grads": [g.tolist() for g in grads]}, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("env", [{"SPC_NATIVE": "0"}, {"CC": "false"}], ids=["disabled", "compiler-fails"])
def test_without_native_kernels_the_torch_forms_give_the_same_results(tmp_path, env):
    out = tmp_path / "out.json"
    environment = {**os.environ, "SPC_CACHE_DIR": str(tmp_path / "cache"), **env}
    subprocess.run([sys.executable, "-c", _FALLBACK, str(out)], check=True, env=environment, cwd=ROOT, timeout=120)
    theirs = json.loads(out.read_text())
    assert theirs["status"].startswith(("disabled", "build failed"))
    assert theirs["paths"] == {"fir": "banded-gemm", "chain": "scan-gemm", "lif": "loop", "channel-fir": "grouped-conv", "gated": "torch", "resonator": "fft", "random-gate": "torch", "psu": "torch"}
    if native.library() is None:
        return
    _, outs, grads = run_layers()
    for mine, their in zip(outs, theirs["outs"], strict=True):
        torch.testing.assert_close(mine, torch.tensor(their, dtype=F64), rtol=0, atol=1e-12)
    for mine, their in zip(grads, theirs["grads"], strict=True):
        torch.testing.assert_close(mine, torch.tensor(their, dtype=F64), rtol=0, atol=1e-10 * max(1.0, mine.abs().max().item()))


def test_benchmark_quick_run(tmp_path):
    """The benchmark's smoke run: bounded by work (tiny shapes, 2 runs each, no waiting for a quiet
    machine), so it passes on a busy machine; it asserts what the run records, never its speed."""
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "b1_training_speed.py"), "--quick", "--output-dir", str(tmp_path)], check=True, cwd=ROOT, capture_output=True)
    doc = json.loads((tmp_path / "b1_training_speed_quick.json").read_text())
    rows = doc["results"]
    assert {r["path"] for r in rows} >= {"plain LIF loop", "memory floor", "torch.compile FIR k=16", "spc SlidingPSN k=16", "spc SPSN", "spc LIF", "SpikingJelly SlidingPSN k=16"}
    for r in rows:
        s = r["seconds"]
        assert s["runs"] == 2 and 0 < s["min"] <= s["median"] <= s["max"] and r["dispatch"] is not None
        assert r["speedup_vs_loop"]["runs"] == 2 and r["speedup_vs_compiled_fir"]["min"] <= r["speedup_vs_compiled_fir"]["max"]
    assert len(doc["machine"]["load_average_end"]) == 3
