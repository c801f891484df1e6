"""SpikingJelly 2.0 (the real package): its models compile and verify with zero spike mismatches,
and its checkpoints of the PSN family load into spc's classes with identical behaviour."""

import numpy as np
import pytest
import torch
from torch import nn

import spc

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

T = 8


def sj_model():
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)),
        neuron.LIFNode(tau=2.0, step_mode="m"),
        layer.Conv2d(4, 4, 3, padding=1, step_mode="m"),
        layer.BatchNorm2d(4, step_mode="m"),
        neuron.IFNode(step_mode="m"),
        layer.AvgPool2d(2, step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(64, 32, step_mode="m"),
        neuron.SlidingPSN(k=3, exp_init=False, step_mode="m"),
        layer.Linear(32, 32, step_mode="m"),
        neuron.MaskedPSN(k=3, T=T, lambda_init=1.0, step_mode="m"),
        layer.Linear(32, 16, step_mode="m"),
        neuron.IFNode(v_threshold=0.5, v_reset=None, step_mode="m"),
        layer.Linear(16, 10, step_mode="m"),
        neuron.LIFNode(tau=3.0, decay_input=False, v_reset=-0.2, step_mode="m"),
    )
    for bn in (net[0][1], net[3]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():  # thresholds low enough that every layer is active
        net[8].bias.fill_(-0.05)
        net[10].bias.fill_(-0.05)
    return net.eval()


def test_spikingjelly_model_compiles_and_verifies_without_mismatches(tmp_path):
    model = sj_model()
    x = (np.random.default_rng(0).random((T, 6, 1, 8, 8)) < 0.4).astype(np.float32) * 3
    compiled = spc.compile(model, x, tmp_path / "out")
    kinds = {n.name: n.op.kind for n in compiled.parallel.neurons()}
    assert kinds == {"1": "LIF", "4": "LIF", "8": "SlidingPSN", "10": "MaskedPSN", "12": "LIF", "14": "LIF"}
    assert [n.name for n in compiled.stepwise.nodes[:5]] == ["input", "0.0", "1", "2", "4"]  # both BatchNorms folded
    report = spc.verify(tmp_path / "out", x, model=model)
    assert report.passed, report.table()
    equivalence = [c for c in report.comparisons if c.kind == "equivalence"]
    spiking = [c for c in equivalence if c.spikes_compared]
    assert all(c.spike_mismatches == 0 and c.ties == 0 for c in equivalence)
    # the network is active, so the comparison says something
    functional.reset_net(model)
    with torch.no_grad():
        rates = [float(model[: i + 1](torch.from_numpy(x)).mean()) for i in (1, 4, 8, 10, 12)]
    functional.reset_net(model)
    assert all(r > 0.01 for r in rates), rates
    assert len(spiking) == 14  # six layers and the output, in both comparisons


def test_single_step_neuron_is_refused_with_the_fix():
    model = nn.Sequential(layer.Linear(4, 4), neuron.LIFNode(step_mode="s"))
    with pytest.raises(spc.SpcError, match="set_step_mode"):
        spc.compile(model, (4, 1, 4))


def _pairs():
    torch.manual_seed(1)
    psn = neuron.PSN(T=T)
    with torch.no_grad():
        psn.weight.copy_(torch.tril(psn.weight))
    masked = neuron.MaskedPSN(k=3, T=T, lambda_init=1.0, step_mode="m")
    with torch.no_grad():
        masked.weight.add_(0.3)  # values outside the band are stored and must be masked
    sliding = neuron.SlidingPSN(k=4, exp_init=False, step_mode="m")
    with torch.no_grad():
        sliding.bias.fill_(-0.3)
    return [(psn, spc.PSN(T=T)), (masked, spc.MaskedPSN(k=3, T=T)), (sliding, spc.SlidingPSN(k=4))]


@pytest.mark.parametrize("index", range(3))
def test_spikingjelly_checkpoint_loads_into_spc_and_gives_identical_spikes(tmp_path, index):
    theirs, ours = _pairs()[index]
    path = tmp_path / "ckpt.pt"
    torch.save(theirs.state_dict(), path)
    ours.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(T, 5, 7, dtype=torch.float64)
    theirs, ours = theirs.double(), ours.double()
    functional.reset_net(theirs)
    assert torch.equal(ours(x), theirs(x))
    # same surrogate gradient (ATan, alpha = 2)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    functional.reset_net(theirs)
    (theirs(xa) * torch.arange(7.0, dtype=torch.float64)).sum().backward()
    (ours(xb) * torch.arange(7.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-12, atol=1e-12)
