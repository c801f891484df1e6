"""The filters spc's neurons are made of, each computed by the kernel that is fastest for its shape.

Dispatch rules, measured on 2 CPU cores (Xeon, AVX-512), float32, B × N = 8192 columns, forward +
backward with the firing rule:

- `fir` (k taps shared over time, SlidingPSN):
    k <= 32 and native kernels usable  -> "native": direct, fused with the firing rule (O(T·k));
    k <= 1024                          -> "banded-gemm": chunked band GEMMs (O(T·(k+64)));
    longer                             -> "fft": FFT convolution (O(T log T)), then the firing rule.
  At T = 4096, native against band: k = 16: 0.11 s / 0.18 s; k = 32: 0.17 / 0.20; k = 48: 0.25 /
  0.22; k = 64: 0.33 / 0.24. At k = 1024: band 1.9 s, FFT 2.1 s (FFT 1.8 s whatever k: along T, the
  FFTs of 8192 strided columns are slow on this CPU).
- `chain` (a cascade of leaky stages with fixed decays, LI and SPSN): "native" when usable, else
  "scan-gemm", the chunked scan (SPSN at T = 4096: 0.07 s against 0.14 s; the form for GPUs).
- `time_matrix` (PSN, MaskedPSN): "dense-gemm", the T×T product; for a kernel known to be a band of
  width k (MaskedPSN with λ >= 1) "banded-gemm" where 2·(C+k−1) <= T, C = 64: the band's GEMMs are
  narrower but less efficient, and it recomputes its membrane in the backward pass. Measured
  crossings: k = 3 and k = 16 between T = 128 and 160, k = 48 below T = 192.

"Native" needs a CPU tensor of float32 or float64 and a library built by `native.py`; everything
else (CUDA, no C compiler) takes the torch forms, which run on any device.
`record_paths()` collects the path each call takes (the benchmark reports them).
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np
import torch

from spc.frontends.torch.firing import spikes
from spc.frontends.torch.kernels import fused, native
from spc.frontends.torch.kernels.banded import band_scan, toeplitz_weight
from spc.frontends.torch.kernels.buffers import rows
from spc.frontends.torch.kernels.fft import causal_conv
from spc.frontends.torch.kernels.scan import ChunkMatrices, recurrent_scan

CHUNK = 64  # steps per chunk of the GEMM forms: narrower GEMMs run slower, wider ones do more work
NATIVE_TAPS = 32
FFT_TAPS = 1024

_recording: list[dict] = []


@contextlib.contextmanager
def record_paths():
    """Collect {filter: path} for the calls made inside the block."""
    paths: dict[str, str] = {}
    _recording.append(paths)
    try:
        yield paths
    finally:
        _recording.remove(paths)


def taken(kind: str, path: str) -> None:
    """Note that a `kind` of filter ran on `path`, for every `record_paths` block open."""
    for paths in _recording:
        paths[kind] = path


def chunk_size(states: int) -> int:
    return max(CHUNK, states)


def fir(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None = None, epilogue=None) -> torch.Tensor:
    """h[t] = Σ_i taps[i]·x[t−k+1+i] + bias along dim 0, zeros before t = 0; then the epilogue
    (`firing.Spikes`), or h itself. Differentiable in x, taps and bias."""
    k = taps.shape[0]
    if k <= NATIVE_TAPS and native.usable(x, taps):
        taken("fir", "native")
        return fused.fir(x, taps, bias, epilogue)
    if k > FFT_TAPS:
        taken("fir", "fft")
        h = causal_conv(x, taps.flip(0))
        h = h if bias is None else h + bias
        return h if epilogue is None else spikes(h, epilogue)
    taken("fir", "banded-gemm")
    chunk = chunk_size(k - 1)
    return band_scan(x, toeplitz_weight(taps, chunk), k, chunk, bias, epilogue, toeplitz=True)


def time_matrix(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, width: int | None = None, epilogue=None) -> torch.Tensor:
    """h = W x + b along time for W [T', T'] and b [T'] (T <= T'), then the epilogue. With `width`,
    W is known to be zero outside its lower band of that width (row t reads x[t−width+1 .. t]), and
    band GEMMs replace the dense product where `banded_pays`."""
    steps = x.shape[0]
    if width is not None and banded_pays(steps, width):
        taken("time-matrix", "banded-gemm")
        return band_scan(x, weight, width, chunk_size(width - 1), bias, epilogue)
    taken("time-matrix", "dense-gemm")
    h = torch.addmm(bias[:steps].view(steps, 1), weight[:steps, :steps], rows(x)).view(x.shape)
    return h if epilogue is None else spikes(h, epilogue)


def banded_pays(steps: int, width: int) -> bool:
    """Whether the band beats the dense T×T product (see the dispatch rule above)."""
    return 2 * (chunk_size(width - 1) + width - 1) <= steps


def chain(x: torch.Tensor, decays: tuple[float, ...], gains: tuple[float, ...], epilogue=None) -> torch.Tensor:
    """s_i[t] = decays[i]·s_i[t−1] + gains[i]·s_{i−1}[t] with s_{−1} = x and zero initial states;
    h = the last stage; then the epilogue, or h itself. Differentiable in x."""
    decays, gains = tuple(map(float, decays)), tuple(map(float, gains))
    if native.usable(x):
        taken("chain", "native")
        return fused.chain(x, decays, gains, epilogue)
    taken("chain", "scan-gemm")
    mats = (torch.from_numpy(m).to(device=x.device, dtype=x.dtype) for m in _chain_matrices(decays, gains, chunk_size(len(decays))))
    return recurrent_scan(x, ChunkMatrices(*mats), epilogue)


@lru_cache(maxsize=64)
def _chain_matrices(decays: tuple[float, ...], gains: tuple[float, ...], chunk: int):
    """K, U, G, F of the chunked scan, by running the chain in float64 on every unit input (K, G)
    and every unit initial state (U, F)."""
    stages = len(decays)
    columns = chunk + stages  # one per input step, then one per state
    x = np.zeros((chunk, columns))
    x[:, :chunk] = np.eye(chunk)
    s = np.zeros((stages, columns))
    s[:, chunk:] = np.eye(stages)
    h = np.empty((chunk, columns))
    for t in range(chunk):
        u = x[t]
        for i in range(stages):
            s[i] = decays[i] * s[i] + gains[i] * u
            u = s[i]
        h[t] = u
    return h[:, :chunk], h[:, chunk:], s[:, :chunk].copy(), s[:, chunk:].copy()
