"""Linear: the one layer with parameters, y = x @ W.T + b."""

from __future__ import annotations

import functools
import math
import numbers
import sys
import weakref
from typing import Any

from ..backend import (
    ArraySpec,
    floating_spec,
    make_rng,
    namespace_name,
    resolve_namespace,
    short_repr,
)
from .checks import check_grad_output, check_input_like
from .module import Module

__all__ = ["Linear"]

# id(layer) -> (weights, biases, spec) that last passed Linear.params_ok on NumPy; kept outside
# the layers, whose attributes a refused call must leave as they were
_FITTING: dict[int, tuple[Any, Any, ArraySpec]] = {}
_INITS = ("normal", "xavier", "he")


class Linear(Module):
    """Fully connected layer: ``output = x @ weights.T + biases``.

    Args:
        input_dim: features of the input; ``weights`` is (output_dim, input_dim), as in the
            seed notebook.
        output_dim: features of the output; ``biases`` is (output_dim,).
        initial_weights: optional starting weights, (output_dim, input_dim). They are
            **copied** (the notebook kept the caller's arrays and trained them in place), as
            values: in the machine's byte order, and detached from any torch autograd graph.
            Their namespace and device decide where the layer lives, and their dtype unless
            ``dtype`` is given.
        initial_biases: optional starting biases, (output_dim,), copied the same way.
        xp: where the parameters live when no initial arrays are given: an array module
            (numpy, cupy, torch, jax.numpy, dask.array, array_api_strict; default NumPy) or
            its name ("numpy", "cupy", "torch", "jax", "dask", "array_api_strict").
        device: a device of ``xp`` (default: the initial arrays' device, else ``xp``'s
            default).
        dtype: a real floating dtype (default: the initial arrays' dtype, else the
            namespace's default float).
        rng: None, an int seed or a ``numpy.random.Generator`` for the random init.
        init: "normal" (standard normal weights and biases, the notebook's default), "xavier"
            (normal with std sqrt(2 / (in + out)), zero biases) or "he" (std sqrt(2 / in),
            zero biases). Draws are float64 from ``rng``, then cast and moved, so the same
            ``rng`` gives the same weights on every backend.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> layer = xmlp.Linear(3, 2, rng=0)
        >>> layer.weights.shape, layer.biases.shape
        ((2, 3), (2,))
        >>> layer.forward(np.ones((4, 3))).shape
        (4, 2)
        >>> layer.backward(np.ones((4, 2))).shape   # dL/dx; sets grad_weights, grad_biases
        (4, 3)
        >>> layer.update_params(0.1)                # one SGD step
    """

    param_names = ("weights", "biases")
    state_names = ("x", "output", "grad_input")
    # a container may run a chain of such layers after checking only its first input: they
    # reject nothing another chain-safe layer of the same place hands them (containers.py)
    chain_safe = True
    # set by __init__; a plain class attribute in place of Module's descriptor, which is for
    # layers that set none and makes each read of an instance's own value slower
    spec: ArraySpec = None  # type: ignore[assignment]

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        initial_weights: Any = None,
        initial_biases: Any = None,
        *,
        xp: Any = None,
        device: Any = None,
        dtype: Any = None,
        rng: Any = None,
        init: str = "normal",
    ) -> None:
        dims: list[int] = []
        for label, dim in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
                raise TypeError(f"Linear: {label} must be a positive int, got "
                                f"{type(dim).__name__}: {short_repr(dim)}")
            if not 1 <= dim <= sys.maxsize:  # beyond it no array could have the dimension
                limit = f" up to {sys.maxsize}" if dim > 0 else ""  # named only when passed
                raise ValueError(f"Linear: {label} must be a positive int{limit}, "
                                 f"got {short_repr(dim)}")
            dims.append(int(dim))  # a NumPy integer becomes a plain int
        input_dim, output_dim = dims
        if init not in _INITS:
            raise ValueError(f"Linear: init must be one of {_INITS}, got {short_repr(init)}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.spec = _spec_from(initial_weights, initial_biases, xp, device, dtype)
        w_shape, b_shape = (output_dim, input_dim), (output_dim,)
        for label, given, shape in (
            ("initial_weights", initial_weights, w_shape),
            ("initial_biases", initial_biases, b_shape),
        ):
            if given is not None and tuple(given.shape) != shape:
                raise ValueError(
                    f"Linear({input_dim}, {output_dim}): {label} must have shape {shape}, "
                    f"got {tuple(given.shape)}"
                )
        generator = make_rng(rng)
        spec = self.spec
        if initial_weights is not None:
            self.weights = spec.convert(initial_weights)
        else:
            scale = {"normal": 1.0, "xavier": math.sqrt(2.0 / (input_dim + output_dim)),
                     "he": math.sqrt(2.0 / input_dim)}[init]
            self.weights = spec.random_normal(generator, w_shape, scale)
        if initial_biases is not None:
            self.biases = spec.convert(initial_biases)
        elif init == "normal":
            self.biases = spec.random_normal(generator, b_shape, 1.0)
        else:
            self.biases = spec.zeros(b_shape)
        self.x: Any = None
        self.output: Any = None
        self.grad_weights: Any = None
        self.grad_biases: Any = None
        self.grad_input: Any = None

    def __repr__(self) -> str:
        return f"Linear({self.input_dim}, {self.output_dim}, {self.spec.describe()})"

    # -- the boundary: run by Module before each pass ------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weights": (self.output_dim, self.input_dim), "biases": (self.output_dim,)}

    def params_ok(self) -> bool:
        # Module.params_ok unrolled for the usual case (NumPy: one device, no autograd): every
        # pass runs it. NumPy parameters found to fit are remembered by identity, so that only
        # an array assigned by hand is looked at again (an ndarray keeps its type and dtype,
        # and its shape unless .shape is assigned).
        spec, w, b = self.spec, self.weights, self.biases
        fitting = _FITTING.get(id(self))
        if fitting is not None and fitting[0] is w and fitting[1] is b and fitting[2] is spec:
            return True
        if not self._plainly_fit(w, b):
            return super().params_ok()
        if type(w).__module__ == "numpy":
            if fitting is None:
                weakref.finalize(self, _FITTING.pop, id(self), None)
            _FITTING[id(self)] = (w, b, spec)
        return True

    def grads_ok(self, holders: list[Module]) -> bool:
        # Module.grads_ok unrolled for the usual case: every update runs it
        if self.params_ok() and self._plainly_fit(self.grad_weights, self.grad_biases):
            holders.append(self)
            return True
        return super().grads_ok(holders)

    def _plainly_fit(self, w: Any, b: Any) -> bool:
        """Whether ``w`` and ``b`` fit as weights and biases (or their gradients) by what one
        expression can tell: the parameters' array type, dtype and the layer's shapes, where
        no device or autograd flag needs a look (NumPy). False sends the caller to Module's
        general check, which says what is wrong."""
        spec = self.spec
        return (type(w) is spec.array_type and type(b) is spec.array_type
                and w.dtype == spec.dtype and b.dtype == spec.dtype
                and not (spec.check_device or spec.autograd)
                and w.shape == (self.output_dim, self.input_dim)
                and b.shape == (self.output_dim,))

    def check(self, method: str, *args: Any) -> None:
        """x: an array of the parameters' namespace, device and dtype, shape (..., input_dim);
        grad_output: the output's; the parameters as the layer made them."""
        owner = _owner(self.input_dim, self.output_dim, method)
        if not self.params_ok():
            self.check_params(owner)
        if method == "backward":
            check_grad_output(self.output, args[0], owner, against=None)
        else:
            check_input_like(self.spec, args[0], owner, self.input_dim)

    # -- the math ------------------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """x (..., input_dim) -> output = x @ weights.T + biases (..., output_dim); stores
        ``x`` and ``output``."""
        self.x = x
        self.output = self._affine(x)
        return self.output

    def predict(self, x: Any) -> Any:
        """x @ weights.T + biases, storing nothing (inference)."""
        return self._affine(x)

    def backward(self, grad_output: Any) -> Any:
        """grad_output (..., output_dim) -> grad_input = grad_output @ weights (..., input_dim).

        Sets ``grad_weights`` = grad_output.T @ x (output_dim, input_dim), summed over all
        leading dims, and ``grad_biases`` = grad_output summed over them (output_dim,).
        """
        xp, ops, x = self.spec.xp, self.spec.ops, self.x
        g2, x2 = grad_output, x  # leading dims folded into one: any batch shape is one GEMM
        if x.ndim != 2:
            g2, x2 = xp.reshape(g2, (-1, self.output_dim)), xp.reshape(x, (-1, self.input_dim))
        self.grad_weights = ops.sum_outer(g2, x2)
        self.grad_biases = ops.sum_rows(g2)
        grad_input = ops.matmul(g2, self.weights)
        self.grad_input = grad_input if x.ndim == 2 else xp.reshape(grad_input, x.shape)
        return self.grad_input

    def sgd_step(self, learning_rate: float) -> None:
        """weights -= learning_rate * grad_weights; biases -= learning_rate * grad_biases."""
        sgd = self.spec.ops.sgd
        self.weights = sgd(self.weights, self.grad_weights, learning_rate)
        self.biases = sgd(self.biases, self.grad_biases, learning_rate)

    def _affine(self, x: Any) -> Any:
        xp, ops = self.spec.xp, self.spec.ops
        if x.ndim == 2:
            return ops.affine(x, self.weights, self.biases)
        out = ops.affine(xp.reshape(x, (-1, self.input_dim)), self.weights, self.biases)
        return xp.reshape(out, (*x.shape[:-1], self.output_dim))


@functools.lru_cache(maxsize=1024)
def _owner(input_dim: int, output_dim: int, method: str) -> str:
    """"Linear(1, 10).forward", made once per shape and method: every call names its owner."""
    return f"Linear({input_dim}, {output_dim}).{method}"


def _spec_from(weights: Any, biases: Any, xp: Any, device: Any, dtype: Any) -> ArraySpec:
    """Where the layer lives: the initial arrays' namespace and device when given, else xp."""
    given = [(label, a) for label, a in (("initial_weights", weights), ("initial_biases", biases))
             if a is not None]
    if not given:
        return ArraySpec.resolve(xp, device, dtype)
    label, first = given[0]
    # The initial arrays are copied into the spec, so a big-endian or autograd-tracking
    # array is fine: the copies are native and detached.
    spec = (floating_spec(first, "Linear", label, converting=True) if dtype is None
            else ArraySpec.of(first, dtype))
    for name, a in given:
        spec.check(a, "Linear", name, dtype=False)
    # the namespace alone: xp's own devices need not include the arrays' (a clash of devices
    # would hide the clash of namespaces)
    ns = None if xp is None else resolve_namespace(xp)
    if ns is not None and ns is not spec.xp:
        raise TypeError(
            f"Linear: xp={namespace_name(ns)} disagrees with {label} of {spec.name}; pass one "
            "or the other, or convert the arrays first."
        )
    if device is not None and device != spec.device and not _names_device(spec, device):
        raise TypeError(
            f"Linear: device={short_repr(device)} disagrees with {label} on {spec.device}; move "
            "the arrays first or leave device out."
        )
    return spec


def _names_device(spec: ArraySpec, device: Any) -> bool:
    """Whether ``device`` as a user writes it names the spec's device (torch's "cpu" is
    torch.device("cpu"), which does not compare equal to the string)."""
    try:
        return ArraySpec(spec.xp, device, spec.dtype).device == spec.device
    except Exception:  # not a device of this namespace: it names another
        return False
