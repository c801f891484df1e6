"""Every neuron family spc compiles, on the digits of examples/digits.py, through every target.

For each family: Linear(64, 128) -> NEURON -> Linear(128, 10) -> LI readout, trained in parallel
form; compiled with both decay forms; verified (the original model, the parallel and float
stepwise forms, the integer form, and onnxruntime and Lava against spc's integer simulator); then a
table of accuracies and of which targets express the family (or why not). The time-indexed families
(MaskedPSN, IPSU, RPSU) are compiled once more with their kernels approximated by time-invariant
terms (`time_invariant=4`, opt-in), and the approximation's kernel error and accuracy change shown.

    python examples/neuron_families.py [--epochs 15] [--only PSU]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import spc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits  # noqa: E402  (examples/digits.py: data and training loop)
from spc.text_table import render

FAMILIES = {
    "SlidingPSN": lambda: spc.SlidingPSN(k=4),
    "MaskedPSN": lambda: spc.MaskedPSN(k=4, T=16, lambda_init=1.0),
    "SPSN": lambda: spc.SPSN(tau_syn=4.0, tau_mem=4.0),
    "LIF": lambda: spc.LIF(tau=2.0),
    "PSU": lambda: spc.PSU(T=16, threshold=0.5),
    "IPSU": lambda: spc.IPSU(T=16),
    "RPSU": lambda: spc.RPSU(T=16),
    "MPE-PSN A": lambda: spc.MPEPSN("A"),
    "MPE-PSN B": lambda: spc.MPEPSN("B"),
    "ChannelwisePSN": lambda: spc.ChannelwisePSN(128, k=4, dilation=2),
    "DSN": lambda: spc.DSN(128, threshold=0.5),
    "PRF": lambda: spc.PRF(128, threshold=0.1),
}
TIME_INDEXED = ("MaskedPSN", "IPSU", "RPSU")
TERMS = 4


def _target(entry: dict) -> str:
    """'yes', or the refusal's reason in brief (the cell the target has no form for)."""
    if "files" in entry:
        return "yes"
    reason = entry["skipped"].splitlines()[0]
    match = re.search(r"has an? (\w+) cell", reason)
    return f"refused ({match.group(1)})" if match else "refused (" + reason.split(": ")[-1][:40] + ")"


def approximate(name: str, model, scratch: Path, calib, x_test, y_test) -> tuple:
    """Compile with the time-indexed kernel replaced by TERMS time-invariant terms; its accuracy."""
    compiled = spc.compile(model, (digits.T, 1, 64), scratch / f"{name}-time-invariant", calib=calib, time_invariant=TERMS)
    (record,) = [a for a in compiled.manifest["approximations"] if "kernel_relative_error" in a]
    accuracy = spc.verify(compiled, x_test, model=model, labels=y_test, progress=False).accuracy
    change = accuracy["parallel"] - accuracy["torch-model"]
    return (name, f"{record['kernel_relative_error']:.3f}", *(f"{100 * accuracy[k]:.2f}%" for k in ("torch-model", "parallel", "integer")), f"{100 * change:+.2f} pts")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=None, help="use only this many digits (a quick run)")
    parser.add_argument("--only", default=None, help="families whose name contains this")
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = digits.load_data(args.samples)
    calib = x_train[:, :256]
    accuracy_rows, target_rows, approximation_rows, failed = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="spc-families-") as scratch:
        for name, make in FAMILIES.items():
            if args.only and args.only not in name:
                continue
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(64, 128), make(), nn.Linear(128, 10), spc.LI(tau=2.0))
            start = time.perf_counter()
            digits.train(model, x_train, y_train, args.epochs, desc=f"training {name}")
            trained = time.perf_counter() - start
            accuracy = {}
            for decay in ("int12", "shift"):
                out = Path(scratch) / f"{name}-{decay}".replace(" ", "_")
                taps = "pow2" if name == "ChannelwisePSN" else "int"
                compiled = spc.compile(model, (digits.T, 1, 64), out, calib=calib, decay=decay, taps=taps)
                backends = [b for b, target in (("onnx", "onnx"), ("lava", "lava")) if "files" in compiled.manifest["targets"][target]]
                report = spc.verify(compiled, x_test, model=model, labels=y_test, backends=backends, progress=False)
                if not report.passed:
                    failed.append(f"{name} ({decay})")
                accuracy.update({k: v for k, v in report.accuracy.items() if k != "integer"})
                accuracy[decay] = report.accuracy["integer"]
                if decay == "int12":
                    targets = compiled.manifest["targets"]
                    target_rows.append((name, _target(targets["onnx"]), _target(targets["nir"]), _target(targets["lava"]), ", ".join(backends) or "-"))
            if name in TIME_INDEXED:
                approximation_rows.append(approximate(name, model, Path(scratch), calib, x_test, y_test))
            accuracy_rows.append((name, *(f"{100 * accuracy[k]:.2f}%" for k in ("torch-model", "parallel", "stepwise-float", "int12", "shift")), f"{trained:.1f}"))
    print(render(("family", "torch model", "parallel", "float stepwise", "integer int12", "integer shift", "train s"), accuracy_rows))
    print()
    print(render(("family", "ONNX", "NIR", "Lava", "verified bit-exact on"), target_rows))
    if approximation_rows:
        print(f"\ntime-indexed kernels approximated by {TERMS} time-invariant terms (opt-in: --time-invariant {TERMS}), int12:")
        print(render(("family", "kernel rel. error", "exact model", "approximated parallel", "approximated integer", "change"), approximation_rows))
    print("\nevery family verified: " + ("yes" if not failed else "NO: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
