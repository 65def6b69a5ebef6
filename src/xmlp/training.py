"""fit(): the seed's training loop as a function, with mini-batches, shuffling and progress."""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj
from tqdm import tqdm

from ._backend import check_learning_rate, make_rng, persist_parameters
from .losses import MSELoss
from .module import Module
from .streaming import batch_source

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

    Dask data, a model elsewhere (NumPy, CuPy, torch...): fit streams. It computes one chunk of
    x (and the aligned rows of y) at a time, the next one in a background thread while the
    current one trains, converts each once to the model's namespace, device and dtype, and
    runs the same batches as in memory (shuffle=False: exactly those; shuffle=True: chunk order
    and samples within each chunk, see docs/streaming.md). batch_size is required there.

    Raises:
        FloatingPointError: an epoch's loss is NaN or infinite. The parameters are restored to
            those after the last finite epoch (the initial ones if none), stored activations
            and gradients are cleared, and ``exc.history`` holds the losses so far (the last one
            non-finite).
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
        raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"fit: progress must be None, True or False, got {progress!r}")
    try:  # checked even when unused; draws happen only when shuffling
        generator = make_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"fit: rng must be None, a non-negative int seed or a numpy.random.Generator, "
            f"got {rng!r}"
        ) from exc

    # in-memory slices, or Dask chunks streamed into a model that lives elsewhere
    source = batch_source(model, x, y, xp=xp, n=n, step=step, full_batch=batch_size is None,
                          shuffle=shuffle, rng=generator, epochs=n_epochs)
    last_good = _copy_parameters(model)
    history: list[float] = []
    # tqdm's disable=None means "only on a terminal".
    bar = tqdm(range(1, n_epochs + 1), desc="fit", unit="epoch", leave=True,
               disable=None if progress is None else not progress)
    first_step: list[tuple[Module, dict[str, Any]]] | None = model._snapshot()
    try:
        for epoch in bar:
            total: Any = None
            for xb, yb, weight in source.epoch():
                batch_loss = _step(model, loss_fn, xb, yb, learning_rate, first_step)
                first_step = None
                weighted = batch_loss * weight
                total = weighted if total is None else total + weighted
            (total,) = persist_parameters(model, total)
            value = float(total)
            history.append(value)
            if not math.isfinite(value):
                model._assign_parameters(last_good)
                model._clear_state()
                kept = f"after epoch {epoch - 1}" if epoch > 1 else "to their initial values"
                error = FloatingPointError(
                    f"fit: the loss of epoch {epoch} is {value}; parameters restored {kept}. "
                    "Try a smaller learning rate."
                )
                error.history = history  # type: ignore[attr-defined]
                raise error
            last_good = _copy_parameters(model)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
    finally:
        source.close()
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


def _copy_parameters(model: Module) -> dict[str, Any]:
    """Copies made with each array's own namespace (updates are in place on NumPy/torch)."""
    return {
        name: array_namespace(p).asarray(p, copy=True) for name, p in model.named_parameters()
    }


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
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"fit: {label} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"fit: {label} must be a positive int, got {value!r}")
    return value


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
