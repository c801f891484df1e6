"""The package as a pip user gets it: a wheel built from the checkout, installed into a fresh virtual
environment without the Makefile (the newest releases within pyproject.toml's ranges; torch from
the local disk), runs `spc --version`, `python -m spc --help`, a default compile (every target) and a
verify, builds and loads the native kernels from the source shipped in the wheel, and names the
extra to install for a part that is missing. Also: the ranges admit the versions `make setup`
installs, and the extras' install instructions are the ones the README gives.
"""

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement

import spc
from spc import extras

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
OFFLINE = re.compile(r"NewConnectionError|Failed to establish|Temporary failure in name resolution|Network is unreachable|ProxyError|No matching distribution found for torch")

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn
    import spc

    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 16), spc.SlidingPSN(k=3), nn.Linear(16, 12), spc.LIF(tau=2.0, v_reset=0.0), nn.Linear(12, 4), spc.LI(tau=2.0))
    """
)


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PIP, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new virtual environment holding only torch, the wheel of this checkout and what it declares."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"  # build from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(ROOT / "spc", source / "spc", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source))
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("spc_snn-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    torch_version = torch.__version__.split("+")[0]
    local_torch = _pip("--python", python, "install", "--quiet", "--no-compile", "--no-index", "--no-deps", f"torch=={torch_version}")
    if local_torch.returncode != 0:
        pytest.skip(f"torch {torch_version} is not on the local disk (pip's find-links); this test would download it")
    installed = _pip("--python", python, "install", "--quiet", "--no-compile", str(wheel))
    if installed.returncode != 0 and OFFLINE.search(installed.stderr):
        pytest.skip(f"the package index is not reachable: {installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr
    work = tmp / "work"
    work.mkdir()
    (work / "model.py").write_text(MODEL)
    np.save(work / "x.npy", (np.random.default_rng(0).random((12, 8, 6)) < 0.4).astype(np.float32))
    return venv, work


def _run(venv: Path, work: Path, *command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command of the fresh environment in `work`, with nothing of the checkout on its path."""
    return subprocess.run([str(venv / "bin" / command[0]), *command[1:]], cwd=work, capture_output=True, text=True, env={"PATH": str(venv / "bin") + ":/usr/bin:/bin", "HOME": str(work), **(env or {})})


def test_the_fresh_environment_has_the_newest_releases_in_range_and_not_the_checkout(fresh):
    venv, work = fresh
    where = _run(venv, work, "python", "-c", "import spc, numpy; print(spc.__file__); print(numpy.__version__)")
    assert where.returncode == 0, where.stderr
    path, numpy_version = where.stdout.split()
    assert path.startswith(str(venv)) and str(ROOT) not in path
    dependencies = {Requirement(r).name: Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert numpy_version in dependencies["numpy"].specifier


def test_version_and_help(fresh):
    venv, work = fresh
    version = _run(venv, work, "spc", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"spc {spc.__version__}"
    usage = _run(venv, work, "python", "-m", "spc", "--help")
    assert usage.returncode == 0 and "compile" in usage.stdout and "verify" in usage.stdout


def test_default_compile_emits_every_target_and_verify_passes(fresh):
    venv, work = fresh
    compiled = _run(venv, work, "spc", "compile", "model.py:build", "--input-shape", "12,1,6", "--calib", "x.npy", "-o", "out")
    assert compiled.returncode == 0, compiled.stderr
    for name in ("model.onnx", "model_seq.onnx", "model.nir", "lava/network.json", "integer/graph.json"):
        assert (work / "out" / name).is_file(), name
    verified = _run(venv, work, "spc", "verify", "out", "--input", "x.npy", "--model", "model.py:build", "--backends", "onnx")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.rstrip().splitlines()[-1].startswith("PASSED")
    assert re.search(r"^integer\s+onnx\s+\(output\).*\bok$", verified.stdout, re.M)


def test_a_missing_extra_is_exit_2_naming_it(fresh):
    venv, work = fresh
    if not (work / "out").exists():
        pytest.skip("needs the compiled model of the test before")
    lava = _run(venv, work, "spc", "verify", "out", "--input", "x.npy", "--backends", "lava")
    assert lava.returncode == 2, lava.stderr
    assert "'lava' extra" in lava.stderr and "pip install --no-deps --ignore-requires-python lava-nc==0.10.0" in lava.stderr
    assert "bug" not in lava.stderr


def test_native_kernels_build_from_the_wheel_and_load(fresh, tmp_path):
    venv, work = fresh
    check = "import pathlib, spc; from spc.frontends.torch.kernels import native; print(pathlib.Path(spc.__file__).parent); print(native.status())"
    loaded = _run(venv, work, "python", "-c", check, env={"SPC_CACHE_DIR": str(tmp_path)})
    assert loaded.returncode == 0, loaded.stderr
    package, status = loaded.stdout.splitlines()
    assert package.startswith(str(venv))
    sources = sorted(str(p.relative_to(ROOT / "spc")) for p in (ROOT / "spc").rglob("*.c"))
    assert sources and sorted(str(p.relative_to(package)) for p in Path(package).rglob("*.c")) == sources  # every C source ships
    assert status.startswith(f"loaded {tmp_path}"), status  # built now, from the wheel's source


def test_constraints_lie_within_the_declared_ranges():
    """`make setup` installs constraints.txt: the low end of the ranges, so both ends are tested."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            pins[requirement.name] = next(iter(requirement.specifier)).version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]] + [Requirement(r) for group in project["optional-dependencies"].values() for r in group]
    for requirement in declared:
        if requirement.name in pins:
            assert pins[requirement.name] in requirement.specifier, (requirement, pins[requirement.name])
    for requirement in (Requirement(r) for r in project["dependencies"]):
        assert requirement.name in pins, f"{requirement.name}: make setup does not pin the version it tests"
    assert set(project["optional-dependencies"]) == set(extras.EXTRAS) | {"test"}


def test_the_readme_gives_the_install_commands_spc_uses():
    readme = (ROOT / "README.md").read_text()
    for extra in extras.EXTRAS.values():
        assert f"`{extra.name}`" in readme, extra.name
        if extra.no_deps:
            assert " ".join(["pip install --no-deps", *extra.pip_flags, *extra.no_deps]) in readme, extra.name
