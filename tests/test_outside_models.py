"""Networks and files nobody on this project wrote compile and verify, or are refused with the
message asserted here: the PSN paper's published networks, SpikingJelly 2.0's model zoo (checked
against SpikingJelly's own forward), NIR files from the NIR repository's paper/ directory and from
SpikingJelly's and Norse's exporters (checked against the exporting framework, or an independent
simulation of the NIR graph). See tests/outside_models.py for where each network comes from."""

import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.cli import main
from spc.compiler.qcells import QRescale
from spc.errors import SpcError
from spc.frontends.nir import from_nir, read_nir
from spc.frontends.torch.loading import load_model
from spc.runtime.parallel import run_parallel

pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

import outside_models as om  # noqa: E402

NIR_FILES = Path(__file__).parent / "data" / "nir"


def spikes(shape, rate=0.5, seed=0):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def verified(model, x, out, backends=("onnx",), targets=("onnx",), **options):
    """Compile (calibrated on x) and verify against the model itself: every equivalence and exact
    comparison passes with no mismatch and no tie, and every spiking layer fires on x."""
    compiled = spc.compile(model, x, out, calib=x, targets=targets, **options)
    report = spc.verify(compiled, x, model=model, backends=backends)
    assert report.passed, report.table()
    gating = [c for c in report.comparisons if c.kind in ("equivalence", "exact")]
    assert all(c.spike_mismatches == 0 and c.ties == 0 and c.membrane_violations == 0 for c in gating), report.table()
    assert {c.candidate for c in gating} >= {"parallel", "stepwise-float", *backends}
    recorded = run_parallel(compiled.parallel, x)
    silent = [n.name for n in compiled.parallel.neurons() if n.op.spiking and not recorded.outputs[n.name].any()]
    assert not silent, f"layers that never fire, so the comparison says little: {silent}"
    return compiled, report


# --- the PSN paper's networks -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["MaskedPSN", "SlidingPSN", "LIF", "PLIF"])
def test_psn_paper_cifar10_net(tmp_path, kind):
    x = spikes((4, 2, 3, 32, 32))
    model = om.lively(om.PSNPaperCIFAR10Net(channels=4, kind=kind, T=4), x)
    compiled, report = verified(model, x, tmp_path / "out")
    assert compiled.stepwise.outputs == ("fc.3",)  # the logits head: a Linear, compared as values
    assert next(c for c in report.comparisons if c.layer == "(output)" and c.candidate == "onnx").spikes_compared == 0


def test_psn_paper_cifar10_net_with_full_psn_is_refused_or_approximated(tmp_path):
    """The paper's CIFAR-10 neuron (IFNode5, SpikingJelly's PSN) weighs future steps: refused with
    the share of weight on them, or compiled with --drop-future and the change measured."""
    x = spikes((4, 2, 3, 32, 32))
    model = om.lively(om.PSNPaperCIFAR10Net(channels=4, kind="PSN", T=4), x)
    with pytest.raises(SpcError, match=r"layer 'conv.2' \(PSN\): uses future inputs: [0-9.]+% of its weight mass(.|\n)*--drop-future"):
        spc.compile(model, x)
    compiled = spc.compile(model, x, tmp_path / "out", calib=x, targets=("onnx",), drop_future=True)
    assert len(compiled.manifest["approximations"]) == 7
    report = spc.verify(compiled, x, model=model, backends=("onnx",))
    assert report.passed  # the approximation is measured, not gating; everything after it is exact
    assert any(c.kind == "approximation" for c in report.comparisons)


def test_the_papers_own_psn_class_is_refused_by_its_path():
    """IFNode5 (the paper's code) is a neuron class spc does not know: its path, its class and the
    cause are named, and the neurons to use instead; so is a SpikingJelly neuron subclassed with
    dynamics of its own."""

    class IFNode5(nn.Module):  # cifar10/train_cf10.py, as published (its surrogate left out)
        def __init__(self, T):
            super().__init__()
            self.fc = nn.Linear(T, T)

        def forward(self, x_seq):
            h_seq = torch.addmm(self.fc.bias.unsqueeze(1), self.fc.weight, x_seq.flatten(1))
            return (h_seq >= 0).to(x_seq).view(x_seq.shape)

    model = nn.Sequential(layer.Linear(3, 4, step_mode="m"), IFNode5(4))
    with pytest.raises(SpcError, match=r"^1 \(.*IFNode5\): a neuron class spc does not know \(its forward\(\) reads its parameter 'fc.bias' directly\)(.|\n)*replace it with neuron.PSN / spc.PSN"):
        spc.compile(model, (4, 1, 3))
    with pytest.raises(SpcError, match=r"1 \(spikingjelly.*KLIFNode\): is a SpikingJelly neuron class spc does not compile(.|\n)*neuron.ParametricLIFNode"):
        spc.compile(nn.Sequential(layer.Linear(3, 4, step_mode="m"), neuron.KLIFNode(step_mode="m")), (4, 1, 3))

    class HalfChargeIFNode(neuron.IFNode):
        def neuronal_charge(self, x):
            self.v = self.v + 0.5 * x

    with pytest.raises(SpcError, match=r"^conv\.2 \(.*HalfChargeIFNode\): a neuron class spc does not know \(a subclass of SpikingJelly's IFNode(.|\n)*neuron.PSN / spc.PSN"):
        spc.compile(nn.Sequential(OrderedDict(conv=nn.Sequential(layer.Linear(3, 4, step_mode="m"), nn.Identity(), HalfChargeIFNode(step_mode="m")))), (4, 1, 3))


@pytest.mark.parametrize("kind, backends", [("MaskedPSN", ("onnx",)), ("SlidingPSN", ("onnx", "lava")), ("LIF", ("onnx", "lava")), ("PLIF", ("onnx",))])
def test_psn_paper_sequential_cifar_net(tmp_path, kind, backends):
    """One image column per step (T = width), Conv1d over the rows, AvgPool1d."""
    x = spikes((8, 2, 3, 8))
    model = om.lively(om.PSNPaperSequentialCIFARNet(channels=4, kind=kind, T=8, height=8), x)
    compiled, _ = verified(model, x, tmp_path / "out", backends=backends, targets=("onnx", "lava") if "lava" in backends else ("onnx",))
    kinds = [n.op.kind for n in compiled.parallel.nodes if n.name.startswith("conv.9")]
    assert kinds == ["Reshape", "AvgPool2d", "Reshape"]  # AvgPool1d(2) as the 1 × 2 pooling of [C, 1, L]


# --- SpikingJelly's model zoo --------------------------------------------------------------------
@pytest.mark.parametrize("connect", ["ADD", "AND", "IAND"])
def test_sew_resnet18(tmp_path, connect):
    from spikingjelly.activation_based.model import sew_resnet

    x = spikes((2, 2, 3, 32, 32))
    model = om.lively(om.resnet18(sew_resnet.BasicBlock, cnf=connect, spiking_neuron=neuron.IFNode), x)
    compiled, _ = verified(model, x, tmp_path / "out")
    kinds = {n.op.kind for n in compiled.integer.nodes}
    assert ("Mul" in kinds) == (connect != "ADD") and ("ScaleShift" in kinds) == (connect == "IAND")  # IAND: x · (1 − y)


def test_spiking_resnet18(tmp_path):
    from spikingjelly.activation_based.model import spiking_resnet

    x = spikes((2, 2, 3, 32, 32))
    model = om.lively(om.resnet18(spiking_resnet.BasicBlock, spiking_neuron=neuron.IFNode), x)
    compiled, _ = verified(model, x, tmp_path / "out")
    assert compiled.parallel.node("avgpool").op.kernel == (1, 1)  # AdaptiveAvgPool2d((1, 1)) of the 1×1 map


def test_the_zoos_own_sew_resnet18_traces_at_full_size():
    """sew_resnet18() itself (64..512 channels, SEWResNet's forward), float forms against SpikingJelly's."""
    from spikingjelly.activation_based.model import sew_resnet

    torch.manual_seed(0)
    model = sew_resnet.sew_resnet18(spiking_neuron=neuron.IFNode, cnf="ADD")
    functional.set_step_mode(model, "m")
    x = np.random.default_rng(0).random((1, 1, 3, 32, 32)).astype(np.float32)
    compiled = spc.compile(model.eval(), x, integer=False)
    assert len(compiled.parallel.neurons()) == 20 and compiled.parallel.shapes["fc"] == (1000,)
    report = spc.verify(compiled, x, model=model)
    assert report.passed and all(c.spike_mismatches == 0 for c in report.comparisons), report.table()


def test_spiking_vgg11_bn(tmp_path):
    """At 224 × 224 the head's AdaptiveAvgPool2d((7, 7)) is a plain average pooling; at CIFAR's
    32 × 32 it copies the 1 × 1 map to 7 × 7, a Linear between reshapes."""
    x = spikes((1, 2, 3, 224, 224))
    model = om.lively(om.VGG11BN(width=2), x)
    compiled, _ = verified(model, x, tmp_path / "out")
    assert compiled.parallel.node("avgpool").op.kernel == (1, 1)
    x = spikes((2, 2, 3, 32, 32))
    model = om.lively(om.VGG11BN(width=8), x)
    compiled, _ = verified(model, x, tmp_path / "out32")
    assert compiled.parallel.node("avgpool").op.kind == "Linear" and compiled.parallel.shapes["avgpool:unflat"] == (64, 7, 7)


def test_adaptive_average_pooling_with_unequal_windows_is_torchs(tmp_path):
    """Windows of unequal sizes that overlap (5 → 3: 0-1, 1-3, 3-4) and outputs larger than the input,
    1-d and 2-d: spc's parallel form against torch, its stepwise form and ONNX against it."""
    for i, (pool, shape) in enumerate([(nn.AdaptiveAvgPool2d((3, 2)), (3, 2, 4, 5, 7)), (nn.AdaptiveAvgPool2d((7, None)), (3, 2, 4, 1, 3)), (nn.AdaptiveAvgPool1d(3), (3, 2, 4, 5))]):
        model = nn.Sequential(spc.PerStep(pool), nn.Flatten(2))
        x = torch.randn(shape)
        compiled = spc.compile(model, shape, tmp_path / str(i), integer=False, targets=("onnx",))
        report = spc.verify(compiled, x.numpy(), model=model, backends=("onnx-float",))
        assert report.passed, report.table()
        expected = pool(x.flatten(0, 1)).unflatten(0, shape[:2]).flatten(2).detach().numpy()
        np.testing.assert_allclose(run_parallel(compiled.parallel, x.numpy()).output, expected, rtol=1e-6, atol=1e-6)  # torch in float32
    with pytest.raises(SpcError, match=r"^0\.0 \(torch\.nn\.AdaptiveAvgPool2d\): pools 13×13 to 7×7 in windows of unequal sizes(.|\n)*2,170,814,464 entries(.|\n)*multiples of the output size"):
        spc.compile(nn.Sequential(spc.PerStep(nn.AdaptiveAvgPool2d(7))), (1, 1, 512, 13, 13))


def test_mnist_net_with_parametric_lif_and_voting(tmp_path):
    from spikingjelly.activation_based.model import parametric_lif_net

    x = spikes((2, 2, 1, 28, 28))
    model = parametric_lif_net.MNISTNet(channels=4, spiking_neuron=neuron.ParametricLIFNode)
    functional.set_step_mode(model, "m")
    model = om.lively(model, x)
    compiled, _ = verified(model, x, tmp_path / "out")
    plif = compiled.parallel.node("conv_fc.2").op
    assert np.allclose(plif.decay, 1 - torch.sigmoid(model.conv_fc[2].w).item())  # τ from the learned w
    assert [n.op.kind for n in compiled.parallel.nodes[-3:]] == ["Reshape", "AvgPool2d", "Reshape"]  # VotingLayer(10)
    assert compiled.parallel.shapes[compiled.parallel.outputs[0]] == (10,)


def test_fashion_mnist_csnn(tmp_path):
    x = spikes((2, 2, 1, 28, 28))
    verified(om.lively(om.FashionMNISTCSNN(channels=4), x), x, tmp_path / "out")


def test_the_zoo_imports_without_a_working_torchvision(tmp_path):
    """A torchvision that fails to import (as a CUDA build beside a CPU torch does) is stood in for
    the zoo only, with a warning; any other importer still gets the real error."""
    broken = tmp_path / "site" / "torchvision"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    script = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        import spc
        with warnings.catch_warnings(record=True) as caught:
            from spikingjelly.activation_based.model import sew_resnet
        print([str(w.message)[:120] for w in caught if "torchvision" in str(w.message)])
        print(sew_resnet.load_state_dict_from_url.__module__)
        import torchvision
        try:
            torchvision.datasets
        except AttributeError as e:
            print("AttributeError", "stands in only" in str(e))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, timeout=300)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert "RuntimeError: operator torchvision::nms does not exist" in lines[0] and lines[1] == "torch.hub" and lines[2] == "AttributeError True"
    other = subprocess.run([sys.executable, "-c", "import spc, torchvision"], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert other.returncode != 0 and "torchvision::nms does not exist" in other.stderr


def test_a_complement_of_spikes_runs_on_every_target(tmp_path):
    """`1 - y` of a forward() (IAND's complement) is an integer ScaleShift: exact on onnxruntime and
    Lava (a Dense with the constant as offset), and a diagonal Affine in NIR."""

    class Complement(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif, self.fc2, self.readout = nn.Linear(6, 8), spc.LIF(tau=2.0, v_threshold=0.3), nn.Linear(8, 3), spc.LI(tau=2.0)

        def forward(self, x):
            return self.readout(self.fc2(1 - self.lif(self.fc1(x))))

    torch.manual_seed(0)
    x = spikes((8, 3, 6)) * 2
    compiled, _ = verified(Complement(), x, tmp_path / "out", backends=("onnx", "lava"), targets=("onnx", "lava", "nir"))
    (complement,) = [n.op for n in compiled.integer.nodes if n.op.kind == "ScaleShift"]
    assert complement.scale.tolist() == [-1] and complement.shift.tolist() == [1]
    assert type(nir.read(tmp_path / "out" / "model.nir").nodes["sub"]).__name__ == "Affine"


# --- integer sums of branches on scales that differ by other than a power of two ------------------
def test_requantized_sums_run_bit_for_bit_on_lava(tmp_path):
    x = spikes((8, 3, 6))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), spc.MPEPSN("B", tau=0.3), nn.Linear(8, 3), spc.LI(tau=2.0))
    compiled, report = verified(model, x, tmp_path / "out", backends=("onnx", "lava"), targets=("onnx", "lava"))
    assert any(isinstance(n.op.cells[0], QRescale) for n in compiled.integer.neurons())
    assert {c.candidate for c in report.comparisons if c.kind == "exact"} == {"onnx", "lava"}


# --- NIR files from other tools --------------------------------------------------------------------
def _nir_reference(path: Path, x: np.ndarray, dt: float) -> np.ndarray:
    """The NIR graph of cnn_sinabs.nir run as NIR defines its nodes, written here with torch:
    Conv2d, SumPool2d, Flatten (without the batch), Affine; IF: v ← v + R·dt·I, fires v > θ,
    then v ← v_reset."""
    import torch.nn.functional as F

    graph = nir.read(path, type_check=False)
    order = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]
    assert [a for a, b in sorted(graph.edges, key=lambda e: order.index(e[1]) if e[1] in order else 99)][:1] == ["input"]
    state = {}
    outputs = []
    for xt in torch.from_numpy(x).double():
        h = xt
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Conv2d):
                h = F.conv2d(h, torch.from_numpy(node.weight).double(), torch.from_numpy(node.bias).double(), tuple(node.stride), tuple(node.padding), tuple(node.dilation), node.groups)
            elif isinstance(node, nir.SumPool2d):
                h = F.avg_pool2d(h, tuple(node.kernel_size), tuple(node.stride), tuple(node.padding), divisor_override=1)
            elif isinstance(node, nir.Flatten):
                h = h.flatten(1 + node.start_dim)
            elif isinstance(node, nir.Affine):
                h = h @ torch.from_numpy(node.weight).double().T + torch.from_numpy(node.bias).double()
            elif isinstance(node, nir.IF):
                r, theta, reset = (torch.from_numpy(np.asarray(v, np.float64)) for v in (node.r, node.v_threshold, node.v_reset))
                v = state.get(name, reset.expand_as(h)) + r * dt * h
                fired = v > theta
                state[name] = torch.where(fired, reset, v)
                h = fired.double()
        outputs.append(h.numpy())
    return np.stack(outputs)


def test_nir_papers_cnn_from_sinabs(tmp_path):
    """paper/02_cnn/cnn_sinabs.nir (Sinabs: Conv2d, IF, SumPool2d, Flatten, Affine). Sinabs writes
    IF with R = 1 for a step of length 1, so it reads with dt = 1; spc's spikes are those of the
    graph run as NIR defines it, and the integer form runs bit for bit on onnxruntime."""
    path = NIR_FILES / "cnn_sinabs.nir"
    x = spikes((6, 2, 2, 34, 34), rate=0.3)
    compiled = spc.compile(path, x, tmp_path / "out", calib=x, targets=("onnx",), dt=1.0)
    assert compiled.manifest["nir"] == {"dt": 1.0, "dt_from": "--dt", "node_dt": {}}
    assert [n.op.kind for n in compiled.parallel.nodes if n.name in ("4", "7")] == ["SumPool2d", "SumPool2d"]
    expected = _nir_reference(path, x, dt=1.0)
    recorded = run_parallel(compiled.parallel, x)
    np.testing.assert_array_equal(recorded.output, expected)
    assert 0 < expected.mean() and all(recorded.outputs[n.name].any() for n in compiled.parallel.neurons())
    report = spc.verify(compiled, x, backends=("onnx",))
    assert report.passed, report.table()
    assert all(c.spike_mismatches == 0 for c in report.comparisons if c.kind in ("equivalence", "exact"))
    _, step = read_nir(path)
    assert step["dt"] == 1e-4 and step["dt_from"].startswith("spc's default")


def test_nir_papers_lif_files(tmp_path):
    """paper/01_lif: Norse's file compiles and spikes as Norse runs it; Rockpool's Output node
    carries batch and time dimensions of 1 and still reads; a constant drive and the recurrent
    braille networks are refused, naming the node."""
    import norse.torch as norse

    path = NIR_FILES / "lif_norse.nir"
    x = np.zeros((100, 2, 1), np.float32)
    x[:, 0], x[:, 1] = 3.0, 5.0  # constant input currents
    compiled = spc.compile(path, x, tmp_path / "norse", calib=x, targets=("onnx",))
    theirs = norse.from_nir(nir.read(path, type_check=False), dt=1e-4).double()
    state, expected = None, []
    with torch.no_grad():
        for xt in torch.from_numpy(x).double():
            out, state = theirs(xt, state)
            expected.append(out.numpy())
    expected = np.stack(expected)
    assert 5 < expected.sum() and np.array_equal(run_parallel(compiled.parallel, x).output, expected)
    assert spc.verify(compiled, x, backends=("onnx",)).passed
    rockpool = from_nir(NIR_FILES / "lif_rockpool.nir")
    assert rockpool.neurons()[0].op.kind == "LIF" and np.isclose(rockpool.neurons()[0].op.decay[0], 1 - 1e-4 / 0.0025)
    with pytest.raises(SpcError, match=r"NIR node 'lif1' \(LIF\): leaks toward v_leak ≠ v_reset"):
        from_nir(NIR_FILES / "two_lif_neurons.nir")
    for name in ("braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir"):
        with pytest.raises(SpcError, match="recurrent connection"):
            from_nir(NIR_FILES / name)


def test_a_time_constant_shorter_than_the_step_names_node_tau_and_dt():
    with pytest.raises(SpcError, match=r"NIR node '1' \(LIF\): has tau = 0.0025 s, shorter than the time step dt = 0.01 s \(--dt\)(.|\n)*--dt"):
        from_nir(NIR_FILES / "lif_norse.nir", dt=0.01)
    with pytest.raises(SpcError, match=r"--dt -1: is not a positive number of seconds"):
        from_nir(NIR_FILES / "lif_norse.nir", dt=-1)


def test_spikingjelly_exports_parametric_lif_as_lif(tmp_path):
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    x = spikes((20, 3, 6)) * 2
    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(6, 10), neuron.ParametricLIFNode(init_tau=3.0, v_threshold=0.3), layer.Linear(10, 4), neuron.ParametricLIFNode(init_tau=1.5, v_threshold=0.3))
    with torch.no_grad():
        net[1].w.fill_(-0.4)  # a learned 1/τ = σ(w)
    nir.write(tmp_path / "sj.nir", export_to_nir(net, torch.zeros(1, 6)))
    net.double()
    functional.reset_net(net)
    with torch.no_grad():
        expected = np.stack([net(xt).numpy() for xt in torch.from_numpy(x).double()])
    graph = from_nir(tmp_path / "sj.nir")
    assert [n.op.kind for n in graph.neurons()] == ["LIF", "LIF"]
    np.testing.assert_array_equal(run_parallel(graph, x).output, expected)
    assert expected.mean() > 0.05


def test_norse_exports_read_with_dt_squared(tmp_path):
    """Norse 1.1's to_nir writes τ = dt/τ_inv (dt its argument) where NIR means 1/τ_inv, and the
    Input with the example's batch dimension. With the Input fixed, the file reads right with
    --dt = dt², and spikes as Norse runs the network."""
    import norse.torch as norse

    dt = 1e-3
    params = norse.LIFBoxParameters(v_th=torch.full((4,), 0.3), v_leak=torch.zeros(4), v_reset=torch.zeros(4), tau_mem_inv=torch.full((4,), 200.0))
    torch.manual_seed(0)
    net = norse.SequentialState(nn.Linear(6, 4), norse.LIFBoxCell(params, dt=dt))
    graph = norse.to_nir(net, torch.zeros(1, 6), dt=dt)
    assert np.allclose(graph.nodes["1"].tau, dt / 200.0)  # not 1/200 s
    graph.nodes["input"] = nir.Input(np.array([6]))  # the batch dimension out of the Input
    nir.write(tmp_path / "norse.nir", graph)
    x = spikes((30, 2, 6)) * 3
    state, expected = None, []
    with torch.no_grad():
        for xt in torch.from_numpy(x):
            out, state = net(xt, state)
            expected.append(out.numpy())
    expected = np.stack(expected)
    got = run_parallel(from_nir(tmp_path / "norse.nir", dt=dt**2), x).output
    assert expected.sum() > 5 and np.array_equal(got, expected)


def test_cli_dt_and_the_step_it_reports(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(NIR_FILES / "lif_norse.nir"), "-o", str(out), "--dt", "2e-4", "--target", "onnx"]) == 0
    assert "NIR time step: dt = 0.0002 s (--dt)" in capsys.readouterr().out
    assert main(["compile", "model.py:build", "-o", str(tmp_path / "x"), "--dt", "1e-3"]) == 2
    assert "--dt: applies to NIR files only" in capsys.readouterr().err


# --- spc verify with a logits head ------------------------------------------------------------------
def test_cli_verifies_a_model_ending_in_a_linear_head(tmp_path, capsys, monkeypatch):
    """Linear → SlidingPSN → Linear (no readout neuron): every form, onnx and Lava, and accuracy by
    the argmax of the output summed over time."""
    monkeypatch.chdir(tmp_path)
    Path("model.py").write_text("import torch\nfrom torch import nn\nimport spc\n\ndef build():\n    torch.manual_seed(0)\n    return nn.Sequential(nn.Linear(8, 16), spc.SlidingPSN(k=3), nn.Linear(16, 4))\n")
    x = spikes((6, 12, 8))
    np.save("x.npy", x)
    reference = load_model("model.py:build")(torch.from_numpy(x)).detach().numpy()
    labels = reference.sum(axis=0).argmax(axis=1)
    labels[:3] = (labels[:3] + 1) % 4  # three wrong: 75 %
    np.save("y.npy", labels)
    assert main(["compile", "model.py:build", "-o", "out", "--input-shape", "6,1,8", "--calib", "x.npy"]) == 0
    capsys.readouterr()
    code = main(["verify", "out", "--input", "x.npy", "--labels", "y.npy", "--model", "model.py:build", "--backends", "sim,onnx,lava", "--json", "report.json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "accuracy: torch-model 75.00%, parallel 75.00%, stepwise-float 75.00%" in out
    rows = [line.split() for line in out.splitlines() if "(output)" in line and not line.startswith(" ")]  # table rows, not notes
    assert {r[1] for r in rows} >= {"parallel", "stepwise-float", "integer", "onnx", "lava"} and all(r[-1] in ("ok", "agree") for r in rows if r[1] != "integer")
