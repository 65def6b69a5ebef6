"""Behaviour at the edges that the mutation run (tests/mutation/) found untested: the ReLU
gradient at 0, where save() puts its temporary file and with what mode, to() keeping what it is
not asked to change, init="xavier"/"he" biases where the parameters live, updates through the
checked slow path, and the reprs."""

from __future__ import annotations

import io
import os
import re
import stat
import sys

import array_api_strict as strict
import numpy as np
from array_api_compat import device

import xmlp
from tests.reference import mlp_step


def test_relu_gradient_at_zero_is_zero():
    """Documented: gradient 1 where x > 0, else 0 (so 0 at x == 0, like max(x, 0)'s
    convention in PyTorch)."""
    relu = xmlp.ReLU()
    x = np.array([-1.0, -0.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(relu.forward(x), [0.0, 0.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(relu.backward(np.full(5, 3.0)), [0.0, 0.0, 0.0, 3.0, 3.0])


def test_relu_keeps_nan():
    """max(x, 0) propagates a NaN (as PyTorch's relu does) rather than hiding it as 0, so a
    diverged hidden layer shows in the loss; its gradient there is 0 (NaN > 0 is False)."""
    relu = xmlp.ReLU()
    out = relu.forward(np.array([np.nan, -1.0, 1.0]))
    assert np.isnan(out[0]) and list(out[1:]) == [0.0, 1.0]
    np.testing.assert_array_equal(relu.backward(np.full(3, 2.0)), [0.0, 0.0, 2.0])


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
        for module in model.modules():
            for name in module.param_names:
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
    assert err.startswith("fit: 100%") and "2/2" in err
    assert re.search(r"[\d?]epoch/s|s/epoch", err), err  # the unit is the epoch
    assert f"loss={history[-1]:.4g}" in err


class TerminalStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_none_draws_a_bar_on_a_terminal(monkeypatch):
    err = TerminalStderr()
    monkeypatch.setattr(sys, "stderr", err)
    x, t = np.linspace(-1, 1, 6).reshape(6, 1), np.zeros((6, 1))
    xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1)
    assert "fit: 100%" in err.getvalue()


def test_shuffled_fit_on_a_second_device():
    """The permutation is made on the data's device (array-api-strict's device1 here)."""
    dev1 = strict.Device("device1")
    gen = np.random.default_rng(5)
    x, t = gen.standard_normal((8, 2)), gen.standard_normal((8, 1))
    model = xmlp.MLP(2, 3, 1, xp=strict, device=dev1, rng=0)
    history = xmlp.fit(model, strict.asarray(x, device=dev1), strict.asarray(t, device=dev1),
                       epochs=2, lr=0.1, batch_size=3, shuffle=True, rng=1, progress=False)
    twin = xmlp.MLP(2, 3, 1, rng=0)
    assert history == xmlp.fit(twin, x, t, epochs=2, lr=0.1, batch_size=3, shuffle=True, rng=1,
                               progress=False)
    assert all(device(p) == dev1 for p in model.parameters())


def test_gradient_on_another_device_is_rejected_before_any_update():
    """update_params checks every gradient's device (not only its type, dtype and shape) before
    it changes a parameter."""
    dev1 = strict.Device("device1")
    model = xmlp.MLP(2, 3, 1, xp=strict, rng=0)
    x = strict.asarray(np.ones((4, 2)))
    model.backward(model.forward(x))
    before = [np.asarray(p) for p in model.parameters()]
    for layer in (model.linear1, model.linear2):  # every gradient, so no other one is wrong
        for name in ("grad_weights", "grad_biases"):
            setattr(layer, name, strict.asarray(getattr(layer, name), device=dev1))
    try:
        model.update_params(0.1)
    except TypeError as exc:
        assert "device1" in str(exc) and "'linear1.weights'" in str(exc)
    else:
        raise AssertionError("a gradient on another device was accepted")
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(np.asarray(p), q)


def test_mlp_backward_after_a_sub_layer_ran_on_its_own_changes_nothing_when_rejected():
    """A sub-layer's own forward (another batch size) breaks the chain MLP.forward left; the
    backward that this makes fail must leave every layer as it was (the snapshot path)."""
    from tests.test_errors import rejects

    gen = np.random.default_rng(3)
    for sub, grad_rows in (("linear1", 5), ("activation", 5), ("linear2", 3)):
        model = xmlp.MLP(2, 4, 1, rng=0)
        model.forward(gen.standard_normal((5, 2)))
        model.backward(gen.standard_normal((5, 1)))  # gradients to keep
        layer = getattr(model, sub)
        width = 2 if sub == "linear1" else 4
        layer.forward(gen.standard_normal((3, width)))
        rejects(ValueError, model, lambda m=model, r=grad_rows: m.backward(np.ones((r, 1))))


def test_sequential_backward_after_a_sub_layer_ran_on_its_own_changes_nothing_when_rejected():
    """As for MLP: Sequential.backward skips its snapshot only when the stored arrays are those
    of one forward through the whole chain. A layer's own forward (another batch size) breaks
    the chain, and the backward this makes fail leaves every layer as it was; with two Linear
    layers the only link of the chain is the broken one."""
    from tests.test_errors import rejects

    gen = np.random.default_rng(3)
    cases = [  # (layers, the one that runs on its own, its input width, rows of the gradient)
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Linear(4, 1, rng=1)], 0, 2, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 0, 2, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 1, 4, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 2, 4, 3),
    ]
    for make, sub, width, grad_rows in cases:
        model = xmlp.Sequential(*make())
        model.forward(gen.standard_normal((5, 2)))
        model.backward(gen.standard_normal((5, 1)))  # gradients to keep
        model[sub].forward(gen.standard_normal((3, width)))
        rejects(ValueError, model, lambda m=model, r=grad_rows: m.backward(np.ones((r, 1))))


def test_tanh_grad_with_a_non_contiguous_stored_output():
    from xmlp.ops.numpy_fast import _LARGE, NumpyOps, PortableOps

    gen = np.random.default_rng(4)
    g = gen.standard_normal((400, 400))  # contiguous, past _LARGE
    y = np.tanh(gen.standard_normal((400, 800)))[:, ::2]  # not contiguous
    assert g.size >= _LARGE and not y.flags.c_contiguous
    np.testing.assert_allclose(NumpyOps(np).tanh_grad(g, y), PortableOps(np).tanh_grad(g, y),
                               rtol=1e-14)


def test_mlp_children_are_named_as_in_the_seed():
    names = [name for name, _ in xmlp.MLP(1, 2, 1, rng=0).named_children()]
    assert names == ["linear1", "activation", "linear2"]


def test_backward_before_forward_message():
    for make in (xmlp.MSELoss, xmlp.Tanh, lambda: xmlp.Linear(1, 1), lambda: xmlp.MLP(1, 2, 1)):
        obj = make()
        try:
            obj.backward() if isinstance(obj, xmlp.MSELoss) else obj.backward(np.ones((1, 1)))
        except xmlp.ForwardNotCalledError as exc:
            assert str(exc) == "Perform forward pass first."
        else:
            raise AssertionError("backward before forward was accepted")
