"""Losses: mean squared error (the seed's) and softmax cross-entropy (classification)."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ._backend import (
    ArraySpec,
    _namespace_or_none,
    dtype_name,
    floating_spec,
    namespace_name,
    reads_are_free,
    refuse_masked,
    to_host,
)
from .errors import ForwardNotCalledError
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


class MSELoss(Module):
    """L = mean((y - t)**2) over all elements.

    ``backward()`` returns dL/dy = 2 (y - t) / y.size. The notebook divides by N = y.shape[0],
    which is the same for one output column and too large by output_dim otherwise.
    """

    _state_names = ("y", "t", "loss", "_diff", "_seen")

    def __init__(self) -> None:
        self.y: Any = None
        self.t: Any = None
        self.loss: Any = None
        self._diff: Any = None
        self._seen: ArraySpec | None = None

    def _check(self, y: Any, t: Any, method: str) -> ArraySpec:
        owner = "MSELoss.forward" if method == "forward" else f"MSELoss.{method}"
        spec = self._seen
        if spec is None or not spec.holds(y):
            spec = floating_spec(y, owner, "y")
        if type(t) is not spec.array_type or t.dtype != spec.dtype or spec.check_device:
            spec.check(t, owner, "t (the target)", against="y (the prediction)")
        shape = y.shape  # read once: on NumPy each read builds a new tuple
        size = None if None in shape else math.prod(shape)
        if size is None or size != size:  # Dask's unknown (nan) sizes
            raise ValueError(
                f"{owner}: y has an unknown size, shape {tuple(shape)}, so the mean cannot be "
                "taken; on Dask call .compute_chunk_sizes() on the input first."
            )
        if shape != t.shape:
            raise ValueError(
                f"{owner}: y and t must have the same shape, got {tuple(shape)} and "
                f"{tuple(t.shape)} (an (N, 1) against (N,) would broadcast to (N, N)); reshape "
                "the target to the prediction's shape."
            )
        if not shape:
            raise ValueError(f"{owner}: y and t must have ndim >= 1, got 0-d arrays")
        if size == 0:  # the mean of nothing is NaN, and backward would divide by 0
            raise ValueError(f"{owner}: y and t are empty (shape {tuple(shape)})")
        return spec

    def forward(self, y: Any, t: Any) -> Any:  # type: ignore[override]  # a loss takes (y, t)
        """Mean of (y - t)**2 as the namespace's ``mean`` returns it (a 0-d array, or a NumPy
        scalar on NumPy): no conversion to a Python float, so no GPU sync."""
        spec = self._check(y, t, "forward")
        loss, diff = spec.ops.mse(y, t)
        self.y, self.t, self.loss, self._diff, self._seen = y, t, loss, diff, spec
        return loss

    def predict(self, y: Any, t: Any) -> Any:  # type: ignore[override]
        """The loss without storing anything (evaluation)."""
        return self._check(y, t, "predict").ops.mse(y, t)[0]

    def backward(self) -> Any:  # type: ignore[override]  # the loss is the end of the chain
        """dL/dy = 2 (y - t) / y.size, same shape as y."""
        if self._diff is None:
            raise ForwardNotCalledError("Perform forward pass first.")
        spec = self._seen
        assert spec is not None  # set together with _diff
        return spec.ops.mse_grad(self._diff, math.prod(self.y.shape))


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits, PyTorch's ``CrossEntropyLoss(reduction="mean")``.

    ``forward(logits, t)``: logits (..., C) (the class axis is the **last** one, also for
    more than two dims, where PyTorch puts it at dim 1), and ``t`` either

    - class indices of shape (...) = ``logits.shape[:-1]``, any integer dtype of the logits'
      namespace and device, each in [0, C); or
    - class probabilities of the logits' shape and dtype (one-hot or soft labels).

    The loss is the mean over all N = prod(logits.shape[:-1]) samples of
    ``-sum(t * log_softmax(logits))``, computed with a stable log-sum-exp; a class whose
    target is 0 adds 0, also where its logit is ``-inf`` (a masked class), on every backend
    and dtype, so masking classes with ``-inf`` gives a finite loss. ``backward()``
    returns dL/dlogits = (softmax(logits) * sum(t) - t) / N, which is
    (softmax(logits) - onehot(t)) / N for indices and for probabilities that sum to 1.

    Labels outside [0, C) raise a ValueError naming the first one where reading them needs no
    device sync or graph compute (NumPy, array-api-strict, torch on the CPU); on the other
    backends (CuPy, CUDA torch, JAX, Dask) the loss of that call is NaN (so :func:`xmlp.fit`
    raises FloatingPointError) and so are the gradient rows of those samples.
    """

    _state_names = ("logits", "t", "loss", "_probs", "_target", "_valid", "_seen",
                    "_labels_seen")

    def __init__(self) -> None:
        self.logits: Any = None
        self.t: Any = None
        self.loss: Any = None
        self._probs: Any = None  # softmax(logits) as (N, C)
        self._target: Any = None  # (N,) indices or (N, C) probabilities
        self._valid: Any = None  # (N,) bool where labels were not checked, else None
        self._seen: ArraySpec | None = None
        self._labels_seen: tuple[ArraySpec, Any, Any, bool] | None = None

    def _check(self, logits: Any, t: Any, method: str) -> tuple[ArraySpec, Any, Any, Any]:
        """(spec, logits as (N, C), target as (N,) indices or (N, C), valid mask or None)."""
        owner = f"CrossEntropyLoss.{method}"
        spec = self._seen
        if spec is None or not spec.holds(logits):
            spec = floating_spec(logits, owner, "logits")
        shape = tuple(logits.shape)
        if not shape:
            raise ValueError(
                f"{owner}: logits must have shape (..., C) with ndim >= 1, got a 0-d array"
            )
        size = None if None in shape else math.prod(shape)
        if size is None or size != size:  # Dask's unknown (nan) sizes
            raise ValueError(
                f"{owner}: logits have an unknown size, shape {shape}; on Dask call "
                ".compute_chunk_sizes() on the input first."
            )
        if size == 0:
            raise ValueError(f"{owner}: logits are empty (shape {shape})")
        n_classes = shape[-1]
        _check_place(spec, t, owner)
        xp = spec.xp
        t_shape = tuple(t.shape)
        # (logits' spec, type, dtype) of the last class indices, whose dtype kind and
        # readability are known (t is on the logits' device): the usual call repeats them
        known = self._labels_seen
        integral = (known is not None and known[0] is spec and type(t) is known[1]
                    and t.dtype == known[2])
        if integral or xp.isdtype(t.dtype, "integral"):
            if t_shape != shape[:-1]:
                hint = (" (a one-hot of integers? convert it to the logits' dtype to use it as "
                        "class probabilities)" if t_shape == shape else "")
                raise ValueError(
                    f"{owner}: class indices t must have shape logits.shape[:-1] = {shape[:-1]}, "
                    f"got {t_shape}{hint}"
                )
            labels = t if t.ndim == 1 else xp.reshape(t, (-1,))
            index_dtype = _index_dtype(xp, spec.device)
            if labels.dtype != index_dtype:
                labels = xp.astype(labels, index_dtype)
            valid = None
            free = known[3] if integral and known is not None else reads_are_free(t)
            if free:
                if not spec.ops.labels_in_range(labels, n_classes):
                    _raise_bad_label(t, n_classes, owner)
            else:
                valid = (labels >= 0) & (labels < n_classes)
            if not integral:
                self._labels_seen = (spec, type(t), t.dtype, free)
            z2 = logits if logits.ndim == 2 else xp.reshape(logits, (-1, n_classes))
            return spec, z2, labels, valid
        if not xp.isdtype(t.dtype, "real floating"):
            raise TypeError(
                f"{owner}: t has dtype {dtype_name(t.dtype)}; give class indices (an integer "
                f"dtype) or class probabilities (the logits' dtype {dtype_name(spec.dtype)})."
            )
        if t_shape == shape[:-1] and t_shape != shape:
            raise TypeError(
                f"{owner}: t of shape {t_shape} holds class indices but has the floating dtype "
                f"{dtype_name(t.dtype)}; convert it with {spec.name}.astype(t, "
                f"{spec.name}.int64) (probability targets have the logits' shape {shape})."
            )
        if dtype_name(t.dtype) != dtype_name(spec.dtype):
            raise TypeError(
                f"{owner}: class probabilities t have dtype {dtype_name(t.dtype)} but the "
                f"logits {dtype_name(spec.dtype)}; convert with {spec.name}.astype(t, "
                f"{spec.name}.{dtype_name(spec.dtype)})."
            )
        if t.dtype != spec.dtype or spec.autograd:  # another byte order; requires grad
            spec.check(t, owner, "t (the target)", against="the logits")
        if t_shape != shape:
            raise ValueError(
                f"{owner}: class probabilities t must have the logits' shape {shape}, got "
                f"{t_shape} (class indices have shape {shape[:-1]} and an integer dtype)"
            )
        if logits.ndim == 2:
            return spec, logits, t, None
        return (spec, xp.reshape(logits, (-1, n_classes)), xp.reshape(t, (-1, n_classes)),
                None)

    def _loss(self, spec: ArraySpec, z2: Any, target: Any, valid: Any) -> tuple[Any, Any]:
        if target.ndim == 1:
            return spec.ops.cross_entropy_index(z2, target, valid)
        return spec.ops.cross_entropy_probs(z2, target)

    def forward(self, logits: Any, t: Any) -> Any:  # type: ignore[override]  # takes (logits, t)
        """The mean cross-entropy as the namespace's ``mean`` returns it (a 0-d array, or a
        NumPy scalar on NumPy): no conversion to a Python float, so no GPU sync. Stores
        ``logits``, ``t`` and ``loss``."""
        spec, z2, target, valid = self._check(logits, t, "forward")
        loss, probs = self._loss(spec, z2, target, valid)
        self.logits, self.t, self.loss = logits, t, loss
        self._probs, self._target, self._valid, self._seen = probs, target, valid, spec
        return loss

    def predict(self, logits: Any, t: Any) -> Any:  # type: ignore[override]
        """The loss without storing anything (evaluation)."""
        spec, z2, target, valid = self._check(logits, t, "predict")
        return self._loss(spec, z2, target, valid)[0]

    def backward(self) -> Any:  # type: ignore[override]  # the loss is the end of the chain
        """dL/dlogits, the logits' shape: (softmax * sum(t) - t) / N."""
        if self._probs is None:
            raise ForwardNotCalledError("Perform forward pass first.")
        spec = self._seen
        assert spec is not None  # set together with _probs
        probs, target = self._probs, self._target
        n = probs.shape[0]
        if target.ndim == 1:
            grad = spec.ops.cross_entropy_grad_index(probs, target, self._valid, n)
        else:
            grad = spec.ops.cross_entropy_grad_probs(probs, target, n)
        if self.logits.ndim != 2:
            grad = spec.xp.reshape(grad, tuple(self.logits.shape))
        return grad


def _check_place(spec: ArraySpec, t: Any, owner: str) -> None:
    """TypeError unless ``t`` is an array of the logits' namespace and device (any dtype)."""
    if type(t) is not spec.array_type:
        refuse_masked(t, owner, "t (the target)")  # masked labels would pass unread
        other = _namespace_or_none(t)
        if other is None:
            raise TypeError(
                f"{owner}: t (the target) must be a {spec.name} array, got {type(t).__name__}. "
                f"Convert it with {spec.name}.asarray(...)."
            )
        if other is not spec.xp:
            theirs = namespace_name(other)
            raise TypeError(
                f"{owner}: t (the target) is a {theirs} array but the logits are {spec.name} "
                f"arrays. Convert the target with {spec.name}.asarray(...) so that it matches "
                "the logits."
            )
    if spec.check_device:
        dev = array_api_compat.device(t)
        if dev != spec.device:
            raise TypeError(
                f"{owner}: t (the target) is on device {dev} but the logits are on "
                f"{spec.device}. Move it with array_api_compat.to_device(t, {spec.device!r}); "
                "xmlp never transfers silently."
            )


_INDEX_DTYPES: dict[tuple[int, str], Any] = {}


def _index_dtype(xp: Any, device: Any) -> Any:
    """The namespace's default indexing dtype (int64, or int32 on JAX without x64)."""
    key = (id(xp), str(device))
    found = _INDEX_DTYPES.get(key)
    if found is None:
        found = xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
        _INDEX_DTYPES[key] = found
    return found


def _raise_bad_label(t: Any, n_classes: int, owner: str) -> None:
    """ValueError naming the first label outside [0, n_classes) (host reads are free here)."""
    host = to_host(t)
    flat = host.reshape(-1)
    bad = int(((flat < 0) | (flat >= n_classes)).nonzero()[0][0])
    where = bad if host.ndim == 1 else tuple(int(i) for i in _unravel(bad, host.shape))
    raise ValueError(
        f"{owner}: t holds the label {int(flat[bad])} at index {where}, outside [0, "
        f"{n_classes}) for logits with {n_classes} classes"
    )


def _unravel(flat_index: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for dim in reversed(shape):
        out.append(flat_index % dim)
        flat_index //= dim
    return out[::-1]
