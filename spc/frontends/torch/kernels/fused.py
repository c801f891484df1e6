"""Autograd functions over the native CPU kernels (`native.c`): an FIR, a chain of leaky stages and
LIF with reset, each fused with its firing rule and surrogate gradient.

Memory: the FIR and the chain keep only their input for the backward pass and recompute the
membrane there; LIF, whose reset makes the membrane impossible to rebuild backwards in time, keeps
its membrane [T, M]. The epilogue is `firing.Spikes` or None (the membrane itself is the output).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from spc.frontends.torch.kernels import native
from spc.frontends.torch.kernels.buffers import empty, rows


def _contiguous_rows(x: torch.Tensor) -> torch.Tensor:
    return rows(x).contiguous()


def _mode(epilogue) -> tuple[int, float, float]:
    """(mode, threshold, alpha) of native.c: 0 the membrane, 1 h >= θ, 2 h > θ."""
    if epilogue is None:
        return 0, 0.0, 2.0
    return (2 if epilogue.strict else 1), epilogue.threshold, epilogue.alpha


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
        out = empty(x2.shape, x2)
        native.run("fir_forward", [x2, out], lambda i: (w.data_ptr(), w.shape[0], b, mode, threshold))
        ctx.save_for_backward(x2, w)
        ctx.bias, ctx.epilogue, ctx.shape = b, epilogue, x.shape
        return out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, w = ctx.saved_tensors
        mode, threshold, alpha = _mode(ctx.epilogue)
        g2, gx = _contiguous_rows(grad), empty(x2.shape, x2)
        sums = torch.zeros(len(native.column_ranges(x2.shape[1])), w.shape[0] + 1, dtype=torch.float64)
        native.run("fir_backward", [x2, g2, gx], lambda i: (w.data_ptr(), w.shape[0], ctx.bias, mode, threshold, alpha, sums[i].data_ptr()))
        sums = sums.sum(0).to(w.dtype)
        gbias = sums[-1] if ctx.needs_input_grad[2] else None
        return gx.view(ctx.shape), sums[:-1], gbias, None


class _Chain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decays, gains, epilogue):
        x2 = _contiguous_rows(x)
        mode, threshold, _ = _mode(epilogue)
        coefficients = torch.tensor([decays, gains], dtype=torch.float64)
        out = empty(x2.shape, x2)
        native.run("chain_forward", [x2, out], lambda i: (coefficients[0].data_ptr(), coefficients[1].data_ptr(), len(decays), mode, threshold))
        ctx.save_for_backward(x2 if epilogue is not None else None, coefficients)
        ctx.epilogue, ctx.shape = epilogue, x.shape
        return out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, coefficients = ctx.saved_tensors
        mode, threshold, alpha = _mode(ctx.epilogue)
        g2 = _contiguous_rows(grad)
        gx = empty(g2.shape, g2)
        x2 = g2 if x2 is None else x2  # mode 0 never reads x
        native.run("chain_backward", [x2, g2, gx], lambda i: (coefficients[0].data_ptr(), coefficients[1].data_ptr(), coefficients.shape[1], mode, threshold, alpha))
        return gx.view(ctx.shape), None, None, None


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay, gain, threshold, reset, alpha):
        x2 = _contiguous_rows(x)
        out, h = empty(x2.shape, x2), empty(x2.shape, x2)
        subtract = {"zero": 0, "subtract": 1}[reset]
        native.run("lif_forward", [x2, out, h], lambda i: (decay, gain, threshold, subtract))
        ctx.save_for_backward(h)
        ctx.args, ctx.shape = (decay, gain, threshold, subtract, alpha), x.shape
        membrane = h.view(x.shape)
        ctx.mark_non_differentiable(membrane)
        return membrane, out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, _, grad):
        (h,) = ctx.saved_tensors
        g2, gx = _contiguous_rows(grad), empty(h.shape, h)
        native.run("lif_backward", [h, g2, gx], lambda i: ctx.args)
        return gx.view(ctx.shape), None, None, None, None, None
