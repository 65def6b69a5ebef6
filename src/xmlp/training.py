"""fit(): the seed's training loop as a function, with mini-batches, shuffling and progress."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import array_api_compat
from array_api_compat import array_namespace, is_array_api_obj
from tqdm import tqdm

from ._backend import check_learning_rate, make_rng, persist_parameters, short_repr
from .losses import MSELoss
from .module import Module

__all__ = ["fit"]


def fit(
    model: Module,
    x: Any,
    y: Any,
    *,
    epochs: int,
    lr: float,
    loss: Any = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    rng: Any = None,
    progress: bool | None = None,
) -> list[float]:
    """Train ``model`` with plain SGD; returns each epoch's loss as a Python float.

    Args:
        model: an :class:`xmlp.Module` (MLP, Sequential, Linear or your own subclass).
        x: inputs (N, ...); y: targets (N, ...), same namespace as ``x`` and the model.
        epochs: number of passes over the data (a positive int).
        lr: learning rate (a finite real number >= 0).
        loss: a loss with ``forward(y_pred, t)`` returning the *mean* over the batch and
            ``backward()``; default :class:`xmlp.MSELoss`.
        batch_size: samples per step; None is full batch (one step per epoch, as in the seed).
            The last batch may be shorter.
        shuffle: draw a new order of the samples each epoch from ``rng`` (None, an int seed or
            a ``numpy.random.Generator``): the same seed gives the same history and weights.
        progress: a tqdm bar per epoch on stderr; None shows it only when stderr is a terminal.

    Each epoch's loss is the mean over samples of the per-batch losses (a batch weighs by its
    size), computed with the parameters as they were at each step, like the seed's loop.
    Losses stay arrays during an epoch and become one float at its end: one device sync per
    epoch. On Dask the parameters are persisted once per epoch so the graph does not grow.

    Raises:
        FloatingPointError: an epoch's loss is NaN or infinite, or a parameter is after it
            (a huge learning rate can overflow the parameters in the last step of an epoch
            whose loss was still finite). The parameters are restored to those after the last
            epoch whose loss and parameters were all finite (the initial ones if none), stored
            activations and gradients are cleared, and ``exc.history`` holds the losses so far
            (the last one is the failed epoch's).
        TypeError / ValueError: bad arguments, checked before anything runs; a step the model
            or loss rejects in the first step leaves the model as it was.
    """
    _check_model(model)
    loss_fn = MSELoss() if loss is None else loss
    for method in ("forward", "backward"):
        if not callable(getattr(loss_fn, method, None)):
            raise TypeError(f"fit: loss must have a {method}() method, got {type(loss).__name__}")
    n_epochs = _positive_int(epochs, "epochs")
    learning_rate = check_learning_rate(lr)
    xp, n = _check_data(x, y)
    step = n if batch_size is None else min(_positive_int(batch_size, "batch_size"), n)
    if not isinstance(shuffle, bool):
        raise TypeError(f"fit: shuffle must be True or False, got {short_repr(shuffle)}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"fit: progress must be None, True or False, got {short_repr(progress)}")
    try:  # checked even when unused; draws happen only when shuffling
        generator = make_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"fit: rng must be None, a non-negative int seed or a numpy.random.Generator, "
            f"got {short_repr(rng)}"
        ) from exc

    # (start, stop, weight): a batch's mean loss times its share of the samples.
    batches = [(s, min(s + step, n), (min(s + step, n) - s) / n) for s in range(0, n, step)]
    last_good, good_epoch = _copy_parameters(xp, model), 0  # the restore point and its epoch
    history: list[float] = []
    # tqdm's disable=None means "only on a terminal".
    bar = tqdm(range(1, n_epochs + 1), desc="fit", unit="epoch", leave=True,
               disable=None if progress is None else not progress)
    first_step: list[tuple[Module, dict[str, Any]]] | None = model._snapshot()
    try:
        for epoch in bar:
            xe, ye = x, y
            if shuffle:
                order = xp.asarray(generator.permutation(n), device=array_api_compat.device(x))
                xe, ye = xp.take(x, order, axis=0), xp.take(y, order, axis=0)
            total: Any = None
            for start, stop, weight in batches:
                batch_loss = _step(model, loss_fn, xe[start:stop, ...], ye[start:stop, ...],
                                   learning_rate, first_step)
                first_step = None
                weighted = batch_loss * weight
                total = weighted if total is None else total + weighted
            total, checked = persist_parameters(model, total, _parameter_check(xp, model))
            if is_array_api_obj(total) and checked is not None:
                # one sync per epoch: the loss itself while every parameter is finite
                value = float(total + checked)
                finite = math.isfinite(value)
                if not finite:
                    value = float(total)
            else:  # a loss of another type, or a model without parameters
                value = float(total)
                finite = math.isfinite(value) and (checked is None or
                                                   math.isfinite(float(checked)))
            history.append(value)
            if not finite:
                model._assign_parameters(last_good)
                model._clear_state()
                kept = f"after epoch {good_epoch}" if good_epoch else "to their initial values"
                what = (f"the loss of epoch {epoch} is {value}" if not math.isfinite(value) else
                        f"the parameters overflowed to NaN or infinity in epoch {epoch} (its "
                        f"loss was {value:.6g})")
                error = FloatingPointError(
                    f"fit: {what}; parameters restored {kept}. Try a smaller learning rate."
                )
                error.history = history  # type: ignore[attr-defined]
                raise error
            last_good, good_epoch = _copy_parameters(xp, model), epoch
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
    finally:
        bar.close()
    return history


def _step(model: Any, loss_fn: Any, xb: Any, yb: Any, lr: float, undo: Any) -> Any:
    """One forward/loss/backward/update; the batch's mean loss as the loss returned it."""
    try:
        batch_loss = loss_fn.forward(model.forward(xb), yb)
        model.backward(loss_fn.backward())
        model.update_params(lr)
    except BaseException:
        if undo is not None:  # the very first step: nothing was trained yet, so undo it all
            Module._restore(undo)
        raise
    return batch_loss


def _parameter_check(xp: Any, model: Module) -> Any:
    """``0 * (the sum of every parameter's sum)``, a 0-d array (None without parameters): 0
    while the parameters are finite, NaN as soon as one is NaN or infinite (0 * inf is NaN).
    Added to the epoch's loss, it leaves the loss exactly as it is, so fit still syncs once
    per epoch, for one reduction per parameter. (Finite parameters whose sum overflows count
    as overflowed too: with values that near the float maximum the loss has overflowed too.)"""
    sums = None
    for p in model.parameters():
        sums = xp.sum(p) if sums is None else sums + xp.sum(p)
    return None if sums is None else 0 * sums


def _copy_parameters(xp: Any, model: Module) -> dict[str, Any]:
    """Copies (updates are in place on NumPy/torch), made with the data's namespace, which
    the model's forward has accepted (array_namespace per parameter costs more than a small
    model's step)."""
    return {name: xp.asarray(p, copy=True) for name, p in model.named_parameters()}


def _check_model(model: Any) -> None:
    for method in ("forward", "backward", "update_params"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"fit: model has no {method}() method ({type(model).__name__})")
    if not isinstance(model, Module):
        raise TypeError(
            f"fit: model must be an xmlp.Module (got {type(model).__name__}): fit lists, "
            "restores and persists parameters through named_parameters(). Subclass xmlp.Module "
            "or wrap your layers in xmlp.Sequential."
        )


def _positive_int(value: Any, label: str) -> int:
    """A positive int (NumPy ints too) up to sys.maxsize (what range() and tqdm can count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"fit: {label} must be a positive int, got {short_repr(value)}")
    number = int(value)
    if not 1 <= number <= sys.maxsize:
        limit = f" up to {sys.maxsize}" if number > 0 else ""  # named only when passed
        raise ValueError(f"fit: {label} must be a positive int{limit}, got {short_repr(value)}")
    return number


def _check_data(x: Any, y: Any) -> tuple[Any, int]:
    """(namespace of x and y, number of samples)."""
    for label, a in (("x", x), ("y", y)):
        if not is_array_api_obj(a):
            raise TypeError(f"fit: {label} must be an array, got {type(a).__name__}")
    try:
        xp = array_namespace(x, y)
    except TypeError as exc:
        raise TypeError(f"fit: x and y must be arrays of one namespace: {exc}") from exc
    if x.ndim < 1 or y.ndim < 1:
        raise ValueError(
            f"fit: x and y need a leading sample axis, got shapes {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    n, n_y = x.shape[0], y.shape[0]
    for label, count in (("x", n), ("y", n_y)):
        if count is None or (isinstance(count, float) and math.isnan(count)):
            raise ValueError(
                f"fit: the number of samples of {label} is unknown (a Dask array with unknown "
                "chunk sizes?); call .compute_chunk_sizes() first."
            )
    if n != n_y:
        raise ValueError(f"fit: x has {n} samples but y has {n_y}")
    if n < 1:
        raise ValueError("fit: x and y hold no samples")
    return xp, int(n)
