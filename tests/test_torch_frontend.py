"""Tracing torch models into spc graphs: supported layers, per-step semantics, refusals."""

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler import ir
from spc.errors import SpcError
from spc.frontends.torch.trace import from_torch
from spc.runtime.parallel import run_parallel


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.5, 0.5, generator=g)


class Simple(nn.Module):
    def __init__(self, T=8):
        super().__init__()
        self.features = spc.PerStep(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.MaxPool2d(2))
        self.n1 = spc.SlidingPSN(k=3)
        self.block = spc.PerStep(nn.Conv2d(4, 4, 3, padding="same", groups=2), nn.BatchNorm2d(4))
        self.n2 = spc.LIF(tau=2.0)
        self.pool = spc.PerStep(nn.AvgPool2d(2), nn.Dropout(0.3))
        self.flat = nn.Flatten(2)
        self.fc = nn.Linear(16, 10)
        self.n3 = spc.MaskedPSN(k=2, T=T, lambda_init=1.0)
        self.out = nn.Sequential(nn.Identity(), nn.Linear(10, 3))
        self.readout = spc.LI()

    def forward(self, x):
        y = self.n1(self.features(x))
        y = y + self.n2(self.block(y))
        y = self.n3(self.fc(self.flat(self.pool(y))))
        return self.readout(self.out(y))


def test_traced_graph_matches_the_model_and_names_layers_by_path():
    torch.manual_seed(0)
    model = Simple()
    _randomise_bn(model)
    model.eval()
    x = (torch.rand(8, 3, 2, 8, 8) < 0.5).float() * 2
    graph = from_torch(model, x)
    kinds = [(n.name, n.op.kind) for n in graph.nodes]
    assert kinds == [
        ("input", "Input"), ("features.0", "Conv"), ("features.1", "BatchNorm"), ("features.2", "MaxPool2d"), ("n1", "SlidingPSN"),
        ("block.0", "Conv"), ("block.1", "BatchNorm"), ("n2", "LIF"), ("add", "Add"), ("pool.0", "AvgPool2d"), ("flat", "Reshape"),
        ("fc", "Linear"), ("n3", "MaskedPSN"), ("out.1", "Linear"), ("readout", "LI"),
    ]
    assert graph.node("add").inputs == ("n1", "n2")
    assert graph.shapes["flat"] == (16,)
    with torch.no_grad():
        expected = model.double()(x.double()).numpy()
    np.testing.assert_allclose(run_parallel(graph, x.numpy()).output, expected, rtol=0, atol=1e-12)


def test_functional_flatten_and_add():
    class F(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = spc.PerStep(nn.Conv2d(1, 2, 3))
            self.n = spc.IF()

        def forward(self, x):
            y = torch.flatten(self.conv(x), 2)
            return self.n(y + y)

    g = from_torch(F(), torch.zeros(4, 1, 1, 5, 5))
    assert [n.op.kind for n in g.nodes] == ["Input", "Conv", "Reshape", "Add", "LIF"]
    assert g.shapes["flatten"] == (18,)


def _error(model, shape):
    with pytest.raises(SpcError) as e:
        from_torch(model, torch.zeros(shape))
    return str(e.value)


def test_unsupported_layer_is_named_by_its_path():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(spc.IF(), nn.LSTM(4, 4)))
    msg = _error(model, (3, 2, 4))
    assert "1.1 (torch.nn.LSTM): a module spc does not know" in msg and "fix:" in msg


def test_unsupported_function_is_named():
    class M(nn.Module):
        def forward(self, x):
            return torch.relu(x)

    msg = _error(M(), (3, 2, 4))
    assert "relu" in msg and "not supported" in msg


def test_per_sample_layer_applied_to_the_sequence_directly_is_refused():
    msg = _error(nn.Sequential(nn.BatchNorm1d(4), spc.IF()), (3, 4, 4))
    assert "0 (torch.nn.BatchNorm1d)" in msg and "spc.PerStep" in msg


def test_neuron_inside_a_per_step_wrapper_is_refused():
    msg = _error(nn.Sequential(spc.PerStep(nn.Linear(4, 4), spc.IF())), (3, 2, 4))
    assert "0.1" in msg and "move the neuron out" in msg


def test_flatten_of_the_batch_dimension_is_refused():
    msg = _error(nn.Sequential(nn.Flatten(), spc.IF()), (3, 2, 4, 2))
    assert "batch dimension" in msg and "nn.Flatten(2)" in msg


def test_input_of_the_wrong_rank_or_size_is_refused():
    assert "time-major" in _error(nn.Linear(4, 2), (3, 4))
    assert "does not run on an input of shape" in _error(nn.Sequential(nn.Linear(4, 2), spc.IF()), (3, 2, 5))


def test_batchnorm_without_running_statistics_is_refused():
    msg = _error(nn.Sequential(spc.PerStep(nn.BatchNorm1d(4, track_running_stats=False)), spc.IF()), (3, 2, 4))
    assert "running statistics" in msg


def test_non_finite_weights_are_refused():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    msg = _error(nn.Sequential(lin, spc.IF()), (3, 2, 4))
    assert "layer '0'" in msg and "NaN" in msg


def test_graph_rejects_inconsistent_wiring():
    with pytest.raises(SpcError, match="not defined before"):
        ir.Graph((ir.Node("input", ir.Input((3,))), ir.Node("a", ir.Add(), ("input", "b"))), ("a",))
    with pytest.raises(SpcError, match="different shapes"):
        ir.Graph((ir.Node("input", ir.Input((3,))), ir.Node("l", ir.Linear(np.ones((2, 3)), None), ("input",)), ir.Node("a", ir.Add(), ("input", "l"))), ("a",))


def test_conv1d_model_compiles_and_verifies():
    torch.manual_seed(0)
    model = nn.Sequential(
        spc.PerStep(nn.Conv1d(2, 4, 3, padding=2, dilation=2, stride=2), nn.BatchNorm1d(4)),
        spc.SPSN(tau_syn=3.0, tau_mem=2.0, stochastic=True, seed=5),
        spc.PerStep(nn.Conv1d(4, 4, 1, groups=4, bias=False)),
        spc.LIF(tau=2.0, v_reset=None),
        nn.Flatten(2),
        nn.Linear(20, 3),
        spc.LI(),
    )
    _randomise_bn(model)
    x = np.random.default_rng(0).standard_normal((7, 3, 2, 10)).astype(np.float32) * 2
    compiled = spc.compile(model, x)
    assert compiled.parallel.shapes["0.0"] == (4, 5)
    report = spc.verify(compiled, x, model=model)
    assert report.passed and report.ties == 0, report.table()
    assert [c.spikes_compared for c in report.comparisons if c.layer == "1" and c.kind == "equivalence"] == [7 * 3 * 20] * 2
