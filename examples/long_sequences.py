"""Long sequences: the stepwise form runs in memory independent of T; the parallel form does not.

Task (generated, deterministic): classify which of four rhythms (spike periods 5, 8, 13, 21 steps,
random phase per channel, 10 % of the beats dropped, 2 % background spikes) 16 input channels
carry. Network: SlidingPSN (k = 24) and SPSN hidden layers, leaky readout; both are time-invariant,
so a model trained on T = 256 runs on sequences of any length.

1. Train in parallel form at T = 256 (cached), compile (integer form calibrated at T = 256).
2. Verify at T = 4096: parallel, float stepwise and integer forms, with each form's accuracy.
3. Peak memory of one inference (B = 8) at growing T, each in a fresh process: the parallel form
   (torch, the whole sequence at once) against spc's integer simulator streaming the sequence in
   chunks (`spc.runtime.sim.stream`, input generated chunk by chunk, readout summed on the fly).

    python examples/long_sequences.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import spc

PERIODS = (5, 8, 13, 21)
CHANNELS = 16
CACHE = Path(__file__).resolve().parent / ".cache"


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(CHANNELS, 32)), ("sliding", spc.SlidingPSN(k=24, exp_init=False)),
        ("fc2", nn.Linear(32, 32)), ("spsn", spc.SPSN(tau_syn=8.0, tau_mem=8.0)),
        ("fc_out", nn.Linear(32, len(PERIODS))), ("readout", spc.LI(tau=2.0)),
    ]))  # fmt: skip


def rhythms(steps: int, labels: np.ndarray, seed: int, t0: int = 0) -> np.ndarray:
    """Spike trains [steps, B, CHANNELS] for steps t0..t0+steps of each sample's rhythm (phases fixed by seed)."""
    rng = np.random.default_rng(seed)
    periods = np.asarray(PERIODS)[labels]
    phases = rng.integers(0, 1000, (len(labels), CHANNELS))
    t = np.arange(t0, t0 + steps)[:, None, None]
    beats = (t + phases[None]) % periods[None, :, None] == 0
    noise = np.random.default_rng([seed, t0]).random((2, steps, len(labels), CHANNELS))
    return ((beats & (noise[0] > 0.1)) | (noise[1] < 0.02)).astype(np.float32)


def dataset(samples: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.random.default_rng(seed).integers(0, len(PERIODS), samples)
    return rhythms(steps, labels, seed + 1), labels


def trained_model(epochs: int, samples: int = 1024, steps: int = 256) -> nn.Module:
    model = build_model()
    checkpoint = CACHE / f"long_sequences-{epochs}ep-{samples}.pt"
    if checkpoint.exists():
        model.load_state_dict(torch.load(checkpoint, weights_only=True))
        return model.eval()
    x, y = dataset(samples, steps, seed=0)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in tqdm(range(epochs), desc="training (parallel form, T = 256)", unit="epoch", disable=None):  # on a terminal only
        order = torch.randperm(len(ys), generator=generator)
        for start in range(0, len(ys), 64):
            idx = order[start : start + 64]
            loss = nn.functional.cross_entropy(model(xs[:, idx]).mean(0), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    CACHE.mkdir(exist_ok=True)
    torch.save(model.state_dict(), checkpoint)
    return model.eval()


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak resident set size (VmHWM) to the current one; return the current one."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def measure_here(form: str, directory: Path, steps: int, batch: int) -> dict:
    """One inference of `form` at T = steps, in this process: peak resident memory above the baseline."""
    labels = np.arange(batch) % len(PERIODS)
    if form == "parallel":
        model = build_model()
        model.load_state_dict(torch.load(directory / "weights.pt", weights_only=True))
        model.eval()
        baseline, start = _reset_peak(), time.perf_counter()
        with torch.no_grad():
            scores = model(torch.from_numpy(rhythms(steps, labels, seed=7))).sum(0).numpy()
    else:
        from spc.runtime.sim import stream

        graph = spc.load(directory / "compiled").integer
        chunk = 256
        baseline, start = _reset_peak(), time.perf_counter()
        scores = sum(out.sum(0) for out in stream(graph, (rhythms(min(chunk, steps - t0), labels, 7, t0) for t0 in range(0, steps, chunk))))
    return {"form": form, "steps": steps, "batch": batch, "peak_bytes_above_baseline": _status("VmHWM") - baseline, "seconds": time.perf_counter() - start, "accuracy": float((np.argmax(scores, -1) == labels).mean())}


def measure(form: str, directory: Path, steps: int, batch: int = 8) -> dict:
    """`measure_here` in a fresh process, so that one measurement cannot inflate another's peak."""
    cmd = [sys.executable, __file__, "--measure", form, "--dir", str(directory), "--steps", str(steps), "--batch", str(batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/long_sequences")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--test-steps", type=int, default=4096)
    parser.add_argument("--test-samples", type=int, default=64)
    parser.add_argument("--memory-steps", default="1024,4096,16384", help="comma-separated sequence lengths for the memory measurement")
    parser.add_argument("--measure", choices=["parallel", "stepwise"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_here(args.measure, Path(args.dir), args.steps, args.batch)))
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = trained_model(args.epochs)
    torch.save(model.state_dict(), out / "weights.pt")
    calib, _ = dataset(64, 256, seed=3)
    compiled = spc.compile(model, (256, 1, CHANNELS), out / "compiled", force=True, calib=calib)

    x, y = dataset(args.test_samples, args.test_steps, seed=5)
    report = spc.verify(compiled, x, model=model, labels=y)
    print(f"verification at T = {args.test_steps} (trained at T = 256):")
    print(report.table())

    print("\npeak memory of one inference, B = 8 (fresh process each):")
    rows = []
    for steps in (int(s) for s in args.memory_steps.split(",")):
        for form in ("parallel", "stepwise"):
            m = measure(form, out, steps)
            rows.append((steps, "parallel (torch, whole sequence)" if form == "parallel" else "stepwise (spc integer, streamed)", f"{m['peak_bytes_above_baseline'] / 2**20:.1f} MiB", f"{m['seconds']:.2f} s", f"{100 * m['accuracy']:.0f}%"))
    from spc.text_table import render

    print(render(("T", "form", "peak memory", "time", "accuracy (8 samples)"), rows))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
