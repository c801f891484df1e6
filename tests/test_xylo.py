"""The Xylo target: spc's integer simulator under the Xylo profile against XyloSim (xylosim's
bit-accurate C++ model of Xylo Audio 2, through Rockpool's mapper), bit for bit, on networks that
fire, saturate and send several spikes per step; Xylo's limits refused by name."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.cli import main
from spc.compiler.xylo import HIDDEN_SPIKES
from spc.errors import SpcError
from spc.runtime import integer
from spc.runtime.backends import run_backend
from spc.runtime.sim import run_stepwise

LAYERS = ("1", "3", "5")


def _network(readout: bool) -> nn.Sequential:
    """12 inputs → LIF (subtractive) 40 → SPSN 24 → 6 outputs (spiking LIF or an LI readout); the
    weights scaled so that the Xylo form fires 10–40 % of the time on 30 % input spikes."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(12, 40, bias=False), spc.LIF(tau=4.0, v_threshold=1.0, v_reset=None),
        nn.Linear(40, 24, bias=False), spc.SPSN(tau_syn=2.0, tau_mem=4.0, threshold=0.5),
        nn.Linear(24, 6, bias=False), spc.LI(tau=4.0) if readout else spc.LIF(tau=2.0, v_threshold=0.5, v_reset=None),
    )
    with torch.no_grad():
        model[0].weight.mul_(16.0)
        model[2].weight.mul_(6.0).add_(0.05)
        model[4].weight.mul_(4.0).add_(0.05)
    return model


def _spikes(shape, rate=0.3, seed=0):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


@pytest.fixture(scope="module", params=[False, True], ids=["spiking-output", "readout"])
def compiled(request, tmp_path_factory):
    x = _spikes((48, 8, 12))
    out = tmp_path_factory.mktemp("xylo") / "out"
    return spc.compile(_network(request.param), x, out, calib=x, targets=("xylo",)), x


def _same(reference, candidate):
    for name in LAYERS:
        np.testing.assert_array_equal(candidate.outputs[name], reference.outputs[name], err_msg=name)
        np.testing.assert_array_equal(candidate.membranes[name], reference.membranes[name], err_msg=name)
    np.testing.assert_array_equal(candidate.output, reference.output)


def test_xylosim_agrees_bit_for_bit_on_networks_that_fire(compiled):
    c, x = compiled
    reference, xylo = run_stepwise(c.integer, x), run_backend("xylo", c, x)
    _same(reference, xylo)
    for name in ("1", "3"):  # hidden layers fire 10-40 % of the time, some with several spikes
        assert 0.1 <= (reference.outputs[name] > 0).mean() <= 0.4, name
    assert reference.outputs["3"].max() > 1
    report = spc.verify(c.path, x, backends=("xylo",), progress=False)
    exact = [r for r in report.comparisons if r.candidate == "xylo"]
    assert report.passed and len(exact) == 4 and all(r.kind == "exact" and r.passed for r in exact)


def test_saturation_and_graded_spikes_agree_and_the_order_of_saturation_matters(compiled, monkeypatch):
    """Input counts up to 15 on scales calibrated for single spikes: synaptic currents and
    membranes saturate hundreds to thousands of times and hidden neurons send up to 31 spikes a step.
    Clipping each synaptic sum once instead of after every term (Xylo's order) would differ."""
    c, _ = compiled
    x = np.random.default_rng(1).integers(0, 20, (48, 8, 12)).astype(np.float32)  # above 15: clipped
    reference, xylo = run_stepwise(c.integer, x), run_backend("xylo", c, x)
    _same(reference, xylo)
    assert all(reference.saturations[n] > 100 for n in LAYERS), reference.saturations
    assert reference.outputs["1"].max() > 2 and reference.outputs["1"].max() <= HIDDEN_SPIKES

    def clip_once(cell, x, v, sats, terms=None):
        return original(cell, x, v, sats, None)  # the sum as one term

    original = integer.synaptic_current
    monkeypatch.setattr(integer, "synaptic_current", clip_once)
    assert not np.array_equal(run_stepwise(c.integer, x).outputs["1"], xylo.outputs["1"])


def test_synaptic_current_adds_terms_in_order_with_saturation():
    """Against a literal transcription of XyloIAFNeuron: one saturating add per spike, in input order."""
    from spc.compiler.qcells import QLeaky

    rng = np.random.default_rng(3)
    cell = QLeaky(mode="dash", decay=np.array([1, 3, 0, 15]), shift=6, width=16, input_first=True)
    weight = rng.integers(-127, 128, (4, 9))
    inputs = rng.integers(0, 16, (20, 5, 9))
    x = np.einsum("tbj,nj->tbn", inputs, weight)
    got, _ = integer.synaptic_current(cell, x, None, integer.Saturations(), integer.Terms(inputs, weight))
    expected = np.empty_like(got)
    for b in range(5):
        for n in range(4):
            i = 0
            for t in range(20):
                for j in range(9):
                    for _ in range(inputs[t, b, j]):
                        i = min(32767, max(-32768, i + (int(weight[n, j]) << 6)))
                d = i >> int(cell.decay[n])
                i -= d if d or not i else (1 if i > 0 else -1)
                expected[t, b, n] = i
    np.testing.assert_array_equal(got, expected)


def test_mapping_says_what_changes_per_layer(compiled):
    c, _ = compiled
    layers = c.quantization["xylo"]["layers"]
    assert layers["1"]["status"] == "approximate" and any("synaptic current" in n for n in layers["1"]["notes"])
    assert any("graded" in n for n in layers["3"]["notes"]) and any("does not reset" in n for n in layers["3"]["notes"])
    assert layers["5"]["status"] in ("exact", "approximate") and layers["5"]["role"] == "output"
    use = c.quantization["xylo"]["resources"]
    assert (use["input channels"], use["hidden neurons"], use["output neurons"], use["fan-out"]) == (12, 64, 6, 24)
    spec = json.loads((c.path / "xylo" / "network.json").read_text())
    assert [(l["name"], l["role"], l["first"], l["depth"]) for l in spec["layers"]] == [("1", "hidden", 0, 0), ("3", "hidden", 40, 1), ("5", "output", 0, 2)]
    weights = np.load(c.path / "xylo" / "spec.npz")
    assert weights["weights_in"].shape == (12, 64) and weights["weights_rec"].shape == (64, 64) and weights["weights_out"].shape == (64, 6)
    assert weights["weights_in"].dtype == np.int8 and not weights["weights_rec"][:40, :40].any()  # layer 1 feeds layer 2 only


def test_a_readout_is_exact_and_read_by_its_membrane(tmp_path):
    """An LI readout is Xylo's output neuron with the leak in its synaptic current and a membrane
    that copies it; it fires (and resets) only at the top of its 16-bit range."""
    x = _spikes((40, 4, 12))
    c = spc.compile(_network(True), x, tmp_path / "out", calib=x, targets=("xylo",))
    assert c.quantization["xylo"]["layers"]["5"] == {"status": "exact", "role": "output", "notes": []}
    fire = c.integer.node("5").op.fire
    assert fire.readout and int(fire.threshold[0]) == 2**15 - 1
    y = spc.run(c.path, x, backend="xylo")
    np.testing.assert_array_equal(y, spc.run(c.path, x))
    assert y.dtype == np.float64 and np.abs(y).max() > 0


def test_an_li_feeding_a_lif_is_one_xylo_neuron(tmp_path):
    """LI → LIF (what spc writes to NIR as one CubaLIF) is Xylo's neuron: the LI is its synaptic
    current. As the output layer (one spike per step at most) it maps exactly."""
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Linear(12, 32, bias=False), spc.LI(tau=2.0, decay_input=False), spc.LIF(tau=4.0, decay_input=False, v_threshold=1.0, v_reset=None),
        nn.Linear(32, 4, bias=False), spc.LI(tau=4.0, decay_input=False), spc.LIF(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=None),
    )
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[3].weight.mul_(3.0).add_(0.1)
    x = _spikes((48, 6, 12))
    c = spc.compile(model, x, tmp_path / "out", calib=x, targets=("xylo",))
    layers = c.quantization["xylo"]["layers"]
    assert layers["1"]["status"] == layers["4"]["status"] == "exact" and "fused with '2'" in layers["1"]["notes"][0]
    assert layers["2"]["status"] == "approximate" and layers["2"]["notes"] == [n for n in layers["2"]["notes"] if "graded" in n]
    assert layers["5"] == {"status": "exact", "role": "output", "notes": []}
    assert [n.name for n in c.integer.neurons()] == ["2", "5"]
    reference, xylo = run_stepwise(c.integer, x), run_backend("xylo", c, x)
    for name in ("2", "5"):
        np.testing.assert_array_equal(xylo.outputs[name], reference.outputs[name])
        np.testing.assert_array_equal(xylo.membranes[name], reference.membranes[name])
    assert 0.1 <= (reference.outputs["2"] > 0).mean() <= 0.4 and reference.output.mean() > 0.05
    report = spc.verify(c.path, x, backends=("xylo",), progress=False)
    assert report.passed
    fidelity = {r.layer: r for r in report.comparisons if r.kind == "fidelity" and r.mode == "isolated"}
    assert set(fidelity) == {"2", "5"} and fidelity["5"].agreement > 0.95, report.table()


def test_one_shift_per_matrix_and_coarser_weights_where_shift_0_overflows(tmp_path):
    """Hidden neurons sending up to 31 spikes a step drive the next synaptic current past 16 bits
    even unshifted: that Linear takes coarser weights (a larger exponent) instead, and nothing
    saturates on the calibration data; each of Xylo's three matrices has one shift."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(12, 40, bias=False), spc.SPSN(tau_syn=2.0, tau_mem=4.0, threshold=0.01),
        nn.Linear(40, 24, bias=False), spc.LIF(tau=4.0, v_threshold=1.0, v_reset=None),
        nn.Linear(24, 16, bias=False), spc.LIF(tau=4.0, v_threshold=1.0, v_reset=None),
        nn.Linear(16, 4, bias=False), spc.LI(tau=4.0),
    )
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.mul_(4.0)
    x = _spikes((40, 6, 12), rate=0.5)
    c = spc.compile(model, x, tmp_path / "out", calib=x, targets=("xylo",))
    weight = c.integer.node("2").op.weight
    assert np.abs(weight).max() < 64 and c.quantization["layers"]["2"]["xylo_matrix"] == "recurrent"  # not the full 8 bits
    shifts = {n.name: n.op.cells[0].shift for n in c.integer.neurons()}
    assert shifts["3"] == shifts["5"] == json.loads((c.path / "xylo" / "network.json").read_text())["weight_shift"]["rec"]
    reference, xylo = run_stepwise(c.integer, x), run_backend("xylo", c, x)
    assert reference.outputs["1"].max() == HIDDEN_SPIKES and not any(reference.saturations.values())
    for name in ("1", "3", "5", "7"):
        np.testing.assert_array_equal(xylo.outputs[name], reference.outputs[name])


def _refusal(model, shape, match, **kw):
    x = _spikes(shape)
    with pytest.raises(SpcError, match=match):
        spc.compile(model, x, calib=x, targets=("xylo",), **kw)


def _chain(*layers):
    torch.manual_seed(0)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("make, shape, match", [
    (lambda: _chain(nn.Linear(17, 8, bias=False), spc.LIF(v_reset=None), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 17), r"input 'input'.*17 channels; Xylo has 16"),
    (lambda: _chain(nn.Linear(4, 8, bias=False), spc.LIF(v_reset=None), nn.Linear(8, 9, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"layer '3'.*9 output neurons; Xylo has 8"),
    (lambda: _chain(nn.Linear(4, 600, bias=False), spc.LIF(v_reset=None), nn.Linear(600, 401, bias=False), spc.LIF(v_reset=None), nn.Linear(401, 2, bias=False), spc.LIF(v_reset=None)), (4, 2, 4), r"layers '1' 600, '3' 401.*1001 hidden neurons; Xylo has 1000"),
    (lambda: _chain(nn.Linear(4, 8, bias=False), spc.LIF(v_reset=None), nn.Linear(8, 65, bias=False), spc.LIF(v_reset=None), nn.Linear(65, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"layer '1'.*connect to 65 hidden neurons; Xylo's fan-out is at most 64"),
    (lambda: _chain(nn.Linear(4, 8), spc.LIF(v_reset=None), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"'0' has a bias"),
    (lambda: _chain(nn.Linear(4, 8, bias=False), spc.SlidingPSN(k=3), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"'1' has a FIR delay line"),
    (lambda: _chain(nn.Linear(4, 8, bias=False), spc.SPSN(stochastic=True), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"'1' fires stochastically"),
    (lambda: _chain(nn.Linear(4, 8, bias=False), spc.LI(), nn.Linear(8, 8, bias=False), spc.LIF(v_reset=None), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"'1' is a non-spiking layer inside the network"),
    (lambda: _chain(nn.Linear(4, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 4), r"needs hidden and output neurons"),
    (lambda: _chain(spc.PerStep(nn.Conv1d(1, 2, 3)), nn.Flatten(2), nn.Linear(8, 2, bias=False), spc.LIF(v_reset=None)), (8, 2, 1, 6), r"Conv; Xylo's network is dense weights"),
])
def test_what_does_not_map_is_refused_naming_the_layer_and_the_limit(make, shape, match):
    _refusal(make(), shape, match)


def test_options_and_targets_of_another_profile_are_refused(tmp_path):
    model = _network(False)
    x = _spikes((16, 2, 12))
    with pytest.raises(SpcError, match=r"--decay shift.*does not apply to the Xylo profile"):
        spc.compile(model, x, calib=x, targets=("xylo",), decay="shift")
    with pytest.raises(SpcError, match=r"target 'onnx'.*default integer profile.*compiled under the xylo profile"):
        spc.compile(model, x, tmp_path / "a", calib=x, targets=("xylo", "onnx"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(SpcError, match=r"target 'xylo'.*compiled under the default profile"):
        spc.compile(model, x, tmp_path / "b", calib=x, targets=("xylo",), profile="default")
    c = spc.compile(model, x, tmp_path / "c", calib=x, profile="xylo")  # every target that can: xylo only
    assert "files" in c.manifest["targets"]["xylo"] and all("skipped" in c.manifest["targets"][t] for t in ("onnx", "nir", "lava"))
    with pytest.raises(SpcError, match=r"backend 'onnx'.*xylo profile"):
        spc.run(c.path, x, backend="onnx")
    with pytest.raises(SpcError, match=r"backend 'lava'.*xylo profile"):
        spc.run(c.path, x, backend="lava")
    default = spc.compile(model, x, tmp_path / "d", calib=x)
    assert "profile" in default.manifest["targets"]["xylo"]["skipped"]
    with pytest.raises(SpcError, match=r"backend 'xylo'.*default profile"):
        spc.run(default.path, x, backend="xylo")


def test_command_line_compiles_runs_verifies_and_inspects_for_xylo(tmp_path, capsys):
    x = _spikes((24, 3, 12))
    np.save(tmp_path / "x.npy", x)
    torch.save(_network(False).state_dict(), tmp_path / "w.pt")
    (tmp_path / "net.py").write_text("import sys\nsys.path.insert(0, %r)\nfrom test_xylo import _network\n\ndef build():\n    return _network(False)\n" % str(__import__("pathlib").Path(__file__).parent))
    out = tmp_path / "out"
    assert main(["compile", f"{tmp_path / 'net.py'}:build", "--weights", str(tmp_path / "w.pt"), "--input-shape", "24,1,12", "--calib", str(tmp_path / "x.npy"), "--target", "xylo", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "xylo: layer '1' approximate" in text and "target xylo: xylo/network.json, xylo/spec.npz" in text
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--backend", "xylo", "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), spc.run(out, x))
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npy"), "--backends", "xylo"]) == 0
    assert "integer         xylo" in capsys.readouterr().out
    assert main(["inspect", str(out), "--input", str(tmp_path / "x.npy")]) == 0
    text = capsys.readouterr().out
    assert "Xylo Audio 2" in text and "64/1000 hidden neurons" in text and "NeuroBench" in text
    again = tmp_path / "again"
    assert main(["compile", f"{tmp_path / 'net.py'}:build", "--weights", str(tmp_path / "w.pt"), "--input-shape", "24,1,12", "--calib", str(tmp_path / "x.npy"), "--target", "xylo", "-o", str(again)]) == 0
    for name in ("xylo/network.json", "xylo/spec.npz", "integer/graph.json", "integer/weights.npz", "quantization.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name  # compiling twice gives the same bytes
