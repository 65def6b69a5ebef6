"""Models made of layers: Sequential (any depth) and the classic exercise's MLP
(Linear -> Tanh -> Linear)."""

from __future__ import annotations

import operator
import weakref
from collections.abc import Iterator
from typing import Any

from ..backend import ArraySpec, make_rng
from .activations import Tanh
from .linear import Linear
from .module import Module

__all__ = ["MLP", "Sequential"]


class Container(Module):
    """Runs its children in order: ``forward`` and ``predict`` first to last, ``backward`` last
    to first. Each child stores its own ``x``, ``output`` and gradients.

    Its boundary (:meth:`run_checked`): when the layers form a plain chain (:meth:`plain`),
    only the layer that sees the caller's array checks it, and the rest run their math alone;
    anything else (a layer of the user's own, a model changed by hand) runs each child's
    checked method and, should one refuse half-way, puts every child back as it was.

    The base of :class:`Sequential` and :class:`MLP`; ``children()`` lists the layers in order.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> model = xmlp.MLP(2, 4, 1, rng=0)
        >>> isinstance(model, xmlp.nn.Container)
        True
        >>> [type(layer).__name__ for layer in model.children()]
        ['Linear', 'Tanh', 'Linear']
        >>> model.forward(np.ones((3, 2))).shape
        (3, 1)
    """

    def children(self) -> list[Module]:
        return [child for _, child in self.named_children()]

    def undo_names(self) -> tuple[str, ...]:
        return ()  # a container's passes change its layers, which put themselves back

    # -- the math: each layer's own, its checks made at the container's boundary -------------
    # (``type(layer).forward.math`` is the layer's forward without the checks Module runs)
    def forward(self, x: Any) -> Any:
        """x -> output of the last layer; each layer stores its own x and output."""
        layers = self.children()
        for layer in layers:  # the previous step's arrays go before new ones are made
            layer.x = layer.output = None
        for layer in layers:
            x = type(layer).forward.math(layer, x)  # type: ignore[attr-defined]
        return x

    def backward(self, grad_output: Any) -> Any:
        """dL/d(output) -> dL/dx, through the layers in reverse."""
        layers = self.children()
        for layer in layers:  # the previous step's gradients go before new ones are made
            layer.grad_input = None
            for grad_name in layer.grad_names:
                setattr(layer, grad_name, None)
        for layer in reversed(layers):
            grad_output = type(layer).backward.math(layer, grad_output)  # type: ignore[attr-defined]
        return grad_output

    def predict(self, x: Any) -> Any:
        """Forward without storing any activation (inference)."""
        for layer in self.children():
            x = type(layer).predict.math(layer, x)  # type: ignore[attr-defined]
        return x

    def grads_ok(self, holders: list[Module]) -> bool:
        for layer in self.children():  # a loop, not all(...): one frame fewer per layer
            if not layer.grads_ok(holders):
                return False
        return True

    # -- the boundary ------------------------------------------------------------------------
    def check(self, method: str, *args: Any) -> None:
        """The checks of the layer that sees the caller's array: the first (the last for
        backward); the parameters of every Linear as made."""
        layers = self.children()
        for layer in self.linears():
            if not layer.params_ok():
                layer.check_params(f"{type(self).__name__}.{method}")
        (layers[-1] if method == "backward" else layers[0]).check(method, *args)

    def run_checked(self, method: str, math: Any, args: tuple[Any, ...]) -> Any:
        layers = self.children()
        if len(args) == 1 and self.plain(method, layers):
            (value,) = args
            (layers[-1] if method == "backward" else layers[0]).check(method, value)
            return math(self, value)
        if len({id(m) for m in self.modules()}) != len(list(self.modules())):
            self.check_unshared(f"{type(self).__name__}.{method}")
        order = reversed(layers) if method == "backward" else layers
        saved = self._snapshot() if method != "predict" else []
        try:
            (value,) = args
            for layer in order:
                value = getattr(layer, method)(value)
        except BaseException:  # a layer refused half-way: every layer as it was
            Module._restore(saved)
            raise
        return value

    def plain(self, method: str, layers: list[Module] | None = None) -> bool:
        """Whether the layers form a plain chain, in which only the first layer (the last, for
        backward) can refuse what it is handed: a Linear first, every layer's own class
        chain-safe (xmlp's Linear and activations; a subclass must say so itself), no layer
        listed twice, the Linears of one place with their parameters as made and dims that
        chain; for backward, the stored arrays of one forward through the whole chain."""
        layers = self.children() if layers is None else layers
        known = _CHAINS.get(id(self))  # the classes' verdict, for these layer objects
        if (known is None or len(known[0]) != len(layers)
                or not all(map(operator.is_, known[0], layers))):
            known = (tuple(layers), _chain_safe_linears(layers))
            if id(self) not in _CHAINS:
                weakref.finalize(self, _CHAINS.pop, id(self), None)
            _CHAINS[id(self)] = known
        linears = known[1]
        if linears is None:
            return False
        # the parameters of the layer that sees the caller's array are its own check's
        edge = layers[-1] if method == "backward" else layers[0]
        spec, previous = linears[0].spec, None
        for layer in linears:  # what can change by hand between calls
            if not ((layer.spec is spec or layer.spec.same_place(spec))
                    and (layer is edge or layer.params_ok())):
                return False
            if previous is not None and previous.output_dim != layer.input_dim:
                return False
            previous = layer
        if method == "backward":
            before: Module = layers[0]
            if before.x is None:
                return False
            for after in layers[1:]:
                if before.output is None or after.x is not before.output:
                    return False
                before = after
        return True

    # Dims where they can be read: (input_dim of the first Linear, output_dim of the last).
    def linears(self) -> list[Linear]:
        return [m for m in self.modules() if isinstance(m, Linear)]

    @property  # read-only: the first layer's with parameters (or buffers)
    def spec(self) -> ArraySpec:  # type: ignore[override]
        for module in self.modules():
            if module is not self and (module.param_names or module.buffer_names):
                return module.spec
        raise AttributeError(f"{type(self).__name__} holds no parameters, so it has no spec "
                             "(namespace, device and dtype) of its own")


class Sequential(Container):
    """Layers applied in order: xmlp Modules with forward/backward/predict. Parameters are
    named by position: "0.weights", "0.biases", "2.weights"...

    Consecutive Linear layers (with only parameter-free layers between them) must agree on
    dims: ValueError otherwise. Layers with parameters must share one namespace, device and
    dtype (a model that mixes them could never run a forward pass): TypeError otherwise.

    A layer object can be used once, in one model: ValueError for ``Sequential(L, Tanh(), L)``
    or for a layer that belongs to another model still alive (each layer keeps its last
    forward's arrays for backward, so a shared one would compute wrong gradients).
    ``copy.deepcopy(layer)`` makes a new layer with the same weights.

    Args:
        *layers: xmlp Modules (:class:`Linear`, activations, :class:`MLP`, another
            Sequential, your own subclasses), applied in this order.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> model = xmlp.Sequential(xmlp.Linear(4, 8, rng=0), xmlp.ReLU(),
        ...                         xmlp.Linear(8, 3, rng=1))
        >>> model.forward(np.ones((2, 4))).shape
        (2, 3)
        >>> [name for name, _ in model.named_parameters()]
        ['0.weights', '0.biases', '2.weights', '2.biases']
    """

    def __init__(self, *layers: Module) -> None:
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: layer {i} ({type(layer).__name__}) is not an xmlp.Module; "
                    "subclass xmlp.Module and define forward/backward/predict."
                )
            for method in ("forward", "backward", "predict"):
                if not callable(getattr(layer, method, None)):
                    raise TypeError(
                        f"Sequential: layer {i} ({type(layer).__name__}) has no {method}() method"
                    )
        previous: tuple[int, Linear] | None = None
        for i, layer in enumerate(layers):
            if isinstance(layer, Linear):
                if previous is not None and previous[1].output_dim != layer.input_dim:
                    raise ValueError(
                        f"Sequential: layer {previous[0]} gives {previous[1].output_dim} features "
                        f"but layer {i} takes {layer.input_dim}"
                    )
                previous = (i, layer)
        _check_one_place(layers)
        self.adopt_children((str(i), layer) for i, layer in enumerate(layers))
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def children(self) -> list[Module]:
        return self.layers

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


class MLP(Container):
    """The classic exercise's model: ``linear1`` (input -> hidden), ``activation`` (Tanh),
    ``linear2`` (hidden -> output).

    ``xp``, ``device``, ``dtype`` say where parameters live (see :class:`Linear`); one ``rng``
    Generator draws linear1.weights, linear1.biases, linear2.weights, linear2.biases in that
    order; ``init`` is passed to both Linear layers.

    Args:
        input_dim: features of the input.
        hidden_dim: width of the hidden layer.
        output_dim: features of the output.
        xp: the array module of the parameters or its name, as for :class:`Linear`
            (default NumPy).
        device: a device of ``xp`` (default: its default device).
        dtype: a real floating dtype (default: the namespace's default float).
        rng: None, an int seed or a ``numpy.random.Generator``; one generator draws
            linear1.weights, linear1.biases, linear2.weights, linear2.biases in that order.
        init: "normal", "xavier" or "he", passed to both Linear layers.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> model.forward(np.zeros((5, 1))).shape
        (5, 1)
        >>> [name for name, _ in model.named_parameters()]
        ['linear1.weights', 'linear1.biases', 'linear2.weights', 'linear2.biases']
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        *,
        xp: Any = None,
        device: Any = None,
        dtype: Any = None,
        rng: Any = None,
        init: str = "normal",
    ) -> None:
        generator = make_rng(rng)
        self.linear1 = Linear(input_dim, hidden_dim, xp=xp, device=device, dtype=dtype,
                              rng=generator, init=init)
        self.activation = Tanh()
        spec = self.linear1.spec
        self.linear2 = Linear(hidden_dim, output_dim, xp=spec.xp, device=spec.device,
                              dtype=spec.dtype, rng=generator, init=init)
        self.linear2.spec = spec  # the same place: one object, compared by identity
        self.adopt_children(self.named_children())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield "linear1", self.linear1
        yield "activation", self.activation
        yield "linear2", self.linear2

    def children(self) -> list[Module]:
        return [self.linear1, self.activation, self.linear2]

    def __repr__(self) -> str:
        l1, l2 = self.linear1, self.linear2
        return f"MLP({l1.input_dim}, {l1.output_dim}, {l2.output_dim}, {l1.spec.describe()})"


# id(container) -> (its layers, their Linears if the layers' classes make a plain chain):
# kept outside the containers, whose attributes are what a refused call must leave as it was
_CHAINS: dict[int, tuple[tuple[Module, ...], list[Linear] | None]] = {}


def _chain_safe_linears(layers: list[Module]) -> list[Linear] | None:
    """The Linear layers of a chain that starts with one, whose every layer's own class is
    chain-safe and lists no layer twice; None otherwise."""
    if not layers or not isinstance(layers[0], Linear):
        return None
    if len({id(m) for m in layers}) != len(layers):
        return None
    if not all(vars(type(m)).get("chain_safe", False) for m in layers):
        return None
    return [m for m in layers if isinstance(m, Linear)]


def _check_one_place(layers: tuple[Module, ...]) -> None:
    """TypeError unless every layer with parameters (at any depth) has the first one's
    namespace, device and dtype."""
    first: tuple[int, ArraySpec] | None = None
    for i, layer in enumerate(layers):
        for _, module in layer.named_modules():
            spec = module.spec if module.param_names or module.buffer_names else None
            if spec is None:
                continue
            if first is None:
                first = (i, spec)
            elif not spec.same_place(first[1]):
                raise TypeError(
                    f"Sequential: layer {i} holds {spec.describe()} parameters but layer "
                    f"{first[0]} holds {first[1].describe()}; a model computes in one "
                    "namespace, device and dtype. Convert a layer with .to(...) first."
                )
