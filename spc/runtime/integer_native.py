"""The integer simulator's native kernels (`integer_native.c`): QLeaky ('int12' and 'shift' decays)
and QDelayLine, each fused with the deterministic firing rule of one spike a step (and QLeaky with
its reset), built on first use by `spc.native`.

They compute what `spc.runtime.integer`'s numpy kernels compute (docs/integer-spec.md), bit for bit,
saturation events included, in one pass over a chunk instead of a numpy pass per operation and per
step: membranes in int32 (a state of W <= 32 bits), spikes in uint8, arithmetic in int64. Inputs are
read as int32 or int64 (the synapses' int32 sums, or any other integers widened to int64). Every
other cell — and every cell where the library cannot be built (no C compiler, SPC_NATIVE=0) or
`enabled` is False — runs the numpy kernels; a cell runs the same kernels in every chunk, so its
state keeps one form.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spc import native
from spc.compiler.cells import Neuron
from spc.compiler.ir import channel_view
from spc.compiler.qcells import QDelayLine, QFire, QLeaky

enabled = True
"""Whether supported cells run natively (tests and benchmarks switch it off to run numpy's)."""

_P, _L, _I = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
# arguments after (x, h, s, T, M, m0, m1)
_SIGNATURES = {
    "leaky": (_P, _P, _I, _I, _I, _P, _I, _I),
    "delay_line": (_P, _P, _P, _L, _L, _I, _P, _I, _I, _I),
}
_SUFFIX = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}
_RESETS = {"none": 0, "zero": 1, "subtract": 2}
_MIN_ELEMENTS_PER_THREAD = 1 << 16  # below this a thread costs more than it saves


def _declare(lib: ctypes.CDLL) -> None:
    for name, rest in _SIGNATURES.items():
        for suffix in _SUFFIX.values():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = [_P, _P, _P, _L, _L, _L, _L, *rest], _L


_LIBRARY = native.Library(Path(__file__).with_name("integer_native.c"), "spc-integer", [("-DINPUT=int32_t", "-DSUFFIX=i32"), ("-DINPUT=int64_t", "-DSUFFIX=i64")], _declare)


def status() -> str:
    return _LIBRARY.status


def _usable() -> bool:
    return enabled and _LIBRARY.get() is not None


def _supported(cell) -> bool:
    if isinstance(cell, QLeaky):  # Xylo's 'dash' decay, its synaptic current and its two's-complement range: numpy
        return cell.mode in ("int12", "shift") and not cell.input_first
    if isinstance(cell, QDelayLine):
        return int(np.abs(cell.taps).max(initial=0)) < 2**31
    return False


def kernel(cell):
    """The native kernel of `cell` (same interface as spc.runtime.integer.CELLS), or None."""
    if not (_usable() and _supported(cell)):
        return None
    return lambda cell, x, state, t0, sats: _run_cell(cell, None, x, state, sats)[::2]


def fuses(neuron: Neuron) -> bool:
    """Whether the neuron's last cell and its firing rule (with any reset) run natively together."""
    fire, last = neuron.fire, neuron.cells[-1]
    if fire is None or fire.stochastic or fire.max_spikes != 1 or fire.readout or not (_usable() and _supported(last)):
        return False
    return fire.reset == "none" or isinstance(last, QLeaky)


def fired(cell, fire: QFire, x: np.ndarray, state, sats):
    """(membrane, spikes, state) of the last cell fused with the firing rule (see `fuses`)."""
    return _run_cell(cell, fire, x, state, sats)


@dataclass
class _State:
    """A native cell's state between chunks, with its per-column parameters expanded once."""

    params: dict
    v: np.ndarray | None = None  # QLeaky: the membrane [M], int32
    history: np.ndarray | None = None  # QDelayLine: the last (k − 1)·dilation inputs [R, M], int64


def _columns(values: np.ndarray, shape: tuple[int, ...], batch: int, dtype=np.int64) -> np.ndarray:
    """A per-channel (or shared) vector as one value per column [M] of a [t, B, *shape] chunk."""
    per_element = np.broadcast_to(channel_view(np.asarray(values).astype(dtype), shape), shape)
    return np.ascontiguousarray(np.broadcast_to(per_element, (batch,) + shape).reshape(-1))


def _new_state(cell, fire: QFire | None, shape: tuple[int, ...], batch: int, columns: int) -> _State:
    params = {}
    if fire is not None:
        params["threshold"] = _columns(fire.threshold, shape, batch)
    if isinstance(cell, QLeaky):
        params["amount"] = _columns(cell.decay, shape, batch, np.int32)
        return _State(params, v=np.zeros(columns, np.int32))
    if cell.taps.shape[0] == 1:  # shared by every channel
        params["taps"] = np.ascontiguousarray(cell.taps[0], np.int32)
    else:
        params["taps"] = np.ascontiguousarray(np.stack([_columns(cell.taps[:, i], shape, batch, np.int32) for i in range(cell.order)]))
    params["bias"] = _columns(cell.bias, shape, batch)
    params["int32_below"] = (2.0**31 - 1 - float(np.abs(cell.bias).max())) / max(float(np.abs(cell.taps).sum(axis=1).max()), 1.0)
    return _State(params, history=np.zeros((cell.state_size, columns), np.int64))


def _run_cell(cell, fire: QFire | None, x: np.ndarray, state: _State | None, sats):
    steps, batch, shape = x.shape[0], x.shape[1], x.shape[2:]
    columns = batch * math.prod(shape)
    x2 = x.reshape(steps, columns)
    if x2.dtype not in _SUFFIX:
        x2 = x2.astype(np.int64)
    x2 = np.ascontiguousarray(x2)
    state = state or _new_state(cell, fire, shape, batch, columns)
    p = state.params
    h = np.empty((steps, columns), np.int32)
    s = np.empty((steps, columns), np.uint8) if fire is not None else None
    threshold, strict = (p["threshold"].ctypes.data, int(fire.strict)) if fire is not None else (None, 0)
    if isinstance(cell, QLeaky):
        mode = 0 if cell.mode == "int12" else 1
        rest = (state.v.ctypes.data, p["amount"].ctypes.data, mode, cell.shift, cell.width, threshold, strict, _RESETS[fire.reset] if fire is not None else 0)
        sats.count += _call("leaky", x2, h, s, rest)
    else:
        narrow = max(_max_abs(x2), _max_abs(state.history)) < p["int32_below"]  # every sum fits int32
        rest = (state.history.ctypes.data, p["taps"].ctypes.data, p["bias"].ctypes.data, cell.order, cell.dilation, cell.width, threshold, strict, int(cell.taps.shape[0] == 1), int(narrow))
        sats.count += _call("delay_line", x2, h, s, rest)
        reach = state.history.shape[0]
        if reach:  # the last `reach` inputs, for the next chunk
            state.history = x2[-reach:].astype(np.int64) if steps >= reach else np.concatenate([state.history[steps:], x2.astype(np.int64)])
    out = h.reshape(x.shape)
    return out, (s.reshape(x.shape) if s is not None else out), state


def _max_abs(a: np.ndarray) -> float:
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


def _threads(elements: int, columns: int) -> list[tuple[int, int]]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return native.column_ranges(columns, max(1, min(cpus, elements // _MIN_ELEMENTS_PER_THREAD)))


def _call(name: str, x2: np.ndarray, h: np.ndarray, s: np.ndarray | None, rest: tuple) -> int:
    """Run kernel `name` over the columns in threads; the saturation events it counted."""
    fn = getattr(_LIBRARY.get(), f"{name}_{_SUFFIX[x2.dtype]}")
    steps, columns = x2.shape
    ranges = _threads(x2.size, columns)
    counts = [0] * len(ranges)
    pointers = (x2.ctypes.data, h.ctypes.data, None if s is None else s.ctypes.data, steps, columns)

    def call(i):
        counts[i] = fn(*pointers, *ranges[i], *rest)

    native.run_ranges(call, len(ranges))
    if min(counts, default=0) < 0:
        raise MemoryError(f"native integer kernel {name}: out of memory")
    return sum(counts)
