"""The NIR emitter: a compiled model as `model.nir` (nir 1.0.8), the float stepwise graph in NIR's
continuous-time primitives.

NIR's neurons are differential equations; spc's are steps. The bridge is the convention the
snnTorch, SpikingJelly and Norse importers share: one forward-Euler step of length `dt` (1e-4 s,
recorded as "dt" in the graph's and every node's metadata), a cascade updated in order (the
membrane integrates this step's current). Per channel, a `Leaky` cell `v ← a·v + g·x` is

    LI, LIF      τ dv/dt = v_leak − v + R·I      τ = dt/(1 − a),   R = g/(1 − a),   v_leak = 0
    I, IF        dv/dt = R·I              (a = 1)                   R = g/dt
    CubaLI(F)    τ_syn dI/dt = −I + w_in·S       τ_syn = dt/(1 − α), w_in = g₁/(1 − α)
                 τ_mem dv/dt = v_leak − v + R·I  τ_mem = dt/(1 − β), R = g₂/(1 − β)

so that one Euler step, v + dt/τ·(v_leak − v + R·I) = (1 − dt/τ)·v + (dt/τ)·R·I, is exactly
`a·v + g·x`: a decay a is τ = dt/(1 − a) (a bit-shift decay 1 − 2^−n is exactly τ = 2^n·dt), and
R absorbs the gain, so weights are written as they are (Norse ignores R on LIF, so it needs
g = 1 − a, R = 1: a LIF with `decay_input=True`). The decays are the integer form's *realised* ones
when the model has one (`quantization.json`'s realised τ, what the hardware computes), else the
float ones; gains, thresholds and weights are the float graph's.

Firing: NIR fires on `v > v_threshold`; spc's `h ≥ θ` is written as the largest double below θ,
`nextafter(θ, −∞)`, which fires on exactly the same doubles (a strict spc rule keeps θ).
`v_reset = 0`: spc measures the membrane from the reset potential.

spc node → NIR nodes (the last one keeps the spc node's name; helpers are `NAME:role`):
- Linear → Affine (Linear without bias); Conv → Conv1d/Conv2d; AvgPool2d/SumPool2d → the same;
  Reshape → Flatten (of consecutive dimensions, counted without the batch); an unfolded BatchNorm
  or a ScaleShift → a diagonal Affine or 1×1 convolution; Add → fan-in edges (NIR sums a node's
  inputs). Mul (a product of two tensors) is refused.
- Leaky + reset to zero → LIF (IF when a = 1); two Leaky + reset to zero → CubaLIF, and so is a
  non-spiking leaky layer that feeds only such a LIF (an `LI` then `LIF` of spc's torch API);
  non-spiking Leaky → LI (I when a = 1), two → CubaLI. A cascade is one Cuba node rather than two
  LI nodes because CubaLIF is what all three readers load (none loads LI); a stage that does not
  leak (a = 1, no finite τ_syn or w_in) makes the cascade a chain of single-stage nodes instead.
- Reset-free firing: the membrane node (`NAME:membrane`), then `Threshold`. A FIR cell
  `y = Σ_i w_i·x[t − lag_i] + b` is one branch per tap, `Delay(lag_i·dt) → Scale(w_i)`
  (`NAME:delayL`, `NAME:tapL`), summed at the Threshold, whose threshold takes the bias.
- Refused, naming the layer: reset by subtraction, time-indexed cells (StepIndexed), stochastic
  firing, max pooling, and anything else NIR has no primitive for.

With an integer form, metadata also holds each layer's integer details (on the node that keeps the
layer's name; its helpers carry only "dt" and "spc_layer"): decay form and d or n, input shift and
state width per cell, integer thresholds and the membrane scale, integer weights and their
exponents, the input quantization.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import nir
import numpy as np

import spc
from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import DelayLine, Leaky, Neuron, StepIndexed
from spc.compiler.quantize import time_constant
from spc.errors import SpcError

DT = 1e-4
"""Seconds per step: what snnTorch and SpikingJelly assume (Norse takes it as an argument)."""

ALTERNATIVE = "emit for ONNX or Lava instead (--target onnx,lava)"


def emit_nir(compiled: Compiled, directory: Path, stored=None) -> list[Path]:
    """Write `directory/model.nir` and return the paths written. The HDF5 file is built in memory
    and written with plain file I/O: HDF5 itself crashes the process on a full disk, plain I/O
    raises an OSError that the compiled directory's writer turns into "could not be written".
    Uncompressed: trained weights barely compress, and gzip took most of a save's time. (An HDF5
    file cannot refer to the compiled directory's arrays portably, so `stored` is not used.)"""
    graph = to_nir(compiled)
    buffer = io.BytesIO()
    nir.write(buffer, graph, compression=None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.nir"
    path.write_bytes(buffer.getvalue())
    return [path]


def to_nir(compiled: Compiled, dt: float = DT) -> nir.NIRGraph:
    """The NIR graph of a compiled model (see the module docstring for the mapping)."""
    return _Emitter(compiled, dt).run()


def refusal(name: str, problem: str, fix: str = ALTERNATIVE) -> SpcError:
    return SpcError(f"target 'nir', layer '{name}'", problem, fix)


def _full(values, shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel vector ([C] or [1]) as one value per neuron, NIR's parameter layout."""
    values = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(ir.channel_view(values, shape), shape).copy()


def _plain(value):
    """A quantization-report value as something HDF5 stores: None (an infinite τ) becomes inf."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [math.inf if v is None else v for v in value]
    return math.inf if value is None else value


def _flatten_dims(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int] | None:
    """(start, end) such that merging dimensions start..end of `shape` gives `out`, if any."""
    for start in range(len(shape)):
        for end in range(start, len(shape)):
            if shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :] == out:
                return start, end
    return None


class _Emitter:
    def __init__(self, compiled: Compiled, dt: float):
        self.graph, self.integer, self.dt = compiled.stepwise, compiled.integer, dt
        self.report = (compiled.quantization or {}).get("layers", {})
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.sources: dict[str, list[str]] = {}  # spc node -> the NIR nodes whose outputs sum to its value

    def run(self) -> nir.NIRGraph:
        pairs = self._cuba_pairs()
        absorbed = set(pairs.values())
        for node in self.graph.nodes:
            if node.name in pairs:
                self._cuba_pair(self.graph.node(pairs[node.name]), node)
                continue
            if node.name in absorbed:
                continue
            handler = getattr(self, f"_{type(node.op).__name__}", None)
            if handler is None:
                raise refusal(node.name, f"is a {node.op.kind}, which has no NIR primitive")
            handler(node, self._fan_in(node))
        for i, out in enumerate(self.graph.outputs):
            name = self._free("output" if i == 0 else f"output:{i}")
            self._add(name, nir.Output(np.array(self.graph.shapes[out])), self.sources[out], {"dt": self.dt})
        decays = "realised decays of the integer form" if self.integer is not None else "float decays"
        metadata = {"dt": self.dt, "producer": f"spc {spc.__version__}", "form": f"stepwise, {decays}"}
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata, type_check=False)

    # --- bookkeeping -----------------------------------------------------------------------
    def _fan_in(self, node: ir.Node) -> list[str]:
        return [s for i in node.inputs for s in self.sources[i]]

    def _free(self, name: str) -> str:
        if name in self.nodes:
            raise SpcError(f"target 'nir', node '{name}'", "is a name spc needs for a helper node, and the graph already uses it", "rename the layer")
        return name

    def _add(self, name: str, node: nir.NIRNode, sources: list[str], metadata: dict) -> str:
        node.metadata = metadata
        self.nodes[self._free(name)] = node
        self.edges += [(s, name) for s in sources]
        return name

    def _simple(self, node: ir.Node, nir_node: nir.NIRNode, sources: list[str]) -> None:
        self.sources[node.name] = [self._add(node.name, nir_node, sources, self._synapse_meta(node.name))]

    def _synapse_meta(self, name: str) -> dict:
        meta = {"dt": self.dt, "spc_layer": name}
        if name in self.report:
            meta["integer"] = _plain({k: v for k, v in self.report[name].items() if k != "kind"})
            op = self.integer.node(name).op
            if isinstance(op, (ir.Linear, ir.Conv)):
                meta["integer"]["weight"] = op.weight
                if op.bias is not None:
                    meta["integer"]["bias"] = op.bias
        return meta

    # --- synapses ----------------------------------------------------------------------------
    def _Input(self, node, sources):
        meta = {"dt": self.dt}
        if "input:quantize" in self.report:
            meta["integer"] = _plain({k: v for k, v in self.report["input:quantize"].items() if k != "kind"})
        self.sources[node.name] = [self._add(node.name, nir.Input(np.array(node.op.shape)), [], meta)]

    def _Linear(self, node, sources):
        op = node.op
        layer = nir.Linear(weight=op.weight) if op.bias is None else nir.Affine(weight=op.weight, bias=op.bias)
        self._simple(node, layer, sources)

    def _Conv(self, node, sources):
        op, shape = node.op, self.graph.shapes[node.inputs[0]]
        bias = op.bias if op.bias is not None else np.zeros(op.weight.shape[0], op.weight.dtype)
        if op.weight.ndim == 3:
            layer = nir.Conv1d(input_shape=shape[1], weight=op.weight, stride=op.stride[0], padding=op.padding[0], dilation=op.dilation[0], groups=op.groups, bias=bias)
        else:
            layer = nir.Conv2d(input_shape=tuple(shape[1:]), weight=op.weight, stride=tuple(op.stride), padding=tuple(op.padding), dilation=tuple(op.dilation), groups=op.groups, bias=bias)
        self._simple(node, layer, sources)

    def _pool(self, node, sources, kind):
        op = node.op
        self._simple(node, kind(kernel_size=np.array(op.kernel), stride=np.array(op.stride), padding=np.array(op.padding)), sources)

    def _AvgPool2d(self, node, sources):
        if not node.op.count_include_pad and any(node.op.padding):
            raise refusal(node.name, "averages over padded windows without counting the padding (count_include_pad=False); NIR's AvgPool2d has no such option", "use count_include_pad=True or no padding, or " + ALTERNATIVE)
        self._pool(node, sources, nir.AvgPool2d)

    def _MaxPool2d(self, node, sources):
        raise refusal(node.name, "is max pooling, which NIR has no primitive for", "use average pooling (nn.AvgPool2d), or " + ALTERNATIVE)

    def _SumPool2d(self, node, sources):
        self._pool(node, sources, nir.SumPool2d)

    def _Reshape(self, node, sources):
        shape = self.graph.shapes[node.inputs[0]]
        dims = _flatten_dims(shape, tuple(node.op.shape))
        if dims is None:
            raise refusal(node.name, f"reshapes {shape} to {node.op.shape}, which is not a flattening of consecutive dimensions (NIR's only reshape)", "flatten instead, or " + ALTERNATIVE)
        self._simple(node, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=dims[0], end_dim=dims[1]), sources)

    def _ScaleShift(self, node, sources):
        """y = s·x + t per channel (an unfolded BatchNorm, or `1 − x`): a diagonal Affine or 1×1 convolution."""
        op, shape = node.op, self.graph.shapes[node.name]
        channels = (shape[0],)
        diagonal = np.diag(np.broadcast_to(op.scale.astype(np.float64), channels))
        shift = np.broadcast_to(op.shift.astype(np.float64), channels).copy()
        if len(shape) == 1:
            layer = nir.Affine(weight=diagonal, bias=shift)
        elif len(shape) == 2:
            layer = nir.Conv1d(input_shape=shape[1], weight=diagonal[:, :, None], stride=1, padding=0, dilation=1, groups=1, bias=shift)
        else:
            layer = nir.Conv2d(input_shape=tuple(shape[1:]), weight=diagonal[:, :, None, None], stride=1, padding=0, dilation=1, groups=1, bias=shift)
        self._simple(node, layer, sources)

    _BatchNorm = _ScaleShift

    def _Mul(self, node, sources):
        raise refusal(node.name, "multiplies two tensors (SEW-ResNet's AND / IAND), which NIR has no primitive for", "connect residual branches by ADD, or " + ALTERNATIVE)

    def _Add(self, node, sources):
        if len(set(sources)) != len(sources):
            raise refusal(node.name, "adds a tensor to itself; NIR sums distinct edges only", "multiply the weights by 2 instead, or " + ALTERNATIVE)
        self.sources[node.name] = sources

    # --- neurons -----------------------------------------------------------------------------
    def _cuba_pairs(self) -> dict[str, str]:
        """{LIF layer: the non-spiking leaky layer that feeds only it}: each pair is one CubaLIF."""
        pairs = {}
        for node in self.graph.neurons():
            source = self.graph.node(node.inputs[0])
            op, feed = node.op, source.op
            if not (_single_leaky(op) and op.fire is not None and op.fire.reset == "zero"):
                continue
            if not (isinstance(feed, Neuron) and _single_leaky(feed) and feed.fire is None):
                continue
            if len(self.graph.consumers(source.name)) == 1 and source.name not in self.graph.outputs:
                if all(np.all(np.isfinite(self._taus(n)[0])) for n in (node.name, source.name)):
                    pairs[node.name] = source.name
        return pairs

    def _taus(self, name: str) -> list[np.ndarray | None]:
        """Each cell's emitted time constant in steps, per channel (None for a FIR cell)."""
        cells = self.graph.node(name).op.cells
        if name in self.report:
            return [None if not isinstance(c, Leaky) else np.array(_plain(info["realised_tau"]), dtype=np.float64) for c, info in zip(cells, self.report[name]["cells"])]
        return [time_constant(c.decay) if isinstance(c, Leaky) else None for c in cells]

    def _Neuron(self, node, sources):
        op = node.op
        self._neuron(node.name, [node.name], op.cells, self._taus(node.name), op.fire, sources)

    def _cuba_pair(self, feed: ir.Node, node: ir.Node) -> None:
        cells, taus = feed.op.cells + node.op.cells, self._taus(feed.name) + self._taus(node.name)
        self._neuron(node.name, [feed.name, node.name], cells, taus, node.op.fire, self._fan_in(feed))

    def _neuron(self, name: str, layers: list[str], cells, taus, fire, sources: list[str]) -> None:
        """Emit a chain of cells and its firing rule; `layers` are the spc layers it comes from."""
        _check_expressible(name, cells, fire)
        shape, meta = self.graph.shapes[name], self._neuron_meta(layers)
        resets = fire is not None and fire.reset == "zero"
        thresholded = fire is not None and fire.reset == "none"
        membrane = f"{name}:membrane" if thresholded else name
        if len(cells) == 2 and all(isinstance(c, Leaky) and np.all(np.isfinite(t)) for c, t in zip(cells, taus)):
            sources = [self._add(membrane, self._cuba(cells, taus, shape, fire if resets else None), sources, meta)]
        else:
            for i, (cell, tau) in enumerate(zip(cells, taus)):
                last = i == len(cells) - 1
                target = membrane if last else f"{name}:cell{i}"
                if isinstance(cell, Leaky):
                    node = self._leaky(name, cell, tau, shape, fire if last and resets else None)
                    sources = [self._add(target, node, sources, meta)]
                else:
                    if np.any(cell.bias) and not (last and thresholded):
                        raise refusal(name, "has a FIR cell with a bias that no threshold absorbs; NIR has no bias-only node")
                    sources = self._taps(name, cell, shape, sources, meta)
        if thresholded:
            bias = cells[-1].bias if isinstance(cells[-1], DelayLine) else 0.0
            sources = [self._add(name, nir.Threshold(threshold=_threshold(fire, shape, bias)), sources, meta)]
        self.sources[name] = sources

    def _leaky(self, name: str, cell: Leaky, tau: np.ndarray, shape, fire) -> nir.NIRNode:
        """One leaky cell (with its reset-to-zero firing rule, if given): LI/LIF or I/IF."""
        finite = np.isfinite(tau)
        if finite.all():
            tau_s, r, zero = _full(tau * self.dt, shape), _full(cell.gain * tau, shape), np.zeros(shape)
            if fire is None:
                return nir.LI(tau=tau_s, r=r, v_leak=zero)
            return nir.LIF(tau=tau_s, r=r, v_leak=zero, v_threshold=_threshold(fire, shape), v_reset=zero)
        if finite.any():
            raise refusal(name, "has channels that leak and channels that do not; NIR needs one node type (LIF or IF) per layer", "give every channel a decay < 1, or " + ALTERNATIVE)
        r = _full(cell.gain / self.dt, shape)
        if fire is None:
            return nir.I(r=r)
        return nir.IF(r=r, v_threshold=_threshold(fire, shape), v_reset=np.zeros(shape))

    def _cuba(self, cells, taus, shape, fire) -> nir.NIRNode:
        (syn, mem), (tau_syn, tau_mem) = cells, taus
        params = dict(tau_syn=_full(tau_syn * self.dt, shape), tau_mem=_full(tau_mem * self.dt, shape), r=_full(mem.gain * tau_mem, shape), v_leak=np.zeros(shape), w_in=_full(syn.gain * tau_syn, shape))
        if fire is None:
            return nir.CubaLI(**params)
        return nir.CubaLIF(**params, v_threshold=_threshold(fire, shape), v_reset=np.zeros(shape))

    def _taps(self, name: str, cell: DelayLine, shape, sources: list[str], meta: dict) -> list[str]:
        """One `Delay → Scale` branch per tap; returns the branches, for the next node to sum."""
        branches = []
        helper = {k: meta[k] for k in ("dt", "spc_layer") if k in meta}  # the layer's details stay on its node, once
        for i in range(cell.order):
            lag = (cell.order - 1 - i) * cell.dilation
            feed = sources
            if lag:
                feed = [self._add(f"{name}:delay{lag}", nir.Delay(delay=np.full(shape, lag * self.dt)), sources, helper)]
            branches.append(self._add(f"{name}:tap{lag}", nir.Scale(scale=_full(cell.taps[:, i], shape)), feed, helper))
        return branches

    def _neuron_meta(self, layers: list[str]) -> dict:
        meta = {"dt": self.dt, "spc_layer": layers[-1]}
        if len(layers) > 1:
            meta["spc_current_layer"] = layers[0]
        cells = {}
        for layer in layers:
            op = self.graph.node(layer).op
            for i, cell in enumerate(op.cells):
                info = {"cell": cell.kind}
                if isinstance(cell, Leaky):
                    info.update(decay=cell.decay, gain=cell.gain)
                else:
                    info.update(taps=cell.taps, bias=cell.bias, dilation=cell.dilation)
                if layer in self.report:
                    q = self.integer.node(layer).op.cells[i]
                    info["integer"] = _plain({k: v for k, v in self.report[layer]["cells"][i].items() if k != "cell"})
                    info["integer"]["width"] = q.width
                    if isinstance(cell, DelayLine):
                        info["integer"]["taps"] = q.taps
                cells[str(len(cells))] = info
            if op.fire is not None:
                meta["fire"] = {"threshold": op.fire.threshold, "strict": op.fire.strict, "reset": op.fire.reset}
                if layer in self.report:
                    meta["fire"]["threshold_integer"] = self.report[layer]["threshold"]["integer"]
            if layer in self.report:
                meta["membrane_scale"] = self.report[layer]["membrane_scale"]
        meta["cells"] = cells
        return meta


def _single_leaky(op) -> bool:
    return isinstance(op, Neuron) and len(op.cells) == 1 and isinstance(op.cells[0], Leaky)


def _threshold(fire, shape, bias=0.0) -> np.ndarray:
    """NIR's strict threshold for spc's rule: h ≥ θ is h > nextafter(θ, −∞) on doubles."""
    theta = _full(np.asarray(fire.threshold, dtype=np.float64) - bias, shape)
    return theta if fire.strict else np.nextafter(theta, -np.inf)


def _check_expressible(name: str, cells, fire) -> None:
    for cell in cells:
        if isinstance(cell, StepIndexed):
            raise refusal(name, f"has a StepIndexed cell: its kernel is indexed by the time step (valid for t < {cell.time_steps}), which NIR's time-invariant primitives cannot express", "retrain the layer as a SlidingPSN (a FIR kernel NIR can express), or " + ALTERNATIVE)
        if not isinstance(cell, (Leaky, DelayLine)):
            raise refusal(name, f"has a {cell.kind} cell, which no NIR primitive computes (NIR's neurons are leaky integrators, delays and thresholds)", ALTERNATIVE)
    if fire is None:
        return
    if fire.stochastic:
        raise refusal(name, "fires stochastically (seeded Bernoulli); NIR has only deterministic thresholds", "use deterministic firing (stochastic=False), or " + ALTERNATIVE)
    if fire.reset == "subtract":
        raise refusal(name, "resets by subtraction, which NIR cannot express (its neurons reset to v_reset)", "emit for --target onnx,lava, or retrain with reset to zero (v_reset=0.0)")
