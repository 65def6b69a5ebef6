"""fit's validation data: evaluated after every epoch with ``model.predict`` and the loss's
``predict`` (which store nothing), in batches of the training's size, in order (never shuffled:
it draws nothing from the shuffling generator), in memory or streamed from Dask like the
training data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..nn.module import Module
from .batches import batch_source
from .epoch import EpochSums

__all__ = ["Validation", "label_count", "refused"]


class Validation:
    """The batches of ``(x_val, y_val)`` (``n`` samples, ``step`` per batch) and the number of
    class labels they hold."""

    def __init__(self, model: Module, data: tuple[Any, Any, int], step: int,
                 rng: np.random.Generator, epochs: int) -> None:
        xv, yv, n = data
        xp = array_namespace(xv, yv)
        self.source = batch_source(model, xv, yv, xp=xp, n=n, step=step, shuffle=False,
                                   rng=rng, epochs=epochs)
        self.n_labels = label_count(xp, yv)

    def evaluate(self, model: Module, loss_fn: Any, classifier: bool, history: Any) -> None:
        """Append the validation loss (and accuracy) with the parameters as they are now to
        ``history``. A refusal of streamed chunks (what could not be checked before training)
        is said as fit's: "fit: validation_data was refused: ..."."""
        evaluate = getattr(loss_fn, "predict", None) or loss_fn.forward
        sums = EpochSums(self.source.xp, classifier)
        try:
            for xb, yb, weight in self.source.epoch():
                output = model.predict(xb)
                sums.add(evaluate(output, yb), output, weight, yb)
        except (TypeError, ValueError) as exc:
            raise refused(exc) from exc
        history.val_loss.append(float(sums.total))
        if classifier:
            history.val_accuracy.append(sums.accuracy(self.n_labels))

    def close(self) -> None:
        """Stop the stream of streamed validation data."""
        self.source.close()


def label_count(xp: Any, y: Any) -> int:
    """How many class labels targets ``y`` hold: all its elements for class indices, all but
    the class axis for probabilities."""
    return math.prod(y.shape if xp.isdtype(y.dtype, "integral") else y.shape[:-1])


def refused(exc: Exception) -> Exception:
    """The model's or loss's TypeError / ValueError about validation data, said as fit's."""
    if type(exc) not in (TypeError, ValueError) or str(exc).startswith("fit: "):
        return exc
    return type(exc)(f"fit: validation_data was refused: {exc}")
