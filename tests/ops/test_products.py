"""The NumPy fast paths of the products (matmul, affine, the input gradient) against the
portable ops: float64 products of few rows are the plain GEMM bit for bit; what a fast path
declines (operands of mixed dtypes, strided views) is the portable GEMM's result, laid out
as it lays it out; an outer product is laid out like the input it stands for."""

from __future__ import annotations

import array_api_compat.numpy as anp
import numpy as np
import pytest

from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


# -- matmul and affine -------------------------------------------------------------------------
def _bits(a):
    """The bit patterns of a float array: equal only where every value and zero sign is."""
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


# float64 products always run as the plain GEMM (the swapped _FEW_ROWS product is float32
# only); on OpenBLAS the swapped float64 GEMM rounds differently for these shapes.
FEW_ROWS_F64 = [(64, 256, 513), (64, 300, 100), (64, 100, 100), (63, 257, 513)]


@pytest.mark.parametrize("shape", FEW_ROWS_F64, ids=str)
def test_float64_matmul_of_few_rows_is_the_plain_gemm(shape):
    """A float64 (m, k) @ (k, n) of few rows (m <= 64, into few or many columns) is the
    portable np.matmul bit for bit, row-major: _FEW_ROWS swaps the operands of float32
    products only."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    m, k, n = shape
    gen = np.random.default_rng(61)
    a, w = gen.standard_normal((m, k)), gen.standard_normal((n, k))
    got = fast.matmul(a, w.T)
    assert got.dtype == np.float64 and got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_array_equal(_bits(got), _bits(portable.matmul(a, w.T)))


@pytest.mark.parametrize("shape", FEW_ROWS_F64, ids=str)
def test_float64_affine_of_few_rows_is_the_plain_gemm(shape):
    """As test_float64_matmul_of_few_rows_is_the_plain_gemm for affine: x @ W.T + b of a
    float64 batch of few rows is the portable value bit for bit."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    m, k, n = shape
    gen = np.random.default_rng(62)
    x, w, b = gen.standard_normal((m, k)), gen.standard_normal((n, k)), gen.standard_normal(n)
    got = fast.affine(x, w, b)
    assert got.dtype == np.float64 and got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_array_equal(_bits(got), _bits(portable.affine(x, w, b)))


def _declined(got, want):
    """``got`` is the portable GEMM's result: dtype, shape, row-major layout and values."""
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous and not got.flags.f_contiguous  # not the outer product's
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("odd", ["left", "right"])
def test_one_wide_matmul_of_mixed_dtypes_is_the_portable_gemm(odd):
    """(N, 1) @ (1, M) of >= _OUTER_MIN elements whose operands differ in dtype (either one
    float32): takes() refuses the pair, so the result is the portable GEMM's, float64 and
    row-major, not the outer product's column-major array."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(63)
    a, b = gen.standard_normal((200, 1)), gen.standard_normal((1, 100))
    if odd == "left":
        a = a.astype(np.float32)
    else:
        b = b.astype(np.float32)
    assert a.shape[0] * b.shape[1] >= _dispatch._OUTER_MIN
    _declined(fast.matmul(a, b), portable.matmul(a, b))


@pytest.mark.parametrize("strided", ["left", "right"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_one_wide_matmul_of_a_strided_operand_is_the_portable_gemm(strided, dt):
    """(N, 1) @ (1, M) of >= _OUTER_MIN elements with one operand a strided view (not
    contiguous, so _laid refuses): the portable GEMM's row-major result, not an outer
    product."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(64)
    a = gen.standard_normal((400, 1)).astype(dt)
    b = gen.standard_normal((1, 200)).astype(dt)
    a, b = (a[::2], b[:, :100].copy()) if strided == "left" else (a[:200].copy(), b[:, ::2])
    assert not (a.flags.c_contiguous and b.flags.c_contiguous)
    assert a.shape[0] * b.shape[1] >= _dispatch._OUTER_MIN
    _declined(fast.matmul(a, b), portable.matmul(a, b))


@pytest.mark.parametrize("shapes", [((5,), (5, 3)), ((4, 7, 5), (5, 3)), ((2, 4, 1), (1, 600))],
                         ids=["vector", "stack", "stack-one-wide"])
def test_matmul_takes_what_np_matmul_takes(shapes):
    """The fast matmul equals the portable one for every operand shape np.matmul takes, not
    only two matrices: a vector times a matrix, a stack of matrices times a matrix."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(65)
    a, b = (gen.standard_normal(s) for s in shapes)
    got, want = fast.matmul(a, b), portable.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("odd", ["x", "weights"])
def test_one_wide_affine_of_mixed_dtypes_is_the_portable_gemm(odd):
    """A one-feature affine of >= _OUTER_MIN outputs whose input or weights are float32 while
    the rest is float64: the portable result (float64, row-major), not the outer product."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(66)
    x, w, b = gen.standard_normal((200, 1)), gen.standard_normal((100, 1)), gen.standard_normal(100)
    if odd == "x":
        x = x.astype(np.float32)
    else:
        w = w.astype(np.float32)
    _declined(fast.affine(x, w, b), portable.affine(x, w, b))


@pytest.mark.parametrize("n", [3, 200])
def test_affine_with_float64_biases_on_float32_data_promotes_to_float64(n):
    """float32 input and weights with float64 biases: the portable x @ W.T + b promotes to
    float64; the fast path must not add the biases in place into a float32 product (which
    would round them to float32)."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(67)
    x = gen.standard_normal((n, 1)).astype(np.float32)
    w = gen.standard_normal((100, 1)).astype(np.float32)
    b = gen.standard_normal(100) * (1 + 2.0**-40)  # not representable in float32
    got, want = fast.affine(x, w, b), portable.affine(x, w, b)
    assert want.dtype == np.float64
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("strided", ["x", "weights", "biases"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_one_wide_affine_of_a_strided_array_is_row_major(strided, dt):
    """A one-feature affine of >= _OUTER_MIN outputs where the input, the weights or the
    biases is a strided view (_laid refuses it): a GEMM plus the biases, row-major and equal
    to the portable value, not the outer product's column-major array."""
    fast, portable = NumpyOps(anp), PortableOps(anp)
    gen = np.random.default_rng(68)
    x = gen.standard_normal((400, 1)).astype(dt)
    w = gen.standard_normal((200, 1)).astype(dt)
    b = gen.standard_normal(200).astype(dt)
    x = x[::2] if strided == "x" else x[:200].copy()
    w = w[::2] if strided == "weights" else w[:100].copy()
    b = b[::2] if strided == "biases" else b[:100].copy()
    got = fast.affine(x, w, b)
    assert got.shape == (200, 100) and got.dtype == dt
    assert got.flags.c_contiguous and not got.flags.f_contiguous
    np.testing.assert_array_equal(got, portable.affine(x, w, b))


