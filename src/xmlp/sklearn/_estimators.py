"""MLPClassifier and MLPRegressor: scikit-learn's estimators of the same names, trained by
xmlp on any array namespace."""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels

from ..backend import ArraySpec, to_host
from ..nn.activations import Sigmoid, Softmax
from ._arrays import Place, move, to_spec
from ._base import BaseMLP, _store_params

__all__ = ["MLPClassifier", "MLPRegressor"]

_INDEX = "int64"


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` (parameters,
    fitted attributes, stopping rules, initialisation) trained by :func:`xmlp.fit` with
    :mod:`xmlp.optim`'s SGD or Adam, on NumPy or on any array namespace xmlp supports.

    Targets: binary and multiclass labels (any values :func:`numpy.unique` sorts, strings
    included) with a softmax cross-entropy (:class:`xmlp.CrossEntropyLoss`) for more than two
    classes and a logistic output for two, as scikit-learn does; and multi-label indicator
    matrices (n_samples, n_labels) with one logistic output per label.

    Parameters are scikit-learn's (see its documentation) for the ``"sgd"`` and ``"adam"``
    solvers, plus where the network trains:

    xp : None, str or module
        The array namespace to train in: None trains where X lives (NumPy, or, with
        ``sklearn.set_config(array_api_dispatch=True)``, X's own namespace and device); a
        module or its name ("torch", "cupy", "jax.numpy", "array_api_strict", "dask.array")
        trains there and moves X in and results back.
    device : None or device
        The device of ``xp`` (e.g. "cuda" for torch); None: X's device for X's namespace,
        else the namespace's default.
    dtype : None, "float32" or "float64"
        The parameters' dtype; None: X's floating dtype (other dtypes become float64).

    Fitted attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_``),
    ``n_outputs_``, ``n_layers_``, ``out_activation_``, ``loss_``, ``loss_curve_``,
    ``best_loss_``, ``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``,
    ``coefs_`` / ``intercepts_`` (scikit-learn's layout: coefs_[i] is (fan_in, fan_out), a
    transposed view of the xmlp Linear's weights; assigning an item, a slice or the whole list
    sets the network's parameters) and ``model_``, the trained
    :class:`xmlp.Sequential` (raw outputs: logits).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Fit to data X (n_samples, n_features) and labels y (n_samples,) or a label
        indicator matrix (n_samples, n_labels). Returns self."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y). ``classes`` (all labels across calls) is required on the
        first call and may be left out afterwards. Returns self."""
        return self._fit(X, y, incremental=True, classes=classes)

    # -- targets ---------------------------------------------------------------------------
    def _validate_targets(self, y: Any, incremental: bool, first_pass: bool,
                          classes_arg: Any) -> np.ndarray:
        y_host = to_host(y)
        check_classification_targets(y_host)
        y_type = type_of_target(y_host, input_name="y")
        if y_type == "multiclass-multioutput":
            raise ValueError(
                "Multioutput target data is not supported: give labels (n_samples,) or a "
                "multi-label indicator matrix (n_samples, n_labels) of 0 and 1."
            )
        defined = "classes_" in self.__dict__
        if incremental and not defined and classes_arg is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if incremental and defined and classes_arg is not None:
            if not np.array_equal(to_host(self.classes_), unique_labels(classes_arg)):
                raise ValueError(
                    f"`classes={classes_arg!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_!r}"
                )
        if not defined or (not self.warm_start and not incremental):
            if y_type == "multilabel-indicator":
                classes, kind = np.arange(y_host.shape[1]), y_type
            else:
                classes = unique_labels(y_host if classes_arg is None else classes_arg)
                kind = "multiclass" if len(classes) > 2 else "binary"
            self._define_classes(classes, kind)
        got = (np.arange(y_host.shape[1]) if y_type == "multilabel-indicator"
               else unique_labels(y_host))
        have = to_host(self.classes_)
        if self.warm_start and not incremental:
            if set(got.tolist()) != set(have.tolist()):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {have}, `y` has {got}"
                )
        elif len(np.setdiff1d(got, have, assume_unique=True)):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has {have}. "
                f"'y' has {got}."
            )
        return y_host

    def _define_classes(self, classes: np.ndarray, y_type: str) -> None:
        self._y_type = y_type
        place = self._place
        numeric = classes.dtype.kind in "iufb"
        # numeric labels live where X does (predict returns them from there); other labels
        # (strings, objects) can only be NumPy's
        if numeric and not place.is_numpy:
            self.classes_ = place.xp.asarray(classes, device=place.device)
        else:
            self.classes_ = classes
        self.n_outputs_ = {"multiclass": len(classes), "binary": 1}.get(y_type, len(classes))

    def _encode_targets(self, y: Any, y_host: np.ndarray, spec: ArraySpec) -> Any:
        classes = to_host(self.classes_)
        xp = spec.xp
        if self._y_type == "multilabel-indicator":
            return spec.from_host(y_host.astype(np.float64))
        idx = np.searchsorted(classes, y_host)
        if self._y_type == "multiclass":
            return xp.asarray(idx.astype(_INDEX), device=spec.device)
        positive = (y_host == classes[-1]) if len(classes) > 1 else np.zeros(len(y_host), bool)
        return spec.from_host(positive.astype(np.float64).reshape(-1, 1))

    def _stratify(self, y_host: np.ndarray) -> Any:
        # scikit-learn stratifies the early-stopping split only with one output (binary)
        if self.n_outputs_ != 1 or self._y_type != "binary":
            return None
        return (y_host == to_host(self.classes_)[-1]).astype(np.int64)

    def _out_activation(self) -> str:
        return "softmax" if self._y_type == "multiclass" else "logistic"

    def _predicted_indices(self, z: Any) -> Any:
        """Raw outputs -> class indices (n,) (or the 0/1 indicator matrix for multi-label)."""
        xp = array_api_compat.array_namespace(z)
        if self._y_type == "multiclass":
            return xp.argmax(z, axis=1)
        if self._y_type == "multilabel-indicator":
            return xp.astype(z > 0, xp.int64)
        if self.n_outputs_ == 1 and self.classes_.shape[0] == 1:
            return xp.zeros((z.shape[0],), dtype=xp.int64, device=array_api_compat.device(z))
        return xp.astype(z[:, 0] > 0, xp.int64)

    def _validation_score(self, z: Any, y_val: Any) -> float:
        xp = array_api_compat.array_namespace(z)
        pred = self._predicted_indices(z)
        if self._y_type == "multiclass":
            hits = pred == y_val
        elif self._y_type == "multilabel-indicator":
            hits = xp.all(xp.astype(pred, y_val.dtype) == y_val, axis=1)
        else:
            hits = xp.astype(pred, y_val.dtype) == y_val[:, 0]
        return float(xp.mean(xp.astype(hits, z.dtype)))

    # -- prediction ------------------------------------------------------------------------
    def predict(self, X: Any) -> Any:
        """Labels (n_samples,) from ``classes_`` (or the indicator matrix (n_samples,
        n_labels) for multi-label), in X's namespace and device; labels that only NumPy
        holds (strings, objects) as a NumPy array."""
        z, place = self._raw_outputs(X, "predict")
        idx = self._predicted_indices(z)
        if self._y_type == "multilabel-indicator":
            return move(idx, place)
        classes = self.classes_
        if isinstance(classes, np.ndarray):
            labels = classes[to_host(idx)]
            if classes.dtype.kind not in "iufb":
                # _define_classes kept them NumPy: no other namespace has such a dtype
                return labels
        else:
            cplace = Place.of(classes)
            labels = cplace.xp.take(classes, move(idx, cplace), axis=0)
        return move(labels, place)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (n_samples, n_classes) in the order of ``classes_`` (per label
        for multi-label), in X's namespace and device."""
        z, place = self._raw_outputs(X, "predict_proba")
        return move(self._proba(z), place)

    def predict_log_proba(self, X: Any) -> Any:
        """``log(predict_proba(X))``."""
        z, place = self._raw_outputs(X, "predict_log_proba")
        proba = self._proba(z)
        return move(array_api_compat.array_namespace(proba).log(proba), place)

    def _proba(self, z: Any) -> Any:
        xp = array_api_compat.array_namespace(z)
        if self._y_type == "multiclass":
            return Softmax().predict(z)
        p = Sigmoid().predict(z)
        if self._y_type == "multilabel-indicator":
            return p
        if self.classes_.shape[0] == 1:
            return xp.ones_like(p)
        return xp.concat([1 - p, p], axis=1)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.array_api_support = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` trained by xmlp.

    ``loss``: "squared_error" (half squared error, identity output) or "poisson" (half
    Poisson deviance, log link: predictions are exp of the network's output; y >= 0).
    Targets (n_samples,) or (n_samples, n_outputs). Other parameters and fitted attributes:
    see :class:`MLPClassifier`.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }
    loss: str

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        xp: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        _store_params(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Fit to data X (n_samples, n_features) and targets y (n_samples,) or (n_samples,
        n_outputs). Returns self."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y). Returns self."""
        return self._fit(X, y, incremental=True)

    def _y_validation(self) -> dict[str, Any]:
        return {"y_numeric": True}

    def _validate_targets(self, y: Any, incremental: bool, first_pass: bool,
                          classes: Any) -> None:
        if self.loss == "poisson" and bool(np.any(to_host(y) < 0)):
            raise ValueError("loss='poisson' needs targets y >= 0 (counts, rates)")
        if first_pass:
            self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])

    def _encode_targets(self, y: Any, checked: Any, spec: ArraySpec) -> Any:
        t = to_spec(y, spec)
        return t if t.ndim == 2 else spec.xp.reshape(t, (-1, 1))

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _mean(self, z: Any) -> Any:
        return array_api_compat.array_namespace(z).exp(z) if self.out_activation_ == "exp" else z

    def _validation_score(self, z: Any, y_val: Any) -> float:
        pred = to_host(self._mean(z))
        if not np.isfinite(pred).all():
            return float("nan")
        return float(r2_score(to_host(y_val), pred))

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs), in X's namespace and device."""
        z, place = self._raw_outputs(X, "predict")
        pred = self._mean(z)
        if self.n_outputs_ == 1:
            pred = array_api_compat.array_namespace(pred).reshape(pred, (-1,))
        return move(pred, place)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.array_api_support = True
        return tags
