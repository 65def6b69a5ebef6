"""Everything :func:`xmlp.fit` checks before its first step, so that a call it refuses leaves
the model and the optimizer as they were.

:func:`check_fit` checks, in this order: the model, the loss, ``epochs``, ``lr`` /
``optimizer``, x and y (arrays of one namespace with one known, non-zero number of samples),
``validation_data`` (the same, of the training data's namespace, the model's, or Dask),
``batch_size``, ``shuffle``, ``progress``, ``callback``, ``rng``, full batch for streamed data,
``scheduler`` (an :mod:`xmlp.optim` schedule of fit's optimizer; a per-batch one with a step
left for every batch), ``early_stopping`` and ``callbacks`` (objects with ``on_epoch_end``; an
EarlyStopping monitoring what fit records) and ``clip_grad_norm``. Then the data against the
model (:func:`check_against_model`): the first batch of the validation data, then of the
training data, goes through ``model.predict`` and the loss's ``predict``, which check
namespaces, devices, dtypes and shapes and store nothing, and a classifier's labels are checked
on the whole ``y`` (and ``y_val``) where reading them costs no device sync. What only the
chunks of streamed Dask data show (their values) is checked as they stream in; see
:mod:`xmlp.training.restore` for what fit puts back then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from ..backend import (
    check_learning_rate,
    make_rng,
    namespace_name,
    positive_int,
    reads_are_free,
    short_repr,
    to_host,
)
from ..nn.losses import CrossEntropyLoss, MSELoss
from ..nn.module import Module
from ..nn.target_checks import raise_bad_label
from ..optim import Optimizer
from ..schedules import LRScheduler, OneCycleLR
from .batches import first_batch, model_namespace, streams
from .callbacks import EarlyStopping
from .clip import check_clip_args, clip_grad_norm
from .validation import label_count, refused

__all__ = [
    "Plan",
    "check_against_model",
    "check_callbacks",
    "check_data",
    "check_fit",
    "check_labels",
    "check_model",
    "check_scheduler",
    "check_validation",
    "clipped",
    "update_rule",
]


class Plan(NamedTuple):
    """What :func:`check_fit` found: the arguments of fit, checked and resolved."""

    loss: Any  # the loss, MSELoss() by default
    update: Callable[[], Any]  # one update: optimizer.step or plain SGD (clipped first)
    xp: Any  # the namespace of x and y
    n: int  # their number of samples
    epochs: int
    step: int  # the batch size (n for full batch)
    rng: np.random.Generator
    classifier: bool  # the loss is a CrossEntropyLoss: fit counts accuracy
    n_labels: int  # how many class labels y holds (for the accuracy)
    validation: tuple[Any, Any, int] | None  # (x_val, y_val, their number of samples)
    streamed: bool  # training or validation data are Dask chunks streamed to the model
    scheduler: Any = None  # an xmlp.optim schedule of the optimizer
    callbacks: tuple[Any, ...] = ()  # callback objects, early_stopping= first
    clip: float | None = None  # the largest total gradient norm (clip_grad_norm=)


def check_fit(model: Module, x: Any, y: Any, *, epochs: Any, lr: Any, loss: Any,
              optimizer: Any, validation_data: Any, batch_size: Any, shuffle: Any, rng: Any,
              progress: Any, callback: Any, scheduler: Any = None, early_stopping: Any = None,
              clip_grad_norm: Any = None, callbacks: Any = None) -> Plan:
    """Every check of fit's arguments and data (see the module's docs); TypeError or
    ValueError for the first that fails, before anything changes."""
    check_model(model)
    loss_fn = MSELoss() if loss is None else loss
    for method in ("forward", "backward"):
        if not callable(getattr(loss_fn, method, None)):
            raise TypeError(f"fit: loss must have a {method}() method, got {type(loss).__name__}")
    n_epochs = positive_int(epochs, "fit: epochs")
    update = update_rule(model, lr, optimizer)
    xp, n = check_data(x, y, "x", "y", model)
    validation = check_validation(validation_data, xp, model)
    step = n if batch_size is None else min(positive_int(batch_size, "fit: batch_size"), n)
    _check_flags(shuffle, progress, callback)
    generator = _check_rng(rng)
    if batch_size is None:
        _check_full_batch(model, x, n)
    classifier = isinstance(loss_fn, CrossEntropyLoss)
    check_scheduler(scheduler, optimizer, lr, n_epochs * -(-n // step))
    watchers = check_callbacks(early_stopping, callbacks, validation is not None, classifier)
    clip = None if clip_grad_norm is None else check_clip_args(clip_grad_norm, 2.0, "fit",
                                                                "clip_grad_norm")[0]
    if clip is not None and not model.parameters():
        raise ValueError(f"fit: clip_grad_norm= clips gradients, but the "
                         f"{type(model).__name__} has no parameters")
    if validation is not None:
        xv, yv, nv = validation
        try:
            check_against_model(model, loss_fn, xv, yv, min(step, nv), classifier)
        except (TypeError, ValueError) as exc:
            raise refused(exc) from exc
    check_against_model(model, loss_fn, x, y, step, classifier)
    streamed = streams(model, x) or (validation is not None and streams(model, validation[0]))
    return Plan(loss_fn, update if clip is None else clipped(update, model, clip), xp, n,
                n_epochs, step, generator, classifier, label_count(xp, y), validation, streamed,
                scheduler, watchers, clip)


def check_model(model: Any) -> None:
    """TypeError unless ``model`` is an :class:`xmlp.Module` with forward, backward and
    update_params."""
    for method in ("forward", "backward", "update_params"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"fit: model has no {method}() method ({type(model).__name__})")
    if not isinstance(model, Module):
        raise TypeError(
            f"fit: model must be an xmlp.Module (got {type(model).__name__}): fit lists, "
            "restores and persists parameters through named_parameters(). Subclass xmlp.Module "
            "or wrap your layers in xmlp.Sequential."
        )


def update_rule(model: Module, lr: Any, optimizer: Any) -> Callable[[], Any]:
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


def clipped(update: Callable[[], Any], model: Module, max_norm: float) -> Callable[[], Any]:
    """``update`` after the gradients are clipped to the total norm ``max_norm``."""

    def clip_then_update() -> None:
        clip_grad_norm(model, max_norm)
        update()

    return clip_then_update


def check_scheduler(scheduler: Any, optimizer: Any, lr: Any, steps: int) -> None:
    """TypeError unless ``scheduler`` is None or an xmlp.optim schedule; ValueError unless
    it was built on fit's ``optimizer`` (with ``lr=`` fit has none), or, for a per-batch
    schedule, has ``steps`` steps left."""
    if scheduler is None:
        return
    if not isinstance(scheduler, LRScheduler):
        raise TypeError(
            "fit: scheduler must be an xmlp.optim schedule (StepLR, CosineAnnealingLR, "
            f"OneCycleLR, ReduceLROnPlateau...), got {type(scheduler).__name__}")
    name = type(scheduler).__name__
    if optimizer is None:
        raise ValueError(
            f"fit: the {name} sets the learning rate of the optimizer it was built on, but "
            f"fit was given lr={short_repr(lr)} (plain SGD, no optimizer); build "
            "opt = xmlp.optim.SGD(model, lr=...), the schedule on it, and pass optimizer=opt")
    if scheduler.optimizer is not optimizer:
        raise ValueError(
            f"fit: the {name} was built on another optimizer "
            f"({type(scheduler.optimizer).__name__} at {id(scheduler.optimizer):#x}); build "
            f"it on the optimizer= fit trains with ({type(optimizer).__name__} at "
            f"{id(optimizer):#x})")
    if isinstance(scheduler, OneCycleLR):
        left = scheduler.total_steps - scheduler.last_epoch
        if steps > left:
            raise ValueError(
                f"fit: the OneCycleLR has {left} steps left (total_steps="
                f"{scheduler.total_steps}, {scheduler.last_epoch} taken) but fit takes "
                f"{steps} (one per batch); build it with total_steps={steps}, or epochs and "
                "steps_per_epoch of this fit (steps_per_epoch: batches per epoch)")


def check_callbacks(early_stopping: Any, callbacks: Any, validation: bool,
                    classifier: bool) -> tuple[Any, ...]:
    """The callback objects, ``early_stopping`` first: TypeError unless it is an
    :class:`EarlyStopping` and every callback has an ``on_epoch_end`` method; ValueError for
    an EarlyStopping that monitors what fit will not record."""
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"fit: early_stopping must be None or an xmlp.EarlyStopping, got "
                        f"{type(early_stopping).__name__}")
    if callbacks is None:
        callbacks = ()
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"fit: callbacks must be a list of callback objects, got "
                        f"{type(callbacks).__name__}")
    for i, item in enumerate(callbacks):
        if not callable(getattr(item, "on_epoch_end", None)):
            raise TypeError(
                f"fit: callbacks[{i}] ({type(item).__name__}) has no on_epoch_end(epoch, "
                "history) method; subclass xmlp.Callback, or pass a function as callback=")
    watchers = tuple(item for item in (early_stopping, *callbacks) if item is not None)
    if len({id(item) for item in watchers}) != len(watchers):
        raise ValueError("fit: a callback object is given twice (in early_stopping= and "
                         "callbacks=, or twice in callbacks=): it would count each epoch twice")
    for item in watchers:
        if not isinstance(item, EarlyStopping):
            continue
        if item.monitor.startswith("val_") and not validation:
            raise ValueError(f"fit: EarlyStopping monitors {item.monitor!r}, which fit "
                             "records only with validation_data; pass validation_data="
                             "(x_val, y_val), or monitor 'loss'")
        if "accuracy" in item.monitor and not classifier:
            raise ValueError(f"fit: EarlyStopping monitors {item.monitor!r}, which fit "
                             "records only for a classifier (loss=xmlp.CrossEntropyLoss())")
    return watchers


def check_data(x: Any, y: Any, x_label: str, y_label: str, model: Module) -> tuple[Any, int]:
    """(namespace of x and y, number of samples): arrays of one namespace, a leading sample
    axis of one known, non-zero length."""
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


def check_validation(data: Any, xp: Any, model: Module) -> tuple[Any, Any, int] | None:
    """(x_val, y_val, number of samples), or None without validation data."""
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"fit: validation_data must be a pair (x_val, y_val), got {type(data).__name__}"
        )
    xv, yv = data
    xp_val, n = check_data(xv, yv, "x_val", "y_val", model)
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


def check_against_model(model: Module, loss_fn: Any, x: Any, y: Any, k: int,
                        classifier: bool) -> None:
    """Run ``model.predict`` and the loss's ``predict`` on the first ``k`` samples, storing
    nothing, and check a classifier's labels on the whole ``y``: what they refuse is refused
    before the first step. A loss without predict() is left out (its forward() would store)."""
    batch = first_batch(model, x, y, k)
    if batch is None:  # streamed data of unknown shape: checked as its chunks arrive
        return
    output = model.predict(batch[0])
    evaluate = getattr(loss_fn, "predict", None)
    if evaluate is not None:
        evaluate(output, batch[1])
    if classifier:
        check_labels(y, output.shape[-1], f"{type(loss_fn).__name__}.predict")


def check_labels(y: Any, n_classes: int, owner: str) -> None:
    """ValueError naming the first class label of ``y`` outside [0, n_classes), where reading
    ``y`` costs no device sync (:func:`xmlp.backend.reads_are_free`: NumPy, array-api-strict,
    torch on the CPU). Elsewhere (CuPy, CUDA, JAX, Dask) such a label makes the loss of its
    batch NaN, and fit raises FloatingPointError after the epoch."""
    if not reads_are_free(y) or not array_namespace(y).isdtype(y.dtype, "integral"):
        return
    flat = to_host(y).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= n_classes):
        raise_bad_label(y, n_classes, owner)


def _check_flags(shuffle: Any, progress: Any, callback: Any) -> None:
    if not isinstance(shuffle, bool):
        raise TypeError(f"fit: shuffle must be True or False, got {short_repr(shuffle)}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"fit: progress must be None, True or False, got {short_repr(progress)}")
    if callback is not None and not callable(callback):
        raise TypeError(f"fit: callback must be None or a function of (epoch, history), got "
                        f"{short_repr(callback)}")


def _check_rng(rng: Any) -> np.random.Generator:
    """The shuffling generator: checked even when unused (draws happen only when shuffling)."""
    try:
        return make_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"fit: rng must be None, a non-negative int seed or a numpy.random.Generator, "
            f"got {short_repr(rng)}"
        ) from exc


def _check_full_batch(model: Module, x: Any, n: int) -> None:
    """ValueError for batch_size=None with data that streams: it would gather every sample."""
    if streams(model, x):
        raise ValueError(
            f"fit: x and y are Dask arrays and the model is on {_where(model)}, so fit "
            "streams the data chunk by chunk; batch_size=None (full batch) would gather all "
            f"{n} samples in memory at once. Pass a batch_size, or move the model to Dask "
            "(model.to(dask.array)) for full-batch, data-parallel steps."
        )


def _where(model: Module) -> str:
    """Where the model's parameters live, in words ("numpy float64 on cpu")."""
    for module in model.modules():
        if module.param_names:
            return module.spec.describe()
    return "no parameters"
