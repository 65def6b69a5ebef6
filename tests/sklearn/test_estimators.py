"""xmlp.sklearn: scikit-learn's own estimator checks, the same training as scikit-learn's MLP
(draw for draw and step for step where the formulas agree), every backend against it, array
API dispatch, model selection tools and pickling."""

from __future__ import annotations

import copy
import functools
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install scikit-learn)"
)

from sklearn import config_context  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

from tests.conftest import tolerances  # noqa: E402
from xmlp.backend import to_host  # noqa: E402
from xmlp.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402

# Short trainings stop at max_iter on purpose: scikit-learn warns, as it should.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ROOT = Path(__file__).resolve().parents[2]


def check_id(value: object) -> str:
    """"MLPClassifier(max_iter=100)", "check_array_api_input(array_namespace=torch,...)"."""
    if isinstance(value, functools.partial):
        args = ",".join(f"{k}={v}" for k, v in value.keywords.items())
        return f"{value.func.__name__}({args})" if args else value.func.__name__
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value).replace("\n", "").replace(" ", "")


def sklearn_checks() -> list[object]:
    """scikit-learn's checks of both estimators as pytest params. Those whose result depends on
    the array libraries installed (check_array_api_*) run in every backend's session; the
    others give the same result everywhere and run where numpy is active (once in CI)."""
    params = []
    for est in (MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)):
        for case in estimator_checks_generator(
            est, legacy=True, expected_failed_checks=expected_failed_checks(est), mark="xfail"
        ):
            (estimator, check), marks = (case, []) if isinstance(case, tuple) else (
                case.values, list(case.marks))
            if not getattr(check, "func", check).__name__.startswith("check_array_api"):
                marks.append(pytest.mark.requires_backends("numpy"))
            params.append(pytest.param(estimator, check, marks=marks,
                                       id=f"{check_id(estimator)}-{check_id(check)}"))
    return params


# -- scikit-learn's conformance suite ----------------------------------------------------------
@pytest.mark.parametrize(("estimator", "check"), sklearn_checks())
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_not_applicable_checks_are_documented():
    page = (ROOT / "docs" / "sklearn.md").read_text()
    for est in (MLPClassifier(), MLPRegressor()):
        for name, reason in expected_failed_checks(est).items():
            assert name in page and reason, name


# -- the same training as scikit-learn's MLP -------------------------------------------------
def task_data(task: str, n: int = 60, seed: int = 0):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((n, 4))
    if task == "multiclass":
        y = np.argmax(X[:, :3] + 0.3 * gen.standard_normal((n, 3)), axis=1)
    elif task == "binary":
        y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    elif task == "multilabel":
        y = (X[:, :3] + 0.3 * gen.standard_normal((n, 3)) > 0).astype(np.int64)
    elif task == "poisson":
        y = gen.poisson(np.exp(0.5 * X[:, 0]))
    elif task == "regression2":
        y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    else:
        y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    return X, y


def pair(task: str, **params):
    """(xmlp estimator, scikit-learn's) with the same parameters."""
    if task in ("multiclass", "binary", "multilabel"):
        return MLPClassifier(**params), SkMLPClassifier(**params)
    loss = "poisson" if task == "poisson" else "squared_error"
    return MLPRegressor(loss=loss, **params), SkMLPRegressor(loss=loss, **params)


SGD = dict(solver="sgd", shuffle=False, learning_rate_init=0.05, momentum=0.9, alpha=1e-3,
           hidden_layer_sizes=(7, 5), max_iter=6, random_state=0, batch_size=16)
# for the runs on every backend: batches of one shape (JAX compiles once per shape), few steps
# (Dask builds and computes a graph per step)
SHORT = {**SGD, "batch_size": 20, "max_iter": 3}


def assert_same_weights(ours, theirs, **tol):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):
        assert tuple(a.shape) == b.shape
        np.testing.assert_allclose(to_host(a), b, **tol)


TASKS = ["multiclass", "binary", "multilabel", "regression", "regression2", "poisson"]


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("task", TASKS)
def test_sgd_matches_sklearn_step_for_step(task, activation):
    X, y = task_data(task)
    # (regression2 without the L2 term, whose share of the loss is the same in both)
    alpha = 0.0 if task == "regression2" else SGD["alpha"]
    ours, theirs = pair(task, activation=activation, **{**SGD, "alpha": alpha})
    ours.fit(X, y)
    theirs.fit(X, y)
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-12)
    # scikit-learn reports the squared error averaged over outputs, xmlp summed
    scale = y.shape[1] if task == "regression2" else 1
    np.testing.assert_allclose(ours.loss_curve_, np.multiply(theirs.loss_curve_, scale),
                               rtol=1e-9)
    assert (ours.n_iter_, ours.t_, ours.n_layers_, ours.n_outputs_, ours.out_activation_) == (
        theirs.n_iter_, theirs.t_, theirs.n_layers_, theirs.n_outputs_, theirs.out_activation_)
    np.testing.assert_allclose(to_host(ours.predict(X)) if task != "binary" else 0,
                               theirs.predict(X) if task != "binary" else 0, rtol=1e-9)
    if task == "binary":
        assert (ours.predict(X) == theirs.predict(X)).all()
    if hasattr(theirs, "predict_proba"):
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9,
                                   atol=1e-15)
        assert list(ours.classes_) == list(theirs.classes_)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-9)


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_schedules_and_stopping_match_sklearn(schedule, nesterov):
    # Without momentum the update is the same formula whatever the learning rate does; tol
    # large enough that the adaptive schedule divides the rate and then stops early.
    X, y = task_data("multiclass")
    params = {**SGD, "momentum": 0.0, "nesterovs_momentum": nesterov,
              "learning_rate": schedule, "max_iter": 40, "tol": 5e-2, "n_iter_no_change": 2}
    ours, theirs = pair("multiclass", **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-12)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)
    assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_early_stopping_matches_sklearn(task):
    X, y = task_data(task, n=80)
    params = {**SGD, "early_stopping": True, "validation_fraction": 0.25, "max_iter": 30,
              "n_iter_no_change": 3, "tol": 1e-3}
    ours, theirs = pair(task, **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    assert ours.best_loss_ is None
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-12)  # the best epoch's, restored


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_adam_matches_sklearn_to_its_epsilon(task):
    # torch's Adam (xmlp.optim) adds eps to sqrt(v_hat), scikit-learn to sqrt(v) before the
    # bias correction: the same steps up to terms of the order of eps (with the default
    # eps=1e-8 the weights here differ by up to 6e-6).
    X, y = task_data(task)
    params = {**SGD, "solver": "adam", "learning_rate_init": 0.01, "epsilon": 1e-14}
    ours, theirs = pair(task, **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert_same_weights(ours, theirs, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def test_partial_fit_and_warm_start_match_sklearn():
    X, y = task_data("multiclass")
    ours, theirs = pair("multiclass", **SGD)
    for _ in range(3):
        ours.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
        theirs.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
    ours.partial_fit(X[40:], y[40:])
    theirs.partial_fit(X[40:], y[40:])
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_ == 1
    assert ours.t_ == theirs.t_ == 140

    ours, theirs = pair("regression", **{**SGD, "warm_start": True})
    X, y = task_data("regression")
    for est in (ours, theirs):
        est.fit(X, y)
        est.set_params(max_iter=3)
        est.fit(X, y)
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-12)


def test_fitted_attributes_and_layout():
    X, y = task_data("multiclass")
    clf = MLPClassifier(hidden_layer_sizes=(6, 5), max_iter=3, random_state=1).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 6), (6, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (5,), (3,)]
    first = clf.model_.layers[0]
    assert np.shares_memory(clf.coefs_[0], first.weights)  # a view, not a copy
    np.testing.assert_array_equal(clf.coefs_[0], first.weights.T)
    assert clf.n_features_in_ == 4 and clf.n_layers_ == 4 and clf.n_outputs_ == 3
    assert len(clf.loss_curve_) == clf.n_iter_ == 3
    # setting coefs_ (scikit-learn's layout) sets the network's weights
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    np.testing.assert_array_equal(clf.predict_proba(X), np.full((60, 3), 1 / 3))
    with pytest.raises(ValueError, match="shape"):
        clf.coefs_ = [np.zeros((2, 2))] * 3


# -- every backend, trained where xp= says, against scikit-learn's NumPy float64 run -----------
@pytest.mark.parametrize("task", ["multiclass", "regression2"])
def test_every_backend_trains_like_sklearn(xp, dtype, task):
    X, y = task_data(task)
    ours, theirs = pair(task, **SHORT)
    theirs.fit(X, y)
    ours.set_params(xp=xp.module.__name__, device=xp.device, dtype=dtype)
    ours.fit(X, y)
    assert type(ours.coefs_[0]) is type(xp.asarray(0.0))
    tol = tolerances(dtype) if dtype == "float64" else {"rtol": 2e-3, "atol": 2e-4}
    assert_same_weights(ours, theirs, **tol)
    pred = ours.predict(X)  # NumPy in, NumPy out, wherever it trained
    assert isinstance(pred, np.ndarray)
    np.testing.assert_allclose(pred, theirs.predict(X), **tol)


def test_array_api_dispatch_trains_on_the_data_namespace(xp):
    X, y = task_data("multiclass")
    ref = MLPClassifier(**SHORT).fit(X, y)
    Xb = xp.from_numpy(X)
    yb = xp.from_numpy(y)
    with config_context(array_api_dispatch=True):
        clf = MLPClassifier(**SHORT).fit(Xb, yb)
        proba, labels = clf.predict_proba(Xb), clf.predict(Xb)
        score = clf.score(Xb, yb)
        if xp.name != "numpy":
            with pytest.raises(ValueError, match="must use the same namespace"):
                clf.predict(X)
    assert type(proba) is type(Xb) and type(labels) is type(Xb)
    np.testing.assert_allclose(xp.to_numpy(proba), ref.predict_proba(X), rtol=1e-9)
    np.testing.assert_array_equal(xp.to_numpy(labels), ref.predict(X))
    assert isinstance(score, float) and score == pytest.approx(ref.score(X, y))
    # without dispatch, the same estimator takes NumPy and gives NumPy
    assert isinstance(clf.predict_proba(X), np.ndarray)


# -- scikit-learn's model selection tools ------------------------------------------------------
def test_pipeline_grid_search_cross_val_score_clone():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(8,), learning_rate_init=0.05, max_iter=100, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)],
                               "mlpclassifier__learning_rate_init": [1e-2, 5e-2]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__hidden_layer_sizes"] in [(4,), (8,)]
    assert grid.best_estimator_.score(X, y) > 0.85
    est = MLPRegressor(hidden_layer_sizes=(3, 2), xp="numpy", dtype="float32")
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "model_")


@pytest.mark.requires_backends("numpy")  # the same on every backend: once, in CI's numpy run
def test_grid_search_in_worker_processes():
    # joblib's loky workers receive the estimator pickled and send fitted ones back
    X, y = make_regression(n_samples=60, n_features=4, noise=0.1, random_state=0)
    grid = GridSearchCV(MLPRegressor(max_iter=30, random_state=0),
                        {"alpha": [1e-4, 1e-2]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    assert np.isfinite(grid.best_score_)


# -- pickling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_pickle_resumes_training_exactly(xp, solver):
    X, y = task_data("multiclass")
    params = {**SHORT, "solver": solver, "xp": xp.module.__name__, "device": xp.device}
    a = MLPClassifier(**params).partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(b.predict_proba(X), a.predict_proba(X))
    np.testing.assert_array_equal(copy.deepcopy(a).predict_proba(X), a.predict_proba(X))
    for est in (a, b):
        est.partial_fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert type(p) is type(q)
        np.testing.assert_array_equal(xp.to_numpy(p), xp.to_numpy(q))


# -- errors ------------------------------------------------------------------------------------
def test_bad_parameters_and_calls():
    X, y = task_data("multiclass")
    with pytest.raises(InvalidParameterError, match="solver"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="cannot import"):
        MLPClassifier(xp="no_such_array_library").fit(X, y)
    with pytest.raises(TypeError, match="xp='numpy'"):
        MLPClassifier(xp=np).fit(X, y)
    with pytest.raises(TypeError, match="float32 or float64"):
        MLPClassifier(dtype="int32").fit(X, y)
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)
    with pytest.raises(ValueError, match="y >= 0"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(60))
    clf = MLPClassifier(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="4 features"):
        clf.predict(X[:, :3])


def test_a_rejected_call_leaves_the_estimator_as_it_was():
    X, y = task_data("multiclass")
    clf = MLPClassifier(**SGD).fit(X, y)
    before = {k: v for k, v in vars(clf).items()}
    weights = [np.array(c, copy=True) for c in clf.coefs_]
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="4 features"):
        clf.partial_fit(X[:, :3], y)
    assert vars(clf).keys() == before.keys()
    assert all(vars(clf)[k] is v for k, v in before.items())
    for a, b in zip(clf.coefs_, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = MLPClassifier(**SGD)
    with pytest.raises(ValueError, match="classes not in"):
        fresh.partial_fit(X, y, classes=[0, 1])  # y also holds 2
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    assert not [k for k in vars(fresh) if k.endswith("_") or k.startswith("_")]


def test_non_finite_training_is_a_value_error():
    X, y = task_data("regression")
    est = MLPRegressor(solver="sgd", learning_rate_init=1e3, momentum=0.0, max_iter=50,
                       random_state=0)
    with pytest.raises(ValueError, match="non-finite"), np.errstate(over="ignore",
                                                                     invalid="ignore"):
        est.fit(X * 1e3, y * 1e3)


def test_convergence_warning_at_max_iter():
    X, y = task_data("regression")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPRegressor(max_iter=2, random_state=0).fit(X, y)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_xmlp_imports_without_sklearn():
    code = "import sys, xmlp; assert 'sklearn' not in sys.modules, 'xmlp imported sklearn'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_make_classification_multilabel_predict_format():
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    Y = np.stack([y, 1 - y, y], axis=1)
    clf = MLPClassifier(max_iter=5, random_state=0).fit(X, Y)
    pred = clf.predict(X)
    assert pred.shape == Y.shape and pred.dtype == Y.dtype
    assert clf.predict_proba(X).shape == Y.shape
