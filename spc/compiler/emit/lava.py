"""`emit_lava`: a compiled model's Lava process network (fixed_pt, one sample) written down as
`OUT/lava/network.json` + `OUT/lava/weights.npz`, enough to rebuild it without spc's planner.

network.json lists every process (its Lava class, the layer it implements, its latency in Lava
steps and its constructor arguments in Lava's units), every connection (`proc.port` to
`proc.port`), how the input is encoded and from which Lava step each recorded layer is read.
Arrays live in weights.npz under the key given as `{"array": key}`; a weight matrix with more than
DENSE_FILL of its entries nonzero as `{"dense": key, "shape": [rows, cols], "scale": s}`, the matrix
being s times the integers under `key` (s the largest power of two dividing them all, the integers
in the narrowest type that holds them: Lava's doubled mixed-sign weights 2w are stored as w, one byte
each); a sparser one as `{"sparse": key, "shape": [rows, cols]}` with its COO parts under `key.row`,
`key.col`, `key.data`.
spc's own `Neuron` process carries its neuron as `{"kind": ..., field: value}` records, exactly
the cells and firing rule of graph.json and docs/integer-spec.md. The manifest's entry for the
target gets `placement`: for every synapse and neuron layer, whether it runs on Lava's stock
processes ("stock": Loihi 2 runs them) or in spc's process ("cpu", CPU only), the stock process
classes, and the reason (docs/loihi2-stock.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy import sparse

from spc.compiler.artifact import Compiled
from spc.compiler.ir import Record
from spc.runtime.lava.plan import CLASSES, DENSE_FILL, Plan, graph_for, plan_network

FORMAT = "spc-lava"
FORMAT_VERSION = 1
CONVENTIONS = (
    "Loihi2SimCfg(select_tag='fixed_pt'), lava-nc 0.10.0. Time step t of spc is Lava step t + latency "
    "(from 0): a Dense delivers one step after its input. Run T + latency steps; the source's data is the "
    "quantized input [size, steps], time last, zeros after T. spc's Neuron adds `offset` (the biases of "
    "the synapses before it) to its input, idles until its latency and runs `steps` = T steps; a Sink takes "
    "`steps` = T + latency and the `path` it saves its record to; with `voltage` it reads the neuron's Var v "
    "through its RefPort v_ref after every step. A recorded value is the sink's record from step `from_step` on, "
    "plus `offset`. The LIF ':always-on' fires at every step: stock layers' biases are synapses from it."
)


def _common_power_of_two(values: np.ndarray) -> int:
    """The largest power of two (at most 2^30) that divides every integer in `values`."""
    bits = int(np.bitwise_or.reduce(np.abs(values), axis=None)) if values.size else 0
    return min(bits & -bits, 2**30) if bits else 1


def _narrowest(values: np.ndarray) -> np.ndarray:
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    return values.astype(next(t for t in (np.int8, np.int16, np.int32, np.int64) if np.iinfo(t).min <= low and high <= np.iinfo(t).max))


def _plain(value, key: str, arrays: dict):
    """A JSON value for a plan parameter; arrays go to `arrays` under `key`."""
    if sparse.issparse(value) and value.dtype.kind in "iu" and value.nnz > DENSE_FILL * value.shape[0] * value.shape[1]:
        scale = _common_power_of_two(value.data)  # the zeros divide by anything
        dense = value.toarray()
        arrays[key] = _narrowest(dense // scale if scale > 1 else dense)
        return {"dense": key, "shape": list(value.shape), "scale": scale}
    if sparse.issparse(value):
        coo = value.tocoo()
        arrays.update({f"{key}.row": coo.row, f"{key}.col": coo.col, f"{key}.data": coo.data})
        return {"sparse": key, "shape": list(value.shape)}
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, Record):
        return {"kind": value.kind} | {f.name: _plain(getattr(value, f.name), f"{key}.{f.name}", arrays) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v, f"{key}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    return value.item() if isinstance(value, np.generic) else value


def describe(compiled: Compiled) -> tuple[dict, dict[str, np.ndarray]]:
    """The network.json document and its arrays."""
    return _describe(plan_network(graph_for(compiled, "fixed_pt"), "fixed_pt"))


def _describe(plan: Plan) -> tuple[dict, dict[str, np.ndarray]]:
    graph = plan.graph
    arrays: dict[str, np.ndarray] = {}
    encode = plan.encode and {"scale": plan.encode.scale, "bits": plan.encode.bits}
    decode = plan.decode and {"of": plan.decode[0], "scale": _plain(plan.decode[1].scale, "output.scale", arrays)}
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "conventions": CONVENTIONS,
        "input": {"node": graph.input.name, "shape": list(graph.input.op.shape), "quantize": encode},
        "output": {"node": graph.outputs[0], "dequantize": decode},
        "latency": plan.depth,
        "processes": [
            {"name": p.name, "class": CLASSES[p.kind], "layer": p.layer, "latency": p.depth, "params": _plain(p.params, p.name, arrays)}
            for p in plan.procs.values()
        ],
        "connections": [{"from": f"{c.src}.{c.src_port}", "to": f"{c.dst}.{c.dst_port}"} for c in plan.links],
        "read": {
            node: {"sink": probe.sink, "from_step": probe.depth, "offset": _plain(probe.offset, f"{probe.sink}.offset", arrays), "membranes": probe.membranes, "voltage": probe.voltage}
            for node, probe in plan.probes.items()
        },
    }
    return doc, arrays


def emit_lava(compiled: Compiled, directory: str | Path, stored=None) -> tuple[list[Path], dict]:
    """Write `directory/lava/` (a new folder); returns the files written and the manifest entry's
    `placement`. (Its weights are Lava's, not the graphs' arrays: `stored` is not used.)"""
    from spc.compiler.emit import write_network

    plan = plan_network(graph_for(compiled, "fixed_pt"), "fixed_pt")
    return write_network(directory, "lava", *_describe(plan), "weights.npz"), {"placement": plan.placement_json()}
