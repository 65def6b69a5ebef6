"""The protocol every layer and model follows, and the parameter bookkeeping they share.

A layer has ``forward(x)``, ``backward(grad_output)``, ``predict(x)`` and, when it holds
parameters, ``update_params(learning_rate)``. Parameters and their gradients are listed by
``named_parameters()`` / ``named_grads()`` with dotted names ("linear1.weights"), which is what
``to()``, :func:`xmlp.save`, :func:`xmlp.load` and :func:`xmlp.fit` work from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import array_api_compat

from ._backend import ArraySpec, check_learning_rate
from .errors import NoGradientError

__all__ = ["Module"]


class Module:
    """Base class: parameter listing, ``to()``, and all-or-nothing updates.

    Subclasses with parameters set ``_param_names`` (e.g. ``("weights", "biases")``); their
    gradients live in ``"grad_" + name``. Containers override :meth:`named_children`.
    """

    _param_names: tuple[str, ...] = ()
    _spec: ArraySpec  # set by layers that hold parameters
    # Attributes that hold what the last forward/backward stored; cleared by to().
    _state_names: tuple[str, ...] = ()

    # -- the protocol (subclasses define these) ----------------------------------------------
    def forward(self, x: Any) -> Any:
        """x -> output; stores what backward needs."""
        raise NotImplementedError

    def backward(self, grad_output: Any) -> Any:
        """dL/d(output) -> dL/dx; stores gradients of parameters."""
        raise NotImplementedError

    def predict(self, x: Any) -> Any:
        """Forward without storing anything (inference)."""
        raise NotImplementedError

    # -- listing ---------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-layers with their names ("linear1", or "0" in a Sequential)."""
        return iter(())

    def named_parameters(self) -> Iterator[tuple[str, Any]]:
        """("weights", array), ... and ("linear1.weights", array), ... for containers."""
        for name in self._param_names:
            yield name, getattr(self, name)
        for prefix, child in self.named_children():
            for name, value in child.named_parameters():
                yield f"{prefix}.{name}", value

    def named_grads(self) -> Iterator[tuple[str, Any]]:
        """Gradients under the same names as :meth:`named_parameters` (None before backward)."""
        for name in self._param_names:
            yield name, getattr(self, "grad_" + name)
        for prefix, child in self.named_children():
            for name, value in child.named_grads():
                yield f"{prefix}.{name}", value

    def parameters(self) -> list[Any]:
        return [value for _, value in self.named_parameters()]

    def _owner(self, name: str) -> tuple[Module, str]:
        """The module holding parameter ``name`` and its local name."""
        module: Module = self
        *path, leaf = name.split(".")
        for part in path:
            children = dict(module.named_children())
            if part not in children:
                raise KeyError(name)
            module = children[part]
        if leaf not in module._param_names:
            raise KeyError(name)
        return module, leaf

    def _assign_parameters(self, values: dict[str, Any]) -> None:
        """Rebind parameters by name. Callers have already checked names, shapes and specs."""
        for name, value in values.items():
            module, leaf = self._owner(name)
            setattr(module, leaf, value)

    # -- state -----------------------------------------------------------------------------
    def _modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child._modules()

    def _clear_state(self) -> None:
        """Forget stored activations and gradients (after to() or load())."""
        for module in self._modules():
            for name in module._state_names:
                setattr(module, name, None)
            for name in module._param_names:
                setattr(module, "grad_" + name, None)

    def _snapshot(self) -> list[tuple[Module, dict[str, Any]]]:
        """Shallow copies of every module's attributes, to undo a rejected call."""
        return [(m, dict(m.__dict__)) for m in self._modules()]

    @staticmethod
    def _restore(snapshot: list[tuple[Module, dict[str, Any]]]) -> None:
        for module, attrs in snapshot:
            module.__dict__.clear()
            module.__dict__.update(attrs)

    # -- training --------------------------------------------------------------------------
    def _check_grads(self) -> None:
        """NoGradientError (a RuntimeError) naming the first parameter without a gradient;
        ValueError / TypeError for a gradient (set by hand) whose shape, namespace, dtype or
        device is not its parameter's, so that an update never stops half-way."""
        if self._grads_ok([]):
            return
        # Slow path, for the message: find the first bad gradient by its dotted name.
        owner = f"{type(self).__name__}.update_params"
        grads = dict(self.named_grads())
        for name, param in self.named_parameters():
            grad = grads[name]
            if grad is None:
                raise NoGradientError(
                    f"{owner}: no gradient for {name!r}; call backward() after forward() first."
                )
            module, _ = self._owner(name)
            module._spec.check(grad, owner, f"the gradient for {name!r}")
            if tuple(grad.shape) != tuple(param.shape):
                raise ValueError(
                    f"{owner}: the gradient for {name!r} must have the parameter's shape "
                    f"{tuple(param.shape)}, got {tuple(grad.shape)}"
                )

    def _grads_ok(self, holders: list[Module]) -> bool:
        """Whether every gradient is there with its parameter's type, dtype and shape (and
        the device is not in doubt), appending each module that holds parameters to
        ``holders``. Runs every training step, so it builds no names."""
        names = self._param_names
        if names:
            spec = self._spec
            for local in names:
                grad = getattr(self, "grad_" + local)
                if (grad is None or type(grad) is not spec.array_type
                        or grad.dtype != spec.dtype or grad.shape != getattr(self, local).shape
                        or (spec.check_device and array_api_compat.device(grad) != spec.device)):
                    return False
            holders.append(self)
        for _, child in self.named_children():
            if not child._grads_ok(holders):
                return False
        return True

    def _apply_update(self, learning_rate: float) -> None:
        """The SGD step on validated input; containers apply it child by child."""
        for _, child in self.named_children():
            child._apply_update(learning_rate)

    def update_params(self, learning_rate: float) -> None:
        """One SGD step, ``p -= learning_rate * grad_p``, for every parameter.

        Checks the learning rate and every parameter's gradient before changing any.
        """
        lr = check_learning_rate(learning_rate)
        holders: list[Module] = []
        if self._grads_ok(holders):
            # the walk that checked the gradients found the layers: no second walk
            for module in holders:
                module._apply_update(lr)
            return
        self._check_grads()  # raises for a missing or mismatched gradient
        self._apply_update(lr)  # the rest (an array subclass, say) is accepted

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> Module:
        """Move every parameter to namespace ``xp`` (None: keep), ``device`` and ``dtype``.

        ``xp`` is an array module or its name ("numpy", "cupy", "torch", "jax", "dask",
        "array_api_strict"), as for :class:`~xmlp.Linear`.

        In place; clears stored activations and gradients; returns ``self``. All new arrays are
        made before any is assigned, so a failed move changes nothing.
        """
        plans = []
        for module in self._modules():
            if module._param_names:
                spec = module._spec.moved(xp, device, dtype)
                values = {n: spec.convert(getattr(module, n)) for n in module._param_names}
                plans.append((module, spec, values))
        for module, spec, values in plans:
            module._spec = spec
            for name, value in values.items():
                setattr(module, name, value)
        self._clear_state()
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
