"""Refusing, up front and with a clear message, runs that would exhaust memory (instead of being
killed by the operating system), and saying what would fit."""

from __future__ import annotations

import math
import os

from spc.compiler.ir import Graph
from spc.errors import SpcError

HEADROOM = 0.8
"""Share of the available memory a run may plan to use."""


def available_memory() -> int:
    """Bytes the system can still give this process (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def bytes_per_sample(graph: Graph, steps: int, copies: int = 2) -> int:
    """Memory for recording every node's output over `steps` (float64), `copies` alive at once."""
    return copies * 8 * steps * sum(math.prod(s) for s in graph.shapes.values())


def ensure_fits(graph: Graph, steps: int, batch: int, what: str, copies: int = 2) -> None:
    """Raise SpcError when recording `graph` over [steps, batch] would not fit in memory."""
    per_sample = bytes_per_sample(graph, steps, copies)
    budget = HEADROOM * available_memory()
    if per_sample * batch <= budget:
        return
    fits = int(budget // per_sample)
    fix = f"split the input into batches of at most {fits} samples" if fits >= 1 else f"use sequences of at most {int(budget // (per_sample / steps))} steps, or `spc run` (which streams the sequence)"
    raise SpcError(what, f"would need about {_size(per_sample * batch)} for T = {steps}, B = {batch}, but only {_size(budget)} can be had", fix)


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
