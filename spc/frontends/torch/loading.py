"""Load a user's model from `path/to/file.py:factory` and its weights from a checkpoint, safely.

The model file is the user's own code and is executed; a checkpoint is data and never is: it is read
with `torch.load(..., weights_only=True)`, which refuses pickled objects other than tensors.
"""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from spc.errors import SpcError

USER_MODULE_PREFIX = "spc_user_model_"
"""A model file is imported under this prefix and a hash of its path (it is no package's module);
errors name its classes by the file's name instead."""


def load_model(spec: str, weights: str | None = None) -> nn.Module:
    path_text, sep, factory_name = spec.rpartition(":")
    if not sep or not path_text or not factory_name:
        raise SpcError(f"model '{spec}'", "is not of the form path/to/file.py:factory", "name the Python file and the function that returns the model, e.g. examples/digits.py:build_model")
    path = Path(path_text)
    if path.is_dir():
        raise SpcError(f"model file {path}", "is a directory", "name the Python file that defines the factory, e.g. examples/digits.py:build_model")
    if not path.is_file():
        raise SpcError(f"model file {path}", "does not exist", "check the path")
    module_name = f"{USER_MODULE_PREFIX}{abs(hash(str(path.resolve())))}"
    spec_obj = importlib.util.spec_from_file_location(module_name, path)
    if spec_obj is None or spec_obj.loader is None:
        raise SpcError(f"model file {path}", "is not a Python file", "give a .py file")
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[module_name] = module
    try:
        spec_obj.loader.exec_module(module)
    except SystemExit as e:
        raise SpcError(f"model file {path}", f"called sys.exit({e.code!r}) while being imported", "put the script part of the file under `if __name__ == \"__main__\":`") from None
    except ImportError as e:
        raise SpcError(f"model file {path}", f"failed to import what it needs ({type(e).__name__}: {e})", "install the missing package into the environment spc runs in") from None
    except Exception as e:
        raise SpcError(f"model file {path}", f"raised {type(e).__name__} while being imported: {e}", "fix the model file (--debug shows the traceback)") from e
    factory = getattr(module, factory_name, None)
    if factory is None:
        available = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_") and getattr(v, "__module__", "") == module_name)
        raise SpcError(f"model factory '{factory_name}' in {path}", "does not exist", f"name one of: {', '.join(available) or '(no functions defined there)'}")
    subject = f"model factory '{factory_name}' in {path}"
    if not callable(factory):
        raise SpcError(subject, f"is a {type(factory).__name__}, not a function", "name a function that returns the model")
    required = _required_parameters(factory)
    if required:
        raise SpcError(subject, f"needs arguments ({', '.join(required)}); spc calls it without any", "give those parameters default values, or add a function without parameters that calls it")
    try:
        model = factory()
    except SystemExit as e:
        raise SpcError(subject, f"called sys.exit({e.code!r}) instead of returning a model", "return the model from the factory") from None
    except ImportError as e:
        raise SpcError(subject, f"failed to import what it needs ({type(e).__name__}: {e})", "install the missing package into the environment spc runs in") from None
    except Exception as e:
        raise SpcError(subject, f"raised {type(e).__name__}: {e}", "fix the factory (--debug shows the traceback)") from e
    if not isinstance(model, nn.Module):
        raise SpcError(f"model factory '{factory_name}' in {path}", f"returned a {type(model).__name__}, not a torch.nn.Module", "return the model from the factory")
    if weights is not None:
        load_weights(model, weights)
    return model


def _required_parameters(factory) -> list[str]:
    """The parameters a call without arguments would leave unbound."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a signature: just call it
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        raise SpcError(f"checkpoint {path}", "is a directory, not a checkpoint file", "give the file saved with torch.save(model.state_dict(), path)")
    if not path.is_file():
        raise SpcError(f"checkpoint {path}", "does not exist", "check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        payload = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line), None)
        if payload is None:
            raise SpcError(f"checkpoint {path}", "cannot be read (not a file written by torch.save, or corrupt)", "save the weights with torch.save(model.state_dict(), path)") from None
        raise SpcError(f"checkpoint {path}", f"was refused: it holds Python objects other than tensors, which spc never unpickles ({payload})", "save only the weights: torch.save(model.state_dict(), path)") from None
    except Exception as e:  # torch.load raises many types on damaged files (weights_only: never code)
        raise SpcError(f"checkpoint {path}", f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'truncated or corrupt'})", "save the weights with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and len(state) == 1 and isinstance(next(iter(state.values())), dict):
        state = next(iter(state.values()))  # {"state_dict": {...}} and similar wrappers
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = [k for k, v in state.items() if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())]
        if inner:
            keys = ", ".join(map(str, list(state)[:6]))
            raise SpcError(f"checkpoint {path}", f"is a training checkpoint ({keys}), not a state_dict; the model's weights are under {' or '.join(repr(k) for k in inner)}", f"use its state_dict: torch.save(torch.load('{path}')[{inner[0]!r}], 'weights.pt'), then pass --weights weights.pt")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpcError(f"checkpoint {path}", "is not a state_dict (a mapping of names to tensors)", "save the weights with torch.save(model.state_dict(), path)")
    return state


def load_weights(model: nn.Module, path: str | Path) -> None:
    state = load_checkpoint(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        details = "; ".join(line.strip() for line in str(e).splitlines()[1:4])
        raise SpcError(f"checkpoint {path}", f"does not match the model ({details})", "load the checkpoint saved from this model's architecture") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {', '.join(result.missing_keys[:5])}{' ...' if len(result.missing_keys) > 5 else ''}")
    if result.unexpected_keys:
        problems.append(f"unexpected {', '.join(result.unexpected_keys[:5])}{' ...' if len(result.unexpected_keys) > 5 else ''}")
    if problems:
        raise SpcError(f"checkpoint {path}", f"does not match the model ({'; '.join(problems)})", "load the checkpoint saved from this model's architecture")
