"""The float update of every stepwise cell and of the firing rule (see `spc.compiler.cells`).

Layer-major: each cell runs over the whole sequence before the next one starts, which is exact
because a cell's output at step t depends only on its inputs up to t. Only a reset, which feeds the
firing rule back into the last cell's state, forces that cell and the firing rule into one loop.
"""

from __future__ import annotations

import numpy as np

from spc.compiler.cells import Cell, DelayLine, Fire, Leaky, Neuron, StepIndexed
from spc.compiler.ir import channel_view
from spc.compiler.rng import uniform_sequence


def delayed(x: np.ndarray, lag: int) -> np.ndarray:
    """y[t] = x[t − lag], zero before the sequence starts."""
    if lag == 0:
        return x
    y = np.zeros_like(x)
    if lag < x.shape[0]:
        y[lag:] = x[:-lag]
    return y


def _time_view(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-step vector [T] broadcasting over x [T, B, ...]."""
    return values.reshape((-1,) + (1,) * (x.ndim - 1))


def run_cell(cell: Cell, x: np.ndarray) -> np.ndarray:
    """One cell over a whole sequence x [T, B, *shape]."""
    shape = x.shape[2:]
    if isinstance(cell, Leaky):
        decay, gain = (channel_view(a.astype(x.dtype), shape) for a in (cell.decay, cell.gain))
        v = np.zeros_like(x[0])
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            v = decay * v + gain * x[t]
            out[t] = v
        return out
    if isinstance(cell, DelayLine):
        taps = cell.taps.astype(x.dtype)
        k = cell.order
        acc = np.zeros_like(x)
        for i in range(k):
            acc = acc + channel_view(taps[:, i], shape) * delayed(x, (k - 1 - i) * cell.dilation)
        return acc + channel_view(cell.bias.astype(x.dtype), shape)
    if isinstance(cell, StepIndexed):
        steps, k = x.shape[0], cell.order
        weights = cell.weights[:steps].astype(x.dtype)
        acc = np.zeros_like(x)
        for i in range(k):
            acc = acc + _time_view(weights[:, i], x) * delayed(x, k - 1 - i)
        return acc + _time_view(cell.bias[:steps].astype(x.dtype), x)
    raise TypeError(f"unknown cell {cell.kind}")


def fire_margin(fire: Fire, h: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """How far each element is from flipping: positive fires (strictly, when `strict`)."""
    threshold = channel_view(fire.threshold.astype(h.dtype), h.shape[2:])
    if fire.stochastic:
        return 1.0 / (1.0 + np.exp(-(h - threshold))) - u
    return h - threshold


def uniforms(fire: Fire, shape: tuple[int, ...]) -> np.ndarray | None:
    """The counter-based uniforms a stochastic firing rule draws for a sequence of `shape`."""
    if not fire.stochastic:
        return None
    return uniform_sequence(fire.seed, shape[0], int(np.prod(shape[1:]))).reshape(shape)


def spikes(fire: Fire, margin: np.ndarray) -> np.ndarray:
    return margin > 0 if (fire.strict or fire.stochastic) else margin >= 0


def run_neuron(neuron: Neuron, x: np.ndarray, cell_outputs: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run a stepwise neuron over x [T, B, ...]: returns (membrane that fires, output).

    `cell_outputs`, when given, receives every cell's output sequence (for a cell that is reset,
    its value before the reset), for calibration."""
    fire = neuron.fire
    resets = fire is not None and fire.reset != "none"
    cell_outputs = [] if cell_outputs is None else cell_outputs
    for cell in neuron.cells[:-1] if resets else neuron.cells:
        x = run_cell(cell, x)
        cell_outputs.append(x)
    if fire is None:
        return x, x
    u = uniforms(fire, x.shape)
    if not resets:
        return x, spikes(fire, fire_margin(fire, x, u)).astype(x.dtype)
    h, s = _leaky_with_reset(neuron.cells[-1], fire, x, u)
    cell_outputs.append(h)
    return h, s


def _leaky_with_reset(cell: Leaky, fire: Fire, x: np.ndarray, u: np.ndarray | None):
    shape = x.shape[2:]
    decay, gain = (channel_view(a.astype(x.dtype), shape) for a in (cell.decay, cell.gain))
    threshold = channel_view(fire.threshold.astype(x.dtype), shape)
    v = np.zeros_like(x[0])
    h, s = np.empty_like(x), np.empty_like(x)
    for t in range(x.shape[0]):
        v = decay * v + gain * x[t]
        h[t] = v
        fired = spikes(fire, fire_margin(fire, v[None], None if u is None else u[t][None]))[0]
        s[t] = fired
        if fire.reset == "zero":
            v = np.where(fired, 0, v)
        else:  # subtract
            v = v - fired * threshold
    return h, s
