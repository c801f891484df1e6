"""Simulator speed: spc's layer-major simulator against a step-by-step loop, float and integer.

Network: W inputs, three hidden layers of W (LIF, SlidingPSN k = 16, SPSN) and a 10-way LI
readout, binary input spikes at 20 %, in two configurations: wide (W = 256, B = 32, T = 1000, where
the synaptic matrix products dominate) and narrow (W = 32, B = 4, T = 1000, where per-step
overhead dominates). The baseline runs the same compiled graph
one time step at a time (every layer advances one step before the next step starts), vectorised
over batch and neurons, with the same numpy kernels for synapses: the loop a competent user would
write for a stepwise simulator, and the order in which hardware computes. Both must produce the same
output; the benchmark checks that before it reports a time.

    .venv/bin/python benchmarks/sim_speed.py [--quick]
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, interleaved, paired_ratios, save, spread  # noqa: E402

import spc  # noqa: E402
from spc.compiler import ir  # noqa: E402
from spc.compiler.cells import DelayLine, Leaky, Neuron  # noqa: E402
from spc.compiler.qcells import QDelayLine, QLeaky  # noqa: E402
from spc.runtime.integer import Saturations, align, decay  # noqa: E402
from spc.runtime.sim import run_stepwise  # noqa: E402
from spc.runtime.synapses import synapse  # noqa: E402


def network(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(width, width), spc.LIF(tau=4.0),
        nn.Linear(width, width), spc.SlidingPSN(k=16),
        nn.Linear(width, width), spc.SPSN(tau_syn=8.0, tau_mem=8.0),
        nn.Linear(width, 10), spc.LI(tau=4.0),
    )  # fmt: skip


class _CellState:
    """One cell's state in the step loop: a membrane, or the last inputs of a delay line."""

    def __init__(self, cell, shape, dtype):
        self.cell = cell
        self.v = np.zeros(shape, dtype)
        reach = (cell.order - 1) * cell.dilation if isinstance(cell, (DelayLine, QDelayLine)) else 0
        self.history = collections.deque([np.zeros(shape, dtype)] * reach, maxlen=reach)

    def step(self, x, sats: Saturations):
        cell = self.cell
        shape = x.shape[1:]
        if isinstance(cell, Leaky):
            self.v = ir.channel_view(cell.decay, shape) * self.v + ir.channel_view(cell.gain, shape) * x
            return self.v
        if isinstance(cell, QLeaky):
            self.v = sats.sat(decay(self.v, cell.mode, ir.channel_view(cell.decay, shape)) + align(x, cell.shift), cell.width)
            return self.v
        past = list(self.history) + [x]  # oldest first; past[-1 - lag] is x[t - lag]
        self.history.append(x)
        k, d = cell.order, cell.dilation
        y = ir.channel_view(cell.bias, shape) + sum(ir.channel_view(cell.taps[:, i], shape) * past[-1 - (k - 1 - i) * d] for i in range(k))
        return sats.sat(y, cell.width) if isinstance(cell, QDelayLine) else y


def step_loop(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Run the graph one time step at a time (deterministic firing; Leaky and DelayLine cells)."""
    integer = any(n.op.cells[0].integer for n in graph.neurons())
    dtype = np.int64 if integer else np.float64
    states = {n.name: [_CellState(c, (x.shape[1],) + graph.shapes[n.inputs[0]], dtype) for c in n.op.cells] for n in graph.neurons()}
    sats = Saturations()
    outputs = []
    for t in range(x.shape[0]):
        values = {}
        for node in graph.nodes:
            if isinstance(node.op, ir.Input):
                values[node.name] = x[t].astype(np.float64)
            elif isinstance(node.op, Neuron):
                h = values[node.inputs[0]].astype(dtype, copy=False)  # synapses sum integers in int32
                for state in states[node.name]:
                    h = state.step(h, sats)
                fire = node.op.fire
                if fire is None:
                    values[node.name] = h
                    continue
                threshold = ir.channel_view(fire.threshold, h.shape[1:])
                spikes = (h > threshold) if fire.strict else (h >= threshold)
                if fire.reset == "zero":
                    states[node.name][-1].v = np.where(spikes, 0, states[node.name][-1].v)
                values[node.name] = spikes.astype(dtype)
            else:
                values[node.name] = synapse(node.op, [values[i][None] for i in node.inputs])[0]
        outputs.append(values[graph.outputs[0]])
    return np.stack(outputs)


def measure(steps: int, batch: int, width: int, repeats: int) -> dict:
    x = (np.random.default_rng(0).random((steps, batch, width)) < 0.2).astype(np.float32)
    compiled = spc.compile(network(width), (steps, 1, width), calib=x[:, :8])
    rows = {"T": steps, "B": batch, "width": width}
    for form, graph in (("float", compiled.stepwise), ("integer", compiled.integer)):
        layer_major = run_stepwise(graph, x, record="output").output
        if not np.array_equal(layer_major, step_loop(graph, x)):
            raise AssertionError(f"{form}: the step loop and the layer-major simulator disagree")
        times = interleaved({"layer": lambda g=graph: run_stepwise(g, x, record="output"), "step": lambda g=graph: step_loop(g, x)}, repeats, warmup=1)
        t_layer, t_step = spread(times["layer"]), spread(times["step"])
        ratio = paired_ratios(times["step"], times["layer"])
        rows[form] = {"layer_major_s": t_layer, "step_loop_s": t_step, "step_loop_over_layer_major": ratio, "layer_major_steps_per_s": steps / t_layer["median"], "step_loop_steps_per_s": steps / t_step["median"]}
        print(f"  {form:8s} layer-major {t_layer['median']:.3f} s   step loop {t_step['median']:.3f} s   step loop / layer-major {ratio['median']:.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})   ({steps / t_layer['median']:,.0f} steps/s)")
    rows["integer_over_float"] = rows["integer"]["layer_major_s"]["median"] / rows["float"]["layer_major_s"]["median"]
    return rows


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    torch.set_num_threads(2)
    configs = {"quick": (40, 4, 32, 2)} if args.quick else {"wide": (1000, 32, 256, 7), "narrow": (1000, 4, 32, 7)}
    results = {}
    for name, (steps, batch, width, repeats) in configs.items():
        print(f"{name}: T={steps} B={batch} width={width}")
        results[name] = measure(steps, batch, width, repeats)
    config = {"layers": "Linear+LIF, Linear+SlidingPSN(k=16), Linear+SPSN, Linear+LI(10)", "input": "binary spikes, 20 %", "statistic": "median and min–max of interleaved runs of one whole run", "runs": max(c[3] for c in configs.values())}
    doc = {"benchmark": "sim_speed", "config": config, "results": results}
    save("sim_speed", doc, args)
    return doc


if __name__ == "__main__":
    main()
