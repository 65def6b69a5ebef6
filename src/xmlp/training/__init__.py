"""Training: :func:`fit`, its :class:`History`, and the batch sources it draws from."""

from .batches import rechunk_for
from .loop import History, fit
from .step import TrainStep

__all__ = ["History", "TrainStep", "fit", "rechunk_for"]
