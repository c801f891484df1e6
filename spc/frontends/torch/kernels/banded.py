"""Banded scan: h = W x + b along time, for a W that is zero outside its lower band of width S+1
(row t reads x[t−S .. t]): an FIR (the same k = S+1 taps at every step, SlidingPSN) or a
time-indexed T×T matrix (MaskedPSN once λ >= 1).

Cut into chunks of C >= S steps, chunk [c0, c1) is one GEMM of the rows W[c0:c1, c0−S:c1] with
the window x[c0−S:c1] — T·(C+S)·M multiply-adds for x [T, M] instead of T²·M, and no state to
carry, because the state of a band is the last S inputs themselves. The chunk's membrane stays in
a [C, M] buffer while the epilogue (`firing.Spikes`) turns it into spikes; only x is saved.

Backward, from the last chunk to the first: recompute the chunk's membrane, gh = epilogue'·g, kept
in a window buffer together with the first S rows of the chunk after it, then
gx[c0:c1] = W[c0:c1+S, c0:c1]ᵀ gh[c0:c1+S] (one GEMM) and dW[c0:c1, c0−S:c1] += gh x_windowᵀ.

An FIR is handled as the same band of a virtual T×T matrix: `toeplitz_weight` lays its taps out as a
small [C+2S, C+2S] band that every chunk reads at its own origin (c0 − S), so the GEMMs and their
gradient are the same code; autograd maps that band's gradient back to the k taps.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch.autograd.function import once_differentiable

from spc.frontends.torch.kernels.buffers import empty, rows


def band_scan(x: torch.Tensor, weight: torch.Tensor, width: int, chunk: int, bias=None, epilogue=None, toeplitz: bool = False) -> torch.Tensor:
    """The band's membrane (epilogue None) or epilogue(membrane), x [T, ...] time-major.

    weight: [T', T'] with T' >= T, or with `toeplitz` the [C+2S, C+2S] band of `toeplitz_weight`.
    bias: None, a scalar tensor, or [T'] (one value per step)."""
    if chunk < width - 1:
        raise ValueError(f"chunk {chunk} must cover the band's state of {width - 1} steps")
    return _BandScan.apply(x, bias, weight, _Geometry(x.shape[0], width - 1, chunk, toeplitz), epilogue)


def toeplitz_weight(taps: torch.Tensor, chunk: int) -> torch.Tensor:
    """The band [C+2S, C+2S] with W[p, q] = taps[q − p + S] for 0 <= p − q <= S (differentiable)."""
    k = taps.shape[0]
    padded = torch.cat([taps, taps.new_zeros(1)])  # index k reads zero
    return padded[_toeplitz_index(k, chunk, taps.device)]


@lru_cache(maxsize=64)
def _toeplitz_index(k: int, chunk: int, device: torch.device) -> torch.Tensor:
    size = chunk + 2 * (k - 1)
    lag = torch.arange(size, device=device)[:, None] - torch.arange(size, device=device)[None, :]
    return torch.where((lag >= 0) & (lag < k), k - 1 - lag, k)


class _Geometry:
    """Chunks and where each reads the weight: global coordinates, or for a Toeplitz band the
    coordinates relative to c0 − S."""

    def __init__(self, steps: int, states: int, chunk: int, toeplitz: bool):
        self.steps, self.states, self.chunk, self.toeplitz = steps, states, chunk, toeplitz
        self.chunks = [(c0, min(c0 + chunk, steps)) for c0 in range(0, steps, chunk)]

    def block(self, weight, c0: int, rows: tuple[int, int], cols: tuple[int, int]):
        o = c0 - self.states if self.toeplitz else 0
        return weight[rows[0] - o : rows[1] - o, cols[0] - o : cols[1] - o]

    def window(self, c0: int) -> int:
        """The first input row chunk c0 reads."""
        return max(0, c0 - self.states)

    def membrane_into(self, h, weight, x2, bias, c0: int, c1: int):
        lo = self.window(c0)
        torch.mm(self.block(weight, c0, (c0, c1), (lo, c1)), x2[lo:c1], out=h)
        if bias is not None:
            h.add_(bias if bias.dim() == 0 else bias[c0:c1, None])
        return h


class _BandScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias, weight, geo: _Geometry, epilogue):
        x2 = rows(x)
        out = empty(x2.shape, x2)
        buf = None if epilogue is None else x2.new_empty(min(geo.chunk, geo.steps), x2.shape[1])
        for c0, c1 in geo.chunks:
            h = geo.membrane_into(out[c0:c1] if buf is None else buf[: c1 - c0], weight, x2, bias, c0, c1)
            if buf is not None:
                epilogue.forward_into(h, out[c0:c1])
        needs_x = epilogue is not None or ctx.needs_input_grad[2]
        ctx.save_for_backward(x2 if needs_x else None, bias, weight)
        ctx.geo, ctx.epilogue, ctx.shape = geo, epilogue, x.shape
        return out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, bias, weight = ctx.saved_tensors
        geo, epilogue, S = ctx.geo, ctx.epilogue, ctx.geo.states
        g2 = rows(grad)
        gx = empty(g2.shape, g2) if ctx.needs_input_grad[0] else None
        gbias = torch.zeros_like(bias) if ctx.needs_input_grad[1] else None
        gweight = torch.zeros_like(weight) if ctx.needs_input_grad[2] else None
        # with an epilogue, gh is computed chunk by chunk: the chunk's rows, then the S rows after it
        win = None if epilogue is None else g2.new_zeros(min(geo.chunk, geo.steps) + S, g2.shape[1])
        for c0, c1 in reversed(geo.chunks):
            hi = min(geo.steps, c1 + S)
            if win is None:
                gh, gh_ahead = g2[c0:c1], g2[c0:hi]
            else:
                h = geo.membrane_into(win[: c1 - c0], weight, x2, bias, c0, c1)
                gh, gh_ahead = epilogue.backward_(h, g2[c0:c1]), win[: hi - c0]
            if gx is not None:
                torch.mm(geo.block(weight, c0, (c0, hi), (c0, c1)).t(), gh_ahead, out=gx[c0:c1])
            if gweight is not None:
                lo = geo.window(c0)
                geo.block(gweight, c0, (c0, c1), (lo, c1)).addmm_(gh, x2[lo:c1].t())
            if gbias is not None and gbias.dim() == 0:
                gbias.add_(gh.sum())
            elif gbias is not None:
                gbias[c0:c1].add_(gh.sum(1))
            if win is not None and c0 > 0:  # the chunk before reads gh[c0 : c0+S]
                ahead = min(S, hi - c0)
                win[geo.chunk : geo.chunk + ahead].copy_(win[:ahead])
        return (None if gx is None else gx.view(ctx.shape)), gbias, gweight, None, None
