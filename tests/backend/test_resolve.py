"""How xp=, device=, dtype= and rng= are resolved, and the messages when they cannot be: a
device the namespace refuses (with its reason and its devices), a dtype that is not real
floating or that the namespace hands out narrower, backend names, seeds. Device and dtype
cases use array-api-strict's devices ("device1", "device2", "no_float64", "no_x64")
whatever XMLP_BACKENDS says."""

from __future__ import annotations

import types

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.helpers import (
    int_id,
    message,
)
from xmlp.backend import ArraySpec, _device_error, make_rng

# -- devices -----------------------------------------------------------------------------------
STRICT_DEVICES = (
    "[array_api_strict.Device('CPU_DEVICE'), array_api_strict.Device('device1'), "
    "array_api_strict.Device('device2'), array_api_strict.Device('no_float64'), "
    "array_api_strict.Device('no_x64')]"
)


def said(call) -> str:
    """What array-api-strict itself says when ``call`` fails (its wording is its own)."""
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_a_device_the_namespace_refuses_is_named_with_the_namespaces_reason():
    """Linear(xp=..., device=<unknown>) fails in resolve_namespace: the TypeError names the
    device, quotes what the namespace said about it and lists its devices."""
    reason = said(lambda: strict.asarray(0.0, device="bogus"))
    assert message(TypeError, lambda: xmlp.Linear(2, 2, xp=strict, device="bogus")) == (
        f"array_api_strict cannot make arrays on device='bogus' ({reason}). "
        f"Its devices: {STRICT_DEVICES}.")


def test_moving_to_a_bad_device_or_dtype_names_the_device_and_the_reason():
    """The device checked when a spec makes its probe array (model.to(device=...) keeps the
    namespace and so skips resolve_namespace; float64 on a device without it): the TypeError
    names the device asked for and quotes the namespace's reason."""
    model = xmlp.Linear(2, 2, xp=strict, rng=0)
    reason = said(lambda: strict.zeros((1,), dtype=strict.float64, device="bogus"))
    assert message(TypeError, lambda: model.to(device="bogus")) == (
        f"array_api_strict cannot make arrays on device='bogus' ({reason}). "
        f"Its devices: {STRICT_DEVICES}.")
    no_x64 = strict.Device("no_x64")
    reason = said(lambda: strict.zeros((1,), dtype=strict.float64, device=no_x64))
    assert message(TypeError, lambda: xmlp.Linear(2, 2, xp=strict, device=no_x64,
                                                  dtype="float64")) == (
        f"array_api_strict cannot make arrays on device={no_x64!r} ({reason}). "
        f"Its devices: {STRICT_DEVICES}.")


def test_device_message_lists_the_devices():
    got = message(TypeError, lambda: xmlp.Linear(3, 4, xp=strict, device="nope"))
    assert got.startswith("array_api_strict cannot make arrays on device='nope' (")
    assert ". Its devices: [array_api_strict.Device('CPU_DEVICE'), " in got


def test_device_message_of_a_namespace_without_inspection():
    class Bare:
        __name__ = "bare"

    got = str(_device_error(Bare(), "gpu", RuntimeError("no such device")))
    assert got == "bare cannot make arrays on device='gpu' (no such device)."


def test_a_namespace_that_cannot_list_its_devices_has_its_devices_checked():
    """A namespace without a working __array_namespace_info__().devices() may have several
    devices: its spec checks the device of every array (check_device), rather than assume one."""

    def zeros(shape, dtype=None, device=None):
        return np.zeros(shape, dtype=dtype)

    plain = types.ModuleType("plain_ns")  # zeros only: no __array_namespace_info__
    plain.zeros = zeros
    assert ArraySpec(plain, None, np.dtype("float64")).check_device is True
    assert ArraySpec.resolve(np).check_device is False  # one device, listed: not checked


# -- dtypes ------------------------------------------------------------------------------------
def test_without_dtype_a_model_takes_the_default_dtype_of_its_device():
    """dtype=None is the namespace's default real floating dtype on the device asked for:
    array-api-strict's "device2" and "no_float64" default to float32, "device1" to float64."""
    for name, want in (("device2", strict.float32), ("no_float64", strict.float32),
                       ("device1", strict.float64)):
        layer = xmlp.Linear(3, 2, xp=strict, device=strict.Device(name), rng=0)
        assert layer.dtype == want and layer.weights.dtype == want, name
        assert layer.device == strict.Device(name)


def test_float16_where_the_namespace_has_none_is_a_dtype_error():
    """array-api-strict has no float16: asking for it is the dtype TypeError, not an
    AttributeError from the namespace."""
    assert not hasattr(strict, "float16")
    assert message(TypeError, lambda: xmlp.Linear(2, 2, xp=strict, dtype="float16")) == (
        "dtype='float16' is not a real floating dtype; use float32 or float64 "
        "(e.g. dtype=array_api_strict.float32).")


def test_a_dtype_numpy_cannot_read_is_refused_by_its_repr():
    """An object that is no dtype (and whose text has no dot) gives the dtype TypeError showing
    it as given."""

    class NotADtype:
        def __repr__(self) -> str:
            return "NotADtype()"

    assert message(TypeError, lambda: xmlp.Linear(2, 2, dtype=NotADtype())) == (
        "dtype=NotADtype() is not a real floating dtype; use float32 or float64 "
        "(e.g. dtype=numpy.float32).")


def test_a_dtype_of_another_library_is_read_by_its_last_name():
    """A dtype NumPy cannot interpret is read by the name after its last dot, as for
    torch.float32: a library's dtype that prints as "mlx.core.float32" asks for float32."""

    class ForeignDtype:
        def __str__(self) -> str:
            return "mlx.core.float32"

    with pytest.raises(TypeError):
        np.dtype(ForeignDtype())  # NumPy cannot read it: xmlp goes by its name
    layer = xmlp.Linear(3, 2, xp=strict, dtype=ForeignDtype(), rng=0)
    assert layer.dtype == strict.float32 and layer.weights.dtype == strict.float32


def test_a_namespace_that_hands_out_another_dtype_is_refused():
    """A namespace that silently makes another dtype than asked (JAX without x64 makes float32
    for float64) is refused with a TypeError naming both dtypes. JAX is not needed: a stand-in
    namespace that narrows every floating dtype shows the message."""

    def zeros(shape, dtype=None, device=None):
        narrower = {np.dtype("float64"): np.float32, np.dtype("float32"): np.float16}
        return np.zeros(shape, dtype=narrower[np.dtype(dtype)])

    jnp = types.ModuleType("jax.numpy")  # not registered in sys.modules
    jnp.zeros = zeros
    for asked, got in (("float64", "float32"), ("float32", "float16")):
        assert message(TypeError, lambda asked=asked: ArraySpec(jnp, None, np.dtype(asked))) == (
            f"jax.numpy gave {got} when asked for {asked}; for float64 on JAX run "
            "jax.config.update('jax_enable_x64', True) first (or set JAX_ENABLE_X64=1).")




# -- seeds -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rng", "error", "shown"), [
    (True, TypeError, "bool: True"),
    (1.5, TypeError, "float: 1.5"),
    (np.int64(-3), ValueError, f"int64: {np.int64(-3)!r}"),
], ids=["bool", "float", "negative-numpy-int"])
def test_rng_messages(rng, error, shown):
    """A bad rng= is refused with the whole message: what is accepted, then the type and value
    given (bool is refused although it is an int; a negative seed is a ValueError)."""
    assert message(error, lambda: xmlp.Linear(2, 2, rng=rng)) == (
        "rng must be None, a non-negative int seed or a numpy.random.Generator, got " + shown)


@pytest.mark.parametrize(("rng", "error"), [(-1, ValueError), (np.int64(-5), ValueError),
                                            (-(10**400), ValueError), (1.5, TypeError),
                                            ("seed", TypeError), (True, TypeError)],
                         ids=int_id)
def test_bad_seeds_get_the_documented_error(rng, error):
    for make in (lambda: make_rng(rng), lambda: xmlp.MLP(1, 2, 1, rng=rng),
                 lambda: xmlp.Linear(1, 2, rng=rng)):
        with pytest.raises(error, match="rng must be"):
            make()
    with pytest.raises(error, match="rng must be"):
        xmlp.fit(xmlp.MLP(1, 2, 1), np.ones((4, 1)), np.ones((4, 1)), epochs=1, lr=0.1,
                 rng=rng, progress=False)
