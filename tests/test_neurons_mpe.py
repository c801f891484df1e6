"""MPE-PSN, both variants: the parallel form is the reference code's formula with spc's seeded
draws, the stepwise form (gate, sum, membrane) equals it, the gate is seeded and unbiased, θ learns,
and the integer form aligns its sum by shifts (power-of-two τ) or by requantization."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spc
from spc.compiler.qcells import QRescale
from spc.compiler.rng import uniform_sequence
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons import MPEPSNOp

from neuron_forms import assert_equivalent, assert_trains_and_verifies


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 12), batch=st.integers(1, 3), shape=st.sampled_from([(1,), (4,), (2, 3)]), variant=st.sampled_from("AB"), stochastic=st.booleans(), tau=st.sampled_from([0.25, 0.5, 0.3]), draw_seed=st.integers(0, 2**31))
def test_parallel_and_stepwise_agree(seed, steps, batch, shape, variant, stochastic, tau, draw_seed):
    rng = np.random.default_rng(seed)
    x = 2 * rng.standard_normal((steps, batch) + shape)
    op = MPEPSNOp(variant=variant, tau=tau, threshold=float(rng.uniform(-0.5, 1.5)), stochastic=stochastic, seed=draw_seed)
    assert_equivalent(op, x)


@pytest.mark.parametrize("variant", "AB")
def test_membrane_is_the_published_formula(variant):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 2, 5))
    u = uniform_sequence(4, 9, 10).reshape(x.shape)
    b = (u < 1 / (1 + np.exp(-x))).astype(float)  # b_t ~ Bernoulli(σ(x_t)), seeded
    estimate = (1 - b) * x
    if variant == "A":  # H[t] = X[t] + τ·V̂[t−1]
        expected = x + 0.25 * np.concatenate([np.zeros_like(x[:1]), estimate[:-1]])
    else:  # H[t] = X[t]·(1 + τ·(1 − b_t))
        expected = x * (1 + 0.25 * (1 - b))
    h, spikes = MPEPSNOp(variant=variant, tau=0.25, threshold=0.3, seed=4).parallel(torch.from_numpy(x))
    np.testing.assert_allclose(h.numpy(), expected, rtol=0, atol=1e-15)
    assert np.array_equal(spikes.numpy(), expected > 0.3)  # strictly above θ


def test_gate_is_seeded_and_unbiased_and_its_expectation_is_an_option():
    x = torch.zeros(400, 8, 25, dtype=torch.float64) + 1.0  # V̂ = (1 − b)·1 with P(b) = σ(1)
    op = MPEPSNOp(variant="B", tau=1.0, threshold=10.0, seed=3)
    h = op.parallel(x)[0]
    assert torch.equal(h, op.parallel(x)[0]) and not torch.equal(h, op.replace(seed=4).parallel(x)[0])
    assert abs((h - 1).mean().item() - (1 - torch.sigmoid(torch.tensor(1.0)).item())) < 0.01
    expected = op.replace(stochastic=False).parallel(x)[0]
    assert torch.allclose(expected, torch.full_like(x, 2 - torch.sigmoid(torch.tensor(1.0)).item()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_training_draws_are_bernoulli_fresh_and_reproducible(dtype):
    """In training the gate is closed with probability σ(x): per value v of x over 8192 draws, its rate
    lies within 4.5 standard errors of σ(v) ("B", τ = 1: h = v·(2 − b) fires above θ = 1.5·v exactly
    where the gate is open). Each call draws anew; torch.manual_seed repeats the draws."""
    module = spc.MPEPSN("B", tau=1.0).to(dtype)

    def open_rates():
        rates = []
        for v in (0.05, 0.3, 1.0, 2.0, 4.0):
            module.threshold.data.fill_(1.5 * v)
            rates.append(module(torch.full((256, 32), v, dtype=dtype)).mean().item())
        return torch.tensor(rates, dtype=torch.float64)

    torch.manual_seed(5)
    first, second = open_rates(), open_rates()
    p = torch.sigmoid(torch.tensor([0.05, 0.3, 1.0, 2.0, 4.0], dtype=torch.float64))
    error = (p * (1 - p) / 8192).sqrt()
    for rates in (first, second):
        assert ((1 - rates - p).abs() < 4.5 * error).all(), (1 - rates, p)
    assert not torch.equal(first, second)
    torch.manual_seed(5)
    assert torch.equal(open_rates(), first)


def test_hashed_uniforms_are_uniform_and_independent():
    """The training gate's uniforms: mean, variance, 64 equal bins (χ², 63 degrees of freedom) and
    the correlation of neighbours in time, in columns and between keys, over 2^20 draws each."""
    x = torch.empty(1024, 1024, dtype=torch.float64)
    u, v = filters.hashed_uniforms(x, (3, 4)), filters.hashed_uniforms(x, (3, 5))
    n = u.numel()
    assert abs(u.mean().item() - 0.5) < 4.5 * (1 / 12 / n) ** 0.5 and abs(u.var().item() - 1 / 12) < 1e-3
    counts = torch.histc(u, bins=64, min=0, max=1)
    chi2 = ((counts - n / 64) ** 2 / (n / 64)).sum().item()
    assert chi2 < 63 + 5 * (2 * 63) ** 0.5
    c = u - 0.5
    for a, b in ((c[1:], c[:-1]), (c[:, 1:], c[:, :-1]), (c, v - 0.5)):
        assert abs((a * b).mean().item() * 12) < 5 / n**0.5
    with pytest.MonkeyPatch.context() as patch:  # the int64 indices of tensors of 2^31 elements or more
        patch.setattr(filters, "_INT32_INDICES", 0)
        assert torch.equal(filters.hashed_uniforms(x, (3, 4)), u)


def test_module_trains_threshold_and_input_and_evaluates_as_its_op():
    torch.manual_seed(0)
    module = spc.MPEPSN("A", seed=9).double()
    x = torch.randn(8, 3, 6, dtype=torch.float64, requires_grad=True)
    module(x).sum().backward()  # training mode: fresh random draws
    assert x.grad.abs().sum() > 0 and module.threshold.grad.abs() > 0
    module.eval()
    assert torch.equal(module(x), module.to_op().parallel(x.detach())[1])


def test_integer_sums_align_by_shifts_or_by_fixed_point_requantization(tmp_path):
    """tau = 0.3 puts the gate's branch on a scale 0.3·2^k times the input's: aligned by a
    multiplier and a rounding shift (QRescale), which onnxruntime computes to the bit; tau = 0.25
    by exact shifts."""
    x = (np.random.default_rng(0).random((6, 8, 4)) < 0.5).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), spc.MPEPSN("B", tau=0.3), torch.nn.Linear(5, 2), spc.LI())
    compiled = spc.compile(model, x, tmp_path / "b", calib=x, targets=("onnx",))
    aligners = [n for n in compiled.integer.nodes if n.name.startswith("1:sum:align")]
    assert aligners and any(isinstance(n.op.cells[0], QRescale) for n in aligners)
    for n in aligners:
        info = compiled.quantization["layers"][n.name]
        if "multiplier" in info:
            assert all(2**14 <= m <= 2**15 for m in info["multiplier"]) and info["max_relative_error"] <= 2**-15
    report = spc.verify(compiled, x, model=model, backends=("onnx",))
    assert report.passed, report.table()
    exact = [c for c in report.comparisons if c.kind == "exact"]
    assert exact and all(c.spike_mismatches == 0 and c.membrane_violations == 0 for c in exact)
    model[1].tau = 0.25
    integer = spc.compile(model, x, calib=x).integer
    aligners = [n for n in integer.nodes if n.name.startswith("1:sum:align")]
    assert aligners and all(n.op.cells[0].decay.tolist() == [4096] for n in aligners)  # pure shifts


@pytest.mark.parametrize("variant", "AB")
def test_trains_on_digits_and_verifies(variant):
    assert_trains_and_verifies(spc.MPEPSN(variant))
