"""PRF: the FFT form is the real part of the complex exponential kernel, the 2-state rotation
(Resonator) equals it, Δ and θ learn, and the integer rotation's realised decays are reported."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spc
from spc.frontends.torch.neurons import PRFOp

from neuron_forms import assert_equivalent, assert_module_is_its_op_and_learns, assert_trains_and_verifies


def _ops(rng, rows, threshold=0.05):
    return PRFOp(delta=np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), rows)), angle=rng.uniform(0, 2 * np.pi, rows), tau=2.0, threshold=threshold)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 40), batch=st.integers(1, 3), channels=st.integers(1, 4), space=st.sampled_from([(), (2, 2)]), shared=st.booleans())
def test_parallel_and_stepwise_agree(seed, steps, batch, channels, space, shared):
    rng = np.random.default_rng(seed)
    op = _ops(rng, 1 if shared else channels)
    assert_equivalent(op, 3 * rng.standard_normal((steps, batch, channels) + space))


def test_membrane_is_the_real_part_of_the_complex_convolution():
    rng = np.random.default_rng(0)
    op = _ops(rng, 3)
    x = rng.standard_normal((300, 2, 3))
    a = np.exp(op.delta * (-1 / op.tau + 1j * op.angle))  # A per channel
    z = np.zeros((2, 3), complex)
    expected = []
    for xt in x:  # U[t] = Σ_j Δ·A^(t−j)·x[j]
        z = a * z + op.delta * xt
        expected.append(z.real)
    np.testing.assert_allclose(op.parallel(torch.from_numpy(x))[0].numpy(), np.array(expected), rtol=0, atol=1e-12)


def test_module_is_its_op_and_learns_delta_and_theta():
    torch.manual_seed(0)
    assert_module_is_its_op_and_learns(spc.PRF(4, threshold=0.01), torch.randn(30, 3, 4))


def test_trains_on_digits_and_verifies():
    report = assert_trains_and_verifies(spc.PRF(64, threshold=0.1))
    resonator = report.quantization["layers"]["1"]["cells"][0]
    realised, requested = np.array(resonator["realised_magnitude"]), np.array(resonator["requested_magnitude"])
    assert np.abs(realised - requested).max() <= 2**-17 * np.sqrt(2)  # 16 fractional bits per coefficient
