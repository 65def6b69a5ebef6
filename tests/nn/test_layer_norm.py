"""LayerNorm on every backend: equal to torch.nn.LayerNorm to 1e-12 in float64 (output, dL/dx,
grad_weight, grad_bias, any leading batch axes), float32 within its tolerance, gradcheck, its
place (xp, device, dtype, to()), a step of every optimizer, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import data, foreign, layer_kwargs, ns_name, rejects
from tests.nn.torch_reference import largest_difference, needs_torch, torch_pass

GEN = np.random.default_rng(5)
WEIGHT, BIAS = GEN.standard_normal(4), GEN.standard_normal(4)
SHAPES = [(4,), (6, 4), (2, 3, 4)]


def reference(x, g, eps=1e-5):
    torch = needs_torch()
    module = torch.nn.LayerNorm(4, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(WEIGHT))
        module.bias.copy_(torch.tensor(BIAS))
    return torch_pass(module, x, g)


def layer(xp, dtype="float64", eps=1e-5):
    norm = xmlp.LayerNorm(4, eps=eps, **layer_kwargs(xp, dtype))
    norm.weight, norm.bias = xp.from_numpy(WEIGHT, dtype), xp.from_numpy(BIAS, dtype)
    return norm


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_equal_to_pytorch_in_float64(xp, shape, eps):
    x = GEN.standard_normal(shape) * 3 + 1
    g = GEN.standard_normal(shape)
    want = reference(x, g, eps)
    norm = layer(xp, eps=eps)
    out = norm.forward(xp.from_numpy(x))
    grad_x = norm.backward(xp.from_numpy(g))
    for got, name in ((out, "output"), (grad_x, "input"), (norm.grad_weight, "weight"),
                      (norm.grad_bias, "bias")):
        assert largest_difference(got, want[name]) <= 1e-12, name
    assert largest_difference(norm.predict(xp.from_numpy(x)), want["output"]) <= 1e-12


def test_float32_within_its_tolerance(xp):
    x = (GEN.standard_normal((6, 4)) * 3).astype(np.float32)
    g = GEN.standard_normal((6, 4)).astype(np.float32)
    want = reference(x.astype(np.float64), g.astype(np.float64))
    norm = layer(xp, "float32")
    out = norm.forward(xp.from_numpy(x))
    grad_x = norm.backward(xp.from_numpy(g))
    assert out.dtype == xp.float32 and norm.grad_weight.dtype == xp.float32
    for got, name in ((out, "output"), (grad_x, "input"), (norm.grad_weight, "weight"),
                      (norm.grad_bias, "bias")):
        np.testing.assert_allclose(xp.to_numpy(got), want[name], **tolerances("float32"))


def test_gradcheck(xp):
    xmlp.gradcheck(layer(xp), xp.from_numpy(GEN.standard_normal((2, 2, 4))), rng=0)


def test_starts_as_pytorch_does_and_says_where_it_lives(xp):
    norm = xmlp.LayerNorm(3, **layer_kwargs(xp, "float32"))
    np.testing.assert_array_equal(xp.to_numpy(norm.weight), np.ones(3, np.float32))
    np.testing.assert_array_equal(xp.to_numpy(norm.bias), np.zeros(3, np.float32))
    assert norm.dtype == xp.float32 and norm.normalized_dim == 3
    assert norm.grad_weight is None and norm.grad_bias is None
    assert [n for n, _ in norm.named_parameters()] == ["weight", "bias"]
    assert list(norm.named_buffers()) == []
    assert repr(norm).startswith(f"LayerNorm(3, eps=1e-05, {ns_name(xp)} float32")


def test_every_optimizer_trains_it():
    x = GEN.standard_normal((8, 4))
    for make in (lambda m: xmlp.optim.SGD(m, lr=0.1, momentum=0.9),
                 lambda m: xmlp.optim.Adam(m, lr=0.1), lambda m: xmlp.optim.AdamW(m, lr=0.1)):
        norm = xmlp.LayerNorm(4)
        opt = make(norm)
        norm.forward(x)
        norm.backward(np.ones((8, 4)))
        opt.step()
        assert not np.array_equal(norm.bias, np.zeros(4))


def test_to_another_dtype_and_backend():
    norm = xmlp.LayerNorm(4)
    norm.to(dtype="float32")
    assert norm.weight.dtype == np.float32 and norm.bias.dtype == np.float32
    out = norm.forward(np.ones((2, 4), np.float32))
    assert out.dtype == np.float32


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "error", "words"), [
    ((0,), ValueError, "LayerNorm: normalized_dim must be a positive int, got 0"),
    ((2.0,), TypeError, "LayerNorm: normalized_dim must be a positive int, got 2.0"),
    ((3, -1e-5), ValueError, "LayerNorm: eps must be a finite number > 0, got -1e-05"),
    ((3, 0.0), ValueError, "LayerNorm: eps must be a finite number > 0, got 0.0"),
    ((3, "1e-5"), TypeError, "LayerNorm: eps must be a real number"),
], ids=str)
def test_arguments_are_checked(args, error, words):
    with pytest.raises(error) as info:
        xmlp.LayerNorm(*args)
    assert str(info.value).startswith(words)


def test_bad_input_is_refused_and_changes_nothing(xp):
    norm = layer(xp)
    norm.forward(data(xp, (5, 4)))
    norm.backward(data(xp, (5, 4), seed=1))
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (5, 3))), "LayerNorm(4).forward",
            "(..., 4)", "got (5, 3)")
    rejects(TypeError, norm, lambda: norm.forward(data(xp, (5, 4), "float32")), "float32")
    rejects(TypeError, norm, lambda: norm.predict(xp.from_numpy(np.ones((5, 4)), "int64")),
            "LayerNorm(4).predict", "int64")
    x, other = foreign(xp, np.ones((5, 4)))
    rejects(TypeError, norm, lambda: norm.forward(x), ns_name(xp), other)
    rejects(ValueError, norm, lambda: norm.backward(data(xp, (4, 4))), "LayerNorm(4).backward",
            "got (4, 4)")
    norm.weight = data(xp, (3,))
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (5, 4))), "parameter 'weight'",
            "shape (3,)", "(4,)")


def test_in_a_model(xp):
    kw = layer_kwargs(xp)
    model = xmlp.Sequential(xmlp.Linear(3, 4, rng=0, **kw), xmlp.LayerNorm(4, **kw),
                            xmlp.Tanh(), xmlp.Linear(4, 2, rng=1, **kw))
    assert [n for n, _ in model.named_parameters()] == [
        "0.weights", "0.biases", "1.weight", "1.bias", "3.weights", "3.biases"]
    xmlp.gradcheck(model, data(xp, (2, 3)), rng=0)
