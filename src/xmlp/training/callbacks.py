"""What :func:`xmlp.fit` runs around its epochs besides training: callback objects
(:class:`Callback`), :class:`EarlyStopping` (Keras' semantics), and the learning-rate schedule's
step, driven by :class:`EpochEnd`.

After each epoch (its loss, accuracy and validation values already in the History), in this
order: each callback object's ``on_epoch_end(epoch, history)`` (``early_stopping=`` first),
then the ``callback=`` function, then the schedule's epoch step (``scheduler.step()``;
ReduceLROnPlateau's ``step(val_loss)``, or ``step(loss)`` without validation data; a per-batch
schedule such as OneCycleLR was stepped after every batch instead). Every one of them runs every
epoch; training stops after the epoch when any of them returned a true value. Epochs are
counted from 1, as ``History`` counts them. When training ends without an error, each callback
object's ``on_train_end(history)`` runs (EarlyStopping puts back the best weights there).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ..backend import real_as_float, short_repr
from ..nn.module import Module
from ..schedules import ReduceLROnPlateau, non_negative_int

__all__ = ["MONITORED", "Callback", "EarlyStopping", "EpochEnd"]

#: The History lists a callback can monitor: the training loss (the History itself) and the
#: others, recorded as fit documents (validation values with validation_data, accuracies for a
#: CrossEntropyLoss).
MONITORED = ("loss", "val_loss", "accuracy", "val_accuracy")


class Callback:
    """The base of fit's callback objects: override the methods you need.

    ``fit(..., callbacks=[...])`` sets :attr:`model` (the model being trained), then calls
    :meth:`on_train_begin`, :meth:`on_epoch_end` after every epoch, and :meth:`on_train_end`
    when training ends without an error. Any object with an ``on_epoch_end(epoch, history)``
    method works as a callback; the others are called when it has them.

    Example:
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> class StopBelow(xmlp.Callback):
        ...     def on_epoch_end(self, epoch, history):
        ...         return history[-1] < 0.2          # True stops training after this epoch
        >>> history = xmlp.fit(xmlp.MLP(1, 10, 1, rng=0), *generate_data(), epochs=500,
        ...                    lr=0.1, callbacks=[StopBelow()], progress=False)
        >>> len(history) < 500, history.stopped_epoch == len(history)
        (True, True)
    """

    model: Module | None = None

    def set_model(self, model: Module) -> None:
        """Called by fit before training: the model the callback sees."""
        self.model = model

    def on_train_begin(self, history: Any) -> None:
        """Before the first epoch (``history`` is empty)."""

    def on_epoch_end(self, epoch: int, history: Any) -> bool | None:
        """After epoch ``epoch`` (1-based), its values in ``history``; True stops training."""
        return None

    def on_train_end(self, history: Any) -> None:
        """After the last epoch, when training ended without an error."""


class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving: Keras'
    ``EarlyStopping``, epochs counted from 1.

    An epoch improves when its value beats the best so far by more than ``min_delta``
    (``mode="min"``: ``value < best - min_delta``; "max": ``value > best + min_delta``).
    Training stops after ``patience`` epochs in a row without improvement (``patience=0``:
    after the first one), never after the first epoch. Each fit starts afresh.

    With ``restore_best_weights=True``, the model gets back the parameters (and buffers:
    running statistics) of its best epoch when training ends (stopped early or not; as Keras 3,
    whose weights include the non-trainable ones): copies are kept in the parameters'
    namespace, device and dtype each time an epoch improves (one copy of the parameters).
    Only the model is restored, as in Keras: the optimizer's state (moments, step count) and
    the learning-rate schedule stay as the last epoch left them. Stored activations and
    gradients are cleared.

    Args:
        monitor: the History list to watch: "val_loss" (default; needs ``validation_data``),
            "loss", "accuracy" or "val_accuracy" (a :class:`xmlp.CrossEntropyLoss`).
        min_delta: the least change that counts as an improvement (a number >= 0; default 0).
        patience: epochs without improvement before stopping (an int >= 0; default 0).
        verbose: 0 (default) or 1 (or False and True): print a line when it stops and when
            it restores weights.
        mode: "auto" (default: "max" for accuracies, "min" for losses), "min" or "max".
        baseline: None, or a value to beat: while no epoch has beaten it, epochs count as
            without improvement (training stops after ``patience`` epochs).
        restore_best_weights: put back the best epoch's parameters at the end (default False,
            as in Keras).
        start_from_epoch: epochs to train before watching (an int >= 0; default 0).

    After fit: :attr:`best` (the best value), :attr:`best_epoch` (its epoch), :attr:`wait`
    (epochs since it), :attr:`stopped_epoch` (None when it did not stop training). fit copies
    the last two into ``History.best_epoch`` and ``History.stopped_epoch``.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> x, y = generate_data()
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> stop = xmlp.EarlyStopping(monitor="val_loss", patience=5,
        ...                           restore_best_weights=True)
        >>> history = xmlp.fit(model, x[:80], y[:80], epochs=1000, lr=0.1,
        ...                    validation_data=(x[80:], y[80:]), early_stopping=stop,
        ...                    progress=False)
        >>> history.stopped_epoch == len(history) < 1000
        True
        >>> history.best_epoch == 1 + int(np.argmin(history.val_loss))
        True
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        owner = "EarlyStopping"
        if not isinstance(monitor, str) or monitor not in MONITORED:
            raise ValueError(f"{owner}: monitor must be one of {', '.join(MONITORED)} (the "
                             f"lists of fit's History), got {short_repr(monitor)}")
        if not isinstance(mode, str) or mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got "
                             f"{short_repr(mode)}")
        self.monitor, self.mode = monitor, mode
        self.min_delta = _finite(min_delta, "min_delta", owner, minimum=0.0)
        self.patience = non_negative_int(patience, "patience", owner)
        self.start_from_epoch = non_negative_int(start_from_epoch, "start_from_epoch", owner)
        self.baseline = None if baseline is None else _finite(baseline, "baseline", owner)
        if not isinstance(restore_best_weights, bool):
            raise TypeError(f"{owner}: restore_best_weights must be True or False, got "
                            f"{short_repr(restore_best_weights)}")
        level: Any = verbose  # an int, as Keras takes it: True and False are 1 and 0 there too
        if not isinstance(level, numbers.Integral):
            raise TypeError(f"{owner}: verbose must be 0 or 1, got {short_repr(verbose)}")
        if level not in (0, 1):
            raise ValueError(f"{owner}: verbose must be 0 or 1, got {short_repr(verbose)}")
        self.restore_best_weights, self.verbose = restore_best_weights, int(verbose)
        # "max" for accuracies, "min" for losses (what "auto" means for every key monitored)
        self.maximize = mode == "max" or (mode == "auto" and "accuracy" in monitor)
        self.on_train_begin(None)

    def on_train_begin(self, history: Any) -> None:
        self.best = -float("inf") if self.maximize else float("inf")
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self.best_weights: dict[str, Any] | None = None
        self.best_buffers: dict[str, Any] = {}

    def _improves(self, value: float, reference: float) -> bool:
        if self.maximize:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_epoch_end(self, epoch: int, history: Any) -> bool | None:
        """Count epoch ``epoch`` (1-based); True when training should stop after it."""
        value = monitored(history, self.monitor)
        if epoch <= self.start_from_epoch:
            return None
        if self.restore_best_weights and self.best_weights is None:
            self._keep(epoch)  # none improved yet: these are the best so far
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self._keep(epoch)
            # the count restarts only once the baseline, too, is beaten
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return None
        if self.wait >= self.patience and epoch > 1:
            self.stopped_epoch = epoch
            return True
        return None

    def _keep(self, epoch: int) -> None:
        if self.model is None:
            raise RuntimeError("EarlyStopping: restore_best_weights keeps the model's "
                               "parameters, but no model was set: fit sets it "
                               "(set_model(model)) before the first epoch")
        self.best_weights = {name: module.spec.xp.asarray(getattr(module, leaf), copy=True)
                             for name, (module, leaf) in _slots(self.model)}
        self.best_buffers = {name: module.spec.xp.asarray(getattr(module, leaf), copy=True)
                             for name, (module, leaf) in _slots(self.model, buffers=True)}
        if self.best_epoch is None:
            self.best_epoch = epoch

    def on_train_end(self, history: Any) -> None:
        """Say where it stopped (``verbose``) and put back the best weights."""
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch}.")
            assert self.model is not None  # best_weights were kept from it
            self.model.assign_parameters(self.best_weights)
            self.model.assign_buffers(self.best_buffers)
            self.model.clear_state()
            self.best_weights, self.best_buffers = None, {}  # the model holds these now

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, min_delta={self.min_delta!r}, "
                f"patience={self.patience!r}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights!r})")


def monitored(history: Any, key: str) -> float:
    """The last value of History list ``key`` ("loss": the History itself)."""
    return float((history if key == "loss" else getattr(history, key))[-1])


def _slots(model: Module, buffers: bool = False) -> list[tuple[str, tuple[Module, str]]]:
    named = model.named_buffers() if buffers else model.named_parameters()
    return [(name, model.owner_of(name, buffer=buffers)) for name, _ in named]


def _finite(value: Any, label: str, owner: str, minimum: float = -float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {label} must be a real number, got {short_repr(value)}")
    number = real_as_float(value)
    if not (abs(number) < float("inf") and number >= minimum):
        bound = "a finite number" + (f" >= {minimum:g}" if minimum > -float("inf") else "")
        raise ValueError(f"{owner}: {label} must be {bound}, got {short_repr(value)}")
    return number


class EpochEnd:
    """fit's end of an epoch (the order is the module's docs): ``ends(epoch, history)`` ->
    whether to stop; :meth:`finish` after the last epoch. Made once the call is checked: it
    starts the callbacks (``set_model``, ``on_train_begin``)."""

    def __init__(self, model: Module, history: Any, callbacks: Sequence[Any],
                 callback: Callable[[int, Any], Any] | None, scheduler: Any) -> None:
        self.callbacks, self.callback = list(callbacks), callback
        # the schedule stepped here, once per epoch (a per-batch one is stepped by the step)
        self.scheduler = None if scheduler is None or scheduler.per_step else scheduler
        self.plateau = isinstance(self.scheduler, ReduceLROnPlateau)
        for item in self.callbacks:
            if callable(getattr(item, "set_model", None)):
                item.set_model(model)
            if callable(getattr(item, "on_train_begin", None)):
                item.on_train_begin(history)

    def __call__(self, epoch: int, history: Any) -> bool:
        stop = False
        for item in self.callbacks:
            stop = bool(item.on_epoch_end(epoch, history)) or stop
        if self.callback is not None:
            stop = bool(self.callback(epoch, history)) or stop
        if self.scheduler is not None:
            if self.plateau:  # ReduceLROnPlateau: on the validation loss if there is one
                self.scheduler.step(history.val_loss[-1] if history.val_loss else history[-1])
            else:
                self.scheduler.step()
        if stop:
            history.stopped_epoch = epoch
        return stop

    def finish(self, history: Any) -> None:
        """After the last epoch: each callback's ``on_train_end``, and the History's
        ``best_epoch`` from the first EarlyStopping."""
        for item in self.callbacks:
            if callable(getattr(item, "on_train_end", None)):
                item.on_train_end(history)
        stoppers = [item for item in self.callbacks if isinstance(item, EarlyStopping)]
        if stoppers:
            history.best_epoch = stoppers[0].best_epoch
