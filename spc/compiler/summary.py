"""A layer-by-layer summary of a compiled model (what `spc inspect` prints)."""

from __future__ import annotations

import math

from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import DelayLine, Leaky, Neuron, StepIndexed
from spc.text_table import render


def state_per_neuron(neuron: Neuron) -> int:
    """Values of state each neuron keeps between steps."""
    total = 0
    for cell in neuron.cells:
        if isinstance(cell, Leaky):
            total += 1
        elif isinstance(cell, DelayLine):
            total += (cell.order - 1) * cell.dilation
        elif isinstance(cell, StepIndexed):
            total += cell.order - 1
    return total


def describe_neuron(neuron: Neuron) -> str:
    parts = []
    for cell in neuron.cells:
        if isinstance(cell, DelayLine):
            parts.append(f"DelayLine(k={cell.order}{f', d={cell.dilation}' if cell.dilation > 1 else ''})")
        elif isinstance(cell, StepIndexed):
            parts.append(f"StepIndexed(k={cell.order}, T<={cell.time_steps})")
        else:
            parts.append(cell.kind)
    fire = neuron.fire
    if fire is None:
        parts.append("readout")
    else:
        rule = "Bernoulli" if fire.stochastic else (">" if fire.strict else ">=")
        parts.append(f"Fire({rule}{'' if fire.reset == 'none' else ', reset ' + fire.reset})")
    return " → ".join(parts)


def connections(op: ir.Op, out_shape: tuple[int, ...]) -> int:
    """Synapses: input-output pairs with a weight (a convolution's shared weights counted per use)."""
    if isinstance(op, ir.Linear):
        return op.weight.size
    if isinstance(op, ir.Conv):
        return math.prod(out_shape) * math.prod(op.weight.shape[1:])
    return 0


def layer_rows(compiled: Compiled) -> list[dict]:
    rows = []
    graph = compiled.stepwise
    for node in graph.nodes:
        shape = graph.shapes[node.name]
        row = {"layer": node.name, "op": node.op.kind, "shape": shape, "neurons": 0, "synapses": connections(node.op, shape), "state": 0, "detail": ""}
        if isinstance(node.op, Neuron):
            origin = compiled.parallel.node(node.name).op.kind
            row.update(op=origin, neurons=math.prod(shape), state=math.prod(shape) * state_per_neuron(node.op), detail=describe_neuron(node.op))
        rows.append(row)
    return rows


def summary_table(compiled: Compiled) -> str:
    rows = layer_rows(compiled)
    head = ("layer", "op", "per-step shape", "neurons", "synapses", "state", "stepwise form")
    table = render(head, [(r["layer"], r["op"], "×".join(map(str, r["shape"])), r["neurons"] or "", r["synapses"] or "", r["state"] or "", r["detail"]) for r in rows])
    totals = f"total: {sum(r['neurons'] for r in rows)} neurons, {sum(r['synapses'] for r in rows)} synapses, {sum(r['state'] for r in rows)} state values per sample"
    steps = compiled.stepwise.time_steps
    limit = f"runs for at most T = {steps} steps (time-indexed layers)" if steps else "runs for any number of steps"
    return "\n".join([table, totals, limit])
