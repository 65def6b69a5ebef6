"""Dropout: zeroes a random fraction ``p`` of its input while training, the identity at
inference."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ..backend import make_rng
from ..ops import ops_like
from .checks import real_number
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """``forward(x)``: each element of x is kept with probability 1 - p and scaled by
    1 / (1 - p), or set to 0; ``backward`` applies the same mask to the gradient;
    ``predict(x)`` is x itself. As ``torch.nn.Dropout`` in train mode (``forward``) and eval
    mode (``predict``): xmlp's ``forward`` is the training pass and ``predict`` inference, so
    there is no mode to switch.

    The masks are drawn on the host from ``rng`` (a ``numpy.random.Generator``): one float64
    uniform per element of x in C order, kept where it is >= p. So the same ``rng`` gives the
    same masks on every backend and device (a GPU receives each mask as it receives a batch);
    each ``forward`` draws the next one. ``p=0`` draws nothing: the layer passes x through.

    Args:
        p: the probability of dropping an element, a real number in [0, 1).
        rng: None, an int seed or a ``numpy.random.Generator`` (used as given: a generator
            shared with other code advances with it).

    A compiled step (:class:`xmlp.TrainStep`) draws each step's masks the same way, on the
    host and in the same order, and hands them to the traced step as inputs (``given_mask``):
    compiled and eager training draw the same masks.

    The generator is not part of a checkpoint (:func:`xmlp.save` stores arrays, as PyTorch's
    ``state_dict`` stores no random state): give a resumed run a seed of its own.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> drop = xmlp.Dropout(0.5, rng=0)
        >>> print(drop.forward(np.ones((2, 4))))
        [[2. 0. 0. 0.]
         [2. 2. 2. 2.]]
        >>> print(drop.backward(np.ones((2, 4))))   # the same mask
        [[2. 0. 0. 0.]
         [2. 2. 2. 2.]]
        >>> print(drop.predict(np.ones((1, 4))))    # inference: the identity
        [[1. 1. 1. 1.]]
    """

    state_names = ("x", "output", "mask", "grad_input")
    chain_safe = True  # it accepts what a Linear hands it (see Linear.chain_safe)
    # the mask of the next forward when it was drawn before (a compiled step's input); None:
    # forward draws its own
    given_mask: Any = None

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        self.p = real_number(p, "p", "Dropout", low=0.0, high=1.0, high_open=True)
        self.rng = make_rng(rng)
        self.x: Any = None
        self.output: Any = None
        self.mask: Any = None  # keep / (1 - p), x's dtype: what forward multiplied x by
        self.grad_input: Any = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p!r})"

    @property
    def rng_state(self) -> dict[str, Any]:
        """The generator's state (``rng.bit_generator.state``): what an undone call puts back,
        so that a refused call draws nothing."""
        return dict(self.rng.bit_generator.state)

    @rng_state.setter
    def rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def undo_names(self) -> tuple[str, ...] | None:
        return (*(super().undo_names() or ()), "rng_state")

    def forward(self, x: Any) -> Any:
        """x (...) -> x * mask (...), mask = keep / (1 - p) drawn afresh; stores ``x``,
        ``mask`` and ``output``."""
        self.x = x
        self.mask = self.draw_mask(x)
        self.output = x * self.mask
        return self.output

    def backward(self, grad_output: Any) -> Any:
        """dL/dx = dL/dy * mask, the mask of the last forward."""
        self.grad_input = grad_output * self.mask
        return self.grad_input

    def predict(self, x: Any) -> Any:
        """Inference: x, unchanged."""
        return x

    def draw_mask(self, x: Any) -> Any:
        """The mask of a forward of ``x``: ``given_mask`` when one was handed in, else the
        generator's next (:meth:`make_mask`)."""
        if self.given_mask is not None:
            return self.given_mask
        return self.make_mask(tuple(x.shape), ops_like(x).xp, x.dtype, array_api_compat.device(x))

    def make_mask(self, shape: tuple[int, ...], xp: Any, dtype: Any, device: Any) -> Any:
        """The generator's next mask of ``shape``: keep / (1 - p), with keep drawn on the host,
        made with namespace ``xp`` on ``device`` in ``dtype`` (p=0: ones, nothing drawn)."""
        if self.p == 0.0:
            return xp.ones(shape, dtype=dtype, device=device)
        keep = self.rng.random(shape) >= self.p  # float64 draws: the same anywhere
        return xp.astype(xp.asarray(keep, device=device), dtype) * (1.0 / (1.0 - self.p))
