"""PSU, IPSU and RPSU, the parallel spiking units of Li et al. (2024), as BrainCog defines them
(`braincog/base/node/node.py`), with a fixed time constant τ and threshold θ:

    m1[i, j] = τ^−(i−j+1) (i >= j),    m2[i, j] = −τ^−(i−j) (i > j)
    PSU:   d = m1·X;   V = d + θ·m2·σ(d)
    IPSU:  V = tril(W)·X + b + m2·X
    RPSU:  V = m1·X + m2·σ(tril(W)·X + b)
    spike: V > θ  (BrainCog's ATan surrogate fires on a strictly positive argument)

W [T, T] and b [T] are learned and shared by all neurons of a layer (BrainCog's `fc`, masked to
its lower triangle). Stepwise, exactly: m1·X is the leaky integrator d[t] = (d[t−1] + x[t])/τ, and
m2·y is the same filter applied to −y one step late. Hence

    PSU   d: Leaky(1/τ, 1/τ) on x;   r: Sigmoid(gain −θ) → lag → Leaky(1/τ, 1/τ) on d;   V = d + r
    IPSU  one StepIndexed with the kernel tril(W) + m2 (t < T only)
    RPSU  m: Leaky(1/τ, 1/τ) on x;   r: StepIndexed(W, b) → Sigmoid(−1) → lag → Leaky(1/τ, 1/τ);   V = m + r

(a sum of branches: a `Subgraph`). IPSU's and RPSU's time-indexed kernels can be replaced, on
request, by time-invariant ones (`spc.compiler.passes.time_invariant`). Training: the exponential
filters run as `kernels.filters.chain` (O(T)), the T×T kernels as one matrix product; PSU's module
runs as one fused kernel, `kernels.filters.psu` (both filters, the sigmoid feedback and the firing
rule; its backward reruns the membrane from checkpoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Leaky, Neuron, Sigmoid
from spc.compiler.ir import Add, layer_error
from spc.compiler.passes.lower import INPUT, Subgraph, lag, passthrough
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy
from spc.frontends.torch.neurons.timekernel import ExpKernel, IndexedKernel, indexed_time_invariant, kernel_neuron


def unit_matrices(steps: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """BrainCog's m1 and m2 for T steps."""
    lag_ = np.arange(steps)[:, None] - np.arange(steps)[None, :]
    m1 = np.where(lag_ >= 0, tau ** -(lag_ + 1.0), 0.0)
    m2 = np.where(lag_ > 0, -(tau ** -lag_.astype(float)), 0.0)
    return m1, m2


def integrate(x: torch.Tensor, tau: float) -> torch.Tensor:
    """m1·x: d[t] = (d[t−1] + x[t])/τ along dim 0."""
    return filters.chain(x, (1.0 / tau,), (1.0 / tau,))


def delayed(y: torch.Tensor) -> torch.Tensor:
    """y one step late, zero at t = 0."""
    return torch.cat([torch.zeros_like(y[:1]), y[:-1]])


def feedback(y: torch.Tensor, tau: float, gain: float) -> torch.Tensor:
    """gain·m2·σ(y) = −gain·m1·σ(y)[t − 1]."""
    return integrate(delayed(-gain * torch.sigmoid(y)), tau)


def _feedback_branch(tau: float, gain: float, cells: tuple = ()) -> Neuron:
    """Stepwise gain·m2·σ(·) (after `cells`): Sigmoid(−gain) → lag → Leaky(1/τ, 1/τ)."""
    rate = np.array([1.0 / tau])
    return Neuron(cells=cells + (Sigmoid(gain=np.array([-gain])), lag(), Leaky(decay=rate, gain=rate)))


def _fire(threshold: float) -> Fire:
    return Fire(threshold=np.array([threshold]), strict=True)


def _sum_then_fire(branches: list, threshold: float) -> Subgraph:
    """The nodes of `branches` ("a", "b" the two terms), their sum, and the firing membrane."""
    return Subgraph(tuple(branches) + (("sum", Add(), ("a", "b")), ("", Neuron(cells=(passthrough(),), fire=_fire(threshold)), ("sum",))))


def _check_unit(name: str, tau: float, threshold: float) -> None:
    if not tau >= 1.0 or not math.isfinite(threshold):
        raise layer_error(name, f"tau = {tau} must be >= 1 and the threshold {threshold} finite")


@dataclass(frozen=True, eq=False)
class PSUOp(ParallelNeuronOp, kind="PSU"):
    tau: float
    threshold: float

    def check(self, name, shape):
        _check_unit(name, self.tau, self.threshold)

    def parallel(self, x):
        d = integrate(x, self.tau)
        h = d + feedback(d, self.tau, self.threshold)
        return h, fire(h, self.threshold, strict=True)

    def lower(self):
        rate = np.array([1.0 / self.tau])
        return _sum_then_fire([("a", Neuron(cells=(Leaky(decay=rate, gain=rate),)), (INPUT,)), ("b", _feedback_branch(self.tau, self.threshold), ("a",))], self.threshold)


class _KernelUnitOp(ParallelNeuronOp):
    """A unit with a learned kernel: defined for t < T while it is time-indexed."""

    kernel: IndexedKernel | ExpKernel

    @property
    def time_steps(self):
        return self.kernel.time_steps

    def time_invariant(self, max_terms: int):
        return indexed_time_invariant(self, max_terms)


@dataclass(frozen=True, eq=False)
class IPSUOp(_KernelUnitOp, kind="IPSU"):
    kernel: IndexedKernel | ExpKernel  # tril(W) + m2 and b, or its time-invariant approximation
    threshold: float

    def check(self, name, shape):
        self.kernel.check(name)
        _check_unit(name, 1.0, self.threshold)

    def parallel(self, x):
        h = self.kernel.apply(x)
        return h, fire(h, self.threshold, strict=True)

    def lower(self):
        return kernel_neuron(self.kernel, _fire(self.threshold))


@dataclass(frozen=True, eq=False)
class RPSUOp(_KernelUnitOp, kind="RPSU"):
    kernel: IndexedKernel | ExpKernel  # tril(W) and b inside the sigmoid
    tau: float
    threshold: float

    def check(self, name, shape):
        self.kernel.check(name)
        _check_unit(name, self.tau, self.threshold)

    def parallel(self, x):
        h = integrate(x, self.tau) + feedback(self.kernel.apply(x), self.tau, 1.0)
        return h, fire(h, self.threshold, strict=True)

    def lower(self):
        rate = np.array([1.0 / self.tau])
        nodes, inner, cells = self.kernel.stage()
        branches = nodes + [("a", Neuron(cells=(Leaky(decay=rate, gain=rate),)), (INPUT,)), ("b", _feedback_branch(self.tau, 1.0, cells), (inner,))]
        return _sum_then_fire(branches, self.threshold)


class _Unit(nn.Module):
    def __init__(self, T: int, tau: float, threshold: float, alpha: float):
        super().__init__()
        if not tau >= 1.0:
            raise ValueError(f"tau must be >= 1, got {tau}")
        self.T, self.tau, self.threshold, self.alpha = T, float(tau), float(threshold), alpha

    def _spikes(self, h: torch.Tensor) -> torch.Tensor:
        return fire(h, self.threshold, strict=True, alpha=self.alpha)

    def extra_repr(self):
        return f"T={self.T}, tau={self.tau}, threshold={self.threshold}"


class _LearnedUnit(_Unit):
    """A unit with BrainCog's learned T×T kernel `fc` (weight masked to its lower triangle, bias [T])."""

    def __init__(self, T: int, tau: float, threshold: float, alpha: float):
        super().__init__(T, tau, threshold, alpha)
        self.fc = nn.Linear(T, T)
        nn.init.constant_(self.fc.bias, 0.0)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out", nonlinearity="relu")
        self.register_buffer("mask0", torch.tril(torch.ones(T, T)))

    def _kernel(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[0] != self.T:
            raise ValueError(f"{type(self).__name__} is defined for T={self.T} steps, got an input with {x.shape[0]}")
        w = self.fc.weight * self.mask0 if extra is None else self.fc.weight * self.mask0 + extra
        return filters.time_matrix(x, w.to(x.dtype), self.fc.bias.to(x.dtype))

    def _indexed(self, extra: torch.Tensor | None = None) -> IndexedKernel:
        w = np.tril(to_numpy(self.fc.weight)).astype(np.float64)  # sums in float64, as the model's float64 copy adds them
        return IndexedKernel(weight=w if extra is None else w + to_numpy(extra), bias=to_numpy(self.fc.bias))


class PSU(_Unit):
    """Parallel spiking unit: V = m1·x − θ·(m1·σ(m1·x)) one step late; fires V > θ. No parameters."""

    def __init__(self, T: int = 8, tau: float = 2.0, threshold: float = 1.0, alpha: float = 2.0):
        super().__init__(T, tau, threshold, alpha)

    def forward(self, x):
        return filters.psu(x, self.tau, self.threshold, Spikes(self.threshold, self.alpha, strict=True))

    def to_op(self) -> PSUOp:
        return PSUOp(tau=self.tau, threshold=self.threshold)


class IPSU(_LearnedUnit):
    """Input-learned PSU: V = (tril(W) + m2)·x + b, W and b learned; fires V > θ; t < T only."""

    def __init__(self, T: int, tau: float = 2.0, threshold: float = 1.0, alpha: float = 2.0):
        super().__init__(T, tau, threshold, alpha)
        self.register_buffer("m2", torch.from_numpy(unit_matrices(T, tau)[1]).float())

    def forward(self, x):
        return self._spikes(self._kernel(x, self.m2))

    def to_op(self) -> IPSUOp:
        return IPSUOp(kernel=self._indexed(self.m2), threshold=self.threshold)


class RPSU(_LearnedUnit):
    """Reset-learned PSU: V = m1·x + m2·σ(tril(W)·x + b), W and b learned; fires V > θ; t < T only."""

    def __init__(self, T: int, tau: float = 2.0, threshold: float = 1.0, alpha: float = 2.0):
        super().__init__(T, tau, threshold, alpha)

    def forward(self, x):
        return self._spikes(integrate(x, self.tau) + feedback(self._kernel(x), self.tau, 1.0))

    def to_op(self) -> RPSUOp:
        return RPSUOp(kernel=self._indexed(), tau=self.tau, threshold=self.threshold)
