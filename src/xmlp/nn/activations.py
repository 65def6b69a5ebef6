"""Parameter-free layers: Tanh (the classic exercise's), ReLU, Sigmoid, LeakyReLU, ELU, GELU,
SiLU, Softplus (elementwise) and Softmax (last axis).

Each takes any real floating array of ndim >= 1 and computes in that array's own namespace
(its operations from :func:`xmlp.ops.ops_like`). Derivatives use what forward stored, so
nothing is computed twice.
"""

from __future__ import annotations

import math
from typing import Any

from ..ops import ops_like
from .checks import real_number
from .module import Module

__all__ = ["ELU", "GELU", "LeakyReLU", "ReLU", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]


class Activation(Module):
    """y = f(x) elementwise (or along the last axis): subclasses write ``predict`` (f) and
    ``backward`` (dL/dx from dL/dy and the stored ``x`` / ``output``)."""

    state_names: tuple[str, ...] = ("x", "output", "grad_input")

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


class LeakyReLU(Activation):
    """y = x where x > 0, else negative_slope * x; dL/dx = dL/dy there, else
    negative_slope * dL/dy. As ``torch.nn.LeakyReLU``.

    Args:
        negative_slope: the slope for x <= 0 (a finite real number; default 0.01).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.LeakyReLU(0.1)
        >>> print(act.forward(np.array([-2.0, 0.0, 3.0])))
        [-0.2  0.   3. ]
        >>> print(act.backward(np.ones(3)))
        [0.1 0.1 1. ]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = real_number(negative_slope, "negative_slope", "LeakyReLU")

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope!r})"

    def predict(self, x: Any) -> Any:
        return ops_like(x).xp.where(x > 0, x, x * self.negative_slope)

    def backward(self, grad_output: Any) -> Any:
        g = grad_output
        self.grad_input = ops_like(g).xp.where(self.x > 0, g, g * self.negative_slope)
        return self.grad_input


class ELU(Activation):
    """y = x where x > 0, else alpha * (exp(x) - 1); dL/dx = dL/dy there, else
    dL/dy * (y + alpha) (= alpha * exp(x)), from the stored output. As ``torch.nn.ELU``.

    Args:
        alpha: the value y tends to as x -> -inf is -alpha (a finite real number; default 1).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.ELU()
        >>> print(act.forward(np.array([-1.0, 2.0])))
        [-0.63212056  2.        ]
        >>> print(act.backward(np.ones(2)))
        [0.36787944 1.        ]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = real_number(alpha, "alpha", "ELU")

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha!r})"

    def predict(self, x: Any) -> Any:
        xp = ops_like(x).xp
        # expm1 of x clipped at 0: the branch where does not take cannot overflow
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.clip(x, max=0.0)))

    def backward(self, grad_output: Any) -> Any:
        g = grad_output
        self.grad_input = ops_like(g).xp.where(self.x <= 0, g * (self.output + self.alpha), g)
        return self.grad_input


# GELU's constants, computed as PyTorch computes them (M_SQRT2 * M_2_SQRTPI * 0.5)
_GELU_BETA = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5  # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


class GELU(Activation):
    """The tanh approximation of the Gaussian error linear unit, as
    ``torch.nn.GELU(approximate="tanh")``:
    y = x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x**3))).

    The exact GELU, x * Phi(x), needs the error function, which the Python Array API standard
    does not have (so no portable ``erf`` on every backend): the tanh form is the one xmlp
    computes. It differs from the exact one by at most 4.8e-4 (at x = +-2.7).

    dL/dx = dL/dy * (0.5 (1 + t) + 0.5 x (1 - t**2) sqrt(2 / pi) (1 + 3 * 0.044715 x**2)), with
    t the tanh of forward, which is stored (``tanh_inner``).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.GELU()
        >>> print(act.forward(np.array([-1.0, 0.0, 1.0])))
        [-0.15880801  0.          0.84119199]
        >>> print(act.backward(np.ones(3)))
        [-0.08296408  0.5         1.08296408]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)
    state_names = ("x", "output", "grad_input", "tanh_inner")

    def __init__(self) -> None:
        super().__init__()
        self.tanh_inner: Any = None

    def __repr__(self) -> str:
        return 'GELU(approximate="tanh")'

    def forward(self, x: Any) -> Any:
        """x (...) -> output (...); stores ``x``, ``output`` and ``tanh_inner``."""
        self.x = x
        self.tanh_inner = _gelu_tanh(x)
        self.output = 0.5 * x * (1.0 + self.tanh_inner)
        return self.output

    def predict(self, x: Any) -> Any:
        return 0.5 * x * (1.0 + _gelu_tanh(x))

    def backward(self, grad_output: Any) -> Any:
        x, t = self.x, self.tanh_inner
        inner_grad = _GELU_BETA * (1.0 + 3.0 * _GELU_KAPPA * (x * x))
        self.grad_input = grad_output * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_grad)
        return self.grad_input


def _gelu_tanh(x: Any) -> Any:
    """tanh(sqrt(2 / pi) * (x + 0.044715 x**3))."""
    return ops_like(x).xp.tanh(_GELU_BETA * (x + _GELU_KAPPA * (x * x * x)))


class SiLU(Activation):
    """y = x * sigmoid(x) (also called swish), with the sigmoid computed as
    (1 + tanh(x / 2)) / 2, which cannot overflow; dL/dx = dL/dy * s * (1 + x (1 - s)) with
    s = sigmoid(x). As ``torch.nn.SiLU``.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.SiLU()
        >>> print(act.forward(np.array([-1.0, 0.0, 1.0])))
        [-0.26894142  0.          0.73105858]
        >>> print(act.backward(np.ones(3)))
        [0.07232949 0.5        0.92767051]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def predict(self, x: Any) -> Any:
        return x * _sigmoid(x)

    def backward(self, grad_output: Any) -> Any:
        x = self.x
        s = _sigmoid(x)
        self.grad_input = grad_output * (s * (1.0 + x * (1.0 - s)))
        return self.grad_input


def _sigmoid(x: Any) -> Any:
    return (ops_like(x).xp.tanh(x * 0.5) + 1.0) * 0.5


class Softplus(Activation):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (where the two agree
    to within float64's precision); dL/dx = dL/dy * sigmoid(beta x) (dL/dy past the
    threshold). As ``torch.nn.Softplus``.

    Args:
        beta: a finite real number > 0 (default 1).
        threshold: where beta x exceeds it, the layer is linear (a finite real number;
            default 20).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> act = xmlp.Softplus()
        >>> print(act.forward(np.array([-1.0, 0.0, 30.0])))
        [ 0.31326169  0.69314718 30.        ]
        >>> print(act.backward(np.ones(3)))
        [0.26894142 0.5        1.        ]
    """

    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = real_number(beta, "beta", "Softplus", low=0.0, low_open=True)
        self.threshold = real_number(threshold, "threshold", "Softplus")

    def __repr__(self) -> str:
        return f"Softplus(beta={self.beta!r}, threshold={self.threshold!r})"

    def predict(self, x: Any) -> Any:
        xp, z = ops_like(x).xp, x * self.beta
        # exp of z clipped at the threshold: the branch where does not take cannot overflow
        soft = xp.log1p(xp.exp(xp.clip(z, max=self.threshold))) / self.beta
        return xp.where(z > self.threshold, x, soft)

    def backward(self, grad_output: Any) -> Any:
        g, z = grad_output, self.x * self.beta
        xp = ops_like(g).xp
        e = xp.exp(xp.clip(z, max=self.threshold))
        self.grad_input = xp.where(z > self.threshold, g, g * (e / (e + 1.0)))
        return self.grad_input
