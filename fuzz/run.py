"""Coverage-guided fuzzing of spc's loaders with atheris (`make fuzz`; not part of CI).

    .venv/bin/python fuzz/run.py TARGET [atheris/libFuzzer options, e.g. -max_total_time=60]

TARGET: npy, checkpoint, graph-json, weights-npz, nir, onnx, size-bombs (files declaring up to 4 GiB
while holding little; with -rss_limit_mb, one that is read is a crash). A crash is any exception
other than SpcError.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import spc
    from spc.errors import SpcError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_targets as targets  # noqa: E402


def corpus(name: str, seed: Path) -> Path:
    """A starting corpus of one valid file of the target's kind."""
    import numpy as np
    import torch

    directory = Path(tempfile.mkdtemp(prefix=f"spc-fuzz-corpus-{name}-"))
    if name == "npy":
        np.save(directory / "valid.npy", np.ones((3, 1, 4), np.float32))
    elif name == "nir":
        (directory / "valid.nir").write_bytes((seed / "model.nir").read_bytes())
    elif name == "onnx":
        (directory / "valid.onnx").write_bytes((seed / "model_seq.onnx").read_bytes())
    elif name == "checkpoint":
        torch.save({"w": torch.ones(2, 3)}, directory / "valid.pt")
    elif name == "size-bombs":
        (directory / "bytes").write_bytes(bytes(range(16)))
    else:
        source = seed / "integer" / ("graph.json" if name == "graph-json" else "weights.npz")
        (directory / source.name).write_bytes(source.read_bytes())
    return directory


def size_bomb(seed: Path, data) -> None:
    kind = targets.BOMBS[data.ConsumeIntInRange(0, len(targets.BOMBS) - 1)]
    targets.size_bomb(seed, kind, data.ConsumeIntInRange(0, 2**29), data.ConsumeIntInRange(0, 2**22))


def main() -> None:
    name, options = sys.argv[1], sys.argv[2:]
    seed = targets.seed_artifact(Path(tempfile.mkdtemp(prefix="spc-fuzz-seed-")))
    graph = spc.load(seed).integer
    crashes = Path(__file__).resolve().parent / "crashes"
    crashes.mkdir(exist_ok=True)
    options += [f"-artifact_prefix={crashes}/{name}-", str(corpus(name, seed))]
    run = {
        "npy": lambda data: targets.npy(data, graph),
        "checkpoint": targets.checkpoint,
        "nir": targets.nir_file,
        "onnx": lambda data: targets.onnx_file(seed, data),
        "graph-json": lambda data: targets.graph_directory(seed, graph_json=data),
        "weights-npz": lambda data: targets.graph_directory(seed, weights=data),
        "size-bombs": lambda data: size_bomb(seed, atheris.FuzzedDataProvider(data)),
    }[name]

    def one_input(data: bytes) -> None:
        try:
            run(data)
        except SpcError:
            pass

    atheris.Setup([sys.argv[0]] + options, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
