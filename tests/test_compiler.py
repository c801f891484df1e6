"""Passes (fold_batchnorm, check_causality, lower), serialisation, and that verification catches
a wrong stepwise graph."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler.cells import DelayLine, Neuron
from spc.compiler.passes import check_causality, fold_batchnorm, lower
from spc.compiler.serialize import encode, load_graph, save_graph
from spc.errors import SpcError
from spc.frontends.torch.trace import from_torch
from spc.runtime.parallel import run_parallel
from spc.runtime.sim import run_stepwise


def _bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        spc.PerStep(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3)),
        spc.IF(),
        spc.PerStep(nn.BatchNorm2d(3)),  # no Linear/Conv before it: stays a BatchNorm
        nn.Flatten(2),
        nn.Linear(48, 5, bias=False),
        spc.PerStep(nn.BatchNorm1d(5)),
        spc.LI(),
    )
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def test_fold_batchnorm_folds_what_it_can_and_keeps_values():
    x = np.random.default_rng(0).random((5, 2, 1, 4, 4))
    graph = from_torch(_bn_model(), torch.from_numpy(x).float())
    folded = fold_batchnorm(graph)
    assert [n.op.kind for n in folded.nodes] == ["Input", "Conv", "LIF", "BatchNorm", "Reshape", "Linear", "LI"]
    assert folded.node("1").inputs == ("0.0",) and folded.node("6").inputs == ("4",)
    a, b = run_parallel(graph, x), run_parallel(folded, x)
    np.testing.assert_allclose(b.output, a.output, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(b.outputs["1"], a.outputs["1"])


def test_non_causal_psn_is_refused_with_the_share_and_the_options():
    torch.manual_seed(0)
    graph = from_torch(nn.Sequential(nn.Linear(3, 3), spc.PSN(T=6)), torch.zeros(6, 1, 3))
    with pytest.raises(SpcError) as e:
        check_causality(graph)
    msg = str(e.value)
    assert "layer '1' (PSN)" in msg and "future inputs" in msg and "% of its weight mass" in msg
    assert "MaskedPSN" in msg and "--drop-future" in msg


def test_masked_psn_with_unfinished_lambda_is_refused():
    graph = from_torch(nn.Sequential(spc.MaskedPSN(k=2, T=6, lambda_init=0.5)), torch.zeros(6, 1, 3))
    with pytest.raises(SpcError, match="λ = 0.5 < 1"):
        check_causality(graph)


def test_drop_future_is_explicit_and_reported():
    torch.manual_seed(0)
    psn = spc.PSN(T=6)
    graph = from_torch(nn.Sequential(psn), torch.zeros(6, 1, 3))
    causal, approximations = check_causality(graph, drop_future=True)
    w = psn.weight.detach().abs().numpy()
    assert approximations[0].layer == "0"
    assert approximations[0].dropped_weight_share == pytest.approx(np.triu(w, 1).sum() / w.sum())
    assert not np.any(np.triu(causal.node("0").op.weight, 1))


def test_causal_psn_compiles_without_options():
    psn = spc.PSN(T=5)
    with torch.no_grad():
        psn.weight.copy_(torch.tril(psn.weight))
    graph = from_torch(nn.Sequential(psn), torch.zeros(5, 1, 2))
    assert check_causality(graph)[1] == []


def test_lowering_keeps_names_and_replaces_every_neuron():
    graph = from_torch(_bn_model(), torch.zeros(5, 2, 1, 4, 4))
    lowered = lower(graph)
    assert [n.name for n in lowered.nodes] == [n.name for n in graph.nodes]
    assert all(isinstance(n.op, Neuron) for n in lowered.neurons())


def test_graph_round_trips_exactly(tmp_path):
    digits = __import__("examples.digits", fromlist=["build_model"])
    graph = lower(from_torch(digits.build_model(), torch.zeros(16, 1, 64)))
    save_graph(graph, tmp_path / "g")
    again = load_graph(tmp_path / "g")
    doc_a, arrays_a = encode(graph)
    doc_b, arrays_b = encode(again)
    assert doc_a == doc_b
    assert arrays_a.keys() == arrays_b.keys()
    for k in arrays_a:
        assert arrays_a[k].dtype == arrays_b[k].dtype
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k])
    first = (tmp_path / "g" / "weights.npz").read_bytes()
    save_graph(again, tmp_path / "h")
    assert (tmp_path / "h" / "weights.npz").read_bytes() == first  # reproducible bytes


def test_corrupt_graph_files_give_clear_errors(tmp_path):
    graph = lower(from_torch(nn.Sequential(nn.Linear(3, 2), spc.SlidingPSN(2)), torch.zeros(4, 1, 3)))
    save_graph(graph, tmp_path)
    doc = json.loads((tmp_path / "graph.json").read_text())
    doc["version"] = 99
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(SpcError, match="format version 99"):
        load_graph(tmp_path)
    doc["version"] = 1
    doc["nodes"][1]["op"]["kind"] = "Mystery"
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(SpcError, match="unknown operation kind 'Mystery'"):
        load_graph(tmp_path)
    (tmp_path / "weights.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SpcError, match="weights.npz"):
        load_graph(tmp_path)


def test_verify_catches_a_wrong_stepwise_neuron_and_locates_it():
    model = nn.Sequential(nn.Linear(4, 6), spc.SlidingPSN(k=3), nn.Linear(6, 2), spc.LI())
    x = np.random.default_rng(0).standard_normal((10, 3, 4))
    compiled = spc.compile(model, x)
    node = compiled.stepwise.node("1")
    cell = node.op.cells[0]
    taps = cell.taps.copy()
    taps[0, 0] += 1e-3  # the oldest tap, slightly wrong
    broken = compiled.stepwise.with_ops({"1": Neuron(cells=(DelayLine(taps=taps, bias=cell.bias),), fire=node.op.fire)})
    report = spc.verify(spc.Compiled(compiled.parallel, broken, compiled.manifest), x)
    assert not report.passed
    bad = next(c for c in report.comparisons if c.layer == "1" and c.candidate == "stepwise-float")
    assert bad.max_abs_error > bad.tolerance and bad.first_mismatch["step"] == 2  # the oldest tap first matters at t = 2
    good = spc.verify(compiled, x)
    assert good.passed and good.ties == 0


def test_input_longer_than_a_time_indexed_layer_is_refused():
    graph = lower(from_torch(nn.Sequential(spc.MaskedPSN(k=2, T=4, lambda_init=1.0)), torch.zeros(4, 1, 3)))
    with pytest.raises(SpcError, match="layer '0' is time-indexed and defined only for T <= 4"):
        run_stepwise(graph, np.zeros((5, 1, 3)))
    assert run_stepwise(graph, np.zeros((3, 1, 3))).output.shape == (3, 1, 3)
