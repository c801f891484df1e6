"""ONNX emitter: the integer graph (docs/integer-spec.md) and the float stepwise graph
(spc.compiler.cells) as ONNX models that onnxruntime, or any runtime of opset 21, runs.

Files written (`FILES`):
    model.onnx        / model_float.onnx        one time step, the state as explicit inputs/outputs
    model_seq.onnx    / model_float_seq.onnx    a whole sequence: one `Scan` over time

The one-step graph takes `x` (float64 `[B, *shape]`, one step of the input) and every piece of
state as `state_in.<layer>.<cell>` (a leaky or gated membrane `[B, *shape]`, a resonator's real
part, or an FIR cell's last inputs `[reach, B, *shape]`; a resonator's imaginary part is
`state_in.<layer>.<cell>.r`, a gated cell's last gate inputs `state_in.<layer>.<cell>.gate`), plus
`state_in.step` (int64 scalar, the step counter) when a cell is time-indexed or a gate or firing
rule stochastic. It returns `output` (the model's output at this step), each
`state_out.<key>` to feed back as `state_in.<key>` at the next step, and per neuron layer
`membrane.<layer>` (the last cell's output, before any reset) and `spikes.<layer>` (spiking layers).
All state starts at zero, the step counter too. The sequence graph is that same graph as the body of
one `Scan` over `x` `[T, B, *shape]`, its outputs stacked to `[T, B, ...]`. The pairing and the
initial values are written in each graph's doc_string and, as JSON, in `metadata_props`.

Choices, so that onnxruntime's CPU kernels compute the integer form to the bit:
- Opset 21, and every arithmetic shift of a signed value written as the portable floor shift
  `Div(x − Mod(x, 2^n), 2^n)` (Mod with fmod=0 takes the divisor's sign, so the Div is exact).
  Signed `BitShift` needs opset 28, which only the newest runtimes read; the floor shift costs two
  more elementwise ops where it is used (the shift decays, a negative input shift, a table's bin,
  the expected gate's product). Where the shift varies per element (QGated's decay n read from its
  table), the graph gathers the divisor 2^n from a second table of powers computed here.
- Integer values are int64 (a 32-bit state times 4096 needs 44 bits, the expected gate's product
  56, the resonator's 17-bit coefficients times its state 49). `Div` on int64 truncates toward zero:
  exactly the trunc0 of the int12 decays and of the resonator's rotation.
- Lookup tables (QSigmoid, QGate, QGated, stochastic QFire) are flattened to one int64 vector; the
  bin of channel c is offset by c · 1024 and read with one `Gather`.
- Linear and Conv sums are float GEMMs (onnxruntime has no integer Gemm or Conv, int MatMul is slow,
  and MatMulInteger saturates on AVX2): float32 where the compile-time bound
  `max over outputs of Σ|w| · max|x|` stays below 2^24, float64 otherwise (below 2^53: the compiler
  bounds every sum below 2^31). Every partial sum is then an integer the float holds exactly, in any
  summation order; the bias is added in int64 afterwards. (A runtime with TF32 math must turn it off,
  as spc's runner does for CUDA.)
- Convolution and pooling gather their windows with one `Gather` (indices computed here) and reduce
  them with MatMul, ReduceSum or ReduceMax: onnxruntime's Conv and AveragePool have float32 kernels
  only, and GPU libraries may pick inexact (Winograd, FFT) convolution algorithms.
- The stochastic firing rule's counter-based hash (spc.compiler.rng) runs in uint32: onnxruntime's
  Mul wraps modulo 2^32 as numpy does, BitwiseXor (opset 18) and unsigned BitShift take uint32.
The float graph computes in float64, with the float simulator's operations in the same order; what
may differ is the summation order inside a GEMM, a window or an FIR cell, and σ by an ulp (written
`1 / (1 + Exp(−x))`, where the simulator takes `exp(−logaddexp(0, −x))`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.serialize import Stored
from spc.compiler.cells import DelayLine, Fire, Gate, Gated, Leaky, Neuron, Resonator, Sigmoid, StepIndexed, TimeIndexedCell
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, RESONATOR_BITS, QDelayLine, QFire, QGate, QGated, QLeaky, QRescale, QResonator, QSigmoid, QStepIndexed
from spc.errors import SpcError

OPSET = 21
FILES = {
    ("integer", "step"): "model.onnx",
    ("integer", "seq"): "model_seq.onnx",
    ("float", "step"): "model_float.onnx",
    ("float", "seq"): "model_float_seq.onnx",
}
FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53
STEP = "step"
"""State key of the step counter (`state_in.step`); a cell's key `<layer>.<i>` always differs."""
LEAKY = (Leaky, QLeaky)
CELLS = {"integer": (QLeaky, QDelayLine, QStepIndexed, QSigmoid, QGate, QGated, QResonator, QRescale), "float": (Leaky, DelayLine, StepIndexed, Sigmoid, Gate, Gated, Resonator)}
GATE_BITS = 24
"""The gate's probability tables hold σ · 2^24 (docs/integer-spec.md)."""
FIRE = {"integer": QFire, "float": Fire}
ONLY = {"integer": (ir.AvgPool2d, ir.BatchNorm), "float": (ir.Quantize, ir.Dequantize)}
"""Operations a form must not contain (the other form's operations)."""


def elem(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def refusal(layer: str, problem: str, fix: str) -> SpcError:
    return SpcError(f"onnx target, layer '{layer}'", problem, fix)


def windows(shape: tuple[int, ...], groups: int, kernel, stride, padding, dilation) -> np.ndarray:
    """Flat indices into the zero-padded input [C, *padded] of every window: [groups, positions,
    (C / groups) · kernel size], the last axis ordered (channel, kernel offsets) like a weight row."""
    channels, spatial = shape[0], shape[1:]
    padded = [s + 2 * p for s, p in zip(spatial, padding)]
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in zip(spatial, kernel, stride, padding, dilation)]
    positions = np.stack([g.ravel() for g in np.meshgrid(*[np.arange(o) for o in out], indexing="ij")])
    offsets = np.stack([g.ravel() for g in np.meshgrid(*[np.arange(k) for k in kernel], indexing="ij")])
    flat = np.zeros((positions.shape[1], offsets.shape[1]), np.int64)
    for axis in range(len(spatial)):
        flat = flat * padded[axis] + positions[axis][:, None] * stride[axis] + offsets[axis][None, :] * dilation[axis]
    per_group = channels // groups
    channel = np.arange(channels).reshape(groups, 1, per_group, 1)
    return (channel * math.prod(padded) + flat[None, :, None, :]).reshape(groups, flat.shape[0], per_group * offsets.shape[1])


EXTERNAL_BYTES = 4096
"""Weights at least this large are referred to as external data when the directory holds them."""


class GraphBuilder:
    """Nodes and constants of one ONNX graph under construction; every value gets a fresh name."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.prefix = ""
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def op(self, op_type: str, inputs, output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=self.fresh("node"), **attrs))
        return output

    def const(self, values, dtype) -> str:
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name


class StepGraph(GraphBuilder):
    """The one-step ONNX graph of a lowered graph, integer or float (see the module docstring)."""

    def __init__(self, graph: ir.Graph, form: str, stored: Stored | None = None):
        super().__init__()
        self.stored = stored
        self.graph, self.form = graph, form
        self.dtype = np.dtype(np.int64 if form == "integer" else np.float64)
        self.values: dict[str, str] = {}  # spc node -> ONNX value
        self.dtypes: dict[str, np.dtype] = {}  # spc node -> its value's dtype
        self.bounds: dict[str, float] = {}  # integer graph: spc node -> bound on |value|
        self.state_in: dict[str, onnx.ValueInfoProto] = {}
        self.state_out: dict[str, onnx.ValueInfoProto] = {}
        self.state: list[dict] = []  # the metadata of every state pair
        self.layer_outputs: list[onnx.ValueInfoProto] = []
        self.layers: list[dict] = []
        self.step: str | None = None
        self.cached: dict = {}
        self.body = self._build()

    # --- graph assembly -----------------------------------------------------------------------
    def _build(self) -> onnx.GraphProto:
        shape = self.graph.input.op.shape
        for node in self.graph.nodes:
            self.prefix = f"{node.name}/"
            if isinstance(node.op, ir.Input):
                self.values[node.name], self.dtypes[node.name] = "x", np.dtype(np.float64)
                continue
            self.dtypes[node.name] = self.dtype
            self.values[node.name] = self._operation(node)
        self.prefix = ""
        out = self.graph.outputs[0]
        self.op("Identity", [self.values[out]], "output")
        output = helper.make_tensor_value_info("output", elem(self.dtypes[out]), ["B", *self.graph.shapes[out]])
        if self.step is not None:
            self.state.append({"in": self.step, "out": f"state_out.{STEP}", "shape": [], "dtype": "int64", "initial": 0})
            self.state_in[STEP] = helper.make_tensor_value_info(self.step, TensorProto.INT64, [])
            self.emit_state(STEP, self.op("Add", [self.step, self.const(1, np.int64)]), [])
        keys = list(self.state_in)  # Scan pairs state inputs and outputs by position
        x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["B", *shape])
        return helper.make_graph(
            self.nodes,
            f"spc_{self.form}_step",
            [self.state_in[k] for k in keys] + [x],
            [self.state_out[k] for k in keys] + [output] + self.layer_outputs,
            self.initializers,
            doc_string=self.doc(),
        )

    def doc(self) -> str:
        pairs = ", ".join(f"{s['in']} -> {s['out']}" for s in self.state) or "none"
        return (
            f"spc {self.form} form, one time step (opset {OPSET}). Input x: float64 [B, {', '.join(map(str, self.graph.input.op.shape))}]. "
            f"State pairs (feed each *_out back as the *_in of the next step; all start at zero): {pairs}. "
            "Outputs: output, and per neuron layer membrane.<layer> (before any reset) and spikes.<layer>."
        )

    def metadata(self) -> dict[str, str]:
        return {
            "spc.form": self.form,
            "spc.opset": str(OPSET),
            "spc.input": json.dumps({"name": "x", "dtype": "float64", "shape": ["B", *self.graph.input.op.shape]}),
            "spc.output": self.graph.outputs[0],
            "spc.layers": json.dumps(self.layers),
            "spc.state": json.dumps(self.state),
            "spc.time_steps": json.dumps(self.graph.time_steps),
        }

    def state_input(self, key: str, dims: list) -> str:
        name = f"state_in.{key}"
        self.state_in[key] = helper.make_tensor_value_info(name, elem(self.dtype), dims)
        self.state.append({"in": name, "out": f"state_out.{key}", "shape": dims, "dtype": str(self.dtype), "initial": 0})
        return name

    def emit_state(self, key: str, value: str, dims: list) -> None:
        name = f"state_out.{key}"
        self.op("Identity", [value], name)
        self.state_out[key] = helper.make_tensor_value_info(name, self.state_in[key].type.tensor_type.elem_type, dims)

    def layer_output(self, name: str, value: str, shape) -> None:
        self.op("Identity", [value], name)
        self.layer_outputs.append(helper.make_tensor_value_info(name, elem(self.dtype), ["B", *shape]))

    def step_counter(self) -> str:
        self.step = self.step or f"state_in.{STEP}"
        return self.step

    def _operation(self, node: ir.Node) -> str:
        op = node.op
        handler = getattr(self, f"op_{type(op).__name__}", None)
        if isinstance(op, ir.NeuronOp) and not isinstance(op, Neuron):
            raise refusal(node.name, f"is a parallel-form {op.kind} neuron, not lowered to stepwise cells", "emit the compiled model's stepwise or integer graph (spc compile lowers every neuron)")
        if handler is None or isinstance(op, ONLY[self.form]):
            raise refusal(node.name, f"is a {op.kind}, which the {self.form} ONNX graph has no exact form for", "compile the model with spc compile, which folds batch norms and turns average pooling into integer sums, or run this layer in spc's simulator (spc run)")
        return handler(node, *[self.values[i] for i in node.inputs])

    # --- helpers ------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.shapes[name]

    def sat(self, value: str, width: int) -> str:
        limit = 2 ** (width - 1) - 1
        return self.op("Clip", [value, self.const(-limit, np.int64), self.const(limit, np.int64)])

    def floor_shift(self, value: str, n: np.ndarray) -> str:
        """value >> n (floor), n >= 0 per channel or shared, as Div(x − Mod(x, 2^n), 2^n)."""
        if not np.any(n):
            return value
        return self.floor_divide(value, self.const(np.left_shift(1, np.asarray(n, np.int64)), np.int64))

    def floor_divide(self, value: str, power: str) -> str:
        """value >> n for the power of two `power` = 2^n (a value of the graph): exact, since
        Mod with fmod=0 takes the divisor's sign and leaves a multiple of it to divide."""
        return self.op("Div", [self.op("Sub", [value, self.op("Mod", [value, power], fmod=0)]), power])

    def align(self, x: str, shift: int) -> str:
        """x << shift, or x >> −shift (floor): an integer cell's input alignment."""
        if shift > 0:
            return self.op("Mul", [x, self.const(2**shift, np.int64)])
        return self.floor_shift(x, np.array(-shift))

    def cast(self, value: str, dtype) -> str:
        return self.op("Cast", [value], to=elem(dtype))

    def weight(self, array: np.ndarray, dtype) -> str:
        """A synapse's weight array in `dtype`: an initializer in the array's own dtype — external
        data, the bytes the compiled directory already holds, where `stored` knows them — then a Cast
        (exact: int8 mantissas or float32 weights to a wider float), folded once when a runtime
        loads the model."""
        place = self.stored.find(array) if self.stored is not None and array.nbytes >= EXTERNAL_BYTES else None
        if place is None:
            name = self.const(array, array.dtype)
        else:
            name = self.fresh("weight")
            tensor = onnx.TensorProto(name=name, data_type=elem(array.dtype), dims=array.shape, data_location=TensorProto.EXTERNAL)
            for key, value in (("location", place.path), ("offset", place.offset), ("length", place.nbytes)):
                tensor.external_data.add(key=key, value=str(value))
            self.initializers.append(tensor)
        return name if np.dtype(dtype) == array.dtype else self.cast(name, dtype)

    def batch_size(self) -> str:
        if "batch" not in self.cached:
            self.cached["batch"] = self.op("Squeeze", [self.op("Shape", ["x"], start=0, end=1)])
        return self.cached["batch"]

    # --- synapses -----------------------------------------------------------------------------
    def op_Quantize(self, node, x):
        limit = 2 ** (node.op.bits - 1)
        q = self.op("Round", [self.op("Div", [x, self.const(node.op.scale, np.float64)])])
        self.bounds[node.name] = limit
        return self.cast(self.op("Clip", [q, self.const(-limit, np.float64), self.const(limit - 1, np.float64)]), np.int64)

    def op_Dequantize(self, node, q):
        self.dtypes[node.name] = np.dtype(np.float64)
        return self.op("Mul", [self.cast(q, np.float64), self.const(ir.channel_view(node.op.scale, self.shape(node.name)), np.float64)])

    def gemm(self, node, x, weight: np.ndarray, product) -> str:
        """product(x, dtype) exactly: in float64 for the float graph; for the integer graph in the
        narrowest float whose mantissa holds every partial sum (module docstring), then int64."""
        if self.form == "float":
            y = product(x, np.float64)
        else:
            bound = float(np.abs(weight.astype(np.float64)).reshape(weight.shape[0], -1).sum(axis=1).max()) * self.bounds[node.inputs[0]]
            if bound >= FLOAT64_EXACT:
                raise refusal(node.name, f"can reach integer sums of {bound:.3g}, which float64 GEMM cannot hold exactly", "reduce the layer's fan-in or weight bits, or run it in spc's simulator")
            dtype = np.float32 if bound < FLOAT32_EXACT else np.float64
            y = self.cast(product(self.cast(x, dtype), dtype), np.int64)
            self.bounds[node.name] = bound + (0 if node.op.bias is None else float(np.abs(node.op.bias).max()))
        if node.op.bias is None:
            return y
        return self.op("Add", [y, self.const(ir.channel_view(node.op.bias, self.shape(node.name)), self.dtype)])

    def op_Linear(self, node, x):
        w = node.op.weight
        return self.gemm(node, x, w, lambda v, dtype: self.op("MatMul", [v, self.op("Transpose", [self.weight(w, dtype)])]))

    def gather_windows(self, x: str, index: np.ndarray, padding, fill, dtype) -> str:
        """[B, groups, positions, window] from x [B, C, *spatial] (padded with `fill`)."""
        if any(padding):
            pads = [0, 0, *padding, 0, 0, *padding]
            x = self.op("Pad", [x, self.const(pads, np.int64), self.const(fill, dtype)], mode="constant")
        flat = self.op("Reshape", [x, self.const([0, -1], np.int64)])
        return self.op("Gather", [flat, self.const(index, np.int64)], axis=1)

    def op_Conv(self, node, x):
        op, out_shape = node.op, self.shape(node.name)
        w = op.weight
        out_ch = w.shape[0]
        index = windows(self.shape(node.inputs[0]), op.groups, w.shape[2:], op.stride, op.padding, op.dilation)

        def product(v, dtype):
            grouped = self.op("Reshape", [self.weight(w, dtype), self.const([op.groups, out_ch // op.groups, -1], np.int64)])
            rows = self.op("Transpose", [grouped], perm=[0, 2, 1])  # [g, per_group · kernel, out/g]
            y = self.op("MatMul", [self.gather_windows(v, index, op.padding, 0, dtype), rows])
            y = self.op("Transpose", [y], perm=[0, 1, 3, 2])
            return self.op("Reshape", [y, self.const([0, *out_shape], np.int64)])

        return self.gemm(node, x, w, product)

    def pool(self, node, x, reduce: str, fill) -> str:
        op, shape = node.op, self.shape(node.inputs[0])
        dilation = getattr(op, "dilation", (1, 1))
        index = windows(shape, shape[0], op.kernel, op.stride, op.padding, dilation)
        win = self.gather_windows(x, index, op.padding, fill, self.dtype)
        y = self.op(reduce, [win, self.const([-1], np.int64)], keepdims=0)
        return self.op("Reshape", [y, self.const([0, *self.shape(node.name)], np.int64)])

    def op_SumPool2d(self, node, x):
        self.bounds[node.name] = self.bounds.get(node.inputs[0], 0) * node.op.kernel[0] * node.op.kernel[1]
        return self.pool(node, x, "ReduceSum", 0)

    def op_MaxPool2d(self, node, x):
        self.bounds[node.name] = self.bounds.get(node.inputs[0], 0)
        lowest = np.iinfo(np.int64).min if self.form == "integer" else -np.inf
        return self.pool(node, x, "ReduceMax", lowest)

    def op_AvgPool2d(self, node, x):
        op = node.op
        total = self.pool(node, x, "ReduceSum", 0)
        if op.count_include_pad or not any(op.padding):
            counts = np.array(op.kernel[0] * op.kernel[1], np.float64)
        else:  # the number of real (unpadded) inputs under each window
            shape = self.shape(node.inputs[0])
            inside = np.pad(np.ones(shape[1:]), [(p, p) for p in op.padding]).ravel()
            counts = inside[windows((1, *shape[1:]), 1, op.kernel, op.stride, op.padding, (1, 1))[0]].sum(axis=-1).reshape(self.shape(node.name)[1:])
        return self.op("Div", [total, self.const(counts, np.float64)])

    def op_Reshape(self, node, x):
        self.bounds[node.name] = self.bounds.get(node.inputs[0], 0)
        return self.op("Reshape", [x, self.const([0, *node.op.shape], np.int64)])

    def op_ScaleShift(self, node, x):
        op, shape = node.op, self.shape(node.name)
        self.bounds[node.name] = self.bounds.get(node.inputs[0], 0) * float(np.abs(op.scale).max()) + float(np.abs(op.shift).max())
        scaled = self.op("Mul", [x, self.channel_const(op.scale, shape)])
        return self.op("Add", [scaled, self.channel_const(op.shift, shape)])

    op_BatchNorm = op_ScaleShift  # float graphs only (ONLY): the quantizer writes integer ScaleShifts

    def op_Add(self, node, a, b):
        self.bounds[node.name] = sum(self.bounds.get(i, 0) for i in node.inputs)
        return self.op("Add", [a, b])

    def op_Mul(self, node, a, b):
        self.bounds[node.name] = math.prod(self.bounds.get(i, 0) for i in node.inputs)
        return self.op("Mul", [a, b])

    # --- neurons ------------------------------------------------------------------------------
    def op_Neuron(self, node, x):
        neuron, name, shape = node.op, node.name, self.shape(node.name)
        fire, last = neuron.fire, len(neuron.cells) - 1
        resets = fire is not None and fire.reset != "none"
        for part in neuron.cells + ((fire,) if fire is not None else ()):
            if not isinstance(part, CELLS[self.form] + (FIRE[self.form],)):
                raise refusal(name, f"has a {part.kind} cell, which the {self.form} ONNX graph has no form for", "run the model in spc's simulator (spc run), or recompile it (an integer graph holds only integer cells)")
        for i, cell in enumerate(neuron.cells):
            key = f"{name}.{i}"
            if isinstance(cell, LEAKY):
                x = self.leaky(cell, self.state_input(key, ["B", *shape]), x, shape)
                if not (resets and i == last):
                    self.emit_state(key, x, ["B", *shape])
            else:  # cell_<kind> (the float and the integer cell share the method)
                x = getattr(self, f"cell_{type(cell).__name__.removeprefix('Q')}")(key, cell, x, shape)
        if fire is None:
            output = x
        else:
            fired = self.fire(fire, x, shape)
            if resets:
                self.emit_state(f"{name}.{last}", self.reset(fire, neuron.cells[-1], x, fired, shape), ["B", *shape])
            output = self.cast(fired, self.dtype)
            self.layer_output(f"spikes.{name}", output, shape)
        self.layer_output(f"membrane.{name}", x, shape)
        self.layers.append({"name": name, "spiking": fire is not None})
        if self.form == "integer":
            self.bounds[name] = 1 if fire is not None else cell_bound(neuron.cells[-1])
        return output

    def channel_const(self, values: np.ndarray, shape) -> str:
        """A per-channel (or shared) parameter broadcasting over [B, *shape], in the form's dtype."""
        return self.const(ir.channel_view(values, shape), self.dtype)

    def leaky(self, cell, v: str, x: str, shape) -> str:
        if self.form == "float":
            decayed = self.op("Mul", [self.channel_const(cell.decay, shape), v])
            return self.op("Add", [decayed, self.op("Mul", [self.channel_const(cell.gain, shape), x])])
        return self.sat(self.op("Add", [self.decay(cell, v, shape), self.align(x, cell.shift)]), cell.width)

    def decay(self, cell: QLeaky, v: str, shape) -> str:
        amount = cell.decay.astype(np.int64)
        if cell.mode == "int12":  # Div on integers truncates toward zero: trunc0
            product = self.op("Mul", [v, self.const(ir.channel_view(4096 - amount, shape), np.int64)])
            return self.op("Div", [product, self.const(4096, np.int64)])
        leak = self.floor_shift(v, ir.channel_view(np.maximum(amount, 0), shape))
        if np.any(amount == NO_LEAK):
            leak = self.op("Mul", [leak, self.const(ir.channel_view(amount != NO_LEAK, shape), np.int64)])
        return self.op("Sub", [v, leak])

    def fir(self, key: str, cell, x: str, shape) -> str:
        """Σ_i coefficient_i · x[t − lag_i] + bias over the cell's last `reach` inputs (its state),
        unsaturated (a QGated's gate input z is not saturated)."""
        k = cell.order
        ones = [1] * (1 + len(shape))  # broadcast a per-tap value over [k, B, *shape]
        if not isinstance(cell, TimeIndexedCell):  # a delay line, or a gated cell's gate kernel (dilation 1)
            lags = [(k - 1 - i) * cell.dilation for i in range(k)]
            taps = cell.taps.T.reshape((k, 1) + ir.channel_view(cell.taps[:, 0], shape).shape)
            coefficients, bias = self.const(taps, self.dtype), self.channel_const(cell.bias, shape)
        else:  # time-indexed: row t of the weights (Gather fails beyond T: the graph is defined for t < T)
            lags, step = [k - 1 - i for i in range(k)], self.step_counter()
            row = self.op("Gather", [self.const(cell.weights, self.dtype), step], axis=0)
            coefficients = self.op("Reshape", [row, self.const([k, *ones], np.int64)])
            bias = self.op("Gather", [self.const(cell.bias, self.dtype), step], axis=0)
        reach = max(lags)
        stacked = self.op("Unsqueeze", [x, self.const([0], np.int64)])
        if reach:
            dims = [reach, "B", *shape]
            stacked = self.op("Concat", [self.state_input(key, dims), stacked], axis=0)
            self.emit_state(key, self.op("Slice", [stacked, self.const([1], np.int64), self.const([reach + 1], np.int64), self.const([0], np.int64)]), dims)
        picks = [reach - lag for lag in lags]
        if picks != list(range(reach + 1)):
            stacked = self.op("Gather", [stacked, self.const(picks, np.int64)], axis=0)
        total = self.op("ReduceSum", [self.op("Mul", [stacked, coefficients]), self.const([0], np.int64)], keepdims=0)
        return self.op("Add", [total, bias])

    def cell_DelayLine(self, key: str, cell, x: str, shape) -> str:
        y = self.fir(key, cell, x, shape)
        return y if self.form == "float" else self.sat(y, cell.width)

    cell_StepIndexed = cell_DelayLine

    def cell_Sigmoid(self, key: str, cell, x: str, shape) -> str:
        if self.form == "float":
            return self.op("Mul", [self.channel_const(cell.gain, shape), self.logistic(x)])
        return self.lookup(cell.lut, cell.lut_shift, x, shape)

    def cell_Gate(self, key: str, cell, x: str, shape) -> str:
        """Float: gain·x·(1 − b), b = [u < σ(x)] or σ(x). Integer: 0 where u24 < p, else the aligned
        input; or by expectation (xa · (2^24 − p)) >> 24 (docs/integer-spec.md)."""
        p = self.probability(cell, x, shape)
        if self.form == "float":
            closed = self.cast(self.op("Less", [self.draws(cell.seed, shape), p]), np.float64) if cell.stochastic else p
            driven = self.op("Mul", [self.channel_const(cell.gain, shape), x])
            return self.op("Mul", [driven, self.op("Sub", [self.const(1.0, np.float64), closed])])
        xa = self.sat(self.align(x, cell.shift), cell.width)
        if cell.stochastic:
            return self.op("Where", [self.op("Less", [self.draws(cell.seed, shape), p]), self.const(0, np.int64), xa])
        kept = self.op("Sub", [self.const(2**GATE_BITS, np.int64), p])
        return self.floor_shift(self.op("Mul", [xa, kept]), np.array(GATE_BITS))

    def cell_Gated(self, key: str, cell, x: str, shape) -> str:
        """h = a·h + (1 − a)·x with a = σ(z) of the gate's kernel z (float); integer: the step's
        decay amount d or n read from the table at z's bin (docs/integer-spec.md)."""
        dims = ["B", *shape]
        z = self.fir(f"{key}.gate", cell, x, shape)
        h = self.state_input(key, dims)
        if self.form == "float":
            a = self.logistic(z)
            kept = self.op("Mul", [a, h])
            h = self.op("Add", [kept, self.op("Mul", [self.op("Sub", [self.const(1.0, np.float64), a]), x])])
        else:
            xa = self.sat(self.align(x, cell.shift), cell.width)
            if cell.mode == "int12":  # trunc0(h·(4096 − d), 12) + trunc0(xa·d, 12): Div truncates
                d, unit = self.lookup(cell.lut, cell.lut_shift, z, shape), self.const(4096, np.int64)
                kept = self.op("Div", [self.op("Mul", [h, self.op("Sub", [unit, d])]), unit])
                h = self.op("Add", [kept, self.op("Div", [self.op("Mul", [xa, d]), unit])])
            else:  # h − (h >> n) + (xa >> n), with 2^n gathered from a table of powers
                power = self.lookup(np.left_shift(1, cell.lut.astype(np.int64)), cell.lut_shift, z, shape)
                h = self.op("Add", [self.op("Sub", [h, self.floor_divide(h, power)]), self.floor_divide(xa, power)])
            h = self.sat(h, cell.width)
        self.emit_state(key, h, dims)
        return h

    def cell_Resonator(self, key: str, cell, x: str, shape) -> str:
        """u' = re·u − im·r + gain·x, r' = im·u + re·r from the previous u, r; integer: each rotation
        trunc0(·, 16) (Div truncates), then the aligned input, then sat_W (docs/integer-spec.md)."""
        dims = ["B", *shape]
        u, r = self.state_input(key, dims), self.state_input(f"{key}.r", dims)
        floats = self.form == "float"
        re, im = (self.channel_const(c, shape) for c in ((cell.decay_re, cell.decay_im) if floats else (cell.re, cell.im)))
        u_rotated = self.op("Sub", [self.op("Mul", [re, u]), self.op("Mul", [im, r])])
        r_rotated = self.op("Add", [self.op("Mul", [im, u]), self.op("Mul", [re, r])])
        if floats:
            u_next, r_next = self.op("Add", [u_rotated, self.op("Mul", [self.channel_const(cell.gain, shape), x])]), r_rotated
        else:
            unit = self.const(2**RESONATOR_BITS, np.int64)
            u_next = self.sat(self.op("Add", [self.op("Div", [u_rotated, unit]), self.align(x, cell.shift)]), cell.width)
            r_next = self.sat(self.op("Div", [r_rotated, unit]), cell.width)
        self.emit_state(key, u_next, dims)
        self.emit_state(f"{key}.r", r_next, dims)
        return u_next

    def cell_Rescale(self, key: str, cell, x: str, shape) -> str:
        """sat_W((x·m + 2^(n−1)) >> n), the floor shift per channel (docs/integer-spec.md)."""
        n = cell.shift.astype(np.int64)
        half = np.where(n > 0, np.left_shift(1, np.maximum(n - 1, 0)), 0)
        product = self.op("Mul", [x, self.channel_const(cell.multiplier, shape)])
        rounded = self.op("Add", [product, self.channel_const(half, shape)])
        return self.sat(self.floor_shift(rounded, ir.channel_view(n, shape)), cell.width)

    def logistic(self, x: str) -> str:
        """σ(x) in float64, as 1 / (1 + exp(−x)) (exp overflows to inf for x < −709: σ = 0)."""
        one = self.const(1.0, np.float64)
        return self.op("Div", [one, self.op("Add", [one, self.op("Exp", [self.op("Neg", [x])])])])

    def lookup(self, table: np.ndarray, lut_shift: int, z: str, shape) -> str:
        """table[c, clip((z >> lut_shift) + 512, 0, 1023)], c each element's channel (docs/integer-spec.md)."""
        bins = self.op("Add", [self.floor_shift(z, np.array(lut_shift)), self.const(LUT_SIZE // 2, np.int64)])
        bins = self.op("Clip", [bins, self.const(0, np.int64), self.const(LUT_SIZE - 1, np.int64)])
        if table.shape[0] > 1:  # row c of the table for channel c, in the flattened table
            bins = self.op("Add", [bins, self.const(ir.channel_view(np.arange(table.shape[0]) * LUT_SIZE, shape), np.int64)])
        return self.op("Gather", [self.const(table.reshape(-1), np.int64), bins], axis=0)

    def probability(self, rule, z: str, shape) -> str:
        """σ(z) of a stochastic rule or gate: float64, or its table's 24-bit integers."""
        return self.logistic(z) if self.form == "float" else self.lookup(rule.lut, rule.lut_shift, z, shape)

    def fire(self, fire, h: str, shape) -> str:
        """The boolean spikes of membrane h."""
        threshold = self.channel_const(fire.threshold, shape)
        if not fire.stochastic:
            return self.op("Greater" if fire.strict else "GreaterOrEqual", [h, threshold])
        return self.op("Less", [self.draws(fire.seed, shape), self.probability(fire, self.op("Sub", [h, threshold]), shape)])

    def reset(self, fire, cell, v: str, fired: str, shape) -> str:
        if fire.reset == "zero":
            return self.op("Where", [fired, self.const(0, self.dtype), v])
        v = self.op("Sub", [v, self.op("Mul", [self.cast(fired, self.dtype), self.channel_const(fire.threshold, shape)])])
        return v if self.form == "float" else self.sat(v, cell.width)

    # --- counter-based random numbers (spc.compiler.rng) ----------------------------------------
    def draws(self, seed: int, shape) -> str:
        """The uniforms of `seed` at this step for every element of [B, *shape]: the 24-bit integers
        u24 (int64) in the integer graph, u24 · 2^−24 (float64) in the float graph."""
        bits = self.hash24(seed, shape)
        if self.form == "integer":
            return self.cast(bits, np.int64)
        return self.op("Mul", [self.cast(bits, np.float64), self.const(2.0**-24, np.float64)])

    def hash24(self, seed: int, shape) -> str:
        """uint32 (mix(mix(mix(seed) ^ t) ^ index)) >> 8 for every element of [B, *shape]."""
        h = self.mix(self.const(seed % 2**32, np.uint32))
        h = self.mix(self.op("BitwiseXor", [h, self.cast(self.step_counter(), np.uint32)]))
        h = self.mix(self.op("BitwiseXor", [h, self.flat_index(shape)]))
        return self.op("BitShift", [h, self.const(8, np.uint32)], direction="RIGHT")

    def mix(self, x: str) -> str:
        """The lowbias32 finaliser, modulo 2^32."""
        for shift, factor in ((16, 0x7FEB352D), (15, 0x846CA68B), (16, None)):
            x = self.op("BitwiseXor", [x, self.op("BitShift", [x, self.const(shift, np.uint32)], direction="RIGHT")])
            if factor is not None:
                x = self.op("Mul", [x, self.const(factor, np.uint32)])
        return x

    def flat_index(self, shape) -> str:
        """Each element's flat position in the per-step tensor [B, *shape], as uint32."""
        if shape not in self.cached:
            size = math.prod(shape)
            batch = self.op("Range", [self.const(0, np.int64), self.batch_size(), self.const(1, np.int64)])
            first = self.op("Mul", [self.op("Reshape", [batch, self.const([-1] + [1] * len(shape), np.int64)]), self.const(size, np.int64)])
            index = self.op("Add", [first, self.const(np.arange(size).reshape(shape), np.int64)])
            self.cached[shape] = self.cast(index, np.uint32)
        return self.cached[shape]


def cell_bound(cell) -> int:
    """Bound on |output| of an integer cell: its table's largest entry (QSigmoid), else sat_W's limit."""
    return int(np.abs(cell.lut).max()) if isinstance(cell, QSigmoid) else 2 ** (cell.width - 1) - 1


def sequence_graph(step: StepGraph) -> onnx.GraphProto:
    """The step graph as the body of one Scan over x [T, B, *shape], state starting at zero."""
    outer = GraphBuilder()
    batch = outer.op("Shape", ["x"], start=1, end=2)
    initial = []
    for state in step.state:
        dtype = np.dtype(state["dtype"])
        if not state["shape"]:  # the step counter
            initial.append(outer.const(0, dtype))
            continue
        b = state["shape"].index("B")
        dims = outer.op("Concat", [outer.const(state["shape"][:b], np.int64), batch, outer.const(state["shape"][b + 1 :], np.int64)], axis=0)
        initial.append(outer.op("ConstantOfShape", [dims], value=numpy_helper.from_array(np.zeros(1, dtype))))
    body = step.body
    finals = [outer.fresh("final") for _ in step.state]
    per_step = [o.name for o in body.output[len(step.state) :]]
    outer.nodes.append(helper.make_node("Scan", initial + ["x"], finals + per_step, name="scan", body=body, num_scan_inputs=1))
    outputs = []
    for info in body.output[len(step.state) :]:
        dims = [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]
        outputs.append(helper.make_tensor_value_info(info.name, info.type.tensor_type.elem_type, ["T", *dims]))
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["T", "B", *step.graph.input.op.shape])
    doc = f"spc {step.form} form, whole sequence: one Scan over the time axis of x [T, B, ...], with state starting at zero; outputs are stacked over time. The Scan body is the one-step graph: {body.doc_string}"
    return helper.make_graph(outer.nodes, f"spc_{step.form}_sequence", [x], outputs, outer.initializers, doc_string=doc)


def _model(graph: onnx.GraphProto, metadata: dict[str, str]) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets), producer_name="spc", producer_version=__import__("spc").__version__, doc_string=graph.doc_string)
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(_without_external_data(model), full_check=True)
    return model


def _without_external_data(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model to check, its external initializers (whose files the checker would look
    for relative to the working directory) declared as inputs of the main graph instead: the
    subgraphs see them as outer-scope values, and shape inference sees their types and shapes."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graphs = [probe.graph]
    for graph in graphs:
        graphs += [a.g for node in graph.node for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
        kept = [t for t in graph.initializer if t.data_location != TensorProto.EXTERNAL]
        for t in graph.initializer:
            if t.data_location == TensorProto.EXTERNAL:
                probe.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return probe


def onnx_models(graph: ir.Graph, form: str, stored: Stored | None = None) -> dict[str, onnx.ModelProto]:
    """The one-step and the sequence model of a lowered graph, by kind ('step', 'seq'); with
    `stored`, their weights refer to the compiled directory's arrays (see `StepGraph.weight`)."""
    step = StepGraph(graph, form, stored)
    return {
        "step": _model(step.body, {**step.metadata(), "spc.graph": "step"}),
        "seq": _model(sequence_graph(step), {**step.metadata(), "spc.graph": "seq"}),
    }


def emit_onnx(compiled: Compiled, directory: Path, stored: Stored | None = None) -> list[Path]:
    """Write the ONNX models of the integer graph (when compiled) and of the float stepwise graph
    into `directory`; return their paths. Nothing is written when a layer cannot be expressed. With
    `stored` (emitting into the compiled directory), synapse weights are external data in the
    forms' weights.npz files, which the models then need beside them."""
    forms = ([("integer", compiled.integer)] if compiled.integer is not None else []) + [("float", compiled.stepwise)]
    models = {(form, kind): model for form, graph in forms for kind, model in onnx_models(graph, form, stored).items()}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, model in models.items():
        paths.append(directory / FILES[key])
        onnx.save(model, paths[-1])
    return paths
