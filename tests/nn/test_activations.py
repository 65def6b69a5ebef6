"""Tanh, ReLU and Sigmoid on every backend: values and gradients against the NumPy float64
reference and at their edges (ReLU at 0 and NaN, Sigmoid far out); what they refuse; the
device and the ops they follow."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
import xmlp.ops
from tests.conftest import tolerances
from tests.helpers import (
    ACTIVATIONS,
    assert_matches,
    data,
    foreign,
    ns_name,
    rejects,
    used_activation,
)


# -- values and gradients ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [xmlp.Tanh, xmlp.ReLU, xmlp.Sigmoid])
def test_activation_matches_reference(xp, dtype, cls):
    gen = np.random.default_rng(2)
    x = gen.standard_normal((4, 3)).astype(dtype).astype(np.float64)
    g = gen.standard_normal((4, 3)).astype(dtype).astype(np.float64)
    f = {xmlp.Tanh: np.tanh, xmlp.ReLU: lambda v: np.maximum(v, 0),
         xmlp.Sigmoid: lambda v: 1 / (1 + np.exp(-v))}[cls]
    df = {xmlp.Tanh: lambda v: 1 - np.tanh(v) ** 2, xmlp.ReLU: lambda v: (v > 0) * 1.0,
          xmlp.Sigmoid: lambda v: f(v) * (1 - f(v))}[cls]
    layer = cls()
    out = layer.forward(xp.from_numpy(x, dtype))
    assert_matches(xp, out, f(x), dtype)
    gi = layer.backward(xp.from_numpy(g, dtype))
    assert_matches(xp, gi, g * df(x), dtype)
    np.testing.assert_allclose(xp.to_numpy(layer.predict(xp.from_numpy(x, dtype))), f(x),
                               **tolerances(dtype))


def test_sigmoid_does_not_overflow():
    out = xmlp.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


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


def test_new_activations_hold_nothing():
    """Before any pass an activation's stored arrays are None (the seed's attributes)."""
    for act in (xmlp.Tanh(), xmlp.ReLU(), xmlp.Sigmoid(), xmlp.Softmax()):
        assert act.x is None and act.output is None and act.grad_input is None


# -- what they refuse --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
def test_activation_rejects_bad_input(xp, cls):
    act = used_activation(xp, cls)
    name = cls.__name__
    rejects(TypeError, act, lambda: act.forward(xp.from_numpy(np.ones(3), "int64")),
            f"{name}.forward", "int64")
    rejects(TypeError, act, lambda: act.forward(xp.from_numpy(np.ones(3), "bool")), "bool")
    rejects(TypeError, act, lambda: act.forward([1.0, 2.0]), f"{name}.forward", "list")
    rejects(ValueError, act, lambda: act.forward(xp.from_numpy(np.float64(1.0))),
            f"{name}.forward", "ndim >= 1", "got shape ()")
    rejects(ValueError, act, lambda: act.predict(xp.from_numpy(np.float64(1.0))),
            f"{name}.predict", "got shape ()")


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
def test_activation_backward_rejects_wrong_grad_output(xp, cls):
    act = used_activation(xp, cls)
    name = cls.__name__
    rejects(ValueError, act, lambda: act.backward(data(xp, (3, 5))),
            f"{name}.backward", "(5, 3)", "got (3, 5)")
    rejects(ValueError, act, lambda: act.backward(data(xp, (5, 3, 1))), "got (5, 3, 1)")
    rejects(TypeError, act, lambda: act.backward(data(xp, (5, 3), "float32")),
            f"{name}.backward", "float32", "float64")
    g, other = foreign(xp, np.ones((5, 3)))
    rejects(TypeError, act, lambda: act.backward(g), ns_name(xp), other)


def test_activation_messages_name_the_layer_and_the_input():
    with pytest.raises(TypeError) as info:
        xmlp.ReLU().forward(np.array([1, 2]))
    assert str(info.value).startswith("ReLU.forward: x has dtype int64; ")
    with pytest.raises(ValueError) as info:
        xmlp.Tanh().forward(np.zeros((0, 3)))
    assert str(info.value) == ("Tanh.forward: x is an empty batch (shape (0, 3)); pass at least "
                               "one sample")


# -- the device and the ops they follow --------------------------------------------------------
def test_an_activation_follows_its_input_to_another_device():
    """array-api-strict has several devices: an activation used on one and then on another
    takes each input's device, forward and backward (no stale device from the last call)."""
    import array_api_strict as xp

    act = xmlp.Tanh()
    for name in ("CPU_DEVICE", "device1", "CPU_DEVICE"):
        device = xp.Device(name)
        y = act.forward(xp.asarray([[0.5, -1.0]], device=device))
        g = act.backward(xp.ones_like(y))
        assert y.device == device and g.device == device


