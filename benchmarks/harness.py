"""What every spc benchmark shares: timing by repeated runs (medians), the machine description,
and writing results as JSON next to the benchmark (benchmarks/results/NAME.json)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_seconds(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
