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

Then a convolutional network users train: SpikingJelly 2.0's model-zoo `spiking_resnet18` (IFNode,
multi-step, full width, 10 classes; 37 M synapses unrolled) at 32x32, T = 2, compiled and saved as
`spc compile` does. Its stem's max pooling has no NIR or Lava form, so those targets are skipped
(named); the same network with a 2x2 average pooling in the stem is written for every default
target. The goal of issue 13: compile + save within 60 s.

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
from spc.compiler.summary import layer_rows  # noqa: E402

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
    resnets = resnet18_rows(args.quick)
    largest = rows[-1]
    goals = {
        f"saving within 2x the compile time at {largest['synapses']:,} synapses (median of per-round ratios)": goal("issue 17", largest["save_over_compile"]["median"], largest["save_over_compile"]["median"] <= 2, min=largest["save_over_compile"]["min"], max=largest["save_over_compile"]["max"], runs=runs),
        f"the directory within 3x the float32 weights' bytes at {largest['synapses']:,} synapses, every default target": goal("issue 17", largest["artifact_over_weights"], largest["artifact_over_weights"] <= 3),
    }
    every_target = next(r for r in resnets if r["stem pooling"] == "average")
    steps, _, _, rows_px, columns_px = every_target["input"]
    goals[f"ResNet-18 at {rows_px}x{columns_px}, T = {steps}, compiled and saved with every default target within 60 s (median)"] = goal("issue 13", every_target["seconds"]["median"], every_target["seconds"]["median"] <= 60, min=every_target["seconds"]["min"], max=every_target["seconds"]["max"], runs=every_target["seconds"]["runs"])
    for text, v in goals.items():
        print(f"{'met    ' if v['met'] else 'NOT MET'}  {text}: {v['value']:.2f}")
    doc = {"benchmark": "b3_compile_time", "config": {"T": 16, "calibration": "random spike trains, 16 samples", "runs": runs, "targets": "every default (onnx, nir, lava)", "statistic": "median and min–max of interleaved runs"}, "results": rows, "resnet18": resnets, "targets": goals}
    save("b3_compile_time", doc, args)
    return doc


def zoo_resnet18(stem_pooling: str) -> nn.Module:
    """SpikingJelly's spiking_resnet18 (through spc's torchvision stand-in where torchvision is
    missing), its stem's max pooling kept or replaced by a 2x2 average pooling."""
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.model import spiking_resnet

    torch.manual_seed(0)
    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    if stem_pooling == "average":
        net.maxpool = layer.AvgPool2d(2, 2)
    functional.set_step_mode(net, "m")
    return net


def resnet18_rows(quick: bool) -> list[dict]:
    """Compile + save of the zoo's ResNet-18, both stems interleaved (quick: 8x8 input, T = 1, one
    run of the average-pooling one, so that the test suite runs this code)."""
    shape = (1, 1, 3, 8, 8) if quick else (2, 1, 3, 32, 32)
    stems = ["average"] if quick else ["max", "average"]
    models = {stem: zoo_resnet18(stem) for stem in stems}
    synapses = {stem: sum(r["synapses"] for r in layer_rows(spc.compile(models[stem], shape))) for stem in stems}
    scratch = Path(tempfile.mkdtemp(prefix="spc-b3-resnet-"))
    try:
        def job(stem):
            return lambda: spc.compile(models[stem], shape).save(scratch / stem, force=True)

        times = interleaved({stem: job(stem) for stem in stems}, 1 if quick else 3, warmup=0 if quick else 1)
        rows = []
        for stem in stems:
            manifest = json.loads((scratch / stem / "manifest.json").read_text())
            written = sorted(name for name, t in manifest["targets"].items() if "files" in t)
            rows.append({"model": "spikingjelly spiking_resnet18 (IFNode)", "stem pooling": stem, "input": list(shape), "synapses": synapses[stem], "seconds": spread(times[stem]), "targets": written})
            print(f"ResNet-18, {stem} pooling stem, input {shape}: compile + save {rows[-1]['seconds']['median']:.2f} s ({', '.join(written)})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main()
