"""The hot operations of a training step, behind one dispatch function, :func:`ops_for`:
the portable Array API versions (:mod:`xmlp.ops.portable`, the reference) and the NumPy fast
paths (:mod:`xmlp.ops.numpy_fast`), each tested equal to its portable op."""

from __future__ import annotations

import os
from typing import Any

from .numpy_fast import NumpyOps
from .portable import PortableOps
from .torch_ops import TorchOps

__all__ = ["NumpyOps", "PortableOps", "TorchOps", "ops_for", "ops_like", "set_fast_paths"]

_cache: dict[int, PortableOps] = {}
_by_type: dict[type, PortableOps] = {}
# XMLP_FAST_PATHS=0 turns every fast path off (to compare, or to rule them out when debugging).
_fast_paths = os.environ.get("XMLP_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no")


def ops_for(xp: Any) -> PortableOps:
    """The ops for namespace ``xp``: a fast path where one exists, the portable one otherwise.

    Args:
        xp: an array namespace (``array_api_compat.array_namespace`` of the arrays).

    Example:
        >>> import numpy as np
        >>> from array_api_compat import array_namespace
        >>> import xmlp.ops
        >>> type(xmlp.ops.ops_for(array_namespace(np.ones(2)))).__name__
        'NumpyOps'
    """
    ops = _cache.get(id(xp))
    if ops is None:
        import array_api_compat

        if _fast_paths and array_api_compat.is_numpy_namespace(xp):
            ops = NumpyOps(xp)
        elif array_api_compat.is_torch_namespace(xp):
            ops = TorchOps(xp)
        else:
            ops = PortableOps(xp)
        _cache[id(xp)] = ops
    return ops


def ops_like(a: Any) -> PortableOps:
    """The ops for array ``a``'s namespace (looked up by its type once, then cached).

    Args:
        a: an array of any supported library.

    Example:
        >>> import numpy as np
        >>> import xmlp.ops
        >>> print(xmlp.ops.ops_like(np.zeros(2)).relu(np.array([-1.0, 2.0])))
        [0. 2.]
    """
    ops = _by_type.get(type(a))
    if ops is None:
        from array_api_compat import array_namespace

        ops = _by_type[type(a)] = ops_for(array_namespace(a))
    return ops


def set_fast_paths(enabled: bool) -> None:
    """Turn fast paths on or off for layers built (and activation inputs first seen) from now on.

    Args:
        enabled: True for the NumPy fast paths (the default, unless the environment variable
            ``XMLP_FAST_PATHS`` is 0), False for the portable ops everywhere.

    Example:
        >>> import numpy as np
        >>> import xmlp.ops
        >>> xmlp.ops.set_fast_paths(False)
        >>> type(xmlp.ops.ops_like(np.zeros(2))).__name__
        'PortableOps'
        >>> xmlp.ops.set_fast_paths(True)
        >>> type(xmlp.ops.ops_like(np.zeros(2))).__name__
        'NumpyOps'
    """
    global _fast_paths
    _fast_paths = bool(enabled)
    _cache.clear()
    _by_type.clear()
