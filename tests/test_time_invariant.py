"""The opt-in time-invariant approximation of time-indexed kernels (PSN, MaskedPSN, IPSU, RPSU):
exact where the kernel already is a sum of shift-decay exponentials, recorded with its error, and
the approximated network runs for any length, stepwise equal to its parallel form."""

import numpy as np
import pytest
import torch

import spc
from spc.compiler.passes import approximate_time_invariant, lower
from spc.errors import SpcError
from spc.frontends.torch.neurons import IPSUOp, RPSUOp
from spc.frontends.torch.neurons.timekernel import ExpKernel, IndexedKernel, fit_exponentials
from spc.frontends.torch.trace import from_torch
from spc.runtime.parallel import run_parallel
from spc.runtime.sim import run_stepwise

from neuron_forms import assert_equivalent, digits, digits_model, layer_graph, train

EXACT = ExpKernel(gains=np.array([0.7, -1.5, 0.4]), decays=np.array([0.0, 0.75, 1 - 2.0**-4]), bias=0.3)


def test_a_sum_of_shift_exponentials_is_recovered_exactly():
    kernel, info = fit_exponentials(EXACT.toeplitz(20), np.full(20, 0.3), max_terms=3)
    assert info["kernel_relative_error"] < 1e-10 and info["toeplitz_relative_error"] < 1e-12 and info["bias_max_change"] < 1e-15
    order = np.argsort(kernel.decays)
    np.testing.assert_allclose(kernel.decays[order], EXACT.decays)
    np.testing.assert_allclose(kernel.gains[order], EXACT.gains, atol=1e-9)


def test_fits_whose_terms_cancel_are_refused():
    """50·(a1^t − a2^t) with nearly equal decays fits exactly, but integers would lose the difference
    of two large branches: the fit keeps terms that add up to at least a quarter of their sizes."""
    cancelling = ExpKernel(gains=np.array([0.0, 50.0, -50.0]), decays=np.array([0.0, 1 - 2.0**-5, 1 - 2.0**-6]), bias=0.0)
    kernel, info = fit_exponentials(cancelling.toeplitz(32), np.zeros(32), max_terms=3)
    assert np.abs(kernel.gains).max() < 25 and info["kernel_relative_error"] > 1e-3  # not the exact ±50 pair


@pytest.mark.parametrize("family", ["IPSU", "RPSU"])
def test_units_keep_their_output_where_the_kernel_is_time_invariant(family):
    steps = 12
    indexed = IndexedKernel(weight=EXACT.toeplitz(steps), bias=np.full(steps, EXACT.bias))
    op = IPSUOp(kernel=indexed, threshold=0.5) if family == "IPSU" else RPSUOp(kernel=indexed, tau=2.0, threshold=0.1)
    graph, records = approximate_time_invariant(layer_graph(op, (3,)), max_terms=3)
    approx = graph.node("layer").op
    assert isinstance(approx.kernel, ExpKernel) and approx.time_steps is None and records[0].kind == family
    x = np.random.default_rng(0).standard_normal((steps, 2, 3))
    np.testing.assert_allclose(approx.parallel(torch.from_numpy(x))[0].numpy(), op.parallel(torch.from_numpy(x))[0].numpy(), atol=1e-9)
    assert_equivalent(approx, np.random.default_rng(1).standard_normal((3 * steps, 2, 3)))  # now any length


def test_masked_psn_on_digits_is_approximated_only_when_asked():
    x_train, y_train, x_test, y_test = digits()
    model = digits_model(spc.MaskedPSN(k=4, T=16, lambda_init=1.0))
    lag = np.arange(16)[:, None] - np.arange(16)[None, :]
    with torch.no_grad():  # start from a time-invariant kernel (SlidingPSN's exponential initialisation)
        model[1].weight.copy_(torch.from_numpy(np.where(lag >= 0, 0.5**lag, 0.0)))
    train(model, x_train, y_train, 4)
    graph = from_torch(model, torch.zeros(16, 1, 64))
    assert graph.time_steps == 16
    approximated, records = approximate_time_invariant(graph, max_terms=3)
    assert [r.layer for r in records] == ["1"] and approximated.time_steps is None
    assert graph.node("1").op.kind == "MaskedPSN" and approximated.node("1").op.kind == "TimeInvariantPSN"
    record = records[0].to_json()
    assert 0 < record["kernel_relative_error"] < 1 and len(record["terms"]) <= 3
    accuracy = {name: (run_parallel(g, x_test).output.sum(0).argmax(-1) == y_test).mean() for name, g in (("exact", graph), ("approximated", approximated))}
    assert accuracy["approximated"] > accuracy["exact"] - 0.1, accuracy  # a measured change, reported by the caller
    stepwise = lower(approximated)
    longer = np.concatenate([x_test[:, :50]] * 3)  # 48 steps: three times the trained length
    rec, par = run_stepwise(stepwise, longer), run_parallel(approximated, longer)
    assert np.abs(rec.membranes["1"] - par.membranes["1"]).max() < 1e-9


@pytest.mark.parametrize("terms", [0, 9])
def test_takes_one_to_eight_terms(terms):
    with pytest.raises(SpcError, match=f"time-invariant terms {terms} \\(--time-invariant"):
        approximate_time_invariant(layer_graph(IPSUOp(kernel=IndexedKernel(weight=np.eye(3), bias=np.zeros(3)), threshold=1.0), (2,)), terms)
