"""The integer simulator against docs/integer-spec.md: hand-computed edge cases for every cell, and a
property test against a plain per-element reference loop written from the specification."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spc.compiler.cells import Neuron
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, QDelayLine, QFire, QLeaky, QRescale, QStepIndexed
from spc.compiler.rng import uniform_bits
from spc.runtime.integer import Saturations
from spc.runtime.neurons import run_neuron


def run_qneuron(neuron, x):
    sats = Saturations()
    h, out, _ = run_neuron(neuron, x.astype(np.int64), sats=sats)
    return h, out, sats.count


def run(cells, x, fire=None):
    neuron = Neuron(cells=tuple(cells), fire=fire)
    x = np.asarray(x, dtype=np.int64).reshape(len(x), 1, 1)
    neuron.check("layer", x.shape[2:])
    h, out, sats = run_qneuron(neuron, x)
    return h[:, 0, 0].tolist(), out[:, 0, 0].tolist(), sats


def leaky(mode, decay, shift=0, width=24):
    return QLeaky(mode=mode, decay=np.array([decay]), shift=shift, width=width)


# --- hand-computed edge cases ---------------------------------------------------------------


def test_int12_decay_rounds_toward_zero_for_both_signs():
    # -1000 · (4096 − 100) = −3 996 000; /4096 = −975.59 -> −975 (toward zero, not −976)
    h, _, _ = run([leaky("int12", 100)], [-1000, 0])
    assert h == [-1000, -975]
    h, _, _ = run([leaky("int12", 100)], [1000, 0])
    assert h == [1000, 975]


def test_int12_zero_decay_and_full_decay():
    assert run([leaky("int12", 0)], [7, 0, 0])[0] == [7, 7, 7]  # d = 0: no leak, exactly
    assert run([leaky("int12", 4096)], [7, 3, 0])[0] == [7, 3, 0]  # d = 4096: forgets every step


def test_shift_decay_floors_so_small_positive_values_stick():
    # v − (v >> 3): 5 − 0 = 5 stays; −5 − (−1) = −4 decays
    assert run([leaky("shift", 3)], [5, 0, 0])[0] == [5, 5, 5]
    assert run([leaky("shift", 3)], [-5, 0, 0])[0] == [-5, -4, -3]
    assert run([leaky("shift", 1)], [100, 0])[0] == [100, 50]


def test_shift_zero_no_leak_and_shift_beyond_width():
    assert run([leaky("shift", 0)], [9, 4])[0] == [9, 4]  # n = 0: v − v = 0
    assert run([leaky("shift", NO_LEAK)], [9, 4])[0] == [9, 13]  # no leak
    # n = 30 with a 24-bit state: v >> 30 is 0 for v >= 0 and −1 for v < 0
    assert run([leaky("shift", 30)], [9, 0])[0] == [9, 9]
    assert run([leaky("shift", 30)], [-9, 0])[0] == [-9, -8]


def test_input_shift_left_and_floor_right():
    assert run([leaky("int12", 0, shift=3)], [-5])[0] == [-40]
    assert run([leaky("int12", 0, shift=-1)], [-5, 5])[0] == [-3, -1]  # −5 >> 1 = −3; then −3 + (5 >> 1) = −1


def test_saturation_is_symmetric_and_counted():
    h, _, sats = run([leaky("int12", 0, width=8)], [100, 50, -400, 0])
    assert h == [100, 127, -127, -127]
    assert sats == 2


def test_rescale_multiplies_and_rounds_half_up_then_saturates():
    """sat_W((x·m + 2^(n−1)) >> n), checked against Python's unbounded integers."""
    x = [-7, -6, -5, -1, 0, 1, 5, 6, 7, 1000, -1000]
    m, n = 3, 2  # x · 0.75: −5.25 → −5, −4.5 → −4 (half up), 3.75 → 4, 4.5 → 5
    h, _, sats = run([QRescale(multiplier=np.array([m]), shift=np.array([n]))], x)
    assert h == [(v * m + 2 ** (n - 1)) // 2**n for v in x] and h[:3] == [-5, -4, -4] and sats == 0
    assert run([QRescale(multiplier=np.array([5]), shift=np.array([0]))], [-3, 4])[0] == [-15, 20]  # n = 0: no rounding term
    h, _, sats = run([QRescale(multiplier=np.array([3]), shift=np.array([0]), width=8)], [50, -50])
    assert h == [127, -127] and sats == 2


def test_delay_line_and_its_saturation():
    cell = QDelayLine(taps=np.array([[3, -2, 5]]), bias=np.array([1]), dilation=2, width=8)
    # y[t] = 3·x[t−4] − 2·x[t−2] + 5·x[t] + 1
    h, _, sats = run([cell], [1, 2, 3, 4, 30])
    assert h == [6, 11, 14, 17, 127]  # 5·30 − 2·3 + 3·1 + 1 = 148 -> 127
    assert sats == 1


def test_step_indexed_uses_the_row_of_each_step():
    cell = QStepIndexed(weights=np.array([[0, 2], [1, -1], [3, 1]]), bias=np.array([0, 10, -5]), width=24)
    h, _, _ = run([cell], [4, 6, 1])
    assert h == [8, 4 - 6 + 10, 18 + 1 - 5]


@pytest.mark.parametrize("strict, expected", [(False, [0, 1, 1]), (True, [0, 0, 1])])
def test_deterministic_threshold(strict, expected):
    fire = QFire(threshold=np.array([10]), strict=strict)
    assert run([QDelayLine(taps=np.array([[1]]), bias=np.array([0]))], [9, 10, 11], fire)[1] == expected


def test_reset_to_zero_and_by_subtraction_with_saturation():
    zero = QFire(threshold=np.array([10]), reset="zero")
    h, s, _ = run([leaky("int12", 0)], [6, 6, 6, 6], zero)
    assert (h, s) == ([6, 12, 6, 12], [0, 1, 0, 1])
    sub = QFire(threshold=np.array([-100]), reset="subtract")  # v − θ = v + 100 saturates at 127
    h, s, sats = run([leaky("int12", 0, width=8)], [50, 0], sub)
    assert (h, s, sats) == ([50, 127], [1, 1], 2)


def test_stochastic_firing_reads_the_probability_table():
    always, never = np.full((1, LUT_SIZE), 2**24), np.zeros((1, LUT_SIZE), np.int64)
    cell = QDelayLine(taps=np.array([[1]]), bias=np.array([0]))
    assert run([cell], [5] * 8, QFire(threshold=np.array([0]), stochastic=True, lut=always))[1] == [1] * 8
    assert run([cell], [5] * 8, QFire(threshold=np.array([0]), stochastic=True, lut=never))[1] == [0] * 8
    # bins are clipped at both ends: z >> 2 + 512 for z = 10**6 -> 1023; z = −10**6 -> 0
    ramp = np.zeros((1, LUT_SIZE), np.int64)
    ramp[0, 1023] = 2**24
    fire = QFire(threshold=np.array([0]), stochastic=True, lut=ramp, lut_shift=2)
    assert run([cell], [10**6, -(10**6)], fire)[1] == [1, 0]


# --- the reference loop, written from the specification, element by element ----------------


def _sat(v, width, counter):
    limit = 2 ** (width - 1) - 1
    clipped = max(-limit, min(limit, v))
    counter[0] += clipped != v
    return clipped


def _trunc0(v, n):
    return -((-v) >> n) if v < 0 else v >> n


def _decay(v, mode, amount):
    if mode == "int12":
        return _trunc0(v * (4096 - amount), 12)
    return v if amount == NO_LEAK else v - (v >> amount)


def reference_neuron(neuron, x):
    """Per element, per step, in Python integers: docs/integer-spec.md read literally."""
    steps, batch, channels = x.shape
    h = np.zeros_like(x)
    out = np.zeros_like(x)
    counter = [0]
    fire = neuron.fire
    for b in range(batch):
        for c in range(channels):
            history = [[] for _ in neuron.cells]  # inputs each cell has seen
            state = [0 for _ in neuron.cells]
            for t in range(steps):
                value = int(x[t, b, c])
                for i, cell in enumerate(neuron.cells):
                    history[i].append(value)
                    ch = 0 if cell.__dict__.get("decay", cell.__dict__.get("bias", np.zeros(1))).shape[0] == 1 else c
                    if isinstance(cell, QLeaky):
                        inp = value << cell.shift if cell.shift >= 0 else value >> -cell.shift
                        state[i] = _sat(_decay(state[i], cell.mode, int(cell.decay[ch])) + inp, cell.width, counter)
                        value = state[i]
                    elif isinstance(cell, QDelayLine):
                        k, d = cell.order, cell.dilation
                        tc = 0 if cell.taps.shape[0] == 1 else c
                        total = sum(int(cell.taps[tc, j]) * history[i][t - (k - 1 - j) * d] for j in range(k) if t - (k - 1 - j) * d >= 0)
                        value = _sat(total + int(cell.bias[0 if cell.bias.shape[0] == 1 else c]), cell.width, counter)
                    else:
                        k = cell.order
                        total = sum(int(cell.weights[t, j]) * history[i][t - k + 1 + j] for j in range(k) if t - k + 1 + j >= 0)
                        value = _sat(total + int(cell.bias[t]), cell.width, counter)
                h[t, b, c] = value
                if fire is None:
                    out[t, b, c] = value
                    continue
                theta = int(fire.threshold[0 if fire.threshold.shape[0] == 1 else c])
                if fire.stochastic:
                    j = min(max(((value - theta) >> fire.lut_shift) + 512, 0), 1023)
                    u = int(uniform_bits(fire.seed, t, b * channels + c))
                    spike = u < int(fire.lut[0 if fire.lut.shape[0] == 1 else c, j])
                else:
                    spike = value > theta if fire.strict else value >= theta
                out[t, b, c] = spike
                if spike and fire.reset == "zero":
                    state[-1] = 0
                elif spike and fire.reset == "subtract":
                    state[-1] = _sat(state[-1] - theta, neuron.cells[-1].width, counter)
    return h, out, counter[0]


def _channels(rng, channels, low, high, shared):
    return rng.integers(low, high + 1, 1 if shared else channels)


@st.composite
def integer_neurons(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    channels = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 10))
    width = draw(st.sampled_from([8, 12, 16, 24]))
    shared = draw(st.booleans())
    kinds = draw(st.lists(st.sampled_from(["leaky", "delay", "indexed"]), min_size=0, max_size=2)) + [draw(st.sampled_from(["leaky", "leaky", "delay", "indexed"]))]
    cells = []
    for kind in kinds:
        if kind == "leaky":
            mode = draw(st.sampled_from(["int12", "shift"]))
            decay = _channels(rng, channels, 0, 4096, shared) if mode == "int12" else _channels(rng, channels, NO_LEAK, 30, shared)
            cells.append(QLeaky(mode=mode, decay=decay, shift=int(rng.integers(-3, 4)), width=width))
        elif kind == "delay":
            k = int(rng.integers(1, 4))
            cells.append(QDelayLine(taps=rng.integers(-128, 128, (1 if shared else channels, k)), bias=_channels(rng, channels, -50, 50, shared), dilation=int(rng.integers(1, 3)), width=width))
        else:
            k = int(rng.integers(1, 4))
            cells.append(QStepIndexed(weights=rng.integers(-128, 128, (steps, k)), bias=rng.integers(-50, 51, steps), width=width))
    fire = None
    if draw(st.integers(0, 3)):  # mostly spiking
        reset = draw(st.sampled_from(["none", "zero", "subtract"])) if kinds[-1] == "leaky" else "none"
        stochastic = draw(st.booleans())
        lut = np.sort(rng.integers(0, 2**24 + 1, (1 if shared else channels, LUT_SIZE)), axis=1) if stochastic else None
        fire = QFire(threshold=_channels(rng, channels, -200, 2000, shared), strict=draw(st.booleans()), reset=reset, stochastic=stochastic, seed=int(rng.integers(0, 2**31)), lut=lut, lut_shift=int(rng.integers(0, 8)))
    scale = draw(st.sampled_from([1, 100, 10**5]))  # large inputs drive saturation
    x = rng.integers(-scale, scale + 1, (steps, 2, channels))
    return Neuron(cells=tuple(cells), fire=fire), x


@given(integer_neurons())
def test_integer_simulator_matches_the_specification_loop(case):
    neuron, x = case
    neuron.check("layer", (x.shape[2],))
    h, out, sats = run_qneuron(neuron, x)
    h_ref, out_ref, sats_ref = reference_neuron(neuron, x)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_array_equal(out, out_ref)
    assert sats == sats_ref
    again = run_qneuron(neuron, x.copy())  # deterministic
    np.testing.assert_array_equal(again[0], h)
    np.testing.assert_array_equal(again[1], out)
