"""Every example runs in CI in a reduced form, so it cannot rot."""

import importlib


def _load(name):
    return importlib.import_module(name)  # examples/ is on the path (conftest.py)


def test_digits_trains_compiles_and_verifies(tmp_path, monkeypatch, capsys):
    digits = _load("digits")
    monkeypatch.setattr(digits, "CACHE", tmp_path / "cache")
    assert digits.main(["--out", str(tmp_path / "digits"), "--epochs", "12", "--samples", "500"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "stepwise-float" in out
    accuracy = {name: float(v.rstrip("%")) for name, v in (part.strip().rsplit(" ", 1) for part in out.split("accuracy:")[1].splitlines()[0].split(","))}
    assert accuracy["parallel"] == accuracy["stepwise-float"] == accuracy["torch-model"]
    assert accuracy["parallel"] > 70  # 12 epochs on 400 digits already learn a lot
    assert (tmp_path / "cache" / "digits-12ep.pt").exists()
    coverage = out.split("with --lava-stock --input-bits 2:")[1]
    assert "  masked: CPU only: spc process — a time-indexed kernel" in coverage and "  readout: Loihi 2: stock" in coverage
    assert "Lava fixed_pt equals spc's simulator on every layer: True" in coverage


def test_digits_integer_accuracy_is_within_half_a_point_of_float(tmp_path, monkeypatch):
    """The issue's bar, on the full example: both decay forms, calibrated, with a 3-epoch
    quantization-aware fine-tune where the calibrated model misses it. (Which one needs it depends on
    float rounding in training: with the native kernels none does; with the torch forms int12 loses
    2 of 360 digits before the fine-tune.)"""
    import numpy as np

    import spc

    digits = _load("digits")
    monkeypatch.setattr(digits, "CACHE", tmp_path / "cache")
    x_train, y_train, x_test, y_test = digits.load_data()
    trained = digits.trained_model(x_train, y_train, 30)

    def accuracy(model, decay):
        compiled = spc.compile(model, (digits.T, 1, 64), calib=x_train[:, :256], decay=decay)
        return spc.verify(compiled, x_test, labels=y_test, progress=False).accuracy

    for decay in ("int12", "shift"):
        acc = accuracy(trained, decay)
        if acc["integer"] < acc["stepwise-float"] - 0.005:
            acc = accuracy(digits.fine_tuned(trained, x_train, y_train, 3, decay=decay), decay)
        assert acc["stepwise-float"] > 0.95
        assert acc["integer"] >= acc["stepwise-float"] - 0.005, (decay, acc)
    assert len(y_test) == 360 and np.bincount(y_test).min() > 20


def test_spikingjelly_example_compiles_the_spikingjelly_model(tmp_path, capsys):
    example = _load("spikingjelly_model")
    assert example.main(["--epochs", "2", "--samples", "200", "--out", str(tmp_path / "sj")]) == 0
    out = capsys.readouterr().out
    assert "torch-model     parallel        1         isolated" in out and "PASSED" in out


def test_long_sequences_example_measures_bounded_stepwise_memory(tmp_path, monkeypatch, capsys):
    example = _load("long_sequences")
    monkeypatch.setattr(example, "CACHE", tmp_path / "cache")
    assert example.main(["--out", str(tmp_path / "long"), "--epochs", "1", "--test-steps", "600", "--test-samples", "8", "--memory-steps", "600"]) == 0
    out = capsys.readouterr().out
    assert "verification at T = 600" in out and "PASSED" in out
    small = example.measure("stepwise", tmp_path / "long", 512)
    large = example.measure("stepwise", tmp_path / "long", 8192)
    parallel = example.measure("parallel", tmp_path / "long", 8192)
    assert small["peak_bytes_above_baseline"] > 0 and parallel["peak_bytes_above_baseline"] > 0
    # streaming: 16x the steps, not 16x the memory (allow allocator noise of a few MiB)
    assert large["peak_bytes_above_baseline"] < small["peak_bytes_above_baseline"] + 8 * 2**20
    assert parallel["peak_bytes_above_baseline"] > 4 * large["peak_bytes_above_baseline"]


def test_neuron_families_example_verifies_every_family(capsys):
    example = _load("neuron_families")
    assert example.main(["--epochs", "1", "--samples", "200"]) == 0
    out = capsys.readouterr().out
    assert "every family verified: yes" in out
    for family in example.FAMILIES:
        assert family in out
    approximated = out.split("time-indexed kernels approximated")[1].splitlines()
    assert [line.split()[0] for line in approximated[3:3 + len(example.TIME_INDEXED)]] == list(example.TIME_INDEXED)
