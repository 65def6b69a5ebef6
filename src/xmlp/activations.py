"""Parameter-free layers: Tanh (the seed's), ReLU, Sigmoid (elementwise) and Softmax (last axis).

Each takes any real floating array of ndim >= 1 and works in that array's own namespace.
Derivatives use what forward stored, so nothing is computed twice.
"""

from __future__ import annotations

from typing import Any

from ._backend import ArraySpec, floating_spec
from .errors import ForwardNotCalledError
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Softmax", "Tanh"]


class _Activation(Module):
    _state_names = ("x", "output", "grad_input", "_seen")

    def __init__(self) -> None:
        self.x: Any = None
        self.output: Any = None
        self.grad_input: Any = None
        self._seen: ArraySpec | None = None

    def _input_spec(self, x: Any, method: str) -> ArraySpec:
        spec = self._seen
        if spec is None or not spec.holds(x):
            spec = floating_spec(x, f"{type(self).__name__}.{method}", "x")
        shape = x.shape
        if not shape:
            raise ValueError(
                f"{type(self).__name__}.{method}: x must have shape (...) with ndim >= 1, got "
                "shape () (a 0-d array); reshape it, e.g. to (1,)."
            )
        if 0 in shape:
            raise ValueError(f"{type(self).__name__}.{method}: x is an empty batch (shape "
                             f"{tuple(shape)}); pass at least one sample")
        return spec

    def _f(self, spec: ArraySpec, x: Any) -> Any:
        """The activation of x, in x's namespace."""
        raise NotImplementedError

    def _df(self, spec: ArraySpec, grad_output: Any) -> Any:
        """dL/dx from dL/d(output) and what forward stored."""
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        """x (...) -> output (...), elementwise; stores ``x`` and ``output``."""
        spec = self._input_spec(x, "forward")
        out = self._f(spec, x)
        self.x, self.output, self._seen = x, out, spec
        return out

    def predict(self, x: Any) -> Any:
        """Same as forward, but stores nothing (inference)."""
        return self._f(self._input_spec(x, "predict"), x)

    def backward(self, grad_output: Any) -> Any:
        """grad_output (same shape as output) -> grad_input; stores ``grad_input``."""
        if self.output is None or self._seen is None:
            raise ForwardNotCalledError("Perform forward pass first.")
        spec = self._seen
        # The usual case builds no message: every backward runs this.
        if (type(grad_output) is not spec.array_type or grad_output.dtype != spec.dtype
                or spec.check_device):
            spec.check(grad_output, f"{type(self).__name__}.backward", "grad_output",
                       against="the forward input")
        if grad_output.shape != self.output.shape:
            owner = f"{type(self).__name__}.backward"
            raise ValueError(
                f"{owner}: grad_output must have the output's shape {tuple(self.output.shape)}, "
                f"got {tuple(grad_output.shape)}"
            )
        self.grad_input = self._df(self._seen, grad_output)
        return self.grad_input


class Tanh(_Activation):
    """tanh(x); backward uses the stored output: d tanh = 1 - y**2.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.Tanh()
        >>> print(act.forward(np.array([0.0, 1.0])))
        [0.         0.76159416]
        >>> print(act.backward(np.ones(2)))
        [1.         0.41997434]
    """

    _chain_safe = True  # see Linear._chain_safe

    def _f(self, spec: ArraySpec, x: Any) -> Any:
        return spec.ops.tanh(x)

    def _df(self, spec: ArraySpec, grad_output: Any) -> Any:
        return spec.ops.tanh_grad(grad_output, self.output)


class ReLU(_Activation):
    """max(x, 0); gradient 1 where x > 0, else 0. A NaN input stays NaN (as in PyTorch).

    Both passes are one elementwise op on the data (plus the mask's cast): ``where`` with a
    zeros temporary measured 4-8x slower on NumPy (a data-dependent branch per element).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.ReLU()
        >>> print(act.forward(np.array([-1.0, 0.0, 2.0])))
        [0. 0. 2.]
        >>> print(act.backward(np.ones(3)))
        [0. 0. 1.]
    """

    _chain_safe = True  # see Linear._chain_safe

    def _f(self, spec: ArraySpec, x: Any) -> Any:
        return spec.ops.relu(x)

    def _df(self, spec: ArraySpec, grad_output: Any) -> Any:
        return spec.ops.relu_grad(grad_output, self.x)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2, which cannot overflow;
    backward uses the stored output: y * (1 - y).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.Sigmoid()
        >>> print(act.forward(np.array([0.0, 2.0])))
        [0.5        0.88079708]
        >>> print(act.backward(np.ones(2)))
        [0.25       0.10499359]
    """

    _chain_safe = True  # see Linear._chain_safe

    def _f(self, spec: ArraySpec, x: Any) -> Any:
        return (spec.xp.tanh(x * 0.5) + 1) * 0.5

    def _df(self, spec: ArraySpec, grad_output: Any) -> Any:
        y = self.output
        return grad_output * (y * (1 - y))


class Softmax(_Activation):
    """exp(x) / sum(exp(x)) along the last axis, computed from x - max(x) (no overflow);
    backward uses the stored output: y * (g - sum(g * y)) along that axis.

    For training a classifier, give the logits to :class:`xmlp.CrossEntropyLoss` (which applies
    the softmax itself, more stably) and use Softmax for probabilities at prediction time.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> probabilities = xmlp.Softmax().predict(np.array([[0.0, np.log(3.0)]]))
        >>> print(probabilities)
        [[0.25 0.75]]
    """

    _chain_safe = True  # see Linear._chain_safe

    def _f(self, spec: ArraySpec, x: Any) -> Any:
        xp = spec.xp
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def _df(self, spec: ArraySpec, grad_output: Any) -> Any:
        y = self.output
        return y * (grad_output - spec.xp.sum(grad_output * y, axis=-1, keepdims=True))
