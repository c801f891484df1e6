import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("spc", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SPC_HYPOTHESIS_PROFILE", "spc"))

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parent.parent
for folder in ("examples", "benchmarks", "fuzz"):  # their scripts import as modules in the tests
    sys.path.insert(0, str(ROOT / folder))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
