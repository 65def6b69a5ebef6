"""Every fast path in xmlp._dispatch equals the portable Array API version."""

from __future__ import annotations

import array_api_compat.numpy as anp
import numpy as np
import pytest

from xmlp import _dispatch
from xmlp._dispatch import NumpyOps, PortableOps

# Small shapes take the direct path; large ones (>= _LARGE elements) the blocked one.
SHAPES = [(7, 3), (100, 10), (1024, 300), (700, 1031)]


@pytest.fixture(params=["float64", "float32"])
def dt(request):
    return np.dtype(request.param)


def _pair():
    return NumpyOps(anp), PortableOps(anp)


def _close(fast, portable, dt):
    assert type(fast) is type(portable)
    assert fast.dtype == portable.dtype and fast.shape == portable.shape
    tol = 1e-13 if dt == np.float64 else 2e-6
    np.testing.assert_allclose(fast, portable, rtol=tol, atol=tol)


def test_numpy_namespace_gets_the_fast_path():
    assert type(_dispatch.ops_for(anp)) is NumpyOps
    import array_api_strict

    assert type(_dispatch.ops_for(array_api_strict)) is PortableOps


@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_fast_paths_equal_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(0)
    x = gen.standard_normal(shape).astype(dt)
    g = gen.standard_normal(shape).astype(dt)
    t = gen.standard_normal(shape).astype(dt)
    y = np.tanh(x)
    inputs = {"x": x, "g": g, "t": t, "y": y}
    before = {name: a.copy() for name, a in inputs.items()}
    _close(fast.tanh(x), portable.tanh(x), dt)
    _close(fast.tanh_grad(g, y), portable.tanh_grad(g, y), dt)
    _close(fast.sum_rows(g), portable.sum_rows(g), dt)
    (fl, fd), (pl, pd) = fast.mse(y, t), portable.mse(y, t)
    assert type(fl) is type(pl) and fl.dtype == pl.dtype
    np.testing.assert_allclose(fl, pl, rtol=1e-12 if dt == np.float64 else 1e-5)
    _close(fd, pd, dt)
    fd_before = fd.copy()
    _close(fast.mse_grad(fd, fd.size), portable.mse_grad(pd, pd.size), dt)
    # inputs are never written: every one of them, by any op
    for name, a in inputs.items():
        np.testing.assert_array_equal(a, before[name], err_msg=name)
    np.testing.assert_array_equal(fd, fd_before, err_msg="diff")


@pytest.mark.parametrize("shape", SHAPES)
def test_affine_and_matmul_equal_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(1)
    n, k = shape
    x = gen.standard_normal((n, k)).astype(dt)
    w = gen.standard_normal((513, k)).astype(dt)
    b = gen.standard_normal(513).astype(dt)
    before = [a.copy() for a in (x, w, b)]
    _close(fast.affine(x, w, b), portable.affine(x, w, b), dt)
    _close(fast.matmul(x, w.T), portable.matmul(x, w.T), dt)
    for a, kept in zip((x, w, b), before, strict=True):  # inputs are never written
        np.testing.assert_array_equal(a, kept)


@pytest.mark.parametrize("shape", SHAPES)
def test_sgd_equals_portable_and_is_in_place(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(2)
    p = gen.standard_normal(shape).astype(dt)
    g = gen.standard_normal(shape).astype(dt)
    p_fast, p_port, g_before = p.copy(), p.copy(), g.copy()
    out = fast.sgd(p_fast, g, 0.3)
    assert out is p_fast  # in place: a user's reference to the weights sees the step
    _close(out, portable.sgd(p_port, g, 0.3), dt)
    np.testing.assert_array_equal(g, g_before)  # only the parameter is written


# A wide bias is a 1-D parameter; a row wider than a block (_BLOCK elements) is cut to one row
# per block. Both pass _LARGE, so they take the blocked paths.
WIDE = [(140_000,), (1, 140_000), (3, 50_000), (5, _dispatch._BLOCK + 1)]


@pytest.mark.parametrize("shape", WIDE, ids=str)
def test_wide_and_1d_arrays_through_the_blocked_paths(shape, dt):
    assert np.prod(shape) >= _dispatch._LARGE
    fast, portable = _pair()
    gen = np.random.default_rng(5)
    p = gen.standard_normal(shape).astype(dt)
    g = gen.standard_normal(shape).astype(dt)
    y = np.tanh(gen.standard_normal(shape)).astype(dt)
    g_before, y_before = g.copy(), y.copy()
    p_fast = p.copy()
    out = fast.sgd(p_fast, g, 0.25)
    assert out is p_fast
    _close(out, portable.sgd(p.copy(), g, 0.25), dt)
    _close(fast.tanh_grad(g, y), portable.tanh_grad(g, y), dt)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(y, y_before)


def test_non_contiguous_inputs_fall_back(dt):
    fast, portable = _pair()
    gen = np.random.default_rng(3)
    big = gen.standard_normal((800, 400)).astype(dt)
    g, y = big[:, ::2], np.tanh(big[:, 1::2])
    _close(fast.tanh_grad(g, y), portable.tanh_grad(g, y), dt)
    _close(fast.tanh(g), portable.tanh(g), dt)
    w = gen.standard_normal((400, 800)).astype(dt).T  # non-contiguous parameter
    w_fast, w_port = w.copy(order="F"), w.copy(order="F")
    _close(fast.sgd(w_fast, big, 0.1), portable.sgd(w_port, big, 0.1), dt)


def test_fast_paths_can_be_turned_off():
    import xmlp

    try:
        _dispatch.set_fast_paths(False)
        model = xmlp.MLP(2, 3, 1, rng=0)
        assert type(model.linear1._spec.ops) is PortableOps
    finally:
        _dispatch.set_fast_paths(True)
    assert type(xmlp.MLP(2, 3, 1, rng=0).linear1._spec.ops) is NumpyOps


def test_whole_step_same_with_and_without_fast_paths():
    import xmlp

    gen = np.random.default_rng(4)
    x, t = gen.standard_normal((600, 300)), gen.standard_normal((600, 40))
    results = []
    for enabled in (True, False):
        try:
            _dispatch.set_fast_paths(enabled)
            model, loss = xmlp.MLP(300, 500, 40, rng=1, init="xavier"), xmlp.MSELoss()
            value = loss.forward(model.forward(x), t)
            gx = model.backward(loss.backward())
            model.update_params(0.1)
            results.append([value, gx, *model.parameters(), *(g for _, g in model.named_grads())])
        finally:
            _dispatch.set_fast_paths(True)
    for fast, portable in zip(*results, strict=True):
        np.testing.assert_allclose(fast, portable, rtol=1e-12, atol=1e-13)
