"""Tests written to kill surviving mutants of xmlp.ops.numpy_fast, xmlp.nn.module and xmlp.optim found
in the session-5 mutation run. Plain NumPy where the code under test is NumPy-only
(xmlp.ops.numpy_fast.NumpyOps); the ``xp`` fixture of tests/conftest.py where a backend matters."""

from __future__ import annotations

import threading

import array_api_compat.numpy as anp
import numpy as np
import pytest

import xmlp
from tests.conftest import backend
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


# -- _dispatch: XMLP_THREADS, tanh, input_grad ------------------------------------------------
@pytest.mark.parametrize("raw", ["1", "0", "-2"])
def test_one_thread_or_fewer_runs_every_block_on_the_calling_thread(raw, monkeypatch):
    """XMLP_THREADS=1 (and a 0 or a negative count, read as 1) means one thread: long
    elementwise work is not split and no thread pool is made."""
    monkeypatch.setenv("XMLP_THREADS", raw)
    # restored together (see test_dispatch.py::test_the_thread_pool_is_made_once_and_reused)
    monkeypatch.setattr(_dispatch, "_pool", None)
    monkeypatch.setattr(_dispatch, "_pool_pid", 0)
    assert _dispatch._threads() == 1
    seen = set()

    def kernel(out, a):
        seen.add(threading.get_ident())
        np.multiply(a, 2.0, out=out)

    a = np.arange(4 * _dispatch._LARGE, dtype=np.float64)
    out = _dispatch._blocks(kernel, np.empty_like(a), a)
    np.testing.assert_array_equal(out, 2.0 * a)
    assert seen == {threading.get_ident()}
    assert _dispatch._pool is None


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_fast_tanh_of_a_2d_array_is_the_tanh_of_its_elements(dt, order):
    """tanh is elementwise: a long 2-D array (either memory order) gets, bit for bit, what its
    elements get as one 1-D array (the same blocked approximation, not NumPy's tanh for some
    shapes), laid out like the input."""
    fast = NumpyOps(anp)
    x = np.asarray(3.0 * np.random.default_rng(51).standard_normal((300, 200)), dt, order=order)
    got = fast.tanh(x)
    assert got.dtype == dt and got.shape == x.shape
    assert got.flags.c_contiguous == (order == "C") and got.flags.f_contiguous == (order == "F")
    np.testing.assert_array_equal(got.ravel(order="K"), fast.tanh(x.ravel(order="K")))


def test_input_gradient_of_arrays_the_fast_path_declines_is_the_portable_gemm():
    """A one-output input gradient whose gradient or weights the outer product may not take
    (another dtype than the other operand, a strided view) is the portable op's GEMM, bit for
    bit: signs of zeros included (the GEMM adds each product to +0, so (-1) * 0 gives +0 there,
    -0 in an elementwise product)."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    n, width = 50, 100
    g = np.tile([[-1.0], [1.0], [-0.0], [0.0], [2.5]], (2 * n // 5, 1))  # (2n, 1)
    w = np.tile([[0.0, -0.0, 1.0, -3.0]], (1, width // 2))  # (1, 2 * width)
    x2 = np.ones((n, width))  # row-major
    cases = {
        "gradient float32": (g[:n].astype(np.float32), w[:, :width]),
        "weights float32": (g[:n], w[:, :width].astype(np.float32)),
        "strided gradient": (g[::2], w[:, :width]),
        "strided weights": (g[:n], w[:, ::2]),
    }
    for case, (g2, weights) in cases.items():
        assert g2.shape == (n, 1) and weights.shape == (1, width)
        got, want = fast.input_grad(g2, weights, x2), portable.input_grad(g2, weights, x2)
        assert type(got) is np.ndarray and got.dtype == want.dtype, case
        assert got.flags.c_contiguous, case
        np.testing.assert_array_equal(got, want, err_msg=case)
        assert np.array_equal(np.signbit(got), np.signbit(want)), case


# -- module: Module._params_ok (every parameter of a layer replaced by hand) ------------------
def _linear23(xp):
    return xmlp.Linear(2, 3, xp=xp.module, device=xp.device, dtype=xp.ns.float64, rng=0)


def test_a_layer_whose_every_parameter_has_another_dtype_is_refused(xp):
    """Both parameters replaced by float32 arrays on a float64 layer: the first is named (not
    accepted because no parameter has the layer's dtype)."""
    layer = _linear23(xp)
    layer.weights = xp.astype(layer.weights, xp.ns.float32)
    layer.biases = xp.astype(layer.biases, xp.ns.float32)
    with pytest.raises(TypeError) as info:
        layer.forward(xp.from_numpy(np.ones((4, 2))))
    assert str(info.value).startswith(
        "Linear(2, 3).forward: parameter 'weights' has dtype float32, but the layer's "
        "parameters are ")


def test_a_layer_whose_every_parameter_has_another_shape_is_refused(xp):
    """Both parameters replaced by arrays of a 4-output layer on a 3-output one: refused with
    the first one's shape, not used (the product would have 4 columns)."""
    layer = _linear23(xp)
    layer.weights = xp.from_numpy(np.ones((4, 2)))
    layer.biases = xp.from_numpy(np.ones(4))
    with pytest.raises(ValueError) as info:
        layer.forward(xp.from_numpy(np.ones((4, 2))))
    assert str(info.value) == ("Linear(2, 3).forward: parameter 'weights' has shape (4, 2) but "
                               "the layer needs (3, 2) (was it replaced by hand?)")


@pytest.mark.requires_backends("array_api_strict")
def test_a_layer_whose_every_parameter_is_on_another_device_is_refused():
    """array_api_strict's "device1": both parameters of a layer on the default device moved
    there by hand are refused by name, before any product mixes two devices."""
    xps = backend("array_api_strict").module
    dev1 = xps.Device("device1")
    layer = xmlp.Linear(2, 3, xp=xps, rng=0)
    layer.weights = xps.asarray(layer.weights, device=dev1)
    layer.biases = xps.asarray(layer.biases, device=dev1)
    with pytest.raises(TypeError) as info:
        layer.forward(xps.ones((4, 2), dtype=xps.float64))
    text = str(info.value)
    assert text.startswith("Linear(2, 3).forward: parameter 'weights' ") and "device1" in text
