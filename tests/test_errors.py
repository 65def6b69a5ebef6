"""Bad input and calls out of order: the promised error type, a message that names what is
wrong and how to fix it, and an object left exactly as it was (issue 5)."""

from __future__ import annotations

import fractions
import re
from typing import Any

import array_api_compat
import numpy as np
import pytest

import xmlp
from xmlp.backend import to_host

# The name each backend's messages use for its namespace.
NS_NAME = {"numpy": "numpy", "array_api_strict": "array_api_strict", "torch": "torch",
           "jax": "jax.numpy", "dask": "dask.array", "cupy": "cupy"}


def ns_name(xp: Any) -> str:
    return NS_NAME[xp.name.split(":")[0]]


def foreign(xp: Any, data: np.ndarray) -> tuple[Any, str]:
    """``data`` as an array of a namespace other than xp's, and that namespace's name."""
    if xp.name == "numpy":
        import array_api_strict

        return array_api_strict.asarray(data), "array_api_strict"
    return np.asarray(data), "numpy"


# -- "exactly as it was" ----------------------------------------------------------------------
def state(obj: Any) -> dict[tuple[int, str], tuple[Any, np.ndarray | None]]:
    """Every attribute of obj and its sub-modules: the object itself, and a host copy of the
    values when it is an array (so an in-place change is caught as well as a rebinding)."""
    out = {}
    for module in obj.modules():
        for name, value in vars(module).items():
            host = to_host(value) if array_api_compat.is_array_api_obj(value) else None
            out[(id(module), name)] = (value, host)
    return out


def assert_unchanged(before: dict, obj: Any) -> None:
    after = state(obj)
    assert after.keys() == before.keys()
    for key, (value, host) in before.items():
        new_value, new_host = after[key]
        assert new_value is value, f"attribute {key[1]!r} was rebound"
        if host is not None:
            np.testing.assert_array_equal(new_host, host, err_msg=f"{key[1]!r} changed")


def rejects(exc_type: type[BaseException], obj: Any, call: Any, *words: str) -> str:
    """Run ``call()``; assert it raises exc_type with every word in the message and leaves
    ``obj`` unchanged; return the message."""
    before = state(obj)
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert_unchanged(before, obj)
    return message


def data(xp: Any, shape: tuple[int, ...], dtype: Any = "float64", seed: int = 0) -> Any:
    return xp.from_numpy(np.random.default_rng(seed).standard_normal(shape), dtype)


def used_linear(xp: Any, dtype: str = "float64") -> xmlp.Linear:
    """A Linear(3, 4) that has run forward and backward, so it holds x, output and grads."""
    layer = xmlp.Linear(3, 4, xp=xp.module, device=xp.device, dtype=getattr(xp.ns, dtype), rng=0)
    layer.forward(data(xp, (5, 3), dtype))
    layer.backward(data(xp, (5, 4), dtype, seed=1))
    return layer


def used_mlp(xp: Any, kind: str = "mlp") -> Any:
    if kind == "mlp":
        model = xmlp.MLP(3, 6, 2, xp=xp.module, device=xp.device, dtype=xp.float64, rng=0)
    else:
        kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
        model = xmlp.Sequential(xmlp.Linear(3, 6, rng=0, **kw), xmlp.ReLU(),
                                xmlp.Linear(6, 5, rng=1, **kw), xmlp.Sigmoid(),
                                xmlp.Linear(5, 2, rng=2, **kw))
    model.forward(data(xp, (5, 3)))
    model.backward(data(xp, (5, 2), seed=1))
    return model


def used_activation(xp: Any, cls: type) -> Any:
    act = cls()
    act.forward(data(xp, (5, 3)))
    act.backward(data(xp, (5, 3), seed=1))
    return act


ACTIVATIONS = [xmlp.Tanh, xmlp.ReLU, xmlp.Sigmoid]
MODELS = ["mlp", "sequential"]


# -- Linear.forward / predict ---------------------------------------------------------------
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


# -- backward -------------------------------------------------------------------------------
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


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
def test_activation_rejects_bad_input(xp, cls):
    act = used_activation(xp, cls)
    name = cls.__name__
    rejects(TypeError, act, lambda: act.forward(xp.from_numpy(np.ones(3), "int64")),
            f"{name}.forward", "int64")
    rejects(TypeError, act, lambda: act.forward(xp.from_numpy(np.ones(3), "bool")), "bool")
    rejects(TypeError, act, lambda: act.forward([1.0, 2.0]), f"{name}.forward", "list")
    rejects(ValueError, act, lambda: act.forward(xp.from_numpy(np.float64(1.0))),
            f"{name}.forward", "ndim >= 1", "got shape ()")
    rejects(ValueError, act, lambda: act.predict(xp.from_numpy(np.float64(1.0))),
            f"{name}.predict", "got shape ()")


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
def test_activation_backward_rejects_wrong_grad_output(xp, cls):
    act = used_activation(xp, cls)
    name = cls.__name__
    rejects(ValueError, act, lambda: act.backward(data(xp, (3, 5))),
            f"{name}.backward", "(5, 3)", "got (3, 5)")
    rejects(ValueError, act, lambda: act.backward(data(xp, (5, 3, 1))), "got (5, 3, 1)")
    rejects(TypeError, act, lambda: act.backward(data(xp, (5, 3), "float32")),
            f"{name}.backward", "float32", "float64")
    g, other = foreign(xp, np.ones((5, 3)))
    rejects(TypeError, act, lambda: act.backward(g), ns_name(xp), other)


# -- calls out of order -----------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda xp: xmlp.Linear(3, 4, xp=xp.module, device=xp.device, rng=0),
    lambda xp: xmlp.Tanh(), lambda xp: xmlp.ReLU(), lambda xp: xmlp.Sigmoid(),
    lambda xp: xmlp.MLP(3, 6, 4, xp=xp.module, device=xp.device, rng=0),
    lambda xp: xmlp.Sequential(xmlp.Linear(3, 4, xp=xp.module, device=xp.device, rng=0),
                               xmlp.Tanh()),
], ids=["Linear", "Tanh", "ReLU", "Sigmoid", "MLP", "Sequential"])
def test_backward_before_forward(xp, make):
    layer = make(xp)
    g = xp.from_numpy(np.ones((5, 4)))
    before = state(layer)
    # the seed's `assert hasattr(self, 'x'), 'Perform forward pass first.'`, kept catchable
    with pytest.raises(AssertionError, match=r"^Perform forward pass first\.$") as info:
        layer.backward(g)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, xmlp.ForwardNotCalledError)
    assert_unchanged(before, layer)
    # predict() stores nothing, so backward after it is still out of order
    if isinstance(layer, xmlp.Linear):
        layer.predict(xp.from_numpy(np.ones((5, 3)), layer.dtype))
        with pytest.raises(xmlp.ForwardNotCalledError):
            layer.backward(g)


def test_mse_backward_before_forward(xp):
    loss = xmlp.MSELoss()
    with pytest.raises(RuntimeError, match=r"Perform forward pass first\."):
        loss.backward()
    with pytest.raises(AssertionError):
        loss.backward()
    y = data(xp, (5, 1))
    loss.predict(y, y)  # predict stores nothing
    with pytest.raises(xmlp.ForwardNotCalledError):
        loss.backward()


@pytest.mark.parametrize("kind", ["linear", *MODELS, "linears"])
def test_update_before_backward(xp, kind):
    kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
    if kind == "linear":
        model = xmlp.Linear(3, 2, rng=0, **kw)
    elif kind == "linears":  # no parameter-free layer: every child holds parameters
        model = xmlp.Sequential(xmlp.Linear(3, 4, rng=0, **kw), xmlp.Linear(4, 2, rng=1, **kw))
    else:
        model = used_mlp(xp, kind)
        model.clear_state()
    first = next(iter(model.named_parameters()))[0]
    rejects(xmlp.NoGradientError, model, lambda: model.update_params(0.1),
            "update_params", repr(first), "backward()")
    model.forward(data(xp, (5, 3)))  # forward alone computes no gradient either
    msg = rejects(RuntimeError, model, lambda: model.update_params(0.1), repr(first))
    assert "no gradient" in msg


# -- learning rates ---------------------------------------------------------------------------
BAD_LR_TYPES = ["0.1", np.array(0.1), np.array([0.1]), None, True, 1j, [0.1]]
BAD_LR_VALUES = [float("nan"), float("inf"), -float("inf"), -1, -1e-12, np.float64("nan")]


@pytest.mark.parametrize("kind", ["linear", *MODELS])
@pytest.mark.parametrize("lr", BAD_LR_TYPES, ids=repr)
def test_learning_rate_of_wrong_type(xp, kind, lr):
    model = used_linear(xp) if kind == "linear" else used_mlp(xp, kind)
    rejects(TypeError, model, lambda: model.update_params(lr), "learning_rate", "real number")


def test_learning_rate_as_an_array_of_the_backend(xp):
    model = used_mlp(xp)
    lr = xp.from_numpy(np.float64(0.1))
    rejects(TypeError, model, lambda: model.update_params(lr), "learning_rate")


@pytest.mark.parametrize("kind", ["linear", *MODELS])
@pytest.mark.parametrize("lr", BAD_LR_VALUES, ids=repr)
def test_learning_rate_of_bad_value(xp, kind, lr):
    model = used_linear(xp) if kind == "linear" else used_mlp(xp, kind)
    rejects(ValueError, model, lambda: model.update_params(lr), "learning_rate", "finite",
            ">= 0", str(float(lr)))


@pytest.mark.parametrize("lr", [0, 0.0, 1, np.float32(0.25), np.float64(0.25),
                                fractions.Fraction(1, 4)], ids=repr)
def test_learning_rates_that_are_fine(lr):
    layer = xmlp.Linear(2, 1, np.ones((1, 2)), np.zeros(1))
    layer.forward(np.ones((1, 2)))
    layer.backward(np.ones((1, 1)))
    layer.update_params(lr)
    np.testing.assert_allclose(layer.weights, 1 - float(lr) * np.ones((1, 2)))
    assert layer.weights.dtype == np.float64  # a NumPy float32 rate changes nothing's dtype


# -- update_params: all or nothing ------------------------------------------------------------
@pytest.mark.parametrize("kind", MODELS)
def test_update_rejected_midway_changes_no_parameter(xp, kind):
    """The *last* layer's gradient is bad, so an update that went layer by layer without
    checking first would already have changed the first layer."""
    model = used_mlp(xp, kind)
    last = [m for m in model.modules() if isinstance(m, xmlp.Linear)][-1]
    prefix = "linear2" if kind == "mlp" else "4"
    good = last.grad_weights

    last.grad_weights = None
    rejects(xmlp.NoGradientError, model, lambda: model.update_params(0.1),
            f"'{prefix}.weights'")

    last.grad_weights = data(xp, (3, 2))  # wrong shape (one set by hand)
    rejects(ValueError, model, lambda: model.update_params(0.1),
            f"'{prefix}.weights'", "(2, 6)" if kind == "mlp" else "(2, 5)", "got (3, 2)")

    last.grad_weights = xp.astype(good, xp.float32)
    rejects(TypeError, model, lambda: model.update_params(0.1), "float32", "float64")

    last.grad_weights, other = foreign(xp, xp.to_numpy(good))
    rejects(TypeError, model, lambda: model.update_params(0.1), ns_name(xp), other)

    last.grad_weights = good  # and with the gradient back, the update goes through
    w0 = xp.to_numpy(model.parameters()[0])
    model.update_params(0.1)
    assert not np.array_equal(xp.to_numpy(model.parameters()[0]), w0)


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


# -- containers: a rejected pass leaves every layer as it was ---------------------------------
@pytest.mark.parametrize("kind", MODELS)
def test_container_forward_rejected(xp, kind):
    model = used_mlp(xp, kind)
    layer = "Linear(3, 6)"
    for method in ("forward", "predict"):
        call = getattr(model, method)
        rejects(ValueError, model, lambda c=call: c(data(xp, (5, 2))), layer, "got (5, 2)")
        rejects(ValueError, model, lambda c=call: c(xp.from_numpy(np.float64(1.0))),
                layer, "got ()")
        rejects(TypeError, model, lambda c=call: c(data(xp, (5, 3), "float32")),
                "float32", "float64")
        rejects(TypeError, model, lambda c=call: c(xp.from_numpy(np.ones((5, 3)), "int64")),
                "int64")
        rejects(TypeError, model, lambda c=call: c(foreign(xp, np.ones((5, 3)))[0]),
                ns_name(xp))
        rejects(TypeError, model, lambda c=call: c(np.ones((5, 3)).tolist()), "list")


@pytest.mark.parametrize("kind", MODELS)
def test_container_backward_rejected(xp, kind):
    model = used_mlp(xp, kind)
    rejects(ValueError, model, lambda: model.backward(data(xp, (5, 3))), "(5, 2)", "got (5, 3)")
    rejects(TypeError, model, lambda: model.backward(data(xp, (5, 2), "float32")), "float32")


# MLP.forward/backward skip the snapshot only while its layers agree and are chained; a layer
# moved or cleared on its own (public calls on model.linear1 / model.linear2) takes the
# snapshot path, so these hold for MLP as for Sequential.
CONTAINERS_MIDWAY = ["mlp", "sequential"]


@pytest.mark.parametrize("kind", CONTAINERS_MIDWAY)
def test_container_backward_rejected_by_an_earlier_layer(xp, kind):
    """The first layer's state was cleared (``to()`` on it alone does that), so backward runs
    through the last layers and then fails: those keep their previous gradients too."""
    model = used_mlp(xp, kind)
    linears = [m for m in model.modules() if isinstance(m, xmlp.Linear)]
    linears[0].to()
    rejects(xmlp.ForwardNotCalledError, model, lambda: model.backward(data(xp, (5, 2), seed=7)),
            "Perform forward pass first.")


@pytest.mark.parametrize("kind", CONTAINERS_MIDWAY)
def test_container_forward_rejected_by_a_later_layer(xp, kind):
    """The last layer was moved to float32 on its own, so forward runs through the first
    layers and then fails: those keep the x and output of the previous forward."""
    model = used_mlp(xp, kind)
    last = [m for m in model.modules() if isinstance(m, xmlp.Linear)][-1]
    last.to(dtype=xp.float32)
    rejects(TypeError, model, lambda: model.forward(data(xp, (5, 3), seed=7)),
            "float64", "float32")


# -- MSELoss ---------------------------------------------------------------------------------
def used_loss(xp: Any) -> xmlp.MSELoss:
    loss = xmlp.MSELoss()
    loss.forward(data(xp, (5, 1)), data(xp, (5, 1), seed=1))
    return loss


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_mse_rejects_mismatched_shapes(xp, method):
    loss = used_loss(xp)
    call = getattr(loss, method)
    # (N, 1) against (N,) would broadcast to (N, N): a silent, wrong loss
    rejects(ValueError, loss, lambda: call(data(xp, (5, 1)), data(xp, (5,))),
            f"MSELoss.{method}", "(5, 1)", "(5,)")
    rejects(ValueError, loss, lambda: call(data(xp, (5,)), data(xp, (5, 1))), "(5,)", "(5, 1)")
    rejects(ValueError, loss, lambda: call(data(xp, (5, 2)), data(xp, (2, 5))), "(2, 5)")
    rejects(ValueError, loss, lambda: call(data(xp, (5, 1)), data(xp, (4, 1))), "(4, 1)")
    zero_d = xp.from_numpy(np.float64(1.0))
    rejects(ValueError, loss, lambda: call(zero_d, zero_d), "0-d")
    empty = xp.from_numpy(np.ones((0, 1)))
    rejects(ValueError, loss, lambda: call(empty, empty), "empty", "(0, 1)")


def test_mse_rejects_bad_types(xp):
    loss = used_loss(xp)
    y = data(xp, (5, 1))
    rejects(TypeError, loss, lambda: loss.forward(y, data(xp, (5, 1), "float32")),
            "MSELoss.forward", "t (the target)", "float32", "float64")
    rejects(TypeError, loss, lambda: loss.forward(data(xp, (5, 1), "float32"), y),
            "float32", "float64")
    rejects(TypeError, loss, lambda: loss.forward(y, xp.from_numpy(np.ones((5, 1)), "int64")),
            "int64")
    rejects(TypeError, loss, lambda: loss.forward(xp.from_numpy(np.ones((5, 1)), "bool"), y),
            "bool")
    rejects(TypeError, loss, lambda: loss.forward(y, [[1.0]] * 5), "list")
    rejects(TypeError, loss, lambda: loss.forward([[1.0]] * 5, y), "list")
    t, other = foreign(xp, np.ones((5, 1)))
    msg = rejects(TypeError, loss, lambda: loss.forward(y, t), ns_name(xp), other)
    assert ".to(" not in msg  # a loss has no model to move


# -- Module.to ------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "word"), [
    ({"dtype": "int64"}, "real floating"), ({"dtype": "int32"}, "real floating"),
    ({"dtype": "bool"}, "real floating"), ({"dtype": "complex128"}, "real floating"),
    ({"xp": "numpi"}, "'numpi' is not a backend name"), ({"xp": 3}, "xp=3"),
], ids=repr)
def test_to_rejects_bad_targets_and_changes_nothing(xp, kwargs, word):
    model = used_mlp(xp)
    if "dtype" in kwargs and kwargs["dtype"] != "complex128":
        kwargs = {"dtype": getattr(xp.ns, kwargs["dtype"])}  # the backend's own dtype object
    rejects(TypeError, model, lambda: model.to(**kwargs), word)


def test_to_rejects_unknown_device(xp):
    model = used_mlp(xp)
    rejects(TypeError, model, lambda: model.to(device="no-such-device"), "no-such-device",
            ns_name(xp))


# -- constructors ---------------------------------------------------------------------------
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


@pytest.mark.parametrize(("dims", "exc"), [((0, 4), ValueError), ((3, -1), ValueError),
                                           (("3", 4), TypeError), ((3.0, 4), TypeError),
                                           ((True, 4), TypeError), ((3, None), TypeError)],
                         ids=repr)
def test_linear_rejects_bad_dims(dims, exc):
    with pytest.raises(exc, match="must be a positive int"):
        xmlp.Linear(*dims)


def test_numpy_integer_dims_are_fine():
    layer = xmlp.Linear(np.int64(3), np.int32(2), rng=0)
    assert type(layer.input_dim) is int and layer.weights.shape == (2, 3)


def test_mlp_constructor_checks():
    with pytest.raises(ValueError, match="positive int"):
        xmlp.MLP(1, 0, 1)
    with pytest.raises(TypeError, match="real floating"):
        xmlp.MLP(1, 10, 1, dtype="int64")
    with pytest.raises(TypeError, match="not an array namespace"):
        xmlp.MLP(1, 10, 1, xp=np.linalg)
    with pytest.raises(TypeError, match="cannot make arrays on device='gpu'"):
        xmlp.MLP(1, 10, 1, device="gpu")


def test_sequential_takes_modules_only():
    class Duck:
        def forward(self, x):
            return x

        backward = predict = forward

    with pytest.raises(TypeError, match=r"layer 1 \(Duck\) is not an xmlp.Module"):
        xmlp.Sequential(xmlp.Linear(2, 2), Duck())
    with pytest.raises(ValueError, match="at least one layer"):
        xmlp.Sequential()


# -- devices (array-api-strict has several CPU "devices", so this runs without a GPU) -------
def test_other_device_is_rejected_not_moved():
    strict = pytest.importorskip("array_api_strict")
    dev1 = strict.Device("device1")
    layer = xmlp.Linear(3, 2, xp=strict, rng=0)
    layer.forward(strict.ones((4, 3), dtype=strict.float64))
    x = strict.ones((4, 3), dtype=strict.float64, device=dev1)
    rejects(TypeError, layer, lambda: layer.forward(x), "device1", "CPU_DEVICE", "to_device",
            "never transfers silently")
    layer.backward(strict.ones((4, 2), dtype=strict.float64))
    g = strict.ones((4, 2), dtype=strict.float64, device=dev1)
    layer.forward(strict.ones((4, 3), dtype=strict.float64))
    rejects(TypeError, layer, lambda: layer.backward(g), "device1", "CPU_DEVICE")

    loss = xmlp.MSELoss()
    y = strict.ones((4, 2), dtype=strict.float64)
    rejects(TypeError, loss, lambda: loss.forward(y, g), "device1", "y (the prediction)")

    act = xmlp.Tanh()
    act.forward(y)
    rejects(TypeError, act, lambda: act.backward(g), "device1", "the forward input")

    layer.to(device=dev1)  # the way out the message names
    assert array_api_compat.device(layer.forward(x)) == dev1


@pytest.mark.requires_backends("dask")
def test_dask_checks_compute_nothing():
    """Shape, dtype and namespace checks on Dask read metadata only: no graph is computed."""
    import dask.array as da
    from dask.callbacks import Callback

    computed = []

    class Count(Callback):
        def _start(self, dsk):
            computed.append(len(dsk))

    model = xmlp.MLP(3, 4, 2, xp=da, rng=0)
    x = da.from_array(np.ones((6, 3)), chunks=(3, 3))
    with Count():
        model.forward(x)
        model.backward(da.ones((6, 2), chunks=(3, 2)))
        model.update_params(0.1)
        for bad in (x[:, :2], x.astype(np.float32), x.astype(np.int64)):
            with pytest.raises((TypeError, ValueError)):
                model.forward(bad)
    assert computed == []


def test_sequential_trusts_only_layers_that_declare_chain_safety():
    """Sequential skips its snapshot only around layers whose own class declares
    ``chain_safe``: a Linear subclass that rejects more (and does not say otherwise) is not
    trusted, so a pass it rejects midway still leaves the earlier layers as they were."""

    class Picky(xmlp.Linear):
        def forward(self, x):
            raise ValueError("Picky rejects every input")

    first = xmlp.Linear(3, 4, rng=0)
    model = xmlp.Sequential(first, xmlp.ReLU(), Picky(4, 2, rng=1))
    assert not model.plain("forward")
    with pytest.raises(ValueError, match="Picky"):
        model.forward(np.ones((5, 3)))
    assert first.x is None and first.output is None and model.layers[1].output is None
    plain = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.ReLU(), xmlp.Linear(4, 2, rng=1))
    assert plain.plain("forward")


def test_sequential_that_is_no_plain_chain_undoes_a_forward_a_later_layer_rejects():
    """Only the first layer of a plain chain sees the outside array. A Sequential that starts
    with an activation, or whose Linear layers no longer chain (one swapped by hand), takes the
    snapshot path: the layers before the one that rejects the pass keep their old state."""
    x = np.random.default_rng(0).standard_normal((5, 3))
    starts_with_tanh = xmlp.Sequential(xmlp.Tanh(), xmlp.Linear(3, 2, rng=0))
    starts_with_tanh.forward(x)
    rejects(ValueError, starts_with_tanh, lambda: starts_with_tanh.forward(np.ones((5, 4))),
            "Linear(3, 2)", "got (5, 4)")
    swapped = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 2, rng=1))
    swapped.forward(x)
    swapped.layers[2] = xmlp.Linear(5, 2, rng=2)  # takes 5 features, the chain gives 4
    rejects(ValueError, swapped, lambda: swapped.forward(x), "Linear(5, 2)", "got (5, 4)")


def test_sequential_calls_a_chain_safe_subclass_own_forward_and_backward():
    """Inside a plain chain the inner Linears run without re-checking what the chain hands
    them, but a chain-safe Linear subclass that overrides forward or backward still has its
    own method called, in every position, with the values of a plain Linear."""
    calls = []

    class Logged(xmlp.Linear):
        chain_safe = True

        def forward(self, x):
            calls.append(("forward", id(self)))
            return super().forward(x)

        def backward(self, grad_output):
            calls.append(("backward", id(self)))
            return super().backward(grad_output)

    gen = np.random.default_rng(0)
    x, g = gen.standard_normal((5, 3)), gen.standard_normal((5, 2))
    layers = [Logged(3, 4, rng=0), xmlp.Tanh(), Logged(4, 4, rng=1), xmlp.ReLU(),
              Logged(4, 2, rng=2)]
    model = xmlp.Sequential(*layers)
    plain = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 4, rng=1),
                            xmlp.ReLU(), xmlp.Linear(4, 2, rng=2))
    assert model.plain("forward") and plain.plain("forward")
    np.testing.assert_array_equal(model.forward(x), plain.forward(x))
    np.testing.assert_array_equal(model.backward(g), plain.backward(g))
    ids = [id(layer) for layer in layers[::2]]
    assert calls == [("forward", i) for i in ids] + [("backward", i) for i in ids[::-1]]
    for a, b in zip(layers[::2], plain.layers[::2], strict=True):
        np.testing.assert_array_equal(a.grad_weights, b.grad_weights)
        np.testing.assert_array_equal(a.grad_biases, b.grad_biases)


@pytest.mark.parametrize("lr", [10**400, -(10**400)], ids=["10**400", "-10**400"])
def test_learning_rate_beyond_the_float_range_is_shown_as_given(lr):
    """An int too large for a float is refused (ValueError: not finite as a float), and the
    message shows the number the user gave, not "inf"."""
    layer = xmlp.Linear(2, 1, np.ones((1, 2)), np.zeros(1))
    layer.forward(np.ones((1, 2)))
    layer.backward(np.ones((1, 1)))
    with pytest.raises(ValueError, match="finite and >= 0") as info:
        layer.update_params(lr)
    shown = str(info.value).split("got ")[1]
    assert shown.lstrip("-").startswith("1000000") and "inf" not in shown
    assert shown.startswith("-") == (lr < 0)
