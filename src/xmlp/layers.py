"""Linear: the one layer with parameters, y = x @ W.T + b."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

from ._backend import (
    ArraySpec,
    floating_spec,
    make_rng,
    namespace_name,
    resolve_namespace,
    short_repr,
)
from .errors import ForwardNotCalledError
from .module import Module

__all__ = ["Linear"]

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

    _param_names = ("weights", "biases")
    _state_names = ("x", "output", "grad_input", "_x2")
    # Sequential may skip its snapshot around a chain of such layers: forward and backward
    # reject nothing another chain-safe layer of the same place hands them (models.py)
    _chain_safe = True

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
        self._w_shape, self._b_shape = (output_dim, input_dim), (output_dim,)
        self._spec = _spec_from(initial_weights, initial_biases, xp, device, dtype)
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
        spec = self._spec
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
        self._x2: Any = None
        self.grad_weights: Any = None
        self.grad_biases: Any = None
        self.grad_input: Any = None

    # where the parameters live
    @property
    def xp(self) -> Any:
        return self._spec.xp

    @property
    def device(self) -> Any:
        return self._spec.device

    @property
    def dtype(self) -> Any:
        return self._spec.dtype

    def __repr__(self) -> str:
        return f"Linear({self.input_dim}, {self.output_dim}, {self._spec.describe()})"

    # -- passes ------------------------------------------------------------------------------
    def _label(self, method: str) -> str:
        return f"Linear({self.input_dim}, {self.output_dim}).{method}"

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weights": self._w_shape, "biases": self._b_shape}

    def _params_ok(self) -> bool:
        # Module._params_ok unrolled for two parameters: every forward and backward runs it.
        spec, w, b = self._spec, self.weights, self.biases
        if (type(w) is spec.array_type and type(b) is spec.array_type and w.dtype == spec.dtype
                and b.dtype == spec.dtype and not spec.check_device
                and w.shape == self._w_shape and b.shape == self._b_shape):
            return True  # NumPy: one device, no autograd
        return super()._params_ok()

    def _check_input(self, x: Any, method: str, params: bool = True) -> None:
        """Every check of a forward/predict input, and of the parameters unless the caller
        (MLP's fast path) has just checked them."""
        spec = self._spec
        if params and not self._params_ok():
            self._check_params(self._label(method))
        # The usual case (same array type and dtype, one device) builds no message: every
        # forward runs this.
        if type(x) is not spec.array_type or x.dtype != spec.dtype or spec.check_device:
            spec.check(x, self._label(method), "x")
        shape = x.shape  # read once: on NumPy each read builds a new tuple
        if not shape or shape[-1] != self.input_dim:
            owner = self._label(method)
            raise ValueError(
                f"{owner}: x must have shape (..., {self.input_dim}) (input_dim features), "
                f"got {tuple(shape)}"
            )
        if None in shape or shape[0] != shape[0]:  # an unknown size: Dask's nan
            owner = self._label(method)
            raise ValueError(
                f"{owner}: x has an unknown size, shape {tuple(x.shape)}; on Dask call "
                "x.compute_chunk_sizes() first (needed after boolean indexing, for instance)."
            )
        if 0 in shape:
            raise ValueError(f"{self._label(method)}: x is an empty batch (shape "
                             f"{tuple(shape)}); pass at least one sample")

    def _check_grad_output(self, grad_output: Any, params: bool = True) -> None:
        if self._x2 is None:
            raise ForwardNotCalledError("Perform forward pass first.")
        spec = self._spec
        if params and not self._params_ok():
            self._check_params(self._label("backward"))
        if (type(grad_output) is not spec.array_type or grad_output.dtype != spec.dtype
                or spec.check_device):
            spec.check(grad_output, self._label("backward"), "grad_output")
        if grad_output.shape != self.output.shape:
            owner = self._label("backward")
            raise ValueError(
                f"{owner}: grad_output must have the output's shape {tuple(self.output.shape)}, "
                f"got {tuple(grad_output.shape)}"
            )

    def _affine(self, x: Any) -> tuple[Any, Any]:
        """(x folded to 2-D, output in x's leading shape): one GEMM whatever the batch dims."""
        xp = self._spec.xp
        x2 = x if x.ndim == 2 else xp.reshape(x, (-1, self.input_dim))
        out = self._spec.ops.affine(x2, self.weights, self.biases)
        if x.ndim != 2:
            out = xp.reshape(out, (*x.shape[:-1], self.output_dim))
        return x2, out

    def forward(self, x: Any) -> Any:
        """x (..., input_dim) -> output (..., output_dim); stores ``x`` and ``output``."""
        self._check_input(x, "forward")
        return self._forward(x)

    def _forward(self, x: Any) -> Any:
        """forward on an input (and parameters) already checked."""
        x2, out = self._affine(x)
        self.x, self._x2, self.output = x, x2, out
        return out

    def predict(self, x: Any) -> Any:
        """Same as forward, but stores nothing (inference)."""
        self._check_input(x, "predict")
        return self._affine(x)[1]

    def backward(self, grad_output: Any) -> Any:
        """grad_output (..., output_dim) -> grad_input (..., input_dim).

        Sets ``grad_weights`` (output_dim, input_dim), summed over all leading dims,
        ``grad_biases`` (output_dim,) and ``grad_input``.
        """
        self._check_grad_output(grad_output)
        return self._backward(grad_output)

    def _backward(self, grad_output: Any) -> Any:
        """backward on a grad_output (and parameters) already checked."""
        xp, ops = self._spec.xp, self._spec.ops
        g2 = grad_output
        if grad_output.ndim != 2:
            g2 = xp.reshape(grad_output, (-1, self.output_dim))
        grad_weights = ops.matmul(g2.T, self._x2)
        grad_biases = ops.sum_rows(g2)
        grad_input = ops.input_grad(g2, self.weights, self._x2)
        if grad_output.ndim != 2:
            grad_input = xp.reshape(grad_input, tuple(self.x.shape))
        self.grad_weights, self.grad_biases, self.grad_input = grad_weights, grad_biases, grad_input
        return grad_input

    def _apply_update(self, learning_rate: float) -> None:
        ops = self._spec.ops
        self.weights = ops.sgd(self.weights, self.grad_weights, learning_rate)
        self.biases = ops.sgd(self.biases, self.grad_biases, learning_rate)


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
