"""SPSN, the stochastic parallelizable spiking neuron (Yarga & Wood, 2023).

Two cascaded exponentials with fixed decays α = exp(−dt/τ_syn), β = exp(−dt/τ_mem):

    syn[t] = α·syn[t−1] + x[t];   mem[t] = β·mem[t−1] + (1−β)·syn[t]

trained as that chain of two leaky stages (`kernels.filters.chain`: a fused native kernel on the
CPU, a chunked scan of GEMMs elsewhere; O(T) either way) and lowered to two `Leaky` cells.
Firing: deterministic `mem > θ`, or seeded Bernoulli `u < σ(mem − θ)` with counter-based
uniforms, so the parallel and stepwise forms draw the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Leaky, Neuron
from spc.compiler.ir import layer_error
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons.base import ParallelNeuronOp


def spsn_membrane(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """mem[t] of the cascade for x [T, ...] time-major (zero initial state)."""
    return filters.chain(x, (alpha, beta), (1.0, 1.0 - beta))


@dataclass(frozen=True, eq=False)
class SPSNOp(ParallelNeuronOp, kind="SPSN"):
    alpha: float
    beta: float
    threshold: float = 0.0
    stochastic: bool = False
    seed: int = 0

    def check(self, name, shape):
        for what, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not 0.0 <= value < 1.0:
                raise layer_error(name, f"SPSN {what} = {value} must be a decay in [0, 1)", "use time constants tau > 0")

    def parallel(self, x):
        h = spsn_membrane(x, self.alpha, self.beta)
        return h, fire(h, self.threshold, strict=True, stochastic=self.stochastic, seed=self.seed)

    def lower(self):
        ones = np.ones(1)
        cells = (Leaky(decay=np.asarray([self.alpha]), gain=ones), Leaky(decay=np.asarray([self.beta]), gain=np.asarray([1.0 - self.beta])))
        fire_rule = Fire(threshold=np.asarray([self.threshold]), strict=True, stochastic=self.stochastic, seed=self.seed)
        return Neuron(cells=cells, fire=fire_rule)


class SPSN(nn.Module):
    """Stochastic parallelizable spiking neuron.

    `stochastic=False` fires `mem > threshold`; `stochastic=True` fires with probability
    σ(mem − threshold), drawn from counter-based uniforms keyed by `seed` (straight-through gradient).
    """

    def __init__(self, tau_syn: float = 20.0, tau_mem: float = 20.0, dt: float = 1.0, threshold: float = 0.0, stochastic: bool = False, seed: int = 0):
        super().__init__()
        if tau_syn <= 0 or tau_mem <= 0 or dt <= 0:
            raise ValueError(f"SPSN time constants and dt must be positive, got tau_syn={tau_syn}, tau_mem={tau_mem}, dt={dt}")
        self.alpha = math.exp(-dt / tau_syn)
        self.beta = math.exp(-dt / tau_mem)
        self.threshold = threshold
        self.stochastic = stochastic
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.stochastic:  # fused: the membrane never leaves the kernel
            return filters.chain(x, (self.alpha, self.beta), (1.0, 1.0 - self.beta), Spikes(self.threshold, strict=True))
        h = spsn_membrane(x, self.alpha, self.beta)
        return fire(h, self.threshold, strict=True, stochastic=True, seed=self.seed)

    def to_op(self) -> SPSNOp:
        return SPSNOp(alpha=self.alpha, beta=self.beta, threshold=self.threshold, stochastic=self.stochastic, seed=self.seed)

    def extra_repr(self):
        return f"alpha={self.alpha:.6f}, beta={self.beta:.6f}, threshold={self.threshold}, stochastic={self.stochastic}"
