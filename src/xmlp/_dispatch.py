"""The hot operations of a training step: one portable Array API version of each, and the
backend-specific fast paths, which live here and nowhere else.

Layers call ``spec.ops.<op>(...)`` where ``spec.ops = ops_for(xp)`` was resolved once when the
layer was built. :class:`PortableOps` is the reference; every fast path is tested to equal it
(tests/test_dispatch.py). Fast paths may write only into arrays they have just allocated and
not yet handed out: never into an array the API exposes or has returned.
"""

from __future__ import annotations

import itertools
import os
import sys
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
        array-api-strict), a new array where arrays are immutable (JAX) or lazy (Dask). The
        caller rebinds the attribute to the result either way."""
        param -= lr * grad
        return param


# -- NumPy ------------------------------------------------------------------------------------
# Plain NumPy expressions allocate a fresh array per operator and stream each through memory,
# and NumPy's own tanh is a scalar libm loop on CPUs without AVX-512 (about 30 ns an element
# in float64, 7 in float32, against 4 to 8 for PyTorch's vectorized one). The fast path
# therefore
# - computes tanh from a few vectorized NumPy operations (a rational function in float32, a
#   table and the addition formula in float64), a few ulp from the exact value;
# - works through long arrays in cache-sized blocks, in place in arrays it has just made, and
#   splits the blocks of long arrays between threads (NumPy releases the GIL in its loops);
# - runs a product whose inner dimension is 1 (a (N, 1) input or a (N, 1) output gradient)
#   as an outer product into a column-major result, where the inner loop runs over N rather
#   than over the few columns (a 1-column GEMM is slow in BLAS, a broadcast over 10 columns
#   slower still), and a float32 product of a few rows into many columns with its operands
#   swapped, which OpenBLAS runs faster.
# Arrays go through :meth:`NumpyOps.takes` first; anything else takes the portable path.

_BLOCK_BYTES = 262_144  # per block: fewer NumPy calls per element; larger measured no faster
_LARGE = 65_536  # below this, blocking costs more Python than it saves memory traffic
_OUTER_MIN = 256  # rows: below this a 1-wide GEMM costs no more than an outer product
# below these sizes NumPy's own tanh is faster than the many calls of the vectorized one
_TANH_MIN, _TANH32_MIN = 1024, 16384


def _threads() -> int:
    """Threads for elementwise work: XMLP_THREADS, else the CPUs this process may use (at
    most 8). XMLP_THREADS=1 keeps everything on the calling thread."""
    raw = os.environ.get("XMLP_THREADS", "").strip()
    if raw:
        return max(1, int(raw))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


_pool: Any = None
_pool_pid = 0


def _parallel(jobs: list[Callable[[], None]]) -> None:
    """Run the jobs, the last on this thread and the others on a shared thread pool (made
    again in a forked child, whose copy of the pool has no threads)."""
    global _pool, _pool_pid
    if len(jobs) > 1 and (_pool is None or _pool_pid != os.getpid()):
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=_threads() - 1, thread_name_prefix="xmlp")
        _pool_pid = os.getpid()
    futures = [_pool.submit(job) for job in jobs[:-1]]
    jobs[-1]()
    for future in futures:
        future.result()


def _laid(*arrays: Any) -> bool:
    """Whether arrays the fast path takes (:meth:`NumpyOps.takes`) are laid out as its
    blocked and outer-product paths need: aligned, contiguous, all C- or all F-ordered."""
    order = arrays[0].flags.c_contiguous
    for a in arrays:
        flags = a.flags
        if not flags.aligned or not (flags.c_contiguous or flags.f_contiguous) or (
                a.ndim > 1 and flags.c_contiguous != order):
            return False
    return True


# _FEW_ROWS: float32 a (m, k) @ (k, n) runs faster as (b @ a.T).T, b being the (n, k) right
# operand transposed, when OpenBLAS's single-precision GEMM has a few rows (m <= 64) of a few
# hundred columns going to many (k >= 256, n >= 512): measured 0.6x to 0.75x the time, the
# copy back to row-major order included; elsewhere the two are within a few per cent
# (float64: always). NumpyOps.matmul and .affine test this inline.


def _flat(a: Any) -> Any:
    """The elements of a C- or F-contiguous array as a 1-D view in memory order."""
    return a.reshape(-1) if a.flags.c_contiguous else a.T.reshape(-1)


def _blocks(kernel: Callable[..., None], out: Any, *inputs: Any, scratch: str = "",
            block: int = 0) -> Any:
    """kernel(out_block, *input_blocks, *scratch_blocks) over 1-D blocks of same-length 1-D
    arrays (``block`` elements, default _BLOCK_BYTES), the blocks of long arrays shared between
    threads; returns ``out``. ``scratch`` has a letter per scratch array a kernel needs: "f" of
    out's dtype, "i" of indices; each thread makes its own once, not one per block."""
    n = out.shape[0]
    block = block or _BLOCK_BYTES // out.itemsize
    np = sys.modules["numpy"]

    def run(lo: int, hi: int) -> Callable[[], None]:
        def job() -> None:
            size = min(block, hi - lo)
            tmp = [np.empty(size, out.dtype if c == "f" else np.intp) for c in scratch]
            for i in range(lo, hi, block):
                j = min(i + block, hi)
                kernel(out[i:j], *(a[i:j] for a in inputs), *(t[: j - i] for t in tmp))

        return job

    parts = max(1, min(_threads(), n // _LARGE))
    edges = [round(n * k / parts / block) * block for k in range(parts)] + [n]
    _parallel([run(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo])
    return out


# float32 tanh: x P(x^2) / Q(x^2) on x clamped to [-c, c], the rational function Eigen, XLA
# and ONNX Runtime use; within 7 ulp of the exact value (NumPy's: 1.3).
_TANH32 = (7.90531110763549805,  # c
           (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
            4.89352455891786e-03),  # P, highest power first
           (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
            4.89352518554385e-03))  # Q
# float64 tanh: from a table of tanh(k / 256), |k| <= 256 * 20 (tanh is 1 to the last bit
# beyond 20), and the addition formula tanh(x0 + d) = (T + t) / (1 + T t), t = tanh(d) for
# |d| <= 1/512 from three terms of its series (the fourth is below 4e-18 of it); within
# 3 ulp. Entry k + M holds tanh(k / K).
_TANH64_K = 256
_TANH64_M = 20 * _TANH64_K
_TANH64_T = (2 / 15 / _TANH64_K**5, -1 / 3 / _TANH64_K**3, 1 / _TANH64_K)  # t/d' in d'^2
_tanh64_table: Any = None


def _horner(np: Any, out: Any, s: Any, coefs: Any) -> Any:
    """out = the polynomial with ``coefs`` (highest power first) at s."""
    np.multiply(s, coefs[0], out=out)
    for c in coefs[1:-1]:
        np.add(out, c, out=out)
        np.multiply(out, s, out=out)
    return np.add(out, coefs[-1], out=out)


def _tanh32(np: Any, c: Any, out: Any, x: Any, s: Any, p: Any) -> None:
    clamp, p_coefs, q_coefs = c
    np.clip(x, -clamp, clamp, out=out)
    np.multiply(out, out, out=s)
    _horner(np, p, s, p_coefs)
    np.multiply(p, out, out=p)  # x P(x^2)
    np.divide(p, _horner(np, out, s, q_coefs), out=out)


def _tanh64(np: Any, c: Any, out: Any, x: Any, u: Any, kf: Any, t: Any, tk: Any,
            k: Any) -> None:
    table = _tanh64_table
    np.multiply(x, float(_TANH64_K), out=u)
    np.clip(u, -_TANH64_M, _TANH64_M, out=u)  # NaN stays NaN
    np.rint(u, out=kf)
    np.fmin(kf, _TANH64_M, out=kf)  # NaN -> M: a valid index; u keeps the NaN for the result
    np.copyto(k, kf, casting="unsafe")
    np.add(k, _TANH64_M, out=k)  # a non-negative index: NumPy's take is 5x slower on negative
    np.take(table, k, out=tk, mode="wrap")  # T = tanh(x0), x0 = k / K; "wrap": no copy of out
    np.subtract(u, kf, out=u)  # d' = K (x - x0), exact, in [-1/2, 1/2]
    s = np.multiply(u, u, out=kf)
    _horner(np, t, s, c)
    np.multiply(t, u, out=t)  # t = tanh(d)
    np.multiply(tk, t, out=s)
    np.add(s, 1.0, out=s)
    np.add(tk, t, out=out)
    np.divide(out, s, out=out)
    if not out.all():  # a zero result: x was 0 or -0, whose sign the sum lost
        np.copysign(out, x, out=out)


class NumpyOps(PortableOps):
    """NumPy: native calls (no wrapper overhead on small steps), a vectorized tanh, blocked and
    threaded elementwise work on long arrays, outer products for 1-wide inner dimensions.

    Every fast path first asks :meth:`takes` whether it may handle its arrays, and hands
    anything else to the portable op: so a dtype or layout xmlp accepts computes the same with
    ``XMLP_FAST_PATHS=0`` and without it. Layout is each fast path's own check (:func:`_laid`).
    """

    def __init__(self, xp: Any) -> None:
        import numpy as np

        super().__init__(xp)
        self.np = np
        self._ndarray = np.ndarray
        self._f32, self._f64 = np.dtype(np.float32), np.dtype(np.float64)
        self._constants: dict[Any, Any] = {}

    def takes(self, a: Any, b: Any = None, c: Any = None) -> bool:
        """Whether the fast paths may take arrays ``a`` (, ``b``, ``c``): plain
        ``numpy.ndarray`` s (no subclass) of one dtype, float32 or float64 in native byte order.
        float16 is left to the portable ops, which accumulate means in float32 (a float16 dot
        product overflows at 65504); a non-native byte order, mixed dtypes or a subclass
        likewise. Identity tests, three named arguments rather than ``*arrays``: NumPy's native
        float dtypes are singletons (a byte-swapped one is another object), and this runs for
        every op of every step (about three times cheaper so)."""
        dtype, ndarray = a.dtype, self._ndarray
        return (type(a) is ndarray and (dtype is self._f64 or dtype is self._f32)
                and (b is None or (type(b) is ndarray and b.dtype is dtype))
                and (c is None or (type(c) is ndarray and c.dtype is dtype)))

    # Cheap tests on shape and size come before the layout's: on the seed's 100-sample step
    # every microsecond of checking shows.
    def matmul(self, a: Any, b: Any) -> Any:
        if not self.takes(a, b):
            return super().matmul(a, b)
        np = self.np
        if a.ndim == 2 and b.ndim == 2:
            m, k = a.shape
            if k == 1:
                if m >= _OUTER_MIN and _laid(a, b):  # (N, 1) @ (1, M): column-major, b.T * a.T
                    return np.multiply(b.T, a.T).T
            elif m <= 64 and k >= 256 and b.shape[1] >= 512 and a.dtype is self._f32:
                # few rows into many columns (_FEW_ROWS); row-major again: the next GEMM
                # reads it faster so
                return np.ascontiguousarray(np.matmul(b.T, a.T).T)
        return np.matmul(a, b)

    def affine(self, x2: Any, weights: Any, biases: Any) -> Any:
        if not self.takes(x2, weights, biases):
            return super().affine(x2, weights, biases)
        np = self.np
        m, k = x2.shape
        if k == 1 and m >= _OUTER_MIN and _laid(x2, weights, biases):
            out_t = np.multiply(weights, x2.T)  # (out, N): the inner loop runs over N
            out_t += biases[:, None]
            return out_t.T
        if m <= 64 and k >= 256 and weights.shape[0] >= 512 and x2.dtype is self._f32:
            out = np.ascontiguousarray(np.matmul(weights, x2.T).T)  # _FEW_ROWS
        else:
            out = np.matmul(x2, weights.T)
        out += biases  # in place: a fresh array, not yet handed out
        return out

    def tanh(self, x: Any) -> Any:
        if not self.takes(x):
            return super().tanh(x)
        np, n = self.np, x.size
        if n < _TANH_MIN or (n < _TANH32_MIN and x.dtype is self._f32) or not _laid(x):
            return np.tanh(x)
        out = np.empty_like(x)  # same memory order as x
        if x.dtype.char == "f":
            c32 = self._coefs(_TANH32, x.dtype)
            _blocks(lambda *a: _tanh32(np, c32, *a), _flat(out), _flat(x), scratch="ff")
            return out
        global _tanh64_table
        if _tanh64_table is None:
            _tanh64_table = np.tanh(np.arange(-_TANH64_M, _TANH64_M + 1) / _TANH64_K)
        c64 = self._coefs(_TANH64_T, x.dtype)
        _blocks(lambda *a: _tanh64(np, c64, *a), _flat(out), _flat(x), scratch="ffffi")
        return out

    def _coefs(self, coefs: Any, dtype: Any) -> Any:
        """The constants as NumPy scalars of ``dtype``: no conversion in every call."""
        key = (id(coefs), dtype.char)
        if key not in self._constants:
            conv = dtype.type
            self._constants[key] = tuple(
                conv(c) if isinstance(c, float) else tuple(conv(v) for v in c) for c in coefs)
        return self._constants[key]

    def tanh_grad(self, grad_output: Any, output: Any) -> Any:
        np = self.np
        if not self.takes(grad_output, output) or grad_output.shape != output.shape:
            return super().tanh_grad(grad_output, output)
        if output.size < _LARGE or not _laid(grad_output, output):
            out = np.multiply(output, output)
            np.subtract(1, out, out=out)
            return np.multiply(out, grad_output, out=out)
        out = np.empty_like(output)

        def kernel(o: Any, g: Any, y: Any) -> None:
            np.multiply(y, y, out=o)
            np.subtract(1, o, out=o)
            o *= g

        _blocks(kernel, _flat(out), _flat(grad_output), _flat(output))
        return out

    def sum_rows(self, g2: Any) -> Any:
        if not self.takes(g2):
            return super().sum_rows(g2)
        if g2.ndim == 2 and not g2.flags.c_contiguous and g2.flags.f_contiguous:
            # column-major (from an outer product): sum along memory order, each column a
            # contiguous run, with NumPy's pairwise summation
            return self.np.add.reduce(g2.T, axis=1)
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
        if not self.takes(diff):
            return super().mse_grad(diff, size)
        return self.np.multiply(diff, 2.0 / size)

    def sgd(self, param: Any, grad: Any, lr: float) -> Any:
        if not self.takes(param, grad):
            return super().sgd(param, grad, lr)
        if (param.size < 2 * _LARGE or _threads() == 1 or param.shape != grad.shape
                or not _laid(param, grad) or not param.flags.writeable):
            try:
                param -= lr * grad
            except ValueError:  # read-only weights (loaded with mmap): the portable way
                if param.flags.writeable:
                    raise
                return super().sgd(param, grad, lr)
            return param

        def kernel(p: Any, g: Any) -> None:
            p -= lr * g

        # each thread's share in one go: cache-sized blocks measured no faster for this
        _blocks(kernel, _flat(param), _flat(grad), block=param.size)
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
