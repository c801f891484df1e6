"""Running a compiled model on XyloSim, xylosim's bit-accurate C++ model of SynSense Xylo Audio 2,
through Rockpool: the backend `xylo`.

It reads the specification `spc compile --target xylo` wrote (OUT/xylo/, see
`spc.compiler.emit.xylo`), builds `XyloSim.from_specification` from it and plays each sample's input
event counts. Xylo delivers spikes between neuron layers one step late, so layer k (from 0) of a
chain reports spc's step t at Xylo step t + k: the sequence runs T + depth steps with zero input
after T and each layer is read from its own step on (exact, as nothing moves before its input
arrives: Xylo's neurons here have no bias). XyloSim records membranes after the spikes'
subtraction; the membrane that fired, spc's, is that plus the spike count times the threshold.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np

from spc.compiler.artifact import Compiled
from spc.errors import SpcError
from spc.files import read_json
from spc.runtime.recording import Recording
from spc.runtime.synapses import synapse

SAMNA_ONLY = "rockpool.devices.xylo.syns65302"
"""Rockpool's Xylo Audio 3 package, which imports samna-only modules outside its try/except."""


def rockpool_xylo():
    """`rockpool.devices.xylo.syns61201` (Xylo Audio 2: its mapper and XyloSim).

    Importing `rockpool.devices.xylo` on Python 3.11 fails in its Audio 3 subpackage, which imports
    samna-only modules unguarded (samna has no 3.11 build). Without samna, an empty stand-in module
    for that one subpackage is registered first, which leaves Audio 2 and IMU intact (Audio 3 is
    lost); nothing is patched on disk."""
    if SAMNA_ONLY not in sys.modules and importlib.util.find_spec("samna") is None:
        stand_in = types.ModuleType(SAMNA_ONLY)
        stand_in.__doc__ = "spc's empty stand-in: Xylo Audio 3 needs samna, which has no build for this Python"
        sys.modules[SAMNA_ONLY] = stand_in
    try:
        return importlib.import_module("rockpool.devices.xylo.syns61201")
    except ImportError as e:
        raise SpcError("target 'xylo'", f"needs Rockpool 3.1.0 and xylosim 0.1.3, which do not import ({e})", "run `make setup`, which installs them") from None


def load_specification(compiled: Compiled) -> tuple[dict, dict]:
    """(network.json, arrays of spec.npz) of a compiled directory's Xylo target."""
    entry = compiled.manifest.get("targets", {}).get("xylo", {})
    if compiled.path is None or "files" not in entry:
        reason = entry.get("skipped", "the model was compiled without the xylo target")
        raise SpcError("backend 'xylo'", f"runs the Xylo specification of a compiled directory, which is missing: {reason}", "compile with --target xylo and an output directory, then run that")
    folder = compiled.path / "xylo"
    doc = read_json(folder / "network.json")
    with np.load(folder / "spec.npz", allow_pickle=False) as arrays:
        return doc, {k: arrays[k] for k in arrays.files}


def simulator(doc: dict, arrays: dict):
    """A fresh XyloSim of the specification."""
    spec = {k: v for k, v in arrays.items() if not k.startswith("output.")}
    shifts = {k: doc["weight_shift"][k] for k in ("in", "rec", "out")}
    return rockpool_xylo().XyloSim.from_specification(**spec, weight_shift_in=shifts["in"], weight_shift_rec=shifts["rec"], weight_shift_out=shifts["out"], dt=doc["dt"])


def run_xylo(compiled: Compiled, x: np.ndarray, record: str = "all") -> Recording:
    """Run x [T, B, inputs] on XyloSim, sample by sample; every layer's spikes (counts) and membranes
    in spc's time steps, and the output as spc's integer simulator gives it."""
    doc, arrays = load_specification(compiled)
    graph = compiled.integer
    quantize = graph.node(doc["input"]["quantize"]).op
    counts = synapse(quantize, [np.asarray(x, dtype=np.float64)])
    steps, batch = counts.shape[:2]
    depth = doc["latency"]
    played = np.concatenate([counts, np.zeros((depth,) + counts.shape[1:], counts.dtype)])
    sim = simulator(doc, arrays)
    rec = Recording(graph.outputs[0])
    layers = doc["layers"]
    spikes = {layer["name"]: np.empty((steps, batch, layer["neurons"]), np.int64) for layer in layers}
    membranes = {layer["name"]: np.empty((steps, batch, layer["neurons"]), np.int64) for layer in layers}
    for b in range(batch):
        sim.reset_state()
        out, _, state = sim.evolve(played[:, b], record=True)
        for layer in layers:
            first, n, k = layer["first"], layer["neurons"], layer["depth"]
            if layer["role"] == "hidden":
                s, v, threshold = state["Spikes"][:, first : first + n], state["Vmem"][:, first : first + n], arrays["threshold"][first : first + n]
            else:
                s, v, threshold = out[:, first : first + n], state["Vmem_out"][:, first : first + n], arrays["threshold_out"][first : first + n]
            spikes[layer["name"]][:, b] = s[k : k + steps]
            membranes[layer["name"]][:, b] = v[k : k + steps] + s[k : k + steps] * threshold.astype(np.int64)
    for layer in layers:
        name = layer["name"]
        rec.membranes[name] = membranes[name]
        rec.outputs[name] = membranes[name] if layer["read"] == "membrane" else spikes[name]
    last = layers[-1]["name"]
    if rec.output_name != last:  # a readout's Dequantize
        rec.outputs[rec.output_name] = synapse(graph.node(rec.output_name).op, [rec.outputs[last]])
    if record == "output":
        rec.outputs = {rec.output_name: rec.output}
        rec.membranes = {}
    return rec
