"""Conventions of a Python command-line tool: --version, python -m spc, --debug after the command,
no torch import to answer --help, a missing optional part named, progress only on a terminal."""

import io
import subprocess
import sys

import numpy as np
import pytest
from torch import nn

import spc
from spc import extras
from spc.cli import main


def _spc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spc", *args], capture_output=True, text=True)


def test_version_and_python_dash_m():
    result = _spc("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"spc {spc.__version__}"
    result = _spc("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: spc ")


def test_help_does_not_import_torch():
    """`spc --help` answers without loading torch (about 4 s of a 4 s answer before)."""
    probe = "import sys\nfrom spc.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'onnx', 'scipy', 'nir') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_command_shows_the_traceback(where, tmp_path):
    command = ["inspect", str(tmp_path / "nowhere")]
    args = ["--debug", *command] if where == "before" else [*command, "--debug"]
    result = _spc(*args)
    assert result.returncode != 0 and "Traceback" in result.stderr and "SpcError" in result.stderr
    plain = _spc(*command)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


def test_a_missing_module_of_an_extra_names_the_extra_and_others_are_bugs():
    error = extras.for_missing_module(ModuleNotFoundError("No module named 'rockpool'", name="rockpool.devices"))
    assert error.exit_code == 2 and "'xylo' extra" in str(error) and "python -m spc.extras install xylo" in str(error)
    assert "pip install --no-deps --ignore-requires-python lava-nc==0.10.0" in str(extras.for_missing_module(ModuleNotFoundError(name="lava.magma")))
    assert extras.for_missing_module(ModuleNotFoundError(name="no_such_module")) is None


def test_extras_lists_what_is_installed():
    result = subprocess.run([sys.executable, "-m", "spc.extras"], capture_output=True, text=True)
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(rows) == set(extras.EXTRAS)
    assert all(" installed " in row for row in rows.values())  # make setup installs every extra


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    model = nn.Sequential(nn.Linear(4, 6), spc.SlidingPSN(k=2), nn.Linear(6, 3), spc.LI())
    x = (np.random.default_rng(0).random((5, 3, 4)) < 0.5).astype(np.float32)
    spc.compile(model, x, tmp_path / "plain", calib=x)
    spc.verify(tmp_path / "plain", x, backends=("lava",))
    assert capsys.readouterr().err == ""  # not a terminal: no bars

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    compiled = spc.compile(model, x, tmp_path / "shown", calib=x)
    report = spc.verify(compiled, x, backends=("lava",))
    shown = terminal.getvalue()
    for stage in ("tracing", "quantizing", "emitting onnx", "emitting lava", "parallel", "stepwise-float", "integer", "Lava fixed_pt"):
        assert stage in shown, stage
    assert report.passed
    assert "0/10 " in shown and "0/4 " in shown  # compile: trace, lower, 3 integer stages, the graphs, 4 targets; verify: 4 forms
