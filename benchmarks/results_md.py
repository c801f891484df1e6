"""Write benchmarks/RESULTS.md from the JSON every benchmark leaves in benchmarks/results/.

    .venv/bin/python benchmarks/results_md.py      (make bench runs it last)

Each benchmark's section states the machine, the versions and the exact command, then its table;
ratios are computed inside each benchmark's own run (side by side), never across runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from spc.text_table import render  # noqa: E402

ORDER = ["b1_training_speed", "b2_inference", "b3_compile_time", "b4_memory", "sim_speed"]
TITLES = {
    "b1_training_speed": "B1 — training speed (forward + backward of one neuron layer)",
    "b2_inference": "B2 — inference throughput of one compiled network",
    "b3_compile_time": "B3 — compile time against model size",
    "b4_memory": "B4 — peak memory against T, parallel vs stepwise form",
    "sim_speed": "spc's simulator, layer-major vs a step-by-step loop",
}


def _md_table(head, rows) -> str:
    return "```\n" + render(tuple(head), [tuple(r) for r in rows]) + "\n```"


def _spread(v: dict | None, unit: str = "", digits: int = 4) -> str:
    """A figure from repeated runs: its median and its min–max."""
    if not v:
        return ""
    return f"{v['median']:.{digits}f}{unit} ({v['min']:.{digits}f}–{v['max']:.{digits}f})"


def _b1(doc) -> str:
    """A table per T, one row per path: time and every ratio, each median (min–max) over its runs."""
    parts = []
    for steps in sorted({r["T"] for r in doc["results"]}):
        rows = []
        for r in (r for r in doc["results"] if r["T"] == steps):
            if r.get("skipped"):
                rows.append((r["path"], r["B"], "", r["skipped"], "", "", "", "", "", ""))
                continue
            dispatch = ", ".join(f"{k}: {v}" for k, v in r["dispatch"].items())
            peak = f"{r['peak_rss_mib']:.0f}" if r.get("peak_rss_mib") is not None else ""
            rows.append((r["path"], r["B"], r["seconds"]["runs"], _spread(r["seconds"]), _spread(r.get("speedup_vs_loop"), "x", 2), _spread(r.get("speedup_vs_compiled_fir"), "x", 2), _spread(r.get("over_floor"), "x", 2), f"{r['saved_x_input']:.2f}", peak, dispatch))
        head = ["path", "B", "runs", "seconds", "loop / this", "compiled FIR / this", "this / floor", "saved for backward / x", "peak MiB", "dispatch"]
        parts.append(f"### T = {steps}\n\n" + _md_table(head, rows))
    return "\n\n".join(parts) + _goals(doc)


def _goals(doc) -> str:
    goals = doc.get("targets") or doc.get("goals") or {}
    lines = []
    for text, v in goals.items():
        spread = f", min {v['min']:.2f}, max {v['max']:.2f} over {v['runs']} runs" if "min" in v else ""
        lines.append(f"- {'met' if v['met'] else 'NOT MET'} ({v.get('goal', '')}): {text} — {v['value']:.2f}{spread}")
    return "\n\n" + "\n".join(lines) if lines else ""


def _b2(doc) -> str:
    def ratio(v):
        return _spread(v, "x", 2) if isinstance(v, dict) else (f"{v:.2f}x (ratio of medians)" if v is not None else "")

    rows = [(name, r["form"], r["seconds"]["runs"], _spread(r["seconds"], "", 3), f"{r['steps_per_s']:,.0f}", ratio(r.get("time_over_sim")), ratio(r.get("time_over_floor"))) for name, r in doc["results"].items()]
    return _md_table(["runtime", "form", "runs", "seconds", "steps/s", "time / integer simulator", "time / GEMM floor"], rows) + _goals(doc)


def _b3(doc) -> str:
    rows = [(f"{r['synapses']:,}", r["width"], r["compile_s"]["runs"], _spread(r["compile_s"], "", 3), _spread(r["save_s"], "", 3), _spread(r["save_over_compile"], "x", 2), f"{r['artifact_bytes'] / 2**20:.1f}", f"{r['artifact_over_weights']:.2f}x") for r in doc["results"]]
    table = _md_table(["synapses", "width", "runs", "compile s", "save s", "save / compile", "directory MiB", "directory / float32 weights"], rows)
    resnets = [(r["model"], r["stem pooling"], "×".join(map(str, r["input"])), f"{r['synapses']:,}", r["seconds"]["runs"], _spread(r["seconds"], "", 2), ", ".join(r["targets"])) for r in doc.get("resnet18", [])]
    if resnets:
        table += "\n\nA model-zoo ResNet-18, compiled and saved as `spc compile` does (input T×B×C×H×W):\n\n" + _md_table(["model", "stem pooling", "input", "synapses", "runs", "compile + save s", "targets written"], resnets)
    return table + _goals(doc)


def _b4(doc) -> str:
    rows = [(r["T"], r["parallel"]["peak_mib"]["runs"], _spread(r["parallel"]["peak_mib"], "", 1), _spread(r["stepwise"]["peak_mib"], "", 1), _spread(r["parallel_over_stepwise_memory"], "x", 1), _spread(r["parallel"]["seconds"], "", 2), _spread(r["stepwise"]["seconds"], "", 2)) for r in doc["results"]]
    return _md_table(["T", "runs", "parallel MiB", "stepwise MiB", "parallel / stepwise", "parallel s", "stepwise s"], rows)


def _sim_speed(doc) -> str:
    rows = []
    for config, r in doc["results"].items():
        for form in ("float", "integer"):
            f = r[form]
            rows.append((config, r["T"], r["B"], r["width"], form, f["layer_major_s"]["runs"], _spread(f["layer_major_s"], "", 3), _spread(f["step_loop_s"], "", 3), _spread(f["step_loop_over_layer_major"], "x", 2), f"{f['layer_major_steps_per_s']:,.0f}"))
    return _md_table(["config", "T", "B", "width", "form", "runs", "layer-major s", "step loop s", "step loop / layer-major", "steps/s"], rows)


def _generic(doc) -> str:
    if "table" in doc:  # a benchmark that formats its own table: {"head": [...], "rows": [[...]]}
        return _md_table(doc["table"]["head"], doc["table"]["rows"])
    return "```json\n" + json.dumps(doc["results"], indent=1) + "\n```"


FORMATTERS = {"b1_training_speed": _b1, "b2_inference": _b2, "b3_compile_time": _b3, "b4_memory": _b4, "sim_speed": _sim_speed}


def _load(m: dict) -> str:
    start, end = m.get("load_average_start"), m.get("load_average_end")
    if not start or not end:
        return "machine load not recorded"
    return f"load average (1 / 5 / 15 min) {' / '.join(f'{v:.2f}' for v in start)} at the start, {' / '.join(f'{v:.2f}' for v in end)} at the end"


def section(name: str, doc: dict) -> str:
    m = doc["machine"]
    head = f"## {TITLES.get(name, name)}\n\n`{m['command']}` — {m['date']}, {m['cpu']} ({m['cores']} cores, torch threads {m['torch_threads']}), Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}; {_load(m)}"
    config = doc.get("config")
    notes = f"\n\nConfiguration: {json.dumps(config)}" if config else ""
    return f"{head}{notes}\n\n{FORMATTERS.get(name, _generic)(doc)}\n"


def main() -> None:
    found = {p.stem: json.loads(p.read_text()) for p in sorted((HERE / "results").glob("*.json")) if not p.stem.endswith("_quick")}
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    goals = [(name, text, v) for name in names for text, v in (found[name].get("targets") or {}).items()]
    parts = ["# Benchmark results\n", "Generated by `make bench` (benchmarks/results_md.py) from benchmarks/results/*.json. Every comparison ran side by side in one process or one invocation, its candidates warmed, repeated and interleaved; every figure is the median of its runs with their min–max in parentheses, every ratio the median (min–max) of per-round ratios, and each section states its number of runs and the machine's load average.\n"]
    parts.append("## Goals\n\n" + "\n".join(f"- {'met' if v['met'] else 'NOT MET'} ({v.get('goal', '')}, {name}): {text} — {v['value']:.2f}" for name, text, v in goals) + "\n")
    parts += [section(name, found[name]) for name in names]
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    for name, text, v in goals:
        print(f"{'met    ' if v['met'] else 'NOT MET'}  {name}: {text}: {v['value']:.2f}")
    print(f"wrote {HERE / 'RESULTS.md'} ({len(names)} benchmarks, {sum(v['met'] for _, _, v in goals)} of {len(goals)} goals met)")


if __name__ == "__main__":
    main()
