"""MPE-PSN, the membrane-potential-estimation parallel spiking neuron (Chen et al., 2024;
github.com/Chrazqee/MPE-PSN), both published variants. With a gate b_t ~ Bernoulli(σ(X[t])) and the
estimate V̂[t] = (1 − b_t)·X[t]:

    variant "A":  H[t] = X[t] + τ·V̂[t−1]                 (the CIFAR code)
    variant "B":  H[t] = X[t]·(1 + τ·(1 − b_t)) = X[t] + τ·V̂[t]
    spike: H > θ  (the reference surrogates fire on a strictly positive argument); θ learned, τ = 0.25

The gate's gradient flows through X only (the draw is a constant, as `torch.bernoulli` is in the
reference). In training mode the gate draws fresh random numbers: u < σ(X) with u a counter-based hash
of each element's index under a key drawn from torch's generator (so `torch.manual_seed` makes
training reproducible), computed with the membrane, the spikes and, backward, the surrogate gradient
in one fused pass each way (`kernels.filters.random_gate`). In eval mode, and in every compiled form,
it draws the counter-based uniforms of `spc.compiler.rng` for `seed`, so the parallel and stepwise
forms take the same draws. `stochastic=False` replaces b by its expectation σ(X) (the published
inference substitute). The DVSGesture code's softmax-over-time gate is not causal and is not offered.

Stepwise (exact, a `Subgraph`): gate: Gate(τ) (then a one-step lag for "A") on x; sum: x + gate;
the layer: the sum as membrane, fired H > θ. In the integer form the sum needs τ to be a power of
two (0.25: a shift by 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Gate, Neuron
from spc.compiler.ir import Add, layer_error
from spc.compiler.passes.lower import INPUT, Subgraph, lag, passthrough
from spc.frontends.torch.firing import fire, uniforms_like
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons.base import ParallelNeuronOp
from spc.frontends.torch.neurons.psu import delayed

VARIANTS = ("A", "B")


def membrane(x: torch.Tensor, variant: str, tau: float, closed: torch.Tensor) -> torch.Tensor:
    """H for a gate that is closed (b) with `closed`, a 0/1 draw or the probability σ(x)."""
    estimate = (1 - closed) * x
    return x + tau * (delayed(estimate) if variant == "A" else estimate)


def _draws(x: torch.Tensor, seed: int) -> torch.Tensor:
    """b from the counter-based uniforms (b is a constant for autograd)."""
    return (uniforms_like(x, seed) < torch.sigmoid(x.detach())).to(x.dtype)


@dataclass(frozen=True, eq=False)
class MPEPSNOp(ParallelNeuronOp, kind="MPEPSN"):
    variant: str
    tau: float
    threshold: float
    stochastic: bool = True
    seed: int = 0

    def check(self, name, shape):
        if self.variant not in VARIANTS:
            raise layer_error(name, f"MPE-PSN variant '{self.variant}' is not one of {VARIANTS}")
        if not self.tau > 0 or not np.isfinite(self.threshold):
            raise layer_error(name, f"MPE-PSN needs tau > 0 and a finite threshold, got {self.tau}, {self.threshold}")

    def parallel(self, x):
        closed = _draws(x, self.seed) if self.stochastic else torch.sigmoid(x)
        h = membrane(x, self.variant, self.tau, closed)
        return h, fire(h, self.threshold, strict=True)

    def lower(self):
        cells = (Gate(gain=np.array([self.tau]), stochastic=self.stochastic, seed=self.seed),) + ((lag(),) if self.variant == "A" else ())
        firing = Fire(threshold=np.array([self.threshold]), strict=True)
        return Subgraph((("gate", Neuron(cells=cells), (INPUT,)), ("sum", Add(), (INPUT, "gate")), ("", Neuron(cells=(passthrough(),), fire=firing), ("sum",))))


class MPEPSN(nn.Module):
    """MPE-PSN layer; `variant` "A" (estimate one step late) or "B" (same step); θ is learned."""

    def __init__(self, variant: str = "B", tau: float = 0.25, threshold: float = 1.0, stochastic: bool = True, seed: int = 0, alpha: float = 2.0):
        super().__init__()
        if variant not in VARIANTS or not tau > 0:
            raise ValueError(f"variant must be one of {VARIANTS} and tau > 0, got {variant!r}, {tau}")
        self.variant, self.tau, self.stochastic, self.seed, self.alpha = variant, float(tau), stochastic, seed, alpha
        self.threshold = nn.Parameter(torch.as_tensor(float(threshold)))

    def forward(self, x):
        if self.stochastic and self.training:  # fresh draws from torch's generator: a key for the hash
            key = tuple(torch.randint(0, 2**32, (2,)).tolist())
            return filters.random_gate(x, self.threshold, self.variant == "A", self.tau, key, self.alpha)
        closed = _draws(x, self.seed) if self.stochastic else torch.sigmoid(x)
        return fire(membrane(x, self.variant, self.tau, closed), self.threshold.to(x.dtype), strict=True, alpha=self.alpha)

    def to_op(self) -> MPEPSNOp:
        return MPEPSNOp(variant=self.variant, tau=self.tau, threshold=float(self.threshold.detach()), stochastic=self.stochastic, seed=self.seed)

    def extra_repr(self):
        return f"variant={self.variant!r}, tau={self.tau}, stochastic={self.stochastic}, seed={self.seed}"
