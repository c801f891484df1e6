"""How the kernels hold their data: a time-major tensor [T, ...] as rows [T, M], and fresh outputs
that do not pay for fresh memory.

A fresh large tensor costs page faults on its first write: the kernel hands the process zeroed
pages one by one (4 KiB: 8192 faults for 32 MiB, about as long as the FIR kernel that fills it takes;
measured 8.5 ms against 3 ms for 32 MB on 2 cores). Transparent huge pages, where Linux offers them
on request (THP mode "madvise", the common default), cut the faults 512-fold but still zero every
page (about 3.5 ms per 32 MiB). So large CPU outputs come from a small pool of buffers that are
reused once every tensor viewing them is gone: a training loop asks for the same sizes every
iteration, and gets its last iteration's pages, already mapped. The pool holds at most
POOL_BYTES (in use or idle); past that, or for other devices and dtypes, `empty` is a plain
`torch.empty` (on huge pages where offered). `release()` gives the idle buffers back.

A pooled tensor is an ordinary CPU tensor over a numpy buffer; the pool sees that a buffer is idle
when the only reference to it left is its own (every tensor and view over it holds one through its
storage). Such tensors cannot be resized beyond their size, as for any tensor from `torch.from_numpy`.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading

import numpy as np
import torch

_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14
POOL_MIN_BYTES = 4 * _HUGE_PAGE
"""Smaller outputs come from malloc's heap, which reuses freed memory by itself."""
POOL_BYTES = 1 << 30
"""The most the pool holds, in use or idle."""
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def _madvise():
    if sys.platform != "linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


_advise = _madvise()


def _huge_pages(address: int, nbytes: int) -> None:
    """Ask for huge pages over the whole huge pages inside [address, address + nbytes), before the
    first write (a hint: failure changes nothing)."""
    if _advise is None or nbytes < 2 * _HUGE_PAGE:
        return
    start = -(-address // _HUGE_PAGE) * _HUGE_PAGE
    stop = (address + nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if stop > start:
        _advise(start, stop - start, _MADV_HUGEPAGE)


def _references(buffer: np.ndarray) -> int:
    return sys.getrefcount(buffer)


def _idle_references() -> int:
    """The count `_references` gives for a buffer only the pool's list holds."""
    held = [np.empty(1, np.uint8)]
    return _references(held[0])


class _Pool:
    def __init__(self):
        self.buffers: list[np.ndarray] = []
        self.lock = threading.Lock()

    def _idle(self, i: int) -> bool:
        return _references(self.buffers[i]) <= _IDLE

    def take(self, nbytes: int) -> np.ndarray | None:
        """An idle buffer of exactly `nbytes`, else a new one while the pool has room (idle buffers
        of other sizes are dropped to make room), else None."""
        with self.lock:
            for i in range(len(self.buffers)):
                if self.buffers[i].nbytes == nbytes and self._idle(i):
                    return self.buffers[i]
            if sum(b.nbytes for b in self.buffers) + nbytes > POOL_BYTES:
                self.buffers = [self.buffers[i] for i in range(len(self.buffers)) if not self._idle(i)]
                if sum(b.nbytes for b in self.buffers) + nbytes > POOL_BYTES:
                    return None
            buffer = np.empty(nbytes, np.uint8)
            _huge_pages(buffer.ctypes.data, nbytes)
            self.buffers.append(buffer)
            return buffer

    def release(self) -> None:
        with self.lock:
            self.buffers = [self.buffers[i] for i in range(len(self.buffers)) if not self._idle(i)]


_IDLE = _idle_references()
_pool = _Pool()


def empty(shape, like: torch.Tensor) -> torch.Tensor:
    """torch.empty(shape) with like's dtype and device; large CPU buffers reused from the pool, or on
    huge pages."""
    nbytes = math.prod(shape) * like.element_size()
    if like.device.type == "cpu" and like.dtype in _NUMPY and nbytes >= POOL_MIN_BYTES:
        buffer = _pool.take(nbytes)
        if buffer is not None:  # a tensor of its own over the buffer, not a view: autograd adds into it in place
            return torch.from_numpy(buffer.view(_NUMPY[like.dtype]).reshape(shape))
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    if out.device.type == "cpu":
        _huge_pages(out.data_ptr(), out.nbytes)
    return out


def release() -> None:
    """Give the pool's idle buffers back to the system (they are reused otherwise)."""
    _pool.release()


def rows(x: torch.Tensor) -> torch.Tensor:
    """x [T, ...] as a matrix [T, M] (a view where possible); M = 0 and T = 0 allowed."""
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))
