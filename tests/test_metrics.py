"""NeuroBench metrics on hand-countable cases."""

import numpy as np
import torch
from torch import nn

import spc
from spc.runtime.metrics import activity


def test_linear_and_conv_operations_are_counted_per_sample():
    torch.manual_seed(0)
    model = nn.Sequential(
        spc.PerStep(nn.Conv2d(1, 2, 3, padding=1)), spc.IF(v_threshold=1e9),  # silent: sparsity 1
        nn.Flatten(2), nn.Linear(32, 3), spc.LI(),
    )  # fmt: skip
    x = np.zeros((2, 2, 1, 4, 4), np.float32)
    x[0, 0, 0, 0, 0] = 1  # a corner pixel: the 3x3 kernel covers it from 4 output positions
    x[1, 1, 0, 1, 1] = 1  # an inner pixel: covered from 9 output positions
    compiled = spc.compile(model, x, integer=False)
    m = activity(compiled.stepwise, x)
    conv = m["layers"]["0.0"]
    assert conv["effective_ops"] == (4 + 9) * 2 / 2  # two output channels, two samples
    assert conv["dense_ops"] == 2 * 2 * (4 * 4 + 8 * 6 + 4 * 9)  # per step: 4 corners x 4 taps, 8 edges x 6, 4 inner x 9
    assert m["layers"]["1"]["firing_rate"] == 0.0 and m["ActivationSparsity"] == 1.0
    assert m["layers"]["3"]["effective_ops"] == 0 and m["layers"]["3"]["dense_ops"] == 2 * 32 * 3
    assert m["SynapticOperations"] == {"Effective_ACs": 13.0, "Effective_MACs": 0, "Dense": conv["dense_ops"] + 192}
