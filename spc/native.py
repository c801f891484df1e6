"""spc's C kernels: built from their source on first use, loaded with ctypes, run over column ranges
in threads. One mechanism for every kernel library (the torch training kernels,
spc.frontends.torch.kernels.native; the integer simulator's, spc.runtime.integer_native).

A library is built with the system's C compiler ($CC, else `cc`) into spc's cache directory
($SPC_CACHE_DIR, else $XDG_CACHE_HOME/spc, else ~/.cache/spc), under a name hashed from the source,
the variants, the flags, the compiler's version and the CPU, so that no machine loads another's
build (-march=native). Each variant compiles the source once more with its own -D definitions (the
element type, the suffix of its function names), and the objects are linked into one library. Any
failure — no compiler, a failed build, an unwritable cache, a library that does not load — leaves
the library None with a status saying why, and callers use their portable forms instead;
SPC_NATIVE=0 does the same on purpose.

Kernels loop over time and are vectorised over columns; threads split the columns (ctypes releases
the GIL during a call).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC")
MIN_COLUMNS_PER_THREAD = 256

log = logging.getLogger("spc.native")
_lock = threading.Lock()
_pools: dict = {}


def cache_dir() -> Path:
    if os.environ.get("SPC_CACHE_DIR"):
        return Path(os.environ["SPC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spc"


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor() or platform.machine()


def _build(compiler: str, source: Path, variants: Sequence[Sequence[str]], name: str) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    parts = [source.read_bytes(), " ".join(FLAGS).encode(), repr(list(map(list, variants))).encode(), version.encode(), _cpu().encode()]
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
    target = cache_dir() / f"{name}-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        objects = []
        for i, defines in enumerate(variants):
            objects.append(f"{tmp}/{i}.o")
            subprocess.run([compiler, *FLAGS, *defines, "-c", str(source), "-o", objects[-1]], capture_output=True, text=True, check=True)
        subprocess.run([compiler, "-shared", *objects, "-o", f"{tmp}/lib.so"], capture_output=True, text=True, check=True)
        os.replace(f"{tmp}/lib.so", target)  # atomic: a concurrent build writes the same bytes
    return target


class Library:
    """A C source built on first use (`get()`), None where it cannot be; `status` says which."""

    def __init__(self, source: Path, name: str, variants: Sequence[Sequence[str]], declare: Callable[[ctypes.CDLL], None]):
        self.source, self.name, self.variants, self.declare = source, name, variants, declare
        self._lock = threading.Lock()
        self._loaded: tuple[ctypes.CDLL | None, str] | None = None

    def _load(self) -> tuple[ctypes.CDLL | None, str]:
        if os.environ.get("SPC_NATIVE", "1") == "0":
            return None, "disabled by SPC_NATIVE=0"
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not compiler:
            return None, "no C compiler (set CC, or install gcc)"
        try:
            path = _build(compiler, self.source, self.variants, self.name)
            lib = ctypes.CDLL(str(path))
        except subprocess.CalledProcessError as e:
            return None, f"build failed: {(e.stderr or '').strip()[:500]}"
        except OSError as e:
            return None, f"could not build or load: {e}"
        self.declare(lib)
        return lib, f"loaded {path}"

    def get(self) -> ctypes.CDLL | None:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
                log.info("%s: %s", self.name, self._loaded[1])
        return self._loaded[0]

    @property
    def status(self) -> str:
        self.get()
        return self._loaded[1]


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads (one per count asked for), made anew after a fork (a child
    inherits no threads)."""
    with _lock:
        if _pools.get("pid") != os.getpid():
            _pools.clear()
            _pools["pid"] = os.getpid()
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spc-native")
        return _pools[workers]


def column_ranges(columns: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous column ranges, one per thread (at most `threads`, each of at least
    MIN_COLUMNS_PER_THREAD columns), aligned to 16 elements (a cache line of float32)."""
    if columns == 0:
        return []
    threads = max(1, min(threads, columns // MIN_COLUMNS_PER_THREAD))
    step = math.ceil(math.ceil(columns / threads) / 16) * 16
    return [(m0, min(m0 + step, columns)) for m0 in range(0, columns, step)]


def run_ranges(call: Callable[[int], None], count: int) -> None:
    """call(i) for i < count, each in its own thread of the pool when there are several."""
    if count > 1:
        list(_pool(count).map(call, range(count)))
    elif count:
        call(0)
