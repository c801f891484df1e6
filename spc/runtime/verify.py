"""Prove that the forms of a compiled model compute the same thing, layer by layer.

Chain of forms: the original torch model (when given) -> the parallel graph -> the stepwise graph.
For each neighbouring pair, two kinds of comparison (all in float64):

- isolated: the candidate runs with every neuron's downstream input taken from the reference's
  output for that neuron, so each layer (with the synapses feeding it) is checked on exactly the
  reference's input and one flipped spike cannot cascade;
- end-to-end: both forms run freely; their outputs are compared.

A spike that differs where the reference membrane lies within the tolerance of its threshold is a
tie (two float summation orders may round either way there): it is counted and reported, not a
failure. Any other differing spike, or a membrane error above the tolerance, fails. End-to-end
differences are explained (and do not fail) only when upstream ties exist to cause them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from spc.compiler.artifact import Compiled
from spc.compiler.cells import Fire
from spc.runtime.neurons import fire_margin, uniforms
from spc.runtime.parallel import run_model, run_parallel
from spc.runtime.sim import run_stepwise

RTOL = 1e-9
"""Membrane tolerance, relative to the layer's largest membrane magnitude (at least 1), in float64."""


@dataclass
class Comparison:
    reference: str
    candidate: str
    layer: str
    mode: str
    spikes_compared: int
    spike_mismatches: int
    ties: int
    max_abs_error: float | None
    tolerance: float
    first_mismatch: dict | None = None
    gating: bool = True
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.spike_mismatches == 0 and (self.max_abs_error is None or self.max_abs_error <= self.tolerance)

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Report:
    comparisons: list[Comparison] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    approximations: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons if c.gating)

    @property
    def ties(self) -> int:
        return sum(c.ties for c in self.comparisons)

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "ties": self.ties,
            "comparisons": [c.to_json() for c in self.comparisons],
            "accuracy": self.accuracy,
            "approximations": self.approximations,
        }

    def write_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")

    def table(self) -> str:
        head = ("reference", "candidate", "layer", "mode", "spikes", "mismatches", "ties", "max|Δh|", "result")
        rows = [head]
        for c in self.comparisons:
            err = "-" if c.max_abs_error is None else f"{c.max_abs_error:.1e}"
            result = ("ok" if c.passed else "FAIL") if c.gating else ("ok" if c.passed else "differs (approximation)")
            rows.append((c.reference, c.candidate, c.layer, c.mode, str(c.spikes_compared), str(c.spike_mismatches), str(c.ties), err, result))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [f"  {c.layer} ({c.reference} -> {c.candidate}): {c.note}" for c in self.comparisons if c.note]
        out = "\n".join(lines + (["notes:"] + notes if notes else []))
        if self.accuracy:
            out += "\naccuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in self.accuracy.items())
        return out + f"\n{'PASSED' if self.passed else 'FAILED'}"


def _first(mask: np.ndarray) -> dict | None:
    hits = np.argwhere(mask.reshape(mask.shape[0], mask.shape[1], -1))
    if not hits.size:
        return None
    t, b, n = (int(v) for v in hits[0])
    return {"step": t, "sample": b, "neuron": n}


def _tolerance(values: np.ndarray) -> float:
    return RTOL * max(1.0, float(np.abs(values).max(initial=0.0)))


def _compare_values(reference, candidate, layer, mode, ref, cand, gating=True, note="") -> Comparison:
    """Compare real-valued outputs (a readout's membrane) within the tolerance."""
    error = np.abs(ref - cand)
    tol = _tolerance(ref)
    return Comparison(reference, candidate, layer, mode, 0, 0, 0, float(error.max(initial=0.0)), tol, _first(error > tol), gating, note)


def compare_layer(reference: str, candidate: str, layer: str, mode: str, ref_out, cand_out, ref_h, cand_h, fire: Fire | None, gating=True, note="") -> Comparison:
    """Compare one neuron layer between two forms: spikes (ties classified by the reference
    membrane, or the candidate's when the reference's is unknown) and membranes where both are known."""
    if fire is None:  # a readout: its membrane is its output
        return _compare_values(reference, candidate, layer, mode, ref_out, cand_out, gating, note)
    membrane = ref_h if ref_h is not None else cand_h
    tol = _tolerance(membrane)
    differ = ref_out != cand_out
    tie = differ & (np.abs(fire_margin(fire, membrane, uniforms(fire, membrane.shape))) <= tol)
    wrong = differ & ~tie
    error = None
    if ref_h is not None and cand_h is not None:
        membrane_error = np.abs(ref_h - cand_h)
        error = float(membrane_error.max(initial=0.0))
        wrong = wrong | (membrane_error > tol)
    return Comparison(reference, candidate, layer, mode, int(differ.size), int((differ & ~tie).sum()), int(tie.sum()), error, tol, _first(wrong), gating, note)


def _end_to_end(reference, candidate, ref_out, cand_out, spiking: bool, upstream_ties: int, gating=True) -> Comparison:
    """Compare the outputs of two free-running forms; differences are explained only by upstream ties."""
    if spiking:
        differ = ref_out != cand_out
        c = Comparison(reference, candidate, "(output)", "end-to-end", int(differ.size), int(differ.sum()), 0, None, 0.0, _first(differ), gating)
    else:
        c = _compare_values(reference, candidate, "(output)", "end-to-end", ref_out, cand_out, gating)
    if not c.passed and upstream_ties:
        c.note = f"differences propagate from {upstream_ties} tie(s) upstream; the isolated comparisons check every layer"
        c.gating = False
    return c


def accuracy(output: np.ndarray, labels: np.ndarray) -> float:
    """Classify by the output summed over time (spike counts or readout membrane), argmax over classes."""
    scores = output.reshape(output.shape[0], output.shape[1], -1).sum(axis=0)
    return float((scores.argmax(axis=1) == labels).mean())


def verify(compiled: Compiled, x: np.ndarray, model=None, labels: np.ndarray | None = None) -> Report:
    """Run every form on x [T, B, ...] and compare them layer by layer (see the module docstring)."""
    stepwise, parallel = compiled.stepwise, compiled.parallel
    fires = {n.name: n.op.fire for n in stepwise.neurons()}
    neurons = [n.name for n in parallel.neurons()]
    output_spiking = fires.get(stepwise.outputs[0]) is not None
    approximated = {a["layer"]: a for a in compiled.manifest.get("approximations", [])}
    report = Report(approximations=list(approximated.values()))

    ref = run_parallel(parallel, x)
    if model is not None:
        original = run_model(model, x, neurons)
        forced = run_parallel(parallel, x, teacher=original.outputs)
        for name in neurons:
            approx = approximated.get(name)
            note = f"approximation: {100 * approx['dropped_weight_share']:.1f}% of the weight mass (future inputs) dropped" if approx else ""
            report.comparisons.append(compare_layer("torch-model", "parallel", name, "isolated", original.outputs[name], forced.outputs[name], None, forced.membranes[name], fires[name], not approx, note))
        upstream = sum(c.ties for c in report.comparisons)
        report.comparisons.append(_end_to_end("torch-model", "parallel", original.output, ref.output, output_spiking, upstream, gating=not approximated))

    forced = run_stepwise(stepwise, x, teacher=ref.outputs)
    before = len(report.comparisons)
    for name in neurons:
        report.comparisons.append(compare_layer("parallel", "stepwise-float", name, "isolated", ref.outputs[name], forced.outputs[name], ref.membranes[name], forced.membranes[name], fires[name]))
    free = run_stepwise(stepwise, x)
    upstream = sum(c.ties for c in report.comparisons[before:])
    report.comparisons.append(_end_to_end("parallel", "stepwise-float", ref.output, free.output, output_spiking, upstream))

    if labels is not None:
        if model is not None:
            report.accuracy["torch-model"] = accuracy(original.output, labels)
        report.accuracy["parallel"] = accuracy(ref.output, labels)
        report.accuracy["stepwise-float"] = accuracy(free.output, labels)
    return report
