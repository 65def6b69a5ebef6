"""Training: :func:`fit`, its :class:`History`, and the batch sources it draws from."""

from .batches import rechunk_for
from .loop import History, fit

__all__ = ["History", "fit", "rechunk_for"]
