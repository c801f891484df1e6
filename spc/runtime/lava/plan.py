"""How a graph becomes a Lava process network: every process, its parameters in Lava's units, the
connections, and the latency of every process's output. Plain numpy and scipy, no Lava import:
`build` instantiates a plan, `spc.compiler.emit.lava` writes one down.

Mapping (fixed_pt from the integer graph, floating_pt from the float stepwise graph). The batch is
folded into the neuron axis, sample-major (spc's `[B, *shape]` order), so one run serves every
sample: synapse matrices become block-diagonal.
- `Input`, and the `Quantize` right after it (applied on the host): a stock RingBuffer plays it.
- `Linear`, `Conv`, `SumPool2d`, `ScaleShift` (and `AvgPool2d`, `BatchNorm` in float graphs): a stock Dense, or a
  Sparse where the matrix is mostly zeros (an unrolled convolution, a batch fold). The matrix is
  read off the op's weights and windows. A Dense holds no bias: the biases are
  carried, through any later synapses, to the next neuron as a constant `offset` it adds.
- `Reshape` and `Add` are wiring: the flat layout needs no reshape, and an InPort sums its inputs.
- A neuron runs on Lava's stock processes where they compute it exactly (fixed_pt only;
  `spc.runtime.lava.stock` decides and says why not), otherwise in spc's own `Neuron` process (CPU
  only). A stock neuron may rescale its synapse (weight_exp) or replace it by delayed synapses (an
  FIR), and takes its biases from one always-on LIF. `Plan.placement` records, per layer, which.
- The graph's final `Dequantize` is applied on the host; every recorded node gets a `Sink` (which
  reads a stock readout's voltage through a RefPort).

Integer weights in Lava's units: see `spc.compiler.loihi.encode_weights` (mixed-sign weights w are
sent as 2w with `weight_exp` one lower, since Lava drops their LSB).

Latency: a Dense delivers one Lava step after its input, so every output has a `depth`, the Lava
step (from 0) at which it carries spc's step 0. A neuron or sink takes the depth of its inputs;
inputs arriving at different depths (a residual `Add`) are first aligned by identity synapses with
delays (DelayDense, DelaySparse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from spc.compiler import ir, loihi
from spc.compiler.artifact import Compiled
from spc.compiler.cells import Neuron
from spc.errors import SpcError
from spc.runtime.lava import stock
from spc.runtime.synapses import windows

SYNAPSES = (ir.Linear, ir.Conv, ir.SumPool2d, ir.AvgPool2d, ir.ScaleShift)  # ScaleShift: BatchNorm too
TAGS = ("fixed_pt", "floating_pt")
MAX_DELAY = 63  # Lava's fixed-point delayed synapses accept delays 0..63
DENSE_FILL = 0.25  # a matrix with a larger share of nonzeros becomes a Dense, else a Sparse
ACCUMULATOR = 2**31  # Dense and Sparse sum in int32


CLASSES = {
    "RingBuffer": "lava.proc.io.source.RingBuffer",
    "Dense": "lava.proc.dense.process.Dense",
    "Sparse": "lava.proc.sparse.process.Sparse",
    "DelayDense": "lava.proc.dense.process.DelayDense",
    "DelaySparse": "lava.proc.sparse.process.DelaySparse",
    "LIF": "lava.proc.lif.process.LIF",
    "LIFReset": "lava.proc.lif.process.LIFReset",
    "TernaryLIF": "lava.proc.lif.process.TernaryLIF",
    "Neuron": "spc.runtime.lava.processes.neuron.Neuron",
    "Sink": "spc.runtime.lava.processes.sink.Sink",
}
"""The Process class of every kind of `Proc`."""


def refuse(layer: str, problem: str, fix: str) -> SpcError:
    return SpcError(f"target 'lava': layer '{layer}'", problem, fix)


@dataclass
class Proc:
    """One Lava process: its class (`kind`), the graph node it implements, the depth of its output
    and its constructor arguments in Lava's units (`weights` always as a scipy CSR matrix)."""

    name: str
    kind: str  # RingBuffer, Dense, Sparse, DelayDense, DelaySparse, LIF, LIFReset, TernaryLIF (stock Lava); Neuron, Sink (spc)
    layer: str
    depth: int
    params: dict


@dataclass(frozen=True)
class Link:
    """An OutPort to an InPort, or (dst_port 'v_ref') a sink's RefPort reading the Var `src_port`."""

    src: str
    src_port: str
    dst: str
    dst_port: str


@dataclass
class Probe:
    """Where a recorded node is read back: its sink, read from Lava step `depth` on, plus `offset`."""

    sink: str
    depth: int
    offset: np.ndarray  # per sample, in the node's shape: the biases no process added
    membranes: bool
    voltage: bool = False  # read from the neuron's voltage (a stock readout), not its output port


@dataclass
class Plan:
    graph: ir.Graph
    tag: str
    batch: int
    procs: dict[str, Proc] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)
    encode: ir.Quantize | None = None  # applied to the input on the host before the source plays it
    decode: tuple[str, ir.Dequantize] | None = None  # (its input, op): the graph's output, on the host
    placement: dict[str, stock.Placement] = field(default_factory=dict)  # fixed_pt: per synapse and neuron layer

    @property
    def integer(self) -> bool:
        return self.tag == "fixed_pt"

    def placement_json(self) -> dict:
        """{layer: {"loihi2": "stock" | "cpu", "processes": [...], "reason": ...}}: the manifest's entry."""
        return {layer: p.to_json() for layer, p in self.placement.items()}

    @property
    def depth(self) -> int:
        """The latency of the deepest recorded node: a run takes this many steps more than T."""
        return max(p.depth for p in self.probes.values())


@dataclass(frozen=True)
class _Built:
    """A synapse layer as planned: its input terms (aligned at `depth`) and its integer matrix."""

    terms: list
    depth: int
    matrix: sparse.csr_matrix


@dataclass(frozen=True)
class _Term:
    """One port's contribution to a node's value, `bound` its largest magnitude."""

    proc: str
    port: str
    depth: int
    bound: float
    binary: bool


def per_sample(matrix: sparse.csr_matrix, batch: int) -> sparse.csr_matrix:
    """The block-diagonal matrix applying `matrix` to each of `batch` samples side by side."""
    return matrix.tocsr() if batch == 1 else sparse.kron(sparse.identity(batch, matrix.dtype), matrix, format="csr")


def _csr(dense: np.ndarray) -> sparse.csr_matrix:
    """A dense matrix as CSR, its zeros dropped, built directly (scipy's conversion goes through
    coordinates, and took most of a large model's save)."""
    nonzero = dense != 0
    index = np.int32 if dense.size < 2**31 else np.int64
    indptr = np.zeros(dense.shape[0] + 1, index)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    columns = np.nonzero(nonzero)[1].astype(index, copy=False)
    return sparse.csr_matrix((dense[nonzero], columns, indptr), shape=dense.shape)


def _windowed_map(op: ir.Conv | ir.SumPool2d | ir.AvgPool2d, shape: tuple[int, ...], dtype) -> sparse.csr_matrix:
    """The matrix of a convolution or pooling without bias, from its windows: output (o, p) reads
    input `taps[c, p, k]` with weight w[o, c, k] (pooling: 1, or 1/count for an average). Built in
    time linear in its entries: a ResNet's convolutions hold millions."""
    conv = isinstance(op, ir.Conv)
    kernel = op.weight.shape[2:] if conv else op.kernel
    dilation = op.dilation if conv else (1,) * len(kernel)
    index = np.arange(math.prod(shape)).reshape((1,) + shape)
    taps = windows(index, kernel, op.stride, op.padding, dilation, -1)[0]  # [C, *out, *kernel]
    channels, positions, per_window = shape[0], math.prod(taps.shape[1 : 1 + len(kernel)]), math.prod(kernel)
    taps = taps.reshape(channels, positions, per_window)
    if conv:  # rows (o, p), columns taps[c, p, k] for the c of o's group, weights w[o, c, k]
        groups, outputs = op.groups, op.weight.shape[0]
        per_group = channels // groups
        grouped = taps.reshape(groups, per_group, positions, per_window).transpose(0, 2, 1, 3).reshape(groups, positions, per_group * per_window)
        columns = grouped[np.arange(outputs) // (outputs // groups)]  # [O, P, C/g·K]
        values = np.broadcast_to(op.weight.reshape(outputs, 1, -1).astype(dtype, copy=False), columns.shape)
    else:  # one output channel per input channel
        outputs, columns = channels, taps
        if isinstance(op, ir.AvgPool2d):
            counts = np.full(taps.shape[:2], per_window) if op.count_include_pad or not any(op.padding) else (taps >= 0).sum(axis=-1)
            values = np.broadcast_to((1 / counts.astype(np.float64))[:, :, None], taps.shape)
        else:
            values = np.ones(taps.shape, dtype)
    rows = np.broadcast_to(np.arange(outputs * positions).reshape(outputs, positions, 1), columns.shape)
    keep = (columns >= 0) & (values != 0)
    matrix = sparse.coo_matrix((values[keep].astype(dtype, copy=False), (rows[keep], columns[keep])), shape=(outputs * positions, index.size))
    return matrix.tocsr()


def linear_map(op: ir.Op, shape: tuple[int, ...], dtype) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(M, b) with op(x) = M·x + b on flattened per-step tensors (the layout of spc's [C, ...]
    tensors). Lava's runs are checked bit for bit against the simulator, which applies the ops
    themselves, so a wrong entry here cannot pass unseen."""
    if isinstance(op, ir.Linear):
        bias = np.zeros(op.weight.shape[0], dtype) if op.bias is None else op.bias.astype(dtype)
        return _csr(op.weight.astype(dtype, copy=False)), bias
    if isinstance(op, (ir.Conv, ir.SumPool2d, ir.AvgPool2d)):
        matrix = _windowed_map(op, shape, dtype)
        bias = np.zeros(matrix.shape[0], dtype)
        if isinstance(op, ir.Conv) and op.bias is not None:
            bias = np.repeat(op.bias.astype(dtype), matrix.shape[0] // op.bias.size)
        return matrix, bias
    if isinstance(op, ir.ScaleShift):  # a diagonal: each channel's scale on its positions
        per_channel = math.prod(shape[1:])
        scale, shift = (np.repeat(np.broadcast_to(v.astype(dtype, copy=False), shape[:1]), per_channel) for v in (op.scale, op.shift))  # one value may serve every channel
        return sparse.diags(scale, format="csr", dtype=dtype), shift
    raise TypeError(f"not a synapse with a matrix: {op.kind}")


def _message_bits(bound: float) -> int:
    """Graded-spike payload width that holds ±bound (floats: any positive value means graded)."""
    return min(32, int(bound).bit_length() + 1) if math.isfinite(bound) else 24


class _Planner:
    def __init__(self, graph: ir.Graph, tag: str, batch: int):
        self.graph, self.batch = graph, batch
        self.plan = Plan(graph, tag, batch)
        self.terms: dict[str, list[_Term]] = {}
        self.offsets: dict[str, np.ndarray] = {}
        self.built: dict[str, _Built] = {}
        self.voltage_read: set[str] = set()  # stock readouts: the host reads their voltage
        self.dtype = np.int64 if self.plan.integer else np.float64

    def size(self, name: str) -> int:
        return math.prod(self.graph.shapes[name])

    def add(self, proc: Proc, inputs: list[_Term], port: str) -> None:
        self.plan.procs[proc.name] = proc
        self.plan.links.extend(Link(t.proc, t.port, proc.name, port) for t in inputs)

    def run(self) -> Plan:
        for node in self.graph.nodes:
            op = node.op
            if isinstance(op, ir.Input):
                self.source(node)
            elif isinstance(op, ir.Quantize) and node.name in self.terms:
                pass  # the source plays it
            elif isinstance(op, SYNAPSES):
                self.synapse(node)
            elif isinstance(op, (ir.Reshape, ir.Add)):
                self.terms[node.name] = [t for i in node.inputs for t in self.terms[i]]
                self.offsets[node.name] = sum(self.offsets[i] for i in node.inputs)
            elif isinstance(op, Neuron):
                self.neuron(node)
            elif isinstance(op, ir.Dequantize) and node.name in self.graph.outputs:
                self.plan.decode = (node.inputs[0], op)
            elif isinstance(op, ir.Mul):
                raise refuse(node.name, "multiplies two tensors (SEW-ResNet's AND / IAND); a Lava synapse only weighs and sums its inputs", "connect residual branches by ADD, or run this model with spc's simulator or ONNX")
            elif isinstance(op, ir.MaxPool2d):
                raise refuse(node.name, "max pooling has no Lava synapse: a Dense sums its inputs, it cannot take their maximum", "use average pooling (it becomes a sum over each window, an exact Sparse synapse), or run this model with spc's simulator or ONNX")
            else:
                raise refuse(node.name, f"{op.kind} at this place in the graph has no Lava form", "run this model with spc's simulator or ONNX")
        recorded = [n.name for n in self.graph.neurons()]
        output = self.plan.decode[0] if self.plan.decode else self.graph.outputs[0]
        for name in recorded + ([output] if output not in recorded else []):
            self.probe(name)
        return self.plan

    def source(self, node: ir.Node) -> None:
        """The RingBuffer playing the input, or in an integer graph the Quantize of it (on the host)."""
        self.add(Proc(node.name, "RingBuffer", node.name, 0, {}), [], "")  # its data: the input, at run time
        played, bound = node, math.inf
        if self.plan.integer:
            consumers = self.graph.consumers(node.name)
            if [type(c.op) for c in consumers] != [ir.Quantize]:
                raise refuse(node.name, "an integer graph's input must pass through one Quantize, and nothing else may read the float input", "recompile the model")
            played = consumers[0]
            self.plan.encode, bound = played.op, 2.0 ** (played.op.bits - 1)
        self.terms[played.name] = [_Term(node.name, "s_out", 0, bound, False)]
        self.offsets[played.name] = np.zeros(self.size(node.name), self.dtype)

    def aligned(self, name: str) -> tuple[list[_Term], int]:
        """The terms of a node, all delayed to the depth of the deepest one."""
        terms = self.terms[name]
        depth = max(t.depth for t in terms)
        return [self.delay(name, t, depth) for t in terms], depth

    def delay(self, name: str, term: _Term, depth: int) -> _Term:
        lag = depth - term.depth
        if lag == 0:
            return term
        if lag - 1 > MAX_DELAY:
            raise refuse(name, f"adds inputs whose paths differ by {lag} synaptic layers; Lava's synaptic delays (0..{MAX_DELAY}) cannot align them", "shorten the skip connection, or run this model with spc's simulator or ONNX")
        proc = f"{term.proc}:delay{lag}"
        if proc not in self.plan.procs:
            params = {"weights": sparse.identity(self.batch * self.size(name), self.dtype, format="csr"), "num_message_bits": _message_bits(term.bound)}
            kind = self.kind(params["weights"])
            if lag > 1:
                kind, params["delays"] = f"Delay{kind}", lag - 1
            self.add(Proc(proc, kind, name, depth, params), [term], "s_in")
        return _Term(proc, "a_out", depth, term.bound, False)

    def kind(self, weights: sparse.csr_matrix) -> str:
        return "Dense" if weights.nnz > DENSE_FILL * weights.shape[0] * weights.shape[1] else "Sparse"

    def synapse(self, node: ir.Node) -> None:
        (src,) = node.inputs
        terms, depth = self.aligned(src)
        matrix, bias = linear_map(node.op, self.graph.shapes[src], self.dtype)
        self.offsets[node.name] = matrix @ self.offsets[src] + bias
        bound_in = sum(t.bound for t in terms)
        reach = float(np.asarray(abs(matrix).sum(axis=1)).max(initial=0))
        bound = reach * bound_in if reach else 0.0
        folded = per_sample(matrix, self.batch)
        params = {"weights": folded, "num_message_bits": self.message_bits(terms)}
        if self.plan.integer:
            params.update(self.weight_encoding(node.name, matrix, bound))
        proc = Proc(node.name, self.kind(folded), node.name, depth + 1, params)
        self.add(proc, terms, "s_in")
        self.terms[node.name] = [_Term(node.name, "a_out", depth + 1, bound, False)]
        self.built[node.name] = _Built(terms, depth, matrix)
        if self.plan.integer:
            self.plan.placement[node.name] = stock.Placement(stock.STOCK, (proc.kind,), "")

    def message_bits(self, terms: list[_Term]) -> int:
        """0 for binary spikes, else the graded payload width that holds their sum."""
        graded = len(terms) > 1 or not terms[0].binary
        return _message_bits(sum(t.bound for t in terms)) if graded else 0

    def weight_encoding(self, name: str, matrix: sparse.csr_matrix, bound: float) -> dict:
        """Integer weights as Lava keeps them exactly: {'weights': scaled, 'weight_exp': e}."""
        encoded = loihi.encode_weights(matrix.data, 0)
        if isinstance(encoded, str):
            raise refuse(name, encoded, "compile with 8-bit weights (--weight-bits 8 or fewer)")
        values, exp = encoded
        factor = 2 if exp < 0 else 1
        if factor * bound >= ACCUMULATOR:
            raise refuse(name, f"its synaptic sums reach {bound:.0f}; Lava's Dense accumulates {'twice the sum (mixed-sign weights are stored doubled)' if factor == 2 else 'the sum'} in int32", "use fewer input bits (--input-bits) or smaller weights, or run this model with spc's simulator")
        lava = matrix.copy()
        lava.data = values
        return {"weights": per_sample(lava, self.batch), "weight_exp": exp}

    def neuron(self, node: ir.Node) -> None:
        op, name = node.op, node.name
        shape = self.graph.shapes[name]
        terms, depth = self.aligned(node.inputs[0])
        offset = self.offsets[node.inputs[0]]
        mapped = None
        if self.plan.integer:  # Loihi 2's stock processes where they compute it exactly, else spc's process
            feed = self.feed(node, terms)
            mapped = stock.map_neuron(op, feed, self.membrane_read_elsewhere(node))
            if isinstance(mapped, stock.StockNeuron):
                self.stock_neuron(node, mapped, feed, depth)
            else:
                self.plan.placement[name] = stock.Placement(stock.CPU, (), mapped)
        if not isinstance(mapped, stock.StockNeuron):
            proc = Proc(name, "Neuron", name, depth, {"neuron": op, "shape": shape, "batch": self.batch, "latency": depth, "offset": offset.reshape(shape)})
            self.add(proc, terms, "a_in")
        if op.spiking:
            bound = 1.0
        else:
            bound = float(2 ** (op.cells[-1].width - 1) - 1) if self.plan.integer else math.inf
        self.terms[name] = [_Term(name, "s_out", depth, bound, op.spiking)]
        self.offsets[name] = np.zeros(self.size(name), self.dtype)

    def feed(self, node: ir.Node, terms: list[_Term]) -> stock.Feed | None:
        """The synapse layer a neuron may take over (rescale or replace): its only input, read by
        nothing else; None otherwise."""
        (src,) = node.inputs
        built = self.built.get(src)
        if built is None or [t.proc for t in terms] != [src] or self.graph.consumers(src) != [node] or src in self.graph.outputs:
            return None
        low = sum(0.0 if t.binary else -t.bound for t in built.terms)
        high = sum(1.0 if t.binary else t.bound for t in built.terms)
        return stock.Feed(src, built.matrix, self.offsets[src], low, high, built.depth)

    def membrane_read_elsewhere(self, node: ir.Node) -> bool:
        """Whether a readout's membrane feeds anything but the graph's output Dequantize."""
        outputs = self.graph.outputs
        return any(c.name not in outputs or not isinstance(c.op, ir.Dequantize) for c in self.graph.consumers(node.name))

    def stock_neuron(self, node: ir.Node, mapped: stock.StockNeuron, feed: stock.Feed, depth: int) -> None:
        """The processes of a layer `stock.map_neuron` mapped, batch-folded and wired."""
        name, n = node.name, self.size(node.name)
        params = {k: (np.tile(v, self.batch) if isinstance(v, np.ndarray) else v) for k, v in mapped.params.items()}
        self.add(Proc(name, mapped.kind, name, depth, {"shape": (self.batch * n,)} | params), [], "a_in")
        feeder, inputs = self.plan.procs[feed.name], self.built[feed.name].terms
        if mapped.feed_exp is None:  # the synapses below replace the feed's process
            del self.plan.procs[feed.name]
            self.plan.links = [link for link in self.plan.links if link.dst != feed.name]
        else:
            feeder.params["weight_exp"] = mapped.feed_exp
            self.plan.links.append(Link(feed.name, "a_out", name, "a_in"))
        for syn in mapped.synapses:
            if syn.source == "input":  # delivers its input's step 0 at the neuron's depth plus its delay
                weights, sources, bits, latency = sparse.kron(sparse.identity(self.batch, np.int64), syn.weights, format="csr"), inputs, feeder.params["num_message_bits"], depth + syn.delay
            else:  # the always-on neuron fires from Lava step 0
                weights, sources, bits, latency = sparse.vstack([syn.weights] * self.batch, format="csr"), [self.always_on()], 0, 1 + syn.delay
            kind = ("Delay" if syn.delay else "") + self.kind(weights)
            params = {"weights": weights, "weight_exp": syn.weight_exp, "num_message_bits": bits} | ({"delays": syn.delay} if syn.delay else {})
            self.add(Proc(syn.name, kind, feed.name if syn.source == "input" else name, latency, params), sources, "s_in")
            self.plan.links.append(Link(syn.name, "a_out", name, "a_in"))
        kinds = [self.plan.procs[s.name].kind for s in mapped.synapses]
        if mapped.feed_exp is None:
            taps = tuple(k for k, s in zip(kinds, mapped.synapses) if s.source == "input")
            self.plan.placement[feed.name] = stock.Placement(stock.STOCK, taps, f"folded with {name}'s taps into its delayed synapses")
        else:
            kinds.insert(0, feeder.kind)
        self.plan.placement[name] = stock.Placement(stock.STOCK, tuple(kinds + [mapped.kind]), mapped.summary)
        if mapped.reads_voltage:
            self.voltage_read.add(name)

    def always_on(self) -> _Term:
        """The LIF that fires at every Lava step (v = bias 1 > 0): the source of stock layers' biases."""
        if stock.ALWAYS_ON not in self.plan.procs:
            params = {"shape": (1,), "du": loihi.DECAY_UNITY - 1, "dv": 0, "vth": 0, "bias_mant": 1, "bias_exp": 0}
            self.add(Proc(stock.ALWAYS_ON, "LIF", stock.ALWAYS_ON, 0, params), [], "a_in")
        return _Term(stock.ALWAYS_ON, "s_out", 0, 1.0, True)

    def probe(self, name: str) -> None:
        terms, depth = self.aligned(name)
        proc = self.plan.procs.get(name)
        voltage = name in self.voltage_read
        membranes = voltage or (proc is not None and proc.kind == "Neuron")
        sink = Proc(f"{name}:sink", "Sink", name, depth, {"size": self.batch * self.size(name), "membranes": membranes, "voltage": voltage})
        if voltage:
            self.add(sink, [], "s_in")
            self.plan.links.append(Link(name, "v", sink.name, "v_ref"))
        else:
            self.add(sink, terms, "s_in")
        if membranes and not voltage:
            self.plan.links.append(Link(name, "v_out", sink.name, "v_in"))
        self.plan.probes[name] = Probe(sink.name, depth, self.offsets[name].reshape(self.graph.shapes[name]), membranes, voltage)


def plan_network(graph: ir.Graph, tag: str = "fixed_pt", batch: int = 1) -> Plan:
    """The process network running `graph` for `batch` samples at once with Lava's `tag` models:
    the integer graph for fixed_pt, the float stepwise graph for floating_pt."""
    if tag not in TAGS:
        raise SpcError(f"Lava tag '{tag}'", "is not one spc provides ProcessModels for", f"choose one of {', '.join(TAGS)}")
    integer = any(n.op.cells[0].integer for n in graph.neurons())
    if integer != (tag == "fixed_pt") and graph.neurons():
        form = "integer" if integer else "float"
        raise SpcError(f"target 'lava' ({tag})", f"was given the {form} graph", "run fixed_pt on the integer graph (compiled.integer) and floating_pt on the float stepwise graph (compiled.stepwise)")
    return _Planner(graph, tag, batch).run()


def graph_for(compiled: Compiled, tag: str) -> ir.Graph:
    """The graph a tag runs: the integer graph for fixed_pt, the float stepwise graph otherwise."""
    if tag != "fixed_pt":
        return compiled.stepwise
    if compiled.integer is None:
        raise SpcError("target 'lava' (fixed_pt)", "runs the integer form, which this model was compiled without", "recompile with the integer form (the default), or use tag 'floating_pt'")
    return compiled.integer
