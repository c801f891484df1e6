"""The verification report: every comparison, accuracy per form, integer saturation events, time
constants, and the data of its figures. JSON is the machine-readable source; `table()` is what the
terminal shows and `spc.report.html` draws the same data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from spc.compiler.summary import time_constant_rows, time_constant_table
from spc.runtime.compare import HISTOGRAM_EDGES, Comparison
from spc.text_table import render


FORMS = ("torch-model", "parallel", "stepwise-float", "integer")
"""The chain of forms, reference first."""


@dataclass
class Report:
    comparisons: list[Comparison] = field(default_factory=list)
    correct: dict[str, int] = field(default_factory=dict)  # form -> correctly classified samples
    samples: int = 0
    labelled: bool = False
    approximations: list[dict] = field(default_factory=list)
    saturations: dict[str, int] = field(default_factory=dict)  # integer form, per layer
    quantization: dict | None = None
    rasters: dict = field(default_factory=dict)  # layer -> {"sample", "steps", "neurons", "forms": {form: [[t, n], ...]}}
    compiled: dict = field(default_factory=dict)  # from the manifest: model, spc_version, options, targets
    wall_time: dict[str, float] = field(default_factory=dict)  # form -> seconds spent running it

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons if c.gating)

    @property
    def ties(self) -> int:
        return sum(c.ties for c in self.comparisons)

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy per form, in the order of the chain of forms."""
        if not (self.labelled and self.samples):
            return {}
        order = sorted(self.correct, key=lambda f: FORMS.index(f) if f in FORMS else len(FORMS))
        return {form: self.correct[form] / self.samples for form in order}

    def merge(self, other: Report) -> None:
        """Add the report of another batch of samples."""
        if not self.comparisons:
            self.comparisons = other.comparisons
        else:
            for mine, theirs in zip(self.comparisons, other.comparisons):
                mine.merge(theirs)
        for form, n in other.correct.items():
            self.correct[form] = self.correct.get(form, 0) + n
        for layer, n in other.saturations.items():
            self.saturations[layer] = self.saturations.get(layer, 0) + n
        for form, seconds in other.wall_time.items():
            self.wall_time[form] = self.wall_time.get(form, 0.0) + seconds
        self.samples += other.samples
        self.labelled = self.labelled or other.labelled
        self.rasters = self.rasters or other.rasters

    def explain_end_to_end(self) -> None:
        """End-to-end differences downstream of ties are explained by them: reported, not failed."""
        for c in self.comparisons:
            if c.mode != "end-to-end" or c.passed:
                continue
            upstream = sum(u.ties for u in self.comparisons if u.mode == "isolated" and (u.reference, u.candidate) == (c.reference, c.candidate))
            if upstream:
                c.note = f"differences propagate from {upstream} tie(s) upstream; the isolated comparisons check every layer"
                c.gating = False

    def explain_real_valued(self) -> None:
        """Say why a readout's fidelity row has no spikes and what its |Δh| amounts to."""
        for c in self.comparisons:
            if c.spiking or c.kind != "fidelity" or c.max_abs_error is None or not c.reference_peak:
                continue
            how = "fed the float form's spikes, this is its own quantization" if c.mode == "isolated" else "free-running, it sums every spike the integer layers above change"
            c.note = (
                f"no spikes: a real-valued output (a readout's membrane, or a head's values). |Δh| max {c.max_abs_error:.2g} = {c.max_abs_error / c.reference_peak:.1%} "
                f"of its peak {c.reference_peak:.3g}, mean {c.mean_abs_error / c.reference_peak:.2%}; {how}"
            )

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "ties": self.ties,
            "samples": self.samples,
            "comparisons": [c.to_json() for c in self.comparisons],
            "accuracy": self.accuracy,
            "approximations": self.approximations,
            "saturations": self.saturations,
            "calibration_saturations": {name: layer["saturations"] for name, layer in (self.quantization or {}).get("layers", {}).items() if "saturations" in layer},
            "time_constants": time_constant_rows(self.quantization),
            "wall_time_s": self.wall_time,
            "histogram_edges_log10": HISTOGRAM_EDGES,
            "rasters": self.rasters,
            "compiled": self.compiled,
            "spc_version": __import__("spc").__version__,
        }

    def write_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")

    def table(self) -> str:
        head = ("reference", "candidate", "layer", "mode", "spikes", "mismatches", "ties", "max|Δh|", "first divergence", "result")
        rows = []
        for c in self.comparisons:
            err = "-" if c.max_abs_error is None else f"{c.max_abs_error:.1e}"
            first = "-" if c.first_mismatch is None else "t={step} b={sample} n={neuron}".format(**c.first_mismatch)
            counts = (c.spikes_compared, c.spike_mismatches, c.ties) if c.spiking else ("-", "-", "-")
            rows.append((c.reference, c.candidate, c.layer, c.mode, *counts, err, first, c.result()))
        parts = [render(head, rows)]
        notes = [f"  {c.layer} ({c.reference} -> {c.candidate}): {c.note}" for c in self.comparisons if c.note]
        if notes:
            parts += ["notes:"] + notes
        if self.saturations:
            parts.append("integer saturation events: " + ", ".join(f"{k} {v}" for k, v in self.saturations.items()))
        taus = time_constant_table(self.quantization)
        if taus:
            parts.append(taus)
        if self.accuracy:
            parts.append("accuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in self.accuracy.items()))
        if self.wall_time:
            parts.append("wall time: " + ", ".join(f"{k} {v:.3f} s" for k, v in self.wall_time.items()))
        verdict = "PASSED" if self.passed else "FAILED"
        if any(c.kind == "fidelity" for c in self.comparisons):
            verdict += " (equivalence checks gate; float -> integer fidelity is reported)"
        return "\n".join(parts + [verdict])
