"""The stepwise-native neurons real networks mix in: IF, LIF (reset to zero or by subtraction) and
the non-spiking leaky readout LI. Semantics follow SpikingJelly's IFNode / LIFNode:

    decay_input=True:  v ← v + (x − (v − v_reset)) / τ       decay_input=False: v ← v − (v − v_reset)/τ + x
    spike: v >= v_threshold;  reset: v ← v_reset (hard) or v ← v − v_threshold (v_reset=None, soft)

In the IR the membrane is measured from v_reset (w = v − v_reset), which turns every one of them into
`w ← decay·w + gain·x` with zero initial state, threshold `v_threshold − v_reset` and reset to zero:
one `Leaky` cell and a `Fire`. The reset leaves IF and LIF no parallel form: they train as the
recurrence itself, fused with its firing rule and hand-written backpropagation through time in a
native CPU kernel (`kernels.fused.lif`), or unrolled in torch where that is unavailable (CUDA, no C
compiler, per-channel parameters). LI has no reset: it is a linear exponential filter
(`kernels.filters.chain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spc.compiler.cells import Fire, Leaky, Neuron
from spc.compiler.ir import layer_error
from spc.frontends.torch.firing import channel_tensor, fire
from spc.frontends.torch.kernels import filters, fused, native
from spc.frontends.torch.neurons.base import ParallelNeuronOp


def leaky_recurrence(x: torch.Tensor, decay, gain, threshold=None, reset: str = "none", alpha: float = 2.0):
    """Unrolled `v ← decay·v + gain·x`, firing `v >= threshold` when a threshold is given.

    Returns (membrane before reset [T, B, ...], spikes or None)."""
    v = torch.zeros_like(x[0])
    membranes, spikes = [], []
    for xt in x.unbind(0):
        v = decay * v + gain * xt
        membranes.append(v)
        if threshold is None:
            continue
        s = fire(v, threshold, alpha=alpha)
        spikes.append(s)
        if reset == "zero":
            v = v * (1.0 - s)
        elif reset == "subtract":
            v = v - s * threshold
    return torch.stack(membranes), (torch.stack(spikes) if spikes else None)


def integrate_and_fire(x: torch.Tensor, decay: float, gain: float, threshold: float, reset: str, alpha: float = 2.0):
    """(membrane before reset, spikes) of `leaky_recurrence` with scalar parameters: the native
    kernel where usable (it keeps the membrane for the backward pass), else the unrolled loop."""
    if native.usable(x):
        filters.taken("lif", "native")
        return fused.lif(x, decay, gain, threshold, reset, alpha)
    filters.taken("lif", "loop")
    return leaky_recurrence(x, decay, gain, threshold, reset, alpha)


def leaky_readout(x: torch.Tensor, decay, gain) -> torch.Tensor:
    """The membrane of `v ← decay·v + gain·x`: one leaky stage of `filters.chain` for scalar
    parameters, the unrolled loop for per-channel ones."""
    if np.size(decay) == 1 and np.size(gain) == 1:
        return filters.chain(x, (float(np.squeeze(decay)),), (float(np.squeeze(gain)),))
    filters.taken("chain", "loop")
    return leaky_recurrence(x, channel_tensor(decay, x), channel_tensor(gain, x))[0]


def _decay_gain(tau: float, decay_input: bool) -> tuple[float, float]:
    if not tau >= 1.0:
        raise ValueError(f"tau must be >= 1 (a decay 1 − 1/tau in [0, 1)), got {tau}")
    return 1.0 - 1.0 / tau, (1.0 / tau if decay_input else 1.0)


@dataclass(frozen=True, eq=False)
class LIFOp(ParallelNeuronOp, kind="LIF"):
    """Leaky (decay < 1) or perfect (decay = 1) integrate-and-fire with reset."""

    decay: np.ndarray  # [C] or [1]
    gain: np.ndarray
    threshold: np.ndarray
    reset: str = "zero"

    def check(self, name, shape):
        self.lower().check(name, shape)
        if self.reset not in ("zero", "subtract"):
            raise layer_error(name, f"LIF reset '{self.reset}' must be 'zero' or 'subtract'")

    def parallel(self, x):
        if self.decay.size == self.gain.size == self.threshold.size == 1:
            return integrate_and_fire(x, float(self.decay[0]), float(self.gain[0]), float(self.threshold[0]), self.reset)
        d, g, th = (channel_tensor(a, x) for a in (self.decay, self.gain, self.threshold))
        return leaky_recurrence(x, d, g, th, self.reset)

    def lower(self):
        return Neuron(cells=(Leaky(decay=self.decay, gain=self.gain),), fire=Fire(threshold=self.threshold, reset=self.reset))


@dataclass(frozen=True, eq=False)
class LIOp(ParallelNeuronOp, kind="LI"):
    """Non-spiking leaky integrator; its membrane is the output (a readout layer)."""

    decay: np.ndarray
    gain: np.ndarray
    spiking = False

    def check(self, name, shape):
        self.lower().check(name, shape)

    def parallel(self, x):
        h = leaky_readout(x, self.decay, self.gain)
        return h, h

    def lower(self):
        return Neuron(cells=(Leaky(decay=self.decay, gain=self.gain),))


class _IntegrateAndFire(nn.Module):
    def __init__(self, decay: float, gain: float, v_threshold: float, v_reset: float | None, alpha: float):
        super().__init__()
        self.decay, self.gain = decay, gain
        self.v_threshold, self.v_reset, self.alpha = v_threshold, v_reset, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold, reset = reset_convention(self.v_threshold, self.v_reset)
        return integrate_and_fire(x, self.decay, self.gain, threshold, reset, self.alpha)[1]

    def to_op(self) -> LIFOp:
        return lif_op(self.decay, self.gain, self.v_threshold, self.v_reset)


class LIF(_IntegrateAndFire):
    """Leaky integrate-and-fire, SpikingJelly's LIFNode semantics; `v_reset=None` resets by subtraction."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0, v_reset: float | None = 0.0, alpha: float = 2.0):
        super().__init__(*_decay_gain(tau, decay_input), v_threshold, v_reset, alpha)
        self.tau, self.decay_input = tau, decay_input

    def extra_repr(self):
        return f"tau={self.tau}, decay_input={self.decay_input}, v_threshold={self.v_threshold}, v_reset={self.v_reset}"


class IF(_IntegrateAndFire):
    """Integrate-and-fire (no leak)."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, alpha: float = 2.0):
        super().__init__(1.0, 1.0, v_threshold, v_reset, alpha)

    def extra_repr(self):
        return f"v_threshold={self.v_threshold}, v_reset={self.v_reset}"


class LI(nn.Module):
    """Non-spiking leaky readout: returns the membrane `v ← v + (x − v)/τ` (or `+ x` without decay_input)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True):
        super().__init__()
        self.decay, self.gain = _decay_gain(tau, decay_input)
        self.tau, self.decay_input = tau, decay_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_readout(x, self.decay, self.gain)

    def to_op(self) -> LIOp:
        return LIOp(decay=np.asarray([self.decay]), gain=np.asarray([self.gain]))

    def extra_repr(self):
        return f"tau={self.tau}, decay_input={self.decay_input}"


def reset_convention(v_threshold: float, v_reset: float | None) -> tuple[float, str]:
    """(threshold, reset) with the membrane measured from v_reset; v_reset=None is a soft reset."""
    return v_threshold - (v_reset or 0.0), ("subtract" if v_reset is None else "zero")


def lif_op(decay: float, gain: float, v_threshold: float, v_reset: float | None) -> LIFOp:
    """The IR operation of an integrate-and-fire layer (also used by the SpikingJelly and NIR frontends)."""
    threshold, reset = reset_convention(v_threshold, v_reset)
    return LIFOp(decay=np.asarray([decay]), gain=np.asarray([gain]), threshold=np.asarray([threshold]), reset=reset)
