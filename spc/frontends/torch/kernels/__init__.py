"""Fast training forms of spc's neurons: O(T·k) filters fused with their firing rule.

- `filters`: the entry points (fir, chain, time_matrix; per channel: channel_fir, channel_moments,
  gated, resonator) and their dispatch rules;
- `fused` + `native` (+ `native.c`): the fused CPU kernels, built with the C compiler on first use;
- `banded`, `scan`: band GEMMs and chunked scans of recurrences, the forms for any device;
- `fft`: FFT convolution, for FIR kernels too long for the others and for PRF's resonator;
- `buffers`: tensors as [T, M] rows; output buffers on huge pages.
"""
