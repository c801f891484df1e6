"""DSN, the dynamic-decay spiking neuron (Huang et al., 2026; reconstructed from the abstract and
reviews, see `reference/neurons.md`): the reset is replaced by a decay the input chooses,

    α[t] = σ(Σ_{i<k} w[c, i]·x[t − (k−1−i)] + b[c]),   h[t] = α[t]·h[t−1] + (1 − α[t])·x[t],   spike h >= θ

trained in parallel by a chunked associative scan and run serially by the recurrence itself (a
`Gated` cell: exact, any length).

The scan, for h[t] = a[t]·h[t−1] + β[t] along time, cut into chunks of L ≈ √T steps: first the
recurrence runs inside every chunk at once from a zero start (L vector steps over all chunks),
keeping the running product of the chunk's decays; then each chunk's start state is carried from the
previous chunk's end and added times that product (T/L vector steps). O(T) work, L + T/L sequential
steps instead of T, and every factor is a product of decays <= 1: nothing is divided by a tiny
product (the flaw of the one-pass form h = P·cumsum(β/P)). The backward pass is the same scan run
backwards in time (the adjoint recurrence), so memory stays O(T) per neuron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from spc.compiler.cells import Fire, Gated, Neuron
from spc.compiler.ir import layer_error
from spc.frontends.torch.firing import fire
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy
from spc.frontends.torch.neurons.channelwise import _channels, channel_fir

def _scan(a: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """h[t] = a[t]·h[t−1] + beta[t], h[−1] = 0, along dim 0 of [T, N] tensors (no autograd)."""
    steps, n = a.shape
    chunk = max(1, math.isqrt(steps))
    pad = -steps % chunk
    a_c = F.pad(a, (0, 0, 0, pad), value=1.0).view(-1, chunk, n)  # padding after the end: a = 1, β = 0
    b_c = F.pad(beta, (0, 0, 0, pad)).view(-1, chunk, n)
    local, survive = torch.empty_like(b_c), torch.empty_like(a_c)
    h, p = torch.zeros_like(b_c[:, 0]), torch.ones_like(a_c[:, 0])
    for t in range(chunk):  # every chunk from a zero start
        h = a_c[:, t] * h + b_c[:, t]
        p = p * a_c[:, t]
        local[:, t], survive[:, t] = h, p
    carried = torch.zeros_like(h[0])
    for c in range(local.shape[0]):  # the start state of each chunk, from the previous one's end
        local[c] += survive[c] * carried
        carried = local[c, -1]
    return local.reshape(-1, n)[:steps]


class _GatedScan(torch.autograd.Function):
    """h = scan(a, β), differentiable in both. Backward: λ[t] = g[t] + a[t+1]·λ[t+1] (the same scan,
    reversed in time), then ∂/∂β = λ and ∂/∂a[t] = λ[t]·h[t−1]."""

    @staticmethod
    def forward(ctx, a, beta):
        h = _scan(a, beta)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        a, h = ctx.saved_tensors
        ahead = torch.cat([a[1:], torch.ones_like(a[:1])])  # a[t+1]; nothing after the end
        lam = _scan(ahead.flip(0), grad.flip(0)).flip(0)
        before = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
        return lam * before, lam


def gated_scan(a: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """h[t] = a[t]·h[t−1] + β[t] along dim 0, zero initial state; any shape [T, ...]."""
    shape = beta.shape
    if shape[0] == 0:
        return beta.clone()
    return _GatedScan.apply(a.reshape(shape[0], -1), beta.reshape(shape[0], -1)).view(shape)


def dsn_membrane(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    z = channel_fir(x, taps) + _channels(bias.to(x.dtype), x)
    a = torch.sigmoid(z)
    return gated_scan(a, (1 - a) * x)


@dataclass(frozen=True, eq=False)
class DSNOp(ParallelNeuronOp, kind="DSN"):
    taps: np.ndarray  # [C or 1, k]
    bias: np.ndarray  # [C] or [1]
    threshold: float

    def check(self, name, shape):
        self.lower().check(name, shape)
        if not np.isfinite(self.threshold):
            raise layer_error(name, f"DSN threshold {self.threshold} is not finite")

    def parallel(self, x):
        h = dsn_membrane(x, torch.as_tensor(self.taps), torch.as_tensor(self.bias))
        return h, fire(h, self.threshold)

    def lower(self):
        return Neuron(cells=(Gated(taps=self.taps, bias=self.bias),), fire=Fire(threshold=np.array([self.threshold])))


class DSN(nn.Module):
    """Dynamic-decay spiking neuron: a per-channel k-tap causal gate sets each step's decay."""

    def __init__(self, channels: int, k: int = 4, threshold: float = 1.0, decay_init: float = 0.9, alpha: float = 2.0):
        super().__init__()
        if k < 1 or not 0 < decay_init < 1:
            raise ValueError(f"k must be >= 1 and decay_init in (0, 1), got {k}, {decay_init}")
        self.k, self.threshold, self.alpha = k, float(threshold), alpha
        self.weight = nn.Parameter(torch.zeros(channels, k))
        self.bias = nn.Parameter(torch.full((channels,), float(np.log(decay_init / (1 - decay_init)))))

    def forward(self, x):
        return fire(dsn_membrane(x, self.weight, self.bias), self.threshold, alpha=self.alpha)

    def to_op(self) -> DSNOp:
        return DSNOp(taps=to_numpy(self.weight), bias=to_numpy(self.bias), threshold=self.threshold)

    def extra_repr(self):
        return f"channels={self.weight.shape[0]}, k={self.k}, threshold={self.threshold}"
