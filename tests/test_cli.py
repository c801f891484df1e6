"""The command line: compile, verify, run, inspect, and its refusals (clear message, exit status,
no output left behind)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from spc.cli import main
from spc.compiler.serialize import write_npz

MODEL_FILE = textwrap.dedent(
    """
    import torch
    from torch import nn
    import spc

    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.MaskedPSN(k=2, T=6, lambda_init=1.0), nn.Linear(8, 3), spc.LI())

    def noncausal():
        return nn.Sequential(nn.Linear(5, 4), spc.PSN(T=6))

    def with_lstm():
        return nn.Sequential(nn.Linear(5, 4), nn.LSTM(4, 4))

    def not_a_model():
        return 42

    class StepLoopNeuron(nn.Module):  # a hand-written IF neuron: a Python loop over time
        def __init__(self):
            super().__init__()
            self.v_threshold = 1.0

        def forward(self, x_seq):
            v, out = torch.zeros_like(x_seq[0]), []
            for t in range(x_seq.shape[0]):
                v = v + x_seq[t]
                out.append((v >= self.v_threshold).float())
                v = v * (1 - out[-1])
            return torch.stack(out)

    def with_own_neuron():
        return nn.Sequential(nn.Linear(5, 4), nn.Sequential(nn.Linear(4, 4), StepLoopNeuron()))

    def needs_a_package():
        import a_package_that_is_not_installed  # noqa: F401

    def negative_tau():
        return nn.Sequential(nn.Linear(5, 4), spc.LIF(tau=-3.0))

    def huge_threshold():
        return nn.Sequential(nn.Linear(5, 4), spc.LIF(tau=2.0, v_threshold=1e15), nn.Linear(4, 3), spc.LI())
    """
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL_FILE)
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((6, 4, 5)) < 0.5).astype(np.float32) * 2)
    return tmp_path


def spc_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def compile_ok(capsys, *extra):
    code, out, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,5", *extra)
    assert code == 0, err
    return out


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_compile_inspect_run_verify(workdir, capsys):
    out = compile_ok(capsys)
    assert "SlidingPSN" in out and "DelayLine(k=3)" in out and "StepIndexed(k=2, T<=6)" in out
    names = sorted(p.name for p in (workdir / "out").iterdir())
    assert {"integer", "manifest.json", "parallel", "quantization.json", "stepwise", "model.onnx", "model_seq.onnx", "lava"} <= set(names)
    assert "model.nir" not in names  # NIR cannot express the time-indexed MaskedPSN: skipped, with the reason
    targets = json.loads((workdir / "out" / "manifest.json").read_text())["targets"]
    assert "StepIndexed" in targets["nir"]["skipped"] and "model_seq.onnx" in targets["onnx"]["files"]

    code, out, _ = spc_cli(capsys, "inspect", "out")
    assert code == 0 and "runs for at most T = 6 steps" in out

    code, out, _ = spc_cli(capsys, "run", "out", "--input", "x.npy", "-o", "y.npy")  # the integer simulator
    assert code == 0
    y = np.load(workdir / "y.npy")
    code, _, _ = spc_cli(capsys, "run", "out", "--input", "x.npy", "-o", "y_float.npy", "--backend", "float")
    code, _, _ = spc_cli(capsys, "run", "out", "--input", "x.npy", "-o", "y_par.npy", "--backend", "parallel")
    y_float = np.load(workdir / "y_float.npy")
    np.testing.assert_allclose(y_float, np.load(workdir / "y_par.npy"), rtol=0, atol=1e-12)
    assert y.shape == y_float.shape == (6, 4, 3)
    assert 0 < np.abs(y - y_float).max() < 0.05 * np.abs(y_float).max()  # quantized, and close

    np.save(workdir / "labels.npy", np.array([0, 1, 2, 0]))
    code, out, _ = spc_cli(capsys, "verify", "out", "--input", "x.npy", "--model", "model.py:build", "--labels", "labels.npy", "--json", "r.json")
    assert code == 0 and "PASSED" in out
    report = json.loads((workdir / "r.json").read_text())
    assert report["passed"] is True
    assert {"reference", "candidate", "layer", "spike_mismatches", "spikes_compared", "ties", "max_abs_error"} <= report["comparisons"][0].keys()
    layers = {(c["reference"], c["layer"]) for c in report["comparisons"]}
    assert ("torch-model", "1") in layers and ("parallel", "3") in layers and ("parallel", "(output)") in layers
    assert set(report["accuracy"]) == {"torch-model", "parallel", "stepwise-float", "integer"}
    assert ("stepwise-float", "integer", "3") in {(c["reference"], c["candidate"], c["layer"]) for c in report["comparisons"]}
    assert leftovers(workdir) == []


def test_verify_fails_with_exit_1_when_the_stepwise_form_is_wrong(workdir, capsys):
    compile_ok(capsys)
    path = workdir / "out" / "stepwise" / "weights.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["3.cells.0.weights"] = arrays["3.cells.0.weights"] * 1.01
    write_npz(path, arrays)
    code, out, _ = spc_cli(capsys, "verify", "out", "--input", "x.npy")
    assert code == 1 and "FAIL" in out


def test_existing_output_is_kept_unless_forced(workdir, capsys):
    compile_ok(capsys)
    before = (workdir / "out" / "manifest.json").read_text()
    code, _, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,5")
    assert code == 2 and "already exists" in err and "--force" in err
    assert (workdir / "out" / "manifest.json").read_text() == before
    compile_ok(capsys, "--force")
    assert leftovers(workdir) == []


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model.py:noncausal"], ["layer '1' (PSN)", "future inputs", "--drop-future"]),
        (["model.py:with_lstm"], ["1 (torch.nn.LSTM): a module spc does not know", "spc supports"]),
        (["model.py:with_own_neuron"], ["1.1 (model.StepLoopNeuron): a neuron class spc does not know (its forward() cannot be traced", "replace it with neuron.PSN / spc.PSN"]),
        (["model.py:needs_a_package"], ["failed to import what it needs (ModuleNotFoundError: No module named 'a_package_that_is_not_installed')", "install the missing package"]),
        (["model.py:missing"], ["'missing'", "does not exist", "build, huge_threshold"]),
        (["model.py:not_a_model"], ["returned a int"]),
        (["nowhere.py:build"], ["nowhere.py", "does not exist"]),
        (["model.py"], ["path/to/file.py:factory"]),
    ],
)
def test_compile_refusals(workdir, capsys, args, expected):
    code, out, err = spc_cli(capsys, "compile", *args, "-o", "out", "--input-shape", "6,1,5")
    assert code == 2
    for text in expected:
        assert text in err
    assert "Traceback" not in err
    assert not (workdir / "out").exists() and leftovers(workdir) == []


def test_wrong_input_shapes(workdir, capsys):
    code, _, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,7")
    assert code == 2 and "does not run on an input of shape (6, 1, 7)" in err and not (workdir / "out").exists()
    compile_ok(capsys)
    np.save(workdir / "bad.npy", np.zeros((6, 4, 7), np.float32))
    code, _, err = spc_cli(capsys, "verify", "out", "--input", "bad.npy")
    assert code == 2 and "bad.npy" in err and "[T, B, 5]" in err
    np.save(workdir / "long.npy", np.zeros((9, 4, 5), np.float32))
    code, _, err = spc_cli(capsys, "run", "out", "--input", "long.npy", "-o", "y.npy")
    assert code == 2 and "T <= 6" in err and not (workdir / "y.npy").exists()
    with pytest.raises(SystemExit) as e:
        main(["compile", "model.py:build", "-o", "out2", "--input-shape", "6,x"])
    assert e.value.code == 2


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_checkpoints_are_never_unpickled(workdir, capsys):
    torch.save({"0.weight": _Payload()}, workdir / "evil.pt")
    code, _, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,5", "--weights", "evil.pt")
    assert code == 2 and "refused" in err and "never unpickles" in err
    assert not (workdir / "pwned").exists() and not (workdir / "out").exists()

    (workdir / "garbage.pt").write_bytes(b"not a checkpoint at all")
    code, _, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,5", "--weights", "garbage.pt")
    assert code == 2 and "garbage.pt" in err and "cannot be read" in err

    torch.save({"something.else": torch.zeros(3)}, workdir / "other.pt")
    code, _, err = spc_cli(capsys, "compile", "model.py:build", "-o", "out", "--input-shape", "6,1,5", "--weights", "other.pt")
    assert code == 2 and "does not match the model" in err and "missing 0.weight" in err
    assert not (workdir / "out").exists() and leftovers(workdir) == []


def test_weights_are_loaded(workdir, capsys):
    sys.path.insert(0, str(workdir))
    try:
        model = __import__("model").build()
    finally:
        sys.path.remove(str(workdir))
    with torch.no_grad():
        model[0].weight.mul_(3)
    torch.save(model.state_dict(), workdir / "w.pt")
    compile_ok(capsys, "--weights", "w.pt")
    code, out, _ = spc_cli(capsys, "verify", "out", "--input", "x.npy", "--model", "model.py:build", "--weights", "w.pt")
    assert code == 0
    code, out, _ = spc_cli(capsys, "verify", "out", "--input", "x.npy", "--model", "model.py:build")  # without the weights: differs
    assert code == 1


def test_pickled_input_arrays_are_refused(workdir, capsys):
    compile_ok(capsys)
    np.save(workdir / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = spc_cli(capsys, "verify", "out", "--input", "obj.npy")
    assert code == 2 and "pickled" in err


def test_console_script_reports_errors_without_traceback(workdir):
    result = subprocess.run([sys.executable, "-m", "spc.cli", "inspect", "nowhere"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "spc inspect: error: nowhere: is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model.py:build", "--calib", "bad_calib.npy"], ["calibration file bad_calib.npy", "has shape (6, 2, 4)"]),
        (["model.py:build", "--width", "4"], ["--width 4", "8..32"]),
        (["model.py:huge_threshold"], ["layer '1'", "threshold", "24-bit state", "--width"]),
        (["model.py:negative_tau"], ["negative_tau", "tau must be >= 1"]),
    ],
)
def test_integer_form_refusals(workdir, capsys, args, expected):
    np.save(workdir / "bad_calib.npy", np.zeros((6, 2, 4), np.float32))
    code, _, err = spc_cli(capsys, "compile", *args, "-o", "out", "--input-shape", "6,1,5")
    assert code == 2
    for text in expected:
        assert text in err
    assert not (workdir / "out").exists() and leftovers(workdir) == []


def test_decay_and_taps_options_reach_the_integer_form(workdir, capsys):
    np.save(workdir / "calib.npy", (np.random.default_rng(1).random((6, 16, 5)) < 0.5).astype(np.float32))
    compile_ok(capsys, "--decay", "shift", "--taps", "pow2", "--calib", "calib.npy", "--width", "16")
    q = json.loads((workdir / "out" / "quantization.json").read_text())
    assert q["options"]["decay"] == "shift" and q["options"]["taps"] == "pow2" and q["options"]["width"] == 16
    assert q["calibration"]["synthetic"] is False
    code, out, _ = spc_cli(capsys, "inspect", "out")
    assert "decay shift, taps pow2, 16-bit state" in out and "requested τ" in out
