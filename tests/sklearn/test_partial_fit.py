"""xmlp.sklearn's ``partial_fit`` on batches that hold only some of the classes (``classes=``
given on the first call), as scikit-learn's MLPClassifier does it: no error, probabilities
over every class, each label mapped to its own output; the same weights as scikit-learn's,
step for step, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install scikit-learn)")

from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from tests.conftest import tolerances
from xmlp.sklearn import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(solver="sgd", shuffle=False, learning_rate_init=0.05, momentum=0.9, alpha=1e-3,
              hidden_layer_sizes=(7,), random_state=0, batch_size=10)


def labelled(names, n: int = 120):
    """X (n, 4) and labels from ``names`` (one per class, in the order of the class index)."""
    gen = np.random.default_rng(4)
    X = gen.standard_normal((n, 4))
    k = len(names)
    index = np.argmax(X[:, :k] + 0.3 * gen.standard_normal((n, k)), axis=1)
    return X, np.asarray(names)[index]


def batches_missing_classes(X, y, groups, size: int = 20):
    """One partial_fit batch per group of labels: the first ``size`` samples whose label is in
    the group (steps of one shape: JAX compiles once)."""
    for group in groups:
        keep = np.flatnonzero(np.isin(y, group))[:size]
        assert len(keep) == size
        yield X[keep], y[keep]


def same_as_sklearn(xp, names, classes, groups):
    X, y = labelled(names)
    ours = MLPClassifier(**PARAMS, xp=xp.module.__name__, device=xp.device)
    theirs = SkMLPClassifier(**PARAMS)
    seen = 0
    for k, (Xb, yb) in enumerate(batches_missing_classes(X, y, groups)):
        seen += len(yb)
        assert len(np.unique(yb)) < len(names)  # the batch lacks a class
        extra = {"classes": classes} if k == 0 else {}
        ours.partial_fit(Xb, yb, **extra)
        theirs.partial_fit(Xb, yb, **extra)
    tol = tolerances("float64")
    assert list(ours.classes_) == list(theirs.classes_) == sorted(names)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                         strict=True):
        np.testing.assert_allclose(xp.to_numpy(got), want, **tol)
    proba = ours.predict_proba(X)
    assert proba.shape == (len(X), len(names))  # every class, also those a batch lacked
    np.testing.assert_allclose(proba, theirs.predict_proba(X), **tol)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, **tol)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.t_ == theirs.t_ == seen
    return ours, X, y


def test_multiclass_batches_lacking_classes(xp):
    # first batch: classes 0 and 1 only; then 2 only (the last output); then 1 and 2
    same_as_sklearn(xp, [0, 1, 2], [0, 1, 2], [[0, 1], [2], [1, 2]])


def test_string_labels_given_unsorted_batches_lacking_classes(xp):
    # classes= in any order: classes_ is sorted and each label trains its own output
    ours, X, y = same_as_sklearn(xp, ["ant", "bee", "cat"], ["cat", "ant", "bee"],
                                 [["cat"], ["ant", "bee"], ["bee"]])
    # the first batch held only "cat": its output (the last column) rose for those samples
    proba = ours.predict_proba(X)
    assert proba[y == "cat", 2].mean() > proba[y != "cat", 2].mean()


def test_binary_batches_of_one_class(xp):
    # each batch holds a single class; classes_ and the one logistic output as scikit-learn
    ours, _, _ = same_as_sklearn(xp, ["no", "yes"], ["yes", "no"], [["yes"], ["no"], ["yes"]])
    assert ours.n_outputs_ == 1 and ours.out_activation_ == "logistic"


def test_first_batch_of_one_class_then_fit_goes_on(xp):
    # a first batch of a single class out of three, then the whole data: as scikit-learn
    X, y = labelled([0, 1, 2])
    ours = MLPClassifier(**PARAMS, xp=xp.module.__name__, device=xp.device)
    theirs = SkMLPClassifier(**PARAMS)
    for est in (ours, theirs):
        first = np.flatnonzero(y == 1)[:20]
        est.partial_fit(X[first], y[first], classes=np.array([0, 1, 2]))
        est.partial_fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                               **tolerances("float64"))
