"""Mean squared error, the seed's loss."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ._backend import ArraySpec, floating_spec
from .errors import ForwardNotCalledError
from .module import Module

__all__ = ["MSELoss"]


class MSELoss(Module):
    """L = mean((y - t)**2) over all elements.

    ``backward()`` returns dL/dy = 2 (y - t) / y.size. The notebook divides by N = y.shape[0],
    which is the same for one output column and too large by output_dim otherwise.
    """

    _state_names = ("y", "t", "loss", "_diff", "_seen")

    def __init__(self) -> None:
        self.y: Any = None
        self.t: Any = None
        self.loss: Any = None
        self._diff: Any = None
        self._seen: ArraySpec | None = None

    def _check(self, y: Any, t: Any, method: str) -> ArraySpec:
        owner = "MSELoss.forward" if method == "forward" else f"MSELoss.{method}"
        spec = self._seen
        if not (
            spec is not None
            and type(y) is spec.array_type
            and y.dtype == spec.dtype
            and (not spec.check_device or array_api_compat.device(y) == spec.device)
            and not (spec.autograd and y.requires_grad)
        ):
            spec = floating_spec(y, owner, "y")
        if type(t) is not spec.array_type or t.dtype != spec.dtype or spec.check_device:
            spec.check(t, owner, "t (the target)", against="y (the prediction)")
        shape = y.shape  # read once: on NumPy each read builds a new tuple
        size = None if None in shape else math.prod(shape)
        if size is None or size != size:  # Dask's unknown (nan) sizes
            raise ValueError(
                f"{owner}: y has an unknown size, shape {tuple(shape)}, so the mean cannot be "
                "taken; on Dask call .compute_chunk_sizes() on the input first."
            )
        if shape != t.shape:
            raise ValueError(
                f"{owner}: y and t must have the same shape, got {tuple(shape)} and "
                f"{tuple(t.shape)} (an (N, 1) against (N,) would broadcast to (N, N)); reshape "
                "the target to the prediction's shape."
            )
        if not shape:
            raise ValueError(f"{owner}: y and t must have ndim >= 1, got 0-d arrays")
        if size == 0:  # the mean of nothing is NaN, and backward would divide by 0
            raise ValueError(f"{owner}: y and t are empty (shape {tuple(shape)})")
        return spec

    def forward(self, y: Any, t: Any) -> Any:  # type: ignore[override]  # a loss takes (y, t)
        """Mean of (y - t)**2 as the namespace's ``mean`` returns it (a 0-d array, or a NumPy
        scalar on NumPy): no conversion to a Python float, so no GPU sync."""
        spec = self._check(y, t, "forward")
        loss, diff = spec.ops.mse(y, t)
        self.y, self.t, self.loss, self._diff, self._seen = y, t, loss, diff, spec
        return loss

    def predict(self, y: Any, t: Any) -> Any:  # type: ignore[override]
        """The loss without storing anything (evaluation)."""
        return self._check(y, t, "predict").ops.mse(y, t)[0]

    def backward(self) -> Any:  # type: ignore[override]  # the loss is the end of the chain
        """dL/dy = 2 (y - t) / y.size, same shape as y."""
        if self._diff is None:
            raise ForwardNotCalledError("Perform forward pass first.")
        spec = self._seen
        assert spec is not None  # set together with _diff
        return spec.ops.mse_grad(self._diff, math.prod(self.y.shape))
