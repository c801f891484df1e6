"""The few charts the HTML report draws, as inline SVG (no plotting library, no scripts).

Every mark carries its number in a `data-value` attribute, so a test can check that the picture
shows exactly the report's data. Charts have a natural width and shrink with the page (viewBox);
every bar chart has an axis naming its two ends, so a bar is read against its scale.
"""

from __future__ import annotations

import math
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
FONT = 'font-family="sans-serif" font-size="11"'
AXIS = "#999"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'


def bar_chart(labels: list[str], values: list[float], title: str, fmt=lambda v: f"{v:g}", origin: float = 0.0, full: float | None = None, width: int = 640) -> str:
    """Horizontal bars, one per label, from `origin` to the value; the full width stands for `full`
    (default: the largest value). The axis under the bars is labelled at both ends."""
    row, left, right = 18, 260, 80
    full = max(values, default=0.0) if full is None else full
    if not full > origin:
        full = origin + 1.0
    span = width - left - right
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 6 + i * row
        length = span * min(max((value - origin) / (full - origin), 0.0), 1.0)
        body.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end" {FONT}>{escape(label)}</text>')
        body.append(f'<rect class="bar" x="{left}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" fill="{COLOURS[0]}" data-label="{escape(label)}" data-value="{value!r}"/>')
        body.append(f'<text x="{left + length + 4:.1f}" y="{y + 12}" {FONT}>{escape(fmt(value))}</text>')
    axis = 6 + len(labels) * row + 2
    body.append(f'<line x1="{left}" y1="{axis}" x2="{left + span}" y2="{axis}" stroke="{AXIS}"/>')
    for x, value, anchor in ((left, origin, "start"), (left + span, full, "end")):
        body.append(f'<line x1="{x}" y1="{axis}" x2="{x}" y2="{axis + 4}" stroke="{AXIS}"/>')
        body.append(f'<text class="axis" x="{x}" y="{axis + 15}" text-anchor="{anchor}" {FONT} data-value="{value!r}">{escape(fmt(value))}</text>')
    return _svg(width, axis + 20, body, title)


def raster(steps: int, neurons: int, forms: dict[str, list[list[int]]], title: str, width: int = 640) -> str:
    """Spikes (step, neuron) of several forms overlaid: where every form spikes, one grey dot;
    where they disagree, a coloured mark for each form that spikes."""
    height, left, top = 44 + 5 * neurons, 40, 22
    sx, sy = (width - left - 10) / max(steps, 1), 5
    names = list(forms)
    who: dict[tuple[int, int], list[str]] = {}
    for form, points in forms.items():
        for t, n in points:
            who.setdefault((t, n), []).append(form)
    body = [f'<rect x="{left}" y="{top}" width="{width - left - 10}" height="{sy * neurons}" fill="none" stroke="{AXIS}"/>']
    legend = [("#888", "all forms")] + [(COLOURS[k % len(COLOURS)], name) for k, name in enumerate(names)]
    for k, (colour, text) in enumerate(legend):
        body.append(f'<text x="{left + 120 * k}" y="12" fill="{colour}" {FONT}>● {escape(text)}</text>')
    for (t, n), spiking in sorted(who.items()):
        agree = len(spiking) == len(names)
        marks = [("#888", 0.5)] if agree else [(COLOURS[names.index(f) % len(COLOURS)], (names.index(f) + 0.5) / len(names)) for f in spiking]
        for colour, at in marks:
            r = 1.4 if agree else 2.2
            body.append(f'<circle class="spike" cx="{left + (t + at) * sx:.1f}" cy="{top + n * sy + 2.5:.1f}" r="{r}" fill="{colour}" data-forms="{escape(",".join(spiking))}" data-value="{t},{n}"/>')
    body.append(f'<text x="{left}" y="{height - 4}" {FONT}>step 0 … {steps - 1} (x); neuron 0 … {neurons - 1} (y)</text>')
    return _svg(width, height, body, title)


def _count(n: int) -> str:
    return str(n) if n < 1000 else f"1e{round(math.log10(n))}"


def histogram(counts: list[int], labels: list[str], title: str, width: int = 640, height: int = 120) -> str:
    """Vertical bars over labelled bins, heights on a log scale of the counts, with a y axis of
    counts at powers of ten."""
    left, bottom = 40, height - 28
    bar = (width - left - 10) / max(len(counts), 1)
    decades = max(1, math.ceil(math.log10(max(max(counts, default=1), 1))))
    top = math.log10(10**decades + 1)

    def y(count: float) -> float:
        return bottom - (bottom - 8) * math.log10(count + 1) / top

    body = [f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="{AXIS}"/>', f'<line x1="{left}" y1="8" x2="{left}" y2="{bottom}" stroke="{AXIS}"/>']
    for k in range(0, decades + 1, math.ceil((decades + 1) / 4)):  # at most four labelled ticks
        tick = 10**k
        body.append(f'<line x1="{left - 3}" y1="{y(tick):.1f}" x2="{width - 10}" y2="{y(tick):.1f}" stroke="#eee"/>')
        body.append(f'<text class="axis" x="{left - 5}" y="{y(tick) + 4:.1f}" text-anchor="end" {FONT} data-value="{tick}">{_count(tick)}</text>')
    for i, (count, label) in enumerate(zip(counts, labels)):
        x = left + i * bar
        body.append(f'<rect class="bin" x="{x + 1:.1f}" y="{y(count):.1f}" width="{bar - 2:.1f}" height="{bottom - y(count):.1f}" fill="{COLOURS[1]}" data-label="{escape(label)}" data-value="{count}"><title>{escape(label)}: {count}</title></rect>')
        if i % 4 == 0:
            body.append(f'<text x="{x:.1f}" y="{bottom + 14}" {FONT}>{escape(label)}</text>')
    body.append(f'<text x="{left}" y="{height - 2}" {FONT}>|Δh| per decade (x); count, log scale (y)</text>')
    return _svg(width, height, body, title)
