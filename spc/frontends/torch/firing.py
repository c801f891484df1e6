"""The firing rule in torch, with surrogate gradients, for every trainable neuron.

This is the parallel-form counterpart of `spc.compiler.cells.Fire` (same comparison, same
counter-based uniforms for stochastic firing), so that a trained module and its lowered stepwise
neuron fire on exactly the same condition.

`Spikes` is the deterministic rule as an *epilogue*: the fused kernels (`spc.frontends.torch.kernels`)
apply it to each chunk of membrane while the chunk is still in cache, and recompute the membrane
chunk by chunk in the backward pass instead of keeping it. `fire` applies the same rule to a whole
membrane tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spc.compiler.rng import uniform_sequence


def atan_surrogate(d: torch.Tensor, grad: torch.Tensor, alpha: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """grad · α/2 / (1 + (π/2·α·d)²), the ATan surrogate derivative of SpikingJelly at d = h − θ.

    Two passes over memory, written as grad / ((2/α)·(1 + (π/2·α)²·d²)); `out` may be `d` itself.
    (The constant is a CPU scalar, which any device's kernels take without a copy.)"""
    c = math.pi / 2 * alpha
    q = torch.addcmul(torch.tensor(2.0 / alpha, dtype=d.dtype), d, d, value=2.0 / alpha * c * c, out=out)
    return torch.div(grad, q, out=q)


@dataclass(frozen=True)
class Spikes:
    """Deterministic firing: h >= θ (h > θ when strict); backward: the ATan surrogate at h − θ."""

    threshold: float = 0.0
    alpha: float = 2.0
    strict: bool = False

    def forward_into(self, h: torch.Tensor, out: torch.Tensor) -> None:
        """Write the spikes of membrane h into out (same shape, h's floating dtype)."""
        (torch.gt if self.strict else torch.ge)(h, self.threshold, out=out)

    def backward_(self, h: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The gradient reaching the membrane, computed in place in h (which is consumed)."""
        if self.threshold:
            h.sub_(self.threshold)
        return atan_surrogate(h, grad, self.alpha, out=h)


class _Heaviside(torch.autograd.Function):
    """`Spikes` over a whole membrane tensor; saves the membrane for the surrogate."""

    @staticmethod
    def forward(ctx, h, rule: Spikes):
        ctx.save_for_backward(h)
        ctx.rule = rule
        out = torch.empty_like(h)
        rule.forward_into(h, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        d = h - ctx.rule.threshold if ctx.rule.threshold else h
        return atan_surrogate(d, grad, ctx.rule.alpha, out=None if d is h else d), None


class _BernoulliStraightThrough(torch.autograd.Function):
    """Forward: u < p. Backward: straight through, d s / d p = 1."""

    @staticmethod
    def forward(ctx, p, u):
        return (u < p).to(p)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def uniforms_like(h: torch.Tensor, seed: int) -> torch.Tensor:
    """The counter-based uniforms for a time-major tensor h [T, B, ...] (see spc.compiler.rng)."""
    u = uniform_sequence(seed, h.shape[0], math.prod(h.shape[1:]))
    return torch.from_numpy(u).to(device=h.device, dtype=h.dtype).view(h.shape)


def fire(h: torch.Tensor, threshold, *, strict: bool = False, stochastic: bool = False, seed: int = 0, alpha: float = 2.0) -> torch.Tensor:
    """Spikes of membrane h against threshold (a scalar or a tensor broadcasting against h)."""
    if stochastic:
        return _BernoulliStraightThrough.apply(torch.sigmoid(h - threshold), uniforms_like(h, seed))
    if torch.is_tensor(threshold):  # a per-channel threshold: compare the difference with 0
        h, threshold = h - threshold, 0.0
    return spikes(h, Spikes(float(threshold), alpha, strict))


def spikes(h: torch.Tensor, rule: Spikes) -> torch.Tensor:
    """The deterministic rule applied to a whole membrane tensor (which is kept for the surrogate)."""
    return _Heaviside.apply(h, rule)


def channel_tensor(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A per-channel parameter array as a tensor broadcasting over x [T, B, C, ...]."""
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return t.view(t.shape + (1,) * (like.dim() - 3))
