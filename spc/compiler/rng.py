"""Counter-based random numbers for stochastic firing.

A stochastic neuron must draw the same number for the same (layer seed, step, neuron) whether it
runs all steps at once (parallel form) or one at a time (stepwise form, hardware), so the draw is a
hash of those three integers rather than the next value of a stateful generator:

    h = mix(mix(mix(seed) ^ t) ^ index),   u = (h >> 8) / 2**24

`mix` is the 32-bit `lowbias32` finaliser (xor-shift-multiply); all arithmetic is modulo 2**32.
`index` is the flat position of the neuron in the per-step tensor `[B, *shape]`. `u` has 24 bits,
so an integer runtime can compare `h >> 8` against a 24-bit probability exactly.
"""

import numpy as np

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * _M1
    x = x ^ (x >> np.uint32(15))
    x = x * _M2
    return x ^ (x >> np.uint32(16))


def uniform_bits(seed: int, t, index) -> np.ndarray:
    """24-bit uniform integers (as uint32) for steps `t` and flat neuron indices `index` (broadcast)."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(seed % 2**32, dtype=np.uint32))
        h = _mix(h ^ np.asarray(t, dtype=np.uint32))
        h = _mix(h ^ np.asarray(index, dtype=np.uint32))
    return h >> np.uint32(8)


def uniform(seed: int, t, index) -> np.ndarray:
    """Uniform floats in [0, 1) with 24 bits, `uniform_bits / 2**24`."""
    return uniform_bits(seed, t, index).astype(np.float64) / 2**24


def uniform_sequence(seed: int, steps: int, per_step: int) -> np.ndarray:
    """The draws of a whole sequence, shape [steps, per_step]."""
    return uniform(seed, np.arange(steps)[:, None], np.arange(per_step)[None, :])
