"""lava-nc 0.10.0 imports on Python 3.11 through spc's compatibility hook, and its stock
RingBuffer -> Dense -> LIF network in fixed_pt produces the spikes computed independently here
from the documented Loihi fixed-point rules (../shared/reference/targets.md)."""

import numpy as np

import spc.runtime.lava  # noqa: F401  (installs the import fix before lava is imported)


def trunc0(x, k):
    return np.sign(x) * (np.abs(x) >> k)


def expected_lif(data, weights, du, dv, vth, bias):
    w = np.clip(weights, -256, 255)
    w = (w >> 1) << 1  # mixed signs, 8 weight bits: one LSB dropped, rounding down
    n_out, steps = weights.shape[0], data.shape[1]
    u = np.zeros(n_out, np.int64)
    v = np.zeros(n_out, np.int64)
    spikes = np.zeros((n_out, steps), bool)
    for t in range(steps):
        a = w @ data[:, t - 1] if t > 0 else np.zeros(n_out, np.int64)  # Dense delivers one step late
        u = trunc0(u * (4096 - (du + 1)), 12) + (a << 6)
        u = np.where(u > 2**23, u - 2**24, np.where(u <= -(2**23), u + 2**24, u))
        v = np.clip(trunc0(v * (4096 - dv), 12) + u + bias, -(2**23 - 1), 2**23 - 1)
        spikes[:, t] = v > (vth << 6)
        v[spikes[:, t]] = 0
    return spikes


def test_stock_lava_network_matches_independent_fixed_point_computation():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    rng = np.random.default_rng(0)
    steps = 40
    data = (rng.random((4, steps)) < 0.5).astype(np.int64)
    weights = rng.integers(-40, 90, size=(3, 4))
    weights[0, 0] = 77  # odd: truncated to 76
    du, dv, vth, bias = 1024, 256, 90, 3

    source = RingBuffer(data=data.astype(float))
    dense = Dense(weights=weights.astype(float))
    lif = LIF(shape=(3,), du=du, dv=dv, vth=vth, bias_mant=bias)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    monitor = Monitor()
    monitor.probe(lif.s_out, steps)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        got = monitor.get_data()[lif.name]["s_out"].T.astype(bool)
    finally:
        lif.stop()

    expected = expected_lif(data, weights, du, dv, vth, bias)
    assert expected.sum() > 10 and (~expected).sum() > 10  # a test that can fail
    np.testing.assert_array_equal(got, expected)
