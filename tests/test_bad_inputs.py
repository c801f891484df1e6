"""The catalogue of bad inputs: every one gets a clear message naming the offending thing and what to
do, a non-zero exit status, no traceback (unless --debug), and leaves no output behind."""

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spc.cli import main
from spc.compiler.serialize import write_npz

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

    def exits():
        import sys
        sys.exit(0)

    def exits_with_message():
        raise SystemExit("x")

    def needs_arguments(width):
        return build()

    def float64():
        return build().double()

    def on_meta_device():
        return build().to("meta")

    def zero_width():
        return nn.Sequential(nn.Linear(5, 0), spc.LIF(tau=2.0), nn.Linear(0, 3), spc.LI())

    def denormal_weights():
        m = nn.Sequential(nn.Linear(5, 4), spc.LIF(tau=2.0), nn.Linear(4, 3), spc.LI())
        with torch.no_grad():
            m[0].weight.fill_(1e-40)
            m[0].bias.fill_(0.5)
        return m

    def conv():
        torch.manual_seed(0)
        return nn.Sequential(spc.PerStep(nn.Conv1d(1, 2, 3)), spc.LIF(tau=2.0), spc.PerStep(nn.Flatten()), nn.Linear(6, 3), spc.LI())

    def creates_the_output():
        import os
        os.makedirs("raced")  # someone else's directory appears at -o while spc works
        with open("raced/notes.txt", "w") as f:
            f.write("mine")
        return build()

    def long_running():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.LIF(tau=2.0), nn.Linear(8, 3), spc.LI())
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
    _setup_untrusted(root)
    _setup_user_files(root)


def _edited(root: Path, source: str, target: str, form: str, doc=None, arrays=None) -> None:
    """A copy of a compiled directory whose `form` graph.json (`doc(d)`) or weights.npz
    (`arrays(a)`) was edited by hand."""
    shutil.copytree(root / source, root / target)
    folder = root / target / form
    if doc is not None:
        d = json.loads((folder / "graph.json").read_text())
        doc(d)
        (folder / "graph.json").write_text(json.dumps(d))
    if arrays is not None:
        with np.load(folder / "weights.npz") as npz:
            a = {k: npz[k] for k in npz.files}
        arrays(a)
        write_npz(folder / "weights.npz", a)


def _npy_member(header_shape: tuple[int, ...], data: bytes) -> bytes:
    """A .npy file whose header declares `header_shape` (float64) followed by `data`."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "<f8", "fortran_order": False, "shape": header_shape})
    return stream.getvalue() + data


def _setup_untrusted(root: Path) -> None:
    """Hand-edited compiled directories, size bombs and NIR files that reach for other files."""
    assert main(["compile", "model.py:conv", "-o", "conv_good", "--input-shape", "6,1,1,5"]) == 0

    def second_input(d):
        d["nodes"].insert(1, {"name": "extra", "inputs": [], "op": {"kind": "Input", "shape": [5]}})

    def stride_zero(d):
        next(n for n in d["nodes"] if n["op"]["kind"] == "Conv")["op"]["stride"] = [0]

    def setting(key, value):
        def edit(arrays):
            arrays[key] = arrays[key].astype(np.int64)
            arrays[key].flat[0] = value

        return edit

    _edited(root, "good", "graph_abstract_kind", "stepwise", doc=lambda d: d["nodes"][1]["op"].update(kind="Op"))
    _edited(root, "good", "graph_second_input", "stepwise", doc=second_input)
    _edited(root, "good", "graph_no_outputs", "stepwise", doc=lambda d: d.update(outputs=[]))
    _edited(root, "conv_good", "graph_stride_zero", "stepwise", doc=stride_zero)
    _edited(root, "good", "integer_float_weights", "integer", arrays=lambda a: a.update({"0.weight": a["0.weight"] + 0.5}))
    _edited(root, "good", "integer_huge_weights", "integer", arrays=setting("0.weight", 2**62))
    _edited(root, "good", "integer_min_bias", "integer", arrays=setting("0.bias", -(2**63)))
    _edited(root, "good", "integer_huge_taps", "integer", arrays=setting("1.cells.0.taps", 2**62))
    # weights.npz: a member graph.json does not name, a compressed member, a header declaring 2 GiB
    shutil.copytree(root / "good", root / "npz_extra_member")
    with zipfile.ZipFile(root / "npz_extra_member" / "integer" / "weights.npz", "a") as z:
        z.writestr("extra.npy", _npy_member((2**28,), b"\0" * 64))
    for name, compression, member in [("npz_compressed_member", zipfile.ZIP_DEFLATED, None), ("npz_declared_size", zipfile.ZIP_STORED, _npy_member((2**28,), b"\0" * 64))]:
        shutil.copytree(root / "good", root / name)
        path = root / name / "integer" / "weights.npz"
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        members["0.weight.npy"] = member or members["0.weight.npy"]
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for n, data in members.items():
                z.writestr(n, data)
    _setup_nir(root)


def _setup_nir(root: Path) -> None:
    import h5py
    import nir

    lif = lambda n: nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))  # noqa: E731
    nodes = {"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 4)), np.zeros(3)), "lif": lif(3), "output": nir.Output(np.array([3]))}
    nir.write(root / "base.nir", nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    nodes = {"input": nir.Input(np.array([3])), "a": nir.Affine(np.ones((3, 3)), np.zeros(3)), "b": lif(3), "c": nir.Affine(np.ones((3, 3)), np.zeros(3)), "output": nir.Output(np.array([3]))}
    nir.write(root / "recurrent.nir", nir.NIRGraph(nodes=nodes, edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "c"), ("c", "output")]))
    (root / "secret.bin").write_bytes(np.arange(12, dtype="<f8").tobytes())
    with h5py.File(root / "other.h5", "w") as f:
        f["w"] = np.full((3, 4), 7.0)

    def replace_weight(f, **dataset):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", **dataset)

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(3, 4), dtype="f8")
        layout[:] = h5py.VirtualSource(str(root / "other.h5"), "w", shape=(3, 4))
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_virtual_dataset("weight", layout)

    def external_link(f):
        del f["node/nodes/fc/bias"]
        f["node/nodes/fc"]["bias"] = h5py.ExternalLink(str(root / "other.h5"), "/w")

    def edges(f):
        del f["node/edges"]
        f["node"].create_dataset("edges", shape=(5 * 10**7, 2), dtype="S6", chunks=(10**6, 2), compression="gzip", fillvalue=b"fc")

    edits = {
        "big_weight": lambda f: replace_weight(f, shape=(3, 2**28), dtype="f8", chunks=(1, 2**20), compression="gzip"),  # 6 GiB declared in a few KiB
        "many_edges": edges,
        "external_storage": lambda f: replace_weight(f, shape=(3, 4), dtype="f8", external=[(str(root / "secret.bin"), 0, 96)]),
        "external_link": external_link,
        "virtual": virtual,
    }
    for name, edit in edits.items():
        shutil.copy(root / "base.nir", root / f"{name}.nir")
        with h5py.File(root / f"{name}.nir", "r+") as f:
            edit(f)


def _setup_user_files(root: Path) -> None:
    """Files of the user's that spc must describe correctly and never harm."""
    x = np.load(root / "x.npy")
    np.savez(root / "x.npz", x=x, y=np.zeros(4))
    np.save(root / "labels_outside.npy", np.array([0, 1, 2, 5]))
    (root / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    model = __import__("model").build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "optimizer": optimizer.state_dict(), "state_dict": model.state_dict()}, root / "training.pt")
    (root / "weights_dir").mkdir()
    (root / "my_project" / "data").mkdir(parents=True)
    (root / "my_project" / "train.py").write_text("print('my training script')\n")
    (root / "my_project" / "data" / "digits.csv").write_text("1,2,3\n")
    shutil.copytree(root / "good", root / "good_with_notes")
    (root / "good_with_notes" / "notes.txt").write_text("my notes")


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
    # more models, factories and checkpoints
    "factory that calls sys.exit(0)": (["compile", "model.py:exits", "-o", "new", "--input-shape", "6,1,5"], 2, ["model factory 'exits'", "called sys.exit(0)", "return the model"]),
    "factory that raises SystemExit('x')": (["compile", "model.py:exits_with_message", "-o", "new", "--input-shape", "6,1,5"], 2, ["called sys.exit('x')"]),
    "model file that exits on import": (["compile", "exits_on_import.py:build", "-o", "new", "--input-shape", "6,1,5"], 2, ["exits_on_import.py", "called sys.exit(3) while being imported", "__main__"]),
    "factory that needs arguments": (["compile", "model.py:needs_arguments", "-o", "new", "--input-shape", "6,1,5"], 2, ["needs arguments (width)", "default values"]),
    "float64 model": (["compile", "model.py:float64", "-o", "new", "--input-shape", "6,1,5"], 2, ["parameter '0.weight'", "torch.float64", "model.float()"]),
    "model on another device": (["compile", "model.py:on_meta_device", "-o", "new", "--input-shape", "6,1,5"], 2, ["parameter '0.weight'", "meta device", "model.cpu()"]),
    "zero-width layer": (["compile", "model.py:zero_width", "-o", "new", "--input-shape", "6,1,5"], 2, ["layer '0'", "no units"]),
    "denormal weights beside normal biases": (["compile", "model.py:denormal_weights", "-o", "new", "--input-shape", "6,1,5"], 2, ["layer '0'", "bias becomes", "beyond", "negligible beside its bias"]),
    "model file that is a directory": (["compile", "weights_dir:build", "-o", "new", "--input-shape", "6,1,5"], 2, ["weights_dir", "is a directory"]),
    "checkpoint that is a directory": (COMPILE + ["--weights", "weights_dir"], 2, ["weights_dir", "is a directory"]),
    "training checkpoint": (COMPILE + ["--weights", "training.pt"], 2, ["training.pt", "training checkpoint (epoch, optimizer, state_dict)", "use its state_dict", "['state_dict']"]),
    # more inputs and labels
    "an .npz given as input": (["run", "good", "--input", "x.npz", "-o", "y.npy"], 2, ["x.npz", "is an .npz archive", "np.save"]),
    "input that is a directory": (["run", "good", "--input", "weights_dir", "-o", "y.npy"], 2, ["weights_dir", "is a directory"]),
    "labels outside the model's classes": (["verify", "good", "--input", "x.npy", "--labels", "labels_outside.npy"], 2, ["labels", "from 0 to 5", "3 classes"]),
    # hand-edited compiled directories
    "graph.json with an abstract kind": (["inspect", "graph_abstract_kind"], 2, ["graph.json", "abstract kind 'Op'"]),
    "graph.json with a second Input": (["inspect", "graph_second_input"], 2, ["layer 'extra'", "second Input"]),
    "graph.json without outputs": (["inspect", "graph_no_outputs"], 2, ["graph.json", "has no output"]),
    "graph.json with stride 0": (["inspect", "graph_stride_zero"], 2, ["graph.json", "Conv stride (0,)", ">= 1"]),
    "integer form with fractional float weights": (["inspect", "integer_float_weights"], 2, ["integer/graph.json: layer '0'", "dtype float64", "holds integers"]),
    "integer form with 2^62 weights": (["run", "integer_huge_weights", "--input", "x.npy", "-o", "y.npy"], 2, ["layer '0'", "weights reach 4.612e+18"]),
    "integer form with a -2^63 bias": (["run", "integer_min_bias", "--input", "x.npy", "-o", "y.npy"], 2, ["layer '0'", "biases reach 9.223e+18"]),
    "integer form with 2^62 FIR taps": (["run", "integer_huge_taps", "--input", "x.npy", "-o", "y.npy"], 2, ["layer '1'", "QDelayLine sum", "63-bit"]),
    # untrusted archives: declared sizes checked before reading, nothing read from other files
    "weights.npz with a member graph.json does not use": (["inspect", "npz_extra_member"], 2, ["weights.npz", "extra.npy", "does not use"]),
    "weights.npz with a compressed member": (["inspect", "npz_compressed_member"], 2, ["weights.npz: member", "is compressed"]),
    "weights.npz member declaring 2 GiB": (["inspect", "npz_declared_size"], 2, ["0.weight.npy", "(2147483648 bytes) but holds 64 bytes"]),
    "NIR file declaring a 6 GiB weight": (["compile", "big_weight.nir", "-o", "new"], 2, ["big_weight.nir", "declares more than 1024 MiB", "/node/nodes/fc/weight"]),
    "NIR file declaring 5e7 edges": (["compile", "many_edges.nir", "-o", "new"], 2, ["many_edges.nir", "declares more than 1024 MiB", "/node/edges"]),
    "NIR file with external storage": (["compile", "external_storage.nir", "-o", "new"], 2, ["external_storage.nir", "in another file", "secret.bin"]),
    "NIR file with an external link": (["compile", "external_link.nir", "-o", "new"], 2, ["external_link.nir", "links '/node/nodes/fc/bias' to another file"]),
    "NIR file with a virtual dataset": (["compile", "virtual.nir", "-o", "new"], 2, ["virtual.nir", "virtual dataset"]),
    "recurrent NIR graph": (["compile", "recurrent.nir", "-o", "new"], 2, ["recurrent connection", "(a cycle through a, b)"]),
    # output paths: checked before the work; devices written, never replaced; user's folders never replaced
    "output in a missing directory": (["run", "good", "--input", "x.npy", "-o", "missing/y.npy"], 2, ["-o missing/y.npy", "does not exist", "mkdir -p"]),
    "output that is a directory": (["run", "good", "--input", "x.npy", "-o", "good"], 2, ["-o good", "is a directory"]),
    "output in a read-only place": (["run", "good", "--input", "x.npy", "-o", "/sys/y.npy"], 2, ["-o /sys/y.npy", "cannot be written in /sys"]),
    "output on a full device": (["run", "good", "--input", "x.npy", "-o", "/dev/full"], 2, ["-o /dev/full", "could not be written", "No space left on device"]),
    "JSON report in a missing directory": (["verify", "good", "--input", "x.npy", "--json", "missing/r.json"], 2, ["--json missing/r.json", "does not exist"]),
    "HTML report that is a directory": (["verify", "good", "--input", "x.npy", "--report", "good"], 2, ["--report good", "is a directory"]),
    "inspect --json without --input": (["inspect", "good", "--json", "m.json"], 2, ["--json", "needs --input"]),
    "--force onto the user's own folder": (["compile", "model.py:build", "-o", "my_project", "--input-shape", "6,1,5", "--force"], 2, ["my_project", "not a compiled model", "data, train.py", "will not replace"]),
    "--force onto a compiled directory holding the user's file": (["compile", "model.py:build", "-o", "good_with_notes", "--input-shape", "6,1,5", "--force"], 2, ["good_with_notes", "files spc did not write (notes.txt)"]),
    "--force onto a file": (["compile", "model.py:build", "-o", "a_file", "--input-shape", "6,1,5", "--force"], 2, ["a_file", "is not a directory"]),
}


def _listing(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its contents (None for folders): nothing may appear, go or change."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in root.rglob("*")}


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
    assert len(CASES) >= 90


def test_debug_shows_the_traceback(gallery):
    with pytest.raises(Exception) as e:
        main(["--debug", "inspect", "a_file"])
    assert "is not a directory" in str(e.value)


FULL_DISK = """
import contextlib, io, os, resource, sys
from spc.cli import main
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
for case in sys.argv[1:]:
    limit, _, target = case.partition(":")
    limit = int(limit)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # writes past `limit` bytes fail (EFBIG)
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["compile", "../model.py:long_running", "-o", "out", "--input-shape", "6,1,5"] + (["--target", target] if target else []))
        if limit < 200:  # spc run's output is 704 bytes
            code = main(["run", "../good", "--input", "../x.npy", "-o", "y.npy"]), code
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print(limit, code, *sorted(os.listdir(".")), flush=True)
"""


def test_a_full_disk_leaves_nothing(gallery):
    """A file-size limit makes every real writer fail where a full disk would: the graphs, the ONNX
    files, the NIR file (which used to crash the process inside HDF5), the Lava files, `run -o`."""
    (gallery / "disk").mkdir()
    # 0 to 5000 stop the graphs, their weights.npz and the ONNX files (2-8 kB); 50000 only model.nir
    # (87 kB, written before Lava's files); 5000 with --target lava alone, lava/network.json (6 kB)
    limits = ["0", "2000", "3000", "5000", "50000", "5000:lava"]
    p = subprocess.run([sys.executable, "-c", FULL_DISK, *limits], cwd=gallery / "disk", capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:-1] == ["0 (2, 2)"] + [f"{limit.split(':')[0]} 2" for limit in limits[1:]]  # exit 2, nothing left in the folder
    assert p.stderr.count("could not be written (File too large)") == len(limits) + 1 and "Traceback" not in p.stderr
    (gallery / "disk").rmdir()


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


def test_devices_and_pipes_are_written_in_place_never_replaced(gallery, capsys):
    import threading

    import spc

    before = _listing(gallery)
    expected = spc.run("good", np.load(gallery / "x.npy"))
    assert main(["run", "good", "--input", "x.npy", "-o", "/dev/null"]) == 0
    assert main(["run", "good", "--input", "x.npy", "-o", "/dev/full"]) == 2
    assert all(stat.S_ISCHR(os.stat(device).st_mode) for device in ("/dev/null", "/dev/full"))
    pipe = gallery / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    try:
        assert main(["run", "good", "--input", "x.npy", "-o", "pipe"]) == 0
    finally:
        if reader.is_alive() and not received:
            reader.join(timeout=60)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    np.testing.assert_array_equal(np.load(io.BytesIO(received[0])), expected)
    pipe.unlink()
    assert _listing(gallery) == before


def test_dash_is_standard_output(gallery, capsysbinary):
    import spc

    expected = spc.run("good", np.load(gallery / "x.npy"))
    assert main(["run", "good", "--input", "x.npy", "-o", "-"]) == 0
    out, err = capsysbinary.readouterr()
    np.testing.assert_array_equal(np.load(io.BytesIO(out)), expected)
    assert b"wrote -" in err  # messages for a person go to standard error
    assert main(["verify", "good", "--input", "x.npy", "--json", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert json.loads(out)["passed"] is True and b"reference" in err
    piped = subprocess.run([str(Path(sys.executable).parent / "spc"), "run", "good", "--input", "x.npy", "-o", "/dev/stdout"], cwd=gallery, capture_output=True, timeout=600)
    assert piped.returncode == 0 and b"wrote /dev/stdout" in piped.stderr
    np.testing.assert_array_equal(np.load(io.BytesIO(piped.stdout)), expected)


def test_dev_stdout_is_written_through_not_replaced(gallery, capfd):
    assert main(["verify", "good", "--input", "x.npy", "--json", "/dev/stdout"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["passed"] is True and "reference" in err
    assert os.path.islink("/dev/stdout")


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "good", "--input", "x.npy", "--backends", "onnx", "--json", "missing/r.json"],
        ["verify", "good", "--input", "x.npy", "--report", "good"],
        ["run", "good", "--input", "x.npy", "-o", "missing/y.npy"],
        ["inspect", "good", "--input", "x.npy", "--json", "/sys/m.json"],
        ["compile", "model.py:creates_the_output", "-o", "good", "--input-shape", "6,1,5"],
    ],
)
def test_output_paths_are_checked_before_the_work(gallery, capsys, args):
    """Nothing runs (no table printed, the model's factory not called) when an output cannot be written."""
    before = _listing(gallery)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err
    assert _listing(gallery) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_directory_that_appears_while_compiling_is_left_alone(gallery, capsys, force):
    before = _listing(gallery)
    assert main(["compile", "model.py:creates_the_output", "-o", "raced", "--input-shape", "6,1,5", *force]) == 2
    err = capsys.readouterr().err
    assert "output directory raced" in err and ("not a compiled model" if force else "already exists") in err
    assert (gallery / "raced" / "notes.txt").read_text() == "mine"
    shutil.rmtree(gallery / "raced")
    assert _listing(gallery) == before


@pytest.mark.parametrize("renameat2", [True, False])
@pytest.mark.parametrize("theirs", [["notes.txt"], []])
def test_the_final_rename_never_replaces_what_appeared(tmp_path, monkeypatch, renameat2, theirs):
    """Another process creates the output while spc fills its temporary directory: the rename
    into place fails (Linux renameat2 RENAME_NOREPLACE, else an exclusive mkdir), even for an empty
    directory, which a plain rename would silently replace."""
    from spc import outputs
    from spc.compiler.artifact import output_directory
    from spc.errors import SpcError

    if not renameat2:
        monkeypatch.setattr(outputs, "_renameat2", None)  # a system without it
    out = tmp_path / "out"

    def fill(directory):
        (directory / "manifest.json").write_text("{}")
        out.mkdir()
        for name in theirs:
            (out / name).write_text("theirs")

    with pytest.raises(SpcError, match="appeared while spc was working"):
        output_directory(out).write(fill)
    assert sorted(os.listdir(tmp_path)) == ["out"] and sorted(os.listdir(out)) == theirs


def test_concurrent_compiles_to_one_directory_one_wins(gallery):
    import spc

    before = _listing(gallery)
    command = [str(Path(sys.executable).parent / "spc"), "compile", "model.py:build", "-o", "race", "--input-shape", "6,1,5"]
    runs = [subprocess.Popen(command, cwd=gallery, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in runs]
    assert sorted(code for code, _ in results) == [0, 2, 2], results
    for code, err in results:
        assert code == 0 or "already exists" in err or "appeared while spc was working" in err
    assert spc.load(gallery / "race").integer is not None  # the winner's directory, whole
    shutil.rmtree(gallery / "race")
    assert _listing(gallery) == before


def test_force_replaces_an_empty_directory(gallery, capsys):
    (gallery / "empty").mkdir()
    assert main(["compile", "model.py:build", "-o", "empty", "--input-shape", "6,1,5", "--force"]) == 0
    assert (gallery / "empty" / "manifest.json").is_file()
    shutil.rmtree(gallery / "empty")


def test_modes_follow_the_umask(gallery, capsys):
    old = os.umask(0o027)
    try:
        assert main(["compile", "model.py:build", "-o", "masked", "--input-shape", "6,1,5"]) == 0
        assert main(["run", "good", "--input", "x.npy", "-o", "masked.npy"]) == 0
    finally:
        os.umask(old)
    paths = [gallery / "masked", *(gallery / "masked").rglob("*")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()} == {0o750}
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths + [gallery / "masked.npy"] if p.is_file()} == {0o640}
    shutil.rmtree(gallery / "masked")
    (gallery / "masked.npy").unlink()


def _process_group(pgid: int) -> list[int]:
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat_file.parent.name))
    return members


@pytest.mark.parametrize("command, sig, code", [("run", signal.SIGINT, 130), ("verify", signal.SIGTERM, 143)])
def test_interrupting_a_lava_run_stops_every_worker(gallery, command, sig, code):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) or SIGTERM during a Lava run:
    spc exits 130 / 143, every Lava worker is gone, its temporary files and shared memory too."""
    if not (gallery / "long").exists():
        assert main(["compile", "model.py:long_running", "-o", "long", "--input-shape", "6,1,5", "--target", "lava"]) == 0
        np.save(gallery / "long.npy", (np.random.default_rng(0).random((20000, 1, 5)) < 0.3).astype(np.float32))
    tmp = gallery / f"tmp-{command}"
    tmp.mkdir()
    args = ["run", "long", "--input", "long.npy", "-o", "y.npy", "--backend", "lava"] if command == "run" else ["verify", "long", "--input", "long.npy", "--backends", "lava"]
    shm = set(os.listdir("/dev/shm"))
    p = subprocess.Popen([str(Path(sys.executable).parent / "spc"), *args], cwd=gallery, env=dict(os.environ, TMPDIR=str(tmp)), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while len(_process_group(p.pid)) < 10:  # Lava's workers and managers are up: the run is under way
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.2)
        os.killpg(p.pid, sig)
        assert p.wait(timeout=60) == code, p.stderr.read()  # a hang guard, not a speed test: it takes about a second
        err = p.stderr.read()
        assert ("interrupted" if sig == signal.SIGINT else "terminated") in err and "Traceback" not in err and "leaked" not in err
        for _ in range(150):  # the resource tracker, the last to go, exits once spc has
            if not _process_group(p.pid):
                break
            time.sleep(0.2)
        assert _process_group(p.pid) == []
        assert list(tmp.iterdir()) == [] and not (gallery / "y.npy").exists()
        for _ in range(150):  # (other programs' shared memory may come and go meanwhile)
            if not set(os.listdir("/dev/shm")) - shm:
                break
            time.sleep(0.2)
        assert set(os.listdir("/dev/shm")) - shm == set()
    finally:
        for pid in _process_group(p.pid):
            os.kill(pid, signal.SIGKILL)
    tmp.rmdir()
