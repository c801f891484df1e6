"""The integer cells of the gated and resonant neurons (QSigmoid, QGate, QGated, QResonator) against
docs/integer-spec.md: hand-computed edge cases, and a property test against a per-element reference
loop written from the specification."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spc.compiler.cells import Neuron
from spc.compiler.qcells import LUT_SIZE, QGate, QGated, QResonator, QSigmoid
from spc.compiler.rng import uniform_bits
from spc.runtime.integer import Saturations
from spc.runtime.neurons import run_neuron

from test_integer_cells import _sat, _trunc0  # the specification's saturation and rounding, element by element


def run(cells, x):
    neuron = Neuron(cells=tuple(cells))
    x = np.asarray(x, dtype=np.int64).reshape(len(x), 1, 1)
    neuron.check("layer", x.shape[2:])
    sats = Saturations()
    h, _, _ = run_neuron(neuron, x, sats=sats)
    return h[:, 0, 0].tolist(), sats.count


def ramp(low=0, step=1):
    return (low + step * np.arange(LUT_SIZE, dtype=np.int64))[None]


def gated(mode, lut, shift=0, taps=((0,),), bias=(0,), width=24, lut_shift=0):
    return QGated(mode=mode, taps=np.array(taps), bias=np.array(bias), lut=np.asarray(lut, np.int64), lut_shift=lut_shift, shift=shift, width=width)


# --- hand-computed edge cases ---------------------------------------------------------------


def test_sigmoid_table_bins_floor_and_clip():
    cell = QSigmoid(lut=ramp(), lut_shift=2)  # lut[j] = j
    # bin = clip((x >> 2) + 512, 0, 1023): −1 >> 2 = −1 (floor), 7 >> 2 = 1
    assert run([cell], [0, -1, 7, 10**6, -(10**6)])[0] == [512, 511, 513, 1023, 0]


def test_gate_by_expectation_floors_the_product():
    half = np.full((1, LUT_SIZE), 2**23)  # p = σ = 1/2 everywhere
    cell = QGate(lut=half, lut_shift=0, shift=0)
    # (x·(2^24 − 2^23)) >> 24 = floor(x / 2): 5 -> 2, −5 -> −3
    assert run([cell], [5, -5, 0])[0] == [2, -3, 0]
    assert run([QGate(lut=half, lut_shift=0, shift=2)], [5])[0] == [10]  # (5 << 2) / 2


def test_stochastic_gate_reads_the_table_and_saturates_its_input():
    closed, open_ = np.full((1, LUT_SIZE), 2**24), np.zeros((1, LUT_SIZE), np.int64)
    assert run([QGate(lut=closed, lut_shift=0, shift=0, stochastic=True)], [9, -9])[0] == [0, 0]  # u24 < 2^24 always
    h, sats = run([QGate(lut=open_, lut_shift=0, shift=4, stochastic=True, width=8)], [9, -9, 3])
    assert (h, sats) == ([127, -127, 48], 2)  # 9 << 4 = 144 -> 127


def test_stochastic_gate_draws_the_counter_based_uniforms():
    lut = np.full((1, LUT_SIZE), 2**23)
    x = np.full(40, 7)
    h, _ = run([QGate(lut=lut, lut_shift=0, shift=0, stochastic=True, seed=11)], x)
    u = uniform_bits(11, np.arange(40), 0).astype(np.int64)
    assert h == np.where(u < 2**23, 0, 7).tolist()


def test_gated_int12_decay_and_input_weight_round_toward_zero():
    keep_100 = np.full((1, LUT_SIZE), 100)  # d = 100 at every step
    # h = trunc0(h·3996, 12) + trunc0(x·100, 12): x = 5000 -> 122 (122.07); then −975... sign by sign
    assert run([gated("int12", keep_100)], [5000, 0])[0] == [122, 119]  # 122·3996/4096 = 119.02
    half = np.full((1, LUT_SIZE), 2048)
    assert run([gated("int12", half)], [-7, 0])[0] == [-3, -1]  # −3.5 -> −3; −1.5 -> −1 (toward zero)
    forget = np.full((1, LUT_SIZE), 4096)
    assert run([gated("int12", forget)], [9, -4])[0] == [9, -4]  # d = 4096: h = x


def test_gated_shift_decay_floors_both_terms():
    one = np.ones((1, LUT_SIZE), np.int64)  # n = 1: h − (h >> 1) + (x >> 1)
    assert run([gated("shift", one)], [-5, 0, 0])[0] == [-3, -1, 0]  # −5 >> 1 = −3; −3 − (−2) = −1; −1 − (−1) = 0
    assert run([gated("shift", one)], [5, 0, 0])[0] == [2, 1, 1]  # 1 − (1 >> 1) = 1 sticks (floor)


def test_gated_reads_its_decay_from_the_gate_input_of_each_step():
    lut = np.zeros((1, LUT_SIZE), np.int64)
    lut[0, 512:] = 4096  # z >= 0: d = 4096, take the input (h = x); z < 0: d = 0, hold h, ignore x
    # z[t] = x[t−1] − x[t]: h holds while the input rises
    cell = gated("int12", lut, taps=((1, -1),))
    assert run([cell], [4, 9, 9, 2, 3])[0] == [0, 0, 9, 2, 2]


def test_resonator_quarter_turn_and_truncation():
    turn = QResonator(re=np.array([0]), im=np.array([2**16]), shift=0)  # A = i
    assert run([turn], [10, 0, 0, 0, 0])[0] == [10, 0, -10, 0, 10]
    half = QResonator(re=np.array([2**15]), im=np.array([0]), shift=0)  # A = 1/2
    assert run([half], [-3, 0, 0])[0] == [-3, -1, 0]  # trunc0(−1.5) = −1, trunc0(−0.5) = 0
    h, sats = run([QResonator(re=np.array([2**16]), im=np.array([0]), shift=3, width=8)], [10, 10])
    assert (h, sats) == ([80, 127], 1)  # 80 + 80 saturates


# --- the reference loop, written from the specification, element by element ----------------


def _align(v, shift):
    return v << shift if shift >= 0 else v >> -shift


def _entry(lut, lut_shift, c, z):
    return int(lut[0 if lut.shape[0] == 1 else c, min(max((z >> lut_shift) + 512, 0), 1023)])


def _row(values, c):
    return int(values[0 if values.shape[0] == 1 else c])


def reference(cells, x):
    steps, batch, channels = x.shape
    out = np.zeros_like(x)
    counter = [0]
    for b in range(batch):
        for c in range(channels):
            seen = [[] for _ in cells]
            state = [None for _ in cells]
            for t in range(steps):
                v = int(x[t, b, c])
                for i, cell in enumerate(cells):
                    seen[i].append(v)
                    if isinstance(cell, QSigmoid):
                        v = _entry(cell.lut, cell.lut_shift, c, v)
                    elif isinstance(cell, QGate):
                        p = _entry(cell.lut, cell.lut_shift, c, v)
                        xa = _sat(_align(v, cell.shift), cell.width, counter)
                        if cell.stochastic:
                            v = 0 if int(uniform_bits(cell.seed, t, b * channels + c)) < p else xa
                        else:
                            v = (xa * (2**24 - p)) >> 24
                    elif isinstance(cell, QGated):
                        k = cell.order
                        z = sum(_row(cell.taps[:, j], c) * seen[i][t - (k - 1 - j)] for j in range(k) if t - (k - 1 - j) >= 0) + _row(cell.bias, c)
                        a = _entry(cell.lut, cell.lut_shift, c, z)
                        xa = _sat(_align(v, cell.shift), cell.width, counter)
                        h = state[i] or 0
                        h = _trunc0(h * (4096 - a), 12) + _trunc0(xa * a, 12) if cell.mode == "int12" else h - (h >> a) + (xa >> a)
                        state[i] = v = _sat(h, cell.width, counter)
                    else:
                        u, r = state[i] or (0, 0)
                        re, im = _row(cell.re, c), _row(cell.im, c)
                        u, r = _sat(_trunc0(re * u - im * r, 16) + _align(v, cell.shift), cell.width, counter), _sat(_trunc0(im * u + re * r, 16), cell.width, counter)
                        state[i] = (u, r)
                        v = u
                out[t, b, c] = v
    return out, counter[0]


@st.composite
def nonlinear_neurons(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels, steps = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    width = draw(st.sampled_from([8, 12, 16, 24]))

    def rows():
        return 1 if draw(st.booleans()) else channels

    def table(low, high, sorted_=False):
        t = rng.integers(low, high + 1, (rows(), LUT_SIZE))
        return np.sort(t, axis=1) if sorted_ else t

    cells = []
    for kind in draw(st.lists(st.sampled_from(["sigmoid", "gate", "gated", "resonator"]), min_size=1, max_size=3)):
        lut_shift, shift = int(rng.integers(0, 6)), int(rng.integers(-3, 4))
        if kind == "sigmoid":
            cells.append(QSigmoid(lut=table(-(2**16), 2**16, True), lut_shift=lut_shift))
        elif kind == "gate":
            cells.append(QGate(lut=table(0, 2**24, True), lut_shift=lut_shift, shift=shift, stochastic=draw(st.booleans()), seed=int(rng.integers(0, 2**31)), width=width))
        elif kind == "gated":
            mode = draw(st.sampled_from(["int12", "shift"]))
            k = int(rng.integers(1, 4))
            lut = table(0, 4096) if mode == "int12" else table(0, 20)
            cells.append(QGated(mode=mode, taps=rng.integers(-128, 128, (rows(), k)), bias=rng.integers(-50, 51, rows()), lut=lut, lut_shift=lut_shift, shift=shift, width=width))
        else:
            n = rows()
            angle, magnitude = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.5, 1.0, n)
            cells.append(QResonator(re=np.rint(2**16 * magnitude * np.cos(angle)).astype(np.int64), im=np.rint(2**16 * magnitude * np.sin(angle)).astype(np.int64), shift=shift, width=width))
    scale = draw(st.sampled_from([1, 100, 10**5]))
    return tuple(cells), rng.integers(-scale, scale + 1, (steps, 2, channels))


@given(nonlinear_neurons())
def test_integer_simulator_matches_the_specification_loop(case):
    cells, x = case
    neuron = Neuron(cells=cells)
    neuron.check("layer", (x.shape[2],))
    sats = Saturations()
    h, _, _ = run_neuron(neuron, x.astype(np.int64), sats=sats)
    expected, count = reference(cells, x)
    np.testing.assert_array_equal(h, expected)
    assert sats.count == count
