"""Tests written to kill surviving mutants of xmlp.backend (namespace, device and dtype
resolution, make_rng, ArraySpec) found in the session-5 mutation run. Device and dtype cases use
array-api-strict's devices ("device1", "device2", "no_float64", "no_x64") whatever
XMLP_BACKENDS says; the torch cases use pytest.importorskip."""

from __future__ import annotations

import os
import types

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from xmlp.backend import ArraySpec, to_host

STRICT_DEVICES = (
    "[array_api_strict.Device('CPU_DEVICE'), array_api_strict.Device('device1'), "
    "array_api_strict.Device('device2'), array_api_strict.Device('no_float64'), "
    "array_api_strict.Device('no_x64')]"
)


def message(exc_type, call) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


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


@pytest.mark.parametrize(("rng", "error", "shown"), [
    (True, TypeError, "bool: True"),
    ("seed", TypeError, "str: 'seed'"),
    (1.5, TypeError, "float: 1.5"),
    (-1, ValueError, "int: -1"),
    (np.int64(-3), ValueError, f"int64: {np.int64(-3)!r}"),
], ids=["bool", "str", "float", "negative", "negative-numpy-int"])
def test_rng_messages(rng, error, shown):
    """A bad rng= is refused with the whole message: what is accepted, then the type and value
    given (bool is refused although it is an int; a negative seed is a ValueError)."""
    assert message(error, lambda: xmlp.Linear(2, 2, rng=rng)) == (
        "rng must be None, a non-negative int seed or a numpy.random.Generator, got " + shown)


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


def _rewritten(path, tmp_path, change):
    """A copy of the checkpoint at ``path`` with every floating array replaced by change(a)."""
    with np.load(path) as f:
        members = {k: (change(f[k]) if f[k].dtype.kind == "f" else f[k]) for k in f.files}
    out = os.path.join(tmp_path, "changed.npz")
    np.savez(out, **members)
    return out


def test_a_big_endian_checkpoint_loads_into_a_torch_model(tmp_path):
    """A checkpoint whose arrays are big-endian (written on a big-endian machine) loads into a
    torch model: the values are brought to this machine's byte order before torch sees them
    (torch.asarray refuses other byte orders)."""
    torch = pytest.importorskip("torch", reason="loading into a torch model needs torch")
    source = xmlp.Linear(3, 2, rng=0)
    path = os.path.join(tmp_path, "model.npz")
    xmlp.save(source, path)
    big = _rewritten(path, tmp_path, lambda a: a.astype(a.dtype.newbyteorder(">")))
    model = xmlp.load(xmlp.Linear(3, 2, xp=torch, dtype=torch.float64, rng=1), big)
    np.testing.assert_array_equal(to_host(model.weights), source.weights)
    np.testing.assert_array_equal(to_host(model.biases), source.biases)


def test_an_integer_checkpoint_is_rounded_once_to_the_parameters_dtype(tmp_path):
    """Integer values in a checkpoint become the nearest value of the parameter's dtype (one
    rounding): 2**60 + 2**36 + 1 is float32 2**60 + 2**37, where a float64 stop on the way would
    round it to 2**60."""
    big = 2**60 + 2**36 + 1
    path = os.path.join(tmp_path, "model.npz")
    xmlp.save(xmlp.Linear(3, 2, rng=0), path)
    ints = _rewritten(path, tmp_path, lambda a: np.full(a.shape, big, dtype=np.int64))
    model = xmlp.load(xmlp.Linear(3, 2, dtype=np.float32, rng=1), ints)
    assert model.weights.dtype == np.float32
    assert np.all(model.weights == np.float32(2**60 + 2**37))
    assert np.all(model.biases == np.float32(2**60 + 2**37))


def test_loaded_optimizer_state_is_a_copy_of_the_dict(xp):
    """load_state_dict copies the state dict's arrays: changing the dict afterwards does not
    change the optimizer's state (which it updates in place on NumPy)."""
    model = xmlp.MLP(3, 5, 4, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    gen = np.random.default_rng(1)
    for layer in (model.linear1, model.linear2):
        layer.grad_weights = xp.from_numpy(gen.standard_normal(tuple(layer.weights.shape)))
        layer.grad_biases = xp.from_numpy(gen.standard_normal(tuple(layer.biases.shape)))
    opt = xmlp.optim.SGD(model, lr=0.1, momentum=0.9)
    opt.step()
    saved = opt.state_dict()
    want = {name: {k: a.copy() for k, a in entry.items()} for name, entry in saved["state"].items()}
    fresh = xmlp.optim.SGD(model, lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    for entry in saved["state"].values():
        for a in entry.values():
            a[...] = 123.0
    got = fresh.state_dict()["state"]
    assert got.keys() == want.keys()
    for name, entry in want.items():
        for key, a in entry.items():
            np.testing.assert_array_equal(got[name][key], a)


def test_a_target_on_another_device_names_what_to_move():
    """MSELoss with the target on another device than the prediction: the message says to
    move the target or y (the prediction), not the model (a loss has no parameters)."""
    d1, d2 = strict.Device("device1"), strict.Device("device2")
    y = strict.asarray(np.ones((2, 1)), device=d1)
    t = strict.asarray(np.ones((2, 1)), device=d2)
    assert message(TypeError, lambda: xmlp.MSELoss().forward(y, t)) == (
        f"MSELoss.forward: t (the target) is on device {d2} but y (the prediction) is on {d1}. "
        f"Move the input with array_api_compat.to_device(x, {d1!r}) or y (the prediction) to "
        f"{d2!r}; xmlp never transfers silently.")


def test_a_namespace_that_cannot_list_its_devices_has_its_devices_checked():
    """A namespace without a working __array_namespace_info__().devices() may have several
    devices: its spec checks the device of every array (check_device), rather than assume one."""

    def zeros(shape, dtype=None, device=None):
        return np.zeros(shape, dtype=dtype)

    plain = types.ModuleType("plain_ns")  # zeros only: no __array_namespace_info__
    plain.zeros = zeros
    assert ArraySpec(plain, None, np.dtype("float64")).check_device is True
    assert ArraySpec.resolve(np).check_device is False  # one device, listed: not checked
