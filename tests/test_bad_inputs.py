"""The catalogue of bad inputs: every one gets a clear message naming the offending thing and what to
do, a non-zero exit status, no traceback (unless --debug), and leaves no output behind."""

import json
import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spc.cli import main

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn
    import spc

    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.MaskedPSN(k=2, T=6, lambda_init=1.0), nn.Linear(8, 3), spc.LI())

    def raises():
        raise RuntimeError("the factory failed")

    def nan_weights():
        m = build()
        with torch.no_grad():
            m[0].weight[0, 0] = float("nan")
        return m

    def subtract_reset():
        return nn.Sequential(nn.Linear(5, 4), spc.LIF(tau=2.0, v_reset=None), nn.Linear(4, 3), spc.LI())
    """
)


class _Pickled:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _setup(root: Path) -> None:
    """A valid model file, compiled directory and input, and a gallery of broken files."""
    (root / "model.py").write_text(MODEL)
    (root / "broken_model.py").write_text("def build(:\n")
    x = (np.random.default_rng(0).random((6, 4, 5)) < 0.5).astype(np.float32)
    np.save(root / "x.npy", x)
    assert main(["compile", "model.py:build", "-o", "good", "--input-shape", "6,1,5", "--calib", "x.npy"]) == 0
    torch.save(__import__("model").build().state_dict(), root / "weights.pt")
    (root / "empty.npy").write_bytes(b"")
    (root / "truncated.npy").write_bytes((root / "x.npy").read_bytes()[:90])
    (root / "corrupt.npy").write_bytes(b"\x93NUMPY garbage garbage garbage")
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(root / "strings.npy", np.array([["a", "b"]]))
    np.save(root / "nan.npy", np.where(x > 0, np.nan, 0).astype(np.float32))
    np.save(root / "inf.npy", np.where(x > 0, np.inf, 0).astype(np.float32))
    np.save(root / "rank2.npy", x[0])
    np.save(root / "features.npy", np.zeros((6, 4, 7), np.float32))
    np.save(root / "too_long.npy", np.zeros((9, 4, 5), np.float32))
    np.save(root / "no_samples.npy", np.zeros((6, 0, 5), np.float32))
    np.save(root / "labels_bad.npy", np.array([0.5, 1, 2, 0]))
    np.save(root / "labels_short.npy", np.array([0, 1]))
    (root / "empty.pt").write_bytes(b"")
    (root / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "truncated.pt").write_bytes((root / "weights.pt").read_bytes()[:200])
    torch.save({"0.weight": _Pickled()}, root / "pickle.pt")
    torch.save({"0.weight": torch.zeros(3, 3)}, root / "shapes.pt")
    torch.save([1, 2, 3], root / "list.pt")
    for name, edit in [
        ("version", lambda d: d.update(version=99)),
        ("missing_keys", lambda d: d.pop("nodes")),
        ("wrong_types", lambda d: d.update(nodes=5)),
        ("bad_op", lambda d: d["nodes"][1]["op"].update(weight="not an array")),
        ("unknown_kind", lambda d: d["nodes"][1]["op"].update(kind="Teleporter")),
        ("dangling", lambda d: d["nodes"][1].update(inputs=["nowhere"])),
    ]:
        target = root / f"graph_{name}"
        shutil.copytree(root / "good", target)
        doc = json.loads((target / "stepwise" / "graph.json").read_text())
        edit(doc)
        (target / "stepwise" / "graph.json").write_text(json.dumps(doc))
    shutil.copytree(root / "good", root / "bad_json")
    (root / "bad_json" / "integer" / "graph.json").write_text("{ not json")
    shutil.copytree(root / "good", root / "bad_onnx")
    onnx_file = root / "bad_onnx" / "model_seq.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    shutil.copytree(root / "good", root / "bad_npz")
    npz = root / "bad_npz" / "integer" / "weights.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    shutil.copytree(root / "good", root / "npz_missing_array")
    with zipfile.ZipFile(root / "npz_missing_array" / "stepwise" / "weights.npz", "w"):
        pass
    shutil.copytree(root / "good", root / "no_manifest")
    (root / "no_manifest" / "manifest.json").unlink()
    shutil.copytree(root / "good", root / "bad_manifest")
    (root / "bad_manifest" / "manifest.json").write_text('{"format": "something else"}')
    (root / "a_file").write_text("not a directory")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    cwd = os.getcwd()
    os.chdir(root)
    import sys

    sys.path.insert(0, str(root))
    try:
        _setup(root)
        yield root
    finally:
        sys.path.remove(str(root))
        os.chdir(cwd)


COMPILE = ["compile", "model.py:build", "-o", "new", "--input-shape", "6,1,5"]
CASES = {
    # model files and factories
    "missing model file": (["compile", "nowhere.py:build", "-o", "new", "--input-shape", "6,1,5"], 2, ["nowhere.py", "does not exist"]),
    "model spec without factory": (["compile", "model.py", "-o", "new", "--input-shape", "6,1,5"], 2, ["path/to/file.py:factory"]),
    "missing factory": (["compile", "model.py:absent", "-o", "new", "--input-shape", "6,1,5"], 2, ["'absent'", "name one of: build"]),
    "factory raises": (["compile", "model.py:raises", "-o", "new", "--input-shape", "6,1,5"], 2, ["raised RuntimeError", "the factory failed"]),
    "model file with a syntax error": (["compile", "broken_model.py:build", "-o", "new", "--input-shape", "6,1,5"], 2, ["broken_model.py", "SyntaxError"]),
    "NaN weights": (["compile", "model.py:nan_weights", "-o", "new", "--input-shape", "6,1,5"], 2, ["layer '0'", "NaN"]),
    # checkpoints
    "missing checkpoint": (COMPILE + ["--weights", "absent.pt"], 2, ["absent.pt", "does not exist"]),
    "empty checkpoint": (COMPILE + ["--weights", "empty.pt"], 2, ["empty.pt", "cannot be read"]),
    "corrupt checkpoint": (COMPILE + ["--weights", "corrupt.pt"], 2, ["corrupt.pt", "cannot be read"]),
    "truncated checkpoint": (COMPILE + ["--weights", "truncated.pt"], 2, ["truncated.pt", "cannot be read"]),
    "checkpoint with a pickle payload": (COMPILE + ["--weights", "pickle.pt"], 2, ["pickle.pt", "refused", "never unpickles"]),
    "checkpoint of another model": (COMPILE + ["--weights", "shapes.pt"], 2, ["shapes.pt", "does not match the model"]),
    "checkpoint that is not a state_dict": (COMPILE + ["--weights", "list.pt"], 2, ["list.pt", "not a state_dict"]),
    # flags
    "input shape of rank 2": (["compile", "model.py:build", "-o", "new", "--input-shape", "6,5"], 2, ["time-major shape"]),
    "input shape not numbers": (["compile", "model.py:build", "-o", "new", "--input-shape", "six,1,5"], 2, ["comma-separated list of integers"]),
    "input shape of the wrong size": (["compile", "model.py:build", "-o", "new", "--input-shape", "6,1,9"], 2, ["does not run on an input of shape (6, 1, 9)"]),
    "unknown decay form": (COMPILE + ["--decay", "float"], 2, ["invalid choice: 'float'"]),
    "state width out of range": (COMPILE + ["--width", "64"], 2, ["--width 64", "8..32"]),
    "time-invariant terms out of range": (COMPILE + ["--time-invariant", "9"], 2, ["time-invariant terms 9", "give 1 to 8 terms"]),
    "weight bits out of range": (COMPILE + ["--weight-bits", "1"], 2, ["--weight-bits", "2..16"]),
    "calibration data of the wrong shape": (COMPILE + ["--calib", "features.npy"], 2, ["calibration file features.npy", "[T, B, 5]"]),
    "calibration data with NaN": (COMPILE + ["--calib", "nan.npy"], 2, ["calibration file nan.npy", "NaN or Inf"]),
    "output directory exists": (["compile", "model.py:build", "-o", "good", "--input-shape", "6,1,5"], 2, ["good", "already exists", "--force"]),
    "output below a file": (["compile", "model.py:build", "-o", "a_file/out", "--input-shape", "6,1,5"], 2, ["a_file/out", "cannot be created"]),
    "weights without a model": (["verify", "good", "--input", "x.npy", "--weights", "weights.pt"], 2, ["--weights", "needs --model"]),
    "raster sample out of range": (["verify", "good", "--input", "x.npy", "--raster-sample", "9"], 2, ["raster sample 9", "0 to 3"]),
    "batch size zero": (["verify", "good", "--input", "x.npy", "--batch-size", "0"], 2, ["batch size 0", "at least 1"]),
    # input arrays
    "missing input": (["run", "good", "--input", "absent.npy", "-o", "y.npy"], 2, ["absent.npy", "does not exist"]),
    "empty input file": (["run", "good", "--input", "empty.npy", "-o", "y.npy"], 2, ["empty.npy", "is empty"]),
    "truncated input file": (["run", "good", "--input", "truncated.npy", "-o", "y.npy"], 2, ["truncated.npy", ".npy"]),
    "corrupt input file": (["run", "good", "--input", "corrupt.npy", "-o", "y.npy"], 2, ["corrupt.npy", ".npy"]),
    "pickled object input": (["run", "good", "--input", "objects.npy", "-o", "y.npy"], 2, ["objects.npy", "pickled"]),
    "string input": (["run", "good", "--input", "strings.npy", "-o", "y.npy"], 2, ["strings.npy", "dtype <U1"]),
    "NaN input": (["run", "good", "--input", "nan.npy", "-o", "y.npy"], 2, ["nan.npy", "NaN or Inf"]),
    "Inf input": (["verify", "good", "--input", "inf.npy"], 2, ["inf.npy", "NaN or Inf"]),
    "input of the wrong rank": (["run", "good", "--input", "rank2.npy", "-o", "y.npy"], 2, ["rank2.npy", "[T, B, 5]"]),
    "input with the wrong feature size": (["verify", "good", "--input", "features.npy"], 2, ["features.npy", "[T, B, 5]"]),
    "input beyond a time-indexed layer's T": (["run", "good", "--input", "too_long.npy", "-o", "y.npy"], 2, ["too_long.npy", "T <= 6", "SlidingPSN"]),
    "input without samples": (["run", "good", "--input", "no_samples.npy", "-o", "y.npy"], 2, ["no_samples.npy", "no time steps or no samples"]),
    "labels that are not integers": (["verify", "good", "--input", "x.npy", "--labels", "labels_bad.npy"], 2, ["labels", "integer class indices"]),
    "labels of the wrong length": (["verify", "good", "--input", "x.npy", "--labels", "labels_short.npy"], 2, ["labels", "4 integer"]),
    # compiled directories
    "not a directory": (["inspect", "a_file"], 2, ["a_file", "is not a directory"]),
    "directory without manifest": (["inspect", "no_manifest"], 2, ["no_manifest", "no manifest.json"]),
    "manifest of something else": (["inspect", "bad_manifest"], 2, ["manifest.json", "not an spc manifest"]),
    "graph.json of another version": (["inspect", "graph_version"], 2, ["graph.json", "format version 99"]),
    "graph.json without nodes": (["inspect", "graph_missing_keys"], 2, ["graph.json", "malformed"]),
    "graph.json with wrong types": (["inspect", "graph_wrong_types"], 2, ["graph.json", "malformed"]),
    "graph.json with a broken operation": (["inspect", "graph_bad_op"], 2, ["graph.json: layer '0'", "malformed parameters"]),
    "graph.json with an unknown operation": (["inspect", "graph_unknown_kind"], 2, ["unknown operation kind 'Teleporter'"]),
    "graph.json with a dangling input": (["inspect", "graph_dangling"], 2, ["graph.json: layer", "'nowhere'", "not defined before"]),
    "graph.json that is not JSON": (["run", "bad_json", "--input", "x.npy", "-o", "y.npy"], 2, ["integer/graph.json", "not valid JSON"]),
    "corrupt weights.npz": (["run", "bad_npz", "--input", "x.npy", "-o", "y.npy"], 2, ["integer/weights.npz", "cannot be read"]),
    "truncated model_seq.onnx": (["run", "bad_onnx", "--input", "x.npy", "-o", "y.npy", "--backend", "onnx"], 2, ["model_seq.onnx", "cannot be read as an ONNX model", "compile the model again"]),
    "weights.npz without an array": (["inspect", "npz_missing_array"], 2, ["missing from weights.npz"]),
}


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(gallery, capsys, case):
    args, code, expected = CASES[case]
    before = _listing(gallery)
    try:
        got = main(args)
    except SystemExit as e:  # argparse's own refusals
        got = e.code
    err = capsys.readouterr().err
    assert got == code, err
    for text in expected:
        assert text in err, f"{case}: {text!r} not in {err!r}"
    assert "Traceback" not in err
    assert _listing(gallery) == before, f"{case} left output behind"
    assert not (gallery / "pwned").exists()


def test_the_catalogue_is_long_enough():
    assert len(CASES) >= 30


def test_debug_shows_the_traceback(gallery):
    with pytest.raises(Exception) as e:
        main(["--debug", "inspect", "a_file"])
    assert "is not a directory" in str(e.value)


def test_a_full_disk_mid_write_leaves_nothing(gallery, capsys, monkeypatch):
    from spc.compiler import serialize

    real = serialize.write_npz

    def fill_up(path, arrays):
        real(path, arrays)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialize, "write_npz", fill_up)
    before = _listing(gallery)
    assert main(COMPILE) == 2
    err = capsys.readouterr().err
    assert "could not be written" in err and "No space left on device" in err and "free disk space" in err
    assert _listing(gallery) == before


def test_interrupt_during_compile_leaves_nothing(gallery, capsys, monkeypatch):
    from spc.compiler import serialize

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialize, "write_npz", interrupted)
    before = _listing(gallery)
    assert main(COMPILE) == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert _listing(gallery) == before


def test_force_replaces_an_existing_directory_atomically(gallery, capsys):
    before = (gallery / "good" / "manifest.json").read_bytes()
    assert main(["compile", "model.py:build", "-o", "good", "--input-shape", "6,1,5", "--calib", "x.npy", "--force"]) == 0
    assert (gallery / "good" / "manifest.json").read_bytes() == before  # same model, same bytes
    assert not [p for p in gallery.iterdir() if p.name.startswith(".")]


def test_subtract_reset_compiles_but_nir_would_refuse(gallery, capsys):
    """A neuron a target cannot express is refused by that target only (see the emitter tests)."""
    assert main(["compile", "model.py:subtract_reset", "-o", "subtract", "--input-shape", "6,1,5"]) == 0
    shutil.rmtree(gallery / "subtract")
