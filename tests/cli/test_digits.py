"""The digits data shipped with xmlp, the stratified split, and ``xmlp demo --task digits``."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from xmlp.cli import demo
from xmlp.cli.commands import main
from xmlp.data import load_digits, stratified_split

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def printed_accuracy(out: str) -> float:
    match = re.search(r"^test accuracy: (0\.\d{3}|1\.000)$", out, re.MULTILINE)
    assert match, out
    return float(match.group(1))


def test_load_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 64) and images.dtype == np.float64
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    assert np.array_equal(images, np.round(images))  # counts of on pixels
    np.testing.assert_array_equal(np.bincount(labels),
                                  [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    # the first image is a zero: a ring of ink around an empty middle
    first = images[0].reshape(8, 8)
    assert labels[0] == 0 and first[3:5, 3:5].sum() == 0 and first[0].sum() > 0


def test_load_digits_is_scikit_learns_copy():
    datasets = pytest.importorskip("sklearn.datasets")
    images, labels = load_digits()
    theirs = datasets.load_digits()
    np.testing.assert_array_equal(images, theirs.data)
    np.testing.assert_array_equal(labels, theirs.target)


def test_stratified_split():
    _, labels = load_digits()
    train, test = stratified_split(labels, 0.2, seed=1)
    assert len(train) + len(test) == 1797 and len(np.intersect1d(train, test)) == 0
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    counts = np.bincount(labels)
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=10),
                                  np.round(0.2 * counts).astype(int))
    again, _ = stratified_split(labels, 0.2, seed=1)
    np.testing.assert_array_equal(train, again)
    other, _ = stratified_split(labels, 0.2, seed=2)
    assert not np.array_equal(train, other)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0)
    with pytest.raises(TypeError, match="1-D integers"):
        stratified_split(labels.astype(float))


def test_digits_demo_reaches_its_accuracy(tmp_path, capsys, monkeypatch):
    """The default digits demo, on NumPy, without scikit-learn: at least 0.97 on the held-out
    test images, and a PNG with three panels."""
    monkeypatch.setitem(sys.modules, "sklearn", None)  # importing it now raises ImportError
    out_png = tmp_path / "digits.png"
    assert main(["demo", "--task", "digits", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert printed_accuracy(out) >= 0.97
    assert "1438 training, 359 test images" in out
    from matplotlib.image import imread

    assert out_png.read_bytes().startswith(PNG_MAGIC)
    height, width, _ = imread(out_png).shape
    assert (width, height) == (1500, 450)


def test_digits_demo_same_result_on_every_backend(xp, tmp_path, capsys):
    name = xp.name.split(":")[0]
    argv = ["demo", "--task", "digits", "--epochs", "2", "--batch-size", "128", "--hidden", "16",
            "--seed", "3", "--out", str(tmp_path / "d.png")]
    assert main([*argv, "--backend", "numpy"]) == 0
    want = printed_accuracy(capsys.readouterr().out)
    assert main([*argv, "--backend", name, "--device", "cpu"]) == 0
    assert printed_accuracy(capsys.readouterr().out) == want


def test_digits_figure():
    from xmlp.training.loop import History

    history = History([1.0, 0.5, 0.2])
    history.val_loss[:] = [1.1, 0.7, 0.4]
    history.accuracy[:] = [0.5, 0.8, 0.9]
    history.val_accuracy[:] = [0.4, 0.7, 0.85]
    confusion = np.diag(np.arange(1, 11))
    confusion[3, 5] = 2
    fig = demo.make_digits_figure(history, confusion, "title")
    ax_loss, ax_acc, ax_conf = fig.axes
    train, val = ax_loss.get_lines()
    np.testing.assert_array_equal(train.get_ydata(), [1.0, 0.5, 0.2])
    np.testing.assert_array_equal(val.get_ydata(), [1.1, 0.7, 0.4])
    train, val = ax_acc.get_lines()
    np.testing.assert_array_equal(val.get_ydata(), [0.4, 0.7, 0.85])
    assert "0.850" in ax_acc.get_title()
    np.testing.assert_array_equal(ax_conf.get_images()[0].get_array(), confusion)
    texts = sorted(t.get_text() for t in ax_conf.texts)
    assert len(texts) == 11 and "2" in texts


def test_bad_task_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--task", "mnist"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_import_xmlp_reads_no_data_file():
    script = ("import sys, xmlp, xmlp.data; import gzip; "
              "print('xmlp.cli.demo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "False"
