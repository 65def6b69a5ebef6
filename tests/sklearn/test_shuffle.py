"""xmlp.sklearn's ``shuffle`` (default True) and ``random_state``: the batch order is drawn
from random_state, the same random_state gives the same model, another gives another order,
and a shuffled epoch visits every sample once, with its own target; on every backend.

(The comparisons with scikit-learn in test_sklearn.py run with shuffle=False, where the batch
order is fixed: these tests cover the estimators' default.)"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install scikit-learn)")

from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from tests.conftest import tolerances
from xmlp.backend import to_host
from xmlp.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N = 40
PARAMS = dict(solver="sgd", learning_rate_init=0.05, momentum=0.0, alpha=1e-3,
              hidden_layer_sizes=(6,), random_state=0, batch_size=10, max_iter=1)


def data():
    gen = np.random.default_rng(6)
    X = gen.standard_normal((N, 4))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    return X, y


def where(xp):
    return {"xp": xp.module.__name__, "device": xp.device}


def weights(est):
    return [to_host(a) for a in [*est.coefs_, *est.intercepts_]]


def assert_same(a, b, **tol):
    for p, q in zip(weights(a), weights(b), strict=True):
        if tol:
            np.testing.assert_allclose(p, q, **tol)
        else:
            np.testing.assert_array_equal(p, q)


def largest_difference(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(weights(a), weights(b),
                                                              strict=True))


def test_shuffle_is_the_default():
    assert MLPClassifier().shuffle is True and MLPRegressor().shuffle is True


@pytest.mark.parametrize("cls", [MLPRegressor, MLPClassifier])
def test_the_same_random_state_gives_the_same_model(xp, cls):
    X, y = data()
    if cls is MLPClassifier:
        y = (y > 0).astype(np.int64)
    params = {**PARAMS, "shuffle": True, "max_iter": 3, **where(xp)}
    a, b = cls(**params).fit(X, y), cls(**params).fit(X, y)
    assert_same(a, b)
    assert a.loss_curve_ == b.loss_curve_
    # and not the model of shuffle=False: the batches differ
    c = cls(**{**params, "shuffle": False}).fit(X, y)
    assert largest_difference(a, c) > 1e-6


def test_shuffle_changes_the_batches_of_one_epoch(xp):
    # one epoch of 4 batches: shuffled, the batches are others than X's row order gives
    X, y = data()
    shuffled = MLPRegressor(**PARAMS, shuffle=True, **where(xp)).fit(X, y)
    in_order = MLPRegressor(**PARAMS, shuffle=False, **where(xp)).fit(X, y)
    assert largest_difference(shuffled, in_order) > 1e-6
    # in order, it is scikit-learn's own epoch (the same initialisation)
    theirs = SkMLPRegressor(**PARAMS, shuffle=False).fit(X, y)
    for p, q in zip(weights(in_order), theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(p, q, **tolerances("float64"))


def start_from(est, X, y, start):
    """``est`` after one partial_fit, its weights then set to ``start`` (host arrays)."""
    est.partial_fit(X, y)
    spec = est.model_.layers[0].spec
    n = len(start) // 2
    est.coefs_ = [spec.from_host(w) for w in start[:n]]
    est.intercepts_ = [spec.from_host(b) for b in start[n:]]
    return est


def test_another_random_state_gives_another_order(xp):
    # The same starting weights (set through coefs_ / intercepts_) and SGD without momentum
    # (no optimizer state): what differs between the two random states is the batch order.
    X, y = data()
    gen = np.random.default_rng(9)
    start = [gen.standard_normal((4, 6)) * 0.5, gen.standard_normal((6, 1)) * 0.5,
             gen.standard_normal(6) * 0.5, gen.standard_normal(1) * 0.5]
    for shuffle in (True, False):
        a, b = (start_from(MLPRegressor(**{**PARAMS, "random_state": seed}, shuffle=shuffle,
                                        **where(xp)), X, y, start) for seed in (0, 1))
        assert_same(a, b)  # the same weights ...
        a.partial_fit(X, y)  # ... one epoch each
        b.partial_fit(X, y)
        if shuffle:
            assert largest_difference(a, b) > 1e-6
        else:
            assert_same(a, b)  # in order, random_state does not matter any more


def test_a_shuffled_epoch_visits_every_sample_once_with_its_target(xp):
    # With a tiny learning rate an epoch of plain SGD moves the weights by lr times the sum of
    # the batch gradients, all taken at (almost) the starting point: the same sum in any
    # order, to O(lr^2). An epoch that dropped or repeated a sample, or paired one with
    # another's target, would move them differently at O(lr).
    X, y = data()
    gen = np.random.default_rng(2)
    start = [gen.standard_normal((4, 6)) * 0.5, gen.standard_normal((6, 1)) * 0.5,
             gen.standard_normal(6) * 0.5, gen.standard_normal(1) * 0.5]
    params = {**PARAMS, "learning_rate_init": 1e-7, "alpha": 0.0, **where(xp)}
    moved = []
    for shuffle in (True, False):
        est = start_from(MLPRegressor(**params, shuffle=shuffle), X, y, start)
        est.partial_fit(X, y)
        moved.append([w - s for w, s in zip(weights(est), start, strict=True)])
    scale = max(float(np.max(np.abs(d))) for d in moved[1])
    assert scale > 1e-9
    for d_shuffled, d_in_order in zip(*moved, strict=True):
        np.testing.assert_allclose(d_shuffled, d_in_order, rtol=1e-5, atol=1e-5 * scale)
    # the same test sees a lost batch: three of the four batches move the weights otherwise
    est = start_from(MLPRegressor(**params, shuffle=False), X, y, start)
    est.partial_fit(X[10:], y[10:])
    lost = [w - s for w, s in zip(weights(est), start, strict=True)]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(lost, moved[1], strict=True)) > (
        1e-2 * scale)


def test_full_batch_shuffle_is_the_unshuffled_epoch(xp):
    # one batch of every sample: shuffled or not, the same gradient up to the order of its sum
    X, y = data()
    params = {**PARAMS, "batch_size": N, "max_iter": 3, **where(xp)}
    shuffled = MLPRegressor(**params, shuffle=True).fit(X, y)
    in_order = MLPRegressor(**params, shuffle=False).fit(X, y)
    assert_same(shuffled, in_order, rtol=1e-9, atol=1e-12)
