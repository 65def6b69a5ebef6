"""The protocol every layer and model follows, and the parameter bookkeeping they share.

A layer has ``forward(x)``, ``backward(grad_output)``, ``predict(x)`` and, when it holds
parameters, ``update_params(learning_rate)``. Parameters and their gradients are listed by
``named_parameters()`` / ``named_grads()`` with dotted names ("linear1.weights"), which is what
``to()``, :func:`xmlp.save`, :func:`xmlp.load` and :func:`xmlp.fit` work from.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import array_api_compat

from ._backend import ArraySpec, check_learning_rate, dtype_name
from .errors import NoGradientError

__all__ = ["Module"]

# layer -> the model it was built into (weakly: a model that is gone frees its layers)
_OWNERS: weakref.WeakKeyDictionary[Module, weakref.ref[Module]] = weakref.WeakKeyDictionary()


class Module:
    """Base class: parameter listing, ``to()``, and all-or-nothing updates.

    Subclasses with parameters set ``_param_names`` (e.g. ``("weights", "biases")``); their
    gradients live in ``"grad_" + name``. Containers override :meth:`named_children`.

    Example:
        >>> import xmlp
        >>> model = xmlp.MLP(2, 4, 1, rng=0)
        >>> isinstance(model, xmlp.Module)
        True
        >>> [(name, tuple(p.shape)) for name, p in model.named_parameters()][:2]
        [('linear1.weights', (4, 2)), ('linear1.biases', (4,))]
        >>> model.to(dtype="float32").linear1.weights.dtype
        dtype('float32')
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

    def _named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" or ``prefix``) and every sub-module."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child._named_modules(f"{prefix}.{name}" if prefix else name)

    def _adopt(self, children: Iterable[tuple[str, Module]]) -> None:
        """Make this model the owner of ``children``; ValueError, before anything is recorded,
        if one module object appears twice among them (at any depth) or already belongs to
        another model that is still alive.

        xmlp layers keep the input and output of their last forward for backward, so one layer
        object in two places (or two models trained together) would compute gradients from the
        other use's arrays and apply updates twice: sharing is refused rather than wrong.
        """
        children = list(children)
        shared = _first_shared(
            [(f"{name}.{sub}" if sub else name, m)
             for name, child in children for sub, m in child._named_modules()])
        if shared:
            raise ValueError(
                f"{type(self).__name__}: {shared}; xmlp layers hold the state of their last "
                "forward, so a layer object can be used once in one model. Make another layer "
                "(copy.deepcopy(layer) starts from the same weights)."
            )
        for name, child in children:
            ref = _OWNERS.get(child) if _hashable(child) else None
            owner = ref() if ref is not None else None
            if owner is not None and owner is not self:
                raise ValueError(
                    f"{type(self).__name__}: layer {name} ({child!r}) already belongs to "
                    f"{owner!r}; a layer object can be used in one model only (its forward "
                    "state and updates would mix). Make another layer (copy.deepcopy(layer) "
                    "starts from the same weights) or use the other model."
                )
        for _, child in children:
            if _hashable(child):
                _OWNERS[child] = weakref.ref(self)

    def _check_unshared(self, owner: str) -> None:
        """ValueError if a module object appears twice in this model (put there by hand after
        construction, e.g. ``seq.layers.append(seq.layers[0])``)."""
        shared = _first_shared(list(self._named_modules()))
        if shared:
            raise ValueError(
                f"{owner}: {shared}; a layer object can be used once in one model (each use "
                "would overwrite the other's stored forward state and the update would be "
                "applied twice). Make another layer (copy.deepcopy(layer))."
            )

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

    # -- parameters replaced by hand ---------------------------------------------------------
    def _param_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The shape each parameter must have, where the layer knows it (None: any shape)."""
        return None

    def _params_ok(self) -> bool:
        """Whether every parameter still has this layer's array type, dtype and device and
        records no autograd graph (O(1), no data read). A parameter replaced by hand with
        another array is caught here by the next call, before it changes anything."""
        spec = self._spec
        for local in self._param_names:
            p = getattr(self, local)
            if (type(p) is not spec.array_type or p.dtype != spec.dtype
                    or (spec.check_device and array_api_compat.device(p) != spec.device)
                    or (spec.autograd and p.requires_grad)):
                return False
        shapes = self._param_shapes()
        return shapes is None or all(getattr(self, n).shape == shapes[n] for n in shapes)

    def _check_params(self, owner: str, prefix: str = "") -> None:
        """TypeError (type, namespace, dtype, byte order, device, autograd) or ValueError
        (shape) naming the first parameter that does not fit this layer any more."""
        spec = self._spec
        shapes = self._param_shapes() or {}
        for local in self._param_names:
            p = getattr(self, local)
            label = repr(prefix + local)
            problem = spec.mismatch(p)
            if problem is not None:
                raise TypeError(
                    f"{owner}: parameter {label} {problem}, but the layer's parameters are "
                    f"{spec.describe()}. Was it replaced by hand? Assign a {spec.name} "
                    f"{dtype_name(spec.dtype)} array on {spec.device}, or call .to() on the "
                    "model to convert every parameter to one namespace, device and dtype."
                )
            if local in shapes and tuple(p.shape) != shapes[local]:
                raise ValueError(
                    f"{owner}: parameter {label} has shape {tuple(p.shape)} but the layer "
                    f"needs {shapes[local]} (was it replaced by hand?)"
                )

    # -- training --------------------------------------------------------------------------
    def _check_grads(self, owner: str | None = None) -> None:
        """NoGradientError (a RuntimeError) naming the first parameter without a gradient;
        ValueError / TypeError for a parameter or a gradient (set by hand) whose shape,
        namespace, dtype or device is not the layer's, so that an update never stops half-way
        and never trains a model of mixed dtypes. ``owner`` names the caller in messages
        (default "<Model>.update_params")."""
        if self._grads_ok([]):
            return
        # Slow path, for the message: find the first bad parameter or gradient by its name.
        owner = owner or f"{type(self).__name__}.update_params"
        for prefix, module in self._named_modules():
            if module._param_names:
                module._check_params(owner, f"{prefix}." if prefix else "")
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
            if not self._params_ok():  # first: a parameter replaced by hand may be no array
                return False
            spec = self._spec
            for local in names:
                grad = getattr(self, "grad_" + local)
                if (grad is None or type(grad) is not spec.array_type
                        or grad.dtype != spec.dtype or grad.shape != getattr(self, local).shape
                        or (spec.check_device and array_api_compat.device(grad) != spec.device)
                        or (spec.autograd and grad.requires_grad)):
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
        # the walk that checks the gradients finds the layers: no second walk
        if not self._grads_ok(holders):
            self._check_grads()  # raises for a missing or mismatched gradient or parameter
            # the rest (an array subclass, say) is accepted
            holders = [m for m in self._modules() if m._param_names]
        if len(holders) > 1 and _has_duplicates(holders):
            self._check_unshared(f"{type(self).__name__}.update_params")
        for module in holders:
            module._apply_update(lr)

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


def _hashable(module: Module) -> bool:
    """Whether ``module`` can key the owner registry (a subclass may define __eq__ only)."""
    return type(module).__hash__ is not None


def _has_duplicates(modules: list[Module]) -> bool:
    """Whether one module object is listed twice (O(1) for the usual two layers)."""
    if len(modules) == 2:
        return modules[0] is modules[1]
    return len({id(m) for m in modules}) != len(modules)


def _first_shared(named: list[tuple[str, Module]]) -> str | None:
    """"'Linear(2, 2)' is used as 0 and as 2" for the first module object listed twice."""
    seen: dict[int, str] = {}
    for name, module in named:
        if id(module) in seen:
            return f"{module!r} is used twice, as {seen[id(module)]} and as {name}"
        seen[id(module)] = name
    return None

