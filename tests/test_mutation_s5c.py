"""Tests written to kill surviving mutants of NumpyOps.affine/matmul (xmlp.ops.numpy_fast), to_host
(xmlp.backend) and _Activation._input_spec found in the session-5 mutation run. Plain NumPy
for NumpyOps; to_host is checked on array_api_strict, and on torch and Dask through
pytest.importorskip (so these run wherever they are installed, whatever XMLP_BACKENDS says)."""

from __future__ import annotations

import sys
import types

import array_api_compat.numpy as anp
import numpy as np
import pytest

import xmlp
from xmlp.backend import to_host
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


def _bits(a):
    """The bit patterns of a float array: equal only where every value and zero sign is."""
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


# -- NumpyOps.matmul / affine: what the fast paths decline is the portable GEMM ---------------
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


# -- to_host ------------------------------------------------------------------------------
class _FakeCupyArray:
    """A stand-in for cupy.ndarray (the two things to_host relies on): NumPy's implicit
    conversion is refused with CuPy's TypeError, and .get() copies the data to the host."""

    def __init__(self, host):
        self._host = host

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def get(self):
        return np.array(self._host, copy=True)


def test_to_host_fetches_a_cupy_array_with_get(monkeypatch):
    """A CuPy array (here a stand-in, registered as cupy.ndarray) comes to the host through
    .get(): CuPy refuses NumPy's implicit conversion."""
    fake = types.ModuleType("cupy")
    fake.ndarray = _FakeCupyArray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    host = np.arange(6.0).reshape(2, 3)
    got = to_host(_FakeCupyArray(host))
    assert type(got) is np.ndarray and got.dtype == np.float64
    np.testing.assert_array_equal(got, host)
    assert not np.shares_memory(got, host)


def test_to_host_detaches_a_torch_tensor_that_requires_grad():
    """A tensor recording autograd (NumPy's conversion refuses it) comes back detached: a
    NumPy copy of its values, which writing does not change the tensor."""
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    t = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(2, 3).requires_grad_()
    got = to_host(t)
    assert type(got) is np.ndarray and got.dtype == np.float64 and got.shape == (2, 3)
    want = t.detach().clone().numpy()
    np.testing.assert_array_equal(got, want)
    got[...] = 7.0
    np.testing.assert_array_equal(t.detach().numpy(), want)


@pytest.mark.parametrize("what", ["matrix", "0-d reduction"])
def test_to_host_computes_a_dask_array_into_a_numpy_array(what):
    """A Dask array is computed into a NumPy array: a matrix, and a 0-d reduction (which
    Dask's compute() returns as a NumPy scalar) as a 0-d ndarray."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed here")
    host = np.arange(12.0).reshape(3, 4)
    d = da.from_array(host, chunks=(2, 4))
    if what == "0-d reduction":
        d, host = d.sum(), np.array(host.sum())
    got = to_host(d)
    assert type(got) is np.ndarray and got.dtype == np.float64 and got.shape == host.shape
    np.testing.assert_array_equal(got, host)


class _DLPackOnly:
    """An Array API array of some other library that lives on the host (its namespace's
    default device) but refuses NumPy's implicit conversion, as CuPy does: only DLPack
    exports its data, sharing its buffer."""

    def __init__(self, data):
        self._data = data
        self.dtype, self.shape = data.dtype, data.shape

    def __array__(self, dtype=None, copy=None):
        raise TypeError("implicit conversion to a NumPy array is not supported")

    def __array_namespace__(self, api_version=None):
        return _HOST_LIB

    def to_device(self, device, /, stream=None):
        assert device == "host"
        return self

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()


_HOST_LIB = types.ModuleType("hostlib")  # _DLPackOnly's namespace: one device, "host"
_HOST_LIB.__array_namespace_info__ = lambda: types.SimpleNamespace(default_device=lambda: "host")


def test_to_host_of_a_dlpack_only_array_is_a_copy():
    """An array that only DLPack can export (DLPack shares the buffer) comes back as a NumPy
    copy: writing it leaves the caller's array alone."""
    data = np.arange(6.0).reshape(2, 3)
    got = to_host(_DLPackOnly(data))
    assert type(got) is np.ndarray and got.dtype == np.float64 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, np.arange(6.0).reshape(2, 3))
    assert not np.shares_memory(got, data)
    got[...] = -1.0
    np.testing.assert_array_equal(data, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("device", ["CPU_DEVICE", "device1", "device2"])
def test_to_host_of_array_api_strict_arrays_on_any_device_is_a_copy(device):
    """array-api-strict arrays on every device (NumPy cannot convert those off its CPU
    device) come back as NumPy copies of their values."""
    xs = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed here")
    dev = xs.Device(device)
    a = xs.asarray([[1.0, -2.0], [3.5, 0.25]], dtype=xs.float64, device=dev)
    got = to_host(a)
    assert type(got) is np.ndarray and got.dtype == np.float64
    np.testing.assert_array_equal(got, [[1.0, -2.0], [3.5, 0.25]])
    got[...] = 0.0
    np.testing.assert_array_equal(to_host(a), [[1.0, -2.0], [3.5, 0.25]])


# -- activations: the spec of the first input is kept ---------------------------------------
@pytest.mark.parametrize("method", ["forward", "predict"])
def test_activation_keeps_the_ops_of_its_first_input_after_fast_paths_are_turned_off(method):
    """set_fast_paths applies to activation inputs first seen from then on: a Tanh that has
    seen a float64 array keeps computing same-spec inputs with the ops it chose then (here the
    fast tanh, which differs from NumPy's in the last bits), it does not re-resolve them."""
    before = xmlp.ops._fast_paths
    x = np.linspace(-4.0, 4.0, 20_001).reshape(1, -1)  # long: the vectorized tanh
    fast_tanh = NumpyOps(anp).tanh(x)
    assert not np.array_equal(fast_tanh, np.tanh(x))  # the two are distinguishable
    try:
        xmlp.ops.set_fast_paths(True)
        act = xmlp.Tanh()
        first = act.forward(x)
        xmlp.ops.set_fast_paths(False)
        again = getattr(act, method)(x.copy())
    finally:
        xmlp.ops.set_fast_paths(before)
    np.testing.assert_array_equal(first, fast_tanh)
    np.testing.assert_array_equal(again, fast_tanh)
