"""Checkpoints: :func:`save` and :func:`load` (a model's parameters, optionally an optimizer's
state) in one ``.npz`` file."""

from .checkpoint import load, save

__all__ = ["load", "save"]
