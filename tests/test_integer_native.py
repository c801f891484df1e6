"""The integer simulator's native kernels (spc.runtime.integer_native) against its numpy kernels
(spc.runtime.integer, docs/integer-spec.md), bit for bit: membranes, spikes, saturation counts and
the state carried between chunks, over random QLeaky and QDelayLine cells with every decay mode,
firing rule and reset, per-channel and shared parameters, inputs in int32 and int64, sums that fit
int32 and sums that need int64, and chunks of every length. Without a C compiler the simulator runs
the numpy kernels and gives the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spc.compiler import ir
from spc.compiler.cells import Neuron
from spc.compiler.qcells import NO_LEAK, QDelayLine, QFire, QLeaky, QSigmoid
from spc.runtime import integer_native
from spc.runtime.integer import Saturations
from spc.runtime.neurons import run_neuron
from spc.runtime.sim import run_stepwise

ROOT = Path(__file__).resolve().parents[1]
needs_native = pytest.mark.skipif(integer_native._LIBRARY.get() is None, reason=f"native integer kernels: {integer_native.status()}")


def run_chunks(neuron, x, chunks, native):
    """(membranes, outputs, saturation events) of the neuron over x, in chunks of the given lengths."""
    integer_native.enabled = native
    try:
        sats, state, hs, outs, t0 = Saturations(), None, [], [], 0
        for n in chunks:
            h, out, state = run_neuron(neuron, x[t0 : t0 + n], t0, state, sats)
            hs.append(h)
            outs.append(out)
            t0 += n
        return np.concatenate(hs), np.concatenate(outs), sats.count
    finally:
        integer_native.enabled = True


def random_leaky(rng, channels):
    mode = str(rng.choice(["int12", "shift"]))
    if mode == "int12":
        decay = rng.choice([0, 1, 300, 2048, 4095, 4096], size=channels)
    else:
        decay = rng.choice([NO_LEAK, 0, 1, 5, 31, 40, 62], size=channels)
    decay = decay[:1] if rng.random() < 0.3 else decay
    return QLeaky(mode, decay.astype(np.int64), shift=int(rng.integers(-6, 12)), width=int(rng.choice([4, 12, 24, 32])))


def random_delay_line(rng, channels):
    k = int(rng.integers(1, 7))
    taps = rng.integers(-127, 128, (1 if rng.random() < 0.5 else channels, k))
    width = int(rng.choice([8, 16, 24, 32]))
    bias = rng.integers(-(2 ** (width - 2)), 2 ** (width - 2), taps.shape[0])
    return QDelayLine(taps, bias, dilation=int(rng.integers(1, 4)), width=width)


def random_fire(rng, channels, cell):
    reset = str(rng.choice(["none", "zero", "subtract"])) if isinstance(cell, QLeaky) else "none"
    threshold = rng.integers(-50, 3000, 1 if rng.random() < 0.5 else channels)
    return QFire(threshold, strict=bool(rng.random() < 0.5), reset=reset)


@needs_native
@pytest.mark.parametrize("seed", range(40))
def test_native_cells_equal_the_numpy_kernels_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    steps, batch, shape = int(rng.integers(1, 40)), int(rng.integers(1, 4)), (3, 2) if seed % 3 == 0 else (300,)
    cells = [random_leaky(rng, shape[0]) if rng.random() < 0.6 else random_delay_line(rng, shape[0]) for _ in range(int(rng.integers(1, 3)))]
    fire = random_fire(rng, shape[0], cells[-1]) if rng.random() < 0.8 else None
    neuron = Neuron(tuple(cells), fire)
    neuron.check("layer", shape)
    scale = 2 ** int(rng.choice([4, 12, 30]))  # 2^30: sums beyond int32, saturating states
    x = rng.integers(-scale, scale, (steps, batch) + shape).astype(np.int32 if seed % 2 else np.int64)
    cuts = sorted(set(rng.integers(1, steps, 3).tolist()) | {steps}) if steps > 1 else [1]
    chunks = np.diff([0] + cuts).tolist()
    ref = run_chunks(neuron, x, [steps], native=False)
    for got in (run_chunks(neuron, x, [steps], native=True), run_chunks(neuron, x, chunks, native=True)):
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        assert got[2] == ref[2]
        if fire is not None:
            assert got[1].dtype == ref[1].dtype == np.uint8


@needs_native
def test_saturation_and_both_accumulators_are_exercised():
    """The int32 fast path of the delay line and its int64 path both run, and saturate alike."""
    rng = np.random.default_rng(1)
    cell = QDelayLine(rng.integers(-127, 128, (1, 5)), np.array([100]), width=16)
    neuron = Neuron((cell,), QFire(np.array([0])))
    for scale in (2**8, 2**28):  # 2^28 · 5 · 127 > 2^31: int64 sums
        x = rng.integers(-scale, scale, (30, 2, 8)).astype(np.int64)
        ref, got = run_chunks(neuron, x, [30], False), run_chunks(neuron, x, [7, 23], True)
        assert ref[2] == got[2] > 0
        np.testing.assert_array_equal(ref[0], got[0])


def test_cells_without_native_kernels_run_numpys_in_the_same_neuron():
    """A QSigmoid before a QLeaky: the numpy kernel, then the native one (when built), on one chunk."""
    lut = np.arange(1024, dtype=np.int64)[None] - 512
    neuron = Neuron((QSigmoid(lut, lut_shift=2), QLeaky("int12", np.array([100]), shift=0)), QFire(np.array([10]), reset="subtract"))
    x = np.random.default_rng(2).integers(-3000, 3000, (25, 2, 4)).astype(np.int32)
    assert integer_native.kernel(neuron.cells[0]) is None
    ref, got = run_chunks(neuron, x, [25], False), run_chunks(neuron, x, [10, 15], True)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def _graph():
    rng = np.random.default_rng(3)
    nodes = [
        ir.Node("input", ir.Input((16,)), ()),
        ir.Node("q", ir.Quantize(1.0, 8), ("input",)),
        ir.Node("w1", ir.Linear(rng.integers(-127, 128, (12, 16)).astype(np.int8), rng.integers(-50, 50, 12)), ("q",)),
        ir.Node("n1", Neuron((QDelayLine(rng.integers(-127, 128, (1, 4)), np.array([0])),), QFire(np.array([200]))), ("w1",)),
        ir.Node("w2", ir.Linear(rng.integers(-127, 128, (6, 12)).astype(np.int8), None), ("n1",)),
        ir.Node("n2", Neuron((QLeaky("int12", np.array([500]), shift=4),), QFire(np.array([3000]), reset="zero")), ("w2",)),
    ]
    return ir.Graph(tuple(nodes), ("n2",))


_RUN = """
import json, sys
import numpy as np
sys.path.insert(0, "tests")
from test_integer_native import _graph
from spc.runtime import integer_native
from spc.runtime.sim import run_stepwise
x = (np.random.default_rng(4).random((40, 3, 16)) < 0.3).astype(np.float32)
rec = run_stepwise(_graph(), x)
json.dump({"status": integer_native.status(), "outputs": {k: v.tolist() for k, v in rec.outputs.items()}, "saturations": rec.saturations}, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("env", [{}, {"SPC_NATIVE": "0"}, {"CC": "false"}], ids=["native", "disabled", "compiler-fails"])
def test_the_simulator_gives_the_same_results_with_or_without_a_compiler(tmp_path, env):
    out = tmp_path / "out.json"
    environment = {**os.environ, "SPC_CACHE_DIR": str(tmp_path / "cache"), **env}
    subprocess.run([sys.executable, "-c", _RUN, str(out)], check=True, env=environment, cwd=ROOT, timeout=300)
    got = json.loads(out.read_text())
    assert got["status"].startswith("loaded") == (not env)
    integer_native.enabled = False
    try:
        ref = run_stepwise(_graph(), (np.random.default_rng(4).random((40, 3, 16)) < 0.3).astype(np.float32))
    finally:
        integer_native.enabled = True
    assert got["saturations"] == ref.saturations
    for name, values in ref.outputs.items():
        assert got["outputs"][name] == values.tolist(), name
        assert values.dtype in (np.int64, np.float64)  # recordings hold integers as int64
