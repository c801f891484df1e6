"""A compiled model is a directory, loadable and runnable without the original model code:

    OUT/manifest.json           format, spc version, input shape, compile options, approximations
    OUT/parallel/graph.json     the traced parallel form (+ weights.npz): the reference
    OUT/stepwise/graph.json     the lowered stepwise form, float (+ weights.npz: the arrays that are
                                not the parallel form's; its synapses are read from there)
    OUT/integer/graph.json      the integer form of docs/integer-spec.md (+ weights.npz)
    OUT/quantization.json       scales, exponents, shifts, requested and realised time constants

It is written by `spc.outputs.OutputDirectory`: into a temporary sibling directory, renamed into
place only if nothing appeared at the path meanwhile, so an interrupted or failed compile leaves
nothing behind; an existing directory is replaced only when asked, and only if it is empty or
`foreign_files` finds nothing in it that spc did not write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from spc.compiler.integer_form import check_integer_form
from spc.compiler.ir import Graph
from spc.compiler.serialize import Stored, load_graph, save_graph
from spc.errors import SpcError
from spc.files import read_json
from spc.outputs import OutputDirectory

FORMAT = "spc-artifact"
FORMAT_VERSION = 1
FORMS = ("parallel", "stepwise", "integer")


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

        self.path = output_directory(out, force).write(fill)
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
        check_integer_form(integer, str(path / "integer" / "graph.json"))
    return Compiled(load_graph(path / "parallel"), load_graph(path / "stepwise"), manifest, integer, quantization, path)


def output_directory(out: str | Path, force: bool = False) -> OutputDirectory:
    """The compiled directory `out`, checked before any work (see `spc.outputs`)."""
    return OutputDirectory(Path(out), force, foreign_files)


def foreign_files(directory: Path) -> list[str] | None:
    """What `directory` holds that spc did not write there (None: it has no spc manifest at all):
    anything but the manifest, the forms' graph.json and weights.npz, quantization.json and the
    targets' files the manifest lists."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    written = {"manifest.json", "quantization.json"} | {f"{form}/{name}" for form in FORMS for name in ("graph.json", "weights.npz")}
    targets = manifest.get("targets")
    for entry in targets.values() if isinstance(targets, dict) else ():
        files = entry.get("files") if isinstance(entry, dict) else None
        written |= {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()
    folders = {str(Path(f).parent) for f in written} - {"."}
    foreign = []
    for root, dirs, files in os.walk(directory):
        here = Path(root).relative_to(directory)
        for name in sorted(dirs):
            if str(here / name) not in folders or (Path(root) / name).is_symlink():
                foreign.append(f"{here / name}/")
        dirs[:] = [d for d in dirs if str(here / d) in folders and not (Path(root) / d).is_symlink()]
        foreign += [str(here / f) for f in sorted(files) if str(here / f) not in written]
    return foreign
