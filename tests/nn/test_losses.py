"""MSELoss on every backend: its value and gradient against NumPy, what it refuses and its
messages; and what both losses share: nothing held before forward, backward before
forward refused."""

from __future__ import annotations

from typing import Any

import array_api_strict as strict
import numpy as np
import pytest
from array_api_compat import array_namespace, is_array_api_obj

import xmlp
from tests.helpers import (
    data,
    foreign,
    message,
    ns_name,
    refuses_unknown_sizes,
    rejects,
)


# -- MSELoss -----------------------------------------------------------------------------------
def test_mse_gradient_for_several_outputs(xp):
    y = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    t = np.zeros_like(y)
    loss = xmlp.MSELoss()
    value = loss.forward(xp.from_numpy(y), xp.from_numpy(t))
    np.testing.assert_allclose(float(value), np.mean(y**2))
    # dL/dy = 2 (y - t) / y.size: the notebook's / N would be 3x too large here
    np.testing.assert_allclose(xp.to_numpy(loss.backward()), 2 * y / y.size)


def test_mse_loss_is_not_converted(xp, dtype):
    """forward returns what the namespace's mean returns (a 0-d array of y's namespace and
    dtype; a NumPy scalar on NumPy), never a Python float: converting would sync a GPU."""
    y, t = xp.from_numpy(np.ones((2, 1)), dtype), xp.from_numpy(np.zeros((2, 1)), dtype)
    loss_fn = xmlp.MSELoss()
    for loss in (loss_fn.forward(y, t), loss_fn.predict(y, t)):
        assert type(loss) is not float  # np.float64 subclasses float; a plain float is the bug
        assert is_array_api_obj(loss) and array_namespace(loss) is xp.ns
        assert loss.dtype == getattr(xp.ns, dtype)
        assert tuple(loss.shape) == ()
        assert float(loss) == 1.0
    assert loss_fn.loss is not None and type(loss_fn.loss) is not float


# -- what MSELoss refuses ----------------------------------------------------------------------
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


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_mse_loss_names_y_in_its_messages(method):
    """A prediction that is not a floating array is named y, with the method it was passed
    to (also after a call that went through)."""
    loss = xmlp.MSELoss()
    call = getattr(loss, method)
    for _ in range(2):
        assert message(TypeError, lambda: call(np.ones(3, dtype=np.int64), np.ones(3))) == (
            f"MSELoss.{method}: y has dtype int64; xmlp layers take real floating arrays. "
            "Convert with numpy.astype(x, numpy.float64).")
        assert message(TypeError, lambda: call([1.0, 2.0], np.ones(2))) == (
            f"MSELoss.{method}: y must be an array, got list.")
        call(np.ones(3), np.zeros(3))


def test_mse_loss_refuses_a_tensor_that_requires_grad_after_a_plain_one():
    """The spec remembered from a plain tensor does not let a tensor that requires grad
    through. Runs wherever torch is installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed: only torch has "
                                "autograd")
    loss = xmlp.MSELoss()
    plain = torch.ones(3, dtype=torch.float64)
    loss.forward(plain, plain)
    tracked = torch.ones(3, dtype=torch.float64, requires_grad=True)
    assert message(TypeError, lambda: loss.forward(tracked, plain)) == (
        "MSELoss.forward: y is a torch tensor that requires grad; xmlp computes gradients "
        "itself (backward()) and must not record an autograd graph, which would grow with "
        "every step. Pass x.detach() (no copy).")
    assert loss.y is plain  # the refused call stored nothing


@pytest.mark.parametrize("method", ["forward", "predict"])
def test_mse_loss_says_when_a_dask_size_is_unknown(method):
    """Dask arrays after boolean indexing have a nan length: the mean cannot be taken, and
    the message gives the fix. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    y = da.from_array(np.linspace(-1, 1, 8).reshape(8, 1), chunks=4)
    t = da.from_array(np.zeros((8, 1)), chunks=4)
    keep = y[:, 0] > -2
    refuses_unknown_sizes(xmlp.MSELoss(), method, y, t, keep, (
        f"MSELoss.{method}: y has an unknown size, shape (nan, 1), so the mean cannot be "
        "taken; on Dask call .compute_chunk_sizes() on the input first."))


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


# -- both losses -------------------------------------------------------------------------------
def test_a_new_loss_holds_nothing():
    """As in the seed notebook, a fresh loss's y, t and loss (logits, t and loss) are None
    until forward sets them, and so is everything else it stores (MSELoss's diff,
    CrossEntropyLoss's probs, target and valid), as after clear_state()."""
    mse = xmlp.MSELoss()
    assert (mse.y, mse.t, mse.loss) == (None, None, None)
    ce = xmlp.CrossEntropyLoss()
    assert (ce.logits, ce.t, ce.loss) == (None, None, None)
    for loss in (mse, ce):
        stored = {name: getattr(loss, name) for name in loss.state_names}
        assert stored == dict.fromkeys(loss.state_names)


def test_backward_before_forward_says_to_call_forward():
    for loss in (xmlp.MSELoss(), xmlp.CrossEntropyLoss()):
        assert message(xmlp.ForwardNotCalledError, loss.backward) == (
            "Perform forward pass first.")


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
