"""The integer update of every integer cell and of the integer firing rule: docs/integer-spec.md,
in numpy int64, vectorised over batch and neurons.

Same chunk interface as `float_cells`: a kernel takes x [t, B, *shape] for the steps t0, t0+1, ...
and its state, returns (output, new state). Every saturation event is counted in `Saturations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.ir import channel_view
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, RESONATOR_BITS, QDelayLine, QFire, QGate, QGated, QLeaky, QRescale, QResonator, QSigmoid, QStepIndexed, state_limits
from spc.compiler.rng import uniform_bits
from spc.runtime.float_cells import fir, time_view


@dataclass
class Saturations:
    """Counts elements clipped by sat_W."""

    count: int = 0

    def clip(self, x: np.ndarray, low: int, high: int) -> np.ndarray:
        clipped = np.clip(x, low, high)
        self.count += int(np.count_nonzero(clipped != x))
        return clipped

    def sat(self, x: np.ndarray, width: int) -> np.ndarray:
        limit = 2 ** (width - 1) - 1
        return self.clip(x, -limit, limit)


def trunc0(x: np.ndarray, n: int) -> np.ndarray:
    """sign(x) · (|x| >> n): a right shift rounding toward zero."""
    return np.sign(x) * (np.abs(x) >> n)


def align(x: np.ndarray, shift: int) -> np.ndarray:
    return x << shift if shift >= 0 else x >> -shift


def dash(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Xylo's decay amount: v >> n, or ±1 where that is 0 and v is not."""
    d = v >> n
    return np.where((d == 0) & (v != 0), np.sign(v), d)


def decay(v: np.ndarray, mode: str, amount: np.ndarray) -> np.ndarray:
    """One step of leak; `amount` (d or n) broadcasts against v."""
    if mode == "int12":
        return trunc0(v * (4096 - amount), 12)
    if mode == "dash":
        return v - dash(v, amount)
    return np.where(amount == NO_LEAK, v, v - (v >> np.maximum(amount, 0)))


def membrane_step(cell: QLeaky, shape, sats: Saturations):
    amount = channel_view(cell.decay.astype(np.int64), shape)
    if cell.mode != "dash":
        return lambda v, xt: sats.sat(decay(v, cell.mode, amount) + align(xt, cell.shift), cell.width)
    low, high = state_limits(cell)

    def xylo_membrane(v, xt):  # v + sat(−dash(v) + x), each sum saturated; −(−2^15) wraps to −2^15
        fall = -dash(v, amount)
        return sats.clip(v + sats.clip(np.where(fall > high, low, fall) + xt, low, high), low, high)

    return xylo_membrane


@dataclass
class Terms:
    """The synaptic input of an input-first cell as its terms: the Linear before it, `inputs`
    [t, B, J] and integer `weight` [N, J] (a bias as a last column of ones)."""

    inputs: np.ndarray
    weight: np.ndarray


def synaptic_current(cell: QLeaky, x, v, sats, terms: Terms | None = None):
    """Xylo's synaptic current ('dash', input_first): the terms w·x of the Linear before it, each
    shifted left by `shift`, added in their input order with saturation after each one, then the
    decay. Where no partial sum can leave the range (the sums of the positive and of the negative
    terms both fit) this is the plain sum; only the other elements walk the terms one by one."""
    shape = x.shape[2:]
    low, high = state_limits(cell)
    n = channel_view(cell.decay.astype(np.int64), shape)
    total = align(x, cell.shift)
    if terms is None:
        rise, fall = np.maximum(total, 0), np.minimum(total, 0)
    else:
        w = terms.weight.astype(np.int64) << cell.shift
        rise, fall = (np.rint(np.matmul(terms.inputs.astype(np.float64), part.T.astype(np.float64))).astype(np.int64) for part in (np.maximum(w, 0), np.minimum(w, 0)))
    v = np.zeros_like(x[0]) if v is None else v
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        acc = v + total[t]
        wild = (v + rise[t] > high) | (v + fall[t] < low)  # a partial sum may leave the range
        if wild.any():
            mixed = wild & (rise[t] != 0) & (fall[t] != 0)
            one_signed = wild & ~mixed  # terms of one sign: clipping the sum once is clipping after each
            acc[one_signed] = sats.clip(acc[one_signed], low, high)
            if mixed.any():
                at = np.nonzero(mixed)
                walked = v[at]
                for j in range(terms.weight.shape[1]):
                    walked = sats.clip(walked + terms.inputs[t][at[0], j] * w[at[1], j], low, high)
                acc[at] = walked
        v = acc - dash(acc, n)
        out[t] = v
    return out, v


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


def lookup(lut: np.ndarray, lut_shift: int, z: np.ndarray) -> np.ndarray:
    """lut[c, clip((z >> lut_shift) + 512, 0, 1023)] for z [t, B, *shape], c each element's channel."""
    shape = z.shape[2:]
    bins = np.clip((z >> lut_shift) + LUT_SIZE // 2, 0, LUT_SIZE - 1)
    rows = np.zeros((1,) * (len(shape) + 2), np.int64) if lut.shape[0] == 1 else channel_view(np.arange(lut.shape[0]), shape)[None, None]
    return lut.astype(np.int64)[rows, bins]


def draws(seed: int, shape: tuple[int, ...], t0: int) -> np.ndarray:
    """The 24-bit counter-based uniforms u24 for steps t0.. of a [t, B, ...] chunk."""
    per_step = int(np.prod(shape[1:]))
    return uniform_bits(seed, np.arange(t0, t0 + shape[0])[:, None], np.arange(per_step)[None]).reshape(shape).astype(np.int64)


def sigmoid(cell: QSigmoid, x, state, t0, sats):
    return lookup(cell.lut, cell.lut_shift, x), None


def gate(cell: QGate, x, state, t0, sats):
    p = lookup(cell.lut, cell.lut_shift, x)
    xa = sats.sat(align(x, cell.shift), cell.width)
    if cell.stochastic:
        return np.where(draws(cell.seed, x.shape, t0) < p, 0, xa), None
    return (xa * (2**24 - p)) >> 24, None


def gated(cell: QGated, x, state, t0, sats):
    shape, k = x.shape[2:], cell.order
    h, history = (None, None) if state is None else state
    taps = cell.taps.astype(np.int64)
    z, history = fir(x, history, lambda i: channel_view(taps[:, i], shape), channel_view(cell.bias.astype(np.int64), shape), list(range(k - 1, -1, -1)))
    amount = lookup(cell.lut, cell.lut_shift, z)
    xa = sats.sat(align(x, cell.shift), cell.width)
    h = np.zeros_like(x[0]) if h is None else h
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        a = amount[t]
        if cell.mode == "int12":
            h = sats.sat(trunc0(h * (4096 - a), 12) + trunc0(xa[t] * a, 12), cell.width)
        else:
            h = sats.sat(h - (h >> a) + (xa[t] >> a), cell.width)
        out[t] = h
    return out, (h, history)


def resonator(cell: QResonator, x, state, t0, sats):
    shape = x.shape[2:]
    re, im = (channel_view(a.astype(np.int64), shape) for a in (cell.re, cell.im))
    u, r = (np.zeros_like(x[0]), np.zeros_like(x[0])) if state is None else state
    driven = align(x, cell.shift)
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        u, r = (sats.sat(trunc0(re * u - im * r, RESONATOR_BITS) + driven[t], cell.width), sats.sat(trunc0(im * u + re * r, RESONATOR_BITS), cell.width))
        out[t] = u
    return out, (u, r)


def rescale(cell: QRescale, x, state, t0, sats):
    """sat_W((x·m + 2^(n−1)) >> n): x times m·2^−n, rounded half up (no rounding term when n = 0)."""
    shape = x.shape[2:]
    m, n = (channel_view(a.astype(np.int64), shape) for a in (cell.multiplier, cell.shift))
    half = np.where(n > 0, np.left_shift(1, np.maximum(n - 1, 0)), 0)
    return sats.sat((x * m + half) >> n, cell.width), None


CELLS = {QLeaky: leaky, QDelayLine: delay_line, QStepIndexed: step_indexed, QSigmoid: sigmoid, QGate: gate, QGated: gated, QResonator: resonator, QRescale: rescale}


def spikes(fire: QFire, h: np.ndarray, t0: int) -> np.ndarray:
    """Spikes (graded: spike counts) of membrane h [t, B, *shape] for the steps t0, t0+1, ..."""
    threshold = channel_view(fire.threshold.astype(np.int64), h.shape[2:])
    if fire.max_spikes > 1:
        return np.clip(-(-h // threshold) - 1 if fire.strict else h // threshold, 0, fire.max_spikes)
    if not fire.stochastic:
        return h > threshold if fire.strict else h >= threshold
    return draws(fire.seed, h.shape, t0) < lookup(fire.lut, fire.lut_shift, h - threshold)


def reset(fire: QFire, cell: QLeaky, v, fired, sats):
    if fire.reset == "zero":
        return np.where(fired, 0, v)
    return sats.clip(v - fired * channel_view(fire.threshold.astype(np.int64), v.shape[1:]), *state_limits(cell))
