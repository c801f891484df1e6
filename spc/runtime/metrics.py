"""Activity of a compiled model on an input, under NeuroBench's metric names.

- ActivationSparsity: the share of neuron outputs (spikes) that are zero, over all spiking layers.
- SynapticOperations, per sample (one inference over all T steps):
  Dense: every synapse used at every step; Effective_ACs: synapses used by nonzero binary
  inputs (accumulates only); Effective_MACs: synapses used by nonzero non-binary inputs
  (multiply-accumulates). A convolution counts each (input, weight) pair it applies.
"""

from __future__ import annotations


import numpy as np

from spc.compiler import ir
from spc.runtime.sim import run_stepwise
from spc.runtime.synapses import synapse


def _operations(op: ir.Op, used: np.ndarray) -> int:
    """How many (input, weight) pairs the layer applies to the inputs marked 1 in `used`."""
    ones = op.replace(weight=np.ones_like(op.weight, dtype=np.float64), bias=None)
    return int(synapse(ones, [used.astype(np.float64)]).sum())


def activity(graph: ir.Graph, x: np.ndarray) -> dict:
    """Per-layer firing rates and synaptic operations, and NeuroBench's totals, on input x."""
    rec = run_stepwise(graph, x)
    samples = x.shape[1]
    layers = {}
    dense = acs = macs = 0
    fired = outputs = 0
    for node in graph.nodes:
        if isinstance(node.op, ir.NeuronOp) and node.op.spiking:
            spikes = rec.outputs[node.name]
            layers[node.name] = {"firing_rate": float(np.mean(spikes != 0))}
            fired += int(np.count_nonzero(spikes))
            outputs += spikes.size
        elif isinstance(node.op, (ir.Linear, ir.Conv)):
            inp = rec.outputs[node.inputs[0]]
            used = inp != 0
            effective = _operations(node.op, used) / samples
            every = _operations(node.op, np.ones_like(used)) / samples
            binary = bool(np.all((inp == 0) | (inp == 1)))
            layers[node.name] = {"dense_ops": every, "effective_ops": effective, "binary_input": binary}
            dense += every
            acs, macs = (acs + effective, macs) if binary else (acs, macs + effective)
    return {
        "layers": layers,
        "ActivationSparsity": 1.0 - fired / outputs if outputs else None,
        "SynapticOperations": {"Effective_ACs": acs, "Effective_MACs": macs, "Dense": dense},
        "samples": samples,
        "steps": x.shape[0],
    }
