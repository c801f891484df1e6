"""A compiled model is a directory, loadable and runnable without the original model code:

    OUT/manifest.json           format, spc version, input shape, compile options, approximations
    OUT/parallel/graph.json     the traced parallel form (+ weights.npz): the reference
    OUT/stepwise/graph.json     the lowered stepwise form, float (+ weights.npz: the arrays that are
                                not the parallel form's; its synapses are read from there)
    OUT/integer/graph.json      the integer form of docs/integer-spec.md (+ weights.npz)
    OUT/quantization.json       scales, exponents, shifts, requested and realised time constants

It is written into a temporary sibling directory and renamed into place, so an interrupted or
failed compile leaves nothing behind, and an existing directory is replaced only when asked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from spc.compiler.ir import Graph
from spc.compiler.serialize import Stored, load_graph, save_graph
from spc.errors import SpcError
from spc.files import read_json

FORMAT = "spc-artifact"
FORMAT_VERSION = 1


@dataclass
class Compiled:
    parallel: Graph
    stepwise: Graph
    manifest: dict = field(default_factory=dict)
    integer: Graph | None = None
    quantization: dict | None = None
    path: Path | None = None  # the directory it was saved to or loaded from

    def save(self, out: str | Path, force: bool = False, targets: tuple[str, ...] | None = None, stage: Callable[[str], None] = lambda name: None) -> Path:
        """Write the compiled directory atomically, with the target files (`targets`: names from
        spc.compiler.emit.TARGETS; None: every target that can express the model). `stage` is told
        the name of each step as it starts (a progress bar)."""
        from spc.compiler.emit import emit_targets

        def fill(directory: Path) -> None:
            stage("writing the graphs")
            stored = Stored()  # every array once: the stepwise form's synapses are the parallel form's
            save_graph(self.parallel, directory / "parallel", stored)
            save_graph(self.stepwise, directory / "stepwise", stored)
            if self.integer is not None:
                save_graph(self.integer, directory / "integer", stored)
                _write_json(directory / "quantization.json", self.quantization)
            self.manifest["targets"] = emit_targets(self, directory, targets, stage, stored)
            _write_json(directory / "manifest.json", self.manifest)

        self.path = write_directory(Path(out), fill, force)
        return self.path


def _write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")  # insertion order: graph order, deterministic


def load(path: str | Path) -> Compiled:
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not path.is_dir():
        raise SpcError(str(path), "is not a directory", "give the output directory of `spc compile`")
    if not manifest_path.is_file():
        raise SpcError(str(path), "has no manifest.json, so it is not a compiled spc model", "give the output directory of `spc compile`")
    manifest = read_json(manifest_path)
    if manifest.get("format") != FORMAT:
        raise SpcError(str(manifest_path), "is not an spc manifest", "recompile the model")
    if manifest.get("version") != FORMAT_VERSION:
        raise SpcError(str(manifest_path), f"has format version {manifest.get('version')}; this spc reads {FORMAT_VERSION}", "recompile the model with this spc")
    integer, quantization = None, None
    if (path / "integer").exists():
        integer, quantization = load_graph(path / "integer"), read_json(path / "quantization.json")
    return Compiled(load_graph(path / "parallel"), load_graph(path / "stepwise"), manifest, integer, quantization, path)


def write_directory(out: Path, fill: Callable[[Path], None], force: bool = False) -> Path:
    """Create directory `out` by `fill`ing a temporary sibling and renaming it into place."""
    if out.exists() and not force:
        raise SpcError(f"output directory {out}", "already exists", "pass --force (Python: force=True) to replace it, or choose another path")
    if out.exists() and not out.is_dir():
        raise SpcError(f"output path {out}", "exists and is not a directory", "choose another path")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise SpcError(f"output directory {out}", f"cannot be created ({e.strerror})", "choose a writable location") from None
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            os.rename(out, old / "replaced")
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SpcError(f"output directory {out}", f"could not be written ({e.strerror or e})", "check free disk space and permissions") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
