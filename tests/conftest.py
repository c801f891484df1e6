import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("spc", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SPC_HYPOTHESIS_PROFILE", "spc"))

torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
