"""fit(): the seed's training loop as a function, with mini-batches, shuffling, progress,
optimizers, validation data and a History of losses (and accuracies for classifiers)."""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj, is_dask_namespace
from tqdm import tqdm

from ._backend import (
    check_learning_rate,
    make_rng,
    namespace_name,
    persist_parameters,
    short_repr,
)
from .losses import CrossEntropyLoss, MSELoss
from .module import Module
from .optim import Optimizer
from .streaming import batch_source, model_namespace, streams

__all__ = ["History", "fit"]


class History(list[float]):  # a list of floats, as fit always returned
    """What :func:`fit` returns: the training loss of each epoch (a list of Python floats, so
    code written for the plain list keeps working), with

    - ``val_loss``: the loss on ``validation_data`` after each epoch (empty without it);
    - ``accuracy``: the fraction of training samples classified right during each epoch,
      and ``val_accuracy`` on the validation data after it (both only when the loss is a
      :class:`xmlp.CrossEntropyLoss`, empty otherwise).

    Args:
        losses: the training loss of each epoch so far (Python floats).

    Example:
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> x, y = generate_data()
        >>> history = xmlp.fit(xmlp.MLP(1, 10, 1, rng=0), x, y, epochs=150, lr=0.1,
        ...                    progress=False)
        >>> len(history), history[-1] < 0.15, history.val_loss
        (150, True, [])
    """

    def __init__(self, losses: Any = ()) -> None:
        super().__init__(losses)
        self.val_loss: list[float] = []
        self.accuracy: list[float] = []
        self.val_accuracy: list[float] = []


def fit(
    model: Module,
    x: Any,
    y: Any,
    *,
    epochs: int,
    lr: float | None = None,
    loss: Any = None,
    optimizer: Optimizer | None = None,
    validation_data: tuple[Any, Any] | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    rng: Any = None,
    progress: bool | None = None,
    callback: Callable[[int, History], Any] | None = None,
) -> History:
    """Train ``model``; returns a :class:`History` of each epoch's loss as Python floats.

    Args:
        model: an :class:`xmlp.Module` (MLP, Sequential, Linear or your own subclass).
        x: inputs (N, ...), in the model's namespace (or Dask arrays: see below).
        y: targets (N, ...), same namespace as ``x`` (class indices or probabilities for
            :class:`xmlp.CrossEntropyLoss`).
        epochs: number of passes over the data (a positive int).
        lr: learning rate of plain SGD (``model.update_params(lr)``, a finite real >= 0).
        optimizer: an :mod:`xmlp.optim` optimizer built on ``model``, used instead of plain
            SGD (its own ``lr`` applies: give ``lr`` or ``optimizer``, not both).
        loss: a loss with ``forward(y_pred, t)`` returning the *mean* over the batch and
            ``backward()``; default :class:`xmlp.MSELoss`.
        validation_data: ``(x_val, y_val)`` evaluated after every epoch (without training on
            it): ``history.val_loss`` (and ``history.val_accuracy`` for a classifier).
        batch_size: samples per step; None is full batch (one step per epoch, as in the seed).
            The last batch may be shorter.
        shuffle: draw a new order of the samples each epoch from ``rng``: the same seed gives
            the same history and weights.
        rng: None, an int seed or a ``numpy.random.Generator``, for ``shuffle``.
        progress: a tqdm bar per epoch on stderr; None shows it only when stderr is a terminal.
        callback: called as ``callback(epoch, history)`` after each epoch (1-based; after its
            validation, with the epoch's values in ``history``); a true return value stops
            training there. For stopping rules, learning-rate schedules or logging between
            epochs, without calling fit once per epoch (each call sets up checks, batches, a
            restore point and a progress bar again).

    Each epoch's loss (and accuracy) is the mean over samples of the per-batch values (a batch
    weighs by its size), computed with the parameters as they were at each step, like the
    seed's loop. Validation values use the parameters at the end of the epoch. Losses stay
    arrays during an epoch and become floats at its end: a few device syncs per epoch, none
    per step. On Dask the parameters and the optimizer's state are persisted once per epoch
    so the graph does not grow.

    Dask data, a model elsewhere (NumPy, CuPy, torch...): fit streams. It computes one chunk of
    x (and the aligned rows of y) at a time, the next one in a background thread while the
    current one trains, converts each once to the model's namespace, device and dtype, and
    runs the same batches as in memory (shuffle=False: exactly those; shuffle=True: chunk order
    and samples within each chunk, see docs/streaming.md). batch_size is required there.

    Raises:
        FloatingPointError: an epoch's training loss is NaN or infinite, or a parameter is after
            it (a huge learning rate can overflow the parameters in the last step of an epoch
            whose loss was still finite). The parameters (and the optimizer's state) are
            restored to those after the last epoch whose loss and parameters were all finite
            (the initial ones if none), stored activations and gradients are cleared, and
            ``exc.history`` holds the History so far (the last loss is the failed epoch's).
        TypeError / ValueError: bad arguments, checked before anything runs. Data is checked
            by the model and loss as they read it: validation data in memory on its first
            batch before the first step ("fit: validation_data was refused: ..."), the rest
            of the data during the first epoch. Refused in the first step, the model is left
            exactly as it was; later in the first epoch, the parameters (the same arrays,
            with their values) and the optimizer are put back as they were before the call,
            and stored activations and gradients are cleared.

    Example:
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> x, y = generate_data()
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> history = xmlp.fit(model, x, y, epochs=150, lr=0.1, progress=False)
        >>> history[-1] < 0.15                     # the seed notebook's 150 epochs of SGD
        True
        >>> opt = xmlp.optim.Adam(model, lr=0.01)
        >>> history = xmlp.fit(model, x, y, epochs=5, optimizer=opt, batch_size=20,
        ...                    shuffle=True, rng=0, validation_data=(x, y), progress=False)
        >>> len(history), len(history.val_loss)
        (5, 5)
    """
    _check_model(model)
    loss_fn = MSELoss() if loss is None else loss
    for method in ("forward", "backward"):
        if not callable(getattr(loss_fn, method, None)):
            raise TypeError(f"fit: loss must have a {method}() method, got {type(loss).__name__}")
    n_epochs = _positive_int(epochs, "epochs")
    update = _update_rule(model, lr, optimizer)
    xp, n = _check_data(x, y, "x", "y", model)
    classifier = isinstance(loss_fn, CrossEntropyLoss)
    val_data = _check_validation(validation_data, xp, model)
    step = n if batch_size is None else min(_positive_int(batch_size, "batch_size"), n)
    if not isinstance(shuffle, bool):
        raise TypeError(f"fit: shuffle must be True or False, got {short_repr(shuffle)}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"fit: progress must be None, True or False, got {short_repr(progress)}")
    if callback is not None and not callable(callback):
        raise TypeError(f"fit: callback must be None or a function of (epoch, history), got "
                        f"{short_repr(callback)}")
    try:  # checked even when unused; draws happen only when shuffling
        generator = make_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"fit: rng must be None, a non-negative int seed or a numpy.random.Generator, "
            f"got {short_repr(rng)}"
        ) from exc

    if val_data is not None and not streams(model, val_data[0]):
        _probe_validation(model, loss_fn, val_data[0], val_data[1], min(step, val_data[2]))

    # in-memory slices, or Dask chunks streamed into a model that lives elsewhere
    source = batch_source(model, x, y, xp=xp, n=n, step=step, full_batch=batch_size is None,
                          shuffle=shuffle, rng=generator, epochs=n_epochs)
    validation = None  # (its batches, in order, of the training's size; its label count)
    if val_data is not None:
        xv, yv, nv = val_data
        xp_val = array_namespace(xv, yv)
        validation = (batch_source(model, xv, yv, xp=xp_val, n=nv, step=step,
                                   full_batch=False, shuffle=False, rng=generator,
                                   epochs=n_epochs), _label_count(xp_val, yv))
    lazy = is_dask_namespace(source.xp)  # the model on Dask: its graphs grow with each step
    # the restore point and its epoch, copied in the namespace the model's batches are in
    last_good, good_epoch = _copy_parameters(source.xp, model.named_parameters()), 0
    last_good_state = None if optimizer is None else optimizer._snapshot()
    history = History()
    # tqdm's disable=None means "only on a terminal".
    bar = tqdm(range(1, n_epochs + 1), desc="fit", unit="epoch", leave=True,
               disable=None if progress is None else not progress)
    first_step: list[tuple[Module, dict[str, Any]]] | None = model._snapshot()
    # a call refused in the first epoch (a later batch, or the validation data) puts the
    # parameters and optimizer back; None once the first epoch is validated (the first step
    # undoes itself, activations included: first_step)
    undo: tuple[dict[str, Any], dict[str, Any], Any] | None = (
        dict(model.named_parameters()), last_good, last_good_state)
    try:
        for epoch in bar:
            total: Any = None
            hits: Any = None
            for i, (xb, yb, weight) in enumerate(source.epoch(), start=1):
                batch_loss, output = _step(model, loss_fn, xb, yb, update, first_step)
                first_step = None
                weighted = batch_loss * weight
                total = weighted if total is None else total + weighted
                if classifier:
                    batch_hits = _hits(source.xp, output, _labels(source.xp, yb))
                    hits = batch_hits if hits is None else hits + batch_hits
                if lazy and i % _DASK_PERSIST_STEPS == 0 and i < len(source):
                    total, hits = _persist(model, optimizer, total, hits)
            # listed once per epoch: named_parameters builds every name anew, and with a
            # few steps an epoch (the digits: 8) such per-epoch work shows in the step time
            named = list(model.named_parameters())
            checked = _parameter_check(source.xp, [p for _, p in named])
            if lazy:
                extra = [] if optimizer is None else optimizer._state_arrays()
                total, checked, hits, *persisted = persist_parameters(
                    model, total, checked, hits, *extra)
                _rebind_state(optimizer, extra, persisted)
                named = list(model.named_parameters())  # rebound to the persisted arrays
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
            if classifier:
                history.accuracy.append(float(hits) / _label_count(xp, y))
            if not finite:
                model._assign_parameters(last_good)
                model._clear_state()
                if optimizer is not None and last_good_state is not None:
                    optimizer._restore(last_good_state)
                kept = f"after epoch {good_epoch}" if good_epoch else "to their initial values"
                what = (f"the loss of epoch {epoch} is {value}" if not math.isfinite(value) else
                        f"the parameters overflowed to NaN or infinity in epoch {epoch} (its "
                        f"loss was {value:.6g})")
                restored = ("parameters and optimizer state" if optimizer is not None
                            else "parameters")
                error = FloatingPointError(
                    f"fit: {what}; {restored} restored {kept}. Try a smaller learning rate."
                )
                error.history = history  # type: ignore[attr-defined]
                undo = None  # restored above, as documented for this error
                raise error
            if validation is not None:
                try:
                    _validate(model, loss_fn, validation, classifier, history)
                except (TypeError, ValueError) as exc:
                    raise _refused(exc) from exc
            undo = None
            last_good, good_epoch = _copy_parameters(source.xp, named), epoch
            if optimizer is not None:
                last_good_state = optimizer._snapshot()
            if not bar.disable:  # a disabled bar still formats the postfix
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
            if callback is not None and callback(epoch, history):
                break
    except Exception:
        if undo is not None and first_step is None:
            _undo_first_epoch(model, optimizer, *undo)
        raise
    finally:
        source.close()
        if validation is not None:
            validation[0].close()
        bar.close()
    return history


# On Dask, every step adds its layers to the graph of the parameters it rebinds, and building
# each new operation merges its inputs' layers: the cost of a step grows with the steps since
# the last persist (measured: one epoch of 45 mini-batch Adam steps on the digits took 133 s
# when persisted once per epoch). So mini-batch epochs are persisted every few steps too.
_DASK_PERSIST_STEPS = 4


def _persist(model: Module, optimizer: Any, total: Any, hits: Any) -> tuple[Any, Any]:
    """Persist the parameters, the optimizer's state and the running sums (Dask only)."""
    extra = [] if optimizer is None else optimizer._state_arrays()
    total, hits, *persisted = persist_parameters(model, total, hits, *extra)
    _rebind_state(optimizer, extra, persisted)
    return total, hits


def _rebind_state(optimizer: Any, extra: list[Any], persisted: list[Any]) -> None:
    """Give the optimizer its persisted state arrays, where persisting replaced them (Dask).
    Arrays it returned as they were are left alone: rebinding them would make the optimizer
    lay its state out again (a copy of it all, every epoch: NumPy's packed Adam state)."""
    if optimizer is not None and any(a is not b for a, b in zip(persisted, extra, strict=True)):
        optimizer._set_state_arrays(persisted)


def _update_rule(model: Module, lr: Any, optimizer: Any) -> Any:
    """A function of no arguments that applies one update: optimizer.step or plain SGD."""
    if optimizer is None:
        if lr is None:
            raise TypeError("fit: give lr (plain SGD with that learning rate) or optimizer= "
                            "(an xmlp.optim optimizer built on the model)")
        learning_rate = check_learning_rate(lr)
        return lambda: model.update_params(learning_rate)
    if lr is not None:
        raise TypeError(
            "fit: give lr or optimizer, not both: the optimizer uses its own learning rate "
            f"({type(optimizer).__name__}.lr = {getattr(optimizer, 'lr', '?')}); set that instead"
        )
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"fit: optimizer must be an xmlp.optim optimizer (SGD, Adam, AdamW), got "
            f"{type(optimizer).__name__}"
        )
    if optimizer.model is not model:
        raise ValueError(
            f"fit: the optimizer was built on another model ({type(optimizer.model).__name__} "
            f"at {id(optimizer.model):#x}); build it on the model being trained, e.g. "
            f"xmlp.optim.{type(optimizer).__name__}(model, ...)"
        )
    return optimizer.step


def _step(model: Any, loss_fn: Any, xb: Any, yb: Any, update: Any, undo: Any) -> Any:
    """One forward/loss/backward/update; (the batch's mean loss as the loss returned it, the
    model's output)."""
    try:
        output = model.forward(xb)
        batch_loss = loss_fn.forward(output, yb)
        model.backward(loss_fn.backward())
        update()
    except BaseException:
        if undo is not None:  # the very first step: nothing was trained yet, so undo it all
            Module._restore(undo)
        raise
    return batch_loss, output


def _labels(xp: Any, y: Any) -> Any:
    """Class indices of the targets: y itself, or the argmax of class probabilities."""
    if xp.isdtype(y.dtype, "integral"):
        return y
    return xp.argmax(y, axis=-1)


def _hits(xp: Any, output: Any, labels: Any) -> Any:
    """How many rows of ``output`` have their largest value at the label (an integer array:
    no host sync)."""
    predicted = xp.argmax(output, axis=-1)
    if labels.dtype != predicted.dtype:
        labels = xp.astype(labels, predicted.dtype)
    return xp.count_nonzero(predicted == labels)


def _validate(model: Any, loss_fn: Any, validation: tuple[Any, int], classifier: bool,
              history: History) -> None:
    """Append the validation loss (and accuracy) with the parameters as they are now;
    ``validation`` is (a batch source: in memory, or Dask streamed chunk by chunk; the number
    of class labels of the targets)."""
    source, n_labels = validation
    bxp = source.xp
    evaluate = getattr(loss_fn, "predict", None) or loss_fn.forward
    total: Any = None
    hits: Any = None
    for xb, yb, weight in source.epoch():
        output = model.predict(xb)
        weighted = evaluate(output, yb) * weight
        total = weighted if total is None else total + weighted
        if classifier:
            batch_hits = _hits(bxp, output, _labels(bxp, yb))
            hits = batch_hits if hits is None else hits + batch_hits
    history.val_loss.append(float(total))
    if classifier:
        history.val_accuracy.append(float(hits) / n_labels)


def _probe_validation(model: Module, loss_fn: Any, xv: Any, yv: Any, k: int) -> None:
    """Run the model and the loss on the first validation batch (``k`` samples), storing
    nothing: data they refuse is refused before the first step, not after the first epoch.
    A loss without predict() is left out: its forward() would be called once more."""
    evaluate = getattr(loss_fn, "predict", None)
    try:
        output = model.predict(xv[:k, ...])
        if evaluate is not None:
            evaluate(output, yv[:k, ...])
    except (TypeError, ValueError) as exc:
        raise _refused(exc) from exc


def _refused(exc: Exception) -> Exception:
    """The model's or loss's TypeError / ValueError about validation data, said as fit's."""
    if type(exc) not in (TypeError, ValueError) or str(exc).startswith("fit: "):
        return exc
    return type(exc)(f"fit: validation_data was refused: {exc}")


def _undo_first_epoch(model: Module, optimizer: Any, arrays: dict[str, Any],
                      values: dict[str, Any], state: Any) -> None:
    """Put back the parameter arrays themselves, their values (where NumPy and torch updated
    them in place) and the optimizer's state, as they were before fit. Stored activations and
    gradients are cleared, as after a non-finite epoch: keeping the previous ones through the
    epoch would hold one more batch in memory (streamed fit's bound is a few chunks)."""
    model._assign_parameters(arrays)
    model._clear_state()
    for name, p in arrays.items():
        xp, before = array_namespace(p), values[name]
        same = (p == before) | (xp.isnan(p) & xp.isnan(before))
        if not bool(xp.all(same)):
            p[...] = before
    if optimizer is not None:  # state is its snapshot, None without an optimizer
        optimizer._restore(state)


def _check_validation(data: Any, xp: Any, model: Module) -> tuple[Any, Any, int] | None:
    """(x_val, y_val, number of samples), or None without validation data."""
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"fit: validation_data must be a pair (x_val, y_val), got {type(data).__name__}"
        )
    xv, yv = data
    xp_val, n = _check_data(xv, yv, "x_val", "y_val", model)
    # the training data's namespace, the model's (next to streamed training data), or Dask
    # arrays that are streamed to the model
    if xp_val is not xp and xp_val is not model_namespace(model) and not streams(model, xv):
        # the model's namespace is the fix that always works (Dask training data may stream
        # into a NumPy or torch model, and dask.array.asarray of torch data does not)
        model_ns = namespace_name(model_namespace(model) or xp)
        raise TypeError(
            "fit: validation_data must be arrays of the training data's namespace (or the "
            f"model's, or Dask arrays), got {namespace_name(xp_val)} arrays next to "
            f"{namespace_name(xp)} training data; convert them with {model_ns}.asarray(...)"
        )
    return xv, yv, n


def _label_count(xp: Any, y: Any) -> int:
    """How many class labels targets ``y`` hold: all its elements for class indices, all but
    the class axis for probabilities."""
    return math.prod(y.shape if xp.isdtype(y.dtype, "integral") else y.shape[:-1])


def _parameter_check(xp: Any, params: list[Any]) -> Any:
    """``0 * (the sum of every parameter's sum)``, a 0-d array (None without parameters): 0
    while the parameters are finite, NaN as soon as one is NaN or infinite (0 * inf is NaN).
    Added to the epoch's loss, it leaves the loss exactly as it is, so fit still syncs once
    per epoch, for one reduction per parameter. (Finite parameters whose sum overflows count
    as overflowed too: with values that near the float maximum the loss has overflowed too.)"""
    sums = None
    for p in params:
        sums = xp.sum(p) if sums is None else sums + xp.sum(p)
    return None if sums is None else 0 * sums


def _copy_parameters(xp: Any, named: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Copies of the model's ``named_parameters()`` (updates are in place on NumPy/torch),
    made with the data's namespace, which the model's forward has accepted (array_namespace
    per parameter costs more than a small model's step)."""
    return {name: xp.asarray(p, copy=True) for name, p in named}


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


def _check_data(x: Any, y: Any, x_label: str, y_label: str,
                model: Module) -> tuple[Any, int]:
    """(namespace of x and y, number of samples)."""
    for label, a in ((x_label, x), (y_label, y)):
        if not is_array_api_obj(a):
            raise TypeError(f"fit: {label} must be an array, got {type(a).__name__}")
    try:
        xp = array_namespace(x, y)
    except TypeError as exc:
        x_ns, y_ns = (namespace_name(array_namespace(a)) for a in (x, y))
        # the model's namespace is the fix that always works (dask.array.asarray does not
        # take torch tensors); a model without parameters takes x's
        model_ns = model_namespace(model)
        fix = (f"convert both with {namespace_name(model_ns)}.asarray(...), the model's "
               "namespace" if model_ns is not None else f"convert {y_label} with "
               f"{x_ns}.asarray(...)")
        raise TypeError(
            f"fit: {x_label} and {y_label} must be arrays of one namespace, got {x_ns} and "
            f"{y_ns} arrays; {fix}"
        ) from exc
    if x.ndim < 1 or y.ndim < 1:
        raise ValueError(
            f"fit: {x_label} and {y_label} need a leading sample axis, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    n, n_y = x.shape[0], y.shape[0]
    for label, count in ((x_label, n), (y_label, n_y)):
        if count is None or (isinstance(count, float) and math.isnan(count)):
            raise ValueError(
                f"fit: the number of samples of {label} is unknown (a Dask array with unknown "
                "chunk sizes?); call .compute_chunk_sizes() first."
            )
    if n != n_y:
        raise ValueError(f"fit: {x_label} has {n} samples but {y_label} has {n_y}")
    if n < 1:
        raise ValueError(f"fit: {x_label} and {y_label} hold no samples")
    return xp, int(n)
