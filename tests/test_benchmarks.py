"""The benchmarks run (in their --quick form) so they cannot rot; their own checks of exactness
between the compared implementations run too. No timing is asserted."""

import importlib
import json


def _load(name):
    return importlib.import_module(name)  # benchmarks/ is on the path (conftest.py)


def test_simulator_benchmark_quick(tmp_path):
    doc = _load("sim_speed").main(["--quick", "--output-dir", str(tmp_path)])
    written = json.loads((tmp_path / "sim_speed_quick.json").read_text())
    assert written["results"] == json.loads(json.dumps(doc["results"]))
    assert {"cpu", "numpy", "torch", "command"} <= written["machine"].keys()
    for form in ("float", "integer"):
        assert written["results"]["quick"][form]["layer_major_s"]["min"] > 0


def test_compile_time_benchmark_quick(tmp_path):
    doc = _load("b3_compile_time").main(["--quick", "--output-dir", str(tmp_path)])
    assert [r["synapses"] for r in doc["results"]] == [9928, 30000]
    assert all(r["artifact_bytes"] > r["synapses"] for r in doc["results"])  # at least a byte per weight
    assert all(r["save_over_compile"]["runs"] == 2 for r in doc["results"]) and len(doc["targets"]) == 3
    (resnet,) = doc["resnet18"]  # the zoo's ResNet-18 (quick: 8x8, T = 1), written for every default target
    assert resnet["targets"] == ["lava", "nir", "onnx"] and resnet["synapses"] > 10_000_000


def test_memory_benchmark_quick(tmp_path, monkeypatch):
    b4 = _load("b4_memory")
    example = b4._example()
    monkeypatch.setattr(b4, "_example", lambda: example)
    monkeypatch.setattr(example, "CACHE", tmp_path / "cache")
    doc = b4.main(["--quick", "--output-dir", str(tmp_path)])
    assert [r["T"] for r in doc["results"]] == [256]
    assert all(r["parallel"]["peak_mib"]["min"] > 0 and r["stepwise"]["peak_mib"]["runs"] == 2 for r in doc["results"])


def test_inference_benchmark_quick(tmp_path):
    doc = _load("b2_inference").main(["--quick", "--output-dir", str(tmp_path)])
    assert set(doc["results"]) == {"GEMM floor", "sim", "sim (numpy kernels)", "float", "onnx-step", "onnx", "onnx (session built per run)", "onnx-float", "lava", "parallel"}
    sim = doc["results"]["sim"]
    assert sim["time_over_sim"]["median"] == 1.0 and sim["seconds"]["runs"] == 2
    assert sim["time_over_floor"]["min"] <= sim["time_over_floor"]["max"] and "met" in next(iter(doc["targets"].values()))
