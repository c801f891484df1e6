"""Quantization-aware fine-tuning: train the parallel model while its forward pass computes with the
values the integer form will have.

    with spc.quantization_aware(model, decay="shift"):
        train(model, ...)          # your usual loop, a few epochs at a small learning rate
    spc.compile(model, ..., decay="shift")

Inside the context, every Linear/Conv weight and every PSN-family kernel is replaced in the forward
pass by its quantized value (the rule of `spc.compiler.quantize`: 8-bit mantissas with a
power-of-two exponent per layer, or per output channel; integer or power-of-two taps), with a
straight-through gradient to the float weight, which keeps training. On entry the leaky neurons'
decays (spc's LIF, IF, LI and SPSN) are snapped, permanently, to the nearest value the chosen
decay form realises (1 − d/4096 or 1 − 2^−n), so that float and integer forms share their dynamics
and the fine-tune adapts the weights to them — this is what keeps a bit-shift deployment accurate
when a trained time constant has no close shift value (SPSN's 0.951 lies between 0.9375 and 0.96875).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from spc.compiler.quantize import QuantOptions, integer_decay, tap_mantissas, weight_mantissas
from spc.frontends.torch.neurons.lif import LI, _IntegrateAndFire
from spc.frontends.torch.neurons.psn import MaskedPSN, PSN, SlidingPSN
from spc.frontends.torch.neurons.spsn import SPSN


class _StraightThrough(nn.Module):
    """Parametrization: forward the quantized value, backward the identity."""

    def __init__(self, quantized: Callable[[np.ndarray], np.ndarray]):
        super().__init__()
        self.quantized = quantized

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = torch.from_numpy(self.quantized(w.detach().cpu().double().numpy())).to(w)
        return w + (q - w).detach()


def _weights(options: QuantOptions):
    def quantized(w):
        ints, e = weight_mantissas(w, options.weight_bits, options.per_channel)
        return ints * 2.0 ** e.reshape((-1,) + (1,) * (w.ndim - 1))

    return quantized


def _taps(options: QuantOptions, mask: np.ndarray | None = None):
    """Kernel taps as the integer form quantizes them; outside `mask` (a masked PSN's unused
    weights) values pass through unchanged."""

    def quantized(w):
        inside = w if mask is None else w * mask
        ints, e, _ = tap_mantissas(inside.reshape(-1, w.shape[-1]), options.taps, options.weight_bits)
        q = ints.reshape(w.shape) * 2.0**e
        return q if mask is None else q * mask + w * (1 - mask)

    return quantized


def snap_decays(model: nn.Module, form: str) -> None:
    """Set spc's leaky neurons' decays to the nearest value the decay form realises."""

    def snapped(a: float) -> float:
        return float(integer_decay(np.asarray([a]), form)[1][0])

    for m in model.modules():
        if isinstance(m, SPSN):
            m.alpha, m.beta = snapped(m.alpha), snapped(m.beta)
        elif isinstance(m, (_IntegrateAndFire, LI)):
            m.decay = snapped(m.decay)


def _quantizers(model: nn.Module, options: QuantOptions):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            yield m, _weights(options)
        elif isinstance(m, MaskedPSN):
            yield m, _taps(options, m.mask0.detach().cpu().double().numpy())
        elif isinstance(m, (PSN, SlidingPSN)):
            yield m, _taps(options)


@contextlib.contextmanager
def quantization_aware(model: nn.Module, **options):
    """Fine-tune `model` as its integer form computes (see the module docstring). Takes the
    `QuantOptions` of `spc.compile`: decay, taps, weight_bits, per_channel."""
    opts = QuantOptions(**options)
    opts.check()
    snap_decays(model, opts.decay)
    wrapped = []
    try:
        for module, quantized in _quantizers(model, opts):
            parametrize.register_parametrization(module, "weight", _StraightThrough(quantized))
            wrapped.append(module)
        yield model
    finally:
        for module in wrapped:
            with torch.no_grad():
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
