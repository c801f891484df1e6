"""The Xylo profile: what SynSense Xylo Audio 2 (SYNS61201) computes, and spc's networks in that form.

Xylo's neuron (xylosim's `XyloIAFNeuron`, docs/integer-spec.md, *The Xylo profile*) is a synaptic
current and a membrane, both 16-bit and decaying by bit shifts ('dash'), firing graded spike counts
with a subtractive reset. Its network is fixed too: up to 16 input channels feed hidden neurons
through one dense int8 matrix, hidden neurons feed each other through a second one and the output
neurons through a third, each matrix with one left shift; every hop between neurons takes one step.
So a network maps when it is a chain Input → Linear → neurons → Linear → neurons ... → Linear →
output neurons of at most two leaky stages each. Three steps, run by `spc.compile` with the Xylo
profile:

- `xylo_form(stepwise)`: every neuron as Xylo's (a synaptic current, a membrane, graded subtractive
  firing), still in float, with what that changes per layer (`LayerMapping`); what has no Xylo form
  is refused, every such layer named with the reason. Calibration runs on this form.
- `XyloQuantizer`: the integers (docs/integer-spec.md), chosen as the default quantizer does, within
  Xylo's ranges and its one weight shift per matrix.
- `check_resources(integer graph)`: Xylo's neuron counts, input and output channels and fan-out,
  which samna (absent on Python 3.11) would otherwise check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spc.compiler import ir
from spc.compiler.cells import Fire, Leaky, Neuron
from spc.compiler.qcells import DASH_RANGE, QFire, QLeaky
from spc.compiler.quantize import _Quantizer, _per_channel, _positive_scale, _tau_report, weight_mantissas
from spc.errors import SpcError

DEVICE = "Xylo Audio 2 (SYNS61201)"
INPUTS = 16  # input channels
HIDDEN = 1000  # hidden neurons
OUTPUTS = 8  # output neurons
FANOUT = 64  # recurrent (hidden → hidden) weights per hidden neuron
AVERAGE_FANOUT = 32  # ... on average over the hidden neurons: the recurrent weight memory
WIDTH = 16  # synaptic current and membrane bits
INPUT_EVENTS = 15  # input events per channel and step
HIDDEN_SPIKES = 31  # spikes per hidden neuron and step
OUTPUT_SPIKES = 1  # spikes per output neuron and step
MAX_WEIGHT_SHIFT = 8  # spc's limit: a shifted int8 weight still fits the 16-bit synaptic current
STATE_LIMIT = 2 ** (WIDTH - 1) - 1
READOUT_THRESHOLD = STATE_LIMIT  # an output read by its membrane fires only at the top of the range
FAST_SYNAPSE = 1  # dash of the synaptic current added to a one-stage neuron (τ = 2 steps)
LIMITS = {"input channels": INPUTS, "hidden neurons": HIDDEN, "output neurons": OUTPUTS, "fan-out": FANOUT, "synaptic states per neuron": 2}

EXACT, APPROXIMATE, REFUSED = "exact", "approximate", "refused"
CELL_NAMES = {
    "DelayLine": "a FIR delay line (Xylo has no synaptic delays; relay neurons would delay spikes, but each one filters them through its own synaptic current and sends graded counts)",
    "StepIndexed": "a time-indexed kernel (Xylo's parameters do not change with the step)",
    "Sigmoid": "a sigmoid (Xylo's neuron has no nonlinearity but its threshold)",
    "Gate": "a multiplicative gate (Xylo's neuron has no products of states)",
    "Gated": "an input-dependent decay (Xylo's decays are fixed shifts)",
    "Resonator": "a resonator (Xylo's states are real and decay, they do not rotate)",
}


@dataclass
class LayerMapping:
    """How one neuron layer maps onto Xylo: exact, approximate (with what changes) or refused (why)."""

    layer: str
    status: str
    notes: list[str] = field(default_factory=list)
    role: str = ""  # 'hidden' or 'output'

    def to_json(self) -> dict:
        return {"status": self.status, "role": self.role, "notes": list(self.notes)}


def dash(decay: np.ndarray, low: int) -> np.ndarray:
    """The shift n whose decay 1 − 2^−n is nearest a (τ = 2^n steps), within [low, 15]."""
    decay = np.asarray(decay, dtype=np.float64)
    with np.errstate(divide="ignore"):
        n = np.rint(-np.log2(np.maximum(1.0 - decay, 2.0**-60)))
    return np.clip(n, low, DASH_RANGE).astype(np.int64)


def realised(n: np.ndarray) -> np.ndarray:
    return 1.0 - 2.0 ** -np.asarray(n, dtype=np.float64)


def _stages(neuron: Neuron, notes: list[str]) -> tuple[Leaky, Leaky]:
    """(synaptic current, membrane) of a neuron of one or two leaky cells, noting what changes."""
    if len(neuron.cells) == 2:
        syn, mem = neuron.cells
    elif neuron.fire is None:  # a one-stage readout: its leaky stage is the synaptic current, the membrane copies it
        syn, mem = neuron.cells[0], Leaky(decay=np.zeros(1), gain=np.ones(1))
    else:
        half = np.full(1, realised(FAST_SYNAPSE))
        syn, mem = Leaky(decay=half, gain=1.0 - half), neuron.cells[0]
        notes.append(f"Xylo filters every input through a synaptic current: one of τ = {2 ** FAST_SYNAPSE} steps (dash {FAST_SYNAPSE}) is added in front of the membrane, delaying and smoothing its input")
    if np.any(syn.decay <= 0):
        notes.append("a synaptic stage without memory becomes one of τ = 2 steps (Xylo decays the synaptic current after adding its input)")
    for what, cell in (("synaptic current", syn), ("membrane", mem)):
        if np.any(cell.decay > realised(DASH_RANGE)):
            notes.append(f"the {what} leaks at least 2^-{DASH_RANGE} per step and 1 unit (Xylo has no leak-free state)")
    return syn, mem


def _fire(fire: Fire, output: bool, notes: list[str]) -> Fire:
    """Xylo's firing: >= θ, subtract θ per spike, graded counts (one spike at most on outputs)."""
    if fire.reset == "zero":
        notes.append("resets by subtracting the threshold, where the float neuron resets to zero")
    elif fire.reset == "none":
        notes.append("resets by subtracting the threshold, where the float neuron does not reset")
    spikes = OUTPUT_SPIKES if output else HIDDEN_SPIKES
    if spikes > 1:
        notes.append(f"fires graded spike counts (up to {spikes} per step, θ subtracted per spike), where the float neuron fires once per step")
    threshold = np.where(fire.threshold > 0, fire.threshold, np.finfo(np.float64).tiny)  # h > 0: the least positive threshold, 1 in integers
    return Fire(threshold=threshold, strict=fire.strict, reset="subtract", max_spikes=spikes)


def map_neuron(name: str, neuron: Neuron, output: bool) -> tuple[LayerMapping, Neuron | None]:
    """A neuron's Xylo form (float), or None with the reason when it has none."""
    role = "output" if output else "hidden"
    kinds = [type(c).__name__ for c in neuron.cells]
    other = next((k for k in kinds if k != "Leaky"), None)
    if other is not None:
        return LayerMapping(name, REFUSED, [f"has {CELL_NAMES.get(other, f'a {other} cell')}"], role), None
    if len(kinds) > 2:
        return LayerMapping(name, REFUSED, [f"has {len(kinds)} leaky stages; Xylo's neuron has two (a synaptic current and a membrane)"], role), None
    fire = neuron.fire
    if fire is None and not output:
        return LayerMapping(name, REFUSED, ["is a non-spiking layer inside the network; Xylo's hidden neurons send spikes only (a readout must be the last layer)"], role), None
    if fire is not None and fire.stochastic:
        return LayerMapping(name, REFUSED, ["fires stochastically; Xylo has no random numbers"], role), None
    if fire is not None and (np.any(fire.threshold < 0) or (not fire.strict and np.any(fire.threshold == 0))):
        return LayerMapping(name, REFUSED, ["fires at or below 0; Xylo's thresholds are positive (h > 0 is h >= 1 in integers, h >= 0 is not)"], role), None
    notes: list[str] = []
    syn, mem = _stages(neuron, notes)
    xylo_fire = None if fire is None else _fire(fire, output, notes)
    return LayerMapping(name, APPROXIMATE if notes else EXACT, notes, role), Neuron(cells=(syn, mem), fire=xylo_fire)


def _fused(graph: ir.Graph, node: ir.Node) -> ir.Node | None:
    """The non-spiking one-stage neuron (an LI) feeding only this spiking one-stage neuron (a LIF),
    which together are one Xylo neuron (a CubaLIF: the LI is its synaptic current); else None."""
    if not isinstance(node.op, Neuron) or node.op.fire is None or len(node.op.cells) != 1:
        return None
    source = graph.node(node.inputs[0])
    if isinstance(source.op, Neuron) and source.op.fire is None and len(source.op.cells) == 1 and isinstance(source.op.cells[0], Leaky) and len(graph.consumers(source.name)) == 1:
        return source
    return None


def _structure(graph: ir.Graph) -> list[LayerMapping]:
    """Refusals of what Xylo's network cannot hold: anything but a chain of Linear and neuron
    layers from a flat input, biases, branches."""
    refused = []
    if len(graph.input.op.shape) != 1:
        refused.append(LayerMapping(graph.input.name, REFUSED, [f"is a {len(graph.input.op.shape)}-d input; Xylo's inputs are {INPUTS} flat channels"]))
    expected = ir.Linear
    for node in graph.nodes[1:]:
        op = node.op
        consumers = graph.consumers(node.name)
        if not isinstance(op, (ir.Linear, Neuron)):
            refused.append(LayerMapping(node.name, REFUSED, [f"is a {op.kind}; Xylo's network is dense weights (Linear) between neuron layers only"]))
            continue
        if not isinstance(op, expected) and not _fused(graph, node):
            what = "a Linear layer" if expected is ir.Linear else "a neuron layer"
            refused.append(LayerMapping(node.name, REFUSED, [f"follows '{node.inputs[0]}' directly; on Xylo {what} must come next (Input → Linear → neurons → Linear → ...)"]))
        if isinstance(op, ir.Linear) and op.bias is not None and np.any(op.bias != 0):
            refused.append(LayerMapping(node.name, REFUSED, ["has a bias; Xylo's weights have none (its neuron bias is a constant membrane input, not the same)"]))
        if len(consumers) > 1:
            refused.append(LayerMapping(node.name, REFUSED, [f"feeds {len(consumers)} layers; Xylo's chain has no branches or residual sums"]))
        expected = Neuron if isinstance(op, ir.Linear) else ir.Linear
    last = graph.node(graph.outputs[0])
    if not isinstance(last.op, Neuron):
        refused.append(LayerMapping(last.name, REFUSED, [f"is the network's output, a {last.op.kind}; Xylo's outputs are neurons"]))
    return refused


def _neurons(stepwise: ir.Graph) -> list[tuple[LayerMapping, ir.Node | None]]:
    """Every neuron layer's mapping and its Xylo form as a node (None when fused or refused); an LI
    feeding only a LIF becomes that LIF's synaptic current."""
    outputs = set(stepwise.outputs)
    fused = {source.name: node.name for node in stepwise.neurons() if (source := _fused(stepwise, node))}
    result = []
    for node in stepwise.neurons():
        if node.name in fused:
            note = f"is fused with '{fused[node.name]}' into one Xylo neuron, as its synaptic current"
            result.append((LayerMapping(node.name, EXACT, [note], "hidden"), None))
            continue
        op, inputs = node.op, node.inputs
        source = _fused(stepwise, node)
        if source is not None:
            op, inputs = Neuron(cells=source.op.cells + op.cells, fire=op.fire), source.inputs
        mapping, xylo_op = map_neuron(node.name, op, node.name in outputs)
        result.append((mapping, None if xylo_op is None else ir.Node(node.name, xylo_op, inputs)))
    return result


def xylo_form(stepwise: ir.Graph) -> tuple[ir.Graph, list[LayerMapping]]:
    """The float stepwise graph with every neuron in Xylo's form, and how each layer maps; raises
    SpcError naming every layer that cannot map and why."""
    mappings = mapping_report(stepwise)
    refused = [m for m in mappings if m.status == REFUSED]
    if refused:
        lines = "; ".join(f"'{m.layer}' {m.notes[0]}" for m in refused)
        raise SpcError(f"target 'xylo' ({DEVICE})", f"cannot map {len(refused)} layer(s): {lines}", "keep to the layers Xylo expresses (Linear without bias into LIF / LI-type neurons), or compile for ONNX, NIR or Lava instead")
    mapped = {m.layer: node for m, node in _neurons(stepwise)}
    nodes = tuple(mapped.get(n.name, n) for n in stepwise.nodes if mapped.get(n.name, n) is not None)
    return ir.Graph(nodes, stepwise.outputs), mappings


def mapping_report(stepwise: ir.Graph) -> list[LayerMapping]:
    """How every layer maps (structure refusals first, then one entry per neuron layer)."""
    return _structure(stepwise) + [m for m, _ in _neurons(stepwise)]


# --- quantization ---------------------------------------------------------------------------------
def matrix_of(neuron_index: int, layers: int) -> str:
    """Which of Xylo's three weight matrices feeds the neuron layer at this position."""
    return "input" if neuron_index == 0 else "output" if neuron_index == layers - 1 else "recurrent"


@dataclass
class _Plan:
    """What the second pass of the Xylo quantizer fixes: per layer, the extra weight exponent its
    Linear takes (when even shift 0 overflows 16 bits) and the shift shared by its matrix."""

    bumps: dict[str, int] = field(default_factory=dict)
    shifts: dict[str, int] = field(default_factory=dict)


class XyloQuantizer(_Quantizer):
    """The quantizer under the Xylo profile (docs/integer-spec.md, *The Xylo profile*), run on
    `xylo_form`'s graph. Two passes: the first finds each neuron layer's largest input shift; the
    second gives every layer fed by one of Xylo's matrices the smallest of them (one shift per
    matrix), coarsening a Linear's weights where even shift 0 would overflow."""

    def __init__(self, graph, cal, options, plan: _Plan | None = None):
        super().__init__(graph, cal, options)
        self.plan = plan
        self.wanted: dict[str, int] = {}
        names = [n.name for n in graph.neurons()]
        self.matrix = {name: matrix_of(i, len(names)) for i, name in enumerate(names)}

    def q_Input(self, node, inputs):
        self.emit(node.name, node.op, (), np.ones(node.op.shape), 0)
        if float(np.min(self.cal.data, initial=0.0)) < 0:
            raise SpcError(f"input '{node.name}'", "takes negative values; Xylo's inputs are event counts 0..15 per channel and step", "encode the input as non-negative counts (e.g. spikes)")
        if self.cal.input_is_integer and self.cal.input_peak <= INPUT_EVENTS:
            scale = 1.0
        else:
            scale = 2.0 ** math.ceil(math.log2(max(self.cal.input_peak, 1e-300) / INPUT_EVENTS))
        self.emit("input:quantize", ir.Quantize(scale=scale, bits=4, signed=False), (node.name,), np.full(node.op.shape, scale), INPUT_EVENTS, node.name)
        self.layers["input:quantize"] = {"kind": "Quantize", "scale": scale, "bits": 4, "signed": False}

    def q_Linear(self, node, inputs):
        bump = self.plan.bumps.get(self.graph.consumers(node.name)[0].name, 0) if self.plan else 0
        w_eff = node.op.weight * self.scales[inputs[0]][None, :]
        w, e = weight_mantissas(w_eff, self.opt.weight_bits, False)
        if bump:
            e = e + bump
            w = np.rint(w_eff / 2.0 ** e[:, None]).astype(np.int8)
        fan_in = np.abs(w.astype(np.int64)).sum(axis=1)
        self.emit(node.name, ir.Linear(weight=w, bias=None), inputs, (2.0**e).reshape(-1), int((fan_in * self.bounds[inputs[0]]).max()))
        self.layers[node.name] = {"kind": "Linear", "weight_exponent": e.tolist(), "weight_bits": self.opt.weight_bits, "xylo_matrix": self.matrix[self.graph.consumers(node.name)[0].name]}

    def q_Neuron(self, node, inputs):
        name, neuron = node.name, node.op
        syn, mem = neuron.cells
        s_x = _per_channel(name, self.scales[inputs[0]], "Xylo's neurons")
        peaks = self.cal.cell_peaks[name]
        n_syn, n_mem = dash(syn.decay, 1), dash(mem.decay, 0)
        base_syn = _positive_scale(name, "Leaky", s_x * syn.gain / realised(n_syn))  # i ≈ a·(i + x·2^k): the gain a is the decay's
        base_mem = _positive_scale(name, "Leaky", base_syn * mem.gain)
        reach_mem = peaks[1] if neuron.fire is None else np.maximum(peaks[1], np.abs(neuron.fire.threshold))
        wanted = min(self._input_shift(base_syn, peaks[0]), self._input_shift(base_mem, reach_mem))
        self.wanted[name] = wanted
        shift = min(max(wanted, 0), MAX_WEIGHT_SHIFT) if self.plan is None else self.plan.shifts[name]
        q_syn = QLeaky(mode="dash", decay=n_syn, shift=shift, width=WIDTH, input_first=True)
        q_mem = QLeaky(mode="dash", decay=n_mem, shift=0, width=WIDTH)
        s_mem = base_mem * 2.0**-shift
        report = {"kind": "Neuron", "cells": [
            {"cell": "Leaky", "mode": "dash", "stage": "synaptic current", "decay": n_syn.tolist(), "shift": shift, **_tau_report(syn.decay, realised(n_syn))},
            {"cell": "Leaky", "mode": "dash", "stage": "membrane", "decay": n_mem.tolist(), "shift": 0, **_tau_report(mem.decay, realised(n_mem))},
        ]}
        fire = self._xylo_fire(name, neuron.fire, s_mem, report)
        report["membrane_scale"] = s_mem.tolist()
        report["float_rate"] = self.cal.rates.get(name)
        shape = self.graph.shapes[name]
        readout = neuron.fire is None
        out_scale = s_mem.reshape((-1,) + (1,) * (len(shape) - 1)) if readout else np.ones(shape)
        self.emit(name, Neuron(cells=(q_syn, q_mem), fire=fire), inputs, out_scale, STATE_LIMIT + 1 if readout else fire.max_spikes)
        self.layers[name] = report

    def _xylo_fire(self, name: str, fire: Fire | None, s: np.ndarray, report: dict) -> QFire:
        """Xylo's threshold: the exact integer form of h >= θ (ceil) or h > θ (floor + 1) on the
        membrane's scale; a readout's is the top of the range, reached only there."""
        if fire is None:
            return QFire(threshold=np.array([READOUT_THRESHOLD]), reset="subtract", readout=True)
        ratio = fire.threshold / s
        threshold = (np.floor(ratio) + 1 if fire.strict else np.ceil(ratio)).astype(np.int64)
        if threshold.max() > STATE_LIMIT:
            raise SpcError(f"layer '{name}'", f"its threshold becomes {int(threshold.max())} on the membrane's integer scale, beyond Xylo's 16-bit thresholds", "rescale the layer's weights and threshold")
        error = np.abs(threshold * s - fire.threshold) / np.maximum(np.abs(fire.threshold), s)  # (a threshold of 0: relative to one step)
        report["threshold"] = {"float": fire.threshold.tolist(), "integer": threshold.tolist(), "relative_error": error.tolist()}
        return QFire(threshold=np.maximum(threshold, 1), reset="subtract", max_spikes=fire.max_spikes)


def _plan(first: XyloQuantizer) -> _Plan:
    """One shift per matrix (the smallest any of its layers wants, at least 0); a layer that wants
    a negative shift takes coarser weights instead."""
    plan = _Plan()
    groups: dict[str, list[str]] = {}
    for name, wanted in first.wanted.items():
        groups.setdefault(first.matrix[name], []).append(name)
        plan.bumps[name] = max(0, -wanted)
    for names in groups.values():
        shared = min(MAX_WEIGHT_SHIFT, *(max(first.wanted[n], 0) for n in names))
        plan.shifts.update({n: shared for n in names})
    return plan


def quantize_xylo(graph: ir.Graph, cal, options) -> tuple[ir.Graph, dict]:
    first = XyloQuantizer(graph, cal, options)
    first.run()
    integer, layers = XyloQuantizer(graph, cal, options, _plan(first)).run()
    check_resources(integer)
    return integer, layers


# --- resources ----------------------------------------------------------------------------------
def layout(integer: ir.Graph) -> list[tuple[str, str, int]]:
    """(layer, 'hidden' or 'output', neurons) in order: every neuron layer but the last is hidden."""
    neurons = integer.neurons()
    return [(n.name, "output" if i == len(neurons) - 1 else "hidden", math.prod(integer.shapes[n.name])) for i, n in enumerate(neurons)]


def resources(integer: ir.Graph) -> dict:
    """What a chain of Linear and neuron layers (integer, or float for an estimate) takes of Xylo:
    inputs, hidden and output neurons, recurrent fan-out."""
    places = layout(integer)
    fanout, recurrent = {}, 0
    for (source, _, _), (target, role, _) in zip(places, places[1:]):
        linear = integer.node(integer.node(target).inputs[0]).op
        if role == "hidden" and isinstance(linear, ir.Linear):  # a hidden-to-hidden matrix: Xylo's recurrent weights
            fanout[source] = int(np.count_nonzero(linear.weight, axis=0).max(initial=0))
            recurrent += int(np.count_nonzero(linear.weight))
    return {
        "device": DEVICE,
        "input channels": math.prod(integer.shapes[integer.input.name]),
        "hidden neurons": sum(n for _, role, n in places if role == "hidden"),
        "output neurons": sum(n for _, role, n in places if role == "output"),
        "fan-out": max(fanout.values(), default=0),
        "recurrent weights": recurrent,
        "fan-out by layer": fanout,
    }


def check_resources(integer: ir.Graph) -> dict:
    """Refuse a network beyond Xylo's resources, naming the layer and the limit; returns the use."""
    use = resources(integer)
    places = layout(integer)
    subject = f"target 'xylo' ({DEVICE})"
    if len(places) < 2:
        raise SpcError(subject, f"needs hidden and output neurons, and this network has {len(places)} neuron layer(s)", "add a hidden layer before the output layer")
    if use["input channels"] > INPUTS:
        raise SpcError(f"{subject}, input '{integer.input.name}'", f"has {use['input channels']} channels; Xylo has {INPUTS} input channels", f"reduce the input to at most {INPUTS} channels")
    if use["output neurons"] > OUTPUTS:
        raise SpcError(f"{subject}, layer '{places[-1][0]}'", f"has {use['output neurons']} output neurons; Xylo has {OUTPUTS}", f"use at most {OUTPUTS} outputs")
    if use["hidden neurons"] > HIDDEN:
        sizes = ", ".join(f"'{name}' {n}" for name, role, n in places if role == "hidden")
        raise SpcError(f"{subject}, layers {sizes}", f"need {use['hidden neurons']} hidden neurons; Xylo has {HIDDEN}", "make the hidden layers smaller")
    for name, n in use["fan-out by layer"].items():
        if n > FANOUT:
            raise SpcError(f"{subject}, layer '{name}'", f"has neurons that connect to {n} hidden neurons; Xylo's fan-out is at most {FANOUT}", f"make the next hidden layer at most {FANOUT} wide, or its weights sparser")
    if use["recurrent weights"] > AVERAGE_FANOUT * HIDDEN:
        raise SpcError(subject, f"has {use['recurrent weights']} hidden-to-hidden weights; Xylo holds {AVERAGE_FANOUT} per hidden neuron on average ({AVERAGE_FANOUT * HIDDEN})", "use narrower or sparser hidden layers")
    return use


def coverage(stepwise: ir.Graph) -> str:
    """What of a model maps onto Xylo, layer by layer, and what it would take of Xylo's resources
    (over a limit: marked): a model's Xylo coverage, whether or not it compiles for Xylo."""
    from spc.text_table import render

    rows = [(m.layer, m.role or "-", m.status, "; ".join(m.notes) or "-") for m in mapping_report(stepwise)]
    use = resources(stepwise)
    taken = ", ".join(f"{use[k]}/{LIMITS[k]} {k}" + (" (over)" if use[k] > LIMITS[k] else "") for k in ("input channels", "hidden neurons", "output neurons", "fan-out"))
    return render(("layer", "role", "Xylo", "what changes or why not"), rows) + f"\nresources: {taken} (float weights, before quantization)"

