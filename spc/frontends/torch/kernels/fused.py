"""Autograd functions over the native CPU kernels (`native.c`): an FIR, a chain of leaky stages,
LIF with reset, a per-channel dilated FIR (and the moments of its output), DSN's gated leaky
membrane, PRF's resonator, MPE-PSN's randomly gated estimate and PSU's two integrators with sigmoid
feedback, each fused with its firing rule and surrogate gradient.

Memory: the filters keep only their input for the backward pass and recompute the membrane there;
LIF, whose reset makes the membrane impossible to rebuild backwards in time, keeps its membrane
[T, M]. MPE-PSN keeps x and the key of its draws (the backward kernel draws the gate again); PSU
keeps x and its states every PSU_CHECKPOINT steps, from which the backward kernel reruns each tile
of steps while it is in cache. The epilogue is `firing.Spikes` or None (the membrane itself is the output).

The per-channel kernels take x [T, B, C, *space] and per-channel coefficients [count, C]; their
parameter gradients come back per thread in float64 and are summed here.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from spc.frontends.torch.kernels import native
from spc.frontends.torch.kernels.buffers import empty, rows


def _contiguous_rows(x: torch.Tensor) -> torch.Tensor:
    return rows(x).contiguous()


def _output(shape, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh tensor of `shape` and its [T, M] rows, for a kernel to fill. The tensor itself, not a
    view of the rows, is what a backward pass returns: autograd adds later gradients into a tensor
    it holds the only reference to in place, instead of into a fresh sum."""
    out = empty(shape, like)
    return out, rows(out)


_MOMENTS = 3  # native.c's per-channel FIR mode that sums h and h² per channel instead of writing h


def _mode(epilogue) -> tuple[int, float, float]:
    """(mode, threshold, alpha) of native.c: 0 the membrane, 1 h >= θ, 2 h > θ."""
    if epilogue is None:
        return 0, 0.0, 2.0
    return (2 if epilogue.strict else 1), epilogue.threshold, epilogue.alpha


def _layout(x: torch.Tensor) -> tuple[int, int]:
    """(C, inner) of x [T, B, C, *space]: column m of its rows is channel (m // inner) % C."""
    return x.shape[2], math.prod(x.shape[3:])


def _coefficients(*rows: torch.Tensor) -> torch.Tensor:
    """Per-channel coefficient rows [C] (or [C, n], n rows) as one contiguous [count, C] array."""
    return torch.cat([r.detach().view(1, -1) if r.dim() == 1 else r.detach().t() for r in rows]).contiguous()


def _channel_sums(x2: torch.Tensor, count: int, channels: int) -> torch.Tensor:
    """Zeroed float64 [threads, count, C]: a row of per-channel sums for each column range."""
    return torch.zeros(len(native.column_ranges(x2.shape[1])), count, channels, dtype=torch.float64)


def fir(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None = None, epilogue=None) -> torch.Tensor:
    """h[t] = Σ_i taps[i]·x[t−k+1+i] + bias (zeros before t = 0), then the epilogue."""
    return _FIR.apply(x, taps, bias, epilogue)


def chain(x: torch.Tensor, decays: tuple[float, ...], gains: tuple[float, ...], epilogue=None) -> torch.Tensor:
    """s_i[t] = decays[i]·s_i[t−1] + gains[i]·s_{i−1}[t] with s_{−1} = x; h = the last stage; then the epilogue."""
    return _Chain.apply(x, decays, gains, epilogue)


def lif(x: torch.Tensor, decay: float, gain: float, threshold: float, reset: str, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(membrane before reset, spikes) of h[t] = decay·v + gain·x[t], fired at h >= threshold,
    reset "zero" or "subtract"; differentiable through the spikes."""
    return _LIF.apply(x, decay, gain, threshold, reset, alpha)


class _FIR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, bias, epilogue):
        x2, w = _contiguous_rows(x), taps.detach().contiguous()
        mode, threshold, _ = _mode(epilogue)
        b = 0.0 if bias is None else float(bias.detach())
        out, out2 = _output(x.shape, x2)
        native.run("fir_forward", [x2, out2], lambda i: (w.data_ptr(), w.shape[0], b, mode, threshold))
        ctx.save_for_backward(x2, w)
        ctx.bias, ctx.epilogue, ctx.shape = b, epilogue, x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, w = ctx.saved_tensors
        mode, threshold, alpha = _mode(ctx.epilogue)
        g2, (gx, gx2) = _contiguous_rows(grad), _output(ctx.shape, x2)
        sums = torch.zeros(len(native.column_ranges(x2.shape[1])), w.shape[0] + 1, dtype=torch.float64)
        native.run("fir_backward", [x2, g2, gx2], lambda i: (w.data_ptr(), w.shape[0], ctx.bias, mode, threshold, alpha, sums[i].data_ptr()))
        sums = sums.sum(0).to(w.dtype)
        gbias = sums[-1] if ctx.needs_input_grad[2] else None
        return gx, sums[:-1], gbias, None


class _Chain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decays, gains, epilogue):
        x2 = _contiguous_rows(x)
        mode, threshold, _ = _mode(epilogue)
        coefficients = torch.tensor([decays, gains], dtype=torch.float64)
        out, out2 = _output(x.shape, x2)
        native.run("chain_forward", [x2, out2], lambda i: (coefficients[0].data_ptr(), coefficients[1].data_ptr(), len(decays), mode, threshold))
        ctx.save_for_backward(x2 if epilogue is not None else None, coefficients)
        ctx.epilogue, ctx.shape = epilogue, x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, coefficients = ctx.saved_tensors
        mode, threshold, alpha = _mode(ctx.epilogue)
        g2 = _contiguous_rows(grad)
        gx, gx2 = _output(ctx.shape, g2)
        x2 = g2 if x2 is None else x2  # mode 0 never reads x
        native.run("chain_backward", [x2, g2, gx2], lambda i: (coefficients[0].data_ptr(), coefficients[1].data_ptr(), coefficients.shape[1], mode, threshold, alpha))
        return gx, None, None, None


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay, gain, threshold, reset, alpha):
        x2 = _contiguous_rows(x)
        (out, out2), (membrane, h) = _output(x.shape, x2), _output(x.shape, x2)
        subtract = {"zero": 0, "subtract": 1}[reset]
        native.run("lif_forward", [x2, out2, h], lambda i: (decay, gain, threshold, subtract))
        ctx.save_for_backward(membrane)
        ctx.args, ctx.shape = (decay, gain, threshold, subtract, alpha), x.shape
        ctx.mark_non_differentiable(membrane)
        return membrane, out

    @staticmethod
    @once_differentiable
    def backward(ctx, _, grad):
        h = rows(ctx.saved_tensors[0])
        g2, (gx, gx2) = _contiguous_rows(grad), _output(ctx.shape, h)
        native.run("lif_backward", [h, g2, gx2], lambda i: ctx.args)
        return gx, None, None, None, None, None


def channel_fir(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None, dilation: int, epilogue=None) -> torch.Tensor:
    """h[t, :, c] = Σ_i taps[c, i]·x[t − (k−1−i)·dilation, :, c] + bias[c] for x [T, B, C, *space]
    (taps [C, k], bias [C] or None; zeros before t = 0), then the epilogue."""
    return _ChannelFIR.apply(x, taps, bias, dilation, epilogue)


def channel_moments(x: torch.Tensor, taps: torch.Tensor, dilation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, the mean and the (biased) variance of channel_fir(x, taps, None, dilation) over
    time, batch and space, summed in float64 without keeping the filter's output."""
    return _ChannelMoments.apply(x, taps, dilation)


def gated(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, epilogue=None) -> torch.Tensor:
    """DSN's membrane h[t] = a·h[t−1] + (1−a)·x[t], a = σ(channel_fir(x, taps, bias, 1)), then the epilogue."""
    return _Gated.apply(x, taps, bias, epilogue)


def resonator(x: torch.Tensor, re: torch.Tensor, im: torch.Tensor, gain: torch.Tensor, epilogue=None) -> torch.Tensor:
    """PRF's membrane gain·Re s, s[t] = (re + i·im)·s[t−1] + x[t] per channel ([C] each), then the epilogue."""
    return _Resonator.apply(x, re, im, gain, epilogue)


def _forward_per_channel(ctx, kernel: str, x: torch.Tensor, coef: torch.Tensor, args: tuple, epilogue, tail: tuple = ()) -> torch.Tensor:
    """epilogue(h) of native.c's `kernel`_forward over x [T, B, C, *space] with per-channel
    coefficients coef [count, C]; `args` go between (C, inner) and the mode, `tail` after the
    threshold. Keeps x and coef for `_backward_per_channel`."""
    x2, (channels, inner) = _contiguous_rows(x), _layout(x)
    ctx.mode = _mode(epilogue)
    mode, threshold, _ = ctx.mode
    out, out2 = _output(x.shape, x2)
    native.run(f"{kernel}_forward", [x2, out2], lambda i: (coef.data_ptr(), channels, inner, *args, mode, threshold, *tail))
    ctx.save_for_backward(x2, coef)
    ctx.kernel, ctx.args, ctx.shape = kernel, (channels, inner, *args), x.shape
    return out


def _backward_per_channel(ctx, grad: torch.Tensor, count: int, middle: tuple = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """(gx, the per-channel sums [count, C] in x's dtype) of `ctx.kernel`_backward; `middle` goes
    between the surrogate's alpha and the sums."""
    x2, coef = ctx.saved_tensors
    g2, (gx, gx2) = _contiguous_rows(grad), _output(ctx.shape, x2)
    sums = _channel_sums(x2, count, coef.shape[1])
    native.run(f"{ctx.kernel}_backward", [x2, g2, gx2], lambda i: (coef.data_ptr(), *ctx.args, *ctx.mode, *middle, sums[i].data_ptr()))
    return gx, sums.sum(0).to(x2.dtype)


class _ChannelFIR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, bias, dilation, epilogue):
        coef = _coefficients(taps, bias if bias is not None else taps.new_zeros(taps.shape[0]))
        return _forward_per_channel(ctx, "cfir", x, coef, (taps.shape[1], dilation), epilogue, tail=(None,))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        k = ctx.args[2]
        gx, sums = _backward_per_channel(ctx, grad, k + 1, middle=(None,))
        return gx, sums[:k].t(), sums[k] if ctx.needs_input_grad[2] else None, None, None


class _ChannelMoments(torch.autograd.Function):
    """Forward: Σh and Σh² per channel in float64, h never written. Backward: the gradient reaching
    h is gmean/n + 2·gvar/n·(h − mean), with h recomputed in the FIR's backward kernel."""

    @staticmethod
    def forward(ctx, x, taps, dilation):
        x2, (channels, inner) = _contiguous_rows(x), _layout(x)
        coef = _coefficients(taps, taps.new_zeros(channels))
        sums = _channel_sums(x2, 2, channels)
        native.run("cfir_forward", [x2, x2], lambda i: (coef.data_ptr(), channels, inner, taps.shape[1], dilation, _MOMENTS, 0.0, sums[i].data_ptr()))
        total, squares = sums.sum(0)
        n = x2.numel() // channels
        mean = total / n
        ctx.save_for_backward(x2, coef)
        ctx.kernel, ctx.args, ctx.mode, ctx.shape = "cfir", (channels, inner, taps.shape[1], dilation), (_MOMENTS, 0.0, 0.0), x.shape
        ctx.mean, ctx.n = mean.to(x.dtype), n
        return mean.to(x.dtype), (squares / n - mean * mean).clamp_min(0).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, gmean, gvar):
        q = torch.stack([gmean / ctx.n, 2 * gvar / ctx.n, ctx.mean]).contiguous()
        x = ctx.saved_tensors[0]  # in place of a gradient of h, which the kernel does not read
        gx, sums = _backward_per_channel(ctx, x, ctx.args[2] + 1, middle=(q.data_ptr(),))
        return gx, sums[: ctx.args[2]].t(), None


class _Gated(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, bias, epilogue):
        return _forward_per_channel(ctx, "dsn", x, _coefficients(taps, bias), (taps.shape[1],), epilogue)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        k = ctx.args[2]
        gx, sums = _backward_per_channel(ctx, grad, k + 1)
        return gx, sums[:k].t(), sums[k], None


class _Resonator(torch.autograd.Function):
    """Backward: the kernel sums gh·Re w, gh·Im w and gh·Re s per channel (w = ∂s/∂A, see native.c),
    which times gain, −gain and 1 are the gradients of re, im and gain."""

    @staticmethod
    def forward(ctx, x, re, im, gain, epilogue):
        return _forward_per_channel(ctx, "resonator", x, _coefficients(re, im, gain), (), epilogue)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        gx, (by_re, by_im, g_gain) = _backward_per_channel(ctx, grad, 3)
        gain = ctx.saved_tensors[1][2]
        return gx, gain * by_re, -gain * by_im, g_gain, None


PSU_CHECKPOINT = 64  # steps between PSU's saved states: 2/64 of x kept, tiles of 64 steps rerun


def mpe(x: torch.Tensor, threshold: torch.Tensor, late: bool, tau: float, key: tuple[int, int], alpha: float, fire: bool = True) -> torch.Tensor:
    """MPE-PSN's training form: h = x + tau·(1 − b)·x (one step late when `late`), the gate
    b = u < σ(x) drawn with native.c's hash of the element index under `key`; spikes h > threshold
    (a 0-dim tensor, learned) with the ATan surrogate, or h itself when not `fire`."""
    return _MPE.apply(x, threshold, late, tau, key, alpha, fire)


def psu(x: torch.Tensor, tau: float, theta: float, epilogue=None) -> torch.Tensor:
    """PSU's membrane V = d + r, d[t] = (d[t−1] + x[t])/τ, r[t] = (r[t−1] − θ·σ(d[t−1]))/τ, then the epilogue."""
    return _PSU.apply(x, tau, theta, epilogue)


def _run_forward(kernel: str, x: torch.Tensor, rest) -> tuple[torch.Tensor, torch.Tensor]:
    """(x's contiguous rows, the output) of native.c's `kernel`_forward, `rest(i)` its trailing arguments."""
    x2 = _contiguous_rows(x)
    out, out2 = _output(x.shape, x2)
    native.run(f"{kernel}_forward", [x2, out2], rest)
    return x2, out


def _run_backward(kernel: str, x2: torch.Tensor, grad: torch.Tensor, shape, rest) -> torch.Tensor:
    """gx of native.c's `kernel`_backward on the saved rows x2 and the output's gradient."""
    g2, (gx, gx2) = _contiguous_rows(grad), _output(shape, x2)
    native.run(f"{kernel}_backward", [x2, g2, gx2], rest)
    return gx


class _MPE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, late, tau, key, alpha, fire):
        mode, th = (2, float(threshold)) if fire else (0, 0.0)
        ctx.args = (0 if late else 1, tau, *key, mode, th, alpha)
        x2, out = _run_forward("mpe", x, lambda i: ctx.args[:-1])
        ctx.save_for_backward(x2)
        ctx.shape = x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x2,) = ctx.saved_tensors
        sums = torch.zeros(len(native.column_ranges(x2.shape[1])), dtype=torch.float64)
        gx = _run_backward("mpe", x2, grad, ctx.shape, lambda i: (*ctx.args, sums[i].data_ptr()))
        gth = sums.sum().to(x2.dtype) if ctx.args[4] else None  # the membrane does not depend on θ
        return gx, gth, None, None, None, None, None


class _PSU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, tau, theta, epilogue):
        mode, threshold, ctx.alpha = _mode(epilogue)
        checkpoints = x.new_empty(-(-x.shape[0] // PSU_CHECKPOINT), 2, math.prod(x.shape[1:]))
        ctx.args = (PSU_CHECKPOINT, 1.0 / tau, theta, mode, threshold)
        x2, out = _run_forward("psu", x, lambda i: (checkpoints.data_ptr(), *ctx.args))
        ctx.save_for_backward(x2, checkpoints)
        ctx.shape = x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, checkpoints = ctx.saved_tensors
        gx = _run_backward("psu", x2, grad, ctx.shape, lambda i: (checkpoints.data_ptr(), *ctx.args, ctx.alpha))
        return gx, None, None, None
