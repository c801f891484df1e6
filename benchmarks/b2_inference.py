"""B2: inference throughput of one compiled network on every runtime, side by side.

Network: 256 inputs, three hidden layers of 256 (SlidingPSN k = 16, LIF, SPSN), a 10-way LI
readout; T = 1000, B = 32, binary input spikes at 20 %. Runtimes: spc's integer simulator (the
reference for the ratios; its native kernels, and its numpy kernels alone), spc's float simulator,
onnxruntime's one-step graph driven from Python and its whole-sequence Scan graph (integer and
float; each with its session built once and kept, as `spc.run` does, and the integer Scan graph
also with the session built on every run), Lava fixed_pt, and the torch parallel form. The GEMM
floor is what no runtime of this network can beat: one float32 matrix product per synaptic layer,
of the same shapes, over the whole sequence at once. Every integer runtime's output is checked equal
to the simulator's before its time counts.

Timing: every runtime runs once untimed, then RUNS times in interleaved rounds (Lava, which starts
its processes on every run, 3 times in rounds of its own); each figure is the median and min–max of
its runs, each ratio the median and min–max of the per-round ratios. The goal of issue 17: the
integer simulator within 3x of the GEMM floor (median).

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
from harness import arguments, goal, interleaved, paired_ratios, save, spread  # noqa: E402

import spc  # noqa: E402
from spc.compiler import ir  # noqa: E402
from spc.runtime import integer_native, onnx_runner  # noqa: E402
from spc.runtime.backends import BACKENDS, run_backend  # noqa: E402

RUNS = 7
SLOW_RUNS = 3
FLOOR = "GEMM floor"


def network(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(width, width), spc.SlidingPSN(k=16, exp_init=False),
        nn.Linear(width, width), spc.LIF(tau=4.0),
        nn.Linear(width, width), spc.SPSN(tau_syn=8.0, tau_mem=8.0),
        nn.Linear(width, 10), spc.LI(tau=4.0),
    )  # fmt: skip


def gemm_floor(graph: ir.Graph, steps: int, batch: int):
    """One float32 product per synaptic layer of the graph, over all T·B rows at once."""
    rng = np.random.default_rng(0)
    layers = [n.op.weight.astype(np.float32).T.copy() for n in graph.nodes if isinstance(n.op, ir.Linear)]
    inputs = [(rng.random((steps * batch, w.shape[0])) < 0.2).astype(np.float32) for w in layers]
    return lambda: [x @ w for x, w in zip(inputs, layers)]


class Runtime:
    """One runtime on the compiled model; `prepare` (untimed, before each run) sets up its variant."""

    def __init__(self, name: str, compiled, x, backend: str | None = None, native: bool = True, cached: bool = True):
        self.name, self.compiled, self.x, self.backend, self.native, self.cached = name, compiled, x, backend or name, native, cached

    def prepare(self) -> None:
        if not self.cached:
            onnx_runner._cached_session.cache_clear()

    def __call__(self):
        integer_native.enabled = self.native
        try:
            return run_backend(self.backend, self.compiled, self.x, record="output").output
        finally:
            integer_native.enabled = True


def main(argv=None) -> dict:
    args = arguments(__doc__, argv)
    torch.set_num_threads(2)
    steps, batch, width, runs = (30, 4, 32, 2) if args.quick else (1000, 32, 256, RUNS)
    x = (np.random.default_rng(0).random((steps, batch, width)) < 0.2).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="spc-b2-") as scratch:
        compiled = spc.compile(network(width), (steps, 1, width), Path(scratch) / "out", calib=x[:, :8], targets=("onnx", "lava"))
        runtimes = [
            Runtime("sim", compiled, x),
            Runtime("sim (numpy kernels)", compiled, x, "sim", native=False),
            Runtime("float", compiled, x),
            Runtime("onnx-step", compiled, x),
            Runtime("onnx", compiled, x),
            Runtime("onnx (session built per run)", compiled, x, "onnx", cached=False),
            Runtime("onnx-float", compiled, x),
            Runtime("parallel", compiled, x),
        ]
        lava = Runtime("lava", compiled, x)
        reference = runtimes[0]()
        for runtime in runtimes + [lava]:  # the untimed first run, checked
            out = runtime()
            if BACKENDS[runtime.backend].form == "integer" and not np.array_equal(out, reference):
                raise AssertionError(f"{runtime.name} disagrees with spc's integer simulator")
        candidates = {FLOOR: gemm_floor(compiled.integer, steps, batch), **{r.name: r for r in runtimes}}
        times = interleaved(candidates, runs, warmup=1)
        times[lava.name] = interleaved({lava.name: lava}, min(runs, SLOW_RUNS), warmup=0)[lava.name]
    rows = {}
    for name, t in times.items():
        form = "float32 GEMMs" if name == FLOOR else BACKENDS[next(r.backend for r in runtimes + [lava] if r.name == name)].form
        rows[name] = {"form": form, "seconds": spread(t), "steps_per_s": steps / spread(t)["median"]}
        if name != lava.name:
            rows[name]["time_over_sim"] = paired_ratios(t, times["sim"])
            rows[name]["time_over_floor"] = paired_ratios(t, times[FLOOR])
        else:  # run in rounds of its own: ratios of the medians
            rows[name]["time_over_sim"] = rows[name]["seconds"]["median"] / spread(times["sim"])["median"]
        s = rows[name]["seconds"]
        print(f"{name:30s} {rows[name]['form']:13s} {s['median']:8.3f} s [{s['min']:.3f}–{s['max']:.3f}]  {rows[name]['steps_per_s']:10,.0f} steps/s")
    over = rows["sim"]["time_over_floor"]
    goals = {"integer simulator within 3x of the float32 GEMM floor (median of per-round ratios)": goal("issue 17", over["median"], over["median"] <= 3, min=over["min"], max=over["max"], runs=over["runs"])}
    for text, v in goals.items():
        print(f"{'met    ' if v['met'] else 'NOT MET'}  {text}: {v['value']:.2f} ({v['min']:.2f}–{v['max']:.2f})")
    config = {"T": steps, "B": batch, "width": width, "runs": runs, "lava_runs": min(runs, SLOW_RUNS), "statistic": "median and min–max of interleaved runs of one whole inference (Lava: including its start-up)", "layers": "SlidingPSN(k=16), LIF, SPSN, LI(10)", "native": integer_native.status()}
    doc = {"benchmark": "b2_inference", "config": config, "results": rows, "targets": goals}
    save("b2_inference", doc, args)
    return doc


if __name__ == "__main__":
    main()
