"""What the commands share: the error a user can fix, and the type of count options."""

from __future__ import annotations

import argparse

__all__ = ["CommandError", "count_option"]


class CommandError(Exception):
    """A problem the user can fix (missing package, bad device...): printed, exit status 2."""


def count_option(text: str) -> int:
    """The argparse type of a count option (``--epochs``, ``--rounds``...): a positive int
    (:func:`xmlp.backend.positive_int`), refused as argparse refuses ("argument --epochs: must
    be a positive int, got 0"; text that is no int: "invalid count_option value")."""
    from ..backend import positive_int

    value = int(text)
    try:
        return positive_int(value, "")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
