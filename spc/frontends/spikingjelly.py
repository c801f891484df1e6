"""SpikingJelly 2.0 models: its PSN family and IF/LIF neurons map onto spc's own operations, its
per-step containers and step-mode-'m' layers fold time into the batch. Imported only when a model
contains SpikingJelly modules (SpikingJelly is optional)."""

from __future__ import annotations

from torch import nn

from spikingjelly.activation_based import base, functional, layer, neuron

from spc.errors import SpcError
from spc.frontends.torch.neurons.lif import lif_op
from spc.frontends.torch.neurons.psn import masked_psn_op, psn_op, sliding_psn_op


def _lif_node(m) -> object:
    decay = 1.0 - 1.0 / m.tau
    return lif_op(decay, 1.0 / m.tau if m.decay_input else 1.0, m.v_threshold, m.v_reset)


def _if_node(m) -> object:
    return lif_op(1.0, 1.0, m.v_threshold, m.v_reset)


NEURONS = {
    neuron.PSN: psn_op,
    neuron.MaskedPSN: masked_psn_op,
    neuron.SlidingPSN: sliding_psn_op,
    neuron.IFNode: _if_node,
    neuron.LIFNode: _lif_node,
}
FOLDING_WRAPPERS = (layer.SeqToANNContainer, layer.MultiStepContainer)
PASS_THROUGH = (layer.Dropout,)


def folds_time(module: nn.Module) -> bool:
    """A SpikingJelly stateless layer in multi-step mode runs on [T·B, ...]."""
    return isinstance(module, base.StepModule) and getattr(module, "step_mode", "s") == "m" and type(module) not in NEURONS


def check_step_mode(path: str, module: nn.Module) -> None:
    mode = getattr(module, "step_mode", "m")
    if mode != "m":
        raise SpcError(f"{path} ({type(module).__module__}.{type(module).__name__})", f"is in single-step mode (step_mode='{mode}') but receives the whole [T, B, ...] sequence", "set multi-step mode: spikingjelly.activation_based.functional.set_step_mode(net, 'm')")


def reset(model: nn.Module) -> None:
    functional.reset_net(model)
