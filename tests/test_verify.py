"""Verification over a dataset in batches gives the same report as in one piece."""

import numpy as np
import torch
from torch import nn

import spc


def test_batched_verification_merges_to_the_same_report():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), spc.SlidingPSN(k=3), nn.Linear(10, 10), spc.LIF(tau=2.0), nn.Linear(10, 3), spc.LI())
    x = (np.random.default_rng(0).random((8, 7, 6)) < 0.5).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    compiled = spc.compile(model, x, calib=x)
    whole = spc.verify(compiled, x, model=model, labels=labels, raster_sample=5).to_json()
    parts = spc.verify(compiled, x, model=model, labels=labels, raster_sample=5, batch_size=2, progress=False).to_json()
    whole.pop("wall_time_s"), parts.pop("wall_time_s")
    assert parts == whole
    assert whole["samples"] == 7 and set(whole["accuracy"]) == {"torch-model", "parallel", "stepwise-float", "integer"}
    assert whole["rasters"]["1"]["sample"] == 5 and whole["rasters"]["1"]["forms"]["parallel"]
    fidelity = [c for c in whole["comparisons"] if c["kind"] == "fidelity" and c["layer"] == "1"][0]
    assert sum(fidelity["histogram"]) == 8 * 7 * 10
