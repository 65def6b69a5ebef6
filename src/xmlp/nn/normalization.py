"""Normalization layers: LayerNorm (over the features of each sample) and BatchNorm1d (over
the batch, with running statistics for inference), as PyTorch's."""

from __future__ import annotations

import functools
from typing import Any

from ..backend import ArraySpec, positive_int
from .checks import check_grad_output, check_input_like, real_number
from .module import Module

__all__ = ["BatchNorm1d", "LayerNorm"]


class _Norm(Module):
    """What LayerNorm and BatchNorm1d share: ``weight`` (ones) and ``bias`` (zeros) of
    ``features`` elements, where ``xp`` / ``device`` / ``dtype`` say (as for
    :class:`~xmlp.Linear`), and checks of x's place and last axis."""

    param_names = ("weight", "bias")
    state_names = ("x", "output", "xhat", "rstd", "grad_input")
    spec: ArraySpec = None  # type: ignore[assignment]  # set by __init__ (see Linear.spec)

    def __init__(self, features: int, eps: float, label: str, xp: Any, device: Any,
                 dtype: Any) -> None:
        owner = type(self).__name__
        self.features = positive_int(features, f"{owner}: {label}")
        self.eps = real_number(eps, "eps", owner, low=0.0, low_open=True)
        self.spec = ArraySpec.resolve(xp, device, dtype)
        # every parameter and buffer is (features,): made once, read on every pass
        self._shapes: dict[str, tuple[int, ...]] = {
            name: (self.features,) for name in type(self).array_names}
        self.weight = self.spec.xp.ones((self.features,), dtype=self.spec.dtype,
                                        device=self.spec.device)
        self.bias = self.spec.zeros((self.features,))
        self.x: Any = None
        self.output: Any = None
        self.xhat: Any = None  # the normalized input, (x - mean) * rstd
        self.rstd: Any = None  # 1 / sqrt(var + eps)
        self.grad_input: Any = None
        self.grad_weight: Any = None
        self.grad_bias: Any = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def check(self, method: str, *args: Any) -> None:
        """x: an array of the parameters' namespace, device and dtype, of a shape the layer
        takes (:meth:`check_shape`); grad_output: the output's; the parameters (and buffers)
        as the layer made them."""
        owner = _owner(type(self).__name__, self.features, method)
        if not self.params_ok():
            self.check_params(owner)
        if method == "backward":
            check_grad_output(self.output, args[0], owner, against=None)
        else:
            check_input_like(self.spec, args[0], owner)
            self.check_shape(tuple(args[0].shape), owner, method)

    def check_shape(self, shape: tuple[int, ...], owner: str, method: str) -> None:
        """ValueError unless x's ``shape`` is (..., features)."""
        if shape[-1] != self.features:
            raise ValueError(f"{owner}: x must have shape (..., {self.features}), got {shape}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.features}, eps={self.eps!r}, {self.spec.describe()})"


class LayerNorm(_Norm):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, with the mean and the (biased)
    variance over the last axis of each sample; as ``torch.nn.LayerNorm(normalized_dim)``.

    Args:
        normalized_dim: the size of the last axis of x (``weight`` and ``bias`` have it);
            any leading axes are batch axes.
        eps: added to the variance, a finite number > 0 (default 1e-5).
        xp, device, dtype: where the parameters live, as for :class:`~xmlp.Linear` (default
            NumPy, its default device and float).

    ``weight`` starts at ones and ``bias`` at zeros; ``backward`` sets ``grad_weight`` and
    ``grad_bias`` (summed over every leading axis).

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> norm = xmlp.LayerNorm(3)
        >>> print(norm.forward(np.array([[1.0, 2.0, 3.0]])).round(4))
        [[-1.2247  0.      1.2247]]
        >>> norm.backward(np.ones((1, 3))).shape, norm.grad_weight.shape
        ((1, 3), (3,))
    """

    def __init__(self, normalized_dim: int, eps: float = 1e-5, *, xp: Any = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(normalized_dim, eps, "normalized_dim", xp, device, dtype)

    @property
    def normalized_dim(self) -> int:
        return self.features

    def forward(self, x: Any) -> Any:
        """x (..., normalized_dim) -> output of x's shape; stores ``x``, ``xhat``, ``rstd``
        and ``output``."""
        self.x = x
        self.xhat, self.rstd, _, _ = _normalize(self.spec.xp, x, self.eps, axis=-1)
        self.output = self.xhat * self.weight + self.bias
        return self.output

    def predict(self, x: Any) -> Any:
        """The forward pass, storing nothing."""
        return _normalize(self.spec.xp, x, self.eps, axis=-1)[0] * self.weight + self.bias

    def backward(self, grad_output: Any) -> Any:
        """dL/dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) with gx = dL/dy * weight
        and the means over the last axis; ``grad_weight`` = sum(dL/dy * xhat) and
        ``grad_bias`` = sum(dL/dy) over the leading axes."""
        xp, g, xhat = self.spec.xp, grad_output, self.xhat
        rows = (-1, self.features)  # every leading axis folded into one
        self.grad_weight = xp.sum(xp.reshape(g * xhat, rows), axis=0)
        self.grad_bias = xp.sum(xp.reshape(g, rows), axis=0)
        gx = g * self.weight
        self.grad_input = self.rstd * (gx - xp.mean(gx, axis=-1, keepdims=True)
                                       - xhat * xp.mean(gx * xhat, axis=-1, keepdims=True))
        return self.grad_input


class BatchNorm1d(_Norm):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per feature, on x of shape (N, C); as
    ``torch.nn.BatchNorm1d(num_features)`` in train mode (``forward``) and eval mode
    (``predict``).

    ``forward`` normalizes with the batch's mean and (biased) variance and updates the running
    statistics, ``running_mean = (1 - momentum) * running_mean + momentum * mean`` and
    likewise ``running_var`` with the unbiased variance (times N / (N - 1)), as PyTorch does;
    it needs N >= 2. ``predict`` normalizes with the running statistics and stores nothing.

    ``running_mean`` (zeros at first) and ``running_var`` (ones) are buffers
    (:attr:`~xmlp.Module.buffer_names`): :func:`xmlp.save` / :func:`xmlp.load` keep them
    ("0.running_mean"...), ``to()`` moves them, and no optimizer trains them.

    Args:
        num_features: C, the features of x (N, C).
        eps: added to the variance, a finite number > 0 (default 1e-5).
        momentum: the weight of each batch in the running statistics, in [0, 1] (default
            0.1; PyTorch's ``momentum=None``, a cumulative average, is not offered).
        xp, device, dtype: where the parameters and buffers live, as for
            :class:`~xmlp.Linear`.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> norm = xmlp.BatchNorm1d(2)
        >>> print(norm.forward(np.array([[1.0, 10.0], [3.0, 30.0]])).round(4))
        [[-1. -1.]
         [ 1.  1.]]
        >>> print(norm.running_mean, norm.running_var)
        [0.2 2. ] [  1.1 20.9]
        >>> print(norm.predict(np.array([[0.2, 2.0]])))
        [[0. 0.]]
    """

    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 xp: Any = None, device: Any = None, dtype: Any = None) -> None:
        super().__init__(num_features, eps, "num_features", xp, device, dtype)
        self.momentum = real_number(momentum, "momentum", "BatchNorm1d", low=0.0, high=1.0)
        self.running_mean = self.spec.zeros((self.features,))
        self.running_var = self.spec.xp.ones((self.features,), dtype=self.spec.dtype,
                                             device=self.spec.device)

    @property
    def num_features(self) -> int:
        return self.features

    def __repr__(self) -> str:
        return (f"BatchNorm1d({self.features}, eps={self.eps!r}, momentum={self.momentum!r}, "
                f"{self.spec.describe()})")

    def check_shape(self, shape: tuple[int, ...], owner: str, method: str) -> None:
        """ValueError unless x's ``shape`` is (N, C), with N >= 2 for ``forward`` (a batch of
        one sample has no variance)."""
        if len(shape) != 2 or shape[1] != self.features:
            raise ValueError(f"{owner}: x must have shape (N, {self.features}), got {shape}")
        if method == "forward" and shape[0] < 2:
            raise ValueError(
                f"{owner}: a batch of {shape[0]} sample has no variance; forward (training) "
                "needs at least 2 samples per batch (predict takes any number)")

    def forward(self, x: Any) -> Any:
        """x (N, C) -> output (N, C) normalized with the batch's statistics; updates
        ``running_mean`` and ``running_var``; stores ``x``, ``xhat``, ``rstd``, ``output``."""
        xp, m, n = self.spec.xp, self.momentum, x.shape[0]
        self.x = x
        self.xhat, self.rstd, mean, var = _normalize(xp, x, self.eps, axis=0)
        self.output = self.xhat * self.weight + self.bias
        # rebound, not updated in place: the undo of a refused call and compiled steps see it
        mean, var = xp.reshape(mean, (-1,)), xp.reshape(var, (-1,))
        self.running_mean = (1.0 - m) * self.running_mean + m * mean
        self.running_var = (1.0 - m) * self.running_var + (m * n / (n - 1)) * var
        return self.output

    def predict(self, x: Any) -> Any:
        """(x - running_mean) / sqrt(running_var + eps) * weight + bias, storing nothing."""
        xp = self.spec.xp
        return ((x - self.running_mean) / xp.sqrt(self.running_var + self.eps) * self.weight
                + self.bias)

    def backward(self, grad_output: Any) -> Any:
        """dL/dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) with gx = dL/dy * weight
        and the means over the batch; ``grad_weight`` = sum(dL/dy * xhat), ``grad_bias`` =
        sum(dL/dy) over it."""
        xp, g, xhat = self.spec.xp, grad_output, self.xhat
        self.grad_weight = xp.sum(g * xhat, axis=0)
        self.grad_bias = xp.sum(g, axis=0)
        gx = g * self.weight
        self.grad_input = self.rstd * (gx - xp.mean(gx, axis=0, keepdims=True)
                                       - xhat * xp.mean(gx * xhat, axis=0, keepdims=True))
        return self.grad_input


def _normalize(xp: Any, x: Any, eps: float, axis: int) -> tuple[Any, Any, Any, Any]:
    """(xhat, rstd, mean, var): xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), with
    the mean and the biased variance along ``axis`` (kept as an axis of size 1)."""
    mean = xp.mean(x, axis=axis, keepdims=True)
    centered = x - mean
    var = xp.mean(centered * centered, axis=axis, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    return centered * rstd, rstd, mean, var


@functools.lru_cache(maxsize=1024)
def _owner(name: str, features: int, method: str) -> str:
    """"LayerNorm(8).forward", made once per layer shape and method."""
    return f"{name}({features}).{method}"
