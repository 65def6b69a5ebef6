"""gradcheck: a module's ``backward`` against central finite differences of its ``forward``.

Hand-written backward passes are what xmlp is made of, and the one thing a test by eye cannot
check. :func:`gradcheck` compares, for the input and for every parameter, the gradient that
``backward`` computes with the one finite differences give, element by element.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from typing import Any

import array_api_compat
import numpy as np

from .backend import dtype_name, make_rng, namespace_or_none, real_as_float, short_repr, to_host
from .nn.losses import Loss
from .nn.module import Module

__all__ = ["GradcheckError", "gradcheck"]

# (eps, atol, rtol) by dtype: float64 as torch.autograd.gradcheck; float32's rounding
# (about 6e-8 of each value) divided by eps leaves only a few digits to compare
_DEFAULTS = {"float64": (1e-6, 1e-5, 1e-3), "float32": (1e-2, 1e-2, 1e-2)}


class GradcheckError(AssertionError):
    """What :func:`gradcheck` raises when ``backward`` disagrees with finite differences (an
    ``AssertionError``, so a failed check reads as a failed test). ``array`` names the array
    ("input", "weights", "0.weights"), ``index`` the worst element's index, ``analytic`` and
    ``numeric`` its two values (None where backward gave no gradient) and ``tolerance`` what
    their difference had to stay within.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> class Half(xmlp.Module):
        ...     def forward(self, x):
        ...         return x / 2
        ...     def backward(self, grad_output):
        ...         return grad_output            # forgets the 1/2
        >>> try:
        ...     xmlp.gradcheck(Half(), np.array([[1.0, 2.0]]), rng=0)
        ... except xmlp.GradcheckError as exc:
        ...     print(exc.array, exc.index, isinstance(exc, AssertionError))
        input (0, 1) True
    """

    def __init__(self, message: str, array: str, index: tuple[int, ...] | None = None,
                 analytic: float | None = None, numeric: float | None = None,
                 tolerance: float | None = None) -> None:
        super().__init__(message)
        self.array, self.index = array, index
        self.analytic, self.numeric, self.tolerance = analytic, numeric, tolerance


def gradcheck(module: Module, x: Any, *, y: Any = None, eps: float | None = None,
              atol: float | None = None, rtol: float | None = None, rng: Any = None) -> None:
    """Check ``module.backward`` against central finite differences; None when it matches.

    For a layer or a model, the function checked is L = sum(g * module.forward(x)) with a
    random ``grad_output`` g (standard normal, from ``rng``: not only ones, which would hide a
    transposed or misplaced factor); for a loss (``y`` given), L = module.forward(x, y) and
    its ``backward()``. Each element of x and of every parameter is moved by +-eps and
    (L(+eps) - L(-eps)) / (2 eps) compared with the gradient ``backward`` returned (for x) or
    stored in ``grad_<name>`` (for each parameter): they match where
    ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Everything runs on copies of the module (``copy.deepcopy``): its parameters, stored
    arrays, buffers and random generator are left exactly as they were, and a layer that
    draws random numbers in ``forward`` (:class:`xmlp.Dropout`) draws the same ones in every
    evaluation. Any backend works (Dask arrays are computed as needed, JAX's immutable arrays
    are never written to). It costs two forward passes per element checked: meant for small
    arrays (a few hundred elements).

    Args:
        module: a layer, a model (parameters by their dotted names: "0.weights") or a loss.
        x: the input (for a loss: the prediction), an array the module accepts.
        y: the target, for a loss (and only for one).
        eps: the step (default 1e-6 for float64 and 1e-2 for float32: float32's rounding,
            divided by a smaller step, would swamp the difference).
        atol, rtol: tolerances (default 1e-5 and 1e-3 for float64, as
            ``torch.autograd.gradcheck``; 1e-2 and 1e-2 for float32).
        rng: None, an int seed or a ``numpy.random.Generator`` for ``grad_output`` (pass a
            seed for a check that repeats exactly).

    Raises:
        GradcheckError: an ``AssertionError`` naming the array ("input" or the parameter), the
            worst element's index, the two values and the tolerance; also when ``backward``
            gives no gradient, or one of another shape.
        TypeError: ``module`` is no :class:`xmlp.Module`, x is no array, ``y`` is missing
            for a loss (or given for a layer), or ``forward`` returns no array (a loss's: no
            number or 0-d array); errors of the module's own checks pass through.
        ValueError: x, y or a parameter holds NaN or an infinity (where finite differences
            are NaN or 0), or a bad ``eps``, ``atol`` or ``rtol``.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> xmlp.gradcheck(xmlp.Linear(3, 2, rng=0), np.ones((4, 3)), rng=0)   # None: it matches
        >>> class Double(xmlp.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        ...     def backward(self, grad_output):
        ...         return grad_output            # forgets the factor 2
        >>> xmlp.gradcheck(Double(), np.ones(3), rng=0)
        Traceback (most recent call last):
        ...
        xmlp.gradcheck.GradcheckError: gradcheck: Double.backward disagrees with finite
        differences for input at index (2,): analytic 0.6404226504, numeric 1.280845301;
        |difference| 0.6404226504 > tolerance 0.001290845301 (atol 1e-05 + rtol 0.001 *
        |numeric|)
    """
    check = _Check(module, x, y, rng)
    eps, atol, rtol = _settings(x, eps, atol, rtol)
    analytic = check.analytic()
    for name, value in [("input", x), *check.params]:
        grad = analytic.get(name)
        _compare(check, name, value, grad, eps, atol, rtol)


class _Check:
    """The module (kept as it was: every evaluation runs on a fresh copy), its input, target,
    grad_output and parameters."""

    def __init__(self, module: Module, x: Any, y: Any, rng: Any) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"gradcheck: module must be an xmlp.Module (a layer, model or "
                            f"loss), got {type(module).__name__}")
        if namespace_or_none(x) is None:
            raise TypeError(f"gradcheck: x must be an array, got {type(x).__name__}: "
                            f"{short_repr(x)}")
        if isinstance(module, Loss) and y is None:
            raise TypeError(f"gradcheck: {type(module).__name__} is a loss; pass its target "
                            "as y=")
        if y is not None and not isinstance(module, Loss) and not _takes_target(module):
            raise TypeError(f"gradcheck: y is the target of a loss, but "
                            f"{type(module).__name__} is no loss (its forward takes x only)")
        self.module, self.x, self.y = copy.deepcopy(module), x, y
        self.name = type(module).__name__
        self.rng = make_rng(rng)
        self.params = list(self.module.named_parameters())
        self.grad_output: Any = None
        for label, array in [("x", x), ("y", y), *((f"parameter {n!r}", p)
                                                   for n, p in self.params)]:
            _check_finite(array, label, self.name)

    def _output(self, out: Any) -> Any:
        """``out``, what forward returned: TypeError unless an array (for a loss: a number or
        a 0-d array), which finite differences can sum."""
        if self.y is None:
            if namespace_or_none(out) is None:
                raise TypeError(f"gradcheck: {self.name}.forward returned "
                                f"{type(out).__name__}: {short_repr(out)}, not an array; a "
                                "layer's forward must return an array of x's namespace")
        elif not (isinstance(out, numbers.Real) and not isinstance(out, bool)) and (
                namespace_or_none(out) is None or tuple(out.shape) != ()):
            raise TypeError(f"gradcheck: {self.name}.forward returned {type(out).__name__}: "
                            f"{short_repr(out)}, not a number or a 0-d array; a loss's "
                            "forward must return the loss")
        return out

    def analytic(self) -> dict[str, Any]:
        """{"input": dL/dx, parameter name: dL/dp} as the module's backward gives them (None
        where it gives none)."""
        module = copy.deepcopy(self.module)
        if self.y is not None:
            self._output(module.forward(self.x, self.y))  # type: ignore[call-arg]  # (y, t)
            grad_x = module.backward()  # type: ignore[call-arg]
        else:
            out = self._output(module.forward(self.x))
            xp = array_api_compat.array_namespace(out)
            draws = self.rng.standard_normal(tuple(out.shape))
            self.grad_output = xp.asarray(np.asarray(draws, dtype=dtype_name(out.dtype)),
                                          device=array_api_compat.device(out))
            grad_x = module.backward(self.grad_output)
        return {"input": grad_x, **dict(module.named_grads())}

    def value(self, name: str, array: Any) -> Any:
        """L (a 0-d array) with ``name`` ("input" or a parameter) replaced by ``array``, on a
        fresh copy."""
        module = copy.deepcopy(self.module)
        x = self.x
        if name == "input":
            x = array
        else:
            module.assign_parameters({name: array})
        if self.y is not None:
            return self._output(module.forward(x, self.y))  # type: ignore[call-arg]  # (y, t)
        out = self._output(module.forward(x))
        xp = array_api_compat.array_namespace(out)
        return xp.sum(out * self.grad_output)


def _check_finite(array: Any, label: str, name: str) -> None:
    """ValueError where a floating ``array`` (x, y or a parameter of the module ``name``)
    holds NaN or an infinity: finite differences there are NaN or 0, whatever backward
    does."""
    if array is None or namespace_or_none(array) is None:
        return
    host = to_host(array)
    if host.dtype.kind != "f" or bool(np.isfinite(host).all()):
        return
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(host))[0])
    raise ValueError(f"gradcheck: {label} holds {float(host[index])} at index {index}; "
                     f"finite differences of {name} need finite values")


def _takes_target(module: Module) -> bool:
    """Whether a module of the user's own has a forward(y, t), as a loss does."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def _settings(x: Any, eps: Any, atol: Any, rtol: Any) -> tuple[float, float, float]:
    """eps, atol and rtol: the given ones (finite numbers; eps > 0, tolerances >= 0), else
    the defaults of x's dtype."""
    name = dtype_name(x.dtype)
    if name not in _DEFAULTS:
        raise TypeError(f"gradcheck: x has dtype {name}; finite differences need a float32 or "
                        "float64 x")
    defaults = _DEFAULTS[name]
    out = []
    for label, given, default in zip(("eps", "atol", "rtol"), (eps, atol, rtol), defaults,
                                     strict=True):
        if given is None:
            out.append(default)
            continue
        if isinstance(given, bool) or not isinstance(given, numbers.Real):
            raise TypeError(f"gradcheck: {label} must be a real number, got {short_repr(given)}")
        value = real_as_float(given)
        if not math.isfinite(value) or value < 0 or (label == "eps" and value == 0):
            need = "> 0" if label == "eps" else ">= 0"
            raise ValueError(f"gradcheck: {label} must be a finite number {need}, got "
                             f"{short_repr(given)}")
        out.append(value)
    return out[0], out[1], out[2]


def _compare(check: _Check, name: str, value: Any, grad: Any, eps: float, atol: float,
             rtol: float) -> None:
    """GradcheckError unless ``grad`` matches the finite differences of L in ``name``."""
    owner = f"gradcheck: {check.name}.backward"
    label = name if name == "input" else repr(name)
    if grad is None:
        what = "returned None" if name == "input" else f"set no grad_{name.rsplit('.', 1)[-1]}"
        raise GradcheckError(f"{owner} {what}: no gradient for {label} to compare", name)
    if tuple(grad.shape) != tuple(value.shape):
        raise GradcheckError(f"{owner} gave a gradient of shape {tuple(grad.shape)} for "
                             f"{label}, whose shape is {tuple(value.shape)}", name)
    analytic = to_host(grad).astype(np.float64)
    numeric = _numeric(check, name, value, eps)
    allowed = atol + rtol * np.abs(numeric)
    excess = np.abs(analytic - numeric) / np.maximum(allowed, np.finfo(np.float64).tiny)
    excess = np.where(np.isfinite(analytic) & np.isfinite(numeric), excess, np.inf)
    if excess.size == 0 or float(excess.max()) <= 1.0:
        return
    flat = int(np.argmax(excess))
    index = tuple(int(i) for i in np.unravel_index(flat, excess.shape))
    a, n, tol = float(analytic.flat[flat]), float(numeric.flat[flat]), float(allowed.flat[flat])
    raise GradcheckError(
        f"{owner} disagrees with finite differences for {label} at index {index}: analytic "
        f"{a:.10g}, numeric {n:.10g}; |difference| {abs(a - n):.10g} > tolerance {tol:.10g} "
        f"(atol {atol:g} + rtol {rtol:g} * |numeric|)", name, index, a, n, tol)


def _numeric(check: _Check, name: str, value: Any, eps: float) -> np.ndarray:
    """(L(value + eps e_i) - L(value - eps e_i)) / (2 eps) for each element i, as float64 on
    the host. The moved arrays are made anew with the array's own namespace (value + eps *
    one-hot): nothing is written into an array, so JAX's immutable ones work too."""
    xp = array_api_compat.array_namespace(value)
    shape = tuple(value.shape)
    size = math.prod(shape)
    flat_index = xp.arange(size, device=array_api_compat.device(value))
    values = []
    for i in range(size):
        step = xp.reshape(xp.astype(flat_index == i, value.dtype), shape) * eps
        values += [check.value(name, value + step), check.value(name, value - step)]
    if array_api_compat.is_dask_array(values[0]):  # one compute for all: graphs share a lot
        import dask

        values = list(dask.compute(*values))
    host = np.array([float(v) for v in values], dtype=np.float64).reshape(size, 2)
    return ((host[:, 0] - host[:, 1]) / (2 * eps)).reshape(shape)
