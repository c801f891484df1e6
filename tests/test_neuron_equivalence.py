"""Property tests: for every neuron family, the parallel form (torch) and the lowered stepwise form
(spc's numpy simulator) give identical spikes in float64 (ties counted, none expected here) and
membranes within 1e-9, for random parameters, shapes and inputs."""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from spc.frontends.torch.neurons import LIFOp, LIOp, MaskedPSNOp, PSNOp, SlidingPSNOp, SPSNOp
from spc.runtime.neurons import run_neuron
from spc.runtime.compare import compare

feature_shapes = st.sampled_from([(1,), (3,), (5,), (2, 3), (3, 2, 2)])


def _inputs(rng, steps, batch, shape, binary):
    x = rng.standard_normal((steps, batch) + shape)
    return (x > 0.3).astype(np.float64) if binary else x


def assert_equivalent(op, x):
    """Run op's parallel form and its lowered stepwise neuron on x; assert they agree."""
    neuron = op.lower()
    neuron.check("layer", x.shape[2:])
    h_par, out_par = (t.numpy() for t in op.parallel(torch.from_numpy(x)))
    h_step, out_step, _ = run_neuron(neuron, x)
    c = compare("parallel", "stepwise", "layer", "isolated", out_par, out_step, fire=neuron.fire, ref_h=h_par, cand_h=h_step)
    assert np.abs(h_par - h_step).max() <= 1e-9
    assert c.spike_mismatches == 0, c
    assert c.passed, c
    if neuron.fire is None:
        np.testing.assert_allclose(out_par, out_step, rtol=0, atol=1e-9)
    return c


def _channels(rng, shape, low, high, shared):
    return rng.uniform(low, high, 1 if shared else shape[0])


common = dict(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 14), batch=st.integers(1, 3), shape=feature_shapes, binary=st.booleans())


@given(**common)
def test_psn_causal(seed, steps, batch, shape, binary):
    rng = np.random.default_rng(seed)
    op = PSNOp(weight=np.tril(rng.standard_normal((steps, steps))), bias=rng.standard_normal(steps))
    assert_equivalent(op, _inputs(rng, steps, batch, shape, binary))


@given(**common, k=st.integers(1, 14), lam=st.sampled_from([1.0, 1.7]), shorter=st.integers(0, 3))
def test_masked_psn(seed, steps, batch, shape, binary, k, lam, shorter):
    rng = np.random.default_rng(seed)
    k = min(k, steps)
    op = MaskedPSNOp(weight=rng.standard_normal((steps, steps)), bias=rng.standard_normal(steps), k=k, lam=lam)
    run_steps = max(1, steps - shorter)  # a time-indexed neuron also runs for fewer than T steps
    assert_equivalent(op, _inputs(rng, run_steps, batch, shape, binary))


@given(**common, k=st.integers(1, 8), exp_weights=st.booleans())
def test_sliding_psn(seed, steps, batch, shape, binary, k, exp_weights):
    rng = np.random.default_rng(seed)
    weight = 0.5 ** np.arange(k - 1, -1, -1.0) if exp_weights else rng.standard_normal(k)
    op = SlidingPSNOp(weight=weight, bias=-1.0 if exp_weights else float(rng.standard_normal()))
    assert_equivalent(op, _inputs(rng, steps, batch, shape, binary))


@given(**common, alpha=st.floats(0.0, 0.999), beta=st.floats(0.0, 0.999), stochastic=st.booleans(), draw_seed=st.integers(0, 2**31))
def test_spsn(seed, steps, batch, shape, binary, alpha, beta, stochastic, draw_seed):
    rng = np.random.default_rng(seed)
    op = SPSNOp(alpha=alpha, beta=beta, threshold=float(rng.uniform(-0.5, 0.5)), stochastic=stochastic, seed=draw_seed)
    assert_equivalent(op, 3 * _inputs(rng, steps, batch, shape, binary))


@given(**common, reset=st.sampled_from(["zero", "subtract"]), shared=st.booleans(), perfect=st.booleans())
def test_lif_and_if(seed, steps, batch, shape, binary, reset, shared, perfect):
    rng = np.random.default_rng(seed)
    decay = np.ones(1) if perfect else _channels(rng, shape, 0.0, 1.0, shared)
    op = LIFOp(decay=decay, gain=_channels(rng, shape, 0.1, 1.0, shared), threshold=_channels(rng, shape, 0.2, 2.0, shared), reset=reset)
    assert_equivalent(op, 2 * _inputs(rng, steps, batch, shape, binary))


@given(**common, shared=st.booleans())
def test_leaky_readout(seed, steps, batch, shape, binary, shared):
    rng = np.random.default_rng(seed)
    op = LIOp(decay=_channels(rng, shape, 0.0, 1.0, shared), gain=_channels(rng, shape, 0.1, 1.0, shared))
    assert_equivalent(op, _inputs(rng, steps, batch, shape, binary))


def test_exact_ties_agree_when_arithmetic_is_exact():
    """Dyadic weights on binary spikes hit the threshold exactly (h = 0); both forms must fire there."""
    op = SlidingPSNOp(weight=0.5 ** np.arange(3, -1, -1.0), bias=-1.0)
    x = np.zeros((6, 1, 1))
    x[2] = 1.0  # h[2] = 1 - 1 = 0 exactly: fires (h >= 0)
    c = assert_equivalent(op, x)
    assert c.ties == 0
    assert op.parallel(torch.from_numpy(x))[1][2, 0, 0] == 1.0
