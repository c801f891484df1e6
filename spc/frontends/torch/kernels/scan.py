"""Chunked scan: a fixed causal linear recurrence along time as a short sequence of small GEMMs.

A recurrence s[t] = A s[t−1] + B x[t], h[t] = c·s[t] with a small state (one exponential, LI; two
in cascade, SPSN), cut into chunks of C steps, is

    h_c = K x_c + U s_c              x_c, h_c [C, M]; s_c [S, M], the state entering chunk c
    s_{c+1} = G x_c + F s_c          (zero before the first chunk)

with K [C, C] the impulse response as a lower-triangular Toeplitz matrix, U [C, S], G [S, C] and
F [S, S] the recurrence's powers — a chunked associative scan: T·(C+S)·M multiply-adds for x [T, M]
in T/C GEMMs, each M = batch × neurons columns wide, instead of a T×T kernel or an FFT. The chunk's
membrane stays in a [C, M] buffer while the epilogue (`firing.Spikes`) turns it into spikes.

Backward runs the adjoint scan from the last chunk, recomputing h_c from x_c and the saved state s_c
(S rows per chunk: S/C of x):

    gh_c = g_c · epilogue'(h_c),  gx_c = Kᵀ gh_c + Gᵀ λ_{c+1},  λ_c = Uᵀ gh_c + Fᵀ λ_{c+1}

`first_order_scan` is the time-varying first-order case h[t] = a[t]·h[t−1] + β[t] (DSN's torch
form), cut into chunks of L ≈ √T steps: first the recurrence runs inside every chunk at once from a
zero start (L vector steps over all chunks), keeping the running product of the chunk's decays; then
each chunk's start state is carried from the previous chunk's end and added times that product (T/L
vector steps). O(T) work, L + T/L sequential steps instead of T, and every factor is a product of
decays <= 1: nothing is divided by a tiny product (the flaw of the one-pass form h = P·cumsum(β/P)).
The backward pass is the same scan run backwards in time (the adjoint recurrence), so memory stays
O(T) per neuron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from spc.frontends.torch.kernels.buffers import empty, rows


@dataclass(frozen=True, eq=False)
class ChunkMatrices:
    K: torch.Tensor  # [C, C]
    U: torch.Tensor  # [C, S]
    G: torch.Tensor  # [S, C]
    F: torch.Tensor  # [S, S]

    @property
    def chunk(self) -> int:
        return self.K.shape[0]


def recurrent_scan(x: torch.Tensor, mats: ChunkMatrices, epilogue=None) -> torch.Tensor:
    """The recurrence's output h (epilogue None) or epilogue(h), for x [T, ...] time-major."""
    return _Scan.apply(x, mats, epilogue)


def _membrane_into(h, mats: ChunkMatrices, x_c, state):
    r = h.shape[0]  # a short last chunk uses the leading rows: its outputs depend on nothing later
    torch.mm(mats.K[:r, :r], x_c, out=h)
    if state is not None:
        h.addmm_(mats.U[:r], state)
    return h


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mats: ChunkMatrices, epilogue):
        steps, C = x.shape[0], mats.chunk
        x2 = rows(x)
        out = empty(x2.shape, x2)
        chunks = range(0, steps, C)
        states = x2.new_empty(len(chunks), mats.G.shape[0], x2.shape[1])  # states[c]: entering chunk c
        buf = None if epilogue is None else x2.new_empty(min(C, steps), x2.shape[1])
        for c, c0 in enumerate(chunks):
            c1 = min(c0 + C, steps)
            h = _membrane_into(out[c0:c1] if buf is None else buf[: c1 - c0], mats, x2[c0:c1], states[c] if c else None)
            if buf is not None:
                epilogue.forward_into(h, out[c0:c1])
            if c1 < steps:
                torch.mm(mats.G, x2[c0:c1], out=states[c + 1])
                if c:
                    states[c + 1].addmm_(mats.F, states[c])
        ctx.save_for_backward(x2 if epilogue is not None else None, states if epilogue is not None else None)
        ctx.mats, ctx.epilogue, ctx.shape = mats, epilogue, x.shape
        return out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, states = ctx.saved_tensors
        mats, epilogue, C = ctx.mats, ctx.epilogue, ctx.mats.chunk
        g2 = rows(grad)
        steps = g2.shape[0]
        gx = empty(g2.shape, g2)
        buf = None if epilogue is None else g2.new_empty(min(C, steps), g2.shape[1])
        lam = None  # λ_{c+1}: the gradient reaching the state that leaves chunk c
        for c in reversed(range(-(-steps // C))):
            c0, c1 = c * C, min(c * C + C, steps)
            r = c1 - c0
            gh = g2[c0:c1]
            if buf is not None:
                gh = epilogue.backward_(_membrane_into(buf[:r], mats, x2[c0:c1], states[c] if c else None), gh)
            torch.mm(mats.K[:r, :r].t(), gh, out=gx[c0:c1])
            if lam is not None:
                gx[c0:c1].addmm_(mats.G.t(), lam)
            if c:
                new = torch.mm(mats.U[:r].t(), gh)
                lam = new if lam is None else new.addmm_(mats.F.t(), lam)
        return gx.view(ctx.shape), None, None


def _chunked(a: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """h[t] = a[t]·h[t−1] + beta[t], h[−1] = 0, along dim 0 of [T, N] tensors (no autograd)."""
    steps, n = a.shape
    chunk = max(1, math.isqrt(steps))
    pad = -steps % chunk
    a_c = F.pad(a, (0, 0, 0, pad), value=1.0).view(-1, chunk, n)  # padding after the end: a = 1, β = 0
    b_c = F.pad(beta, (0, 0, 0, pad)).view(-1, chunk, n)
    local, survive = torch.empty_like(b_c), torch.empty_like(a_c)
    h, p = torch.zeros_like(b_c[:, 0]), torch.ones_like(a_c[:, 0])
    for t in range(chunk):  # every chunk from a zero start
        h = a_c[:, t] * h + b_c[:, t]
        p = p * a_c[:, t]
        local[:, t], survive[:, t] = h, p
    carried = torch.zeros_like(h[0])
    for c in range(local.shape[0]):  # the start state of each chunk, from the previous one's end
        local[c] += survive[c] * carried
        carried = local[c, -1]
    return local.reshape(-1, n)[:steps]


class _FirstOrderScan(torch.autograd.Function):
    """h = _chunked(a, β), differentiable in both. Backward: λ[t] = g[t] + a[t+1]·λ[t+1] (the same
    scan, reversed in time), then ∂/∂β = λ and ∂/∂a[t] = λ[t]·h[t−1]."""

    @staticmethod
    def forward(ctx, a, beta):
        h = _chunked(a, beta)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        a, h = ctx.saved_tensors
        ahead = torch.cat([a[1:], torch.ones_like(a[:1])])  # a[t+1]; nothing after the end
        lam = _chunked(ahead.flip(0), grad.flip(0)).flip(0)
        before = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
        return lam * before, lam


def first_order_scan(a: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """h[t] = a[t]·h[t−1] + β[t] along dim 0 of [T, N] tensors, zero initial state."""
    if beta.shape[0] == 0:
        return beta.clone()
    return _FirstOrderScan.apply(a, beta)
