"""Reading user arrays safely and writing single files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from spc.errors import SpcError


def load_array(path: str | Path, what: str) -> np.ndarray:
    """Read a .npy file without unpickling anything."""
    p = Path(path)
    if not p.is_file():
        raise SpcError(f"{what} file {p}", "does not exist", "check the path")
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise SpcError(f"{what} file {p}", "holds Python objects (a pickled array), which spc never loads", "save a numeric array with np.save") from None
        raise SpcError(f"{what} file {p}", f"is not a readable .npy array ({e})", "save it with np.save") from None
    except (OSError, EOFError) as e:
        raise SpcError(f"{what} file {p}", f"cannot be read ({e})", "save it with np.save") from None
    except Exception as e:  # a damaged header fails deep in numpy's parser (no code runs: no pickle)
        raise SpcError(f"{what} file {p}", f"is not a readable .npy array ({type(e).__name__})", "save it with np.save") from None


def write_atomically(path: str | Path, write) -> None:
    """Call write(temporary path) and rename the result to `path`, so a failure leaves no partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path, fix: str = "recompile the model") -> dict:
    """A JSON object from a file spc wrote, or an SpcError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SpcError(str(path), "does not exist", fix)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpcError(str(path), f"is not valid JSON ({e})", fix) from None
    if not isinstance(doc, dict):
        raise SpcError(str(path), "does not hold a JSON object", fix)
    return doc
