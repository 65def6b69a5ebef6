"""scikit-learn estimators built on xmlp: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in for scikit-learn's estimators of the same names (solvers "sgd" and "adam"): they work
in Pipelines, grid searches, ``cross_val_score`` and ``clone``, pickle, and pass scikit-learn's
``check_estimator``. The network is an :class:`xmlp.Sequential` trained by :func:`xmlp.fit`
with :mod:`xmlp.optim`, so it trains on NumPy or, with ``xp=`` / ``device=`` or scikit-learn's
array API dispatch, on torch, CuPy, JAX, Dask or array-api-strict. See docs/sklearn.md.

Needs scikit-learn (``pip install scikit-learn``); the rest of xmlp does not.
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "xmlp.sklearn needs scikit-learn>=1.6: pip install scikit-learn (from the xmlp checkout: "
        'pip install ".[sklearn]")'
    ) from exc

from ._checks import expected_failed_checks
from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "expected_failed_checks"]
