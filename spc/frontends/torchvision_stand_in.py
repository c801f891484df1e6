"""A stand-in for torchvision, for SpikingJelly's model zoo only.

SpikingJelly's zoo modules (`model.sew_resnet`, `spiking_resnet`, `spiking_vgg`, ...) import one
function from torchvision, `load_state_dict_from_url`, which torchvision re-exports from torch.hub
and the zoo calls only to download pretrained weights. torchvision builds exist for matching torch
builds only; where torchvision is not installed, or fails to import (a CUDA build beside a CPU
torch: "operator torchvision::nms does not exist"), the zoo cannot be imported at all. `install()`
(run by `import spc`) adds an import hook that, for imports made by the zoo's modules and only when
the real torchvision is missing or fails, provides torch.hub's `load_state_dict_from_url` under the
two names the zoo imports it by, and warns. The models are unchanged: nothing else of torchvision
is used to build or run them. Everyone else imports torchvision as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
import warnings

ZOO = "spikingjelly.activation_based.model"
PROVIDED = ("torchvision.models.utils", "torchvision._internally_replaced_utils")
"""The modules the zoo imports `load_state_dict_from_url` from."""


def _importer() -> str:
    """The module whose code is running the import (the first frame outside importlib)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _stand_in(module: types.ModuleType, reason: str) -> None:
    """Turn `module` (torchvision) into the stand-in: the zoo's one function, and a clear error for
    anything else."""
    import torch.hub

    for name in [n for n in sys.modules if n.startswith("torchvision.")]:
        del sys.modules[name]  # what a failed import of the real package left behind
    module.__path__ = []
    module.__spc_stand_in__ = reason

    def missing(attribute: str):
        raise AttributeError(f"torchvision.{attribute}: torchvision is not available ({reason}); spc stands in only torch.hub's load_state_dict_from_url for SpikingJelly's model zoo")

    module.__getattr__ = missing
    module.models = models = types.ModuleType("torchvision.models")
    models.__path__ = []
    sys.modules["torchvision.models"] = models
    for name in PROVIDED:
        provided = types.ModuleType(name)
        provided.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        sys.modules[name] = provided
        setattr(models if name.startswith("torchvision.models.") else module, name.rsplit(".", 1)[1], provided)
    warnings.warn(f"torchvision cannot be imported ({reason}); spc provides SpikingJelly's model zoo with torch.hub's load_state_dict_from_url, the one torchvision function it imports (to download pretrained weights). The models compute exactly what they compute with torchvision.", stacklevel=2)


class _Loader(importlib.abc.Loader):
    """The real torchvision's loader (None: not installed), falling back to the stand-in."""

    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec) if self.real is not None else None

    def exec_module(self, module):
        if self.real is None:
            _stand_in(module, "it is not installed")
            return
        try:
            self.real.exec_module(module)
        except Exception as e:  # any failure of a mismatched build
            _stand_in(module, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or not _importer().startswith(ZOO):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return importlib.machinery.ModuleSpec(name, _Loader(None), is_package=True)


def install() -> None:
    """Add the import hook (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
