"""B3: compile time against model size, 10 thousand to 10 million synapses.

A multilayer network Linear -> SlidingPSN (k = 16) -> Linear -> LIF -> Linear -> LI with its width
chosen for each synapse count; `spc.compile` (trace, causality check, BatchNorm folding, lowering,
calibration on random spike trains of T = 16 x 16 samples, quantization, the integer check) and
saving the compiled directory, timed separately, each the median of 3 runs.

    .venv/bin/python benchmarks/b3_compile_time.py [--quick]
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, median_seconds, save  # noqa: E402

import spc  # noqa: E402


def network(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(width, width), spc.SlidingPSN(k=16), nn.Linear(width, width), spc.LIF(tau=4.0), nn.Linear(width, 10), spc.LI())


def width_for(synapses: int) -> int:
    """The width whose three layers hold about `synapses` weights (2 w² + 10 w)."""
    return int((-10 + math.sqrt(100 + 8 * synapses)) / 4)


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    torch.set_num_threads(2)
    sizes = [10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000, 10_000_000]
    repeats = 1 if args.quick else 3
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="spc-b3-"))
    try:
        for target in sizes:
            width = width_for(target)
            model = network(width)
            synapses = sum(m.weight.numel() for m in model if isinstance(m, nn.Linear))
            compiled = spc.compile(model, (16, 1, width))
            t_compile = median_seconds(lambda: spc.compile(model, (16, 1, width)), repeats, warmup=0)
            t_save = median_seconds(lambda: compiled.save(scratch / "out", force=True), repeats, warmup=0)
            size = sum(f.stat().st_size for f in (scratch / "out").rglob("*") if f.is_file())
            rows.append({"synapses": synapses, "width": width, "compile_s": t_compile, "save_s": t_save, "artifact_bytes": size, "synapses_per_s": synapses / (t_compile + t_save)})
            print(f"{synapses:>12,} synapses (width {width:5d}): compile {t_compile:7.3f} s, save {t_save:6.3f} s, artifact {size / 2**20:8.1f} MiB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    doc = {"benchmark": "b3_compile_time", "config": {"T": 16, "calibration": "random spike trains, 16 samples", "repeats": repeats, "statistic": "median"}, "results": rows}
    save("b3_compile_time", doc, args)
    return doc


if __name__ == "__main__":
    main()
