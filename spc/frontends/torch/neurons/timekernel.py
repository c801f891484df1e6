"""Temporal kernels h = K x + b shared by several families, in two forms:

- `IndexedKernel`: a causal T×T matrix (row t weighs x[0..t]) and a bias per step; exact, but
  defined for t < T only (IPSU, RPSU's inner kernel; PSN and MaskedPSN hold theirs themselves);
- `ExpKernel`: a sum of exponentials whose decays are shift decays, K[t, j] = Σ_m g_m·a_m^(t−j)
  with a_0 = 0 (the current input) and a_m = 1 − 2^−n_m, and one bias: time-invariant, so it runs
  for any length. `fit_exponentials` makes one from an IndexedKernel, only when asked
  (`spc.compiler.passes.time_invariant`).

Stepwise, an IndexedKernel is one `StepIndexed` cell; an ExpKernel is a sum of branches (one
`DelayLine` gain, then one `Leaky` for a decaying term), i.e. nodes of a `Subgraph`.
`TimeInvariantPSNOp` is what a PSN or MaskedPSN becomes when its kernel is made time-invariant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from spc.compiler.cells import DelayLine, Fire, Leaky, Neuron, StepIndexed
from spc.compiler.ir import Add, Record, finite, layer_error
from spc.compiler.passes.lower import INPUT, Subgraph, passthrough
from spc.frontends.torch.firing import fire
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons.base import ParallelNeuronOp
from spc.frontends.torch.neurons.psn import band, band_width

MAX_SHIFT_DECAY = 16
"""Decays 1 − 2^−n with n up to this are the candidates of the fit (time constants up to 2^16 steps)."""
MAX_CANCELLATION = 4.0
"""A fit whose terms add up to less than 1/4 of their sizes (nearly equal decays with large gains of
opposite signs) is refused: integer branches would lose more than 2 bits in the cancellation."""


@dataclass(frozen=True, eq=False)
class IndexedKernel(Record):
    weight: np.ndarray  # [T, T], lower triangular: the effective kernel
    bias: np.ndarray  # [T]

    @property
    def time_steps(self) -> int:
        return self.weight.shape[0]

    def check(self, name: str) -> None:
        if self.weight.ndim != 2 or self.weight.shape[0] != self.weight.shape[1] or self.bias.shape != (self.weight.shape[0],):
            raise layer_error(name, f"time kernel {self.weight.shape} and bias {self.bias.shape} must be [T, T] and [T]")
        if np.any(np.triu(self.weight, 1)):
            raise layer_error(name, "time kernel reaches future inputs (nonzero above the diagonal)")
        finite(name, "time kernel", self.weight)
        finite(name, "bias", self.bias)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        w, b = (torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in (self.weight, self.bias))
        return filters.time_matrix(x, w, b)

    def stage(self) -> tuple[list, str, tuple]:
        """(subgraph nodes, the suffix holding K x + b, cells a consumer prepends to compute it)."""
        return [], INPUT, (StepIndexed(weights=band(self.weight, band_width(self.weight)), bias=self.bias),)


@dataclass(frozen=True, eq=False)
class ExpKernel(Record):
    gains: np.ndarray  # [M]: gains[0] weighs the current input
    decays: np.ndarray  # [M]: decays[0] = 0, the others 1 − 2^−n
    bias: float
    time_steps = None

    def check(self, name: str) -> None:
        if self.gains.shape != self.decays.shape or self.gains.ndim != 1 or not self.gains.size or self.decays[0] != 0:
            raise layer_error(name, f"exponential kernel gains {self.gains.shape} and decays {self.decays.shape} must be [M] with decays[0] = 0")
        finite(name, "gains", self.gains)
        if np.any(self.decays < 0) or np.any(self.decays >= 1):
            raise layer_error(name, "exponential kernel decays must lie in [0, 1)")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        h = float(self.gains[0]) * x + self.bias
        for g, a in zip(self.gains[1:], self.decays[1:]):
            h = h + filters.chain(x, (float(a),), (float(g),))
        return h

    def stage(self) -> tuple[list, str, tuple]:
        nodes = [("e0", Neuron(cells=(DelayLine(taps=np.array([[self.gains[0]]]), bias=np.array([self.bias])),)), (INPUT,))]
        total = "e0"
        for m in range(1, self.gains.size):
            gain = DelayLine(taps=np.array([[self.gains[m]]]), bias=np.zeros(1))
            nodes.append((f"e{m}", Neuron(cells=(gain, Leaky(decay=self.decays[m : m + 1], gain=np.ones(1)))), (INPUT,)))
            nodes.append((f"sum{m}", Add(), (total, f"e{m}")))
            total = f"sum{m}"
        return nodes, total, ()

    def toeplitz(self, steps: int) -> np.ndarray:
        """The kernel as a [T, T] matrix (for measuring the approximation)."""
        lags = np.arange(steps)
        taps = (self.gains[:, None] * self.decays[:, None] ** lags[None, :]).sum(axis=0)
        index = lags[:, None] - lags[None, :]
        return np.where(index >= 0, taps[np.maximum(index, 0)], 0.0)


def kernel_neuron(kernel: IndexedKernel | ExpKernel, firing: Fire) -> Neuron | Subgraph:
    """h = K x + b, then the firing rule: one neuron when K needs no branches."""
    nodes, out, cells = kernel.stage()
    if not nodes:
        return Neuron(cells=cells, fire=firing)
    return Subgraph(tuple(nodes) + (("", Neuron(cells=(passthrough(),), fire=firing), (out,)),))


def fit_exponentials(weight: np.ndarray, bias: np.ndarray, max_terms: int) -> tuple[ExpKernel, dict]:
    """The time-invariant approximation of a causal kernel W [T, T] with bias b [T]: W's projection on
    Toeplitz matrices (the mean of each diagonal), fitted in least squares (each lag weighted by its
    number of entries) by the current-input term and up to max_terms − 1 shift-decay exponentials;
    b becomes its mean. Every set of decays is tried except those whose terms cancel (see
    MAX_CANCELLATION); the fewest terms that fit as well as the most (within 0.1 %) are kept.
    Returns the kernel and its errors, relative to ||W||_F."""
    steps = weight.shape[0]
    lags = np.arange(steps)
    diagonal = np.array([np.diagonal(weight, -lag).mean() for lag in lags])
    candidates = 1.0 - 2.0 ** -np.arange(1, MAX_SHIFT_DECAY + 1)
    basis = np.concatenate([(lags == 0)[None].astype(float), candidates[:, None] ** lags[None, :]]) * np.sqrt(steps - lags)  # [1 + n, T], weighted
    target = diagonal * np.sqrt(steps - lags)

    def solve(columns: tuple[int, ...]) -> tuple[float, np.ndarray, tuple[int, ...]]:
        terms = basis[list(columns)]
        gains, *_ = np.linalg.lstsq(terms.T, target, rcond=None)
        fitted = gains @ terms
        spread = np.linalg.norm(gains[:, None] * terms, axis=1).sum() / max(float(np.linalg.norm(fitted)), 1e-300)
        residual = float(np.sum((fitted - target) ** 2)) if spread <= MAX_CANCELLATION or len(columns) == 1 else np.inf
        return residual, gains, columns

    best = [min((solve((0,) + extra) for extra in itertools.combinations(range(1, basis.shape[0]), size)), key=lambda fit: fit[0]) for size in range(min(max_terms, basis.shape[0]))]
    floor = min(fit[0] for fit in best)
    residual, gains, columns = next(fit for fit in best if fit[0] <= 1.001 * floor + 1e-24 * float(target @ target))
    decays = np.array([0.0] + [candidates[c - 1] for c in columns[1:]])
    kernel = ExpKernel(gains=gains, decays=decays, bias=float(bias.mean()))
    norm = max(float(np.linalg.norm(weight)), 1e-300)
    projection = diagonal[np.maximum(lags[:, None] - lags[None, :], 0)] * (lags[:, None] >= lags[None, :])
    info = {
        "terms": [{"decay": float(a), "gain": float(g)} for a, g in zip(decays, gains)],
        "toeplitz_relative_error": float(np.linalg.norm(weight - projection) / norm),
        "kernel_relative_error": float(np.linalg.norm(weight - kernel.toeplitz(steps)) / norm),
        "bias_max_change": float(np.abs(bias - kernel.bias).max(initial=0.0)),
    }
    return kernel, info


@dataclass(frozen=True, eq=False)
class TimeInvariantPSNOp(ParallelNeuronOp, kind="TimeInvariantPSN"):
    """A PSN or MaskedPSN whose T×T kernel was replaced by an ExpKernel: fires K x + b >= 0."""

    kernel: ExpKernel

    def check(self, name, shape):
        self.kernel.check(name)

    def parallel(self, x):
        h = self.kernel.apply(x)
        return h, fire(h, 0.0)

    def lower(self):
        return kernel_neuron(self.kernel, Fire(threshold=np.zeros(1)))


def psn_time_invariant(op, max_terms: int) -> tuple[TimeInvariantPSNOp, dict]:
    """A causal PSN's or MaskedPSN's (λ >= 1) time-invariant approximation (its kernel's upper
    triangle, if any, must have been dropped by the causality pass)."""
    kernel, info = fit_exponentials(np.tril(op.effective_weight()), op.bias, max_terms)
    return TimeInvariantPSNOp(kernel=kernel), info


def indexed_time_invariant(op, max_terms: int):
    """For ops holding an IndexedKernel as `kernel`: the same op with the fitted ExpKernel."""
    kernel, info = fit_exponentials(op.kernel.weight, op.kernel.bias, max_terms)
    return op.replace(kernel=kernel), info
