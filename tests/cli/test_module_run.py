"""``python -m xmlp`` and ``python -m xmlp.cli`` behave as the installed ``xmlp`` command: a
problem the user can fix is exit status 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import xmlp

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODULES = ["xmlp", "xmlp.cli"]


def run(argv: list[str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          cwd=cwd)


@pytest.mark.parametrize("module", MODULES)
def test_an_unwritable_out_is_one_line_and_exit_status_2(module, tmp_path):
    result = run([sys.executable, "-m", module, "demo", "--out", "missing-dir/x.png"], tmp_path)
    assert result.returncode == 2, result.stderr
    folder = os.path.join(os.path.realpath(tmp_path), "missing-dir")
    assert result.stderr == (
        f"xmlp demo: error: cannot write 'missing-dir/x.png': no directory {folder!r}\n")
    assert result.stdout == ""


@pytest.mark.parametrize("module", MODULES)
def test_a_missing_backend_is_one_line_and_exit_status_2(module, tmp_path):
    """Another CommandError, raised while importing the backend (a name made unimportable)."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "cupy.py").write_text("raise ImportError('no cupy here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(blocker), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-m", module, "demo", "--backend", "cupy",
                             "--out", "d.png"], capture_output=True, text=True, timeout=300,
                            check=False, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("xmlp demo: error: backend cupy is not available (no cupy "
                                    "here); pip install cupy-cuda12x")


@pytest.mark.parametrize("module", MODULES)
def test_the_demo_runs(module, tmp_path):
    result = run([sys.executable, "-m", module, "demo", "--epochs", "3", "--no-progress",
                  "--out", "d.png"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("final loss: ")
    assert (tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("module", MODULES)
def test_version_and_usage(module, tmp_path):
    result = run([sys.executable, "-m", module, "--version"], tmp_path)
    assert (result.returncode, result.stdout) == (0, f"xmlp {xmlp.__version__}\n")
    result = run([sys.executable, "-m", module], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: xmlp ")


def test_the_same_as_the_console_script(tmp_path):
    exe = shutil.which("xmlp", path=os.path.dirname(sys.executable)) or shutil.which("xmlp")
    if exe is None:
        pytest.skip("the xmlp console script is not installed beside this Python nor on PATH "
                    "(package not pip-installed)")
    argv = ["demo", "--out", "missing-dir/x.png"]
    want = run([exe, *argv], tmp_path)
    for module in MODULES:
        got = run([sys.executable, "-m", module, *argv], tmp_path)
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout,
                                                            want.stderr)
