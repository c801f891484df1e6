"""The HTML report renders, has every section, its figures show exactly the JSON's numbers against
labelled scales, and headless Chromium lays it out within a phone's width."""

import json
import re
import shutil
import subprocess
from html import escape, unescape
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import spc
from spc.cli import main
from spc.report import html, svg


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements, self.section = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
        self.elements.append((self.section, tag, attrs))


SECTIONS = ["summary", "compile", "equivalence", "mismatches", "rasters", "errors", "time-constants", "saturations", "approximations", "accuracy"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), spc.SlidingPSN(k=3), nn.Linear(10, 10), spc.LIF(tau=3.0), nn.Linear(10, 3), spc.LI())
    x = (np.random.default_rng(0).random((8, 5, 6)) < 0.5).astype(np.float32)
    spc.compile(model, x, tmp / "out", calib=x, weight_bits=3)  # coarse weights: the integer form differs visibly
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", np.array([0, 1, 2, 0, 1]))
    assert main(["verify", str(tmp / "out"), "--input", str(tmp / "x.npy"), "--labels", str(tmp / "y.npy"), "--json", str(tmp / "r.json"), "--report", str(tmp / "r.html"), "--raster-sample", "3"]) == 0
    parser = _Elements()
    parser.feed((tmp / "r.html").read_text())
    return json.loads((tmp / "r.json").read_text()), parser.elements, tmp / "r.html"


def _in(elements, section, tag, cls=None):
    return [a for s, t, a in elements if s == section and t == tag and (cls is None or a.get("class") == cls)]


def test_every_section_is_present(report):
    _, elements, _ = report
    sections = [a["id"] for s, t, a in elements if t == "section"]
    assert sections == SECTIONS


def test_tables_and_bars_match_the_json(report):
    data, elements, _ = report
    rows = [a for a in _in(elements, "equivalence", "tr") if "data-layer" in a]
    assert [(r["data-layer"], r["data-reference"], r["data-candidate"], int(r["data-mismatches"])) for r in rows] == [(c["layer"], c["reference"], c["candidate"], c["spike_mismatches"]) for c in data["comparisons"]]
    bars = _in(elements, "mismatches", "rect", "bar")
    spiking = [c for c in data["comparisons"] if c["spikes_compared"]]
    assert [float(b["data-value"]) for b in bars] == [c["spike_mismatches"] / c["spikes_compared"] for c in spiking]
    assert any(float(b["data-value"]) > 0 for b in bars)  # the integer form differs somewhere: the chart shows it


def test_rasters_histograms_time_constants_and_accuracy_match_the_json(report):
    data, elements, _ = report
    spikes = _in(elements, "rasters", "circle", "spike")
    for form in ("parallel", "stepwise-float", "integer"):
        expected = sorted(f"{t},{n}" for layer in data["rasters"].values() for t, n in layer["forms"][form])
        shown = {s["data-value"] for s in spikes if form in s["data-forms"].split(",")}
        assert sorted(shown) == expected
    assert all(r["sample"] == 3 for r in data["rasters"].values())
    bins = [int(b["data-value"]) for b in _in(elements, "errors", "rect", "bin")]
    charted = [c["histogram"] for c in data["comparisons"] if c["histogram"] and sum(n > 0 for n in c["histogram"]) > 1]
    assert charted and bins == [n for h in charted for n in h]
    single = _in(elements, "errors", "li")  # one filled bin: a line in a collapsed list, not a chart
    expected = [c["histogram"].index(max(c["histogram"])) for c in data["comparisons"] if c["histogram"] and sum(n > 0 for n in c["histogram"]) == 1]
    assert expected and [int(li["data-bin"]) for li in single] == expected
    assert _in(elements, "errors", "details")
    taus = [a for a in _in(elements, "time-constants", "tr") if "data-channel" in a]
    assert len(taus) == sum(len(r["requested"]) for r in data["time_constants"]) > 0
    accuracy = {a["data-form"]: float(a["data-value"]) for a in _in(elements, "accuracy", "tr") if "data-form" in a}
    assert accuracy == data["accuracy"] and set(accuracy) == {"parallel", "stepwise-float", "integer"}


def _charts(elements, section):
    """Each bar chart of a section: its bars (value, width) and its axis (origin, full scale)."""
    charts, current = [], None
    for s, tag, attrs in elements:
        if s != section:
            continue
        if tag == "svg":
            current = {"bars": [], "axis": []}
            charts.append(current)
        elif tag == "rect" and attrs.get("class") == "bar":
            current["bars"].append((float(attrs["data-value"]), float(attrs["width"])))
        elif tag == "text" and attrs.get("class") == "axis":
            current["axis"].append(float(attrs["data-value"]))
    return charts


def test_bars_are_drawn_against_a_labelled_scale(report):
    data, elements, _ = report
    for section, smallest_full in (("mismatches", 0.01), ("time-constants", 0.01), ("accuracy", None)):
        (chart,) = _charts(elements, section)
        origin, full = chart["axis"]
        assert full > origin and (smallest_full is None or full >= smallest_full)
        for value, width in chart["bars"]:
            assert width == pytest.approx(300 * max(0.0, min(1.0, (value - origin) / (full - origin))), abs=0.06)  # 300: the bars' span
    tiny = svg.bar_chart(["tau"], [3.5e-5], "t", fmt=html._share, full=max(html.SMALLEST_FULL_SCALE, 3.5e-5))
    width = float(re.search(r'class="bar" [^>]*width="([0-9.]+)"', tiny).group(1))
    assert 0 < width < 2 and ">0.0035%<" in tiny  # a tiny error: a tiny bar, labelled with its digits


def test_accuracy_axis_separates_close_accuracies():
    origin, full = html._accuracy_axis([0.975, 0.9806])
    assert 0.9 < origin < 0.975 < 0.9806 < full <= 1.0
    lengths = [(v - origin) / (full - origin) for v in (0.975, 0.9806)]
    assert lengths[1] - lengths[0] > 0.2  # 0.56 points apart: a fifth of the chart, not 0.6% of it
    assert html._accuracy_axis([0.2, 0.6])[0] == 0.0


def test_saturations_approximations_options_and_versions(report):
    data, elements, _ = report
    rows = {a["data-layer"]: int(a["data-events"]) for a in _in(elements, "saturations", "tr") if "data-layer" in a}
    assert rows == data["saturations"] and set(data["calibration_saturations"]) == set(rows)
    keys = {a["data-key"] for a in _in(elements, "compile", "tr") if "data-key" in a}
    assert {"compiled by", "verified by", "options", "target onnx"} <= keys
    assert data["compiled"]["options"]["weight_bits"] == 3 and data["spc_version"] == spc.__version__
    assert _in(elements, "approximations", "p")  # none here: said in words


# --- the page in a real browser ----------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRAME = """<!DOCTYPE html><html><head><style>body {{ margin: 0 }} iframe {{ border: 0; display: block }}</style></head><body>
<iframe id="page" width="{width}" height="{height}" srcdoc="{report}"></iframe>
<script>
const frame = document.getElementById("page");
function measure() {{
  const d = frame.contentDocument, box = e => e.getBoundingClientRect();
  const found = {{viewport: frame.contentWindow.innerWidth, page_width: d.documentElement.scrollWidth, page_height: d.documentElement.scrollHeight,
    sections: [...d.querySelectorAll("section")].map(s => ({{id: s.id, right: box(s).right, top: box(s).top, height: box(s).height}})),
    widest_chart: Math.max(...[...d.querySelectorAll("svg")].map(s => box(s).right))}};
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify(found);
  document.body.append(probe);
}}
frame.addEventListener("load", measure);  // the srcdoc loads after this script has run
</script></body></html>"""
WINDOW = 500
"""Headless Chromium's narrowest window; a narrower page is laid out in a frame of that width."""


def _chromium(tmp_path, report_html: str, width: int, height: int, *args) -> str:
    """Chromium with the report in a frame `width` CSS pixels wide (a phone's viewport at 400)."""
    page = tmp_path / f"frame-{width}-{height}.html"
    page.write_text(FRAME.format(width=width, height=height, report=escape(report_html, quote=True)))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={max(width, WINDOW)},{height}", *args, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
@pytest.mark.parametrize("width", [400, 1000])
def test_the_page_in_headless_chromium(report, tmp_path, width):
    """The page laid out and painted by Chromium: nothing wider than the viewport (a phone's 400 px
    too), every section drawn, nothing painted in the right-hand margin."""
    _, _, page = report
    report_html = page.read_text()
    dom = _chromium(tmp_path, report_html, width, 900, "--dump-dom")
    found = json.loads(unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)))
    assert found["viewport"] == width and found["page_width"] <= width, found  # no sideways scrolling
    assert [s["id"] for s in found["sections"]] == SECTIONS
    assert all(s["height"] > 20 and s["right"] <= width for s in found["sections"]), found["sections"]
    assert found["widest_chart"] <= width - 16  # charts shrink into the page's padding

    height = found["page_height"]
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, report_html, width, height, f"--screenshot={shot}")
    image = np.asarray(Image.open(shot).convert("L"), dtype=np.int16)[:, :width]
    assert image.shape == (height, width)
    ink = image < 200
    assert not ink[:, width - 12 :].any()  # the right padding is blank: nothing runs past the page
    for s in found["sections"]:
        top, bottom = int(s["top"]), int(s["top"] + s["height"])
        assert ink[top:bottom].sum() > 500, s["id"]  # every section has something drawn in it
