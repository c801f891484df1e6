"""Runs that would exhaust memory are refused up front, saying what would fit."""

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.errors import SpcError
from spc.runtime import limits


@pytest.fixture
def compiled():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), spc.SlidingPSN(k=4), nn.Linear(64, 2), spc.LI())
    return spc.compile(model, (50, 1, 8), integer=False)


def test_too_many_samples_for_the_parallel_form(compiled, monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 10 * 2**20)  # 10 MiB
    x = np.zeros((50, 400, 8), np.float32)  # 3 copies x 8 bytes x 50 steps x 140 values: 168 kB per sample
    with pytest.raises(SpcError) as e:
        spc.run(compiled, x, backend="parallel")
    assert "the parallel form" in str(e.value) and "64.1 MiB" in str(e.value) and "batches of at most 49 samples" in str(e.value)
    spc.run(compiled, x[:, :49], backend="parallel")  # what it said fits, fits
    assert spc.run(compiled, x, backend="float").shape == (50, 400, 2)  # the streaming simulator needs no more


def test_too_long_to_verify_even_one_sample(compiled, monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 2**18)  # 256 KiB: not even one sample
    with pytest.raises(SpcError) as e:
        spc.verify(compiled, np.zeros((50, 2, 8), np.float32))
    assert "verifying one sample" in str(e.value) and "sequences of at most" in str(e.value)
