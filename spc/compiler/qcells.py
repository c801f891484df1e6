"""Integer neuron cells and the integer firing rule: the hardware form of `spc.compiler.cells`.

Their exact semantics (order of operations, rounding of every shift, saturation) are written once,
in docs/integer-spec.md; these records only hold the integer parameters and check their ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.cells import RESETS, Cell
from spc.compiler.ir import Record, channel_params, layer_error

DECAY_MODES = ("int12", "shift")
NO_LEAK = -1
"""In the 'shift' decay mode, n = NO_LEAK means no decay at all (v <- v)."""
LUT_SIZE = 1024


def _integers(name: str, what: str, values: np.ndarray) -> None:
    if values.dtype.kind not in "iu":
        raise layer_error(name, f"{what} must be integers, got dtype {values.dtype}", "recompile the model")


def _width(name: str, width: int) -> None:
    if not 4 <= width <= 32:
        raise layer_error(name, f"state width {width} bits is outside 4..32", "choose --width between 4 and 32")


def _fits(name: str, what: str, values: np.ndarray, width: int) -> None:
    limit = 2 ** (width - 1) - 1
    if values.size and np.abs(values).max() > limit:
        raise layer_error(name, f"{what} reaches {int(np.abs(values).max())}, which does not fit the {width}-bit state (limit {limit})", "give the layer a wider state (--width) or smaller weights")


@dataclass(frozen=True, eq=False)
class QLeaky(Cell):
    """Integer leaky integrator with unit gain (docs/integer-spec.md)."""

    mode: str  # 'int12' or 'shift'
    decay: np.ndarray  # [C] or [1]: d in [0, 4096] ('int12') or n in [-1, 62] ('shift')
    shift: int  # input alignment: x << shift (or x >> -shift)
    width: int = 24
    resettable = True
    integer = True

    def check(self, name, shape):
        channel_params(name, "decay", self.decay, shape)
        _integers(name, "decay", self.decay)
        _width(name, self.width)
        if self.mode not in DECAY_MODES:
            raise layer_error(name, f"decay mode '{self.mode}' is not one of {DECAY_MODES}")
        low, high = (0, 4096) if self.mode == "int12" else (NO_LEAK, 62)
        if self.decay.min() < low or self.decay.max() > high:
            raise layer_error(name, f"{self.mode} decay values must lie in [{low}, {high}], got {self.decay.min()}..{self.decay.max()}")
        if not -32 <= self.shift <= 32:
            raise layer_error(name, f"input shift {self.shift} is outside -32..32")


@dataclass(frozen=True, eq=False)
class QDelayLine(Cell):
    """Integer FIR delay line (docs/integer-spec.md)."""

    integer = True
    taps: np.ndarray  # [C or 1, k] integers
    bias: np.ndarray  # [C] or [1]
    dilation: int = 1
    width: int = 24

    @property
    def order(self) -> int:
        return self.taps.shape[1]

    def check(self, name, shape):
        if self.taps.ndim != 2 or self.taps.shape[1] < 1:
            raise layer_error(name, f"QDelayLine taps have shape {self.taps.shape}; expected [channels, k]")
        channel_params(name, "taps", self.taps[:, 0], shape)
        channel_params(name, "bias", self.bias, shape)
        for what, values in (("taps", self.taps), ("bias", self.bias)):
            _integers(name, what, values)
        _width(name, self.width)
        _fits(name, "bias", self.bias, self.width)
        if self.dilation < 1:
            raise layer_error(name, f"dilation {self.dilation} must be >= 1")


@dataclass(frozen=True, eq=False)
class QStepIndexed(Cell):
    """Integer time-indexed kernel, valid for t < T (docs/integer-spec.md)."""

    integer = True
    weights: np.ndarray  # [T, k] integers
    bias: np.ndarray  # [T]
    width: int = 24

    @property
    def time_steps(self) -> int:
        return self.weights.shape[0]

    @property
    def order(self) -> int:
        return self.weights.shape[1]

    def check(self, name, shape):
        if self.weights.ndim != 2 or self.bias.shape != (self.weights.shape[0],):
            raise layer_error(name, f"QStepIndexed weights {self.weights.shape} and bias {self.bias.shape} do not match")
        for what, values in (("weights", self.weights), ("bias", self.bias)):
            _integers(name, what, values)
        _width(name, self.width)
        _fits(name, "bias", self.bias, self.width)


@dataclass(frozen=True, eq=False)
class QFire(Record):
    threshold: np.ndarray  # [C] or [1] integers on the membrane's scale
    strict: bool = False
    reset: str = "none"
    stochastic: bool = False
    seed: int = 0
    lut: np.ndarray | None = None  # [C or 1, 1024]: floor(sigmoid(bin centre) * 2^24), when stochastic
    lut_shift: int = 0

    def check(self, name, shape):
        channel_params(name, "threshold", self.threshold, shape)
        _integers(name, "threshold", self.threshold)
        if self.reset not in RESETS:
            raise layer_error(name, f"reset '{self.reset}' is not one of {RESETS}")
        if self.stochastic:
            if self.lut is None or self.lut.ndim != 2 or self.lut.shape[1] != LUT_SIZE:
                raise layer_error(name, f"stochastic firing needs a [channels, {LUT_SIZE}] probability table")
            channel_params(name, "probability table", self.lut[:, 0], shape)
            _integers(name, "probability table", self.lut)
            if not 0 <= self.lut_shift <= 62:
                raise layer_error(name, f"lut_shift {self.lut_shift} is outside 0..62")
