"""spc's fused CPU training kernels (`native.c`), built on first use by `spc.native`, run over column
ranges in threads on torch tensors.

`native.c` is compiled twice, for float32 (suffix f32) and float64 (f64); only CPU tensors of those
dtypes are handed to it. Where the library cannot be built (see `spc.native`: no compiler, a failed
build, SPC_NATIVE=0), `library()` is None, `status()` says why, and every caller uses the portable
torch kernels instead.

The kernels loop over time and are vectorised over the columns (batch × neurons), which on a CPU
already fill the vector units; threads split the columns (as many as torch uses).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from spc import native

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


def _declare(lib: ctypes.CDLL) -> None:
    for name, (arrays, rest, restype) in _SIGNATURES.items():
        for dtype, suffix in _SUFFIX.items():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [_P] * arrays + [_L] * 4 + [_REAL[dtype] if a == "r" else a for a in rest]
            fn.restype = restype


_LIBRARY = native.Library(Path(__file__).with_name("native.c"), "spc-native", [("-DREAL=float", "-DSUFFIX=f32"), ("-DREAL=double", "-DSUFFIX=f64")], _declare)


def library() -> ctypes.CDLL | None:
    return _LIBRARY.get()


def status() -> str:
    return _LIBRARY.status


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the native kernels can run on these tensors (CPU, one of float32 / float64)."""
    dtype = tensors[0].dtype
    return all(t.device.type == "cpu" and t.dtype == dtype for t in tensors) and dtype in _SUFFIX and library() is not None


def column_ranges(columns: int) -> list[tuple[int, int]]:
    """Contiguous column ranges, one per thread torch uses."""
    return native.column_ranges(columns, torch.get_num_threads())


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

    native.run_ranges(call, len(ranges))
