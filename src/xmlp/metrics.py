"""Metrics computed in the arrays' own namespace: classification accuracy."""

from __future__ import annotations

from typing import Any

from .backend import dtype_name, floating_spec
from .nn.target_checks import check_target_place

__all__ = ["accuracy"]


def accuracy(logits: Any, labels: Any) -> Any:
    """The fraction of samples whose largest logit is at their label, as a 0-d array of the
    logits' namespace, device and dtype (no host sync: ``float()`` it to log).

    Args:
        logits: (..., C) real floating scores (logits or probabilities), classes last.
        labels: class indices (...) = ``logits.shape[:-1]`` of an integer dtype, or class
            probabilities / one-hot rows of the logits' shape and dtype (their argmax is the
            label), same namespace and device as ``logits``.

    Ties go to the first largest logit, as ``argmax`` breaks them. Labels outside [0, C)
    simply never match.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> logits = np.array([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0]])
        >>> float(xmlp.accuracy(logits, np.array([0, 1, 1])))
        0.6666666666666666
    """
    spec = floating_spec(logits, "accuracy", "logits")
    xp = spec.xp
    shape = tuple(logits.shape)
    if not shape:
        raise ValueError("accuracy: logits must have shape (..., C) with ndim >= 1, got 0-d")
    if 0 in shape:
        raise ValueError(f"accuracy: logits are empty (shape {shape})")
    check_target_place(spec, labels, "accuracy")
    labels_shape = tuple(labels.shape)
    if xp.isdtype(labels.dtype, "integral"):
        if labels_shape != shape[:-1]:
            raise ValueError(
                f"accuracy: class indices must have shape logits.shape[:-1] = {shape[:-1]}, got "
                f"{labels_shape}"
            )
    elif xp.isdtype(labels.dtype, "real floating") and labels_shape == shape:
        labels = xp.argmax(labels, axis=-1)
    elif xp.isdtype(labels.dtype, "real floating") and labels_shape == shape[:-1]:
        raise TypeError(
            f"accuracy: class indices have the floating dtype {dtype_name(labels.dtype)}; "
            f"convert them with {spec.name}.astype(labels, {spec.name}.int64)"
        )
    elif xp.isdtype(labels.dtype, "real floating"):
        raise ValueError(
            f"accuracy: labels must be class indices of shape {shape[:-1]} or class "
            f"probabilities of shape {shape}, got shape {labels_shape}"
        )
    else:
        raise TypeError(
            f"accuracy: labels have dtype {dtype_name(labels.dtype)}; give class indices (an "
            "integer dtype) or class probabilities (the logits' dtype)"
        )
    predicted = xp.argmax(logits, axis=-1)
    if labels.dtype != predicted.dtype:
        labels = xp.astype(labels, predicted.dtype)
    hits = xp.astype(predicted == labels, spec.dtype)
    return xp.asarray(xp.mean(hits))  # np.mean gives a NumPy scalar: a 0-d array here too
