"""Which neuron layers of an integer graph Lava's stock processes compute exactly, and with which.

Only stock processes run on Loihi 2 (`spc.compiler.loihi` has their arithmetic and widths); every
other layer runs in spc's own `Neuron` process, on the CPU only. `map_neuron` maps one layer, fed by
one synaptic layer of its own (`Feed`), onto stock processes or says why it cannot
(docs/loihi2-stock.md derives each condition):

- integrator: one leaky membrane (`QLeaky`, 24 bits, one 12-bit decay or none) firing with reset to
  zero → `LIF`, or a readout → `TernaryLIF` whose thresholds are never reached; `du = 4095`, so the
  current is just this step's input, and `dv` spc's decay. Its input shift s >= 6 becomes the
  synapse's weight_exp (a_in = x << (s − 6)), the threshold must sit on Loihi's grid (v > 64·vth),
  at or above zero. The host reads a readout's voltage every step.
- memoryless: a neuron whose state is only this step's input (an FIR `QDelayLine`, or a `QLeaky` with
  full decay) → `LIFReset` clearing u and v every step, so v = 64·a_in + bias: it fires when a_in
  exceeds a per-neuron edge, set by one threshold, its bias and, where those cannot reach (edges
  below zero, or far apart), a lift of a_in by a synapse from the always-on neuron. An FIR's k
  taps become k delayed synapses (`DelaySparse`, delays (k−1−i)·dilation) from the layer's inputs,
  each tap's power of two in its weight_exp and its odd part multiplied into the weights, which
  must stay 8 bits.
- biases (the constant part of the synaptic input) reach a stock neuron as synapses from one LIF
  that fires every step (`always-on`), delayed until the layer's first input arrives, so they
  start at spc's step 0 exactly as the integer specification adds them. No stock neuron can fire
  before its first input arrives (its bias never exceeds its threshold), so the steps every layer
  waits for its input (Lava's synaptic latency) leave nothing behind.

Everything here is one sample (the planner folds the batch) and plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from spc.compiler import loihi
from spc.compiler.cells import Neuron
from spc.compiler.qcells import NO_LEAK, QDelayLine, QGate, QGated, QLeaky, QResonator, QSigmoid, QStepIndexed

STOCK, CPU = "stock", "cpu"
NOT_OWN_INPUT = "its input is not one synaptic layer of its own"
READOUT_READ = "a readout whose membrane feeds other layers"
STRUCTURAL = (NOT_OWN_INPUT, READOUT_READ)
"""Reasons that come from where a layer sits in the graph, not from what it computes."""
ALWAYS_ON = ":always-on"
"""The process name of the LIF that fires every step and carries every stock layer's bias."""
RESET_EVERY_STEP = {"reset_interval": 1, "reset_offset": 0}


@dataclass(frozen=True)
class Placement:
    """Where a layer runs: `loihi2` is "stock" (Lava's stock processes, which Loihi 2 runs) or "cpu"
    (spc's own process, CPU only); `processes` the stock process classes implementing it; `reason`
    how it was mapped, or why it could not be."""

    loihi2: str
    processes: tuple[str, ...]
    reason: str

    def to_json(self) -> dict:
        return {"loihi2": self.loihi2, "processes": list(self.processes), "reason": self.reason}


@dataclass
class Feed:
    """The synaptic layer feeding a neuron, as the planner built it (one sample): its integer matrix
    (spc's weights), the constant part of its output (biases carried from the synapses before it),
    the range [low, high] of each of its input elements, and the Lava step at which its input
    carries spc's step 0."""

    name: str
    matrix: sparse.csr_matrix
    bias: np.ndarray
    low: float
    high: float
    depth: int

    def output_range(self, bias: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The smallest and largest value of each output x = M·s (+ bias) over all inputs."""
        pos, neg = self.matrix.maximum(0), self.matrix.minimum(0)
        rows = lambda m: np.asarray(m.sum(axis=1)).reshape(-1)  # noqa: E731
        low = rows(pos) * self.low + rows(neg) * self.high + (self.bias if bias else 0)
        high = rows(pos) * self.high + rows(neg) * self.low + (self.bias if bias else 0)
        return low, high

    def reach(self, shift: int = 0) -> int:
        """The largest |x << shift|, with or without the bias: both the neuron's input and what
        its main synapse sends alone must fit 16 bits."""
        ranges = [np.abs(r) for r in self.output_range(True) + self.output_range(False)]
        return int(max(r.max(initial=0) for r in ranges)) << shift


@dataclass
class Synapse:
    """A stock synapse process of a mapped layer: from the feed's inputs ("input") or from the
    always-on neuron ("bias"); weights in Lava's units; `delay` steps beyond Lava's one."""

    name: str
    source: str
    weights: sparse.csr_matrix
    weight_exp: int
    delay: int = 0


@dataclass
class StockNeuron:
    """A layer on stock processes: the neuron (`kind`, its parameters per neuron), its synapses, and
    `feed_exp`, the feed's new weight_exp (None: `synapses` replace the feed's process)."""

    kind: str  # LIF, LIFReset, TernaryLIF
    params: dict
    synapses: list[Synapse] = field(default_factory=list)
    feed_exp: int | None = None
    reads_voltage: bool = False  # a readout: the host reads v after every step
    summary: str = ""


# --- why a layer cannot be stock ------------------------------------------------------------------

RF_REASON = (
    "a resonator: Lava's stock RF neuron fires only where its imaginary part crosses zero upward (v_re >= vth "
    "and v_im rises through 0), while spc's PRF fires whenever Re u >= θ; RF also holds one rotation per layer "
    "in 12 bits with at most 7 fractional bits and rounds each product, where PRF keeps one per channel in 16"
)


def _cell_reason(cell) -> str | None:
    if isinstance(cell, QStepIndexed):
        return "a time-indexed kernel (its weights change with the step t); no stock Lava process changes its weights over time"
    if isinstance(cell, (QSigmoid, QGate, QGated)):
        return f"its {cell.kind.removeprefix('Q')} cell reads a lookup table every step; no stock Lava neuron has one"
    if isinstance(cell, QResonator):
        return RF_REASON
    if not isinstance(cell, (QLeaky, QDelayLine)):
        return f"its {cell.kind.removeprefix('Q')} cell has no stock Lava counterpart (stock neurons decay and threshold; they do not rescale a value)"
    return None


def _memoryless(cell) -> bool:
    """The cell's state is this step's input only (a full decay)."""
    return isinstance(cell, QLeaky) and bool(np.all(cell.decay == (4096 if cell.mode == "int12" else 0)))


def family_reason(op: Neuron) -> str | None:
    """Why no stock process can express this kind of neuron, whatever its parameters (None: one may)."""
    for cell in op.cells:
        reason = _cell_reason(cell)
        if reason:
            return reason
    fire, last = op.fire, op.cells[-1]
    if fire is not None and fire.stochastic:
        return "fires stochastically (a seeded Bernoulli draw per neuron and step); stock Lava neurons fire deterministically"
    if fire is not None and fire.reset == "subtract" and not _memoryless(last):
        return "resets by subtracting its threshold; every stock Lava neuron (LIF, LIFReset, TernaryLIF) resets its voltage to zero"
    if fire is not None and fire.reset == "none" and isinstance(last, QLeaky) and not _memoryless(last):
        return "keeps its membrane when it fires (no reset); every stock Lava neuron resets its voltage to zero when it fires"
    if len(op.cells) > 1:
        kinds = " → ".join(c.kind for c in op.cells)
        return f"chains {len(op.cells)} cells ({kinds}); spc maps single-cell neurons onto stock processes"
    return None


# --- the mappings ------------------------------------------------------------------------------------

def map_neuron(op: Neuron, feed: Feed | None, membrane_read_elsewhere: bool = False) -> StockNeuron | str:
    """The stock processes computing this integer layer exactly, or why there are none. `feed` is
    None when the layer's input is not one synaptic layer of its own; `membrane_read_elsewhere`
    says whether a readout's membrane feeds other layers (a stock neuron sends only spikes)."""
    reason = family_reason(op)
    if reason:
        return reason
    if feed is None:
        return f"{NOT_OWN_INPUT} (a sum of branches, another neuron's output, or a synapse read elsewhere too), where a stock neuron would take its scale"
    cell = op.cells[0]
    if op.fire is None and membrane_read_elsewhere:
        return f"{READOUT_READ}; a stock neuron sends only spikes (the host can read its voltage, other layers cannot)"
    if isinstance(cell, QDelayLine):
        return _fir(op, feed)
    if _memoryless(cell):
        return _memoryless_fire(op, feed)
    return _integrator(op, feed)


def _bias_synapse(name: str, feed: Feed, values: np.ndarray, exponent: int, delay: int) -> Synapse | str | None:
    """The synapse from the always-on neuron adding `values · 2^exponent` from the layer's step 0."""
    if not np.any(values):
        return None
    encoded = loihi.encode_bias_column(values, exponent)
    if isinstance(encoded, str):
        return f"its bias {encoded} (compile with --lava-stock: biases become 8-bit mantissas)"
    if delay > loihi.MAX_DELAY:
        return f"its bias must wait {delay} steps for the layer's first input, beyond Loihi's synaptic delays (0..{loihi.MAX_DELAY})"
    weights, exp = encoded
    return Synapse(name, "bias", sparse.csr_matrix(weights.reshape(-1, 1)), exp, delay)


def _integrator(op: Neuron, feed: Feed) -> StockNeuron | str:
    cell, fire = op.cells[0], op.fire
    if cell.width != 24:
        return f"has a {cell.width}-bit membrane; Loihi's is 24 bits (compile with --width 24)"
    decays = np.unique(cell.decay)
    if decays.size != 1:
        return "has one decay per channel; a stock Lava neuron has one voltage decay (dv) for the whole layer"
    if cell.mode == "int12":
        dv = int(decays[0])
    elif decays[0] == NO_LEAK:
        dv = 0
    else:
        return "decays by a bit shift (v − (v >> n) rounds toward −∞); Loihi's voltage decay trunc0(v·(4096 − dv) >> 12) rounds toward zero (compile with --decay int12)"
    if cell.shift < loihi.MIN_SHIFT:
        return f"its input shift is {cell.shift}: its membrane's range leaves fewer than 6 fractional bits below the input's step, and a stock neuron adds its input as a_in << 6 (smaller weights or inputs, or fewer --weight-bits, leave room)"
    extra = cell.shift - loihi.ALIGN_SHIFT
    reach = feed.reach(extra)
    if reach > loihi.A_IN_MAX:
        return f"its synaptic input a_in = x << {extra} can reach {reach}, beyond the neuron's 16-bit a_in (compile with --lava-stock: it caps the input shift)"
    feed_exp = loihi.encode_weights(feed.matrix.data, extra)
    if isinstance(feed_exp, str):
        return f"its synapse {feed_exp}"
    bias = _bias_synapse(f"{feed.name}:bias", feed, feed.bias, extra, feed.depth)
    if isinstance(bias, str):
        return bias
    params = {"du": loihi.DECAY_UNITY - 1, "dv": dv}
    if fire is None:
        kind, params = "TernaryLIF", params | {"vth_hi": loihi.TERNARY_NEVER, "vth_lo": -loihi.TERNARY_NEVER}
        summary = f"readout: TernaryLIF whose thresholds are never reached, du = 4095, dv = {dv}; the host reads v every step"
    else:
        thresholds = np.unique(fire.threshold)
        if thresholds.size != 1:
            return "has one threshold per channel; a stock LIF has one threshold (vth) for the whole layer"
        edge = int(thresholds[0]) - (0 if fire.strict else 1)  # fires when v > edge
        if edge % 64:
            return f"fires at v {'>' if fire.strict else '>='} {int(thresholds[0])}, off Loihi's threshold grid (v > 64·vth) (compile with --lava-stock: it puts thresholds on the grid)"
        if edge < 0:
            return f"fires at v {'>' if fire.strict else '>='} {int(thresholds[0])}, with no input at all; a stock neuron would fire as well in the steps before its first input arrives, and its integrating consumers keep that"
        kind, params = "LIF", params | {"vth": edge // 64}
        summary = f"{kind}: du = 4095 (the current is this step's input), dv = {dv}, fires at v > {edge}"
    summary += f"; input shift {cell.shift} as weight_exp {extra:+d}" + ("; bias from the always-on neuron" if bias else "")
    return StockNeuron(kind, params, [bias] if bias else [], feed_exp[1], fire is None, summary)


def _memoryless_edge(fire, shift: int) -> np.ndarray:
    """The e with `sat(x << shift) >= θ` (or `>` when strict) exactly when x > e (x >> −shift, floor,
    for a negative shift); saturation keeps order, since |θ| fits the state."""
    theta = fire.threshold.astype(np.int64)
    if shift >= 0:
        return -((-theta) // 2**shift) - 1 if not fire.strict else theta // 2**shift  # ceil(θ/2^s) − 1, floor(θ/2^s)
    k = -shift
    return (theta + fire.strict) * 2**k - 1


def _memoryless_fire(op: Neuron, feed: Feed) -> StockNeuron | str:
    cell, fire = op.cells[0], op.fire
    if fire is None:
        return "a readout with full decay relays its graded input; a stock neuron sends only spikes"
    low, high = feed.output_range()
    reach = feed.reach()
    if reach > loihi.A_IN_MAX:
        return f"its synaptic input can reach {reach}, beyond the neuron's 16-bit a_in"
    feed_exp = loihi.encode_weights(feed.matrix.data, 0)
    if isinstance(feed_exp, str):
        return f"its synapse {feed_exp}"
    bias = _bias_synapse(f"{feed.name}:bias", feed, feed.bias, 0, feed.depth)
    if isinstance(bias, str):
        return bias
    edges = _per_neuron(_memoryless_edge(fire, cell.shift), low.size)
    neuron = _threshold_neuron(feed.name, edges, low, high, feed.depth)
    if isinstance(neuron, str):
        return neuron
    params, lift = neuron
    synapses = [s for s in (bias, lift) if s]
    return StockNeuron("LIFReset", params, synapses, feed_exp[1], summary="memoryless: LIFReset clearing u and v every step, firing where a_in exceeds its edge (per-neuron bias)" + ("; bias from the always-on neuron" if synapses else ""))


def _per_neuron(per_channel: np.ndarray, size: int) -> np.ndarray:
    """A per-channel (or shared) vector for every neuron of a channels-first layer."""
    return np.repeat(per_channel, size // per_channel.size) if per_channel.size > 1 else np.full(size, per_channel[0])


def _threshold_neuron(name: str, edges: np.ndarray, low: np.ndarray, high: np.ndarray, depth: int) -> tuple[dict, Synapse | None] | str:
    """LIFReset parameters firing where a_in > edges[o], for a_in within [low, high], and the
    synapse from the always-on neuron that lifts each a_in by r[o] >= 0 from the layer's first step.

    u and v are cleared every step, so v = 64·(a_in + r) + 64·m and it fires when a_in > vth − r − m:
    one vth >= 0 for the layer, and per neuron r + m = vth − edge, with the bias m (13 bits) at most
    vth, so that no neuron fires before its first input arrives (a_in = r = 0), and r an 8-bit
    mantissa times one power of two for the layer (the synapse's weights and weight_exp)."""
    edges = np.clip(edges, low - 1, high).astype(np.int64)  # beyond the reachable range, a neuron always or never fires
    vth = max(0, int(edges.max()))
    target = vth - edges
    over = np.maximum(target - min(loihi.BIAS_MANT[1], vth), 0)  # what the bias cannot hold
    z = 0
    while -(-int(over.max()) // 2**z) > 2**loihi.WEIGHT_BITS - 1:
        z += 1
    lift = -(-over // 2**z) * 2**z
    mant = target - lift
    if vth > loihi.VTH_MAX or mant.min() < loihi.BIAS_MANT[0]:
        return f"its firing edges span {int(edges.min())}..{int(edges.max())}, beyond what one threshold, 13-bit biases and a lift of its input can place"
    reach = max(np.abs(low + lift).max(initial=0), np.abs(high + lift).max(initial=0), lift.max(initial=0))
    if reach > loihi.A_IN_MAX:
        return f"its firing edges span {int(edges.min())}..{int(edges.max())}; lifting its input to place them would take a_in to {int(reach)}, beyond 16 bits"
    params = {"du": loihi.DECAY_UNITY - 1, "dv": loihi.DECAY_UNITY - 1, "vth": vth, "bias_mant": mant, "bias_exp": np.full(mant.size, loihi.ALIGN_SHIFT), **RESET_EVERY_STEP}
    if not lift.any():
        return params, None
    weights, exp = loihi.encode_bias_column(lift, 0)
    return params, Synapse(f"{name}:lift", "bias", sparse.csr_matrix(weights.reshape(-1, 1)), exp, depth)


def _fir(op: Neuron, feed: Feed) -> StockNeuron | str:
    cell, fire = op.cells[0], op.fire
    if fire is None:
        return "an FIR readout: its membrane is a sum over delayed inputs, which a stock neuron does not send"
    if not np.any(cell.taps):
        return "all its taps are zero: no synapse would connect it to its input"
    n = feed.matrix.shape[0]
    taps = np.stack([_per_neuron(cell.taps[:, i], n) for i in range(cell.order)], axis=1).astype(np.int64)  # [n, k]
    (a_low, a_high), alone = (_tap_range(taps, *feed.output_range(bias)) for bias in (True, False))
    reach = int(max(np.abs(r).max(initial=0) for r in (a_low, a_high) + alone))  # with the biases, and the taps' synapses alone
    if reach > loihi.A_IN_MAX:
        return f"its tap-weighted input can reach {reach}, beyond the neuron's 16-bit a_in (compile with --lava-stock: it coarsens the taps until it fits)"
    synapses = []
    for i in range(cell.order):
        delay = (cell.order - 1 - i) * cell.dilation
        if delay > loihi.MAX_DELAY or feed.depth + delay > loihi.MAX_DELAY:
            return f"its tap {i} needs a delay of {delay} (+{feed.depth} for its bias), beyond Loihi's synaptic delays (0..{loihi.MAX_DELAY})"
        powers = np.array([loihi.trailing_zeros([t]) for t in taps[:, i]])
        for p in np.unique(powers[taps[:, i] != 0]):
            rows = (taps[:, i] != 0) & (powers == p)
            odd = np.where(rows, taps[:, i] >> p, 0)
            weights = sparse.diags(odd) @ feed.matrix
            encoded = loihi.encode_weights(weights.data, int(p))
            if isinstance(encoded, str):
                return f"its tap {i} ({_odd_text(odd)}·2^{p}) times its synaptic weights {encoded}; power-of-two taps (--taps pow2, or --lava-stock) keep the products 8-bit"
            lava = weights.tocsr(copy=True)
            lava.data = encoded[0]
            synapses.append(Synapse(f"{feed.name}:tap{i}" + (f".{p}" if len(np.unique(powers[taps[:, i] != 0])) > 1 else ""), "input", lava, encoded[1], delay))
            bias = _bias_synapse(f"{synapses[-1].name}:bias", feed, odd * feed.bias, int(p), feed.depth + delay)
            if isinstance(bias, str):
                return bias
            if bias:
                synapses.append(bias)
    theta, bias = (_per_neuron(v.astype(np.int64), n) for v in (fire.threshold, cell.bias))
    edges = theta - (0 if fire.strict else 1) - bias  # h = a_in + bias fires when a_in > edge
    neuron = _threshold_neuron(feed.name, edges, a_low, a_high, feed.depth)
    if isinstance(neuron, str):
        return neuron
    params, lift = neuron
    synapses += [lift] if lift else []
    delayed = [s for s in synapses if s.source == "input"]
    delays = sorted({s.delay for s in delayed})
    summary = f"FIR: {len(delays)} nonzero taps as {len(delayed)} delayed synapses (delays {', '.join(map(str, delays))}; each tap's power of two in weight_exp) into a LIFReset clearing u and v every step"
    return StockNeuron("LIFReset", params, synapses, None, summary=summary + ("; biases through the taps from the always-on neuron" if any(s.source == "bias" for s in synapses) else ""))


def _tap_range(taps: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range of Σ_i taps[o, i]·x_o[t − D_i] for x_o within [low, high] (and 0, before step 0)."""
    low, high = np.minimum(low, 0)[:, None], np.maximum(high, 0)[:, None]
    return np.where(taps > 0, taps * low, taps * high).sum(axis=1), np.where(taps > 0, taps * high, taps * low).sum(axis=1)


def _odd_text(odd: np.ndarray) -> str:
    values = np.unique(np.abs(odd[odd != 0]))
    return str(int(values[0])) if values.size == 1 else f"up to {int(values.max())}"
