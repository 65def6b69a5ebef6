"""Losses: mean squared error (the classic exercise's) and softmax cross-entropy
(classification)."""

from __future__ import annotations

import math
from typing import Any

from ..backend import reads_are_free
from ..errors import ForwardNotCalledError
from ..ops import ops_like
from .module import Module, owner_name
from .target_checks import (
    check_logits_shape,
    check_prediction_and_target,
    check_target,
    index_dtype_of,
    is_class_indices,
    raise_bad_label,
)

__all__ = ["CrossEntropyLoss", "Loss", "MSELoss"]


class Loss(Module):
    """Base class of losses: ``forward(y, t)`` -> a 0-d loss, storing what ``backward()``
    needs; ``backward()`` -> dL/dy; ``predict(y, t)`` the loss storing nothing. The base class
    runs :meth:`check` before each."""

    loss: Any = None

    def forward(self, y: Any, t: Any) -> Any:  # type: ignore[override]  # a loss takes (y, t)
        raise NotImplementedError

    def predict(self, y: Any, t: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError

    def backward(self) -> Any:  # type: ignore[override]  # the loss is the end of the chain
        raise NotImplementedError

    def check(self, method: str, *args: Any) -> None:
        if method == "backward":
            if self.loss is None:
                raise ForwardNotCalledError("Perform forward pass first.")
        else:
            y, t = args
            self.check_pair(y, t, owner_name(type(self).__name__, method))

    def check_pair(self, y: Any, t: Any, owner: str) -> None:
        """Raise unless the prediction ``y`` and target ``t`` fit this loss."""
        raise NotImplementedError


class MSELoss(Loss):
    """L = mean((y - t)**2) over all elements.

    ``backward()`` returns dL/dy = 2 (y - t) / y.size. The classic exercise divides by
    N = y.shape[0], which is the same for one output column and too large by output_dim
    otherwise.
    """

    state_names = ("y", "t", "loss", "diff")

    def __init__(self) -> None:
        self.y: Any = None
        self.t: Any = None
        self.loss: Any = None
        self.diff: Any = None

    def check_pair(self, y: Any, t: Any, owner: str) -> None:
        """y: a real floating array; t: one of y's namespace, device, dtype and shape."""
        check_prediction_and_target(y, t, owner)

    def forward(self, y: Any, t: Any) -> Any:  # type: ignore[override]
        """Mean of (y - t)**2 as the namespace's ``mean`` returns it (a 0-d array, or a NumPy
        scalar on NumPy): no conversion to a Python float, so no GPU sync."""
        self.y, self.t = y, t
        self.loss, self.diff = ops_like(y).mse(y, t)
        return self.loss

    def predict(self, y: Any, t: Any) -> Any:  # type: ignore[override]
        """The loss without storing anything (evaluation)."""
        return ops_like(y).mse(y, t)[0]

    def backward(self) -> Any:  # type: ignore[override]
        """dL/dy = 2 (y - t) / y.size, same shape as y."""
        return ops_like(self.diff).mse_grad(self.diff, math.prod(self.y.shape))


# (logits' type, dtype, t's type, dtype) of NumPy class indices already accepted: the usual call
# repeats one (kept here: a loss's attributes are what a refused call leaves as they were)
_INDEX_TARGETS: set[tuple[Any, ...]] = set()


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits, PyTorch's ``CrossEntropyLoss(reduction="mean")``.

    ``forward(logits, t)``: logits (..., C) (the class axis is the **last** one, also for
    more than two dims, where PyTorch puts it at dim 1), and ``t`` either

    - class indices of shape (...) = ``logits.shape[:-1]``, any integer dtype of the logits'
      namespace and device, each in [0, C); or
    - class probabilities of the logits' shape and dtype (one-hot or soft labels).

    The loss is the mean over all N = prod(logits.shape[:-1]) samples of
    ``-sum(t * log_softmax(logits))``, computed with a stable log-sum-exp; a logit of -inf (a
    masked class) contributes nothing. ``backward()`` returns dL/dlogits =
    (softmax(logits) * sum(t) - t) / N, which is (softmax(logits) - onehot(t)) / N for
    indices and for probabilities that sum to 1.

    Labels outside [0, C) raise a ValueError naming the first one where reading them needs no
    device sync or graph compute (NumPy, array-api-strict, torch on the CPU); on the other
    backends (CuPy, CUDA torch, JAX, Dask) the loss of that call is NaN (so :func:`xmlp.fit`
    raises FloatingPointError) and so are the gradient rows of those samples.
    """

    state_names = ("logits", "t", "loss", "probs", "target", "valid")

    def __init__(self) -> None:
        self.logits: Any = None
        self.t: Any = None
        self.loss: Any = None
        self.probs: Any = None  # softmax(logits) as (N, C)
        self.target: Any = None  # (N,) indices or (N, C) probabilities
        self.valid: Any = None  # (N,) bool where labels could not be read, else None

    def check_pair(self, logits: Any, t: Any, owner: str) -> None:
        """logits: real floating (..., C); t: class indices (...) or probabilities (..., C)
        of the logits' namespace and device; labels in [0, C) where reading them is free."""
        key = (type(logits), getattr(logits, "dtype", None), type(t), getattr(t, "dtype", None))
        if key in _INDEX_TARGETS:  # NumPy: one device, no autograd
            check_logits_shape(logits, owner)
            if t.shape != logits.shape[:-1]:
                check_target(logits, t, owner)  # raises the shape error
        else:
            check_target(logits, t, owner)
            if is_class_indices(t) and type(logits).__module__ == "numpy":
                _INDEX_TARGETS.add(key)
        if is_class_indices(t):
            index_dtype_of(ops_like(logits).xp, logits)  # known before any trace needs it
        if is_class_indices(t) and reads_are_free(t):
            n_classes = logits.shape[-1]
            if not ops_like(t).labels_in_range(_flat_labels(t), n_classes):
                raise_bad_label(t, n_classes, owner)

    def forward(self, logits: Any, t: Any) -> Any:  # type: ignore[override]
        """The mean cross-entropy as the namespace's ``mean`` returns it (a 0-d array, or a
        NumPy scalar on NumPy): no conversion to a Python float, so no GPU sync. Stores
        ``logits``, ``t``, ``loss``, the softmax ``probs`` and the ``target`` as rows."""
        self.logits, self.t = logits, t
        self.target, self.valid = _rows_of_target(logits, t)
        self.loss, self.probs = _cross_entropy(_rows(logits), self.target, self.valid)
        return self.loss

    def predict(self, logits: Any, t: Any) -> Any:  # type: ignore[override]
        """The loss without storing anything (evaluation)."""
        return _cross_entropy(_rows(logits), *_rows_of_target(logits, t))[0]

    def backward(self) -> Any:  # type: ignore[override]
        """dL/dlogits, the logits' shape: (softmax * sum(t) - t) / N."""
        ops, probs, target = ops_like(self.probs), self.probs, self.target
        n = probs.shape[0]
        if target.ndim == 1:
            grad = ops.cross_entropy_grad_index(probs, target, self.valid, n)
        else:
            grad = ops.cross_entropy_grad_probs(probs, target, n)
        if self.logits.ndim != 2:
            grad = ops.xp.reshape(grad, tuple(self.logits.shape))
        return grad


def _rows(logits: Any) -> Any:
    """Logits as (N, C)."""
    return logits if logits.ndim == 2 else ops_like(logits).xp.reshape(
        logits, (-1, logits.shape[-1]))


def _flat_labels(t: Any) -> Any:
    return t if t.ndim == 1 else ops_like(t).xp.reshape(t, (-1,))


def _rows_of_target(logits: Any, t: Any) -> tuple[Any, Any]:
    """(class indices (N,) of the indexing dtype, or probabilities (N, C); the mask of valid
    labels where they could not be read on the host, else None)."""
    if not is_class_indices(t):
        return _rows(t), None
    xp = ops_like(t).xp
    labels = _flat_labels(t)
    index_dtype = index_dtype_of(xp, logits)
    if labels.dtype != index_dtype:
        labels = xp.astype(labels, index_dtype)
    if reads_are_free(t):
        return labels, None  # checked by check_pair
    n_classes = logits.shape[-1]
    return labels, (labels >= 0) & (labels < n_classes)


def _cross_entropy(z2: Any, target: Any, valid: Any) -> tuple[Any, Any]:
    ops = ops_like(z2)
    if target.ndim == 1:
        return ops.cross_entropy_index(z2, target, valid)
    return ops.cross_entropy_probs(z2, target)
