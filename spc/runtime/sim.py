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
from dataclasses import dataclass

import numpy as np

from spc.compiler import ir
from spc.compiler.cells import Neuron
from spc.runtime.integer import Saturations, Terms
from spc.runtime.neurons import run_neuron
from spc.runtime.limits import ensure_fits
from spc.runtime.recording import Recording, check_input
from spc.runtime.synapses import synapse

CHUNK_BYTES = 2**21
"""Target size of the largest layer's chunk (counted at 8 bytes a value; the integer simulator's
spikes and sums take 1 and 4): it stays in a core's cache. On B2 (8192 columns) the integer
simulator ran 2.4x the GEMM floor at 16 steps a chunk, 2.0x at 32 and 2.1x at 64."""


def chunk_length(graph: ir.Graph, batch: int) -> int:
    widest = max(math.prod(s) for s in graph.shapes.values())
    return max(1, CHUNK_BYTES // (8 * batch * widest))


@dataclass
class ChunkResult:
    """What one chunk of steps produced."""

    t0: int
    outputs: dict[str, np.ndarray]  # every node's output (neurons: their own, before any teacher)
    membranes: dict[str, np.ndarray]
    cell_outputs: dict[str, list[np.ndarray]]

    @property
    def steps(self) -> int:
        return next(iter(self.outputs.values())).shape[0]


class Simulation:
    """The stepwise graph advancing chunk by chunk, neuron state carried between chunks.

    With `teacher` (whole sequences by neuron name), each neuron still reports its own output, but
    downstream layers receive the teacher's output for that neuron instead. With `record_cells`,
    every cell's output is reported too (calibration)."""

    def __init__(self, graph: ir.Graph, dtype=np.float64, teacher: dict[str, np.ndarray] | None = None, record_cells: bool = False):
        if any(not isinstance(n.op, Neuron) for n in graph.neurons()):
            name = next(n.name for n in graph.neurons() if not isinstance(n.op, Neuron))
            raise TypeError(f"layer '{name}' is not lowered: run spc.compiler.passes.lower first")
        neurons = {n.name for n in graph.neurons()}
        self.teacher = {name: v for name, v in (teacher or {}).items() if name in neurons}  # only neurons are taught
        self.graph, self.dtype, self.record_cells = graph, dtype, record_cells
        self.t = 0
        self.states: dict[str, list | None] = {n.name: None for n in graph.neurons()}
        self.sats = {n.name: Saturations() for n in graph.neurons()}

    @property
    def saturations(self) -> dict[str, int]:
        return {name: s.count for name, s in self.sats.items()}

    def advance(self, x: np.ndarray) -> ChunkResult:
        """Run the next x.shape[0] steps of input x [t, B, ...]."""
        t0, values = self.t, {}
        result = ChunkResult(t0, values, {}, {})
        for node in self.graph.nodes:
            name = node.name
            if isinstance(node.op, ir.Input):
                values[name] = x.astype(self.dtype)
            elif isinstance(node.op, Neuron):
                per_cell = [] if self.record_cells else None
                h, out, self.states[name] = run_neuron(node.op, values[node.inputs[0]], t0, self.states[name], self.sats[name], per_cell, self._terms(node, values))
                result.membranes[name] = h
                if per_cell is not None:
                    result.cell_outputs[name] = per_cell
                values[name] = out
            else:
                values[name] = synapse(node.op, [self._downstream(i, values) for i in node.inputs])
        self.t += x.shape[0]
        return result

    def _terms(self, node: ir.Node, values: dict) -> Terms | None:
        """The Linear feeding a neuron whose first cell adds its input term by term (Xylo's
        synaptic current, docs/integer-spec.md): its input and weights, a bias as a last term."""
        if not getattr(node.op.cells[0], "input_first", False):
            return None
        source = self.graph.node(node.inputs[0])
        if not isinstance(source.op, ir.Linear):
            return None
        inputs, weight = self._downstream(source.inputs[0], values), source.op.weight
        if source.op.bias is not None and np.any(source.op.bias):
            inputs = np.concatenate([inputs, np.ones(inputs.shape[:-1] + (1,), inputs.dtype)], axis=-1)
            weight = np.concatenate([weight, source.op.bias[:, None]], axis=1)
        return Terms(inputs, weight)

    def _downstream(self, name: str, values: dict) -> np.ndarray:
        """What a layer receives from `name`: its output, or the teacher's for a taught neuron."""
        if name in self.teacher:
            return self.teacher[name][self.t : self.t + values[name].shape[0]].astype(values[name].dtype)
        return values[name]


def recorded_dtype(dtype: np.dtype) -> np.dtype:
    """What a recording holds: integers as int64, whatever the simulator computed them in (spikes in
    uint8, membranes in int32 or int64, sums in int32 or int64); floats as they are."""
    return np.dtype(np.int64) if dtype.kind in "iub" else dtype


def stream(graph: ir.Graph, chunks, dtype=np.float64):
    """Run the stepwise graph over an iterable of input chunks [t, B, ...], yielding each chunk's
    output: memory independent of the sequence length."""
    sim = Simulation(graph, dtype)
    for x in chunks:
        out = sim.advance(check_input(graph, x, "input chunk")).outputs[graph.outputs[0]]
        yield out.astype(recorded_dtype(out.dtype), copy=False)


def run_stepwise(graph: ir.Graph, x: np.ndarray, dtype=np.float64, teacher: dict[str, np.ndarray] | None = None, record_cells: bool = False, record: str = "all", chunk: int | None = None) -> Recording:
    """Run the stepwise graph on x [T, B, ...]; record every node's output and every neuron's membrane
    (`record="all"`) or only the graph's output (`record="output"`). See `Simulation` for `teacher`
    and `record_cells`."""
    x = check_input(graph, x)
    if record == "all":
        ensure_fits(graph, x.shape[0], x.shape[1], "recording every layer of the stepwise form")
    chunk = chunk or chunk_length(graph, x.shape[1])
    sim = Simulation(graph, dtype, teacher, record_cells and record == "all")
    rec = Recording(graph.outputs[0])
    kept = [n.name for n in graph.nodes] if record == "all" else [rec.output_name]
    steps = x.shape[0]

    def keep(store: dict, key, t0: int, piece: np.ndarray) -> None:
        """Write a chunk's piece into its place in the whole sequence (allocated on first use)."""
        if key not in store:
            store[key] = np.empty((steps,) + piece.shape[1:], recorded_dtype(piece.dtype))
        store[key][t0 : t0 + piece.shape[0]] = piece

    cells: dict[str, dict[int, np.ndarray]] = {}
    for t0 in range(0, steps, chunk):
        part = sim.advance(x[t0 : t0 + chunk])
        for name in kept:
            keep(rec.outputs, name, t0, part.outputs[name])
            if name in part.membranes:
                keep(rec.membranes, name, t0, part.membranes[name])
        for name, per_cell in part.cell_outputs.items():
            for i, piece in enumerate(per_cell):
                keep(cells.setdefault(name, {}), i, t0, piece)
    rec.cell_outputs = {name: [per_cell[i] for i in range(len(per_cell))] for name, per_cell in cells.items()}
    if graph.neurons() and graph.neurons()[0].op.cells[0].integer:
        rec.saturations = sim.saturations
    return rec
