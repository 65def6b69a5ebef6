"""One epoch's running sums: the loss of each batch weighted by its share of the samples, and a
classifier's hits, kept as arrays through the steps (no device sync per step) and turned into
Python floats at the end of the epoch with one sync, which also checks that every parameter is
still finite. On Dask the sums, the parameters and the optimizer's state are persisted every
:data:`PERSIST_STEPS` steps and at the end of each epoch, so that the graphs stop growing.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import is_array_api_obj

from ..backend import persist_parameters
from ..nn.module import Module

__all__ = ["PERSIST_STEPS", "EpochSums", "hits", "labels", "parameter_check", "persist"]

# On Dask, every step adds its layers to the graph of the parameters it rebinds, and building
# each new operation merges its inputs' layers: the cost of a step grows with the steps since
# the last persist (measured: one epoch of 45 mini-batch Adam steps on the digits took 133 s
# when persisted once per epoch). So mini-batch epochs are persisted every few steps too.
PERSIST_STEPS = 4


class EpochSums:
    """The running sums of one epoch (or one pass over the validation data) in namespace
    ``xp``: ``total``, the sum of each batch's mean loss times its weight (its share of the
    samples), and for a classifier ``hits``, how many samples were classified right."""

    __slots__ = ("classifier", "hits", "total", "xp")

    def __init__(self, xp: Any, classifier: bool) -> None:
        self.xp, self.classifier = xp, classifier
        self.total: Any = None
        self.hits: Any = None

    def add(self, batch_loss: Any, output: Any, weight: float, targets: Any) -> None:
        """Add one batch: its mean loss (as the loss returned it), the model's output and the
        batch's targets (for the hits)."""
        weighted = batch_loss * weight
        self.total = weighted if self.total is None else self.total + weighted
        if self.classifier:
            batch_hits = hits(self.xp, output, labels(self.xp, targets))
            self.hits = batch_hits if self.hits is None else self.hits + batch_hits

    def accuracy(self, n_labels: int) -> float:
        """The fraction of the ``n_labels`` class labels classified right (one sync)."""
        return float(self.hits) / n_labels

    def persist(self, model: Module, optimizer: Any) -> None:
        """Persist the parameters, the optimizer's state and the sums (Dask only)."""
        self.total, self.hits = persist(model, optimizer, self.total, self.hits)

    def end(self, model: Module, optimizer: Any, lazy: bool) -> tuple[float, bool, list[Any]]:
        """(the epoch's loss as a float, whether it and every parameter are finite, the model's
        named parameters as they are now), with one device sync; on Dask (``lazy``) the
        parameters, the optimizer's state and the sums are persisted first."""
        # listed once per epoch: named_parameters builds every name anew, and with a few
        # steps an epoch (the digits: 8) such per-epoch work shows in the step time
        named = list(model.named_parameters())
        checked = parameter_check(self.xp, [p for _, p in named])
        if lazy:
            self.total, checked, self.hits = persist(model, optimizer, self.total, checked,
                                                     self.hits)
            named = list(model.named_parameters())  # rebound to the persisted arrays
        total = self.total
        if is_array_api_obj(total) and checked is not None:
            # one sync per epoch: the loss itself while every parameter is finite
            value = float(total + checked)
            finite = math.isfinite(value)
            if not finite:
                value = float(total)
        else:  # a loss of another type, or a model without parameters
            value = float(total)
            finite = math.isfinite(value) and (checked is None or math.isfinite(float(checked)))
        return value, finite, named


def labels(xp: Any, y: Any) -> Any:
    """Class indices of the targets: y itself, or the argmax of class probabilities."""
    if xp.isdtype(y.dtype, "integral"):
        return y
    return xp.argmax(y, axis=-1)


def hits(xp: Any, output: Any, labels: Any) -> Any:
    """How many rows of ``output`` have their largest value at the label (an integer array:
    no host sync)."""
    predicted = xp.argmax(output, axis=-1)
    if labels.dtype != predicted.dtype:
        labels = xp.astype(labels, predicted.dtype)
    return xp.count_nonzero(predicted == labels)


def parameter_check(xp: Any, params: list[Any]) -> Any:
    """``0 * (the sum of every parameter's sum)``, a 0-d array (None without parameters): 0
    while the parameters are finite, NaN as soon as one is NaN or infinite (0 * inf is NaN).
    Added to the epoch's loss, it leaves the loss exactly as it is, so fit still syncs once
    per epoch, for one reduction per parameter. (Finite parameters whose sum overflows count
    as overflowed too: with values that near the float maximum the loss has overflowed too.)"""
    sums = None
    for p in params:
        sums = xp.sum(p) if sums is None else sums + xp.sum(p)
    return None if sums is None else 0 * sums


def persist(model: Module, optimizer: Any, *arrays: Any) -> list[Any]:
    """On Dask, persist the model's parameters, the optimizer's state and ``arrays`` in one
    pass, rebinding the parameters and the state; returns ``arrays`` persisted (as they were
    for other namespaces). State arrays returned as they were are not handed back to the
    optimizer: it would lay its state out again (a copy of it all, every epoch: NumPy's packed
    Adam state)."""
    extra = [] if optimizer is None else optimizer._state_arrays()
    kept = list(persist_parameters(model, *arrays, *extra))
    state = kept[len(arrays):]
    if optimizer is not None and any(a is not b for a, b in zip(state, extra, strict=True)):
        optimizer._set_state_arrays(state)
    return kept[:len(arrays)]
