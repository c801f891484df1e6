"""The trainable modules: their forward is their IR operation's parallel form, they train
(surrogate gradients), and stochastic firing is seeded and unbiased."""

import pytest
import torch

import spc
from spc.frontends.torch.firing import fire


def _modules(T):
    return [
        spc.PSN(T),
        spc.MaskedPSN(k=3, T=T, lambda_init=1.0),
        spc.MaskedPSN(k=3, T=T, lambda_init=0.4),
        spc.SlidingPSN(k=5),
        spc.SlidingPSN(k=5, exp_init=False),
        spc.SPSN(tau_syn=5.0, tau_mem=3.0),
        spc.SPSN(stochastic=True, seed=7),
        spc.IF(v_threshold=0.8),
        spc.LIF(tau=3.0, decay_input=False, v_reset=None),
        spc.LIF(tau=2.0, v_threshold=1.0, v_reset=-0.5),
        spc.LI(tau=4.0),
    ]


@pytest.mark.parametrize("index", range(11))
def test_forward_is_the_ir_parallel_form(index):
    torch.manual_seed(index)
    T = 9
    module = _modules(T)[index].double()
    x = torch.randn(T, 4, 6, dtype=torch.float64) * 2
    expected = module(x)
    h, out = module.to_op().parallel(x)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("index", range(11))
def test_surrogate_gradients_reach_the_input(index):
    torch.manual_seed(index)
    T = 9
    module = _modules(T)[index]
    x = (torch.randn(T, 4, 6) * 2).requires_grad_()
    module(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    for p in module.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_lif_hard_reset_to_nonzero_value_matches_the_spikingjelly_equations():
    """v_reset = -0.5: spc measures the membrane from v_reset; the spikes must equal the textbook loop."""
    torch.manual_seed(0)
    x = torch.randn(20, 3, 4, dtype=torch.float64) * 2
    tau, vth, vr = 2.0, 1.0, -0.5
    v = torch.full_like(x[0], vr)
    expected = []
    for xt in x:
        v = v + (xt - (v - vr)) / tau
        s = (v >= vth).double()
        expected.append(s)
        v = s * vr + (1 - s) * v
    got = spc.LIF(tau=tau, v_threshold=vth, v_reset=vr).double()(x)
    assert torch.equal(got, torch.stack(expected))


def test_stochastic_firing_is_seeded_and_unbiased():
    h = torch.zeros(200, 8, 50, dtype=torch.float64)  # p = sigmoid(0) = 0.5
    a = fire(h, 0.0, stochastic=True, seed=1)
    b = fire(h, 0.0, stochastic=True, seed=1)
    c = fire(h, 0.0, stochastic=True, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert abs(a.mean().item() - 0.5) < 0.01  # 80 000 draws: 3.5 standard deviations
    p = torch.sigmoid(torch.linspace(-3, 3, 50, dtype=torch.float64)).expand(200, 8, 50)
    rate = fire(torch.logit(p), 0.0, stochastic=True, seed=3).mean(dim=(0, 1))
    assert torch.allclose(rate, p[0, 0], atol=0.05)


def test_masked_psn_lambda_setter_and_time_limit():
    m = spc.MaskedPSN(k=2, T=5)
    m.lambda_ = 1.0
    assert float(m.lambda_) == 1.0
    with pytest.raises(ValueError, match="T=5"):
        m(torch.zeros(6, 1, 3))


def test_invalid_time_constants_are_refused():
    with pytest.raises(ValueError, match="tau"):
        spc.LIF(tau=0.5)
    with pytest.raises(ValueError, match="positive"):
        spc.SPSN(tau_syn=-1.0)
