"""PSN, masked PSN and sliding PSN (Fang et al., NeurIPS 2023), compatible with SpikingJelly 2.0.

All three compute a membrane `h = W x + b` along time and fire `h >= 0` (the stored `bias` is minus
the threshold). Parameters, their names and shapes are SpikingJelly's, so its checkpoints load:
- `PSN(T)`: `weight [T, T]`, `bias [T, 1]`; dense in time, hence non-causal in general.
- `MaskedPSN(k, T, lambda_init)`: as PSN, plus buffers `_lambda_`, `mask0` (lower band of width k),
  `mask1`; the effective weight is `weight * mask0` once λ >= 1 (causal, k taps per step).
- `SlidingPSN(k, exp_init)`: `weight [k]`, scalar `bias`; one k-tap FIR shared over time.

Lowering: a causal T×T kernel becomes a `StepIndexed` cell (k−1 inputs of state, valid for t < T);
the sliding kernel becomes a `DelayLine` (valid for any length). Both fire `h >= 0`.

Training forms (`spc.frontends.torch.kernels`): the sliding kernel is a fused FIR + firing kernel,
O(T·k); a masked PSN whose band is narrow enough (λ >= 1) runs as chunked band GEMMs, O(T·k); a full
PSN, and a masked PSN that is still dense (λ < 1), is the T×T product (that is the model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import DelayLine, Fire, Neuron, StepIndexed
from spc.compiler.ir import finite, layer_error
from spc.frontends.torch.firing import Spikes, fire
from spc.frontends.torch.kernels import filters
from spc.frontends.torch.neurons.base import ParallelNeuronOp, to_numpy

_FIRE_AT_ZERO = Fire(threshold=np.zeros(1))


def band(weight: np.ndarray, k: int) -> np.ndarray:
    """The lower band of a [T, T] matrix as [T, k]: row t holds W[t, t−k+1 .. t] (zeros before 0)."""
    steps = weight.shape[0]
    out = np.zeros((steps, k), dtype=weight.dtype)
    for i in range(k):
        lag = k - 1 - i  # column t - lag
        out[lag:, i] = np.diagonal(weight, offset=-lag)
    return out


def band_width(weight: np.ndarray) -> int:
    """The smallest k such that W is zero outside its lower band of width k."""
    lower = np.tril(weight)
    rows, cols = np.nonzero(lower)
    return int((rows - cols).max()) + 1 if rows.size else 1


def sliding_membrane(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """h[t] = Σ_i w_i x[t−k+1+i] + b, zeros before t = 0 (`filters.fir`: native, band GEMMs or FFT
    by k, see its dispatch rule)."""
    return filters.fir(x, weight, torch.as_tensor(bias, dtype=x.dtype, device=x.device))


def _check_time_matrix(name: str, weight: np.ndarray, bias: np.ndarray) -> None:
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1] or bias.shape != (weight.shape[0],):
        raise layer_error(name, f"time weight {weight.shape} and bias {bias.shape} must be [T, T] and [T]")
    finite(name, "weight", weight)
    finite(name, "bias", bias)


class _TimeMatrixOp(ParallelNeuronOp):
    """Shared behaviour of the families whose kernel is a T×T matrix."""

    weight: np.ndarray
    bias: np.ndarray

    def effective_weight(self) -> np.ndarray:
        return self.weight

    @property
    def time_steps(self):
        return self.weight.shape[0]

    def check(self, name, shape):
        _check_time_matrix(name, self.weight, self.bias)

    def future_share(self) -> float:
        """The share of |W| that multiplies future inputs (above the diagonal)."""
        w = np.abs(self.effective_weight())
        total = w.sum()
        return float(np.triu(w, 1).sum() / total) if total else 0.0

    def causality_hint(self) -> str:
        return ""

    def drop_future(self) -> PSNOp:
        """The causal approximation: the same kernel without its upper triangle."""
        return PSNOp(weight=np.tril(self.effective_weight()), bias=self.bias)

    def band(self) -> int | None:
        """The band width the kernel is known to have without reading it (None: dense)."""
        return None

    def parallel(self, x):
        w = torch.as_tensor(self.effective_weight(), dtype=x.dtype, device=x.device)
        b = torch.as_tensor(self.bias, dtype=x.dtype, device=x.device)
        h = filters.time_matrix(x, w, b, self.band())
        return h, fire(h, 0.0)

    def lower(self):
        w = self.effective_weight()
        if np.any(np.triu(w, 1)):
            raise ValueError("lower() of a non-causal kernel: run check_causality first")
        k = band_width(w)
        return Neuron(cells=(StepIndexed(weights=band(w, k), bias=self.bias),), fire=_FIRE_AT_ZERO)


@dataclass(frozen=True, eq=False)
class PSNOp(_TimeMatrixOp, kind="PSN"):
    weight: np.ndarray  # [T, T]
    bias: np.ndarray  # [T]

    def causality_hint(self):
        return "a PSN's T×T weight may reach any future step"


@dataclass(frozen=True, eq=False)
class MaskedPSNOp(_TimeMatrixOp, kind="MaskedPSN"):
    weight: np.ndarray  # [T, T], raw (values outside the band are kept, as SpikingJelly stores them)
    bias: np.ndarray  # [T]
    k: int
    lam: float

    def effective_weight(self):
        mask = np.tril(np.ones_like(self.weight)) * np.triu(np.ones_like(self.weight), -(self.k - 1))
        if self.lam >= 1.0:
            return self.weight * mask
        return (self.lam * mask + (1.0 - self.lam)) * self.weight

    def band(self):
        return self.k if self.lam >= 1.0 else None

    def check(self, name, shape):
        super().check(name, shape)
        if not 1 <= self.k <= self.weight.shape[0]:
            raise layer_error(name, f"MaskedPSN order k={self.k} must be in [1, T={self.weight.shape[0]}]")

    def causality_hint(self):
        return f"its λ = {self.lam:g} < 1, so the progressive masking is unfinished and the weight is dense; finish the λ schedule at 1"


@dataclass(frozen=True, eq=False)
class SlidingPSNOp(ParallelNeuronOp, kind="SlidingPSN"):
    weight: np.ndarray  # [k]; weight[-1] multiplies the current input
    bias: float

    def check(self, name, shape):
        if self.weight.ndim != 1 or self.weight.size < 1:
            raise layer_error(name, f"SlidingPSN weight has shape {self.weight.shape}; expected [k]")
        finite(name, "weight", self.weight)
        finite(name, "bias", np.asarray(self.bias))

    def parallel(self, x):
        w = torch.as_tensor(self.weight, dtype=x.dtype, device=x.device)
        h = sliding_membrane(x, w, self.bias)
        return h, fire(h, 0.0)

    def lower(self):
        taps = self.weight.reshape(1, -1)
        return Neuron(cells=(DelayLine(taps=taps, bias=np.asarray([self.bias], dtype=taps.dtype)),), fire=_FIRE_AT_ZERO)


class _TimeMatrixNeuron(nn.Module):
    def _init_time_matrix(self, T: int, alpha: float):
        self.T = T
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(T, T))
        self.bias = nn.Parameter(torch.full((T, 1), -1.0))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def _effective_weight(self) -> torch.Tensor:
        return self.weight

    def _band(self) -> int | None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, ...] time-major. Returns spikes of the same shape."""
        if x.shape[0] != self.T:
            raise ValueError(f"{type(self).__name__} is defined for T={self.T} steps, got an input with {x.shape[0]}")
        return filters.time_matrix(x, self._effective_weight(), self.bias.view(-1), self._band(), Spikes(0.0, self.alpha))


class PSN(_TimeMatrixNeuron):
    """Parallel spiking neuron: h = W x + b over all T steps at once (dense, non-causal)."""

    def __init__(self, T: int, alpha: float = 2.0):
        super().__init__()
        self._init_time_matrix(T, alpha)

    def to_op(self) -> PSNOp:
        return psn_op(self)

    def extra_repr(self):
        return f"T={self.T}"


class MaskedPSN(_TimeMatrixNeuron):
    """Masked PSN of order k: each step sees its k latest inputs (once λ >= 1)."""

    def __init__(self, k: int, T: int, lambda_init: float = 0.0, alpha: float = 2.0):
        super().__init__()
        self._init_time_matrix(T, alpha)
        self.k = k
        self.register_buffer("_lambda_", torch.as_tensor(float(lambda_init)))
        ones = torch.ones(T, T)
        self.register_buffer("mask0", torch.tril(ones) * torch.triu(ones, -(k - 1)))
        self.register_buffer("mask1", ones)

    @property
    def lambda_(self) -> torch.Tensor:
        return self._lambda_

    @lambda_.setter
    def lambda_(self, value: float):
        self._lambda_.fill_(value)

    def _band(self):
        return self.k if self._lambda_ >= 1.0 else None

    def _effective_weight(self):
        lam = self._lambda_
        if lam >= 1.0:
            return self.weight * self.mask0
        return (lam * self.mask0 + (1.0 - lam) * self.mask1) * self.weight

    def to_op(self) -> MaskedPSNOp:
        return masked_psn_op(self)

    def extra_repr(self):
        return f"k={self.k}, T={self.T}, lambda_={float(self._lambda_):g}"


class SlidingPSN(nn.Module):
    """Sliding PSN of order k: one k-tap kernel shared over time; runs for any sequence length."""

    def __init__(self, k: int, exp_init: bool = True, alpha: float = 2.0):
        super().__init__()
        self.k = k
        self.alpha = alpha
        if exp_init:
            weight = 0.5 ** torch.arange(k - 1, -1, -1, dtype=torch.float32)
        else:
            weight = torch.empty(1, k)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            weight = weight[0]
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.as_tensor(-1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return filters.fir(x, self.weight, self.bias, Spikes(0.0, self.alpha))

    def to_op(self) -> SlidingPSNOp:
        return sliding_psn_op(self)

    def extra_repr(self):
        return f"k={self.k}"


# These read modules by SpikingJelly's attribute names, so they serve SpikingJelly's classes too.
def psn_op(module: nn.Module) -> PSNOp:
    return PSNOp(weight=to_numpy(module.weight), bias=to_numpy(module.bias).reshape(-1))


def masked_psn_op(module: nn.Module) -> MaskedPSNOp:
    return MaskedPSNOp(weight=to_numpy(module.weight), bias=to_numpy(module.bias).reshape(-1), k=int(module.k), lam=float(module._lambda_))


def sliding_psn_op(module: nn.Module) -> SlidingPSNOp:
    return SlidingPSNOp(weight=to_numpy(module.weight), bias=float(module.bias.detach()))
