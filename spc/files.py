"""Reading files a user hands spc (arrays, compiled directories, NIR files) without trusting them.

Nothing is unpickled, and every size a file declares is checked before anything of that size is
read or allocated, so a small file cannot make spc read a large one:
- a `.npy` array must hold the bytes its header declares (`load_array`);
- of a compiled graph's `weights.npz`, only the arrays its graph.json names are read, each stored
  uncompressed (as spc writes them) and exactly as large as its header declares, so what is read
  is at most the file's size on disk; other members are refused (`read_npz`);
- an HDF5 (NIR) file may declare at most `HDF5_MAX_BYTES` of data, may not keep data in other files
  (external storage, external links, virtual datasets) and may reach each object by one link only
  (`check_hdf5`).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from spc.errors import SpcError

HDF5_MAX_BYTES = 2**30
"""The most data an HDF5 (NIR) file may declare, all datasets together; a string element counts
its bytes plus `STRING_BYTES` (what it costs as a Python object once read)."""

STRING_BYTES = 64
HDF5_MAX_DEPTH = 64
"""The deepest nesting of groups an HDF5 (NIR) file may have."""

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _npy_header(stream, subject: str, fix: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data bytes) from the header of a .npy stream, positioned at
    the data afterwards; refuses pickled (object) arrays."""
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _NPY_HEADERS:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = _NPY_HEADERS[version](stream)
    except Exception as e:  # numpy's header parser raises several types on damaged bytes (it runs no code)
        raise SpcError(subject, f"is not a readable .npy array ({type(e).__name__}: {e})", fix) from None
    if dtype.hasobject:
        raise SpcError(subject, "holds Python objects (a pickled array), which spc never loads", fix)
    return shape, fortran, dtype, math.prod(shape) * dtype.itemsize


def load_array(path: str | Path, what: str) -> np.ndarray:
    """Read a .npy file without unpickling anything, after checking that it holds what its header
    declares."""
    p = Path(path)
    subject, fix = f"{what} file {p}", "save a numeric array with np.save"
    if p.is_dir():
        raise SpcError(subject, "is a directory, not a .npy file", "give the path of an array saved with np.save")
    if not p.is_file():
        raise SpcError(subject, "does not exist", "check the path")
    if p.stat().st_size == 0:
        raise SpcError(subject, "is empty", fix)
    try:
        with open(p, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise SpcError(subject, "is an .npz archive of several arrays, not one .npy array", "save the one array with np.save, e.g. np.save('x.npy', np.load(archive)['name'])")
            f.seek(0)
            shape, _, dtype, nbytes = _npy_header(f, subject, fix)
            held = os.fstat(f.fileno()).st_size - f.tell()
    except OSError as e:
        raise SpcError(subject, f"cannot be read ({e.strerror or e})", fix) from None
    if held < nbytes:
        raise SpcError(subject, f"is truncated: its header declares a {dtype} array of shape {shape} ({nbytes} bytes), but it holds {held} bytes of data", fix)
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, EOFError) as e:
        raise SpcError(subject, f"cannot be read ({e})", fix) from None
    except Exception as e:  # a damaged header fails deep in numpy's parser (no code runs: no pickle)
        raise SpcError(subject, f"is not a readable .npy array ({type(e).__name__})", fix) from None


def read_npz(path: Path, keys: set[str] | None, fix: str = "recompile the model") -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays named by `keys` (None: every .npy member) from an .npz archive spc wrote, each
    member stored uncompressed and exactly as large as its .npy header declares (absent keys are
    left to the caller), and the names of the members not read, which spc never writes."""
    subject = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [m.filename for m in members]
            if len(set(names)) != len(names):
                raise SpcError(subject, "lists a member twice", fix)
            wanted = {f"{k}.npy" for k in keys} if keys is not None else {n for n in names if n.endswith(".npy")}
            arrays = {m.filename[: -len(".npy")]: _read_member(archive, m, subject, fix) for m in members if m.filename in wanted}
            return arrays, sorted(set(names) - wanted)
    except SpcError:
        raise
    except Exception as e:  # damaged archives fail in many ways inside zipfile and numpy (no pickle: no code runs)
        raise SpcError(subject, f"cannot be read ({type(e).__name__}: {e})", fix) from None


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, subject: str, fix: str) -> np.ndarray:
    where = f"{subject}: member {member.filename}"
    if member.compress_type != zipfile.ZIP_STORED:
        raise SpcError(where, "is compressed; spc stores its arrays uncompressed", fix)
    with archive.open(member) as stream:
        shape, fortran, dtype, nbytes = _npy_header(stream, where, fix)
        if stream.tell() + nbytes != member.file_size:
            raise SpcError(where, f"declares a {dtype} array of shape {shape} ({nbytes} bytes) but holds {member.file_size - stream.tell()} bytes of data", fix)
        data = np.empty(math.prod(shape), dtype)
        if stream.readinto(memoryview(data).cast("B")) != nbytes:
            raise SpcError(where, "is truncated", fix)
    return data.reshape(shape, order="F" if fortran else "C")


def check_hdf5(path: Path, subject: str, fix: str) -> None:
    """Refuse an HDF5 file that declares more than HDF5_MAX_BYTES of data, nests groups deeper than
    HDF5_MAX_DEPTH, links anything other than by one hard link per object, or keeps data in other
    files: reading it then reads at most those bytes, and only from this file."""
    import h5py

    total = 0

    def visit(group, prefix: str, depth: int) -> None:
        nonlocal total
        if depth > HDF5_MAX_DEPTH:
            raise SpcError(subject, f"nests groups deeper than {HDF5_MAX_DEPTH} levels (at '{prefix}')", fix)
        for name in group:
            where = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise SpcError(subject, f"links '{where}' to another file ({link.filename}), which spc never reads", fix)
            if not isinstance(link, h5py.HardLink):
                raise SpcError(subject, f"has a {type(link).__name__} at '{where}'; spc reads only plain groups and datasets", fix)
            item = group[name]
            if h5py.h5o.get_info(item.id).rc > 1:
                raise SpcError(subject, f"reaches '{where}' by more than one link; spc reads only plain groups and datasets", fix)
            if isinstance(item, h5py.Group):
                visit(item, where, depth + 1)
            elif isinstance(item, h5py.Dataset):
                if item.is_virtual:
                    raise SpcError(subject, f"has a virtual dataset '{where}' (its data come from other datasets or files), which spc never reads", fix)
                if item.external:
                    raise SpcError(subject, f"keeps the data of '{where}' in another file ({os.fsdecode(item.external[0][0])}), which spc never reads", fix)
                strings = item.dtype.kind in "SUO"
                total += (item.size or 0) * (item.dtype.itemsize + (STRING_BYTES if strings else 0))
                if total > HDF5_MAX_BYTES:
                    raise SpcError(subject, f"declares more than {HDF5_MAX_BYTES // 2**20} MiB of data (at '{where}', shape {item.shape}), more than spc reads from one file", fix)

    with h5py.File(path, "r") as f:
        visit(f, "", 0)


def read_json(path: str | Path, fix: str = "recompile the model") -> dict:
    """A JSON object from a file spc wrote, or an SpcError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SpcError(str(path), "does not exist", fix)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpcError(str(path), f"is not valid JSON ({e})", fix) from None
    except RecursionError:
        raise SpcError(str(path), "nests JSON values too deeply", fix) from None
    if not isinstance(doc, dict):
        raise SpcError(str(path), "does not hold a JSON object", fix)
    return doc
