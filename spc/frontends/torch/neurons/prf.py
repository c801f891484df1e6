"""PRF, the parallel resonate-and-fire neuron (Huang et al., 2024): a complex exponential kernel

    A = exp(Δ·(−1/τ + iθ)),   U = Σ_j Δ·A^(t−j)·x[j],   spike Re U >= 1

with Δ (log-uniform in [1e-3, 1e-1] at initialisation) and θ (log of 2π·uniform) learned per
channel and τ = 2 fixed, as in the authors' `ParallelResonateFire` (SpikingJelly heaviside: >=).
Training: x is real, so Re U is the causal convolution of x with the real kernel
Δ·e^(−Δt/τ)·cos(Δθt) — on the CPU the 2-state rotation itself in one fused native kernel with the
firing rule (O(T)), else per channel by FFT (O(T log T)); see `kernels.filters.resonator`.
Stepwise, exactly: the 2-state damped rotation z ← A·z + Δ·x (a `Resonator` cell, any length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Neuron, Resonator
from spc.compiler.ir import finite, layer_error
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels.filters import resonator
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy


@dataclass(frozen=True, eq=False)
class PRFOp(ParallelNeuronOp, kind="PRF"):
    delta: np.ndarray  # [C] or [1]: Δ
    angle: np.ndarray  # [C] or [1]: θ (the rotation per step is Δ·θ)
    tau: float
    threshold: float

    def check(self, name, shape):
        finite(name, "delta", self.delta)
        finite(name, "angle", self.angle)
        if np.any(self.delta <= 0) or not self.tau > 0:
            raise layer_error(name, f"PRF needs Δ > 0 and τ > 0, got Δ {self.delta.min():g}..{self.delta.max():g}, τ {self.tau}")
        self.lower().check(name, shape)

    def parallel(self, x):
        h = resonator(x, torch.as_tensor(self.delta), torch.as_tensor(self.angle), self.tau)
        return h, fire(h, self.threshold)

    def lower(self):
        magnitude = np.exp(-self.delta / self.tau)
        rotation = self.delta * self.angle
        cell = Resonator(decay_re=magnitude * np.cos(rotation), decay_im=magnitude * np.sin(rotation), gain=self.delta)
        return Neuron(cells=(cell,), fire=Fire(threshold=np.array([self.threshold])))


class PRF(nn.Module):
    """Parallel resonate-and-fire neurons, `channels` of them with their own Δ and θ."""

    def __init__(self, channels: int, tau: float = 2.0, threshold: float = 1.0, dt_min: float = 1e-3, dt_max: float = 1e-1, alpha: float = 2.0):
        super().__init__()
        if not tau > 0 or not 0 < dt_min <= dt_max:
            raise ValueError(f"tau must be > 0 and 0 < dt_min <= dt_max, got {tau}, {dt_min}, {dt_max}")
        self.tau, self.threshold, self.alpha = float(tau), float(threshold), alpha
        self.log_dt = nn.Parameter(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.theta_log = nn.Parameter(torch.log(2 * math.pi * torch.rand(channels).clamp_min(1e-3)))

    def forward(self, x):
        return resonator(x, torch.exp(self.log_dt), torch.exp(self.theta_log), self.tau, Spikes(self.threshold, self.alpha))

    def to_op(self) -> PRFOp:
        delta, angle = (np.exp(to_numpy(p).astype(np.float64)) for p in (self.log_dt, self.theta_log))
        return PRFOp(delta=delta, angle=angle, tau=self.tau, threshold=self.threshold)

    def extra_repr(self):
        return f"channels={self.log_dt.shape[0]}, tau={self.tau}, threshold={self.threshold}"
