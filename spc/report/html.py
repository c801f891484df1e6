"""`spc verify --report R.html`: one self-contained HTML page drawn from the JSON report.

Sections (by id): summary, equivalence (every comparison), mismatches (per-layer mismatch bars),
rasters (spike rasters of the forms overlaid for one sample), errors (membrane error histograms),
time-constants (requested vs realised per channel), accuracy (when labels were given).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from spc.report import svg

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 980px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 12px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
.pass { color: #2ca02c; font-weight: bold; } .fail { color: #d62728; font-weight: bold; } .note { color: #666; font-size: 12px; }
"""


def _table(head: list[str], rows: list[list], row_attrs: list[dict] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in (row_attrs[i] if row_attrs else {}).items())
        out.append(f"<tr{attrs}>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>")
    return "".join(out) + "</table>"


def _label(c: dict) -> str:
    return f"{c['layer']}: {c['reference']} → {c['candidate']} ({c['mode']})"


def _result(c: dict) -> str:
    if c["kind"] == "fidelity":
        return "-" if c["agreement"] is None else f"{100 * c['agreement']:.2f}% agree"
    return "ok" if c["passed"] else ("FAIL" if c["gating"] else "differs (not gating)")


def _summary(report: dict) -> str:
    verdict = '<span class="pass">PASSED</span>' if report["passed"] else '<span class="fail">FAILED</span>'
    times = ", ".join(f"{form} {seconds:.3f} s" for form, seconds in report["wall_time_s"].items())
    return f'<section id="summary"><h2>Summary</h2><p>{verdict} — {report["samples"]} samples, {report["ties"]} ties (counted, explained: a reference membrane within tolerance of its threshold).</p><p class="note">Equivalence and exact comparisons gate the verdict; float → integer fidelity is measured and reported. Wall time: {escape(times)}.</p></section>'


def _equivalence(report: dict) -> str:
    head = ["reference", "candidate", "layer", "mode", "kind", "spikes", "mismatches", "ties", "max |Δh|", "first divergence", "result"]
    rows, attrs = [], []
    for c in report["comparisons"]:
        first = "-" if c["first_mismatch"] is None else "t={step} b={sample} n={neuron}".format(**c["first_mismatch"])
        err = "-" if c["max_abs_error"] is None else f"{c['max_abs_error']:.2e}"
        rows.append([c["reference"], c["candidate"], c["layer"], c["mode"], c["kind"], c["spikes_compared"], c["spike_mismatches"], c["ties"], err, first, _result(c)])
        attrs.append({"layer": c["layer"], "reference": c["reference"], "candidate": c["candidate"], "mode": c["mode"], "mismatches": c["spike_mismatches"]})
    notes = "".join(f'<p class="note">{escape(_label(c))}: {escape(c["note"])}</p>' for c in report["comparisons"] if c["note"])
    return f'<section id="equivalence"><h2>Equivalence table</h2>{_table(head, rows, attrs)}{notes}</section>'


def _mismatches(report: dict) -> str:
    spiking = [c for c in report["comparisons"] if c["spikes_compared"]]
    chart = svg.bar_chart([_label(c) for c in spiking], [c["spike_mismatches"] / c["spikes_compared"] for c in spiking], "share of differing spikes per layer", fmt=lambda v: f"{100 * v:.3f}%")
    return f'<section id="mismatches"><h2>Spike mismatches per layer</h2><p class="note">Share of compared spikes that differ (ties excluded), per comparison.</p>{chart}</section>'


def _rasters(report: dict) -> str:
    parts = []
    for layer, r in report["rasters"].items():
        title = f"layer {layer}, sample {r['sample']}, first {r['neurons']} neurons"
        parts.append(f'<h3 data-layer="{escape(layer)}">{escape(title)}</h3>' + svg.raster(r["steps"], r["neurons"], r["forms"], title))
    return f'<section id="rasters"><h2>Spike rasters</h2><p class="note">Grey: every form spikes; coloured: the forms disagree, and each coloured mark is a form that spikes there.</p>{"".join(parts) or "<p>No spiking layers.</p>"}</section>'


def _bin_labels(edges: list[int]) -> list[str]:
    return ["0", f"<1e{edges[0]}"] + [f"1e{e}" for e in edges[:-1]] + [f"≥1e{edges[-1]}"]


def _errors(report: dict) -> str:
    labels = _bin_labels(report["histogram_edges_log10"])
    parts = []
    for c in report["comparisons"]:
        if c["histogram"]:
            parts.append(f'<h3 data-label="{escape(_label(c))}">{escape(_label(c))}</h3>' + svg.histogram(c["histogram"], labels, f"|Δh| histogram, {_label(c)}"))
    return f'<section id="errors"><h2>Membrane error histograms</h2><p class="note">Counts of |Δh| (float units) per decade, log-scaled bars.</p>{"".join(parts) or "<p>No membranes compared.</p>"}</section>'


def _tau(value) -> str:
    return "∞" if value is None else f"{value:.4g}"


def _time_constants(report: dict) -> str:
    rows, attrs, labels, errors = [], [], [], []
    for r in report["time_constants"]:
        for ch, (req, got, err) in enumerate(zip(r["requested"], r["realised"], r["relative_error"])):
            rows.append([r["layer"], r["cell"], r["mode"], ch, _tau(req), _tau(got), "-" if err is None else f"{100 * err:.2f}%"])
            attrs.append({"layer": r["layer"], "channel": ch, "requested": req, "realised": got})
        labels.append(f"{r['layer']} cell {r['cell']} ({r['mode']})")
        errors.append(max((e for e in r["relative_error"] if e is not None), default=0.0))
    if not rows:
        return '<section id="time-constants"><h2>Time constants</h2><p>No leaky cells, or no integer form.</p></section>'
    chart = svg.bar_chart(labels, errors, "largest relative error of the realised time constant", fmt=lambda v: f"{100 * v:.2f}%")
    return f'<section id="time-constants"><h2>Time constants, requested vs realised</h2><p class="note">τ = 1/(1 − decay) steps.</p>{chart}{_table(["layer", "cell", "decay form", "channel", "requested τ", "realised τ", "relative error"], rows, attrs)}</section>'


def _accuracy(report: dict) -> str:
    accuracy = report["accuracy"]
    if not accuracy:
        return '<section id="accuracy"><h2>Accuracy</h2><p>No labels given (--labels Y.npy).</p></section>'
    rows = [[form, f"{100 * value:.2f}%"] for form, value in accuracy.items()]
    chart = svg.bar_chart(list(accuracy), list(accuracy.values()), "accuracy per form", fmt=lambda v: f"{100 * v:.2f}%")
    return f'<section id="accuracy"><h2>Accuracy</h2>{_table(["form", "accuracy"], rows, [{"form": f, "value": v} for f, v in accuracy.items()])}{chart}</section>'


def render(report: dict, title: str = "spc verification report") -> str:
    sections = [_summary(report), _equivalence(report), _mismatches(report), _rasters(report), _errors(report), _time_constants(report), _accuracy(report)]
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{"".join(sections)}</body></html>\n'


def write_html(report: dict, path: str | Path, title: str = "spc verification report") -> None:
    Path(path).write_text(render(report, title), encoding="utf-8")
