"""What MLPClassifier and MLPRegressor share: parameters, validation, the network, the
training driver (epochs of :func:`xmlp.fit` with one optimizer), stopping rules as in
scikit-learn, the scikit-learn weight layout and pickling."""

from __future__ import annotations

import operator
import sys
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from array_api_compat import array_namespace
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import optim
from ..backend import ArraySpec, dtype_name, to_host
from ..nn.containers import Sequential
from ..nn.module import Module
from ..training.loop import fit as xmlp_fit
from ._arrays import (
    Place,
    _picklable,
    dispatch_enabled,
    float_dtypes,
    import_namespace,
    spec_for,
    to_spec,
)
from ._losses import OUTPUT_LOSSES, L2Penalty
from ._network import ACTIVATIONS, L2Linear, build_network, glorot_uniform, linears

__all__ = ["BaseMLP"]

_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)


# The upper bound of the real-valued hyperparameters: a value beyond the float range (an int
# such as 10**400) is refused by the parameter validation (InvalidParameterError, a
# ValueError) instead of overflowing later in float().
_FLOAT_MAX = sys.float_info.max


class BaseMLP(BaseEstimator):
    """Base class; use :class:`~xmlp.sklearn.MLPClassifier` or
    :class:`~xmlp.sklearn.MLPRegressor`."""

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"sgd", "adam"})],
        "alpha": [Interval(Real, 0, _FLOAT_MAX, closed="both")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, sys.maxsize, closed="both")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, _FLOAT_MAX, closed="right")],
        "power_t": [Interval(Real, 0, _FLOAT_MAX, closed="both")],
        "max_iter": [Interval(Integral, 1, sys.maxsize, closed="both")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, _FLOAT_MAX, closed="both")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, _FLOAT_MAX, closed="right")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        # checked when fit resolves them (an import, a device probe)
        "xp": "no_validation",
        "device": "no_validation",
        "dtype": "no_validation",
    }

    def __init__(
        self,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.xp = xp
        self.device = device
        self.dtype = dtype

    # -- what subclasses define ------------------------------------------------------------
    def _validate_targets(self, y: Any, incremental: bool, first_pass: bool,
                          classes: Any) -> Any:
        """Check ``y`` and (re)define what the targets map to (classes_...); returns what
        _encode_targets and _stratify need."""
        raise NotImplementedError

    def _encode_targets(self, y: Any, checked: Any, spec: ArraySpec) -> Any:
        """``y`` as the output loss takes it, in ``spec``."""
        raise NotImplementedError

    def _stratify(self, checked: Any) -> Any:
        """Host labels to stratify the early-stopping split by (None: no stratification)."""
        return None

    def _out_activation(self) -> str:
        """scikit-learn's name of the output activation: "softmax", "logistic", "identity"
        or "exp" (its output loss is OUTPUT_LOSSES[name])."""
        raise NotImplementedError

    def _make_loss(self) -> L2Penalty:
        """The training loss: the output loss on raw outputs plus the L2 penalty."""
        layers = linears(self.model_)
        return L2Penalty(OUTPUT_LOSSES[self.out_activation_](), layers, layers[0].alpha)

    def _validation_score(self, z: Any, y_val: Any) -> float:
        """The score (accuracy, R²) of raw outputs ``z`` against encoded targets ``y_val``."""
        raise NotImplementedError

    # -- validation ------------------------------------------------------------------------
    def _validate_X_y(self, X: Any, y: Any, reset: bool) -> tuple[Any, Any]:
        return validate_data(
            self, X, y, multi_output=True, dtype=float_dtypes(X), reset=reset,
            **self._y_validation(),
        )

    def _y_validation(self) -> dict[str, Any]:
        return {}

    def _check_same_place(self, X: Any, method: str) -> None:
        """Under array API dispatch, data must come from where fit's data came from (unless
        the ``xp`` parameter chose where to train: then it is moved, as in fit)."""
        if not dispatch_enabled() or self._xp_module is not None:
            return
        here, there = Place.of(X), self._place
        if here == there:
            return
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace "
            f"and the same device as those passed to fit(): fit got {there.describe()}, "
            f"{method} got {here.describe()}. Move X with array_api_compat.to_device or the "
            "namespace's asarray, or set the estimator's xp/device parameters to let it move "
            "the data itself."
        )

    @property
    def _xp_module(self) -> Any:
        return import_namespace(self.xp)

    # -- the weights, in scikit-learn's layout ---------------------------------------------
    @property
    def coefs_(self) -> LayerParams:
        """Weights per layer, (fan_in, fan_out) arrays of the training namespace: views of the
        network's ``Linear.weights`` (fan_out, fan_in), transposed. A list whose item
        assignment (``coefs_[i] = w``) sets the network's weights."""
        if "model_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no coefs_ before fit")
        return LayerParams(self, "coefs_")

    @coefs_.setter
    def coefs_(self, values: Any) -> None:
        self._set_layer_params("coefs_", dict(enumerate(_as_list(values, "coefs_"))), whole=True)

    @property
    def intercepts_(self) -> LayerParams:
        """Biases per layer, (fan_out,) arrays of the training namespace (the network's). A
        list whose item assignment (``intercepts_[i] = b``) sets the network's biases."""
        if "model_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no intercepts_ before fit")
        return LayerParams(self, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values: Any) -> None:
        self._set_layer_params("intercepts_", dict(enumerate(_as_list(values, "intercepts_"))),
                               whole=True)

    def _layer_params(self, attr: str) -> list[Any]:
        """The arrays ``coefs_`` / ``intercepts_`` show: one per Linear layer."""
        layers = linears(self.model_)
        if attr == "coefs_":
            return [layer.weights.T for layer in layers]
        return [layer.biases for layer in layers]

    def _set_layer_params(self, attr: str, values: dict[int, Any], whole: bool) -> None:
        """Set ``coefs_[i]`` / ``intercepts_[i]`` for each i -> value (every layer's when
        ``whole``): the network's parameters become copies of the values (weights
        transposed). Every value is checked before any is set: a value of another namespace,
        device or dtype (or not an array) is a TypeError, one of another shape a ValueError,
        and a refused assignment changes nothing."""
        owner = f"{type(self).__name__}.{attr}"
        if "model_" not in self.__dict__:
            raise AttributeError(f"fit {type(self).__name__} before setting its {attr}")
        layers = linears(self.model_)
        if whole and len(values) != len(layers):
            raise ValueError(f"{owner}: expected {len(layers)} arrays (one per layer), got "
                             f"{len(values)}")
        leaf, transpose = ("weights", True) if attr == "coefs_" else ("biases", False)
        new = {}
        for i, value in values.items():
            layer = layers[i]
            spec = layer.spec
            problem = spec.mismatch(value)
            if problem is not None:
                raise TypeError(
                    f"{owner}[{i}] {problem}, but the network's parameters are "
                    f"{spec.describe()}. Assign a {spec.name} {dtype_name(spec.dtype)} array on "
                    f"{spec.device}; xmlp never converts silently."
                )
            want = tuple(getattr(layer, leaf).shape)
            want = want[::-1] if transpose else want
            if tuple(value.shape) != want:
                raise ValueError(f"{owner}[{i}] must have shape {want}, got "
                                 f"{tuple(value.shape)}")
            # a copy the network owns (its optimizer may update it in place)
            new[i] = spec.convert(value.T if transpose else value)
        for i, value in new.items():
            setattr(layers[i], leaf, value)
            layers[i].clear_state()

    @property
    def _spec(self) -> ArraySpec:
        return linears(self.model_)[0].spec

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, incremental: bool, classes: Any = None) -> BaseMLP:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        # Everything up to the first training step is checked and prepared first; a call
        # rejected there leaves the estimator as it was.
        snapshot = dict(self.__dict__)
        try:
            plan = self._prepare(X, y, incremental, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise
        self._train(*plan, incremental=incremental)
        return self

    def _prepare(self, X: Any, y: Any, incremental: bool,
                 classes: Any) -> tuple[Any, Any, Any, Any, int, np.random.Generator]:
        """Validate, (re)initialise, build the optimizer and split: (X_train, y_train, X_val,
        y_val, batch size, the Generator of this call's shuffles), in the network's place."""
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(int(h) <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        if any(int(h) > sys.maxsize for h in hidden):  # no array has such an axis
            raise ValueError(f"hidden_layer_sizes must be <= {sys.maxsize}.")
        first_pass = "model_" not in self.__dict__ or (not self.warm_start and not incremental)

        X, y = self._validate_X_y(X, y, reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if first_pass:
            self._place = Place.of(X)
        else:  # partial_fit or warm_start: the data must come from where fit's came from
            self._check_same_place(X, "partial_fit" if incremental else "fit")
        checked = self._validate_targets(y, incremental, first_pass, classes)
        spec = spec_for(X, self.xp, self.device, self.dtype) if first_pass else self._spec
        Xm = to_spec(X, spec)
        ym = self._encode_targets(y, checked, spec)

        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(spec, [int(X.shape[1]), *(int(h) for h in hidden)], rng)
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = self._make_optimizer()
        if self.early_stopping:
            X_train, y_train, X_val, y_val = self._split(Xm, ym, self._stratify(checked), rng)
        else:
            X_train, y_train, X_val, y_val = Xm, ym, None, None
        n_samples = int(X_train.shape[0])
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped", stacklevel=4,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        # one Generator for this call's shuffles, drawn from random_state after the
        # initialisation and the split (so those match scikit-learn's draw for draw)
        shuffles = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        return X_train, y_train, X_val, y_val, batch_size, shuffles

    def _split(self, X: Any, y: Any, stratify: Any,
               rng: np.random.RandomState) -> tuple[Any, Any, Any, Any]:
        """scikit-learn's early-stopping split (same draws), taken on the network's device."""
        spec = self._spec
        xp = spec.xp
        train_idx, val_idx = train_test_split(
            np.arange(int(X.shape[0])), random_state=rng, test_size=self.validation_fraction,
            stratify=stratify,
        )
        if val_idx.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        train, val = (xp.asarray(i, device=spec.device) for i in (train_idx, val_idx))
        return (xp.take(X, train, axis=0), xp.take(y, train, axis=0),
                xp.take(X, val, axis=0), xp.take(y, val, axis=0))

    def _initialize(self, spec: ArraySpec, units: list[int], rng: np.random.RandomState) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        units = [*units, self.n_outputs_]
        self.n_layers_ = len(units)
        self.out_activation_ = self._out_activation()
        params = glorot_uniform(rng, units, self.activation)
        self.model_ = build_network(spec, params, self.activation, self.alpha)
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best_params = self._copy_params()
        self.__dict__.pop("_optimizer", None)

    def _make_optimizer(self) -> Any:
        if self.solver == "sgd":
            return optim.SGD(self.model_, lr=float(self.learning_rate_init),
                             momentum=float(self.momentum),
                             nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        return optim.Adam(self.model_, lr=float(self.learning_rate_init),
                          betas=(float(self.beta_1), float(self.beta_2)),
                          eps=float(self.epsilon))

    def _copy_params(self) -> dict[str, Any]:
        return {name: array_namespace(p).asarray(p, copy=True)
                for name, p in self.model_.named_parameters()}

    def _train(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any, batch_size: int,
               shuffles: np.random.Generator, *, incremental: bool) -> None:
        """One call of xmlp.fit with the estimator's optimizer (one epoch for partial_fit,
        up to max_iter for fit); scikit-learn's bookkeeping and stopping rules run between
        epochs in fit's callback."""
        early_stopping = self.early_stopping
        n_samples = int(X_train.shape[0])
        opt = self._optimizer
        stopped = False

        def after_epoch(epoch: int, history: Any) -> bool:
            nonlocal stopped
            self.n_iter_ += 1
            self.loss_ = float(history[-1])
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(early_stopping, X_val, y_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                opt.lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = ("Validation score" if early_stopping else "Training loss")
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._trigger_stopping(msg):
                    stopped = True
                    return True
                self._no_improvement_count = 0
            return False

        try:
            self.n_iter_ = 0
            try:
                xmlp_fit(
                    self.model_, X_train, y_train, epochs=1 if incremental else self.max_iter,
                    optimizer=opt, loss=self._make_loss(), batch_size=batch_size,
                    shuffle=bool(self.shuffle), rng=shuffles, progress=False,
                    callback=after_epoch,
                )
            except FloatingPointError as exc:
                raise ValueError(_NON_FINITE) from exc
            if not incremental and not stopped and self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                    "and the optimization hasn't converged yet.",
                    ConvergenceWarning, stacklevel=3,
                )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early_stopping:
            self.model_.assign_parameters(self._best_params)
        # let go of the last batch's activations and gradients (the model may be pickled,
        # cloned or kept for a long time)
        self.model_.clear_state()

    def _trigger_stopping(self, msg: str) -> bool:
        """scikit-learn's rule: stop, except with SGD's adaptive schedule, which divides the
        learning rate by 5 until it is 1e-6 or less."""
        opt = self._optimizer
        if not (self.solver == "sgd" and self.learning_rate == "adaptive"):
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if opt.lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        opt.lr = opt.lr / 5.0
        if self.verbose:
            print(msg + f" Setting learning rate to {opt.lr:f}")
        return False

    def _update_no_improvement_count(self, early_stopping: bool, X_val: Any, y_val: Any) -> None:
        if early_stopping:
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            z = self.model_.predict(X_val)
            score = self._validation_score(z, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._copy_params()
        else:
            assert self.best_loss_ is not None
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- prediction ------------------------------------------------------------------------
    def _raw_outputs(self, X: Any, method: str) -> tuple[Any, Place]:
        """(the network's raw outputs (n, n_outputs) for X, in its namespace; the place X
        came from, where results go)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=float_dtypes(X), reset=False)
        self._check_same_place(X, method)
        return self.model_.predict(to_spec(X, self._spec)), Place.of(X)

    # -- pickling: modules and devices do not pickle; host arrays and names do --------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        opt = state.pop("_optimizer", None)
        best = state.pop("_best_params", None)
        if model is not None:
            spec = self._spec
            layers: list[tuple[Any, ...]] = []
            for layer in model.layers:
                if isinstance(layer, L2Linear):
                    layers.append(("linear", to_host(layer.weights), to_host(layer.biases),
                                   layer.alpha, layer.input_layer))
                else:
                    layers.append(("activation", type(layer).__name__, None, None, None))
            state["_network_state"] = {
                "xp": spec.name, "device": _picklable(spec.device),
                "dtype": dtype_name(spec.dtype), "layers": layers,
                "optimizer": None if opt is None else opt.state_dict(),
                "best": None if best is None else {k: to_host(v) for k, v in best.items()},
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        network = state.pop("_network_state", None)
        super().__setstate__(state)
        if network is None:
            return
        import importlib

        module = importlib.import_module(network["xp"])
        spec = ArraySpec.resolve(module, network["device"], network["dtype"])
        layers: list[Module] = []
        acts = {cls.__name__: cls for cls in ACTIVATIONS.values() if cls is not None}
        for kind, a, b, alpha, input_layer in network["layers"]:
            if kind == "linear":
                out_dim, in_dim = a.shape
                layers.append(L2Linear(in_dim, out_dim, spec.from_host(a), spec.from_host(b),
                                       alpha=alpha, input_layer=input_layer))
            else:
                layers.append(acts[a]())
        self.model_ = Sequential(*layers)
        if network["best"] is not None:
            self._best_params = {k: spec.from_host(v) for k, v in network["best"].items()}
        if network["optimizer"] is not None:
            opt = getattr(optim, network["optimizer"]["optimizer"])
            self._optimizer = _optimizer_like(opt, self.model_, network["optimizer"])


def _store_params(estimator: BaseEstimator, values: dict[str, Any]) -> None:
    """What scikit-learn's ``__init__`` does: store every argument under its own name, nothing
    else (``values`` is the ``__init__``'s ``locals()``), for a subclass whose signature adds
    parameters (MLPRegressor's ``loss``). The signatures themselves stay written out:
    scikit-learn reads the parameter names from each estimator's own ``__init__``."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _optimizer_like(cls: Any, model: Module, state: dict[str, Any]) -> Any:
    """An optimizer of class ``cls`` on ``model`` with ``state`` (from state_dict()) loaded."""
    hyper = dict(state["hyperparameters"])
    if cls is optim.SGD:
        opt = cls(model, lr=hyper["lr"], momentum=hyper["momentum"], nesterov=hyper["nesterov"],
                  weight_decay=hyper["weight_decay"])
    else:
        opt = cls(model, lr=hyper["lr"], betas=tuple(hyper["betas"]), eps=hyper["eps"],
                  weight_decay=hyper["weight_decay"])
    opt.load_state_dict(state)
    return opt



def _as_list(values: Any, attr: str) -> list[Any]:
    """The arrays assigned to ``coefs_`` / ``intercepts_`` as a list (TypeError unless it is a
    sequence of them: a single array would be taken row by row)."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{attr} must be a list of arrays, one per layer, got "
                        f"{type(values).__name__}")
    return list(values)


class LayerParams(list):
    """``coefs_`` / ``intercepts_``: a list of the network's parameter arrays (one per layer,
    scikit-learn's layout) whose item assignment writes through to the network, as assigning
    an item of scikit-learn's own list changes its model. ``est.coefs_[i] = w`` (or a slice,
    ``est.coefs_[:] = ws``) checks the values as the ``coefs_`` setter does and sets the
    estimator's current network. The number of layers is fixed: operations that would add,
    remove or reorder items raise a TypeError. Copying or pickling gives a plain list."""

    __slots__ = ("_attr", "_estimator")

    def __init__(self, estimator: BaseMLP, attr: str) -> None:
        super().__init__(estimator._layer_params(attr))
        self._estimator = estimator
        self._attr = attr

    def __setitem__(self, index: Any, value: Any) -> None:
        n = len(self)
        if isinstance(index, slice):
            positions = range(n)[index]
            values = _as_list(value, f"{self._attr}[{index.start}:{index.stop}]")
            if len(values) != len(positions):
                raise ValueError(
                    f"{self._attr} has one array per layer: a slice of {len(positions)} "
                    f"items takes {len(positions)} arrays, got {len(values)}"
                )
            updates = dict(zip(positions, values, strict=True))
        else:
            i = operator.index(index)
            if not -n <= i < n:
                raise IndexError(f"{self._attr} index {i} out of range ({n} layers)")
            updates = {i % n: value}
        self._estimator._set_layer_params(self._attr, updates, whole=False)
        super().__setitem__(slice(None), self._estimator._layer_params(self._attr))

    def _fixed(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self._attr} has one array per layer of the network: items can be replaced "
            f"({self._attr}[i] = array) but not added, removed or reordered"
        )

    __delitem__ = _fixed
    __iadd__ = _fixed
    __imul__ = _fixed
    append = _fixed
    extend = _fixed
    insert = _fixed
    pop = _fixed
    remove = _fixed
    clear = _fixed
    sort = _fixed
    reverse = _fixed

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (list, (list(self),))

    def copy(self) -> list[Any]:
        return list(self)
