"""The protocol every layer and model follows, and the parameter bookkeeping they share.

A layer has ``forward(x)``, ``backward(grad_output)``, ``predict(x)`` and, when it holds
parameters, ``update_params(learning_rate)``. Parameters and their gradients are listed by
``named_parameters()`` / ``named_grads()`` with dotted names ("linear1.weights"), which is what
``to()``, :func:`xmlp.save`, :func:`xmlp.load` and :func:`xmlp.fit` work from. Arrays a layer
keeps that are not trained (BatchNorm1d's running statistics) are its buffers, listed by
``named_buffers()``: saved, loaded and moved with the parameters, never touched by optimizers.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import array_api_compat

from ..backend import ArraySpec, check_learning_rate, dtype_name, floating_spec
from ..errors import NoGradientError
from .checks import check_floating_input, check_grad_output, check_input_like

__all__ = ["Module"]

# layer -> the model it was built into (weakly: a model that is gone frees its layers)
_OWNERS: weakref.WeakKeyDictionary[Module, weakref.ref[Module]] = weakref.WeakKeyDictionary()


class _ParameterSpec:
    """``module.spec`` of a layer that set none: where its first parameter lives, fixed when
    first read (a parameter replaced by hand by another kind of array is then refused by the
    next call). A descriptor, not ``__getattr__``: a class with ``__getattr__`` makes every
    attribute read of its instances slower, and layers read theirs on every pass. A layer that
    sets its spec in ``__init__`` hides this descriptor with a plain class attribute
    (``spec = None``, as Linear does): CPython reads an instance's own value faster when the
    class holds no descriptor of that name."""

    def __get__(self, module: Module | None, cls: type[Module]) -> Any:
        if module is None:
            return self
        names = type(module).array_names
        if not names:
            raise AttributeError(f"{type(module).__name__!r} object has no attribute 'spec' "
                                 "(a layer without parameters has no place of its own)")
        spec = floating_spec(getattr(module, names[0]), type(module).__name__,
                             repr(names[0]), converting=True)
        module.spec = spec  # in the instance, which reads before this descriptor from now on
        return spec


class Module:
    """Base class of every layer, model and loss.

    A layer writes its math: ``forward(x)``, ``backward(grad_output)`` and ``predict(x)``,
    storing what backward needs (``x``, ``output``) and its gradients in ``grad_<name>`` for
    each parameter named in ``param_names``. The base class checks what each of those is
    handed before the math runs (:meth:`check`, O(1): types, dtypes, devices and shapes), so a
    rejected call changes nothing, and gives every layer ``update_params``,
    ``named_parameters`` / ``named_grads``, ``to()``, and a place in optimizers, :func:`fit`,
    :func:`save` / :func:`load` and :class:`Sequential`.

    The namespace, device and dtype of a layer with parameters are those of its parameter
    arrays (:attr:`spec`). ``grad_<name>`` reads None until the first ``backward``.

    Arrays that are part of a layer's state but not trained (running statistics) are named in
    ``buffer_names``: :meth:`named_buffers` lists them, :meth:`to` moves them, :func:`save` /
    :func:`load` store and restore them beside the parameters, and optimizers leave them alone
    (the layer's own ``forward`` updates them, by rebinding the attribute, so that compiled
    steps and the undo of a refused call see the change). They live where the parameters do.

    A layer of your own is a guided tour: docs/own-layer.md ("Write your own layer").

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> class Scale(xmlp.Module):
        ...     param_names = ("scale",)
        ...     def __init__(self, n):
        ...         self.scale = np.ones(n)
        ...     def forward(self, x):
        ...         self.x, self.output = x, x * self.scale
        ...         return self.output
        ...     def predict(self, x):
        ...         return x * self.scale
        ...     def backward(self, grad_output):
        ...         self.grad_scale = (grad_output * self.x).sum(axis=0)
        ...         return grad_output * self.scale
        >>> layer = Scale(3)
        >>> layer.forward(np.ones((2, 3))).shape
        (2, 3)
        >>> layer.grad_scale is None          # until the first backward
        True
        >>> _ = layer.backward(np.ones((2, 3)))
        >>> layer.update_params(0.5)
        >>> print(layer.scale)
        [0. 0. 0.]
    """

    param_names: tuple[str, ...] = ()
    grad_names: tuple[str, ...] = ()  # "grad_" + each parameter's name, made by the class
    # arrays of the layer's state that are not trained (running statistics): saved, loaded and
    # moved with the parameters, left alone by optimizers
    buffer_names: tuple[str, ...] = ()
    array_names: tuple[str, ...] = ()  # param_names + buffer_names, made by the class
    # namespace, device and dtype of the parameters: set by the layer, or taken from its
    # first parameter when first read
    spec: ArraySpec = _ParameterSpec()  # type: ignore[assignment]
    # what layers store (annotations only: a layer that never sets them has none)
    x: Any
    output: Any
    grad_input: Any
    # Attributes that hold what the last forward/backward stored; cleared by to() and load().
    state_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("_param_names")
        if legacy is not None and "param_names" not in cls.__dict__:
            warnings.warn(
                f"{cls.__name__}._param_names is deprecated; declare the parameters as "
                f"param_names = {tuple(legacy)!r}", DeprecationWarning, stacklevel=2)
            cls.param_names = tuple(legacy)
        _check_names(cls)
        cls.grad_names = tuple("grad_" + name for name in cls.param_names)
        cls.array_names = cls.param_names + cls.buffer_names
        for grad_name in cls.grad_names:  # None until the first backward sets it
            if not hasattr(cls, grad_name):
                setattr(cls, grad_name, None)
        for method in ("forward", "backward", "predict"):
            math = cls.__dict__.get(method)
            if callable(math) and not hasattr(math, "math"):
                setattr(cls, method, _checked(cls, method, math))

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

    # -- the boundary ------------------------------------------------------------------------
    def check(self, method: str, *args: Any) -> None:
        """Raise, changing nothing, unless ``args`` can be handed to ``method``'s math.

        The default: ``forward(x)`` / ``predict(x)`` take an array of the parameters'
        namespace, device and dtype (any real floating array for a layer without parameters)
        of ndim >= 1, not empty; ``backward(grad_output)`` comes after a forward, with a
        gradient like that forward's ``output`` (when the layer stores one). Layers add
        their own rules by overriding it (and calling ``super().check``)."""
        owner = owner_name(type(self).__name__, method)
        if method == "backward" and len(args) == 1:
            if self.param_names:
                self.check_params(owner)
            output = getattr(self, "output", _ABSENT)
            if output is not _ABSENT:  # a layer that stores no output is not checked
                check_grad_output(output, args[0], owner,
                                  against=None if self.param_names else "the forward input")
        elif len(args) == 1:
            if self.param_names:
                self.check_params(owner)
                check_input_like(self.spec, args[0], owner)
            else:
                check_floating_input(args[0], owner)

    def run_checked(self, method: str, math: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """:meth:`check`, then the math (containers run their children their own way; a
        layer adds its rules to :meth:`check`)."""
        self.check(method, *args)
        return math(self, *args)

    @property
    def xp(self) -> Any:
        """The parameters' namespace."""
        return self.spec.xp

    @property
    def device(self) -> Any:
        """The parameters' device."""
        return self.spec.device

    @property
    def dtype(self) -> Any:
        """The parameters' dtype."""
        return self.spec.dtype

    # -- listing ---------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-layers with their names ("linear1", or "0" in a Sequential)."""
        return iter(())

    def named_parameters(self) -> Iterator[tuple[str, Any]]:
        """("weights", array), ... and ("linear1.weights", array), ... for containers."""
        for name in self.param_names:
            yield name, getattr(self, name)
        for prefix, child in self.named_children():
            for name, value in child.named_parameters():
                yield f"{prefix}.{name}", value

    def named_grads(self) -> Iterator[tuple[str, Any]]:
        """Gradients under the same names as :meth:`named_parameters` (None before backward)."""
        for name in self.param_names:
            yield name, getattr(self, "grad_" + name)
        for prefix, child in self.named_children():
            for name, value in child.named_grads():
                yield f"{prefix}.{name}", value

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        """("running_mean", array), ... and ("1.running_mean", array), ... for containers:
        the arrays named in each layer's ``buffer_names`` (state that is not trained)."""
        for name in self.buffer_names:
            yield name, getattr(self, name)
        for prefix, child in self.named_children():
            for name, value in child.named_buffers():
                yield f"{prefix}.{name}", value

    def parameters(self) -> list[Any]:
        return [value for _, value in self.named_parameters()]

    def owner_of(self, name: str, *, buffer: bool = False) -> tuple[Module, str]:
        """The module holding parameter ``name`` (buffer ``name`` with ``buffer=True``) and
        its local name; KeyError if there is none."""
        module: Module = self
        *path, leaf = name.split(".")
        for part in path:
            children = dict(module.named_children())
            if part not in children:
                raise KeyError(name)
            module = children[part]
        if leaf not in (module.buffer_names if buffer else module.param_names):
            raise KeyError(name)
        return module, leaf

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" or ``prefix``) and every sub-module."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def adopt_children(self, children: Iterable[tuple[str, Module]]) -> None:
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
             for name, child in children for sub, m in child.named_modules()])
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

    def check_unshared(self, owner: str) -> None:
        """ValueError if a module object appears twice in this model (put there by hand after
        construction, e.g. ``seq.layers.append(seq.layers[0])``)."""
        shared = _first_shared(list(self.named_modules()))
        if shared:
            raise ValueError(
                f"{owner}: {shared}; a layer object can be used once in one model (each use "
                "would overwrite the other's stored forward state and the update would be "
                "applied twice). Make another layer (copy.deepcopy(layer))."
            )

    def assign_parameters(self, values: dict[str, Any]) -> None:
        """Rebind parameters by name. Callers have already checked names, shapes and specs."""
        for name, value in values.items():
            module, leaf = self.owner_of(name)
            setattr(module, leaf, value)

    def assign_buffers(self, values: dict[str, Any]) -> None:
        """Rebind buffers by name. Callers have already checked names, shapes and specs."""
        for name, value in values.items():
            module, leaf = self.owner_of(name, buffer=True)
            setattr(module, leaf, value)

    # -- state -----------------------------------------------------------------------------
    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def clear_state(self) -> None:
        """Forget stored activations and gradients (after to() or load()); buffers stay."""
        for module in self.modules():
            for name in module.state_names:
                setattr(module, name, None)
            for name in module.param_names:
                setattr(module, "grad_" + name, None)

    def _snapshot(self) -> list[tuple[Module, dict[str, Any], bool]]:
        """What each module's passes can change, to undo a rejected call: the attributes a
        module declares (:meth:`undo_names`), or every attribute of one that declares none.
        Read by name: reading ``__dict__`` would make every later attribute read of a layer
        slower (CPython then drops its inline values)."""
        snapshot = []
        for m in self.modules():
            names = m.undo_names()
            if names is None:
                snapshot.append((m, dict(m.__dict__), True))
            else:
                snapshot.append((m, {n: getattr(m, n, _ABSENT) for n in names}, False))
        return snapshot

    @staticmethod
    def _restore(snapshot: list[tuple[Module, dict[str, Any], bool]]) -> None:
        for module, attrs, whole in snapshot:
            if whole:
                module.__dict__.clear()
                module.__dict__.update(attrs)
                continue
            for name, value in attrs.items():
                if value is not _ABSENT:
                    # only what changed: a gradient read from its class default (None) stays
                    # the class's, not a new attribute of the layer
                    if getattr(module, name, _ABSENT) is not value:
                        setattr(module, name, value)
                elif hasattr(module, name):
                    delattr(module, name)

    def undo_names(self) -> tuple[str, ...] | None:
        """The attributes a pass of this module can change, which an undone call puts back:
        parameters, gradients, buffers, ``state_names`` and ``spec`` for a layer that declares
        any of them; None (every attribute) for one that declares none."""
        if not (self.state_names or self.param_names or self.buffer_names):
            return None
        spec = ("spec",) if self.param_names or self.buffer_names else ()
        return (*self.param_names, *self.grad_names, *self.state_names, *self.buffer_names,
                *spec)

    # -- parameters replaced by hand ---------------------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The shape each parameter (and buffer) must have, where the layer knows it (None:
        any shape)."""
        return None

    def params_ok(self) -> bool:
        """Whether every parameter still has this layer's array type, dtype and device and
        records no autograd graph (O(1), no data read). A parameter replaced by hand with
        another array is caught here by the next call, before it changes anything."""
        spec = self.spec
        for local in self.array_names:
            p = getattr(self, local)
            if (type(p) is not spec.array_type or p.dtype != spec.dtype
                    or (spec.check_device and array_api_compat.device(p) != spec.device)
                    or (spec.autograd and p.requires_grad)):
                return False
        shapes = self.param_shapes()
        return shapes is None or all(getattr(self, n).shape == shapes[n] for n in shapes)

    def check_params(self, owner: str, prefix: str = "") -> None:
        """TypeError (type, namespace, dtype, byte order, device, autograd) or ValueError
        (shape) naming the first parameter that does not fit this layer any more."""
        spec = self.spec
        shapes = self.param_shapes() or {}
        for local in self.array_names:
            p = getattr(self, local)
            kind = "parameter" if local in self.param_names else "buffer"
            label = f"{kind} {prefix + local!r}"
            problem = spec.mismatch(p)
            if problem is not None:
                raise TypeError(
                    f"{owner}: {label} {problem}, but the layer's parameters are "
                    f"{spec.describe()}. Was it replaced by hand? Assign a {spec.name} "
                    f"{dtype_name(spec.dtype)} array on {spec.device}, or call .to() on the "
                    "model to convert every parameter to one namespace, device and dtype."
                )
            if local in shapes and tuple(p.shape) != shapes[local]:
                raise ValueError(
                    f"{owner}: {label} has shape {tuple(p.shape)} but the layer "
                    f"needs {shapes[local]} (was it replaced by hand?)"
                )

    # -- training --------------------------------------------------------------------------
    def check_grads(self, owner: str | None = None) -> None:
        """NoGradientError (a RuntimeError) naming the first parameter without a gradient;
        ValueError / TypeError for a parameter or a gradient (set by hand) whose shape,
        namespace, dtype or device is not the layer's, so that an update never stops half-way
        and never trains a model of mixed dtypes. ``owner`` names the caller in messages
        (default "<Model>.update_params")."""
        if self.grads_ok([]):
            return
        # Slow path, for the message: find the first bad parameter or gradient by its name.
        owner = owner or f"{type(self).__name__}.update_params"
        for prefix, module in self.named_modules():
            if module.param_names:
                module.check_params(owner, f"{prefix}." if prefix else "")
        grads = dict(self.named_grads())
        for name, param in self.named_parameters():
            grad = grads[name]
            if grad is None:
                raise NoGradientError(
                    f"{owner}: no gradient for {name!r}; call backward() after forward() first."
                )
            module, _ = self.owner_of(name)
            module.spec.check(grad, owner, f"the gradient for {name!r}")
            if tuple(grad.shape) != tuple(param.shape):
                raise ValueError(
                    f"{owner}: the gradient for {name!r} must have the parameter's shape "
                    f"{tuple(param.shape)}, got {tuple(grad.shape)}"
                )

    def grads_ok(self, holders: list[Module]) -> bool:
        """Whether every gradient is there with its parameter's type, dtype and shape (and
        the device is not in doubt), appending each module that holds parameters to
        ``holders``. Runs every training step, so it builds no names."""
        names = self.param_names
        if names:
            if not self.params_ok():  # first: a parameter replaced by hand may be no array
                return False
            spec = self.spec
            for local, grad_name in zip(names, self.grad_names, strict=True):
                grad = getattr(self, grad_name)
                if (grad is None or type(grad) is not spec.array_type
                        or grad.dtype != spec.dtype or grad.shape != getattr(self, local).shape
                        or (spec.check_device and array_api_compat.device(grad) != spec.device)
                        or (spec.autograd and grad.requires_grad)):
                    return False
            holders.append(self)
        for _, child in self.named_children():
            if not child.grads_ok(holders):
                return False
        return True

    def update_params(self, learning_rate: float) -> None:
        """One SGD step, ``p -= learning_rate * grad_p``, for every parameter.

        Checks the learning rate and every parameter's gradient before changing any.
        """
        lr = check_learning_rate(learning_rate)
        holders: list[Module] = []
        # the walk that checks the gradients finds the layers: no second walk
        if not self.grads_ok(holders):
            self.check_grads()  # raises for a missing or mismatched gradient or parameter
            # the rest (an array subclass, say) is accepted
            holders = [m for m in self.modules() if m.param_names]
        if len(holders) > 1 and _has_duplicates(holders):
            self.check_unshared(f"{type(self).__name__}.update_params")
        for module in holders:
            module.sgd_step(lr)

    def sgd_step(self, learning_rate: float) -> None:
        """``p = p - learning_rate * grad_p`` for this layer's own parameters (in place where
        the array type allows), on gradients already checked: what update_params runs."""
        sgd = self.spec.ops.sgd
        for name, grad_name in zip(self.param_names, self.grad_names, strict=True):
            setattr(self, name, sgd(getattr(self, name), getattr(self, grad_name),
                                    learning_rate))

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> Module:
        """Move every parameter and buffer to namespace ``xp`` (None: keep), ``device`` and
        ``dtype``.

        ``xp`` is an array module or its name ("numpy", "cupy", "torch", "jax", "dask",
        "array_api_strict"), as for :class:`~xmlp.Linear`.

        In place; clears stored activations and gradients; returns ``self``. All new arrays are
        made before any is assigned, so a failed move changes nothing.
        """
        plans = []
        for module in self.modules():
            names = module.array_names
            if names:
                spec = module.spec.moved(xp, device, dtype)
                values = {n: spec.convert(getattr(module, n)) for n in names}
                plans.append((module, spec, values))
        for module, spec, values in plans:
            module.spec = spec
            for name, value in values.items():
                setattr(module, name, value)
        self.clear_state()
        return self

    def summary(self, input_shape: Any = None) -> Any:
        """A table of the layers, their output shapes for a batch of ``input_shape`` (e.g.
        ``(None, 64)``; None: no shapes), their parameter counts and the totals: a
        :class:`xmlp.nn.Summary`, which prints as the table (:func:`xmlp.nn.summarize`)."""
        from .summary import summarize  # the summary module imports this one

        return summarize(self, input_shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_ABSENT = object()  # an attribute a snapshot found unset


def _check_names(cls: type[Module]) -> None:
    """TypeError, when the class is made, for ``param_names`` or ``buffer_names`` that are not
    tuples of distinct attribute names (``param_names = "scale"`` would list s, c, a, l, e)."""
    seen: set[str] = set()
    for kind in ("param_names", "buffer_names"):
        names = getattr(cls, kind)
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n.isidentifier()
                                                   for n in names):
            raise TypeError(f"{cls.__name__}.{kind} must be a tuple of attribute names, e.g. "
                            f"('scale',), got {names!r}")
        for name in names:
            if name in seen:
                raise TypeError(f"{cls.__name__}: {name!r} is listed twice in param_names and "
                                "buffer_names; an array is a parameter (trained) or a buffer "
                                "(not trained)")
            seen.add(name)


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



@functools.lru_cache(maxsize=1024)
def owner_name(name: str, method: str) -> str:
    """"Tanh.forward": who refused, in messages (made once: every call names its owner)."""
    return f"{name}.{method}"


def _checked(cls: type[Module], method: str, math: Callable[..., Any]) -> Callable[..., Any]:
    """The public ``method``: the class's checks, then its ``math`` (kept as ``.math``, which
    containers and compiled steps call once the boundary is checked). A class that runs its
    own boundary (a container) does it in ``run_checked``. Written out for one and two
    arguments: CPython runs a call with ``*args`` slower, and these run on every pass."""
    arity = _arity(math)
    public: Callable[..., Any]
    if cls.run_checked is not Module.run_checked:

        def public(self: Module, *args: Any) -> Any:
            return self.run_checked(method, math, args)
    elif arity == 0:

        def public(self: Module, /) -> Any:
            self.check(method)
            return math(self)
    elif arity == 1:

        def public(self: Module, a: Any, /) -> Any:
            self.check(method, a)
            return math(self, a)
    elif arity == 2:

        def public(self: Module, a: Any, b: Any, /) -> Any:
            self.check(method, a, b)
            return math(self, a, b)
    else:

        def public(self: Module, *args: Any) -> Any:
            self.check(method, *args)
            return math(self, *args)

    wrapper: Any = functools.update_wrapper(public, math)
    wrapper.__signature__ = inspect.signature(math)
    wrapper.math = math
    return wrapper


def _arity(function: Callable[..., Any]) -> int | None:
    """How many arguments ``function`` takes after ``self`` when they are exactly that many
    positional ones (None otherwise)."""
    try:
        params = list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if all(p.kind in plain and p.default is inspect.Parameter.empty for p in params):
        return len(params)
    return None


def math_of(module: Module, method: str) -> Callable[..., Any]:
    """``module``'s ``method`` without the checks xmlp runs on what it is handed: the math
    alone, as a function of ``(module, *args)``, for code that checked its inputs once already
    (containers, compiled steps, a ``jax.jit`` loop of your own).

    Args:
        module: a layer, model or loss.
        method: "forward", "backward" or "predict".

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.nn import math_of
        >>> layer = xmlp.Linear(2, 3, rng=0)
        >>> math_of(layer, "predict")(layer, np.ones((4, 2))).shape
        (4, 3)
    """
    public = getattr(type(module), method)
    return getattr(public, "math", public)
