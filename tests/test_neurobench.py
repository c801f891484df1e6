"""`spc inspect --input` against the real NeuroBench 2.3.0 on a snnTorch network.

The network is snnTorch's, exported to NIR by snnTorch and compiled by spc from that file;
NeuroBench measures the snnTorch network itself (SNNTorchModel, ActivationSparsity,
SynapticOperations) on the same input. The float stepwise form (`--float-only`) computes the same
spikes, so every metric agrees to the last digit; the integer form rounds, so only its
activity-independent count (Dense) and its input layer must agree. Analog input to a model
calibrated on spikes is rounded by the integer form: spc says so.
"""

import json
import warnings

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spc.cli import main

pytest.importorskip("neurobench", reason="needs the neurobench extra (python -m spc.extras install neurobench)")
snn = pytest.importorskip("snntorch")

T, B, FEATURES = 25, 16, 20


def _network() -> nn.Module:
    """Two snnTorch LIF layers; reset to zero in the step that fires (NIR's convention), per-neuron
    parameters (what snnTorch exports)."""
    torch.manual_seed(0)
    options = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    return nn.Sequential(
        nn.Linear(FEATURES, 32), snn.Leaky(beta=torch.full((32,), 0.8), threshold=torch.full((32,), 0.5), **options),
        nn.Linear(32, 5), snn.Leaky(beta=torch.full((5,), 0.8), threshold=torch.full((5,), 0.5), output=True, **options),
    )  # fmt: skip


def _neurobench(x: np.ndarray) -> dict:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel
    from torch.utils.data import DataLoader, TensorDataset

    data = DataLoader(TensorDataset(torch.from_numpy(x).transpose(0, 1), torch.zeros(x.shape[1])), batch_size=x.shape[1])  # NeuroBench: [B, T, ...]
    return Benchmark(SNNTorchModel(_network()), data, [], [], [[], [ActivationSparsity, SynapticOperations]]).run(quiet=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from snntorch.export_nir import export_to_nir

    tmp = tmp_path_factory.mktemp("neurobench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # snnTorch's exporter calls a deprecated nirtorch function
        nir.write(tmp / "net.nir", export_to_nir(_network(), torch.zeros(1, FEATURES), ignore_dims=[0]))
    rng = np.random.default_rng(0)
    np.save(tmp / "spikes.npy", (rng.random((T, B, FEATURES)) < 0.3).astype(np.float32))
    np.save(tmp / "analog.npy", rng.random((T, B, FEATURES)).astype(np.float32))
    return tmp


def _input_layer(metrics: dict) -> dict:
    return next(m for m in metrics["layers"].values() if "effective_ops" in m)  # layers in graph order


def _inspect(tmp, capsys, calib: str, x: str, *options: str) -> tuple[dict, str]:
    out = tmp / f"out-{calib}-{'-'.join(options)}"
    if not out.exists():
        assert main(["compile", str(tmp / "net.nir"), "--input-shape", f"{T},1,{FEATURES}", "--calib", str(tmp / calib), "-o", str(out), *options]) == 0
    metrics = tmp / "metrics.json"
    metrics.unlink(missing_ok=True)
    capsys.readouterr()
    assert main(["inspect", str(out), "--input", str(tmp / x), "--json", str(metrics)]) == 0
    return json.loads(metrics.read_text()), capsys.readouterr().err


@pytest.mark.parametrize("x", ["spikes.npy", "analog.npy"])
def test_the_float_form_agrees_with_neurobench_to_the_last_digit(exported, capsys, x):
    expected = _neurobench(np.load(exported / x))
    metrics, err = _inspect(exported, capsys, x, x, "--float-only")
    assert metrics["ActivationSparsity"] == expected["ActivationSparsity"]
    assert metrics["SynapticOperations"] == expected["SynapticOperations"]
    assert (expected["SynapticOperations"]["Effective_MACs"] > 0) == (x == "analog.npy")  # analog input: multiply-accumulates
    assert 0.5 < expected["ActivationSparsity"] < 0.99 and "warning" not in err


def test_the_integer_form_agrees_where_rounding_cannot_reach(exported, capsys):
    expected = _neurobench(np.load(exported / "spikes.npy"))
    metrics, _ = _inspect(exported, capsys, "spikes.npy", "spikes.npy")
    assert metrics["SynapticOperations"]["Dense"] == expected["SynapticOperations"]["Dense"]
    floats, _ = _inspect(exported, capsys, "spikes.npy", "spikes.npy", "--float-only")
    assert _input_layer(metrics) == _input_layer(floats)  # the same input spikes
    assert abs(metrics["ActivationSparsity"] - expected["ActivationSparsity"]) < 0.01  # a few spikes flip in the integer form


def test_analog_input_to_a_model_calibrated_on_spikes_is_called_out(exported, capsys):
    expected = _neurobench(np.load(exported / "analog.npy"))
    metrics, err = _inspect(exported, capsys, "spikes.npy", "analog.npy")
    assert "calibrated on integer (spike) input" in err and "analog.npy" in err and "--calib" in err
    assert metrics["SynapticOperations"]["Effective_MACs"] == 0 < expected["SynapticOperations"]["Effective_MACs"]  # rounded to spikes: what the warning says
