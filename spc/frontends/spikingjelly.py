"""SpikingJelly 2.0 models: its PSN family and IF/LIF/PLIF neurons map onto spc's own operations,
its per-step containers and step-mode-'m' layers fold time into the batch, and its model blocks
(SEW / spiking ResNet blocks, VGG stages) are traced through like the user's own modules. Imported
only when a model contains SpikingJelly modules (SpikingJelly is optional)."""

from __future__ import annotations

import torch
from torch import nn

from spikingjelly.activation_based import base, functional, layer, neuron

from spc.compiler import ir
from spc.errors import SpcError
from spc.frontends.torch.neurons.lif import lif_op
from spc.frontends.torch.neurons.psn import masked_psn_op, psn_op, sliding_psn_op
from spc.frontends.torch.trace import describe


def _lif_node(m) -> object:
    decay = 1.0 - 1.0 / m.tau
    return lif_op(decay, 1.0 / m.tau if m.decay_input else 1.0, m.v_threshold, m.v_reset)


def _parametric_lif_node(m) -> object:
    """At inference a LIF whose 1/τ is the sigmoid of its learned parameter `w`."""
    rate = float(torch.sigmoid(m.w.detach().double()))
    return lif_op(1.0 - rate, rate if m.decay_input else 1.0, m.v_threshold, m.v_reset)


def _if_node(m) -> object:
    return lif_op(1.0, 1.0, m.v_threshold, m.v_reset)


NEURONS = {
    neuron.PSN: psn_op,
    neuron.MaskedPSN: masked_psn_op,
    neuron.SlidingPSN: sliding_psn_op,
    neuron.IFNode: _if_node,
    neuron.LIFNode: _lif_node,
    neuron.ParametricLIFNode: _parametric_lif_node,
}
FOLDING_WRAPPERS = (layer.SeqToANNContainer, layer.MultiStepContainer)
PASS_THROUGH = (layer.Dropout,)
LIBRARY = ("spikingjelly.activation_based.layer", "spikingjelly.activation_based.neuron")
"""SpikingJelly's packages of layers and neurons: their modules are leaves of the trace."""


def why_unknown(module: nn.Module) -> str | None:
    """Why a stateful SpikingJelly-based module is not one spc compiles (None: not one)."""
    if not isinstance(module, base.MemoryModule) or type(module).__module__.startswith(LIBRARY):
        return None
    known = next((cls for cls in type(module).__mro__[1:] if cls in NEURONS), None)
    if known is not None:
        return f"a subclass of SpikingJelly's {known.__name__} that may change its dynamics, which spc cannot read"
    return "a SpikingJelly MemoryModule: its state's dynamics are its own code"


def _voting(path: str, m: layer.VotingLayer, shape: tuple[int, ...]) -> list[tuple[str, ir.Op]]:
    """VotingLayer(v): the average of every v consecutive features (one class's votes), as the
    average pooling (kernel 1 × v) of the features seen as a [1, 1, N] image."""
    if len(shape) != 1:
        raise SpcError(describe(path, m), f"votes over the last dimension of a per-step tensor of shape {shape}", "flatten the features before the VotingLayer")
    v = m.voting_size
    return [(":as2d", ir.Reshape(shape=(1, 1, shape[0]))), ("", ir.AvgPool2d(kernel=(1, v), stride=(1, v), padding=(0, 0))), (":as1d", ir.Reshape(shape=(shape[0] // v,)))]


LAYERS = {layer.VotingLayer: _voting}
"""SpikingJelly's own stateless layers (not subclasses of a torch layer) -> their converters."""


def is_leaf(module: nn.Module) -> bool:
    """SpikingJelly's layers and neurons, and any stateful module of it, are leaves of the trace;
    its model blocks are not (they are made of leaves, `+` and `*`)."""
    return isinstance(module, base.MemoryModule) or type(module).__module__.startswith(LIBRARY)


def check_known(path: str, module: nn.Module) -> None:
    """Refuse a SpikingJelly neuron that spc has no mapping for, naming it and what spc takes."""
    if type(module).__module__.startswith(LIBRARY[1]) and type(module) not in NEURONS:
        known = ", ".join(f"neuron.{cls.__name__}" for cls in NEURONS)
        raise SpcError(describe(path, module), "is a SpikingJelly neuron class spc does not compile", f"replace it with one of {known}, or one of spc's neurons (spc.PSN, spc.SlidingPSN, ...)")


def folds_time(module: nn.Module) -> bool:
    """A SpikingJelly stateless layer in multi-step mode runs on [T·B, ...]."""
    return isinstance(module, base.StepModule) and getattr(module, "step_mode", "s") == "m" and type(module) not in NEURONS and not isinstance(module, base.MemoryModule)


def check_step_mode(path: str, module: nn.Module) -> None:
    mode = getattr(module, "step_mode", "m")
    if mode != "m":
        raise SpcError(describe(path, module), f"is in single-step mode (step_mode='{mode}') but receives the whole [T, B, ...] sequence", "set multi-step mode: spikingjelly.activation_based.functional.set_step_mode(net, 'm')")


def reset(model: nn.Module) -> None:
    functional.reset_net(model)
