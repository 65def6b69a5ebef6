"""The NumPy fast paths of the portable operations (:mod:`xmlp.ops.portable`), the only
backend-specific code of the layers. Every fast path is tested to equal the portable op
(tests/ops/). Fast paths may write only into arrays they have just allocated and not yet
handed out: never into an array the API exposes or has returned.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from .portable import PortableOps
from .tanh import TANH32, TANH64_T, tanh32_block, tanh64_block

__all__ = ["NumpyOps"]

# -- NumPy ------------------------------------------------------------------------------------
# Plain NumPy expressions allocate a fresh array per operator and stream each through memory,
# and NumPy's own tanh is a scalar libm loop on CPUs without AVX-512 (about 30 ns an element
# in float64, 7 in float32, against 4 to 8 for PyTorch's vectorized one). The fast path
# therefore
# - computes tanh from a few vectorized NumPy operations (a rational function in float32, a
#   table and the addition formula in float64), a few ulp from the exact value;
# - works through long arrays in cache-sized blocks, in place in arrays it has just made, and
#   (a block stays in the cache while several operations pass over it);
# - runs a product whose inner dimension is 1 (a (N, 1) input or a (N, 1) output gradient)
#   as an outer product into a column-major result, where the inner loop runs over N rather
#   than over the few columns (a 1-column GEMM is slow in BLAS, a broadcast over 10 columns
#   slower still), and a float32 product of a few rows into many columns with its operands
#   swapped, which OpenBLAS runs faster.
# Arrays go through :meth:`NumpyOps.takes` first; anything else takes the portable path.

_BLOCK_BYTES = 262_144  # per block: fewer NumPy calls per element; larger measured no faster
_LARGE = 65_536  # below this, blocking costs more Python than it saves memory traffic
# output elements (N * M) from which an (N, 1) @ (1, M) product runs as an outer product:
# measured 0.3x to 0.7x a GEMM's time from 2,000 (N from 50 to 1,000, M from 10 to 256, both
# dtypes), about even at 1,000, slower at 500 (the scikit-learn estimators' (200, 1) @ (1, 100))
_OUTER_MIN = 2_000
# softmax cross-entropy over at most this many classes runs on the logits transposed, (C, N):
# NumPy reduces a short last axis row by row (one inner loop of C per row); along the first
# axis every reduction is C vectorized passes over N. Measured 0.3x to 0.8x the time for
# C <= 10, about even at 32 and slower beyond (N = 200 and 2,000)
_FEW_CLASSES = 16
# the optimizers' blocked updates (measured): elements per block, and the size
# from which blocking pays
_UPDATE_BLOCK = 32_768
_UPDATE_LARGE = 131_072
# below these sizes NumPy's own tanh is faster than the many calls of the vectorized one
_TANH_MIN, _TANH32_MIN = 1024, 16384



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


_scratch = threading.local()


def _scratch_arrays(letters: str, size: int, dtype: Any) -> list[Any]:
    """This thread's private scratch arrays, one per letter ("f": ``dtype``, "i": int64), kept
    between calls: a fresh array of a few hundred KiB costs its page faults on every step
    (glibc hands such blocks back to the system when they are freed)."""
    np = sys.modules["numpy"]
    key = (letters, size, dtype)
    cache = getattr(_scratch, "arrays", None)
    if cache is None:
        cache = _scratch.arrays = {}
    if key not in cache:
        cache[key] = [np.empty(size, dtype if c == "f" else np.int64) for c in letters]
    return cache[key]


def _blocks(kernel: Callable[..., None], out: Any, *inputs: Any, scratch: str = "") -> Any:
    """kernel(out_block, *input_blocks, *scratch_blocks) over cache-sized 1-D blocks
    (_BLOCK_BYTES) of same-length 1-D arrays; returns ``out``. ``scratch`` has a letter per
    scratch array a kernel needs: "f" of out's dtype, "i" of int64 indices, kept by this thread
    (:func:`_scratch_arrays`) and never seen outside the kernel."""
    n = out.shape[0]
    block = _BLOCK_BYTES // out.itemsize
    tmp = _scratch_arrays(scratch, block, out.dtype) if scratch else []
    for i in range(0, n, block):
        j = min(i + block, n)
        kernel(out[i:j], *(a[i:j] for a in inputs), *(s[: j - i] for s in tmp))
    return out



class NumpyOps(PortableOps):
    """NumPy: native calls (no wrapper overhead on small steps), a vectorized tanh
    (:mod:`xmlp.ops.tanh`), blocked elementwise work on long arrays, outer products for
    1-wide inner dimensions.

    Every fast path first asks :meth:`takes` whether it may handle its arrays (and checks the
    layout it needs, :func:`_laid`), and hands anything else to the portable op. Most compute
    what the portable op computes bit for bit (NumPy's own functions in the same order; the
    blocks split the same elementwise work; a 1-wide product is the same products),
    which tests/ops/test_layouts.py checks for every dtype and layout. Two differ in the last
    bits: tanh on long arrays (a vectorized approximation within a few ulp) and a float32 GEMM
    of a few rows into many columns (another summation order). So a dtype or layout xmlp
    accepts trains the same with ``XMLP_FAST_PATHS=0`` and without it.

    Args:
        xp: NumPy's namespace (``numpy`` or ``array_api_compat.numpy``).

    Example:
        >>> import numpy as np
        >>> from xmlp.ops import NumpyOps
        >>> ops = NumpyOps(np)
        >>> ops.takes(np.ones(3, dtype=np.float32)), ops.takes(np.ones(3, dtype=np.float16))
        (True, False)
        >>> print(ops.tanh(np.array([0.0, 1.0])))
        [0.         0.76159416]
    """

    def __init__(self, xp: Any) -> None:
        import numpy as np

        super().__init__(xp)
        self.np = np
        self._ndarray = np.ndarray
        self._f32, self._f64 = np.dtype(np.float32), np.dtype(np.float64)
        self._constants: dict[Any, Any] = {}

    def takes(self, a: Any, *more: Any) -> bool:
        """Whether the fast paths may take ``a`` and ``more`` arrays: plain ``numpy.ndarray``
        s (no subclass) of one dtype, float32 or float64 in native byte order. float16 is left
        to the portable ops, which accumulate means in float32 (a float16 dot product overflows
        at 65504); a non-native byte order, mixed dtypes or a subclass likewise. Layout
        (strides, 0-size) is each fast path's own check, where it needs one. Identity tests:
        NumPy's native float dtypes are singletons (a byte-swapped one is another object), and
        this runs for every op of every step."""
        dtype, ndarray = a.dtype, self._ndarray
        if type(a) is not ndarray or (dtype is not self._f64 and dtype is not self._f32):
            return False
        for b in more:  # a loop, not all(...): cheaper on the usual one or two
            if type(b) is not ndarray or b.dtype is not dtype:
                return False
        return True

    # Cheap tests on shape and size come before the layout's: on the seed's 100-sample step
    # every microsecond of checking shows.
    def matmul(self, a: Any, b: Any) -> Any:
        if not self.takes(a, b):
            return super().matmul(a, b)
        np = self.np
        if a.ndim == 2 and b.ndim == 2:
            m, k = a.shape
            if k == 1:
                if m * b.shape[1] >= _OUTER_MIN and _laid(a, b):
                    # (N, 1) @ (1, M): column-major, b.T * a.T
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
        if k == 1 and m * weights.shape[0] >= _OUTER_MIN and _laid(x2, weights, biases):
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
            c32 = self._coefs(TANH32, x.dtype)
            _blocks(lambda *a: tanh32_block(np, c32, *a), _flat(out), _flat(x), scratch="ff")
            return out
        c64 = self._coefs(TANH64_T, x.dtype)
        _blocks(lambda *a: tanh64_block(np, c64, *a), _flat(out), _flat(x), scratch="ffffi")
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
        # what the fast path declines (subclasses, other dtypes, broadcasting) gets the
        # portable product: a subclass's type then carries through, as in every other op
        if (grad_output.dtype != output.dtype or grad_output.shape != output.shape
                or not self.takes(grad_output, output)):
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

    def relu(self, x: Any) -> Any:
        # np.maximum against a Python or NumPy scalar runs a broadcasting loop (float32
        # (200, 100): 26 us); against an array of zeros the vectorized one (5.6 us)
        if not self.takes(x) or not _laid(x):
            return super().relu(x)
        np = self.np
        out = np.empty_like(x)  # same memory order as x
        zeros = self._zeros(x.dtype)
        if x.size <= zeros.shape[0]:  # one block: no _blocks (its calls cost ~20 us here)
            np.maximum(_flat(x), zeros[:x.size], out=_flat(out))
            return out
        _blocks(lambda o, a: np.maximum(a, zeros[:a.shape[0]], out=o), _flat(out), _flat(x))
        return out

    def relu_grad(self, grad_output: Any, x: Any) -> Any:
        # the mask's floats are ours: multiplied in place (one temporary less, and no
        # array-api-compat astype wrapper); a product commutes exactly, sign of zero included
        if not self.takes(grad_output, x) or grad_output.shape != x.shape:
            return super().relu_grad(grad_output, x)
        np = self.np
        out = np.greater(x, 0).astype(grad_output.dtype)
        out *= grad_output
        return out

    def sum_squares(self, a: Any) -> Any:
        # one BLAS dot on the flat view (the compat vecdot wrapper costs as much again)
        if not self.takes(a) or not a.flags.c_contiguous:
            return super().sum_squares(a)
        flat = a.reshape(-1)
        return self.np.dot(flat, flat)

    def _zeros(self, dtype: Any) -> Any:
        """A read-only block of zeros of ``dtype``, _BLOCK_BYTES long (shared by threads: it
        is only read)."""
        key = ("zeros", dtype.char)
        if key not in self._constants:
            zeros = self.np.zeros(_BLOCK_BYTES // dtype.itemsize, dtype)
            zeros.flags.writeable = False
            self._constants[key] = zeros
        return self._constants[key]

    def sum_outer(self, g2: Any, x2: Any) -> Any:
        return self.matmul(g2.T, x2)  # its layouts: an outer product where a row is 1 wide

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
        return self.np.multiply(diff, 2.0 / size)

    def take_rows(self, a: Any, index: Any) -> Any:
        # np.take copies a whole non-contiguous array before gathering (x as columns of a
        # stored block: 100x slower per batch); fancy indexing gathers the rows directly
        return self.np.take(a, index, axis=0) if a.flags.c_contiguous else a[index]

    # -- classification: no one-hot, the label's column picked by index -------------------
    def cross_entropy_index(self, z2: Any, labels: Any, valid: Any) -> tuple[Any, Any]:
        np = self.np
        if valid is not None or not self.takes(z2) or type(labels) is not np.ndarray:
            return super().cross_entropy_index(z2, labels, valid)
        if z2.ndim == 2 and 0 < z2.shape[1] <= _FEW_CLASSES and z2.shape[0] > 0:
            return self._cross_entropy_few(z2, labels)
        s = np.subtract(z2, z2.max(axis=-1, keepdims=True))
        e = np.exp(s)
        total = np.add.reduce(e, axis=-1, keepdims=True)
        rows = np.arange(z2.shape[0])
        # mean(log(total) - s[label]) as one sum each; same type as np.mean gives
        loss = (np.add.reduce(np.log(total[:, 0])) - np.add.reduce(s[rows, labels])) / rows.size
        e /= total  # e is ours: becomes the softmax in place
        return loss, e

    def _cross_entropy_few(self, z2: Any, labels: Any) -> tuple[Any, Any]:
        """cross_entropy_index on (C, N) = z2.T (_FEW_CLASSES); the softmax is returned as
        the transpose of a (C, N) array: (N, C), column-major."""
        np = self.np
        s = z2.T.copy()  # ours: shifted in place
        s -= np.maximum.reduce(s, axis=0)
        e = np.exp(s)
        total = np.add.reduce(e, axis=0)
        n = total.shape[0]
        loss = (np.add.reduce(np.log(total)) - np.add.reduce(s[labels, np.arange(n)])) / n
        e /= total
        return loss, e.T

    def labels_in_range(self, labels: Any, n_classes: int) -> bool:
        np = self.np  # the ufuncs' own reductions: no wrapper on a per-step check
        if type(labels) is not np.ndarray:
            return super().labels_in_range(labels, n_classes)
        dtype = labels.dtype
        if dtype.kind == "i" and labels.size and n_classes <= 1 << (8 * dtype.itemsize - 1):
            # one reduction: seen as unsigned, a negative label is at least 2**(bits - 1),
            # so above every class count up to that
            unsigned = labels.view(np.dtype(f"u{dtype.itemsize}"))
            return bool(np.maximum.reduce(unsigned, axis=None) < n_classes)
        return bool(np.minimum.reduce(labels, axis=None) >= 0
                    and np.maximum.reduce(labels, axis=None) < n_classes)

    def cross_entropy_grad_index(self, probs: Any, labels: Any, valid: Any, n: int) -> Any:
        np = self.np
        if valid is not None or not self.takes(probs) or type(labels) is not np.ndarray:
            return super().cross_entropy_grad_index(probs, labels, valid, n)
        grad = np.array(probs, copy=True)  # probs is stored by the loss: never written
        grad[np.arange(grad.shape[0]), labels] -= 1
        grad /= n
        return grad

    # -- optimizers: on large parameters, in place on the parameter and the private state in
    # cache-sized blocks with one block-sized scratch array (the portable version streams
    # several parameter-sized temporaries through memory). Small ones take the portable
    # version, which is in place on NumPy too and costs fewer calls (measured: the blocked
    # version is slower below _UPDATE_LARGE elements).
    def _update_blocks(self, block: Callable[..., None], *arrays: Any) -> bool:
        """Run ``block`` over flat blocks of equal-shape, same-dtype, C-contiguous large
        arrays; False (nothing done) when they are not all like that."""
        first = arrays[0]
        if first.size < _UPDATE_LARGE or not self.takes(*arrays) or not first.flags.writeable:
            return False
        for a in arrays:
            if a.dtype != first.dtype or a.shape != first.shape or not a.flags.c_contiguous:
                return False
        flat = [a.reshape(-1) for a in arrays]
        for i in range(0, first.size, _UPDATE_BLOCK):
            block(*(f[i:i + _UPDATE_BLOCK] for f in flat))
        return True

    def sgd_momentum(self, param: Any, grad: Any, buf: Any, lr: float, momentum: float,
                     nesterov: bool, weight_decay: float) -> tuple[Any, Any]:
        np = self.np

        def block(p: Any, g: Any, b: Any) -> None:
            t = np.empty_like(p)
            if weight_decay:
                np.multiply(p, weight_decay, out=t)
                t += g
                g = t
                t = np.empty_like(p)
            b *= momentum
            b += g
            if nesterov:
                np.multiply(b, momentum, out=t)
                np.add(g, t, out=t)
            else:
                t[...] = b
            t *= lr
            p -= t

        if not self._update_blocks(block, param, grad, buf):
            return super().sgd_momentum(param, grad, buf, lr, momentum, nesterov, weight_decay)
        return param, buf

    def adam(self, param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, lr: float,
             beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool,
             bias1: float, bias2_sqrt: float) -> tuple[Any, Any, Any]:
        np = self.np
        step_size = lr / bias1

        def block(p: Any, g: Any, m: Any, v: Any) -> None:
            t = np.empty_like(p)
            if weight_decay:
                if decoupled:
                    p *= 1 - lr * weight_decay
                else:  # g + weight_decay * p, as torch adds it (addition commutes exactly)
                    decayed = np.multiply(p, weight_decay)
                    decayed += g
                    g = decayed
            np.subtract(g, m, out=t)
            t *= 1 - beta1
            m += t
            np.multiply(g, g, out=t)
            t *= 1 - beta2
            v *= beta2
            v += t
            np.sqrt(v, out=t)
            t /= bias2_sqrt
            t += eps
            np.divide(m, t, out=t)
            t *= step_size
            p -= t

        if not self._update_blocks(block, param, grad, exp_avg, exp_avg_sq):
            return super().adam(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                                weight_decay, decoupled, bias1, bias2_sqrt)
        return param, exp_avg, exp_avg_sq

    # Small models: a step is dominated by the calls, not the arithmetic (an MLP's Adam step
    # is about 13 NumPy calls per parameter). Packed, the state of all parameters is one
    # (keys, total) array, a row per state key (the per-parameter arrays are views into it),
    # and Adam runs its 9 calls once on all parameters (both moments in the same three), plus
    # one to gather the gradients and one per parameter to apply.
    def pack_state(self, state: list[list[Any]]) -> tuple[list[list[Any]], Any]:
        np = self.np
        arrays = [a for slots in state for a in slots]
        if not arrays or not self.takes(*arrays):
            return state, None
        dtype = arrays[0].dtype
        sizes = [slots[0].size for slots in state]
        total = sum(sizes)
        if total >= _UPDATE_LARGE or any(a.dtype != dtype for a in arrays):
            return state, None  # large ones update fastest in place, block by block
        bounds = []
        start = 0
        for size in sizes:
            bounds.append((start, start + size))
            start += size
        flats = np.empty((len(state[0]), total), dtype=dtype)  # a row per state key
        packed = []
        for slots, (lo, hi) in zip(state, bounds, strict=True):
            views = []
            for flat, a in zip(flats, slots, strict=True):
                view = flat[lo:hi].reshape(a.shape)
                view[...] = a
                views.append(view)
            packed.append(views)
        return packed, (flats, bounds)

    def adam_group(self, params: list[Any], grads: list[Any], state: list[list[Any]],
                   packing: Any, lr: float, beta1: float, beta2: float, eps: float,
                   weight_decay: float, decoupled: bool, bias1: float,
                   bias2_sqrt: float) -> list[Any]:
        np = self.np
        if (packing is None or not self.takes(*params, *grads)
                or not all(p.flags.writeable for p in params)):
            return super().adam_group(params, grads, state, packing, lr, beta1, beta2, eps,
                                      weight_decay, decoupled, bias1, bias2_sqrt)
        moments, bounds = packing  # rows: exp_avg, exp_avg_sq
        if grads[0].dtype != moments.dtype:  # takes(): every param and grad has one dtype
            return super().adam_group(params, grads, state, packing, lr, beta1, beta2, eps,
                                      weight_decay, decoupled, bias1, bias2_sqrt)
        # Both moments move towards their targets (g, g*g) in three calls on the stacked rows:
        # torch's lerp, m + (1 - beta1) (g - m), for both (for v torch writes
        # beta2 v + (1 - beta2) g*g: the same up to rounding).
        targets = np.empty_like(moments)  # ours: [g, g*g], then scratch
        g = targets[0]
        np.concatenate([grad.reshape(-1) for grad in grads], out=g)
        if weight_decay:
            if decoupled:
                for p in params:
                    p *= 1 - lr * weight_decay
            else:  # g + weight_decay * p, as torch adds it
                decayed = np.concatenate([p.reshape(-1) for p in params])
                decayed *= weight_decay
                g += decayed
        np.multiply(g, g, out=targets[1])
        targets -= moments
        targets *= np.array([[1 - beta1], [1 - beta2]], dtype=moments.dtype)
        moments += targets
        t = targets[0]
        np.sqrt(moments[1], out=t)
        t /= bias2_sqrt
        t += eps
        np.divide(moments[0], t, out=t)
        t *= lr / bias1
        for p, (lo, hi) in zip(params, bounds, strict=True):
            p -= t[lo:hi].reshape(p.shape)
        return params
