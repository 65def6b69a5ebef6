"""xmlp.backend's arrays: what ArraySpec says of an array that does not fit it, the copies it
makes of torch tensors that require grad, to_host for every kind of array (CuPy, torch, Dask,
DLPack only, array-api-strict on any device), and how values and namespaces are shown in
messages. Each runs wherever its library is installed, whatever XMLP_BACKENDS says."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from xmlp.backend import to_host


# -- ArraySpec ---------------------------------------------------------------------------------
def test_mismatch_says_how_an_array_differs():
    from xmlp.backend import ArraySpec

    spec = ArraySpec.of(np.zeros(2))
    assert spec.mismatch(np.zeros(2)) is None
    assert spec.mismatch([0.0, 0.0]) == "is a list, not an array"
    assert spec.mismatch(np.zeros(2, np.float32)) == "has dtype float32"
    assert spec.mismatch(np.zeros(2, ">f8")) == "has non-native byte order ('>f8')"
    assert spec.mismatch(np.ma.zeros(2)) == "is a MaskedArray"  # right namespace and dtype
    # float32: np.dtype(None) is float64, so only another dtype tells the names apart
    spec32 = ArraySpec.of(np.zeros(2, np.float32))
    assert spec32.mismatch(np.zeros(2, ">f4")) == "has non-native byte order ('>f4')"


def test_mismatch_says_a_tensor_requires_grad():
    from xmlp.backend import ArraySpec

    torch = pytest.importorskip("torch", reason="PyTorch is not installed: its autograd text")
    tspec = ArraySpec.of(torch.zeros(2, dtype=torch.float64))
    assert tspec.mismatch(torch.zeros(2, dtype=torch.float64, requires_grad=True)) == (
        "requires grad (it would record an autograd graph every step)")


def test_copies_of_tensors_that_require_grad_hold_values_only():
    """What a spec copies from a torch tensor that requires grad (initial weights, to(), the
    scikit-learn adapter's coefs_) records no graph, whatever the copy's dtype. Runs wherever
    torch is installed, as the copy is made before any model exists."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: only its tensors "
                                "record an autograd graph")
    from xmlp.backend import ArraySpec

    w = torch.ones((2, 3), dtype=torch.float64, requires_grad=True)
    for dtype in (torch.float64, torch.float32):
        spec = ArraySpec.of(torch.zeros(1, dtype=dtype))
        copy = spec.convert(w * 2)
        assert not copy.requires_grad and copy.grad_fn is None
        assert copy.dtype == dtype
        np.testing.assert_array_equal(copy.numpy(), np.full((2, 3), 2.0))
    assert w.grad is None


# -- to_host -----------------------------------------------------------------------------------
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


# -- values and namespaces in messages ---------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("a" * 78, "'" + "a" * 78 + "'"),  # 80 characters: kept whole
    ("a" * 79, "'" + "a" * 76 + "..."),  # 81: cut to 80, the last three "..."
])
def test_values_in_messages_are_cut_to_80_characters(value, expected):
    from xmlp.backend import short_repr

    assert short_repr(value) == expected and len(expected) == 80


def test_a_value_without_a_repr_is_named_by_its_type():
    from xmlp.backend import short_repr

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert short_repr(Broken()) == "<a Broken>"
    assert short_repr(10**5000) == f"<an int of {(10**5000).bit_length()} bits>"


def test_a_namespace_without_a_name_is_shown_by_its_repr():
    """namespace_name, which every message uses to name a namespace, falls back on repr() for
    a namespace object that is not a module (one without __name__)."""
    import types

    from xmlp.backend import namespace_name

    ns = types.SimpleNamespace(kind="custom")
    assert namespace_name(ns) == "namespace(kind='custom')"
    assert namespace_name(np) == "numpy"
