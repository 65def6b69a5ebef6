"""xmlp.sklearn's ``coefs_`` and ``intercepts_`` are scikit-learn's: assigning an item (or a
slice, or the whole list) changes the network, as it changes scikit-learn's model, with the
library's checks (shape: ValueError; namespace, dtype, device: TypeError; a refused assignment
changes nothing), on every backend."""

from __future__ import annotations

import copy
import itertools
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install scikit-learn)"
)

from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

import xmlp  # noqa: E402
from tests.conftest import tolerances  # noqa: E402
from xmlp.backend import to_host  # noqa: E402
from xmlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(solver="sgd", shuffle=False, learning_rate_init=0.05, momentum=0.9, alpha=1e-3,
              hidden_layer_sizes=(6, 5), max_iter=2, random_state=0, batch_size=20)
UNITS = [4, 6, 5]


def data(n: int = 40):
    gen = np.random.default_rng(3)
    X = gen.standard_normal((n, 4))
    y = np.argmax(X[:, :3] + 0.3 * gen.standard_normal((n, 3)), axis=1)
    return X, y


def new_weights(n_outputs: int, seed: int = 7):
    """Host float64 (coefs, intercepts) for a (4, 6, 5, n_outputs) network."""
    gen = np.random.default_rng(seed)
    units = [*UNITS, n_outputs]
    coefs = [gen.standard_normal((a, b)) * 0.5 for a, b in itertools.pairwise(units)]
    intercepts = [gen.standard_normal(b) * 0.5 for b in units[1:]]
    return coefs, intercepts


def forward(X, coefs, intercepts):
    """The raw outputs of the relu network, in NumPy float64."""
    a = X
    for i, (w, b) in enumerate(zip(coefs, intercepts, strict=True)):
        a = a @ w + b
        if i < len(coefs) - 1:
            a = np.maximum(a, 0.0)
    return a


def fitted(est_cls, xp=None, dtype="float64"):
    """(estimator trained in backend ``xp`` (None: NumPy), X, y)."""
    X, y = data()
    if est_cls is MLPRegressor:
        y = X[:, 0] - X[:, 1] * X[:, 2]
    where = {} if xp is None else {"xp": xp.module.__name__, "device": xp.device}
    est = est_cls(**PARAMS, **where, dtype=dtype)
    return est.fit(X, y), X, y


def host_params(est):
    return [np.array(to_host(a), copy=True) for a in [*est.coefs_, *est.intercepts_]]


def test_item_assignment_sets_the_network(xp, dtype):
    clf, X, _ = fitted(MLPClassifier, xp, dtype)
    coefs, intercepts = new_weights(3)
    before = clf.predict_proba(X)
    for i in range(3):
        clf.coefs_[i] = xp.from_numpy(coefs[i], dtype)
        clf.intercepts_[i] = xp.from_numpy(intercepts[i], dtype)
    z = forward(X, coefs, intercepts)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    proba = clf.predict_proba(X)
    tol = tolerances(dtype)
    np.testing.assert_allclose(proba, expected, **tol)
    assert not np.allclose(proba, before)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(z, axis=1))
    for got, want in zip(clf.coefs_ + clf.intercepts_, coefs + intercepts, strict=True):
        assert type(got) is type(xp.asarray(0.0))
        np.testing.assert_allclose(xp.to_numpy(got), want, **tol)


def test_item_assignment_sets_the_regressor(xp):
    reg, X, _ = fitted(MLPRegressor, xp)
    coefs, intercepts = new_weights(1, seed=11)
    view = reg.coefs_  # a list held by the caller writes through as well
    view[-1] = xp.from_numpy(coefs[-1])
    reg.coefs_[-3:-1] = [xp.from_numpy(c) for c in coefs[:2]]  # a slice
    reg.intercepts_[:] = [xp.from_numpy(b) for b in intercepts]
    np.testing.assert_allclose(reg.predict(X), forward(X, coefs, intercepts)[:, 0],
                               **tolerances("float64"))


def test_whole_assignment_sets_the_network(xp):
    clf, X, _ = fitted(MLPClassifier, xp)
    coefs, intercepts = new_weights(3, seed=5)
    clf.coefs_ = [xp.from_numpy(c) for c in coefs]
    clf.intercepts_ = tuple(xp.from_numpy(b) for b in intercepts)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(forward(X, coefs, intercepts), 1))
    # the network owns copies: changing the assigned arrays afterwards changes nothing
    source = [xp.from_numpy(c) for c in coefs]
    clf.coefs_ = source
    before = clf.predict_proba(X)
    if xp.name == "numpy":
        source[0][...] = 0.0
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_training_goes_on_from_the_assigned_weights_as_in_sklearn(xp):
    # scikit-learn's MLP after the same assignment, then the same SGD epoch (momentum
    # buffers kept by both): the same weights
    X, y = data()
    ours = MLPClassifier(**PARAMS, xp=xp.module.__name__, device=xp.device)
    theirs = SkMLPClassifier(**PARAMS)
    for est in (ours, theirs):
        est.partial_fit(X, y, classes=[0, 1, 2])
    coefs, intercepts = new_weights(3, seed=2)
    for i in range(3):
        ours.coefs_[i] = xp.from_numpy(coefs[i])
        ours.intercepts_[i] = xp.from_numpy(intercepts[i])
        theirs.coefs_[i] = coefs[i].copy()
        theirs.intercepts_[i] = intercepts[i].copy()
    for est in (ours, theirs):
        est.partial_fit(X, y)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                         strict=True):
        np.testing.assert_allclose(xp.to_numpy(got), want, **tolerances("float64"))


def test_a_refused_assignment_changes_nothing(xp):
    clf, X, _ = fitted(MLPClassifier, xp)
    params, proba = host_params(clf), clf.predict_proba(X)
    good = [xp.from_numpy(np.zeros(tuple(c.shape))) for c in clf.coefs_]
    # shapes: ValueError
    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape \(6, 5\), got \(5, 6\)"):
        clf.coefs_[1] = xp.from_numpy(np.zeros((5, 6)))
    with pytest.raises(ValueError, match=r"intercepts_\[0\] must have shape \(6,\)"):
        clf.intercepts_[0] = xp.from_numpy(np.zeros(5))
    with pytest.raises(ValueError, match="one array per layer"):
        clf.coefs_[0:2] = good[:1]
    with pytest.raises(ValueError, match="expected 3 arrays"):
        clf.coefs_ = good[:2]
    with pytest.raises(ValueError, match=r"coefs_\[2\] must have shape"):  # the last is bad
        clf.coefs_ = [*good[:2], xp.from_numpy(np.zeros((5, 2)))]
    # dtype, namespace, not an array: TypeError
    with pytest.raises(TypeError, match=r"coefs_\[0\] has dtype float32"):
        clf.coefs_[0] = xp.from_numpy(np.zeros((4, 6)), "float32")
    with pytest.raises(TypeError, match=r"intercepts_\[2\] is a list"):
        clf.intercepts_[2] = [0.0, 0.0, 0.0]
    if xp.name != "numpy":
        with pytest.raises(TypeError, match=r"coefs_\[0\] is a numpy array"):
            clf.coefs_[0] = np.zeros((4, 6))
        with pytest.raises(TypeError, match=r"coefs_\[2\] is a numpy array"):
            clf.coefs_ = [*good[:2], np.zeros((5, 3))]
    with pytest.raises(TypeError, match="list of arrays"):
        clf.intercepts_ = xp.from_numpy(np.zeros((3, 6)))
    # the number of layers is fixed
    for change in (lambda v: v.append(good[0]), lambda v: v.pop(), lambda v: v.clear(),
                   lambda v: v.__delitem__(0), lambda v: v.insert(0, good[0]),
                   lambda v: v.extend(good), lambda v: v.reverse()):
        with pytest.raises(TypeError, match="one array per layer"):
            change(clf.coefs_)
    with pytest.raises(IndexError):
        clf.coefs_[3] = good[0]
    for got, want in zip(host_params(clf), params, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


@pytest.mark.xp_only("torch")
def test_assignment_refuses_a_tensor_that_records_a_graph(xp):
    clf, _, _ = fitted(MLPClassifier, xp)
    before = host_params(clf)
    w = xp.module.zeros((4, 6), dtype=xp.module.float64, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad"):
        clf.coefs_[0] = w
    np.testing.assert_array_equal(host_params(clf)[0], before[0])


@pytest.mark.xp_only("torch")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("est_cls", [MLPClassifier, MLPRegressor])
def test_trained_compiled_on_torch_as_eagerly(xp, est_cls, monkeypatch):
    """A long enough fit compiles its step on PyTorch (compile="auto"; here at once): the
    penalised losses trace whole, and the weights are the eager fit's."""
    from xmlp.training.torch_program import TorchProgram

    eager = host_params(fitted(est_cls, xp)[0])
    calls = []
    run = TorchProgram.__call__
    monkeypatch.setattr(TorchProgram, "__call__",
                        lambda self, *args: calls.append(1) or run(self, *args))
    monkeypatch.setattr(xmlp.TrainStep, "compile_after", 0.0)
    compiled = host_params(fitted(est_cls, xp)[0])
    assert calls  # the steps after the first
    for got, want in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_views_copy_and_pickle_as_plain_lists():
    clf, _, _ = fitted(MLPClassifier)
    for made in (copy.copy(clf.coefs_), copy.deepcopy(clf.coefs_),
                 pickle.loads(pickle.dumps(clf.coefs_)), clf.coefs_.copy(), clf.coefs_[:],
                 clf.coefs_ + clf.intercepts_):
        assert type(made) is list
    deep = copy.deepcopy(clf.intercepts_)
    deep[0][...] = 0.0  # a copy: the network is untouched
    assert not np.all(clf.intercepts_[0] == 0.0)
    assert isinstance(clf.coefs_, list) and len(clf.coefs_) == 3
    with pytest.raises(AttributeError, match="before fit"):
        MLPClassifier().coefs_  # noqa: B018
