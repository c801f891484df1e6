"""Fuzz targets: every loader spc has, fed arbitrary bytes. A target may accept the input or raise
spc's own SpcError; anything else (a crash, another exception) is a bug.

Used by tests/test_fuzz.py (hypothesis, bounded, in CI) and fuzz/run.py (atheris, `make fuzz`)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import spc
from spc.compiler.serialize import load_graph
from spc.files import load_array
from spc.frontends.torch.loading import load_checkpoint
from spc.runtime.recording import check_input


def seed_artifact(directory: Path) -> Path:
    """A small valid compiled directory to mutate."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), spc.SlidingPSN(k=2), nn.Linear(6, 6), spc.MaskedPSN(k=2, T=5, lambda_init=1.0), nn.Linear(6, 2), spc.LI())
    x = (np.random.default_rng(0).random((5, 3, 4)) < 0.5).astype(np.float32)
    spc.compile(model, x, directory / "seed", calib=x)
    lif = nn.Sequential(nn.Linear(4, 6), spc.LIF(tau=2.0), nn.Linear(6, 2), spc.LI())
    spc.compile(lif, x, directory / "seed_nir", calib=x, targets=("nir",))
    (directory / "seed" / "model.nir").write_bytes((directory / "seed_nir" / "model.nir").read_bytes())
    return directory / "seed"


@contextlib.contextmanager
def _scratch(data: bytes, name: str):
    """The bytes as a file of that name in a fresh temporary folder, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="spc-fuzz-"))
    try:
        (directory / name).write_bytes(data)
        yield directory / name
    finally:
        shutil.rmtree(directory)


def npy(data: bytes, graph) -> None:
    with _scratch(data, "x.npy") as path:
        check_input(graph, load_array(path, "input"))


def nir_file(data: bytes) -> None:
    from spc.frontends.nir import from_nir

    with _scratch(data, "model.nir") as path:
        from_nir(path)


def checkpoint(data: bytes) -> None:
    with _scratch(data, "w.pt") as path:
        load_checkpoint(path)


def graph_directory(seed: Path, graph_json: bytes | None = None, weights: bytes | None = None) -> None:
    """Load a graph whose graph.json and/or weights.npz are replaced by the given bytes."""
    directory = Path(tempfile.mkdtemp(prefix="spc-fuzz-"))
    try:
        shutil.copytree(seed / "integer", directory / "g")
        if graph_json is not None:
            (directory / "g" / "graph.json").write_bytes(graph_json)
        if weights is not None:
            (directory / "g" / "weights.npz").write_bytes(weights)
        graph = load_graph(directory / "g")
        spc.runtime.sim.run_stepwise(graph, np.ones((2, 1) + tuple(graph.input.op.shape), np.float32))
    finally:
        shutil.rmtree(directory)


def onnx_file(seed: Path, data: bytes) -> None:
    """Run the bytes as the compiled model's whole-sequence ONNX graph (what `spc run --backend onnx` reads)."""
    from spc.compiler.emit.onnx import FILES
    from spc.runtime.onnx_runner import run_onnx

    directory = Path(tempfile.mkdtemp(prefix="spc-fuzz-"))
    try:
        shutil.copytree(seed / "integer", directory / "integer")
        (directory / FILES[("integer", "seq")]).write_bytes(data)
        graph = load_graph(directory / "integer")
        run_onnx(directory, np.ones((2, 1) + tuple(graph.input.op.shape), np.float32))
    finally:
        shutil.rmtree(directory)


BOMBS = ("npz", "npz-deflated", "npz-extra", "nir")


def size_bomb(seed: Path, kind: str, elements: int, held: int) -> None:
    """Load a file that declares a float64 array of `elements` while holding `held` bytes of data:
    `npz` a stored member of the integer graph's weights.npz, `npz-deflated` a compressed one (its
    data really inflate to `held` bytes), `npz-extra` a compressed member graph.json does not name,
    `nir` the weight of the NIR file's Affine node (a chunked, compressed HDF5 dataset written up to
    `held`). The files are made in small pieces: making them takes little memory."""
    if kind == "nir":
        import h5py

        buffer = io.BytesIO((seed / "model.nir").read_bytes())
        with h5py.File(buffer, "r+") as f:
            node = next(g for g in f["node/nodes"].values() if g["type"][()] == b"Affine")
            del node["weight"]
            weight = node.create_dataset("weight", shape=(elements,), dtype="<f8", chunks=(max(1, min(elements, 2**16)),), maxshape=(None,), compression="gzip")
            for start in range(0, min(elements, held // 8), 2**16):
                weight[start : min(start + 2**16, elements, held // 8)] = 1.0
        nir_file(buffer.getvalue())
        return
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (elements,)})
    archive = io.BytesIO()
    with zipfile.ZipFile(seed / "integer" / "weights.npz") as original, zipfile.ZipFile(archive, "w") as z:
        name = "extra.npy" if kind == "npz-extra" else min(original.namelist())
        for info in original.infolist():
            if info.filename != name:
                z.writestr(info, original.read(info))
        member = zipfile.ZipInfo(name)
        member.compress_type = zipfile.ZIP_STORED if kind == "npz" else zipfile.ZIP_DEFLATED
        with z.open(member, "w", force_zip64=True) as out:
            out.write(header.getvalue())
            for start in range(0, held, 2**20):
                out.write(bytes(min(2**20, held - start)))
    graph_directory(seed, weights=archive.getvalue())


def mutate_json(doc, path: list, value):
    """Replace the value at `path` (keys / indices, clipped to what exists) in a JSON document."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)] if isinstance(path[0], int) else path[0]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    if isinstance(copy, list) and not isinstance(key, int):
        return copy
    copy[key] = mutate_json(copy[key] if key in (copy if isinstance(copy, dict) else range(len(copy))) else None, path[1:], value)
    return copy


def json_bytes(doc) -> bytes:
    return json.dumps(doc).encode()
