"""ONNX emitter and runner: the integer ONNX graphs, run by onnxruntime (whole-sequence Scan and
one-step graph driven from Python) and by onnx's reference evaluator, equal spc's integer simulator
bit for bit (spikes, membranes, output); the float ONNX graphs agree with the float simulator within
float64 rounding; every model passes the ONNX checker; what ONNX cannot express is refused."""

import json

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import spc
from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import DelayLine, Fire, Gate, Gated, Leaky, Neuron, Resonator, Sigmoid, StepIndexed
from spc.compiler.emit.onnx import FILES, OPSET, emit_onnx, onnx_models
from spc.compiler.qcells import LUT_SIZE, NO_LEAK, QFire, QLeaky
from spc.compiler.serialize import save_graph
from spc.errors import SpcError
from spc.runtime.onnx_runner import run_onnx
from spc.runtime.sim import run_stepwise
from test_integer_cells import integer_neurons

RUNS = (("seq", "ort"), ("step", "ort"), ("seq", "reference"))
FLOAT_RTOL = 1e-12
"""Float ONNX vs the float simulator: both compute in float64 with the same operations, except the
summation order inside GEMMs, windows and FIR cells (and Exp's last ulp), so membranes agree to a
few ulps of the largest value summed; 1e-12 relative to the layer's peak leaves ample margin."""


def _compile(tmp_path, model, x, calib=None, **options):
    out = tmp_path / "model"
    compiled = spc.compile(model, x, out, calib=x if calib is None else calib, **options)
    emit_onnx(compiled, out)
    return compiled, out


def _emit_graph(graph: ir.Graph, form: str, out):
    """A hand-built graph written as a compiled model's directory would hold it, with its ONNX models."""
    save_graph(graph, out / ("integer" if form == "integer" else "stepwise"))
    for kind, model in onnx_models(graph, form).items():
        onnx.save(model, out / FILES[(form, kind)])
    return out


def assert_integer_equal(graph: ir.Graph, out, x, runs=RUNS):
    ref = run_stepwise(graph, x)
    names = {n.name for n in graph.neurons()}
    for kind, engine in runs:
        rec = run_onnx(out, x, "integer", kind, engine)
        assert set(rec.membranes) == names and set(rec.outputs) == names | {graph.outputs[0]}
        for name in names:
            np.testing.assert_array_equal(rec.membranes[name], ref.membranes[name], err_msg=f"{kind}/{engine} membrane of {name}")
            np.testing.assert_array_equal(rec.outputs[name], ref.outputs[name], err_msg=f"{kind}/{engine} output of {name}")
        np.testing.assert_array_equal(rec.output, ref.output, err_msg=f"{kind}/{engine} output")
    return ref


def assert_float_close(graph: ir.Graph, out, x, runs=RUNS):
    ref = run_stepwise(graph, x)
    for kind, engine in runs:
        rec = run_onnx(out, x, "float", kind, engine)
        for n in graph.neurons():
            peak = max(1.0, float(np.abs(ref.membranes[n.name]).max()))
            np.testing.assert_allclose(rec.membranes[n.name], ref.membranes[n.name], rtol=0, atol=FLOAT_RTOL * peak, err_msg=f"{kind}/{engine} membrane of {n.name}")
            if n.op.spiking:  # no membrane lies within 1e-12 of a threshold here: spikes are equal
                np.testing.assert_array_equal(rec.outputs[n.name], ref.outputs[n.name], err_msg=f"{kind}/{engine} spikes of {n.name}")
        np.testing.assert_allclose(rec.output, ref.output, rtol=0, atol=FLOAT_RTOL * max(1.0, float(np.abs(ref.output).max())))
    return ref


def _every_neuron():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 12), spc.SlidingPSN(k=3),
        nn.Linear(12, 12), spc.LIF(tau=2.0),  # reset to zero
        nn.Linear(12, 12), spc.IF(v_reset=None),  # reset by subtraction
        nn.Linear(12, 12), spc.MaskedPSN(k=3, T=12, lambda_init=1.0),
        nn.Linear(12, 12), spc.SPSN(tau_syn=3.0, tau_mem=2.0),
        nn.Linear(12, 12), spc.SPSN(tau_syn=3.0, tau_mem=2.0, stochastic=True, seed=7),
        nn.Linear(12, 3), spc.LI(tau=4.0),
    )  # fmt: skip
    with torch.no_grad():  # every layer fires at a moderate rate
        for layer in model[::2]:
            layer.weight *= 3
        model[7].bias.fill_(0.0)
    return model


def _real_inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)


def _with_rounding_ties(x, scale):
    """Put some inputs exactly halfway between two quantization levels (rint rounds half to even)."""
    x = x.copy()
    x[:, :, 0] = (np.floor(x[:, :, 0] / scale) + 0.5) * scale
    return x


def _spike_rates(ref, graph):
    return [float(ref.outputs[n.name].mean()) for n in graph.neurons() if n.op.spiking]


@pytest.mark.parametrize("decay,taps", [("int12", "int"), ("shift", "pow2"), ("shift", "int")])
def test_integer_onnx_equals_the_simulator_for_every_cell(tmp_path, decay, taps):
    x = _real_inputs((12, 5, 6))
    compiled, out = _compile(tmp_path, _every_neuron(), x, decay=decay, taps=taps)
    scale = compiled.integer.node("input:quantize").op.scale
    assert scale != 1.0
    ref = assert_integer_equal(compiled.integer, out, _with_rounding_ties(x, scale))
    assert all(0 < r < 1 for r in _spike_rates(ref, compiled.integer))  # every layer fires, none always


def test_float_onnx_agrees_with_the_float_simulator(tmp_path):
    x = _real_inputs((12, 5, 6))
    compiled, out = _compile(tmp_path, _every_neuron(), x)
    ref = assert_float_close(compiled.stepwise, out, x, RUNS + (("step", "reference"),))
    assert all(0 < r < 1 for r in _spike_rates(ref, compiled.stepwise))


@pytest.mark.parametrize("decay", ["int12", "shift"])
def test_saturation_is_reproduced(tmp_path, decay):
    """Calibrated on random signs, driven by inputs aligned with the weights: the slow leaky
    integrators outgrow their calibrated range and saturate, identically."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), spc.LI(tau=50.0, decay_input=False), nn.Linear(8, 8), spc.IF(v_reset=None), nn.Linear(8, 2), spc.LI(tau=50.0, decay_input=False))
    calib = _real_inputs((40, 4, 6))
    x = np.broadcast_to(np.sign(model[0].weight.detach().numpy()[:4])[None] * 2, (40, 4, 6)).astype(np.float32)
    compiled, out = _compile(tmp_path, model, x, calib=calib, width=12, decay=decay)
    ref = assert_integer_equal(compiled.integer, out, x)
    assert ref.saturations["1"] > 100 and ref.saturations["3"] > 10


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = spc.PerStep(nn.Conv2d(2, 4, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(4), nn.MaxPool2d(3, stride=2, padding=1))
        self.n1 = spc.SlidingPSN(k=2)
        self.block = spc.PerStep(nn.Conv2d(4, 4, 3, padding=1, groups=2))
        self.n2 = spc.LIF(tau=2.0, v_threshold=0.2, v_reset=None)
        self.pool = spc.PerStep(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False))
        self.fc = nn.Linear(16, 6)
        self.n3 = spc.MaskedPSN(k=2, T=8, lambda_init=1.0)
        self.n3.bias.data.fill_(0.0)
        self.out = nn.Linear(6, 3)
        self.readout = spc.LI()

    def forward(self, x):
        y = self.n1(self.features(x))
        y = y + self.n2(self.block(y))  # residual: two spike tensors on scale 1
        y = self.n3(self.fc(torch.flatten(self.pool(y), 2)))
        return self.readout(self.out(y))


def _conv1d_net():
    torch.manual_seed(0)
    return nn.Sequential(
        spc.PerStep(nn.Conv1d(2, 4, 3, padding=2, dilation=2, stride=2)),
        spc.SPSN(tau_syn=3.0, tau_mem=2.0, stochastic=True, seed=5),
        spc.PerStep(nn.Conv1d(4, 4, 1, groups=4, bias=False)),
        spc.LIF(tau=2.0, v_threshold=0.2),
        nn.Flatten(2), nn.Linear(20, 3), spc.LI(),
    )  # fmt: skip


@pytest.mark.parametrize("net", ["conv2d", "conv1d"])
def test_convolution_pooling_and_residual_graphs(tmp_path, net):
    torch.manual_seed(0)
    model = ConvNet().eval() if net == "conv2d" else _conv1d_net()
    shape = (8, 3, 2, 8, 8) if net == "conv2d" else (8, 3, 2, 10)
    x = (np.random.default_rng(1).random(shape) < 0.5).astype(np.float32) * 2
    compiled, out = _compile(tmp_path, model, x)
    expected = {"Conv", "SumPool2d", "MaxPool2d", "Add"} if net == "conv2d" else {"Conv"}
    assert expected <= {n.op.kind for n in compiled.integer.nodes}
    ref = assert_integer_equal(compiled.integer, out, x)
    assert all(r > 0 for r in _spike_rates(ref, compiled.integer))
    assert_float_close(compiled.stepwise, out, x, RUNS[:1])


def _gemm_types(model: onnx.ModelProto, layer: str) -> set[int]:
    """The element types the layer's GEMM inputs are cast to (in the Scan body)."""
    body = next(n for n in model.graph.node if n.op_type == "Scan").attribute[0].g
    return {a.i for n in body.node if n.name.startswith(f"{layer}/") and n.op_type == "Cast" for a in n.attribute if a.i != onnx.TensorProto.INT64}


def test_gemm_precision_follows_the_compile_time_bound(tmp_path):
    """float32 where Σ|w|·max|x| < 2^24 (spikes, 8-bit inputs), float64 beyond (a 20-bit readout feeding a layer)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), spc.LI(tau=2.0), nn.Linear(8, 6), spc.LIF(tau=2.0), nn.Linear(6, 2), spc.LI())
    x = _real_inputs((10, 4, 4))
    compiled, out = _compile(tmp_path, model, x, width=20)
    seq = onnx.load(out / FILES[("integer", "seq")])
    assert _gemm_types(seq, "0") == {onnx.TensorProto.FLOAT} and _gemm_types(seq, "2") == {onnx.TensorProto.DOUBLE}
    assert _gemm_types(seq, "4") == {onnx.TensorProto.FLOAT}
    ref = assert_integer_equal(compiled.integer, out, x)
    assert np.abs(ref.outputs["1"]).max() > 2**12  # large integers do reach the float64 GEMM


def test_models_pass_the_checker_and_document_their_state(tmp_path):
    x = _real_inputs((12, 2, 6))
    compiled, out = _compile(tmp_path, _every_neuron(), x)
    for (form, kind), name in FILES.items():
        model = onnx.load(out / name)
        onnx.checker.check_model(model, full_check=True)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["spc.form"] == form and meta["spc.graph"] == kind and meta["spc.opset"] == str(OPSET)
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"Loop", "Conv", "Gemm", "MatMulInteger", "ConvInteger"}
        if kind == "seq":
            assert ops & {"Scan"} and sum(n.op_type == "Scan" for n in model.graph.node) == 1
            continue
        state = json.loads(meta["spc.state"])
        inputs, outputs = {i.name for i in model.graph.input}, {o.name for o in model.graph.output}
        assert {s["in"] for s in state} | {"x"} == inputs and {s["out"] for s in state} <= outputs
        assert all(s["initial"] == 0 for s in state) and "state_in.step" in inputs  # MaskedPSN and the stochastic SPSN count steps
        assert "state_in.1.0" in model.graph.doc_string and "start at zero" in model.graph.doc_string
        assert {f"spikes.{n}" for n in ("1", "3", "5", "7", "9", "11")} | {f"membrane.{n}" for n in ("1", "13")} <= outputs


# --- hand-built graphs: every integer cell parameter the compiler may produce, and more ----------


def graph_around(draw, neuron: Neuron, x: np.ndarray, width: int):
    """The integer neuron behind a Quantize (24 bits, scale 1); a spiking one feeds a Linear and a
    readout of `width` bits. Returns the graph and x in float64."""
    channels = x.shape[2]
    nodes = [ir.Node("input", ir.Input((channels,))), ir.Node("input:quantize", ir.Quantize(scale=1.0, bits=24), ("input",)), ir.Node("n", neuron, ("input:quantize",))]
    if neuron.spiking:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        readout = Neuron(cells=(QLeaky(mode="int12", decay=np.array([300]), shift=0, width=width),))
        nodes += [ir.Node("fc", ir.Linear(rng.integers(-127, 128, (2, channels)).astype(np.int8), rng.integers(-99, 100, 2)), ("n",)), ir.Node("out", readout, ("fc",))]
    return ir.Graph(tuple(nodes), (nodes[-1].name,)), x.astype(np.float64)


@st.composite
def integer_graphs(draw):
    """test_integer_cells' random integer neurons (every cell, parameter and firing rule, inputs up
    to saturation), sometimes with the widest state, in `graph_around`."""
    neuron, x = draw(integer_neurons())
    if draw(st.booleans()):
        neuron = neuron.replace(cells=tuple(cell.replace(width=32) for cell in neuron.cells))
    return graph_around(draw, neuron, x, neuron.cells[-1].width)


@given(integer_graphs())
def test_integer_onnx_equals_the_simulator_on_hand_built_cells(tmp_path_factory, case):
    graph, x = case
    out = _emit_graph(graph, "integer", tmp_path_factory.mktemp("graph"))
    assert_integer_equal(graph, out, x)


def test_integer_threshold_ties_and_reset_saturation(tmp_path):
    """Hand-computed: a membrane that lands exactly on θ fires with >= but not with >, and a
    subtractive reset below -2^(W-1)+1 saturates (a stochastic rule whose table always fires)."""
    def integrator(threshold, strict=False, reset="zero", **fire):
        return Neuron(cells=(QLeaky(mode="shift", decay=np.array([NO_LEAK]), shift=0, width=8),), fire=QFire(threshold=np.array([threshold]), strict=strict, reset=reset, **fire))

    always = {"stochastic": True, "seed": 3, "lut": np.full((1, LUT_SIZE), 2**24)}
    nodes = (
        ir.Node("input", ir.Input((1,))), ir.Node("input:quantize", ir.Quantize(scale=1.0, bits=8), ("input",)),
        ir.Node("ge", integrator(3), ("input:quantize",)), ir.Node("gt", integrator(3, strict=True), ("input:quantize",)),
        ir.Node("sub", integrator(100, reset="subtract", **always), ("input:quantize",)), ir.Node("sum", ir.Add(), ("ge", "gt")),
    )  # fmt: skip
    graph = ir.Graph(nodes, ("sum",))
    ref = assert_integer_equal(graph, _emit_graph(graph, "integer", tmp_path), np.ones((8, 1, 1)))
    assert ref.outputs["ge"][:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    assert ref.outputs["gt"][:, 0, 0].tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    assert ref.membranes["sub"][:3, 0, 0].tolist() == [1, -98, -126] and ref.saturations["sub"] > 0


FLOAT_CELLS = ["leaky", "delay", "indexed", "sigmoid", "gate", "gated", "resonator"]


@st.composite
def float_graphs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels, steps = draw(st.integers(1, 3)), draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(FLOAT_CELLS), max_size=2)) + [draw(st.sampled_from(FLOAT_CELLS))]
    cells = []
    for kind in kinds:
        if kind == "leaky":
            cells.append(Leaky(decay=rng.uniform(0, 1, channels), gain=rng.uniform(-2, 2, channels)))
        elif kind == "delay":
            cells.append(DelayLine(taps=rng.normal(size=(channels, int(rng.integers(1, 4)))), bias=rng.normal(size=channels), dilation=int(rng.integers(1, 4))))
        elif kind == "indexed":
            k = int(rng.integers(1, 4))
            cells.append(StepIndexed(weights=rng.normal(size=(steps, k)), bias=rng.normal(size=steps)))
        elif kind == "sigmoid":
            cells.append(Sigmoid(gain=rng.uniform(-2, 2, channels)))
        elif kind == "gate":
            cells.append(Gate(gain=rng.uniform(-2, 2, channels), stochastic=draw(st.booleans()), seed=int(rng.integers(0, 2**32))))
        elif kind == "gated":  # gate inputs far beyond ±709 too, where exp(−z) overflows
            cells.append(Gated(taps=rng.normal(size=(channels, int(rng.integers(1, 4)))) * draw(st.sampled_from([1, 1e3])), bias=rng.normal(size=channels)))
        else:
            angle, magnitude = rng.uniform(-np.pi, np.pi, channels), rng.uniform(0.5, 1, channels)
            cells.append(Resonator(decay_re=magnitude * np.cos(angle), decay_im=magnitude * np.sin(angle), gain=rng.uniform(-2, 2, channels)))
    reset = draw(st.sampled_from(["none", "zero", "subtract"])) if kind == "leaky" else "none"
    fire = Fire(threshold=rng.uniform(-0.5, 1.5, channels), strict=draw(st.booleans()), reset=reset, stochastic=draw(st.booleans()), seed=int(rng.integers(0, 2**32)))
    nodes = (ir.Node("input", ir.Input((channels,))), ir.Node("n", Neuron(cells=tuple(cells), fire=fire), ("input",)))
    return ir.Graph(nodes, ("n",)), rng.normal(size=(steps, 3, channels))


@given(float_graphs())
def test_float_onnx_agrees_on_hand_built_cells(tmp_path_factory, case):
    graph, x = case
    assert_float_close(graph, _emit_graph(graph, "float", tmp_path_factory.mktemp("graph")), x, RUNS[:2])


# --- refusals --------------------------------------------------------------------------------


def test_what_onnx_cannot_express_is_refused_and_nothing_is_written(tmp_path):
    x = _real_inputs((12, 2, 6))
    compiled = spc.compile(_every_neuron(), x, calib=x)
    unlowered = Compiled(compiled.parallel, compiled.parallel)
    with pytest.raises(SpcError, match="onnx target, layer '1'") as e:
        emit_onnx(unlowered, tmp_path / "out")
    assert "SlidingPSN" in str(e.value) and "not lowered" in str(e.value) and "fix:" in str(e.value)
    assert not (tmp_path / "out").exists()

    pooled = ir.Graph((ir.Node("input", ir.Input((1, 4, 4))), ir.Node("input:quantize", ir.Quantize(scale=1.0, bits=8), ("input",)), ir.Node("pool", ir.AvgPool2d((2, 2), (2, 2), (0, 0)), ("input:quantize",))), ("pool",))
    with pytest.raises(SpcError, match="onnx target, layer 'pool'") as e:
        onnx_models(pooled, "integer")
    assert "AvgPool2d" in str(e.value) and "SumPool2d" not in str(e.value) and "spc compile" in str(e.value)

    mixed = compiled.integer.with_ops({"3": compiled.stepwise.node("3").op})  # a float cell in the integer graph
    with pytest.raises(SpcError, match="onnx target, layer '3'") as e:
        onnx_models(mixed, "integer")
    assert "Leaky cell" in str(e.value)


def test_runner_refuses_bad_requests_and_inputs(tmp_path):
    x = _real_inputs((12, 2, 6))
    compiled, out = _compile(tmp_path, _every_neuron(), x)
    with pytest.raises(SpcError, match="ONNX engine 'tensorrt'"):
        run_onnx(out, x, engine="tensorrt")
    with pytest.raises(SpcError, match="ONNX form 'int8'"):
        run_onnx(out, x, form="int8")
    with pytest.raises(SpcError, match="input: has shape"):
        run_onnx(out, x[..., :5])
    with pytest.raises(SpcError, match="layer '7' is time-indexed"):  # the MaskedPSN's T = 12
        run_onnx(out, np.concatenate([x, x]))
    with pytest.raises(SpcError, match="holds no compiled spc model with an integer graph"):
        run_onnx(tmp_path, x)
    float_only = tmp_path / "float-only"
    emit_onnx(spc.compile(_every_neuron(), x, float_only, integer=False), float_only)
    assert sorted(p.name for p in float_only.glob("*.onnx")) == ["model_float.onnx", "model_float_seq.onnx"]
    with pytest.raises(SpcError, match="holds no compiled spc model with an integer graph"):
        run_onnx(float_only, x)
    assert run_onnx(float_only, x, form="float").output.shape == (12, 2, 3)
    (out / FILES[("float", "step")]).unlink()
    with pytest.raises(SpcError, match="does not exist"):
        run_onnx(out, x, form="float", graph="step")
