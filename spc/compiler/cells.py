"""Stepwise neurons: a chain of cells followed by a firing rule.

Every parallel neuron lowers to a `Neuron`: cells applied in order (each one's output is the next
one's input) and then `Fire`. The last cell's output is the membrane `h[t]` that fires; its state
is what a reset acts on. Float semantics, per channel c (parameters broadcast over the remaining
feature dimensions), state zero before t = 0:

- `Leaky`:       v[t] = decay·v[t−1] + gain·x[t]                     (state: v)
- `DelayLine`:   y[t] = Σ_{i<k} taps[i]·x[t − (k−1−i)·dilation] + bias  (state: (k−1)·dilation inputs)
- `StepIndexed`: y[t] = Σ_{i<k} weights[t, i]·x[t − k + 1 + i] + bias[t], defined for t < T only
                 (state: k−1 inputs and the step counter)
- `Sigmoid`:     y[t] = gain·σ(x[t])                                  (no state)
- `Gate`:        y[t] = gain·x[t]·(1 − b[t]): b[t] = 1 when u[t] < σ(x[t]) (`stochastic`, u the
                 counter-based uniform of `spc.compiler.rng` for `seed`), else b[t] = σ(x[t]), the
                 gate's expectation                                     (no state)
- `Gated`:       a[t] = σ(Σ_{i<k} taps[i]·x[t − (k−1−i)] + bias);
                 h[t] = a[t]·h[t−1] + (1 − a[t])·x[t]: a decay chosen by the input
                 (state: h and k−1 inputs)
- `Resonator`:   u[t] = φr·u[t−1] − φi·r[t−1] + gain·x[t];  r[t] = φi·u[t−1] + φr·r[t−1];
                 output u: z = u + i·r is the damped rotation z[t] = (φr + i·φi)·z[t−1] + gain·x[t]
                 (state: u, r)
- `Fire`:        s[t] = h[t] ≥ θ (or > θ when `strict`); when `stochastic`, s[t] = u[t] < σ(h[t] − θ)
                 with u the counter-based uniform of `spc.compiler.rng` for `seed`.
                 Reset after firing: 'none', 'zero' (v ← 0) or 'subtract' (v ← v − θ), applied to
                 the last cell's state, which must then be a `Leaky`. *Graded* firing
                 (`max_spikes` > 1, subtractive reset, θ > 0, as Xylo's neurons): s[t] counts how
                 often the rule fires while θ is subtracted, min(max_spikes, floor(h[t]/θ)) (with
                 `strict`, ceil(h[t]/θ) − 1), at least 0; then v ← v − s[t]·θ.

A `Neuron` without `fire` outputs its membrane (a non-spiking readout).

Counter-based uniforms are indexed by (seed, step, flat position in the per-step tensor [B, *shape]),
so a `Gate` and a stochastic `Fire` draw the same numbers as the parallel form that trained them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.ir import NeuronOp, Record, channel_params, finite, layer_error

RESETS = ("none", "zero", "subtract")


def check_kernel(name: str, kind: str, taps: np.ndarray, bias: np.ndarray, shape: tuple[int, ...]) -> None:
    """A per-channel (or shared) causal kernel: taps [C or 1, k], bias [C or 1]."""
    if taps.ndim != 2 or taps.shape[1] < 1:
        raise layer_error(name, f"{kind} taps have shape {taps.shape}; expected [channels, k]")
    channel_params(name, "taps", taps[:, 0], shape)
    channel_params(name, "bias", bias, shape)


class Cell(Record):
    resettable = False  # whether a firing rule may reset this cell's state (it is a membrane)
    time_steps = None  # the sequence length a time-indexed cell is defined for
    integer = False  # integer cells (spc.compiler.qcells) follow docs/integer-spec.md
    state_size = 0  # values of state each neuron keeps between steps

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Leaky(Cell):
    decay: np.ndarray  # [C] or [1]
    gain: np.ndarray  # [C] or [1]
    resettable = True
    state_size = 1

    def check(self, name, shape):
        channel_params(name, "decay", self.decay, shape)
        channel_params(name, "gain", self.gain, shape)
        finite(name, "decay", self.decay)
        finite(name, "gain", self.gain)
        if np.any(self.decay < 0) or np.any(self.decay > 1):
            raise layer_error(name, f"decay {self.decay.min():g}..{self.decay.max():g} lies outside [0, 1] (a time constant below one step, or negative)", "use time constants tau >= 1 step (decay = 1 - 1/tau)")


class KernelCell(Cell):
    """A cell with a causal kernel `taps` [C or 1, k], its taps `dilation` steps apart (1 unless the
    cell has that field); its state is the kernel's (k − 1)·dilation past inputs."""

    taps: np.ndarray
    dilation = 1

    @property
    def order(self) -> int:
        return self.taps.shape[1]

    @property
    def state_size(self) -> int:
        return (self.order - 1) * self.dilation


@dataclass(frozen=True, eq=False)
class DelayLine(KernelCell):
    taps: np.ndarray  # [C or 1, k]; taps[:, -1] multiplies the current input
    bias: np.ndarray  # [C] or [1]
    dilation: int = 1

    def check(self, name, shape):
        check_kernel(name, self.kind, self.taps, self.bias, shape)
        if self.dilation < 1:
            raise layer_error(name, f"DelayLine dilation {self.dilation} must be >= 1")
        finite(name, "taps", self.taps)
        finite(name, "bias", self.bias)


class TimeIndexedCell(Cell):
    """A cell with its own k-tap kernel for every step, `weights` [T, k], defined for t < T."""

    weights: np.ndarray

    @property
    def time_steps(self) -> int:
        return self.weights.shape[0]

    @property
    def order(self) -> int:
        return self.weights.shape[1]

    @property
    def state_size(self) -> int:
        return self.order - 1


@dataclass(frozen=True, eq=False)
class StepIndexed(TimeIndexedCell):
    weights: np.ndarray  # [T, k]; row t weighs x[t-k+1 .. t]
    bias: np.ndarray  # [T]

    def check(self, name, shape):
        if self.weights.ndim != 2 or self.bias.shape != (self.weights.shape[0],):
            raise layer_error(name, f"StepIndexed weights {self.weights.shape} and bias {self.bias.shape} do not match")
        finite(name, "weights", self.weights)
        finite(name, "bias", self.bias)


def _checked(name: str, shape: tuple[int, ...], **params: np.ndarray) -> None:
    """Per-channel (or shared) finite parameters."""
    for what, values in params.items():
        channel_params(name, what, values, shape)
        finite(name, what, values)


@dataclass(frozen=True, eq=False)
class Sigmoid(Cell):
    gain: np.ndarray  # [C] or [1]

    def check(self, name, shape):
        _checked(name, shape, gain=self.gain)


@dataclass(frozen=True, eq=False)
class Gate(Cell):
    gain: np.ndarray  # [C] or [1]
    stochastic: bool = False
    seed: int = 0

    def check(self, name, shape):
        _checked(name, shape, gain=self.gain)


@dataclass(frozen=True, eq=False)
class Gated(KernelCell):
    taps: np.ndarray  # [C or 1, k]: the gate's causal kernel; taps[:, -1] multiplies the current input
    bias: np.ndarray  # [C] or [1]

    @property
    def state_size(self) -> int:
        return 1 + super().state_size  # the membrane and the gate kernel's past inputs

    def check(self, name, shape):
        check_kernel(name, self.kind, self.taps, self.bias, shape)
        finite(name, "taps", self.taps)
        finite(name, "bias", self.bias)


@dataclass(frozen=True, eq=False)
class Resonator(Cell):
    decay_re: np.ndarray  # [C] or [1]: φr = |A|·cos(angle)
    decay_im: np.ndarray  # [C] or [1]: φi = |A|·sin(angle)
    gain: np.ndarray  # [C] or [1]
    state_size = 2  # real and imaginary part

    def check(self, name, shape):
        _checked(name, shape, decay_re=self.decay_re, decay_im=self.decay_im, gain=self.gain)
        if self.decay_re.shape != self.decay_im.shape or np.any(np.hypot(self.decay_re, self.decay_im) > 1):
            raise layer_error(name, "Resonator decays must pair up and have |φr + i·φi| <= 1 (a growing rotation is unstable)", "use a decay exp(−Δ/τ) <= 1")


def check_graded(name: str, fire) -> None:
    """Graded firing (several spikes per step) counts subtractions of a positive threshold."""
    if fire.max_spikes < 1:
        raise layer_error(name, f"max_spikes {fire.max_spikes} must be at least 1")
    if fire.max_spikes > 1 and (fire.reset != "subtract" or fire.stochastic or np.any(fire.threshold <= 0)):
        raise layer_error(name, "graded firing (max_spikes > 1) needs a deterministic rule, subtractive reset and a positive threshold")


@dataclass(frozen=True, eq=False)
class Fire(Record):
    threshold: np.ndarray  # [C] or [1]
    strict: bool = False
    reset: str = "none"
    stochastic: bool = False
    seed: int = 0
    max_spikes: int = 1  # > 1: graded spike counts (see the module docstring)

    def check(self, name, shape):
        channel_params(name, "threshold", self.threshold, shape)
        finite(name, "threshold", self.threshold)
        if self.reset not in RESETS:
            raise layer_error(name, f"reset '{self.reset}' is not one of {RESETS}")
        check_graded(name, self)


@dataclass(frozen=True, eq=False)
class Neuron(NeuronOp):
    """The stepwise form every neuron lowers to."""

    cells: tuple[Cell, ...]
    fire: Fire | None = None

    @property
    def spiking(self) -> bool:
        return self.fire is not None and not getattr(self.fire, "readout", False)

    @property
    def time_steps(self):
        limits = [c.time_steps for c in self.cells if c.time_steps is not None]
        return min(limits) if limits else None

    def check(self, name, shape):
        if not self.cells:
            raise layer_error(name, "a neuron needs at least one cell")
        for cell in self.cells:
            cell.check(name, shape)
        if self.fire is not None:
            self.fire.check(name, shape)
            if self.fire.reset != "none" and not self.cells[-1].resettable:
                raise layer_error(name, f"reset '{self.fire.reset}' needs a leaky membrane as the last cell")
