"""The Python API: compile, load, run, verify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spc.compiler.artifact import FORMAT, FORMAT_VERSION, Compiled, load
from spc.compiler.passes import check_causality, fold_batchnorm, lower
from spc.errors import SpcError
from spc.frontends.torch.trace import from_torch
from spc.runtime.parallel import run_parallel
from spc.runtime.recording import check_input
from spc.runtime.sim import run_stepwise
from spc.runtime.verify import Report
from spc.runtime.verify import verify as _verify

BACKENDS = ("sim", "parallel")


def _example_tensor(example) -> torch.Tensor:
    if isinstance(example, torch.Tensor):
        return example.detach().float()
    if isinstance(example, np.ndarray):
        return torch.from_numpy(np.asarray(example, dtype=np.float32))
    shape = tuple(int(d) for d in example)
    if len(shape) < 3 or min(shape) < 1:
        raise SpcError("input shape", f"{shape} is not a time-major shape T,B,features...", "pass e.g. --input-shape 16,1,64")
    return torch.zeros(shape)


def compile(model: torch.nn.Module, example, out: str | Path | None = None, *, drop_future: bool = False, force: bool = False) -> Compiled:
    """Trace `model` on an example input (a tensor, an array, or a shape [T, B, ...]), check it,
    lower it to stepwise form, and (with `out`) write the compiled directory atomically."""
    x = _example_tensor(example)
    traced = from_torch(model, x)
    parallel, approximations = check_causality(traced, drop_future)
    stepwise = lower(fold_batchnorm(parallel))
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "spc_version": __import__("spc").__version__,
        "model": type(model).__name__,
        "example_input_shape": list(x.shape),
        "time_steps": stepwise.time_steps,
        "options": {"drop_future": drop_future},
        "approximations": [a.to_json() for a in approximations],
    }
    compiled = Compiled(parallel, stepwise, manifest)
    if out is not None:
        compiled.save(out, force=force)
    return compiled


def _compiled(compiled: Compiled | str | Path) -> Compiled:
    return compiled if isinstance(compiled, Compiled) else load(compiled)


def run(compiled: Compiled | str | Path, x: np.ndarray, backend: str = "sim") -> np.ndarray:
    """Run a compiled model on x [T, B, ...] and return its output [T, B, ...]."""
    compiled = _compiled(compiled)
    if backend == "sim":
        return run_stepwise(compiled.stepwise, x).output
    if backend == "parallel":
        return run_parallel(compiled.parallel, x).output
    raise SpcError(f"backend '{backend}'", "is not available", f"choose one of {', '.join(BACKENDS)}")


def verify(compiled: Compiled | str | Path, x: np.ndarray, model: torch.nn.Module | None = None, labels: np.ndarray | None = None) -> Report:
    """Run every form on x and compare them layer by layer; see `spc.runtime.verify`."""
    compiled = _compiled(compiled)
    x = check_input(compiled.parallel, x)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (x.shape[1],) or labels.dtype.kind not in "iu":
            raise SpcError("labels", f"have shape {labels.shape} and dtype {labels.dtype}; expected {x.shape[1]} integer class indices (one per sample)", "save the labels as an int array of shape [B]")
    return _verify(compiled, x, model, labels)
