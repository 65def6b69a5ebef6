"""Models made of layers: Sequential (any depth) and the seed's MLP (Linear -> Tanh -> Linear)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from ._backend import ArraySpec, make_rng
from .activations import ReLU, Sigmoid, Tanh
from .layers import Linear
from .module import Module

# Activations that cannot reject what a Linear of the same spec hands them (MLP's fast path).
_PLAIN_ACTIVATIONS = (Tanh, ReLU, Sigmoid)

__all__ = ["MLP", "Sequential"]


class _Container(Module):
    """Runs its children in order; a call any child rejects leaves every child as it was."""

    def _layers(self) -> list[Module]:
        return [child for _, child in self.named_children()]

    def _snapshot_unshared(self, method: str) -> list[tuple[Module, dict[str, Any]]]:
        """The snapshot to undo a rejected pass; ValueError first if a layer object was put in
        twice by hand after construction."""
        snapshot = self._snapshot()
        if len({id(m) for m, _ in snapshot}) != len(snapshot):
            self._check_unshared(f"{type(self).__name__}.{method}")
        return snapshot

    def forward(self, x: Any) -> Any:
        """x -> output of the last layer; each layer stores its own x and output."""
        snapshot = self._snapshot_unshared("forward")
        try:
            for layer in self._layers():
                x = layer.forward(x)
        except BaseException:
            self._restore(snapshot)
            raise
        return x

    def predict(self, x: Any) -> Any:
        """Forward without storing any activation (inference)."""
        for layer in self._layers():
            x = layer.predict(x)
        return x

    def backward(self, grad_output: Any) -> Any:
        """dL/d(output) -> dL/dx, through the layers in reverse; returns dL/dx."""
        snapshot = self._snapshot_unshared("backward")
        try:
            for layer in reversed(self._layers()):
                grad_output = layer.backward(grad_output)
        except BaseException:
            self._restore(snapshot)
            raise
        return grad_output

    # Keeps the learning rate and gradient checks of Module.update_params: every layer is
    # checked before any parameter changes.

    # Dims where they can be read: (input_dim of the first Linear, output_dim of the last).
    def _linears(self) -> list[Linear]:
        return [m for m in self._modules() if isinstance(m, Linear)]

    @property
    def xp(self) -> Any:
        return self._linears()[0].xp

    @property
    def device(self) -> Any:
        return self._linears()[0].device

    @property
    def dtype(self) -> Any:
        return self._linears()[0].dtype


class Sequential(_Container):
    """Layers applied in order: xmlp Modules with forward/backward/predict (parameters listed by
    ``_param_names``, updated by ``_apply_update``). Parameters are named by position:
    "0.weights", "0.biases", "2.weights"...

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
            # Snapshots, to() and all-or-nothing updates walk children as Modules.
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
        self._adopt((str(i), layer) for i, layer in enumerate(layers))
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    # forward and backward skip the container's snapshot (a copy of every layer's attributes,
    # per pass) when the layers form a plain chain: then only the layer that sees the outside
    # array (the first in forward, the last in backward) can reject it, and it does so before
    # it stores anything; every later layer is handed what the chain made for it.
    def _plain_chain(self) -> bool:
        """Whether the first layer is a Linear, every layer's own class declares
        ``_chain_safe`` (xmlp's Linear and activations: a subclass that might reject more is not
        trusted unless it says so itself), the Linears share one place, their parameters still
        fit them and their dims chain, and no layer object is listed twice. O(layers)."""
        layers = self.layers
        first = layers[0] if layers else None
        if not isinstance(first, Linear):
            return False
        spec = first._spec
        previous: Linear | None = None
        for layer in layers:
            if not vars(type(layer)).get("_chain_safe", False):
                return False
            if isinstance(layer, Linear):
                if not (layer._spec.same_place(spec) and layer._params_ok()):
                    return False
                if previous is not None and previous.output_dim != layer.input_dim:
                    return False
                previous = layer
        return len({id(layer) for layer in layers}) == len(layers)

    def forward(self, x: Any) -> Any:
        """x -> output of the last layer; each layer stores its own x and output."""
        if not self._plain_chain():
            return super().forward(x)
        layers = self.layers
        x = layers[0].forward(x)  # checks the caller's x
        for layer in layers[1:]:  # each handed what the checked chain made for it
            x = _unchecked(layer, "forward")(x)
        return x

    def backward(self, grad_output: Any) -> Any:
        """dL/d(output) -> dL/dx, through the layers in reverse; returns dL/dx."""
        layers = self.layers
        # the stored arrays must be those of one forward through the whole chain
        if not (self._plain_chain() and layers[0]._x2 is not None  # type: ignore[attr-defined]
                and all(a.output is not None and b.x is a.output  # type: ignore[attr-defined]
                        for a, b in pairwise(layers))):
            return super().backward(grad_output)
        grad_output = layers[-1].backward(grad_output)  # checks the caller's gradient
        for layer in reversed(layers[:-1]):
            grad_output = _unchecked(layer, "backward")(grad_output)
        return grad_output

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


class MLP(_Container):
    """The seed's model: ``linear1`` (input -> hidden), ``activation`` (Tanh), ``linear2``
    (hidden -> output).

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
        spec = self.linear1._spec
        self.linear2 = Linear(hidden_dim, output_dim, xp=spec.xp, device=spec.device,
                              dtype=spec.dtype, rng=generator, init=init)
        self._adopt(self.named_children())

    # forward and backward are the seed's code after O(1) checks. They need no snapshot when
    # the layers are as the model made them (two distinct Linear layers whose dims chain, with
    # the same namespace, device and dtype and parameters that still fit them, and a built-in
    # activation between; for backward, the last forward's arrays chained through all three):
    # then only the first layer sees an array from outside, and once it is accepted nothing
    # after it can be rejected. Anything else (a layer moved, cleared or swapped by hand, a
    # parameter replaced) takes the container's snapshot path, which undoes a rejected pass.
    # The previous step's arrays are let go before new ones are made, so a step never holds
    # two sets of activations (or gradients) at once.
    def _layers_agree(self) -> bool:
        l1, act, l2 = self.linear1, self.activation, self.linear2
        return (type(l1) is Linear and type(l2) is Linear and l1 is not l2
                and type(act) in _PLAIN_ACTIVATIONS and l1.output_dim == l2.input_dim
                and l1._spec.same_place(l2._spec) and l1._params_ok() and l2._params_ok())

    def forward(self, x: Any) -> Any:
        """x (..., input_dim) -> output (..., output_dim)."""
        if not self._layers_agree():  # checked the parameters of both layers
            return super().forward(x)
        l1, act, l2 = self.linear1, self.activation, self.linear2
        l1._check_input(x, "forward", params=False)
        for layer in (l1, act, l2):
            layer.x = layer.output = None
        l1._x2 = l2._x2 = None
        hidden = l1._forward(x)
        activated_hidden = act.forward(hidden)
        output = l2._forward(activated_hidden)  # its input is the chain's: nothing to check
        return output

    def backward(self, grad_output: Any) -> Any:
        """dL/d(output) (..., output_dim) -> dL/dx (..., input_dim)."""
        l1, act, l2 = self.linear1, self.activation, self.linear2
        chained = l1._x2 is not None and act.x is l1.output and l2.x is act.output
        if not (chained and self._layers_agree()):
            return super().backward(grad_output)
        l2._check_grad_output(grad_output, params=False)
        for layer in (l1, l2):
            layer.grad_weights = layer.grad_biases = layer.grad_input = None
        act.grad_input = None
        grad_hidden = l2._backward(grad_output)
        grad_activated_hidden = act.backward(grad_hidden)
        grad_input = l1._backward(grad_activated_hidden)
        return grad_input

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield "linear1", self.linear1
        yield "activation", self.activation
        yield "linear2", self.linear2

    def __repr__(self) -> str:
        l1, l2 = self.linear1, self.linear2
        return f"MLP({l1.input_dim}, {l1.output_dim}, {l2.output_dim}, {l1._spec.describe()})"


def _unchecked(layer: Module, method: str) -> Any:
    """A Linear's ``_forward`` / ``_backward`` (its forward / backward without the checks of
    what it is handed) inside a plain chain, whose first layer checked the caller's array and
    whose check verified the parameters, the dims and the place; the public method for every
    other layer, and for a Linear subclass that overrides forward or backward itself."""
    if isinstance(layer, Linear) and getattr(type(layer), method) is getattr(Linear, method):
        return getattr(layer, "_" + method)
    return getattr(layer, method)


def _check_one_place(layers: tuple[Module, ...]) -> None:
    """TypeError unless every layer with parameters (at any depth) has the first one's
    namespace, device and dtype."""
    first: tuple[int, ArraySpec] | None = None
    for i, layer in enumerate(layers):
        for _, module in layer._named_modules():
            spec = getattr(module, "_spec", None) if module._param_names else None
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
