"""The integer update of every integer cell and of the integer firing rule: docs/integer-spec.md,
in numpy int64, vectorised over batch and neurons.

Layer-major like the float kernels (`spc.runtime.neurons`): each cell runs over the whole sequence;
only a reset forces the last cell and the firing rule into one loop over time. Every saturation
event is counted in `Saturations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.cells import Cell, Neuron
from spc.compiler.ir import channel_view
from spc.compiler.qcells import NO_LEAK, QDelayLine, QFire, QLeaky, QStepIndexed
from spc.compiler.rng import uniform_bits
from spc.runtime.neurons import delayed


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
    n = np.maximum(amount, 0)
    return np.where(amount == NO_LEAK, v, v - (v >> n))


def _time_view(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    return values.reshape((-1,) + (1,) * (x.ndim - 1))


def run_qcell(cell: Cell, x: np.ndarray, sats: Saturations) -> np.ndarray:
    """One integer cell over a whole sequence x [T, B, *shape] (int64)."""
    shape = x.shape[2:]
    if isinstance(cell, QLeaky):
        amount = channel_view(cell.decay.astype(np.int64), shape)
        inp = align(x, cell.shift)
        v = np.zeros_like(x[0])
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            v = sats.sat(decay(v, cell.mode, amount) + inp[t], cell.width)
            out[t] = v
        return out
    if isinstance(cell, QDelayLine):
        k = cell.order
        acc = channel_view(cell.bias.astype(np.int64), shape) + np.zeros_like(x)
        for i in range(k):
            acc = acc + channel_view(cell.taps[:, i].astype(np.int64), shape) * delayed(x, (k - 1 - i) * cell.dilation)
        return sats.sat(acc, cell.width)
    if isinstance(cell, QStepIndexed):
        steps, k = x.shape[0], cell.order
        acc = _time_view(cell.bias[:steps].astype(np.int64), x) + np.zeros_like(x)
        for i in range(k):
            acc = acc + _time_view(cell.weights[:steps, i].astype(np.int64), x) * delayed(x, k - 1 - i)
        return sats.sat(acc, cell.width)
    raise TypeError(f"not an integer cell: {cell.kind}")


def _channel_index(shape: tuple[int, ...], channels: int) -> np.ndarray:
    """For each element of a per-step tensor [B, *shape], the row of a per-channel table."""
    if channels == 1:
        return np.zeros((1,) * (len(shape) + 1), np.int64)
    return channel_view(np.arange(channels), shape)[None]


def qspikes(fire: QFire, h: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Spikes of membrane h [t, B, *shape] at the given absolute steps (for the counter-based draws)."""
    shape = h.shape[2:]
    threshold = channel_view(fire.threshold.astype(np.int64), shape)
    if not fire.stochastic:
        return h > threshold if fire.strict else h >= threshold
    bins = np.clip(((h - threshold) >> fire.lut_shift) + 512, 0, 1023)
    p = fire.lut[_channel_index(shape, fire.lut.shape[0]), bins]
    per_step = int(np.prod(h.shape[1:]))
    u = uniform_bits(fire.seed, steps.reshape(-1, 1), np.arange(per_step)[None]).reshape(h.shape)
    return u < p


def run_qneuron(neuron: Neuron, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Run an integer neuron over x [T, B, ...] (int64): (membrane, output, saturation events)."""
    sats = Saturations()
    fire = neuron.fire
    resets = fire is not None and fire.reset != "none"
    for cell in neuron.cells[:-1] if resets else neuron.cells:
        x = run_qcell(cell, x, sats)
    if fire is None:
        return x, x, sats.count
    if not resets:
        return x, qspikes(fire, x, np.arange(x.shape[0])).astype(np.int64), sats.count
    cell = neuron.cells[-1]
    shape = x.shape[2:]
    amount = channel_view(cell.decay.astype(np.int64), shape)
    threshold = channel_view(fire.threshold.astype(np.int64), shape)
    inp = align(x, cell.shift)
    v = np.zeros_like(x[0])
    h, s = np.empty_like(x), np.empty_like(x)
    for t in range(x.shape[0]):
        v = sats.sat(decay(v, cell.mode, amount) + inp[t], cell.width)
        h[t] = v
        fired = qspikes(fire, v[None], np.array([t]))[0]
        s[t] = fired
        if fire.reset == "zero":
            v = np.where(fired, 0, v)
        else:  # subtract
            v = sats.sat(v - fired * threshold, cell.width)
    return h, s, sats.count
