"""Quantize the float stepwise graph into the integer graph of docs/integer-spec.md.

Walks the graph once, tracking each tensor's real scale (one value per element of the per-step
shape) and a bound on its integer magnitude:
- the input gets a `Quantize` (scale 1 for spike inputs);
- Linear/Conv fold their input's scale into the weights and take 8-bit mantissas with a
  power-of-two exponent per layer (or per output channel), so their output scale is 2^e;
- average pooling becomes an exact window sum, its 1/area moving into the scale;
- neurons: each leaky cell gets the integer decay of the chosen form and an input shift that gives
  its state as many fractional bits as calibration allows; FIR cells get integer (or power-of-two)
  taps; thresholds land on the membrane's scale. Spikes leave with scale 1;
- a real-valued output (a readout) gets a `Dequantize`.
With `lava_stock` (`--lava-stock`), scales are chosen where a choice lets Lava's stock processes
(Loihi 2) compute a layer exactly (`spc.compiler.loihi`, docs/loihi2-stock.md): biases become 8-bit
mantissas with their own exponent (they turn into synapse weights); a single leaky membrane with
memory keeps an input shift of at least 6 but no more than its 16-bit synaptic input allows, and its
threshold on Loihi's grid (v > 64·vth); FIR taps become signed powers of two, coarsened until the
tap-weighted input fits 16 bits. Each costs a little precision, measured by the fidelity rows of
`spc verify`.
Everything the user may want to check (scales, exponents, shifts, requested and realised time
constants) goes into the report that becomes OUT/quantization.json.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from spc.compiler import ir, loihi
from spc.compiler.calibrate import Calibration
from spc.compiler.cells import DelayLine, Gate, Gated, Leaky, Neuron, Resonator, Sigmoid, StepIndexed
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, RESONATOR_BITS, QDelayLine, QFire, QGate, QGated, QLeaky, QRescale, QResonator, QSigmoid, QStepIndexed
from spc.errors import SpcError
from spc.runtime.float_cells import logistic

DECAY_FORMS = ("int12", "shift")
SYNAPSES = (ir.Linear, ir.Conv, ir.AvgPool2d, ir.SumPool2d, ir.BatchNorm, ir.ScaleShift)  # what may feed a stock neuron
PROFILES = ("default", "xylo")
"""Integer profiles: spc's own (docs/integer-spec.md) and Xylo's (spc.compiler.xylo)."""
TAP_FORMS = ("int", "pow2")
MAX_SHIFT = 16
POW2_TAP_RANGE = 6  # power-of-two taps are ±2^p with 0 <= p <= 6, or 0
SIGMOID_BITS = 16  # QSigmoid's table values reach up to 2^16


@dataclass(frozen=True)
class QuantOptions:
    decay: str = "int12"
    taps: str = "int"
    width: int = 24
    weight_bits: int = 8
    input_bits: int = 8
    per_channel: bool = False
    lava_stock: bool = False  # choose scales Lava's stock processes hold exactly (see the module docstring)
    profile: str = "default"

    @classmethod
    def for_profile(cls, profile: str, **options) -> QuantOptions:
        """Options for a profile; Xylo's fixes the decay form and the widths (its hardware's)."""
        if profile == "xylo":
            changed = {k: v for k, v in options.items() if k in XYLO_FIXED and v != getattr(cls, k) and v != XYLO_FIXED[k]}
            if changed:
                name, value = next(iter(changed.items()))
                raise SpcError(f"--{name.replace('_', '-')} {value}", "does not apply to the Xylo profile, whose arithmetic is Xylo's (bit-shift decays, 16-bit states, 8-bit weights, 4-bit input counts, one weight shift per matrix)", f"leave --{name.replace('_', '-')} out when compiling for Xylo")
            options = {**options, **XYLO_FIXED}
        return cls(profile=profile, **options)

    def check(self) -> None:
        if self.profile not in PROFILES:
            raise SpcError(f"--profile {self.profile}", "is not an integer profile", f"choose one of {', '.join(PROFILES)}")
        if self.profile == "xylo":
            return
        if self.decay not in DECAY_FORMS:
            raise SpcError(f"--decay {self.decay}", "is not a decay form", f"choose one of {', '.join(DECAY_FORMS)}")
        if self.taps not in TAP_FORMS:
            raise SpcError(f"--taps {self.taps}", "is not a tap form", f"choose one of {', '.join(TAP_FORMS)}")
        if not 8 <= self.width <= 32:
            raise SpcError(f"--width {self.width}", "is outside 8..32 bits", "24 is Loihi's membrane width")
        if not 2 <= self.weight_bits <= 16 or not 2 <= self.input_bits <= 16:
            raise SpcError("--weight-bits / --input-bits", f"{self.weight_bits} / {self.input_bits} is outside 2..16", "8 is the usual choice")


XYLO_FIXED = {"decay": "dash", "width": 16, "weight_bits": 8, "input_bits": 4, "per_channel": False}
"""The options the Xylo profile fixes (spc.compiler.xylo)."""


def exponent(max_abs, limit: int) -> np.ndarray:
    """Smallest e with rint(max_abs / 2^e) <= limit (0 where max_abs is 0)."""
    max_abs = np.asarray(max_abs, dtype=np.float64)
    positive = np.where(max_abs > 0, max_abs, 1.0)
    e = np.floor(np.log2(positive / (limit + 0.5))) - 1  # a lower bound; step up to the first that fits
    for _ in range(3):
        e = e + (np.rint(positive / 2.0**e) > limit)
    return np.where(max_abs > 0, e, 0).astype(np.int64)


def weight_mantissas(w_eff: np.ndarray, bits: int, per_row: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights (rint) and the exponent of each output row (shared unless per_row)."""
    limit = 2 ** (bits - 1) - 1
    rows = np.abs(w_eff).reshape(w_eff.shape[0], -1).max(axis=1)
    e = np.broadcast_to(exponent(rows if per_row else rows.max(initial=0.0), limit), rows.shape)
    w = np.rint(w_eff / 2.0 ** e.reshape((-1,) + (1,) * (w_eff.ndim - 1)))
    return w.astype(_int_dtype(bits)), e


def tap_mantissas(taps_eff: np.ndarray, form: str, bits: int, min_exponent: int | None = None) -> tuple[np.ndarray, int, int]:
    """Integer FIR taps (8-bit mantissas, or signed powers of two), their shared exponent (at least
    `min_exponent`, so that the cell's output range fits its state), and how many nonzero taps were
    flushed to zero."""
    peak = float(np.abs(taps_eff).max(initial=0.0))
    if form == "int":
        e = int(exponent(peak, 2 ** (bits - 1) - 1))
    else:  # signed powers of two, the largest at 2^POW2_TAP_RANGE
        e = int(math.floor(math.log2(peak))) - POW2_TAP_RANGE if peak > 0 else 0
    e = e if min_exponent is None else max(e, min_exponent)
    if form == "int":
        q = np.rint(taps_eff / 2.0**e).astype(np.int64)
    else:
        with np.errstate(divide="ignore"):
            p = np.rint(np.log2(np.abs(taps_eff) / 2.0**e))
        q = np.where((taps_eff != 0) & (p >= 0), np.sign(taps_eff) * 2.0 ** np.clip(p, 0, POW2_TAP_RANGE), 0).astype(np.int64)
    return q, e, int(np.count_nonzero((q == 0) & (taps_eff != 0)))


def _int_dtype(bits: int):
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


def time_constant(decay) -> np.ndarray:
    """τ = 1 / (1 − a) steps, infinite for a = 1."""
    decay = np.asarray(decay, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(decay < 1, 1.0 / np.maximum(1.0 - decay, 1e-300), np.inf)


def integer_decay(decay: np.ndarray, form: str) -> tuple[np.ndarray, np.ndarray]:
    """(integer decay parameters, realised float decay) for the 'int12' or 'shift' form."""
    if form == "int12":
        d = np.clip(np.rint(4096 * (1.0 - decay)), 0, 4096).astype(np.int64)
        return d, 1.0 - d / 4096
    with np.errstate(divide="ignore"):
        n = np.where(decay >= 1.0, NO_LEAK, np.clip(np.rint(-np.log2(np.maximum(1.0 - decay, 1e-300))), 0, 62)).astype(np.int64)
    return n, np.where(n == NO_LEAK, 1.0, 1.0 - 2.0 ** -np.maximum(n, 0))


def _json_floats(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.ravel(values)]


def _per_channel(name: str, scale: np.ndarray, what: str) -> np.ndarray:
    """Collapse a full per-step scale array to one value per channel ([1] when all are equal)."""
    flat = scale.reshape(scale.shape[0], -1) if scale.ndim > 1 else scale.reshape(-1, 1)
    if not np.all(flat == flat[:, :1]):
        raise SpcError(f"layer '{name}'", f"receives a tensor whose scale varies within a channel, which {what} cannot take", "use count_include_pad=True pooling, or no padding, before it")
    per_channel = flat[:, 0]
    return per_channel[:1] if np.all(per_channel == per_channel[0]) else per_channel


class _Quantizer:
    def __init__(self, graph: ir.Graph, cal: Calibration, options: QuantOptions):
        self.graph, self.cal, self.opt = graph, cal, options
        self.nodes: list[ir.Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}  # integer node -> per-step shape
        self.produced: dict[str, str] = {}  # float node -> integer node holding its value
        self.scales: dict[str, np.ndarray] = {}  # integer node -> real scale per element
        self.bounds: dict[str, int] = {}  # integer node -> bound on |integer value|
        self.layers: dict[str, dict] = {}

    def emit(self, name: str, op: ir.Op, inputs: tuple[str, ...], scale: np.ndarray, bound: int, float_name: str | None = None) -> None:
        self.nodes.append(ir.Node(name, op, inputs))
        self.shapes[name] = op.output_shape(name, [self.shapes[i] for i in inputs])
        self.scales[name] = np.broadcast_to(scale, self.shapes[name]).astype(np.float64)
        if bound >= 2**31:
            raise SpcError(f"layer '{name}'", f"can produce integer sums up to {bound}, beyond the 32-bit accumulators of the integer specification", "reduce the fan-in or the weight or input bits")
        self.bounds[name] = int(bound)
        self.produced[float_name or name] = name

    def run(self) -> tuple[ir.Graph, dict]:
        for node in self.graph.nodes:
            inputs = tuple(self.produced[i] for i in node.inputs)
            handler = getattr(self, f"q_{type(node.op).__name__}", None)
            if handler is None:
                raise SpcError(f"layer '{node.name}' ({node.op.kind})", "has no integer form", "remove the layer or keep to the float targets")
            handler(node, inputs)
        out = self.produced[self.graph.outputs[0]]
        scale = self.scales[out]
        if not np.all(scale == 1.0):  # a real-valued output: back to float
            channel_scale = _per_channel(out, scale, "Dequantize")
            self.emit("output:dequantize", ir.Dequantize(scale=channel_scale), (out,), scale, self.bounds[out])
            out = "output:dequantize"
        return ir.Graph(tuple(self.nodes), (out,)), self.layers

    # --- synapses -------------------------------------------------------------------------
    def q_Input(self, node, inputs):
        self.emit(node.name, node.op, (), np.ones(node.op.shape), 0)
        limit = 2 ** (self.opt.input_bits - 1) - 1
        if self.cal.input_is_integer and self.cal.input_peak <= limit:
            scale = 1.0
        else:
            scale = 2.0 ** float(exponent(self.cal.input_peak, limit))
        self.emit("input:quantize", ir.Quantize(scale=scale, bits=self.opt.input_bits), (node.name,), np.full(node.op.shape, scale), limit + 1, node.name)
        self.layers["input:quantize"] = {"kind": "Quantize", "scale": scale, "bits": self.opt.input_bits}

    def _synapse(self, node, inputs, w_eff: np.ndarray, make_op) -> None:
        w, e = weight_mantissas(w_eff, self.opt.weight_bits, self.opt.per_channel)
        b = None if node.op.bias is None else self._bias(node.op.bias / 2.0**e)
        op = make_op(w, b)
        scale = (2.0**e).reshape((-1,) + (1,) * (len(self.graph.shapes[node.name]) - 1))
        fan_in = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)
        bound = int((fan_in * self.bounds[inputs[0]] + (0 if b is None else np.abs(b))).max())
        self.emit(node.name, op, inputs, scale, bound)
        self.layers[node.name] = {"kind": node.op.kind, "weight_exponent": e.tolist(), "weight_bits": self.opt.weight_bits}

    def _bias(self, bias: np.ndarray) -> np.ndarray:
        """Integer biases on the weights' scale; with lava_stock, 8-bit mantissas times a power of two
        (a stock layer's bias is a synapse weight)."""
        if not self.opt.lava_stock:
            return np.rint(bias).astype(np.int64)
        e = max(0, int(exponent(np.abs(bias).max(initial=0.0), 2 ** (loihi.WEIGHT_BITS - 1) - 1)))
        return (np.rint(bias / 2.0**e) * 2**e).astype(np.int64)

    def q_Linear(self, node, inputs):
        w_eff = node.op.weight * self.scales[inputs[0]][None, :]
        self._synapse(node, inputs, w_eff, lambda w, b: ir.Linear(weight=w, bias=b))

    def q_Conv(self, node, inputs):
        op = node.op
        s_in = np.broadcast_to(_per_channel(node.name, self.scales[inputs[0]], "a convolution"), (self.graph.shapes[node.inputs[0]][0],))
        out_ch, per_group = op.weight.shape[:2]
        group = np.arange(out_ch) // (out_ch // op.groups)
        channel = group[:, None] * per_group + np.arange(per_group)[None, :]
        w_eff = op.weight * s_in[channel].reshape(channel.shape + (1,) * (op.weight.ndim - 2))
        self._synapse(node, inputs, w_eff, lambda w, b: op.replace(weight=w, bias=b))

    def q_AvgPool2d(self, node, inputs):
        op = node.op
        s_in = _per_channel(node.name, self.scales[inputs[0]], "average pooling")
        pool = ir.SumPool2d(kernel=op.kernel, stride=op.stride, padding=op.padding)
        from spc.runtime.synapses import sum_pool2d  # the exact number of inputs under each window

        counts = sum_pool2d(np.ones((1, 1) + self.graph.shapes[node.inputs[0]][1:]), pool)[0, 0]
        if op.count_include_pad:
            counts = np.full_like(counts, op.kernel[0] * op.kernel[1])
        scale = s_in.reshape(-1, 1, 1) / counts[None]
        self.emit(node.name, pool, inputs, scale, self.bounds[inputs[0]] * op.kernel[0] * op.kernel[1])

    def q_SumPool2d(self, node, inputs):
        s_in = _per_channel(node.name, self.scales[inputs[0]], "sum pooling")
        self.emit(node.name, node.op, inputs, s_in.reshape(-1, 1, 1), self.bounds[inputs[0]] * node.op.kernel[0] * node.op.kernel[1])

    def q_MaxPool2d(self, node, inputs):
        _per_channel(node.name, self.scales[inputs[0]], "max pooling")
        self.emit(node.name, node.op, inputs, self.scales[inputs[0]][:, :1, :1], self.bounds[inputs[0]])

    def q_Reshape(self, node, inputs):
        self.emit(node.name, node.op, inputs, self.scales[inputs[0]].reshape(node.op.shape), self.bounds[inputs[0]])

    def q_Add(self, node, inputs):
        a, b = (self.scales[i] for i in inputs)
        if not np.array_equal(a, b):
            inputs, a = self._align(node, inputs)
        self.emit(node.name, node.op, inputs, a, self.bounds[inputs[0]] + self.bounds[inputs[1]])

    def _align(self, node, inputs) -> tuple[tuple[str, ...], np.ndarray]:
        """Put the operands of a sum on one scale (docs/integer-spec.md, *Aligning sums*): aligner
        neurons `ADD:align{i}` before the Add, exact shifts (a QLeaky of full decay) where the scales
        differ by one power of two, else fixed-point requantization (QRescale) onto the finest
        scale of each channel. Returns the new inputs and the common scale."""
        name = node.name
        scales = [_per_channel(name, self.scales[i], "a sum") for i in inputs]
        with np.errstate(divide="ignore"):
            steps = np.log2(scales[0]) - np.log2(scales[1])
        shifts = bool(np.all(np.isfinite(steps)) and np.all(steps == np.rint(steps)) and np.ptp(steps) == 0)
        reach = sum(self._reach(float_name, i) for float_name, i in zip(node.inputs, inputs))
        finest = min(scales, key=lambda sc: float(sc.max())) if shifts else np.minimum(*np.broadcast_arrays(*scales))
        common = finest * 2.0 ** max(0, math.ceil(math.log2(reach / (2 ** (self.opt.width - 2) * float(finest.max()))))) if reach > 0 else finest
        shape = self.graph.shapes[node.name]
        aligned, report = [], {}
        for j, (i, sc) in enumerate(zip(inputs, scales)):
            ratio = np.broadcast_to(sc / common, common.shape)
            if np.all(ratio == 1.0):
                aligned.append(i)
                continue
            aligner = f"{name}:align{j}"
            limit = 2 ** (self.opt.width - 1) - 1
            if shifts:
                k = int(np.rint(np.log2(ratio.flat[0])))
                full = np.array([4096 if self.opt.decay == "int12" else 0])
                bound = min(self.bounds[i] * 2**k if k > 0 else self.bounds[i], limit)
                self.emit(aligner, Neuron(cells=(QLeaky(mode=self.opt.decay, decay=full, shift=k, width=self.opt.width),)), (i,), self.scales[i] * 2.0**-k, bound)
                self.layers[aligner] = {"kind": "Align", "shift": k}
                report[i] = k
                aligned.append(aligner)
                continue
            multiplier, shift = requantizer(ratio)
            realised = multiplier * 2.0**-shift
            if np.any(multiplier < 1) or self.bounds[i] * int(multiplier.max()) >= 2**62:
                raise SpcError(f"layer '{name}' (Add)", f"adds tensors whose scales differ by factors {float(ratio.min()):.3g}..{float(ratio.max()):.3g}, beyond what a 64-bit requantization can hold", "bring the branches' gains closer, or keep to the float targets")
            bound = min(math.ceil(self.bounds[i] * float(realised.max())) + 1, limit)
            cell = QRescale(multiplier=multiplier, shift=shift, width=self.opt.width)
            self.emit(aligner, Neuron(cells=(cell,)), (i,), ir.channel_view(common, shape), bound)
            error = np.abs(realised - ratio) / ratio
            self.layers[aligner] = {"kind": "Align", "multiplier": multiplier.tolist(), "shift": shift.tolist(), "requested_ratio": _json_floats(ratio), "realised_ratio": _json_floats(realised), "max_relative_error": float(error.max())}
            report[i] = {"multiplier": multiplier.tolist(), "shift": shift.tolist()}
            aligned.append(aligner)
        self.layers[name] = {"kind": "Add", "aligned": report}
        return tuple(aligned), np.broadcast_to(ir.channel_view(common, shape), shape).astype(np.float64)

    def _reach(self, float_name: str, name: str) -> float:
        """How far a tensor's real values reach: a readout's calibrated peak, 1 for spikes, else the
        exact bound of its integers."""
        op = self.graph.node(float_name).op
        if isinstance(op, Neuron) and op.fire is None:
            return float(self.cal.cell_peaks[float_name][-1].max(initial=0.0))
        return float(self.bounds[name] * self.scales[name].max())

    def q_ScaleShift(self, node, inputs):
        """`y = scale·x + shift` in integers (docs/integer-spec.md): |scale| moves into the output's
        scale, its sign stays as the integer factor ±1 (0 where scale is 0), and the shift is
        rounded onto the output's scale like a bias (exact for `1 − x` of spikes)."""
        op, shape = node.op, self.graph.shapes[node.name]
        s_in = _per_channel(node.name, self.scales[inputs[0]], "an elementwise scale and shift (or an unfolded BatchNorm)")
        magnitude = np.abs(op.scale)
        s_out = s_in * np.where(magnitude > 0, magnitude, 1.0)
        shift = np.rint(op.shift / s_out).astype(np.int64)
        qop = ir.ScaleShift(scale=np.sign(op.scale).astype(np.int64), shift=shift)
        bound = self.bounds[inputs[0]] * int(np.any(magnitude > 0)) + int(np.abs(shift).max(initial=0))
        self.emit(node.name, qop, inputs, ir.channel_view(s_out, shape), bound)
        self.layers[node.name] = {"kind": node.op.kind, "scale": _json_floats(s_out), "shift_rounding": float(np.abs(shift * s_out - op.shift).max(initial=0.0))}

    q_BatchNorm = q_ScaleShift  # one that could not be folded into a Linear or Conv

    def q_Mul(self, node, inputs):
        a, b = inputs
        self.emit(node.name, node.op, inputs, self.scales[a] * self.scales[b], self.bounds[a] * self.bounds[b])

    # --- neurons --------------------------------------------------------------------------
    def q_Neuron(self, node, inputs):
        neuron, name, width = node.op, node.name, self.opt.width
        s = _per_channel(name, self.scales[inputs[0]], "a neuron with per-channel parameters")
        peaks = self.cal.cell_peaks[name]
        bound = self.bounds[inputs[0]]
        cells, report = [], {"kind": "Neuron", "cells": []}
        form = self._stock_form(node)
        handlers = {Leaky: partial(self._leaky, stock=form == "integrator"), DelayLine: partial(self._delay_line, stock=form == "fir"), StepIndexed: self._step_indexed, Sigmoid: self._sigmoid, Gate: self._gate, Gated: self._gated, Resonator: self._resonator}
        for i, cell in enumerate(neuron.cells):
            handler = handlers.get(type(cell))
            if handler is None:
                raise SpcError(f"layer '{name}'", f"has a {cell.kind} cell, which has no integer form yet", "keep to the float targets for this layer")
            last = i == len(neuron.cells) - 1 and neuron.fire is not None
            reach = np.maximum(peaks[i], np.abs(neuron.fire.threshold)) if last else peaks[i]  # the state must reach the threshold
            q, s, info = handler(name, cell, s, reach, bound)
            bound = int(np.abs(q.lut).max()) if isinstance(q, QSigmoid) else 2 ** (width - 1) - 1
            cells.append(q)
            report["cells"].append(info)
        fire = None if neuron.fire is None else self._fire(name, neuron.fire, s, report, grid=form == "integrator")
        report["membrane_scale"] = s.tolist()
        report["float_rate"] = self.cal.rates.get(name)
        shape = self.graph.shapes[name]
        if fire is None:
            out_scale = s.reshape((-1,) + (1,) * (len(shape) - 1))
        else:
            out_scale, bound = np.ones(shape), 1
        self.emit(name, Neuron(cells=tuple(cells), fire=fire), inputs, out_scale, bound)
        self.layers[name] = report

    def _stock_form(self, node: ir.Node) -> str | None:
        """With lava_stock, which stock mapping (spc.runtime.lava.stock) this neuron could take, so
        its scales can be chosen for it: "integrator", "fir" or None (none, or no choice matters).
        It needs a synaptic layer of its own as its input, and a readout must be the graph's output."""
        neuron, graph = node.op, self.graph
        fire, (src,) = neuron.fire, node.inputs
        own_synapse = isinstance(graph.node(src).op, SYNAPSES) and graph.consumers(src) == [node] and src not in graph.outputs
        if not self.opt.lava_stock or not own_synapse or len(neuron.cells) != 1 or (fire is not None and fire.stochastic):
            return None
        if fire is None and node.name not in graph.outputs:
            return None
        cell = neuron.cells[0]
        if isinstance(cell, DelayLine) and fire is not None:
            return "fir"
        memory = isinstance(cell, Leaky) and bool(np.all(cell.decay > 0)) and np.unique(cell.decay).size == 1
        exact_decay = self.opt.decay == "int12" or bool(np.all(cell.decay == 1))
        if memory and exact_decay and (fire is None or fire.reset == "zero"):
            return "integrator"
        return None

    def _input_shift(self, base: np.ndarray, reach: np.ndarray) -> int:
        """The largest input shift in [−16, 16] that keeps |state| <= reach within 2^(W−2) on the
        scale base·2^−shift."""
        magnitude = float((np.broadcast_to(reach, np.broadcast(reach, base).shape) / base).max(initial=0.0))
        return MAX_SHIFT if magnitude == 0 else int(np.clip(math.floor(math.log2(2 ** (self.opt.width - 2) / magnitude)), -MAX_SHIFT, MAX_SHIFT))

    def _leaky(self, name: str, cell: Leaky, s: np.ndarray, reach: np.ndarray, bound: int, stock: bool = False):
        """Integer decay, and the largest input shift that keeps the state within 2^(W−2) (for a
        stock integrator, also a_in = x << (shift − 6) within 16 bits, if that leaves 6 or more)."""
        base = _positive_scale(name, "Leaky", s * cell.gain)  # the state's scale with no input shift
        decay, realised = integer_decay(cell.decay, self.opt.decay)
        shift = self._input_shift(base, reach)
        info = {"cell": "Leaky", "mode": self.opt.decay, "decay": decay.tolist(), "shift": shift, **_tau_report(cell.decay, realised)}
        cap = loihi.ALIGN_SHIFT + math.floor(math.log2(loihi.A_IN_MAX / bound)) if bound > 0 else MAX_SHIFT
        if stock and shift > cap >= loihi.MIN_SHIFT:
            info.update(shift=cap, lava_stock=f"input shift {shift} capped at {cap}: the synaptic input a_in = x << {cap - loihi.ALIGN_SHIFT} fits 16 bits")
            shift = cap
        return QLeaky(mode=self.opt.decay, decay=decay, shift=shift, width=self.opt.width), base * 2.0**-shift, info

    def _range_exponent(self, reach) -> int:
        """The smallest output exponent at which values up to `reach` stay within 2^(W-2)."""
        reach = float(np.max(reach, initial=0.0))
        return int(exponent(reach, 2 ** (self.opt.width - 2))) if reach > 0 else -64

    def _delay_line(self, name: str, cell: DelayLine, s: np.ndarray, reach: np.ndarray, bound: int, stock: bool = False):
        """Integer (or power-of-two) taps with one exponent; a stock FIR takes power-of-two taps (each
        a delayed synapse with its own weight_exp), coarsened until Σ|taps|·max|x| fits the neuron's
        16-bit a_in."""
        form = "pow2" if stock else self.opt.taps
        taps_eff, lowest = cell.taps * s[:, None], self._range_exponent(np.maximum(np.max(reach), np.abs(cell.bias)))
        taps, e, flushed = tap_mantissas(taps_eff, form, self.opt.weight_bits, lowest)
        info = {"cell": "DelayLine", "taps": form, "exponent": e, "flushed_taps": flushed}
        if stock:
            fitted, flushed_fitted = e, flushed
            while np.abs(taps).sum(axis=1).max() * bound > loihi.A_IN_MAX and np.any(taps):
                fitted += 1
                taps, _, flushed_fitted = tap_mantissas(taps_eff, form, self.opt.weight_bits, fitted)
            if np.any(taps) or not np.any(cell.taps):
                if fitted > e:
                    info.update(exponent=fitted, flushed_taps=flushed_fitted, lava_stock=f"tap exponent raised by {fitted - e} so that the tap-weighted input fits 16 bits")
                e = fitted
            else:  # no taps fit: the layer stays off the stock processes, with the taps asked for
                return self._delay_line(name, cell, s, reach, bound)
        bias = np.rint(cell.bias / 2.0**e).astype(np.int64)
        return QDelayLine(taps=taps, bias=bias, dilation=cell.dilation, width=self.opt.width), np.array([2.0**e]), info

    def _step_indexed(self, name: str, cell: StepIndexed, s: np.ndarray, reach: np.ndarray, bound: int):
        if s.size != 1:
            raise SpcError(f"layer '{name}'", "is time-indexed with weights shared by all channels, but its input has one scale per channel", "quantize the layer feeding it with one exponent per layer (no --per-channel)")
        weights, e, flushed = tap_mantissas(cell.weights * s[0], self.opt.taps, self.opt.weight_bits, self._range_exponent(np.maximum(np.max(reach), np.abs(cell.bias))))
        bias = np.rint(cell.bias / 2.0**e).astype(np.int64)
        info = {"cell": "StepIndexed", "taps": self.opt.taps, "exponent": e, "flushed_taps": flushed}
        return QStepIndexed(weights=weights, bias=bias, width=self.opt.width), np.array([2.0**e]), info

    def _sigmoid(self, name: str, cell: Sigmoid, s: np.ndarray, reach: np.ndarray, bound: int):
        lut_shift = lut_shift_for(s)
        values = cell.gain[:, None] * logistic(bin_centres(lut_shift)[None, :] * s[:, None])
        peak = float(np.abs(cell.gain).max())
        e = math.ceil(math.log2(peak)) - SIGMOID_BITS if peak > 0 else 0
        lut = np.rint(values / 2.0**e).astype(np.int64)
        info = {"cell": "Sigmoid", "lut_shift": lut_shift, "exponent": e, "bin_width": _json_floats(2.0**lut_shift * s), "table_max_error": float(np.abs(lut * 2.0**e - values).max())}
        return QSigmoid(lut=lut, lut_shift=lut_shift), np.array([2.0**e]), info

    def _gate(self, name: str, cell: Gate, s: np.ndarray, reach: np.ndarray, bound: int):
        base = _positive_scale(name, "Gate", s * cell.gain)
        lut_shift = lut_shift_for(s)
        lut = probability_table(bin_centres(lut_shift)[None, :] * s[:, None])
        shift = self._input_shift(base, reach)
        info = {"cell": "Gate", "lut_shift": lut_shift, "shift": shift, "stochastic": cell.stochastic}
        return QGate(lut=lut, lut_shift=lut_shift, shift=shift, stochastic=cell.stochastic, seed=cell.seed, width=self.opt.width), base * 2.0**-shift, info

    def _gated(self, name: str, cell: Gated, s: np.ndarray, reach: np.ndarray, bound: int):
        taps, e, flushed = tap_mantissas(cell.taps * s[:, None], self.opt.taps, self.opt.weight_bits)
        bias = np.rint(cell.bias / 2.0**e).astype(np.int64)
        z_bound = int((np.abs(taps).sum(axis=1) * bound + np.abs(bias)).max())
        if z_bound >= 2**31:
            raise SpcError(f"layer '{name}'", f"its gate's input can reach {z_bound}, beyond the 32-bit sums of the integer specification", "reduce the gate's taps or the input's range")
        lut_shift = lut_shift_for(np.array([2.0**e]))
        requested = logistic(bin_centres(lut_shift) * 2.0**e)
        amounts, realised = integer_decay(requested, self.opt.decay)
        if self.opt.decay == "shift":  # a gate never holds its state forever: n stays finite
            amounts = np.where(amounts == NO_LEAK, 62, amounts)
            realised = 1.0 - 2.0 ** -amounts.astype(np.float64)
        shift = self._input_shift(s, reach)
        info = {"cell": "Gated", "mode": self.opt.decay, "exponent": e, "flushed_taps": flushed, "lut_shift": lut_shift, "shift": shift, "decay_max_error": float(np.abs(realised - requested).max())}
        q = QGated(mode=self.opt.decay, taps=taps, bias=bias, lut=amounts[None, :], lut_shift=lut_shift, shift=shift, width=self.opt.width)
        return q, s * 2.0**-shift, info

    def _resonator(self, name: str, cell: Resonator, s: np.ndarray, reach: np.ndarray, bound: int):
        base = _positive_scale(name, "Resonator", s * cell.gain)
        re, im = (np.rint(a * 2**RESONATOR_BITS).astype(np.int64) for a in (cell.decay_re, cell.decay_im))
        shift = self._input_shift(base, 2 * reach)  # calibration sees u only; r reaches about as far
        requested, realised = np.hypot(cell.decay_re, cell.decay_im), np.hypot(re, im) / 2**RESONATOR_BITS
        angle = np.arctan2(cell.decay_im, cell.decay_re), np.arctan2(im, re)
        info = {"cell": "Resonator", "shift": shift, "requested_magnitude": _json_floats(requested), "realised_magnitude": _json_floats(realised), **_tau_report(requested, realised),
                "requested_angle": _json_floats(angle[0]), "realised_angle": _json_floats(angle[1])}
        return QResonator(re=re, im=im, shift=shift, width=self.opt.width), base * 2.0**-shift, info

    def _fire(self, name: str, fire, s: np.ndarray, report: dict, grid: bool = False) -> QFire:
        """The threshold on the membrane's scale; with `grid` (a stock integrator), on Loihi's grid:
        it fires at v > 64·vth, so θ − 1 (θ when strict) a multiple of 64."""
        threshold = np.rint(fire.threshold / s).astype(np.int64)
        if grid:
            edge = threshold - (0 if fire.strict else 1)
            threshold = np.rint(edge / 64).astype(np.int64) * 64 + (0 if fire.strict else 1)
        limit = 2 ** (self.opt.width - 1) - 1
        if np.abs(threshold).max() > limit:
            raise SpcError(f"layer '{name}'", f"its threshold becomes {int(np.abs(threshold).max())} on the membrane's integer scale, which a {self.opt.width}-bit state cannot hold", "increase --width, or rescale the layer's weights and threshold")
        realised = threshold * s
        with np.errstate(invalid="ignore", divide="ignore"):
            error = np.where(fire.threshold != 0, np.abs(realised - fire.threshold) / np.abs(fire.threshold), np.abs(realised))
        report["threshold"] = {"float": _json_floats(fire.threshold), "integer": threshold.tolist(), "relative_error": _json_floats(error)}
        if grid:
            report["threshold"]["lava_stock"] = "rounded to Loihi's grid (v > 64·vth)"
        lut, lut_shift = None, 0
        if fire.stochastic:
            lut_shift = lut_shift_for(s)
            lut = probability_table(bin_centres(lut_shift)[None, :] * s[:, None])
        return QFire(threshold=threshold, strict=fire.strict, reset=fire.reset, stochastic=fire.stochastic, seed=fire.seed, lut=lut, lut_shift=lut_shift)


REQUANT_BITS = 15
"""Requantization multipliers m lie in [2^(REQUANT_BITS−1), 2^REQUANT_BITS] (docs/integer-spec.md)."""


def requantizer(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, n) per channel with m·2^−n ≈ ratio: n = clip(14 − floor(log2 ratio), 0, 62), m = rint(ratio·2^n),
    so m has 15 bits and the realised ratio is within 2^−15 of the requested one (relative)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    n = np.clip(REQUANT_BITS - 1 - np.floor(np.log2(ratio)), 0, 62).astype(np.int64)
    return np.rint(ratio * 2.0**n).astype(np.int64), n


def _positive_scale(name: str, cell: str, scale: np.ndarray) -> np.ndarray:
    """A cell's gain goes into its output's scale, which must be positive."""
    if np.any(scale <= 0):
        raise SpcError(f"layer '{name}'", f"its {cell} cell has a gain <= 0, which the integer form (gain absorbed into a positive scale) cannot hold", "keep gains positive (put a sign into the weights before the layer), or keep to the float targets")
    return scale


def _tau_report(requested: np.ndarray, realised: np.ndarray) -> dict:
    """Requested and realised time constants τ = 1/(1 − a) of decays, and their relative error."""
    wanted, got = time_constant(requested), time_constant(realised)
    with np.errstate(invalid="ignore"):
        error = np.where(np.isfinite(wanted), np.abs(got - wanted) / wanted, np.where(np.isfinite(got), np.inf, 0.0))
    return {"requested_tau": _json_floats(wanted), "realised_tau": _json_floats(got), "tau_relative_error": _json_floats(error)}


def lut_shift_for(scale: np.ndarray) -> int:
    """Table bins about 1/64 wide in real units (never narrower than one integer step)."""
    return max(0, int(np.rint(np.log2(1.0 / (64.0 * float(np.min(scale)))))))


def bin_centres(lut_shift: int) -> np.ndarray:
    """The integer value at the centre of each of the LUT_SIZE bins (docs/integer-spec.md)."""
    return (np.arange(LUT_SIZE) - LUT_SIZE // 2) * 2.0**lut_shift + 2.0**lut_shift / 2


def probability_table(z: np.ndarray) -> np.ndarray:
    """floor(σ(z)·2^24) for real values z."""
    return np.floor(2**24 / (1.0 + np.exp(-z))).astype(np.int64)


def quantize(stepwise: ir.Graph, cal: Calibration, options: QuantOptions = QuantOptions()) -> tuple[ir.Graph, dict]:
    """The integer graph and the per-layer quantization report."""
    options.check()
    if options.profile == "xylo":
        from spc.compiler.xylo import quantize_xylo

        graph, layers = quantize_xylo(stepwise, cal, options)
    else:
        graph, layers = _Quantizer(stepwise, cal, options).run()
    report = {
        "options": asdict(options),
        "calibration": {"synthetic": cal.synthetic, "input_peak": cal.input_peak, "input_is_integer": cal.input_is_integer},
        "layers": layers,
    }
    return graph, report
