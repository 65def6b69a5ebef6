"""What fit reports after each epoch: a tqdm progress bar on stderr showing the loss, and the
user's ``callback(epoch, history)``, whose true return value stops training."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """The epochs 1..``epochs`` of a fit, with a bar (``show``: True, False, or None for "only
    when stderr is a terminal", tqdm's disable=None) and the ``callback`` (None: no callback)."""

    def __init__(self, epochs: int, show: bool | None,
                 callback: Callable[[int, Any], Any] | None) -> None:
        self.bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", leave=True,
                        disable=None if show is None else not show)
        self.callback = callback

    def __iter__(self) -> Iterator[int]:
        return iter(self.bar)

    def end_epoch(self, epoch: int, loss: float, history: Any) -> bool:
        """Show the epoch's ``loss`` and call the callback; whether to stop."""
        if not self.bar.disable:  # a disabled bar still formats the postfix
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        return self.callback is not None and bool(self.callback(epoch, history))

    def close(self) -> None:
        self.bar.close()
