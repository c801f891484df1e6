"""Prove that the forms of a compiled model compute the same thing, layer by layer, and measure how
far quantization moves the integer form from the float one.

Chain of forms: the original torch model (when given) -> the parallel graph -> the float stepwise
graph (equivalence: gating) -> the integer graph (fidelity: measured, reported, not gating).
For each neighbouring pair, two kinds of comparison (all in float64):

- isolated: the candidate runs with every neuron's downstream input taken from the reference's
  output for that neuron, so each layer (with the synapses feeding it) is checked on exactly the
  reference's input and one flipped spike cannot cascade;
- end-to-end: both forms run freely; their outputs are compared.

A spike that differs where the reference membrane lies within the tolerance of its threshold is a
tie (two float summation orders may round either way there): it is counted and reported, not a
failure. Any other differing spike, or a membrane error above the tolerance, fails. End-to-end
differences are explained (and do not fail) only when upstream ties exist to cause them.
Fidelity comparisons report spike agreement and the membrane error in float units (integer
membrane × its scale from quantization.json) with the first step where the forms diverge.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from spc.compiler.artifact import Compiled
from spc.compiler.cells import Fire
from spc.runtime.float_cells import fire_margin, uniforms
from spc.runtime.parallel import run_model, run_parallel
from spc.runtime.sim import run_stepwise
from spc.compiler.summary import time_constant_rows, time_constant_table
from spc.text_table import render
from spc.compiler.ir import channel_view

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
    kind: str = "equivalence"  # or "fidelity" (float vs integer), "approximation" (opted-in)
    mean_abs_error: float | None = None

    @property
    def passed(self) -> bool:
        return self.spike_mismatches == 0 and (self.max_abs_error is None or self.max_abs_error <= self.tolerance)

    @property
    def agreement(self) -> float | None:
        return 1.0 - self.spike_mismatches / self.spikes_compared if self.spikes_compared else None

    def result(self) -> str:
        if self.kind == "fidelity":
            return "-" if self.agreement is None else f"{100 * self.agreement:.2f}% agree"
        if self.gating:
            return "ok" if self.passed else "FAIL"
        return "ok" if self.passed else "differs (not gating)"

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Report:
    comparisons: list[Comparison] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    approximations: list[dict] = field(default_factory=list)
    saturations: dict[str, int] = field(default_factory=dict)  # integer form, per layer
    quantization: dict | None = None

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
            "saturations": self.saturations,
            "time_constants": time_constant_rows(self.quantization),
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
            rows.append((c.reference, c.candidate, c.layer, c.mode, c.spikes_compared, c.spike_mismatches, c.ties, err, first, c.result()))
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
        verdict = "PASSED" if self.passed else "FAILED"
        if self.comparisons and any(c.kind == "fidelity" for c in self.comparisons):
            verdict += " (equivalence checks gate; float -> integer fidelity is reported)"
        return "\n".join(parts + [verdict])


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

    if compiled.integer is not None:
        integer_free = _fidelity(report, compiled, x, free, fires)
    if labels is not None:
        if model is not None:
            report.accuracy["torch-model"] = accuracy(original.output, labels)
        report.accuracy["parallel"] = accuracy(ref.output, labels)
        report.accuracy["stepwise-float"] = accuracy(free.output, labels)
        if compiled.integer is not None:
            report.accuracy["integer"] = accuracy(integer_free.output, labels)
    return report


def _fidelity(report: Report, compiled: Compiled, x: np.ndarray, floats, fires: dict):
    """Float stepwise vs integer, per layer (isolated) and at the output; returns the free integer run."""
    layers = compiled.quantization["layers"]
    report.quantization = compiled.quantization
    forced = run_stepwise(compiled.integer, x, teacher=floats.outputs)
    for name, fire in fires.items():
        scale = channel_view(np.asarray(layers[name]["membrane_scale"]), floats.membranes[name].shape[2:])
        h = forced.membranes[name] * scale
        out = forced.outputs[name] if fire is not None else h
        report.comparisons.append(_fidelity_comparison(name, "isolated", floats.outputs[name], out, floats.membranes[name], h, fire is not None, scale))
    free = run_stepwise(compiled.integer, x)
    report.saturations = dict(free.saturations)
    spiking = fires[compiled.stepwise.outputs[0]] is not None
    report.comparisons.append(_fidelity_comparison("(output)", "end-to-end", floats.output, free.output, None, None, spiking, 0.0))
    return free


FIDELITY_DIVERGENCE = 0.01
"""A real-valued output has diverged where its error exceeds this share of its largest magnitude."""


def _fidelity_comparison(layer, mode, ref_out, cand_out, ref_h, cand_h, spiking: bool, scale) -> Comparison:
    """How closely the integer form follows the float one (tolerance: one integer step of the membrane)."""
    lsb = float(np.max(scale))
    if spiking:
        differ = ref_out != cand_out
        error = None if ref_h is None else np.abs(ref_h - cand_h)
        return Comparison("stepwise-float", "integer", layer, mode, int(differ.size), int(differ.sum()), 0, None if error is None else float(error.max(initial=0.0)), lsb, _first(differ), False, "", "fidelity", None if error is None else float(error.mean()))
    error = np.abs(ref_out - cand_out)
    diverged = error > max(lsb, FIDELITY_DIVERGENCE * float(np.abs(ref_out).max(initial=0.0)))
    return Comparison("stepwise-float", "integer", layer, mode, 0, 0, 0, float(error.max(initial=0.0)), lsb, _first(diverged), False, "", "fidelity", float(error.mean()))
