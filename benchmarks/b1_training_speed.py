"""B1: training speed of one neuron layer — forward + backward — against the sequence length T.

Side by side in one run, at B = 32, N = 256, float32, on x [T, B, N] with a random output gradient:
a plain stepwise LIF loop in torch (the best a competent user writes: over x.unbind(0), ATan
surrogate, hard reset), a 16-tap FIR neuron compiled by `torch.compile` (SlidingPSN as a competent
user writes it with PyTorch's own compiler: the sum of k shifted slices and a straight-through ATan
spike, fused by Inductor), SpikingJelly's multi-step LIFNode (torch backend, ATan) and its PSN /
MaskedPSN (k = 16, λ = 1) / SlidingPSN (k = 16), every spc neuron (the same three, SPSN, LIF, LI,
PSU, IPSU, RPSU, both MPE-PSN variants, the channel-wise PSN (k = 8), DSN and PRF), and the memory
floor: one elementwise pass forward and backward over the same tensor.

Timing, per T: every path is built and run once untimed (warm-up: imports, native builds, Inductor's
compilation, first-touch allocations), once more to measure its memory, then RUNS times in
interleaved rounds (each round runs every path once, in rotated order), 3 times for paths slower
than 5 s a run. Each path reports the median and the min–max of its runs, and each ratio — over the
plain loop, over the floor, over the compiled FIR — the median and min–max of the per-round ratios
(runs made moments apart). Nothing waits for the machine to be quiet: the JSON records its load
average instead. A configuration whose time, extrapolated from its fastest run at the previous T by its complexity
(from runs of at least 0.25 s: shorter ones are mostly overhead), would exceed 60 s per run is
skipped — or, for a dense T×T product, run at B = 1 — and the table says so. Memory per path: the activations saved for backward (distinct storages other than the
layer's parameters and buffers, the input included), in units of the input [T, B, N]; and the peak
resident memory above the start of the run (Linux VmHWM; freed heap is returned to the OS before it).

    .venv/bin/python benchmarks/b1_training_speed.py [--quick] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import RESULTS, goal, interleaved, paired_ratios, spread, write_results  # noqa: E402

import spc  # noqa: E402
from spc.frontends.torch.kernels import buffers, filters, native  # noqa: E402

LIMIT_S = 60.0
EXTRAPOLATE_FROM_S = 0.25
SLOW_S = 5.0
RUNS = 7  # interleaved timed runs per path (3 for paths slower than SLOW_S)
SLOW_RUNS = 3
K = 16
LOOP, FLOOR, COMPILED = "plain LIF loop", "memory floor", f"torch.compile FIR k={K}"


class _ATan(torch.autograd.Function):
    """Heaviside forward, SpikingJelly's ATan surrogate (α = 2) backward: 1 / (1 + (π·d)²)."""

    @staticmethod
    def forward(ctx, d):
        ctx.save_for_backward(d)
        return (d >= 0).to(d)

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensors
        return grad / (1 + (math.pi * d).square())


def plain_lif_loop(x: torch.Tensor, tau: float = 2.0, v_threshold: float = 1.0) -> torch.Tensor:
    v = torch.zeros_like(x[0])
    spikes = []
    for xt in x.unbind(0):
        v = v + (xt - v) / tau
        s = _ATan.apply(v - v_threshold)
        spikes.append(s)
        v = v * (1.0 - s)
    return torch.stack(spikes)


class FIRNeuron(torch.nn.Module):
    """SlidingPSN as a competent user writes it for `torch.compile`: h[t] = b + Σ_i w[i]·x[t−k+1+i]
    as k shifted slices, and the spike as a straight-through ATan (the same surrogate, in plain
    torch ops Inductor fuses, forward and backward)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.weight = torch.nn.Parameter(torch.full((k,), 1.0 / k))
        self.bias = torch.nn.Parameter(torch.tensor(-0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (0,) * (2 * x.dim() - 2) + (self.k - 1, 0))
        h = self.bias + sum(self.weight[i] * padded[i : i + x.shape[0]] for i in range(self.k))
        smooth = torch.atan(math.pi * h) / math.pi + 0.5  # ATan's primitive: gradient 1 / (1 + (π·h)²)
        return smooth + ((h >= 0).to(h) - smooth).detach()


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[int, int], Callable]  # (T, N) -> layer (a module, or a function of x)
    exponent: int = 1  # time ~ T**exponent at fixed B, N
    dense: bool = False  # a T×T product: run at B = 1 instead of skipping


def cases() -> list[Case]:
    from spikingjelly.activation_based import neuron, surrogate

    def sj(cls, args, **kwargs):
        return lambda steps, neurons: cls(*args(steps), surrogate_function=surrogate.ATan(), **kwargs)

    return [
        Case(LOOP, lambda steps, neurons: plain_lif_loop),
        Case(FLOOR, lambda steps, neurons: lambda x: x * 2.0),
        Case(COMPILED, lambda steps, neurons: torch.compile(FIRNeuron(K), dynamic=False)),
        Case("SpikingJelly LIFNode", sj(neuron.LIFNode, lambda steps: (), tau=2.0, step_mode="m")),
        Case("SpikingJelly PSN", sj(neuron.PSN, lambda steps: (steps,)), 2, True),
        Case(f"SpikingJelly MaskedPSN k={K}", sj(neuron.MaskedPSN, lambda steps: (K, steps), lambda_init=1.0, step_mode="m"), 2, True),
        # builds its T×T weight row by row: the backward copies the T×T gradient once per row
        Case(f"SpikingJelly SlidingPSN k={K}", sj(neuron.SlidingPSN, lambda steps: (K,), step_mode="m"), 3),
        Case("spc PSN", lambda steps, neurons: spc.PSN(steps), 2, True),
        Case(f"spc MaskedPSN k={K}", lambda steps, neurons: spc.MaskedPSN(K, steps, lambda_init=1.0)),
        Case(f"spc SlidingPSN k={K}", lambda steps, neurons: spc.SlidingPSN(K)),
        Case("spc SPSN", lambda steps, neurons: spc.SPSN()),
        Case("spc LIF", lambda steps, neurons: spc.LIF(tau=2.0)),
        Case("spc LI", lambda steps, neurons: spc.LI(tau=2.0)),
        Case("spc PSU", lambda steps, neurons: spc.PSU(steps)),
        Case("spc IPSU", lambda steps, neurons: spc.IPSU(steps), 2, True),
        Case("spc RPSU", lambda steps, neurons: spc.RPSU(steps), 2, True),
        Case("spc MPE-PSN A", lambda steps, neurons: spc.MPEPSN("A")),
        Case("spc MPE-PSN B", lambda steps, neurons: spc.MPEPSN("B")),
        Case("spc ChannelwisePSN k=8", lambda steps, neurons: spc.ChannelwisePSN(neurons, k=8)),
        Case("spc DSN", lambda steps, neurons: spc.DSN(neurons)),
        Case("spc PRF", lambda steps, neurons: spc.PRF(neurons)),
    ]


# ---- measuring ---------------------------------------------------------------------------------


def _rss_kib(field: str) -> int | None:
    try:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
        return int(line.split()[1])
    except (OSError, StopIteration):
        return None


def probe(step: Callable[[], None], params: set[int]) -> dict:
    """One run: its time, the activations saved for backward (distinct storages other than
    `params`), the peak RSS above the start, and the kernels spc dispatched to."""
    buffers.release()  # spc's idle output buffers too: the run allocates what it needs afresh
    try:
        ctypes.CDLL(None).malloc_trim(0)  # give freed heap memory back, so the baseline is honest
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    except (OSError, AttributeError):
        pass
    base = _rss_kib("VmRSS")
    storages: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), filters.record_paths() as paths:
        step()
    seconds = time.perf_counter() - start
    peak = _rss_kib("VmHWM")
    return {
        "first_seconds": seconds,
        "saved_bytes": sum(storages.values()),
        "peak_rss_mib": None if base is None or peak is None else (peak - base) / 1024,
        "dispatch": dict(paths),
    }


def example(steps: int, batch: int, neurons: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input x [T, B, N] (requiring its gradient) and the output gradient, the same for every path."""
    gen = torch.Generator().manual_seed(steps)
    return torch.randn(steps, batch, neurons, generator=gen).requires_grad_(), torch.randn(steps, batch, neurons, generator=gen)


def training_step(layer, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    inputs = [x] + (list(layer.parameters()) if isinstance(layer, torch.nn.Module) else [])
    reset = getattr(layer, "reset", None)  # SpikingJelly's stateful modules

    def step():
        if reset is not None:
            reset()
        torch.autograd.grad(layer(x), inputs, grad)

    return step


class Candidate:
    """One path at one T: its layer and training step, built once, or before every run when `fresh`
    (the dense T×T layers at B = 1, whose weights and gradients take GiBs each: one at a time)."""

    def __init__(self, case: Case, data: tuple[torch.Tensor, torch.Tensor], fresh: bool):
        self.case, self.data, self.fresh = case, data, fresh
        self.steps, self.batch, self.neurons = data[0].shape
        self.step, self.params = None, set()
        self.prepare()

    def prepare(self) -> None:
        """Build the layer if it is not built (untimed: `interleaved` calls it before each run)."""
        if self.step is None:
            layer = self.case.make(self.steps, self.neurons)
            state = layer.state_dict().values() if isinstance(layer, torch.nn.Module) else ()
            self.params = {t.untyped_storage().data_ptr() for t in state}
            self.step = training_step(layer, *self.data)

    def warm(self) -> dict:
        """The untimed first run, then the run that measures memory."""
        self.step()
        row = probe(self.step, self.params)
        row["saved_x_input"] = row.pop("saved_bytes") / (self.steps * self.batch * self.neurons * 4)
        self.step = None if self.fresh else self.step
        return row

    def __call__(self) -> None:
        self.step()
        self.step = None if self.fresh else self.step


# ---- the run -----------------------------------------------------------------------------------


def plan(case: Case, steps: int, batch: int, last: dict | None) -> tuple[int, str | None, str | None]:
    """(batch, note, skip reason) for `case` at `steps`, extrapolating its fastest run at the last T
    (the least disturbed) by its complexity; never from a run under EXTRAPOLATE_FROM_S, whose time is
    mostly per-call overhead that does not grow with T."""
    if last is None or last["skipped"]:
        return batch, None, last and last["skipped"]  # a skipped case stays skipped at longer T
    if last["seconds"]["min"] < EXTRAPOLATE_FROM_S:
        return batch, None, None
    estimate = last["seconds"]["min"] * (steps / last["T"]) ** case.exponent * batch / last["B"]
    if estimate <= LIMIT_S:
        return batch, None, None
    why = f"≈ {estimate:.0f} s per run at B = {batch} (extrapolated ~T^{case.exponent} from T = {last['T']}); T×T weight {steps * steps * 4 / 2**30:.1f} GiB"
    if case.dense:
        return 1, why + ": run at B = 1", None
    return batch, None, "skipped: " + why


def run_T(steps: int, batch: int, neurons: int, last: dict, runs: int) -> list[dict]:
    """Every case at one T: planned, warmed and probed one by one, then timed in interleaved rounds."""
    rows, candidates, data = [], {}, {}  # one input per batch size, shared by every path (at T = 16384 it takes 1 GiB)
    for case in cases():
        b, note, skipped = plan(case, steps, batch, last.get(case.name))
        row = {"T": steps, "path": case.name, "B": b, "N": neurons, "skipped": skipped, "note": note}
        rows.append(row)
        if skipped is None:
            data[b] = data.get(b) or example(steps, b, neurons)
            candidates[case.name] = Candidate(case, data[b], fresh=b != batch)
            row.update(candidates[case.name].warm())
        last[case.name] = row
    slow = {r["path"] for r in rows if r["path"] in candidates and r["first_seconds"] >= SLOW_S}
    times = interleaved({name: c for name, c in candidates.items() if name not in slow}, runs, warmup=0)
    times.update(interleaved({name: candidates[name] for name in slow}, min(runs, SLOW_RUNS), warmup=0))
    for row in rows:
        if row["path"] in times:
            row["seconds"] = spread(times[row["path"]])
    _ratios(rows, times, batch)
    for row in rows:
        _print_row(row)
    return rows


def _ratios(rows: list[dict], times: dict[str, list[float]], batch: int) -> None:
    """Per-round ratios against the loop, the floor and the compiled FIR (at the full batch)."""
    for r in rows:
        mine = times.get(r["path"]) if r["B"] == batch else None
        for key, other in (("speedup_vs_loop", LOOP), ("over_floor", FLOOR), ("speedup_vs_compiled_fir", COMPILED)):
            theirs = times.get(other)
            if mine is None or theirs is None:
                r[key] = None
            else:
                r[key] = paired_ratios(mine, theirs) if key == "over_floor" else paired_ratios(theirs, mine)


def _print_row(r: dict) -> None:
    if r["skipped"]:
        print(f"T={r['T']:6d}  {r['path']:32s} {r['skipped']}", flush=True)
        return
    dispatch = ", ".join(f"{k}: {v}" for k, v in r["dispatch"].items())
    note = f"  [{r['note']}]" if r["note"] else ""
    s = r["seconds"]
    vs = f"  loop/this {r['speedup_vs_loop']['median']:6.2f}x" if r.get("speedup_vs_loop") else ""
    print(f"T={r['T']:6d}  {r['path']:32s} {s['median']:9.4f} s [{s['min']:.4f}–{s['max']:.4f}, {s['runs']} runs]{vs}  saved {r['saved_x_input']:5.2f}× x  peak {r['peak_rss_mib'] or 0:8.1f} MiB  {dispatch}{note}", flush=True)


def run(step_list: list[int], batch: int, neurons: int, runs: int) -> list[dict]:
    rows, last = [], {}
    for steps in step_list:
        rows += run_T(steps, batch, neurons, last, runs)
    return rows


def targets(rows: list[dict]) -> dict:
    """The goals of issues 9 and 17, evaluated on this run."""
    at = {(r["T"], r["path"]): r for r in rows}
    out = {}
    for name in (f"spc SlidingPSN k={K}", "spc SPSN"):
        r = at.get((1024, name))
        if r and r.get("speedup_vs_loop"):
            v = r["speedup_vs_loop"]
            out[f"{name}: >= 6x (median) and >= 5x (min) faster than the plain LIF loop at T = 1024, >= 7 interleaved runs"] = goal("issue 17", v["median"], v["median"] >= 6 and v["min"] >= 5 and v["runs"] >= 7, min=v["min"], max=v["max"], runs=v["runs"])
            f = r["over_floor"]
            out[f"{name}: within 10x of the memory floor at T = 1024"] = goal("issue 9", f["median"], f["median"] <= 10, min=f["min"], max=f["max"], runs=f["runs"])
    for steps in (1024, 4096):
        r = at.get((steps, f"spc SlidingPSN k={K}"))
        if r and r.get("speedup_vs_compiled_fir"):
            v = r["speedup_vs_compiled_fir"]
            out[f"spc SlidingPSN k={K}: >= 1.5x faster than the torch.compile'd FIR at T = {steps}"] = goal("issue 17", v["median"], v["median"] >= 1.5, min=v["min"], max=v["max"], runs=v["runs"])
    sj, ours = at.get((4096, f"SpikingJelly SlidingPSN k={K}")), at.get((4096, f"spc SlidingPSN k={K}"))
    if sj and ours and sj.get("seconds") and ours.get("seconds"):
        ratio = sj["seconds"]["median"] / ours["seconds"]["median"]
        out["spc SlidingPSN >= 20x faster than SpikingJelly's at T = 4096 (medians)"] = goal("issue 9", ratio, ratio >= 20)
    for theirs, mine in (("SpikingJelly PSN", "spc PSN"), (f"SpikingJelly MaskedPSN k={K}", f"spc MaskedPSN k={K}")):
        for steps in sorted({r["T"] for r in rows}):
            a, b = at.get((steps, theirs)), at.get((steps, mine))
            if a and b and a.get("seconds") and b.get("seconds") and a["B"] == b["B"]:
                ratio = a["seconds"]["median"] / b["seconds"]["median"]
                out[f"{mine} no slower than {theirs} at T = {steps} (B = {a['B']}, medians)"] = goal("issue 9", ratio, ratio >= 1 / 1.05)
    return out


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny shapes and 2 runs each (bounded by work, not time)")
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    step_list, batch, neurons, runs = ([16, 48], 2, 8, 2) if args.quick else ([64, 1024, 4096, 16384], 32, 256, RUNS)
    print(f"native kernels: {native.status()}; torch threads: {torch.get_num_threads()}", flush=True)
    start = time.perf_counter()
    rows = run(step_list, batch, neurons, runs)
    goals = targets(rows)
    for text, v in goals.items():
        print(f"{'met    ' if v['met'] else 'NOT MET'}  {text}: {v['value']:.2f}")
    doc = {
        "benchmark": "b1_training_speed",
        "config": {"T": step_list, "B": batch, "N": neurons, "dtype": "float32", "k": K, "runs": runs, "slow_runs": SLOW_RUNS, "slow_s": SLOW_S, "limit_s": LIMIT_S, "native": native.status(), "spikingjelly": _version("spikingjelly")},
        "results": rows,
        "targets": goals,
        "total_seconds": time.perf_counter() - start,
    }
    if not args.quick or args.output_dir:
        print(f"wrote {write_results('b1_training_speed_quick' if args.quick else 'b1_training_speed', doc, args.output_dir or RESULTS)}")
    return doc


if __name__ == "__main__":
    main()
