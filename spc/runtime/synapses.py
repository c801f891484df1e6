"""Synaptic layers in numpy, applied to every time step of a chunk at once ([t·B, ...]).

Written for any numeric dtype: the float and the integer simulator share them. Integer products
are summed by float BLAS and converted back to integers, which is exact because every partial sum is
an integer below the float's 2^24 (float32) or 2^53 (float64) mantissa limit: float32 is used when
max|x| · max_row Σ|w| < 2^24 holds for the chunk, float64 otherwise. The sums come back as int32
where that bound plus the bias stays below 2^31 (docs/integer-spec.md bounds every sum so), else
int64. An op's weights are converted to the dtype a product needs once, not on every chunk.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from spc.compiler import ir

_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(op: ir.Op, key, make):
    """make(), computed once per op and key (ops are immutable)."""
    per_op = _converted.setdefault(op, {})
    if key not in per_op:
        per_op[key] = make()
    return per_op[key]


def _as(op: ir.Op, field: str, dtype) -> np.ndarray:
    """The op's array `field` in `dtype` (a view when it already is)."""
    return _cached(op, (field, np.dtype(dtype)), lambda: getattr(op, field).astype(dtype, copy=False))


def _max_abs(x: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    return float(x.max()) if x.dtype.kind in "ub" else max(float(x.max()), -float(x.min()))


def windows(x: np.ndarray, kernel, stride, padding, dilation, fill) -> np.ndarray:
    """[N, C, *out, *kernel] views of the padded input, one window per output position (applied
    to the inputs' indices, it says which input each tap of each window reads)."""
    dims = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=fill)
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    win = sliding_window_view(xp, spans, axis=tuple(range(2, 2 + dims)))
    pick = (slice(None),) * 2 + tuple(slice(None, None, s) for s in stride) + tuple(slice(None, None, d) for d in dilation)
    return win[pick]


def _exactly(fn, x: np.ndarray, op: ir.Op, weight_as) -> np.ndarray:
    """fn(x, weight_as(dtype)) plus op's bias: for float x in x's dtype; for integer x, in the
    narrowest float type that holds every sum exactly (see the module's docstring), then as int32 or
    int64. `weight_as(dtype)` gives op's weight laid out for fn."""
    if x.dtype.kind not in "iub":
        y = fn(x, weight_as(x.dtype))
        return y if op.bias is None else _add_bias(y, _as(op, "bias", x.dtype))
    rows = _cached(op, "row_sums", lambda: float(np.abs(op.weight.reshape(op.weight.shape[0], -1)).sum(axis=1).max(initial=0)))
    bound = _max_abs(x) * rows
    exact = np.float32 if bound < 2**24 else np.float64
    y = fn(x.astype(exact), weight_as(exact))
    biggest_bias = _cached(op, "bias_max", lambda: 0.0 if op.bias is None else float(np.abs(op.bias).max(initial=0)))
    out = np.int32 if bound + biggest_bias < 2**31 else np.int64
    y = y.astype(out)  # exact integers already: no rounding needed
    return y if op.bias is None else _add_bias(y, _as(op, "bias", out))


def _add_bias(y: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y += bias per output channel (channels on axis 1), in place."""
    y += bias.reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def conv(x: np.ndarray, op: ir.Conv) -> np.ndarray:
    """A grouped convolution as one batched matrix product per group (im2col): the windows laid
    out as rows [g, N·positions, C/g·kernel] times the weight [g, C/g·kernel, O/g], so BLAS does
    the sums (an einsum over the window view runs in numpy's own loops, ~100× slower)."""
    n, c = x.shape[:2]
    out_ch, groups = op.weight.shape[0], op.groups
    kernel = op.weight.shape[2:]
    dims = len(kernel)
    win = windows(x, kernel, op.stride, op.padding, op.dilation, 0)  # [N, C, *out, *kernel]
    spatial = win.shape[2 : 2 + dims]
    positions, taps = math.prod(spatial), (c // groups) * math.prod(kernel)
    win = win.reshape((n, groups, c // groups) + spatial + kernel)
    to_rows = (1, 0) + tuple(range(3, 3 + dims)) + (2,) + tuple(range(3 + dims, 3 + 2 * dims))  # [g, N, *out, C/g, *kernel]
    to_output = (1, 0, 2 + dims) + tuple(range(2, 2 + dims))  # [g, N, *out, O/g] -> [N, g, O/g, *out]

    def product(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(a.transpose(to_rows)).reshape(groups, n * positions, taps)
        y = np.matmul(rows, w).reshape((groups, n) + spatial + (out_ch // groups,))
        return np.ascontiguousarray(y.transpose(to_output)).reshape((n, out_ch) + spatial)

    def weight_as(dtype) -> np.ndarray:  # [g, C/g·kernel, O/g]
        return _cached(op, ("im2col", np.dtype(dtype)), lambda: np.ascontiguousarray(op.weight.reshape(groups, out_ch // groups, taps).transpose(0, 2, 1).astype(dtype)))

    return _exactly(product, win, op, weight_as)


def avg_pool2d(x: np.ndarray, op: ir.AvgPool2d) -> np.ndarray:
    win = windows(x, op.kernel, op.stride, op.padding, (1, 1), 0)
    total = win.sum(axis=(-2, -1))
    if op.count_include_pad or not any(op.padding):
        return total / (op.kernel[0] * op.kernel[1])
    counts = windows(np.ones((1, 1) + x.shape[2:]), op.kernel, op.stride, op.padding, (1, 1), 0).sum(axis=(-2, -1))
    return total / counts


def sum_pool2d(x: np.ndarray, op: ir.SumPool2d) -> np.ndarray:
    return windows(x, op.kernel, op.stride, op.padding, (1, 1), 0).sum(axis=(-2, -1))


def max_pool2d(x: np.ndarray, op: ir.MaxPool2d) -> np.ndarray:
    lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    return windows(x, op.kernel, op.stride, op.padding, op.dilation, lowest).max(axis=(-2, -1))


def _integers(inputs: list[np.ndarray]):
    """int64 for an elementwise op on integers (two int32 sums may not fit int32, uint8 spikes no
    negative value), else None: numpy's own promotion of floats."""
    return np.int64 if all(a.dtype.kind in "iub" for a in inputs) else None


def synapse(op: ir.Op, inputs: list[np.ndarray]) -> np.ndarray:
    """Apply a synaptic op to time-major inputs [T, B, ...]."""
    x = inputs[0]
    steps, batch = x.shape[:2]
    folded = x.reshape((steps * batch,) + x.shape[2:])
    if isinstance(op, ir.Linear):
        y = _exactly(np.matmul, folded, op, lambda dtype: _as(op, "weight", dtype).T)
    elif isinstance(op, ir.Conv):
        y = conv(folded, op)
    elif isinstance(op, ir.AvgPool2d):
        y = avg_pool2d(folded, op)
    elif isinstance(op, ir.SumPool2d):
        y = sum_pool2d(folded, op)
    elif isinstance(op, ir.MaxPool2d):
        y = max_pool2d(folded, op)
    elif isinstance(op, ir.Reshape):
        y = folded.reshape((steps * batch,) + tuple(op.shape))
    elif isinstance(op, ir.ScaleShift):
        shape = x.shape[2:]
        dtype = np.int64 if x.dtype.kind in "iub" else x.dtype  # integers in int64: spikes arrive as uint8
        y = folded.astype(dtype, copy=False) * ir.channel_view(op.scale.astype(dtype, copy=False), shape) + ir.channel_view(op.shift.astype(dtype, copy=False), shape)
    elif isinstance(op, ir.Add):
        return np.add(inputs[0], inputs[1], dtype=_integers(inputs))
    elif isinstance(op, ir.Mul):
        return np.multiply(inputs[0], inputs[1], dtype=_integers(inputs))
    elif isinstance(op, ir.Quantize):
        low, high = op.limits
        narrowest = next(t for t in (np.int8, np.int16, np.int32, np.int64) if np.iinfo(t).min <= low and high <= np.iinfo(t).max)
        return np.clip(np.rint(x / op.scale), low, high).astype(narrowest)
    elif isinstance(op, ir.Dequantize):
        return x * ir.channel_view(op.scale, x.shape[2:])
    else:
        raise TypeError(f"not a synaptic operation: {op.kind}")
    return y.reshape((steps, batch) + y.shape[1:])
