"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names, arguments and numbers.

A schedule is built on an :mod:`xmlp.optim` optimizer and sets its ``lr``; it is used as in
PyTorch (and imported from :mod:`xmlp.optim`)::

    opt = xmlp.optim.SGD(model, lr=0.1)
    scheduler = xmlp.optim.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        ...                       # an epoch of opt.step() calls
        scheduler.step()

or handed to ``xmlp.fit(..., optimizer=opt, scheduler=scheduler)``, which steps it once per
epoch (:class:`OneCycleLR`, ``per_step = True``: once per batch; :class:`ReduceLROnPlateau`:
on the epoch's validation loss, or its training loss without validation data).

The learning rates are computed as torch computes them, in the same order of operations
(its recursive forms: ``lr * gamma`` from the optimizer's current ``lr``), so a schedule
gives the same Python floats as torch's over any number of epochs, and follows a learning
rate changed by hand between steps as torch's does. ``state_dict()`` is plain data (saved by
:func:`xmlp.save` with ``scheduler=``).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import TYPE_CHECKING, Any

from .backend import positive_int, real_as_float, short_repr

if TYPE_CHECKING:
    from .optim import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


def _real(value: Any, label: str, owner: str, *, low: float = 0.0, low_open: bool = False,
          high: float = math.inf, high_open: bool = False) -> float:
    """``value`` as a Python float: TypeError unless a real number (not a bool), ValueError
    unless finite and within the bounds (open or closed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {label} must be a real number, got "
                        f"{type(value).__name__}: {short_repr(value)}")
    number = real_as_float(value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        upper = "inf)" if high == math.inf else f"{high:g}{right}"
        raise ValueError(f"{owner}: {label} must be a finite number in {left}{low:g}, "
                         f"{upper}, got {short_repr(value)}")
    return number


def _flag(value: Any, label: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {label} must be True or False, got {short_repr(value)}")
    return value


def _choice(value: Any, label: str, owner: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        listed = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {label} must be {listed}, got {short_repr(value)}")
    return value


def _count(value: Any, label: str, owner: str) -> int:
    """A positive int (NumPy ints too)."""
    return positive_int(value, f"{owner}: {label}")


def _check_optimizer(optimizer: Any, owner: str) -> None:
    from .optim import Optimizer  # here: xmlp.optim re-exports this module at its end

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be an xmlp.optim optimizer (SGD, Adam, "
                        f"AdamW), got {type(optimizer).__name__}")


class LRScheduler:
    """The base of the schedules: ``step()``, ``get_last_lr()``, ``state_dict()``.

    A subclass computes the next learning rate in ``_next_lr(epoch)`` (from the optimizer's
    current ``lr``, as torch's recursive forms do) and lists its hyperparameters in
    ``_hyperparameters()`` / ``_set_hyperparameters()``. Building a schedule sets the
    optimizer's ``lr`` to the schedule's value at epoch 0, as torch's do.

    Attributes:
        optimizer: the optimizer whose ``lr`` it sets.
        last_epoch: how many times :meth:`step` was called since it was built (torch's
            name; 0 after building; for :class:`OneCycleLR` a count of batches).
        base_lrs: ``[the optimizer's lr when the schedule was built]`` (one entry: an xmlp
            optimizer is one parameter group).
        per_step: False: ``fit`` steps the schedule once per epoch; True
            (:class:`OneCycleLR`): once per batch.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1)
        >>> scheduler = xmlp.optim.ExponentialLR(opt, gamma=0.5)
        >>> isinstance(scheduler, xmlp.optim.LRScheduler), scheduler.per_step
        (True, False)
    """

    per_step = False

    def __init__(self, optimizer: Optimizer) -> None:
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        self.optimizer = optimizer
        self.base_lrs = [optimizer.lr]
        self.last_epoch = -1
        lr = self._next_lr(0, initial=True)
        optimizer.lr = lr
        self.last_epoch = 0
        self._last_lr = [optimizer.lr]

    # -- stepping ------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one epoch (one batch for :class:`OneCycleLR`) and set the optimizer's
        ``lr`` to the schedule's value there. A value the optimizer refuses (a growing
        schedule past the float range) raises before anything changes."""
        epoch = self.last_epoch + 1
        self.optimizer.lr = self._next_lr(epoch)  # checked by the optimizer before it is set
        self.last_epoch = epoch
        self._last_lr = [self.optimizer.lr]

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        """The learning rate for ``epoch`` from the optimizer's current ``lr`` (``initial``:
        the value the schedule starts the optimizer at)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """``[lr]``: the learning rate the schedule set last, in a list as torch returns it
        (one entry per parameter group; an xmlp optimizer is one group)."""
        return list(self._last_lr)

    # -- state as plain data -------------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def _counters(self) -> dict[str, Any]:
        """What a subclass counts besides ``last_epoch`` (ReduceLROnPlateau's best value...)."""
        return {}

    def _check_counters(self, counters: dict[str, Any], owner: str) -> dict[str, Any]:
        if counters:
            raise ValueError(f"{owner}: state must be empty for {type(self).__name__}, got "
                             f"{short_repr(counters)}")
        return {}

    def _check_last_epoch(self, epoch: int, owner: str) -> None:
        """ValueError for an epoch the schedule cannot be at (none past a cycle's end)."""

    def state_dict(self) -> dict[str, Any]:
        """Plain data (JSON-friendly): ``{"scheduler": "StepLR", "last_epoch": int,
        "base_lrs": [float], "last_lr": [float], "hyperparameters": {...}, "state": {...}}``
        ("state": what :class:`ReduceLROnPlateau` counts; empty for the others). The
        optimizer's own ``lr`` is part of the optimizer's state, saved with it."""
        return {"scheduler": type(self).__name__, "last_epoch": self.last_epoch,
                "base_lrs": list(self.base_lrs), "last_lr": list(self._last_lr),
                "hyperparameters": self._hyperparameters(), "state": self._counters()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from a schedule of the same class).
        Everything is checked before anything changes: ValueError / TypeError name the first
        problem. The optimizer's ``lr`` is not touched: load the optimizer's state too."""
        epoch, base_lrs, last_lr, hyper, counters = self._check_state_dict(state_dict)
        self._set_hyperparameters(dict(hyper))
        self.last_epoch, self.base_lrs, self._last_lr = epoch, base_lrs, last_lr
        for key, value in counters.items():
            setattr(self, key, value)

    def _check_state_dict(self, state_dict: Any) -> tuple[int, list[float], list[float],
                                                           dict[str, Any], dict[str, Any]]:
        """Every check of :meth:`load_state_dict`, changing nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{owner}: expected a dict from state_dict(), got "
                            f"{type(state_dict).__name__}")
        keys = ("scheduler", "last_epoch", "base_lrs", "last_lr", "hyperparameters", "state")
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"{owner}: the state dict has no {missing[0]!r} entry")
        if state_dict["scheduler"] != type(self).__name__:
            raise ValueError(f"{owner}: the state dict is of a {state_dict['scheduler']!r} "
                             f"schedule, not {type(self).__name__!r}")
        epoch = state_dict["last_epoch"]
        is_int = isinstance(epoch, numbers.Integral) and not isinstance(epoch, bool)
        if not is_int or not 0 <= epoch <= sys.maxsize:
            limit = f" up to {sys.maxsize}" if is_int and epoch > 0 else ""
            raise ValueError(f"{owner}: last_epoch must be an int >= 0{limit}, got "
                             f"{short_repr(epoch)}")
        lrs = []
        for key in ("base_lrs", "last_lr"):
            value = state_dict[key]
            if not isinstance(value, (list, tuple)) or len(value) != 1:
                raise ValueError(f"{owner}: {key} must be a list of one learning rate, got "
                                 f"{short_repr(value)}")
            lrs.append([_real(value[0], f"{key}[0]", owner)])
        hyper = state_dict["hyperparameters"]
        if not isinstance(hyper, dict) or set(hyper) != set(self._hyperparameters()):
            raise ValueError(f"{owner}: hyperparameters must be a dict with "
                             f"{sorted(self._hyperparameters())}, got {short_repr(hyper)}")
        trial = object.__new__(type(self))  # validates the values without touching self
        trial.optimizer = self.optimizer
        trial._set_hyperparameters(dict(hyper))
        counters = state_dict["state"]
        if not isinstance(counters, dict):
            raise TypeError(f"{owner}: state must be a dict, got {type(counters).__name__}")
        counters = trial._check_counters(counters, owner)
        trial._check_last_epoch(int(epoch), owner)
        return int(epoch), lrs[0], lrs[1], hyper, counters

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({type(self.optimizer).__name__}, {inner})"


class StepLR(LRScheduler):
    """``torch.optim.lr_scheduler.StepLR``: the learning rate times ``gamma`` every
    ``step_size`` epochs, ``lr = base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.
        step_size: epochs between two decays (a positive int).
        gamma: the factor of each decay (a finite number >= 0; default 0.1).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1)
        >>> scheduler = xmlp.optim.StepLR(opt, step_size=2, gamma=0.5)
        >>> rates = []
        >>> for epoch in range(5):
        ...     rates.append(opt.lr)      # an epoch trains with this rate
        ...     scheduler.step()
        >>> rates
        [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self._set_hyperparameters({"step_size": step_size, "gamma": gamma})
        super().__init__(optimizer)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        self.step_size = _count(values["step_size"], "step_size", owner)
        self.gamma = _real(values["gamma"], "gamma", owner)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        lr = self.optimizer.lr
        return lr if epoch == 0 or epoch % self.step_size else lr * self.gamma


class ExponentialLR(LRScheduler):
    """``torch.optim.lr_scheduler.ExponentialLR``: the learning rate times ``gamma`` every
    epoch, ``lr = base_lr * gamma ** epoch``.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.
        gamma: the factor of each epoch (a finite number >= 0).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1)
        >>> scheduler = xmlp.optim.ExponentialLR(opt, gamma=0.5)
        >>> scheduler.step(); scheduler.step()
        >>> scheduler.get_last_lr()
        [0.025]
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self._set_hyperparameters({"gamma": gamma})
        super().__init__(optimizer)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        self.gamma = _real(values["gamma"], "gamma", type(self).__name__)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        return self.optimizer.lr if initial else self.optimizer.lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """``torch.optim.lr_scheduler.CosineAnnealingLR``: from the optimizer's ``lr`` down to
    ``eta_min`` along half a cosine over ``T_max`` epochs,
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, computed as
    torch computes it (recursively from the current ``lr``); past ``T_max`` it rises again,
    as torch's does.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.
        T_max: epochs from the start to ``eta_min`` (a positive int; usually the epochs of
            training).
        eta_min: the smallest learning rate (a finite number >= 0; default 0).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.Adam(xmlp.MLP(1, 4, 1, rng=0), lr=0.01)
        >>> scheduler = xmlp.optim.CosineAnnealingLR(opt, T_max=4)
        >>> rates = []
        >>> for epoch in range(4):
        ...     scheduler.step()
        ...     rates.append(round(opt.lr, 6))
        >>> rates
        [0.008536, 0.005, 0.001464, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self._set_hyperparameters({"T_max": T_max, "eta_min": eta_min})
        super().__init__(optimizer)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        self.T_max = _count(values["T_max"], "T_max", owner)
        self.eta_min = _real(values["eta_min"], "eta_min", owner)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        lr, eta_min, t_max = self.optimizer.lr, self.eta_min, self.T_max
        if initial:
            return lr
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # the bottom of the cosine: 0/0 below
            return lr + (self.base_lrs[0] - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        return ((1 + math.cos(math.pi * epoch / t_max))
                / (1 + math.cos(math.pi * (epoch - 1) / t_max)) * (lr - eta_min) + eta_min)


class LinearLR(LRScheduler):
    """``torch.optim.lr_scheduler.LinearLR`` (a warm-up): the learning rate times a factor
    going linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs, then
    ``base_lr * end_factor``: ``lr = base_lr * (start_factor + (end_factor - start_factor) *
    min(epoch, total_iters) / total_iters)``, computed as torch computes it.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.
        start_factor: the factor of epoch 0, in (0, 1] (default 1/3).
        end_factor: the factor from epoch ``total_iters`` on, in [0, 1] (default 1).
        total_iters: epochs of the ramp (a positive int; default 5).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1)
        >>> scheduler = xmlp.optim.LinearLR(opt, start_factor=0.25, total_iters=3)
        >>> rates = []
        >>> for epoch in range(5):
        ...     rates.append(round(opt.lr, 6))
        ...     scheduler.step()
        >>> rates
        [0.025, 0.05, 0.075, 0.1, 0.1]
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        self._set_hyperparameters({"start_factor": start_factor, "end_factor": end_factor,
                                   "total_iters": total_iters})
        super().__init__(optimizer)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        self.start_factor = _real(values["start_factor"], "start_factor", owner, low_open=True,
                                  high=1.0)
        self.end_factor = _real(values["end_factor"], "end_factor", owner, high=1.0)
        self.total_iters = _count(values["total_iters"], "total_iters", owner)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"start_factor": self.start_factor, "end_factor": self.end_factor,
                "total_iters": self.total_iters}

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        lr, start, end = self.optimizer.lr, self.start_factor, self.end_factor
        if epoch == 0:
            return lr * start
        if epoch > self.total_iters:
            return lr
        return lr * (1.0 + (end - start) / (self.total_iters * start + (epoch - 1)
                                            * (end - start)))


class OneCycleLR(LRScheduler):
    """``torch.optim.lr_scheduler.OneCycleLR``, stepped once per batch (``per_step = True``:
    ``fit`` steps it after every batch): the learning rate rises from ``max_lr / div_factor``
    to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then anneals to
    ``max_lr / div_factor / final_div_factor`` (``three_phase``: back to the start first, then
    down), along a cosine or a line.

    With ``cycle_momentum`` (torch's default) the momentum is cycled the other way, between
    ``max_momentum`` and ``base_momentum``: SGD's ``momentum`` (which must then be > 0: a
    plain SGD has no momentum to cycle, pass ``cycle_momentum=False``), Adam's and AdamW's
    ``betas[0]``.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer (its ``lr`` is replaced).
        max_lr: the peak learning rate (a finite number > 0).
        total_steps: the steps (batches) of the cycle; or give ``epochs`` and
            ``steps_per_epoch`` (``total_steps = epochs * steps_per_epoch``).
        epochs, steps_per_epoch: positive ints, used when ``total_steps`` is None.
        pct_start: the fraction of the steps spent rising, in [0, 1] (default 0.3).
        anneal_strategy: "cos" (default) or "linear".
        cycle_momentum: cycle the momentum (default True).
        base_momentum, max_momentum: its bounds, in [0, 1) (defaults 0.85 and 0.95).
        div_factor: ``max_lr / div_factor`` is the first learning rate (> 0; default 25).
        final_div_factor: the last is that divided by ``final_div_factor`` (> 0; 1e4).
        three_phase: rise, fall back to the first rate, then anneal (default False).

    ``step()`` may be called ``total_steps`` times, once after each batch; once more is a
    ValueError, as in torch. Every rate and momentum is torch's, but for the rate set after
    the last batch (which no batch trains with) with ``anneal_strategy="linear"``: torch's
    goes on along the line past the end of the cycle, below zero, where xmlp's stays at the
    cycle's last rate (``max_lr / div_factor / final_div_factor``; its momentum, at
    ``max_momentum``).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1, momentum=0.9)
        >>> scheduler = xmlp.optim.OneCycleLR(opt, max_lr=1.0, total_steps=10)
        >>> rates, momenta = [], []
        >>> for batch in range(10):
        ...     rates.append(round(opt.lr, 4))
        ...     momenta.append(round(opt.momentum, 4))
        ...     scheduler.step()
        >>> rates
        [0.04, 0.52, 1.0, 0.9505, 0.8117, 0.6113, 0.3887, 0.1883, 0.0495, 0.0]
        >>> momenta
        [0.95, 0.9, 0.85, 0.855, 0.8688, 0.8889, 0.9111, 0.9312, 0.945, 0.95]
    """

    per_step = True

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"{owner}: give total_steps, or epochs and steps_per_epoch")
            total_steps = (_count(epochs, "epochs", owner)
                           * _count(steps_per_epoch, "steps_per_epoch", owner))
        self.optimizer = optimizer
        self._set_hyperparameters({
            "max_lr": max_lr, "total_steps": total_steps, "pct_start": pct_start,
            "anneal_strategy": anneal_strategy, "cycle_momentum": cycle_momentum,
            "base_momentum": base_momentum, "max_momentum": max_momentum,
            "div_factor": div_factor, "final_div_factor": final_div_factor,
            "three_phase": three_phase})
        super().__init__(optimizer)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        max_lr = _real(values["max_lr"], "max_lr", owner, low_open=True)
        total = _count(values["total_steps"], "total_steps", owner)
        pct = _real(values["pct_start"], "pct_start", owner, high=1.0)
        strategy = _choice(values["anneal_strategy"], "anneal_strategy", owner,
                           ("cos", "linear"))
        cycle = _flag(values["cycle_momentum"], "cycle_momentum", owner)
        base_m = _real(values["base_momentum"], "base_momentum", owner, high=1.0,
                       high_open=True)
        max_m = _real(values["max_momentum"], "max_momentum", owner, high=1.0, high_open=True)
        div = _real(values["div_factor"], "div_factor", owner, low_open=True)
        final_div = _real(values["final_div_factor"], "final_div_factor", owner, low_open=True)
        three = _flag(values["three_phase"], "three_phase", owner)
        # what is cycled: "betas" (Adam, AdamW) or "momentum" (SGD with momentum)
        self._cycled = self._momentum_name(owner, min(base_m, max_m)) if cycle else None
        self.max_lr, self.total_steps, self.pct_start = max_lr, total, pct
        self.anneal_strategy, self.cycle_momentum, self.three_phase = strategy, cycle, three
        self.base_momentum, self.max_momentum = base_m, max_m
        self.div_factor, self.final_div_factor = div, final_div
        # torch's group["initial_lr"], ["max_lr"], ["min_lr"] and its phases
        self.initial_lr = max_lr / div
        self.min_lr = self.initial_lr / final_div
        ends = ([float(pct * total) - 1, float(2 * pct * total) - 2, total - 1] if three
                else [float(pct * total) - 1, total - 1])
        lrs = ([self.initial_lr, max_lr, self.initial_lr, self.min_lr] if three
               else [self.initial_lr, max_lr, self.min_lr])
        momenta = ([max_m, base_m, max_m, max_m] if three else [max_m, base_m, max_m])
        self._phases = [(ends[i], lrs[i], lrs[i + 1], momenta[i], momenta[i + 1])
                        for i in range(len(ends))]

    def _momentum_name(self, owner: str, smallest: float) -> str:
        """"betas" (Adam, AdamW) or "momentum" (SGD with momentum): what is cycled."""
        optimizer = self.optimizer
        if hasattr(optimizer, "betas"):
            return "betas"
        if getattr(optimizer, "momentum", 0) > 0:
            if smallest == 0:
                raise ValueError(f"{owner}: base_momentum and max_momentum must be > 0 for "
                                 f"{type(optimizer).__name__} (momentum 0 keeps no "
                                 "momentum buffer)")
            return "momentum"
        raise ValueError(
            f"{owner}: cycle_momentum=True cycles the momentum, but this "
            f"{type(optimizer).__name__} has none (momentum=0); pass cycle_momentum=False, or "
            "build the SGD with momentum > 0 (torch.optim's OneCycleLR would switch momentum "
            "on for a plain SGD)")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "cycle_momentum": self.cycle_momentum, "base_momentum": self.base_momentum,
                "max_momentum": self.max_momentum, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor, "three_phase": self.three_phase}

    def _check_last_epoch(self, epoch: int, owner: str) -> None:
        if epoch > self.total_steps:
            raise ValueError(f"{owner}: last_epoch must be at most total_steps="
                             f"{self.total_steps} (the steps of the cycle), got "
                             f"{short_repr(epoch)}")

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _next_lr(self, epoch: int, initial: bool = False) -> float:
        if epoch > self.total_steps:
            raise ValueError(f"{type(self).__name__}.step: tried to step {epoch} times; the "
                             f"cycle has total_steps={self.total_steps}")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
            if epoch <= end or i == len(self._phases) - 1:
                # a phase of no length (pct_start=0.5 and 2 steps, three_phase) is at its end,
                # where torch would divide by zero
                pct = (epoch - start) / (end - start) if end != start else 1.0
                if self._cycled is not None:
                    self._set_momentum(_past(self._anneal(m0, m1, pct), m0, m1, pct))
                return _past(self._anneal(lr0, lr1, pct), lr0, lr1, pct)
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    def _set_momentum(self, value: float) -> None:
        optimizer: Any = self.optimizer
        if self._cycled == "betas":
            optimizer.betas = (value, optimizer.betas[1])
        else:
            optimizer.momentum = value


class ReduceLROnPlateau(LRScheduler):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``step(metric)`` after each epoch;
    when the metric has not improved for more than ``patience`` epochs the learning rate is
    multiplied by ``factor`` (not below ``min_lr``), then ``cooldown`` epochs pass before
    epochs count as bad again. ``fit`` steps it on the epoch's validation loss, or on its
    training loss without validation data.

    An epoch improves (``mode="min"``) when ``metric < best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``metric < best - threshold`` ("abs"); ``mode="max"``:
    ``metric > best * (1 + threshold)`` or ``metric > best + threshold``. A reduction smaller
    than ``eps`` is skipped. Building it leaves the optimizer's ``lr`` as it is.

    Args:
        optimizer: an :mod:`xmlp.optim` optimizer.
        mode: "min" (default: the metric should fall, as a loss) or "max" (an accuracy).
        factor: the factor of a reduction, in [0, 1) (default 0.1).
        patience: bad epochs tolerated before a reduction (an int >= 0; default 10).
        threshold: the least improvement that counts (a finite number >= 0; default 1e-4).
        threshold_mode: "rel" (default) or "abs".
        cooldown: epochs after a reduction during which no epoch counts as bad (default 0).
        min_lr: the smallest learning rate (default 0).
        eps: the smallest reduction that is made (default 1e-8).

    Example:
        >>> import xmlp
        >>> opt = xmlp.optim.SGD(xmlp.MLP(1, 4, 1, rng=0), lr=0.1)
        >>> scheduler = xmlp.optim.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        >>> for val_loss in [1.0, 0.9, 0.95, 0.92, 0.91]:
        ...     scheduler.step(val_loss)
        >>> scheduler.get_last_lr()
        [0.05]
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8) -> None:
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        self._set_hyperparameters({
            "mode": mode, "factor": factor, "patience": patience, "threshold": threshold,
            "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lr": min_lr,
            "eps": eps})
        self.optimizer = optimizer
        self.base_lrs = [optimizer.lr]
        self.last_epoch = 0
        self._last_lr = [optimizer.lr]
        self.best = math.inf if self.mode == "min" else -math.inf  # torch's: no epoch yet
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        self.mode = _choice(values["mode"], "mode", owner, ("min", "max"))
        self.factor = _real(values["factor"], "factor", owner, high=1.0, high_open=True)
        self.patience = non_negative_int(values["patience"], "patience", owner)
        self.threshold = _real(values["threshold"], "threshold", owner)
        self.threshold_mode = _choice(values["threshold_mode"], "threshold_mode", owner,
                                      ("rel", "abs"))
        self.cooldown = non_negative_int(values["cooldown"], "cooldown", owner)
        self.min_lr = _real(values["min_lr"], "min_lr", owner)
        self.eps = _real(values["eps"], "eps", owner)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "eps": self.eps}

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Count the epoch whose metric (a number, or a 0-d array: one host read) is
        ``metrics``, and reduce the learning rate when it has not improved for too long."""
        current = _metric(metrics, f"{type(self).__name__}.step")
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [self.optimizer.lr]

    def _is_better(self, current: float) -> bool:
        best = self.best
        if self.mode == "min":
            return (current < best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                    else current < best - self.threshold)
        return (current > best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                else current > best + self.threshold)

    def _counters(self) -> dict[str, Any]:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def _check_counters(self, counters: dict[str, Any], owner: str) -> dict[str, Any]:
        if set(counters) != {"best", "num_bad_epochs", "cooldown_counter"}:
            raise ValueError(f"{owner}: state must hold best, num_bad_epochs and "
                             f"cooldown_counter, got {short_repr(counters)}")
        best = counters["best"]  # inf (-inf) before the first epoch, as in torch
        if isinstance(best, bool) or not isinstance(best, numbers.Real):
            raise TypeError(f"{owner}: best must be a number, got {short_repr(best)}")
        best = real_as_float(best)
        if math.isnan(best):
            raise ValueError(f"{owner}: best must be a number or +-inf, got nan")
        return {"best": best,
                "num_bad_epochs": non_negative_int(counters["num_bad_epochs"],
                                                    "num_bad_epochs", owner),
                "cooldown_counter": non_negative_int(counters["cooldown_counter"],
                                                      "cooldown_counter", owner)}


def _past(value: float, start: float, end: float, pct: float) -> float:
    """OneCycleLR's ``value`` at ``pct`` of a phase from ``start`` to ``end``: torch's, but
    after the last batch (``pct > 1``) never beyond the phase's range, where torch's linear
    anneal goes on (to a negative rate, a momentum above its bound)."""
    if pct <= 1.0:
        return value
    return min(max(value, min(start, end)), max(start, end))


def non_negative_int(value: Any, label: str, owner: str) -> int:
    """``value`` as an int from 0 to ``sys.maxsize`` (no count of epochs goes further, and an
    int of more than 4300 digits has no repr nor JSON): TypeError unless an int (not a
    bool), ValueError out of range, naming the limit only for a value above it (also
    :class:`xmlp.EarlyStopping`'s counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {label} must be an int >= 0, got {short_repr(value)}")
    number = int(value)
    if not 0 <= number <= sys.maxsize:
        limit = f" up to {sys.maxsize}" if number > 0 else ""
        raise ValueError(f"{owner}: {label} must be an int >= 0{limit}, got "
                         f"{short_repr(value)}")
    return number


def _metric(value: Any, owner: str) -> float:
    """A number or a 0-d array as a Python float (torch's ``float(metrics)``)."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: the metric must be a number or a 0-d array, got {value!r}")
    try:
        return real_as_float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{owner}: the metric must be a number or a 0-d array, got "
                        f"{short_repr(value)}") from exc
