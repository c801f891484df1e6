"""Quantization-aware fine-tuning: the forward pass sees exactly the integer form's values."""

import numpy as np
import torch
from torch import nn

import spc
from spc.compiler.quantize import integer_decay


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), spc.SlidingPSN(k=3, exp_init=False), nn.Linear(8, 8), spc.MaskedPSN(k=2, T=5, lambda_init=1.0), nn.Linear(8, 8), spc.SPSN(), nn.Linear(8, 3), spc.LIF(tau=3.0))


def test_forward_sees_the_integer_weights_and_decays():
    model = _model()
    x = (np.random.default_rng(0).random((5, 4, 6)) < 0.5).astype(np.float32)
    with spc.quantization_aware(model, decay="shift", taps="pow2"):
        compiled = spc.compile(model, x, calib=x, decay="shift", taps="pow2")
        for name in ("0", "2", "4", "6"):
            e = compiled.quantization["layers"][name]["weight_exponent"][0]
            seen = model[int(name)].weight.detach().double().numpy()
            np.testing.assert_array_equal(seen, compiled.integer.node(name).op.weight * 2.0**e)  # spike inputs: scale 1
        taps = model[1].weight.detach().numpy()
        assert np.all(np.log2(np.abs(taps[taps != 0])) % 1 == 0)  # powers of two
        masked = (model[3].weight * model[3].mask0).detach().numpy()
        assert np.all(np.log2(np.abs(masked[masked != 0])) % 1 == 0)
        assert model[5].alpha == 1 - 2.0**-4 and model[7].decay == 0.75  # snapped: 0.951 -> 0.9375, 2/3 -> 3/4
        loss = model(torch.from_numpy(x)).sum() + model[0].weight.sum()
        loss.backward()
    assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()
    assert not any(hasattr(m, "parametrizations") for m in model.modules())  # removed on exit
    assert model[5].alpha == 1 - 2.0**-4  # decays stay snapped: the model is what was trained


def test_snapped_decays_quantize_to_themselves():
    for form in ("int12", "shift"):
        a = np.array([0.3, 0.9, 0.951229, 0.99])
        _, realised = integer_decay(a, form)
        np.testing.assert_array_equal(integer_decay(realised, form)[1], realised)


def test_fine_tuning_moves_the_float_weights():
    model = _model()
    before = model[0].weight.detach().clone()
    x = torch.from_numpy((np.random.default_rng(1).random((5, 16, 6)) < 0.5).astype(np.float32))
    with spc.quantization_aware(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            model(x).mean().backward()
            opt.step()
    assert not torch.equal(before, model[0].weight)
