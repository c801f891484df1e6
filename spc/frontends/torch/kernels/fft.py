"""Causal convolution along time by FFT: O(T log T) per column whatever the kernel's length, for
kernels too long for the direct and banded forms (see `filters.fir`'s dispatch rule)."""

from __future__ import annotations

import torch


def causal_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y[t] = Σ_{0 <= n <= t} kernel[n]·x[t−n] along dim 0 of x [T, ...]; kernel [K], any K.

    A linear (not circular) convolution: the transforms are T + K − 1 long, rounded up to a length
    with no prime factor above 5, which the FFT handles fastest. Differentiable in x and kernel."""
    if x.numel() == 0:  # an empty transform is an error for MKL
        return x.clone()
    steps, taps = x.shape[0], min(kernel.shape[0], x.shape[0])  # taps beyond T never reach an output
    n = smooth_length(steps + taps - 1)
    shape = (taps,) + (1,) * (x.dim() - 1)
    spectrum = torch.fft.rfft(x, n=n, dim=0) * torch.fft.rfft(kernel[:taps].reshape(shape), n=n, dim=0)
    return torch.fft.irfft(spectrum, n=n, dim=0)[:steps]


def channel_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y[t] = Σ_{n<=t} kernel[n, c]·x[t−n] along dim 0 of x [T, B, C, *space] with a kernel [T, C]
    per channel, by FFT."""
    if x.numel() == 0:
        return x.clone()
    steps = x.shape[0]
    n = smooth_length(2 * steps - 1)
    k = kernel.to(x.dtype).view((steps, 1, -1) + (1,) * (x.dim() - 3))
    return torch.fft.irfft(torch.fft.rfft(x, n=n, dim=0) * torch.fft.rfft(k, n=n, dim=0), n=n, dim=0)[:steps]


def smooth_length(n: int) -> int:
    """The smallest m >= n whose prime factors are all 2, 3 or 5."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1
