"""Fixes lava-nc 0.10.0 needs to import in spc's environment, applied without editing site-packages.

1. Python 3.11: `lava/magma/compiler/var_model.py` gives dataclass fields instances of another
   dataclass as defaults (`x: ByteEncoder = ByteEncoder()`), which 3.11 rejects ("mutable default
   ... use default_factory"); they become `field(default_factory=ByteEncoder)`.
2. Import order: `lava/magma/runtime/message_infrastructure/multiprocessing.py` calls
   `mp.set_start_method('fork')` at import, which raises "context has already been set" once anything
   in the process has used multiprocessing (tqdm's lock does); it now sets 'fork' only when the
   start method is not 'fork' already.

`install()` puts a finder on `sys.meta_path` that compiles exactly these modules from their source
with those lines rewritten. Call it before the first `import lava...` (importing `spc.runtime.lava`
does).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

PATCHES = {
    "lava.magma.compiler.var_model": [
        ("= ByteEncoder()", "= field(default_factory=ByteEncoder)"),
        ("from dataclasses import dataclass, InitVar", "from dataclasses import dataclass, InitVar, field"),
    ],
    "lava.magma.runtime.message_infrastructure.multiprocessing": [
        ("    mp.set_start_method('fork')", "    mp.get_start_method(allow_none=True) == 'fork' or mp.set_start_method('fork', force=True)"),
    ],
}


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Always compile from the patched source: a cached .pyc would hold the unpatched module.
        source = self.get_data(self.path).decode("utf-8")
        for old, new in PATCHES[fullname]:
            if old not in source:
                raise ImportError(f"spc's lava-nc fix does not apply to {self.path}: expected lava-nc 0.10.0")
            source = source.replace(old, new)
        return compile(source, self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        spec.loader = _PatchedLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Idempotent; must run before lava's patched modules are first imported."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
