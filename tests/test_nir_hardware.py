"""spc's NIR files in the NIR readers of SynSense's own toolchains, Rockpool (Xylo) and Sinabs
(Speck / DynapCNN): which of spc's neurons arrive, and how far the imported networks reproduce spc's
float spikes (not exactly: both read NIR's time constants their own way). The README's target
table gives the same per family (tools/target_table.py)."""

import nir
import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.compiler.emit.nir import DT, emit_nir
from spc.runtime.nir_readers import ReaderError, run_reader
from spc.runtime.sim import run_stepwise


def _spikes(shape, rate=0.4, seed=0):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def _nir(model, x, tmp_path):
    """spc's NIR file of the float form, and the float form's spikes."""
    compiled = spc.compile(model, x, integer=False)
    (path,) = emit_nir(compiled, tmp_path)
    return path, run_stepwise(compiled.stepwise, x)


def _cuba(final):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 16), spc.LI(tau=2.0, decay_input=False), spc.LIF(tau=4.0, decay_input=False, v_threshold=0.4), nn.Linear(16, 5), final)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model


def test_rockpool_reads_cubalif_and_li_and_runs_them_on_its_own_time_step(tmp_path):
    """CubaLIF arrives as Rockpool's LIFTorch, LI as ExpSynTorch; Rockpool takes dt = τ_mem/(1 + R)
    (its own export's convention) instead of NIR's dt and fires graded counts, so the spikes differ."""
    from rockpool.nn.modules.torch.nir import from_nir

    x = _spikes((30, 4, 6))
    path, reference = _nir(_cuba(spc.LI(tau=4.0)), x, tmp_path)
    graph = nir.read(path)
    module = from_nir(graph)
    loaded = {name: type(m).__name__ for name, m in module.named_children()}
    assert (type(graph.nodes["2"]).__name__, loaded["2"]) == ("CubaLIF", "LIFTorch") and loaded["4"] == "ExpSynTorch"
    cuba = graph.nodes["2"]
    assert module.get_submodule("2").dt == pytest.approx(float(cuba.tau_mem[0] / (1 + cuba.r[0]))) != DT
    assert reference.outputs["2"].mean() > 0.1
    spiking, _ = _nir(nn.Sequential(*list(_cuba(spc.LI())[:3])), x, tmp_path / "spiking")
    got = run_reader("rockpool", spiking, x)
    expected = run_stepwise(spc.compile(nn.Sequential(*list(_cuba(spc.LI())[:3])), x, integer=False).stepwise, x).output
    assert got.shape == expected.shape and not np.array_equal(got, expected) and got.max() > 1  # graded counts


@pytest.mark.parametrize("neuron, message", [
    (spc.LIF(tau=2.0, v_threshold=0.4), "'LIF' object has no attribute 'tau_mem'"),  # Rockpool 3.1.0 reads a field NIR 1.0.8's LIF does not have
    (spc.IF(v_threshold=0.4), "Cannot convert <class 'nir.ir.neuron.IF'>"),
    (spc.SlidingPSN(k=3), "Cannot convert <class 'nir.ir.threshold.Threshold'>"),
])
def test_rockpool_refuses_lif_if_and_fir_files(tmp_path, neuron, message):
    torch.manual_seed(0)
    path, _ = _nir(nn.Sequential(nn.Linear(6, 8), neuron), _spikes((10, 2, 6)), tmp_path)
    with pytest.raises(ReaderError, match=message):
        run_reader("rockpool", path, _spikes((10, 2, 6)))


def test_sinabs_reads_lif_and_if_with_time_constants_as_steps_and_resets_by_subtraction(tmp_path):
    """Sinabs loads LIF as LIFSqueeze taking τ (seconds in NIR) as a number of steps, and IF as
    IAFSqueeze with a subtractive reset and a floor at −θ: it runs, close to spc's spikes but not equal."""
    import sinabs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), spc.LIF(tau=2.0, v_threshold=0.4), nn.Linear(16, 5), spc.IF(v_threshold=0.5))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[2].weight.mul_(3.0).add_(0.1)
    x = _spikes((30, 4, 6))
    path, reference = _nir(model, x, tmp_path)
    graph = nir.read(path)
    module = sinabs.from_nir(graph, batch_size=4)
    lif, iaf = module.get_submodule("1"), module.get_submodule("3")
    assert (type(lif).__name__, type(iaf).__name__) == ("LIFSqueeze", "IAFSqueeze")
    assert float(lif.tau_mem.detach()[0]) == pytest.approx(float(graph.nodes["1"].tau[0])) == pytest.approx(2 * DT)  # 2 steps of spc, 0.0002 "steps" of Sinabs
    assert float(iaf.min_v_mem.detach()[0]) == pytest.approx(-0.5)
    got = run_reader("sinabs", path, x)
    assert 0.1 < reference.output.mean() < 0.5
    assert got.shape == reference.output.shape and 0.5 < (got == reference.output).mean() < 1


def test_sinabs_drops_what_it_cannot_read_so_spc_refuses_to_run_it(tmp_path):
    """Sinabs returns nothing for a CubaLIF (or a bias-free Linear), and nirtorch then runs the graph
    without that node: a different network, which spc's reader refuses, naming the node."""
    x = _spikes((10, 2, 6))
    path, _ = _nir(nn.Sequential(*list(_cuba(spc.LI())[:3])), x, tmp_path)
    with pytest.raises(ReaderError, match=r"leaves out 2 \(CubaLIF\)"):
        run_reader("sinabs", path, x)
    torch.manual_seed(0)
    path, _ = _nir(nn.Sequential(nn.Linear(6, 8, bias=False), spc.LIF()), x, tmp_path / "linear")
    with pytest.raises(ReaderError, match=r"leaves out 0 \(Linear\)"):
        run_reader("sinabs", path, x)
