"""Lava (lava-nc 0.10.0, CPU ProcessModels) against spc's simulator: fixed_pt bit for bit on every
integer cell, synapse and wiring spc emits (one network holds them all, so Lava starts once),
floating_pt within float rounding, the exact stock-LIF mapping, Lava's weight encoding, the
emitted description and the refusals."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import DelayLine, Fire, Leaky, Neuron, StepIndexed
from spc.compiler.emit.lava import describe, emit_lava
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, QDelayLine, QFire, QLeaky, QStepIndexed
from spc.errors import SpcError
from spc.runtime.lava.build import build
from spc.runtime.lava.plan import plan_network
from spc.runtime.lava.runner import read_recording, run_lava
from spc.runtime.sim import run_stepwise

T, B = 12, 3


def node(name, op, *inputs):
    return ir.Node(name, op, tuple(inputs))


def compiled(graph, integer=True):
    """A Compiled around a hand-built graph (the form a tag runs is all Lava reads)."""
    return Compiled(graph, graph, {}, graph if integer else None)


def int_linear(rng, name, src, n_out, n_in, bias=True):
    return node(name, ir.Linear(rng.integers(-127, 128, (n_out, n_in)).astype(np.int8), rng.integers(-300, 300, n_out) if bias else None), src)


def integer_graph(rng):
    """Every integer cell and firing rule, Linear, Conv, SumPool2d, Reshape, a residual Add whose
    operands arrive two synaptic layers apart, and a neuron that is exactly Lava's LIF."""
    c = 4
    taps = rng.integers(-128, 128, (c, 3))
    lut = np.sort(rng.integers(0, 2**24 + 1, (c, LUT_SIZE)), axis=1)
    cells = {
        "leaky12": ((QLeaky("int12", np.array([0, 100, 2048, 4096]), shift=2, width=16),), QFire(np.array([-20, 500, 2000, 9000]))),
        "leakyshift": ((QLeaky("shift", np.array([NO_LEAK, 0, 3, 30]), shift=-2, width=24),), QFire(np.array([300]), strict=True, reset="subtract")),
        "delay": ((QDelayLine(taps, rng.integers(-500, 500, c), dilation=2, width=12),), QFire(np.array([0, 100, -100, 400]))),
        "indexed": ((QStepIndexed(rng.integers(-128, 128, (T, 3)), rng.integers(-900, 900, T)),), QFire(np.array([50]), strict=True)),
        "stochastic": ((QLeaky("int12", np.array([700]), shift=0), QLeaky("shift", np.array([1, 2, 3, 4]), shift=-1)), QFire(np.array([0]), reset="zero", stochastic=True, seed=7, lut=lut, lut_shift=9)),
        "readout": ((QLeaky("int12", np.array([300, 600, 900, 1200]), shift=1),), None),
    }
    nodes = [node("input", ir.Input((2, 4, 4))), node("input:quantize", ir.Quantize(1.0, 8), "input"), node("flat", ir.Reshape((32,)), "input:quantize")]
    for name, (chain, fire) in cells.items():
        nodes += [int_linear(rng, f"{name}.w", "flat", c, 32), node(name, Neuron(chain, fire), f"{name}.w")]
    nodes += [
        node("conv", ir.Conv(rng.integers(-127, 128, (3, 2, 3, 3)).astype(np.int8), rng.integers(-99, 99, 3), (1, 1), (1, 1), (1, 1)), "input:quantize"),
        node("pool", ir.SumPool2d((2, 2), (2, 2), (0, 0)), "conv"),
        node("convn", Neuron((QLeaky("int12", np.array([1000]), shift=-4),), QFire(np.array([40]), reset="zero")), "pool"),
        node("convflat", ir.Reshape((12,)), "convn"),
        int_linear(rng, "skip", "flat", 12, 32),  # reaches the Add at depth 1 ...
        int_linear(rng, "main", "convflat", 12, 12),  # ... this at depth 3: the skip is delayed two steps
        node("residual", ir.Add(), "skip", "main"),
        node("res", Neuron((QLeaky("int12", np.array([500]), shift=-3),), QFire(np.array([30]))), "residual"),
        int_linear(rng, "l", "res", c, 12, bias=False),
        node("lif", Neuron((QLeaky("int12", np.array([300]), shift=8),), QFire(np.array([64 * 150]), strict=True, reset="zero")), "l"),
        node("output:dequantize", ir.Dequantize(np.array([0.5])), "readout"),
    ]
    return ir.Graph(tuple(nodes), ("output:dequantize",))


def test_fixed_pt_matches_the_integer_simulator_bit_for_bit(rng):
    graph = integer_graph(rng)
    x = rng.integers(-128, 128, (T, B, 2, 4, 4)).astype(np.float32)
    x[:, :, 0, 0, 0] = 300.0  # beyond 8 bits: Quantize clips
    ref = run_stepwise(graph, x)
    net = build(compiled(graph), x)
    kinds = {p.name: p.kind for p in net.plan.procs.values()}
    assert kinds["lif"] == "LIF" and type(net.layers["lif"]).__name__ == "LIF"
    assert kinds["leaky12"] == "Neuron" and kinds["skip:delay2"] in ("DelayDense", "DelaySparse")
    assert net.plan.procs["res"].depth == 3 and net.plan.depth == 4
    lif = next(p for p in describe(compiled(graph))[0]["processes"] if p["name"] == "lif")
    assert lif["class"] == "lava.proc.lif.process.LIF" and {k: lif["params"][k] for k in ("du", "dv", "vth")} == {"du": 4095, "dv": 300, "vth": 150}
    assert net.plan.procs["l"].params["weight_exp"] == 1  # 2w >> 1, then the input shift 8 less Lava's 6
    try:
        net.run()
        got = read_recording(net)
        lif_v = net.layers["lif"].v.get()
    finally:
        net.close()
    assert not net.directory.exists()
    for name in [n.name for n in graph.neurons()] + ["output:dequantize"]:
        np.testing.assert_array_equal(got.outputs[name], ref.outputs[name], err_msg=name)
        assert got.outputs[name].dtype == ref.outputs[name].dtype
    for name in got.membranes:
        np.testing.assert_array_equal(got.membranes[name], ref.membranes[name], err_msg=name)
    assert set(got.membranes) == {n.name for n in graph.neurons()} - {"lif"}  # stock LIF sends spikes only
    # the LIF's state after the last step (reset applied) is spc's, too
    h, s = ref.membranes["lif"][-1], ref.outputs["lif"][-1]
    np.testing.assert_array_equal(lif_v, np.where(s == 1, 0, h).reshape(-1))
    assert all(got.saturations[k] == ref.saturations[k] for k in got.saturations)
    assert ref.saturations["leaky12"] > 0 and ref.saturations["delay"] > 0  # saturation is exercised
    for name in ["leaky12", "leakyshift", "delay", "indexed", "stochastic", "convn", "res", "lif"]:
        rate = ref.outputs[name].mean()
        assert 0.02 < rate < 0.98, (name, rate)  # every layer both fires and stays silent


def float_graph(rng):
    fires = [Fire(np.array([0.5]), reset="subtract"), Fire(np.array([0.2, -0.1, 0.3]), strict=True), Fire(np.array([0.0])), Fire(np.array([0.1]), reset="zero", stochastic=True, seed=3)]
    cells = [
        (Leaky(np.array([0.9, 0.5, 1.0]), np.array([0.3])),),
        (DelayLine(rng.normal(size=(3, 3)), rng.normal(size=3), dilation=2),),
        (StepIndexed(rng.normal(size=(T, 2)), rng.normal(size=T)),),
        (Leaky(np.array([0.8]), np.array([1.0])), Leaky(np.array([0.7]), np.array([0.5]))),
    ]
    nodes = [node("input", ir.Input((2, 4, 4))), node("flat", ir.Reshape((32,)), "input")]
    for i, (chain, fire) in enumerate(zip(cells, fires)):
        nodes += [node(f"w{i}", ir.Linear(rng.normal(size=(3, 32)) / 4, rng.normal(size=3)), "flat"), node(f"n{i}", Neuron(chain, fire), f"w{i}")]
    nodes += [
        node("conv", ir.Conv(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (1, 1), (1, 1), (1, 1)), "input"),
        node("pool", ir.AvgPool2d((3, 3), (2, 2), (1, 1), count_include_pad=False), "conv"),
        node("bn", ir.BatchNorm(rng.uniform(0.5, 2, 3), rng.normal(size=3)), "pool"),
        node("readout", Neuron((Leaky(np.array([0.95]), np.array([0.1])),)), "bn"),
        node("readflat", ir.Reshape((12,)), "readout"),
        node("skip", ir.Linear(rng.normal(size=(1, 32)), None), "flat"),  # depth 1, and
        node("main", ir.Linear(rng.normal(size=(1, 12)), rng.normal(size=1)), "readflat"),  # depth 4
        node("residual", ir.Add(), "skip", "main"),
        node("res", Neuron((Leaky(np.array([0.5]), np.array([1.0])),), Fire(np.array([0.0]))), "residual"),
    ]
    return ir.Graph(tuple(nodes), ("readout",))


def test_floating_pt_matches_the_float_simulator(rng):
    graph = float_graph(rng)
    x = rng.normal(size=(T, B, 2, 4, 4))
    ref = run_stepwise(graph, x)
    assert plan_network(graph, "floating_pt", B).procs["skip:delay3"].kind == "DelayDense"
    got = run_lava(Compiled(graph, graph), x, tag="floating_pt")
    for name in [n.name for n in graph.neurons()]:
        np.testing.assert_allclose(got.membranes[name], ref.membranes[name], rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(got.outputs[name], ref.outputs[name], rtol=1e-12, atol=1e-12, err_msg=name)  # spikes: equal
        assert got.outputs[name].dtype == np.float64
    for name in ["n0", "n1", "n2", "n3", "res"]:
        assert 0.05 < ref.outputs[name].mean() < 0.95, name


def test_a_compiled_model_runs_from_its_directory_and_is_emitted(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.LIF(tau=2.0), nn.Linear(8, 8), spc.MaskedPSN(k=2, T=10, lambda_init=1.0), nn.Linear(8, 3), spc.LI())
    x = (np.random.default_rng(0).random((10, 2, 6)) < 0.4).astype(np.float32)
    c = spc.compile(model, x, tmp_path / "out", calib=x)
    ref = run_stepwise(c.integer, x)
    got = run_lava(tmp_path / "out", x)
    np.testing.assert_array_equal(got.output, ref.output)
    for name in ["1", "3", "5", "7"]:
        np.testing.assert_array_equal(got.membranes[name], ref.membranes[name])
    floating = run_lava(c, x, tag="floating_pt")
    np.testing.assert_allclose(floating.output, run_stepwise(c.stepwise, x).output, rtol=1e-12, atol=1e-12)

    paths, info = emit_lava(c, tmp_path / "emitted")
    assert info["placement"] == c.manifest["targets"]["lava"]["placement"]
    assert [p.name for p in paths] == ["network.json", "weights.npz"]
    doc, arrays = json.loads(paths[0].read_text()), np.load(paths[1])
    procs = {p["name"]: p for p in doc["processes"]}
    assert procs["0"]["class"] == "lava.proc.dense.process.Dense" and procs["1"]["class"].endswith("processes.neuron.Neuron")
    assert [procs[n]["latency"] for n in ["1", "3", "5", "7"]] == [1, 2, 3, 4] and doc["latency"] == 4
    assert {"from": "0.a_out", "to": "1.a_in"} in doc["connections"]
    assert doc["read"]["7"]["from_step"] == 4 and doc["output"]["dequantize"]["of"] == "7"
    w = procs["2"]["params"]["weights"]
    assert w["shape"] == [8, 8] and w["scale"] == 2 and arrays[w["dense"]].dtype == np.int8  # 2w stored as w, a byte each
    dense = w["scale"] * arrays[w["dense"]].astype(np.int64)
    np.testing.assert_array_equal(dense, 2 * c.integer.node("2").op.weight.astype(np.int64))  # mixed signs: 2w ...
    assert procs["2"]["params"]["weight_exp"] == -1  # ... and the sum shifted back
    assert procs["3"]["params"]["neuron"]["cells"][0]["kind"] == "QLeaky"


def test_lava_weight_encoding_drops_odd_lsbs_unless_doubled(rng, tmp_path):
    """Lava's Dense keeps only even mixed-sign weights; spc's 2w with weight_exp -1 is exact."""
    import spc.runtime.lava  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer

    from spc.runtime.lava.processes.sink import Sink

    w = rng.integers(-128, 128, (5, 6)) | 1  # odd, mixed signs
    s = (rng.random((6, T)) < 0.5).astype(np.int32)
    source = RingBuffer(data=s)
    sinks = []
    for i, (weights, exp) in enumerate([(w, 0), (2 * w, -1)]):
        dense = Dense(weights=weights.astype(np.int32), weight_exp=exp)
        sinks.append(Sink(size=5, steps=T, path=str(tmp_path / f"{i}.npy"), membranes=False))
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(sinks[-1].s_in)
    try:
        source.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    finally:
        source.stop()
    exact = (w @ s)[:, :-1].T  # a Dense delivers one step late
    plain, doubled = (np.load(tmp_path / f"{i}.npy")[1:, 0] for i in range(2))
    np.testing.assert_array_equal(doubled, exact)
    np.testing.assert_array_equal(plain, (((w >> 1) << 1) @ s[:, :-1]).T)
    assert np.any(plain != exact)


def test_one_signed_weights_are_sent_as_they_are(rng):
    graph = ir.Graph((node("input", ir.Input((4,))), node("input:quantize", ir.Quantize(1.0, 8), "input"), node("w", ir.Linear(np.array([[1, 2, 3, 255]]), None), "input:quantize"), node("n", Neuron((QLeaky("int12", np.array([0]), 0),)), "w")), ("n",))
    proc = plan_network(graph).procs["w"]
    assert proc.params["weight_exp"] == 0 and proc.params["weights"].toarray().tolist() == [[1, 2, 3, 255]]


def refusal(graph, match):
    with pytest.raises(SpcError, match=match) as e:
        plan_network(graph)
    assert "target 'lava'" in str(e.value)
    return str(e.value)


def test_refusals(rng):
    start = [node("input", ir.Input((1, 4, 4))), node("input:quantize", ir.Quantize(1.0, 8), "input")]
    readout = Neuron((QLeaky("int12", np.array([0]), 0),))
    pooled = ir.Graph(tuple(start + [node("pool", ir.MaxPool2d((2, 2), (2, 2), (0, 0)), "input:quantize"), node("n", readout, "pool")]), ("n",))
    assert "average pooling" in refusal(pooled, "layer 'pool'")
    with pytest.raises(SpcError, match="target 'lava'.*layer 'pool'"):
        emit_lava(compiled(pooled), "/nonexistent-never-written")

    flat = start + [node("flat", ir.Reshape((16,)), "input:quantize")]
    wide = ir.Graph(tuple(flat + [node("w", ir.Linear(np.array([[200, -3] + [0] * 14]), None), "flat"), node("n", readout, "w")]), ("n",))
    assert "--weight-bits" in refusal(wide, r"layer 'w'.*\[-3, 200\]")
    loud = [node("input", ir.Input((16,))), node("input:quantize", ir.Quantize(1.0, 32), "input")]
    overflow = ir.Graph(tuple(loud + [node("w", ir.Linear(np.full((1, 16), 127) * np.array([1] * 15 + [-1]), None), "input:quantize"), node("n", readout, "w")]), ("n",))
    refusal(overflow, "layer 'w'.*int32")

    spiking = Neuron((QLeaky("int12", np.array([0]), 0),), QFire(np.array([1])))
    deep = start + [node("flat", ir.Reshape((16,)), "input:quantize"), node("w0", ir.Linear(np.ones((1, 16), np.int8), None), "flat"), node("n0", spiking, "w0")]
    for i in range(1, 67):
        deep += [node(f"w{i}", ir.Linear(np.ones((1, 1), np.int8), None), f"n{i - 1}"), node(f"n{i}", spiking, f"w{i}")]
    deep += [node("sum", ir.Add(), "w0", f"w{66}"), node("out", readout, "sum")]
    assert "synaptic delays" in refusal(ir.Graph(tuple(deep), ("out",)), "layer 'sum'")

    integer = compiled(pooled)
    with pytest.raises(SpcError, match="Lava tag 'bit_exact'"):
        run_lava(integer, np.zeros((2, 1, 1, 4, 4)), tag="bit_exact")
    with pytest.raises(SpcError, match="compiled without"):
        run_lava(Compiled(pooled, pooled), np.zeros((2, 1, 1, 4, 4)))
    with pytest.raises(SpcError, match="was given the integer graph"):
        plan_network(pooled, "floating_pt")
