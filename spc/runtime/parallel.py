"""Run a parallel-form graph with torch: every layer over the whole sequence at once.

Synaptic layers fold time into the batch ([T·B, ...]); neurons run their family's parallel form
(`op.parallel`). This is the reference the stepwise forms are checked against; it is independent of
the numpy simulator in `sim.py`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from spc.compiler import ir
from spc.frontends.torch.firing import channel_tensor
from spc.frontends.torch.neurons.base import ParallelNeuronOp
from spc.runtime.limits import ensure_fits
from spc.runtime.recording import Recording, check_input


def _per_step(fn, x: torch.Tensor) -> torch.Tensor:
    steps, batch = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape((steps, batch) + y.shape[1:])


def _tensor(a, like):
    return None if a is None else torch.as_tensor(a, dtype=like.dtype, device=like.device)


def synapse(op: ir.Op, inputs: list[torch.Tensor]) -> torch.Tensor:
    x = inputs[0]
    if isinstance(op, ir.Linear):
        return F.linear(x, _tensor(op.weight, x), _tensor(op.bias, x))
    if isinstance(op, ir.Conv):
        conv = F.conv1d if op.weight.ndim == 3 else F.conv2d
        return _per_step(lambda v: conv(v, _tensor(op.weight, x), _tensor(op.bias, x), op.stride, op.padding, op.dilation, op.groups), x)
    if isinstance(op, ir.AvgPool2d):
        return _per_step(lambda v: F.avg_pool2d(v, op.kernel, op.stride, op.padding, count_include_pad=op.count_include_pad), x)
    if isinstance(op, ir.SumPool2d):
        return _per_step(lambda v: F.avg_pool2d(v, op.kernel, op.stride, op.padding, divisor_override=1), x)
    if isinstance(op, ir.MaxPool2d):
        return _per_step(lambda v: F.max_pool2d(v, op.kernel, op.stride, op.padding, op.dilation), x)
    if isinstance(op, ir.Reshape):
        return x.reshape(x.shape[:2] + tuple(op.shape))
    if isinstance(op, ir.ScaleShift):
        return x * channel_tensor(op.scale, x) + channel_tensor(op.shift, x)
    if isinstance(op, ir.Add):
        return inputs[0] + inputs[1]
    if isinstance(op, ir.Mul):
        return inputs[0] * inputs[1]
    raise TypeError(f"the parallel runtime cannot run {op.kind}")


def run_parallel(graph: ir.Graph, x: np.ndarray, dtype: torch.dtype = torch.float64, teacher: dict[str, np.ndarray] | None = None) -> Recording:
    """Run the graph on x [T, B, ...]; record every node's output and every neuron's membrane.

    With `teacher`, each neuron still records its own output, but downstream layers receive the
    teacher's output for that neuron instead (so each layer is checked on the reference's input).
    """
    x = check_input(graph, x)
    ensure_fits(graph, x.shape[0], x.shape[1], "the parallel form (every layer over the whole sequence at once)", copies=3)
    teacher = teacher or {}
    rec = Recording(graph.outputs[0])
    values: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for node in graph.nodes:
            if isinstance(node.op, ir.Input):
                values[node.name] = torch.as_tensor(x, dtype=dtype)
            elif isinstance(node.op, ParallelNeuronOp):
                h, out = node.op.parallel(values[node.inputs[0]])
                rec.membranes[node.name], rec.outputs[node.name] = h.numpy(), out.numpy()
                values[node.name] = torch.as_tensor(teacher[node.name], dtype=dtype) if node.name in teacher else out
                continue
            else:
                values[node.name] = synapse(node.op, [values[i] for i in node.inputs])
            rec.outputs[node.name] = values[node.name].numpy()
    return rec


def run_model(model: torch.nn.Module, x: np.ndarray, neuron_paths: list[str]) -> Recording:
    """Run the original torch model (a float64 copy, eval mode) and record its neurons' outputs.

    Neuron layers are recorded by their module path, which is their node name in the graph.
    """
    import copy

    from spc.frontends.torch.trace import spikingjelly_support

    copy_ = copy.deepcopy(model).double().eval()
    modules = dict(copy_.named_modules())
    outputs: dict[str, np.ndarray] = {}
    hooks = [modules[p].register_forward_hook(lambda m, i, o, p=p: outputs.__setitem__(p, o.detach().numpy())) for p in neuron_paths]
    spikingjelly_support(copy_).reset(copy_)
    try:
        with torch.no_grad():
            result = copy_(torch.as_tensor(x, dtype=torch.float64))
    finally:
        for h in hooks:
            h.remove()
    outputs["(output)"] = result.numpy()
    return Recording("(output)", outputs)
