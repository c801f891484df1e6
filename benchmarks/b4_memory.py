"""B4: peak memory of one inference against the sequence length T, parallel vs stepwise form.

Uses the model of examples/long_sequences.py (SlidingPSN k = 24, SPSN, leaky readout; trained at
T = 256 and cached): the parallel form in torch over the whole sequence against spc's integer
simulator streaming it in chunks, each measurement in a fresh process (peak resident memory above
the process's baseline, Linux VmHWM), B = 8.

    .venv/bin/python benchmarks/b4_memory.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, save  # noqa: E402

import spc  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import long_sequences  # noqa: E402  (the model and the per-process memory measurement)


def _example():
    return long_sequences


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    example = _example()
    steps_list = [256, 1024] if args.quick else [1024, 4096, 16384, 65536]
    model = example.trained_model(1 if args.quick else 15)
    with tempfile.TemporaryDirectory(prefix="spc-b4-") as scratch:
        directory = Path(scratch)
        torch.save(model.state_dict(), directory / "weights.pt")
        calib, _ = example.dataset(64, 256, seed=3)
        spc.compile(model, (256, 1, example.CHANNELS), directory / "compiled", calib=calib)
        rows = []
        for steps in steps_list:
            row = {"T": steps}
            for form in ("parallel", "stepwise"):
                m = example.measure(form, directory, steps)
                row[form] = {"peak_mib": m["peak_bytes_above_baseline"] / 2**20, "seconds": m["seconds"]}
            row["parallel_over_stepwise_memory"] = row["parallel"]["peak_mib"] / max(row["stepwise"]["peak_mib"], 1e-9)
            rows.append(row)
            print(f"T = {steps:6d}: parallel {row['parallel']['peak_mib']:8.1f} MiB {row['parallel']['seconds']:6.2f} s   stepwise {row['stepwise']['peak_mib']:6.1f} MiB {row['stepwise']['seconds']:6.2f} s")
    doc = {"benchmark": "b4_memory", "config": {"B": 8, "model": "examples/long_sequences.py", "measure": "VmHWM above baseline, fresh process"}, "results": rows}
    save("b4_memory", doc, args)
    return doc


if __name__ == "__main__":
    main()
