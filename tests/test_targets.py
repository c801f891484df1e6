"""One compile emits every target that can express the model; verify runs them all against spc's
simulators (integer runtimes bit for bit); refusals name the target, the layer and the way out."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.errors import SpcError


def _model(neuron):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), neuron, nn.Linear(8, 8), spc.SlidingPSN(k=3, exp_init=False), nn.Linear(8, 3), spc.LI())


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("targets") / "out"
    x = (np.random.default_rng(0).random((7, 5, 5)) < 0.5).astype(np.float32)
    return spc.compile(_model(spc.LIF(tau=2.0)), x, out, calib=x, decay="shift"), x


def test_every_target_is_emitted_and_listed(compiled):
    c, _ = compiled
    targets = json.loads((c.path / "manifest.json").read_text())["targets"]
    emitted = {"onnx", "nir", "lava"}
    assert set(targets) == emitted | {"xylo"} and all("files" in targets[t] for t in emitted)
    assert "compiled under the default profile" in targets["xylo"]["skipped"]  # Xylo's arithmetic is a profile of its own
    for target in emitted:
        assert all((c.path / f).is_file() for f in targets[target]["files"])


def test_integer_runtimes_agree_bit_for_bit(compiled):
    c, x = compiled
    report = spc.verify(c.path, x, backends=("onnx", "onnx-step", "lava", "onnx-float", "lava-float"))
    assert report.passed, report.table()
    exact = [r for r in report.comparisons if r.kind == "exact"]
    assert {r.candidate for r in exact} == {"onnx", "onnx-step", "lava"}
    assert all(r.spike_mismatches == 0 and r.membrane_violations == 0 for r in exact)
    assert {"onnx", "lava", "lava-float"} <= set(report.wall_time)
    for backend in ("onnx", "lava"):
        np.testing.assert_array_equal(spc.run(c.path, x, backend=backend), spc.run(c.path, x))


def test_verify_names_where_a_runtime_diverges(compiled, tmp_path):
    """A corrupted ONNX file: the report gives the backend, layer, step, sample and neuron."""
    import shutil

    import onnx

    c, x = compiled
    broken = tmp_path / "broken"
    shutil.copytree(c.path, broken)
    model = onnx.load(broken / "model_seq.onnx")
    scan = next(n for n in model.graph.node if n.op_type == "Scan")
    body = next(a.g for a in scan.attribute if a.name == "body")
    weight = next(i for i in body.initializer if i.name.startswith("0/") and len(i.dims) == 2)  # layer '0': the first Linear
    values = onnx.numpy_helper.to_array(weight).copy()
    values[:, 0] += 50  # a much larger weight from input 0
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, broken / "model_seq.onnx")
    report = spc.verify(broken, x, backends=("onnx",))
    bad = [r for r in report.comparisons if r.candidate == "onnx" and not r.passed]
    assert not report.passed and bad[0].layer == "1" and bad[0].first_mismatch is not None
    assert "FAIL" in report.table()


def test_a_named_target_that_cannot_express_the_model_is_refused(tmp_path):
    model = _model(spc.LIF(tau=2.0, v_reset=None))  # reset by subtraction: NIR has no such neuron
    with pytest.raises(SpcError) as e:
        spc.compile(model, (7, 1, 5), tmp_path / "out", targets=("nir",))
    assert "nir" in str(e.value) and "layer '1'" in str(e.value) and "--target" in str(e.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())
    c = spc.compile(model, (7, 1, 5), tmp_path / "out2")  # by default: skipped, with the reason
    assert "subtract" in c.manifest["targets"]["nir"]["skipped"] and "files" in c.manifest["targets"]["onnx"]


def test_onnx_backend_needs_the_compiled_directory():
    c = spc.compile(_model(spc.IF()), (7, 1, 5))
    with pytest.raises(SpcError, match="was not saved"):
        spc.run(c, np.zeros((7, 1, 5), np.float32), backend="onnx")


def test_a_nir_file_compiles_like_a_model(compiled, tmp_path, capsys):
    """spc compile path/to/graph.nir: the round trip reproduces the float stepwise spikes."""
    from spc.cli import main
    from spc.runtime.sim import run_stepwise

    c, x = compiled
    assert main(["compile", str(c.path / "model.nir"), "-o", str(tmp_path / "again"), "--calib", str(_save(tmp_path, x))]) == 0
    again = spc.load(tmp_path / "again")
    assert again.manifest["model"] == "model.nir"
    a, b = run_stepwise(c.stepwise, x), run_stepwise(again.stepwise, x)
    for layer in ("1", "3"):
        np.testing.assert_array_equal(a.outputs[layer], b.outputs[layer])
    assert main(["compile", str(c.path / "model.nir"), "-o", str(tmp_path / "bad"), "--weights", "w.pt"]) == 2
    assert "does not apply to a NIR model" in capsys.readouterr().err


def _save(directory, x):
    path = directory / "calib.npy"
    np.save(path, x)
    return path
