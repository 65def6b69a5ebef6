"""Property-based tests (hypothesis) over shapes and dtypes, on NumPy and array-api-strict.

* Gradient checks: every backward agrees with central differences of its own forward,
  taken in float64. A float32 layer's gradients are compared with the differences of a float64
  copy of it (same parameter values), with a float32 tolerance.
* Errors: generated bad shapes and dtypes raise the promised types (ValueError for shapes,
  TypeError for dtypes).
* Large shapes: arrays of up to 2 * _LARGE elements, 1-D or with rows wider than a block,
  reach the NumPy fast paths' blocked branches; layers there equal the float64 reference and
  never write into their inputs.

Reproducible in CI: derandomized, no example database, at most 30 examples per test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import xmlp
from tests.conftest import BACKEND_PARAMS, tolerances
from xmlp.ops.numpy_fast import _BLOCK_BYTES, _LARGE

_BLOCK = _BLOCK_BYTES // 8  # float64 elements in one block of the blocked fast paths

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# NumPy and array-api-strict only: collected in those backends' sessions
pytestmark = pytest.mark.xp_only("numpy", "array_api_strict")


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def pxp(request: pytest.FixtureRequest) -> Any:
    """The active backend (module scope: hypothesis reruns the test body, not the fixture,
    and the backend holds no state); xp_only above keeps NumPy and array-api-strict."""
    return request.param


dims = st.integers(1, 4)
leading = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)  # batch and more dims
dtypes = st.sampled_from(["float64", "float32"])
seeds = st.integers(0, 2**32 - 1)

EPS = 1e-6  # central differences in float64: error ~ EPS**2 (truncation) + 1e-16 / EPS


def tolerance(dtype: str, scale: float) -> dict[str, float]:
    if dtype == "float64":
        return {"rtol": 1e-6, "atol": 1e-7 * max(1.0, scale)}
    return {"rtol": 2e-3, "atol": 2e-3 * max(1.0, scale)}


def central_differences(f: Callable[[np.ndarray], float], a: np.ndarray) -> np.ndarray:
    """d f / d a element by element; ``a`` is float64 and left as it was."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        keep = a[idx]
        a[idx] = keep + EPS
        up = f(a)
        a[idx] = keep - EPS
        down = f(a)
        a[idx] = keep
        grad[idx] = (up - down) / (2 * EPS)
    return grad


def assert_grad(xp: Any, analytic: Any, numeric: np.ndarray, dtype: str) -> None:
    got = xp.to_numpy(analytic)
    assert got.shape == numeric.shape
    np.testing.assert_allclose(got, numeric, **tolerance(dtype, float(np.abs(numeric).max())))


# -- gradient checks ---------------------------------------------------------------------------
@SETTINGS
@given(lead=leading, n_in=dims, n_out=dims, dtype=dtypes, seed=seeds)
def test_linear_gradients(pxp, lead, n_in, n_out, dtype, seed):
    """L = sum(output * r): grad_output is r; check dL/dx, dL/dW, dL/db."""
    xp = pxp
    gen = np.random.default_rng(seed)
    # values representable in float32, so the float64 copy is the same function
    x, w, b, r = (gen.standard_normal(s).astype(dtype).astype(np.float64)
                  for s in ((*lead, n_in), (n_out, n_in), (n_out,), (*lead, n_out)))
    layer = xmlp.Linear(n_in, n_out, xp.from_numpy(w, dtype), xp.from_numpy(b, dtype))
    out = layer.forward(xp.from_numpy(x, dtype))
    assert tuple(out.shape) == (*lead, n_out) and out.dtype == getattr(xp.ns, dtype)
    grad_x = layer.backward(xp.from_numpy(r, dtype))

    def loss(x_, w_, b_):
        ref = xmlp.Linear(n_in, n_out, xp.from_numpy(w_), xp.from_numpy(b_))
        return float(np.sum(xp.to_numpy(ref.predict(xp.from_numpy(x_))) * r))

    assert_grad(xp, grad_x, central_differences(lambda a: loss(a, w, b), x), dtype)
    assert_grad(xp, layer.grad_weights, central_differences(lambda a: loss(x, a, b), w), dtype)
    assert_grad(xp, layer.grad_biases, central_differences(lambda a: loss(x, w, a), b), dtype)


@SETTINGS
@given(shape=leading, cls=st.sampled_from([xmlp.Tanh, xmlp.Sigmoid, xmlp.ReLU]),
       dtype=dtypes, seed=seeds)
def test_activation_gradients(pxp, shape, cls, dtype, seed):
    xp = pxp
    gen = np.random.default_rng(seed)
    x = gen.standard_normal(shape) * 2
    if cls is xmlp.ReLU:  # away from the kink at 0, where the derivative is not defined
        x = np.where(x >= 0, x + 0.1, x - 0.1)
    x = x.astype(dtype).astype(np.float64)
    r = gen.standard_normal(shape).astype(dtype).astype(np.float64)
    act = cls()
    act.forward(xp.from_numpy(x, dtype))
    grad = act.backward(xp.from_numpy(r, dtype))
    ref = cls()

    def loss(a):
        return float(np.sum(xp.to_numpy(ref.predict(xp.from_numpy(a))) * r))

    assert_grad(xp, grad, central_differences(loss, x), dtype)


@SETTINGS
@given(lead=leading, n_in=dims, hidden=dims, n_out=dims, dtype=dtypes, seed=seeds)
def test_mlp_gradients_through_mse(pxp, lead, n_in, hidden, n_out, dtype, seed):
    """L = MSELoss(MLP(x), t): check dL/dx and dL/d(every parameter)."""
    xp = pxp
    gen = np.random.default_rng(seed)
    model = xmlp.MLP(n_in, hidden, n_out, xp=xp.module, dtype=dtype, rng=seed)
    params = [xp.to_numpy(p).astype(np.float64) for p in model.parameters()]
    x = gen.standard_normal((*lead, n_in)).astype(dtype).astype(np.float64)
    t = gen.standard_normal((*lead, n_out)).astype(dtype).astype(np.float64)
    mse = xmlp.MSELoss()
    mse.forward(model.forward(xp.from_numpy(x, dtype)), xp.from_numpy(t, dtype))
    grad_x = model.backward(mse.backward())
    analytic = dict(model.named_grads())

    ref = xmlp.MLP(n_in, hidden, n_out, xp=xp.module, dtype="float64", rng=0)
    ref_loss = xmlp.MSELoss()
    names = [name for name, _ in ref.named_parameters()]

    def loss(x_, values):
        ref.assign_parameters({n: xp.from_numpy(v) for n, v in zip(names, values, strict=True)})
        return float(ref_loss.predict(ref.predict(xp.from_numpy(x_)), xp.from_numpy(t)))

    assert_grad(xp, grad_x, central_differences(lambda a: loss(a, params), x), dtype)
    for i, name in enumerate(names):
        numeric = central_differences(
            lambda a, i=i: loss(x, [a if j == i else p for j, p in enumerate(params)]),
            params[i])
        assert_grad(xp, analytic[name], numeric, dtype)


# -- errors are the promised types --------------------------------------------------------
def other_dtype(dtype: str) -> str:
    return "float32" if dtype == "float64" else "float64"


@SETTINGS
@given(lead=leading, n_in=dims, n_out=dims, bad_in=dims, dtype=dtypes)
def test_wrong_feature_count_is_a_value_error(pxp, lead, n_in, n_out, bad_in, dtype):
    assume(bad_in != n_in)
    xp = pxp
    layer = xmlp.Linear(n_in, n_out, xp=xp.module, dtype=dtype, rng=0)
    x = xp.from_numpy(np.ones((*lead, bad_in)), dtype)
    for method in (layer.forward, layer.predict):
        with pytest.raises(ValueError, match=rf"\(\.\.\., {n_in}\).*{bad_in}\)"):
            method(x)
    model = xmlp.MLP(n_in, 3, n_out, xp=xp.module, dtype=dtype, rng=0)
    with pytest.raises(ValueError):
        model.forward(x)


@SETTINGS
@given(lead=leading, n_in=dims, n_out=dims, dtype=dtypes,
       bad=st.sampled_from(["other float", "int64", "int32", "bool"]))
def test_wrong_dtype_is_a_type_error(pxp, lead, n_in, n_out, dtype, bad):
    xp = pxp
    bad_dtype = other_dtype(dtype) if bad == "other float" else bad
    model = xmlp.MLP(n_in, 3, n_out, xp=xp.module, dtype=dtype, rng=0)
    x = xp.from_numpy(np.ones((*lead, n_in)), bad_dtype)
    with pytest.raises(TypeError, match=bad_dtype):
        model.forward(x)
    out = model.forward(xp.from_numpy(np.ones((*lead, n_in)), dtype))
    with pytest.raises(TypeError, match=bad_dtype):
        model.backward(xp.from_numpy(np.ones(tuple(out.shape)), bad_dtype))
    with pytest.raises(TypeError, match=bad_dtype):
        xmlp.MSELoss().forward(out, xp.from_numpy(np.ones(tuple(out.shape)), bad_dtype))


@SETTINGS
@given(shape=leading, other=leading, n_out=dims, dtype=dtypes)
def test_mismatched_shapes_are_value_errors(pxp, shape, other, n_out, dtype):
    """grad_output or target of any other shape: ValueError, never a broadcast."""
    xp = pxp
    y_shape, bad_shape = (*shape, n_out), (*other, n_out)
    assume(bad_shape != y_shape)
    layer = xmlp.Linear(2, n_out, xp=xp.module, dtype=dtype, rng=0)
    y = layer.forward(xp.from_numpy(np.ones((*shape, 2)), dtype))
    bad = xp.from_numpy(np.ones(bad_shape), dtype)
    with pytest.raises(ValueError):
        layer.backward(bad)
    with pytest.raises(ValueError):
        xmlp.MSELoss().forward(y, bad)
    for cls in (xmlp.Tanh, xmlp.ReLU, xmlp.Sigmoid):
        act = cls()
        act.forward(y)
        with pytest.raises(ValueError):
            act.backward(bad)


@SETTINGS
@given(shape=leading, dtype=dtypes)
def test_squeezed_or_expanded_target_is_a_value_error(pxp, shape, dtype):
    """(N, 1) against (N,) and the other way round (each would broadcast to (N, N))."""
    xp = pxp
    y = xp.from_numpy(np.ones((*shape, 1)), dtype)
    with pytest.raises(ValueError):
        xmlp.MSELoss().forward(y, xp.from_numpy(np.ones(shape), dtype))
    with pytest.raises(ValueError):
        xmlp.MSELoss().forward(xp.from_numpy(np.ones(shape), dtype), y)


# -- large shapes: the blocked fast paths ------------------------------------------------------
BIG_SETTINGS = settings(SETTINGS, max_examples=8)

big_shapes = st.one_of(
    st.tuples(st.integers(_LARGE // 2, 2 * _LARGE)),  # 1-D: a wide bias
    st.tuples(st.integers(1, 4), st.integers(_BLOCK // 2, _LARGE)),  # a few rows near a block
    st.tuples(st.integers(200, 1500), st.integers(60, 400)),  # many rows per block
)
EDGE_SHAPES = [(_LARGE,), (1, _LARGE), (4, _BLOCK + 1), (_LARGE // 97 + 1, 97)]


def _with_edges(test: Callable[..., Any]) -> Callable[..., Any]:
    for shape in EDGE_SHAPES:
        test = example(shape=shape, dtype="float64", seed=0)(test)
    return example(shape=EDGE_SHAPES[0], dtype="float32", seed=1)(test)


@BIG_SETTINGS
@_with_edges
@given(shape=big_shapes, dtype=dtypes, seed=seeds)
def test_large_tanh_and_mse_match_reference(pxp, shape, dtype, seed):
    xp = pxp
    gen = np.random.default_rng(seed)
    x, g, t = (gen.standard_normal(shape).astype(dtype) for _ in range(3))
    xs, gs, ts = (xp.from_numpy(a) for a in (x, g, t))
    tol = tolerances(dtype)
    act = xmlp.Tanh()
    y = act.forward(xs)
    grad_x = act.backward(gs)
    y_ref = np.tanh(x.astype(np.float64))
    np.testing.assert_allclose(xp.to_numpy(y), y_ref, **tol)
    # 1 - y**2 from the stored y, as computed in dtype
    y_host = xp.to_numpy(y).astype(np.float64)
    np.testing.assert_allclose(xp.to_numpy(grad_x), g * (1 - y_host**2), **tol)
    mse = xmlp.MSELoss()
    loss = mse.forward(y, ts)
    grad_y = mse.backward()
    diff = y_host - t.astype(np.float64)
    np.testing.assert_allclose(float(loss), np.mean(diff**2), **tol)
    np.testing.assert_allclose(xp.to_numpy(grad_y), 2 * diff / diff.size, **tol)
    for arr, host in ((xs, x), (gs, g), (ts, t), (y, y_host)):  # no input was written
        np.testing.assert_array_equal(xp.to_numpy(arr).astype(np.float64), host)


@BIG_SETTINGS
@_with_edges
@given(shape=big_shapes, dtype=dtypes, seed=seeds)
def test_large_linear_step_matches_reference(pxp, shape, dtype, seed):
    """Weights of ``shape`` (out, in), or Linear(1, n) for a 1-D shape: its bias is the wide
    1-D parameter. One forward, backward and update_params against the reference."""
    xp = pxp
    n_out, n_in = shape if len(shape) == 2 else (shape[0], 1)
    gen = np.random.default_rng(seed)
    w, b = gen.standard_normal((n_out, n_in)), gen.standard_normal(n_out)
    x, g = gen.standard_normal((2, n_in)), gen.standard_normal((2, n_out))
    w, b, x, g = (a.astype(dtype).astype(np.float64) for a in (w, b, x, g))
    layer = xmlp.Linear(n_in, n_out, xp.from_numpy(w, dtype), xp.from_numpy(b, dtype))
    xs, gs = xp.from_numpy(x, dtype), xp.from_numpy(g, dtype)
    tol = tolerances(dtype)
    out = layer.forward(xs)
    np.testing.assert_allclose(xp.to_numpy(out), x @ w.T + b, **tol)
    layer.backward(gs)
    gw, gb = g.T @ x, g.sum(axis=0)
    layer.update_params(0.125)
    np.testing.assert_allclose(xp.to_numpy(layer.weights), w - 0.125 * gw, **tol)
    np.testing.assert_allclose(xp.to_numpy(layer.biases), b - 0.125 * gb, **tol)
    for arr, host in ((xs, x), (gs, g)):
        np.testing.assert_array_equal(xp.to_numpy(arr), host)
