"""The one fix lava-nc 0.10.0 needs to import on Python 3.11, applied without editing site-packages.

`lava/magma/compiler/var_model.py` gives dataclass fields instances of another dataclass as
defaults (`x: ByteEncoder = ByteEncoder()`), which Python 3.11 rejects ("mutable default ... use
default_factory"). `install()` puts a finder on `sys.meta_path` that compiles exactly that module
from its source with those defaults rewritten to `field(default_factory=ByteEncoder)`. Call it before
the first `import lava...` (importing `spc.runtime.lava` does).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET = "lava.magma.compiler.var_model"


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Always compile from the patched source: a cached .pyc would hold the unpatched module.
        source = self.get_data(self.path).decode("utf-8")
        patched = source.replace("= ByteEncoder()", "= field(default_factory=ByteEncoder)")
        patched = patched.replace("from dataclasses import dataclass, InitVar", "from dataclasses import dataclass, InitVar, field")
        return compile(patched, self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        spec.loader = _PatchedLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Idempotent; must run before lava's var_model module is first imported."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
