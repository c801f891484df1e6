"""spc's optional parts (pip extras), what each needs, and how to install it.

An extra's ordinary requirements are in pyproject.toml (`pip install 'spc-snn[lava]'`). Some of the
packages the extras are about cannot be pip dependencies at all, and `NO_DEPS` below is the one
place that says which and why: lava-nc 0.10.0 declares Python < 3.11 (spc runs it on 3.11, see
`spc.runtime.lava.compat`), and SpikingJelly, Norse and NeuroBench depend on torchvision or
torchaudio, whose wheels would replace the installed torch (on Linux, by a multi-GB CUDA build).
They are installed with `--no-deps` after their extra, whose requirements are the ones they need
at import.

    python -m spc.extras                      # which extras are installed
    python -m spc.extras install lava [PIP OPTIONS]   # the extra's requirements, then its --no-deps part

`make setup` installs every extra this way, so the Makefile and a pip user install the same thing.
When a command needs a missing extra it exits with status 2 and these instructions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass

from spc.errors import SpcError

DISTRIBUTION = "spc-snn"
"""spc's name on the package index (the import name and the command are `spc`)."""


@dataclass(frozen=True)
class Extra:
    name: str
    purpose: str
    modules: tuple[str, ...]  # what it makes importable
    no_deps: tuple[str, ...] = ()  # requirements installed with --no-deps after the extra's own
    pip_flags: tuple[str, ...] = ()  # further pip options for those

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    def install_hint(self) -> str:
        steps = [f"pip install '{DISTRIBUTION}[{self.name}]'"]
        if self.no_deps:
            steps.append(" ".join(["pip install --no-deps", *self.pip_flags, *self.no_deps]))
        return f"python -m spc.extras install {self.name}  (that is: {'; then '.join(steps)})"


EXTRAS = {
    e.name: e
    for e in (
        Extra("lava", "Lava (lava-nc 0.10.0), to run the Lava target (backends lava, lava-float)", ("lava", "networkx", "asteval"), ("lava-nc==0.10.0",), ("--ignore-requires-python",)),
        Extra("spikingjelly", "SpikingJelly 2.0, to train and compile SpikingJelly models", ("spikingjelly", "loguru"), ("spikingjelly==2.0.0",)),
        Extra("nir-readers", "snnTorch, Norse, nirtorch and Sinabs, to run spc's NIR files in other frameworks", ("snntorch", "norse", "nirtorch", "sinabs"), ("norse==1.1.0", "sinabs==3.1.3")),
        Extra("xylo", "Rockpool and XyloSim, to map and simulate SynSense Xylo", ("rockpool", "xylosim")),
        Extra("neurobench", "NeuroBench 2.3, to measure snnTorch models by NeuroBench's metrics", ("neurobench", "snntorch"), ("neurobench==2.3.0",)),
    )
}


def require(name: str, subject: str) -> None:
    """Raise an SpcError (exit status 2) naming the extra to install when extra `name` is missing."""
    extra = EXTRAS[name]
    missing = extra.missing()
    if missing:
        raise SpcError(subject, f"needs {extra.purpose}; not installed (no module {', '.join(repr(m) for m in missing)})", f"install the '{name}' extra: {extra.install_hint()}")


def for_missing_module(error: ModuleNotFoundError) -> SpcError | None:
    """The SpcError for an import that failed because an extra is missing, or None when the missing
    module belongs to no extra (then it is a broken install or a bug)."""
    root = (error.name or "").split(".")[0]
    for extra in EXTRAS.values():
        if root in extra.modules:
            return SpcError(f"module '{error.name}'", f"is part of {extra.purpose}, which is not installed", f"install the '{extra.name}' extra: {extra.install_hint()}")
    return None


def requirements(name: str) -> list[str]:
    """The extra's own requirements, as the installed spc declares them (pyproject.toml)."""
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise SpcError(DISTRIBUTION, "is not installed as a package, so its extras are unknown", "install spc with pip (pip install -e . in a checkout)") from None
    marker = f'extra == "{name}"'
    return [r.split(";")[0].strip() for r in declared if marker in r.replace("'", '"')]


def install(names: list[str], pip_options: list[str]) -> None:
    """pip install each extra's requirements, then its --no-deps part, into this interpreter's environment."""
    pip = [sys.executable, "-m", "pip", "install", *pip_options]
    wanted = [EXTRAS[n] for n in names]
    ordinary = [r for e in wanted for r in requirements(e.name)]
    if ordinary:
        subprocess.run([*pip, *ordinary], check=True)
    for extra in wanted:
        if extra.no_deps:
            subprocess.run([*pip, "--no-deps", *extra.pip_flags, *extra.no_deps], check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spc.extras", description="List spc's optional parts, or install some of them.")
    sub = p.add_subparsers(dest="command")
    i = sub.add_parser("install", help="install extras (their requirements, then their --no-deps part); options after the names go to pip")
    i.add_argument("names", nargs="+", choices=[*EXTRAS, "all"], metavar="EXTRA", help=f"{', '.join(EXTRAS)}, or all")
    args, pip_options = p.parse_known_args(argv)
    if args.command is None:
        if pip_options:
            p.error(f"unrecognized arguments: {' '.join(pip_options)}")
        for extra in EXTRAS.values():
            missing = extra.missing()
            state = "installed" if not missing else f"missing ({', '.join(missing)})"
            print(f"{extra.name:<13} {state:<28} {extra.purpose}")
        return 0
    names = list(EXTRAS) if "all" in args.names else list(dict.fromkeys(args.names))
    try:
        install(names, pip_options)
    except SpcError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except subprocess.CalledProcessError as e:
        return e.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
