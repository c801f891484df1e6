"""torch.nn.Module -> spc Graph, by torch.fx tracing.

The model takes a time-major sequence x [T, B, ...]. Three kinds of layers appear in it:
- neurons (spc's, or SpikingJelly's in multi-step mode): they see the whole sequence;
- layers that act on the last dimension or elementwise (Linear, Dropout, Identity, Flatten of
  feature dimensions): applied to [T, B, ...] directly, they act on every step;
- per-sample layers (Conv, BatchNorm, pooling) inside a wrapper that folds time into the batch
  (`spc.PerStep`, SpikingJelly's `SeqToANNContainer` or its layers in step mode 'm').
Neurons and known layers are fx leaves; user-defined modules are traced through, so residual `+`
in a forward method becomes an `Add`. Anything else stops with an error naming the module's path.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import operator
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils import parametrize

from spc.compiler import ir
from spc.errors import SpcError
from spc.frontends.torch import neurons
from spc.frontends.torch.loading import USER_MODULE_PREFIX
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy
from spc.frontends.torch.perstep import PerStep

NEURONS: dict[type, Callable[[nn.Module], ParallelNeuronOp]] = {cls: cls.to_op for cls in neurons.TRAINABLE}
"""Neuron module type -> its IR operation. Other frontends (SpikingJelly) add their classes."""

SPC_NEURONS = "spc neurons (PSN, MaskedPSN, SlidingPSN, SPSN, PSU, IPSU, RPSU, MPEPSN, ChannelwisePSN, DSN, PRF, IF, LIF, LI)"
SUPPORTED = f"{SPC_NEURONS}, Linear, Conv1d, Conv2d, BatchNorm1d/2d, AvgPool1d/2d, MaxPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Dropout, Identity, and in forward(): + and − of tensors, * of tensors, arithmetic with numbers, torch.flatten"


def module_class(module: nn.Module) -> type:
    """The module's class, seeing through the subclass torch.nn.utils.parametrize generates (as
    `spc.quantization_aware` does). Other subclasses are not their base: SpikingJelly derives
    neurons with other dynamics from LIFNode."""
    cls = type(module)
    return cls.__bases__[0] if parametrize.is_parametrized(module) else cls


def class_name(cls: type) -> str:
    """A class as the user knows it: `torch.nn.LSTM`; a class of a model file spc loaded by path
    (under an internal module name) as `file.Class`."""
    module = cls.__module__
    if module.split(".")[0] == "torch":
        return f"torch.nn.{cls.__qualname__}"
    if module.startswith(USER_MODULE_PREFIX):
        file = getattr(sys.modules.get(module), "__file__", None)
        module = Path(file).stem if file else module
    return f"{module}.{cls.__qualname__}"


def describe(path: str, module) -> str:
    """How errors name a module: its path in the model and its class, e.g. `features.3 (torch.nn.LSTM)`."""
    return f"{path} ({class_name(module_class(module))})"


def _unsupported(path: str, module: nn.Module, why: str, fix: str = "") -> SpcError:
    return SpcError(describe(path, module), why, fix or f"spc supports {SUPPORTED}")


_NEURON_WORDS = re.compile(r"node|neuron|spik|lif|psn|leaky|synaptic|(^|[^a-z])if($|[^a-z])", re.I)
_NEURON_ATTRIBUTES = ("v_threshold", "threshold", "v_th", "vth", "v_reset", "tau", "decay", "beta")


def looks_like_neuron(module: nn.Module) -> bool:
    """A module that is probably a spiking neuron: by its class's name or its attributes."""
    return bool(_NEURON_WORDS.search(module_class(module).__name__)) or any(hasattr(module, a) for a in _NEURON_ATTRIBUTES)


def unknown_module(path: str, module: nn.Module, cause: str) -> SpcError:
    """The refusal of a module spc has no mapping for, by its path and class, with the cause; a
    neuron is told which neurons to use instead."""
    if looks_like_neuron(module):
        return SpcError(describe(path, module), f"a neuron class spc does not know ({cause})", f"replace it with neuron.PSN / spc.PSN, or another neuron spc compiles: {SPC_NEURONS} or SpikingJelly's IFNode, LIFNode, ParametricLIFNode and parallel neurons")
    return SpcError(describe(path, module), f"a module spc does not know ({cause})", f"build it from what spc supports: {SUPPORTED}")


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def flatten_shape(subject: str, shape: tuple[int, ...], start: int, end: int, lead: int) -> tuple[int, ...]:
    """Per-step shape after flattening dims start..end of a tensor [*lead dims, *shape]."""
    rank = lead + len(shape)
    start, end = start % rank, end % rank
    if start < lead:
        raise SpcError(subject, f"flattens the {'time and ' if lead == 2 else ''}batch dimension (start_dim={start})", "flatten only feature dimensions: nn.Flatten(2) on [T, B, ...], or nn.Flatten() inside spc.PerStep")
    a, b = start - lead, end - lead + 1
    return shape[:a] + (math.prod(shape[a:b]),) + shape[b:]


def _conv(path, m: nn.Conv1d | nn.Conv2d) -> ir.Conv:
    dims = m.weight.dim() - 2
    if m.padding_mode != "zeros":
        raise _unsupported(path, m, f"padding_mode='{m.padding_mode}' is not supported", "use zero padding")
    padding = m.padding
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * dims
        else:  # 'same'
            reach = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            if any(r % 2 for r in reach):
                raise _unsupported(path, m, "padding='same' with an even kernel pads asymmetrically", "give explicit padding")
            padding = tuple(r // 2 for r in reach)
    bias = to_numpy(m.bias) if m.bias is not None else None
    return ir.Conv(weight=to_numpy(m.weight), bias=bias, stride=tuple(m.stride), padding=tuple(padding), dilation=tuple(m.dilation), groups=m.groups)


def _batchnorm(path, m: nn.modules.batchnorm._BatchNorm) -> ir.BatchNorm:
    if m.running_mean is None:
        raise _unsupported(path, m, "has no running statistics (track_running_stats=False), so it normalises by batch statistics at inference", "train with track_running_stats=True")
    var = m.running_var.detach().double().cpu().numpy()
    mean = m.running_mean.detach().double().cpu().numpy()
    gamma = m.weight.detach().double().cpu().numpy() if m.weight is not None else np.ones_like(mean)
    beta = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + m.eps)
    return ir.BatchNorm(scale=scale, shift=beta - mean * scale)


_POOL_1D = (nn.AvgPool1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d)


def _lift(value, dims: int, fill: int) -> tuple[int, int]:
    """A pooling parameter as its 2-d pair: as given for a 2-d layer, (fill, v) for a 1-d one."""
    if dims == 2:
        return _pair(value)
    return (fill, value[0] if isinstance(value, (tuple, list)) else value)


def _pool_rank(path: str, m: nn.Module, shape: tuple[int, ...]) -> int:
    dims = 1 if isinstance(m, _POOL_1D) else 2
    if len(shape) != dims + 1:
        raise _unsupported(path, m, f"takes a [C, {'L' if dims == 1 else 'H, W'}] tensor per step, but receives shape {shape}")
    return dims


def _as_2d(path: str, shape: tuple[int, ...], pool: ir.Op) -> list[tuple[str, ir.Op]]:
    """A 1-d pooling of a per-step [C, L] tensor as the 2-d pooling (kernel 1 × k) of [C, 1, L]
    between two reshapes: one pooling operation in the IR serves both ranks."""
    channels, length = shape
    out = pool.output_shape(path, [(channels, 1, length)])
    return [(":as2d", ir.Reshape(shape=(channels, 1, length))), ("", pool), (":as1d", ir.Reshape(shape=(channels, out[2])))]


def _placed(path: str, shape: tuple[int, ...], dims: int, pool: ir.Op) -> list[tuple[str, ir.Op]]:
    return [("", pool)] if dims == 2 else _as_2d(path, shape, pool)


def _avgpool(path, m, shape) -> list[tuple[str, ir.Op]]:
    if m.ceil_mode or getattr(m, "divisor_override", None) is not None:
        raise _unsupported(path, m, "ceil_mode and divisor_override are not supported", f"use the default {type(m).__name__} options")
    dims = _pool_rank(path, m, shape)
    kernel = _lift(m.kernel_size, dims, 1)
    pool = ir.AvgPool2d(kernel=kernel, stride=_lift(m.stride, dims, 1) if m.stride else kernel, padding=_lift(m.padding, dims, 0), count_include_pad=m.count_include_pad)
    return _placed(path, shape, dims, pool)


def _maxpool(path, m, shape) -> list[tuple[str, ir.Op]]:
    if m.ceil_mode or m.return_indices:
        raise _unsupported(path, m, "ceil_mode and return_indices are not supported", f"use the default {type(m).__name__} options")
    dims = _pool_rank(path, m, shape)
    kernel = _lift(m.kernel_size, dims, 1)
    pool = ir.MaxPool2d(kernel=kernel, stride=_lift(m.stride, dims, 1) if m.stride else kernel, padding=_lift(m.padding, dims, 0), dilation=_lift(m.dilation, dims, 1))
    return _placed(path, shape, dims, pool)


ADAPTIVE_MATRIX_LIMIT = 2**26
"""The most entries of an adaptive pooling's matrix (512 MiB in float64); SpikingJelly's VGG head
on CIFAR's 1×1 map needs 12.8 million."""


def _adaptive_windows(size: int, out: int) -> np.ndarray:
    """[out, size]: row i averages inputs floor(i·size/out) .. ceil((i+1)·size/out) - 1, as torch's
    adaptive pooling does (windows of unequal sizes that may overlap). In float64, as spc's float
    forms compute: 1/3 in float32 would be off by 1e-8."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1 / (end - start)
    return matrix


def _adaptive_avgpool(path, m, shape) -> list[tuple[str, ir.Op]]:
    """An adaptive average pooling whose windows tile the input (each size a multiple of the output
    size, as a ResNet head's AdaptiveAvgPool2d(1)) is a plain average pooling. Any other (windows of
    unequal sizes, overlapping, or an output larger than the input, as SpikingJelly's VGG head
    (7, 7) on CIFAR's 1×1 map) is the linear map it is: each channel's flattened map times the
    windows' matrix, a Linear between two reshapes."""
    dims = _pool_rank(path, m, shape)
    channels, spatial = shape[0], shape[1:]
    wanted = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,) * dims
    sizes = tuple(s if w is None else w for s, w in zip(spatial, wanted))
    if all(s % w == 0 for s, w in zip(spatial, sizes)):
        kernel = _lift(tuple(s // w for s, w in zip(spatial, sizes)), dims, 1)
        return _placed(path, shape, dims, ir.AvgPool2d(kernel=kernel, stride=kernel, padding=(0, 0)))
    entries = channels**2 * math.prod(spatial) * math.prod(sizes)
    if entries > ADAPTIVE_MATRIX_LIMIT:
        raise _unsupported(path, m, f"pools {'×'.join(map(str, spatial))} to {'×'.join(map(str, sizes))} in windows of unequal sizes, which spc compiles as one matrix over all {channels} channels: {entries:,} entries, more than {ADAPTIVE_MATRIX_LIMIT:,}", "choose an input size whose spatial sizes are multiples of the output size (then it is an average pooling), or use an average pooling with explicit kernel and stride")
    windows = _adaptive_windows(spatial[0], sizes[0])
    for size, out in zip(spatial[1:], sizes[1:]):
        windows = np.kron(windows, _adaptive_windows(size, out))
    weight = np.kron(np.eye(channels), windows)  # channel by channel
    return [(":flat", ir.Reshape(shape=(math.prod(shape),))), ("", ir.Linear(weight=weight, bias=None)), (":unflat", ir.Reshape(shape=(channels,) + sizes))]


def _one(convert):
    """A converter that makes one op into one that returns the list of (name suffix, op)."""
    return lambda path, m, shape: [("", convert(path, m))]


_PER_SAMPLE = {
    nn.Conv1d: _one(_conv), nn.Conv2d: _one(_conv), nn.BatchNorm1d: _one(_batchnorm), nn.BatchNorm2d: _one(_batchnorm),
    nn.AvgPool1d: _avgpool, nn.AvgPool2d: _avgpool, nn.MaxPool1d: _maxpool, nn.MaxPool2d: _maxpool,
    nn.AdaptiveAvgPool1d: _adaptive_avgpool, nn.AdaptiveAvgPool2d: _adaptive_avgpool,
}
"""Layers that take one sample [N, C, ...]: they must run inside a per-step wrapper. Each converter
returns the layer's ops as (suffix of the node name, op) pairs; suffix "" is the layer itself."""

_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


def step_layer(path: str, m: nn.Module, shape: tuple[int, ...], lead: int, sj) -> list[tuple[str, ir.Op]]:
    """The IR ops of a per-step layer applied to [*lead dims, *shape], as (suffix of the node name,
    op) pairs (none when the layer vanishes at inference); `sj` adds SpikingJelly's layers."""
    if isinstance(m, _PASS_THROUGH + sj.PASS_THROUGH):
        return []
    if isinstance(m, nn.Linear):
        if len(shape) != 1:
            raise _unsupported(path, m, f"applies to the last dimension of a per-step tensor of shape {shape}", "flatten the features before the Linear layer")
        return [("", ir.Linear(weight=to_numpy(m.weight), bias=to_numpy(m.bias) if m.bias is not None else None))]
    if isinstance(m, nn.Flatten):
        return [("", ir.Reshape(shape=flatten_shape(describe(path, m), shape, m.start_dim, m.end_dim, lead)))]
    convert = next((fn for cls, fn in {**_PER_SAMPLE, **sj.LAYERS}.items() if isinstance(m, cls)), None)
    if convert is None:
        raise unknown_module(path, m, sj.why_unknown(m) or "spc has no mapping for its class")
    if lead == 2:
        raise _unsupported(path, m, f"is applied to the time-major sequence [T, B, {', '.join(map(str, shape))}] directly, so it would mix time steps or fail", "wrap per-sample layers in spc.PerStep(...) so they run on every step")
    return convert(path, m, shape)


class _NoSpikingJelly:
    """Stands in for `spc.frontends.spikingjelly` when the model has no SpikingJelly modules."""

    NEURONS: dict = {}
    FOLDING_WRAPPERS: tuple = ()
    PASS_THROUGH: tuple = ()
    LAYERS: dict = {}

    @staticmethod
    def is_leaf(module):
        return False

    @staticmethod
    def check_known(path, module):
        pass

    @staticmethod
    def folds_time(module):
        return False

    @staticmethod
    def check_step_mode(path, module):
        pass

    @staticmethod
    def why_unknown(module):
        return None

    @staticmethod
    def reset(model):
        pass


def spikingjelly_support(model: nn.Module):
    """SpikingJelly support when the model uses its modules (importing SpikingJelly only then)."""
    if any(type(m).__module__.startswith("spikingjelly") for m in model.modules()):
        from spc.frontends import spikingjelly

        return spikingjelly
    return _NoSpikingJelly


class _Tracer(torch.fx.Tracer):
    """Leaves: neurons, known layers, folding wrappers, torch's own modules and SpikingJelly's layers
    and neurons (converted, or reported by name). Containers and model blocks, the user's or a
    library's (SpikingJelly's BasicBlock), are traced through, so their `+` and `*` become ops."""

    def __init__(self, leaf_types: tuple[type, ...], sj):
        super().__init__()
        self.leaf_types, self.sj = leaf_types, sj
        self.failed_in: tuple[str, nn.Module] | None = None  # the innermost module whose tracing raised

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = (self.path_of_module(m), m)
            raise

    def is_leaf_module(self, m, qualname):
        if isinstance(m, self.leaf_types):
            return True
        if type(m) in (nn.Sequential, nn.ModuleList, nn.ModuleDict):
            return False
        return type(m).__module__.startswith("torch.nn") or self.sj.is_leaf(m)


def _shape(node: torch.fx.Node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


class _Builder:
    """Accumulates IR nodes with unique names while walking the fx graph."""

    def __init__(self, model: nn.Module):
        self.model = model  # the traced model: errors name the modules fx traced through
        self.nodes: list[ir.Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    def add(self, name: str, op: ir.Op, inputs: tuple[str, ...]) -> str:
        base, i = name, 1
        while name in self.shapes:
            name, i = f"{base}_{i}", i + 1
        self.nodes.append(ir.Node(name, op, inputs))
        self.shapes[name] = op.output_shape(name, [self.shapes[s] for s in inputs])
        return name


def _check_tensors(model: nn.Module) -> None:
    """spc traces float32 models on the CPU: say so by the parameter's name, before tracing fails
    in a way that looks like a wrong input shape."""
    for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
        if tensor.device.type != "cpu":
            raise SpcError(f"parameter '{name}'", f"is on the {tensor.device} device; spc reads models on the CPU", "return model.cpu() from the factory (Python: pass model.cpu())")
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            raise SpcError(f"parameter '{name}'", f"has dtype {tensor.dtype}; spc reads float32 models", "return model.float() from the factory (Python: pass model.float())")


def from_torch(model: nn.Module, example: torch.Tensor) -> ir.Graph:
    """Trace `model` (in eval mode) on the time-major example input [T, B, ...] into a parallel-form graph."""
    if example.dim() < 3:
        raise SpcError("input shape", f"{tuple(example.shape)} has rank {example.dim()}; spc models take time-major [T, B, features...]", "pass --input-shape T,B,F (or T,B,C,H,W)")
    _check_tensors(model)
    sj = spikingjelly_support(model)
    neuron_types = {**NEURONS, **sj.NEURONS}
    wrappers = (PerStep,) + sj.FOLDING_WRAPPERS
    tracer = _Tracer(tuple(neuron_types) + wrappers + (nn.Linear, nn.Flatten) + _PASS_THROUGH + sj.PASS_THROUGH, sj)
    was_training = model.training
    model.eval()
    try:
        try:
            fx_graph = tracer.trace(model)
        except Exception as e:  # fx raises many types for untraceable Python
            cause = f"its forward() cannot be traced by torch.fx: {type(e).__name__}: {e}"
            if tracer.failed_in is not None and (looks_like_neuron(tracer.failed_in[1]) or not isinstance(tracer.failed_in[1], (nn.Sequential, nn.ModuleList, nn.ModuleDict))):
                raise unknown_module(*tracer.failed_in, cause) from None
            raise SpcError(class_name(type(model)), f"cannot be traced by torch.fx ({type(e).__name__}: {e})", "keep data-dependent Python control flow out of forward(); build the model from modules and +") from None
        gm = torch.fx.GraphModule(model, fx_graph)
        try:
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints tracebacks
                ShapeProp(gm).propagate(example)
        except SpcError:
            raise
        except Exception as e:
            cause = e.__cause__ or e
            where = f" at '{e.__cause__ and str(e).split('node=')[-1].split(' ')[0]}'" if e.__cause__ else ""
            raise SpcError(type(model).__name__, f"does not run on an input of shape {tuple(example.shape)}{where} ({type(cause).__name__}: {cause})", "check --input-shape: time-major T,B,features...") from None
        finally:
            sj.reset(model)
        return _convert(gm, model, neuron_types, wrappers, sj)
    finally:
        model.train(was_training)


def _convert(gm: torch.fx.GraphModule, model: nn.Module, neuron_types: dict, wrappers: tuple, sj) -> ir.Graph:
    build = _Builder(model)
    env: dict[torch.fx.Node, str] = {}
    outputs: tuple[str, ...] = ()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if build.nodes:
                raise SpcError(f"forward argument '{node.name}'", "spc models take exactly one input tensor")
            env[node] = build.add("input", ir.Input(shape=_shape(node)[2:]), ())
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node):
                raise SpcError("model output", "must be a single tensor", "return one [T, B, ...] tensor from forward()")
            outputs = (env[result],)
        elif node.op == "call_module":
            module = gm.get_submodule(node.target)
            src = env[node.args[0]]
            shape = build.shapes[src]
            sj.check_known(node.target, module)
            if module_class(module) in neuron_types:
                sj.check_step_mode(node.target, module)
                env[node] = build.add(node.target, neuron_types[module_class(module)](module), (src,))
            elif isinstance(module, wrappers) or sj.folds_time(module):
                children = list(module.named_children()) if isinstance(module, nn.Sequential) else [("", module)]
                for child_name, child in children:
                    path = f"{node.target}.{child_name}" if child_name else node.target
                    if module_class(child) in neuron_types:
                        raise _unsupported(path, child, "is a neuron inside a per-step wrapper, where it would see one step at a time", "move the neuron out of the wrapper")
                    for suffix, op in step_layer(path, child, shape, 1, sj):
                        src = build.add(path + suffix, op, (src,))
                        shape = build.shapes[src]
                env[node] = src
            else:
                for suffix, op in step_layer(node.target, module, shape, 2, sj):
                    src = build.add(node.target + suffix, op, (src,))
                    shape = build.shapes[src]
                env[node] = src
        elif node.op in ("call_function", "call_method"):
            env[node] = _convert_function(node, env, build)
        else:  # get_attr
            owner = _enclosing(node, build.model)
            if owner is not None:
                attr = node.target.removeprefix(owner[0] + ".")
                what = "makes a tensor constant" if attr.startswith("_tensor_constant") else f"reads its parameter '{attr}' directly"
                raise unknown_module(*owner, f"its forward() {what}")
            raise SpcError(f"'{node.target}'", "reads a parameter or buffer directly in forward()", "use modules for every computation on the input")
    return ir.Graph(tuple(build.nodes), outputs)


def _enclosing(node: torch.fx.Node, model: nn.Module) -> tuple[str, nn.Module] | None:
    """(path, module) of the innermost module of `model` whose forward() produced an fx node, if any."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path, _ = list(stack.values())[-1]
    return path, model.get_submodule(path)


_ADD = (operator.add, operator.iadd, torch.add, "add", "add_")
_SUB = (operator.sub, operator.isub, torch.sub, "sub", "sub_")
_MUL = (operator.mul, operator.imul, torch.mul, "mul", "mul_")
_DIV = (operator.truediv, operator.itruediv, torch.div, "div", "div_")
_NEG = (operator.neg, torch.neg, "neg")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scale_shift(scale: float, shift: float) -> ir.ScaleShift:
    return ir.ScaleShift(scale=np.array([float(scale)]), shift=np.array([float(shift)]))


def _arithmetic(node: torch.fx.Node, env, build: _Builder) -> str | None:
    """Elementwise arithmetic of the forward: tensor + tensor (a residual sum), tensor − tensor,
    tensor · tensor (SEW's AND, and IAND `x * (1 - y)`), and a tensor with a number (`1 - y`,
    `x / 2`, `-x`): Add, Mul and ScaleShift. None when it is none of these."""
    target, args = node.target, node.args
    tensor = [isinstance(a, torch.fx.Node) and a in env for a in args]
    if node.kwargs or not all(t or _number(a) for t, a in zip(tensor, args)):
        return None
    if target in _NEG and tensor == [True]:
        return build.add(node.name, _scale_shift(-1.0, 0.0), (env[args[0]],))
    if len(args) != 2:
        return None
    a, b = args
    if tensor == [True, True]:
        if target in _ADD:
            return build.add(node.name, ir.Add(), (env[a], env[b]))
        if target in _SUB:
            negated = build.add(f"{node.name}:neg", _scale_shift(-1.0, 0.0), (env[b],))
            return build.add(node.name, ir.Add(), (env[a], negated))
        if target in _MUL:
            return build.add(node.name, ir.Mul(), (env[a], env[b]))
        return None
    x, c = (env[a], b) if tensor[0] else (env[b], a)
    if target in _ADD:
        op = _scale_shift(1.0, c)
    elif target in _SUB:
        op = _scale_shift(1.0, -c) if tensor[0] else _scale_shift(-1.0, c)
    elif target in _MUL:
        op = _scale_shift(c, 0.0)
    elif target in _DIV and tensor[0] and c != 0:
        op = _scale_shift(1.0 / c, 0.0)
    else:
        return None
    return build.add(node.name, op, (x,))


def _convert_function(node: torch.fx.Node, env, build: _Builder) -> str:
    target = node.target
    label = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
    computed = _arithmetic(node, env, build)
    if computed is not None:
        return computed
    if target in (torch.flatten, "flatten") and len(tensors) == 1:
        args = list(node.args[1:]) + [None, None]
        start = node.kwargs.get("start_dim", args[0] if args[0] is not None else 0)
        end = node.kwargs.get("end_dim", args[1] if args[1] is not None else -1)
        src = env[tensors[0]]
        shape = flatten_shape(f"'{node.name}' (flatten)", build.shapes[src], start, end, lead=2)
        return build.add(node.name, ir.Reshape(shape=shape), (src,))
    stack = node.meta.get("stack_trace", "")
    where = f" ({stack.strip().splitlines()[-2].strip()})" if stack.count("\n") >= 1 else ""
    owner = _enclosing(node, build.model)
    if owner is not None and looks_like_neuron(owner[1]):
        raise unknown_module(*owner, f"its forward() computes '{label}'{where}, which spc does not compile")
    inside = f" in {describe(*owner)}" if owner is not None else ""
    fix = f"spc supports {SUPPORTED}"
    if label in ("mean", "sum") and not inside:
        fix = "return the time-major output [T, B, ...] (drop the mean or sum over time): spc's --labels accuracy takes the argmax of the output summed over time, as the mean's argmax is"
    raise SpcError(f"operation '{label}' at '{node.name}'{inside}{where}", "is not supported in forward()", fix)
