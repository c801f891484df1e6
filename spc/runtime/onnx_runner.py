"""Running spc's ONNX models (spc.compiler.emit.onnx) with onnxruntime or with onnx's reference
evaluator, and recording every neuron layer like the simulator does.

`engine="ort"` uses onnxruntime, with the CUDA provider when it is available (TF32 off, so float32
GEMMs stay exact) and the CPU provider otherwise; `engine="reference"` uses
`onnx.reference.ReferenceEvaluator`, an independent second runtime (numpy). The sequence graph runs
in one call; the one-step graph is driven from Python, each step's `state_out.*` fed back as the next
step's `state_in.*`. The graphs saturate as docs/integer-spec.md says but do not count saturation
events: a recording's `saturations` stay empty (spc's simulator counts them).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx

from spc.compiler.emit.onnx import FILES
from spc.compiler.serialize import load_graph
from spc.errors import SpcError
from spc.runtime.recording import Recording, check_input

FORMS = {"integer": "integer", "float": "stepwise"}
"""Each ONNX form and the folder of the compiled model's graph it was emitted from."""
GRAPHS = ("seq", "step")
ENGINES = ("ort", "reference")


def _choice(what: str, value: str, allowed) -> None:
    if value not in allowed:
        raise SpcError(f"{what} '{value}'", "is not available", f"choose one of {', '.join(allowed)}")


def _spc_graph(directory: Path, form: str):
    """The compiled graph the ONNX form came from (for the input check): in `directory` or, for
    OUT/onnx/, its parent; read once per graph.json (see `_signature`)."""
    for root in (directory, directory.parent):
        if (root / FORMS[form] / "graph.json").is_file():
            return _graph_at(_signature(root / FORMS[form] / "graph.json"))
    raise SpcError(f"directory {directory}", f"holds no compiled spc model with {'an integer' if form == 'integer' else 'a stepwise'} graph, and neither does its parent", "emit the ONNX files into the compiled model's directory (spc compile ... -o OUT); for the integer form, compile with it (the default)")


class _Ort:
    """An onnxruntime session fed and read through OrtValues, so state goes back without copies."""

    def __init__(self, path: str):
        import onnxruntime as ort

        self.ort = ort
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"use_tf32": "0"}))
        self.session = ort.InferenceSession(path, providers=providers)  # reads external data beside it
        self.names = [o.name for o in self.session.get_outputs()]

    def __call__(self, feeds: dict) -> dict:
        values = {k: v if isinstance(v, self.ort.OrtValue) else self.ort.OrtValue.ortvalue_from_numpy(v) for k, v in feeds.items()}
        return dict(zip(self.names, self.session.run_with_ort_values(self.names, values)))

    @staticmethod
    def array(value) -> np.ndarray:
        return value.numpy()  # a view of the OrtValue's buffer: callers copy it before it goes


class _Reference:
    def __init__(self, path: str):
        from onnx.reference import ReferenceEvaluator

        self.evaluator = ReferenceEvaluator(onnx.load(path))
        self.names = list(self.evaluator.output_names)

    def __call__(self, feeds: dict) -> dict:
        return dict(zip(self.names, self.evaluator.run(None, feeds)))

    @staticmethod
    def array(value) -> np.ndarray:
        return value


ENGINE_TYPES = {"ort": _Ort, "reference": _Reference}


def _run_steps(engine, state: list[dict], x: np.ndarray) -> dict[str, np.ndarray]:
    """Drive the one-step graph over x [T, B, ...]; every per-step output stacked over time."""
    batch = x.shape[1]
    feeds = {s["in"]: np.zeros([batch if d == "B" else d for d in s["shape"]], np.dtype(s["dtype"])) for s in state}
    kept = [n for n in engine.names if not n.startswith("state_out.")]
    stacked: dict[str, np.ndarray] = {}
    for t in range(x.shape[0]):
        out = engine({"x": x[t], **feeds})
        for name in kept:
            value = engine.array(out[name])
            if name not in stacked:
                stacked[name] = np.empty((x.shape[0],) + value.shape, value.dtype)
            stacked[name][t] = value  # copies out of the runtime's buffer
        feeds = {s["in"]: out[s["out"]] for s in state}
    return stacked


def run_onnx(directory: str | Path, x: np.ndarray, form: str = "integer", graph: str = "seq", engine: str = "ort") -> Recording:
    """Run the ONNX model of `form` ('integer' or 'float') that emit_onnx wrote into `directory`
    (a compiled model's directory, or a folder inside it), as the whole-sequence Scan graph
    (`graph="seq"`) or step by step (`graph="step"`), on x [T, B, ...].

    The recording holds every neuron layer's output (spikes, or a readout's membrane) and membrane
    by the layer's name, and the model's output under the compiled graph's output name."""
    _choice("ONNX form", form, FORMS)
    _choice("ONNX graph", graph, GRAPHS)
    _choice("ONNX engine", engine, ENGINES)
    directory = Path(directory)
    x = check_input(_spc_graph(directory, form), x).astype(np.float64)
    path = directory / FILES[(form, graph)]
    if not path.is_file():
        raise SpcError(str(path), "does not exist", "write the ONNX models first (spc.compiler.emit.onnx.emit_onnx)")
    fix = "compile the model again (spc compile ... --force): spc reads back only the ONNX files it wrote"
    runner, meta = session(path, engine)
    try:
        if graph == "seq":
            results = {name: np.array(runner.array(value)) for name, value in runner({"x": x}).items()}
        else:
            results = _run_steps(runner, json.loads(meta["spc.state"]), x)
        rec = Recording(meta["spc.output"])
        for layer in json.loads(meta["spc.layers"]):
            name = layer["name"]
            rec.membranes[name] = results[f"membrane.{name}"]
            rec.outputs[name] = results[f"spikes.{name}" if layer["spiking"] else f"membrane.{name}"]
        rec.outputs[rec.output_name] = results["output"]
    except Exception as e:  # the runtime refused the graph, or it lacks spc's metadata or outputs
        raise SpcError(str(path), f"is not an ONNX model spc wrote for this graph, or is damaged ({type(e).__name__}: {str(e)[:200]})", fix) from e
    return rec


def _signature(path: Path) -> tuple:
    """What identifies a file's contents for the caches: a rewritten file (a model compiled again
    into the same directory: every file of it new) gets a new session, a graph read again."""
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


def session(path: Path, engine: str = "ort"):
    """(runner, spc metadata) for the ONNX file at `path`: built once per file and engine and kept
    (the last few), since building an onnxruntime session — reading the weights, optimising the
    graph — can take longer than running it."""
    return _cached_session(_signature(Path(path)), engine)


@lru_cache(maxsize=8)
def _graph_at(signature: tuple):
    return load_graph(Path(signature[0]).parent)


@lru_cache(maxsize=8)
def _cached_session(signature: tuple, engine: str):
    path = signature[0]
    fix = "compile the model again (spc compile ... --force): spc reads back only the ONNX files it wrote"
    try:
        model = onnx.load(path, load_external_data=False)  # the metadata; each engine reads the weights
    except Exception as e:  # protobuf's DecodeError and the like: not an ONNX model
        raise SpcError(str(path), f"cannot be read as an ONNX model ({type(e).__name__})", fix) from e
    try:
        return ENGINE_TYPES[engine](path), {p.key: p.value for p in model.metadata_props}
    except Exception as e:  # the runtime refused the graph
        raise SpcError(str(path), f"is not an ONNX model spc wrote for this graph, or is damaged ({type(e).__name__}: {str(e)[:200]})", fix) from e
