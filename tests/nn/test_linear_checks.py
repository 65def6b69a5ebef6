"""What Linear refuses, on every backend: inputs and gradients of another type, dtype, shape,
namespace or device, bad constructor arguments, and parameters replaced by hand; a refused
call leaves the layer as it was, and its message names the layer, the method and the fix."""

from __future__ import annotations

import re
import sys

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.conftest import backend
from tests.helpers import (
    data,
    foreign,
    linear34,
    message,
    ns_name,
    rejects,
    used_linear,
)


# -- forward and predict -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["forward", "predict"])
@pytest.mark.parametrize("bad_dtype", ["int64", "int32", "bool"])
def test_linear_rejects_integer_and_bool_input(xp, method, bad_dtype):
    layer = used_linear(xp)
    x = xp.from_numpy(np.ones((5, 3)), bad_dtype)
    rejects(TypeError, layer, lambda: getattr(layer, method)(x),
            f"Linear(3, 4).{method}", bad_dtype, "real floating", "astype")


@pytest.mark.parametrize("method", ["forward", "predict"])
@pytest.mark.parametrize(("param_dtype", "x_dtype"), [("float64", "float32"),
                                                      ("float32", "float64")])
def test_linear_rejects_other_float_dtype(xp, method, param_dtype, x_dtype):
    layer = used_linear(xp, param_dtype)
    x = data(xp, (5, 3), x_dtype)
    msg = rejects(TypeError, layer, lambda: getattr(layer, method)(x),
                  f"Linear(3, 4).{method}", x_dtype, param_dtype)
    # both ways out: convert the input, or move the model
    assert f"astype(x, {ns_name(xp)}.{param_dtype})" in msg
    assert f".to(dtype={ns_name(xp)}.{x_dtype})" in msg


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_linear_rejects_other_namespace(xp, method):
    layer = used_linear(xp)
    x, other = foreign(xp, np.ones((5, 3)))
    msg = rejects(TypeError, layer, lambda: getattr(layer, method)(x),
                  f"Linear(3, 4).{method}", ns_name(xp), other)
    assert f"{ns_name(xp)}.asarray" in msg and f".to({other})" in msg


@pytest.mark.parametrize("bad", [[[1.0, 2.0, 3.0]], 1.0, None, "x"],
                         ids=["list", "float", "None", "str"])
def test_linear_rejects_non_arrays(xp, bad):
    layer = used_linear(xp)
    rejects(TypeError, layer, lambda: layer.forward(bad),
            "Linear(3, 4).forward", type(bad).__name__, f"{ns_name(xp)}.asarray")


@pytest.mark.parametrize("method", ["forward", "predict"])
@pytest.mark.parametrize("shape", [(5, 2), (5, 4), (3, 5), (2,), (5, 3, 1), ()],
                         ids=["few", "many", "transposed", "1d", "trailing1", "0d"])
def test_linear_rejects_wrong_feature_count(xp, method, shape):
    layer = used_linear(xp)
    x = xp.from_numpy(np.ones(shape), "float64")
    rejects(ValueError, layer, lambda: getattr(layer, method)(x),
            f"Linear(3, 4).{method}", "(..., 3)", f"got {shape}")


def test_linear_checks_read_no_data(xp):
    """The checks are O(1): a NaN in the data is no error (reading it would sync a GPU)."""
    layer = xmlp.Linear(3, 4, xp=xp.module, device=xp.device, dtype=xp.float64, rng=0)
    x = np.ones((5, 3))
    x[2, 1] = np.nan
    out = xp.to_numpy(layer.forward(xp.from_numpy(x)))
    assert np.isnan(out[2]).all() and np.isfinite(np.delete(out, 2, axis=0)).all()


def test_empty_batch_messages_name_the_method(xp):
    lin = xmlp.Linear(3, 4, rng=0, xp=xp.module, device=xp.device, dtype="float64")
    assert message(ValueError, lambda: lin.forward(xp.from_numpy(np.ones((0, 3))))) == (
        "Linear(3, 4).forward: x is an empty batch (shape (0, 3)); pass at least one sample")
    assert message(ValueError, lambda: lin.predict(xp.from_numpy(np.ones((2, 0, 3))))) == (
        "Linear(3, 4).predict: x is an empty batch (shape (2, 0, 3)); pass at least one sample")


def test_an_input_of_unknown_dask_size_says_what_to_call():
    """A Dask input of unknown length (after boolean indexing): the message says what to
    call, as written (x.compute_chunk_sizes())."""
    da = pytest.importorskip("dask.array", reason="only Dask arrays have unknown sizes")
    x = da.from_array(np.linspace(-1, 1, 24).reshape(8, 3), chunks=4)
    unknown = x[x[:, 0] > 0]
    lin = xmlp.Linear(3, 2, rng=0, xp=da)
    for method in ("forward", "predict"):
        assert message(ValueError, lambda m=method: getattr(lin, m)(unknown)) == (
            f"Linear(3, 2).{method}: x has an unknown size, shape (nan, 3); on Dask call "
            "x.compute_chunk_sizes() first (needed after boolean indexing, for instance).")


# -- backward and update_params ----------------------------------------------------------------
def test_linear_backward_rejects_wrong_grad_output(xp):
    layer = used_linear(xp)
    for shape in [(5, 3), (4, 4), (5,), (5, 4, 1), ()]:
        rejects(ValueError, layer, lambda s=shape: layer.backward(data(xp, s)),
                "Linear(3, 4).backward", "(5, 4)", f"got {shape}")
    rejects(TypeError, layer, lambda: layer.backward(data(xp, (5, 4), "float32")),
            "Linear(3, 4).backward", "float32", "float64")
    rejects(TypeError, layer, lambda: layer.backward(xp.from_numpy(np.ones((5, 4)), "int64")),
            "int64")
    g, other = foreign(xp, np.ones((5, 4)))
    rejects(TypeError, layer, lambda: layer.backward(g), ns_name(xp), other)
    rejects(TypeError, layer, lambda: layer.backward(np.ones((5, 4)).tolist()), "list")


def test_linear_update_with_a_bad_gradient(xp):
    layer = used_linear(xp)
    good = layer.grad_biases
    layer.grad_biases = data(xp, (3,))
    rejects(ValueError, layer, lambda: layer.update_params(0.1), "Linear.update_params",
            "'biases'", "(4,)", "got (3,)")
    layer.grad_biases = xp.astype(good, xp.float32)
    rejects(TypeError, layer, lambda: layer.update_params(0.1), "'biases'", "float32")
    # every gradient wrong at once: shapes that would broadcast, or float32, are refused too
    good_weights = layer.grad_weights
    layer.grad_weights, layer.grad_biases = data(xp, (1, 3)), data(xp, (1,))
    rejects(ValueError, layer, lambda: layer.update_params(0.1), "Linear.update_params",
            "'weights'", "(4, 3)", "got (1, 3)")
    layer.grad_weights = xp.astype(good_weights, xp.float32)
    layer.grad_biases = xp.astype(good, xp.float32)
    rejects(TypeError, layer, lambda: layer.update_params(0.1), "'weights'", "float32")


def test_linear_backward_names_itself_for_a_parameter_replaced_by_hand():
    layer = xmlp.Linear(3, 4, rng=0)
    layer.forward(np.ones((2, 3)))
    layer.weights = np.ones((5, 3))
    with pytest.raises(ValueError) as info:
        layer.backward(np.ones((2, 4)))
    assert str(info.value) == ("Linear(3, 4).backward: parameter 'weights' has shape (5, 3) but "
                               "the layer needs (4, 3) (was it replaced by hand?)")
    layer.weights = np.ones((4, 3))
    with pytest.raises(TypeError) as info:
        layer.backward(np.ones((2, 4), dtype=np.float32))
    assert str(info.value).startswith("Linear(3, 4).backward: grad_output has dtype float32 ")


def test_a_grad_output_of_another_dtype_is_named_against_the_parameters():
    """Linear's output has the parameters' dtype, so a grad_output of another dtype is
    compared with them, and the message offers both fixes: convert the gradient or the model."""
    layer = xmlp.Linear(3, 4, rng=0)
    layer.forward(np.ones((2, 3)))
    assert message(TypeError, lambda: layer.backward(np.ones((2, 4), dtype=np.float32))) == (
        "Linear(3, 4).backward: grad_output has dtype float32 but the parameters are float64. "
        "Convert the input with numpy.astype(x, numpy.float64) or the model with "
        ".to(dtype=numpy.float32).")


# -- the constructor ---------------------------------------------------------------------------
def test_linear_constructor_checks(xp):
    w, b = data(xp, (4, 3)), data(xp, (4,))
    with pytest.raises(ValueError, match=re.escape("initial_weights must have shape (4, 3), "
                                                   "got (3, 4)")):
        xmlp.Linear(3, 4, data(xp, (3, 4)), b)
    with pytest.raises(ValueError, match=re.escape("initial_biases must have shape (4,), "
                                                   "got (4, 1)")):
        xmlp.Linear(3, 4, w, data(xp, (4, 1)))
    with pytest.raises(ValueError, match=re.escape("got (3,)")):
        xmlp.Linear(3, 4, None, data(xp, (3,)))
    with pytest.raises(TypeError, match="int64"):
        xmlp.Linear(3, 4, xp.from_numpy(np.ones((4, 3)), "int64"), b)
    with pytest.raises(TypeError, match="list"):
        xmlp.Linear(3, 4, np.ones((4, 3)).tolist(), b)
    other_b, other = foreign(xp, np.ones(4))
    with pytest.raises(TypeError, match=f"{re.escape(other)}.*{re.escape(ns_name(xp))}"):
        xmlp.Linear(3, 4, w, other_b)
    with pytest.raises(TypeError, match="real floating"):
        xmlp.Linear(3, 4, xp=xp.module, device=xp.device, dtype=xp.int64)


@pytest.mark.parametrize(("dims", "exc"), [((3, -1), ValueError), ((3.0, 4), TypeError),
                                           ((True, 4), TypeError), ((3, None), TypeError)],
                         ids=repr)
def test_linear_rejects_bad_dims(dims, exc):
    with pytest.raises(exc, match="must be a positive int"):
        xmlp.Linear(*dims)


def test_output_dim_errors_name_output_dim():
    """A bad output_dim is reported as output_dim (not as the input's, or in other words)."""
    assert message(TypeError, lambda: xmlp.Linear(3, "4")) == (
        "Linear: output_dim must be a positive int, got str: '4'")
    assert message(ValueError, lambda: xmlp.Linear(3, -2)) == (
        "Linear: output_dim must be a positive int, got -2")


def test_a_dim_too_large_names_the_limit_and_sys_maxsize_itself_is_accepted():
    """A dim above sys.maxsize is refused with the limit in the message; sys.maxsize itself
    passes the dim check (here the next check, the initial weights' shape, refuses it)."""
    assert message(ValueError, lambda: xmlp.Linear(sys.maxsize + 1, 4)) == (
        f"Linear: input_dim must be a positive int up to {sys.maxsize}, got {sys.maxsize + 1}")
    assert message(ValueError, lambda: xmlp.Linear(sys.maxsize, 1, np.ones((1, 1)))) == (
        f"Linear({sys.maxsize}, 1): initial_weights must have shape (1, {sys.maxsize}), "
        "got (1, 1)")


def test_an_unknown_init_is_named_with_the_choices():
    assert message(ValueError, lambda: xmlp.Linear(3, 4, init="glorot")) == (
        "Linear: init must be one of ('normal', 'xavier', 'he'), got 'glorot'")


def test_initial_biases_that_are_not_floating_arrays_are_named():
    """initial_biases of an integer dtype are named in the message, with the owner "Linear" (the
    weights' messages: tests/docs/test_errors.py)."""
    assert message(TypeError, lambda: xmlp.Linear(3, 4, initial_biases=np.arange(4))) == (
        "Linear: initial_biases has dtype int64; xmlp layers take real floating arrays. "
        "Convert with numpy.astype(x, numpy.float64).")


def test_initial_biases_of_another_namespace_are_named():
    """The biases are checked against the weights' namespace, by name, with the owner."""
    got = message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3)), strict.ones(4)))
    assert got == (
        "Linear: initial_biases is an array_api_strict array but the parameters are numpy "
        "arrays. Convert the input (numpy.asarray(...), or cupy.asarray / .get() between NumPy "
        "and CuPy), or move the model with .to(array_api_strict).")
    got = message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3)),
                                                 np.ones(4, dtype=np.int64), dtype="float32"))
    assert got == ("Linear: initial_biases has dtype int64; xmlp layers take real floating "
                   "arrays. Convert with numpy.astype(x, numpy.float32).")


def test_xp_that_disagrees_with_the_initial_arrays_is_named():
    """xp= naming another namespace than the initial arrays': the message names xp, the array
    and the fix (reachable where both namespaces make arrays on the same device, "cpu")."""
    da = pytest.importorskip("dask.array", reason="the message needs two namespaces that share "
                                                  "the device name 'cpu': Dask and NumPy")
    assert message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3)), xp=da)) == (
        "Linear: xp=dask.array disagrees with initial_weights of numpy; pass one or the other, "
        "or convert the arrays first.")


def test_xp_array_api_strict_against_numpy_weights_says_they_disagree():
    """xp= of another namespace than the initial arrays': the disagreement is named, whatever
    devices the two namespaces have (array-api-strict has no device 'cpu', which a check of xp=
    on the arrays' device would report instead), and a backend given by name is named as
    imported."""
    assert message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3)), xp=strict)) == (
        "Linear: xp=array_api_strict disagrees with initial_weights of numpy; pass one or the "
        "other, or convert the arrays first.")
    assert message(TypeError, lambda: xmlp.Linear(3, 4, strict.ones((4, 3)), xp="numpy")) == (
        "Linear: xp=numpy disagrees with initial_weights of array_api_strict; pass one or the "
        "other, or convert the arrays first.")
    assert message(TypeError, lambda: xmlp.Linear(3, 4, None, strict.ones(4), xp=np)) == (
        "Linear: xp=numpy disagrees with initial_biases of array_api_strict; pass one or the "
        "other, or convert the arrays first.")
    # both arrays given: the first one is named (the one the layer's namespace came from)
    both = (strict.ones((4, 3)), strict.ones(4))
    assert message(TypeError, lambda: xmlp.Linear(3, 4, *both, xp=np)) == (
        "Linear: xp=numpy disagrees with initial_weights of array_api_strict; pass one or the "
        "other, or convert the arrays first.")


def test_device_that_disagrees_with_the_initial_arrays_is_named():
    """device= other than the initial arrays' device: named with both devices and the fix."""
    assert message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3)), device="gpu")) == (
        "Linear: device='gpu' disagrees with initial_weights on cpu; move the arrays first or "
        "leave device out.")
    w = strict.ones((4, 3), device=strict.Device("device1"))
    got = message(TypeError,
                  lambda: xmlp.Linear(3, 4, w, device=strict.Device("CPU_DEVICE")))
    assert got == (
        "Linear: device=array_api_strict.Device('CPU_DEVICE') disagrees with initial_weights on "
        "array_api_strict.Device('device1'); move the arrays first or leave device out.")
    b = strict.ones(4, device=strict.Device("device1"))
    got = message(TypeError,
                  lambda: xmlp.Linear(3, 4, w, b, device=strict.Device("CPU_DEVICE")))
    assert got.startswith("Linear: device=array_api_strict.Device('CPU_DEVICE') disagrees with "
                          "initial_weights on ")


def test_huge_dims_are_a_value_error():
    for dims in [(10**30, 1), (1, sys.maxsize + 1), (2**62, 4)]:
        with pytest.raises(ValueError):
            xmlp.Linear(*dims)


# -- parameters replaced by hand ---------------------------------------------------------------


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


def test_biases_replaced_by_a_masked_array_are_refused():
    """Only the biases replaced by hand with a masked array (of the right dtype and shape):
    the next forward refuses it by name rather than computing with it."""
    lin = xmlp.Linear(3, 4, rng=0)
    lin.biases = np.ma.masked_array(lin.biases, mask=[False, True, False, False])
    assert message(TypeError, lambda: lin.forward(np.ones((2, 3)))) == (
        "Linear(3, 4).forward: parameter 'biases' is a MaskedArray, but the layer's parameters "
        "are numpy float64 on cpu. Was it replaced by hand? Assign a numpy float64 array on "
        "cpu, or call .to() on the model to convert every parameter to one namespace, device "
        "and dtype.")
    assert lin.x is None and lin.output is None


def test_a_parameter_of_a_lone_layer_replaced_by_hand_is_named_without_a_prefix():
    layer = xmlp.Linear(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    layer.backward(np.ones((4, 3)))
    layer.weights = np.ones((3, 2), dtype=np.float32)
    assert message(TypeError, lambda: layer.update_params(0.1)).startswith(
        "Linear.update_params: parameter 'weights' ")


@pytest.mark.parametrize(("replacement", "problem"), [
    ([[1.0, 2.0]] * 3, "is a list, not an array"),
    (strict.ones((3, 2), dtype=strict.float64), "is an array_api_strict array"),
    (np.ones((3, 2), dtype=">f8"), "has non-native byte order ('>f8')"),
    (np.ones((3, 2), dtype=np.float32), "has dtype float32"),
], ids=["list", "other-namespace", "byte-order", "dtype"])
def test_what_is_wrong_with_a_replaced_parameter(replacement, problem):
    layer = xmlp.Linear(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    layer.backward(np.ones((4, 3)))
    layer.weights = replacement
    assert message(TypeError, lambda: layer.update_params(0.1)).startswith(
        f"Linear.update_params: parameter 'weights' {problem}, but the layer's parameters are ")


def test_a_hand_replaced_parameter_of_a_lone_layer_names_it_and_the_fix():
    layer = linear34()
    layer.biases = np.zeros(4, np.float32)
    assert message(TypeError, lambda: layer.forward(np.ones((2, 3)))) == (
        "Linear(3, 4).forward: parameter 'biases' has dtype float32, but the layer's parameters "
        "are numpy float64 on cpu. Was it replaced by hand? Assign a numpy float64 array on "
        "cpu, or call .to() on the model to convert every parameter to one namespace, device "
        "and dtype.")


def test_a_hand_replaced_parameter_of_a_float32_layer_names_its_dtype():
    layer = xmlp.Linear(3, 4, rng=0, dtype=np.float32)
    layer.biases = np.zeros(4)
    assert message(TypeError, lambda: layer.forward(np.ones((2, 3), np.float32))) == (
        "Linear(3, 4).forward: parameter 'biases' has dtype float64, but the layer's parameters "
        "are numpy float32 on cpu. Was it replaced by hand? Assign a numpy float32 array on "
        "cpu, or call .to() on the model to convert every parameter to one namespace, device "
        "and dtype.")
