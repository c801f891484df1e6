"""spc's stepwise simulator: runs a lowered graph, float or integer, in chunks of time steps, every
layer over a whole chunk before the next layer starts. The integer graph follows
docs/integer-spec.md; it is spc's golden reference.

Within a chunk, synapses take all its steps in one array operation and only the neurons'
recurrences loop over time (DESIGN.md); neuron state carries from one chunk to the next. Chunks keep
the working set in cache (one chunk of every layer, not the whole sequence), and memory for the
output only (`record="output"`) independent of T.
"""

from __future__ import annotations

import math

import numpy as np

from spc.compiler import ir
from spc.compiler.cells import Neuron
from spc.runtime.integer import Saturations
from spc.runtime.neurons import run_neuron
from spc.runtime.recording import Recording, check_input
from spc.runtime.synapses import synapse

CHUNK_BYTES = 2**20
"""Target size of the largest layer's chunk: about 1 MiB stays in a core's cache."""


def chunk_length(graph: ir.Graph, batch: int) -> int:
    widest = max(math.prod(s) for s in graph.shapes.values())
    return max(1, CHUNK_BYTES // (8 * batch * widest))


def run_stepwise(graph: ir.Graph, x: np.ndarray, dtype=np.float64, teacher: dict[str, np.ndarray] | None = None, record_cells: bool = False, record: str = "all", chunk: int | None = None) -> Recording:
    """Run the stepwise graph on x [T, B, ...]; record every node's output and every neuron's membrane
    (`record="all"`) or only the graph's output (`record="output"`).

    With `teacher`, each neuron still records its own output, but downstream layers receive the
    teacher's output for that neuron instead (so each layer is checked on the reference's input).
    With `record_cells` (float graphs), every cell's output is recorded too (calibration).
    """
    x = check_input(graph, x)
    teacher = teacher or {}
    chunk = chunk or chunk_length(graph, x.shape[1])
    output = graph.outputs[0]
    kept = {n.name for n in graph.nodes} if record == "all" else {output}
    steps = x.shape[0]
    states: dict[str, list | None] = {n.name: None for n in graph.neurons()}
    sats = {n.name: Saturations() for n in graph.neurons()}
    rec = Recording(output)
    record_cells = record_cells and record == "all"

    def keep(store: dict, key, t0: int, piece: np.ndarray) -> None:
        """Write a chunk's piece into its place in the whole sequence (allocated on first use)."""
        if key not in store:
            store[key] = np.empty((steps,) + piece.shape[1:], piece.dtype)
        store[key][t0 : t0 + piece.shape[0]] = piece

    for t0 in range(0, steps, chunk):
        values: dict[str, np.ndarray] = {}
        for node in graph.nodes:
            name = node.name
            if isinstance(node.op, ir.Input):
                values[name] = x[t0 : t0 + chunk].astype(dtype)
            elif isinstance(node.op, Neuron):
                per_cell = [] if record_cells else None
                h, out, states[name] = run_neuron(node.op, values[node.inputs[0]], t0, states[name], sats[name], per_cell)
                for i, piece in enumerate(per_cell or []):
                    keep(rec.cell_outputs.setdefault(name, {}), i, t0, piece)
                if name in kept:
                    keep(rec.membranes, name, t0, h)
                    keep(rec.outputs, name, t0, out)
                values[name] = teacher[name][t0 : t0 + chunk].astype(out.dtype) if name in teacher else out
                continue
            elif isinstance(node.op, ir.NeuronOp):
                raise TypeError(f"layer '{name}' ({node.op.kind}) is not lowered: run spc.compiler.passes.lower first")
            else:
                values[name] = synapse(node.op, [values[i] for i in node.inputs])
            if name in kept:
                keep(rec.outputs, name, t0, values[name])
    rec.cell_outputs = {name: [per_cell[i] for i in range(len(per_cell))] for name, per_cell in rec.cell_outputs.items()}
    if graph.neurons() and graph.neurons()[0].op.cells[0].integer:
        rec.saturations = {name: s.count for name, s in sats.items()}
    return rec
