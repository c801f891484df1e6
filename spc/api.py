"""The Python API: compile, load, run, verify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spc.compiler.artifact import FORMAT, FORMAT_VERSION, Compiled, load
from spc.compiler.calibrate import calibrate
from spc.compiler.emit import TARGETS
from spc.compiler.passes import approximate_time_invariant, check_causality, fold_batchnorm, lower
from spc.compiler.quantize import QuantOptions, quantize
from spc.errors import SpcError
from spc.files import load_array
from spc.progress import Stages
from spc.frontends.torch.trace import from_torch
from spc.runtime.backends import require_backend, run_backend
from spc.compiler.ir import Graph
from spc.runtime.recording import check_input
from spc.runtime.sim import run_stepwise
from spc.runtime.report import Report
from spc.runtime.verify import verify as _verify


RATE_CHANGE_WARNING = 0.5
"""Warn when quantization changes a layer's firing rate by more than this fraction."""


def _example_tensor(example) -> torch.Tensor:
    if isinstance(example, torch.Tensor):
        return example.detach().float()
    if isinstance(example, np.ndarray):
        return torch.from_numpy(np.asarray(example, dtype=np.float32))
    shape = tuple(int(d) for d in example)
    if len(shape) < 3 or min(shape) < 1:
        raise SpcError("input shape", f"{shape} is not a time-major shape T,B,features...", "pass e.g. --input-shape 16,1,64")
    return torch.zeros(shape)


NIR_STEPS = 64
"""Sequence length assumed for a NIR model when no example shape is given (calibration only)."""


def trace(model, example, dt: float | None = None) -> tuple[Graph, tuple[int, ...], str, dict]:
    """The parallel-form graph of a torch module (traced on the example input) or of a .nir file
    (read with the time step `dt`, see `spc.frontends.nir.read_nir`), with the example shape
    [T, B, ...], a name for the source and, for NIR, the time step it was read with."""
    if isinstance(model, (str, Path)):
        from spc.frontends.nir import read_nir

        path = Path(model)
        if path.suffix != ".nir":
            raise SpcError(f"model {path}", "is neither a torch.nn.Module nor a .nir file", "pass a module, or the path of a NIR graph ending in .nir")
        graph, step = read_nir(path, dt)
        shape = tuple(graph.input.op.shape)
        if example is None:
            return graph, (NIR_STEPS, 1) + shape, path.name, step
        given = tuple(_example_tensor(example).shape)
        if given[2:] != shape:
            raise SpcError("input shape", f"{given} does not match the NIR graph's input {shape}", f"pass --input-shape T,B,{','.join(map(str, shape))}, or leave it out")
        return graph, given, path.name, step
    if dt is not None:
        raise SpcError("--dt", "applies to NIR files only (a torch model's neurons are stepwise already)", "leave --dt out")
    if example is None:
        raise SpcError("input shape", "is needed to trace a torch model", "pass --input-shape T,B,features... (Python: an example input or shape)")
    x = _example_tensor(example)
    return from_torch(model, x), tuple(x.shape), type(model).__name__, {}


def compile(
    model: torch.nn.Module | str | Path,
    example=None,
    out: str | Path | None = None,
    *,
    drop_future: bool = False,
    time_invariant: int | None = None,
    force: bool = False,
    calib: np.ndarray | str | Path | None = None,
    integer: bool = True,
    targets: tuple[str, ...] | None = None,
    dt: float | None = None,
    profile: str | None = None,
    progress: bool = True,
    lava_stock_only: bool = False,
    **quantization,
) -> Compiled:
    """Trace `model` (a torch module, or the path of a .nir file) on an example input (a tensor, an
    array, or a shape [T, B, ...]; optional for NIR), check it,
    lower it to stepwise form, quantize it (unless `integer=False`) and, with `out`, write the
    compiled directory atomically, with the files of `targets` ('onnx', 'nir', 'lava'; None: every
    target that can express the model, the others skipped with the reason in the manifest).

    `calib` is calibration input [T, B, ...], or the path of a .npy file holding it (random spike
    trains when None); the remaining keyword
    arguments are `QuantOptions` fields: decay='int12'|'shift', taps='int'|'pow2', width=24,
    weight_bits=8, input_bits=8, per_channel=False, lava_stock=False (choose scales Lava's stock
    processes hold exactly). `time_invariant=N` (opt-in) replaces time-indexed
    kernels (PSN, MaskedPSN, IPSU, RPSU) by N time-invariant terms so the model runs for any length;
    the approximation is recorded and `verify(model=...)` measures its effect. `dt` (NIR files only)
    is the time step in seconds the file's time constants are read with, instead of its metadata's
    or spc's default 1e-4 s; the manifest records which was used. A progress bar shows the stages on
    a terminal (`progress=False`: never).

    `profile` chooses the integer arithmetic: 'default' (docs/integer-spec.md; ONNX, Lava) or 'xylo'
    (SynSense Xylo's, for the 'xylo' target; the default when `targets` names it). Under 'xylo'
    every neuron takes Xylo's form first (`spc.compiler.xylo`), what that changes is recorded per
    layer in the quantization report, and what has no Xylo form is refused. `lava_stock_only`
    (implies lava_stock) refuses, with every reason, a model any of whose layers cannot run on Lava's
    stock processes, i.e. on Loihi 2 (docs/loihi2-stock.md)."""
    profile = profile or ("xylo" if targets and "xylo" in targets else "default")
    if lava_stock_only:
        if not integer or profile != "default":
            raise SpcError("--lava-stock-only", "needs the default integer form (Lava's), which --float-only or the Xylo profile leave out", "drop one of the two")
        quantization["lava_stock"] = True
    options = QuantOptions.for_profile(profile, **quantization)
    options.check()
    emitted = len(TARGETS if targets is None else targets)
    with Stages("compiling", 2 + 3 * integer + (1 + emitted if out is not None else 0), progress) as stages:
        stages.start("tracing")
        traced, example_shape, source, step = trace(model, example, dt)
        stages.start("lowering")
        parallel, approximations = check_causality(traced, drop_future)
        if time_invariant is not None:
            parallel, fitted = approximate_time_invariant(parallel, time_invariant)
            approximations = approximations + fitted
        stepwise = lower(fold_batchnorm(parallel))
        integer_graph, report = None, None
        if integer:
            stages.start("calibrating")
            subject = "calibration data"
            if isinstance(calib, (str, Path)):
                subject, calib = f"calibration file {calib}", load_array(calib, "calibration")
            mapped, mapping = stepwise, None
            if options.profile == "xylo":
                from spc.compiler.xylo import DEVICE, resources, xylo_form

                mapped, mapping = xylo_form(stepwise)
            cal = calibrate(mapped, calib, example_shape[0], subject)
            stages.start("quantizing")
            integer_graph, report = quantize(mapped, cal, options)
            if mapping is not None:
                report["xylo"] = {"device": DEVICE, "layers": {m.layer: m.to_json() for m in mapping}, "resources": resources(integer_graph)}
            stages.start("checking the integer form")
            report["warnings"] = _check_quantization(integer_graph, report, cal)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "spc_version": __import__("spc").__version__,
            "model": source,
            "example_input_shape": list(example_shape),
            "time_steps": stepwise.time_steps,
            "options": {"drop_future": drop_future, "time_invariant": time_invariant, "integer": integer, "lava_stock_only": lava_stock_only, **(report["options"] if report else {})},
            "approximations": [a.to_json() for a in approximations],
            **({"nir": step} if step else {}),
        }
        compiled = Compiled(parallel, stepwise, manifest, integer_graph, report)
        if lava_stock_only:
            _require_lava_stock(integer_graph)
        if out is not None:
            compiled.save(out, force=force, targets=targets, stage=stages.start)
    return compiled


def _require_lava_stock(integer: Graph) -> None:
    """Refuse, listing every reason, an integer graph with layers Lava's stock processes cannot run."""
    from spc.runtime.lava.plan import plan_network

    placement = plan_network(integer, "fixed_pt").placement
    cpu = {layer: p.reason for layer, p in placement.items() if p.loihi2 != "stock"}
    if cpu:
        listed = "".join(f"\n    {layer}: {reason}" for layer, reason in cpu.items())
        raise SpcError("--lava-stock-only", f"{len(cpu)} of {len(placement)} layers cannot run on Lava's stock processes (Loihi 2), only in spc's CPU process:{listed}", "change those layers as each reason says, or drop --lava-stock-only to run them on the CPU")


def _check_quantization(integer: Graph, report: dict, cal) -> list[str]:
    """Run the integer graph on the calibration data; record rates and saturations, and warn when
    quantization silences a layer, changes its rate sharply, or saturates."""
    rec = run_stepwise(integer, cal.data)
    warnings = []
    source = "random spike inputs (no calibration data given)" if cal.synthetic else "the calibration data"
    for name, layer in report["layers"].items():
        if layer.get("kind") != "Neuron":
            continue
        layer["saturations"] = rec.saturations[name]
        if rec.saturations[name]:
            warnings.append(f"layer '{name}': {rec.saturations[name]} saturation events on {source}")
        float_rate = layer.get("float_rate")
        if float_rate is None:
            continue
        layer["integer_rate"] = rate = float(rec.outputs[name].mean())
        if float_rate > 0 and rate == 0:
            warnings.append(f"layer '{name}': quantization silenced it (float firing rate {float_rate:.3f}, integer 0) on {source}")
        elif abs(rate - float_rate) > RATE_CHANGE_WARNING * max(float_rate, 1e-3):
            warnings.append(f"layer '{name}': quantization changed its firing rate from {float_rate:.3f} to {rate:.3f} on {source}")
    if cal.synthetic:
        warnings.insert(0, "no calibration data: scales were chosen on random spike trains; pass --calib X.npy (Python: calib=x) with representative inputs")
    return warnings


def _compiled(compiled: Compiled | str | Path) -> Compiled:
    return compiled if isinstance(compiled, Compiled) else load(compiled)


def run(compiled: Compiled | str | Path, x: np.ndarray, backend: str = "sim") -> np.ndarray:
    """Run a compiled model on x [T, B, ...] and return its output [T, B, ...]; `backend` is one of
    spc.runtime.backends.BACKENDS (default: spc's integer simulator)."""
    return run_backend(backend, _compiled(compiled), x, record="output").output


def verify(compiled: Compiled | str | Path, x: np.ndarray, model: torch.nn.Module | None = None, labels: np.ndarray | None = None, **options) -> Report:
    """Run every form on x and compare them layer by layer; see `spc.runtime.verify` (options:
    batch_size, raster_sample, progress, backends)."""
    compiled = _compiled(compiled)
    x = check_input(compiled.parallel, x)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (x.shape[1],) or labels.dtype.kind not in "iu":
            raise SpcError("labels", f"have shape {labels.shape} and dtype {labels.dtype}; expected {x.shape[1]} integer class indices (one per sample)", "save the labels as an int array of shape [B]")
    sample = options.get("raster_sample", 0)
    if not 0 <= sample < x.shape[1]:
        raise SpcError(f"raster sample {sample}", f"is not one of the input's {x.shape[1]} samples", f"choose a sample index from 0 to {x.shape[1] - 1}")
    for name in options.get("backends", ()):
        require_backend(name)
    if options.get("batch_size") is not None and options["batch_size"] < 1:
        raise SpcError(f"batch size {options['batch_size']}", "must be at least 1", "omit it to let spc choose")
    return _verify(compiled, x, model, labels, **options)
