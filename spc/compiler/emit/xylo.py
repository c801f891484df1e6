"""`emit_xylo`: a model compiled with the Xylo profile as Xylo Audio 2's specification,
`OUT/xylo/network.json` + `OUT/xylo/spec.npz`, placed by Rockpool's own mapper.

spc builds Rockpool's graph of the network from the integer graph (each Linear a `LinearWeights`
of its int8 weights, each neuron layer `Xylo2HiddenNeurons` or, the last one, `Xylo2OutputNeurons`
with its integer thresholds and dashes) and lets `rockpool.devices.xylo.syns61201.mapper` check
its design rules, allocate the hardware neurons and lay out the three weight matrices. The weight
shifts are spc's (the synaptic currents' input shifts; one per matrix). Rockpool's
`channel_quantize` is not used: the integers are spc's, as its simulator runs them.

spec.npz holds `XyloSim.from_specification`'s arrays (weights_in [inputs, hidden], weights_rec
[hidden, hidden], weights_out [hidden, outputs], dash_*, threshold*, bias*); network.json the
weight shifts, where each spc layer sits (its first hardware index, its step offset `depth`), how
the input is quantized and how the output is read (spikes, or a readout's membrane).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from spc.compiler.artifact import Compiled
from spc.compiler.xylo import DEVICE, HIDDEN, OUTPUTS, check_resources, layout
from spc.errors import SpcError

FORMAT = "spc-xylo"
FORMAT_VERSION = 1
DT = 1e-3
"""Seconds per step written for Xylo (any value: spc's time steps are Xylo's)."""


def _profile(compiled: Compiled) -> None:
    if compiled.integer is None or (compiled.quantization or {}).get("options", {}).get("profile") != "xylo":
        raise SpcError("target 'xylo'", "needs the integer form under the Xylo profile", "compile with --target xylo (or --profile xylo), without --float-only")


def _rockpool_graph(compiled: Compiled, xylo):
    """Rockpool's graph of the integer network, and its neuron modules by spc layer."""
    from rockpool.graph import GraphHolder, LinearWeights, connect_modules

    graph = compiled.integer
    modules, chain = {}, []
    places = layout(graph)
    for name, role, n in places:
        op = graph.node(name).op
        linear = graph.node(graph.node(name).inputs[0])
        syn, mem = op.cells
        weights = LinearWeights._factory(linear.op.weight.shape[1], n, linear.name, None, weights=linear.op.weight.T.astype(np.int64))
        kind = xylo.Xylo2OutputNeurons if role == "output" else xylo.Xylo2HiddenNeurons
        per_neuron = lambda values: np.broadcast_to(values, (n,)).astype(int).tolist()  # noqa: E731
        neurons = kind._factory(n, n, name, None, hw_ids=[], threshold=per_neuron(op.fire.threshold), bias=[0] * n, dash_mem=per_neuron(mem.decay), dash_syn=per_neuron(syn.decay), dt=DT)
        if chain:
            connect_modules(chain[-1], weights)
        connect_modules(weights, neurons)
        chain += [weights, neurons]
        modules[name] = neurons
    return GraphHolder(input_nodes=chain[0].input_nodes, output_nodes=chain[-1].output_nodes, name="spc", computational_module=None), modules


def specification(compiled: Compiled) -> tuple[dict, dict[str, np.ndarray]]:
    """The network.json document and the spec arrays."""
    _profile(compiled)
    graph = compiled.integer
    use = check_resources(graph)
    from spc.runtime.xylo import rockpool_xylo

    xylo = rockpool_xylo()
    holder, modules = _rockpool_graph(compiled, xylo)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xylo.DRCWarning)
        try:
            spec = xylo.mapper(holder, weight_dtype="int8", threshold_dtype="int16", dash_dtype="uint8", max_hidden_neurons=HIDDEN, max_output_neurons=OUTPUTS)
        except (xylo.DRCError, ValueError) as e:
            raise SpcError(f"target 'xylo' ({DEVICE})", f"Rockpool's mapper refuses the network: {e}", "keep to a chain of Linear (no bias) and neuron layers within Xylo's limits") from None
    places = layout(graph)
    shifts = {"in": 0, "rec": 0, "out": 0}
    layers = []
    for depth, (name, role, n) in enumerate(places):
        syn = graph.node(name).op.cells[0]
        shifts["in" if depth == 0 else "out" if role == "output" else "rec"] = int(syn.shift)
        ids = list(modules[name].hw_ids)
        first = ids[0] - (HIDDEN if role == "output" else 0)
        if ids != list(range(ids[0], ids[0] + n)):
            raise SpcError(f"target 'xylo', layer '{name}'", "was given scattered hardware neurons by Rockpool's mapper", "report this: spc expects one contiguous block per layer")
        read = "membrane" if graph.node(name).op.fire.readout else "spikes"
        layers.append({"name": name, "role": role, "neurons": n, "first": first, "depth": depth, "read": read})
    arrays = {k: np.asarray(v) for k, v in spec.items() if k not in ("mapped_graph", "aliases", "dt") and not k.startswith("weight_shift")}
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "device": DEVICE,
        "mapper": "rockpool.devices.xylo.syns61201.mapper",
        "conventions": "XyloSim.from_specification(**spec.npz, weight_shift_in/rec/out from weight_shift, dt). Play the quantized input (event counts [steps, inputs]) followed by `latency` steps of zeros; layer k is spc's step t at Xylo step t + depth. Xylo's recorded membranes are after the spikes' subtraction.",
        "dt": DT,
        "weight_shift": shifts,
        "input": {"node": graph.input.name, "quantize": "input:quantize"},
        "layers": layers,
        "latency": len(places) - 1,
        "resources": {k: v for k, v in use.items() if k != "fan-out by layer"},
    }
    return doc, arrays


def emit_xylo(compiled: Compiled, directory: str | Path, stored=None) -> list[Path]:
    """Write `directory/xylo/` (replacing an earlier one); returns the files written. (Its weights
    are Xylo's, not the graphs' arrays: `stored` is not used.)"""
    from spc.compiler.emit import write_network

    return write_network(directory, "xylo", *specification(compiled), "spec.npz")
