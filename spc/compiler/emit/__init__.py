"""Emitters: a compiled model written for other tools and runtimes (ONNX, NIR, Lava, Xylo).

Each target module provides `emit_<target>(compiled, directory, stored=None) -> list[Path]` (or
`(files, info)`, whose `info` joins the target's manifest entry) and raises SpcError (naming the
target, the layer and the alternative) for what it cannot express. `stored`
(spc.compiler.serialize.Stored), when the target is emitted into a compiled directory, says where
that directory already holds the graphs' arrays, for a target that can refer to them instead of
writing them again (ONNX: as external data). Every target is
emitted into a staging folder and moved into the compiled directory only when it succeeds, so a
refused target leaves no files behind. A target implements one integer profile (`PROFILES`): a
model compiled under another is skipped (or, when the target was named, refused) with the reason.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Callable

from spc.errors import SpcError

TARGETS = ("onnx", "nir", "lava", "xylo")
PROFILES = {"onnx": "default", "nir": "default", "lava": "default", "xylo": "xylo"}
"""The integer profile each target implements (spc.compiler.quantize.PROFILES)."""


def profile_of(compiled) -> str:
    """The integer profile a model was compiled under ('default' without an integer form)."""
    return ((compiled.quantization or {}).get("options") or {}).get("profile", "default")


def check_profile(target: str, compiled) -> None:
    """Refuse a target whose integer profile is not the model's."""
    profile = profile_of(compiled)
    if PROFILES[target] != profile:
        wanted = "without --target xylo / --profile xylo" if PROFILES[target] == "default" else f"with --target {target}"
        raise SpcError(f"target '{target}'", f"implements the {PROFILES[target]} integer profile, and this model was compiled under the {profile} profile", f"compile it again {wanted}")


def write_network(directory, folder: str, doc: dict, arrays: dict, arrays_file: str) -> list[Path]:
    """Write `directory/folder/` (a new folder: emitters write into a fresh staging folder) as
    network.json + an .npz of arrays; returns the two paths."""
    import json

    import numpy as np

    out = Path(directory) / folder
    out.mkdir(parents=True)
    (out / "network.json").write_text(json.dumps(doc, indent=1) + "\n")
    np.savez(out / arrays_file, **arrays)
    return [out / "network.json", out / arrays_file]


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


def emit_targets(compiled, directory: Path, targets: tuple[str, ...] | None, stage: Callable[[str], None] = lambda name: None, stored=None) -> dict:
    """Emit `targets` into `directory`; with None, every target that can express the model (the
    others are recorded as skipped, with the reason). Returns the manifest's "targets" entry.
    `stage` is told each target as its emission starts."""
    requested = targets is not None
    entry = {}
    for target in targets if requested else TARGETS:
        stage(f"emitting {target}")
        staging = directory / f".emit-{target}"
        staging.mkdir()
        try:
            check_profile(target, compiled)
            result = emitter(target)(compiled, staging, stored)
        except SpcError as e:
            shutil.rmtree(staging)
            if requested:
                raise
            entry[target] = {"skipped": str(e)}
            continue
        for item in sorted(staging.iterdir()):
            shutil.move(str(item), str(directory / item.name))
        staging.rmdir()
        written, info = result if isinstance(result, tuple) else (result, {})
        entry[target] = {"files": sorted(str(Path(p).relative_to(staging)) for p in written), **info}
    return entry
