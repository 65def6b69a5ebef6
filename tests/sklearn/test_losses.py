"""The output losses of xmlp.sklearn's estimators (src/xmlp/sklearn/_losses.py) at extreme raw
outputs (logits, log-means up to +-1e4), on every backend, in float32 and float64: each value
and gradient equals a NumPy float64 reference (and scikit-learn's own loss functions), finite
wherever the exact value is within the dtype's range, and accurate to rounding where it is
tiny (a confident, right prediction)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install scikit-learn)")

from scipy.special import expit, logsumexp, softmax, xlogy
from sklearn._loss.loss import HalfBinomialLoss, HalfPoissonLoss
from sklearn._loss.loss import HalfSquaredError as SkHalfSquaredError

from xmlp import CrossEntropyLoss
from xmlp.backend import to_host
from xmlp.sklearn._losses import (
    OUTPUT_LOSSES,
    BinaryLogLoss,
    HalfPoissonDeviance,
    HalfSquaredError,
)

# Where exp overflows to inf (the Poisson loss beyond the dtype's range) NumPy warns, as it
# should; on Dask in its worker threads, where np.errstate does not reach.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")

Z = [-1e4, -700.0, -100.0, -40.0, -1.5, 0.0, 1.5, 40.0, 100.0, 1e4]


# -- per element references in NumPy float64 ------------------------------------------------
def binary_ref(z, t):
    # t * softplus(-z) + (1 - t) * softplus(z): no cancellation for t in {0, 1}
    value = t * np.logaddexp(0.0, -z) + (1.0 - t) * np.logaddexp(0.0, z)
    grad = (1.0 - t) * expit(z) - t * expit(-z)  # sigmoid(z) - t, as accurately
    return value, grad


def poisson_ref(z, t):
    with np.errstate(over="ignore"):
        return np.exp(z) - t * z + xlogy(t, t) - t, np.exp(z) - t


def squared_ref(z, t):
    return 0.5 * (z - t) ** 2, z - t


CASES = {
    "binary": (BinaryLogLoss, binary_ref, [0.0, 1.0, 0.25]),
    "poisson": (HalfPoissonDeviance, poisson_ref, [0.0, 1.0, 3.5]),
    "squared": (HalfSquaredError, squared_ref, [0.0, 1.0, -2.5]),
}


def in_dtype(ref, dtype):
    """The float64 reference rounded to ``dtype`` (inf where it is beyond its range)."""
    with np.errstate(over="ignore"):
        return np.asarray(ref, dtype=np.float64).astype(dtype)


def tolerance(dtype):
    """A few roundings, relative; below the normal range (which a backend may flush to
    zero) absolute."""
    info = np.finfo(dtype)
    return {"rtol": 64 * info.eps, "atol": info.tiny}


def run(loss, z, t):
    """(value, gradient) of one forward and backward, as host arrays."""
    value = loss.forward(z, t)
    grad = loss.backward()
    return to_host(value), to_host(grad)


@pytest.mark.parametrize("case", list(CASES))
def test_each_element_at_extreme_raw_outputs(xp, dtype, case):
    cls, ref, targets = CASES[case]
    zz, tt = np.meshgrid(np.asarray(Z), np.asarray(targets), indexing="ij")
    zz = zz.astype(dtype).astype(np.float64)  # the inputs as the dtype holds them
    tt = tt.astype(dtype).astype(np.float64)
    ref_value, ref_grad = ref(zz, tt)
    tol = tolerance(dtype)
    for i, j in np.ndindex(zz.shape):  # one sample, one output: the value is the element's
        loss = cls()
        value, grad = run(loss, xp.from_numpy(zz[i:i + 1, j:j + 1], dtype),
                          xp.from_numpy(tt[i:i + 1, j:j + 1], dtype))
        want_value = in_dtype(ref_value[i, j], dtype)
        want_grad = in_dtype(ref_grad[i, j], dtype)
        what = f"{case} at z={zz[i, j]}, t={tt[i, j]} ({dtype})"
        assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype), what
        assert not np.isnan(value) and not np.isnan(grad).any(), what
        # finite wherever the exact value is
        assert np.isfinite(value) == np.isfinite(want_value), what
        assert np.isfinite(grad).all() == np.isfinite(want_grad), what
        np.testing.assert_allclose(value, want_value, **tol, err_msg=what)
        np.testing.assert_allclose(grad[0, 0], want_grad, **tol, err_msg=what)


@pytest.mark.parametrize("case", list(CASES))
def test_batches_are_means_over_samples_of_sums_over_outputs(xp, dtype, case):
    cls, ref, targets = CASES[case]
    gen = np.random.default_rng(0)
    # (n, k) = (4, 3): raw outputs from the extremes, finite-valued for every loss
    zz = gen.choice([z for z in Z if z <= 40.0], size=(4, 3)).astype(dtype).astype(np.float64)
    tt = gen.choice(targets, size=(4, 3)).astype(dtype).astype(np.float64)
    ref_value, ref_grad = ref(zz, tt)
    value, grad = run(cls(), xp.from_numpy(zz, dtype), xp.from_numpy(tt, dtype))
    tol = tolerance(dtype)
    np.testing.assert_allclose(value, in_dtype(ref_value.sum() / 4, dtype), **tol)
    np.testing.assert_allclose(grad, in_dtype(ref_grad / 4, dtype), **tol)
    assert np.isfinite(value) and np.isfinite(grad).all()


@pytest.mark.parametrize("case", list(CASES))
def test_same_as_sklearns_loss_functions(case):
    # scikit-learn's per-sample losses (HalfPoissonLoss without its constant term
    # xlogy(t, t) - t), on one output; values to 1e-12 (scikit-learn's binomial loss rounds
    # a confident, right prediction's 4e-18 to 0), gradients to rounding
    cls, _, targets = CASES[case]
    sk = {"binary": HalfBinomialLoss(), "poisson": HalfPoissonLoss(),
          "squared": SkHalfSquaredError()}[case]
    z = np.repeat(np.asarray(Z), len(targets))
    t = np.tile(np.asarray(targets, dtype=np.float64), len(Z))
    if case == "poisson":
        z = z[z <= 100.0]  # exp(1e4) is beyond float64: inf in both, compared above
        t = t[: len(z)]
    sk_value = sk.loss(y_true=t, raw_prediction=z)
    if case == "poisson":
        sk_value = sk_value + sk.constant_to_optimal_zero(t)
    sk_grad = sk.gradient(y_true=t, raw_prediction=z)
    for i in range(len(z)):
        value, grad = run(cls(), z[i:i + 1, None], t[i:i + 1, None])
        np.testing.assert_allclose(value, sk_value[i], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad[0, 0], sk_grad[i], rtol=1e-14, atol=np.finfo(float).tiny)


def test_poisson_overflows_to_inf_as_the_exact_value_does():
    # exp(1e4) is beyond float64: the loss and its gradient are +inf, never NaN (xmlp.fit
    # then stops: the estimators raise scikit-learn's "non-finite" ValueError)
    value, grad = run(HalfPoissonDeviance(), np.array([[1e4]]), np.array([[0.0]]))
    assert value == np.inf and grad[0, 0] == np.inf
    sk = HalfPoissonLoss()
    assert sk.loss(y_true=np.array([0.0]), raw_prediction=np.array([1e4]))[0] == np.inf


def test_softmax_cross_entropy_at_extreme_logits(xp, dtype):
    # the classifier's loss for more than two classes (xmlp.CrossEntropyLoss, class indices)
    assert OUTPUT_LOSSES["softmax"] is CrossEntropyLoss
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 40.0], [-40.0, -100.0, 700.0],
                  [0.0, 0.0, 0.0]]).astype(dtype).astype(np.float64)
    labels = np.array([0, 0, 2, 1])
    ref_value = np.mean(logsumexp(z, axis=1) - z[np.arange(4), labels])
    ref_grad = (softmax(z, axis=1) - np.eye(3)[labels]) / 4
    value, grad = run(CrossEntropyLoss(), xp.from_numpy(z, dtype), xp.from_numpy(labels))
    np.testing.assert_allclose(value, in_dtype(ref_value, dtype), **tolerance(dtype))
    np.testing.assert_allclose(grad, in_dtype(ref_grad, dtype), **tolerance(dtype))
    assert np.isfinite(value) and np.isfinite(grad).all()
