"""Exceptions raised for calls made in the wrong order."""

from __future__ import annotations

__all__ = ["ForwardNotCalledError", "NoGradientError"]


class ForwardNotCalledError(RuntimeError, AssertionError):
    """backward() before forward(). Also an AssertionError, so code written for the seed
    notebook's ``assert hasattr(self, 'x'), 'Perform forward pass first.'`` still catches it.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> try:
        ...     xmlp.Tanh().backward(np.ones(3))
        ... except xmlp.ForwardNotCalledError as exc:
        ...     print(exc, isinstance(exc, AssertionError))
        Perform forward pass first. True
    """


class NoGradientError(RuntimeError):
    """update_params() before backward() has computed gradients.

    Example:
        >>> import xmlp
        >>> try:
        ...     xmlp.Linear(2, 1, rng=0).update_params(0.1)
        ... except xmlp.NoGradientError as exc:
        ...     print(exc)
        Linear.update_params: no gradient for 'weights'; call backward() after forward() first.
    """
