"""xmlp.sklearn's classifier with string class labels under scikit-learn's array API dispatch:
labels that no namespace but NumPy holds stay NumPy (predict returns them as a NumPy array),
everything else (probabilities, training) follows X's namespace, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install scikit-learn)"
)

from sklearn import config_context  # noqa: E402

from xmlp.sklearn import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(solver="sgd", shuffle=False, learning_rate_init=0.05, hidden_layer_sizes=(7,),
              max_iter=3, random_state=0, batch_size=20)


def string_task(n_classes: int, n: int = 60):
    gen = np.random.default_rng(1)
    X = gen.standard_normal((n, 4))
    names = np.array(["ant", "bee", "cat"][:n_classes])
    y = names[np.argmax(X[:, :n_classes] + 0.3 * gen.standard_normal((n, n_classes)), axis=1)]
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_string_labels_under_dispatch_predict_numpy_labels(xp, n_classes):
    X, y = string_task(n_classes)
    ref = MLPClassifier(**PARAMS).fit(X, y)  # NumPy throughout
    Xb = xp.from_numpy(X)
    with config_context(array_api_dispatch=True):
        clf = MLPClassifier(**PARAMS).fit(Xb, y)
        labels = clf.predict(Xb)
        proba = clf.predict_proba(Xb)
        log_proba = clf.predict_log_proba(Xb)
        score = clf.score(Xb, y)
    assert isinstance(clf.classes_, np.ndarray) and clf.classes_.dtype.kind == "U"
    np.testing.assert_array_equal(clf.classes_, ref.classes_)
    assert isinstance(labels, np.ndarray) and labels.dtype == ref.classes_.dtype
    np.testing.assert_array_equal(labels, ref.predict(X))
    assert type(proba) is type(Xb) and type(log_proba) is type(Xb)
    np.testing.assert_allclose(xp.to_numpy(proba), ref.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(xp.to_numpy(log_proba), ref.predict_log_proba(X), rtol=1e-9)
    assert isinstance(score, float) and score == pytest.approx(ref.score(X, y))


def test_string_labels_under_dispatch_partial_fit(xp):
    X, y = string_task(3)
    ref = MLPClassifier(**PARAMS)
    ours = MLPClassifier(**PARAMS)
    Xb = xp.from_numpy(X)
    for lo, hi in ((0, 30), (30, 60)):
        ref.partial_fit(X[lo:hi], y[lo:hi], classes=["ant", "bee", "cat"])
        with config_context(array_api_dispatch=True):
            ours.partial_fit(Xb[lo:hi, ...], y[lo:hi], classes=["ant", "bee", "cat"])
    with config_context(array_api_dispatch=True):
        labels = ours.predict(Xb)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, ref.predict(X))
