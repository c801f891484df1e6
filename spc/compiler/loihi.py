"""Loihi 2 through Lava's stock processes: the numbers spc's integer layers must fit to run on them.

Only Lava's stock processes have Loihi 2 implementations; lava-nc 0.10.0's `fixed_pt` ProcessModels
are the public model of their arithmetic (docs/loihi2-stock.md derives every condition from it):

    Dense, Sparse, Delay*:  a_out = (Σ weights of the spiking inputs) << weight_exp   (>> floors)
                            8-bit weights; a synapse with delay δ delivers 1 + δ steps later
    LIF, LIFReset, TernaryLIF (shared sub-threshold dynamics):
        u = wrap24(trunc0(u·(4096 − du − 1), 12) + (a_in << 6))
        v = clip(trunc0(v·(4096 − dv), 12) + u + (bias_mant << bias_exp), ±(2^23 − 1))
        LIF, LIFReset: s = v > vth << 6              TernaryLIF: s = (v > vth_hi << 6) − (v < vth_lo << 6)
        v = 0 where s ≠ 0;  LIFReset also sets u = v = 0 before the update every `reset_interval` steps

The widths below are the ones those models declare (their `LavaPyType` precisions) and the ranges
lava-dl uses on the chip. The Python models do not all enforce them (an `a_in` beyond 16 bits passes
through), so spc checks them itself: a layer is labelled "Loihi 2: stock" only when its integers
fit what the chip holds, not merely what the simulation accepts. The quantizer (`--lava-stock`)
uses these numbers to choose scales that fit; `spc.runtime.lava.stock` maps layers with them.
"""

from __future__ import annotations

import numpy as np

ALIGN_SHIFT = 6
"""The neuron MSB-aligns its input and its thresholds: u gets a_in << 6, v is compared with vth << 6."""
DECAY_UNITY = 4096
"""Decays are 12-bit: du, dv in [0, 4095] (the current's effective decay is du + 1)."""
STATE_MAX = 2**23 - 1
"""u and v are 24 bits; v saturates at ±STATE_MAX (u wraps)."""
A_IN_MAX = 2**15 - 1
"""The neuron's synaptic input `a_in` is 16 bits (and a delayed synapse's output too)."""
VTH_MAX = 2**17 - 1
"""LIF's and LIFReset's `vth` is unsigned 17 bits."""
TERNARY_NEVER = 2**17
"""TernaryLIF thresholds of ±2^17 (±2^23 after the alignment) are never crossed by a 24-bit v."""
BIAS_MANT = (-(2**12), 2**12 - 1)
"""bias_mant is signed 13 bits, bias_exp in [0, 7]."""
BIAS_EXP_MAX = 7
WEIGHT_BITS = 8
WEIGHT_EXP = (-8, 7)
"""A synapse process's shared weight exponent."""
MAX_DELAY = 62
"""Synaptic delays on the chip (lava-dl netx; the fixed_pt models accept 63)."""
MIN_SHIFT = ALIGN_SHIFT
"""A leaky membrane with memory is stock only when its input shift is at least 6: the neuron adds
a_in << 6, so a_in = x << (shift − 6) is what its synapse must send (their weight_exp)."""


def trailing_zeros(values: np.ndarray) -> int:
    """The largest e with every value divisible by 2^e (0 for an all-zero array)."""
    nonzero = np.abs(np.asarray(values, np.int64))
    nonzero = nonzero[nonzero != 0]
    return int(np.min(nonzero & -nonzero)).bit_length() - 1 if nonzero.size else 0


def encode_weights(weights: np.ndarray, exponent: int) -> tuple[np.ndarray, int] | str:
    """Integer synaptic weights scaled by 2^exponent, as a Lava synapse holds them exactly:
    (weights in Lava's units, weight_exp), or why they do not fit.

    Lava clips weights to 8 bits by sign mode and, with mixed signs, drops one LSB (it keeps the even
    values of [−256, 254]): mixed-sign weights w in [−128, 127] are sent as 2w with the exponent one
    lower; weights of one sign are sent as they are ([0, 255] or [−255, 0])."""
    w = np.asarray(weights, np.int64)
    low, high = (int(w.min()), int(w.max())) if w.size else (0, 0)
    mixed = low < 0 < high
    if (mixed and not -128 <= low <= high <= 127) or not -255 <= low <= high <= 255:
        return f"needs weights in [{low}, {high}], beyond Lava's 8-bit weights ([-128, 127] with mixed signs, [-255, 255] with one sign)"
    exp = exponent - 1 if mixed else exponent
    if not WEIGHT_EXP[0] <= exp <= WEIGHT_EXP[1]:
        return f"needs a weight exponent of {exp}, outside Lava's {WEIGHT_EXP[0]}..{WEIGHT_EXP[1]}"
    return (2 * w if mixed else w), exp


def encode_bias_column(values: np.ndarray, exponent: int) -> tuple[np.ndarray, int] | str:
    """Integers `values · 2^exponent` as the weights of synapses from a neuron that fires every step:
    the common power of two goes into the exponent, the rest must fit 8 bits (`encode_weights`)."""
    values = np.asarray(values, np.int64)
    tz = trailing_zeros(values)
    return encode_weights(values >> tz, exponent + tz)

