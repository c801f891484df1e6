"""B3: compile and save time, and the saved directory's size, against model size, 10 thousand to 10
million synapses.

A multilayer network Linear -> SlidingPSN (k = 16) -> Linear -> LIF -> Linear -> LI with its width
chosen for each synapse count; `spc.compile` (trace, causality check, BatchNorm folding, lowering,
calibration on random spike trains of T = 16 x 16 samples, quantization, the integer check) and
saving the compiled directory with every default target (ONNX, NIR, Lava: each the model can be
written for under the default profile; Xylo needs its own), timed in interleaved
rounds (compile, save, compile, ...: RUNS each after one untimed run), each the median and min–max,
the ratio save / compile per round. The goals of issue 17, at 10 M synapses: saving within 2x the
compile time, and the directory within 3x the bytes of the model's float32 weights.

    .venv/bin/python benchmarks/b3_compile_time.py [--quick]
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, goal, interleaved, paired_ratios, save, spread  # noqa: E402

import spc  # noqa: E402

RUNS = 5


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
    runs = 2 if args.quick else RUNS
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="spc-b3-"))
    try:
        for target in sizes:
            width = width_for(target)
            model = network(width)
            synapses = sum(m.weight.numel() for m in model if isinstance(m, nn.Linear))
            compiled = spc.compile(model, (16, 1, width))
            times = interleaved({"compile": lambda: spc.compile(model, (16, 1, width)), "save": lambda: compiled.save(scratch / "out", force=True)}, runs, warmup=1)
            size = sum(f.stat().st_size for f in (scratch / "out").rglob("*") if f.is_file())
            emitted = sorted(name for name, t in json.loads((scratch / "out" / "manifest.json").read_text())["targets"].items() if "files" in t)
            row = {"synapses": synapses, "width": width, "compile_s": spread(times["compile"]), "save_s": spread(times["save"]), "save_over_compile": paired_ratios(times["save"], times["compile"]), "artifact_bytes": size, "weight_bytes": 4 * synapses, "targets": emitted}
            row["artifact_over_weights"] = size / row["weight_bytes"]
            rows.append(row)
            print(f"{synapses:>12,} synapses (width {width:5d}): compile {row['compile_s']['median']:7.3f} s, save {row['save_s']['median']:6.3f} s (save / compile {row['save_over_compile']['median']:.2f}), directory {size / 2**20:8.1f} MiB = {row['artifact_over_weights']:.2f}x the weights")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    largest = rows[-1]
    goals = {
        f"saving within 2x the compile time at {largest['synapses']:,} synapses (median of per-round ratios)": goal("issue 17", largest["save_over_compile"]["median"], largest["save_over_compile"]["median"] <= 2, min=largest["save_over_compile"]["min"], max=largest["save_over_compile"]["max"], runs=runs),
        f"the directory within 3x the float32 weights' bytes at {largest['synapses']:,} synapses, every default target": goal("issue 17", largest["artifact_over_weights"], largest["artifact_over_weights"] <= 3),
    }
    for text, v in goals.items():
        print(f"{'met    ' if v['met'] else 'NOT MET'}  {text}: {v['value']:.2f}")
    doc = {"benchmark": "b3_compile_time", "config": {"T": 16, "calibration": "random spike trains, 16 samples", "runs": runs, "targets": "every default (onnx, nir, lava)", "statistic": "median and min–max of interleaved runs"}, "results": rows, "targets": goals}
    save("b3_compile_time", doc, args)
    return doc


if __name__ == "__main__":
    main()
