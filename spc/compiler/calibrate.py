"""Calibration: what the float stepwise graph does on representative inputs, for choosing scales.

Records, per neuron layer and cell, the largest magnitude each channel's state reaches, the input's
range, and the float firing rates (to compare the integer form's against).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spc.compiler.ir import Graph
from spc.errors import SpcError
from spc.runtime.recording import check_input
from spc.runtime.sim import run_stepwise

SYNTHETIC_RATE = 0.25
"""Spike probability of the random inputs used when no calibration data is given."""


@dataclass
class Calibration:
    data: np.ndarray  # the inputs calibration ran on
    input_peak: float
    input_is_integer: bool
    cell_peaks: dict[str, list[np.ndarray]] = field(default_factory=dict)  # layer -> per cell, per channel max |state|
    rates: dict[str, float] = field(default_factory=dict)  # spiking layer -> mean firing rate
    synthetic: bool = False


def _per_channel_peak(values: np.ndarray) -> np.ndarray:
    """max |v| per channel of a time-major [T, B, C, ...] sequence."""
    moved = np.moveaxis(np.abs(values), 2, 0)
    return moved.reshape(moved.shape[0], -1).max(axis=1)


def synthetic_input(graph: Graph, steps: int, batch: int = 16, seed: int = 0) -> np.ndarray:
    shape = (steps, batch) + tuple(graph.input.op.shape)
    return (np.random.default_rng(seed).random(shape) < SYNTHETIC_RATE).astype(np.float32)


def calibrate(stepwise: Graph, x: np.ndarray | None, steps: int, subject: str = "calibration data") -> Calibration:
    """Run the float stepwise graph on x (or on random spike trains when x is None)."""
    synthetic = x is None
    if synthetic:
        x = synthetic_input(stepwise, steps)
    x = check_input(stepwise, x, subject)
    rec = run_stepwise(stepwise, x, record_cells=True)
    cal = Calibration(x, float(np.abs(x).max(initial=0.0)), bool(np.all(x == np.rint(x))), synthetic=synthetic)
    for node in stepwise.neurons():
        cal.cell_peaks[node.name] = [_per_channel_peak(v) for v in rec.cell_outputs[node.name]]
        if node.op.spiking:
            cal.rates[node.name] = float(rec.outputs[node.name].mean())
    if not np.isfinite(list(cal.rates.values()) + [p.max() for peaks in cal.cell_peaks.values() for p in peaks]).all():
        raise SpcError(subject, "drives the float model to non-finite values", "check the calibration data's range")
    return cal
