"""spc's graph IR: named nodes in topological order, each holding one small frozen operation.

Tensors flowing along edges are time-major `[T, B, *shape]`; the IR only records the per-step
feature shape `shape` (channels first for convolutional tensors: `(C, H, W)` or `(C, L)`).
Every synaptic operation is applied to each time step independently; only neuron operations
(`NeuronOp`) look across time.

Operations are frozen dataclasses holding numpy arrays and plain values, so a graph serialises to
`graph.json` + `weights.npz` generically (see `serialize.py`) and passes build new graphs instead of
mutating old ones. Each operation checks its own parameters and computes its output shape.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from spc.errors import SpcError

RECORDS: dict[str, type] = {}
"""Every IR record type by its kind (class name), for deserialisation."""


class Record:
    """Base of every serialisable IR type (operations and neuron cells).

    A record's `kind` (its name in graph.json) is its class name unless the class says otherwise
    (`class SlidingPSNOp(NeuronOp, kind="SlidingPSN")`).
    """

    kind: str = "Record"

    def __init_subclass__(cls, kind: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.kind = kind or cls.__name__
        RECORDS[cls.kind] = cls

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


class Op(Record):
    """A graph operation. `arity` inputs; `output_shape` validates them and returns the output's."""

    arity = 1

    def output_shape(self, name: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        raise NotImplementedError


def layer_error(name: str, problem: str, fix: str = "") -> SpcError:
    return SpcError(f"layer '{name}'", problem, fix)


def channel_params(name: str, what: str, values: np.ndarray, shape: tuple[int, ...]) -> None:
    """Check a per-channel parameter: one value per channel (shape[0]) or one shared value."""
    channels = shape[0] if shape else 1
    if values.ndim != 1 or values.shape[0] not in (1, channels):
        raise layer_error(name, f"{what} has shape {values.shape}; expected ({channels},) or (1,)")


def channel_view(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a per-channel vector so it broadcasts over a `[..., *shape]` tensor."""
    return values.reshape(values.shape[:-1] + (values.shape[-1],) + (1,) * (len(shape) - 1))


def finite(name: str, what: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise layer_error(name, f"{what} contains NaN or Inf", "retrain or fix the checkpoint; spc cannot compile non-finite parameters")


@dataclass(frozen=True, eq=False)
class Input(Op):
    shape: tuple[int, ...]
    arity = 0

    def output_shape(self, name, shapes):
        if not self.shape or any(d < 1 for d in self.shape):
            raise layer_error(name, f"input feature shape {self.shape} is empty or has a zero dimension")
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class Linear(Op):
    """`y = W x + b` on the last (only) feature dimension."""

    weight: np.ndarray  # [out, in]
    bias: np.ndarray | None  # [out]

    def output_shape(self, name, shapes):
        (shape,) = shapes
        if self.weight.ndim != 2:
            raise layer_error(name, f"Linear weight has shape {self.weight.shape}; expected [out, in]")
        if shape != (self.weight.shape[1],):
            raise layer_error(name, f"Linear expects {self.weight.shape[1]} input features per step, got shape {shape}")
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            raise layer_error(name, f"Linear bias has shape {self.bias.shape}; expected ({self.weight.shape[0]},)")
        finite(name, "weight", self.weight)
        return (self.weight.shape[0],)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """1-d or 2-d convolution (by the weight's rank) with zero padding, as torch.nn.ConvNd."""

    weight: np.ndarray  # [out, in/groups, *kernel]
    bias: np.ndarray | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def output_shape(self, name, shapes):
        (shape,) = shapes
        dims = self.weight.ndim - 2
        if dims not in (1, 2) or len(shape) != dims + 1:
            raise layer_error(name, f"Conv with weight {self.weight.shape} cannot take per-step input of shape {shape}")
        out_ch, in_per_group = self.weight.shape[:2]
        if shape[0] != in_per_group * self.groups or out_ch % self.groups:
            raise layer_error(name, f"Conv expects {in_per_group * self.groups} input channels, got {shape[0]}")
        if self.bias is not None and self.bias.shape != (out_ch,):
            raise layer_error(name, f"Conv bias has shape {self.bias.shape}; expected ({out_ch},)")
        finite(name, "weight", self.weight)
        spatial = tuple(
            _conv_out(shape[1 + i], self.weight.shape[2 + i], self.stride[i], self.padding[i], self.dilation[i])
            for i in range(dims)
        )
        if min(spatial) < 1:
            raise layer_error(name, f"Conv output would be empty for input {shape}")
        return (out_ch,) + spatial


@dataclass(frozen=True, eq=False)
class AvgPool2d(Op):
    """Average pooling with zero padding (`count_include_pad` as in torch), floor output size."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    count_include_pad: bool = True

    def output_shape(self, name, shapes):
        (shape,) = shapes
        if len(shape) != 3:
            raise layer_error(name, f"AvgPool2d needs a [C, H, W] input per step, got {shape}")
        spatial = tuple(_conv_out(shape[1 + i], self.kernel[i], self.stride[i], self.padding[i], 1) for i in range(2))
        if min(spatial) < 1:
            raise layer_error(name, f"AvgPool2d output would be empty for input {shape}")
        return (shape[0],) + spatial


@dataclass(frozen=True, eq=False)
class SumPool2d(Op):
    """Integer average pooling: the window sum, with the 1/area left to the scale (integer graphs)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def output_shape(self, name, shapes):
        return AvgPool2d(self.kernel, self.stride, self.padding).output_shape(name, shapes)


@dataclass(frozen=True, eq=False)
class MaxPool2d(Op):
    """Max pooling with -inf padding, floor output size."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)

    def output_shape(self, name, shapes):
        (shape,) = shapes
        if len(shape) != 3:
            raise layer_error(name, f"MaxPool2d needs a [C, H, W] input per step, got {shape}")
        spatial = tuple(
            _conv_out(shape[1 + i], self.kernel[i], self.stride[i], self.padding[i], self.dilation[i]) for i in range(2)
        )
        if min(spatial) < 1:
            raise layer_error(name, f"MaxPool2d output would be empty for input {shape}")
        return (shape[0],) + spatial


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Per-step reshape (flatten), row-major as torch."""

    shape: tuple[int, ...]

    def output_shape(self, name, shapes):
        (shape,) = shapes
        if math.prod(shape) != math.prod(self.shape):
            raise layer_error(name, f"cannot reshape per-step shape {shape} to {self.shape}")
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class ScaleShift(Op):
    """Elementwise `y = scale * x + shift`, one value per channel or one shared ([C] or [1]): a
    model's `1 - x`, `-x`, `x / 2` or `x + 1` (integer graphs: docs/integer-spec.md)."""

    scale: np.ndarray  # [C] or [1]
    shift: np.ndarray  # [C] or [1]

    def output_shape(self, name, shapes):
        (shape,) = shapes
        channel_params(name, "scale", self.scale, shape)
        channel_params(name, "shift", self.shift, shape)
        finite(name, "scale", self.scale)
        finite(name, "shift", self.shift)
        return shape


@dataclass(frozen=True, eq=False)
class BatchNorm(ScaleShift):
    """Inference-mode batch norm as a per-channel affine map `y = scale * x + shift` (folded into
    the Linear or Conv before it where there is one)."""

    def output_shape(self, name, shapes):
        (shape,) = shapes
        if self.scale.shape != (shape[0],) or self.shift.shape != (shape[0],):
            raise layer_error(name, f"BatchNorm has {self.scale.shape[0]} channels, input has shape {shape}")
        return super().output_shape(name, shapes)


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """Float input -> integers: `clip(rint(x / scale), -2^(bits-1), 2^(bits-1) - 1)`, or with
    `signed=False` `clip(rint(x / scale), 0, 2^bits - 1)` (event counts) (integer graphs)."""

    scale: float
    bits: int
    signed: bool = True

    @property
    def limits(self) -> tuple[int, int]:
        """The smallest and largest integer it produces."""
        return (-(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1) if self.signed else (0, 2**self.bits - 1)

    def output_shape(self, name, shapes):
        if not self.scale > 0 or not 2 <= self.bits <= 32:
            raise layer_error(name, f"Quantize needs a positive scale and 2..32 bits, got {self.scale}, {self.bits}")
        return shapes[0]


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """Integers -> float: `q * scale`, scale per channel or shared (a readout's output)."""

    scale: np.ndarray  # [C] or [1]

    def output_shape(self, name, shapes):
        channel_params(name, "scale", self.scale, shapes[0])
        return shapes[0]


class Elementwise(Op):
    """Two tensors of the same shape combined element by element."""

    arity = 2

    def output_shape(self, name, shapes):
        if shapes[0] != shapes[1]:
            raise layer_error(name, f"{self.kind} of tensors with different shapes {shapes[0]} and {shapes[1]}")
        return shapes[0]


@dataclass(frozen=True, eq=False)
class Add(Elementwise):
    """Elementwise sum of two tensors of the same shape (residual connections)."""


@dataclass(frozen=True, eq=False)
class Mul(Elementwise):
    """Elementwise product of two tensors of the same shape (SEW-ResNet's AND and IAND of spikes)."""


class NeuronOp(Op):
    """A layer of neurons: elementwise over features, stateful over time.

    `spiking` says whether the output is spikes (else the membrane is the output, as in a leaky
    readout). `time_steps` is the sequence length the neuron is defined for (None: any length).
    """

    spiking = True

    @property
    def time_steps(self) -> int | None:
        return None

    def output_shape(self, name, shapes):
        (shape,) = shapes
        self.check(name, shape)
        return shape

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        """Validate parameters against the per-step feature shape; raise SpcError if wrong."""


@dataclass(frozen=True)
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Graph:
    """A computation graph: `nodes` in topological order, the first one the `Input`."""

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    shapes: dict = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        shapes: dict[str, tuple[int, ...]] = {}
        if not self.nodes or not isinstance(self.nodes[0].op, Input):
            raise SpcError("graph", "the first node must be the Input")
        for node in self.nodes:
            if node.name in shapes:
                raise SpcError("graph", f"two nodes are named '{node.name}'")
            if len(node.inputs) != node.op.arity:
                raise layer_error(node.name, f"{node.op.kind} takes {node.op.arity} inputs, got {len(node.inputs)}")
            for src in node.inputs:
                if src not in shapes:
                    raise layer_error(node.name, f"input '{src}' is not defined before it")
            try:
                shapes[node.name] = node.op.output_shape(node.name, [shapes[s] for s in node.inputs])
            except (TypeError, ValueError, AttributeError, IndexError) as e:  # parameters of the wrong kind
                raise layer_error(node.name, f"has malformed parameters ({type(e).__name__}: {e})", "recompile the model") from None
        for out in self.outputs:
            if out not in shapes:
                raise SpcError("graph", f"output '{out}' is not a node")
        object.__setattr__(self, "shapes", shapes)

    @property
    def input(self) -> Node:
        return self.nodes[0]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def neurons(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, NeuronOp)]

    @property
    def time_steps(self) -> int | None:
        """The longest sequence every neuron is defined for (None: unbounded)."""
        limits = [n.op.time_steps for n in self.neurons() if n.op.time_steps is not None]
        return min(limits) if limits else None

    def with_ops(self, ops: dict[str, Op]) -> Graph:
        """A new graph with the operations of the named nodes replaced."""
        return Graph(tuple(Node(n.name, ops.get(n.name, n.op), n.inputs) for n in self.nodes), self.outputs)
