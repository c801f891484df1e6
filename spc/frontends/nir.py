"""The NIR frontend: a NIR graph (nir 1.0.8; written by spc, snnTorch, SpikingJelly, Norse, ...) as
spc's parallel-form graph, ready for `check_causality`, `fold_batchnorm` and `lower`.

The inverse of `spc.compiler.emit.nir`, under the same forward-Euler convention (its docstring):
with the step `dt` (`--dt`, else the node's or the graph's metadata "dt", else 1e-4 s; every refusal
that depends on it says which it was), per channel

    LI, LIF      a = 1 − dt/τ,  g = R·dt/τ            I, IF   a = 1, g = R·dt
    CubaLI(F)    α = 1 − dt/τ_syn, g₁ = w_in·dt/τ_syn;  β = 1 − dt/τ_mem, g₂ = R·dt/τ_mem

A leak toward v_leak ≠ v_reset would be a constant drive, which spc's neurons do not have: refused.
Membranes are measured from v_reset (the state starts there). NIR fires on `v > v_threshold`; spc's
LIF fires on `h ≥ θ`, so its θ is `nextafter(v_threshold − v_reset, +∞)`: the same doubles fire.

NIR node → spc operation (node names are kept; helpers are `NAME:role`):
- Affine/Linear → Linear, Conv1d/Conv2d → Conv, AvgPool2d → AvgPool2d, SumPool2d → SumPool2d,
  Scale → BatchNorm (per-channel scale), Flatten → Reshape
  (dimensions counted without the batch, as NIR's own shape inference and both exporters count
  them); a node with several inputs sums them (Add).
- LIF, IF → `LIFOp` (reset to zero); LI, I → `LIOp`; CubaLIF → `LIOp` (`NAME:current`) → `LIFOp`;
  CubaLI → `LIOp` → `LIOp`.
- Threshold (z = v > θ, no reset): after an LI or CubaLI that feeds only it, one `SPSNOp` where
  SPSN's cascade computes that membrane (gains 1 and 1 − β, equal to 1e-12, the rounding of
  τ ↔ decay; an LI is a cascade with one stage of decay 0), which is how spc writes SPSN; after
  `Delay → Scale` branches from one source (spc's FIR form), a `SlidingPSNOp`; otherwise the
  membrane's own operations, then `SPSNOp(α = β = 0)`, whose membrane is its input: a plain strict
  threshold.
- Subgraphs with one Input and one Output are inlined (their nodes named `sub.node`); cycles
  (recurrent connections) and everything else spc cannot compute are refused, naming the node.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import nir
import numpy as np

from spc.compiler import ir
from spc.compiler.emit.nir import DT
from spc.errors import SpcError
from spc.frontends.torch.neurons.lif import LIFOp, LIOp
from spc.frontends.torch.neurons.psn import SlidingPSNOp
from spc.frontends.torch.neurons.spsn import SPSNOp

FIT = 1e-12
"""Relative tolerance for recognising spc's own cascades after the τ ↔ decay round trip."""

READ_ERRORS = (Exception,)
"""What h5py and nir raise on a damaged file: many types (RuntimeError, OSError, KeyError, ...); they
only read data (HDF5 holds no code), so every one of them means a bad file."""


DEFAULT_DT = f"spc's default {DT:g} s: the file names no dt (SpikingJelly's and snnTorch's exporters assume {DT:g} s)"
"""Where the step comes from when neither --dt nor the file gives one."""


def from_nir(path: str | Path, dt: float | None = None) -> ir.Graph:
    """Read a `.nir` file into a parallel-form spc graph; refuse what spc cannot compute."""
    return read_nir(path, dt)[0]


def read_nir(path: str | Path, dt: float | None = None) -> tuple[ir.Graph, dict]:
    """The graph of a `.nir` file and the time step it was read with: {"dt": seconds, "dt_from":
    where that came from, "node_dt": {node: seconds} for nodes whose metadata names their own}.
    The step is `dt` (the user's --dt) when given, for every node; else a node's metadata "dt",
    else the graph's, else spc's default DT."""
    path = Path(path)
    if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise SpcError(f"--dt {dt}", "is not a positive number of seconds", "give the time step the NIR file was written with, e.g. --dt 1e-4")
    graph = _read(path)
    nodes, edges = _inline(graph.nodes, graph.edges)
    if dt is not None:
        step = (float(dt), "--dt")
    elif "dt" in graph.metadata:
        step = (_metadata_dt(f"NIR file {path}", graph.metadata["dt"]), "the graph's metadata")
    else:
        step = (DT, DEFAULT_DT)
    importer = _Importer(nodes, edges, step, override=dt is not None)
    result = importer.run()
    return result, {"dt": step[0], "dt_from": step[1], "node_dt": importer.node_steps}


def _metadata_dt(subject: str, value) -> float:
    """A "dt" entry of NIR metadata as seconds, or an SpcError naming where it is."""
    try:
        seconds = float(np.asarray(value).reshape(-1)[0]) if np.size(value) == 1 else float("nan")
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (math.isfinite(seconds) and seconds > 0):
        raise SpcError(subject, f"has metadata dt = {value!r}, which is not a positive number of seconds", "fix the metadata, or give the time step with --dt")
    return seconds


def _read(path: Path) -> nir.NIRGraph:
    """The NIR graph in a file, or an SpcError saying what the file is instead."""
    subject = f"NIR file {path}"
    if not path.exists():
        raise SpcError(subject, "does not exist", "give the path of a .nir file (written by nir.write or `spc compile --target nir`)")
    if not path.is_file():
        raise SpcError(subject, "is not a file", "give the path of a .nir file")
    if not h5py.is_hdf5(path):
        raise SpcError(subject, "is not an HDF5 file, so not a NIR graph", "give a file written by nir.write")
    try:
        with h5py.File(path, "r") as f:
            kind = f.get("node/type")
            kind = kind[()] if isinstance(kind, h5py.Dataset) else None
            kind = kind.decode() if isinstance(kind, bytes) else kind
    except READ_ERRORS as e:
        raise SpcError(subject, f"is a damaged HDF5 file ({type(e).__name__}: {e})", "write it again with nir.write") from None
    if kind is None:
        raise SpcError(subject, "is an HDF5 file without a NIR node in it (no node/type)", "give a file written by nir.write")
    if kind != "NIRGraph":
        raise SpcError(subject, f"holds a single {kind} node, not a graph", "wrap it in a nir.NIRGraph with Input and Output nodes")
    try:
        return nir.read(path, type_check=False)
    except READ_ERRORS as e:
        raise SpcError(subject, f"holds a malformed NIR graph ({type(e).__name__}: {e})", "write it with nir.write (nir 1.0.8)") from None


def refusal(name: str, node, problem: str, fix: str) -> SpcError:
    return SpcError(f"NIR node '{name}' ({type(node).__name__})", problem, fix)


# --- graph structure ---------------------------------------------------------------------------
def _inline(nodes: dict, edges) -> tuple[dict, list[tuple[str, str]]]:
    """Nodes and edges with every subgraph's nodes spliced in (recursively)."""
    flat, flat_edges, bypass = {}, [(str(a), str(b)) for a, b in edges], []
    for name, node in nodes.items():
        if not isinstance(node, nir.NIRGraph):
            flat[name] = node
            continue
        inner, inner_edges = _inline(node.nodes, node.edges)
        ends = [[k for k, n in inner.items() if isinstance(n, kind)] for kind in (nir.Input, nir.Output)]
        if any(len(e) != 1 for e in ends):
            raise refusal(name, node, f"is a subgraph with {len(ends[0])} inputs and {len(ends[1])} outputs", "give it exactly one Input and one Output node, or flatten it into the main graph")
        (entry,), (exit_,) = ([f"{name}.{k}" for k in e] for e in ends)
        for key, n in inner.items():
            if f"{name}.{key}" in nodes or f"{name}.{key}" in flat:
                raise refusal(name, node, f"has a node '{key}' whose inlined name '{name}.{key}' is taken", "rename one of them")
            flat[f"{name}.{key}"] = n
        flat_edges = [(exit_ if a == name else a, entry if b == name else b) for a, b in flat_edges]
        flat_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in inner_edges]
        bypass += [entry, exit_]
    for name in bypass:  # a subgraph's Input and Output pass their value through
        preds = [a for a, b in flat_edges if b == name]
        succs = [b for a, b in flat_edges if a == name]
        flat_edges = [e for e in flat_edges if name not in e] + [(a, b) for a in preds for b in succs]
        del flat[name]
    return flat, flat_edges


def _topological(nodes: dict, preds: dict[str, list[str]]) -> list[str]:
    order, done = [], set()
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if all(p in done for p in preds[n])]
        if not ready:
            raise SpcError("NIR graph", f"has a recurrent connection (a cycle among {', '.join(sorted(pending))})", "spc compiles feed-forward networks; remove the recurrent edge")
        order += ready
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order


def _pair(value, dims: int) -> tuple[int, ...]:
    values = np.atleast_1d(np.asarray(value)).astype(np.int64)
    return tuple(int(v) for v in np.broadcast_to(values, (dims,)))


def _same_shape(declared: tuple[int, ...], got: tuple[int, ...]) -> bool:
    """An Output's declared shape matches, also with leading singleton dimensions (Rockpool writes
    its Output with batch and time dimensions of 1)."""
    extra = len(declared) - len(got)
    return declared[max(extra, 0):] == got and extra >= 0 and all(d == 1 for d in declared[:extra])


def _scalar(values: np.ndarray) -> float | None:
    return float(values[0]) if np.all(values == values[0]) else None


class _Importer:
    def __init__(self, nodes: dict, edges: list[tuple[str, str]], step: tuple[float, str], override: bool):
        self.nir, self.step, self.override = nodes, step, override
        self.node_steps: dict[str, float] = {}  # nodes whose own metadata gives another dt
        if len(set(edges)) != len(edges):
            raise SpcError("NIR graph", "lists an edge twice", "list each edge once (NIR sums distinct edges)")
        for a, b in edges:
            for end in (a, b):
                if end not in nodes:
                    raise SpcError("NIR graph", f"has an edge ({a!r} → {b!r}) to a node '{end}' that does not exist", "fix the edge list")
        self.preds = {n: [a for a, b in edges if b == n] for n in nodes}
        self.succs = {n: [b for a, b in edges if a == n] for n in nodes}
        self.nodes: list[ir.Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.value: dict[str, str] = {}  # NIR node -> the spc node holding its output
        self.summed: dict[str, str] = {}  # NIR node -> the spc node holding the sum of its inputs

    def run(self) -> ir.Graph:
        inputs = [n for n, node in self.nir.items() if isinstance(node, nir.Input)]
        outputs = [n for n, node in self.nir.items() if isinstance(node, nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise SpcError("NIR graph", f"has {len(inputs)} Input and {len(outputs)} Output nodes", "spc compiles graphs with exactly one of each")
        plans = {n: self._plan(n) for n, node in self.nir.items() if isinstance(node, nir.Threshold)}
        absorbed = {m for plan in plans.values() for m in plan[1]}
        for name in _topological(self.nir, self.preds):
            node = self.nir[name]
            if name in absorbed or isinstance(node, nir.Output):
                continue
            if isinstance(node, nir.Threshold):
                self._threshold(name, node, *plans[name])
                continue
            self._check_declared_input(name, node)
            handler = getattr(self, f"_{type(node).__name__}", None)
            if handler is None:
                raise refusal(name, node, "has no spc equivalent", "remove it, or replace it by the operations spc reads (see spc.frontends.nir)")
            handler(name, node)
        out = self._input(outputs[0])
        declared = self.nir[outputs[0]].output_type.get("output")
        if declared is not None and not _same_shape(tuple(int(d) for d in np.atleast_1d(declared)), self.shapes[out]):
            raise refusal(outputs[0], self.nir[outputs[0]], f"declares shape {tuple(int(d) for d in declared)} but receives {self.shapes[out]}", "fix the Output node's shape")
        return ir.Graph(tuple(self.nodes), (out,))

    # --- bookkeeping ---------------------------------------------------------------------
    def _emit(self, name: str, op: ir.Op, inputs: tuple[str, ...], nir_name: str | None = None) -> str:
        if name in self.shapes:
            raise SpcError(f"NIR node '{name}'", "clashes with a node spc adds (names NAME:role)", "rename the node")
        self.shapes[name] = op.output_shape(name, [self.shapes[i] for i in inputs])
        self.nodes.append(ir.Node(name, op, inputs))
        if nir_name is not None:
            self.value[nir_name] = name
        return name

    def _input(self, name: str) -> str:
        """The spc node holding the sum of a NIR node's inputs (NIR sums fan-in)."""
        if name not in self.summed:
            sources = [self.value[p] for p in self.preds[name]]
            if not sources:
                raise refusal(name, self.nir[name], "has no input edge", "connect it, or remove it")
            total = sources[0]
            for i, other in enumerate(sources[1:]):
                total = self._emit(f"{name}:sum{i}", ir.Add(), (total, other))
            self.summed[name] = total
        return self.summed[name]

    def _check_declared_input(self, name: str, node) -> None:
        """A node's declared input type (where NIR has one) must match what reaches it."""
        declared = (node.input_type or {}).get("input")
        if declared is None or isinstance(node, nir.Input) or np.size(declared) == 0 or math.prod(np.atleast_1d(declared)) == 1:
            return
        got = self.shapes[self._input(name)] if self.preds[name] else None
        want = tuple(int(d) for d in np.atleast_1d(declared))
        if got is not None and want != got:
            batch = got == (1,) + want  # Norse's to_nir writes the example's batch into the Input shape
            raise refusal(name, node, f"expects input of shape {want} but receives {got}", "give the Input node the per-step shape, without the batch dimension" if batch else "fix the graph's shapes")

    def _channels(self, name: str, node, what: str, values, shape: tuple[int, ...]) -> np.ndarray:
        """A per-neuron NIR parameter as spc's per-channel vector ([C], or [1] when uniform)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size != 1 and values.shape != shape:
            raise refusal(name, node, f"has {what} of shape {values.shape} for an input of shape {shape}", "give one value per neuron")
        per = values.reshape(shape[0] if values.size != 1 else 1, -1)
        if not np.all(per == per[:, :1]):
            raise refusal(name, node, f"has {what} varying within a channel; spc's neuron parameters are per channel", "use one value per channel")
        channel = per[:, 0]
        return channel[:1] if np.all(channel == channel[0]) else channel

    def _dt(self, name: str, node) -> tuple[float, str]:
        """(seconds, where they come from): --dt, else the node's metadata "dt", else the graph's."""
        if self.override or "dt" not in (node.metadata or {}):
            return self.step
        seconds = _metadata_dt(f"NIR node '{name}' ({type(node).__name__})", node.metadata["dt"])
        if seconds != self.step[0]:
            self.node_steps[name] = seconds
        return seconds, f"node '{name}' metadata"

    # --- synapses ---------------------------------------------------------------------------
    def _Input(self, name, node):
        shape = node.input_type.get("input")
        if shape is None or np.size(shape) == 0:
            raise refusal(name, node, "has no shape", "give the Input node the per-step feature shape")
        self._emit(name, ir.Input(tuple(int(d) for d in np.atleast_1d(shape))), (), name)

    def _linear(self, name, node, bias):
        if node.weight.ndim != 2:
            raise refusal(name, node, f"has a weight of shape {node.weight.shape}; spc reads 2-d weights [out, in]", "use a 2-d weight")
        self._emit(name, ir.Linear(weight=np.asarray(node.weight), bias=bias), (self._input(name),), name)

    def _Affine(self, name, node):
        self._linear(name, node, np.asarray(node.bias))

    def _Linear(self, name, node):
        self._linear(name, node, None)

    def _conv(self, name, node):
        source = self._input(name)
        dims = node.weight.ndim - 2
        stride, dilation = _pair(node.stride, dims), _pair(node.dilation, dims)
        padding = node.padding
        if isinstance(padding, str) and padding == "valid":
            padding = (0,) * dims
        elif isinstance(padding, str):  # 'same': symmetric zero padding keeps the size at stride 1
            total = [d * (k - 1) for d, k in zip(dilation, node.weight.shape[2:])]
            if any(t % 2 for t in total) or any(s != 1 for s in stride):
                raise refusal(name, node, "pads 'same' asymmetrically or with a stride, which spc's zero padding cannot express", "give explicit padding")
            padding = tuple(t // 2 for t in total)
        op = ir.Conv(weight=np.asarray(node.weight), bias=np.asarray(node.bias), stride=stride, padding=_pair(padding, dims), dilation=dilation, groups=int(node.groups))
        self._emit(name, op, (source,), name)

    _Conv1d = _Conv2d = _conv

    def _average(self, name, node, spc_name: str) -> str:
        kernel, stride, padding = (_pair(v, 2) for v in (node.kernel_size, node.stride, node.padding))
        return self._emit(spc_name, ir.AvgPool2d(kernel, stride, padding), (self._input(name),), name)

    def _AvgPool2d(self, name, node):
        self._average(name, node, name)

    def _SumPool2d(self, name, node):
        kernel, stride, padding = (_pair(v, 2) for v in (node.kernel_size, node.stride, node.padding))
        self._emit(name, ir.SumPool2d(kernel, stride, padding), (self._input(name),), name)

    def _Scale(self, name, node):
        source = self._input(name)
        shape = self.shapes[source]
        scale = np.broadcast_to(self._channels(name, node, "scale", node.scale, shape), (shape[0],))
        self._emit(name, ir.BatchNorm(scale=scale.copy(), shift=np.zeros(shape[0])), (source,), name)

    def _Flatten(self, name, node):
        source = self._input(name)
        shape = self.shapes[source]
        start, end = (int(d) + len(shape) if int(d) < 0 else int(d) for d in (node.start_dim, node.end_dim))
        if not 0 <= start <= end < len(shape):
            raise refusal(name, node, f"flattens dimensions {node.start_dim}..{node.end_dim} of a per-step shape {shape} (dimensions counted without the batch)", "count dimensions without the batch dimension")
        out = shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
        self._emit(name, ir.Reshape(out), (source,), name)

    def _Delay(self, name, node):
        raise refusal(name, node, "delays a signal outside spc's FIR form (Delay → Scale branches summed at a Threshold)", "express the delay line as Delay → Scale branches into one Threshold, or remove it")

    # --- neurons ----------------------------------------------------------------------------
    def _leak(self, name, node, shape, tau, r, v_leak, v_reset=0.0, what=("tau", "r")):
        """(decay, gain) of LI/LIF: a = 1 − dt/τ, g = R·dt/τ, refusing a leak toward v_leak ≠ v_reset
        and a τ shorter than the step (NIR's per-neuron arrays, before they become per-channel).
        `what` names the parameters in errors (CubaLIF: tau_syn and w_in, tau_mem and r)."""
        tau, r = (self._channels(name, node, label, v, shape) for label, v in zip(what, (tau, r)))
        leak = self._channels(name, node, "v_leak − v_reset", np.asarray(v_leak) - np.asarray(v_reset), shape)
        if np.any(leak != 0):
            raise refusal(name, node, "leaks toward v_leak ≠ v_reset, a constant drive spc's neurons do not have", "set v_leak = v_reset (e.g. both 0) and put the drive into the bias of the layer before it")
        dt, origin = self._dt(name, node)
        short = np.isnan(tau) | (tau < dt)
        if np.any(short):
            bad = float(tau[short][0])
            raise refusal(name, node, f"has {what[0]} = {bad:g} s, shorter than the time step dt = {dt:g} s ({origin}), so its decay per step 1 − dt/{what[0]} = {1 - dt / bad:.4g} is negative", "give the time step the exporter assumed with --dt (Python: spc.compile(path, dt=...)); the README's 'Bringing your model' lists each framework's")
        return 1.0 - dt / tau, r * dt / tau

    def _lif_op(self, name, node, shape, decay, gain) -> LIFOp:
        """The membrane measured from v_reset fires h ≥ nextafter(v_threshold − v_reset, +∞)."""
        theta = self._channels(name, node, "v_threshold − v_reset", np.asarray(node.v_threshold) - np.asarray(node.v_reset), shape)
        return LIFOp(decay=decay, gain=gain, threshold=np.nextafter(theta, np.inf), reset="zero")

    def _LIF(self, name, node):
        source = self._input(name)
        shape = self.shapes[source]
        decay, gain = self._leak(name, node, shape, node.tau, node.r, node.v_leak, node.v_reset)
        self._emit(name, self._lif_op(name, node, shape, decay, gain), (source,), name)

    def _IF(self, name, node):
        source = self._input(name)
        shape = self.shapes[source]
        gain = self._channels(name, node, "r", node.r, shape) * self._dt(name, node)[0]
        self._emit(name, self._lif_op(name, node, shape, np.ones(1), gain), (source,), name)

    def _LI(self, name, node):
        source = self._input(name)
        decay, gain = self._leak(name, node, self.shapes[source], node.tau, node.r, node.v_leak)
        self._emit(name, LIOp(decay=decay, gain=gain), (source,), name)

    def _I(self, name, node):
        source = self._input(name)
        gain = self._channels(name, node, "r", node.r, self.shapes[source]) * self._dt(name, node)[0]
        self._emit(name, LIOp(decay=np.ones(1), gain=gain), (source,), name)

    def _cuba(self, name, node, shape):
        """(α, g₁), (β, g₂) of a current-based cascade."""
        current = self._leak(name, node, shape, node.tau_syn, node.w_in, 0.0, what=("tau_syn", "w_in"))
        membrane = self._leak(name, node, shape, node.tau_mem, node.r, node.v_leak, getattr(node, "v_reset", 0.0), what=("tau_mem", "r"))
        return current, membrane

    def _CubaLIF(self, name, node):
        source = self._input(name)
        shape = self.shapes[source]
        (alpha, g1), (beta, g2) = self._cuba(name, node, shape)
        current = self._emit(f"{name}:current", LIOp(decay=alpha, gain=g1), (source,))
        self._emit(name, self._lif_op(name, node, shape, beta, g2), (current,), name)

    def _CubaLI(self, name, node):
        source = self._input(name)
        (alpha, g1), (beta, g2) = self._cuba(name, node, self.shapes[source])
        current = self._emit(f"{name}:current", LIOp(decay=alpha, gain=g1), (source,))
        self._emit(name, LIOp(decay=beta, gain=g2), (current,), name)

    # --- thresholds ---------------------------------------------------------------------------
    def _feeds_only(self, name: str, consumer: str) -> bool:
        return self.succs[name] == [consumer] and len(self.preds[name]) == 1

    def _plan(self, name: str) -> tuple[str, list[str]]:
        """How a Threshold is read: ('membrane', [its LI or CubaLI]), ('fir', [its Delay → Scale
        branches]) or ('plain', []); the nodes listed are absorbed into it."""
        preds = self.preds[name]
        if len(preds) == 1 and isinstance(self.nir[preds[0]], (nir.LI, nir.CubaLI)) and self.succs[preds[0]] == [name]:
            return "membrane", preds
        branches, sources = [], set()
        for scale in preds:
            if not (isinstance(self.nir[scale], nir.Scale) and self._feeds_only(scale, name)):
                return "plain", []
            feed = self.preds[scale][0]
            if isinstance(self.nir[feed], nir.Delay):
                if not self._feeds_only(feed, scale):
                    return "plain", []
                branches.append(feed)
                feed = self.preds[feed][0]
            branches.append(scale)
            sources.add(feed)
        return ("fir", branches) if len(sources) == 1 else ("plain", [])

    def _threshold(self, name, node, plan: str, absorbed: list[str]) -> None:
        if plan == "fir":
            self._fir(name, node)
            return
        if plan == "membrane":
            membrane = absorbed[0]
            op = self._spsn(name, node, membrane, self.nir[membrane])
            if op is not None:
                self._emit(name, op, (self._input(membrane),), name)
                return
            getattr(self, f"_{type(self.nir[membrane]).__name__}")(membrane, self.nir[membrane])
        source = self._input(name)
        theta = _scalar(self._channels(name, node, "threshold", node.threshold, self.shapes[source]))
        if theta is None:
            raise refusal(name, node, "has one threshold per channel; spc's reset-free threshold has one per layer", "use one threshold for the layer")
        self._emit(name, SPSNOp(alpha=0.0, beta=0.0, threshold=theta), (source,), name)

    def _spsn(self, name, node, membrane_name, membrane) -> SPSNOp | None:
        """The SPSN that computes this membrane and threshold (gains equal to FIT), if one does."""
        shape = self.shapes[self._input(membrane_name)]
        theta = _scalar(self._channels(name, node, "threshold", node.threshold, shape))
        one = np.ones(1)
        if isinstance(membrane, nir.CubaLI):
            (alpha, g1), (beta, g2) = self._cuba(membrane_name, membrane, shape)
            candidates = [(alpha, g1, beta, g2)]
        else:  # syn = a·syn + x, mem = syn (g = 1); or syn = x, mem = a·mem + (1 − a)·syn (g = 1 − a)
            decay, gain = self._leak(membrane_name, membrane, shape, membrane.tau, membrane.r, membrane.v_leak)
            candidates = [(decay, gain, 0.0 * one, one), (0.0 * one, one, decay, gain)]
        for stages in candidates:
            alpha, g1, beta, g2 = (_scalar(np.atleast_1d(v)) for v in stages)
            if theta is None or None in (alpha, g1, beta, g2) or not (0.0 <= alpha < 1.0 and 0.0 <= beta < 1.0):
                continue
            if math.isclose(g1, 1.0, rel_tol=FIT) and math.isclose(g2, 1.0 - beta, rel_tol=FIT):
                return SPSNOp(alpha=alpha, beta=beta, threshold=theta)
        return None

    def _fir(self, name, node) -> None:
        """Delay → Scale branches from one source summed at this Threshold: a SlidingPSN (one
        weight per tap for the whole layer); h ≥ 0 with bias −nextafter(θ, +∞) is Σ > θ."""
        taps: dict[int, float] = {}
        for scale in self.preds[name]:
            feed, lag = self.preds[scale][0], 0
            if isinstance(self.nir[feed], nir.Delay):
                delay, dt = self.nir[feed], self._dt(feed, self.nir[feed])[0]
                feed = self.preds[feed][0]
                seconds = _scalar(self._channels(self.preds[scale][0], delay, "delay", delay.delay, self.shapes[self.value[feed]]))
                lag = -1 if seconds is None else round(seconds / dt)
                if lag < 0 or not math.isclose(lag * dt, seconds, rel_tol=1e-9, abs_tol=1e-9 * dt):
                    raise refusal(self.preds[scale][0], delay, "delays by other than one whole number of steps for all neurons", "use one delay, a multiple of dt, per Delay node")
            source = self.value[feed]
            tap = _scalar(self._channels(scale, self.nir[scale], "scale", self.nir[scale].scale, self.shapes[source]))
            if tap is None or lag in taps:
                raise refusal(scale, self.nir[scale], "is a FIR tap spc cannot read: its weight differs between neurons, or another tap has the same delay", "share one weight per tap across the layer")
            taps[lag] = tap
        theta = _scalar(self._channels(name, node, "threshold", node.threshold, self.shapes[source]))
        if theta is None:
            raise refusal(name, node, "has one threshold per channel after a FIR kernel; spc's SlidingPSN has one bias", "use one threshold for the layer")
        weight = np.zeros(max(taps) + 1)
        for lag, tap in taps.items():
            weight[-1 - lag] = tap
        self._emit(name, SlidingPSNOp(weight=weight, bias=-float(np.nextafter(theta, np.inf))), (source,), name)
