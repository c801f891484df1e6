"""The multiplication-free channel-wise parallel spiking neuron (Xue, Fang et al., 2025):

    H[t, c] = Σ_{i<k} W[c, i]·X[t − (k−1−i)·d, c] + b[c],   spike H >= 0

a causal per-channel temporal convolution with dilation d. A BatchNorm over the kernel's output
stands in for the per-channel threshold; it is folded into the taps (W·γ/σ) and the bias
(β − μ·γ/σ), and the folded taps are rounded to signed powers of two sign(W)·2^round(log2|W|) with a
straight-through gradient, so inference is shifts and adds. Taps more than 6 octaves below a
layer's largest are flushed to zero, as the integer form (`--taps pow2`: ±2^p, 0 <= p <= 6) would.
While training, the BatchNorm normalises by the batch's statistics (over time, batch and space) of
the unfolded convolution and keeps running ones; in eval mode and once compiled it uses the running
ones.

Stepwise: one `DelayLine` with per-channel taps and dilation d ((k−1)·d inputs of state), exact
for any length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import DelayLine, Fire, Neuron
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels.filters import channel_fir, channel_moments
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy

POW2_SPAN = 6
"""Octaves below a layer's largest tap that a power-of-two tap may lie (as `--taps pow2`)."""


def signed_pow2(w: torch.Tensor) -> torch.Tensor:
    """sign(w)·2^round(log2|w|), zero for taps more than POW2_SPAN octaves below the largest."""
    with torch.no_grad():
        p = torch.round(torch.log2(w.abs().clamp_min(torch.finfo(w.dtype).tiny)))
        keep = (w != 0) & (p >= p.max() - POW2_SPAN)
        return torch.where(keep, torch.sign(w) * torch.exp2(p), torch.zeros_like(w))


@dataclass(frozen=True, eq=False)
class ChannelwisePSNOp(ParallelNeuronOp, kind="ChannelwisePSN"):
    taps: np.ndarray  # [C, k], BatchNorm folded in (powers of two when trained so)
    bias: np.ndarray  # [C]
    dilation: int = 1

    def check(self, name, shape):
        self.lower().check(name, shape)

    def parallel(self, x):
        h = channel_fir(x, torch.as_tensor(self.taps), self.dilation, torch.as_tensor(self.bias))
        return h, fire(h, 0.0)

    def lower(self):
        return Neuron(cells=(DelayLine(taps=self.taps, bias=self.bias, dilation=self.dilation),), fire=Fire(threshold=np.zeros(1)))


class ChannelwisePSN(nn.Module):
    """Channel-wise PSN with k taps per channel, dilation d, BatchNorm folded, power-of-two taps."""

    def __init__(self, channels: int, k: int = 8, dilation: int = 1, pow2: bool = True, eps: float = 1e-5, momentum: float = 0.1, alpha: float = 2.0):
        super().__init__()
        if k < 1 or dilation < 1:
            raise ValueError(f"k and dilation must be >= 1, got {k}, {dilation}")
        self.k, self.dilation, self.pow2, self.eps, self.momentum, self.alpha = k, dilation, pow2, eps, momentum, alpha
        self.weight = nn.Parameter((0.5 ** torch.arange(k - 1, -1, -1.0)).repeat(channels, 1))
        self.bn_weight = nn.Parameter(torch.ones(channels))
        self.bn_bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def folded(self, x: torch.Tensor | None = None, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(taps, bias) with the BatchNorm folded in, computed in x's dtype (or `dtype`): batch
        statistics of x when training, else the running ones."""
        dtype = x.dtype if x is not None else dtype
        weight, gamma, beta = (p.to(dtype) for p in (self.weight, self.bn_weight, self.bn_bias))
        if x is not None and self.training:
            mean, var = channel_moments(x, weight, self.dilation)
            n = x.numel() // x.shape[2]  # values per channel
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_((var * (n / max(n - 1, 1))).to(self.running_var.dtype), self.momentum)  # unbiased
        else:
            mean, var = self.running_mean.to(dtype), self.running_var.to(dtype)
        scale = gamma / torch.sqrt(var + self.eps)
        taps = weight * scale[:, None]
        if self.pow2:
            taps = taps + (signed_pow2(taps) - taps).detach()  # straight through
        return taps, beta - mean * scale

    def forward(self, x):
        taps, bias = self.folded(x)
        return channel_fir(x, taps, self.dilation, bias, Spikes(0.0, self.alpha))

    def to_op(self) -> ChannelwisePSNOp:
        taps, bias = (to_numpy(t) for t in self.folded(dtype=torch.float64))  # as the model's float64 copy computes them
        return ChannelwisePSNOp(taps=taps, bias=bias, dilation=self.dilation)

    def extra_repr(self):
        return f"channels={self.weight.shape[0]}, k={self.k}, dilation={self.dilation}, pow2={self.pow2}"
