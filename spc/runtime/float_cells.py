"""The float update of every stepwise cell and of the firing rule (semantics: spc.compiler.cells).

Every cell kernel takes a chunk x [t, B, *shape] of the steps t0, t0+1, ... and its state from the
previous chunk (None at the start), and returns (output, new state).
"""

from __future__ import annotations

import numpy as np

from spc.compiler.cells import DelayLine, Fire, Gate, Gated, Leaky, Resonator, Sigmoid, StepIndexed
from spc.compiler.ir import channel_view
from spc.compiler.rng import uniform


def with_history(x: np.ndarray, history: np.ndarray | None, reach: int) -> np.ndarray:
    """The chunk preceded by the last `reach` inputs of earlier chunks (zeros before t = 0)."""
    if reach == 0:
        return x
    if history is None:
        history = np.zeros((reach,) + x.shape[1:], x.dtype)
    return np.concatenate([history, x])


def fir(x: np.ndarray, history, taps_at, bias, reach_per_tap: list[int]):
    """y[t] = Σ_i taps_at(i) · x[t − lag_i] + bias over a chunk, with the inputs before it in `history`."""
    reach = max(reach_per_tap)
    xe = with_history(x, history, reach)
    steps = x.shape[0]
    acc = None
    for i, lag in enumerate(reach_per_tap):
        term = taps_at(i) * xe[reach - lag : reach - lag + steps]
        acc = term if acc is None else acc + term
    return acc + bias, (xe[xe.shape[0] - reach :] if reach else None)


def leaky(cell: Leaky, x, v, t0, sats):
    shape = x.shape[2:]
    decay = channel_view(cell.decay.astype(x.dtype), shape)
    driven = channel_view(cell.gain.astype(x.dtype), shape) * x
    v = np.zeros_like(x[0]) if v is None else v
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        v = decay * v + driven[t]
        out[t] = v
    return out, v


def delay_line(cell: DelayLine, x, history, t0, sats):
    shape, k = x.shape[2:], cell.order
    taps = cell.taps.astype(x.dtype)
    lags = [(k - 1 - i) * cell.dilation for i in range(k)]
    return fir(x, history, lambda i: channel_view(taps[:, i], shape), channel_view(cell.bias.astype(x.dtype), shape), lags)


def time_view(values: np.ndarray, ndim: int) -> np.ndarray:
    """A per-step vector [t] broadcasting over [t, B, ...]."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def step_indexed(cell: StepIndexed, x, history, t0, sats):
    steps, k = x.shape[0], cell.order
    rows = cell.weights[t0 : t0 + steps].astype(x.dtype)
    bias = time_view(cell.bias[t0 : t0 + steps].astype(x.dtype), x.ndim)
    return fir(x, history, lambda i: time_view(rows[:, i], x.ndim), bias, [k - 1 - i for i in range(k)])


def logistic(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^−x) without overflow for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x))


def sigmoid(cell: Sigmoid, x, state, t0, sats):
    return channel_view(cell.gain.astype(x.dtype), x.shape[2:]) * logistic(x), None


def gate(cell: Gate, x, state, t0, sats):
    p = logistic(x)
    closed = (uniforms(cell, x.shape, t0) < p).astype(x.dtype) if cell.stochastic else p
    return channel_view(cell.gain.astype(x.dtype), x.shape[2:]) * x * (1 - closed), None


def gated(cell: Gated, x, state, t0, sats):
    shape, k = x.shape[2:], cell.order
    h, history = (None, None) if state is None else state
    taps = cell.taps.astype(x.dtype)
    z, history = fir(x, history, lambda i: channel_view(taps[:, i], shape), channel_view(cell.bias.astype(x.dtype), shape), list(range(k - 1, -1, -1)))
    a = logistic(z)
    h = np.zeros_like(x[0]) if h is None else h
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        h = a[t] * h + (1 - a[t]) * x[t]
        out[t] = h
    return out, (h, history)


def resonator(cell: Resonator, x, state, t0, sats):
    shape = x.shape[2:]
    re, im, gain = (channel_view(a.astype(x.dtype), shape) for a in (cell.decay_re, cell.decay_im, cell.gain))
    u, r = (np.zeros_like(x[0]), np.zeros_like(x[0])) if state is None else state
    driven = gain * x
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        u, r = re * u - im * r + driven[t], im * u + re * r
        out[t] = u
    return out, (u, r)


CELLS = {Leaky: leaky, DelayLine: delay_line, StepIndexed: step_indexed, Sigmoid: sigmoid, Gate: gate, Gated: gated, Resonator: resonator}


def membrane_step(cell: Leaky, shape, sats):
    decay, gain = (channel_view(a, shape) for a in (cell.decay, cell.gain))
    return lambda v, xt: decay * v + gain * xt


def uniforms(rule: Fire | Gate, shape: tuple[int, ...], t0: int = 0) -> np.ndarray | None:
    """The counter-based uniforms a stochastic firing rule (or gate) draws for steps t0.. of a
    [t, B, ...] chunk."""
    if not rule.stochastic:
        return None
    per_step = int(np.prod(shape[1:]))
    return uniform(rule.seed, np.arange(t0, t0 + shape[0])[:, None], np.arange(per_step)[None, :]).reshape(shape)


def fire_margin(fire: Fire, h: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """How far each element is from flipping: positive fires (strictly, when `strict`)."""
    threshold = channel_view(fire.threshold.astype(h.dtype), h.shape[2:])
    if fire.stochastic:
        return 1.0 / (1.0 + np.exp(-(h - threshold))) - u
    return h - threshold


def spikes(fire: Fire, h: np.ndarray, t0: int) -> np.ndarray:
    if fire.max_spikes > 1:  # graded: spike counts
        ratio = h / channel_view(fire.threshold.astype(h.dtype), h.shape[2:])
        return np.clip(np.ceil(ratio) - 1 if fire.strict else np.floor(ratio), 0, fire.max_spikes)
    margin = fire_margin(fire, h, uniforms(fire, h.shape, t0))
    return margin > 0 if (fire.strict or fire.stochastic) else margin >= 0


def reset(fire: Fire, cell, v, fired, sats):
    if fire.reset == "zero":
        return np.where(fired, 0, v)
    return v - fired * channel_view(fire.threshold.astype(v.dtype), v.shape[1:])
