"""Linear on every backend: forward, backward and update_params against the NumPy float64
reference; its initial weights (given or drawn; their dtype, device, byte order and
autograd); its parameters updated in place or rebound."""

from __future__ import annotations

import math

import array_api_strict as strict
import numpy as np
import pytest
from array_api_compat import device

import xmlp
from tests.helpers import assert_matches, layer_kwargs, message
from tests.reference import linear_backward, linear_forward
from xmlp.backend import to_host


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
    assert_matches(xp, out, linear_forward(x, w, b), dtype)
    assert layer.x is xs and layer.output is out

    gi = layer.backward(gs)
    gw, gb, gx = linear_backward(x, w, g)
    assert_matches(xp, layer.grad_weights, gw, dtype)
    assert_matches(xp, layer.grad_biases, gb, dtype)
    assert_matches(xp, gi, gx, dtype)
    assert layer.grad_input is gi

    layer.update_params(0.5)
    assert_matches(xp, layer.weights, w - 0.5 * gw, dtype)
    assert_matches(xp, layer.biases, b - 0.5 * gb, dtype)


def test_torch_layer_takes_inputs_with_leading_batch_dims():
    """A (2, 5, 3) input through a torch layer: predict, forward and backward fold the
    leading dims and unfold them again, as the NumPy reference does. torch's reshape takes
    only -1 for "the rest" where NumPy takes any negative size, so this runs wherever torch is
    installed, whatever XMLP_BACKENDS names."""
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    gen = np.random.default_rng(2)
    x, w, b, g = (gen.standard_normal(s) for s in ((2, 5, 3), (4, 3), (4,), (2, 5, 4)))
    layer = xmlp.Linear(3, 4, torch.from_numpy(w), torch.from_numpy(b))
    want = linear_forward(x, w, b)
    np.testing.assert_allclose(layer.predict(torch.from_numpy(x)).numpy(), want)
    np.testing.assert_allclose(layer.forward(torch.from_numpy(x)).numpy(), want)
    grad_input = layer.backward(torch.from_numpy(g))
    gw, gb, gx = linear_backward(x, w, g)
    for got, ref in ((layer.grad_weights, gw), (layer.grad_biases, gb), (grad_input, gx)):
        assert tuple(got.shape) == ref.shape
        np.testing.assert_allclose(got.numpy(), ref)


def test_wide_linear_step_matches_reference(xp, dtype):
    """Linear(1, 140000): a bias wider than the NumPy fast path's block, and weights past its
    size threshold, through forward, backward and update_params (the blocked SGD path)."""
    gen = np.random.default_rng(6)
    n_out = 140_000
    w, b = gen.standard_normal((n_out, 1)), gen.standard_normal(n_out)
    x, g = gen.standard_normal((3, 1)), gen.standard_normal((3, n_out))
    layer = xmlp.Linear(1, n_out, xp.from_numpy(w, dtype), xp.from_numpy(b, dtype))
    x, w, b, g = (a.astype(dtype).astype(np.float64) for a in (x, w, b, g))
    assert_matches(xp, layer.forward(xp.from_numpy(x, dtype)), linear_forward(x, w, b), dtype)
    layer.backward(xp.from_numpy(g, dtype))
    gw, gb, _ = linear_backward(x, w, g)
    layer.update_params(0.5)
    assert_matches(xp, layer.weights, w - 0.5 * gw, dtype)
    assert_matches(xp, layer.biases, b - 0.5 * gb, dtype)


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


# -- the initial weights -----------------------------------------------------------------------
def test_initial_weights_are_copied_in_the_dtype_asked_for(xp):
    """Linear(initial_weights=float64 arrays, dtype=float32) holds float32 copies: dtype= wins
    over the arrays' dtype (their namespace and device are kept)."""
    gen = np.random.default_rng(0)
    w, b = gen.standard_normal((2, 3)), gen.standard_normal(2)
    layer = xmlp.Linear(3, 2, xp.from_numpy(w, "float64"), xp.from_numpy(b, "float64"),
                        dtype=xp.float32)
    assert layer.dtype == xp.float32
    assert layer.weights.dtype == xp.float32 and layer.biases.dtype == xp.float32
    np.testing.assert_array_equal(to_host(layer.weights), w.astype(np.float32))
    np.testing.assert_array_equal(to_host(layer.biases), b.astype(np.float32))


def test_zero_biases_are_made_where_the_weights_live():
    dev1 = strict.Device("device1")
    for init in ("xavier", "he"):
        layer = xmlp.Linear(3, 4, xp=strict, device=dev1, dtype="float32", rng=0, init=init)
        assert layer.biases.dtype == strict.float32 and device(layer.biases) == dev1


def test_layer_from_big_endian_weights_is_native_and_takes_ordinary_input():
    w, b = np.arange(6.0).reshape(2, 3), np.array([0.5, -0.5])
    layer = xmlp.Linear(3, 2, w.astype(">f8"), b.astype(">f8"))
    assert layer.dtype == np.float64 and layer.weights.dtype.isnative
    assert layer.biases.dtype.isnative
    x = np.ones((4, 3))
    np.testing.assert_array_equal(layer.forward(x), xmlp.Linear(3, 2, w, b).forward(x))
    layer.backward(np.ones((4, 2)))
    layer.update_params(0.1)  # trains as a float64 layer
    assert layer.weights.dtype == np.float64 and layer.weights.dtype.isnative
    f32 = xmlp.Linear(3, 2, w.astype(">f4"), b.astype(">f4"))
    assert f32.dtype == np.float32 and f32.weights.dtype.isnative
    assert xmlp.MLP(1, 2, 1, dtype=np.dtype(">f4")).dtype == np.float32
    model = xmlp.MLP(1, 2, 1).to(dtype=np.dtype(">f4"))
    assert all(p.dtype == np.float32 and p.dtype.isnative for p in model.parameters())


@pytest.mark.xp_only("torch")  # only torch tensors record an autograd graph
def test_initial_weights_that_require_grad_are_copied_as_values(xp):
    torch = xp.module
    w = torch.ones((2, 3), dtype=torch.float64, device=xp.device, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, device=xp.device, requires_grad=True)
    model = xmlp.Sequential(xmlp.Linear(3, 2, w * 1, b * 1), xmlp.Tanh(),
                            xmlp.Linear(2, 1, rng=0, **layer_kwargs(xp)))
    x = xp.from_numpy(np.ones((4, 3)))
    loss = xmlp.MSELoss()
    for _ in range(3):
        loss.forward(model.forward(x), xp.from_numpy(np.zeros((4, 1))))
        model.backward(loss.backward())
        model.update_params(0.1)
    for p in model.parameters():
        assert not p.requires_grad and p.grad_fn is None
    for g in (g for _, g in model.named_grads()):
        assert not g.requires_grad
    assert w.grad is None  # nothing flowed back into the caller's graph


def test_a_new_layer_has_no_gradients_and_no_grad_input():
    """Before backward every gradient is None (named_grads says so, and update_params names
    the first missing one even when another was set by hand), and so is grad_input."""
    lin = xmlp.Linear(3, 4, rng=0)
    assert dict(lin.named_grads()) == {"weights": None, "biases": None}
    assert lin.grad_weights is None and lin.grad_biases is None and lin.grad_input is None
    lin.grad_weights = np.zeros((4, 3))
    assert message(xmlp.NoGradientError, lambda: lin.update_params(0.1)) == (
        "Linear.update_params: no gradient for 'biases'; call backward() after forward() first.")


def test_numpy_integer_dims_are_fine():
    layer = xmlp.Linear(np.int64(3), np.int32(2), rng=0)
    assert type(layer.input_dim) is int and layer.weights.shape == (2, 3)


# -- update_params -----------------------------------------------------------------------------
def test_readonly_parameter_is_updated_by_rebinding():
    layer = xmlp.Linear(3, 2, rng=0)
    w = layer.weights.copy()
    w.flags.writeable = False
    layer.weights = w
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    layer.update_params(0.1)
    np.testing.assert_array_equal(w, xmlp.Linear(3, 2, rng=0).weights)  # w untouched
    np.testing.assert_array_equal(layer.weights, w - 0.1 * layer.grad_weights)
    assert layer.weights.flags.writeable


# -- parameters assigned by hand ---------------------------------------------------------------
def test_weights_assigned_by_hand_after_steps_are_used_and_the_old_ones_let_go():
    """Parameters found to fit are not looked at again until another array is assigned: the
    next pass uses the new one, and neither the old array nor the layer is kept alive."""
    import functools
    import gc
    import weakref

    layer = xmlp.Linear(3, 2, rng=0)
    x = np.ones((4, 3))
    for _ in range(2):
        layer.forward(x)
        layer.backward(np.ones((4, 2)))
        layer.update_params(0.1)
    old = weakref.ref(layer.weights)
    layer.weights = np.full((2, 3), 0.5)
    np.testing.assert_array_equal(layer.forward(x), np.tile(1.5 + layer.biases, (4, 1)))
    gc.collect()
    assert old() is None
    layer.weights = np.full((3, 2), 0.5)  # the transpose: refused, as on the first call
    assert "shape (3, 2)" in message(ValueError, functools.partial(layer.forward, x))
    gone, weights = weakref.ref(layer), weakref.ref(layer.biases)
    layer = None
    gc.collect()
    assert gone() is None and weights() is None
    fresh = xmlp.Linear(3, 2, rng=0)  # used once, never assigned to by hand
    fresh.forward(x)
    weights = weakref.ref(fresh.weights)
    fresh = None
    gc.collect()
    assert weights() is None
