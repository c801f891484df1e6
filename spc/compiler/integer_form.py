"""What makes a graph spc's integer form (docs/integer-spec.md), checked when one is loaded.

`quantize` builds integer graphs that hold by construction; a graph read from disk may have been
edited. Each operation and cell already checks its own parameters' shapes and kinds; this checks
what only the whole graph knows, following a bound on every tensor's integers from the input on:
- only the integer form's operations (Quantize, Linear, Conv, SumPool2d, MaxPool2d, Reshape, Add,
  integer neurons, Dequantize last) and integer parameters (no float weights);
- every synaptic sum (`Σ|w|·max|x| + |b|`) below 2^31, the spec's int32 accumulators;
- every neuron's kernel sums (FIR taps, time-indexed weights, a gate's input) below 2^63, so the
  int64 arithmetic of every runtime cannot wrap; thresholds within their state width.
"""

from __future__ import annotations

import numpy as np

from spc.compiler import ir
from spc.compiler.cells import Neuron
from spc.compiler.qcells import QDelayLine, QGated, QSigmoid, QStepIndexed, peak
from spc.errors import SpcError

ACCUMULATOR = 2**31
WEIGHT_LIMIT = 2**15 - 1
"""Weights are mantissas of at most 16 bits (--weight-bits)."""
INT64 = 2**63
FIX = "recompile the model (the integer form is written by spc compile, not by hand)"


def _refuse(where: str, name: str, problem: str) -> SpcError:
    return SpcError(f"{where}: layer '{name}'", problem, FIX)


def _integer_array(where: str, name: str, what: str, values, limit: float) -> None:
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise _refuse(where, name, f"its {what} have dtype {values.dtype}; the integer form holds integers")
    if peak(values) > limit:
        raise _refuse(where, name, f"its {what} reach {peak(values):.4g}, beyond the integer form's limit {limit:.4g}")


def _sum_bound(where: str, name: str, weight: np.ndarray, bias, bound: float, axes: tuple[int, ...], limit: float, what: str) -> float:
    """Σ|w|·bound + |b| over `axes`, refused when it reaches `limit`."""
    total = float((np.abs(weight.astype(np.float64)).sum(axis=axes) * bound + (0.0 if bias is None else np.abs(np.asarray(bias, dtype=np.float64)))).max(initial=0.0))
    if total >= limit:
        raise _refuse(where, name, f"its {what} can reach {total:.4g}, beyond the integer form's {int(np.log2(limit))}-bit sums")
    return total


def _neuron(where: str, name: str, neuron: Neuron, bound: float) -> float:
    """The bound on a neuron's output, from the bound on its input."""
    for cell in neuron.cells:
        if not getattr(cell, "integer", False):
            raise _refuse(where, name, f"has a float {cell.kind} cell in the integer form")
        if isinstance(cell, (QDelayLine, QGated)):
            _sum_bound(where, name, cell.taps, cell.bias, bound, (1,), INT64, f"{cell.kind} sum")
        elif isinstance(cell, QStepIndexed):
            _sum_bound(where, name, cell.weights, cell.bias, bound, (1,), INT64, "time-indexed sum")
        bound = peak(cell.lut) if isinstance(cell, QSigmoid) else 2.0 ** (cell.width - 1) - 1
    if neuron.fire is None:
        return bound
    _integer_array(where, name, "thresholds", neuron.fire.threshold, bound)
    return 1.0


def check_integer_form(graph: ir.Graph, where: str) -> None:
    """Refuse a graph that is not spc's integer form (see the module docstring); `where` names its file."""
    bounds: dict[str, float] = {}
    for i, node in enumerate(graph.nodes):
        op, name = node.op, node.name
        inputs = [bounds[n] for n in node.inputs]
        if isinstance(op, ir.Input):
            bound = float("inf")  # float input: only Quantize may read it
        elif isinstance(op, ir.Quantize):
            bound = 2.0 ** (op.bits - 1)
        elif float("inf") in inputs:
            raise _refuse(where, name, "reads the float input directly; the integer form quantizes it first")
        elif isinstance(op, (ir.Linear, ir.Conv)):
            _integer_array(where, name, "weights", op.weight, WEIGHT_LIMIT)
            if op.bias is not None:
                _integer_array(where, name, "biases", op.bias, ACCUMULATOR - 1)
            bound = _sum_bound(where, name, op.weight, op.bias, inputs[0], tuple(range(1, op.weight.ndim)), ACCUMULATOR, "sums")
        elif isinstance(op, ir.SumPool2d):
            bound = _sum_bound(where, name, np.ones((1,) + tuple(op.kernel)), None, inputs[0], (1, 2), ACCUMULATOR, "window sums")
        elif isinstance(op, (ir.MaxPool2d, ir.Reshape)):
            bound = inputs[0]
        elif isinstance(op, ir.Add):
            bound = _sum_bound(where, name, np.ones((1, 2)), None, max(inputs), (1,), ACCUMULATOR, "sums")
        elif isinstance(op, Neuron):
            bound = _neuron(where, name, op, inputs[0])
        elif isinstance(op, ir.Dequantize) and i == len(graph.nodes) - 1:
            bound = float("inf")
        else:
            raise _refuse(where, name, f"is a {op.kind}, which is not an operation of the integer form{' here' if isinstance(op, ir.Dequantize) else ''}")
        bounds[name] = bound
