"""Digits: train a parallel spiking network, compile it to stepwise and integer form, verify every form.

scikit-learn's 8×8 digits become spike sequences (T = 16 steps, each pixel fires with probability
intensity/16 at every step, from a fixed seed). Hidden layers: SlidingPSN, MaskedPSN and SPSN; a
leaky (LI) readout whose membrane, summed over time, scores the ten classes. Training runs in
parallel form on the CPU (seconds) and is cached; then spc compiles the trained model, proves the
parallel and float stepwise forms equal on the test set, measures the integer form's fidelity, and
compares the integer accuracy of both decay forms, before and after a short quantization-aware
fine-tune for the bit-shift form. Last, its Loihi 2 coverage: which layers run on Lava's stock
processes as compiled, and with scales chosen for them (`--lava-stock`), checked against Lava.

    python examples/digits.py                 # train (or load the cache), compile, verify
    spc compile examples/digits.py:build_model --weights examples/.cache/digits.pt --input-shape 16,1,64 -o out/digits
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import spc
from spc.compiler.xylo import DEVICE
from spc.compiler.xylo import coverage as xylo_coverage

T = 16
CACHE = Path(__file__).resolve().parent / ".cache"


def build_model() -> nn.Module:
    """The network (untrained); also the factory `spc compile` loads."""
    torch.manual_seed(0)
    layers = [
        ("fc1", nn.Linear(64, 128)),
        ("sliding", spc.SlidingPSN(k=4)),
        ("fc2", nn.Linear(128, 128)),
        ("masked", spc.MaskedPSN(k=4, T=T, lambda_init=1.0)),
        ("fc3", nn.Linear(128, 64)),
        ("spsn", spc.SPSN(tau_syn=4.0, tau_mem=4.0)),
        ("fc_out", nn.Linear(64, 10)),
        ("readout", spc.LI(tau=2.0)),
    ]
    return nn.Sequential(OrderedDict(layers))


def load_data(samples: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spike-encoded digits: (x_train [T, N, 64], y_train, x_test, y_test), deterministic."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.target))
    if samples is not None:
        order = order[:samples]
    images, labels = digits.data[order] / 16.0, digits.target[order]
    spikes = (rng.random((T,) + images.shape) < images[None]).astype(np.float32)
    split = int(0.8 * len(labels))
    return spikes[:, :split], labels[:split], spikes[:, split:], labels[split:]


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch: int = 64, lr: float = 2e-3, desc: str = "training (parallel form)") -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).long()
    generator = torch.Generator().manual_seed(0)
    model.train()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=None)  # on a terminal only
    for _ in bar:
        order = torch.randperm(len(ys), generator=generator)
        for start in range(0, len(ys), batch):
            idx = order[start : start + batch]
            loss = nn.functional.cross_entropy(model(xs[:, idx]).mean(0), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()


def fine_tuned(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, **quantization) -> nn.Module:
    """A copy of the model after a short quantization-aware fine-tune (spc.quantization_aware)."""
    import copy

    tuned = copy.deepcopy(model)
    with spc.quantization_aware(tuned, **quantization):
        train(tuned, x, y, epochs, lr=5e-4, desc="quantization-aware fine-tune")
    return tuned


def trained_model(x_train, y_train, epochs: int) -> nn.Module:
    model = build_model()
    checkpoint = CACHE / f"digits-{epochs}ep.pt"
    if checkpoint.exists():
        model.load_state_dict(torch.load(checkpoint, weights_only=True))
        print(f"loaded the trained model from {checkpoint}")
    else:
        start = time.perf_counter()
        train(model, x_train, y_train, epochs)
        print(f"trained in {time.perf_counter() - start:.0f} s")
        CACHE.mkdir(exist_ok=True)
        torch.save(model.state_dict(), checkpoint)
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/digits", help="where to write the compiled model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=None, help="use only this many digits (a quick run)")
    parser.add_argument("--qat-epochs", type=int, default=3, help="epochs of the quantization-aware fine-tune")
    parser.add_argument("--backends", default="onnx,lava", help="runtimes to verify against spc's simulators (comma-separated; '' for none)")
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_data(args.samples)
    model = trained_model(x_train, y_train, args.epochs)
    calib = x_train[:, :256]

    compiled = spc.compile(model, (T, 1, 64), args.out, force=True, calib=calib)
    out = Path(args.out)
    for name, array in (("digits_test_x", x_test), ("digits_test_y", y_test), ("digits_calib", calib)):
        np.save(out.parent / f"{name}.npy", array)
    print(f"compiled to {out}")

    for target, entry in compiled.manifest["targets"].items():
        print(f"target {target}: " + (", ".join(entry["files"]) if "files" in entry else f"skipped ({entry['skipped'].splitlines()[0]})"))
    print(f"\nXylo coverage ({DEVICE}):\n{xylo_coverage(compiled.stepwise)}\n")
    report = spc.verify(compiled, x_test, model=model, labels=y_test, backends=args.backends.split(",") if args.backends else ())
    print(report.table())

    print("\ninteger accuracy by decay form (test set):")
    rows = []
    for decay in ("int12", "shift"):
        form = spc.compile(model, (T, 1, 64), calib=calib, decay=decay)
        rows.append((decay, "trained", spc.verify(form, x_test, labels=y_test).accuracy))
    tuned = fine_tuned(model, x_train, y_train, args.qat_epochs, decay="shift")
    form = spc.compile(tuned, (T, 1, 64), calib=calib, decay="shift")
    rows.append(("shift", f"+{args.qat_epochs} epochs quantization-aware", spc.verify(form, x_test, model=tuned, labels=y_test).accuracy))
    from spc.text_table import render

    print(render(("decay", "model", "float", "integer", "integer − float"), [(d, m, f"{100 * a['stepwise-float']:.2f}%", f"{100 * a['integer']:.2f}%", f"{100 * (a['integer'] - a['stepwise-float']):+.2f} pp") for d, m, a in rows]))
    stock_passed = loihi_coverage(model, calib, compiled, x_test, y_test, "lava" in args.backends.split(","))
    print(f"\nreproduce with the CLI:\n  spc verify {out} --input {out.parent / 'digits_test_x.npy'} --labels {out.parent / 'digits_test_y.npy'} --backends sim,onnx,lava --report {out.parent / 'digits_report.html'}")
    return 0 if report.passed and stock_passed else 1


def loihi_coverage(model: nn.Module, calib: np.ndarray, compiled: spc.Compiled, x_test, y_test, run_lava: bool) -> bool:
    """Print which layers run on Lava's stock processes (Loihi 2) as compiled and when compiled with
    --lava-stock (2-bit inputs hold the 0/1 spikes and leave the stock neurons' 16-bit input room),
    that form's accuracy, and (with `run_lava`) its agreement with Lava's own models."""
    from spc.compiler.summary import placement_summary

    print("\nLoihi 2 coverage as compiled:\n" + placement_summary(compiled))
    stock = spc.compile(model, (T, 1, 64), calib=calib, lava_stock=True, input_bits=2)
    report = spc.verify(stock, x_test, labels=y_test, backends=("lava",) if run_lava else ())
    print("with --lava-stock --input-bits 2:\n" + placement_summary(stock))
    accuracy = report.accuracy
    lava = [c for c in report.comparisons if c.candidate == "lava"]
    exact = f"; Lava fixed_pt equals spc's simulator on every layer: {all(c.passed for c in lava)}" if lava else ""
    print(f"integer accuracy {100 * accuracy['integer']:.2f}% (float {100 * accuracy['stepwise-float']:.2f}%){exact}")
    return report.passed


if __name__ == "__main__":
    raise SystemExit(main())
