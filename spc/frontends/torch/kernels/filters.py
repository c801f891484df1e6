"""The filters spc's neurons are made of, each computed by the kernel that is fastest for its shape.

Dispatch rules, measured on 2 CPU cores (Xeon, AVX-512), float32, B × N = 8192 columns, forward +
backward with the firing rule:

- `fir` (k taps shared over time, SlidingPSN):
    k <= 64 and native kernels usable  -> "native": direct, fused with the firing rule (O(T·k));
    k <= 1024                          -> "banded-gemm": chunked band GEMMs (O(T·(k+64)));
    longer                             -> "fft": FFT convolution (O(T log T)), then the firing rule.
  At T = 4096, band over native (the native kernel in column panels with L1 rings, on 2 cores of an
  AVX2 EPYC shared with other work, 5 interleaved runs, median (min)): k = 16: 17x (17), k = 32:
  9.7x (8.4), k = 48: 5.0x (3.8), k = 64: 6.4x (3.8), k = 96: 4.3x (1.1). At k = 1024: band 1.9 s,
  FFT 2.1 s (FFT 1.8 s whatever k: along T, the FFTs of 8192 strided columns are slow on this CPU).
- `chain` (a cascade of leaky stages with fixed decays, LI and SPSN): "native" when usable, else
  "scan-gemm", the chunked scan (SPSN at T = 4096: 0.07 s against 0.14 s; the form for GPUs).
- `time_matrix` (PSN, MaskedPSN): "dense-gemm", the T×T product; for a kernel known to be a band of
  width k (MaskedPSN with λ >= 1) "banded-gemm" where 2·(C+k−1) <= T, C = 64: the band's GEMMs are
  narrower but less efficient, and it recomputes its membrane in the backward pass. Measured
  crossings: k = 3 and k = 16 between T = 128 and 160, k = 48 below T = 192.

Per-channel filters, on x [T, B, C, *space] with coefficients per channel (or one set shared by
all), each "native" when usable, else its torch form. Measured on 2 cores of an AMD EPYC (Zen 4,
AVX-512), forward + backward of the whole layer, B = 32, N = 256, float32, at T = 1024 / 4096,
against the torch forms (a plain stepwise LIF loop in torch: 0.19 s / 0.86 s):

- `channel_fir`, `channel_moments` (ChannelwisePSN: k taps per channel, dilation d; BatchNorm's batch
  statistics of the unfolded filter): "native" — one pass over x for the statistics (Σh, Σh² in
  float64, h never written), one for the spikes, and a backward pass for each; else "grouped-conv",
  a grouped conv1d on x moved to [B·space, C, T]. ChannelwisePSN k = 8: 0.062 s / 0.16 s against
  0.56 s / 2.4 s.
- `gated` (DSN: a per-channel gate FIR, σ, h = a·h + (1−a)·x): "native", the gate, the recurrence
  and the firing rule in one pass (backward: one pass recomputing h, one for the adjoint); else
  "torch", the gate by `channel_fir`, then the chunked scan `first_order_scan`. DSN: 0.028 s / 0.094 s
  against 0.95 s / 4.4 s. The gate FIR and the scan as separate native kernels with torch between
  them took 0.15 s / 0.61 s: the elementwise passes between them cost more than the kernels.
- `resonator` (PRF: the kernel Re(Δ·A^t) per channel): "native", the 2-state damped rotation fused
  with the firing rule, O(T) (backward: forward-mode tangents of the rotation for the coefficients'
  gradients, then the adjoint recurrence for x's); else "fft", an FFT convolution, O(T log T).
  PRF: 0.024 s / 0.071 s against 0.67 s / 3.5 s.

Elementwise and two-state neurons, on x [T, ...] (any shape), measured the same way (2 cores of the
EPYC shared with another run, medians side by side in one process; B = 32, N = 256, float32, at
T = 1024 / 4096, against a plain stepwise LIF loop in torch: 0.17 s / 0.83 s; the memory floor, x·2
forward and backward: 0.027 s / 0.11 s):

- `random_gate` (MPE-PSN in training: the gate b = u < σ(x), its estimate, the membrane, firing
  against a learned θ): "native", one pass forward (hash, σ, membrane, spikes) and one backward (the
  gate drawn again, the surrogate, dx, and dθ summed in float64), keeping only x; else "torch", the
  same draws (`hashed_uniforms`, int32 in place) then the elementwise torch ops. MPE-PSN "A" / "B":
  0.048 s / 0.038 s at T = 1024, 0.18 s / 0.17 s at T = 4096, against 0.26 s / 0.24 s and 1.2 s /
  1.0 s with `torch.bernoulli` and eager torch (about 12 passes each way). The torch form with the
  hashed draws takes 0.34 s / 0.32 s at T = 1024 (its hash alone 0.19 s, `torch.bernoulli` 0.1 s):
  slower on a CPU without a compiler, but the draws are the native kernel's, and on a GPU the hash's
  integer passes are cheap.
- `psu` (PSU: d = the leaky integrator of x, r = the same filter of −θ·σ(d) one step late, fired
  on d + r): "native", the two filters, σ and the firing rule in one pass, keeping x and the states
  every 64 steps (3% of x); backward in tiles of 64 steps × 512 columns, each rerun from its
  checkpoint while in cache, then the adjoint recurrence; else "torch", two `chain`s with σ between
  them. PSU: 0.040 s / 0.13 s at T = 1024 / 4096 (0.41 s at T = 16384), against 0.14 s / 0.53 s
  (3.8 s) with the native `chain`s and eager torch between them.

"Native" needs a CPU tensor of float32 or float64 and a library built by `native.py`; everything
else (CUDA, no C compiler) takes the torch forms, which run on any device and give the same results
to float rounding. `record_paths()` collects the path each call takes (the benchmark reports them).
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from spc.frontends.torch.firing import Spikes, spikes
from spc.frontends.torch.kernels import fused, native
from spc.frontends.torch.kernels.banded import band_scan, toeplitz_weight
from spc.frontends.torch.kernels.buffers import rows
from spc.frontends.torch.kernels.fft import causal_conv, channel_conv
from spc.frontends.torch.kernels.scan import ChunkMatrices, first_order_scan, recurrent_scan

CHUNK = 64  # steps per chunk of the GEMM forms: narrower GEMMs run slower, wider ones do more work
NATIVE_TAPS = 64
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


def _fired(h: torch.Tensor, epilogue) -> torch.Tensor:
    return h if epilogue is None else spikes(h, epilogue)


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
        return _fired(h if bias is None else h + bias, epilogue)
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
    return _fired(h, epilogue)


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


# ---- per-channel filters: x [T, B, C, *space], coefficients [C] or [1] (shared) -------------------


def _grouped_conv(x: torch.Tensor, taps: torch.Tensor, dilation: int) -> torch.Tensor:
    """channel_fir's torch form: one grouped convolution over time, on x moved to [B·space, C, T]."""
    steps, batch, channels = x.shape[:3]
    columns = x.movedim(0, -1).movedim(1, -2).reshape(-1, channels, steps)
    y = F.conv1d(F.pad(columns, ((taps.shape[1] - 1) * dilation, 0)), taps.unsqueeze(1), dilation=dilation, groups=channels)
    return y.reshape((batch,) + x.shape[3:] + (channels, steps)).movedim(-2, 1).movedim(-1, 0)


def channel_fir(x: torch.Tensor, taps: torch.Tensor, dilation: int = 1, bias: torch.Tensor | None = None, epilogue=None) -> torch.Tensor:
    """h[t, :, c] = Σ_i taps[c, i]·x[t − (k−1−i)·dilation, :, c] (+ bias[c]) for x [T, B, C, *space]
    and taps [C or 1, k], zeros before t = 0; then the epilogue, or h itself."""
    taps = taps.to(x.dtype).expand(x.shape[2], -1)
    if native.usable(x, taps):
        taken("channel-fir", "native")
        return fused.channel_fir(x, taps, None if bias is None else bias.to(x.dtype).expand(x.shape[2]), dilation, epilogue)
    taken("channel-fir", "grouped-conv")
    h = _grouped_conv(x, taps, dilation)
    return _fired(h if bias is None else h + bias.to(x.dtype).view((-1,) + (1,) * (x.dim() - 3)), epilogue)


def channel_moments(x: torch.Tensor, taps: torch.Tensor, dilation: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, the mean and the biased variance over time, batch and space of
    channel_fir(x, taps, dilation) (BatchNorm's batch statistics), differentiable."""
    taps = taps.to(x.dtype).expand(x.shape[2], -1)
    if native.usable(x, taps):
        taken("channel-fir", "native")
        return fused.channel_moments(x, taps, dilation)
    taken("channel-fir", "grouped-conv")
    y = _grouped_conv(x, taps, dilation).movedim(2, 0).flatten(1)
    return y.mean(1), y.var(1, unbiased=False)


def gated(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, epilogue=None) -> torch.Tensor:
    """DSN's membrane h[t] = a·h[t−1] + (1−a)·x[t] with the gate a = σ(channel_fir(x, taps) + bias)
    (taps [C or 1, k], bias [C or 1]); then the epilogue, or h itself."""
    channels = x.shape[2]
    taps, bias = taps.to(x.dtype).expand(channels, -1), bias.to(x.dtype).expand(channels)
    if native.usable(x, taps, bias):
        taken("gated", "native")
        return fused.gated(x, taps, bias, epilogue)
    taken("gated", "torch")
    a = torch.sigmoid(channel_fir(x, taps, bias=bias))
    return _fired(first_order_scan(rows(a), rows((1 - a) * x)).view(x.shape), epilogue)


def resonant_kernel(delta: torch.Tensor, angle: torch.Tensor, tau: float, steps: int) -> torch.Tensor:
    """Re(Δ·A^t) for t < steps, A = exp(Δ·(−1/τ + iθ)) per channel: [steps, C]."""
    t = torch.arange(steps, dtype=delta.dtype, device=delta.device)[:, None]
    return delta * torch.exp(-delta * t / tau) * torch.cos(delta * angle * t)


def resonator(x: torch.Tensor, delta: torch.Tensor, angle: torch.Tensor, tau: float, epilogue=None) -> torch.Tensor:
    """PRF's membrane Re Σ_{j<=t} Δ·A^(t−j)·x[j] with A = exp(Δ·(−1/τ + iθ)) per channel (delta Δ,
    angle θ: [C] or [1]); then the epilogue, or h itself. Natively the 2-state damped rotation
    (O(T)) with its coefficients computed in float64; else an FFT convolution with the kernel
    `resonant_kernel` (O(T log T))."""
    if native.usable(x):
        taken("resonator", "native")
        delta64, rotation = delta.double(), delta.double() * angle.double()
        magnitude = torch.exp(-delta64 / tau)
        coefficients = (magnitude * torch.cos(rotation), magnitude * torch.sin(rotation), delta64)
        return fused.resonator(x, *(c.to(x.dtype).expand(x.shape[2]) for c in coefficients), epilogue)
    taken("resonator", "fft")
    return _fired(channel_conv(x, resonant_kernel(delta.to(x.dtype), angle.to(x.dtype), tau, x.shape[0])), epilogue)


# ---- elementwise and two-state neurons: MPE-PSN's training gate, PSU --------------------------------

_INT32_INDICES = 2**31  # up to this many elements, the indices t·M + m are int32 (all below 2^31)


def _signed(c):
    """A 32-bit pattern (an int, or an int64 tensor of values < 2^32) as int32's value of it."""
    if torch.is_tensor(c):
        return (c - ((c >> 31) << 32)).to(torch.int32)
    return c - 2**32 if c >= 2**31 else c


def _mix32_(v: torch.Tensor) -> torch.Tensor:
    """native.c's mix32 (lowbias32) on int32 bit patterns, in place: int32 products wrap around as
    uint32's do, and a logical right shift is the arithmetic one masked."""
    v ^= (v >> 16) & 0xFFFF
    v *= _signed(0x7FEB352D)
    v ^= (v >> 15) & 0x1FFFF
    v *= _signed(0x846CA68B)
    v ^= (v >> 16) & 0xFFFF
    return v


def hashed_uniforms(x: torch.Tensor, key: tuple[int, int]) -> torch.Tensor:
    """The uniforms in [0, 1) that native.c's gate draws for x [T, ...] under `key` (two ints < 2^32):
    a hash of each element's index i = t·M + m, of which the top 24 bits (exact in float32 and
    float64)."""
    if x.numel() <= _INT32_INDICES:
        low, high = torch.arange(x.numel(), dtype=torch.int32, device=x.device), 0
    else:
        i = torch.arange(x.numel(), dtype=torch.int64, device=x.device)
        low, high = _signed(i & 0xFFFFFFFF), _signed(i >> 32)
    h = _mix32_(low ^ _signed(key[0]))
    h ^= high
    h ^= _signed(key[1])
    return ((_mix32_(h) >> 8) & 0xFFFFFF).to(x.dtype).mul_(2.0**-24).view(x.shape)


def random_gate(x: torch.Tensor, threshold: torch.Tensor, late: bool, tau: float, key: tuple[int, int], alpha: float = 2.0, fire: bool = True) -> torch.Tensor:
    """MPE-PSN's training form: the gate b = u < σ(x) with u = `hashed_uniforms(x, key)` (constant
    for autograd), h = x + tau·(1 − b)·x, the estimate one step late when `late`; spikes h > threshold
    (a 0-dim tensor) with the ATan surrogate, or h itself when not `fire`."""
    threshold = threshold.to(x.dtype)
    if native.usable(x, threshold):
        taken("random-gate", "native")
        return fused.mpe(x, threshold, late, tau, key, alpha, fire)
    taken("random-gate", "torch")
    estimate = (hashed_uniforms(x, key) >= torch.sigmoid(x.detach())).to(x.dtype) * x
    if late:
        estimate = torch.cat([torch.zeros_like(estimate[:1]), estimate[:-1]])
    h = x + tau * estimate
    return spikes(h - threshold, Spikes(0.0, alpha, strict=True)) if fire else h


def psu(x: torch.Tensor, tau: float, theta: float, epilogue=None) -> torch.Tensor:
    """PSU's membrane V = d + r with d[t] = (d[t−1] + x[t])/τ and r[t] = (r[t−1] − θ·σ(d[t−1]))/τ
    (r[0] = 0); then the epilogue, or V itself. Natively one fused pass forward and one backward;
    else two `chain`s with the sigmoid between them."""
    if native.usable(x):
        taken("psu", "native")
        return fused.psu(x, tau, theta, epilogue)
    taken("psu", "torch")
    d = chain(x, (1.0 / tau,), (1.0 / tau,))
    feedback = torch.sigmoid(d[:-1]) * -theta
    r = chain(torch.cat([torch.zeros_like(d[:1]), feedback]), (1.0 / tau,), (1.0 / tau,))
    return _fired(d + r, epilogue)
