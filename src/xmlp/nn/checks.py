"""The boundary checks of layers: what a layer's ``forward``, ``backward`` and ``predict`` are
handed, checked in O(1) (types, dtypes, shapes and devices; never values) before the layer's
math runs, so a rejected call changes nothing.

:class:`xmlp.Module` runs them (:meth:`Module.check`); layers declare which apply by what
they are: a layer with parameters takes inputs of its parameters' namespace, device and dtype
(:func:`check_input_like`), a parameter-free layer any real floating array
(:func:`check_floating_input`), and every ``backward`` a gradient like the output of its last
``forward`` (:func:`check_grad_output`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import array_api_compat

from ..backend import ArraySpec, floating_spec, short_repr
from ..errors import ForwardNotCalledError

__all__ = ["check_floating_input", "check_grad_output", "check_input_like", "check_not_empty",
           "feature_error", "real_number"]

# (array type, dtype) pairs already accepted as real floating inputs: the usual call repeats
# one, and building its ArraySpec again would make a probe array
_FLOATING: set[tuple[type, Any]] = set()


def check_not_empty(shape: tuple[Any, ...], owner: str) -> None:
    """ValueError for a 0-d input, an unknown (Dask) size or an empty batch."""
    if not shape:
        raise ValueError(
            f"{owner}: x must have shape (...) with ndim >= 1, got shape () (a 0-d array); "
            "reshape it, e.g. to (1,)."
        )
    if None in shape or any(d != d for d in shape):  # Dask's unknown sizes are nan
        raise ValueError(
            f"{owner}: x has an unknown size, shape {tuple(shape)}; on Dask call "
            "x.compute_chunk_sizes() first (needed after boolean indexing, for instance)."
        )
    if 0 in shape:
        raise ValueError(f"{owner}: x is an empty batch (shape {tuple(shape)}); pass at least "
                         "one sample")


def check_floating_input(x: Any, owner: str) -> None:
    """TypeError unless ``x`` is a real floating array usable as it is (native byte order, no
    autograd); ValueError for a 0-d or empty one."""
    key = (type(x), getattr(x, "dtype", None))
    if key not in _FLOATING or getattr(x, "requires_grad", False):
        floating_spec(x, owner, "x")
        if not getattr(x, "requires_grad", False):
            _FLOATING.add(key)
    shape = x.shape
    if not shape or 0 in shape:
        check_not_empty(tuple(shape), owner)


def check_input_like(spec: ArraySpec, x: Any, owner: str, last_dim: int | None = None) -> None:
    """TypeError unless ``x`` is an array of ``spec`` (namespace, device, dtype, no autograd);
    ValueError unless its shape is (..., last_dim) with a known, non-zero size."""
    # the usual case (same array type and dtype, one device) builds no message
    if type(x) is not spec.array_type or x.dtype != spec.dtype or spec.check_device:
        spec.check(x, owner, "x")
    shape = x.shape  # read once: on NumPy each read builds a new tuple
    if last_dim is not None and (not shape or shape[-1] != last_dim):
        raise feature_error(owner, last_dim, tuple(shape))
    if not shape or None in shape or shape[0] != shape[0] or 0 in shape:
        check_not_empty(tuple(shape), owner)


def feature_error(owner: str, last_dim: int, shape: tuple[Any, ...]) -> ValueError:
    """The ValueError for an x of ``shape`` given to a layer that takes ``last_dim``
    features."""
    return ValueError(f"{owner}: x must have shape (..., {last_dim}) (input_dim features), "
                      f"got {shape}")


def check_grad_output(output: Any, grad_output: Any, owner: str,
                      against: str | None = "the forward input") -> None:
    """RuntimeError before the first forward; TypeError unless ``grad_output`` is an array
    like the last forward's ``output`` (type, dtype, device); ValueError unless it has its
    shape. ``against`` names what the output's place came from in messages (None: the
    layer's parameters)."""
    if output is None:
        raise ForwardNotCalledError("Perform forward pass first.")
    kind = type(output)
    if (type(grad_output) is not kind or grad_output.dtype != output.dtype
            or (kind.__module__ != "numpy" and (getattr(grad_output, "requires_grad", False)
                                                or _other_device(grad_output, output)))):
        ArraySpec.of(output).check(grad_output, owner, "grad_output", against=against)
    if grad_output.shape != output.shape:
        raise ValueError(
            f"{owner}: grad_output must have the output's shape {tuple(output.shape)}, "
            f"got {tuple(grad_output.shape)}"
        )


def _other_device(a: Any, b: Any) -> bool:
    """Whether two arrays of one type are on different devices."""
    return bool(array_api_compat.device(a) != array_api_compat.device(b))



def real_number(value: Any, label: str, owner: str, *, low: float = -math.inf,
                high: float = math.inf, low_open: bool = False, high_open: bool = False) -> float:
    """A layer's constructor argument (a rate, an epsilon, a slope) as a Python float:
    TypeError unless a real number (not a bool), ValueError unless finite and in the interval
    from ``low`` to ``high`` (open at an end with ``low_open`` / ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {label} must be a real number, got {type(value).__name__}: "
                        f"{short_repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    inside = ((number > low if low_open else number >= low)
              and (number < high if high_open else number <= high))
    if not math.isfinite(number) or not inside:
        if low == -math.inf and high == math.inf:
            need = "a finite number"
        elif high == math.inf:
            need = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            need = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {label} must be {need}, got {short_repr(value)}")
    return number
