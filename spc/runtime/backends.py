"""Every runtime spc can run a compiled model on, by name.

| backend          | form     | runtime                                                   |
|------------------|----------|-----------------------------------------------------------|
| sim              | integer  | spc's integer simulator: the golden reference             |
| float            | float    | spc's float stepwise simulator                            |
| parallel         | parallel | the parallel form in torch                                |
| onnx             | integer  | onnxruntime, the whole-sequence (Scan) graph              |
| onnx-step        | integer  | onnxruntime, the one-step graph driven step by step       |
| onnx-reference   | integer  | onnx.reference.ReferenceEvaluator, the Scan graph         |
| onnx-float       | float    | onnxruntime, the float Scan graph                         |
| lava             | integer  | Lava, Loihi2SimCfg fixed_pt                               |
| lava-float       | float    | Lava, Loihi2SimCfg floating_pt                            |
| xylo             | integer  | XyloSim (xylosim's bit-accurate model of Xylo), Rockpool  |

ONNX and Xylo backends read the files `spc compile` wrote, so they need the compiled directory.
An integer backend runs the profile its target implements (`spc.compiler.emit.PROFILES`): `xylo`
a model compiled for Xylo, the others the default profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.artifact import Compiled
from spc.errors import SpcError
from spc.runtime.recording import Recording


@dataclass(frozen=True)
class Backend:
    form: str  # "integer", "float" or "parallel": the graph it runs
    description: str
    extra: str | None = None  # the spc extra it needs (spc.extras), if any


BACKENDS = {
    "sim": Backend("integer", "spc's integer simulator (golden reference)"),
    "float": Backend("float", "spc's float stepwise simulator"),
    "parallel": Backend("parallel", "the parallel form in torch"),
    "onnx": Backend("integer", "onnxruntime, whole-sequence Scan graph"),
    "onnx-step": Backend("integer", "onnxruntime, one-step graph"),
    "onnx-reference": Backend("integer", "onnx.reference.ReferenceEvaluator"),
    "onnx-float": Backend("float", "onnxruntime, float Scan graph"),
    "lava": Backend("integer", "Lava fixed_pt", "lava"),
    "lava-float": Backend("float", "Lava floating_pt", "lava"),
    "xylo": Backend("integer", "XyloSim, xylosim's bit-accurate model of SynSense Xylo (via Rockpool)", "xylo"),
}
TARGET = {"onnx": "onnx", "onnx-step": "onnx", "onnx-reference": "onnx", "lava": "lava", "xylo": "xylo"}
"""The target (and so the integer profile) of each integer backend but spc's own simulator."""


def require_backend(name: str) -> None:
    """Refuse an unknown backend, or one whose extra is not installed (exit status 2)."""
    if name not in BACKENDS:
        raise SpcError(f"backend '{name}'", "is not available", f"choose one of {', '.join(BACKENDS)}")
    if BACKENDS[name].extra is not None:
        from spc.extras import require

        require(BACKENDS[name].extra, f"backend '{name}'")


def parse_backends(text: str) -> tuple[str, ...]:
    names = tuple(b.strip() for b in text.split(",") if b.strip())
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise SpcError(f"--backends {text}", f"names unknown backend(s) {', '.join(unknown) or '(none)'}", f"choose from {', '.join(BACKENDS)} (comma-separated)")
    return names


def _directory(compiled: Compiled, backend: str):
    if compiled.path is None:
        raise SpcError(f"backend '{backend}'", "runs the ONNX files of a compiled directory, and this model was not saved", "compile with an output directory (spc compile -o OUT, or spc.compile(..., out)) and run that")
    files = compiled.manifest.get("targets", {}).get("onnx", {})
    if "files" not in files:
        reason = files.get("skipped", "the model was compiled without the onnx target")
        raise SpcError(f"backend '{backend}'", f"needs the ONNX files, which are missing: {reason}", "recompile with --target onnx, or use --backend sim")
    return compiled.path


def run_backend(name: str, compiled: Compiled, x: np.ndarray, record: str = "all", progress: bool = True) -> Recording:
    """Run `compiled` on x [T, B, ...] with the named backend (see the module docstring); Lava runs
    show a progress bar on a terminal unless `progress` is False."""
    from spc.runtime.parallel import run_parallel
    from spc.runtime.sim import run_stepwise

    require_backend(name)
    if BACKENDS[name].form == "integer" and compiled.integer is None:
        raise SpcError(f"backend '{name}'", "runs the integer form, which this model was compiled without", "recompile with the integer form (the default), or use a float backend")
    if name in TARGET:
        from spc.compiler.emit import check_profile

        try:
            check_profile(TARGET[name], compiled)
        except SpcError as e:
            raise SpcError(f"backend '{name}'", e.problem, e.fix) from None
    if name == "sim":
        return run_stepwise(compiled.integer, x, record=record)
    if name == "float":
        return run_stepwise(compiled.stepwise, x, record=record)
    if name == "parallel":
        return run_parallel(compiled.parallel, x)
    if name.startswith("onnx"):
        from spc.runtime.onnx_runner import run_onnx

        graph = "step" if name == "onnx-step" else "seq"
        return run_onnx(_directory(compiled, name), x, form=BACKENDS[name].form, graph=graph, engine="reference" if name == "onnx-reference" else "ort")
    if name == "xylo":
        from spc.runtime.xylo import run_xylo

        return run_xylo(compiled, x, record)
    from spc.runtime.lava.runner import run_lava

    return run_lava(compiled, x, tag="fixed_pt" if name == "lava" else "floating_pt", progress=progress)
