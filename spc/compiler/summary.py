"""A layer-by-layer summary of a compiled model (what `spc inspect` prints)."""

from __future__ import annotations

import math

from spc.compiler import ir
from spc.compiler.artifact import Compiled
from spc.compiler.cells import DelayLine, Neuron, StepIndexed
from spc.text_table import render


def describe_neuron(neuron: Neuron) -> str:
    parts = []
    for cell in neuron.cells:
        if isinstance(cell, DelayLine):
            parts.append(f"DelayLine(k={cell.order}{f', d={cell.dilation}' if cell.dilation > 1 else ''})")
        elif isinstance(cell, StepIndexed):
            parts.append(f"StepIndexed(k={cell.order}, T<={cell.time_steps})")
        else:
            parts.append(cell.kind)
    fire = neuron.fire
    if fire is None:
        parts.append("readout")
    else:
        rule = "Bernoulli" if fire.stochastic else (">" if fire.strict else ">=")
        parts.append(f"Fire({rule}{'' if fire.reset == 'none' else ', reset ' + fire.reset})")
    return " → ".join(parts)


def connections(op: ir.Op, out_shape: tuple[int, ...]) -> int:
    """Synapses: input-output pairs with a weight (a convolution's shared weights counted per use)."""
    if isinstance(op, ir.Linear):
        return op.weight.size
    if isinstance(op, ir.Conv):
        return math.prod(out_shape) * math.prod(op.weight.shape[1:])
    return 0


def layer_rows(compiled: Compiled) -> list[dict]:
    rows = []
    graph = compiled.stepwise
    for node in graph.nodes:
        shape = graph.shapes[node.name]
        row = {"layer": node.name, "op": node.op.kind, "shape": shape, "neurons": 0, "synapses": connections(node.op, shape), "state": 0, "detail": ""}
        if isinstance(node.op, Neuron):
            layer = node.name.partition(":")[0]  # a branch `layer:part` belongs to its layer
            origin = compiled.parallel.node(layer).op.kind
            row.update(op=origin, neurons=math.prod(shape), state=math.prod(shape) * sum(c.state_size for c in node.op.cells), detail=describe_neuron(node.op))
        rows.append(row)
    return rows


def lava_placement(compiled: Compiled) -> dict:
    """The Lava target's placement of every synapse and neuron layer (docs/loihi2-stock.md): the
    manifest's, or for a model compiled without an output directory, planned from its integer graph;
    {} where the Lava target was not emitted or cannot express the model."""
    targets = compiled.manifest.get("targets")
    if targets is not None:
        return targets.get("lava", {}).get("placement", {})
    if compiled.integer is None:
        return {}
    from spc.errors import SpcError
    from spc.runtime.lava.plan import plan_network

    try:
        return plan_network(compiled.integer).placement_json()
    except SpcError:
        return {}


LOIHI_LABELS = {"stock": "Loihi 2: stock", "cpu": "CPU only: spc process"}


def _processes(names: list[str]) -> str:
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    return ", ".join(n if c == 1 else f"{n}×{c}" for n, c in counts.items())


def placement_summary(compiled: Compiled) -> str:
    """Which neuron layers run on Lava's stock processes (Loihi 2) and why the others cannot."""
    placement = lava_placement(compiled)
    neurons = [n.name for n in (compiled.integer or compiled.stepwise).neurons() if n.name in placement]
    if not neurons:
        return ""
    stock = [n for n in neurons if placement[n]["loihi2"] == "stock"]
    rest = "" if len(stock) == len(neurons) else "; the others in spc's process, CPU only"
    lines = [f"Lava: {len(stock)} of {len(neurons)} neuron layers on Lava's stock processes, which Loihi 2 runs{rest} (docs/loihi2-stock.md)"]
    for name in neurons:
        p = placement[name]
        how = f"{_processes(p['processes'])}: {p['reason']}" if p["loihi2"] == "stock" else p["reason"]
        lines.append(f"  {name}: {LOIHI_LABELS[p['loihi2']]} — {how}")
    return "\n".join(lines)


def summary_table(compiled: Compiled) -> str:
    rows = layer_rows(compiled)
    placement = lava_placement(compiled)
    head = ("layer", "op", "per-step shape", "neurons", "synapses", "state", "stepwise form") + (("Lava",) if placement else ())
    loihi = lambda r: (LOIHI_LABELS[placement[r["layer"]]["loihi2"]] if r["layer"] in placement else "",) if placement else ()  # noqa: E731
    table = render(head, [(r["layer"], r["op"], "×".join(map(str, r["shape"])), r["neurons"] or "", r["synapses"] or "", r["state"] or "", r["detail"]) + loihi(r) for r in rows])
    totals = f"total: {sum(r['neurons'] for r in rows)} neurons, {sum(r['synapses'] for r in rows)} synapses, {sum(r['state'] for r in rows)} state values per sample"
    steps = compiled.stepwise.time_steps
    limit = f"runs for at most T = {steps} steps (time-indexed layers)" if steps else "runs for any number of steps"
    return "\n".join([table, totals, limit] + ([placement_summary(compiled)] if placement else []))


def time_constant_rows(quantization: dict | None) -> list[dict]:
    """One row per leaky cell: requested and realised time constants per channel."""
    rows = []
    for name, layer in (quantization or {}).get("layers", {}).items():
        for i, cell in enumerate(layer.get("cells", [])):
            if cell.get("cell") == "Leaky":
                rows.append({"layer": name, "cell": i, "mode": cell["mode"], "requested": cell["requested_tau"], "realised": cell["realised_tau"], "relative_error": cell["tau_relative_error"]})
    return rows


def _tau_row(row: dict) -> tuple:
    def span(values):
        shown = ["∞" if v is None else f"{v:.4g}" for v in values]
        return shown[0] if len(set(shown)) == 1 else f"{min(shown)}..{max(shown)}"

    errors = [e for e in row["relative_error"] if e is not None]
    return (row["layer"], f"{row['cell']} ({row['mode']})", len(row["requested"]), span(row["requested"]), span(row["realised"]), f"{100 * max(errors, default=0):.2f}%")


def time_constant_table(quantization: dict | None) -> str:
    """Requested vs realised time constants of every leaky cell ('' when there are none)."""
    rows = time_constant_rows(quantization)
    if not rows:
        return ""
    head = ("layer", "cell", "channels", "requested τ", "realised τ", "max rel. error")
    return "time constants (steps), requested -> realised:\n" + render(head, [_tau_row(r) for r in rows])


def _stock_notes(layer: dict) -> list[str]:
    """What --lava-stock changed in a layer's quantization (recorded as "lava_stock" notes)."""
    notes = [c["lava_stock"] for c in layer.get("cells", []) if "lava_stock" in c]
    threshold = layer.get("threshold", {})
    if "lava_stock" in threshold:
        errors = [e for e in threshold["relative_error"] if e is not None]
        notes.append(f"threshold {threshold['lava_stock']} (relative error {100 * max(errors, default=0):.4f}%)")
    return notes


def integer_summary(compiled: Compiled) -> str:
    """The integer form's options, per-layer scales and shifts, and its time constants."""
    q = compiled.quantization
    if q is None:
        return "no integer form (compiled with --float-only)"
    opts = q["options"]
    lines = [f"integer form: decay {opts['decay']}, taps {opts['taps']}, {opts['width']}-bit state, {opts['weight_bits']}-bit weights" + (" (per output channel)" if opts["per_channel"] else "")]
    rows = []
    for name, layer in q["layers"].items():
        if layer.get("kind") == "Neuron":
            shifts = [str(c["shift"]) for c in layer["cells"] if "shift" in c]
            scale = layer["membrane_scale"]
            rate = layer.get("float_rate"), layer.get("integer_rate")
            rows.append((name, "Neuron", f"{min(scale):.3g}" + ("" if len(set(scale)) == 1 else f"..{max(scale):.3g}"), ",".join(shifts) or "-", "-" if rate[0] is None else f"{rate[0]:.3f} -> {rate[1]:.3f}", layer.get("saturations", 0)))
        elif "weight_exponent" in layer:
            exps = layer["weight_exponent"]
            rows.append((name, layer["kind"], "2^" + (str(exps[0]) if len(set(exps)) == 1 else f"{min(exps)}..{max(exps)}"), "-", "-", "-"))
    lines.append(render(("layer", "op", "scale", "input shifts", "firing rate float -> integer (calibration)", "saturations"), rows))
    table = time_constant_table(q)
    if table:
        lines.append(table)
    choices = [f"  {name}: {note}" for name, layer in q["layers"].items() for note in _stock_notes(layer)]
    if choices:
        lines += ["scales chosen for Lava's stock processes (--lava-stock):"] + choices
    lines += [f"warning: {w}" for w in q.get("warnings", [])]
    return "\n".join(lines)


def xylo_summary(compiled: Compiled) -> str:
    """How each layer maps onto Xylo and what the network takes of it ('' unless compiled for Xylo)."""
    xylo = (compiled.quantization or {}).get("xylo")
    if not xylo:
        return ""
    from spc.compiler.xylo import LIMITS

    use = xylo["resources"]
    taken = ", ".join(f"{use[k]}/{LIMITS[k]} {k}" for k in ("input channels", "hidden neurons", "output neurons", "fan-out"))
    lines = [f"xylo: {use['device']}, uses {taken}"]
    for name, layer in xylo["layers"].items():
        lines.append(f"xylo: layer '{name}' {layer['status']} ({layer['role']})" + (": " + "; ".join(layer["notes"]) if layer["notes"] else ""))
    return "\n".join(lines)

