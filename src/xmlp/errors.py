"""Exceptions raised for calls made in the wrong order."""

from __future__ import annotations

__all__ = ["ForwardNotCalledError", "NoGradientError"]


class ForwardNotCalledError(RuntimeError, AssertionError):
    """backward() before forward(). Also an AssertionError, so code written for the seed
    notebook's ``assert hasattr(self, 'x'), 'Perform forward pass first.'`` still catches it."""


class NoGradientError(RuntimeError):
    """update_params() before backward() has computed gradients."""
