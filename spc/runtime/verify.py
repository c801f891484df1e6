"""Prove that the forms of a compiled model compute the same thing, layer by layer, and measure how
far quantization moves the integer form from the float one.

Chain of forms: the original torch model (when given) -> the parallel graph -> the float stepwise
graph (equivalence: gating) -> the integer graph (fidelity: measured, reported, not gating). For
each neighbouring pair, two kinds of comparison (all in float64; see `spc.runtime.compare`):

- isolated: the candidate runs with every neuron's downstream input taken from the reference's
  output for that neuron, so each layer (with the synapses feeding it) is checked on exactly the
  reference's input and one flipped spike cannot cascade;
- end-to-end: both forms run freely; their outputs are compared, and differences are explained
  (not failed) only when upstream ties exist to cause them.

Other runtimes (ONNX, Lava; `backends`) run the integer form, which must agree with spc's integer
simulator exactly (every spike and membrane value), or the float form, within the tolerance; the
report names the first layer, step, sample and neuron where one diverges.

Samples are verified in batches (bounded memory); the report merges them. A progress bar names
each form and batch as it runs, on a terminal.
"""

from __future__ import annotations

import time

import numpy as np

from spc.compiler.artifact import Compiled
from spc.compiler.ir import channel_view
from spc.compiler.summary import lava_placement
from spc.progress import Stages
from spc.runtime.backends import BACKENDS, run_backend
from spc.runtime.compare import compare
from spc.runtime.limits import HEADROOM, available_memory, bytes_per_sample, ensure_fits
from spc.runtime.parallel import run_model, run_parallel
from spc.runtime.report import Report
from spc.runtime.sim import run_stepwise

MEMORY_BUDGET = 2**30
"""Bytes of recordings one batch may hold; sets the default batch size."""
RASTER_NEURONS = 64
"""Neurons per layer shown in the report's spike rasters."""


def accuracy_counts(output: np.ndarray, labels: np.ndarray) -> int:
    """Correct classifications, by the output summed over time (spike counts or readout membrane)."""
    scores = output.reshape(output.shape[0], output.shape[1], -1).sum(axis=0)
    return int((scores.argmax(axis=1) == labels).sum())


def _timed(report: Report, form: str, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    report.wall_time[form] = report.wall_time.get(form, 0.0) + time.perf_counter() - start
    return result


def _raster(spikes: np.ndarray, sample: int) -> list[list[int]]:
    flat = spikes[:, sample].reshape(spikes.shape[0], -1)[:, :RASTER_NEURONS]
    return np.argwhere(flat != 0).tolist()


class _Batch:
    """Runs every form on one batch of samples and records the comparisons into a Report."""

    def __init__(self, compiled: Compiled, x: np.ndarray, labels, offset: int, raster_sample: int | None, backends: tuple[str, ...] = (), stage=lambda form: None, progress: bool = False):
        self.compiled, self.x, self.labels, self.offset, self.backends = compiled, x, labels, offset, backends
        self.stage, self.progress = stage, progress  # told each form as its run starts; backends' own bars
        self.raster_sample = raster_sample
        self.fires = {n.name: n.op.fire for n in compiled.stepwise.neurons()}
        self.neurons = [n.name for n in compiled.parallel.neurons()]
        self.output_fire = self.fires.get(compiled.stepwise.outputs[0])  # None: a real-valued output (a readout, a Linear head), compared as values
        self.report = Report(samples=x.shape[1], labelled=labels is not None)
        self.rasters: dict[str, dict] = {}

    def record(self, form: str, rec) -> None:
        """Keep what a free-running form produced: accuracy, and the raster of the chosen sample."""
        if self.labels is not None:
            self.report.correct[form] = accuracy_counts(rec.output, self.labels)
        if self.raster_sample is None:
            return
        for name, fire in self.fires.items():
            if fire is not None and name in rec.outputs:  # (a hardware form may fuse layers)
                out = rec.outputs[name]
                entry = self.rasters.setdefault(name, {"sample": self.raster_sample + self.offset, "steps": out.shape[0], "neurons": min(RASTER_NEURONS, int(np.prod(out.shape[2:]))), "forms": {}})
                entry["forms"][form] = _raster(out, self.raster_sample)

    def add(self, reference, candidate, layer, mode, ref_out, cand_out, **kw) -> None:
        self.report.comparisons.append(compare(reference, candidate, layer, mode, ref_out, cand_out, sample_offset=self.offset, **kw))

    def run(self, model) -> Report:
        compiled, x, report = self.compiled, self.x, self.report
        self.stage("parallel")
        ref = _timed(report, "parallel", run_parallel, compiled.parallel, x)
        self.record("parallel", ref)
        if model is not None:
            self.stage("torch-model")
            self._against_model(model, ref)
        self.stage("stepwise-float")
        forced = run_stepwise(compiled.stepwise, x, teacher=ref.outputs)
        for name in self.neurons:
            self.add("parallel", "stepwise-float", name, "isolated", ref.outputs[name], forced.outputs[name], fire=self.fires[name], ref_h=ref.membranes[name], cand_h=forced.membranes[name])
        free = _timed(report, "stepwise-float", run_stepwise, compiled.stepwise, x)
        self.record("stepwise-float", free)
        self.add("parallel", "stepwise-float", "(output)", "end-to-end", ref.output, free.output, fire=self.output_fire)
        runs = {"stepwise-float": free}
        if compiled.integer is not None:
            self.stage("integer")
            runs["integer"] = self._fidelity(free)
        for name in self.backends:
            self.stage(name)
            self._against_backend(name, runs)
        report.rasters = self.rasters
        return report

    def _against_backend(self, name: str, runs: dict) -> None:
        """Another runtime of the integer (exactly) or float (within the tolerance) form, layer by layer."""
        form = BACKENDS[name].form
        reference = "integer" if form == "integer" else "stepwise-float"
        ref = runs[reference]
        rec = _timed(self.report, name, run_backend, name, self.compiled, self.x, progress=self.progress)
        kind = "exact" if form == "integer" else "equivalence"
        placement = lava_placement(self.compiled) if name == "lava" else {}
        for layer, fire in self.fires.items():
            if layer in rec.outputs:
                self.add(reference, name, layer, "end-to-end", ref.outputs[layer], rec.outputs[layer], fire=fire, ref_h=ref.membranes[layer], cand_h=rec.membranes.get(layer), kind=kind, note=_lava_note(placement.get(layer)))
        self.add(reference, name, "(output)", "end-to-end", ref.output, rec.output, fire=self.output_fire, kind=kind)

    def _against_model(self, model, ref) -> None:
        compiled, x = self.compiled, self.x
        approximated = {a["layer"]: a for a in compiled.manifest.get("approximations", [])}
        original = _timed(self.report, "torch-model", run_model, model, x, self.neurons)
        if self.labels is not None:
            self.report.correct["torch-model"] = accuracy_counts(original.output, self.labels)
        forced = run_parallel(compiled.parallel, x, teacher=original.outputs)
        for name in self.neurons:
            approx = approximated.get(name)
            kind, note = ("approximation", f"approximation (opted in): {approx['what']}") if approx else ("equivalence", "")
            self.add("torch-model", "parallel", name, "isolated", original.outputs[name], forced.outputs[name], fire=self.fires[name], cand_h=forced.membranes[name], kind=kind, note=note)
        self.add("torch-model", "parallel", "(output)", "end-to-end", original.output, ref.output, fire=self.output_fire, kind="approximation" if approximated else "equivalence")

    def _fidelity(self, floats) -> None:
        compiled, x = self.compiled, self.x
        layers = compiled.quantization["layers"]
        forced = run_stepwise(compiled.integer, x, teacher={n: floats.outputs[n] for n in self.neurons})  # layers, not a layer's internal branches
        for name, fire in self.fires.items():
            if name not in forced.membranes:  # fused into the next layer by the hardware profile (Xylo's LI → LIF)
                continue
            scale = channel_view(np.asarray(layers[name]["membrane_scale"]), floats.membranes[name].shape[2:])
            h = forced.membranes[name] * scale
            out = forced.outputs[name] if fire is not None else h
            self.add("stepwise-float", "integer", name, "isolated", floats.outputs[name], out, fire=fire, ref_h=floats.membranes[name], cand_h=h, kind="fidelity", lsb=float(np.max(scale)))
        free = _timed(self.report, "integer", run_stepwise, compiled.integer, x)
        self.record("integer", free)
        self.report.saturations = dict(free.saturations)
        self.add("stepwise-float", "integer", "(output)", "end-to-end", floats.output, free.output, fire=self.output_fire, kind="fidelity")
        return free


def _lava_note(placement: dict | None) -> str:
    """Who computed a layer in Lava: its stock processes (an implementation spc did not write, and what
    Loihi 2 runs) or spc's own process (agreement then checks the synapses and wiring)."""
    if placement is None:
        return ""
    if placement["loihi2"] == "stock":
        return f"computed by Lava's stock {', '.join(dict.fromkeys(placement['processes']))} (Loihi 2: stock)"
    return "computed by spc's own process (CPU only): agreement checks Lava's synapses and the wiring"


FORMS_ALIVE = 8
"""Recordings alive at once while verifying a batch: parallel, model, forced and free runs of each form."""


def default_batch_size(compiled: Compiled, steps: int) -> int:
    """Samples per batch so that the recordings of every form stay within MEMORY_BUDGET (and the
    memory available); refuses when not even one sample fits."""
    ensure_fits(compiled.stepwise, steps, 1, "verifying one sample", copies=FORMS_ALIVE)
    per_sample = bytes_per_sample(compiled.stepwise, steps, copies=FORMS_ALIVE)
    return max(1, int(min(MEMORY_BUDGET, HEADROOM * available_memory()) // per_sample))


def verify(compiled: Compiled, x: np.ndarray, model=None, labels: np.ndarray | None = None, batch_size: int | None = None, raster_sample: int = 0, progress: bool = True, backends: tuple[str, ...] = ()) -> Report:
    """Run every form on x [T, B, ...] and compare them layer by layer (see the module docstring).
    `backends` (names from spc.runtime.backends) are other runtimes to check against spc's
    simulators: integer ones must agree exactly, float ones within the equivalence tolerance."""
    backends = tuple(b for b in backends if b not in ("sim", "float", "parallel"))  # always run
    compiled_with = {key: compiled.manifest.get(key) for key in ("model", "spc_version", "example_input_shape", "options", "targets")}
    report = Report(approximations=list(compiled.manifest.get("approximations", [])), quantization=compiled.quantization, compiled=compiled_with)
    batch_size = batch_size or default_batch_size(compiled, x.shape[0])
    starts = range(0, x.shape[1], batch_size)
    forms = 2 + (model is not None) + (compiled.integer is not None) + len(backends)
    with Stages("verifying", len(starts) * forms, progress) as stages:
        for i, start in enumerate(starts):
            end = min(start + batch_size, x.shape[1])
            sample = raster_sample - start if start <= raster_sample < end else None
            where = f", batch {i + 1}/{len(starts)}" if len(starts) > 1 else ""
            batch = _Batch(compiled, x[:, start:end], None if labels is None else labels[start:end], start, sample, backends, lambda form, where=where: stages.start(form + where), progress)
            report.merge(batch.run(model))
    report.explain_end_to_end()
    report.explain_real_valued()
    return report
