"""Where an estimator's arrays live.

Two places matter: where the user's arrays come from (and where results go back to), and
where the network trains.

- The user's place follows scikit-learn's array API dispatch: with
  ``sklearn.set_config(array_api_dispatch=True)`` it is the namespace and device of ``X``
  (torch on CUDA, CuPy, array-api-strict...); without it, everything is NumPy (scikit-learn's
  validation converts other arrays with ``numpy.asarray``).
- The network trains in the estimator's ``xp`` / ``device`` / ``dtype`` parameters where
  they are given, and in the user's place (with X's floating dtype) where they are not.

Moving between the two happens only when the parameters ask for another place than the data's.
"""

from __future__ import annotations

import importlib
import pickle
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np
import sklearn

from ..backend import ArraySpec, dtype_name, namespace_name, to_host

__all__ = ["Place", "dispatch_enabled", "float_dtypes", "import_namespace", "move"]

# names a user may give as ``xp=`` for the modules they import
_ALIASES = {"jax": "jax.numpy", "dask": "dask.array", "np": "numpy"}


def dispatch_enabled() -> bool:
    """Whether scikit-learn's array API dispatch is on (``sklearn.set_config``)."""
    return bool(sklearn.get_config()["array_api_dispatch"])


def import_namespace(xp: Any) -> Any:
    """The array module for an estimator's ``xp`` parameter, the name of a module ("numpy",
    "torch", "cupy", "jax.numpy", "dask.array", "array_api_strict"). None stays None (the
    data's namespace).

    A name rather than the module itself: scikit-learn clones estimators by deep-copying
    their parameters and persists them by pickling, and a module can be neither.
    """
    if xp is None:
        return None
    if isinstance(xp, ModuleType):
        raise TypeError(
            f"xp must be the name of an array module, e.g. xp={xp.__name__!r}, not the module "
            "itself: scikit-learn clones (GridSearchCV, cross_val_score) and pickles "
            "estimators, and a module can be neither."
        )
    if not isinstance(xp, str):
        raise TypeError(
            f"xp must be None or the name of an array module (e.g. 'torch', 'cupy'), got "
            f"{type(xp).__name__}: {xp!r}"
        )
    name = _ALIASES.get(xp, xp)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ValueError(f"xp={xp!r}: cannot import {name!r} ({exc}); is it installed?") from exc


def namespace_module_name(xp: Any) -> str:
    """The importable name of a namespace, for pickling ("numpy", "torch", "cupy"...)."""
    return namespace_name(xp)


def float_dtypes(X: Any) -> tuple[Any, Any]:
    """(float64, float32) of the namespace scikit-learn will validate ``X`` in: X's own
    under array API dispatch (for array API arrays), NumPy's otherwise."""
    if dispatch_enabled() and array_api_compat.is_array_api_obj(X) and not isinstance(
        X, np.ndarray
    ):
        xp = array_api_compat.array_namespace(X)
        return xp.float64, xp.float32
    return np.float64, np.float32


class Place:
    """A namespace and device the user's arrays come from and results go back to."""

    __slots__ = ("device", "xp")

    def __init__(self, xp: Any, device: Any) -> None:
        self.xp = xp
        self.device = device

    @classmethod
    def of(cls, X: Any) -> Place:
        """Where validated ``X`` lives (always NumPy without array API dispatch)."""
        if not dispatch_enabled() or isinstance(X, np.ndarray):
            return cls(array_api_compat.array_namespace(np.empty(0)), "cpu")
        return cls(array_api_compat.array_namespace(X), array_api_compat.device(X))

    @property
    def is_numpy(self) -> bool:
        return bool(array_api_compat.is_numpy_namespace(self.xp))

    def holds(self, a: Any) -> bool:
        """Whether array ``a`` already lives here."""
        if self.is_numpy:
            return isinstance(a, np.ndarray)
        return (
            array_api_compat.is_array_api_obj(a)
            and array_api_compat.array_namespace(a) is self.xp
            and array_api_compat.device(a) == self.device
        )

    def describe(self) -> str:
        name = namespace_name(self.xp)
        return name if self.is_numpy else f"{name} on {self.device}"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Place) and self.xp is other.xp
                and (self.is_numpy or self.device == other.device))

    def __hash__(self) -> int:
        return hash(id(self.xp))

    # pickling: modules cannot be pickled, their names can
    def __getstate__(self) -> dict[str, Any]:
        return {"xp": namespace_module_name(self.xp), "device": _picklable(self.device)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        module = importlib.import_module(state["xp"])
        self.xp = array_api_compat.array_namespace(module.asarray(0.0))
        self.device = state["device"]
        if self.device is None:
            self.device = array_api_compat.device(self.xp.asarray(0.0))


def _picklable(device: Any) -> Any:
    """``device`` where it pickles (torch.device, array-api-strict's), else None (the
    namespace's default device after unpickling)."""
    try:
        pickle.dumps(device)
    except Exception:
        return None
    return device


def move(a: Any, place: Place) -> Any:
    """Array ``a`` in ``place`` (itself when it is there already; dtype kept)."""
    if place.holds(a):
        return a
    if place.is_numpy:
        return to_host(a)
    xp = place.xp
    if array_api_compat.is_array_api_obj(a) and array_api_compat.array_namespace(a) is xp:
        return array_api_compat.to_device(a, place.device)
    return xp.asarray(to_host(a), device=place.device)


def spec_for(X: Any, xp: Any, device: Any, dtype: Any) -> ArraySpec:
    """Where the network trains: the estimator's ``xp`` / ``device`` / ``dtype`` parameters,
    each defaulting to validated ``X``'s namespace, device and (floating) dtype."""
    x_spec = ArraySpec.of(X)
    name = dtype_name(X.dtype) if dtype is None else dtype
    module = import_namespace(xp)
    if module is None:
        return ArraySpec.resolve(x_spec.xp, x_spec.device if device is None else device, name)
    return ArraySpec.resolve(module, device, name)


def to_spec(a: Any, spec: ArraySpec) -> Any:
    """Array ``a`` as ``spec``'s namespace, device and dtype: ``a`` itself (a plain
    ndarray view for NumPy subclasses such as memmaps) when it is there already."""
    if array_api_compat.is_numpy_array(a) and array_api_compat.is_numpy_namespace(spec.xp):
        if a.dtype == spec.dtype:
            return np.asarray(a)
    elif (type(a) is spec.array_type and a.dtype == spec.dtype
          and (not spec.check_device or array_api_compat.device(a) == spec.device)):
        return a
    return spec.convert(a)
