"""DSN, the dynamic-decay neuron: the chunked scan (the torch form) is the recurrence (also for
extreme decays and lengths that are not a multiple of the chunk), its custom gradient is the true
one, and the stepwise Gated cell equals the parallel form. The fused native kernel is compared with
the torch form in test_fast_kernels.py."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spc
from spc.frontends.torch.neurons import DSNOp
from spc.frontends.torch.kernels.scan import _FirstOrderScan, first_order_scan

from neuron_forms import assert_equivalent, assert_module_is_its_op_and_learns, assert_trains_and_verifies


def _loop(a, beta):
    h, out = np.zeros_like(beta[0]), np.empty_like(beta)
    for t in range(len(beta)):
        h = a[t] * h + beta[t]
        out[t] = h
    return out


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 14), batch=st.integers(1, 3), channels=st.integers(1, 4), space=st.sampled_from([(), (2, 2)]), k=st.integers(1, 4), shared=st.booleans())
def test_parallel_and_stepwise_agree(seed, steps, batch, channels, space, k, shared):
    rng = np.random.default_rng(seed)
    rows = 1 if shared else channels
    op = DSNOp(taps=rng.standard_normal((rows, k)), bias=rng.standard_normal(rows), threshold=float(rng.uniform(-0.5, 1.0)))
    assert_equivalent(op, 2 * rng.standard_normal((steps, batch, channels) + space))


def test_scan_is_the_recurrence_for_extreme_decays_and_any_length():
    rng = np.random.default_rng(0)
    for steps in (1, 2, 7, 50, 1000, 1031):
        a = rng.choice([0.0, 1e-300, 0.5, 1 - 1e-12, 1.0], size=(steps, 6)) * rng.uniform(0.999, 1.0, (steps, 6))
        beta = rng.standard_normal((steps, 6))
        h = first_order_scan(torch.from_numpy(a), torch.from_numpy(beta)).numpy()
        np.testing.assert_allclose(h, _loop(a, beta), rtol=0, atol=1e-9 * max(1.0, np.abs(h).max()))


def test_scan_gradient_is_exact():
    rng = np.random.default_rng(1)
    for steps in (5, 11):  # 11 steps: chunks of 3 and a padded last chunk
        a = torch.from_numpy(rng.uniform(0.05, 0.95, (steps, 3))).requires_grad_()
        beta = torch.from_numpy(rng.standard_normal((steps, 3))).requires_grad_()
        assert torch.autograd.gradcheck(_FirstOrderScan.apply, (a, beta))


def test_module_is_its_op_and_learns_the_gate():
    torch.manual_seed(0)
    module = spc.DSN(4, k=3, threshold=0.3)
    with torch.no_grad():
        module.weight.normal_()
    assert_module_is_its_op_and_learns(module, torch.randn(20, 3, 4))


def test_trains_on_digits_and_verifies():
    assert_trains_and_verifies(spc.DSN(64, threshold=0.5))
