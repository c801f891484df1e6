"""A model built only with SpikingJelly's own classes, trained with SpikingJelly, compiled by spc.

The network uses SpikingJelly 2.0's parallel neurons (`neuron.SlidingPSN`, `neuron.MaskedPSN`) and
an `IFNode`, with its `layer.Linear` and `layer.SeqToANNContainer` in multi-step mode. It trains on
the digits of examples/digits.py for a few epochs; spc then compiles the SpikingJelly model directly
(no spc classes involved) and verifies every form against it.

    python examples/spikingjelly_model.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

import spc
from spc.quiet import quiet_third_parties

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits  # noqa: E402  (examples/digits.py: data and training loop)


def build_model() -> nn.Module:
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(0)
    return nn.Sequential(
        layer.Linear(64, 128, step_mode="m"),
        neuron.SlidingPSN(k=4, step_mode="m"),
        layer.SeqToANNContainer(nn.Linear(128, 128), nn.BatchNorm1d(128)),
        neuron.MaskedPSN(k=4, T=16, lambda_init=1.0, step_mode="m"),
        layer.Linear(128, 10, step_mode="m"),
        neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="m"),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=None, help="use only this many digits (a quick run)")
    parser.add_argument("--out", default="out/spikingjelly_digits")
    args = parser.parse_args(argv)
    quiet_third_parties()  # torch's "Triton not available" as SpikingJelly loads
    from spikingjelly.activation_based import functional

    x_train, y_train, x_test, y_test = digits.load_data(args.samples)
    model = build_model()

    class Reset(nn.Module):  # SpikingJelly's neurons keep state between calls: reset before each batch
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            functional.reset_net(self.net)
            return self.net(x)

    digits.train(Reset(model), x_train, y_train, args.epochs, desc="training (SpikingJelly)")
    model.eval()
    compiled = spc.compile(model, (digits.T, 1, 64), args.out, force=True, calib=x_train[:, :256])
    report = spc.verify(compiled, x_test, model=model, labels=y_test)
    print(report.table())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
