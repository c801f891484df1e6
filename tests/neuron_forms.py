"""Shared by the tests of the neuron families: run a layer's parallel and stepwise forms side by side,
and train a small network on the digits example, then compile and verify it."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from torch import nn

import spc
from spc.compiler import ir
from spc.compiler.passes import lower
from spc.runtime.compare import compare
from spc.runtime.sim import run_stepwise



def layer_graph(op: ir.Op, shape: tuple[int, ...]) -> ir.Graph:
    return ir.Graph((ir.Node("input", ir.Input(shape)), ir.Node("layer", op, ("input",))), ("layer",))


def assert_equivalent(op, x: np.ndarray, atol: float = 1e-9):
    """The op's parallel form (torch) and its lowered stepwise form (spc's simulator) agree on x:
    membranes within atol, spikes equal except ties. Returns the comparison."""
    stepwise = lower(layer_graph(op, x.shape[2:]))
    h_par, out_par = (t.numpy() for t in op.parallel(torch.from_numpy(x)))
    rec = run_stepwise(stepwise, x)
    fire = stepwise.node("layer").op.fire
    c = compare("parallel", "stepwise", "layer", "isolated", out_par, rec.outputs["layer"], fire=fire, ref_h=h_par, cand_h=rec.membranes["layer"])
    assert np.abs(h_par - rec.membranes["layer"]).max(initial=0.0) <= atol
    assert c.passed, c
    return c


def assert_module_is_its_op_and_learns(module: nn.Module, x: torch.Tensor) -> None:
    """The module's forward (float64) is its IR op's parallel form, and surrogate gradients reach
    the input and every parameter."""
    module = module.double()
    x = x.double().requires_grad_()
    out = module(x)
    assert torch.equal(out, module.to_op().parallel(x.detach())[1])
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _example():
    import digits as example  # examples/ is on the path (conftest.py)

    return example


@functools.lru_cache(maxsize=2)
def digits(samples: int = 700):
    """(x_train, y_train, x_test, y_test) of examples/digits.py, the first `samples` digits."""
    return _example().load_data(samples)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """examples/digits.py's training loop, a little faster (lr 5e-3) for a few epochs."""
    _example().train(model, x, y, epochs, lr=5e-3)


def digits_model(neuron: nn.Module, hidden: int = 64) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, hidden), neuron, nn.Linear(hidden, 10), spc.LI(tau=2.0))


def assert_trains_and_verifies(neuron: nn.Module, epochs: int = 4, **options):
    """Train Linear → neuron → Linear → LI on digits, compile it (calibrated on training digits) and
    verify every form on the test digits: the float forms are equivalent and learned something, the
    integer form loses at most 5 points. Returns the report."""
    x_train, y_train, x_test, y_test = digits()
    model = digits_model(neuron)
    train(model, x_train, y_train, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = spc.compile(model, x_test[:, :1], calib=x_train[:, :128], **options)
    report = spc.verify(compiled, x_test, model=model, labels=y_test, progress=False)
    assert report.passed, report.table()
    accuracy = report.accuracy
    assert accuracy["parallel"] == accuracy["torch-model"] == accuracy["stepwise-float"] > 0.6, accuracy
    assert accuracy["integer"] > accuracy["stepwise-float"] - 0.05, accuracy
    return report
