"""CrossEntropyLoss, Softmax and accuracy on every backend against the NumPy float64 reference,
numerical gradient checks, PyTorch's CrossEntropyLoss, and bad input (issue 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.reference import cross_entropy, softmax
from tests.test_errors import foreign, ns_name, rejects

# (N, C), a single sample (C,) and leading dims (..., C): classes are always last.
SHAPES = {"batch": (5, 4), "single": (4,), "lead2": (2, 3, 4)}
CHECKED = ("numpy", "array_api_strict", "torch:cpu")  # labels read without a sync


def targets(shape: tuple[int, ...], kind: str, seed: int = 0) -> np.ndarray:
    """Class indices of shape[:-1] or soft labels of shape (rows sum to 1)."""
    gen = np.random.default_rng(seed)
    if kind == "index":
        return gen.integers(0, shape[-1], size=shape[:-1])
    p = gen.random(shape) + 0.1
    return p / p.sum(axis=-1, keepdims=True)


def to_backend(xp, t: np.ndarray, dtype: str):
    return xp.from_numpy(t) if t.dtype.kind in "iu" else xp.from_numpy(t, dtype)


def host(xp, a) -> np.ndarray:
    return np.asarray(xp.to_numpy(a), dtype=np.float64)


# -- values -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_cross_entropy_matches_reference(xp, dtype, kind, shape):
    z = np.random.default_rng(1).standard_normal(shape).astype(dtype).astype(np.float64) * 3
    t = targets(shape, kind)
    if kind == "probs":
        t = t.astype(dtype).astype(np.float64)
    want_loss, want_grad = cross_entropy(z, t)
    loss_fn = xmlp.CrossEntropyLoss()
    zs, ts = xp.from_numpy(z, dtype), to_backend(xp, t, dtype)
    loss = loss_fn.forward(zs, ts)
    np.testing.assert_allclose(float(loss), want_loss, **tolerances(dtype))
    assert loss_fn.logits is zs and loss_fn.t is ts and loss_fn.loss is loss
    grad = loss_fn.backward()
    assert grad.dtype == getattr(xp.ns, dtype) and tuple(grad.shape) == shape
    np.testing.assert_allclose(host(xp, grad), want_grad, **tolerances(dtype))
    np.testing.assert_allclose(float(loss_fn.predict(zs, ts)), want_loss, **tolerances(dtype))


def test_cross_entropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    gen = np.random.default_rng(2)
    z = gen.standard_normal((6, 5)) * 4
    for t in (gen.integers(0, 5, 6), targets((6, 5), "probs"), gen.random((6, 5))):
        zt = torch.tensor(z, requires_grad=True)
        want = torch.nn.CrossEntropyLoss()(zt, torch.from_numpy(t))
        want.backward()
        loss_fn = xmlp.CrossEntropyLoss()
        got = loss_fn.forward(z, t)
        np.testing.assert_allclose(float(got), want.item(), rtol=1e-14)
        # soft labels that do not sum to 1 (the third) too: the exact gradient, as torch's
        np.testing.assert_allclose(loss_fn.backward(), zt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["index", "probs", "unnormalised"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3)], ids=["batch", "lead2"])
def test_cross_entropy_numerical_gradient(xp, kind, shape):
    gen = np.random.default_rng(3)
    z = gen.standard_normal(shape)
    t = targets(shape, "index" if kind == "index" else "probs")
    if kind == "unnormalised":
        t = gen.random(shape)
    loss_fn = xmlp.CrossEntropyLoss()
    ts = to_backend(xp, t, "float64")
    loss_fn.forward(xp.from_numpy(z), ts)
    grad = host(xp, loss_fn.backward())
    numeric = np.zeros_like(z)
    h = 1e-6
    for i in np.ndindex(*shape):
        up, down = z.copy(), z.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (float(loss_fn.predict(xp.from_numpy(up), ts))
                      - float(loss_fn.predict(xp.from_numpy(down), ts))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["index", "probs"])
def test_cross_entropy_is_stable_for_huge_logits(xp, kind):
    z = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, -1e4 + 1], [3.0, 1e4, 1e4, -1e4]])
    t = targets(z.shape, kind, seed=4)
    loss_fn = xmlp.CrossEntropyLoss()
    loss = float(loss_fn.forward(xp.from_numpy(z), to_backend(xp, t, "float64")))
    grad = host(xp, loss_fn.backward())
    want_loss, want_grad = cross_entropy(z, t)
    assert math.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("label_dtype", ["int64", "int32", "int16", "uint8"])
def test_any_integer_label_dtype(xp, label_dtype):
    z = np.random.default_rng(5).standard_normal((5, 4))
    t = np.array([0, 3, 1, 2, 3])
    want_loss, want_grad = cross_entropy(z, t)
    loss_fn = xmlp.CrossEntropyLoss()
    loss = loss_fn.forward(xp.from_numpy(z), xp.from_numpy(t.astype(label_dtype)))
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-12)
    np.testing.assert_allclose(host(xp, loss_fn.backward()), want_grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_returns_the_namespace_mean(xp):
    """No Python float, no host sync: a 0-d array (a NumPy scalar on NumPy, as its mean)."""
    loss = xmlp.CrossEntropyLoss().forward(xp.from_numpy(np.zeros((2, 3))),
                                           xp.from_numpy(np.array([0, 2])))
    assert not isinstance(loss, float) or isinstance(loss, np.floating)
    assert tuple(getattr(loss, "shape", ())) == ()
    np.testing.assert_allclose(float(loss), math.log(3), rtol=1e-14)


def test_softmax_matches_reference(xp, dtype):
    gen = np.random.default_rng(6)
    x = gen.standard_normal((2, 3, 4)).astype(dtype).astype(np.float64) * 5
    g = gen.standard_normal((2, 3, 4)).astype(dtype).astype(np.float64)
    layer = xmlp.Softmax()
    out = layer.forward(xp.from_numpy(x, dtype))
    assert out.dtype == getattr(xp.ns, dtype)
    np.testing.assert_allclose(host(xp, out), softmax(x), **tolerances(dtype))
    y = softmax(x)
    want = y * (g - (g * y).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(host(xp, layer.backward(xp.from_numpy(g, dtype))), want,
                               **tolerances(dtype))
    np.testing.assert_allclose(host(xp, layer.predict(xp.from_numpy(x, dtype))), softmax(x),
                               **tolerances(dtype))
    big = layer.predict(xp.from_numpy(np.array([1e4, -1e4, 1e4]), dtype))
    np.testing.assert_allclose(host(xp, big), [0.5, 0.0, 0.5], atol=1e-7)
    # each row shifted by its own maximum: a row far below another keeps its probabilities
    # (shifted by the largest value of all, its exponentials would all underflow to 0)
    rows = np.array([[1e3, 1e3 + 1.0, 1e3 - 1.0], [0.0, 1.0, -1.0]])
    for call in (layer.forward, layer.predict):
        out = call(xp.from_numpy(rows, dtype))
        np.testing.assert_allclose(host(xp, out), softmax(rows), **tolerances(dtype))


def test_softmax_numerical_gradient(xp):
    gen = np.random.default_rng(7)
    x, g = gen.standard_normal((3, 4)), gen.standard_normal((3, 4))
    layer = xmlp.Softmax()
    layer.forward(xp.from_numpy(x))
    grad = host(xp, layer.backward(xp.from_numpy(g)))
    numeric = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        f_up = (host(xp, layer.predict(xp.from_numpy(up))) * g).sum()
        f_down = (host(xp, layer.predict(xp.from_numpy(down))) * g).sum()
        numeric[i] = (f_up - f_down) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_accuracy(xp, dtype):
    z = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    labels = np.array([1, 0, 0, 1])  # the tie in the last row goes to the first: wrong
    acc = xmlp.accuracy(xp.from_numpy(z, dtype), xp.from_numpy(labels))
    assert tuple(acc.shape) == () and acc.dtype == getattr(xp.ns, dtype)
    assert type(acc) is type(xp.from_numpy(z, dtype))  # an array of the namespace
    assert float(acc) == 0.5
    onehot = np.eye(3)[labels]
    assert float(xmlp.accuracy(xp.from_numpy(z, dtype), xp.from_numpy(onehot, dtype))) == 0.5
    lead = xp.from_numpy(np.stack([z, z[::-1]]), dtype)
    both = xp.from_numpy(np.stack([labels, labels[::-1]]))
    assert float(xmlp.accuracy(lead, both)) == 0.5
    outside = xp.from_numpy(np.array([7, 0, -1, 1]))
    assert float(xmlp.accuracy(xp.from_numpy(z, dtype), outside)) == 0.25  # never match


# -- bad input ----------------------------------------------------------------------------------
def used_loss(xp):
    loss = xmlp.CrossEntropyLoss()
    loss.forward(xp.from_numpy(np.zeros((5, 4))), xp.from_numpy(np.array([0, 1, 2, 3, 0])))
    return loss


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_cross_entropy_rejects_bad_targets(xp, method):
    loss = used_loss(xp)
    z = xp.from_numpy(np.zeros((5, 4)))
    call = getattr(loss, method)
    owner = f"CrossEntropyLoss.{method}"
    floats = xp.from_numpy(np.array([0.0, 1, 2, 3, 0]))
    rejects(TypeError, loss, lambda: call(z, floats), owner, "int64", "floating dtype")
    bools = xp.from_numpy(np.array([True, False, True, True, False]))
    rejects(TypeError, loss, lambda: call(z, bools), "bool", "integer dtype")
    rejects(ValueError, loss, lambda: call(z, xp.from_numpy(np.array([0, 1, 2]))),
            "(5,)", "(3,)")
    rejects(ValueError, loss, lambda: call(z, xp.from_numpy(np.zeros((5, 4), dtype=int))),
            "one-hot of integers")
    rejects(ValueError, loss, lambda: call(z, xp.from_numpy(np.zeros((5, 3)))),
            "(5, 4)", "(5, 3)")
    rejects(TypeError, loss, lambda: call(z, xp.from_numpy(np.zeros((5, 4)), "float32")),
            "float32", "float64")
    other, other_name = foreign(xp, np.array([0, 1, 2, 3, 0]))
    rejects(TypeError, loss, lambda: call(z, other), other_name, ns_name(xp))
    rejects(TypeError, loss, lambda: call(z, [0, 1, 2, 3, 0]), "list")


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_cross_entropy_rejects_bad_logits(xp, method):
    loss = used_loss(xp)
    call = getattr(loss, method)
    t = xp.from_numpy(np.array([0, 1]))
    rejects(TypeError, loss, lambda: call(xp.from_numpy(np.zeros((2, 3), dtype=int)), t),
            "int64", "floating")
    rejects(ValueError, loss, lambda: call(xp.from_numpy(np.float64(1.0)), t), "0-d")
    rejects(ValueError, loss, lambda: call(xp.from_numpy(np.zeros((0, 3))),
                                           xp.from_numpy(np.zeros(0, dtype=int))), "empty")


def test_out_of_range_labels(xp):
    z = xp.from_numpy(np.zeros((4, 3)))
    bad = np.array([[0, 2], [3, 1]]).reshape(-1)  # the label 3 at index 2
    if xp.name in CHECKED:
        loss = used_loss(xp)
        rejects(ValueError, loss, lambda: loss.forward(z, xp.from_numpy(bad)),
                "label 3 at index 2", "[0, 3)")
        rejects(ValueError, loss, lambda: loss.forward(z, xp.from_numpy(np.array([0, -1, 5, 1]))),
                "label -1 at index 1")
        lead = xp.from_numpy(np.zeros((2, 2, 3)))
        rejects(ValueError, loss,
                lambda: loss.forward(lead, xp.from_numpy(np.array([[0, 1], [2, 9]]))),
                "label 9 at index (1, 1)")
        lead = xp.from_numpy(np.zeros((2, 3, 3)))
        rejects(ValueError, loss,  # the index in the labels' own axis order, (row, column)
                lambda: loss.forward(lead, xp.from_numpy(np.array([[0, 1, 2], [7, 0, 1]]))),
                "label 7 at index (1, 0)")
    else:  # checking would cost a device sync or a graph compute: the loss says it instead
        loss = xmlp.CrossEntropyLoss()
        assert math.isnan(float(loss.predict(z, xp.from_numpy(bad))))
        assert math.isnan(float(loss.forward(z, xp.from_numpy(bad))))
        grad = host(xp, loss.backward())
        assert np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, axis=0)).all()


def test_labels_out_of_range_that_are_not_read_give_a_nan_loss():
    """Dask labels are not read (that would compute the graph): an out-of-range label makes
    the loss NaN, in predict (evaluation) as in forward. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed: its labels are the "
                             "ones not read")
    z = da.from_array(np.zeros((4, 3)), chunks=2)
    bad = da.from_array(np.array([0, 2, 3, 1]), chunks=2)
    good = da.from_array(np.array([0, 2, 2, 1]), chunks=2)
    loss = xmlp.CrossEntropyLoss()
    assert math.isnan(float(loss.predict(z, bad)))
    assert math.isnan(float(loss.forward(z, bad)))
    assert float(loss.predict(z, good)) == pytest.approx(math.log(3))


def test_backward_before_forward():
    with pytest.raises(xmlp.ForwardNotCalledError, match="forward"):
        xmlp.CrossEntropyLoss().backward()


def test_accuracy_rejects_bad_input(xp):
    z = xp.from_numpy(np.zeros((4, 3)))
    labels = xp.from_numpy(np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        xmlp.accuracy(z, xp.from_numpy(np.array([0, 1])))
    with pytest.raises(TypeError, match="floating dtype"):
        xmlp.accuracy(z, xp.from_numpy(np.array([0.0, 1, 2, 0])))
    with pytest.raises(TypeError, match="bool"):
        xmlp.accuracy(z, xp.from_numpy(np.array([True, False, True, False])))
    with pytest.raises(TypeError, match="floating"):
        xmlp.accuracy(xp.from_numpy(np.zeros((4, 3), dtype=int)), labels)
    with pytest.raises(ValueError, match="0-d"):
        xmlp.accuracy(xp.from_numpy(np.float64(0.0)), labels)
    other, other_name = foreign(xp, np.array([0, 1, 2, 0]))
    with pytest.raises(TypeError, match=other_name):
        xmlp.accuracy(z, other)


def test_softmax_rejects_bad_input(xp):
    layer = xmlp.Softmax()
    layer.forward(xp.from_numpy(np.zeros((2, 3))))
    rejects(TypeError, layer, lambda: layer.forward(xp.from_numpy(np.zeros((2, 3), dtype=int))),
            "Softmax.forward", "int64")
    rejects(ValueError, layer, lambda: layer.forward(xp.from_numpy(np.float64(1.0))), "0-d")
    rejects(ValueError, layer, lambda: layer.backward(xp.from_numpy(np.zeros((2, 4)))),
            "Softmax.backward", "(2, 3)", "(2, 4)")
    with pytest.raises(xmlp.ForwardNotCalledError):
        xmlp.Softmax().backward(xp.from_numpy(np.zeros((2, 3))))


def test_gradient_rows_of_unread_out_of_range_labels_are_nan():
    """Dask labels are not read: backward after a forward with an out-of-range label gives
    NaN in that sample's gradient row only (lead dims too). Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed: its labels are the "
                             "ones not read")
    loss = xmlp.CrossEntropyLoss()
    z = np.arange(12.0).reshape(4, 3) / 10
    loss.forward(da.from_array(z, chunks=2), da.from_array(np.array([0, 2, 3, 1]), chunks=2))
    grad = np.asarray(loss.backward())
    assert np.isnan(grad[2]).all()
    good = np.delete(np.arange(4), 2)
    expected = (softmax(z) - np.eye(3)[[0, 2, 0, 1]]) / 4
    np.testing.assert_allclose(grad[good], expected[good], rtol=1e-12)
    loss.forward(da.from_array(z.reshape(2, 2, 3), chunks=1),
                 da.from_array(np.array([[0, -1], [2, 1]]), chunks=1))
    grad = np.asarray(loss.backward())
    assert grad.shape == (2, 2, 3)
    assert np.isnan(grad[0, 1]).all() and np.isfinite(np.delete(grad.reshape(4, 3), 1, 0)).all()
