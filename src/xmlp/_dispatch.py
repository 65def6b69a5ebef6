"""The hot operations of a training step: one portable Array API version of each, and the
backend-specific fast paths, which live here and nowhere else.

Layers call ``spec.ops.<op>(...)`` where ``spec.ops = ops_for(xp)`` was resolved once when the
layer was built. :class:`PortableOps` is the reference; every fast path is tested to equal it
(tests/test_dispatch.py). Fast paths may write only into arrays they have just allocated and
not yet handed out: never into an array the API exposes or has returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["NumpyOps", "PortableOps", "ops_for", "set_fast_paths"]


class PortableOps:
    """Each op written once against the Array API standard; correct on every backend."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def matmul(self, a: Any, b: Any) -> Any:
        return self.xp.matmul(a, b)

    def affine(self, x2: Any, weights: Any, biases: Any) -> Any:
        """(N, in) @ (out, in).T + (out,) -> (N, out): one GEMM with a transpose flag."""
        return self.xp.matmul(x2, weights.T) + biases

    def tanh(self, x: Any) -> Any:
        return self.xp.tanh(x)

    def tanh_grad(self, grad_output: Any, output: Any) -> Any:
        """grad_output * (1 - y**2) from the stored output y: tanh is never computed twice."""
        return grad_output * (1 - output * output)

    def sum_rows(self, g2: Any) -> Any:
        """(N, k) -> (k,): the bias gradient."""
        return self.xp.sum(g2, axis=0)

    def mse(self, y: Any, t: Any) -> tuple[Any, Any]:
        """(mean((y - t)**2) as the namespace's mean returns it, y - t)."""
        diff = y - t
        return self.xp.mean(diff * diff), diff

    def mse_grad(self, diff: Any, size: int) -> Any:
        return diff * (2.0 / size)

    def sgd(self, param: Any, grad: Any, lr: float) -> Any:
        """param - lr * grad, in place where the array type allows it (NumPy, CuPy, torch,
        array-api-strict), a new array where arrays are immutable (JAX), lazy (Dask) or
        read-only (a NumPy array with writeable=False, e.g. weights loaded with mmap). The
        caller rebinds the attribute to the result either way."""
        try:
            param -= lr * grad
        except ValueError:  # NumPy refuses before writing anything: "output array is read-only"
            if getattr(getattr(param, "flags", None), "writeable", True):
                raise
            return param - lr * grad
        return param


# -- NumPy ------------------------------------------------------------------------------------
# Plain NumPy expressions allocate a fresh array per operator and stream each through memory;
# a chain of them on a (1024, 1024) array costs several times its arithmetic. The fast path
# works in cache-sized row blocks, in place in the one array it returns. (Threads were tried
# and measured: right after a GEMM, OpenBLAS's workers spin on the other core, and a second
# elementwise thread gained nothing. See benchmarks/results/perf-cpu-2core.)

_BLOCK = 32_768  # elements per block: the few blocks in flight stay in a core's L2
_LARGE = 131_072  # below this, blocking costs more Python than it saves memory traffic


def _blockwise(fn: Callable[..., None], *arrays: Any) -> None:
    """fn(*row_blocks) over C-contiguous 2-D arrays of equal shape."""
    rows, cols = arrays[0].shape
    step = max(1, _BLOCK // max(1, cols))
    for i in range(0, rows, step):
        fn(*(a[i : i + step] for a in arrays))


def _as_rows(a: Any) -> Any:
    """A 2-D view of a C-contiguous array (None when there is none without a copy)."""
    if not a.flags.c_contiguous or a.ndim == 0:
        return None
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])


class NumpyOps(PortableOps):
    """NumPy: native calls (no wrapper overhead on small steps), blocked elementwise work
    without temporaries on large ones.

    A fast path whose arithmetic differs from the portable op's (another algorithm, in-place
    writes) first asks :meth:`takes` whether it may handle its arrays, and hands anything else
    to the portable op. The others call the very NumPy functions the portable op calls, in the
    same order, without the wrapper (matmul, affine, tanh, tanh_grad, sum_rows, mse_grad):
    equal bit for bit for every dtype and layout, which tests/test_reliability.py checks. So
    a dtype or layout xmlp accepts trains the same with ``XMLP_FAST_PATHS=0`` and without it.
    """

    def __init__(self, xp: Any) -> None:
        import numpy as np

        super().__init__(xp)
        self.np = np
        self._ndarray = np.ndarray
        # Native byte order only: np.dtype("float64") == np.dtype(">f8") is False.
        self._dtypes = frozenset({np.dtype(np.float32), np.dtype(np.float64)})

    def takes(self, *arrays: Any) -> bool:
        """Whether the fast paths may take ``arrays``: plain ``numpy.ndarray`` s (no subclass)
        of one dtype, float32 or float64 in native byte order. float16 is left to the portable
        ops, which accumulate means in float32 (a float16 dot product overflows at 65504);
        a non-native byte order, mixed dtypes or a subclass likewise. Layout (strides, 0-size)
        is each fast path's own check, where it needs one."""
        dtype = arrays[0].dtype
        if dtype not in self._dtypes:
            return False
        ndarray = self._ndarray
        for a in arrays:  # a loop, not all(...): this runs for every op of every step
            if type(a) is not ndarray or a.dtype != dtype:
                return False
        return True

    def matmul(self, a: Any, b: Any) -> Any:
        return self.np.matmul(a, b)

    def affine(self, x2: Any, weights: Any, biases: Any) -> Any:
        out = self.np.matmul(x2, weights.T)
        if out.dtype != biases.dtype:  # in place would cast to out's dtype: not the portable
            return out + biases
        out += biases  # in place: a fresh array, not yet handed out
        return out

    def tanh(self, x: Any) -> Any:
        return self.np.tanh(x)

    def tanh_grad(self, grad_output: Any, output: Any) -> Any:
        np = self.np
        if grad_output.dtype != output.dtype or grad_output.shape != output.shape:
            return super().tanh_grad(grad_output, output)
        if output.size < _LARGE:
            out = np.multiply(output, output)
            np.subtract(1, out, out=out)
            return np.multiply(out, grad_output, out=out)
        g, y = _as_rows(grad_output), _as_rows(output)
        if g is None or y is None:
            return super().tanh_grad(grad_output, output)
        out = np.empty_like(grad_output)

        def block(gi: Any, yi: Any, oi: Any) -> None:
            np.multiply(yi, yi, out=oi)
            np.subtract(1, oi, out=oi)
            np.multiply(oi, gi, out=oi)

        _blockwise(block, g, y, _as_rows(out))
        return out

    def sum_rows(self, g2: Any) -> Any:
        return self.np.add.reduce(g2, axis=0)

    def mse(self, y: Any, t: Any) -> tuple[Any, Any]:
        np = self.np
        if not self.takes(y, t) or y.size == 0:  # the mean of nothing: the portable NaN
            return super().mse(y, t)
        diff = np.subtract(y, t)
        flat = diff.reshape(-1)
        # A dot product is the sum of squares without the squared temporary; the result has
        # the type np.mean gives (a NumPy scalar of y's dtype).
        return np.dot(flat, flat) / flat.size, diff

    def mse_grad(self, diff: Any, size: int) -> Any:
        return self.np.multiply(diff, 2.0 / size)

    def sgd(self, param: Any, grad: Any, lr: float) -> Any:
        np = self.np
        # Small arrays: the portable op is this fast path (one in-place expression).
        if param.size < _LARGE or not self.takes(param, grad) or not param.flags.writeable:
            return super().sgd(param, grad, lr)
        p, g = _as_rows(param), _as_rows(grad)
        if p is None or g is None:
            param -= lr * grad
            return param

        def block(pi: Any, gi: Any) -> None:
            pi -= np.multiply(gi, lr)  # the product is a small block in cache

        _blockwise(block, p, g)
        return param


_cache: dict[int, PortableOps] = {}
# XMLP_FAST_PATHS=0 turns every fast path off (to compare, or to rule them out when debugging).
_fast_paths = os.environ.get("XMLP_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no")


def ops_for(xp: Any) -> PortableOps:
    """The ops for namespace ``xp``: a fast path where one exists, the portable one otherwise."""
    ops = _cache.get(id(xp))
    if ops is None:
        import array_api_compat

        fast = _fast_paths and array_api_compat.is_numpy_namespace(xp)
        ops = NumpyOps(xp) if fast else PortableOps(xp)
        _cache[id(xp)] = ops
    return ops


def set_fast_paths(enabled: bool) -> None:
    """Turn fast paths on or off for layers built (and activation inputs first seen) from now on."""
    global _fast_paths
    _fast_paths = bool(enabled)
    _cache.clear()
