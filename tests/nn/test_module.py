"""What every layer and model shares (xmlp.Module), on every backend: calls out of order, the
learning rate, update_params checking every gradient and parameter before it changes one,
parameters replaced by hand, the inputs every forward refuses (empty batches, non-native
byte order, masked arrays, torch tensors that require grad), and the reprs."""

from __future__ import annotations

import fractions
import sys
from fractions import Fraction
from typing import Any

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.helpers import (
    HUGE_INT,
    MODELS,
    Tagged,
    assert_unchanged,
    data,
    foreign,
    int_id,
    layer_kwargs,
    message,
    ns_name,
    rejects,
    state,
    toy_data,
    used_linear,
    used_mlp,
)
from tests.reference import (
    mlp_step,
)
from xmlp.backend import check_learning_rate


# -- calls out of order ------------------------------------------------------------------------
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


# -- the learning rate -------------------------------------------------------------------------
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


@pytest.mark.parametrize("lr", [HUGE_INT, -HUGE_INT, Fraction(HUGE_INT, 3), 10**5000,
                                float("inf"), np.float64("inf")], ids=int_id)
def test_out_of_range_learning_rate_is_a_value_error(xp, lr):
    with pytest.raises(ValueError, match="learning_rate must be finite"):
        check_learning_rate(lr)
    model = used_mlp(xp)
    rejects(ValueError, model, lambda: model.update_params(lr), "learning_rate")
    x, y = toy_data(xp)
    with pytest.raises(ValueError, match="learning_rate"):
        xmlp.fit(xmlp.MLP(1, 2, 1, **layer_kwargs(xp)), x, y, epochs=1, lr=lr, progress=False)


@pytest.mark.parametrize("lr", [np.float32(0.5), np.int64(1), np.uint8(0), Fraction(1, 2),
                                10**300], ids=int_id)
def test_learning_rates_of_every_real_type_are_accepted(lr):
    assert check_learning_rate(lr) == float(lr)


# -- update_params: all or nothing -------------------------------------------------------------
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


def test_gradient_on_another_device_is_rejected_before_any_update():
    """update_params checks every gradient's device (not only its type, dtype and shape) before
    it changes a parameter."""
    dev1 = strict.Device("device1")
    model = xmlp.MLP(2, 3, 1, xp=strict, rng=0)
    x = strict.asarray(np.ones((4, 2)))
    model.backward(model.forward(x))
    before = [np.asarray(p) for p in model.parameters()]
    for layer in (model.linear1, model.linear2):  # every gradient, so no other one is wrong
        for name in ("grad_weights", "grad_biases"):
            setattr(layer, name, strict.asarray(getattr(layer, name), device=dev1))
    try:
        model.update_params(0.1)
    except TypeError as exc:
        assert "device1" in str(exc) and "'linear1.weights'" in str(exc)
    else:
        raise AssertionError("a gradient on another device was accepted")
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(np.asarray(p), q)


def test_update_through_the_slow_path_matches_reference():
    gen = np.random.default_rng(8)
    x, t = gen.standard_normal((6, 2)), gen.standard_normal((6, 1))
    for model in (xmlp.MLP(2, 3, 1, rng=1),
                  xmlp.Sequential(xmlp.Linear(2, 3, rng=1), xmlp.Tanh(), xmlp.Linear(3, 1, rng=2))):
        params = [np.array(p) for p in model.parameters()]
        loss = xmlp.MSELoss()
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        for module in model.modules():
            for name in module.param_names:
                grad = getattr(module, "grad_" + name)
                setattr(module, "grad_" + name, grad.view(Tagged))
        model.update_params(0.1)
        _, _, expected, _ = mlp_step(params, x, t, 0.1)
        for p, e in zip(model.parameters(), expected, strict=True):
            np.testing.assert_allclose(p, e, rtol=1e-12, atol=1e-14)


# -- parameters replaced by hand ---------------------------------------------------------------
def _replacements(xp: Any, shape: tuple[int, ...]) -> dict[str, tuple[Any, type, str]]:
    """name -> (a parameter replacement, the error it must raise, a word of the message)."""
    other = np if xp.name != "numpy" else __import__("array_api_strict")
    out = {
        "float32": (xp.from_numpy(np.ones(shape), "float32"), TypeError, "has dtype float32"),
        "shape": (xp.from_numpy(np.ones((*shape, 1))), ValueError, "has shape"),
        "namespace": (other.asarray(np.ones(shape)), TypeError, "array"),
        "list": (np.ones(shape).tolist(), TypeError, "not an array"),
    }
    if xp.name in ("numpy", "dask"):
        out["big-endian"] = (xp.from_numpy(np.ones(shape), ">f8"), TypeError, "byte order")
    if xp.name.startswith("torch"):
        out["requires-grad"] = (xp.from_numpy(np.ones(shape)).requires_grad_(), TypeError,
                                "requires grad")
    if xp.name == "array_api_strict":
        import array_api_strict

        out["device"] = (array_api_strict.asarray(np.ones(shape),
                                                  device=array_api_strict.Device("device1")),
                         TypeError, "device1")
    return out


@pytest.mark.parametrize("kind", ["linear", "mlp", "sequential"])
@pytest.mark.parametrize("which", [
    "float32", "shape", "namespace", "list",
    # replacements only some backends' arrays can be (see _replacements)
    pytest.param("big-endian", marks=pytest.mark.xp_only("numpy", "dask")),
    pytest.param("requires-grad", marks=pytest.mark.xp_only("torch")),
    pytest.param("device", marks=pytest.mark.xp_only("array_api_strict")),
])
def test_parameter_replaced_by_hand_is_caught_by_the_next_call(xp, kind, which):
    model = used_linear(xp) if kind == "linear" else used_mlp(xp, kind)
    last = [m for m in model.modules() if isinstance(m, xmlp.Linear)][-1]
    table = _replacements(xp, tuple(last.weights.shape))
    assert which in table, f"{xp.name} has no {which} replacement"
    replacement, error, word = table[which]
    good = last.weights
    last.weights = replacement
    x_dim = 3
    calls = {
        "update_params": lambda: model.update_params(0.1),
        "forward": lambda: model.forward(data(xp, (5, x_dim), seed=5)),
        "predict": lambda: model.predict(data(xp, (5, x_dim), seed=5)),
        "backward": lambda: model.backward(data(xp, (5, last.output_dim), seed=5)),
    }
    for name, call in calls.items():
        msg = rejects(error, model, call, word)
        assert "weights" in msg, (name, msg)
    # .to() converts every parameter back to the model's spec where it can
    if which not in ("shape", "list", "namespace"):
        last.weights = replacement
        model.to()
        np.testing.assert_array_equal(xp.to_numpy(last.weights), np.ones(good.shape))
        model.forward(data(xp, (5, x_dim)))


def test_mixed_dtype_model_is_never_trained(xp):
    """update_params on a model with one float32 parameter neither stops half-way nor trains
    a mixed-dtype model: it changes nothing and says which parameter."""
    model = used_mlp(xp, "sequential")
    model.layers[4].biases = xp.astype(model.layers[4].biases, xp.float32)
    rejects(TypeError, model, lambda: model.update_params(0.1), "'4.biases'", "float32",
            "float64", ".to()")


@pytest.mark.parametrize("caller", ["update_params", "SGD.step"])
def test_a_parameter_replaced_by_hand_is_named_with_the_call(caller):
    model = xmlp.MLP(2, 3, 1, rng=0)
    model.forward(np.ones((4, 2)))
    model.backward(np.ones((4, 1)))
    model.linear1.weights = np.ones((3, 2), dtype=np.float32)  # not the layer's float64
    if caller == "update_params":
        text = message(TypeError, lambda: model.update_params(0.1))
        assert text.startswith("MLP.update_params: parameter 'linear1.weights' ")
    else:
        opt = xmlp.optim.SGD(model, lr=0.1)
        assert message(TypeError, opt.step).startswith("SGD.step: parameter 'linear1.weights' ")


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


# -- inputs every layer refuses ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["linear", "mlp", "sequential", "Tanh", "ReLU", "Sigmoid"])
def test_empty_batch_is_a_value_error(xp, kind):
    if kind == "linear":
        obj: Any = used_linear(xp)
    elif kind in ("mlp", "sequential"):
        obj = used_mlp(xp, kind)
    else:
        obj = getattr(xmlp, kind)()
        obj.forward(data(xp, (5, 3)))
    for shape in [(0, 3), (2, 0, 3)]:
        empty = xp.from_numpy(np.ones(shape))
        for method in ("forward", "predict"):
            rejects(ValueError, obj, lambda m=method, e=empty: getattr(obj, m)(e),
                    "empty batch")


# only NumPy-backed arrays have a byte order
@pytest.mark.xp_only("numpy", "dask")
def test_non_native_input_is_refused_with_a_true_message(xp):
    big = xp.from_numpy(np.ones((5, 3)), ">f8")
    model = used_mlp(xp)
    for call in (lambda: model.forward(big), lambda: model.predict(big)):
        msg = rejects(TypeError, model, call, "non-native byte order", "'>f8'", "astype")
        assert "float64 but the parameters are float64" not in msg
    layer = used_linear(xp)
    rejects(TypeError, layer, lambda: layer.backward(xp.from_numpy(np.ones((5, 4)), ">f8")),
            "grad_output", "non-native byte order")
    act = xmlp.Tanh()
    act.forward(data(xp, (5, 3)))
    rejects(TypeError, act, lambda: act.forward(big), "Tanh.forward", "non-native byte order")
    rejects(TypeError, act, lambda: act.backward(big), "Tanh.backward", "non-native byte order")
    loss = xmlp.MSELoss()
    y = data(xp, (5, 3))
    loss.forward(y, y)
    rejects(TypeError, loss, lambda: loss.forward(big, y), "MSELoss.forward", "non-native")
    rejects(TypeError, loss, lambda: loss.forward(y, big), "t (the target)", "non-native")
    # the fix the message names works
    converted = xp.astype(big, xp.float64)
    model.forward(converted)


def test_masked_arrays_are_refused():
    """A mask would be honoured by some NumPy functions and ignored by others (matmul)."""
    masked = np.ma.array(np.ones((4, 3)), mask=np.eye(4, 3, dtype=bool))
    layer, act, loss = xmlp.Linear(3, 2, rng=0), xmlp.Tanh(), xmlp.MSELoss()
    for obj, call in [(layer, lambda: layer.forward(masked)), (act, lambda: act.forward(masked)),
                      (loss, lambda: loss.forward(masked, np.ones((4, 3))))]:
        rejects(TypeError, obj, call, "MaskedArray", "filled")
    layer.forward(np.asarray(masked))  # the way out the message names
    layer.backward(np.ones((4, 2)))
    layer.grad_weights = np.ma.array(layer.grad_weights, mask=np.eye(2, 3, dtype=bool))
    layer.grad_biases = np.ma.array(layer.grad_biases, mask=[True, False])
    rejects(TypeError, layer, lambda: layer.update_params(0.1), "MaskedArray", "filled")
    # to() converts a parameter replaced by hand where it can, but never drops a mask (the
    # masked-out values would silently become weights): the next call still refuses it
    layer.weights = np.ma.array(np.ones((2, 3)), mask=np.eye(2, 3, dtype=bool))
    with pytest.raises(TypeError, match="MaskedArray"):
        layer.to(dtype="float32")
        layer.forward(np.ones((4, 3), np.float32))


@pytest.mark.xp_only("torch")  # only torch tensors record an autograd graph
def test_inputs_that_require_grad_are_refused(xp):
    torch = xp.module
    model = used_mlp(xp)
    x = data(xp, (5, 3)).requires_grad_()
    for call in (lambda: model.forward(x), lambda: model.predict(x)):
        rejects(TypeError, model, call, "requires grad", "detach()")
    rejects(TypeError, model, lambda: model.backward(data(xp, (5, 2)).requires_grad_()),
            "requires grad")
    act = xmlp.Tanh()
    act.forward(data(xp, (5, 3)))
    rejects(TypeError, act, lambda: act.forward(x), "requires grad")
    loss = xmlp.MSELoss()
    y = data(xp, (5, 1))
    loss.forward(y, y)
    rejects(TypeError, loss, lambda: loss.forward(y.clone().requires_grad_(), y),
            "requires grad")
    rejects(TypeError, loss, lambda: loss.forward(y, y.clone().requires_grad_()),
            "requires grad")
    layer = used_linear(xp)
    layer.grad_weights = layer.grad_weights.clone().requires_grad_()
    rejects(TypeError, layer, lambda: layer.update_params(0.1), "requires grad")
    with torch.no_grad():  # the fix the message names
        model.forward(x.detach())


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


# -- numbers out of range ----------------------------------------------------------------------
@pytest.mark.parametrize(("call", "error"), [
    (lambda: xmlp.Linear(10**400, 3), ValueError),
    (lambda: xmlp.Linear(3, -(10**5000)), ValueError),
    (lambda: xmlp.Linear(sys.maxsize + 1, 1), ValueError),
    (lambda: xmlp.MLP(1, 2, 1).to(dtype=10**5000), TypeError),
    (lambda: xmlp.MLP(1, 2, 1, device=10**5000), TypeError),
    (lambda: xmlp.MLP(1, 2, 1, dtype=10**5000), TypeError),
], ids=["dim-10**400", "dim--10**5000", "dim-maxsize+1", "to-dtype-int", "device-int",
        "dtype-int"])
def test_huge_numbers_anywhere_get_the_documented_type(call, error):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error


# -- reprs -------------------------------------------------------------------------------------
def test_reprs():
    layer = xmlp.Linear(2, 3, rng=0)
    assert repr(layer) == "Linear(2, 3, numpy float64 on cpu)"
    assert repr(xmlp.Sequential(layer, xmlp.Tanh())) == (
        "Sequential(Linear(2, 3, numpy float64 on cpu), Tanh())")
    assert repr(xmlp.MLP(1, 4, 2, rng=0, dtype="float32")) == "MLP(1, 4, 2, numpy float32 on cpu)"
    assert repr(xmlp.MSELoss()) == "MSELoss()"
