"""PyTorch's own calls where array-api-compat's wrappers stop ``torch.compile``: their dtype
promotion asks ``torch.result_type``, which returns no tensor and so breaks the graph. Each
computes what the portable op computes (tests/ops/)."""

from __future__ import annotations

from typing import Any

from .portable import PortableOps

__all__ = ["TorchOps"]


class TorchOps(PortableOps):
    """The portable ops, with ``torch.relu`` for max(x, 0) (NaN stays NaN, as there) and the
    labels' own ``device`` attribute where the portable op asks array-api-compat for it.

    Args:
        xp: array-api-compat's torch namespace.

    Example:
        >>> import array_api_compat.torch as xp
        >>> import torch
        >>> from xmlp.ops import TorchOps
        >>> TorchOps(xp).relu(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, xp: Any) -> None:
        import torch

        super().__init__(xp)
        self.torch = torch

    def relu(self, x: Any) -> Any:
        return self.torch.relu(x)

    def is_label(self, labels: Any, n_classes: int) -> Any:
        classes = self.torch.arange(n_classes, dtype=labels.dtype, device=labels.device)
        return self.torch.reshape(labels, (-1, 1)) == classes
