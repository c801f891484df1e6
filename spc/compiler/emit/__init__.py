"""Emitters: a compiled model written for other tools and runtimes (ONNX, NIR, Lava).

Each target module provides `emit_<target>(compiled, directory, stored=None) -> list[Path]` and
raises SpcError (naming the target, the layer and the alternative) for what it cannot express.
`stored` (spc.compiler.serialize.Stored), when the target is emitted into a compiled directory, says
where that directory already holds the graphs' arrays, for a target that can refer to them instead
of writing them again (ONNX: as external data). Every target is
emitted into a staging folder and moved into the compiled directory only when it succeeds, so a
refused target leaves no files behind.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from spc.errors import SpcError

TARGETS = ("onnx", "nir", "lava")


def parse_targets(text: str) -> tuple[str, ...]:
    """'onnx,nir' -> ('onnx', 'nir'); 'all' -> every target; 'none' -> ()."""
    if text.strip() in ("all", ""):
        return TARGETS
    if text.strip() == "none":
        return ()
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        raise SpcError(f"--target {text}", f"names unknown target(s) {', '.join(unknown)}", f"choose from {', '.join(TARGETS)} (comma-separated), or all")
    return names


def emitter(target: str):
    return getattr(importlib.import_module(f"spc.compiler.emit.{target}"), f"emit_{target}")


def emit_targets(compiled, directory: Path, targets: tuple[str, ...] | None, stored=None) -> dict:
    """Emit `targets` into `directory`; with None, every target that can express the model (the
    others are recorded as skipped, with the reason). Returns the manifest's "targets" entry."""
    requested = targets is not None
    entry = {}
    for target in targets if requested else TARGETS:
        staging = directory / f".emit-{target}"
        staging.mkdir()
        try:
            written = emitter(target)(compiled, staging, stored)
        except SpcError as e:
            shutil.rmtree(staging)
            if requested:
                raise
            entry[target] = {"skipped": str(e)}
            continue
        for item in sorted(staging.iterdir()):
            shutil.move(str(item), str(directory / item.name))
        staging.rmdir()
        entry[target] = {"files": sorted(str(Path(p).relative_to(staging)) for p in written)}
    return entry
