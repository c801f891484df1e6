"""Layers on Lava's stock processes (what Loihi 2 runs) against spc's integer simulator: Lava's own
fixed_pt models (LIF, LIFReset, TernaryLIF, Dense, Sparse and their delayed forms) are an
implementation spc did not write. Every mapping of spc.runtime.lava.stock, bit for bit on networks
firing at 10-40 % with threshold ties and saturation; the conditions that keep the others off
(16-bit a_in, u's 24-bit wrap, the voltage's residue); the quantizer's --lava-stock choices on real
models; the labels and --lava-stock-only. docs/loihi2-stock.md derives the conditions."""

import json

import numpy as np
import torch
from torch import nn

import spc
from spc.cli import main
from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import Neuron
from spc.compiler.qcells import NO_LEAK, QDelayLine, QFire, QLeaky
from spc.runtime.lava.build import build
from spc.runtime.lava.plan import plan_network
from spc.runtime.lava.runner import read_recording
from spc.runtime.sim import run_stepwise

T, B = 16, 3


def node(name, op, *inputs):
    return ir.Node(name, op, tuple(inputs))


def linear(rng, name, src, n_out, n_in, scale, bias=None):
    return node(name, ir.Linear(rng.integers(-scale, scale + 1, (n_out, n_in)).astype(np.int8), bias), src)


def stock_graph(rng):
    """Every mapping: LIF (leak, bias, >=), IF (no leak, >, ties), shared and per-channel FIR taps
    (dilation, biases through the taps, edges below zero, a 16-bit membrane), a memoryless neuron
    (full decay, negative shift, subtractive reset), an FIR two layers deep (its biases wait), an
    int12 readout and a saturating integrator readout. Spike inputs on 2 bits."""
    nodes = [node("input", ir.Input((12,))), node("input:quantize", ir.Quantize(1.0, 2), "input")]
    nodes += [linear(rng, "w_lif", "input:quantize", 6, 12, 60, rng.integers(-20, 40, 6) * 4),
              node("lif", Neuron((QLeaky("int12", np.array([600]), shift=8),), QFire(np.array([64 * 500 + 1]), reset="zero")), "w_lif")]
    nodes += [linear(rng, "w_fir", "input:quantize", 8, 12, 8, rng.integers(-6, 7, 8)),
              node("fir", Neuron((QDelayLine(np.array([[1, -2, 4]]), np.array([3]), dilation=2),), QFire(np.array([30]))), "w_fir")]
    taps = np.array([[2, 1], [-4, 8], [1, 0], [16, -1]])
    nodes += [node("seq", ir.Reshape((1, 12)), "input:quantize"),
              node("conv", ir.Conv(rng.integers(-9, 10, (4, 1, 3)).astype(np.int8), rng.integers(-3, 4, 4), (1,), (1,), (1,)), "seq"),
              node("cw", Neuron((QDelayLine(taps, np.array([0, 5, -5, 2]), width=16),), QFire(np.array([40, 60, -10, 60]), strict=True)), "conv")]
    nodes += [linear(rng, "w_full", "input:quantize", 6, 12, 30, rng.integers(-9, 9, 6) * 2),
              node("full", Neuron((QLeaky("int12", np.array([4096]), shift=-1),), QFire(np.array([6, 5, 8, 4, 6, 7]), reset="subtract")), "w_full")]
    nodes += [linear(rng, "w_if", "lif", 5, 6, 9),
              node("if", Neuron((QLeaky("shift", np.array([NO_LEAK]), shift=6),), QFire(np.array([64 * 12]), strict=True, reset="zero")), "w_if")]
    nodes += [linear(rng, "w_fir2", "if", 4, 5, 5, rng.integers(-4, 5, 4)),
              node("fir2", Neuron((QDelayLine(np.array([[1, 1, -1]]), np.array([0]), dilation=3),), QFire(np.array([5]))), "w_fir2")]
    nodes += [linear(rng, "w_ro", "fir", 3, 8, 100, rng.integers(-100, 100, 3) * 8),
              node("readout", Neuron((QLeaky("int12", np.array([300]), shift=7),)), "w_ro")]
    nodes += [node("flat", ir.Reshape((48,)), "cw"), linear(rng, "w_sat", "flat", 2, 48, 127, np.array([250, -250]) * 64),
              node("sat", Neuron((QLeaky("shift", np.array([NO_LEAK]), shift=6),)), "w_sat")]
    nodes += [node("output:dequantize", ir.Dequantize(np.array([0.25])), "readout")]
    return ir.Graph(tuple(nodes), ("output:dequantize",))


STOCK_KINDS = {"lif": "LIF", "if": "LIF", "fir": "LIFReset", "cw": "LIFReset", "full": "LIFReset", "fir2": "LIFReset", "readout": "TernaryLIF", "sat": "TernaryLIF"}


def test_every_stock_mapping_matches_lavas_own_models_bit_for_bit():
    graph = stock_graph(np.random.default_rng(0))
    x = (np.random.default_rng(1).random((T, B, 12)) < 0.3).astype(np.float32)
    ref = run_stepwise(graph, x)
    net = build(Compiled(graph, graph, {}, graph), x)
    placement = net.plan.placement
    assert {name: placement[name].processes[-1] for name in STOCK_KINDS} == STOCK_KINDS, {n: placement[n] for n in STOCK_KINDS}
    assert all(net.plan.procs[name].kind == kind for name, kind in STOCK_KINDS.items())  # no spc Neuron process left
    assert placement["w_fir"].loihi2 == "stock" and "folded" in placement["w_fir"].reason  # the synapse became the taps
    assert net.plan.procs["w_fir:tap0"].params["delays"] == 4 and net.plan.procs["w_fir2:tap0:bias"].params["delays"] == 2 + 6
    assert "conv:lift" in net.plan.procs  # cw has an edge below zero
    try:
        net.run()
        got = read_recording(net)
    finally:
        net.close()
    for name in STOCK_KINDS:
        np.testing.assert_array_equal(got.outputs[name], ref.outputs[name], err_msg=name)
    np.testing.assert_array_equal(got.output, ref.output)
    for name in ("readout", "sat"):  # the host read the stock readouts' voltage every step
        np.testing.assert_array_equal(got.membranes[name], ref.membranes[name], err_msg=name)
    for name in ("lif", "if", "fir", "cw", "full", "fir2"):
        assert 0.1 <= ref.outputs[name].mean() <= 0.4, (name, ref.outputs[name].mean())
    assert ref.saturations["sat"] > 0 and ref.membranes["sat"].max() == 2**23 - 1 and ref.membranes["sat"].min() == -(2**23 - 1)
    ties = {name: int((ref.membranes[name] == theta).sum()) for name, theta in (("fir", 30), ("if", 64 * 12))}
    assert all(n > 0 for n in ties.values()), ties  # membranes exactly at the threshold: >= and > both exercised


def test_the_conditions_keep_layers_off_where_lavas_models_would_differ(tmp_path):
    """Lava's own models where spc's conditions fail: a_in beyond 16 bits (here 2^17 and more) makes
    LIF's u wrap at 24 bits where spc saturates, so such a layer stays in spc's process; and a plain
    LIF with dv = 4095 keeps trunc0(v/4096) of the step before, so a memoryless neuron is a
    LIFReset, cleared every step."""
    import spc.runtime.lava  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset

    from spc.runtime.lava.processes.sink import Sink

    # spc: five spikes at once through weights 127 into an integrator with input shift 14
    wide = ir.Graph((node("input", ir.Input((5,))), node("input:quantize", ir.Quantize(1.0, 2), "input"), node("w", ir.Linear(np.full((1, 5), 127, np.int8), None), "input:quantize"),
                     node("n", Neuron((QLeaky("shift", np.array([NO_LEAK]), shift=14),)), "w")), ("n",))
    placement = plan_network(wide).placement["n"]
    assert placement.loihi2 == "cpu" and "16-bit a_in" in placement.reason
    spc_v = run_stepwise(wide, np.ones((1, 1, 5), np.float32)).membranes["n"][0, 0, 0]
    assert spc_v == 2**23 - 1  # 635 << 14 saturates

    steps = 3
    data = np.zeros((7, steps), np.int32)
    data[:5, 0] = 1  # the five spikes, step 0
    data[5, 0] = data[6, 1] = 1  # a strongly negative input at step 0, a small positive one at step 1
    source = RingBuffer(data=data)
    wrap = Dense(weights=np.array([[254] * 5 + [0, 0]], np.int32), weight_exp=7)  # a_in = 635 << 8 = 162560, what the stock LIF would get
    big = LIF(shape=(1,), du=4095, dv=0, vth=2**17 - 1)
    negative = Dense(weights=np.array([[0] * 5 + [-128, 0]], np.int32), weight_exp=6)  # a_in = -8192
    positive = Dense(weights=np.array([[0] * 5 + [0, 11]], np.int32))  # a_in = 11: 704 > 64·vth = 640
    plain, cleared = LIF(shape=(1,), du=4095, dv=4095, vth=10), LIFReset(shape=(1,), du=4095, dv=4095, vth=10, reset_interval=1, reset_offset=0)
    sinks = {name: Sink(size=1, steps=steps, path=str(tmp_path / f"{name}.npy"), membranes=False, voltage=name == "big") for name in ("big", "plain", "cleared")}
    for dense in (wrap, negative, positive):
        source.s_out.connect(dense.s_in)
    wrap.a_out.connect(big.a_in)
    sinks["big"].v_ref.connect_var(big.v)
    for neuron, name in ((plain, "plain"), (cleared, "cleared")):
        negative.a_out.connect(neuron.a_in)
        positive.a_out.connect(neuron.a_in)
        neuron.s_out.connect(sinks[name].s_in)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    finally:
        source.stop()
    record = {name: np.load(tmp_path / f"{name}.npy")[:, 0, 0] for name in sinks}
    assert record["big"][1] == 162560 * 64 - 2**24  # u wrapped: a large negative voltage where spc's is 2^23 - 1
    assert record["plain"][2] == 0  # v = trunc0(-524288 / 4096) + 704 = 576: the residue hides the spike
    assert record["cleared"][2] == 1  # v = 704 > 640: what the memoryless neuron computes


def stock_model():
    """SlidingPSN, channel-wise PSN, LIF, IF and an LI readout, set to fire at 10-40 % on 30 % spikes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), spc.SlidingPSN(k=3), nn.Linear(16, 16), spc.ChannelwisePSN(16, k=3, dilation=2), nn.Linear(16, 12), spc.LIF(tau=2.0, v_threshold=0.2),
                          nn.Linear(12, 8), spc.IF(v_threshold=0.3), nn.Linear(8, 3), spc.LI(tau=4.0))
    with torch.no_grad():
        model[1].bias.fill_(-0.2)
        model[3].bn_bias.copy_(torch.linspace(-1.0, 0.5, 16))
    return model.eval()


def spikes(steps=T, batch=4, features=10, seed=0):
    return (np.random.default_rng(seed).random((steps, batch, features)) < 0.3).astype(np.float32)


def test_lava_stock_quantizes_real_models_for_the_stock_processes_and_verify_checks_them(tmp_path):
    model, x = stock_model(), spikes()
    plain = spc.compile(model, x, tmp_path / "plain", calib=x, input_bits=2)
    placement = plain.manifest["targets"]["lava"]["placement"]
    assert placement["1"]["loihi2"] == "cpu" and "16-bit a_in" in placement["1"]["reason"]  # 8-bit taps times 8-bit weights
    assert placement["5"]["loihi2"] == "cpu" and "--lava-stock" in placement["5"]["reason"]  # shift and threshold as calibration chose them

    compiled = spc.compile(model, x, tmp_path / "stock", calib=x, input_bits=2, lava_stock=True)
    placement = json.loads((tmp_path / "stock" / "manifest.json").read_text())["targets"]["lava"]["placement"]
    assert {name: placement[name]["processes"][-1] for name in ("1", "3", "5", "7", "9")} == {"1": "LIFReset", "3": "LIFReset", "5": "LIF", "7": "LIF", "9": "TernaryLIF"}
    assert all(p["loihi2"] == "stock" for p in placement.values())
    network = json.loads((tmp_path / "stock" / "lava" / "network.json").read_text())
    classes = {p["name"]: p["class"].rsplit(".", 1)[1] for p in network["processes"]}
    assert classes["1"] == "LIFReset" and classes["9"] == "TernaryLIF" and classes[":always-on"] == "LIF" and "0" not in classes  # 0 became 1's taps
    assert network["read"]["9"]["voltage"] and {"from": "9.v", "to": "9:sink.v_ref"} in network["connections"]
    layers = compiled.quantization["layers"]
    assert layers["1"]["cells"][0]["taps"] == layers["3"]["cells"][0]["taps"] == "pow2" and "lava_stock" in layers["1"]["cells"][0]
    assert (layers["5"]["threshold"]["integer"][0] - 1) % 64 == 0 and layers["5"]["cells"][0]["shift"] >= 6
    for name in ("0", "2", "4", "6", "8"):  # biases are 8-bit mantissas times a power of two
        b = [int(v) for v in compiled.integer.node(name).op.bias if v]
        assert all(abs(v) // (v & -v) <= 127 for v in b), (name, b)

    x_test = spikes(seed=1)
    report = spc.verify(compiled, x_test, backends=("lava",))
    assert report.passed
    lava = {c.layer: c for c in report.comparisons if c.candidate == "lava"}
    for name in ("1", "3", "5", "7", "9"):
        assert lava[name].result() == "ok" and "Lava's stock" in lava[name].note, (name, lava[name].note)
    rec = run_stepwise(compiled.integer, x_test)
    for name in ("1", "3", "5", "7"):
        assert 0.1 <= rec.outputs[name].mean() <= 0.4, (name, rec.outputs[name].mean())


def test_an_fir_that_cannot_fit_keeps_its_taps_and_its_reason():
    """Graded 8-bit inputs through a SlidingPSN: no power-of-two taps fit the 16-bit a_in, so
    --lava-stock leaves the taps as asked (int) and the layer in spc's process, saying why."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 6), spc.SlidingPSN(k=3), nn.Linear(6, 2), spc.LI())
    x = np.random.default_rng(0).normal(size=(8, 2, 10)).astype(np.float32)
    compiled = spc.compile(model, x, calib=x, lava_stock=True)
    assert compiled.quantization["layers"]["1"]["cells"][0]["taps"] == "int"
    placement = plan_network(compiled.integer).placement
    assert placement["1"].loihi2 == "cpu" and "16-bit a_in" in placement["1"].reason


MODELS = """
import torch
from torch import nn
import spc

def stock():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 12), spc.LIF(tau=2.0, v_threshold=0.2), nn.Linear(12, 3), spc.LI(tau=2.0))

def mixed():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 12), spc.MaskedPSN(k=2, T=16, lambda_init=1.0), nn.Linear(12, 8), spc.SPSN(), nn.Linear(8, 8), spc.LIF(v_reset=None), nn.Linear(8, 3), spc.LI())
"""


def test_cli_labels_every_layer_and_lava_stock_only_refuses_with_every_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text(MODELS)
    np.save(tmp_path / "x.npy", spikes())
    args = ["--input-shape", f"{T},1,10", "--calib", "x.npy", "--input-bits", "2"]
    assert main(["compile", "models.py:mixed", "-o", "mixed", "--lava-stock-only", *args]) == 2
    err = capsys.readouterr().err
    assert "--lava-stock-only" in err and "3 of 8 layers" in err
    for layer, why in (("1", "time-indexed"), ("3", "keeps its membrane"), ("5", "subtracting")):
        assert f"    {layer}: " in err and why in err
    assert not (tmp_path / "mixed").exists()

    assert main(["compile", "models.py:mixed", "-o", "mixed", *args]) == 0  # without the flag: labelled, not refused
    out = capsys.readouterr().out
    assert "CPU only: spc process" in out and "Lava: 0 of 4 neuron layers on Lava's stock processes" in out

    assert main(["compile", "models.py:stock", "-o", "stock", "--lava-stock-only", *args]) == 0
    placement = json.loads((tmp_path / "stock" / "manifest.json").read_text())["targets"]["lava"]["placement"]
    assert placement["1"] == {"loihi2": "stock", "processes": ["Dense", "Dense", "LIF"], "reason": placement["1"]["reason"]}
    assert placement["3"]["processes"][-1] == "TernaryLIF"
    capsys.readouterr()
    assert main(["inspect", "stock"]) == 0
    out = capsys.readouterr().out
    assert out.count("Loihi 2: stock") >= 6 and "2 of 2 neuron layers" in out
    assert "scales chosen for Lava's stock processes (--lava-stock):" in out and "rounded to Loihi's grid" in out
