"""Behaviour at the edges that the mutation run (tests/mutation/) found untested: the ReLU
gradient at 0, where save() puts its temporary file and with what mode, to() keeping what it is
not asked to change, init="xavier"/"he" biases where the parameters live, updates through the
checked slow path, and the reprs."""

from __future__ import annotations

import os
import stat

import array_api_strict as strict
import numpy as np
from array_api_compat import device

import xmlp
from reference import mlp_step


def test_relu_gradient_at_zero_is_zero():
    """Documented: gradient 1 where x > 0, else 0 (so 0 at x == 0, like max(x, 0)'s
    convention in PyTorch)."""
    relu = xmlp.ReLU()
    x = np.array([-1.0, -0.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(relu.forward(x), [0.0, 0.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(relu.backward(np.full(5, 3.0)), [0.0, 0.0, 0.0, 3.0, 3.0])


def test_save_writes_its_temporary_file_beside_the_target(tmp_path, monkeypatch):
    """The rename is atomic only within one directory (one file system): the temporary file
    must not be made in the working directory."""
    target_dir, cwd = tmp_path / "out", tmp_path / "cwd"
    target_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        renames.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    xmlp.save(xmlp.MLP(1, 2, 1, rng=0), target_dir / "m.npz")
    [(src, dst)] = renames
    assert os.path.dirname(os.path.abspath(src)) == str(target_dir)
    assert os.path.basename(src).startswith(".m.npz.") and src.endswith(".tmp")
    assert dst == str(target_dir / "m.npz")
    assert os.listdir(cwd) == []


def test_saved_file_has_the_mode_open_would_give(tmp_path):
    """0o666 less the umask, as a plain open() would: no execute bits."""
    xmlp.save(xmlp.MLP(1, 2, 1, rng=0), tmp_path / "m.npz")
    with open(tmp_path / "plain", "wb"):
        pass
    mode = stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert mode & 0o111 == 0


def test_to_keeps_what_it_is_not_asked_to_change():
    dev1 = strict.Device("device1")
    model = xmlp.MLP(2, 3, 1, xp=strict, device=dev1, rng=0)
    model.to(dtype="float32")  # the device stays device1
    assert model.device == dev1 and model.dtype == strict.float32
    assert all(device(p) == dev1 and p.dtype == strict.float32 for p in model.parameters())
    small = xmlp.MLP(2, 3, 1, dtype="float32", rng=0)
    small.to(strict)  # the dtype stays float32
    assert small.xp is strict and small.dtype == strict.float32
    assert all(p.dtype == strict.float32 for p in small.parameters())


def test_zero_biases_are_made_where_the_weights_live():
    dev1 = strict.Device("device1")
    for init in ("xavier", "he"):
        layer = xmlp.Linear(3, 4, xp=strict, device=dev1, dtype="float32", rng=0, init=init)
        assert layer.biases.dtype == strict.float32 and device(layer.biases) == dev1


class Tagged(np.ndarray):
    """An ndarray subclass: not the parameters' exact type, so update_params takes its checked
    slow path (which accepts it) instead of the fast one."""


def test_update_through_the_slow_path_matches_reference():
    gen = np.random.default_rng(8)
    x, t = gen.standard_normal((6, 2)), gen.standard_normal((6, 1))
    for model in (xmlp.MLP(2, 3, 1, rng=1),
                  xmlp.Sequential(xmlp.Linear(2, 3, rng=1), xmlp.Tanh(), xmlp.Linear(3, 1, rng=2))):
        params = [np.array(p) for p in model.parameters()]
        loss = xmlp.MSELoss()
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        for module in model._modules():
            for name in module._param_names:
                grad = getattr(module, "grad_" + name)
                setattr(module, "grad_" + name, grad.view(Tagged))
        model.update_params(0.1)
        _, _, expected, _ = mlp_step(params, x, t, 0.1)
        for p, e in zip(model.parameters(), expected, strict=True):
            np.testing.assert_allclose(p, e, rtol=1e-12, atol=1e-14)


def test_reprs():
    layer = xmlp.Linear(2, 3, rng=0)
    assert repr(layer) == "Linear(2, 3, numpy float64 on cpu)"
    assert repr(xmlp.Sequential(layer, xmlp.Tanh())) == (
        "Sequential(Linear(2, 3, numpy float64 on cpu), Tanh())")
    assert repr(xmlp.MLP(1, 4, 2, rng=0, dtype="float32")) == "MLP(1, 4, 2, numpy float32 on cpu)"
    assert repr(xmlp.MSELoss()) == "MSELoss()"


def test_fit_takes_samples_without_a_feature_axis_and_a_single_sample():
    x = np.linspace(-1, 1, 8)  # (N,) inputs and targets, for a model that takes them
    history = xmlp.fit(xmlp.Sequential(xmlp.Tanh()), x, np.zeros(8), epochs=2, lr=0.1,
                       progress=False)
    np.testing.assert_allclose(history, [np.mean(np.tanh(x) ** 2)] * 2, rtol=1e-12)
    model = xmlp.MLP(1, 2, 1, rng=0)
    params = [p.copy() for p in model.parameters()]
    history = xmlp.fit(model, np.ones((1, 1)), np.zeros((1, 1)), epochs=1, lr=0.1,
                       progress=False)
    loss, _, expected, _ = mlp_step(params, np.ones((1, 1)), np.zeros((1, 1)), 0.1)
    np.testing.assert_allclose(history, [loss], rtol=1e-12)
    for p, e in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-12)


def test_progress_bar_is_labelled_fit_and_shows_the_last_loss(capsys):
    x, t = np.linspace(-1, 1, 6).reshape(6, 1), np.zeros((6, 1))
    history = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, progress=True)
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("fit: 100%") and "2/2" in err and "epoch" in err
    assert f"loss={history[-1]:.4g}" in err
