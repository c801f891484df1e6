"""PSU, IPSU, RPSU: the parallel form is BrainCog's matrix definition, the stepwise form (a sum of
branches for PSU and RPSU) equals it, the modules train, and the layers compile and verify."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spc
from spc.frontends.torch.neurons import IPSUOp, PSUOp, RPSUOp
from spc.frontends.torch.neurons.psu import unit_matrices
from spc.frontends.torch.neurons.timekernel import IndexedKernel

from neuron_forms import assert_equivalent, assert_module_is_its_op_and_learns, assert_trains_and_verifies

cases = dict(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 12), batch=st.integers(1, 3), shape=st.sampled_from([(1,), (4,), (2, 3)]), tau=st.floats(1.0, 4.0), threshold=st.floats(-0.5, 1.5))


def _x(rng, steps, batch, shape):
    return 2 * rng.standard_normal((steps, batch) + shape)


def _braincog(x, tau, threshold, weight=None, bias=None, family="PSU"):
    """BrainCog's integral() with its T×T matrices, in float64 numpy."""
    m1, m2 = unit_matrices(x.shape[0], tau)
    flat = x.reshape(x.shape[0], -1)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if family == "PSU":
        d = m1 @ flat
        v = d + threshold * m2 @ sigmoid(d)
    elif family == "IPSU":
        v = np.tril(weight) @ flat + bias[:, None] + m2 @ flat
    else:
        v = m1 @ flat + m2 @ sigmoid(np.tril(weight) @ flat + bias[:, None])
    return v.reshape(x.shape)


@settings(max_examples=25)
@given(**cases)
def test_psu(seed, steps, batch, shape, tau, threshold):
    rng = np.random.default_rng(seed)
    x = _x(rng, steps, batch, shape)
    op = PSUOp(tau=tau, threshold=threshold)
    assert_equivalent(op, x)
    np.testing.assert_allclose(op.parallel(torch.from_numpy(x))[0].numpy(), _braincog(x, tau, threshold), rtol=0, atol=1e-12)


@settings(max_examples=25)
@given(**cases, shorter=st.integers(0, 3))
def test_ipsu_and_rpsu(seed, steps, batch, shape, tau, threshold, shorter):
    rng = np.random.default_rng(seed)
    weight, bias = rng.standard_normal((steps, steps)), rng.standard_normal(steps)
    x = _x(rng, steps, batch, shape)
    m2 = unit_matrices(steps, tau)[1]
    ipsu = IPSUOp(kernel=IndexedKernel(weight=np.tril(weight) + m2, bias=bias), threshold=threshold)
    rpsu = RPSUOp(kernel=IndexedKernel(weight=np.tril(weight), bias=bias), tau=tau, threshold=threshold)
    for op, family in ((ipsu, "IPSU"), (rpsu, "RPSU")):
        np.testing.assert_allclose(op.parallel(torch.from_numpy(x))[0].numpy(), _braincog(x, tau, threshold, weight, bias, family), rtol=0, atol=1e-12)
        assert_equivalent(op, x[: max(1, steps - shorter)])  # time-indexed: also for fewer than T steps


def test_psu_lowers_to_a_sum_of_two_branches_fired_strictly():
    stepwise = spc.compile(torch.nn.Sequential(torch.nn.Linear(3, 4), spc.PSU(T=6, threshold=0.8)), (6, 1, 3), integer=False).stepwise
    assert [(n.name, n.op.kind) for n in stepwise.nodes[2:]] == [("1:a", "Neuron"), ("1:b", "Neuron"), ("1:sum", "Add"), ("1", "Neuron")]
    assert [c.kind for c in stepwise.node("1:b").op.cells] == ["Sigmoid", "DelayLine", "Leaky"]
    fire = stepwise.node("1").op.fire
    assert fire.strict and fire.threshold.tolist() == [0.8]
    assert stepwise.time_steps is None  # PSU runs for any length; IPSU and RPSU for t < T
    assert spc.compile(torch.nn.Sequential(torch.nn.Linear(3, 4), spc.RPSU(T=6)), (6, 1, 3), integer=False).stepwise.time_steps == 6


@pytest.mark.parametrize("make", [lambda: spc.PSU(T=7), lambda: spc.IPSU(T=7), lambda: spc.RPSU(T=7)])
def test_modules_are_their_ops_and_pass_gradients(make):
    torch.manual_seed(0)
    assert_module_is_its_op_and_learns(make(), 2 * torch.randn(7, 3, 5))


@pytest.mark.parametrize("make", [lambda: spc.PSU(T=16, threshold=0.5), lambda: spc.IPSU(T=16), lambda: spc.RPSU(T=16)], ids=["PSU", "IPSU", "RPSU"])
def test_trains_on_digits_and_verifies(make):
    assert_trains_and_verifies(make())
