"""Graph <-> `graph.json` + `weights.npz`, exactly.

Records (operations, cells) are written as `{"kind": ..., field: value}`; numpy arrays go to the
npz file under a path-like key and appear in the JSON as `{"array": key}`. Floats are written by
`repr` (exact round trip); arrays keep their dtype. The npz file is read without pickle.

The forms of a compiled model share most of their weights (the stepwise form's synapses are the
parallel form's). Saved with a `Stored` record of what the directory already holds, an array equal to
one written before is not written again: the JSON says `{"array": key, "form": folder}`, the array
`key` of the sibling folder's weights.npz. Members of a weights.npz are stored uncompressed, so
`Stored` also knows where each array's raw bytes lie in its file (ONNX models refer to them there).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spc.compiler.ir import RECORDS, Graph, Node, Record
from spc.errors import SpcError
from spc.files import read_json, read_npz

_FOLDER = re.compile(r"[A-Za-z0-9_-]+")
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


@dataclass(frozen=True)
class Place:
    """Where an array lies in a compiled directory: member `key` of `folder`/weights.npz, its raw
    bytes (C order, little-endian) at `offset` in that file."""

    folder: str
    key: str
    offset: int
    nbytes: int

    @property
    def path(self) -> str:
        return f"{self.folder}/weights.npz"


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (unlike ==, which takes -0.0 for 0.0 and NaN for no NaN)."""
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


class Stored:
    """The arrays a compiled directory holds so far, and their places, found again by identity or
    by equal contents (same dtype, shape and bytes)."""

    def __init__(self):
        self.places: dict[int, tuple[np.ndarray, Place]] = {}  # id(array) -> (array, place)
        self.by_layout: dict[tuple, list[int]] = {}

    def find(self, array: np.ndarray) -> Place | None:
        if id(array) in self.places:
            return self.places[id(array)][1]
        for other in self.by_layout.get((array.dtype.str, array.shape), []):
            if _same_bytes(self.places[other][0], array):
                return self.places[other][1]
        return None

    def add(self, array: np.ndarray, place: Place) -> None:
        self.places[id(array)] = (array, place)
        self.by_layout.setdefault((array.dtype.str, array.shape), []).append(id(array))


def _refer(doc, folder: str, found: dict[str, Place]) -> None:
    """Point the JSON's references to arrays found in other folders at those folders."""
    if isinstance(doc, dict):
        if "array" in doc and doc["array"] in found:
            place = found[doc["array"]]
            doc["array"] = place.key
            if place.folder != folder:
                doc["form"] = place.folder
            return
        for v in doc.values():
            _refer(v, folder, found)
    elif isinstance(doc, list):
        for v in doc:
            _refer(v, folder, found)


def _import_record_types() -> None:
    """Import every module that defines IR records: their classes enter RECORDS when defined."""
    import spc.compiler.cells  # noqa: F401
    import spc.compiler.qcells  # noqa: F401
    import spc.frontends.torch.neurons  # noqa: F401


def _decode(value, arrays, where: str):
    if isinstance(value, dict):
        if "array" in value:
            held = arrays(value.get("form"))
            if value["array"] not in held:
                held_in = f"../{value['form']}/weights.npz" if value.get("form") else "weights.npz"
                raise SpcError(where, f"array '{value['array']}' is missing from {held_in}", "recompile the model")
            return held[value["array"]]
        kind = value.get("kind")
        cls = RECORDS.get(kind) if isinstance(kind, str) else None
        if cls is not None and "__dataclass_fields__" not in vars(cls):  # an abstract base (Op, Cell, ...)
            raise SpcError(where, f"names the abstract kind '{kind}', not an operation or cell", "recompile the model")
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


def _check_document(doc, where: str) -> None:
    """Format, version and the two lists a graph document must have."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SpcError(where, "is not an spc graph", "point spc at a directory written by `spc compile`")
    if doc.get("version") != FORMAT_VERSION:
        raise SpcError(where, f"has format version {doc.get('version')}, this spc reads version {FORMAT_VERSION}", "recompile the model with this spc")
    for key in ("nodes", "outputs"):
        if not isinstance(doc.get(key), list):
            raise SpcError(where, f"is malformed (no list of {key})", "recompile the model")


def decode(doc: dict, arrays, where: str = "graph.json") -> Graph:
    """The graph of a graph.json document; `arrays` is the dict of its weights.npz, or a function of
    a sibling folder's name (None: its own) giving that folder's arrays."""
    if isinstance(arrays, dict):
        own = arrays
        arrays = lambda form: own if form is None else {}  # noqa: E731
    _check_document(doc, where)
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
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as e:
        raise SpcError(where, f"is malformed ({type(e).__name__}: {e})", "recompile the model") from None


def save_graph(graph: Graph, directory: Path, stored: Stored | None = None) -> None:
    """Write graph.json and weights.npz into `directory`; with `stored`, arrays the compiled
    directory already holds are referred to, not written again, and the ones written are added."""
    directory.mkdir(parents=True, exist_ok=True)
    doc, arrays = encode(graph)
    found = {key: place for key, place in ((key, stored.find(a)) for key, a in arrays.items()) if place is not None} if stored else {}
    _refer(doc, directory.name, found)
    local = {key: a for key, a in arrays.items() if key not in found}
    (directory / "graph.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_npz(directory / "weights.npz", local)
    if stored is not None:
        for key, (offset, nbytes) in raw_offsets(directory / "weights.npz").items():
            stored.add(local[key], Place(directory.name, key, offset, nbytes))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like `np.savez`, but byte-for-byte reproducible: sorted entries, fixed timestamps."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def raw_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """{key: (offset, nbytes)}: where each array's raw data lies in an uncompressed npz file."""
    out = {}
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        for info in zf.infolist():
            f.seek(info.header_offset)
            local = f.read(30)  # the local file header: name and extra lengths at bytes 26 and 28
            f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little"))
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                continue
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            if info.compress_type == zipfile.ZIP_STORED and not fortran and dtype.byteorder in "<|=" and sys.byteorder == "little":
                out[info.filename.removesuffix(".npy")] = (f.tell(), math.prod(shape) * dtype.itemsize)
    return out


def load_graph(directory: Path) -> Graph:
    """Read a graph, reading from each weights.npz (its own, and a sibling form's it refers to) only
    the members its graph.json names; its own may hold no others."""
    directory = Path(directory)
    json_path, npz_path = directory / "graph.json", directory / "weights.npz"
    if not npz_path.is_file():
        raise SpcError(str(npz_path), "does not exist", "point spc at a directory written by `spc compile`")
    doc = read_json(json_path, "point spc at a directory written by `spc compile`, or recompile the model")
    _check_document(doc, str(json_path))
    try:
        keys = _array_keys(doc)
    except RecursionError:
        raise SpcError(str(json_path), "nests its values too deeply", "recompile the model") from None
    arrays = {}
    for form, wanted in sorted(keys.items(), key=lambda item: item[0] or ""):
        if form is None:
            arrays[None], unused = read_npz(npz_path, wanted)
            if unused:
                raise SpcError(str(npz_path), f"holds {len(unused)} member(s) its graph.json does not use ({', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}), which spc never writes", "recompile the model")
            continue
        if not isinstance(form, str) or not _FOLDER.fullmatch(form) or form == directory.name:
            raise SpcError(str(json_path), f"refers to arrays of '{form}', which is not a sibling form's folder", "recompile the model")
        sibling = directory.parent / form / "weights.npz"
        if not sibling.is_file():
            raise SpcError(str(sibling), "does not exist", "recompile the model")
        arrays[form], _ = read_npz(sibling, wanted)  # its other members are that form's own
    return decode(doc, lambda form: arrays.get(form, {}), str(json_path))


def _array_keys(value) -> dict[str | None, set[str]]:
    """The weights.npz keys a graph.json document refers to (`{"array": key}`, with `"form": folder`
    for a sibling folder's), by folder (None: its own, always present)."""
    keys: dict = {None: set()}

    def visit(value) -> None:
        if isinstance(value, dict):
            if "array" in value:  # as `_decode` reads it
                form = value.get("form")
                if isinstance(value["array"], str):
                    keys.setdefault(form if form is None or isinstance(form, str) else f"{form!r} (a {type(form).__name__})", set()).add(value["array"])
                return
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    visit(value)
    return keys
