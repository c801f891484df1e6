"""Synaptic layers in numpy, applied to every time step of a chunk at once ([t·B, ...]).

Written for any numeric dtype: the float and the integer simulator share them. Integer products
are summed by float BLAS and converted back to int64, which is exact because every partial sum is
an integer below the float's 2^24 (float32) or 2^53 (float64) mantissa limit: float32 is used when
max|x| · max_row Σ|w| < 2^24 holds for the chunk, float64 otherwise (docs/integer-spec.md bounds
every sum below 2^31).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from spc.compiler import ir


def _windows(x: np.ndarray, kernel, stride, padding, dilation, fill) -> np.ndarray:
    """[N, C, *out, *kernel] views of the padded input, one window per output position."""
    dims = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=fill)
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    win = sliding_window_view(xp, spans, axis=tuple(range(2, 2 + dims)))
    pick = (slice(None),) * 2 + tuple(slice(None, None, s) for s in stride) + tuple(slice(None, None, d) for d in dilation)
    return win[pick]


def _exactly(fn, x: np.ndarray, w: np.ndarray, reduced_axes: tuple[int, ...]):
    """fn(x, w) for float arrays; for integer arrays, computed in the narrowest float type that
    holds every sum exactly (w's `reduced_axes` are the ones summed over), then back to int64."""
    if x.dtype.kind not in "iu":
        return fn(x, w)
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(axis=reduced_axes).max(initial=0))
    dtype = np.float32 if bound < 2**24 else np.float64
    return np.rint(fn(x.astype(dtype), w.astype(dtype))).astype(np.int64)


def conv(x: np.ndarray, op: ir.Conv) -> np.ndarray:
    n, c = x.shape[:2]
    out_ch, groups = op.weight.shape[0], op.groups
    kernel = op.weight.shape[2:]
    win = _windows(x, kernel, op.stride, op.padding, op.dilation, 0)
    spatial = win.shape[2 : 2 + len(kernel)]
    win = win.reshape((n, groups, c // groups) + spatial + kernel)
    w = op.weight.astype(x.dtype, copy=False).reshape((groups, out_ch // groups, c // groups) + kernel)
    spec = "ngcLk,gock->ngoL" if len(kernel) == 1 else "ngcHWkl,gockl->ngoHW"
    y = _exactly(lambda a, b: np.einsum(spec, a, b, optimize=True), win, w, tuple(range(2, w.ndim))).reshape((n, out_ch) + spatial)
    if op.bias is not None:
        y = y + op.bias.astype(x.dtype, copy=False).reshape((-1,) + (1,) * len(kernel))
    return y


def avg_pool2d(x: np.ndarray, op: ir.AvgPool2d) -> np.ndarray:
    win = _windows(x, op.kernel, op.stride, op.padding, (1, 1), 0)
    total = win.sum(axis=(-2, -1))
    if op.count_include_pad or not any(op.padding):
        return total / (op.kernel[0] * op.kernel[1])
    counts = _windows(np.ones((1, 1) + x.shape[2:]), op.kernel, op.stride, op.padding, (1, 1), 0).sum(axis=(-2, -1))
    return total / counts


def sum_pool2d(x: np.ndarray, op: ir.SumPool2d) -> np.ndarray:
    return _windows(x, op.kernel, op.stride, op.padding, (1, 1), 0).sum(axis=(-2, -1))


def max_pool2d(x: np.ndarray, op: ir.MaxPool2d) -> np.ndarray:
    lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    return _windows(x, op.kernel, op.stride, op.padding, op.dilation, lowest).max(axis=(-2, -1))


def synapse(op: ir.Op, inputs: list[np.ndarray]) -> np.ndarray:
    """Apply a synaptic op to time-major inputs [T, B, ...]."""
    x = inputs[0]
    steps, batch = x.shape[:2]
    folded = x.reshape((steps * batch,) + x.shape[2:])
    if isinstance(op, ir.Linear):
        y = _exactly(np.matmul, folded, op.weight.astype(x.dtype, copy=False).T, (0,))
        if op.bias is not None:
            y = y + op.bias.astype(x.dtype, copy=False)
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
        y = folded * ir.channel_view(op.scale.astype(x.dtype, copy=False), shape) + ir.channel_view(op.shift.astype(x.dtype, copy=False), shape)
    elif isinstance(op, ir.Add):
        return inputs[0] + inputs[1]
    elif isinstance(op, ir.Mul):
        return inputs[0] * inputs[1]
    elif isinstance(op, ir.Quantize):
        return np.clip(np.rint(x / op.scale), *op.limits).astype(np.int64)
    elif isinstance(op, ir.Dequantize):
        return x * ir.channel_view(op.scale, x.shape[2:])
    else:
        raise TypeError(f"not a synaptic operation: {op.kind}")
    return y.reshape((steps, batch) + y.shape[1:])
