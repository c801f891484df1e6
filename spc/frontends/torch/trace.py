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
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy
from spc.frontends.torch.perstep import PerStep

NEURONS: dict[type, Callable[[nn.Module], ParallelNeuronOp]] = {cls: cls.to_op for cls in neurons.TRAINABLE}
"""Neuron module type -> its IR operation. Other frontends (SpikingJelly) add their classes."""

SUPPORTED = "spc neurons (PSN, MaskedPSN, SlidingPSN, SPSN, PSU, IPSU, RPSU, MPEPSN, ChannelwisePSN, DSN, PRF, IF, LIF, LI), Linear, Conv1d, Conv2d, BatchNorm1d/2d, AvgPool2d, MaxPool2d, Flatten, Dropout, Identity, residual +"


def module_class(module: nn.Module) -> type:
    """The module's class, seeing through the subclass torch.nn.utils.parametrize generates (as
    `spc.quantization_aware` does). Other subclasses are not their base: SpikingJelly derives
    neurons with other dynamics from LIFNode."""
    cls = type(module)
    return cls.__bases__[0] if parametrize.is_parametrized(module) else cls


def describe(path: str, module) -> str:
    """How errors name a module: its path in the model and its class, e.g. `features.3 (torch.nn.LSTM)`."""
    cls = module_class(module)
    package = cls.__module__.split(".")[0]
    return f"{path} ({package}.nn.{cls.__name__})" if package == "torch" else f"{path} ({cls.__module__}.{cls.__name__})"


def _unsupported(path: str, module: nn.Module, why: str, fix: str = "") -> SpcError:
    return SpcError(describe(path, module), why, fix or f"spc supports {SUPPORTED}")


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


def _avgpool(path, m: nn.AvgPool2d) -> ir.AvgPool2d:
    if m.ceil_mode or m.divisor_override is not None:
        raise _unsupported(path, m, "ceil_mode and divisor_override are not supported", "use the default AvgPool2d options")
    kernel = _pair(m.kernel_size)
    return ir.AvgPool2d(kernel=kernel, stride=_pair(m.stride or kernel), padding=_pair(m.padding), count_include_pad=m.count_include_pad)


def _maxpool(path, m: nn.MaxPool2d) -> ir.MaxPool2d:
    if m.ceil_mode or m.return_indices:
        raise _unsupported(path, m, "ceil_mode and return_indices are not supported", "use the default MaxPool2d options")
    kernel = _pair(m.kernel_size)
    return ir.MaxPool2d(kernel=kernel, stride=_pair(m.stride or kernel), padding=_pair(m.padding), dilation=_pair(m.dilation))


_PER_SAMPLE = {nn.Conv1d: _conv, nn.Conv2d: _conv, nn.BatchNorm1d: _batchnorm, nn.BatchNorm2d: _batchnorm, nn.AvgPool2d: _avgpool, nn.MaxPool2d: _maxpool}
"""Layers that take one sample [N, C, ...]: they must run inside a per-step wrapper."""

_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


def step_layer(path: str, m: nn.Module, shape: tuple[int, ...], lead: int, pass_through: tuple = ()) -> ir.Op | None:
    """The IR op of a per-step layer applied to [*lead dims, *shape]; None when it vanishes at inference."""
    if isinstance(m, _PASS_THROUGH + pass_through):
        return None
    if isinstance(m, nn.Linear):
        if len(shape) != 1:
            raise _unsupported(path, m, f"applies to the last dimension of a per-step tensor of shape {shape}", "flatten the features before the Linear layer")
        return ir.Linear(weight=to_numpy(m.weight), bias=to_numpy(m.bias) if m.bias is not None else None)
    if isinstance(m, nn.Flatten):
        return ir.Reshape(shape=flatten_shape(describe(path, m), shape, m.start_dim, m.end_dim, lead))
    convert = next((fn for cls, fn in _PER_SAMPLE.items() if isinstance(m, cls)), None)
    if convert is None:
        raise _unsupported(path, m, "is not a layer spc can compile")
    if lead == 2:
        raise _unsupported(path, m, f"is applied to the time-major sequence [T, B, {', '.join(map(str, shape))}] directly, so it would mix time steps or fail", "wrap per-sample layers in spc.PerStep(...) so they run on every step")
    return convert(path, m)


class _NoSpikingJelly:
    """Stands in for `spc.frontends.spikingjelly` when the model has no SpikingJelly modules."""

    NEURONS: dict = {}
    FOLDING_WRAPPERS: tuple = ()
    PASS_THROUGH: tuple = ()

    @staticmethod
    def folds_time(module):
        return False

    @staticmethod
    def check_step_mode(path, module):
        pass

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
    """Leaves: neurons, known layers, folding wrappers, and any library module (reported by name)."""

    def __init__(self, leaf_types: tuple[type, ...]):
        super().__init__()
        self.leaf_types = leaf_types

    def is_leaf_module(self, m, qualname):
        if isinstance(m, self.leaf_types):
            return True
        if type(m) in (nn.Sequential, nn.ModuleList, nn.ModuleDict):
            return False
        return type(m).__module__.startswith(("torch.nn", "spikingjelly"))


def _shape(node: torch.fx.Node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


class _Builder:
    """Accumulates IR nodes with unique names while walking the fx graph."""

    def __init__(self):
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
    tracer = _Tracer(tuple(neuron_types) + wrappers + (nn.Linear, nn.Flatten) + _PASS_THROUGH + sj.PASS_THROUGH)
    was_training = model.training
    model.eval()
    try:
        try:
            fx_graph = tracer.trace(model)
        except Exception as e:  # fx raises many types for untraceable Python
            raise SpcError(type(model).__name__, f"cannot be traced by torch.fx ({type(e).__name__}: {e})", "keep data-dependent Python control flow out of forward(); build the model from modules and +") from None
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
        return _convert(gm, neuron_types, wrappers, sj)
    finally:
        model.train(was_training)


def _convert(gm: torch.fx.GraphModule, neuron_types: dict, wrappers: tuple, sj) -> ir.Graph:
    build = _Builder()
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
            if module_class(module) in neuron_types:
                sj.check_step_mode(node.target, module)
                env[node] = build.add(node.target, neuron_types[module_class(module)](module), (src,))
            elif isinstance(module, wrappers) or sj.folds_time(module):
                children = list(module.named_children()) if isinstance(module, nn.Sequential) else [("", module)]
                for child_name, child in children:
                    path = f"{node.target}.{child_name}" if child_name else node.target
                    if module_class(child) in neuron_types:
                        raise _unsupported(path, child, "is a neuron inside a per-step wrapper, where it would see one step at a time", "move the neuron out of the wrapper")
                    op = step_layer(path, child, shape, 1, sj.PASS_THROUGH)
                    if op is not None:
                        src = build.add(path, op, (src,))
                        shape = build.shapes[src]
                env[node] = src
            else:
                op = step_layer(node.target, module, shape, 2, sj.PASS_THROUGH)
                env[node] = src if op is None else build.add(node.target, op, (src,))
        elif node.op in ("call_function", "call_method"):
            env[node] = _convert_function(node, env, build)
        else:  # get_attr
            raise SpcError(f"'{node.target}'", "reads a parameter or buffer directly in forward()", "use modules for every computation on the input")
    return ir.Graph(tuple(build.nodes), outputs)


def _convert_function(node: torch.fx.Node, env, build: _Builder) -> str:
    target = node.target
    label = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
    if target in (operator.add, torch.add, "add") and len(tensors) == 2 and len(node.args) == 2 and not node.kwargs:
        return build.add(node.name, ir.Add(), (env[tensors[0]], env[tensors[1]]))
    if target in (torch.flatten, "flatten") and len(tensors) == 1:
        args = list(node.args[1:]) + [None, None]
        start = node.kwargs.get("start_dim", args[0] if args[0] is not None else 0)
        end = node.kwargs.get("end_dim", args[1] if args[1] is not None else -1)
        src = env[tensors[0]]
        shape = flatten_shape(f"'{node.name}' (flatten)", build.shapes[src], start, end, lead=2)
        return build.add(node.name, ir.Reshape(shape=shape), (src,))
    stack = node.meta.get("stack_trace", "")
    where = f" ({stack.strip().splitlines()[-2].strip()})" if stack.count("\n") >= 1 else ""
    raise SpcError(f"operation '{label}' at '{node.name}'{where}", "is not supported in forward()", f"spc supports {SUPPORTED}")
