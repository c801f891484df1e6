"""Graph <-> `graph.json` + `weights.npz`, exactly.

Records (operations, cells) are written as `{"kind": ..., field: value}`; numpy arrays go to the
npz file under a path-like key and appear in the JSON as `{"array": key}`. Floats are written by
`repr` (exact round trip); arrays keep their dtype. The npz file is read without pickle.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from spc.compiler.ir import RECORDS, Graph, Node, Record
from spc.errors import SpcError
from spc.files import read_json

FORMAT = "spc-graph"
FORMAT_VERSION = 1


def _encode(value, key: str, arrays: dict):
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, Record):
        out = {"kind": value.kind}
        for field in dataclasses.fields(value):
            if field.init:
                out[field.name] = _encode(getattr(value, field.name), f"{key}.{field.name}", arrays)
        return out
    if isinstance(value, (tuple, list)):
        return [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot serialise {type(value).__name__} at {key}")


def encode(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    nodes = [
        {"name": n.name, "inputs": list(n.inputs), "op": _encode(n.op, n.name, arrays)} for n in graph.nodes
    ]
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "nodes": nodes, "outputs": list(graph.outputs)}
    return doc, arrays


def _import_record_types() -> None:
    """Import every module that defines IR records: their classes enter RECORDS when defined."""
    import spc.compiler.cells  # noqa: F401
    import spc.compiler.qcells  # noqa: F401
    import spc.frontends.torch.neurons  # noqa: F401


def _decode(value, arrays, where: str):
    if isinstance(value, dict):
        if "array" in value:
            if value["array"] not in arrays:
                raise SpcError(where, f"array '{value['array']}' is missing from weights.npz", "recompile the model")
            return arrays[value["array"]]
        kind = value.get("kind")
        cls = RECORDS.get(kind)
        if cls is None:
            raise SpcError(where, f"unknown operation kind '{kind}'", "this graph was written by another spc version; recompile")
        kwargs = {k: _decode(v, arrays, where) for k, v in value.items() if k != "kind"}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise SpcError(where, f"malformed '{kind}' record ({e})", "recompile the model") from None
    if isinstance(value, list):
        return tuple(_decode(v, arrays, where) for v in value)
    return value


def decode(doc: dict, arrays: dict[str, np.ndarray], where: str = "graph.json") -> Graph:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SpcError(where, "is not an spc graph", "point spc at a directory written by `spc compile`")
    if doc.get("version") != FORMAT_VERSION:
        raise SpcError(where, f"has format version {doc.get('version')}, this spc reads version {FORMAT_VERSION}", "recompile the model with this spc")
    _import_record_types()
    try:
        nodes = tuple(
            Node(n["name"], _decode(n["op"], arrays, f"{where}: node '{n['name']}'"), tuple(n["inputs"]))
            for n in doc["nodes"]
        )
        return Graph(nodes, tuple(doc["outputs"]))
    except SpcError as e:
        if e.subject.startswith(where):
            raise
        raise SpcError(f"{where}: {e.subject}", e.problem, e.fix) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise SpcError(where, f"is malformed ({type(e).__name__}: {e})", "recompile the model") from None


def save_graph(graph: Graph, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    doc, arrays = encode(graph)
    (directory / "graph.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_npz(directory / "weights.npz", arrays)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like `np.savez`, but byte-for-byte reproducible: sorted entries, fixed timestamps."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def load_graph(directory: Path) -> Graph:
    directory = Path(directory)
    json_path, npz_path = directory / "graph.json", directory / "weights.npz"
    if not npz_path.is_file():
        raise SpcError(str(npz_path), "does not exist", "point spc at a directory written by `spc compile`")
    doc = read_json(json_path, "point spc at a directory written by `spc compile`, or recompile the model")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as e:  # damaged archives fail in many ways inside zipfile and numpy (no pickle: no code runs)
        raise SpcError(str(npz_path), f"cannot be read ({type(e).__name__}: {e})", "recompile the model") from None
    return decode(doc, arrays, str(json_path))
