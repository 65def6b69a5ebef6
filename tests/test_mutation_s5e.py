"""Tests written to kill surviving mutants of xmlp.nn.linear and xmlp.nn.module found in the session-5
mutation run: Linear's argument checks and their messages (the dims, ``init``, the initial
arrays against ``xp=``, ``device=`` and ``dtype=``), its fast parameter check, and how models
adopt their layers (sharing messages, nested names, layers that cannot be hashed)."""

from __future__ import annotations

import sys
from typing import Any

import array_api_strict as strict
import numpy as np
import pytest

import xmlp


def message(exc_type: type[BaseException], call: Any) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


# -- Linear(...): dims and init ----------------------------------------------------------------
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


def test_a_new_layer_has_no_gradients_and_no_grad_input():
    """Before backward every gradient is None (named_grads says so, and update_params names
    the first missing one even when another was set by hand), and so is grad_input."""
    lin = xmlp.Linear(3, 4, rng=0)
    assert dict(lin.named_grads()) == {"weights": None, "biases": None}
    assert lin.grad_weights is None and lin.grad_biases is None and lin.grad_input is None
    lin.grad_weights = np.zeros((4, 3))
    assert message(xmlp.NoGradientError, lambda: lin.update_params(0.1)) == (
        "Linear.update_params: no gradient for 'biases'; call backward() after forward() first.")


# -- Linear(...): the initial arrays against xp=, device= and dtype= ---------------------------
def test_initial_arrays_that_are_not_floating_arrays_are_named():
    """initial_weights / initial_biases that are no array, or not a floating one, are named in
    the message, with the owner "Linear"."""
    assert message(TypeError, lambda: xmlp.Linear(3, 4, [[1.0] * 3] * 4)) == (
        "Linear: initial_weights must be an array, got list.")
    assert message(TypeError, lambda: xmlp.Linear(3, 4, np.ones((4, 3), dtype=np.int64))) == (
        "Linear: initial_weights has dtype int64; xmlp layers take real floating arrays. "
        "Convert with numpy.astype(x, numpy.float64).")
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


def test_dtype_wins_over_the_initial_arrays_dtype(xp):
    """dtype= with initial arrays: the layer and its parameters have that dtype (the arrays
    are converted), not the arrays' own."""
    w = np.arange(12.0).reshape(4, 3) / 8
    lin = xmlp.Linear(3, 4, xp.from_numpy(w), xp.from_numpy(np.ones(4)), dtype="float32")
    assert xmlp.backend.dtype_name(lin.dtype) == "float32"
    assert xmlp.backend.dtype_name(lin.weights.dtype) == "float32"
    assert xmlp.backend.dtype_name(lin.biases.dtype) == "float32"
    np.testing.assert_array_equal(xp.to_numpy(lin.weights), w.astype(np.float32))


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
    devices the two namespaces have (array-api-strict has no device 'cpu': checking xp= on the
    arrays' device gave its device error instead, fixed in session 5), and a backend given by
    name is named as imported."""
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


# -- Linear: the fast parameter check, the input checks ----------------------------------------
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


def test_empty_batch_messages_name_the_method(xp):
    lin = xmlp.Linear(3, 4, rng=0, xp=xp.module, device=xp.device, dtype="float64")
    assert message(ValueError, lambda: lin.forward(xp.from_numpy(np.ones((0, 3))))) == (
        "Linear(3, 4).forward: x is an empty batch (shape (0, 3)); pass at least one sample")
    assert message(ValueError, lambda: lin.predict(xp.from_numpy(np.ones((2, 0, 3))))) == (
        "Linear(3, 4).predict: x is an empty batch (shape (2, 0, 3)); pass at least one sample")


def test_unknown_dask_size_message():
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


# -- Module: adopting layers -------------------------------------------------------------------
def test_a_layer_used_twice_message_in_full():
    lin = xmlp.Linear(2, 2, rng=0)
    assert message(ValueError, lambda: xmlp.Sequential(lin, xmlp.Tanh(), lin)) == (
        f"Sequential: {lin!r} is used twice, as 0 and as 2; xmlp layers hold the state of their "
        "last forward, so a layer object can be used once in one model. Make another layer "
        "(copy.deepcopy(layer) starts from the same weights).")


def test_a_layer_of_another_model_message_in_full():
    lin = xmlp.Linear(2, 2, rng=0)
    first = xmlp.Sequential(lin, xmlp.Tanh())
    assert message(ValueError, lambda: xmlp.Sequential(xmlp.ReLU(), lin)) == (
        f"Sequential: layer 1 ({lin!r}) already belongs to {first!r}; a layer object can be "
        "used in one model only (its forward state and updates would mix). Make another layer "
        "(copy.deepcopy(layer) starts from the same weights) or use the other model.")


def test_a_layer_used_twice_deep_inside_is_named_by_its_full_path():
    lin = xmlp.Linear(2, 2, rng=0)
    got = message(ValueError, lambda: xmlp.Sequential(
        xmlp.Sequential(xmlp.Sequential(lin, xmlp.Tanh())), lin))
    assert got.startswith(f"Sequential: {lin!r} is used twice, as 0.0.0 and as 1; ")


def test_a_nested_parameter_replaced_by_hand_is_named_by_its_full_path():
    """update_params names a parameter two levels down as '0.0.weights'."""
    inner = xmlp.Linear(2, 3, rng=0)
    model = xmlp.Sequential(xmlp.Sequential(inner, xmlp.Tanh()), xmlp.Linear(3, 1, rng=1))
    model.backward(model.forward(np.ones((5, 2))))
    inner.weights = inner.weights.astype(np.float32)
    assert message(TypeError, lambda: model.update_params(0.1)) == (
        "Sequential.update_params: parameter '0.0.weights' has dtype float32, but the layer's "
        "parameters are numpy float64 on cpu. Was it replaced by hand? Assign a numpy float64 "
        "array on cpu, or call .to() on the model to convert every parameter to one namespace, "
        "device and dtype.")


class _ComparedByValue(xmlp.Module):
    """A user's layer that defines __eq__ only, so that Python makes it unhashable."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def forward(self, x: Any) -> Any:
        return 2 * x

    def backward(self, grad_output: Any) -> Any:
        return 2 * grad_output

    def predict(self, x: Any) -> Any:
        return 2 * x


def test_an_unhashable_layer_can_be_put_in_a_model():
    """A layer that cannot be hashed cannot key the owner registry: it is left out of it, and
    the model is built and runs."""
    odd = _ComparedByValue()
    model = xmlp.Sequential(xmlp.Linear(2, 2, np.eye(2), np.zeros(2)), odd)
    np.testing.assert_array_equal(model.forward(np.ones((3, 2))), np.full((3, 2), 2.0))
    xmlp.Sequential(xmlp.Linear(2, 2, rng=0), _ComparedByValue())
