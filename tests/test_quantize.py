"""Quantization: decay forms and their realised time constants, weights and scales, calibration,
and the refusals of bad options and inputs."""

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler import ir
from spc.compiler.cells import Leaky, Neuron
from spc.compiler.qcells import NO_LEAK, QDelayLine, QLeaky, QStepIndexed
from spc.compiler.quantize import exponent, integer_decay, time_constant
from spc.errors import SpcError
from spc.runtime.sim import run_stepwise


def test_decay_forms_and_realised_time_constants():
    a = np.array([0.0, 0.5, 0.9, 0.951229, 1.0])
    d, realised = integer_decay(a, "int12")
    assert d.tolist() == [4096, 2048, 410, 200, 0]  # SPSN's 0.951229 is Loihi's d = 200
    np.testing.assert_allclose(realised, 1 - d / 4096)
    n, realised = integer_decay(a, "shift")
    assert n.tolist() == [0, 1, 3, 4, NO_LEAK]
    np.testing.assert_allclose(realised, [0.0, 0.5, 0.875, 0.9375, 1.0])
    assert time_constant(realised).tolist() == [1.0, 2.0, 8.0, 16.0, np.inf]  # τ = 2^n exactly


def test_exponent_keeps_mantissas_in_range():
    for peak in [1e-6, 0.3, 1.0, 127.0, 127.4, 127.6, 1000.0]:
        e = int(exponent(peak, 127))
        assert np.rint(peak / 2.0**e) <= 127
        assert np.rint(peak / 2.0 ** (e - 1)) > 127  # and uses the range
    assert int(exponent(0.0, 127)) == 0


def _model(**lif):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.LIF(**lif), nn.Linear(8, 8), spc.MaskedPSN(k=2, T=10, lambda_init=1.0), nn.Linear(8, 3), spc.LI())


def _spikes(shape, rate=0.4, seed=0):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


@pytest.mark.parametrize("decay", ["int12", "shift"])
def test_quantized_graph_structure(decay):
    x = _spikes((10, 32, 6))
    c = spc.compile(_model(tau=2.0), x, calib=x, decay=decay)
    kinds = [(n.name, n.op.kind) for n in c.integer.nodes]
    assert kinds[:2] == [("input", "Input"), ("input:quantize", "Quantize")] and kinds[-1] == ("output:dequantize", "Dequantize")
    assert c.integer.node("input:quantize").op.scale == 1.0  # spike inputs need no scaling
    lin = c.integer.node("0").op
    assert lin.weight.dtype == np.int8 and 64 <= np.abs(lin.weight).max() <= 127
    cells = {n.name: n.op.cells[0] for n in c.integer.neurons()}
    assert isinstance(cells["1"], QDelayLine) and isinstance(cells["3"], QLeaky) and isinstance(cells["5"], QStepIndexed)
    assert cells["3"].mode == decay and cells["3"].decay.tolist() == ([2048] if decay == "int12" else [1])
    assert c.quantization["layers"]["3"]["cells"][0]["realised_tau"] == [2.0]


def test_pow2_taps_are_signed_powers_of_two():
    x = _spikes((10, 32, 6))
    c = spc.compile(_model(tau=2.0), x, calib=x, taps="pow2")
    for name in ("1", "5"):
        cell = c.integer.node(name).op.cells[0]
        taps = np.abs(cell.taps if name == "1" else cell.weights)
        nonzero = taps[taps > 0]
        assert np.all(nonzero & (nonzero - 1) == 0) and nonzero.max() <= 64


def test_scales_fold_into_weights_exactly_for_real_valued_inputs():
    """A non-spike input gets a power-of-two Quantize scale; the float and integer outputs agree closely."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), spc.LIF(tau=4.0, v_threshold=0.5), nn.Linear(16, 2), spc.LI(tau=2.0))
    x = np.random.default_rng(0).uniform(-1, 1, (20, 16, 4)).astype(np.float32)
    c = spc.compile(model, x, calib=x)
    assert c.integer.node("input:quantize").op.scale == 2.0**-6  # 127 levels for |x| <= 1
    report = spc.verify(c, x)
    lif = next(r for r in report.comparisons if r.layer == "1" and r.kind == "fidelity")
    assert lif.agreement > 0.97
    assert report.saturations == {"1": 0, "3": 0}


def test_conv_and_average_pooling_quantize():
    torch.manual_seed(0)
    model = nn.Sequential(spc.PerStep(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.AvgPool2d(2)), spc.IF(), spc.PerStep(nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(3, padding=1, count_include_pad=False)), nn.Flatten(2), nn.Linear(16, 3), spc.LI())
    model.eval()
    x = _spikes((8, 16, 1, 8, 8), rate=0.5)
    c = spc.compile(model, x, calib=x)
    assert c.integer.node("0.2").op.kind == "SumPool2d"
    report = spc.verify(c, x)
    assert next(r for r in report.comparisons if r.layer == "1" and r.kind == "fidelity").agreement > 0.97


def test_per_channel_exponents():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), spc.LIF(tau=2.0), nn.Linear(4, 3), spc.LI())
    with torch.no_grad():
        model[0].weight[0] *= 100  # one row much larger than the others
    x = _spikes((10, 8, 6))
    per_layer = spc.compile(model, x, calib=x)
    per_channel = spc.compile(model, x, calib=x, per_channel=True)
    assert len(set(per_layer.quantization["layers"]["0"]["weight_exponent"])) == 1
    assert len(set(per_channel.quantization["layers"]["0"]["weight_exponent"])) > 1
    assert np.all(np.abs(per_channel.integer.node("0").op.weight).max(axis=1) >= 64)  # every row uses its range
    assert len(per_channel.quantization["layers"]["1"]["membrane_scale"]) == 4


def test_per_channel_scales_cannot_feed_a_time_indexed_layer():
    x = _spikes((10, 8, 6))
    model = _model(tau=2.0)
    with torch.no_grad():
        model[4].weight[0] *= 100
    with pytest.raises(SpcError, match="layer '5'") as e:
        spc.compile(model, x, calib=x, per_channel=True)
    assert "one scale per channel" in str(e.value) and "no --per-channel" in str(e.value)


def test_quantization_warns_when_a_layer_falls_silent():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), spc.LIF(tau=2.0, decay_input=False), nn.Linear(4, 2), spc.LI())
    with torch.no_grad():
        model[0].weight.fill_(0.3)  # the float membrane settles at 2 x 0.9: it fires
        model[0].weight[0, 3] = 2.0  # from an input that stays silent, but it sets the layer's exponent
        model[0].bias.fill_(0.0)
    x = np.ones((6, 2, 4), np.float32)
    x[..., 3] = 0
    c = spc.compile(model, x, calib=x, weight_bits=2)  # 2-bit weights: 0.3 rounds to 0 next to 2.0
    assert any("silenced" in w for w in c.quantization["warnings"])
    c = spc.compile(model, x)  # no calibration data
    assert "no calibration data" in c.quantization["warnings"][0]


def test_bad_options_and_inputs_are_refused():
    model = _model(tau=2.0)
    with pytest.raises(SpcError, match="--decay float16") as e:
        spc.compile(model, (10, 1, 6), decay="float16")
    assert "int12, shift" in str(e.value)
    with pytest.raises(SpcError, match="--width 4"):
        spc.compile(model, (10, 1, 6), width=4)
    with pytest.raises(SpcError, match="calibration data: has shape"):
        spc.compile(model, (10, 1, 6), calib=np.zeros((10, 2, 5), np.float32))
    big = nn.Sequential(nn.Linear(6, 4), spc.LIF(tau=2.0, v_threshold=1e6), nn.Linear(4, 2), spc.LI())
    with pytest.raises(SpcError, match="layer '1'") as e:
        spc.compile(big, (10, 1, 6), width=8)
    assert "threshold" in str(e.value) and "8-bit state" in str(e.value)
    with pytest.raises(ValueError, match="tau"):
        spc.LIF(tau=-2.0)
    bad = Neuron(cells=(Leaky(decay=np.array([1.5]), gain=np.ones(1)),))
    with pytest.raises(SpcError, match="decay 1.5..1.5 lies outside"):
        ir.Graph((ir.Node("input", ir.Input((3,))), ir.Node("n", bad, ("input",))), ("n",))


def test_integer_artifact_round_trips(tmp_path):
    x = _spikes((10, 8, 6))
    c = spc.compile(_model(tau=2.0), x, tmp_path / "out", calib=x, decay="shift")
    loaded = spc.load(tmp_path / "out")
    a, b = run_stepwise(c.integer, x), run_stepwise(loaded.integer, x)
    np.testing.assert_array_equal(a.output, b.output)
    assert loaded.quantization == __import__("json").loads(__import__("json").dumps(c.quantization))
    np.testing.assert_array_equal(spc.run(tmp_path / "out", x), a.output)
