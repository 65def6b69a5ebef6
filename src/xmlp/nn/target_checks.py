"""What losses check before their math: a prediction against its target (MSE), logits against
class indices or probabilities (cross-entropy). O(1) (types, dtypes, shapes, devices), except
class labels, read once where reading is free (:func:`xmlp.backend.reads_are_free`)."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ..backend import (
    ArraySpec,
    dtype_name,
    floating_spec,
    namespace_name,
    namespace_or_none,
    refuse_masked,
    to_host,
)
from ..ops import ops_like

__all__ = [
    "check_logits_shape",
    "check_prediction_and_target",
    "check_target",
    "check_target_place",
    "index_dtype_of",
    "is_class_indices",
    "raise_bad_label",
]


# (array type, dtype) -> the spec of the last accepted prediction of that kind: the usual call
# repeats one, and a spec is made with a probe array. Kept here, not in the losses: their
# attributes are what a refused call must leave as it was.
_PREDICTIONS: dict[tuple[Any, ...], ArraySpec] = {}


def check_prediction_and_target(y: Any, t: Any, owner: str) -> ArraySpec:
    """Spec of the prediction ``y``; TypeError unless ``t`` has its namespace, device and
    dtype, ValueError unless both have one known, non-empty shape of ndim >= 1."""
    key = (type(y), getattr(y, "dtype", None))
    spec = _PREDICTIONS.get(key)
    # the key is all there is to a NumPy array's place; a device or autograd flag is looked at
    if spec is None or ((spec.check_device or spec.autograd) and not spec.holds(y)):
        spec = floating_spec(y, owner, "y")
        _PREDICTIONS[key] = spec
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


def is_class_indices(t: Any) -> bool:
    """Whether a target holds class indices (an integer dtype) rather than probabilities."""
    return bool(ops_like(t).xp.isdtype(t.dtype, "integral"))


def check_logits_shape(logits: Any, owner: str) -> tuple[int, ...]:
    """The logits' shape; ValueError for a 0-d, unknown-size or empty one."""
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
    return shape


def check_target(logits: Any, t: Any, owner: str) -> None:
    """TypeError / ValueError unless ``t`` is class indices of shape logits.shape[:-1] (an
    integer dtype) or probabilities of the logits' shape and dtype, in the logits' namespace
    and on their device."""
    spec = floating_spec(logits, owner, "logits")
    shape = check_logits_shape(logits, owner)
    check_target_place(spec, t, owner)
    t_shape = tuple(t.shape)
    if is_class_indices(t):
        if t_shape != shape[:-1]:
            hint = (" (a one-hot of integers? convert it to the logits' dtype to use it as "
                    "class probabilities)" if t_shape == shape else "")
            raise ValueError(
                f"{owner}: class indices t must have shape logits.shape[:-1] = {shape[:-1]}, "
                f"got {t_shape}{hint}"
            )
        return
    _check_probabilities(spec, shape, t, owner)


def _check_probabilities(spec: ArraySpec, shape: tuple[int, ...], t: Any, owner: str) -> None:
    if not spec.xp.isdtype(t.dtype, "real floating"):
        raise TypeError(
            f"{owner}: t has dtype {dtype_name(t.dtype)}; give class indices (an integer "
            f"dtype) or class probabilities (the logits' dtype {dtype_name(spec.dtype)})."
        )
    t_shape = tuple(t.shape)
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


def check_target_place(spec: ArraySpec, t: Any, owner: str) -> None:
    """TypeError unless ``t`` is an array of the logits' namespace and device (any dtype)."""
    if type(t) is not spec.array_type:
        refuse_masked(t, owner, "t (the target)")  # masked labels would pass unread
        other = namespace_or_none(t)
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


def index_dtype_of(xp: Any, like: Any) -> Any:
    """The namespace's default indexing dtype on ``like``'s device (int64, or int32 on JAX
    without x64). Known devices are looked up by the array's ``device`` attribute, which a
    compiler tracing the step reads as a constant."""
    key = (id(xp), str(getattr(like, "device", None)))
    found = _INDEX_DTYPES.get(key)
    if found is None:
        device = array_api_compat.device(like)
        found = xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
        _INDEX_DTYPES[key] = found
    return found


def raise_bad_label(t: Any, n_classes: int, owner: str) -> None:
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
