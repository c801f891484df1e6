"""DSN, the dynamic-decay spiking neuron (Huang et al., 2026; reconstructed from the abstract and
reviews, see `reference/neurons.md`): the reset is replaced by a decay the input chooses,

    α[t] = σ(Σ_{i<k} w[c, i]·x[t − (k−1−i)] + b[c]),   h[t] = α[t]·h[t−1] + (1 − α[t])·x[t],   spike h >= θ

trained in parallel — on the CPU by one fused native kernel (gate, recurrence, firing rule), else by
a chunked associative scan (`kernels.scan.first_order_scan`) — and run serially by the recurrence
itself (a `Gated` cell: exact, any length). See `kernels.filters.gated`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Gated, Neuron
from spc.compiler.ir import layer_error
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels.filters import gated
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy

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
        h = gated(x, torch.as_tensor(self.taps), torch.as_tensor(self.bias))
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
        return gated(x, self.weight, self.bias, Spikes(self.threshold, self.alpha))

    def to_op(self) -> DSNOp:
        return DSNOp(taps=to_numpy(self.weight), bias=to_numpy(self.bias), threshold=self.threshold)

    def extra_repr(self):
        return f"channels={self.weight.shape[0]}, k={self.k}, threshold={self.threshold}"
