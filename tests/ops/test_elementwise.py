"""The NumPy fast paths of the elementwise ops and row sums against the portable ops: tanh
(NumPy's below the documented sizes, the vectorized kernel from there on, its float64
table made on first use), the tanh gradient laid out like its stored output, row sums of
every rank, and one thread doing all the work when XMLP_THREADS says one."""

from __future__ import annotations

import array_api_compat.numpy as anp
import numpy as np
import pytest

import xmlp
import xmlp.ops
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


# -- tanh --------------------------------------------------------------------------------------
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


# -- the tanh gradient -------------------------------------------------------------------------
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


def test_tanh_grad_with_a_non_contiguous_stored_output():
    from xmlp.ops.numpy_fast import _LARGE, NumpyOps, PortableOps

    gen = np.random.default_rng(4)
    g = gen.standard_normal((400, 400))  # contiguous, past _LARGE
    y = np.tanh(gen.standard_normal((400, 800)))[:, ::2]  # not contiguous
    assert g.size >= _LARGE and not y.flags.c_contiguous
    np.testing.assert_allclose(NumpyOps(np).tanh_grad(g, y), PortableOps(np).tanh_grad(g, y),
                               rtol=1e-14)


# -- row sums ----------------------------------------------------------------------------------
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


