"""Tests written to kill surviving mutants of NumpyOps.tanh, NumpyOps.tanh_grad,
NumpyOps.sum_rows and ArraySpec.holds found in the session-5 mutation run. Plain NumPy for
NumpyOps (xmlp.ops.numpy_fast's fast paths are NumPy-only); the two ArraySpec.holds survivors proved
equivalent (a spec made afresh is the same spec), so none of these tests needs a backend."""

from __future__ import annotations

import array_api_compat.numpy as anp
import numpy as np
import pytest

import xmlp
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


# -- NumpyOps.tanh -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt, n", [(np.float64, 1024), (np.float32, 16384)],
                         ids=["float64", "float32"])
def test_tanh_switches_to_the_vectorized_kernel_at_the_documented_sizes(dt, n):
    """docs/performance.md: arrays under 1024 (float64) or 16384 (float32) elements use NumPy's
    tanh, bit for bit; from that size on, the vectorized kernel (whose last bits differ from
    NumPy's on some elements): exactly n elements get what the same elements get inside a
    longer array."""
    fast = NumpyOps(anp)
    x = (3.0 * np.random.default_rng(61).standard_normal(65_536)).astype(dt)
    vectorized = fast.tanh(x)[:n]  # a long array: the vectorized kernel, elementwise
    assert not np.array_equal(vectorized, np.tanh(x[:n]))  # whose bits differ on this data
    got = fast.tanh(x[:n])
    assert type(got) is np.ndarray and got.dtype == dt and got.shape == (n,)
    np.testing.assert_array_equal(got, vectorized)
    below = fast.tanh(x[: n - 1])
    assert below.dtype == dt
    np.testing.assert_array_equal(below, np.tanh(x[: n - 1]))


def test_the_float64_tanh_table_is_built_on_first_use(monkeypatch):
    """The float64 kernel's table of tanh(k / 256), k in [-5120, 5120], is made by the first
    long float64 tanh of the process (restored afterwards): that first call is as accurate as
    any, over the whole range and at the edges (infinities, NaN, signed zeros)."""
    monkeypatch.setattr(_dispatch, "_tanh64_table", None)
    fast = NumpyOps(anp)
    gen = np.random.default_rng(62)
    x = np.concatenate([np.linspace(-25.0, 25.0, 20_001), gen.standard_normal(5_000) * 0.01,
                        [19.998, -19.998, 20.0, -20.0, 1 / 512, -1 / 512, 0.625, -0.625]])
    got = fast.tanh(x)
    assert got.dtype == np.float64 and not np.isnan(got).any()
    exact = np.tanh(x)
    with np.errstate(over="ignore"):  # a wrong value near 0 is a huge number of ulp
        ulp = np.abs(got - exact) / np.spacing(np.abs(exact))
    assert ulp.max() <= 3
    edge = np.array([0.0, -0.0, np.inf, -np.inf, np.nan] * 500)  # 2,500: the fast path
    got_edge = fast.tanh(edge)
    np.testing.assert_array_equal(got_edge[:5], [0.0, -0.0, 1.0, -1.0, np.nan])
    assert np.signbit(got_edge[1]) and not np.signbit(got_edge[0])
    np.testing.assert_array_equal(fast.tanh(x), got)  # the table made once serves again


# -- NumpyOps.tanh_grad ------------------------------------------------------------------------
def test_tanh_gradient_is_laid_out_like_its_stored_output():
    """Tanh after a one-input layer stores a column-major output (docs/performance.md); the
    gradient from a 10-wide layer after it is row-major (a GEMM's). Tanh's grad_input keeps the
    output's column-major order (as ReLU's keeps its input's), for small arrays and for long
    ones whose orders differ (no blocked path), with the portable product's values."""
    gen = np.random.default_rng(63)
    x, t = gen.standard_normal((200, 1)), gen.standard_normal((200, 10))
    grads = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            model = xmlp.Sequential(xmlp.Linear(1, 100, rng=0), xmlp.Tanh(),
                                    xmlp.Linear(100, 10, rng=1))
            loss = xmlp.MSELoss()
            loss.forward(model.forward(x), t)
            model.backward(loss.backward())
            if enabled:
                assert model[1].output.flags.f_contiguous
                assert not model[1].output.flags.c_contiguous
                assert model[2].grad_input.flags.c_contiguous
                got = model[1].grad_input
                assert got.flags.f_contiguous and not got.flags.c_contiguous
            grads.append(model[1].grad_input)
        finally:
            xmlp.ops.set_fast_paths(True)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-13)
    fast, portable = NumpyOps(anp), PortableOps(anp)
    for shape in ((50, 40), (400, 200)):  # under and over _LARGE elements
        assert (shape[0] * shape[1] >= _dispatch._LARGE) == (shape == (400, 200))
        y = np.asfortranarray(np.tanh(gen.standard_normal(shape)))
        g = gen.standard_normal(shape)  # row-major
        got = fast.tanh_grad(g, y)
        assert type(got) is np.ndarray and got.dtype == np.float64
        assert got.flags.f_contiguous and not got.flags.c_contiguous
        np.testing.assert_array_equal(got, portable.tanh_grad(g, y))


# -- NumpyOps.sum_rows -------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_sum_rows_of_other_ranks_sums_over_the_first_axis(dt):
    """The row-sum fast path reads a 2-D column-major array transposed; arrays of other ranks
    (1-D, or 3-D in either memory order) are summed over their first axis as the portable op
    sums them: the same shape, dtype and bits."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(64)
    cube = gen.standard_normal((30, 4, 5)).astype(dt)
    for g in (gen.standard_normal(37).astype(dt), cube, np.asfortranarray(cube)):
        got, want = fast.sum_rows(g), portable.sum_rows(g)
        assert got.shape == want.shape == g.shape[1:]
        assert got.dtype == want.dtype == dt
        np.testing.assert_array_equal(got, want)
