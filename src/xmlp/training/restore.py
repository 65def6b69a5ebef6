"""What fit puts back when training fails.

- A non-finite epoch (:class:`RestorePoint`): when an epoch's loss, or a parameter after it, is
  NaN or infinite, fit restores the parameters, the buffers (running statistics) and the
  optimizer's state (and a learning-rate schedule's, with the rate it set) of the last epoch
  whose loss and parameters were all finite (the initial ones if none), clears stored
  activations and gradients, and raises FloatingPointError with the History so far.
- What no check could refuse before training (:class:`Undo`). :mod:`xmlp.training.checks`
  checks everything it can before the first step, so that a refused call changes nothing. Two
  things are left, and undone:

  * the first step, which may still fail where only the step itself can tell (the optimizer's
    own checks, a loss without ``predict``) or be interrupted: nothing was updated yet, and
    every module's attributes (stored activations, gradients) are put back as they were;
  * the first epoch of streamed Dask data (training or validation), whose chunks are only seen
    as they are computed: a chunk refused there (a label out of range, a masked chunk, a failed
    read) puts the parameters back into the same arrays (writing their values back where
    NumPy and torch updated them in place), the buffers, the optimizer's state and step count
    (and a learning-rate schedule with the rate it set), and clears stored activations and
    gradients, as after a non-finite epoch (holding the previous ones through the epoch would
    keep one more batch in memory).

  Data in memory is checked whole before training, so nothing else in its first epoch is undone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from array_api_compat import array_namespace

from ..nn.module import Module

__all__ = ["RestorePoint", "Undo"]


class RestorePoint:
    """Copies of the parameters, the buffers and the optimizer's state after the last good
    epoch, made with
    namespace ``xp`` (the batches', which the model accepted: array_namespace per parameter
    would cost more than a small model's step); with a learning-rate ``scheduler``, also its
    state and the optimizer's hyperparameters it sets (lr, a cycled momentum)."""

    def __init__(self, model: Module, optimizer: Any, xp: Any, scheduler: Any = None) -> None:
        self.model, self.optimizer, self.xp, self.scheduler = model, optimizer, xp, scheduler
        self.save(model.named_parameters(), 0)

    def save(self, named: Iterable[tuple[str, Any]], epoch: int) -> None:
        """Keep copies of ``named`` (the model's named parameters; updates are in place on
        NumPy and torch) and of the optimizer's state as those of ``epoch`` (0: initial)."""
        self.values = {name: self.xp.asarray(p, copy=True) for name, p in named}
        self.buffers = {name: self.xp.asarray(b, copy=True)
                        for name, b in self.model.named_buffers()}
        self.state = None if self.optimizer is None else self.optimizer._snapshot()
        self.schedule = None if self.scheduler is None else (
            self.optimizer._hyperparameters(), self.scheduler.state_dict())
        self.epoch = epoch

    def _put_back_schedule(self) -> None:
        """The optimizer's hyperparameters and the schedule's state as saved (a per-batch
        schedule steps during the epoch that is undone)."""
        if self.schedule is not None:
            hyperparameters, state = self.schedule
            self.optimizer._set_hyperparameters(dict(hyperparameters))
            self.scheduler.load_state_dict(state)

    def restore(self, epoch: int, value: float, history: Any) -> FloatingPointError:
        """Put the saved parameters and state back after the non-finite epoch ``epoch`` (its
        loss ``value``); returns the FloatingPointError for fit to raise."""
        self.model.assign_parameters(self.values)
        self.model.assign_buffers(self.buffers)
        self.model.clear_state()
        if self.state is not None:
            self.optimizer._restore(self.state)
        self._put_back_schedule()
        kept = f"after epoch {self.epoch}" if self.epoch else "to their initial values"
        what = (f"the loss of epoch {epoch} is {value}" if not math.isfinite(value) else
                f"the parameters overflowed to NaN or infinity in epoch {epoch} (its loss was "
                f"{value:.6g})")
        restored = "parameters and optimizer state" if self.state is not None else "parameters"
        error = FloatingPointError(
            f"fit: {what}; {restored} restored {kept}. Try a smaller learning rate.")
        error.history = history  # type: ignore[attr-defined]
        return error


class Undo:
    """Puts back what the first step, or the first epoch of streamed data, changed when it
    fails (see the module's docs); :meth:`stepped` after the first step, :meth:`disarm` once
    the first epoch is validated (or :meth:`restore` after a non-finite loss). As a context
    manager, it undoes when the block raises."""

    def __init__(self, model: Module, point: RestorePoint, streamed: bool) -> None:
        self.point = point  # holds the initial values and state until the first epoch ends
        self.first_step: list[tuple[Module, dict[str, Any], bool]] | None = model._snapshot()
        self.arrays = dict(model.named_parameters()) if streamed else None

    def stepped(self) -> None:
        self.first_step = None

    def disarm(self) -> None:
        self.first_step = self.arrays = None

    def restore(self, epoch: int, value: float, history: Any) -> FloatingPointError:
        """After the non-finite epoch ``epoch``: nothing left to undo; the restore point puts
        back the last finite epoch (:meth:`RestorePoint.restore`)."""
        self.disarm()
        return self.point.restore(epoch, value, history)

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is not None:
            self(exc)

    def __call__(self, exc: BaseException) -> None:
        """Undo after ``exc`` (an interrupt undoes the first step only)."""
        if self.first_step is not None:
            Module._restore(self.first_step)
        elif self.arrays is not None and isinstance(exc, Exception):
            self._write_back(self.arrays)

    def _write_back(self, arrays: dict[str, Any]) -> None:
        """The parameter arrays themselves, their initial values (where NumPy and torch
        updated them in place; NaN where they held NaN) and the optimizer's initial state."""
        point = self.point
        point.model.assign_parameters(arrays)
        point.model.assign_buffers(point.buffers)
        point.model.clear_state()
        for name, p in arrays.items():
            xp, before = array_namespace(p), point.values[name]
            same = (p == before) | (xp.isnan(p) & xp.isnan(before))
            if not bool(xp.all(same)):
                p[...] = before
        if point.state is not None:
            point.optimizer._restore(point.state)
        point._put_back_schedule()
