"""ONNX forms of the gated and resonant cells (Sigmoid, Gate, Gated, Resonator and their integer
forms): for a layer of every neuron family that lowers to them, with both decay forms, the integer
ONNX graphs (onnxruntime Scan and step graph, onnx's reference evaluator) equal spc's integer
simulator bit for bit on every node, branch nodes and aligners included, also where inputs beyond
the calibrated range saturate; the float ONNX graphs agree with the float simulator; random integer
cells with extreme parameters agree too."""

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import spc
from spc.compiler.cells import Neuron
from spc.compiler.emit.onnx import FILES
from spc.compiler.qcells import LUT_SIZE, QFire
from test_integer_cells_nonlinear import nonlinear_neurons
from test_onnx import RUNS, _compile, _emit_graph, assert_float_close, assert_integer_equal, graph_around

STEPS, FEATURES, HIDDEN = 12, 32, 8


def _dsn():
    neuron = spc.DSN(HIDDEN, k=3, threshold=0.5)
    with torch.no_grad():  # a gate that depends on the input (it starts at zero)
        neuron.weight.normal_()
    return neuron


FAMILIES = {  # the layer, and the integer cell its lowering must contain
    "PSU": (lambda: spc.PSU(T=STEPS, tau=3.0, threshold=0.3), "QSigmoid"),
    "IPSU": (lambda: spc.IPSU(T=STEPS, tau=3.0, threshold=0.5), "QStepIndexed"),
    "RPSU": (lambda: spc.RPSU(T=STEPS, tau=3.0, threshold=0.3), "QSigmoid"),
    "MPEPSN-A-stochastic": (lambda: spc.MPEPSN("A", seed=3), "QGate"),
    "MPEPSN-A-expected": (lambda: spc.MPEPSN("A", stochastic=False), "QGate"),
    "MPEPSN-B-stochastic": (lambda: spc.MPEPSN("B", seed=5), "QGate"),
    "MPEPSN-B-expected": (lambda: spc.MPEPSN("B", stochastic=False), "QGate"),
    "ChannelwisePSN": (lambda: spc.ChannelwisePSN(HIDDEN, k=3, dilation=2), "QDelayLine"),
    "DSN": (_dsn, "QGated"),
    "PRF": (lambda: spc.PRF(HIDDEN, threshold=0.05), "QResonator"),
}


def _model(family: str) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, HIDDEN), FAMILIES[family][0](), nn.Linear(HIDDEN, 3), spc.LI(tau=3.0)).eval()
    with torch.no_grad():
        model[0].weight *= 2
    return model


def _inputs(model):
    """Calibration on sparse random inputs; the test batch holds two random samples and two whose
    every input is ±2 aligned with a row of the first weights: their synaptic sums reach several
    times the calibrated peaks, and the cells saturate."""
    rng = np.random.default_rng(0)
    calib = rng.uniform(-2, 2, (STEPS, 4, FEATURES)) * (rng.random((STEPS, 4, FEATURES)) < 0.25)
    aligned = np.broadcast_to(2 * np.sign(model[0].weight.detach().numpy()[:2]), (STEPS, 2, FEATURES))
    x = np.concatenate([rng.uniform(-2, 2, (STEPS, 2, FEATURES)), aligned], axis=1)
    return calib.astype(np.float32), x.astype(np.float32)


def _compiled(tmp_path, family, **options):
    model = _model(family)
    calib, x = _inputs(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saturation and firing-rate warnings are expected here
        compiled, out = _compile(tmp_path, model, x, calib=calib, **options)
    return compiled, out, x


@pytest.mark.parametrize("decay", ["int12", "shift"])
@pytest.mark.parametrize("family", FAMILIES)
def test_integer_onnx_equals_the_simulator_for_every_family(tmp_path, family, decay):
    compiled, out, x = _compiled(tmp_path, family, decay=decay)
    cells = {type(c).__name__ for n in compiled.integer.neurons() for c in n.op.cells}
    assert FAMILIES[family][1] in cells
    ref = assert_integer_equal(compiled.integer, out, x)  # every node: the layer, its branches, aligners
    rate = ref.outputs["1"][:, :2].mean()
    assert 0 < rate < 1  # the layer fires on the random samples, not always
    assert sum(ref.saturations.values()) > 0


def test_state_of_the_two_state_cells_is_documented(tmp_path):
    """A resonator keeps u and r, a gated cell its membrane and its gate's past inputs."""
    for family, keys in (("PRF", ("1.0", "1.0.r")), ("DSN", ("1.0", "1.0.gate"))):
        _, out, _ = _compiled(tmp_path / family, family)
        model = onnx.load(out / FILES[("integer", "step")])
        state = {s["in"] for s in json.loads({p.key: p.value for p in model.metadata_props}["spc.state"])}
        assert {f"state_in.{k}" for k in keys} <= state and all(f"state_in.{k} ->" in model.graph.doc_string for k in keys)


@pytest.mark.parametrize("family", FAMILIES)
def test_float_onnx_agrees_with_the_float_simulator_for_every_family(tmp_path, family):
    compiled, out, x = _compiled(tmp_path, family, integer=False)
    ref = assert_float_close(compiled.stepwise, out, x)
    assert 0 < ref.outputs["1"].mean() < 1


@st.composite
def nonlinear_graphs(draw):
    """test_integer_cells_nonlinear's random chains of integer gated and resonant cells (tables,
    shifts of both signs, widths down to 8 bits, inputs up to saturation), sometimes firing
    (deterministically or by table), in `graph_around`."""
    cells, x = draw(nonlinear_neurons())
    channels = x.shape[2]
    fire = None
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        stochastic = draw(st.booleans())
        lut = np.sort(rng.integers(0, 2**24 + 1, (channels, LUT_SIZE)), axis=1) if stochastic else None
        fire = QFire(threshold=rng.integers(-200, 2000, channels), strict=draw(st.booleans()), stochastic=stochastic, seed=int(rng.integers(0, 2**31)), lut=lut, lut_shift=int(rng.integers(0, 8)))
    return graph_around(draw, Neuron(cells=cells, fire=fire), x, 24)


@given(nonlinear_graphs())
def test_integer_onnx_equals_the_simulator_on_random_nonlinear_cells(tmp_path_factory, case):
    graph, x = case
    assert_integer_equal(graph, _emit_graph(graph, "integer", tmp_path_factory.mktemp("graph")), x, RUNS)
