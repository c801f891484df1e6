"""Builds and loads `native.c`, spc's fused CPU kernels, and runs them over column ranges in threads.

The library is built on first use with the system's C compiler ($CC, else `cc`) into spc's cache
directory ($SPC_CACHE_DIR, else $XDG_CACHE_HOME/spc, else ~/.cache/spc), under a name hashed from
the source, the flags, the compiler's version and the CPU, so that no machine loads another's build
(-march=native). Any failure — no compiler, a failed build, an unwritable cache, a library that does
not load — leaves `library()` None and `status()` saying why, and every caller uses the portable torch
kernels instead; SPC_NATIVE=0 does the same on purpose. Only CPU tensors of float32 or float64 are
handed to it.

The kernels loop over time and are vectorised over the columns (batch × neurons), which on a CPU
already fill the vector units; threads split the columns (ctypes releases the GIL during a call).
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

import torch

_SOURCE = Path(__file__).with_name("native.c")
_FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC")
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_REAL = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
# argument types after the common (arrays..., T, M, m0, m1); "r" is the dtype's real
_P, _L, _I = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
_SIGNATURES = {
    "fir_forward": (2, (_P, _L, "r", _I, "r"), _I),
    "fir_backward": (3, (_P, _L, "r", _I, "r", "r", _P), _I),
    "chain_forward": (2, (_P, _P, _L, _I, "r"), _I),
    "chain_backward": (3, (_P, _P, _L, _I, "r", "r"), _I),
    "lif_forward": (3, ("r", "r", "r", _I), _I),
    "lif_backward": (3, ("r", "r", "r", _I, "r"), _I),
    "cfir_forward": (2, (_P, _L, _L, _L, _L, _I, "r", _P), _I),
    "cfir_backward": (3, (_P, _L, _L, _L, _L, _I, "r", "r", _P, _P), _I),
    "dsn_forward": (2, (_P, _L, _L, _L, _I, "r"), _I),
    "dsn_backward": (3, (_P, _L, _L, _L, _I, "r", "r", _P), _I),
    "resonator_forward": (2, (_P, _L, _L, _I, "r"), _I),
    "resonator_backward": (3, (_P, _L, _L, _I, "r", "r", _P), _I),
    "mpe_forward": (2, (_I, "r", _L, _L, _I, "r"), _I),
    "mpe_backward": (3, (_I, "r", _L, _L, _I, "r", "r", _P), _I),
    "psu_forward": (2, (_P, _L, "r", "r", _I, "r"), _I),
    "psu_backward": (3, (_P, _L, "r", "r", _I, "r", "r"), _I),
}
_MIN_COLUMNS_PER_THREAD = 256

_lock = threading.Lock()
_state: dict = {}
log = logging.getLogger("spc.kernels")


def _cache_dir() -> Path:
    if os.environ.get("SPC_CACHE_DIR"):
        return Path(os.environ["SPC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spc"


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor() or platform.machine()


def _build(compiler: str) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    source = _SOURCE.read_bytes()
    digest = hashlib.sha256(b"\0".join([source, " ".join(_FLAGS).encode(), version.encode(), _cpu().encode()])).hexdigest()[:16]
    target = _cache_dir() / f"spc-native-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        objects = []
        for real, suffix in (("float", "f32"), ("double", "f64")):
            objects.append(f"{tmp}/{suffix}.o")
            subprocess.run([compiler, *_FLAGS, f"-DREAL={real}", f"-DSUFFIX={suffix}", "-c", str(_SOURCE), "-o", objects[-1]], capture_output=True, text=True, check=True)
        subprocess.run([compiler, "-shared", *objects, "-o", f"{tmp}/lib.so"], capture_output=True, text=True, check=True)
        os.replace(f"{tmp}/lib.so", target)  # atomic: a concurrent build writes the same bytes
    return target


def _load() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get("SPC_NATIVE", "1") == "0":
        return None, "disabled by SPC_NATIVE=0"
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None, "no C compiler (set CC, or install gcc)"
    try:
        path = _build(compiler)
        lib = ctypes.CDLL(str(path))
    except subprocess.CalledProcessError as e:
        return None, f"build failed: {(e.stderr or '').strip()[:500]}"
    except OSError as e:
        return None, f"could not build or load: {e}"
    for name, (arrays, rest, restype) in _SIGNATURES.items():
        for dtype, suffix in _SUFFIX.items():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [_P] * arrays + [_L] * 4 + [_REAL[dtype] if a == "r" else a for a in rest]
            fn.restype = restype
    return lib, f"loaded {path}"


def library() -> ctypes.CDLL | None:
    with _lock:
        if "lib" not in _state:
            _state["lib"], _state["status"] = _load()
            log.info("native kernels: %s", _state["status"])
    return _state["lib"]


def status() -> str:
    library()
    return _state["status"]


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the native kernels can run on these tensors (CPU, one of float32 / float64)."""
    dtype = tensors[0].dtype
    return all(t.device.type == "cpu" and t.dtype == dtype for t in tensors) and dtype in _SUFFIX and library() is not None


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads, made anew after a fork (a child inherits no threads)."""
    with _lock:
        if _state.get("pool_key") != (workers, os.getpid()):
            _state["pool"], _state["pool_key"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spc-native"), (workers, os.getpid())
        return _state["pool"]


def column_ranges(columns: int) -> list[tuple[int, int]]:
    """Contiguous column ranges, one per thread, aligned to 16 elements (a cache line of float32)."""
    if columns == 0:
        return []
    threads = max(1, min(torch.get_num_threads(), columns // _MIN_COLUMNS_PER_THREAD))
    step = math.ceil(math.ceil(columns / threads) / 16) * 16
    return [(m0, min(m0 + step, columns)) for m0 in range(0, columns, step)]


def run(name: str, arrays: list[torch.Tensor], rest) -> None:
    """Call `name` on the [T, M] contiguous `arrays`, one column range per thread; `rest(i)` gives the
    trailing arguments of range i."""
    fn = getattr(library(), f"{name}_{_SUFFIX[arrays[0].dtype]}")
    steps, columns = arrays[0].shape
    pointers = [a.data_ptr() for a in arrays]
    ranges = column_ranges(columns)

    def call(i):
        if fn(*pointers, steps, columns, *ranges[i], *rest(i)) not in (None, 0):
            raise MemoryError(f"native kernel {name}: out of memory")

    if len(ranges) > 1:
        list(_pool(len(ranges)).map(call, range(len(ranges))))
    elif ranges:
        call(0)
