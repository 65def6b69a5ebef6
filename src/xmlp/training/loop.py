"""fit(): the seed's training loop as a function, with mini-batches, shuffling, progress,
optimizers, learning-rate schedules, gradient clipping, validation data, early stopping and
callbacks, and a History of losses (and accuracies for classifiers).

:func:`fit` reads as the loop it runs; its parts live in modules of their own:
:mod:`~xmlp.training.checks` (everything checked before the first step),
:mod:`~xmlp.training.batches` (batches in memory, or Dask chunks streamed into a model that lives
elsewhere), :mod:`~xmlp.training.epoch` (an epoch's running sums, its one device sync, Dask
persistence), :mod:`~xmlp.training.validation`, :mod:`~xmlp.training.restore` (the non-finite
restore, and the undo of what no check could refuse first), :mod:`~xmlp.training.progress`
(the bar), :mod:`~xmlp.training.callbacks` (what runs after each epoch: callbacks, early
stopping, the schedule's epoch step) and :mod:`~xmlp.training.clip` (gradient clipping).

How fit trains:

- Each epoch's loss (and accuracy) is the mean over samples of the per-batch values (a batch
  weighs by its size), computed with the parameters as they were at each step, like the seed's
  loop. Validation values use the parameters at the end of the epoch. Losses stay arrays during
  an epoch and become floats at its end: a few device syncs per epoch, none per step. On Dask
  the parameters and the optimizer's state are persisted every few steps and once per epoch so
  the graph does not grow.
- Dask data, a model elsewhere (NumPy, CuPy, torch...): fit streams. It computes one chunk of x
  (and the aligned rows of y) at a time, the next one in a background thread while the current
  one trains, converts each once to the model's namespace, device and dtype, and runs the same
  batches as in memory (shuffle=False: exactly those; shuffle=True: chunk order and samples
  within each chunk, see docs/streaming.md). batch_size is required there.
- Before the first step fit checks its arguments, and the data against the model: the first
  batch of the validation data and of the training data goes through ``model.predict`` and the
  loss's ``predict``, and a classifier's labels are checked on the whole of ``y`` and ``y_val``
  where reading them costs no device sync. A refusal there is a TypeError or ValueError with
  the model and optimizer as they were (validation data: "fit: validation_data was refused:
  ..."). What only the chunks of streamed Dask data show is refused as they arrive, and the
  first epoch is then undone: the parameters (the same arrays, with their values) and the
  optimizer are put back as they were before the call, and stored activations and gradients
  are cleared.
- A non-finite epoch: if an epoch's training loss is NaN or infinite, or a parameter is after
  it (a huge learning rate can overflow the parameters in the last step of an epoch whose loss
  was still finite), fit restores the parameters (and the optimizer's state) to those after the
  last epoch whose loss and parameters were all finite (the initial ones if none), clears stored
  activations and gradients, and raises FloatingPointError; ``exc.history`` holds the History so
  far (the last loss is the failed epoch's). A learning-rate schedule is put back with them
  (its state, and the rate and momentum it set).
- Schedules, clipping, early stopping: a ``scheduler`` (built on ``optimizer``) steps after
  each epoch (ReduceLROnPlateau on the validation loss, or the training loss without validation
  data), or after each batch when it says ``per_step`` (OneCycleLR). ``clip_grad_norm`` clips
  every step's gradients to that total norm between backward and the update (inside the
  compiled step too). ``early_stopping`` and ``callbacks`` run after each epoch; see
  :mod:`~xmlp.training.callbacks` for the order and for what ``History.stopped_epoch`` and
  ``History.best_epoch`` say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from array_api_compat import is_dask_namespace

from ..nn.module import Module
from ..optim import Optimizer
from ..schedules import LRScheduler
from .batches import MemoryBatches, StreamedBatches, batch_source
from .callbacks import EarlyStopping, EpochEnd
from .checks import Plan, check_fit
from .epoch import PERSIST_STEPS, EpochSums
from .progress import Progress
from .restore import RestorePoint, Undo
from .step import TrainStep
from .validation import Validation

__all__ = ["History", "fit"]


class History(list[float]):  # a list of floats, as fit always returned
    """What :func:`fit` returns: the training loss of each epoch (a list of Python floats, so
    code written for the plain list keeps working), with

    - ``val_loss``: the loss on ``validation_data`` after each epoch (empty without it);
    - ``accuracy``: the fraction of training samples classified right during each epoch,
      and ``val_accuracy`` on the validation data after it (both only when the loss is a
      :class:`xmlp.CrossEntropyLoss`, empty otherwise);
    - ``stopped_epoch``: the epoch (from 1) after which an :class:`EarlyStopping`, a callback
      object or the ``callback`` function stopped training; None when none did;
    - ``best_epoch``: the epoch with the best value monitored by fit's :class:`EarlyStopping`
      (the one the model's parameters come from with ``restore_best_weights=True``; the last
      epoch's otherwise); None without early stopping.

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
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def add(self, loss: float, accuracy: float | None = None) -> None:
        """Record an epoch: its loss, and its accuracy for a classifier."""
        self.append(loss)
        if accuracy is not None:
            self.accuracy.append(accuracy)


def fit(model: Module, x: Any, y: Any, *, epochs: int, lr: float | None = None, loss: Any = None,
        optimizer: Optimizer | None = None, validation_data: tuple[Any, Any] | None = None,
        batch_size: int | None = None, shuffle: bool = False, rng: Any = None,
        progress: bool | None = None, callback: Callable[[int, History], Any] | None = None,
        compile: Any = "auto", scheduler: LRScheduler | None = None,
        early_stopping: EarlyStopping | None = None, clip_grad_norm: float | None = None,
        callbacks: Sequence[Any] | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``x`` (N, ...) and ``y`` (N, ...); returns a
    :class:`History` of each epoch's loss (Python floats). Details: the module's docstring.

    Args:
        model, x, y: a Module and its data (arrays of its namespace, or Dask arrays, streamed).
        epochs, lr, optimizer: passes; plain SGD's learning rate, or an xmlp.optim optimizer.
        loss, validation_data: default MSELoss; ``(x_val, y_val)``, evaluated every epoch.
        batch_size, shuffle, rng: samples per step (None: full batch); a new order per epoch.
        progress, callback, compile: a tqdm bar; ``callback(epoch, history)`` (true: stop);
            as :class:`TrainStep`'s ("auto": ``jax.jit`` on JAX; on PyTorch compiled once the
            eager steps have taken as long as a compile; eager elsewhere).
        scheduler, clip_grad_norm: an ``xmlp.optim`` schedule of ``optimizer``, stepped every
            epoch (or batch); the largest total norm of the gradients of a step.
        early_stopping, callbacks: an :class:`EarlyStopping`; :class:`Callback` objects.

    Example:
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> xmlp.fit(xmlp.MLP(1, 10, 1, rng=0), *generate_data(), epochs=150, lr=0.1,
        ...          progress=False)[-1] < 0.15
        True
    """
    plan = check_fit(model, x, y, epochs=epochs, lr=lr, loss=loss, optimizer=optimizer,
                     validation_data=validation_data, batch_size=batch_size, shuffle=shuffle,
                     rng=rng, progress=progress, callback=callback, scheduler=scheduler,
                     early_stopping=early_stopping, clip_grad_norm=clip_grad_norm,
                     callbacks=callbacks)
    source, validation = _sources(model, x, y, plan, shuffle)
    history, lazy = History(), is_dask_namespace(source.xp)  # Dask: graphs grow with each step
    point, ends = RestorePoint(model, optimizer, source.xp, scheduler), EpochEnd(
        model, history, plan.callbacks, callback, scheduler)
    undo, epochs_run = Undo(model, point, plan.streamed), Progress(plan.epochs, progress, ends)
    with _closing(source, validation, epochs_run), undo:
        step = _stepper(model, plan, lr, optimizer, compile)
        for epoch in epochs_run:
            sums = EpochSums(source.xp, plan.classifier)
            for i, (xb, yb, weight) in enumerate(source.epoch(), start=1):
                sums.add(*step(xb, yb), weight, yb)
                undo.stepped()
                if lazy and i % PERSIST_STEPS == 0 and i < len(source):
                    sums.persist(model, optimizer)
            value, finite, named = sums.end(model, optimizer, lazy)
            history.add(value, sums.accuracy(plan.n_labels) if plan.classifier else None)
            if not finite:
                raise undo.restore(epoch, value, history)  # after the last finite epoch
            if validation is not None:
                validation.evaluate(model, plan.loss, plan.classifier, history)
            undo.disarm()
            stop = epochs_run.end_epoch(epoch, value, history)  # callbacks, the schedule's step
            point.save(named, epoch)
            if stop:
                break
        ends.finish(history)
    return history


def _sources(model: Module, x: Any, y: Any, plan: Plan,
             shuffle: bool) -> tuple[MemoryBatches | StreamedBatches, Validation | None]:
    """The training batches and the validation data (None without it)."""
    source = batch_source(model, x, y, xp=plan.xp, n=plan.n, step=plan.step, shuffle=shuffle,
                          rng=plan.rng, epochs=plan.epochs)
    validation = None if plan.validation is None else Validation(
        model, plan.validation, plan.step, plan.rng, plan.epochs)
    return source, validation


def _stepper(model: Module, plan: Plan, lr: Any, optimizer: Any,
             compile: Any) -> Callable[[Any, Any], tuple[Any, Any]]:
    """fit's step: a compiled :class:`TrainStep` where ``compile`` asks for one (jax.jit on
    JAX by default: one trace per batch shape, so a shorter last batch is one more; on PyTorch
    once the eager steps have taken a compile's time), else the
    eager step (a loss that is no Module, or a model without parameters, stays eager); then a
    per-batch schedule's step."""
    step = None
    if compile is not False and isinstance(plan.loss, Module) and model.parameters():
        train = TrainStep(model, plan.loss, optimizer=optimizer, lr=lr, compile=compile,
                          clip_grad_norm=plan.clip)
        # compiled now, or later ("auto" on PyTorch, once the eager steps took a compile's time)
        compiled = train.compiled or train._deferred
        step = partial(train.run, output=plan.classifier) if compiled else None
    if step is None:
        step = partial(_step, model, plan.loss, update=plan.update)
    scheduler = plan.scheduler
    if scheduler is None or not scheduler.per_step:
        return step

    def step_then_schedule(xb: Any, yb: Any) -> tuple[Any, Any]:
        out = step(xb, yb)
        scheduler.step()  # the rate of the next batch: a float, an input of a compiled step
        return out

    return step_then_schedule


def _step(model: Module, loss_fn: Any, xb: Any, yb: Any, *, update: Any) -> tuple[Any, Any]:
    """One forward/loss/backward/update; (the batch's mean loss as the loss returned it, the
    model's output)."""
    output = model.forward(xb)
    batch_loss = loss_fn.forward(output, yb)
    model.backward(loss_fn.backward())
    update()
    return batch_loss, output


@contextmanager
def _closing(*parts: Any) -> Iterator[None]:
    """Stop streams and the bar (None where there is no validation data) however the block
    ends."""
    try:
        yield
    finally:
        for part in parts:
            if part is not None:
                part.close()
