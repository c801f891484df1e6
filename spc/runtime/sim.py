"""spc's stepwise simulator: runs a lowered graph, float or integer, layer by layer over the whole
sequence. The integer graph follows docs/integer-spec.md; it is spc's golden reference.

For a feedforward graph every layer's input is complete before the layer runs, so synapses take all
T steps in one array operation and only the neurons' recurrences loop over time (DESIGN.md).
"""

from __future__ import annotations

import numpy as np

from spc.compiler import ir
from spc.compiler.cells import Neuron
from spc.runtime.integer import run_qneuron
from spc.runtime.neurons import run_neuron
from spc.runtime.recording import Recording, check_input
from spc.runtime.synapses import synapse


def run_stepwise(graph: ir.Graph, x: np.ndarray, dtype=np.float64, teacher: dict[str, np.ndarray] | None = None, record_cells: bool = False) -> Recording:
    """Run the stepwise graph on x [T, B, ...]; record every node's output and every neuron's membrane.

    With `teacher`, each neuron still records its own output, but downstream layers receive the
    teacher's output for that neuron instead (so each layer is checked on the reference's input).
    With `record_cells` (float graphs), every cell's output is recorded too (calibration).
    """
    x = check_input(graph, x)
    teacher = teacher or {}
    rec = Recording(graph.outputs[0])
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if isinstance(node.op, ir.Input):
            values[node.name] = x.astype(dtype)
        elif isinstance(node.op, Neuron):
            x_in = values[node.inputs[0]]
            if node.op.cells[0].integer:
                h, out, rec.saturations[node.name] = run_qneuron(node.op, x_in)
            else:
                cells = rec.cell_outputs.setdefault(node.name, []) if record_cells else None
                h, out = run_neuron(node.op, x_in, cells)
            rec.membranes[node.name], rec.outputs[node.name] = h, out
            values[node.name] = teacher[node.name].astype(out.dtype) if node.name in teacher else out
            continue
        elif isinstance(node.op, ir.NeuronOp):
            raise TypeError(f"layer '{node.name}' ({node.op.kind}) is not lowered: run spc.compiler.passes.lower first")
        else:
            values[node.name] = synapse(node.op, [values[i] for i in node.inputs])
        rec.outputs[node.name] = values[node.name]
    return rec
