"""Comparing one layer of two forms: spikes, ties, membrane errors, where they first diverge.

Four kinds of comparison, by what the two forms are expected to do:
- equivalence (float vs float, gating): membranes agree within RTOL of the layer's scale; a spike
  that differs where the reference membrane lies within that tolerance of the threshold is a tie
  (two float summation orders may round either way there): counted and reported, not a failure;
- approximation (an opted-in approximation, e.g. dropped future weights): measured like
  equivalence, reported, not gating;
- exact (integer runtime vs integer runtime, gating): every spike and membrane value equal;
- fidelity (float vs integer, not gating): spike agreement and membrane error in float units,
  with the tolerance one integer step of the membrane.
Comparisons of successive batches merge, so a dataset can be verified in pieces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spc.compiler.cells import Fire
from spc.runtime.float_cells import fire_margin, uniforms

RTOL = 1e-9
"""Equivalence tolerance on membranes, relative to the layer's largest magnitude (at least 1), in float64."""

FIDELITY_DIVERGENCE = 0.01
"""A real-valued integer output has diverged where its error exceeds this share of the largest float value."""

HISTOGRAM_EDGES = list(range(-18, 3))
"""log10 bin edges of membrane-error histograms; bin 0 counts exact zeros, bin 1 errors below
1e-18, bin 2 + i errors in [1e(-18+i), 1e(-17+i)), the last bin errors of 1e2 and more."""


def error_histogram(errors: np.ndarray) -> list[int]:
    counts = [int(np.count_nonzero(errors == 0))]
    nonzero = errors[errors > 0]
    with np.errstate(divide="ignore"):
        logs = np.log10(nonzero)
    bins = np.digitize(logs, HISTOGRAM_EDGES)  # 0: below the first edge ... len(edges): above the last
    counts += np.bincount(bins, minlength=len(HISTOGRAM_EDGES) + 1).tolist()
    return counts


@dataclass
class Comparison:
    reference: str
    candidate: str
    layer: str
    mode: str  # "isolated" (the candidate fed the reference's spikes) or "end-to-end"
    kind: str = "equivalence"
    spikes_compared: int = 0
    spike_mismatches: int = 0  # differing spikes that are not ties
    ties: int = 0
    max_abs_error: float | None = None
    error_sum: float = 0.0
    error_count: int = 0
    membrane_violations: int = 0  # membrane values off by more than the tolerance
    tolerance: float = 0.0
    first_mismatch: dict | None = None  # {"step", "sample", "neuron"}: the earliest wrong value
    histogram: list[int] | None = None
    gating: bool = True
    note: str = ""
    spiking: bool = True  # False: a real-valued output (a readout's membrane), compared as a membrane
    reference_peak: float = 0.0  # the largest |reference value| of a real-valued output

    @property
    def passed(self) -> bool:
        return self.spike_mismatches == 0 and self.membrane_violations == 0

    @property
    def agreement(self) -> float | None:
        """The share of spikes that agree; for real-valued outputs, of values within the tolerance."""
        if self.spikes_compared:
            return 1.0 - self.spike_mismatches / self.spikes_compared
        return 1.0 - self.membrane_violations / self.error_count if self.error_count else None

    @property
    def mean_abs_error(self) -> float | None:
        return self.error_sum / self.error_count if self.error_count else None

    def result(self) -> str:
        if self.kind == "fidelity":
            return "-" if self.agreement is None else f"{100 * self.agreement:.2f}% agree"
        if self.gating:
            return "ok" if self.passed else "FAIL"
        return "ok" if self.passed else "differs (not gating)"

    def merge(self, other: Comparison) -> None:
        """Add the comparison of another batch of samples of the same layer."""
        self.spikes_compared += other.spikes_compared
        self.spike_mismatches += other.spike_mismatches
        self.ties += other.ties
        if other.max_abs_error is not None:
            self.max_abs_error = max(self.max_abs_error or 0.0, other.max_abs_error)
        self.error_sum += other.error_sum
        self.error_count += other.error_count
        self.membrane_violations += other.membrane_violations
        self.tolerance = max(self.tolerance, other.tolerance)
        self.reference_peak = max(self.reference_peak, other.reference_peak)
        firsts = [f for f in (self.first_mismatch, other.first_mismatch) if f is not None]
        self.first_mismatch = min(firsts, key=lambda f: (f["step"], f["sample"], f["neuron"]), default=None)
        if other.histogram is not None:
            self.histogram = other.histogram if self.histogram is None else [a + b for a, b in zip(self.histogram, other.histogram)]

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed, "agreement": self.agreement, "mean_abs_error": self.mean_abs_error}


def _first(mask: np.ndarray, sample_offset: int) -> dict | None:
    hits = np.argwhere(mask.reshape(mask.shape[0], mask.shape[1], -1))
    if not hits.size:
        return None
    t, b, n = (int(v) for v in hits[0])
    return {"step": t, "sample": b + sample_offset, "neuron": n}


def _scale(values: np.ndarray) -> float:
    return max(1.0, float(np.abs(values).max(initial=0.0)))


def compare(reference: str, candidate: str, layer: str, mode: str, ref_out, cand_out, *, fire: Fire | None, ref_h=None, cand_h=None, kind: str = "equivalence", lsb: float = 0.0, sample_offset: int = 0, gating: bool | None = None, note: str = "") -> Comparison:
    """Compare a layer's outputs (spikes when `fire` is given, else real values) and its membranes
    where both are known. `lsb` is the integer form's membrane step (fidelity comparisons)."""
    c = Comparison(reference, candidate, layer, mode, kind, gating=kind in ("equivalence", "exact") if gating is None else gating, note=note)
    if fire is None:  # a real-valued output (a readout's membrane) compares as a membrane
        ref_h, cand_h = ref_out, cand_out
        c.spiking, c.reference_peak = False, float(np.abs(ref_out).max(initial=0.0))
    membrane = ref_h if ref_h is not None else cand_h
    if kind == "exact":
        c.tolerance = 0.0
    elif kind == "fidelity":
        c.tolerance = lsb if fire is not None else max(lsb, FIDELITY_DIVERGENCE * float(np.abs(ref_out).max(initial=0.0)))
    else:
        c.tolerance = RTOL * _scale(membrane) if membrane is not None else 0.0
    wrong = np.zeros(np.shape(ref_out), bool)
    if fire is not None:
        differ = ref_out != cand_out
        tie = np.zeros_like(differ)
        if kind in ("equivalence", "approximation") and membrane is not None:
            tie = differ & (np.abs(fire_margin(fire, membrane, uniforms(fire, membrane.shape))) <= c.tolerance)
        wrong = differ & ~tie
        c.spikes_compared, c.spike_mismatches, c.ties = int(differ.size), int(wrong.sum()), int(tie.sum())
    if ref_h is not None and cand_h is not None:
        errors = np.abs(np.asarray(ref_h, np.float64) - np.asarray(cand_h, np.float64))
        c.max_abs_error = float(errors.max(initial=0.0))
        c.error_sum, c.error_count = float(errors.sum()), int(errors.size)
        over = errors > c.tolerance
        c.membrane_violations = int(over.sum())
        c.histogram = error_histogram(errors)
        if not (kind == "fidelity" and fire is not None):  # a spiking layer diverges where its spikes do
            wrong = wrong | over
    c.first_mismatch = _first(wrong, sample_offset)
    return c
