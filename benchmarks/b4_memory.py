"""B4: peak memory of one inference against the sequence length T, parallel vs stepwise form.

Uses the model of examples/long_sequences.py (SlidingPSN k = 24, SPSN, leaky readout; trained at
T = 256 and cached): the parallel form in torch over the whole sequence against spc's integer
simulator streaming it in chunks, each measurement in a fresh process (peak resident memory above
the process's baseline, Linux VmHWM), B = 8; RUNS measurements of each form at each T, alternating
forms, each figure the median and min–max, the memory ratio per pair of runs.

    .venv/bin/python benchmarks/b4_memory.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, paired_ratios, save, spread  # noqa: E402

import spc  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import long_sequences  # noqa: E402  (the model and the per-process memory measurement)


RUNS = 3


def _example():
    return long_sequences


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    example = _example()
    steps_list, runs_per_form = ([256], 2) if args.quick else ([1024, 4096, 16384, 65536], RUNS)
    model = example.trained_model(1 if args.quick else 15)
    with tempfile.TemporaryDirectory(prefix="spc-b4-") as scratch:
        directory = Path(scratch)
        torch.save(model.state_dict(), directory / "weights.pt")
        calib, _ = example.dataset(64, 256, seed=3)
        spc.compile(model, (256, 1, example.CHANNELS), directory / "compiled", calib=calib)
        rows = []
        for steps in steps_list:
            runs = {"parallel": [], "stepwise": []}
            for _ in range(runs_per_form):
                for form in runs:
                    runs[form].append(example.measure(form, directory, steps))
            row = {"T": steps}
            for form, measured in runs.items():
                row[form] = {"peak_mib": spread([m["peak_bytes_above_baseline"] / 2**20 for m in measured]), "seconds": spread([m["seconds"] for m in measured])}
            peaks = {form: [m["peak_bytes_above_baseline"] for m in measured] for form, measured in runs.items()}
            row["parallel_over_stepwise_memory"] = paired_ratios(peaks["parallel"], [max(p, 1) for p in peaks["stepwise"]])
            rows.append(row)
            print(f"T = {steps:6d}: parallel {row['parallel']['peak_mib']['median']:8.1f} MiB {row['parallel']['seconds']['median']:6.2f} s   stepwise {row['stepwise']['peak_mib']['median']:6.1f} MiB {row['stepwise']['seconds']['median']:6.2f} s")
    doc = {"benchmark": "b4_memory", "config": {"B": 8, "model": "examples/long_sequences.py", "measure": "VmHWM above baseline, fresh process", "runs": runs_per_form}, "results": rows}
    save("b4_memory", doc, args)
    return doc


if __name__ == "__main__":
    main()
