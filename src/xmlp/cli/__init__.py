"""The ``xmlp`` command: ``xmlp demo`` and ``xmlp bench``."""

from .commands import main

__all__ = ["main"]
