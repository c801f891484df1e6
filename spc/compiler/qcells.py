"""Integer neuron cells and the integer firing rule: the hardware form of `spc.compiler.cells`.

Their exact semantics (order of operations, rounding of every shift, saturation) are written once,
in docs/integer-spec.md; these records only hold the integer parameters and check their ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.cells import TimeIndexedCell, RESETS, Cell, KernelCell, check_graded, check_kernel
from spc.compiler.ir import Record, channel_params, layer_error

DECAY_MODES = ("int12", "shift", "dash")
NO_LEAK = -1
"""In the 'shift' decay mode, n = NO_LEAK means no decay at all (v <- v)."""
DASH_RANGE = 15
"""Xylo's 'dash' decays are 4-bit shifts, n in [0, 15]."""
LUT_SIZE = 1024
"""Entries of every lookup table (σ for stochastic firing, QSigmoid, QGate, QGated's decays)."""
RESONATOR_BITS = 16
"""Fractional bits of QResonator's rotation coefficients."""


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


def state_limits(cell) -> tuple[int, int]:
    """The range sat_W clips a cell's state to: symmetric, or two's complement in the 'dash' mode
    (Xylo's 16-bit registers)."""
    high = 2 ** (cell.width - 1) - 1
    return (-high - 1 if getattr(cell, "mode", None) == "dash" else -high), high


def _decay_amounts(name: str, mode: str, values: np.ndarray, what: str, shift_low: int) -> None:
    """A decay form's amounts: d in [0, 4096] ('int12'), n in [shift_low, 62] ('shift'), n in
    [0, 15] ('dash')."""
    if mode not in DECAY_MODES:
        raise layer_error(name, f"decay mode '{mode}' is not one of {DECAY_MODES}")
    low, high = {"int12": (0, 4096), "shift": (shift_low, 62), "dash": (0, DASH_RANGE)}[mode]
    if values.min() < low or values.max() > high:
        raise layer_error(name, f"{mode} {what} must lie in [{low}, {high}], got {values.min()}..{values.max()}")


def _integer_kernel(name: str, kind: str, taps: np.ndarray, bias: np.ndarray, shape: tuple[int, ...]) -> None:
    check_kernel(name, kind, taps, bias, shape)
    _integers(name, "taps", taps)
    _integers(name, "bias", bias)


@dataclass(frozen=True, eq=False)
class QLeaky(Cell):
    """Integer leaky integrator with unit gain (docs/integer-spec.md). In the 'dash' mode (Xylo's
    neuron) an `input_first` cell is a synaptic current: its input is added (term by term) before
    the decay; otherwise it is a membrane."""

    mode: str  # 'int12', 'shift' or 'dash'
    decay: np.ndarray  # [C] or [1]: d in [0, 4096] ('int12'), n in [-1, 62] ('shift'), n in [0, 15] ('dash')
    shift: int  # input alignment: x << shift (or x >> -shift)
    width: int = 24
    input_first: bool = False  # 'dash' only: add the input, then decay (Xylo's synaptic current)
    resettable = True
    integer = True
    state_size = 1

    def check(self, name, shape):
        channel_params(name, "decay", self.decay, shape)
        _integers(name, "decay", self.decay)
        _width(name, self.width)
        _decay_amounts(name, self.mode, self.decay, "decay values", shift_low=NO_LEAK)
        _shift(name, self.shift)
        if self.input_first and self.mode != "dash":
            raise layer_error(name, f"an input-first leaky cell needs the 'dash' decay mode, not '{self.mode}'")
        if self.mode == "dash" and (self.shift < 0 or (self.shift and not self.input_first)):
            raise layer_error(name, f"a 'dash' cell shifts its input left only, and only as a synaptic current (input_first); got shift {self.shift}")


@dataclass(frozen=True, eq=False)
class QDelayLine(KernelCell):
    """Integer FIR delay line (docs/integer-spec.md)."""

    integer = True

    taps: np.ndarray  # [C or 1, k] integers
    bias: np.ndarray  # [C] or [1]
    dilation: int = 1
    width: int = 24

    def check(self, name, shape):
        _integer_kernel(name, self.kind, self.taps, self.bias, shape)
        _width(name, self.width)
        _fits(name, "bias", self.bias, self.width)
        if self.dilation < 1:
            raise layer_error(name, f"dilation {self.dilation} must be >= 1")


@dataclass(frozen=True, eq=False)
class QStepIndexed(TimeIndexedCell):
    """Integer time-indexed kernel, valid for t < T (docs/integer-spec.md)."""

    integer = True

    weights: np.ndarray  # [T, k] integers
    bias: np.ndarray  # [T]
    width: int = 24

    def check(self, name, shape):
        if self.weights.ndim != 2 or self.bias.shape != (self.weights.shape[0],):
            raise layer_error(name, f"QStepIndexed weights {self.weights.shape} and bias {self.bias.shape} do not match")
        for what, values in (("weights", self.weights), ("bias", self.bias)):
            _integers(name, what, values)
        _width(name, self.width)
        _fits(name, "bias", self.bias, self.width)


def _table(name: str, what: str, lut: np.ndarray | None, lut_shift: int, shape: tuple[int, ...]) -> None:
    """A per-channel (or shared) lookup table of LUT_SIZE integers, indexed by (x >> lut_shift) + 512."""
    if lut is None or lut.ndim != 2 or lut.shape[1] != LUT_SIZE:
        raise layer_error(name, f"the {what} needs a [channels, {LUT_SIZE}] table")
    channel_params(name, what, lut[:, 0], shape)
    _integers(name, what, lut)
    if not 0 <= lut_shift <= 62:
        raise layer_error(name, f"lut_shift {lut_shift} is outside 0..62")


def _shift(name: str, shift: int) -> None:
    if not -32 <= shift <= 32:
        raise layer_error(name, f"input shift {shift} is outside -32..32")


@dataclass(frozen=True, eq=False)
class QSigmoid(Cell):
    """Integer sigmoid by table lookup (docs/integer-spec.md)."""

    integer = True
    lut: np.ndarray  # [C or 1, 1024]: rint(gain·σ(bin centre) / output scale)
    lut_shift: int = 0

    def check(self, name, shape):
        _table(name, "sigmoid table", self.lut, self.lut_shift, shape)


@dataclass(frozen=True, eq=False)
class QGate(Cell):
    """Integer multiplicative gate, stochastic or by its expectation (docs/integer-spec.md)."""

    integer = True
    lut: np.ndarray  # [C or 1, 1024]: floor(σ(bin centre)·2^24)
    lut_shift: int
    shift: int  # input alignment
    stochastic: bool = False
    seed: int = 0
    width: int = 24

    def check(self, name, shape):
        _table(name, "gate probability table", self.lut, self.lut_shift, shape)
        _shift(name, self.shift)
        _width(name, self.width)


@dataclass(frozen=True, eq=False)
class QGated(KernelCell):
    """Integer input-gated decay: the gate's decay read from a table per step (docs/integer-spec.md)."""

    integer = True

    mode: str  # 'int12': the table holds d; 'shift': it holds n
    taps: np.ndarray  # [C or 1, k] integers
    bias: np.ndarray  # [C] or [1]
    lut: np.ndarray  # [C or 1, 1024]: d in [0, 4096] or n in [0, 62] per bin of the gate's input
    lut_shift: int
    shift: int  # input alignment
    width: int = 24

    @property
    def state_size(self) -> int:
        return 1 + super().state_size  # the membrane and the gate kernel's past inputs

    def check(self, name, shape):
        _integer_kernel(name, self.kind, self.taps, self.bias, shape)
        _table(name, "decay table", self.lut, self.lut_shift, shape)
        _decay_amounts(name, self.mode, self.lut, "decay table values", shift_low=0)
        _shift(name, self.shift)
        _width(name, self.width)


@dataclass(frozen=True, eq=False)
class QResonator(Cell):
    """Integer damped rotation with 16-bit fractional coefficients (docs/integer-spec.md)."""

    integer = True
    state_size = 2
    re: np.ndarray  # [C] or [1]: rint(φr·2^16)
    im: np.ndarray  # [C] or [1]: rint(φi·2^16)
    shift: int  # input alignment
    width: int = 24

    def check(self, name, shape):
        limit = 2**RESONATOR_BITS
        for what, values in (("re", self.re), ("im", self.im)):
            channel_params(name, what, values, shape)
            _integers(name, what, values)
            if np.abs(values).max() > limit:
                raise layer_error(name, f"rotation coefficient {what} reaches {int(np.abs(values).max())}, beyond ±2^{RESONATOR_BITS}")
        if self.re.shape != self.im.shape:
            raise layer_error(name, "rotation coefficients re and im must have the same shape")
        _shift(name, self.shift)
        _width(name, self.width)


@dataclass(frozen=True, eq=False)
class QRescale(Cell):
    """Fixed-point requantization by a multiplier and a rounding shift, no state: an aligner that
    puts a branch of a sum on the common scale when the scales differ by other than a power of two
    (docs/integer-spec.md, *Aligning sums*)."""

    integer = True
    multiplier: np.ndarray  # [C] or [1], positive
    shift: np.ndarray  # [C] or [1], in 0..62
    width: int = 24

    def check(self, name, shape):
        for what, values in (("multiplier", self.multiplier), ("shift", self.shift)):
            channel_params(name, what, values, shape)
            _integers(name, what, values)
        if self.multiplier.min() < 1 or self.multiplier.max() >= 2**31:
            raise layer_error(name, f"requantization multiplier {self.multiplier.min()}..{self.multiplier.max()} is outside 1..2^31 − 1")
        if self.shift.min() < 0 or self.shift.max() > 62:
            raise layer_error(name, f"requantization shift {self.shift.min()}..{self.shift.max()} is outside 0..62")
        _width(name, self.width)


@dataclass(frozen=True, eq=False)
class QFire(Record):
    threshold: np.ndarray  # [C] or [1] integers on the membrane's scale
    strict: bool = False
    reset: str = "none"
    stochastic: bool = False
    seed: int = 0
    lut: np.ndarray | None = None  # [C or 1, 1024]: floor(sigmoid(bin centre) * 2^24), when stochastic
    lut_shift: int = 0
    max_spikes: int = 1  # > 1: graded spike counts (docs/integer-spec.md)
    readout: bool = False  # the neuron outputs its membrane, though it fires and resets (a Xylo readout)

    def check(self, name, shape):
        channel_params(name, "threshold", self.threshold, shape)
        _integers(name, "threshold", self.threshold)
        if self.reset not in RESETS:
            raise layer_error(name, f"reset '{self.reset}' is not one of {RESETS}")
        if self.stochastic:
            _table(name, "stochastic firing's probability table", self.lut, self.lut_shift, shape)
        check_graded(name, self)
