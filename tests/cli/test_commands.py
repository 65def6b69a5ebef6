"""The ``xmlp`` command: ``xmlp demo`` on every backend, its plot and errors; ``bench`` wiring."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import xmlp
from xmlp.cli import demo
from xmlp.cli.commands import main
from xmlp.data import generate_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def final_loss(out: str) -> float:
    match = re.search(r"^final loss: (\S+)$", out, re.MULTILINE)
    assert match, out
    return float(match.group(1))


def backend_name(xp) -> str:
    return xp.name.split(":")[0]


def test_default_demo_converges_and_writes_the_plot(tmp_path, capsys):
    out_png = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out_png)]) == 0
    out, err = capsys.readouterr()
    assert final_loss(out) < 0.15  # the seed notebook's bar, with the default seed
    assert str(out_png) in out
    assert err == ""  # no bar off a terminal
    assert out_png.read_bytes().startswith(PNG_MAGIC)
    from matplotlib.image import imread

    height, width, _ = imread(out_png).shape
    assert (width, height) == (1000, 400)


def _demo_matches_fit(xp, dtype_, tmp_path, capsys):
    x, y = generate_data()
    model = xmlp.MLP(1, 4, 1, rng=3, dtype=dtype_)
    expected = xmlp.fit(model, x.astype(dtype_), y.astype(dtype_), epochs=12, lr=0.1,
                        progress=False)[-1]
    out_png = tmp_path / "backend.png"
    code = main(["demo", "--epochs", "12", "--hidden", "4", "--dtype", dtype_, "--seed", "3",
                 "--backend", backend_name(xp), "--device", "cpu", "--out", str(out_png)])
    assert code == 0
    loss = final_loss(capsys.readouterr().out)
    assert loss == pytest.approx(expected, rel=1e-5)  # printed with 6 significant digits
    assert out_png.read_bytes().startswith(PNG_MAGIC)


def test_demo_on_every_backend_matches_numpy(xp, tmp_path, capsys):
    _demo_matches_fit(xp, "float64", tmp_path, capsys)


# float32 fit is tested on every backend in test_training.py; here only the --dtype flag (on
# JAX it would compile every op again)
@pytest.mark.xp_only("numpy", "torch")
def test_demo_float32_matches_numpy(xp, tmp_path, capsys):
    _demo_matches_fit(xp, "float32", tmp_path, capsys)


def test_demo_reports_what_fit_returns(tmp_path, capsys):
    assert main(["demo", "--epochs", "30", "--lr", "0.05", "--hidden", "6", "--seed", "2",
                 "--out", str(tmp_path / "d.png")]) == 0
    x, y = generate_data()
    model = xmlp.MLP(1, 6, 1, rng=2)
    history = xmlp.fit(model, x, y, epochs=30, lr=0.05, progress=False)
    assert final_loss(capsys.readouterr().out) == pytest.approx(history[-1], rel=1e-5)


def test_figure_shows_data_fit_true_curve_and_loss_curve():
    x, y = generate_data()
    grid = np.linspace(-1, 1, 7)[:, None]
    fitted = 0.5 * grid + 3  # not the truth: the true curve is drawn apart from it
    history = [3.0, 1.0, 0.5, 0.2]
    fig = demo.make_figure(x, y, grid, fitted, history, "title")
    ax_fit, ax_loss = fig.axes
    data, curve, truth = ax_fit.get_lines()
    np.testing.assert_array_equal(data.get_xdata(), x[:, 0])
    np.testing.assert_array_equal(data.get_ydata(), y[:, 0])
    np.testing.assert_array_equal(curve.get_xdata(), grid[:, 0])
    np.testing.assert_array_equal(curve.get_ydata(), fitted[:, 0])
    np.testing.assert_array_equal(truth.get_xdata(), grid[:, 0])
    np.testing.assert_allclose(truth.get_ydata(), 2 * grid[:, 0] ** 2 + 3, rtol=1e-15)
    assert truth.get_linestyle() != curve.get_linestyle()
    (loss_line,) = ax_loss.get_lines()
    np.testing.assert_array_equal(loss_line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(loss_line.get_ydata(), history)
    assert ax_loss.get_yscale() == "log"
    assert [t.get_text() for t in ax_fit.get_legend().get_texts()] == [
        "data points", "fitted curve", "true curve 2x² + 3"]


def test_each_task_writes_its_own_default_png(tmp_path, monkeypatch, capsys):
    """Without --out the regression writes demo.png and the digits demo digits.png, so running
    both keeps both pictures; --out still names the file."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "2"]) == 0
    assert "plot written to demo.png" in capsys.readouterr().out
    regression = (tmp_path / "demo.png").read_bytes()
    assert main(["demo", "--task", "digits", "--epochs", "1", "--hidden", "8",
                 "--batch-size", "256"]) == 0
    assert "plot written to digits.png" in capsys.readouterr().out
    assert (tmp_path / "digits.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "demo.png").read_bytes() == regression
    assert main(["demo", "--task", "digits", "--epochs", "1", "--hidden", "8",
                 "--batch-size", "256", "--out", "other.png"]) == 0
    assert "plot written to other.png" in capsys.readouterr().out
    assert (tmp_path / "other.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png", "digits.png", "other.png"]


def test_the_help_names_each_default_png(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: demo.png for regression, digits.png for digits" in help_text


def test_demo_progress_bar_on_request(tmp_path, capsys):
    assert main(["demo", "--epochs", "3", "--progress", "--out", str(tmp_path / "d.png")]) == 0
    assert "3/3" in capsys.readouterr().err


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["demo", "--backend", "mxnet"],
    ["demo", "--epochs", "0"],
    ["demo", "--lr", "-1"],
    ["demo", "--dtype", "float16"],
    ["demo", "--hidden", "two"],
    ["demo", "--no-such-flag"],
    [],
    ["nonsense"],
])
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["demo", "--out", str(tmp_path / "d.png")]) == 2
    out, err = capsys.readouterr()
    assert 'pip install matplotlib (from the xmlp checkout: pip install ".[plot]")' in err
    assert out == ""  # refused before training
    assert not (tmp_path / "d.png").exists()


def test_missing_backend_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["demo", "--backend", "cupy"]) == 2
    assert 'pip install cupy-cuda12x (from the xmlp checkout: pip install ".[cupy]")' in (
        capsys.readouterr().err)


@pytest.mark.parametrize(("backend", "device"), [
    pytest.param(name, dev, marks=pytest.mark.requires_backends(name), id=f"{name}-{dev}")
    for name, dev in [("numpy", "cuda:0"), ("torch", "nonsense"), ("array_api_strict", "device9")]
])
def test_unknown_device_is_an_error(backend, device, capsys):
    assert main(["demo", "--backend", backend, "--device", device]) == 2
    assert f"--device {device!r}" in capsys.readouterr().err


def test_unwritable_output_is_an_error(tmp_path, capsys):
    out_png = tmp_path / "missing-dir" / "d.png"
    assert main(["demo", "--epochs", "2", "--out", str(out_png)]) == 2
    out, err = capsys.readouterr()
    assert "cannot write" in err
    assert out == ""  # refused before training
    assert main(["demo", "--epochs", "2", "--out", str(tmp_path)]) == 2  # a directory
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.requires_backends("jax")
def test_jax_float64_turns_on_x64():
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        module = demo.import_backend("jax", "float64")
        assert module.zeros(1, dtype=module.float64).dtype == module.float64
    finally:
        jax.config.update("jax_enable_x64", before)


# -- bench and the console script --------------------------------------------------------------


def test_bench_gets_its_own_options(monkeypatch):
    calls = []
    fake = types.ModuleType("xmlp.cli.bench")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rounds", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        calls.append(args)
        return 7

    fake.add_arguments, fake.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "xmlp.cli.bench", fake)
    assert main(["bench", "--rounds", "3"]) == 7
    assert calls[0].rounds == 3
    with pytest.raises(SystemExit):
        main(["bench", "--no-such-flag"])


def test_demo_imports_no_benchmark_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "xmlp.cli.bench", None)  # importing it now raises ImportError
    assert main(["demo", "--epochs", "3", "--out", str(tmp_path / "d.png")]) == 0
    assert "final loss:" in capsys.readouterr().out


def test_import_xmlp_loads_no_optional_library():
    script = ("import sys, xmlp, xmlp.cli.commands; "
              "print([m for m in ('matplotlib', 'torch', 'jax', 'dask', 'array_api_strict', "
              "'xmlp.cli.bench', 'xmlp.cli.demo') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_console_script(tmp_path):
    exe = shutil.which("xmlp")
    if exe is None:
        pytest.skip("the xmlp console script is not on PATH (package not pip-installed)")
    result = subprocess.run([exe, "demo", "--epochs", "3", "--out", str(tmp_path / "d.png")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert final_loss(result.stdout) > 0
    assert (tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)


def test_diverging_demo_exits_1_and_says_why(tmp_path, capsys):
    with np.errstate(all="ignore"):  # NumPy would also warn about the overflow
        code = main(["demo", "--lr", "1000", "--epochs", "40", "--out", str(tmp_path / "d.png")])
    assert code == 1
    out, err = capsys.readouterr()
    assert re.search(r"loss of epoch \d+ is (nan|inf)", err)
    assert out == ""
    assert not (tmp_path / "d.png").exists()
