"""spc's NIR files in other tools' own NIR readers: SynSense's hardware toolchains (Rockpool for
Xylo, Sinabs for Speck / DynapCNN) and the simulators snnTorch, SpikingJelly and Norse.

`run_reader(name, path, x)` loads `path` with that tool's importer and runs it on x [T, B, ...]
(time-major, as spc), returning its output [T, B, ...] as float64. Each tool is driven the way it
runs its own networks: snnTorch, SpikingJelly and Norse step by step with explicit state (dt =
spc.compiler.emit.nir.DT where they take one), Rockpool on the whole sequence batch-first, Sinabs on
batch and time folded into one dimension. A reader that cannot load the file raises `ReaderError`
with its own message; one that loads it but leaves nodes out (Sinabs returns nothing for node types
it does not know, and nirtorch then skips them) is refused too, naming the nodes, since it would run
a different network.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import nir
import numpy as np
import torch

READERS = ("rockpool", "sinabs", "snntorch", "spikingjelly", "norse")


class ReaderError(Exception):
    """A reader refused the file (or would run a different network)."""


def _stepwise(step, x: np.ndarray, dtype) -> np.ndarray:
    """Run a stepwise module over x [T, B, ...], threading its state."""
    state, out = None, []
    for xt in torch.from_numpy(x).to(dtype):
        o, state = step(xt, state)
        out.append(o.double().numpy())
    return np.stack(out)


def _complete(module: torch.nn.Module, graph: nir.NIRGraph) -> torch.nn.Module:
    """The nirtorch module, refused when it left out nodes of the graph."""
    from nirtorch.utils import sanitize_name

    loaded = {name for name, _ in module.named_children()}
    missing = [f"{name} ({type(node).__name__})" for name, node in graph.nodes.items() if sanitize_name(name) not in loaded and not isinstance(node, (nir.Input, nir.Output))]
    if missing:
        raise ReaderError(f"leaves out {', '.join(missing)}")
    return module


def _snntorch(path, x):
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(nir.read(path))
    return _stepwise(lambda xt, state: module(xt.float(), state), x, torch.float32)  # its spikes are float32 whatever the weights


def _spikingjelly(path, x):
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    from spc.compiler.emit.nir import DT

    return _stepwise(import_from_nir(path, dt=DT, dtype=torch.float64), x, torch.float64)


def _norse(path, x):
    import norse.torch as norse

    from spc.compiler.emit.nir import DT

    return _stepwise(norse.from_nir(nir.read(path), dt=DT).double(), x, torch.float64)


def _rockpool(path, x):
    from rockpool.nn.modules.torch.nir import from_nir

    graph = nir.read(path)
    module = _complete(from_nir(graph), graph)
    out = module(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1))).float())[0]  # [B, T, ...]
    return np.moveaxis(out.detach().double().numpy(), 1, 0)


def _sinabs(path, x):
    import sinabs

    graph = nir.read(path)
    steps, batch = x.shape[:2]
    module = _complete(sinabs.from_nir(graph, batch_size=batch), graph)
    folded = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1))).float().reshape((batch * steps,) + x.shape[2:])  # [B·T, ...], batch-major
    out = module(folded)
    out = out[0] if isinstance(out, tuple) else out
    return np.moveaxis(out.detach().double().numpy().reshape((batch, steps) + tuple(out.shape[1:])), 1, 0)


RUN = {"rockpool": _rockpool, "sinabs": _sinabs, "snntorch": _snntorch, "spikingjelly": _spikingjelly, "norse": _norse}


@contextlib.contextmanager
def _quiet():
    """Readers print, warn and log as they load (Norse on every non-unit r); keep it off the terminal."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def run_reader(name: str, path, x: np.ndarray) -> np.ndarray:
    """Load the NIR file `path` with the named reader and run it on x [T, B, ...]."""
    with _quiet(), torch.no_grad():
        try:
            return RUN[name](str(path), np.asarray(x, dtype=np.float32))
        except ReaderError:
            raise
        except Exception as e:  # the reader's own refusal (or crash), kept as it said it
            raise ReaderError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")) from e
