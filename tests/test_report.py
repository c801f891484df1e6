"""The HTML report renders, has every section, and its figures show exactly the JSON's numbers."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.cli import main


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements, self.section = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
        self.elements.append((self.section, tag, attrs))


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
    return json.loads((tmp / "r.json").read_text()), parser.elements


def _in(elements, section, tag, cls=None):
    return [a for s, t, a in elements if s == section and t == tag and (cls is None or a.get("class") == cls)]


def test_every_section_is_present(report):
    _, elements = report
    sections = [a["id"] for s, t, a in elements if t == "section"]
    assert sections == ["summary", "equivalence", "mismatches", "rasters", "errors", "time-constants", "accuracy"]


def test_tables_and_bars_match_the_json(report):
    data, elements = report
    rows = [a for a in _in(elements, "equivalence", "tr") if "data-layer" in a]
    assert [(r["data-layer"], r["data-reference"], r["data-candidate"], int(r["data-mismatches"])) for r in rows] == [(c["layer"], c["reference"], c["candidate"], c["spike_mismatches"]) for c in data["comparisons"]]
    bars = _in(elements, "mismatches", "rect", "bar")
    spiking = [c for c in data["comparisons"] if c["spikes_compared"]]
    assert [float(b["data-value"]) for b in bars] == [c["spike_mismatches"] / c["spikes_compared"] for c in spiking]
    assert any(float(b["data-value"]) > 0 for b in bars)  # the integer form differs somewhere: the chart shows it


def test_rasters_histograms_time_constants_and_accuracy_match_the_json(report):
    data, elements = report
    spikes = _in(elements, "rasters", "circle", "spike")
    for form in ("parallel", "stepwise-float", "integer"):
        expected = sorted(f"{t},{n}" for layer in data["rasters"].values() for t, n in layer["forms"][form])
        shown = {s["data-value"] for s in spikes if form in s["data-forms"].split(",")}
        assert sorted(shown) == expected
    assert all(r["sample"] == 3 for r in data["rasters"].values())
    bins = [int(b["data-value"]) for b in _in(elements, "errors", "rect", "bin")]
    assert bins == [n for c in data["comparisons"] if c["histogram"] for n in c["histogram"]]
    taus = [a for a in _in(elements, "time-constants", "tr") if "data-channel" in a]
    assert len(taus) == sum(len(r["requested"]) for r in data["time_constants"]) > 0
    accuracy = {a["data-form"]: float(a["data-value"]) for a in _in(elements, "accuracy", "tr") if "data-form" in a}
    assert accuracy == data["accuracy"] and set(accuracy) == {"parallel", "stepwise-float", "integer"}
