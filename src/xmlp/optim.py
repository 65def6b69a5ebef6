"""Optimizers with torch.optim's update formulas: SGD (momentum, Nesterov), Adam and AdamW;
and torch's learning-rate schedules (StepLR, CosineAnnealingLR, OneCycleLR...).

An optimizer is built on a model and updates every parameter of it from the gradients the last
``backward()`` stored (:meth:`~xmlp.Module.named_grads`)::

    opt = xmlp.optim.Adam(model, lr=1e-3)
    loss.forward(model.forward(x), t)
    model.backward(loss.backward())
    opt.step()

The state (momentum buffers, Adam's moments) is made on the first ``step()`` with each
parameter's namespace, device and dtype, and updated in place where the array type allows it
(rebound on JAX and Dask). The update math is in :mod:`xmlp.ops` (written once, with a
NumPy fast path tested equal to it). ``model.update_params(lr)`` stays the seed's plain SGD.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .backend import ArraySpec, short_repr, to_host
from .nn.module import Module

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "OneCycleLR",
    "Optimizer",
    "ReduceLROnPlateau",
    "StepLR",
]

# The largest step count an optimizer takes (load_state_dict refuses more): 2**53, below which
# every count is exactly a float, and beta**step a float in [0, 1].
_MAX_STEPS = 2**53


def _number(value: Any, label: str, owner: str, *, upper: float = math.inf,
            upper_open: bool = False) -> float:
    """``value`` as a Python float: TypeError unless a real number, ValueError unless finite
    and in [0, upper] (or [0, upper) with ``upper_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: {label} must be a real number, got {type(value).__name__}: "
            f"{short_repr(value)}"
        )
    raw: Any = value
    try:
        number = float(raw)  # a NumPy scalar becomes a Python float (one namespace per array)
    except OverflowError:  # an int or Fraction beyond the float range (10**400)
        number = math.inf if raw > 0 else -math.inf
    above = number >= upper if upper_open else number > upper
    if not math.isfinite(number) or number < 0 or above:
        bound = f"[0, {upper:g})" if upper_open else ("a finite number >= 0" if upper == math.inf
                                                      else f"[0, {upper:g}]")
        where = bound if bound.startswith("a ") else f"in {bound}"
        raise ValueError(f"{owner}: {label} must be {where}, got {short_repr(value)}")
    return number


class Optimizer:
    """The shared machinery: the model's parameters, ``lr``, checks, state and state_dict.

    Subclasses set ``_state_keys`` (names of the per-parameter state arrays), implement
    ``_update(constants)`` (``constants``: what ``_step_constants(step)`` computed for the step,
    before anything changed) and list their hyperparameters in ``_hyperparameters()``.
    """

    _state_keys: tuple[str, ...] = ()

    def __init__(self, model: Module, lr: float) -> None:
        owner = type(self).__name__
        if not isinstance(model, Module):
            raise TypeError(
                f"{owner}: model must be an xmlp.Module (its parameters are listed by "
                f"named_parameters()), got {type(model).__name__}"
            )
        self.model = model
        self._holders = _holders(model)
        self._slots = [(module, leaf) for module in self._holders for leaf in module.param_names]
        self._names = [name for name, _ in model.named_parameters()]
        if not self._slots:
            raise ValueError(f"{owner}: the {type(model).__name__} has no parameters to optimize")
        self.lr = lr
        self.step_count = 0
        # per parameter, the arrays named by _state_keys; made on the first step
        self._state: list[list[Any]] | None = None
        self._specs: list[ArraySpec] | None = None  # where the state lives, per parameter
        # how the ops laid the state out for speed (see PortableOps.pack_state); None: as made,
        # reset whenever _state is replaced
        self._packing: Any = None
        self._packed = False
        self._group_ops: Any = None  # the ops of every parameter, when they share them

    # -- the learning rate (changeable between steps, for schedules) --------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _number(value, "lr", type(self).__name__)

    # -- stepping ------------------------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter from the gradients of the last ``backward()``.

        Checks every gradient (present, with its parameter's shape, namespace, device and
        dtype) and that the state still lives where the parameters do before changing any.
        """
        owner = f"{type(self).__name__}.step"
        model = self.model
        holders: list[Module] = []
        if not model.grads_ok(holders):
            model.check_grads(owner)  # raises for a missing or mismatched gradient
            holders = _holders(model)  # accepted anyway (an array subclass, say)
        self._check_layers(holders, owner)
        step = self.step_count + 1
        constants = self._step_constants(step)  # may fail (OverflowError): nothing changed yet
        self._prepare_state(owner)
        self._update(constants)
        self.step_count = step

    def _check_layers(self, holders: list[Module], owner: str) -> None:
        """RuntimeError unless ``holders`` (the model's modules with parameters now) are the
        ones this optimizer was built on."""
        if len(holders) != len(self._holders) or any(
            a is not b for a, b in zip(holders, self._holders, strict=True)
        ):
            raise RuntimeError(
                f"{owner}: the {type(self.model).__name__}'s layers changed since this "
                "optimizer was built; build a new optimizer for the model as it is now."
            )

    def _prepare_state(self, owner: str) -> None:
        """The state made on the first step, or checked to live where the parameters do, and
        laid out for the ops."""
        if self._state is None:
            self._state, self._specs = self._new_state()
            self._packed = False
        else:
            self._check_state_place(owner)
        if not self._packed:
            self._pack()

    def _pack(self) -> None:
        """Let the ops lay the state out as they update it fastest (one namespace only)."""
        assert self._specs is not None and self._state is not None
        ops = self._specs[0].ops
        self._group_ops = ops if all(spec.ops is ops for spec in self._specs) else None
        self._packing = None
        if self._group_ops is not None:
            self._state, self._packing = ops.pack_state(self._state)
        self._packed = True

    def _step_constants(self, step: int) -> Any:
        """What ``_update`` needs that depends on the count of the step it makes (Adam's bias
        corrections), computed before anything changes."""
        return None

    def _update(self, constants: Any) -> None:
        raise NotImplementedError

    def _new_state(self) -> tuple[list[list[Any]], list[ArraySpec]]:
        specs = [module.spec for module, _ in self._slots]
        state = [
            [spec.xp.zeros_like(getattr(module, leaf)) for _ in self._state_keys]
            for (module, leaf), spec in zip(self._slots, specs, strict=True)
        ]
        return state, specs

    def _check_state_place(self, owner: str) -> None:
        assert self._specs is not None
        for (module, _), spec in zip(self._slots, self._specs, strict=True):
            if not module.spec.same_place(spec):
                raise TypeError(
                    f"{owner}: the parameters are now {module.spec.describe()} but this "
                    f"optimizer's state is {spec.describe()} (the model was moved with .to() "
                    "after steps were taken). Carry the state over with "
                    "opt.load_state_dict(opt.state_dict()), which makes it where the parameters "
                    "are now; xmlp never transfers silently."
                )

    # -- state as plain host data ------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Plain host data: ``{"optimizer": "Adam", "step_count": int, "hyperparameters":
        {"lr": float, ...}, "state": {parameter name: {state key: numpy.ndarray}}}`` ("state"
        is empty before the first step). Arrays are copies."""
        state: dict[str, dict[str, np.ndarray]] = {}
        if self._state is not None and self._state_keys:
            for name, arrays in zip(self._names, self._state, strict=True):
                state[name] = {key: to_host(a) for key, a in
                               zip(self._state_keys, arrays, strict=True)}
        return {
            "optimizer": type(self).__name__,
            "step_count": self.step_count,
            "hyperparameters": self._hyperparameters(),
            "state": state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from this or another optimizer of the
        same class on a model with the same parameter names and shapes). The arrays are made
        with each parameter's current namespace, device and dtype. Everything is checked
        before anything changes: ValueError / TypeError name the first problem."""
        steps, hyper, keys = self._check_state_dict(state_dict)
        stored = state_dict["state"]
        new_state: list[list[Any]] | None = None
        new_specs: list[ArraySpec] | None = None
        if stored:
            new_state, new_specs = [], []
            for name, (module, _) in zip(self._names, self._slots, strict=True):
                entry = stored[name]
                new_state.append([module.spec.from_host(np.asarray(entry[key]))
                                  for key in keys])
                new_specs.append(module.spec)
        self._set_hyperparameters(dict(hyper))
        self.step_count = steps
        self._state, self._specs = new_state, new_specs
        self._packing, self._packed = None, False

    def _check_state_dict(self, state_dict: Any) -> tuple[int, dict[str, Any], tuple[str, ...]]:
        """Every check of :meth:`load_state_dict`, changing nothing: (step count,
        hyperparameters, the state keys they keep). The state arrays are only looked at
        (dtype and shape), never converted, so ``xmlp.load`` checks a file's optimizer state
        with placeholders of the declared dtypes and shapes before it reads any of it."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{owner}: expected a dict from state_dict(), got "
                            f"{type(state_dict).__name__}")
        missing = [k for k in ("optimizer", "step_count", "hyperparameters", "state")
                   if k not in state_dict]
        if missing:
            raise ValueError(f"{owner}: the state dict has no {missing[0]!r} entry")
        kind = state_dict["optimizer"]
        if kind != type(self).__name__:
            raise ValueError(f"{owner}: the state dict is of a {kind!r} optimizer, not "
                             f"{type(self).__name__!r}")
        steps = state_dict["step_count"]
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"{owner}: step_count must be an int >= 0, got {steps!r}")
        count = int(steps)
        if count > _MAX_STEPS:  # beyond, float(step) and the bias corrections lose meaning
            raise ValueError(f"{owner}: step_count must be at most 2**53 = {_MAX_STEPS}, got "
                             f"{short_repr(steps)}")
        hyper = state_dict["hyperparameters"]
        if not isinstance(hyper, dict) or set(hyper) != set(self._hyperparameters()):
            raise ValueError(
                f"{owner}: hyperparameters must be a dict with {sorted(self._hyperparameters())}"
                f", got {hyper!r}"
            )
        trial = object.__new__(type(self))  # validates the values without touching self
        trial._set_hyperparameters(dict(hyper))
        stored = state_dict["state"]
        if not isinstance(stored, dict):
            raise TypeError(f"{owner}: state must be a dict, got {type(stored).__name__}")
        keys = trial._state_keys  # what the loaded hyperparameters keep (SGD: momentum or not)
        if stored:
            if not keys:
                raise ValueError(f"{owner}: {type(self).__name__} with these hyperparameters "
                                 f"keeps no state, but the state dict holds {sorted(stored)}")
            if set(stored) != set(self._names):
                raise ValueError(
                    f"{owner}: the state is for parameters {sorted(stored)}, but the "
                    f"{type(self.model).__name__} has {sorted(self._names)}"
                )
            for name, (module, leaf) in zip(self._names, self._slots, strict=True):
                entry = stored[name]
                if not isinstance(entry, dict) or set(entry) != set(keys):
                    raise ValueError(
                        f"{owner}: the state of {name!r} must hold {list(keys)}, "
                        f"got {sorted(entry) if isinstance(entry, dict) else entry!r}"
                    )
                shape = tuple(getattr(module, leaf).shape)
                for key in keys:
                    host = np.asarray(entry[key])
                    if host.dtype.kind not in "fiu":
                        raise TypeError(f"{owner}: {name}.{key} has dtype {host.dtype}, not a "
                                        "real number type")
                    if tuple(host.shape) != shape:
                        raise ValueError(f"{owner}: {name}.{key} has shape {tuple(host.shape)} "
                                         f"but the parameter {shape}")
        elif count and keys:
            raise ValueError(f"{owner}: step_count is {steps} but the state dict holds no state")
        return count, hyper, keys

    # -- for fit: Dask persistence and the restore after a non-finite epoch ------------------
    def _state_arrays(self) -> list[Any]:
        return [a for arrays in self._state or [] for a in arrays]

    def _set_state_arrays(self, flat: list[Any]) -> None:
        if self._state is None:
            return
        width = len(self._state_keys)
        self._state = [list(flat[i * width:(i + 1) * width]) for i in range(len(self._state))]
        self._packing, self._packed = None, False

    def _snapshot(self) -> tuple[int, list[list[Any]] | None, list[ArraySpec] | None]:
        """Copies of the state, made with the namespace the state was made in (fit takes
        one per epoch: array_namespace per array would cost more than a small model's step)."""
        if self._state is None:
            return self.step_count, None, self._specs
        assert self._specs is not None  # set together with _state
        copies = [[spec.xp.asarray(a, copy=True) for a in arrays]
                  for arrays, spec in zip(self._state, self._specs, strict=True)]
        return self.step_count, copies, self._specs

    def _restore(self, snapshot: tuple[int, list[list[Any]] | None,
                                       list[ArraySpec] | None]) -> None:
        self.step_count, self._state, self._specs = snapshot
        self._packing, self._packed = None, False

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({inner})"


def _holders(model: Module) -> list[Module]:
    """The modules holding parameters, in named_parameters() order."""
    return [m for m in model.modules() if m.param_names]


class SGD(Optimizer):
    """``torch.optim.SGD`` with dampening 0: for each parameter p with gradient g,
    ``g += weight_decay * p``; with momentum, ``buf = momentum * buf + g`` (``buf = g`` on the
    first step) and ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; then ``p -= lr * g``.
    """

    def __init__(self, model: Module, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self._set_hyperparameters({"lr": lr, "momentum": momentum, "nesterov": nesterov,
                                   "weight_decay": weight_decay})
        super().__init__(model, lr)
        self._state_keys = ("momentum_buffer",) if self.momentum else ()

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        momentum = _number(values["momentum"], "momentum", owner)
        nesterov = values["nesterov"]
        if not isinstance(nesterov, bool):
            raise TypeError(f"{owner}: nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum == 0:
            raise ValueError(f"{owner}: nesterov=True needs a momentum > 0 (as in torch.optim)")
        weight_decay = _number(values["weight_decay"], "weight_decay", owner)
        self.lr = values["lr"]
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self._state_keys = ("momentum_buffer",) if momentum else ()

    def _hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _update(self, constants: Any) -> None:
        lr, momentum, nesterov, decay = self.lr, self.momentum, self.nesterov, self.weight_decay
        assert self._state is not None
        for (module, leaf), state in zip(self._slots, self._state, strict=True):
            ops = module.spec.ops
            param, grad = getattr(module, leaf), getattr(module, "grad_" + leaf)
            if self._state_keys:  # a momentum buffer: built with momentum > 0, whose value
                # is an array inside a compiled step (a schedule may cycle it)
                param, state[0] = ops.sgd_momentum(param, grad, state[0], lr, momentum,
                                                   nesterov, decay)
            elif decay:
                param = ops.sgd(param, grad + decay * param, lr)
            else:
                param = ops.sgd(param, grad, lr)
            setattr(module, leaf, param)


class Adam(Optimizer):
    """``torch.optim.Adam``: ``g += weight_decay * p`` (L2, added to the gradient);
    ``m = beta1 m + (1 - beta1) g``; ``v = beta2 v + (1 - beta2) g²``;
    ``p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`` at step t."""

    _state_keys = ("exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(self, model: Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self._set_hyperparameters({"lr": lr, "betas": betas, "eps": eps,
                                   "weight_decay": weight_decay})
        super().__init__(model, lr)

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        owner = type(self).__name__
        betas = values["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
        beta1 = _number(betas[0], "betas[0]", owner, upper=1.0, upper_open=True)
        beta2 = _number(betas[1], "betas[1]", owner, upper=1.0, upper_open=True)
        eps = _number(values["eps"], "eps", owner)
        weight_decay = _number(values["weight_decay"], "weight_decay", owner)
        self.lr = values["lr"]
        self.betas, self.eps, self.weight_decay = (beta1, beta2), eps, weight_decay

    def _hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _step_constants(self, step: int) -> tuple[float, float]:
        """The bias corrections of step ``step``: Python floats, as torch computes them from
        its step count."""
        beta1, beta2 = self.betas
        return 1 - beta1**step, (1 - beta2**step) ** 0.5

    def _update(self, constants: tuple[float, float]) -> None:
        lr, (beta1, beta2), eps, decay = self.lr, self.betas, self.eps, self.weight_decay
        bias1, bias2_sqrt = constants
        assert self._state is not None
        decoupled = self._decoupled
        slots = self._slots
        ops = self._group_ops
        if ops is None:  # parameters of several namespaces: one at a time
            for (module, leaf), state in zip(slots, self._state, strict=True):
                param, state[0], state[1] = module.spec.ops.adam(
                    getattr(module, leaf), getattr(module, "grad_" + leaf), state[0], state[1],
                    lr, beta1, beta2, eps, decay, decoupled, bias1, bias2_sqrt)
                setattr(module, leaf, param)
            return
        params = [getattr(module, leaf) for module, leaf in slots]
        grads = [getattr(module, "grad_" + leaf) for module, leaf in slots]
        new = ops.adam_group(params, grads, self._state, self._packing, lr, beta1, beta2, eps,
                             decay, decoupled, bias1, bias2_sqrt)
        for (module, leaf), param in zip(slots, new, strict=True):
            setattr(module, leaf, param)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay``
    before the Adam step (default ``weight_decay=0.01``)."""

    _decoupled = True

    def __init__(self, model: Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(model, lr, betas, eps, weight_decay)


# The learning-rate schedules live in xmlp.schedules and are used from here, as torch's from
# torch.optim.lr_scheduler; that module imports nothing of this one at its top, so either
# may be imported first.
from .schedules import (  # noqa: E402
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)
