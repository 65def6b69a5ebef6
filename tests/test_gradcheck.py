"""xmlp.gradcheck on every backend: every built-in layer, model and loss passes; a wrong
backward fails with a GradcheckError naming the array, the worst element's index, both values
and the tolerance (for the input, for a parameter, by its dotted name in a model, for a loss);
a random grad_output catches what ones would hide; the module is left exactly as it was;
float32 with its looser defaults; and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import xmlp
from tests.helpers import assert_unchanged, layer_kwargs, state
from xmlp.ops import ops_like

GEN = np.random.default_rng(4)


class Scale(xmlp.Module):
    """y = x * scale per feature; ``factor`` scales its gradient of scale (1: right)."""

    param_names = ("scale",)
    state_names = ("x", "output")

    def __init__(self, scale: Any, factor: float = 1.0) -> None:
        self.scale, self.factor = scale, factor
        self.x: Any = None
        self.output: Any = None

    def forward(self, x: Any) -> Any:
        self.x, self.output = x, x * self.scale
        return self.output

    def predict(self, x: Any) -> Any:
        return x * self.scale

    def backward(self, grad_output: Any) -> Any:
        xp = ops_like(grad_output).xp
        self.grad_scale = self.factor * xp.sum(grad_output * self.x, axis=0)
        return grad_output * self.scale


class Double(xmlp.Module):
    """y = 2 x, whose backward forgets the 2."""

    def forward(self, x: Any) -> Any:
        return 2.0 * x

    def backward(self, grad_output: Any) -> Any:
        return grad_output


class Reverse(xmlp.Module):
    """y = x reversed along the last axis, whose backward forgets to reverse: right for a
    grad_output of ones, wrong for almost any other."""

    def forward(self, x: Any) -> Any:
        return ops_like(x).xp.flip(x, axis=-1)

    def backward(self, grad_output: Any) -> Any:
        return grad_output


class ReturnsFloat(xmlp.Module):
    """forward returns a Python float (the first element), not an array."""

    def forward(self, x: Any) -> Any:
        return float(x[0, 0])

    def backward(self, grad_output: Any) -> Any:
        return grad_output * np.ones(3)


class ReturnsList(xmlp.Module):
    """forward returns a list of rows."""

    def forward(self, x: Any) -> Any:
        return x.tolist()

    def backward(self, grad_output: Any) -> Any:
        return grad_output


class PerSampleMSE(xmlp.MSELoss):
    """A loss whose forward returns one value per sample, not the loss."""

    def forward(self, y: Any, t: Any) -> Any:
        super().forward(y, t)
        return ((y - t) ** 2).mean(axis=1)


class HalfMSE(xmlp.MSELoss):
    """MSE whose backward forgets the factor 2."""

    def backward(self):
        return super().backward() / 2


def built_ins(xp):
    kw = layer_kwargs(xp)
    return {
        "Linear": xmlp.Linear(3, 2, rng=0, **kw),
        "Tanh": xmlp.Tanh(), "Sigmoid": xmlp.Sigmoid(), "Softmax": xmlp.Softmax(),
        "ReLU": xmlp.ReLU(),
        "MLP": xmlp.MLP(3, 4, 2, rng=0, **kw),
        "Sequential": xmlp.Sequential(
            xmlp.Linear(3, 4, rng=0, **kw), xmlp.BatchNorm1d(4, **kw), xmlp.SiLU(),
            xmlp.Dropout(0.25, rng=0), xmlp.LayerNorm(4, **kw), xmlp.Linear(4, 2, rng=1, **kw)),
    }


# away from ReLU's kink at 0
X = np.array([[0.3, -1.2, 2.0], [-0.7, 0.9, 1.4], [1.1, -0.4, -2.2]])


@pytest.mark.parametrize("name", ["Linear", "Tanh", "Sigmoid", "Softmax", "ReLU", "MLP",
                                  "Sequential"])
def test_built_in_layers_and_models_pass(xp, name):
    assert xmlp.gradcheck(built_ins(xp)[name], xp.from_numpy(X), rng=0) is None


def test_built_in_losses_pass(xp):
    y = xp.from_numpy(X)
    assert xmlp.gradcheck(xmlp.MSELoss(), y, y=xp.from_numpy(X[::-1] * 0.5), rng=0) is None
    labels = xp.from_numpy(np.array([0, 2, 1]))
    assert xmlp.gradcheck(xmlp.CrossEntropyLoss(), y, y=labels) is None
    probs = xp.from_numpy(np.full((3, 3), 1 / 3))
    assert xmlp.gradcheck(xmlp.CrossEntropyLoss(), y, y=probs) is None


def test_float32_passes_with_its_defaults(xp):
    x = xp.from_numpy(X, "float32")
    kw = layer_kwargs(xp, "float32")
    xmlp.gradcheck(xmlp.MLP(3, 4, 2, rng=0, **kw), x, rng=0)
    xmlp.gradcheck(xmlp.LayerNorm(3, **kw), x, rng=0)
    with pytest.raises(xmlp.GradcheckError, match="for input"):
        xmlp.gradcheck(Double(), x, rng=0)


# -- a wrong backward ----------------------------------------------------------------------------
MESSAGE = re.compile(
    r"gradcheck: (?P<owner>\w+)\.backward disagrees with finite differences for "
    r"(?P<label>\S+) at index (?P<index>\([\d, ]*\)): analytic (?P<analytic>\S+), numeric "
    r"(?P<numeric>\S+); \|difference\| (?P<difference>\S+) > tolerance (?P<tolerance>\S+) "
    r"\(atol 1e-05 \+ rtol 0\.001 \* \|numeric\|\)")


def check_message(message, owner, label, analytic, numeric):
    """``message`` says what the docs describe for the worst element of ``analytic`` against
    the exact gradient ``numeric`` (host arrays): its index, the analytic value to its 10
    digits, and the finite difference, its distance and the tolerance close to the exact ones.
    Returns the index."""
    found = MESSAGE.fullmatch(message)
    assert found, message
    allowed = 1e-5 + 1e-3 * np.abs(numeric)
    index = np.unravel_index(np.argmax(np.abs(analytic - numeric) / allowed), analytic.shape)
    index = tuple(int(i) for i in index)
    assert (found["owner"], found["label"], found["index"]) == (owner, label, str(index))
    assert found["analytic"] == f"{analytic[index]:.10g}"
    for key, want in (("numeric", numeric[index]), ("tolerance", allowed[index]),
                      ("difference", abs(analytic[index] - numeric[index]))):
        assert float(found[key]) == pytest.approx(want, rel=1e-7), key
    return index


def test_a_wrong_gradient_of_the_input(xp):
    g = np.random.default_rng(0).standard_normal(X.shape)
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(Double(), xp.from_numpy(X), rng=0)
    index = check_message(str(info.value), "Double", "input", g, 2 * g)
    error = info.value
    assert isinstance(error, AssertionError)
    assert (error.array, error.index) == ("input", index)
    assert error.analytic == pytest.approx(g[index], rel=1e-12)
    assert error.numeric == pytest.approx(2 * g[index], rel=1e-6)


def test_a_wrong_gradient_of_a_parameter_named_in_a_model(xp):
    """Scale's backward with its gradient of scale halved: the input's gradient is right, the
    parameter's is not; in a Sequential it is named by its dotted name."""
    g = np.random.default_rng(0).standard_normal(X.shape)
    right = (g * X).sum(axis=0)
    layer = Scale(xp.from_numpy(np.array([0.5, -1.0, 2.0])), factor=0.5)
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(layer, xp.from_numpy(X), rng=0)
    check_message(str(info.value), "Scale", "'scale'", right / 2, right)
    assert info.value.array == "scale"
    model = xmlp.Sequential(xmlp.Tanh(), Scale(xp.from_numpy(np.ones(3)), factor=0.5))
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(model, xp.from_numpy(X), rng=0)
    assert info.value.array == "1.scale"
    assert str(info.value).startswith(
        "gradcheck: Sequential.backward disagrees with finite differences for '1.scale' at")


def test_a_wrong_loss_gradient(xp):
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(HalfMSE(), xp.from_numpy(X), y=xp.from_numpy(np.zeros(X.shape)))
    assert str(info.value).startswith(
        "gradcheck: HalfMSE.backward disagrees with finite differences for input at index")


def test_a_random_grad_output_catches_what_ones_hide(xp):
    """With grad_output = ones, Reverse's forgotten flip gives the right answer."""
    layer = Reverse()
    out = layer.forward(xp.from_numpy(X))
    np.testing.assert_array_equal(xp.to_numpy(layer.backward(xp.ones_like(out))), np.ones(X.shape))
    with pytest.raises(xmlp.GradcheckError, match=r"Reverse\.backward disagrees"):
        xmlp.gradcheck(layer, xp.from_numpy(X), rng=0)


def test_missing_and_misshapen_gradients():
    class NoGrad(Scale):
        def backward(self, grad_output):
            return grad_output * self.scale  # sets no grad_scale

    class NoInputGrad(Scale):
        def backward(self, grad_output):
            super().backward(grad_output)

    class WrongShape(Scale):
        def backward(self, grad_output):
            super().backward(grad_output)
            self.grad_scale = self.grad_scale[:2]
            return grad_output * self.scale

    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(NoGrad(np.ones(3)), X)
    assert str(info.value) == ("gradcheck: NoGrad.backward set no grad_scale: no gradient for "
                               "'scale' to compare")
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(NoInputGrad(np.ones(3)), X)
    assert str(info.value) == ("gradcheck: NoInputGrad.backward returned None: no gradient for "
                               "input to compare")
    with pytest.raises(xmlp.GradcheckError) as info:
        xmlp.gradcheck(WrongShape(np.ones(3)), X)
    assert str(info.value) == ("gradcheck: WrongShape.backward gave a gradient of shape (2,) "
                               "for 'scale', whose shape is (3,)")


def test_a_non_finite_gradient_fails():
    class NaNGrad(Scale):
        def backward(self, grad_output):
            return super().backward(grad_output) * np.nan

    with pytest.raises(xmlp.GradcheckError, match="analytic nan"):
        xmlp.gradcheck(NaNGrad(np.ones(3)), X, rng=0)


# -- the module as it was ------------------------------------------------------------------------
def test_the_module_is_left_exactly_as_it_was(xp):
    """Parameters bit for bit (the same arrays), stored arrays, running statistics and the
    dropout generator: gradcheck works on copies."""
    model = built_ins(xp)["Sequential"]
    model.forward(xp.from_numpy(X))
    model.backward(xp.from_numpy(np.ones((3, 2))))
    before = state(model)
    rng_state = model[3].rng.bit_generator.state
    xmlp.gradcheck(model, xp.from_numpy(X), rng=0)
    assert_unchanged(before, model)
    assert model[3].rng.bit_generator.state == rng_state
    layer = Scale(xp.from_numpy(np.ones(3)), factor=0.5)
    before = state(layer)
    with pytest.raises(xmlp.GradcheckError):
        xmlp.gradcheck(layer, xp.from_numpy(X), rng=0)
    assert_unchanged(before, layer)


def test_the_same_rng_repeats_the_check():
    layer = Scale(np.ones(3), factor=0.5)
    messages = []
    for _ in range(2):
        with pytest.raises(xmlp.GradcheckError) as info:
            xmlp.gradcheck(layer, X, rng=np.random.default_rng(7))
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_tolerances_decide():
    """A gradient off by 1 %: caught by the default rtol (0.1 %), accepted with rtol=2 %."""
    layer = Scale(np.array([1.0, 2.0, 3.0]), factor=1.01)
    with pytest.raises(xmlp.GradcheckError, match="'scale'"):
        xmlp.gradcheck(layer, X, rng=0)
    xmlp.gradcheck(layer, X, rng=0, rtol=0.02)
    xmlp.gradcheck(layer, X, rng=0, atol=1.0, rtol=0)
    xmlp.gradcheck(Scale(np.ones(3)), X, rng=0, eps=1e-4, atol=1e-8, rtol=1e-6)


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: xmlp.gradcheck("Tanh", X), TypeError,
     "gradcheck: module must be an xmlp.Module (a layer, model or loss), got str"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), [1.0, 2.0]), TypeError,
     "gradcheck: x must be an array, got list"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), np.arange(3)), TypeError,
     "gradcheck: x has dtype int64; finite differences need a float32 or float64 x"),
    (lambda: xmlp.gradcheck(xmlp.MSELoss(), X), TypeError,
     "gradcheck: MSELoss is a loss; pass its target as y="),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, y=X), TypeError,
     "gradcheck: y is the target of a loss, but Tanh is no loss"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, eps=0), ValueError,
     "gradcheck: eps must be a finite number > 0, got 0"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, atol=-1.0), ValueError,
     "gradcheck: atol must be a finite number >= 0, got -1.0"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, rtol=float("nan")), ValueError,
     "gradcheck: rtol must be a finite number >= 0, got nan"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, eps="1e-6"), TypeError,
     "gradcheck: eps must be a real number, got '1e-6'"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), X, rng="seed"), TypeError, "rng must be None"),
    (lambda: xmlp.gradcheck(ReturnsFloat(), X), TypeError,
     "gradcheck: ReturnsFloat.forward returned float: 0.3, not an array; a layer's forward "
     "must return an array of x's namespace"),
    (lambda: xmlp.gradcheck(ReturnsList(), X), TypeError,
     "gradcheck: ReturnsList.forward returned list: [[0.3, -1.2, 2.0], [-0.7, 0.9, 1.4], "
     "[1.1, -0.4, -2.2]], not an array; a layer's forward must return an array of x's "
     "namespace"),
    (lambda: xmlp.gradcheck(PerSampleMSE(), X, y=X), TypeError,
     "gradcheck: PerSampleMSE.forward returned ndarray: array([0., 0., 0.]), not a number or "
     "a 0-d array; a loss's forward must return the loss"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), np.array([[1.0, np.nan], [2.0, 3.0]])), ValueError,
     "gradcheck: x holds nan at index (0, 1); finite differences of Tanh need finite values"),
    (lambda: xmlp.gradcheck(xmlp.Tanh(), np.array([1.0, -np.inf])), ValueError,
     "gradcheck: x holds -inf at index (1,); finite differences of Tanh need finite values"),
    (lambda: xmlp.gradcheck(xmlp.MSELoss(), X, y=np.where(X > 0.5, np.nan, X)), ValueError,
     "gradcheck: y holds nan at index "),
    (lambda: xmlp.gradcheck(Scale(np.array([1.0, np.nan, 1.0])), X), ValueError,
     "gradcheck: parameter 'scale' holds nan at index (1,); finite differences of Scale need "
     "finite values"),
], ids=["module", "x", "int-x", "loss-without-y", "y-for-a-layer", "eps", "atol", "rtol",
        "eps-str", "rng", "float-output", "list-output", "loss-per-sample", "nan-x", "inf-x",
        "nan-y", "nan-parameter"])
def test_what_it_refuses(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(words)


def test_a_nan_input_is_refused_on_every_backend(xp):
    x = X.copy()
    x[1, 2] = np.nan
    with pytest.raises(ValueError) as info:
        xmlp.gradcheck(xmlp.Linear(3, 2, rng=0, **layer_kwargs(xp)), xp.from_numpy(x))
    assert str(info.value) == ("gradcheck: x holds nan at index (1, 2); finite differences of "
                               "Linear need finite values")


def test_the_module_own_checks_pass_through(xp):
    layer = xmlp.Linear(3, 2, rng=0, **layer_kwargs(xp))
    with pytest.raises(ValueError, match=r"Linear\(3, 2\).forward: x must have shape"):
        xmlp.gradcheck(layer, xp.from_numpy(np.ones((2, 4))))
    with pytest.raises(ValueError, match="a batch of 1 sample has no variance"):
        xmlp.gradcheck(xmlp.BatchNorm1d(3, **layer_kwargs(xp)), xp.from_numpy(X[:1]))


@pytest.mark.parametrize("name", ["eps", "atol", "rtol"])
def test_a_tolerance_beyond_the_float_range_is_a_value_error(name):
    with pytest.raises(ValueError, match=f"gradcheck: {name} must be a finite number"):
        xmlp.gradcheck(xmlp.Linear(3, 2, rng=0), np.ones((2, 3)), **{name: 10**400})
