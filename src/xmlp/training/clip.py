"""Gradient clipping by the total norm: ``torch.nn.utils.clip_grad_norm_``'s formula on the
gradients the last ``backward()`` stored, as array math of the model's namespace (no host
sync, no Python ``if`` on an array: it runs inside a ``jax.jit`` / ``torch.compile`` trace)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..backend import short_repr
from ..nn.module import Module

__all__ = ["check_clip_args", "clip_grad_norm", "clip_grads"]

# torch's: the total norm is divided into max_norm with this added, so a zero norm is no
# division by zero
_EPS = 1e-6


def clip_grad_norm(model: Module, max_norm: float, norm_type: float = 2.0) -> Any:
    """Scale every gradient of ``model`` so that their total norm is at most ``max_norm``:
    ``torch.nn.utils.clip_grad_norm_``. Returns the total norm before clipping.

    The total norm is the ``norm_type``-norm of all the gradients as one vector (for 2:
    ``sqrt(sum of every gradient element squared)``; ``math.inf``: the largest absolute
    element). It is computed as ``m * ||g / m||_p``, ``m`` the largest absolute element, so
    no power overflows or underflows on the way: the total is infinite only where the norm
    itself is beyond the float range (torch computes ``||g||_p`` directly, and its total of
    a 1e300-norm, or of a float32 2-norm of gradients near 1e20, is already inf). Below 1
    (no longer a norm) it grows as ``count ** (1 / p)``: ``norm_type=1e-300`` of two nonzero
    elements is inf, and clips every gradient to 0. An int beyond the float range
    (``10**400``) is the max-norm, the limit of the p-norm as p grows.

    Each gradient is multiplied by ``min(1, max_norm / (total + 1e-6))``, in the gradients'
    namespace, device and dtype, so that the next ``opt.step()`` (or ``update_params``) uses
    the clipped gradients. A non-finite gradient is clipped as torch
    clips it with ``error_if_nonfinite=False`` (raising would read the norm, a device sync):
    an infinite total zeroes the finite gradients and makes the infinite elements NaN, a NaN
    makes every gradient NaN; the parameters the next step updates then hold NaN, which
    :func:`xmlp.fit` reports as a non-finite epoch.

    Args:
        model: an :class:`xmlp.Module` whose gradients ``backward()`` has stored.
        max_norm: the largest total norm (a finite number > 0).
        norm_type: the norm: a number > 0 (default 2.0), or ``math.inf`` / "inf" (as is a
            number beyond the float range).

    Returns:
        The total norm of the gradients before clipping: a 0-d array of the gradients'
        namespace, device and dtype (``float()`` it to read it: a device sync on a GPU).

    Raises:
        NoGradientError: a parameter has no gradient (call ``backward()`` first).
        TypeError / ValueError: a bad ``model``, ``max_norm`` or ``norm_type``, or a gradient
            set by hand with another shape, namespace, device or dtype; nothing is changed.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> model = xmlp.MLP(2, 3, 1, rng=0)
        >>> loss = xmlp.MSELoss()
        >>> _ = loss.forward(model.forward(np.ones((4, 2))), np.full((4, 1), 10.0))
        >>> _ = model.backward(loss.backward())
        >>> total = xmlp.clip_grad_norm(model, max_norm=1.0)
        >>> round(float(total), 3) > 1.0
        True
        >>> grads = [g for _, g in model.named_grads()]
        >>> round(float(np.sqrt(sum((g ** 2).sum() for g in grads))), 4)
        1.0
    """
    max_norm, norm = check_clip_args(max_norm, norm_type, "clip_grad_norm")
    if not isinstance(model, Module):
        raise TypeError(f"clip_grad_norm: model must be an xmlp.Module, got "
                        f"{type(model).__name__}")
    holders: list[Module] = []
    if not model.grads_ok(holders):
        model.check_grads("clip_grad_norm")  # raises for a missing or mismatched gradient
        holders = [m for m in model.modules() if m.param_names]  # accepted anyway
    if not holders:
        raise ValueError(f"clip_grad_norm: the {type(model).__name__} has no parameters")
    return clip_grads(holders, max_norm, norm)


def check_clip_args(max_norm: Any, norm_type: Any, owner: str,
                    label: str = "max_norm") -> tuple[float, float]:
    """(max_norm, norm_type) as Python floats; TypeError / ValueError naming ``owner`` and
    ``max_norm`` as ``label``."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"{owner}: {label} must be a real number, got "
                        f"{type(max_norm).__name__}: {short_repr(max_norm)}")
    raw: Any = max_norm
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}: {label} must be a finite number > 0, got "
                         f"{short_repr(max_norm)}")
    if norm_type == "inf":
        return value, math.inf
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"{owner}: norm_type must be a number > 0 or 'inf', got "
                        f"{short_repr(norm_type)}")
    raw = norm_type
    try:
        norm = float(raw)
    except OverflowError:
        norm = math.inf
    if math.isnan(norm) or norm <= 0:
        raise ValueError(f"{owner}: norm_type must be a number > 0 or 'inf', got "
                         f"{short_repr(norm_type)}")
    return value, norm


def clip_grads(holders: list[Module], max_norm: float, norm_type: float) -> Any:
    """The math of :func:`clip_grad_norm` on the gradients of ``holders`` (the modules with
    parameters), checked already: rebinds each ``grad_<name>``; returns the total norm."""
    xp = holders[0].spec.xp
    grads = [(m, name, getattr(m, name)) for m in holders for name in m.grad_names]
    largest: Any = None
    for _, _, g in grads:
        top = xp.max(xp.abs(g))
        largest = top if largest is None else xp.maximum(largest, top)
    total: Any = largest
    if norm_type != math.inf:
        # ||g||_p = m * ||g / m||_p with m the largest |element|: every |g / m| is at most 1,
        # so no power overflows (a 1e300-norm, a float32 2-norm of gradients of 1e20), and
        # the sum is at least the largest element's 1. m of 0 (every gradient 0), inf or NaN:
        # divided by 1 instead, for torch's total of 0, inf or NaN. Array math only: no
        # Python branch on a value.
        largest = xp.asarray(largest)
        one = xp.ones_like(largest)
        scaled = (largest > 0) & (largest < math.inf)
        scale = xp.where(scaled, largest, one)
        total = None
        for _, _, g in grads:  # the sum of |g / m|^p over every gradient
            ratio = g / scale
            # (XLA may divide by multiplying by 1 / m: m / m can round to 1 -+ 1 ulp, whose
            # 1e300th power is 0 or inf; at most 1, and the sum at least 1, put that right)
            part = (xp.sum(ratio * ratio) if norm_type == 2
                    else xp.sum(xp.minimum(xp.abs(ratio), one) ** norm_type))
            total = part if total is None else total + part
        total = xp.where(scaled, xp.maximum(total, one), total)
        total = scale * (xp.sqrt(total) if norm_type == 2 else total ** (1.0 / norm_type))
    total = xp.asarray(total)  # NumPy's max and sum are NumPy scalars: a 0-d array
    coef = max_norm / (total + _EPS)
    coef = xp.minimum(coef, xp.ones_like(coef))  # scale down, never up
    for module, name, g in grads:
        setattr(module, name, g * coef)
    return total
