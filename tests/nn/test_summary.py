"""model.summary(input_shape): each layer's output shape and parameter count and the totals, for
MLP, nested Sequential models and layers of the user's, on every backend; the model is left as
it was."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import xmlp
from tests.helpers import assert_unchanged, layer_kwargs, message, state


class Scale(xmlp.Module):
    """A layer of the user's: one parameter per feature."""

    param_names = ("scale",)

    def __init__(self, scale):
        self.scale = scale

    def forward(self, x):
        self.x, self.output = x, x * self.scale
        return self.output

    def predict(self, x):
        return x * self.scale

    def backward(self, grad_output):
        self.grad_scale = (grad_output * self.x).sum(axis=0)
        return grad_output * self.scale


class Residual(xmlp.Module):
    """A layer of the user's holding a sub-layer, run its own way (x + inner(x))."""

    def __init__(self, inner):
        self.inner = inner
        self.adopt_children([("inner", inner)])

    def named_children(self):
        yield "inner", self.inner

    def predict(self, x):
        return x + self.inner.predict(x)

    def forward(self, x):
        return x + self.inner.forward(x)

    def backward(self, grad_output):
        return grad_output + self.inner.backward(grad_output)


def sizes(model):
    return sum(math.prod(p.shape) for p in model.parameters())


def test_mlp_table():
    text = str(xmlp.MLP(1, 10, 1, rng=0).summary((None, 1)))
    assert text.splitlines() == [
        "Model: MLP(1, 10, 1, numpy float64 on cpu)",
        "Input shape: (None, 1)",
        "Layer (type)       Output shape  Param #",
        "========================================",
        "linear1 (Linear)   (None, 10)         20",
        "activation (Tanh)  (None, 10)          0",
        "linear2 (Linear)   (None, 1)          11",
        "========================================",
        "Total params: 31 (248 B)",
        "Trainable params: 31 (248 B)",
        "Non-trainable params: 0 (0 B)",
    ]


def test_every_layer_every_backend(xp):
    kw = layer_kwargs(xp, "float32")
    scale = xp.from_numpy(np.ones(8), "float32")
    inner = xmlp.Sequential(xmlp.Linear(8, 8, rng=2, **kw), xmlp.ReLU())
    model = xmlp.Sequential(xmlp.Linear(4, 8, rng=1, **kw), xmlp.Tanh(), Scale(scale),
                            inner, Residual(xmlp.Linear(8, 8, rng=3, **kw)),
                            xmlp.MLP(8, 16, 3, rng=4, **kw))
    before = state(model)
    summary = model.summary((32, 4))
    assert [(r.name, r.kind, r.shape, r.params) for r in summary.rows] == [
        ("0", "Linear", (32, 8), 40), ("1", "Tanh", (32, 8), 0), ("2", "Scale", (32, 8), 8),
        ("3.0", "Linear", (32, 8), 72), ("3.1", "ReLU", (32, 8), 0),
        ("4", "Residual", (32, 8), 0), ("4.inner", "Linear", None, 72),
        ("5.linear1", "Linear", (32, 16), 144), ("5.activation", "Tanh", (32, 16), 0),
        ("5.linear2", "Linear", (32, 3), 51)]
    assert summary.total_params == sizes(model) == summary.trainable_params == 387
    assert summary.total_bytes == 4 * 387  # float32
    assert "Total params: 387 (1.51 KB)" in str(summary)
    assert_unchanged(before, model)  # predict stores nothing


def test_without_an_input_shape_there_are_no_shapes():
    summary = xmlp.MLP(3, 4, 2, rng=0).summary()
    text = str(summary)
    assert "Output shape" not in text and "Input shape" not in text
    assert text.splitlines()[1:3] == ["Layer (type)       Param #", "=" * 26]
    assert [row.shape for row in summary.rows] == [None, None, None]


def test_a_batch_gives_the_shape():
    x = np.zeros((5, 3))
    assert [r.shape for r in xmlp.MLP(3, 4, 2, rng=0).summary(x).rows] == [
        (5, 4), (5, 4), (5, 2)]


def test_a_layer_alone_and_a_model_without_parameters():
    assert [(r.name, r.shape) for r in xmlp.Linear(3, 2, rng=0).summary((7, 3)).rows] == [
        ("Linear", (7, 2))]
    summary = xmlp.Sequential(xmlp.Tanh(), xmlp.ReLU()).summary((None, 6))
    assert summary.total_params == 0 and summary.rows[-1].shape == (None, 6)


def test_leading_dims_pass_through():
    summary = xmlp.MLP(3, 4, 2, rng=0).summary((None, 10, 3))
    assert summary.rows[-1].shape == (None, 10, 2)


def test_repr_is_the_table():
    summary = xmlp.MLP(3, 4, 2, rng=0).summary((None, 3))
    assert repr(summary) == str(summary)


@pytest.mark.parametrize(("shape", "error", "text"), [
    ((None, 2), ValueError, "summary: the model refuses an input of shape (None, 2): "
     "Linear(3, 4).predict: "),
    ("3", TypeError, "summary: input_shape must be a tuple of ints (the first may be None for "
     "any batch size) or an array, got '3'"),
    ((), TypeError, "summary: input_shape must be a tuple of ints"),
    ((None, 0), ValueError, "summary: input_shape must hold positive ints (the first may be "
     "None for any batch size), got (None, 0)"),
    ((None, None), ValueError, "summary: input_shape must hold positive ints"),
    ((2.0, 3), ValueError, "summary: input_shape must hold positive ints"),
    ((None, -3), ValueError, "summary: input_shape must hold positive ints (the first may be "
     "None for any batch size), got (None, -3)"),
    ((None, True), ValueError, "summary: input_shape must hold positive ints (the first may "
     "be None for any batch size), got (None, True)"),
    ((None, 10**30), ValueError, f"summary: input_shape must hold positive ints up to "
     f"{sys.maxsize} (the first may be None for any batch size), got (None, {10**30})"),
    ((10**19, 3), ValueError, f"summary: input_shape must hold positive ints up to "
     f"{sys.maxsize}"),
])
def test_bad_input_shapes(shape, error, text):
    model = xmlp.MLP(3, 4, 2, rng=0)
    before = state(model)
    assert message(error, lambda: model.summary(shape)).startswith(text)
    assert_unchanged(before, model)


@pytest.mark.parametrize(("model", "shape", "text"), [
    (lambda: xmlp.MLP(3, 4, 2, rng=0), (10, 10**12),
     "summary: the model refuses an input of shape (10, 1000000000000): Linear(3, 4).predict: "
     "x must have shape (..., 3) (input_dim features), got (1, 1000000000000)"),
    (lambda: xmlp.MLP(3, 4, 2, rng=0), (10**12, 10**6, 10**6),
     "summary: the model refuses an input of shape (1000000000000, 1000000, 1000000): "
     "Linear(3, 4).predict: x must have shape (..., 3) (input_dim features), got "
     "(1, 1000000, 1000000)"),
    (lambda: xmlp.Sequential(xmlp.Tanh(), xmlp.Dropout(0.5), xmlp.LayerNorm(3)), (None, 10**9),
     "summary: the model refuses an input of shape (None, 1000000000): LayerNorm(3).predict: "
     "x must have shape (..., 3), got (1, 1000000000)"),
    (lambda: xmlp.Sequential(xmlp.BatchNorm1d(3), xmlp.ReLU()), (None, 10**9, 3),
     "summary: the model refuses an input of shape (None, 1000000000, 3): "
     "BatchNorm1d(3).predict: x must have shape (N, 3), got (1, 1000000000, 3)"),
])
def test_a_wrong_feature_count_is_refused_before_an_input_is_made(monkeypatch, model, shape,
                                                                  text):
    """The feature count (and BatchNorm1d's 2-D input) is checked from the shape alone: a
    huge wrong one is the model's ValueError, not an allocation of terabytes first."""
    import xmlp.nn.summary as summary_module

    def no_allocation(*args):
        raise AssertionError("summary made an input array")

    monkeypatch.setattr(summary_module, "_zeros", no_allocation)
    assert message(ValueError, lambda: model().summary(shape)) == text


def test_summarize_is_the_function():
    model = xmlp.MLP(3, 4, 2, rng=0)
    assert str(xmlp.nn.summarize(model, (None, 3))) == str(model.summary((None, 3)))
    assert message(TypeError, lambda: xmlp.nn.summarize("model")) == (
        "summary: model must be an xmlp.Module, got str")


def test_sizes_are_readable():
    from xmlp.nn.summary import _readable

    assert [_readable(n) for n in (0, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**3)] == [
        "0 B", "1023 B", "1.00 KB", "1.50 KB", "5.00 MB", "3.00 GB"]
