"""The hot operations of a training step, each in one portable Array API version.

Backend-specific fast paths for these operations live here and nowhere else; each has a test
that it equals the portable version (tests/test_dispatch.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["affine", "sgd_step", "tanh_grad"]


def affine(xp: Any, x2: Any, weights: Any, biases: Any) -> Any:
    """(N, in) @ (out, in).T + (out,) -> (N, out): one GEMM with a transpose flag, no copy."""
    return xp.matmul(x2, weights.T) + biases


def tanh_grad(xp: Any, grad_output: Any, output: Any) -> Any:
    """grad_output * (1 - tanh(x)**2), from the stored output: tanh is never computed twice."""
    return grad_output * (1 - output * output)


def sgd_step(xp: Any, param: Any, grad: Any, lr: float) -> Any:
    """param - lr * grad; in place where the array type allows it (NumPy, CuPy, torch,
    array-api-strict), a new array where arrays are immutable (JAX) or lazy (Dask). The caller
    rebinds the attribute to the result either way."""
    param -= lr * grad
    return param
