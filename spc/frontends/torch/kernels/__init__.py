"""Fast training forms of spc's neurons: O(T·k) filters fused with their firing rule.

- `filters`: the entry points (fir, chain, banded) and their dispatch rules;
- `fused` + `native` (+ `native.c`): the fused CPU kernels, built with the C compiler on first use;
- `banded`, `scan`: band GEMMs and the chunked scan of a recurrence, the forms for any device;
- `fft`: FFT convolution, for FIR kernels too long for the others;
- `buffers`: tensors as [T, M] rows; output buffers on huge pages.
"""
