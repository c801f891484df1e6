"""Digits: train a parallel spiking network, compile it to stepwise form, verify every form.

scikit-learn's 8×8 digits become spike sequences (T = 16 steps, each pixel fires with probability
intensity/16 at every step, from a fixed seed). Hidden layers: SlidingPSN, MaskedPSN and SPSN; a
leaky (LI) readout whose membrane, summed over time, scores the ten classes. Training runs in
parallel form on the CPU (about a minute) and is cached; then spc compiles the trained model and
proves the parallel and stepwise forms equal on the test set.

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


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch: int = 64) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).long()
    generator = torch.Generator().manual_seed(0)
    model.train()
    bar = tqdm(range(epochs), desc="training (parallel form)", unit="epoch")
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
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_data(args.samples)
    model = trained_model(x_train, y_train, args.epochs)

    compiled = spc.compile(model, (T, 1, 64), args.out, force=True)
    out = Path(args.out)
    np.save(out.parent / "digits_test_x.npy", x_test)
    np.save(out.parent / "digits_test_y.npy", y_test)
    print(f"compiled to {out}")

    report = spc.verify(compiled, x_test, model=model, labels=y_test)
    print(report.table())
    print(f"\nreproduce with the CLI:\n  spc verify {out} --input {out.parent / 'digits_test_x.npy'} --labels {out.parent / 'digits_test_y.npy'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
