"""What every spc benchmark shares: timing by interleaved repeated runs (medians and spreads), the
goals an issue sets, the machine description (with its load), and writing results as JSON next to
the benchmark (benchmarks/results/NAME.json)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def interleaved(candidates: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of every candidate over `runs` rounds, after `warmup` untimed rounds. Each round runs
    every candidate once, in an order rotated from round to round, so that whatever else the machine
    does falls on all of them alike, and a ratio compares runs made moments apart. A candidate with a
    `prepare()` method has it called, untimed, before each of its runs. Bounded by work: it never
    waits for the machine to be quiet."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs):
        shift = round_ % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            getattr(candidates[name], "prepare", lambda: None)()
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float]) -> dict:
    """The median, minimum and maximum of repeated measurements, and how many there were."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def paired_ratios(numerator: list[float], denominator: list[float]) -> dict:
    """The spread of numerator[i] / denominator[i] over the rounds both ran in (interleaved runs:
    each ratio compares two runs made moments apart)."""
    return spread([a / b for a, b in zip(numerator, denominator)])


def goal(text: str, value: float, met: bool, **detail) -> dict:
    """One goal of an issue, evaluated on this run: what it asks, the figure, whether it is met."""
    return {"goal": text, "value": value, "met": bool(met), **detail}


_LOAD_AT_START = os.getloadavg() if hasattr(os, "getloadavg") else None


def machine() -> dict:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        # other processes' demand for the CPUs: 1-, 5- and 15-minute load averages, at the start
        # and at the end of the run (above the core count, runs took turns with other processes)
        "load_average_start": _LOAD_AT_START,
        "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }


def write_results(name: str, doc: dict, directory: Path = RESULTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **doc}, indent=1) + "\n")
    return path


def arguments(doc: str, argv=None) -> argparse.Namespace:
    """The options every benchmark takes: --quick (tiny shapes, a smoke run) and --output-dir."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run in seconds")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write the JSON (default benchmarks/results/)")
    return parser.parse_args(argv)


def save(name: str, doc: dict, args: argparse.Namespace) -> None:
    """Write a benchmark's results (a --quick run only when given an output directory)."""
    if not args.quick or args.output_dir:
        print(f"wrote {write_results(name + ('_quick' if args.quick else ''), doc, args.output_dir or RESULTS)}")
