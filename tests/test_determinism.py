"""Compiling the same model twice gives byte-identical directories."""

import hashlib

import numpy as np
import torch
from torch import nn

import spc


def _digest(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_compiling_twice_gives_identical_bytes(tmp_path):
    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 8), spc.SlidingPSN(k=3), nn.Linear(8, 8), spc.SPSN(stochastic=True, seed=4), nn.Linear(8, 3), spc.LI())

    x = (np.random.default_rng(0).random((7, 4, 6)) < 0.5).astype(np.float32)
    spc.compile(model(), x, tmp_path / "a", calib=x, decay="shift")
    spc.compile(model(), x, tmp_path / "b", calib=x, decay="shift")
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b and len(a) >= 7
    spc.compile(model(), x, tmp_path / "c")  # no calibration data: seeded random spike trains
    spc.compile(model(), x, tmp_path / "d")
    assert _digest(tmp_path / "c") == _digest(tmp_path / "d")
