"""CrossEntropyLoss, Softmax and accuracy on every backend against the NumPy float64 reference,
numerical gradient checks and PyTorch's CrossEntropyLoss; what CrossEntropyLoss refuses, with its
messages word for word: what each names (the method, "logits", "t (the target)"), class indices
against class probabilities, the label range (read only where reading is free: NumPy,
array-api-strict, torch on the CPU), the specs and label facts it remembers between calls (which
must not leak from one namespace, device or array type to another), and the namespace's
indexing dtype the labels are cast to.

Tests that need torch or Dask (its unread labels, its unknown sizes) run wherever that library is
installed (pytest.importorskip)."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

import xmlp
import xmlp.nn.losses
from tests.conftest import tolerances
from tests.helpers import foreign, message, ns_name, refuses_unknown_sizes, rejects
from tests.reference import cross_entropy, softmax

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


METHODS = pytest.mark.parametrize("method", ["forward", "predict"])


def used_loss(xp):
    """A loss that has run forward once on xp's float64 logits and int64 labels, so that it
    holds a spec and the facts of those labels."""
    loss = xmlp.CrossEntropyLoss()
    loss.forward(xp.from_numpy(np.zeros((5, 4))), xp.from_numpy(np.array([0, 1, 2, 3, 0])))
    return loss


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_cross_entropy_rejects_bad_targets(xp, method):
    loss = used_loss(xp)
    z = xp.from_numpy(np.zeros((5, 4)))
    call = getattr(loss, method)
    owner = f"CrossEntropyLoss.{method}"
    floats = xp.from_numpy(np.array([0.0, 1, 2, 3, 0]))
    rejects(TypeError, loss, lambda: call(z, floats), owner, "int64", "floating dtype")


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_cross_entropy_rejects_bad_logits(xp, method):
    loss = used_loss(xp)
    call = getattr(loss, method)
    t = xp.from_numpy(np.array([0, 1]))
    owner = f"CrossEntropyLoss.{method}"
    assert rejects(ValueError, loss, lambda: call(xp.from_numpy(np.float64(1.0)), t)) == (
        f"{owner}: logits must have shape (..., C) with ndim >= 1, got a 0-d array")
    assert rejects(ValueError, loss, lambda: call(xp.from_numpy(np.zeros((0, 3))),
                                                  xp.from_numpy(np.zeros(0, dtype=int)))) == (
        f"{owner}: logits are empty (shape (0, 3))")


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


# -- what the messages name -----------------------------------------------------------------
@METHODS
def test_logits_that_are_not_floating_arrays_are_named_logits(xp, method):
    """Logits of an integer dtype, or not an array at all, are named "logits" with the method
    they were passed to, on a fresh loss and on one that remembers a spec."""
    ns = ns_name(xp)
    t = xp.from_numpy(np.array([0, 1]))
    for loss in (xmlp.CrossEntropyLoss(), used_loss(xp)):
        call = getattr(loss, method)
        ints = xp.from_numpy(np.zeros((2, 3), dtype=np.int64))
        assert rejects(TypeError, loss, partial(call, ints, t)) == (
            f"CrossEntropyLoss.{method}: logits has dtype int64; xmlp layers take real floating "
            f"arrays. Convert with {ns}.astype(x, {ns}.float64).")
        assert rejects(TypeError, loss, partial(call, [[0.0, 1.0, 2.0]] * 2, t)) == (
            f"CrossEntropyLoss.{method}: logits must be an array, got list.")


@METHODS
def test_targets_of_the_wrong_kind_or_namespace_are_named_with_the_method(xp, method):
    """A target that is not an array, or an array of another namespace, is "t (the target)"
    of that method, with the conversion to make."""
    ns = ns_name(xp)
    loss = used_loss(xp)
    call = getattr(loss, method)
    z = xp.from_numpy(np.zeros((5, 4)))
    assert rejects(TypeError, loss, lambda: call(z, [0, 1, 2, 3, 0])) == (
        f"CrossEntropyLoss.{method}: t (the target) must be a {ns} array, got list. Convert "
        f"it with {ns}.asarray(...).")
    other, other_name = foreign(xp, np.array([0, 1, 2, 3, 0]))
    assert rejects(TypeError, loss, lambda: call(z, other)) == (
        f"CrossEntropyLoss.{method}: t (the target) is a {other_name} array but the logits are "
        f"{ns} arrays. Convert the target with {ns}.asarray(...) so that it matches the logits.")


@METHODS
def test_class_indices_of_the_wrong_shape_say_which_shape(xp, method):
    """Class indices must have shape logits.shape[:-1] (all the leading dims, not the first
    one); integers of the logits' shape get the one-hot hint, other shapes no hint."""
    loss = used_loss(xp)
    call = getattr(loss, method)
    owner = f"CrossEntropyLoss.{method}"
    z = xp.from_numpy(np.zeros((5, 4)))
    assert rejects(ValueError, loss, lambda: call(z, xp.from_numpy(np.array([0, 1, 2])))) == (
        f"{owner}: class indices t must have shape logits.shape[:-1] = (5,), got (3,)")
    one_hot = xp.from_numpy(np.eye(4, dtype=np.int64)[[0, 1, 2, 3, 0]])
    assert rejects(ValueError, loss, lambda: call(z, one_hot)) == (
        f"{owner}: class indices t must have shape logits.shape[:-1] = (5,), got (5, 4) (a "
        "one-hot of integers? convert it to the logits' dtype to use it as class "
        "probabilities)")
    lead = xp.from_numpy(np.zeros((2, 3, 4)))
    assert rejects(ValueError, loss, lambda: call(lead, xp.from_numpy(np.zeros((2, 4), int)))) == (
        f"{owner}: class indices t must have shape logits.shape[:-1] = (2, 3), got (2, 4)")
    # one label per row of the first dim only: logits.shape[:1], or [:-2], is not enough
    assert rejects(ValueError, loss, lambda: call(lead, xp.from_numpy(np.zeros(2, int)))) == (
        f"{owner}: class indices t must have shape logits.shape[:-1] = (2, 3), got (2,)")


@METHODS
def test_targets_that_are_neither_indices_nor_probabilities_say_what_to_give(xp, dtype, method):
    """A bool target, floating class indices (shape logits.shape[:-1], all the leading dims),
    probabilities of another dtype or shape: each message names the dtypes (of t and of the
    logits, float32 or float64 each) or shapes, and the conversion to make."""
    ns = ns_name(xp)
    other = "float32" if dtype == "float64" else "float64"
    loss = xmlp.CrossEntropyLoss()
    call = getattr(loss, method)
    owner = f"CrossEntropyLoss.{method}"
    z = xp.from_numpy(np.zeros((5, 4)), dtype)
    call(z, xp.from_numpy(np.array([0, 1, 2, 3, 0])))
    bools = xp.from_numpy(np.array([True, False, True, True, False]))
    assert rejects(TypeError, loss, lambda: call(z, bools)) == (
        f"{owner}: t has dtype bool; give class indices (an integer dtype) or class "
        f"probabilities (the logits' dtype {dtype}).")
    lead = xp.from_numpy(np.zeros((2, 3, 4)), dtype)
    floats = xp.from_numpy(np.zeros((2, 3)), other)
    assert rejects(TypeError, loss, lambda: call(lead, floats)) == (
        f"{owner}: t of shape (2, 3) holds class indices but has the floating dtype {other}; "
        f"convert it with {ns}.astype(t, {ns}.int64) (probability targets have the logits' "
        "shape (2, 3, 4)).")
    probs = xp.from_numpy(np.full((5, 4), 0.25), other)
    assert rejects(TypeError, loss, lambda: call(z, probs)) == (
        f"{owner}: class probabilities t have dtype {other} but the logits {dtype}; convert "
        f"with {ns}.astype(t, {ns}.{dtype}).")
    narrow = xp.from_numpy(np.zeros((5, 3)), dtype)
    assert rejects(ValueError, loss, lambda: call(z, narrow)) == (
        f"{owner}: class probabilities t must have the logits' shape (5, 4), got (5, 3) (class "
        "indices have shape (5,) and an integer dtype)")


@METHODS
def test_an_out_of_range_label_is_named_with_the_method(xp, method):
    """Where labels are read, the first label outside [0, C) is named with the method it was
    passed to; elsewhere the loss is NaN."""
    loss = used_loss(xp)
    call = getattr(loss, method)
    z = xp.from_numpy(np.zeros((4, 3)))
    bad = xp.from_numpy(np.array([0, 2, 3, 1]))
    if xp.name in CHECKED:
        assert rejects(ValueError, loss, lambda: call(z, bad)) == (
            f"CrossEntropyLoss.{method}: t holds the label 3 at index 2, outside [0, 3) for "
            "logits with 3 classes")
    else:
        assert math.isnan(float(call(z, bad)))


# -- what is read where -------------------------------------------------------------------------
def test_torch_cpu_labels_are_read_and_checked():
    """torch tensors on the CPU are read for free: an out-of-range label raises (as on NumPy)
    rather than giving a NaN loss. Runs wherever torch is installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    loss = xmlp.CrossEntropyLoss()
    z = torch.zeros((4, 3), dtype=torch.float64)
    for _ in range(2):  # on a fresh loss, then after a call that went through
        assert message(ValueError, partial(loss.forward, z, torch.tensor([0, -1, 5, 1]))) == (
            "CrossEntropyLoss.forward: t holds the label -1 at index 1, outside [0, 3) for "
            "logits with 3 classes")
        loss.forward(z, torch.tensor([0, 1, 2, 1]))


def test_labels_on_another_torch_device_are_not_taken_for_cpu_labels():
    """After a CPU call, logits and labels on another torch device (the meta device, a device
    without readable values, stands in for a GPU here) get that device's own spec and are not
    read: the loss and gradient are on that device. Labels left on the CPU are refused, and
    CPU labels are read again afterwards. Runs wherever torch is installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    loss = xmlp.CrossEntropyLoss()
    z = torch.zeros((3, 4), dtype=torch.float64)
    loss.forward(z, torch.tensor([0, 1, 2]))
    z_meta = torch.zeros((3, 4), dtype=torch.float64, device="meta")
    out = loss.forward(z_meta, torch.tensor([0, 1, 2], device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == ()
    grad = loss.backward()
    assert grad.device.type == "meta" and tuple(grad.shape) == (3, 4)
    assert message(TypeError, lambda: loss.forward(z_meta, torch.tensor([0, 1, 2]))) == (
        "CrossEntropyLoss.forward: t (the target) is on device cpu but the logits are on meta. "
        "Move it with array_api_compat.to_device(t, device(type='meta')); xmlp never transfers "
        "silently.")
    assert message(ValueError, lambda: loss.forward(z, torch.tensor([0, 1, 4]))) == (
        "CrossEntropyLoss.forward: t holds the label 4 at index 2, outside [0, 4) for logits "
        "with 4 classes")


def test_labels_read_or_not_follow_each_call_between_numpy_and_dask():
    """What the loss remembers of the last labels belongs to their namespace: NumPy labels
    after Dask ones are read (out of range: ValueError), Dask labels after NumPy ones are not
    (NaN loss). Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed: its labels are the "
                             "ones not read")
    z = np.zeros((4, 3))
    bad = np.array([0, 2, 3, 1])
    good = np.array([0, 2, 2, 1])
    dz, dbad, dgood = (da.from_array(a, chunks=2) for a in (z, bad, good))
    loss = xmlp.CrossEntropyLoss()
    assert float(loss.forward(dz, dgood)) == pytest.approx(math.log(3))
    assert message(ValueError, lambda: loss.forward(z, bad)) == (
        "CrossEntropyLoss.forward: t holds the label 3 at index 2, outside [0, 3) for logits "
        "with 3 classes")
    loss = xmlp.CrossEntropyLoss()
    assert float(loss.forward(z, good)) == pytest.approx(math.log(3))
    assert math.isnan(float(loss.forward(dz, dbad)))


def test_array_labels_are_read_after_a_numpy_scalar_label():
    """A NumPy integer scalar as the label of one sample (logits of shape (C,)) gives the
    loss; the NumPy array labels of the next call are then read as usual: the facts kept of
    the scalar's type are not applied to another type."""
    loss = xmlp.CrossEntropyLoss()
    assert float(loss.forward(np.zeros(3), np.int64(1))) == pytest.approx(math.log(3))
    assert message(ValueError, lambda: loss.forward(np.zeros((2, 3)), np.array([1, 3]))) == (
        "CrossEntropyLoss.forward: t holds the label 3 at index 1, outside [0, 3) for logits "
        "with 3 classes")


def test_a_numpy_scalar_label_out_of_range_is_refused_as_an_array_label_is():
    """np.int64(5) for logits of 3 classes is read and refused, as np.array(5) is: NumPy scalars
    cost nothing to read (before, they went the unread GPU way and gave a NaN loss)."""
    loss = xmlp.CrossEntropyLoss()
    for label in (np.int64(5), np.array(5), np.int8(-1)):
        got = message(ValueError, lambda label=label: loss.forward(np.zeros(3), label))
        assert got == (f"CrossEntropyLoss.forward: t holds the label {int(label)} at index (), "
                       "outside [0, 3) for logits with 3 classes")
    assert loss.logits is None  # refused: nothing stored


# -- the spec remembered between calls ------------------------------------------------------------
def test_masked_logits_are_refused_after_plain_ones():
    """A numpy.ma.MaskedArray of the same dtype is not taken for the plain NumPy logits of the
    last call: its mask would be ignored."""
    loss = xmlp.CrossEntropyLoss()
    t = np.array([0, 1])
    loss.forward(np.zeros((2, 3)), t)
    masked = np.ma.masked_array(np.zeros((2, 3)), mask=[[0, 1, 0], [0, 0, 0]])
    assert rejects(TypeError, loss, lambda: loss.forward(masked, t)) == (
        "CrossEntropyLoss.forward: logits is a numpy.ma.MaskedArray; xmlp layers ignore masks. "
        "Fill or drop the masked values first (x.filled(...), or numpy.asarray(x) to use the "
        "data as it is).")


def test_logits_that_require_grad_are_refused_after_plain_ones():
    """As MSELoss does (tests/nn/test_losses.py), the spec remembered from plain tensors
    must not let logits that require grad through. Runs wherever torch is installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed: only torch has "
                                "autograd")
    loss = xmlp.CrossEntropyLoss()
    t = torch.tensor([0, 1, 2])
    loss.forward(torch.zeros((3, 4), dtype=torch.float64), t)
    tracked = torch.zeros((3, 4), dtype=torch.float64, requires_grad=True)
    assert message(TypeError, lambda: loss.forward(tracked, t)) == (
        "CrossEntropyLoss.forward: logits is a torch tensor that requires grad; xmlp computes "
        "gradients itself (backward()) and must not record an autograd graph, which would "
        "grow with every step. Pass x.detach() (no copy).")


@METHODS
def test_logits_of_unknown_dask_size_say_how_to_fix_it(method):
    """Dask logits after boolean indexing have a nan length: the message says so and gives
    the fix, on a fresh loss and after a call that went through. Runs wherever Dask is
    installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    z = da.from_array(np.linspace(-1, 1, 12).reshape(4, 3), chunks=2)
    t = da.from_array(np.array([0, 1, 2, 0]), chunks=2)
    refuses_unknown_sizes(xmlp.CrossEntropyLoss(), method, z, t, z[:, 0] > -2, (
        f"CrossEntropyLoss.{method}: logits have an unknown size, shape (nan, 3); on Dask "
        "call .compute_chunk_sizes() on the input first."))


# -- the indexing dtype ---------------------------------------------------------------------------
@pytest.mark.parametrize("label_dtype", ["uint8", "int8"])
def test_small_integer_labels_with_many_classes(xp, label_dtype):
    """Labels of a small integer dtype are cast to the indexing dtype before use: with more
    classes than that dtype holds, each label still picks its one class (loss and gradient
    as the reference's)."""
    gen = np.random.default_rng(3)
    z = gen.standard_normal((3, 300))
    labels = np.array([5, 100, 127], dtype=label_dtype)
    loss = xmlp.CrossEntropyLoss()
    value = loss.forward(xp.from_numpy(z), xp.from_numpy(labels))
    ref_loss, ref_grad = cross_entropy(z, labels)
    np.testing.assert_allclose(float(value), ref_loss, **tolerances("float64"))
    np.testing.assert_allclose(np.asarray(xp.to_numpy(loss.backward())), ref_grad,
                               **tolerances("float64"))


def test_the_indexing_dtype_is_looked_up_when_not_yet_known(xp, monkeypatch):
    """With nothing remembered of any namespace (a fresh process), the labels are cast to the
    namespace's indexing dtype as looked up: int32 labels give the reference's loss."""
    monkeypatch.setattr(xmlp.nn.target_checks, "_INDEX_DTYPES", {})
    z = np.random.default_rng(4).standard_normal((4, 3))
    labels = np.array([2, 0, 1, 2], dtype=np.int32)
    for _ in range(2):  # looked up, then remembered
        value = xmlp.CrossEntropyLoss().forward(xp.from_numpy(z), xp.from_numpy(labels))
        np.testing.assert_allclose(float(value), cross_entropy(z, labels)[0],
                                   **tolerances("float64"))


def test_the_indexing_dtype_of_a_device_without_int64(monkeypatch):
    """array-api-strict's no_x64 device (as JAX without x64) indexes with int32: after a call
    on the default device, int32 labels there are kept int32 (int64 is not allowed there), and
    still checked. Each device's indexing dtype is looked up anew (nothing remembered yet)."""
    s = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    monkeypatch.setattr(xmlp.nn.target_checks, "_INDEX_DTYPES", {})
    loss = xmlp.CrossEntropyLoss()
    assert float(loss.forward(s.asarray(np.zeros((2, 3))), s.asarray(np.array([0, 1])))) == (
        pytest.approx(math.log(3)))
    dev = s.Device("no_x64")
    z = s.asarray(np.zeros((2, 3), dtype=np.float32), device=dev)
    out = loss.forward(z, s.asarray(np.array([0, 2], dtype=np.int32), device=dev))
    assert out.device == dev and float(out) == pytest.approx(math.log(3), rel=1e-6)
    assert loss.backward().device == dev
    assert message(ValueError, lambda: loss.forward(
        z, s.asarray(np.array([0, 5], dtype=np.int32), device=dev))) == (
        "CrossEntropyLoss.forward: t holds the label 5 at index 1, outside [0, 3) for logits "
        "with 3 classes")


def test_numpy_and_torch_each_get_their_own_indexing_dtype(monkeypatch):
    """NumPy and torch CPU arrays are both on a device written "cpu": each namespace keeps its
    own indexing dtype, so losses on one and then the other both work. Runs wherever torch is
    installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    monkeypatch.setattr(xmlp.nn.target_checks, "_INDEX_DTYPES", {})
    z = np.random.default_rng(5).standard_normal((4, 3))
    labels = np.array([2, 0, 1, 2])
    ref = cross_entropy(z, labels)[0]
    for make in (np.asarray, torch.asarray, np.asarray, torch.asarray):
        value = xmlp.CrossEntropyLoss().forward(make(z), make(labels))
        np.testing.assert_allclose(float(value), ref, **tolerances("float64"))


def test_probabilities_of_batched_logits_say_the_index_shape_and_reshape_on_torch():
    """Logits (B, N, C) with probabilities of another shape name the index shape (B, N); with
    probabilities of their own shape the loss folds both to (B * N, C), on torch too (whose
    reshape accepts -1 but no other negative size)."""
    z = np.zeros((2, 3, 4))
    with pytest.raises(ValueError) as info:
        xmlp.CrossEntropyLoss().forward(z, np.full((2, 3, 5), 0.2))
    assert str(info.value) == (
        "CrossEntropyLoss.forward: class probabilities t must have the logits' shape "
        "(2, 3, 4), got (2, 3, 5) (class indices have shape (2, 3) and an integer dtype)")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    loss = xmlp.CrossEntropyLoss()
    value = loss.forward(torch.zeros((2, 3, 4), dtype=torch.float64),
                         torch.full((2, 3, 4), 0.25, dtype=torch.float64))
    assert abs(float(value) - np.log(4.0)) < 1e-12
    assert tuple(loss.backward().shape) == (2, 3, 4)


# -- targets refused like inputs ----------------------------------------------------------------
def test_masked_class_indices_are_refused_not_read_around_their_mask():
    """A masked array of labels is a TypeError, as a masked input or MSE target is: its range
    check would skip the masked labels (7 under the mask went through, giving a garbage loss)."""
    loss = xmlp.CrossEntropyLoss()
    z = np.array([[0.0, 0.0, 5.0]] * 4)
    labels = np.ma.masked_array([0, 1, 2, 7], mask=[0, 0, 0, 1])
    assert rejects(TypeError, loss, lambda: loss.forward(z, labels)) == (
        "CrossEntropyLoss.forward: t (the target) is a numpy.ma.MaskedArray; xmlp layers ignore "
        "masks. Fill or drop the masked values first (x.filled(...), or numpy.asarray(x) to use "
        "the data as it is).")


def test_probability_targets_in_another_byte_order_say_so():
    """Big-endian probabilities against float64 logits: the byte order is named (the message
    said "dtype float64 but the logits float64")."""
    loss = xmlp.CrossEntropyLoss()
    t = np.full((4, 3), 1 / 3, dtype=">f8")
    assert rejects(TypeError, loss, lambda: loss.predict(np.zeros((4, 3)), t)) == (
        "CrossEntropyLoss.predict: t (the target) has dtype float64 in non-native byte order "
        "('>f8'); xmlp takes arrays in this machine's byte order. Convert with "
        "numpy.astype(x, numpy.float64).")


def test_probability_targets_that_require_grad_are_refused():
    """A torch probability target that requires grad is refused, as MSELoss's target is: the
    loss and gradient recorded an autograd graph before."""
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    loss = xmlp.CrossEntropyLoss()
    z = torch.zeros(4, 3, dtype=torch.float64)
    t = torch.full((4, 3), 1 / 3, dtype=torch.float64, requires_grad=True)
    got = rejects(TypeError, loss, lambda: loss.forward(z, t))
    assert got.startswith("CrossEntropyLoss.forward: t (the target) is a torch tensor that "
                          "requires grad;")
    assert float(loss.forward(z, t.detach())) == pytest.approx(math.log(3))
