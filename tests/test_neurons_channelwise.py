"""The multiplication-free channel-wise PSN: per-channel dilated kernels, BatchNorm folded into the
taps, taps trained as signed powers of two; its stepwise form is one DelayLine, and with
power-of-two taps the integer taps are exactly the float ones (shifts and adds only)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spc
from spc.frontends.torch.neurons import ChannelwisePSNOp
from spc.frontends.torch.kernels.filters import channel_fir
from spc.frontends.torch.neurons.channelwise import POW2_SPAN

from neuron_forms import assert_equivalent, assert_trains_and_verifies, digits, digits_model, train


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 14), batch=st.integers(1, 3), channels=st.integers(1, 4), space=st.sampled_from([(), (3,), (2, 2)]), k=st.integers(1, 5), dilation=st.integers(1, 3), shared=st.booleans())
def test_parallel_and_stepwise_agree(seed, steps, batch, channels, space, k, dilation, shared):
    rng = np.random.default_rng(seed)
    rows = 1 if shared else channels
    op = ChannelwisePSNOp(taps=rng.standard_normal((rows, k)), bias=rng.standard_normal(rows), dilation=dilation)
    assert_equivalent(op, rng.standard_normal((steps, batch, channels) + space))


def test_channel_fir_is_the_dilated_causal_sum():
    rng = np.random.default_rng(0)
    x, taps = rng.standard_normal((10, 2, 3, 2)), rng.standard_normal((3, 4))
    expected = np.zeros_like(x)
    for t in range(10):
        for i in range(4):
            lag = (3 - i) * 2
            if t >= lag:
                expected[t] += taps[None, :, i, None] * x[t - lag]
    np.testing.assert_allclose(channel_fir(torch.from_numpy(x), torch.from_numpy(taps), 2).numpy(), expected, atol=1e-14)


def test_folded_taps_are_powers_of_two_with_straight_through_gradients():
    torch.manual_seed(0)
    module = spc.ChannelwisePSN(5, k=6, dilation=2)
    x = torch.randn(12, 4, 5)
    module(x).sum().backward()
    for p in (module.weight, module.bn_weight, module.bn_bias):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert not torch.equal(module.running_mean, torch.zeros(5))  # batch statistics were tracked
    taps = module.to_op().taps
    nonzero = np.abs(taps[taps != 0])
    assert np.array_equal(nonzero, 2.0 ** np.rint(np.log2(nonzero)))
    assert np.log2(nonzero).min() >= np.log2(nonzero).max() - POW2_SPAN
    module.eval()
    assert torch.equal(module.double()(x.double()), module.to_op().parallel(x.double())[1])


@pytest.mark.parametrize("taps", ["pow2", "int"])
def test_integer_taps_are_exactly_the_float_power_of_two_taps(taps):
    x_train, y_train, _, _ = digits(200)
    model = digits_model(spc.ChannelwisePSN(64, k=4, dilation=2))
    train(model, x_train, y_train, 1)
    compiled = spc.compile(model, x_train[:, :64], calib=x_train[:, :64], taps=taps)
    cell, report = compiled.integer.node("1").op.cells[0], compiled.quantization["layers"]["1"]["cells"][0]
    input_scale = 2.0 ** compiled.quantization["layers"]["0"]["weight_exponent"][0]  # the Linear's output scale
    float_taps = compiled.stepwise.node("1").op.cells[0].taps
    np.testing.assert_array_equal(cell.taps * 2.0 ** report["exponent"], float_taps * input_scale)
    magnitudes = np.abs(cell.taps[cell.taps != 0])
    assert report["flushed_taps"] == 0 and np.all(magnitudes & (magnitudes - 1) == 0)  # each product is a shift


def test_trains_on_digits_and_verifies():
    assert_trains_and_verifies(spc.ChannelwisePSN(64, k=4, dilation=2), taps="pow2")
