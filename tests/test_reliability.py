"""Issue 11, classes 2-8: every promise of docs/errors.md under hostile input, nothing half-done.

2. fast paths equal the portable ones for every dtype and layout xmlp accepts;
3. one dtype per model: non-native byte order normalised (parameters) or refused truthfully
   (inputs);
4. a layer object used twice, or by two models, is refused at construction (and when put in
   by hand later);
5. every rejected call leaves every attribute as it was; a parameter replaced by hand is caught
   by the next call;
6. fit's restore point is the last state whose loss and parameters were finite;
7. out-of-range numbers get the documented error type;
8. empty batches are a ValueError; torch tensors that require grad never grow a graph.

(Checkpoints, class 1, are in test_checkpoint_hostile.py.)
"""

from __future__ import annotations

import copy
import gc
import math
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xmlp
from tests.test_errors import data, used_linear, used_mlp
from xmlp.backend import check_learning_rate, make_rng, to_host
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def state(obj: Any) -> dict[tuple[int, str], tuple[Any, np.ndarray | None]]:
    """test_errors.state, with every Dask array computed in one pass (one compute per array
    made this file's Dask run several times slower)."""
    import array_api_compat

    out: dict[tuple[int, str], tuple[Any, np.ndarray | None]] = {}
    lazy = []
    for module in obj.modules():
        for name, value in vars(module).items():
            if array_api_compat.is_dask_array(value):
                lazy.append(((id(module), name), value))
            else:
                host = (to_host(value) if array_api_compat.is_array_api_obj(value) else None)
                out[(id(module), name)] = (value, host)
    if lazy:
        import dask

        computed = dask.compute(*(v for _, v in lazy))
        for (key, value), host in zip(lazy, computed, strict=True):
            out[key] = (value, np.asarray(host))
    return out


def assert_unchanged(before: dict, obj: Any) -> None:
    """Every attribute of obj and its sub-modules still bound to the same object, with the
    same values."""
    after = state(obj)
    assert after.keys() == before.keys()
    for key, (value, host) in before.items():
        new_value, new_host = after[key]
        assert new_value is value, f"attribute {key[1]!r} was rebound"
        if host is not None:
            np.testing.assert_array_equal(new_host, host, err_msg=f"{key[1]!r} changed")


def rejects(exc_type: type[BaseException], obj: Any, call: Any, *words: str) -> str:
    """test_errors.rejects with the state above."""
    before = state(obj)
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert_unchanged(before, obj)
    return message


def kw(xp: Any, dtype: str = "float64") -> dict[str, Any]:
    return {"xp": xp.module, "device": xp.device, "dtype": getattr(xp.ns, dtype)}


def host(xp: Any, model: Any) -> list[np.ndarray]:
    return [xp.to_numpy(p) for p in model.parameters()]


# -- 2. fast paths equal the portable ones --------------------------------------------------------
def test_fast_paths_take_only_native_float32_and_float64():
    ops = NumpyOps(np)
    f64, f32 = np.ones((4, 3)), np.ones((4, 3), np.float32)
    assert ops.takes(f64) and ops.takes(f32) and ops.takes(f64, f64)
    assert not ops.takes(np.ones(3, np.float16))
    assert not ops.takes(np.ones(3, ">f8")) and not ops.takes(f64, np.ones((4, 3), ">f8"))
    assert not ops.takes(f64, f32)  # mixed
    assert not ops.takes(np.ma.array(f64))  # a subclass
    readonly = f64.copy()
    readonly.flags.writeable = False
    assert ops.takes(readonly)  # reading is fine; sgd checks writeable itself


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values in every memory layout a user can hand a layer."""
    fortran = np.asfortranarray(a)
    strided = np.repeat(a, 2, axis=1)[:, ::2]
    readonly = a.copy()
    readonly.flags.writeable = False
    wide = np.zeros((a.shape[0] * 2, a.shape[1]), a.dtype)
    wide[::2] = a
    return {"contiguous": a.copy(), "fortran": fortran, "strided": strided,
            "readonly": readonly, "row-strided": wide[::2]}


ELEMENTWISE_SHAPES = [(7, 3), (600, 300)]  # small: direct path; large: the blocked path


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided", "readonly",
                                    "row-strided"])
def test_every_op_equals_portable_for_every_dtype_and_layout(dtype, shape, layout):
    fast, portable = NumpyOps(np), PortableOps(np)
    gen = np.random.default_rng(0)
    x, g, t = (_layouts(gen.standard_normal(shape).astype(dtype))[layout] for _ in range(3))
    y = np.tanh(x)
    w = _layouts(gen.standard_normal((5, shape[1])).astype(dtype))[layout]
    b = gen.standard_normal(5).astype(dtype)
    # tanh on long arrays is computed, not NumPy's: within a few ulp (docs/performance.md)
    got, want = fast.tanh(x), portable.tanh(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    ulp = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want))
    assert ulp.max() <= {"float16": 0, "float32": 7, "float64": 3}[dtype]
    pairs = [
        (fast.tanh_grad(g, y), portable.tanh_grad(g, y)),
        (fast.sum_rows(g), portable.sum_rows(g)),
        (fast.affine(x, w, b), portable.affine(x, w, b)),
        (fast.matmul(x, w.T), portable.matmul(x, w.T)),
        (fast.mse_grad(g, g.size), portable.mse_grad(g, g.size)),
        (fast.relu_grad(g, x), portable.relu_grad(g, x)),
    ]
    for got, want in pairs:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # bitwise: the same operations
    (fl, fd), (pl, pd) = fast.mse(y, t), portable.mse(y, t)
    np.testing.assert_array_equal(fd, pd)
    assert fl.dtype == pl.dtype
    if dtype == "float16":
        assert fl == pl  # float16 takes the portable path: identical
    else:  # a BLAS dot product against a pairwise mean: the last bits may differ
        np.testing.assert_allclose(fl, pl, rtol=1e-6 if dtype == "float32" else 1e-13)
    p = _layouts(gen.standard_normal(shape).astype(dtype))[layout]
    p_fast, p_port = p.copy(order="K"), p.copy(order="K")
    if layout == "readonly":
        p_fast.flags.writeable = p_port.flags.writeable = False
    np.testing.assert_array_equal(fast.sgd(p_fast, g, 0.25), portable.sgd(p_port, g, 0.25))


def test_float16_mse_does_not_overflow_on_the_fast_path():
    """A float16 sum of squares overflows at 65504: the portable mean accumulates in float32."""
    y = np.full((300, 1), 100.0, np.float16)
    t = np.zeros((300, 1), np.float16)
    losses = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            losses.append(xmlp.MSELoss().forward(y, t))
        finally:
            xmlp.ops.set_fast_paths(True)
    assert losses[0] == losses[1] == np.float16(10000.0)


def test_readonly_parameter_is_updated_by_rebinding():
    layer = xmlp.Linear(3, 2, rng=0)
    w = layer.weights.copy()
    w.flags.writeable = False
    layer.weights = w
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    layer.update_params(0.1)
    np.testing.assert_array_equal(w, xmlp.Linear(3, 2, rng=0).weights)  # w untouched
    np.testing.assert_array_equal(layer.weights, w - 0.1 * layer.grad_weights)
    assert layer.weights.flags.writeable


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided", "readonly", "3d"])
def test_training_is_identical_with_and_without_fast_paths(dtype, layout):
    """Whole fits (mini-batches, shuffling) with XMLP_FAST_PATHS on and off: the same
    parameters bit for bit, for every accepted dtype and input layout."""
    gen = np.random.default_rng(1)
    x = gen.standard_normal((40, 6)).astype(dtype)
    t = np.sin(x[:, :2]).astype(dtype)
    if layout == "3d":
        x, t = x.reshape(8, 5, 6), t.reshape(8, 5, 2)
    else:
        x, t = _layouts(x)[layout], _layouts(t)[layout]
    results = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            model = xmlp.MLP(6, 16, 2, rng=2, dtype=dtype, init="xavier")
            history = xmlp.fit(model, x, t, epochs=3, lr=0.05, batch_size=16, shuffle=True,
                               rng=3, progress=False)
            results.append((history, [p.copy() for p in model.parameters()]))
        finally:
            xmlp.ops.set_fast_paths(True)
    (h_fast, p_fast), (h_port, p_port) = results
    for a, b in zip(p_fast, p_port, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(h_fast, h_port, rtol=1e-6 if dtype == "float32" else 1e-13)
    if dtype == "float16":
        assert h_fast == h_port


# -- 3. byte order --------------------------------------------------------------------------------
def test_layer_from_big_endian_weights_is_native_and_takes_ordinary_input():
    w, b = np.arange(6.0).reshape(2, 3), np.array([0.5, -0.5])
    layer = xmlp.Linear(3, 2, w.astype(">f8"), b.astype(">f8"))
    assert layer.dtype == np.float64 and layer.weights.dtype.isnative
    assert layer.biases.dtype.isnative
    x = np.ones((4, 3))
    np.testing.assert_array_equal(layer.forward(x), xmlp.Linear(3, 2, w, b).forward(x))
    layer.backward(np.ones((4, 2)))
    layer.update_params(0.1)  # trains as a float64 layer
    assert layer.weights.dtype == np.float64 and layer.weights.dtype.isnative
    f32 = xmlp.Linear(3, 2, w.astype(">f4"), b.astype(">f4"))
    assert f32.dtype == np.float32 and f32.weights.dtype.isnative
    assert xmlp.MLP(1, 2, 1, dtype=np.dtype(">f4")).dtype == np.float32
    model = xmlp.MLP(1, 2, 1).to(dtype=np.dtype(">f4"))
    assert all(p.dtype == np.float32 and p.dtype.isnative for p in model.parameters())


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


def test_big_endian_checkpoint_loads_native(tmp_path):
    from xmlp.io.checkpoint import write_checkpoint

    model = xmlp.MLP(2, 3, 1, rng=0)
    arrays = {n: np.asarray(p).astype(">f8") for n, p in model.named_parameters()}
    write_checkpoint(str(tmp_path / "big.npz"), arrays, {
        "format": 1, "class": "MLP", "shapes": {n: list(a.shape) for n, a in arrays.items()}})
    loaded = xmlp.load(xmlp.MLP(2, 3, 1, rng=1), tmp_path / "big.npz")
    for p, q in zip(loaded.parameters(), model.parameters(), strict=True):
        assert p.dtype == np.float64 and p.dtype.isnative
        np.testing.assert_array_equal(p, q)
    loaded.forward(np.ones((2, 2)))


# -- 4. a layer object used twice -----------------------------------------------------------------
def test_layer_used_twice_in_one_model_is_refused(xp):
    lin = xmlp.Linear(2, 2, rng=0, **kw(xp))
    with pytest.raises(ValueError, match=r"is used twice, as 0 and as 2.*deepcopy"):
        xmlp.Sequential(lin, xmlp.Tanh(), lin)
    act = xmlp.Tanh()
    with pytest.raises(ValueError, match="used twice, as 1 and as 3"):
        xmlp.Sequential(xmlp.Linear(2, 2, **kw(xp)), act, xmlp.Linear(2, 2, **kw(xp)), act)
    with pytest.raises(ValueError, match=r"used twice, as 0\.0 and as 1"):
        xmlp.Sequential(xmlp.Sequential(lin), lin)
    # nothing was recorded by the refused constructions: the layer is free to use
    seq = xmlp.Sequential(lin, xmlp.Tanh())
    seq.forward(data(xp, (4, 2)))


def test_layer_of_another_live_model_is_refused(xp):
    lin = xmlp.Linear(2, 2, rng=0, **kw(xp))
    first = xmlp.Sequential(lin, xmlp.Tanh())
    with pytest.raises(ValueError, match=r"layer 0 \(Linear\(2, 2.*already belongs to Sequential"):
        xmlp.Sequential(lin, xmlp.ReLU())
    mlp = xmlp.MLP(2, 3, 1, **kw(xp))
    with pytest.raises(ValueError, match="already belongs to MLP"):
        xmlp.Sequential(mlp.linear1, xmlp.Tanh())
    # the model itself can be wrapped, and a copy of a layer is a new layer
    wrapped = xmlp.Sequential(mlp, xmlp.Sigmoid())
    twin = copy.deepcopy(lin)
    second = xmlp.Sequential(twin, xmlp.ReLU())
    np.testing.assert_array_equal(xp.to_numpy(twin.weights), xp.to_numpy(lin.weights))
    second.forward(data(xp, (4, 2)))
    second.backward(data(xp, (4, 2)))
    second.update_params(0.5)
    assert not np.array_equal(xp.to_numpy(twin.weights), xp.to_numpy(lin.weights))
    assert wrapped.forward(data(xp, (4, 2))).shape == (4, 1)
    del first, wrapped
    gc.collect()  # a model that is gone frees its layers
    xmlp.Sequential(lin, xmlp.ReLU())


@pytest.mark.parametrize("kind", ["sequential", "mlp"])
def test_sharing_put_in_by_hand_is_refused_before_anything_changes(xp, kind):
    if kind == "sequential":
        model = xmlp.Sequential(xmlp.Linear(3, 3, rng=0, **kw(xp)), xmlp.Tanh(),
                                xmlp.Linear(3, 3, rng=1, **kw(xp)))
        model.forward(data(xp, (5, 3)))
        model.backward(data(xp, (5, 3)))
        model.layers.append(model.layers[0])  # by hand, after construction
    else:
        model = xmlp.MLP(3, 3, 3, rng=0, **kw(xp))
        model.forward(data(xp, (5, 3)))
        model.backward(data(xp, (5, 3)))
        model.linear2 = model.linear1
    rejects(ValueError, model, lambda: model.forward(data(xp, (5, 3), seed=3)), "used twice")
    rejects(ValueError, model, lambda: model.backward(data(xp, (5, 3), seed=3)), "used twice")
    # the message says why (the stored forward state, the update twice) and what to do instead
    rejects(ValueError, model, lambda: model.update_params(0.1),
            f"{type(model).__name__}.update_params: ", "used twice",
            "would overwrite the other's stored forward state and the update would be applied "
            "twice", "Make another layer (copy.deepcopy(layer)).")


# -- 5. all or nothing; parameters replaced by hand ----------------------------------------------
def _swaps(xp: Any) -> dict[str, Any]:
    """name -> a function that changes a used MLP by hand so that its forward must fail in the
    last layer (after the first has run)."""

    def dims(m: Any) -> None:
        m.linear2 = xmlp.Linear(7, 2, rng=0, **kw(xp))

    def dtype(m: Any) -> None:
        m.linear2.weights = xp.astype(m.linear2.weights, xp.float32)

    def shape(m: Any) -> None:
        m.linear2.weights = data(xp, (2, 7))

    def bias(m: Any) -> None:
        m.linear2.biases = data(xp, (3,))

    def activation(m: Any) -> None:
        class Refuses(xmlp.Tanh):
            def forward(self, x: Any) -> Any:
                raise ValueError("refused")

        m.activation = Refuses()

    return {"dims": dims, "dtype": dtype, "shape": shape, "bias": bias,
            "activation": activation}


@pytest.mark.parametrize("swap", list(_swaps(None)))
def test_mlp_forward_after_a_swap_by_hand_keeps_every_layer(xp, swap):
    model = used_mlp(xp)
    _swaps(xp)[swap](model)
    for method in ("forward", "backward"):
        arg = data(xp, (5, 3), seed=4) if method == "forward" else data(xp, (5, 2), seed=4)
        before = state(model)
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            getattr(model, method)(arg)
        assert_unchanged(before, model)


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


# -- 6. fit's safety net -------------------------------------------------------------------------
def _toy(xp: Any, dtype: str = "float64") -> tuple[Any, Any]:
    x = np.linspace(-1, 1, 20)[:, None]
    return xp.from_numpy(x, dtype), xp.from_numpy(2 * x**2 + 3, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_overflowing_parameters_are_never_returned(xp, dtype, epochs):
    """With lr near the float maximum the first update overflows the parameters while the
    epoch's loss (computed before it) is finite: fit raises and restores finite parameters."""
    x, y = _toy(xp, dtype)
    model = xmlp.MLP(1, 4, 1, rng=0, **kw(xp, dtype))
    start = host(xp, model)
    lr = 1e308 if dtype == "float64" else 1e38
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError,
                                                  match=r"overflowed.*epoch 1") as info:
        xmlp.fit(model, x, y, epochs=epochs, lr=lr, progress=False)
    assert len(info.value.history) == 1 and math.isfinite(info.value.history[0])
    for p, q in zip(host(xp, model), start, strict=True):
        np.testing.assert_array_equal(p, q)
    assert all(g is None for _, g in model.named_grads())


@SETTINGS
@given(log_lr=st.one_of(st.floats(-3, 10), st.floats(300, 308.2)), epochs=st.integers(1, 4),
       batch=st.sampled_from([None, 7]))
def test_fit_returns_or_restores_only_finite_parameters(log_lr, epochs, batch):
    x = np.linspace(-1, 1, 20)[:, None]
    y = 2 * x**2 + 3
    model = xmlp.MLP(1, 4, 1, rng=0)
    with np.errstate(all="ignore"):
        try:
            history = xmlp.fit(model, x, y, epochs=epochs, lr=10.0**log_lr, batch_size=batch,
                               progress=False)
        except FloatingPointError as exc:
            history = exc.history
            failed = True
        else:
            failed = False
    params = list(model.parameters())
    assert all(np.isfinite(p).all() for p in params)
    if not failed:
        assert len(history) == epochs and all(math.isfinite(v) for v in history)
        return
    # restored to the state after the last good epoch: replay it to compare
    replay = xmlp.MLP(1, 4, 1, rng=0)
    good = len(history) - 1
    if good:
        with np.errstate(all="ignore"):
            xmlp.fit(replay, x, y, epochs=good, lr=10.0**log_lr, batch_size=batch,
                     progress=False)
    for p, q in zip(params, replay.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


# -- 7. every documented error type, for every value --------------------------------------------
HUGE_INT = 10**400


def _id(value: Any) -> str:
    """A test id: huge ints by their size (an int of 5000 digits has no repr)."""
    if isinstance(value, int) and abs(value) > 10**30:
        return f"{'-' if value < 0 else ''}int_of_{value.bit_length()}_bits"
    return repr(value)


@pytest.mark.parametrize("lr", [HUGE_INT, -HUGE_INT, Fraction(HUGE_INT, 3), 10**5000,
                                float("inf"), np.float64("inf")], ids=_id)
def test_out_of_range_learning_rate_is_a_value_error(xp, lr):
    with pytest.raises(ValueError, match="learning_rate must be finite"):
        check_learning_rate(lr)
    model = used_mlp(xp)
    rejects(ValueError, model, lambda: model.update_params(lr), "learning_rate")
    x, y = _toy(xp)
    with pytest.raises(ValueError, match="learning_rate"):
        xmlp.fit(xmlp.MLP(1, 2, 1, **kw(xp)), x, y, epochs=1, lr=lr, progress=False)


@pytest.mark.parametrize("lr", [np.float32(0.5), np.int64(1), np.uint8(0), Fraction(1, 2),
                                10**300], ids=_id)
def test_learning_rates_of_every_real_type_are_accepted(lr):
    assert check_learning_rate(lr) == float(lr)


def test_numpy_integers_are_taken_where_ints_are():
    x, y = np.ones((10, 1)), np.ones((10, 1))
    history = xmlp.fit(xmlp.MLP(1, 2, 1, rng=np.int64(0)), x, y, epochs=np.int64(2),
                       batch_size=np.int32(3), lr=np.float32(0.1), progress=False)
    assert len(history) == 2
    assert xmlp.MLP(np.int8(1), np.uint16(3), np.int64(1)).linear1.weights.shape == (3, 1)


@pytest.mark.parametrize(("value", "error"), [
    (0, ValueError), (-1, ValueError), (sys.maxsize + 1, ValueError), (HUGE_INT, ValueError),
    (-(10**5000), ValueError), (1.0, TypeError), (True, TypeError), ("3", TypeError),
    (np.float64(2), TypeError)], ids=_id)
@pytest.mark.parametrize("arg", ["epochs", "batch_size"])
def test_fit_counts_get_the_documented_error(value, error, arg):
    model = xmlp.MLP(1, 2, 1, rng=0)
    before = state(model)
    kwargs = {"epochs": 1, arg: value}
    with pytest.raises(error, match=arg):
        xmlp.fit(model, np.ones((4, 1)), np.ones((4, 1)), lr=0.1, progress=False, **kwargs)
    assert_unchanged(before, model)


@pytest.mark.parametrize(("rng", "error"), [(-1, ValueError), (np.int64(-5), ValueError),
                                            (-(10**400), ValueError), (1.5, TypeError),
                                            ("seed", TypeError), (True, TypeError)],
                         ids=_id)
def test_bad_seeds_get_the_documented_error(rng, error):
    for make in (lambda: make_rng(rng), lambda: xmlp.MLP(1, 2, 1, rng=rng),
                 lambda: xmlp.Linear(1, 2, rng=rng)):
        with pytest.raises(error, match="rng must be"):
            make()
    with pytest.raises(error, match="rng must be"):
        xmlp.fit(xmlp.MLP(1, 2, 1), np.ones((4, 1)), np.ones((4, 1)), epochs=1, lr=0.1,
                 rng=rng, progress=False)


def test_huge_dims_are_a_value_error():
    for dims in [(10**30, 1), (1, sys.maxsize + 1), (2**62, 4)]:
        with pytest.raises(ValueError):
            xmlp.Linear(*dims)


# -- 8. empty batches and autograd ----------------------------------------------------------------
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


def test_empty_batch_in_fit_and_loss(xp):
    empty = xp.from_numpy(np.ones((0, 1)))
    with pytest.raises(ValueError):
        xmlp.fit(xmlp.MLP(1, 2, 1, **kw(xp)), empty, empty, epochs=1, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        xmlp.MSELoss().forward(empty, empty)




@pytest.mark.xp_only("torch")  # only torch tensors record an autograd graph
def test_initial_weights_that_require_grad_are_copied_as_values(xp):
    torch = xp.module
    w = torch.ones((2, 3), dtype=torch.float64, device=xp.device, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, device=xp.device, requires_grad=True)
    model = xmlp.Sequential(xmlp.Linear(3, 2, w * 1, b * 1), xmlp.Tanh(),
                            xmlp.Linear(2, 1, rng=0, **kw(xp)))
    x = xp.from_numpy(np.ones((4, 3)))
    loss = xmlp.MSELoss()
    for _ in range(3):
        loss.forward(model.forward(x), xp.from_numpy(np.zeros((4, 1))))
        model.backward(loss.backward())
        model.update_params(0.1)
    for p in model.parameters():
        assert not p.requires_grad and p.grad_fn is None
    for g in (g for _, g in model.named_grads()):
        assert not g.requires_grad
    assert w.grad is None  # nothing flowed back into the caller's graph


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


# -- 7. the command line: argument checks before long work, no traceback ------------------------
@pytest.mark.parametrize("argv", [
    ["--seed", "-1"], ["--epochs", str(10**30)], ["--epochs", "0"], ["--lr", "1e400"],
    ["--lr", "nan"], ["--hidden", "-3"], ["--seed", "1.5"], ["--epochs", "9" * 5000]],
    ids=lambda a: f"{a[0]}={a[1][:12]}")
def test_demo_refuses_bad_numbers_with_exit_status_2(argv, capsys):
    from xmlp.cli.commands import main

    with pytest.raises(SystemExit) as info:
        main(["demo", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and "Traceback" not in err


def _no_long_work(monkeypatch: Any) -> None:
    """Make training and measuring fail loudly: a refused command must not get there."""
    import xmlp.cli.bench_cases
    import xmlp.cli.demo

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("started the long work before checking its arguments")

    monkeypatch.setattr(xmlp.cli.demo, "fit", never)
    monkeypatch.setattr(xmlp.cli.bench_cases, "load_backends", never)


def test_demo_checks_out_and_model_before_training(tmp_path, monkeypatch, capsys):
    from xmlp.cli.commands import main

    _no_long_work(monkeypatch)
    assert main(["demo", "--out", str(tmp_path)]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "no" / "d.png")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["demo", "--hidden", str(2**62), "--out", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot build MLP(1, " in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_bench_checks_out_before_measuring(tmp_path, monkeypatch, capsys):
    from xmlp.cli.commands import main

    _no_long_work(monkeypatch)
    target = tmp_path / "results"
    target.write_text("keep me")
    assert main(["bench", "--quick", "--out", str(target)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert main(["bench", "--quick", "--out", str(target / "sub")]) == 2
    assert "cannot make the --out directory" in capsys.readouterr().err
    for flag in ("--min-time",):  # the one option in seconds
        for value in ("inf", "nan", "-1"):
            with pytest.raises(SystemExit) as info:
                main(["bench", flag, value])
            assert info.value.code == 2
    assert "finite number" in capsys.readouterr().err


def test_sequential_of_mixed_dtypes_or_namespaces_is_refused(xp):
    with pytest.raises(TypeError, match=r"layer 2 holds .*float32.*layer 0 holds .*float64"):
        xmlp.Sequential(xmlp.Linear(2, 2, **kw(xp)), xmlp.Tanh(),
                        xmlp.Linear(2, 2, **kw(xp, "float32")))
    other = np if xp.name != "numpy" else pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"one namespace, device and dtype\. Convert a layer "
                                        r"with \.to\(\.\.\.\) first\.$"):
        xmlp.Sequential(xmlp.Sequential(xmlp.Linear(2, 2, **kw(xp))), xmlp.Linear(2, 2, xp=other))
    fixed = xmlp.Linear(2, 2, **kw(xp, "float32")).to(dtype=xp.ns.float64)
    xmlp.Sequential(xmlp.Linear(2, 2, **kw(xp)), fixed).forward(data(xp, (3, 2)))


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


def test_load_puts_parameters_back_in_the_layers_dtype(xp, tmp_path):
    """A parameter replaced by hand with another dtype is caught by the next call, and load
    (like .to()) writes every parameter in its layer's namespace, device and dtype."""
    model = xmlp.MLP(2, 3, 1, rng=0, **kw(xp))
    xmlp.save(model, tmp_path / "m.npz")
    model.linear1.weights = xp.astype(model.linear1.weights, xp.float32)
    xmlp.load(model, tmp_path / "m.npz")
    assert all(p.dtype == xp.float64 for p in model.parameters())
    model.forward(data(xp, (4, 2)))


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


# -- further instances of class 7 in the optimizers, streaming and the scikit-learn adapter --------
@pytest.mark.parametrize("make", [
    lambda m, v: xmlp.optim.SGD(m, lr=v), lambda m, v: xmlp.optim.SGD(m, lr=0.1, momentum=v),
    lambda m, v: xmlp.optim.SGD(m, lr=0.1, weight_decay=v), lambda m, v: xmlp.optim.Adam(m, lr=v),
    lambda m, v: xmlp.optim.Adam(m, lr=0.1, eps=v),
    lambda m, v: xmlp.optim.Adam(m, lr=0.1, betas=(v, 0.9)),
], ids=["sgd-lr", "momentum", "weight_decay", "adam-lr", "eps", "beta1"])
@pytest.mark.parametrize("value", [HUGE_INT, -HUGE_INT, Fraction(HUGE_INT, 7)], ids=_id)
def test_optimizer_hyperparameters_beyond_the_float_range(make, value):
    with pytest.raises(ValueError) as info:
        make(xmlp.MLP(1, 2, 1), value)
    assert type(info.value) is ValueError


def test_rechunk_for_takes_numpy_ints_and_refuses_huge_ones():
    da = pytest.importorskip("dask.array", reason="rechunk_for is for Dask arrays")
    x = da.ones((12, 2), chunks=(5, 2))
    assert xmlp.rechunk_for(x, np.int64(4)).chunks[0] == xmlp.rechunk_for(x, 4).chunks[0]
    with pytest.raises(ValueError, match="batch_size"):
        xmlp.rechunk_for(x, HUGE_INT)
    with pytest.raises(TypeError, match="batch_size"):
        xmlp.rechunk_for(x, 4.0)


@pytest.mark.parametrize("param", ["learning_rate_init", "alpha", "power_t", "tol", "epsilon",
                                   "max_iter", "batch_size", "hidden_layer_sizes"])
def test_sklearn_hyperparameters_beyond_the_float_range_are_value_errors(param):
    sk = pytest.importorskip("xmlp.sklearn", reason="the adapter needs scikit-learn")
    value = (HUGE_INT,) if param == "hidden_layer_sizes" else HUGE_INT
    kwargs = {"max_iter": 2, param: value}
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError):
        sk.MLPRegressor(**kwargs).fit(x, x[:, 0])
