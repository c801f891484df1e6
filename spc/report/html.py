"""`spc verify --report R.html`: one self-contained HTML page drawn from the JSON report.

Sections (by id): summary, compile (the model, options, targets and spc versions), equivalence
(every comparison), mismatches (per-layer mismatch bars), rasters (spike rasters of the forms
overlaid for one sample), errors (membrane error histograms; those with a single filled bin are one
line each), time-constants (requested vs realised per channel), saturations (integer saturation
events), approximations (opted in at compile time), accuracy (when labels were given).

The page reads on a phone: charts shrink with the page and wide tables scroll inside their box.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from spc.report import svg

STYLE = """
body { font-family: sans-serif; margin: 0 auto; padding: 1em; max-width: 980px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1em; }
h1, h2, h3, p, li, summary { overflow-wrap: anywhere; }
svg { display: block; max-width: 100%; height: auto; }
.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 12px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
.prose td { white-space: normal; overflow-wrap: anywhere; } .prose td:first-child { white-space: nowrap; }
.pass { color: #2ca02c; font-weight: bold; } .fail { color: #d62728; font-weight: bold; } .note { color: #666; font-size: 12px; }
"""

SMALLEST_FULL_SCALE = 0.01
"""Bar charts of shares (spike mismatches, time-constant errors) span at least 0 … 1%, so a tiny
share draws as a tiny bar rather than a full-width one."""


def _table(head: list[str], rows: list[list], row_attrs: list[dict] | None = None, prose: bool = False) -> str:
    """A table in a box that scrolls sideways when the page is narrower; `prose`: long cells wrap."""
    out = [f'<div class="table{" prose" if prose else ""}"><table><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in (row_attrs[i] if row_attrs else {}).items())
        out.append(f"<tr{attrs}>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>")
    return "".join(out) + "</table></div>"


def _share(value: float) -> str:
    """A share as a percentage with three significant digits: 3.5e-5 is 0.0035%, not 0.00%."""
    return "0%" if value == 0 else f"{100 * value:.3g}%"


def _label(c: dict) -> str:
    return f"{c['layer']}: {c['reference']} → {c['candidate']} ({c['mode']})"


def _result(c: dict) -> str:
    if c["kind"] == "fidelity":
        return "-" if c["agreement"] is None else f"{100 * c['agreement']:.2f}% agree"
    return "ok" if c["passed"] else ("FAIL" if c["gating"] else "differs (not gating)")


def _summary(report: dict) -> str:
    verdict = '<span class="pass">PASSED</span>' if report["passed"] else '<span class="fail">FAILED</span>'
    times = ", ".join(f"{form} {seconds:.3f} s" for form, seconds in report["wall_time_s"].items())
    return f'<section id="summary"><h2>Summary</h2><p>{verdict} — {report["samples"]} samples, {report["ties"]} ties (counted, explained: a reference membrane within tolerance of its threshold).</p><p class="note">Equivalence and exact comparisons gate the verdict; float → integer fidelity is measured and reported. Wall time: {escape(times)}. Verified by spc {escape(str(report.get("spc_version")))}.</p></section>'


def _compile(report: dict) -> str:
    compiled = report.get("compiled") or {}
    rows = [["model", compiled.get("model")], ["compiled by", f"spc {compiled.get('spc_version')}"], ["verified by", f"spc {report.get('spc_version')}"], ["example input shape", compiled.get("example_input_shape")]]
    options = compiled.get("options") or {}
    rows.append(["options", ", ".join(f"{key} {value if isinstance(value, str) else json.dumps(value)}" for key, value in options.items())])
    for target, entry in (compiled.get("targets") or {}).items():
        rows.append([f"target {target}", ", ".join(entry["files"]) if "files" in entry else f"skipped: {entry.get('skipped', '')}"])
    return f'<section id="compile"><h2>Compiled with</h2>{_table(["", "value"], rows, [{"key": r[0]} for r in rows], prose=True)}</section>'


def _equivalence(report: dict) -> str:
    head = ["reference", "candidate", "layer", "mode", "kind", "spikes", "mismatches", "ties", "max |Δh|", "first divergence", "result"]
    rows, attrs = [], []
    for c in report["comparisons"]:
        first = "-" if c["first_mismatch"] is None else "t={step} b={sample} n={neuron}".format(**c["first_mismatch"])
        err = "-" if c["max_abs_error"] is None else f"{c['max_abs_error']:.2e}"
        counts = [c["spikes_compared"], c["spike_mismatches"], c["ties"]] if c.get("spiking", True) else ["-", "-", "-"]
        rows.append([c["reference"], c["candidate"], c["layer"], c["mode"], c["kind"], *counts, err, first, _result(c)])
        attrs.append({"layer": c["layer"], "reference": c["reference"], "candidate": c["candidate"], "mode": c["mode"], "mismatches": c["spike_mismatches"]})
    notes = "".join(f'<p class="note">{escape(_label(c))}: {escape(c["note"])}</p>' for c in report["comparisons"] if c["note"])
    return f'<section id="equivalence"><h2>Equivalence table</h2>{_table(head, rows, attrs)}{notes}</section>'


def _mismatches(report: dict) -> str:
    spiking = [c for c in report["comparisons"] if c["spikes_compared"]]
    shares = [c["spike_mismatches"] / c["spikes_compared"] for c in spiking]
    chart = svg.bar_chart([_label(c) for c in spiking], shares, "share of differing spikes per layer", fmt=_share, full=max([SMALLEST_FULL_SCALE, *shares]))
    return f'<section id="mismatches"><h2>Spike mismatches per layer</h2><p class="note">Share of compared spikes that differ (ties excluded), per comparison; the axis spans at least 0 … 1%.</p>{chart}</section>'


def _rasters(report: dict) -> str:
    parts = []
    for layer, r in report["rasters"].items():
        title = f"layer {layer}, sample {r['sample']}, first {r['neurons']} neurons"
        parts.append(f'<h3 data-layer="{escape(layer)}">{escape(title)}</h3>' + svg.raster(r["steps"], r["neurons"], r["forms"], title))
    return f'<section id="rasters"><h2>Spike rasters</h2><p class="note">Grey: every form spikes; coloured: the forms disagree, and each coloured mark is a form that spikes there.</p>{"".join(parts) or "<p>No spiking layers.</p>"}</section>'


def _bin_labels(edges: list[int]) -> list[str]:
    return ["0", f"<1e{edges[0]}"] + [f"1e{e}" for e in edges[:-1]] + [f"≥1e{edges[-1]}"]


def _bin_range(labels: list[str], edges: list[int], i: int) -> str:
    """What bin i holds, in words."""
    if i == 0:
        return "exactly 0"
    if i == 1:
        return f"below 1e{edges[0]}"
    if i == len(labels) - 1:
        return f"1e{edges[-1]} or more"
    return f"in [1e{edges[i - 2]}, 1e{edges[i - 1]})"


def _errors(report: dict) -> str:
    edges = report["histogram_edges_log10"]
    labels = _bin_labels(edges)
    charts, single = [], []
    for c in report["comparisons"]:
        if not c["histogram"]:
            continue
        filled = [i for i, n in enumerate(c["histogram"]) if n]
        if len(filled) <= 1:  # one bar: a sentence says it
            where = _bin_range(labels, edges, filled[0]) if filled else "none"
            single.append(f'<li data-label="{escape(_label(c))}" data-bin="{filled[0] if filled else ""}">{escape(_label(c))}: all {sum(c["histogram"]):,} values {escape(where)}</li>')
        else:
            charts.append(f'<h3 data-label="{escape(_label(c))}">{escape(_label(c))}</h3>' + svg.histogram(c["histogram"], labels, f"|Δh| histogram, {_label(c)}"))
    if single:
        charts.append(f'<details id="single-bin"><summary>{len(single)} comparisons whose every |Δh| falls in one bin</summary><ul>{"".join(single)}</ul></details>')
    return f'<section id="errors"><h2>Membrane error histograms</h2><p class="note">Counts of |Δh| (float units) per decade, on a log scale.</p>{"".join(charts) or "<p>No membranes compared.</p>"}</section>'


def _tau(value) -> str:
    return "∞" if value is None else f"{value:.4g}"


def _time_constants(report: dict) -> str:
    rows, attrs, labels, errors = [], [], [], []
    for r in report["time_constants"]:
        for ch, (req, got, err) in enumerate(zip(r["requested"], r["realised"], r["relative_error"])):
            rows.append([r["layer"], r["cell"], r["mode"], ch, _tau(req), _tau(got), "-" if err is None else _share(err)])
            attrs.append({"layer": r["layer"], "channel": ch, "requested": req, "realised": got})
        labels.append(f"{r['layer']} cell {r['cell']} ({r['mode']})")
        errors.append(max((e for e in r["relative_error"] if e is not None), default=0.0))
    if not rows:
        return '<section id="time-constants"><h2>Time constants</h2><p>No leaky cells, or no integer form.</p></section>'
    chart = svg.bar_chart(labels, errors, "largest relative error of the realised time constant", fmt=_share, full=max([SMALLEST_FULL_SCALE, *errors]))
    return f'<section id="time-constants"><h2>Time constants, requested vs realised</h2><p class="note">τ = 1/(1 − decay) steps; the axis spans at least 0 … 1%.</p>{chart}{_table(["layer", "cell", "decay form", "channel", "requested τ", "realised τ", "relative error"], rows, attrs)}</section>'


def _saturations(report: dict) -> str:
    verified, calibration = report.get("saturations") or {}, report.get("calibration_saturations") or {}
    layers = list(dict.fromkeys([*verified, *calibration]))
    if not layers:
        return '<section id="saturations"><h2>Saturation events</h2><p>No integer form.</p></section>'
    rows = [[layer, verified.get(layer, "-"), calibration.get(layer, "-")] for layer in layers]
    total = sum(verified.values())
    summary = "No value of the integer form was clipped to its state width." if total == 0 else f"{total:,} values of the integer form were clipped to its state width (docs/integer-spec.md, sat_W)."
    return f'<section id="saturations"><h2>Saturation events</h2><p class="note">{summary}</p>{_table(["layer", "on this input", "on the calibration data"], rows, [{"layer": r[0], "events": r[1]} for r in rows])}</section>'


def _approximations(report: dict) -> str:
    approximations = report.get("approximations") or []
    if not approximations:
        return '<section id="approximations"><h2>Approximations</h2><p>None: every form computes the model (the integer form up to quantization).</p></section>'
    rows = [[a["layer"], a["kind"], a["what"]] for a in approximations]
    return f'<section id="approximations"><h2>Approximations</h2><p class="note">Opted in at compile time; the torch-model → parallel rows measure them.</p>{_table(["layer", "kind", "what"], rows, [{"layer": a["layer"]} for a in approximations], prose=True)}</section>'


def _accuracy_axis(values: list[float]) -> tuple[float, float]:
    """An axis for accuracies on a 0.5-point grid, from below the lowest to above the highest value,
    so that 97.5% and 98.06% look different."""
    low, high = min(values), max(values)
    spread = max(high - low, 0.01)
    origin = max(0.0, math.floor((low - spread) / 0.005) * 0.005)
    full = min(1.0, math.ceil((high + spread / 4) / 0.005) * 0.005)
    return origin, max(full, origin + 0.005)


def _accuracy(report: dict) -> str:
    accuracy = report["accuracy"]
    if not accuracy:
        return '<section id="accuracy"><h2>Accuracy</h2><p>No labels given (--labels Y.npy).</p></section>'
    rows = [[form, f"{100 * value:.2f}%"] for form, value in accuracy.items()]
    origin, full = _accuracy_axis(list(accuracy.values()))
    chart = svg.bar_chart(list(accuracy), list(accuracy.values()), "accuracy per form", fmt=lambda v: f"{100 * v:.2f}%", origin=origin, full=full)
    return f'<section id="accuracy"><h2>Accuracy</h2>{_table(["form", "accuracy"], rows, [{"form": f, "value": v} for f, v in accuracy.items()])}<p class="note">The bars start at {100 * origin:.1f}%, not 0.</p>{chart}</section>'


def render(report: dict, title: str = "spc verification report") -> str:
    sections = [_summary(report), _compile(report), _equivalence(report), _mismatches(report), _rasters(report), _errors(report), _time_constants(report), _saturations(report), _approximations(report), _accuracy(report)]
    head = f'<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title><style>{STYLE}</style>'
    return f'<!DOCTYPE html><html lang="en"><head>{head}</head><body><h1>{escape(title)}</h1>{"".join(sections)}</body></html>\n'


def write_html(report: dict, path: str | Path, title: str = "spc verification report") -> None:
    Path(path).write_text(render(report, title), encoding="utf-8")
