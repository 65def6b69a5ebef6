"""Training: :func:`fit`, its :class:`History`, the batch sources it draws from, callbacks
(:class:`EarlyStopping`) and gradient clipping (:func:`clip_grad_norm`)."""

from .batches import rechunk_for
from .callbacks import Callback, EarlyStopping
from .clip import clip_grad_norm
from .loop import History, fit
from .step import TrainStep

__all__ = ["Callback", "EarlyStopping", "History", "TrainStep", "clip_grad_norm", "fit",
           "rechunk_for"]
