"""Parameter-free layers: Tanh (the classic exercise's), ReLU, Sigmoid (elementwise) and
Softmax (last axis).

Each takes any real floating array of ndim >= 1 and computes in that array's own namespace
(its operations from :func:`xmlp.ops.ops_like`). Derivatives use what forward stored, so
nothing is computed twice.
"""

from __future__ import annotations

from typing import Any

from ..ops import ops_like
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Softmax", "Tanh"]


class Activation(Module):
    """y = f(x) elementwise (or along the last axis): subclasses write ``predict`` (f) and
    ``backward`` (dL/dx from dL/dy and the stored ``x`` / ``output``)."""

    state_names = ("x", "output", "grad_input")

    def __init__(self) -> None:
        self.x: Any = None
        self.output: Any = None
        self.grad_input: Any = None

    def forward(self, x: Any) -> Any:
        """x (...) -> output (...); stores ``x`` and ``output``."""
        self.x = x
        self.output = type(self).predict.math(self, x)  # type: ignore[attr-defined]
        return self.output


class Tanh(Activation):
    """y = tanh(x); dL/dx = dL/dy * (1 - y**2), from the stored output.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.Tanh()
        >>> print(act.forward(np.array([0.0, 1.0])))
        [0.         0.76159416]
        >>> print(act.backward(np.ones(2)))
        [1.         0.41997434]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def predict(self, x: Any) -> Any:
        return ops_like(x).tanh(x)

    def backward(self, grad_output: Any) -> Any:
        self.grad_input = ops_like(grad_output).tanh_grad(grad_output, self.output)
        return self.grad_input


class ReLU(Activation):
    """y = max(x, 0); dL/dx = dL/dy where x > 0, else 0. A NaN input stays NaN (as in
    PyTorch).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.ReLU()
        >>> print(act.forward(np.array([-1.0, 0.0, 2.0])))
        [0. 0. 2.]
        >>> print(act.backward(np.ones(3)))
        [0. 0. 1.]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def predict(self, x: Any) -> Any:
        return ops_like(x).relu(x)

    def backward(self, grad_output: Any) -> Any:
        self.grad_input = ops_like(grad_output).relu_grad(grad_output, self.x)
        return self.grad_input


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2, which cannot overflow;
    dL/dx = dL/dy * y * (1 - y).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.Sigmoid()
        >>> print(act.forward(np.array([0.0, 2.0])))
        [0.5        0.88079708]
        >>> print(act.backward(np.ones(2)))
        [0.25       0.10499359]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def predict(self, x: Any) -> Any:
        return (ops_like(x).xp.tanh(x * 0.5) + 1) * 0.5

    def backward(self, grad_output: Any) -> Any:
        y = self.output
        self.grad_input = grad_output * (y * (1 - y))
        return self.grad_input


class Softmax(Activation):
    """y = exp(x) / sum(exp(x)) along the last axis, computed from x - max(x) (no overflow);
    dL/dx = y * (g - sum(g * y)) along that axis.

    For training a classifier, give the logits to :class:`xmlp.CrossEntropyLoss` (which applies
    the softmax itself, more stably) and use Softmax for probabilities at prediction time.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> probabilities = xmlp.Softmax().predict(np.array([[0.0, np.log(3.0)]]))
        >>> print(probabilities)
        [[0.25 0.75]]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def predict(self, x: Any) -> Any:
        xp = ops_like(x).xp
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def backward(self, grad_output: Any) -> Any:
        y, xp = self.output, ops_like(grad_output).xp
        self.grad_input = y * (grad_output - xp.sum(grad_output * y, axis=-1, keepdims=True))
        return self.grad_input
