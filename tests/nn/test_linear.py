"""Linear and activations on every backend against the NumPy float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.reference import linear_backward, linear_forward


def _close(xp, got, want, dtype):
    assert got.dtype == getattr(xp.ns, dtype), f"{got.dtype} != {dtype}"
    np.testing.assert_allclose(xp.to_numpy(got), want, **tolerances(dtype))


@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 4, 3)], ids=["batch", "single", "lead2"])
def test_linear_matches_reference(xp, dtype, shape):
    gen = np.random.default_rng(1)
    x = gen.standard_normal(shape)
    w, b = gen.standard_normal((4, 3)), gen.standard_normal(4)
    g = gen.standard_normal((*shape[:-1], 4))
    layer = xmlp.Linear(3, 4, xp.from_numpy(w, dtype), xp.from_numpy(b, dtype))
    xs, gs = xp.from_numpy(x, dtype), xp.from_numpy(g, dtype)
    # cast the reference inputs the same way, so float32 is judged on the arithmetic only
    x, w, b, g = (a.astype(dtype).astype(np.float64) for a in (x, w, b, g))

    out = layer.forward(xs)
    assert tuple(out.shape) == (*shape[:-1], 4)
    _close(xp, out, linear_forward(x, w, b), dtype)
    assert layer.x is xs and layer.output is out

    gi = layer.backward(gs)
    gw, gb, gx = linear_backward(x, w, g)
    _close(xp, layer.grad_weights, gw, dtype)
    _close(xp, layer.grad_biases, gb, dtype)
    _close(xp, gi, gx, dtype)
    assert layer.grad_input is gi

    layer.update_params(0.5)
    _close(xp, layer.weights, w - 0.5 * gw, dtype)
    _close(xp, layer.biases, b - 0.5 * gb, dtype)


def test_wide_linear_step_matches_reference(xp, dtype):
    """Linear(1, 140000): a bias wider than the NumPy fast path's block, and weights past its
    size threshold, through forward, backward and update_params (the blocked SGD path)."""
    gen = np.random.default_rng(6)
    n_out = 140_000
    w, b = gen.standard_normal((n_out, 1)), gen.standard_normal(n_out)
    x, g = gen.standard_normal((3, 1)), gen.standard_normal((3, n_out))
    layer = xmlp.Linear(1, n_out, xp.from_numpy(w, dtype), xp.from_numpy(b, dtype))
    x, w, b, g = (a.astype(dtype).astype(np.float64) for a in (x, w, b, g))
    _close(xp, layer.forward(xp.from_numpy(x, dtype)), linear_forward(x, w, b), dtype)
    layer.backward(xp.from_numpy(g, dtype))
    gw, gb, _ = linear_backward(x, w, g)
    layer.update_params(0.5)
    _close(xp, layer.weights, w - 0.5 * gw, dtype)
    _close(xp, layer.biases, b - 0.5 * gb, dtype)


def test_linear_predict_stores_nothing(xp):
    layer = xmlp.Linear(3, 2, xp=xp.module, device=xp.device, rng=0)
    x = xp.from_numpy(np.ones((4, 3)), layer.dtype)
    out = layer.predict(x)
    assert layer.x is None and layer.output is None
    np.testing.assert_allclose(xp.to_numpy(out), xp.to_numpy(layer.forward(x)))


def test_initial_arrays_are_copied(xp):
    w = xp.from_numpy(np.ones((2, 3)))
    b = xp.from_numpy(np.zeros(2))
    layer = xmlp.Linear(3, 2, w, b)
    assert layer.dtype == w.dtype
    layer.forward(xp.from_numpy(np.ones((1, 3))))
    layer.backward(xp.from_numpy(np.ones((1, 2))))
    layer.update_params(1.0)
    np.testing.assert_array_equal(xp.to_numpy(w), np.ones((2, 3)))
    np.testing.assert_array_equal(xp.to_numpy(b), np.zeros(2))
    assert not np.allclose(xp.to_numpy(layer.weights), 1.0)


def test_same_rng_same_weights_on_every_backend(xp):
    here = xmlp.MLP(2, 5, 3, xp=xp.module, device=xp.device, dtype="float64", rng=42)
    ref = xmlp.MLP(2, 5, 3, rng=42)
    for (n1, a), (n2, r) in zip(here.named_parameters(), ref.named_parameters(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(xp.to_numpy(a), r)
    gen = np.random.default_rng(42)
    expect = [gen.standard_normal(s) for s in ((5, 2), (5,), (3, 5), (3,))]
    for r, e in zip(ref.parameters(), expect, strict=True):
        np.testing.assert_array_equal(r, e)


@pytest.mark.parametrize("init", ["normal", "xavier", "he"])
def test_init_spread(xp, init):
    """Weights are N(0, std^2) with the documented std; biases N(0, 1) for "normal", zero
    otherwise. 120,000 weights: the sample std is within 3% of std (about 15 standard errors)
    for any seed, while a wrong scale (xavier and he swapped, a missing factor 2, 1/fan instead
    of 2/fan) is off by 18% or more."""
    n_in, n_out = 400, 300
    std = {"normal": 1.0, "xavier": math.sqrt(2.0 / (n_in + n_out)),
           "he": math.sqrt(2.0 / n_in)}[init]
    layer = xmlp.Linear(n_in, n_out, xp=xp.module, device=xp.device, dtype="float64", rng=11,
                        init=init)
    w, b = xp.to_numpy(layer.weights), xp.to_numpy(layer.biases)
    assert w.shape == (n_out, n_in) and b.shape == (n_out,)
    assert abs(w.std() / std - 1) < 0.03, (w.std(), std)
    assert abs(w.mean()) < 6 * std / math.sqrt(w.size)  # 6 standard errors
    # normal, not uniform: the share within one std is 68.3% (58% for a uniform of that std)
    assert abs(np.mean(np.abs(w) < std) - 0.683) < 0.01
    if init == "normal":
        assert abs(b.std() - 1) < 0.25 and abs(b.mean()) < 6 / math.sqrt(b.size)  # 6 sigma
    else:
        np.testing.assert_array_equal(b, np.zeros(n_out))


def test_default_dtype_and_float32(xp):
    layer = xmlp.Linear(3, 2, xp=xp.module, device=xp.device, dtype="float32", rng=0)
    assert layer.weights.dtype == xp.float32 and layer.biases.dtype == xp.float32
    out = layer.forward(xp.from_numpy(np.ones((2, 3)), "float32"))
    assert out.dtype == xp.float32
    gi = layer.backward(xp.from_numpy(np.ones((2, 2)), "float32"))
    assert gi.dtype == xp.float32 and layer.grad_weights.dtype == xp.float32
    layer.update_params(np.float64(0.1))  # a NumPy scalar learning rate is fine
    assert layer.weights.dtype == xp.float32


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
    _close(xp, out, f(x), dtype)
    gi = layer.backward(xp.from_numpy(g, dtype))
    _close(xp, gi, g * df(x), dtype)
    np.testing.assert_allclose(xp.to_numpy(layer.predict(xp.from_numpy(x, dtype))), f(x),
                               **tolerances(dtype))


def test_sigmoid_does_not_overflow():
    out = xmlp.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


def test_device_cpu_names_the_cpu_device_of_torch_initial_arrays():
    """device="cpu" (as the docs write it) with torch initial arrays on the CPU is the arrays'
    device, not a disagreement (torch.device("cpu") != "cpu" as objects); a device the
    namespace does not have is named as the disagreement."""
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    w = torch.ones(3, 2, dtype=torch.float64)
    for kwargs in ({"device": "cpu"}, {"device": "cpu", "xp": "torch"},
                   {"device": torch.device("cpu")}):
        layer = xmlp.Linear(2, 3, initial_weights=w, **kwargs)
        assert layer.weights.device == torch.device("cpu")
    with pytest.raises(TypeError) as info:
        xmlp.Linear(2, 3, initial_weights=w, device="meta")
    assert str(info.value) == ("Linear: device='meta' disagrees with initial_weights on cpu; "
                               "move the arrays first or leave device out.")
