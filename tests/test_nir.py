"""NIR: spc → NIR → spc round trips, refusals, the realised decays and integer metadata, reading
other tools' exports, and spc's files run by snnTorch, SpikingJelly and Norse."""


import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler.cells import Leaky
from spc.compiler.emit.nir import DT, emit_nir, to_nir
from spc.compiler.passes import lower
from spc.compiler.quantize import integer_decay
from spc.errors import SpcError
from spc.frontends.nir import from_nir
from spc.runtime.nir_readers import run_reader
from spc.runtime.parallel import run_parallel
from spc.runtime.sim import run_stepwise


def _spikes(shape, rate=0.4, seed=0):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def _emit(compiled, tmp_path):
    (path,) = emit_nir(compiled, tmp_path)
    assert path == tmp_path / "model.nir" and sorted(p.name for p in tmp_path.iterdir()) == ["model.nir"]
    return path


def _assert_same(reference, candidate, names):
    """Identical spikes (or outputs) and membranes within 1e-9 on every named layer."""
    for name in names:
        np.testing.assert_allclose(candidate.membranes[name], reference.membranes[name], rtol=0, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(candidate.outputs[name], reference.outputs[name], rtol=0, atol=1e-9, err_msg=name)


def _mixed_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), spc.LIF(tau=2.0, v_threshold=0.3),
        nn.Linear(16, 16), spc.IF(v_threshold=0.5),
        nn.Linear(16, 16), spc.SPSN(tau_syn=5.0, tau_mem=4.0),
        nn.Linear(16, 16), spc.SlidingPSN(k=3),
        nn.Linear(16, 4), spc.LI(tau=3.0),
    )
    model[7].bias.data.fill_(-0.2)
    return model


def test_round_trip_reproduces_every_layer(tmp_path):
    x = _spikes((24, 4, 6))
    compiled = spc.compile(_mixed_model(), x, integer=False)
    path = _emit(compiled, tmp_path)
    kinds = {name: type(node).__name__ for name, node in nir.read(path).nodes.items()}
    assert kinds == {
        "input": "Input", "0": "Affine", "1": "LIF", "2": "Affine", "3": "IF", "4": "Affine",
        "5:membrane": "CubaLI", "5": "Threshold", "6": "Affine",
        "7:delay2": "Delay", "7:delay1": "Delay", "7:tap2": "Scale", "7:tap1": "Scale", "7:tap0": "Scale", "7": "Threshold",
        "8": "Affine", "9": "LI", "output": "Output",
    }
    graph = from_nir(path)
    assert [n.op.kind for n in graph.neurons()] == ["LIF", "LIF", "SPSN", "SlidingPSN", "LI"]
    reference, candidate = run_stepwise(compiled.stepwise, x), run_stepwise(lower(graph), x)
    names = [n.name for n in compiled.stepwise.neurons()]
    _assert_same(reference, candidate, names)
    assert all(reference.outputs[n].mean() > 0.02 for n in names[:-1])  # every spiking layer fires
    np.testing.assert_allclose(run_parallel(graph, x).output, reference.output, rtol=0, atol=1e-9)


def test_non_leaking_stages_are_integrators_and_not_fused(tmp_path):
    """a = 1 has no finite τ: I (and IF) nodes, R = g/dt; an I feeding a LIF stays two nodes."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 6), spc.LI(tau=float("inf"), decay_input=False), spc.LIF(tau=2.0, v_threshold=1.0), nn.Linear(6, 2), spc.LI(tau=float("inf"), decay_input=False))
    x = _spikes((16, 3, 5))
    compiled = spc.compile(model, x, integer=False)
    path = _emit(compiled, tmp_path)
    nodes = nir.read(path).nodes
    assert [type(nodes[n]).__name__ for n in ("1", "2", "4")] == ["I", "LIF", "I"] and nodes["1"].r[0] == 1 / DT
    reference = run_stepwise(compiled.stepwise, x)
    _assert_same(reference, run_stepwise(lower(from_nir(path)), x), ["1", "2", "4"])
    assert 0 < reference.outputs["2"].mean() < 1


class _ConvNet(nn.Module):
    """Conv, residual Add, average pooling, an unfolded BatchNorm, flatten and a readout."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv1, self.lif1 = spc.PerStep(nn.Conv2d(1, 4, 3, padding=1)), spc.LIF(tau=2.0, v_threshold=0.2)
        self.conv2, self.lif2 = spc.PerStep(nn.Conv2d(4, 4, 3, padding=1)), spc.IF(v_threshold=0.3)
        self.pool, self.bn = spc.PerStep(nn.AvgPool2d(2)), spc.PerStep(nn.BatchNorm2d(4))
        self.flat, self.fc, self.out = nn.Flatten(2), nn.Linear(16, 3), spc.LI(tau=2.0)
        self.bn.eval()
        self.bn[0].running_mean.uniform_(-0.5, 0.5)
        self.bn[0].weight.data.uniform_(0.5, 1.5)

    def forward(self, x):
        a = self.lif1(self.conv1(x))
        b = self.lif2(self.conv2(a))
        return self.out(self.fc(self.flat(self.bn(self.pool(a + b)))))


def test_round_trip_of_convolutions_pooling_residuals_and_batchnorm(tmp_path):
    x = _spikes((12, 2, 1, 4, 4), rate=0.5)
    compiled = spc.compile(_ConvNet(), x, integer=False)
    assert "BatchNorm" in [n.op.kind for n in compiled.stepwise.nodes]  # after a pool it stays unfolded
    path = _emit(compiled, tmp_path)
    written = nir.read(path)
    kinds = sorted(type(n).__name__ for n in written.nodes.values())
    assert kinds == ["Affine", "AvgPool2d", "Conv2d", "Conv2d", "Conv2d", "Flatten", "IF", "Input", "LI", "LIF", "Output"]
    pool = next(name for name, n in written.nodes.items() if isinstance(n, nir.AvgPool2d))
    assert sorted(a for a, b in written.edges if b == pool) == ["lif1", "lif2"]  # Add: NIR sums fan-in
    graph = from_nir(path)
    reference, candidate = run_stepwise(compiled.stepwise, x), run_stepwise(lower(graph), x)
    _assert_same(reference, candidate, ["lif1", "lif2", "out"])
    assert reference.outputs["lif2"].mean() > 0.05


def test_decays_are_the_realised_integer_ones_and_integer_details_are_metadata(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), spc.SPSN(tau_syn=5.0, tau_mem=3.0), nn.Linear(8, 8), spc.LIF(tau=3.0, v_threshold=0.3))
    x = _spikes((20, 8, 6))
    for decay in ("int12", "shift"):
        compiled = spc.compile(model, x, calib=x, decay=decay)
        path = _emit(compiled, tmp_path / decay)
        nodes = nir.read(path).nodes
        cuba, lif = nodes["1:membrane"], nodes["3"]
        layers = compiled.quantization["layers"]
        realised = [layers["1"]["cells"][0]["realised_tau"][0], layers["1"]["cells"][1]["realised_tau"][0], layers["3"]["cells"][0]["realised_tau"][0]]
        np.testing.assert_array_equal([cuba.tau_syn[0], cuba.tau_mem[0], lif.tau[0]], np.array(realised) * DT)
        if decay == "shift":  # a bit-shift decay 1 − 2^−n is exactly τ = 2^n·dt
            assert cuba.tau_syn[0] == 4 * DT and cuba.tau_mem[0] == 4 * DT and lif.tau[0] == 4 * DT
        q = compiled.integer.node("3").op
        meta = lif.metadata
        assert meta["dt"] == DT and meta["spc_layer"] == "3"
        assert meta["cells"]["0"]["integer"]["mode"] == decay
        assert meta["cells"]["0"]["integer"]["decay"].tolist() == q.cells[0].decay.tolist()
        assert meta["cells"]["0"]["integer"]["shift"] == q.cells[0].shift and meta["cells"]["0"]["integer"]["width"] == 24
        assert meta["fire"]["threshold_integer"].tolist() == q.fire.threshold.tolist()
        assert nodes["0"].metadata["integer"]["weight"].tolist() == compiled.integer.node("0").op.weight.tolist()
        # the file is the float stepwise graph with the realised decays, exactly
        realised_graph = compiled.stepwise.with_ops({
            n.name: n.op.replace(cells=tuple(c.replace(decay=integer_decay(c.decay, decay)[1]) if isinstance(c, Leaky) else c for c in n.op.cells))
            for n in compiled.stepwise.neurons()
        })
        _assert_same(run_stepwise(realised_graph, x), run_stepwise(lower(from_nir(path)), x), ["1", "3"])
        assert run_stepwise(realised_graph, x).outputs["3"].mean() > 0.05
        reloaded = to_nir(spc.load(compiled.save(tmp_path / f"{decay}-model"))).nodes  # quantization.json read back
        assert reloaded["3"].tau.tolist() == lif.tau.tolist() and reloaded["1:membrane"].w_in.tolist() == cuba.w_in.tolist()


@pytest.mark.parametrize(
    "layer, kind, expected",
    [
        (lambda: spc.MaskedPSN(k=2, T=8, lambda_init=1.0), "StepIndexed", "retrain the layer as a SlidingPSN"),
        (lambda: spc.SPSN(stochastic=True, seed=3), "stochastically", "stochastic=False"),
        (lambda: spc.LIF(tau=2.0, v_reset=None), "subtraction", "--target onnx,lava, or retrain with reset to zero"),
    ],
)
def test_what_nir_cannot_express_is_refused_naming_target_layer_and_alternative(tmp_path, layer, kind, expected):
    torch.manual_seed(0)
    compiled = spc.compile(nn.Sequential(nn.Linear(3, 4), layer()), (8, 2, 3), integer=False)
    with pytest.raises(SpcError) as e:
        emit_nir(compiled, tmp_path)
    assert "target 'nir', layer '1'" in str(e.value) and kind in str(e.value) and expected in str(e.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_max_pooling_is_refused(tmp_path):
    model = nn.Sequential(spc.PerStep(nn.MaxPool2d(2)), nn.Flatten(2), nn.Linear(4, 2), spc.LI())
    compiled = spc.compile(model, (4, 1, 1, 4, 4), integer=False)
    with pytest.raises(SpcError, match="target 'nir', layer '0.0': is max pooling(.|\n)*nn.AvgPool2d"):
        emit_nir(compiled, tmp_path)


# --- reading files ---------------------------------------------------------------------------
def _write(path, nodes, edges, **metadata):
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False))
    return path


def _lif_nodes(n_in=3, n=4, **lif):
    rng = np.random.default_rng(0)
    params = dict(tau=np.full(n, 2 * DT), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5), v_reset=np.zeros(n)) | lif
    return {"in": nir.Input(np.array([n_in])), "w": nir.Affine(rng.normal(size=(n, n_in)), np.zeros(n)), "lif": nir.LIF(**params), "out": nir.Output(np.array([n]))}


CHAIN = [("in", "w"), ("w", "lif"), ("lif", "out")]


def test_reading_refuses_files_that_are_not_nir_graphs(tmp_path):
    def refused(path, pattern):
        with pytest.raises(SpcError, match=pattern):
            from_nir(path)

    refused(tmp_path / "missing.nir", "does not exist")
    (tmp_path / "text.nir").write_text("not hdf5")
    refused(tmp_path / "text.nir", "is not an HDF5 file")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.arange(3))
    refused(tmp_path / "other.h5", "is an HDF5 file without a NIR node in it")
    nir.write(tmp_path / "node.nir", nir.Threshold(threshold=np.ones(2)))
    refused(tmp_path / "node.nir", "holds a single Threshold node, not a graph")
    with h5py.File(tmp_path / "broken.nir", "w") as f:  # a graph whose node lacks its parameters
        f.create_dataset("node/type", data="NIRGraph", dtype=h5py.string_dtype())
        f.create_dataset("node/nodes/lif/type", data="LIF", dtype=h5py.string_dtype())
    refused(tmp_path / "broken.nir", "holds a malformed NIR graph")


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda n, e: n.update(w=nir.Affine(np.ones((4, 5)), np.zeros(4))), "'w' \\(Affine\\): expects input of shape \\(5,\\) but receives \\(3,\\)"),
        (lambda n, e: n.update(lif=nir.Threshold(np.ones(5))), "'lif' \\(Threshold\\).*threshold of shape \\(5,\\) for an input of shape \\(4,\\)"),
        (lambda n, e: n["lif"].v_leak.fill(0.1), "'lif' \\(LIF\\).*leaks toward v_leak ≠ v_reset"),
        (lambda n, e: n.update(lif=nir.Delay(delay=np.ones(4))), "'lif' \\(Delay\\).*outside spc's FIR form"),
        (lambda n, e: e.append(("lif", "w")), "recurrent connection"),
        (lambda n, e: n.update(out=nir.Output(np.array([5]))), "'out' \\(Output\\): declares shape \\(5,\\) but receives \\(4,\\)"),
    ],
)
def test_reading_refuses_what_spc_cannot_map_naming_the_node(tmp_path, change, pattern):
    nodes, edges = _lif_nodes(), list(CHAIN)
    change(nodes, edges)
    with pytest.raises(SpcError, match=pattern):
        from_nir(_write(tmp_path / "g.nir", nodes, edges))


def test_subgraphs_are_inlined_and_dt_comes_from_the_metadata(tmp_path):
    x = _spikes((10, 2, 3))
    flat = from_nir(_write(tmp_path / "flat.nir", _lif_nodes(), CHAIN))
    inner = {k: v for k, v in _lif_nodes().items() if k != "out"} | {"o": nir.Output(np.array([4]))}
    nested = {"input": nir.Input(np.array([3])), "sub": nir.NIRGraph(inner, [("in", "w"), ("w", "lif"), ("lif", "o")], type_check=False), "output": nir.Output(np.array([4]))}
    graph = from_nir(_write(tmp_path / "nested.nir", nested, [("input", "sub"), ("sub", "output")]))
    assert [n.name for n in graph.nodes] == ["input", "sub.w", "sub.lif"]
    np.testing.assert_array_equal(run_stepwise(lower(graph), x).output, run_stepwise(lower(flat), x).output)
    assert flat.node("lif").op.decay.tolist() == [0.5]
    slow = from_nir(_write(tmp_path / "dt.nir", _lif_nodes(), CHAIN, dt=DT / 2))  # τ = 4 steps of dt/2
    assert slow.node("lif").op.decay.tolist() == [0.75]
    two_inputs = dict(inner, in2=nir.Input(np.array([3])))
    nested["sub"] = nir.NIRGraph(two_inputs, [("in", "w"), ("in2", "w"), ("w", "lif"), ("lif", "o")], type_check=False)
    with pytest.raises(SpcError, match="'sub' \\(NIRGraph\\): is a subgraph with 2 inputs and 1 outputs"):
        from_nir(_write(tmp_path / "two.nir", nested, [("input", "sub"), ("sub", "output")]))


def test_reading_synapses_as_nir_defines_them(tmp_path):
    """Conv2d with 'same' padding, SumPool2d, a per-channel Scale, Flatten, Affine and LI, against torch."""
    rng = np.random.default_rng(1)
    w, b, scale, fc = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2), np.array([0.5, -2.0]), rng.normal(size=(3, 8))
    nodes = {
        "in": nir.Input(np.array([1, 4, 4])),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding="same", dilation=1, groups=1, bias=b),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "scale": nir.Scale(np.broadcast_to(scale[:, None, None], (2, 2, 2)).copy()),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(fc, np.zeros(3)),
        "li": nir.LI(tau=np.full(3, 4 * DT), r=np.full(3, 2.0), v_leak=np.zeros(3)),
        "out": nir.Output(np.array([3])),
    }
    names = list(nodes)
    graph = from_nir(_write(tmp_path / "g.nir", nodes, list(zip(names, names[1:]))))
    x = rng.normal(size=(6, 2, 1, 4, 4))
    with torch.no_grad():
        y = torch.nn.functional.conv2d(torch.from_numpy(x).flatten(0, 1), torch.from_numpy(w), torch.from_numpy(b), padding=1)
        y = torch.nn.functional.avg_pool2d(y, 2) * 4 * torch.from_numpy(scale)[:, None, None]
        y = (y.flatten(1) @ torch.from_numpy(fc).T).reshape(6, 2, 3).numpy()
    v, expected = np.zeros((2, 3)), []
    for yt in y:  # a = 1 − 1/4, g = R·dt/τ = 2/4
        v = 0.75 * v + 0.5 * yt
        expected.append(v)
    np.testing.assert_allclose(run_parallel(graph, x).output, np.stack(expected), rtol=0, atol=1e-9)
    np.testing.assert_allclose(run_stepwise(lower(graph), x).output, np.stack(expected), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "tau_steps, r, kinds",
    [
        ([2, 2], 1.0, ["SPSN"]),  # g = 1 − a: SPSN(α = 0, β = a)
        ([2, 2], 2.0, ["SPSN"]),  # g = 1: SPSN(α = a, β = 0)
        ([2, 4], 1.0, ["LI", "SPSN"]),  # decays per channel: the LI, then a plain threshold
    ],
)
def test_reading_reset_free_thresholds(tmp_path, tau_steps, r, kinds):
    rng = np.random.default_rng(2)
    w, tau = rng.normal(size=(2, 3)), np.array(tau_steps, dtype=float)
    nodes = {
        "in": nir.Input(np.array([3])), "w": nir.Linear(w),
        "li": nir.LI(tau=tau * DT, r=np.full(2, r), v_leak=np.zeros(2)), "th": nir.Threshold(np.full(2, 0.3)),
        "out": nir.Output(np.array([2])),
    }
    names = list(nodes)
    graph = from_nir(_write(tmp_path / "g.nir", nodes, list(zip(names, names[1:]))))
    assert [n.op.kind for n in graph.neurons()] == kinds
    x = _spikes((20, 4, 3))
    v, expected = np.zeros((4, 2)), []
    for xt in x:
        v = (1 - 1 / tau) * v + r / tau * (xt @ w.T)
        expected.append(v > 0.3)
    np.testing.assert_array_equal(run_stepwise(lower(graph), x).output, np.stack(expected))
    assert 0 < np.mean(expected) < 1


def test_reading_spikingjelly_and_snntorch_exports(tmp_path):
    from snntorch.export_nir import export_to_nir
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_export_to_nir

    import snntorch as snn
    import snntorch.utils  # noqa: F401

    x = _spikes((20, 3, 6))
    torch.manual_seed(0)
    sj_net = nn.Sequential(layer.Linear(6, 10), neuron.LIFNode(tau=2.0, v_threshold=0.3), layer.Linear(10, 4), neuron.IFNode(v_threshold=0.3))
    nir.write(tmp_path / "sj.nir", sj_export_to_nir(sj_net, torch.zeros(1, 6)))
    sj_net.double()
    functional.reset_net(sj_net)  # the export ran it once
    with torch.no_grad():
        expected = np.stack([sj_net(xt).numpy() for xt in torch.from_numpy(x).double()])
    got = run_stepwise(lower(from_nir(tmp_path / "sj.nir")), x)
    np.testing.assert_array_equal(got.output, expected)
    assert expected.mean() > 0.05

    # snnTorch exports valid parameters only from per-neuron tensors, with the batch dimension ignored;
    # NIR resets in the step that fires, snnTorch's default (reset_delay=True) one step later
    neuron_options = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    lif = snn.Leaky(beta=torch.full((10,), 0.75), threshold=torch.full((10,), 0.3), **neuron_options)
    cuba = snn.Synaptic(alpha=torch.full((4,), 0.5), beta=torch.full((4,), 0.75), threshold=torch.full((4,), 0.5), **neuron_options)
    snn_net = nn.Sequential(nn.Linear(6, 10), lif, nn.Linear(10, 4), cuba)
    nir.write(tmp_path / "snn.nir", export_to_nir(snn_net, torch.zeros(1, 6), ignore_dims=[0]))
    snn.utils.reset(snn_net)  # the export ran it once
    with torch.no_grad():
        expected = np.stack([snn_net(xt).numpy() for xt in torch.from_numpy(x)])
    graph = from_nir(tmp_path / "snn.nir")
    assert [n.op.kind for n in graph.neurons()] == ["LIF", "LI", "LIF"]  # CubaLIF: current, then membrane
    got = run_stepwise(lower(graph), x)
    np.testing.assert_array_equal(got.output, expected)
    assert expected.mean() > 0.05


def test_norse_exports_are_refused_with_the_batch_dimension_named(tmp_path):
    import norse.torch as norse

    net = norse.SequentialState(nn.Linear(6, 4), norse.LIFBoxCell(norse.LIFBoxParameters(v_th=torch.full((4,), 0.5), v_leak=torch.zeros(4), v_reset=torch.zeros(4), tau_mem_inv=torch.full((4,), 500.0))))
    nir.write(tmp_path / "norse.nir", norse.to_nir(net, torch.zeros(1, 6)))
    with pytest.raises(SpcError, match="expects input of shape \\(6,\\) but receives \\(1, 6\\)(.|\n)*without the batch dimension"):
        from_nir(tmp_path / "norse.nir")


# --- spc's files in other readers ------------------------------------------------------------
def _lif_cuba_model(final):
    """LIF (R = 1), then LI → LIF, which spc writes as one CubaLIF (w_in = τ_syn/dt, R = τ_mem/dt)."""
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Linear(6, 16), spc.LIF(tau=2.0, v_threshold=0.4),
        nn.Linear(16, 12), spc.LI(tau=4.0, decay_input=False), spc.LIF(tau=2.0, decay_input=False, v_threshold=0.4),
        nn.Linear(12, 5), final,
    )


@pytest.mark.parametrize("reader", ["snntorch", "spikingjelly", "norse"])
def test_readers_reproduce_spc_spikes_of_lif_and_cubalif_layers(tmp_path, reader):
    x = _spikes((30, 4, 6))
    compiled = spc.compile(_lif_cuba_model(spc.LIF(tau=4.0, v_threshold=0.2)), x, calib=x)
    path = _emit(compiled, tmp_path)
    kinds = [type(n).__name__ for n in nir.read(path).nodes.values()]
    assert kinds.count("LIF") == 2 and kinds.count("CubaLIF") == 1 and "LI" not in kinds
    reference = run_stepwise(compiled.stepwise, x)
    for node in compiled.stepwise.neurons():  # no membrane within float32 rounding of a threshold
        if node.op.fire is not None:
            assert np.abs(reference.membranes[node.name] - node.op.fire.threshold).min() > 1e-5
    np.testing.assert_array_equal(run_reader(reader, path, x), reference.output)
    assert 0.05 < reference.output.mean() < 0.6


@pytest.mark.parametrize("reader", ["spikingjelly", "norse"])
def test_integrate_and_fire_layers_in_spikingjelly_and_norse(tmp_path, reader):
    """IF is R = g/dt (SpikingJelly requires R = 1/dt, Norse ignores R); snnTorch refuses R ≠ 1."""
    x = _spikes((30, 4, 6))
    compiled = spc.compile(_lif_cuba_model(spc.IF(v_threshold=0.5)), x, integer=False)
    path = _emit(compiled, tmp_path)
    assert [type(n).__name__ for n in nir.read(path).nodes.values()].count("IF") == 1
    reference = run_stepwise(compiled.stepwise, x)
    assert np.abs(reference.membranes["6"] - 0.5).min() > 1e-5 and reference.output.mean() > 0.05
    np.testing.assert_array_equal(run_reader(reader, path, x), reference.output)


def test_spikingjelly_runs_convolutional_networks(tmp_path):
    """Conv2d, AvgPool2d and Flatten (dimensions without the batch, which SpikingJelly shifts by one;
    snnTorch and Norse pass them to torch as they are, and fail)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        spc.PerStep(nn.Conv2d(1, 4, 3, padding=1)), spc.LIF(tau=2.0, v_threshold=0.3),
        spc.PerStep(nn.AvgPool2d(2)), nn.Flatten(2), nn.Linear(16, 5), spc.LIF(tau=2.0, v_threshold=0.05),
    )
    x = _spikes((20, 3, 1, 4, 4), rate=0.5)
    compiled = spc.compile(model, x, integer=False)
    reference = run_stepwise(compiled.stepwise, x)
    assert reference.output.mean() > 0.05
    np.testing.assert_array_equal(run_reader("spikingjelly", _emit(compiled, tmp_path), x), reference.output)


def test_exact_ties_fire_as_in_spc(tmp_path):
    """spc fires on h ≥ θ, written as v > nextafter(θ, −∞): membranes exactly at θ fire in spc's
    round trip and in SpikingJelly in float64 (Norse rounds its parameters to float32, so there
    nextafter(θ, −∞) is θ again and ties do not fire)."""
    model = nn.Sequential(nn.Linear(4, 3, bias=False), spc.IF(v_threshold=1.0))
    model[0].weight.data = torch.tensor([[0.25, 0.5, 0.25, 0.0], [0.5, 0.5, 0.0, 0.25], [0.75, 0.25, 0.5, 0.5]])
    x = _spikes((16, 3, 4), rate=0.5)
    compiled = spc.compile(model, x, integer=False)
    reference = run_stepwise(compiled.stepwise, x)
    assert np.any((reference.membranes["1"] == 1.0) & (reference.outputs["1"] == 1))
    path = _emit(compiled, tmp_path)
    assert nir.read(path).nodes["1"].v_threshold[0] == np.nextafter(1.0, 0.0)
    np.testing.assert_array_equal(run_stepwise(lower(from_nir(path)), x).output, reference.output)
    np.testing.assert_array_equal(run_reader("spikingjelly", path, x), reference.output)
