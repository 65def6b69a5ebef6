"""MSELoss's and CrossEntropyLoss's state before use and their messages, word for word (NumPy
arrays unless a test says otherwise), as tests/test_messages.py does for the table's errors."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp


def message(exc_type: type[BaseException], call) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


def test_a_new_loss_holds_nothing():
    """As in the seed notebook, a fresh loss's y, t and loss (logits, t and loss) are None
    until forward sets them."""
    mse = xmlp.MSELoss()
    assert (mse.y, mse.t, mse.loss) == (None, None, None)
    ce = xmlp.CrossEntropyLoss()
    assert (ce.logits, ce.t, ce.loss) == (None, None, None)


def test_backward_before_forward_says_to_call_forward():
    for loss in (xmlp.MSELoss(), xmlp.CrossEntropyLoss()):
        assert message(xmlp.ForwardNotCalledError, loss.backward) == (
            "Perform forward pass first.")


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


def refuses_unknown_sizes(loss, method, y, t, keep, want):
    """``loss.<method>(y[keep], t[keep])`` (Dask arrays of nan length after boolean indexing)
    raises ValueError with exactly ``want``, on a fresh loss and again after a call with the
    known sizes went through."""
    call = getattr(loss, method)
    for _ in range(2):
        assert message(ValueError, lambda: call(y[keep], t[keep])) == want
        call(y, t)  # a known size goes through
