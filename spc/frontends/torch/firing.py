"""The firing rule in torch, with surrogate gradients, for every trainable neuron.

This is the parallel-form counterpart of `spc.compiler.cells.Fire` (same comparison, same
counter-based uniforms for stochastic firing), so that a trained module and its lowered stepwise
neuron fire on exactly the same condition.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from spc.compiler.rng import uniform_sequence


class _Heaviside(torch.autograd.Function):
    """Forward: h >= 0 (or h > 0 when strict). Backward: the ATan surrogate of SpikingJelly,
    d s / d h = alpha / 2 / (1 + (pi/2 · alpha · h)^2)."""

    @staticmethod
    def forward(ctx, h, alpha: float, strict: bool):
        ctx.save_for_backward(h)
        ctx.alpha = alpha
        return (h > 0).to(h) if strict else (h >= 0).to(h)

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        alpha = ctx.alpha
        return grad * (alpha / 2) / (1 + (math.pi / 2 * alpha * h).square()), None, None


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
    return _Heaviside.apply(h - threshold, alpha, strict)


def channel_tensor(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A per-channel parameter array as a tensor broadcasting over x [T, B, C, ...]."""
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return t.view(t.shape + (1,) * (like.dim() - 3))
