"""The integer update of every integer cell and of the integer firing rule: docs/integer-spec.md,
in numpy int64, vectorised over batch and neurons.

Same chunk interface as `float_cells`: a kernel takes x [t, B, *shape] for the steps t0, t0+1, ...
and its state, returns (output, new state). Every saturation event is counted in `Saturations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.ir import channel_view
from spc.compiler.qcells import NO_LEAK, QDelayLine, QFire, QLeaky, QStepIndexed
from spc.compiler.rng import uniform_bits
from spc.runtime.float_cells import fir, time_view


@dataclass
class Saturations:
    """Counts elements clipped by sat_W."""

    count: int = 0

    def sat(self, x: np.ndarray, width: int) -> np.ndarray:
        limit = 2 ** (width - 1) - 1
        clipped = np.clip(x, -limit, limit)
        self.count += int(np.count_nonzero(clipped != x))
        return clipped


def trunc0(x: np.ndarray, n: int) -> np.ndarray:
    """sign(x) · (|x| >> n): a right shift rounding toward zero."""
    return np.sign(x) * (np.abs(x) >> n)


def align(x: np.ndarray, shift: int) -> np.ndarray:
    return x << shift if shift >= 0 else x >> -shift


def decay(v: np.ndarray, mode: str, amount: np.ndarray) -> np.ndarray:
    """One step of leak; `amount` (d or n) broadcasts against v."""
    if mode == "int12":
        return trunc0(v * (4096 - amount), 12)
    return np.where(amount == NO_LEAK, v, v - (v >> np.maximum(amount, 0)))


def membrane_step(cell: QLeaky, shape, sats: Saturations):
    amount = channel_view(cell.decay.astype(np.int64), shape)
    return lambda v, xt: sats.sat(decay(v, cell.mode, amount) + align(xt, cell.shift), cell.width)


def leaky(cell: QLeaky, x, v, t0, sats):
    step = membrane_step(cell, x.shape[2:], sats)
    v = np.zeros_like(x[0]) if v is None else v
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        v = step(v, x[t])
        out[t] = v
    return out, v


def delay_line(cell: QDelayLine, x, history, t0, sats):
    shape, k = x.shape[2:], cell.order
    lags = [(k - 1 - i) * cell.dilation for i in range(k)]
    taps = cell.taps.astype(np.int64)
    y, history = fir(x, history, lambda i: channel_view(taps[:, i], shape), channel_view(cell.bias.astype(np.int64), shape), lags)
    return sats.sat(y, cell.width), history


def step_indexed(cell: QStepIndexed, x, history, t0, sats):
    steps, k = x.shape[0], cell.order
    rows = cell.weights[t0 : t0 + steps].astype(np.int64)
    bias = time_view(cell.bias[t0 : t0 + steps].astype(np.int64), x.ndim)
    y, history = fir(x, history, lambda i: time_view(rows[:, i], x.ndim), bias, [k - 1 - i for i in range(k)])
    return sats.sat(y, cell.width), history


CELLS = {QLeaky: leaky, QDelayLine: delay_line, QStepIndexed: step_indexed}


def _channel_index(shape: tuple[int, ...], channels: int) -> np.ndarray:
    """For each element of a per-step tensor [B, *shape], the row of a per-channel table."""
    if channels == 1:
        return np.zeros((1,) * (len(shape) + 1), np.int64)
    return channel_view(np.arange(channels), shape)[None]


def spikes(fire: QFire, h: np.ndarray, t0: int) -> np.ndarray:
    """Spikes of membrane h [t, B, *shape] for the steps t0, t0+1, ..."""
    shape = h.shape[2:]
    threshold = channel_view(fire.threshold.astype(np.int64), shape)
    if not fire.stochastic:
        return h > threshold if fire.strict else h >= threshold
    bins = np.clip(((h - threshold) >> fire.lut_shift) + 512, 0, 1023)
    p = fire.lut[_channel_index(shape, fire.lut.shape[0]), bins]
    per_step = int(np.prod(h.shape[1:]))
    u = uniform_bits(fire.seed, np.arange(t0, t0 + h.shape[0])[:, None], np.arange(per_step)[None]).reshape(h.shape)
    return u < p


def reset(fire: QFire, cell: QLeaky, v, fired, sats):
    if fire.reset == "zero":
        return np.where(fired, 0, v)
    return sats.sat(v - fired * channel_view(fire.threshold.astype(np.int64), v.shape[1:]), cell.width)
