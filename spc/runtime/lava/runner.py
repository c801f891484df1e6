"""`run_lava`: a compiled model run by Lava's CPU ProcessModels, read back as a `Recording`."""

from __future__ import annotations

import numpy as np

from spc.runtime.lava.build import LavaNetwork, build
from spc.runtime.recording import Recording
from spc.runtime.synapses import synapse


def read_recording(net: LavaNetwork) -> Recording:
    """Every recorded node's output (and membrane, where its process sends one), each read from
    the Lava step that carries spc's step 0 (its depth), so they line up with the simulator's."""
    plan, steps = net.plan, net.steps
    graph = plan.graph
    rec = Recording(graph.outputs[0])
    for node, probe in plan.probes.items():
        data = np.load(net.record_path(node))[probe.depth : probe.depth + steps]
        data = data.reshape((steps, data.shape[1], plan.batch) + graph.shapes[node])
        rec.outputs[node] = data[:, 0] + probe.offset
        if probe.membranes:
            rec.membranes[node] = data[:, 1]
    if plan.decode is not None:
        source, op = plan.decode
        rec.outputs[rec.output_name] = synapse(op, [rec.outputs[source]])
    if plan.integer:
        rec.saturations = {p.layer: int(net.processes[p.name].saturations.get()[0]) for p in plan.procs.values() if p.kind == "Neuron"}
    return rec


def run_lava(compiled_or_directory, x: np.ndarray, tag: str = "fixed_pt", progress: bool = True) -> Recording:
    """Run a compiled model (a `Compiled` or its directory) on x [T, B, ...] with Lava's `tag`
    ProcessModels (Loihi2SimCfg): fixed_pt runs the integer graph bit for bit as spc's simulator,
    floating_pt the float stepwise graph. All samples run at once (the batch is folded into the
    neurons); the runtime is stopped also on error. A progress bar counts the steps on a terminal."""
    net = build(compiled_or_directory, x, tag)
    try:
        net.run(progress)
        return read_recording(net)
    finally:
        net.close()
