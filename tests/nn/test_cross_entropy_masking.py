"""CrossEntropyLoss with classes masked by -inf logits, and float16 logits far apart: the same
finite loss and gradient on every backend (the label's logit is selected, never multiplied by a
one-hot, and a class of probability 0 adds 0 even where its logit is -inf)."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances

INF = np.inf
# rows with one or two masked classes; no row is masked everywhere
LOGITS = np.array([
    [1.0, -INF, 2.0, 0.5],
    [0.5, 0.1, -INF, -INF],
    [-INF, 3.0, -1.0, 0.0],
])
LABELS = np.array([0, 1, 3])  # never a masked class
PROBS = np.array([  # 0 on every masked class
    [0.25, 0.0, 0.5, 0.25],
    [0.5, 0.5, 0.0, 0.0],
    [0.0, 0.7, 0.1, 0.2],
])


def reference(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """NumPy float64: mean over rows of -sum(t * log_softmax(z)) with 0 * log(0) = 0, and the
    gradient (softmax(z) * sum(t) - t) / N."""
    z = z.astype(np.float64)
    c = z.shape[-1]
    target = np.eye(c)[t] if t.dtype.kind in "iu" else t.astype(np.float64)
    s = z - z.max(axis=-1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    terms = np.where(target != 0, target * np.where(target != 0, logp, 0.0), 0.0)
    loss = -terms.sum(axis=-1).mean()
    grad = (np.exp(logp) * target.sum(axis=-1, keepdims=True) - target) / z.shape[0]
    return float(loss), grad


def target_for(xp, t: np.ndarray, dtype: str):
    return xp.from_numpy(t) if t.dtype.kind in "iu" else xp.from_numpy(t, dtype)


@pytest.mark.parametrize("kind", ["index", "probs"])
def test_masked_classes_give_the_reference_loss_and_gradient(xp, dtype, kind):
    t = LABELS if kind == "index" else PROBS.astype(dtype)
    want_loss, want_grad = reference(LOGITS.astype(dtype), t)
    assert np.isfinite(want_loss)
    loss_fn = xmlp.CrossEntropyLoss()
    z, ts = xp.from_numpy(LOGITS, dtype), target_for(xp, t, dtype)
    loss = loss_fn.forward(z, ts)
    np.testing.assert_allclose(float(loss), want_loss, **tolerances(dtype))
    grad = np.asarray(xp.to_numpy(loss_fn.backward()), dtype=np.float64)
    assert np.isfinite(grad).all()
    assert (grad[np.isinf(LOGITS)] == 0).all()  # softmax of -inf is 0, and so is its target
    np.testing.assert_allclose(grad, want_grad, **tolerances(dtype))
    np.testing.assert_allclose(float(loss_fn.predict(z, ts)), want_loss, **tolerances(dtype))


@pytest.mark.parametrize("kind", ["index", "probs"])
def test_masked_classes_with_leading_dims(xp, kind):
    """(2, 3, C) logits: the same rows as (6, C)."""
    z = np.concatenate([LOGITS, LOGITS[::-1]]).reshape(2, 3, 4)
    t = (np.concatenate([LABELS, LABELS[::-1]]).reshape(2, 3) if kind == "index"
         else np.concatenate([PROBS, PROBS[::-1]]).reshape(2, 3, 4))
    want_loss, want_grad = reference(z.reshape(-1, 4), t.reshape(-1) if kind == "index"
                                     else t.reshape(-1, 4))
    loss_fn = xmlp.CrossEntropyLoss()
    loss = loss_fn.forward(xp.from_numpy(z), target_for(xp, t, "float64"))
    np.testing.assert_allclose(float(loss), want_loss, **tolerances("float64"))
    grad = np.asarray(xp.to_numpy(loss_fn.backward()), dtype=np.float64)
    np.testing.assert_allclose(grad, want_grad.reshape(z.shape), **tolerances("float64"))


@pytest.mark.parametrize("kind", ["index", "probs"])
def test_masked_classes_without_fast_paths(kind):
    """The portable ops on NumPy give what the NumPy fast path gives."""
    t = LABELS if kind == "index" else PROBS
    want_loss, want_grad = reference(LOGITS, t)
    xmlp.ops.set_fast_paths(False)
    try:
        assert type(xmlp.ops.ops_like(LOGITS)) is xmlp.ops.PortableOps
        loss_fn = xmlp.CrossEntropyLoss()
        loss = loss_fn.forward(LOGITS.copy(), t.copy())
        grad = loss_fn.backward()
    finally:
        xmlp.ops.set_fast_paths(True)
    np.testing.assert_allclose(float(loss), want_loss, **tolerances("float64"))
    np.testing.assert_allclose(grad, want_grad, **tolerances("float64"))


def test_masked_classes_match_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed here")
    zt = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.cross_entropy(zt, torch.from_numpy(LABELS))
    want.backward()
    loss_fn = xmlp.CrossEntropyLoss()
    got = loss_fn.forward(LOGITS.copy(), LABELS.copy())
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-14)
    np.testing.assert_allclose(loss_fn.backward(), zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def float16_logits(xp):
    """[[60000, -60000]] as float16 arrays of ``xp`` (skips where it has no float16)."""
    try:
        return xp.from_numpy(np.array([[60000.0, -60000.0]]), "float16")
    except TypeError:
        pytest.skip(f"{xp.name} has no float16")


# NumPy warns that 60000 - (-60000) overflows float16 (to -inf, which the loss handles)
OVERFLOW_WARNING = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


@OVERFLOW_WARNING
@pytest.mark.parametrize("label, want", [(0, 0.0), (1, np.inf)])
def test_float16_logits_far_apart(xp, label, want):
    """[60000, -60000] in float16: the shifted logit -120000 overflows to -inf. The loss is
    0 for the first class and inf (120000 overflows float16, as in PyTorch) for the second;
    the gradient stays finite."""
    z = float16_logits(xp)
    loss_fn = xmlp.CrossEntropyLoss()
    loss = float(loss_fn.forward(z, xp.from_numpy(np.array([label]))))
    assert loss == want
    grad = np.asarray(xp.to_numpy(loss_fn.backward()), dtype=np.float64)
    np.testing.assert_array_equal(grad, np.array([[1.0, 0.0]]) - np.eye(2)[[label]])


@OVERFLOW_WARNING
def test_float16_logits_far_apart_with_probabilities(xp):
    z = float16_logits(xp)
    loss_fn = xmlp.CrossEntropyLoss()
    loss = float(loss_fn.forward(z, xp.from_numpy(np.array([[1.0, 0.0]]), "float16")))
    assert loss == 0.0
    grad = np.asarray(xp.to_numpy(loss_fn.backward()), dtype=np.float64)
    np.testing.assert_array_equal(grad, np.zeros((1, 2)))
