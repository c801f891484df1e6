"""B2: inference throughput of one compiled network on every runtime, side by side.

Network: 256 inputs, three hidden layers of 256 (SlidingPSN k = 16, LIF, SPSN), a 10-way LI
readout; T = 1000, B = 32, binary input spikes at 20 %. Runtimes: spc's integer simulator (the
reference for the ratios), spc's float simulator, onnxruntime's one-step graph driven from Python
and its whole-sequence Scan graph (integer and float), Lava fixed_pt, and the torch parallel form.
Every integer runtime's output is checked equal to the simulator's before its time counts.

    .venv/bin/python benchmarks/b2_inference.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import arguments, median_seconds, save  # noqa: E402

import spc  # noqa: E402
from spc.runtime.backends import BACKENDS, run_backend  # noqa: E402

RUNTIMES = ["sim", "float", "onnx-step", "onnx", "onnx-float", "lava", "parallel"]


def network(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(width, width), spc.SlidingPSN(k=16, exp_init=False),
        nn.Linear(width, width), spc.LIF(tau=4.0),
        nn.Linear(width, width), spc.SPSN(tau_syn=8.0, tau_mem=8.0),
        nn.Linear(width, 10), spc.LI(tau=4.0),
    )  # fmt: skip


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    torch.set_num_threads(2)
    steps, batch, width, repeats = (30, 4, 32, 1) if args.quick else (1000, 32, 256, 3)
    x = (np.random.default_rng(0).random((steps, batch, width)) < 0.2).astype(np.float32)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="spc-b2-") as scratch:
        compiled = spc.compile(network(width), (steps, 1, width), Path(scratch) / "out", calib=x[:, :8], targets=("onnx", "lava"))
        reference = run_backend("sim", compiled, x, record="output").output
        for name in RUNTIMES:
            out = run_backend(name, compiled, x, record="output").output
            if BACKENDS[name].form == "integer" and not np.array_equal(out, reference):
                raise AssertionError(f"{name} disagrees with spc's integer simulator")
            seconds = median_seconds(lambda n=name: run_backend(n, compiled, x, record="output"), repeats, warmup=0 if name == "lava" else 1)
            rows[name] = {"form": BACKENDS[name].form, "seconds": seconds, "steps_per_s": steps / seconds}
    for name in RUNTIMES:
        rows[name]["time_over_sim"] = rows[name]["seconds"] / rows["sim"]["seconds"]
        print(f"{name:12s} {rows[name]['form']:9s} {rows[name]['seconds']:8.3f} s  {rows[name]['steps_per_s']:10,.0f} steps/s  {rows[name]['time_over_sim']:6.2f}x the simulator's time")
    config = {"T": steps, "B": batch, "width": width, "repeats": repeats, "statistic": "median wall time of one whole run (Lava: including its start-up)", "layers": "SlidingPSN(k=16), LIF, SPSN, LI(10)"}
    doc = {"benchmark": "b2_inference", "config": config, "results": rows}
    save("b2_inference", doc, args)
    return doc


if __name__ == "__main__":
    main()
