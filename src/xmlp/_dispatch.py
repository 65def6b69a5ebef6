"""The hot operations of a training step: one portable Array API version of each, and the
backend-specific fast paths, which live here and nowhere else.

Layers call ``spec.ops.<op>(...)`` where ``spec.ops = ops_for(xp)`` was resolved once when the
layer was built. :class:`PortableOps` is the reference; every fast path is tested to equal it
(tests/test_dispatch.py). Fast paths may write only into arrays they have just allocated and
not yet handed out: never into an array the API exposes or has returned.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import array_api_compat

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
            if _writeable(param):
                raise
            return param - lr * grad
        return param

    # -- classification ----------------------------------------------------------------------
    # logits z2 are (N, C); the loss is the mean over the N rows of -sum(target * log_softmax).
    def take_rows(self, a: Any, index: Any) -> Any:
        """Rows ``index`` (a 1-D integer array) of ``a``, a new array: a shuffled batch."""
        return self.xp.take(a, index, axis=0)

    def log_softmax_parts(self, z2: Any) -> tuple[Any, Any, Any]:
        """(s = z - max(z), exp(s), sum(exp(s))) along the last axis: the stable log-sum-exp
        (logits of +-1e4 give finite values), keepdims."""
        xp = self.xp
        s = z2 - xp.max(z2, axis=-1, keepdims=True)
        e = xp.exp(s)
        return s, e, xp.sum(e, axis=-1, keepdims=True)

    def cross_entropy_probs(self, z2: Any, t2: Any) -> tuple[Any, Any]:
        """(mean over rows of -sum(t * log_softmax(z)), softmax(z)) for targets t2 (N, C)."""
        xp = self.xp
        s, e, total = self.log_softmax_parts(z2)
        rows = xp.sum(t2 * (s - xp.log(total)), axis=-1)
        return -xp.mean(rows), e / total

    def cross_entropy_index(self, z2: Any, labels: Any, valid: Any) -> tuple[Any, Any]:
        """(mean over rows of -log_softmax(z)[label], softmax(z)) for class indices (N,) of the
        namespace's indexing dtype. ``valid`` (N,) bool or None: rows where it is False give a
        NaN loss (labels outside [0, C) on backends where checking them would cost a sync)."""
        xp = self.xp
        s, e, total = self.log_softmax_parts(z2)
        picked = xp.sum(self.one_hot(labels, z2.shape[-1], z2.dtype) * s, axis=-1)
        rows = xp.log(total[:, 0]) - picked
        if valid is not None:
            rows = xp.where(valid, rows, xp.full_like(rows, math.nan))
        return xp.mean(rows), e / total

    def labels_in_range(self, labels: Any, n_classes: int) -> bool:
        """Whether every class index is in [0, n_classes): reads the data, so only for arrays
        whose host reads cost no sync (see _backend.reads_are_free)."""
        xp = self.xp
        return int(xp.min(labels)) >= 0 and int(xp.max(labels)) < n_classes

    def one_hot(self, labels: Any, n_classes: int, dtype: Any) -> Any:
        """(N,) class indices -> (N, C) of ``dtype``: 1 at the label, 0 elsewhere."""
        xp = self.xp
        classes = xp.arange(n_classes, dtype=labels.dtype, device=array_api_compat.device(labels))
        return xp.astype(xp.reshape(labels, (-1, 1)) == classes, dtype)

    def cross_entropy_grad_probs(self, probs: Any, t2: Any, n: int) -> Any:
        """(softmax * sum(t) - t) / N: the exact gradient, also for targets not summing to 1."""
        xp = self.xp
        return (probs * xp.sum(t2, axis=-1, keepdims=True) - t2) / n

    def cross_entropy_grad_index(self, probs: Any, labels: Any, valid: Any, n: int) -> Any:
        """(softmax - one_hot(labels)) / N; rows with an invalid label are NaN."""
        xp = self.xp
        grad = (probs - self.one_hot(labels, probs.shape[-1], probs.dtype)) / n
        if valid is not None:
            grad = xp.where(xp.reshape(valid, (-1, 1)), grad, xp.full_like(grad, math.nan))
        return grad

    # -- optimizers: torch.optim's update formulas -----------------------------------------
    # Each returns the arrays it was given, updated: in place where the array type allows it,
    # new arrays on JAX and Dask. The caller rebinds parameters and state to the results.
    def sgd_momentum(self, param: Any, grad: Any, buf: Any, lr: float, momentum: float,
                     nesterov: bool, weight_decay: float) -> tuple[Any, Any]:
        """torch.optim.SGD with dampening 0 on one parameter; ``buf`` starts at zeros (the
        first step then makes it the gradient, as torch's clone does)."""
        if weight_decay:
            grad = grad + weight_decay * param
        buf *= momentum
        buf += grad
        step = grad + momentum * buf if nesterov else buf
        if not _writeable(param):
            return param - lr * step, buf
        param -= lr * step
        return param, buf

    def adam(self, param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, lr: float,
             beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool,
             bias1: float, bias2_sqrt: float) -> tuple[Any, Any, Any]:
        """torch.optim.Adam (``decoupled``: AdamW) on one parameter. ``bias1`` = 1 - beta1**t,
        ``bias2_sqrt`` = sqrt(1 - beta2**t) for step t."""
        xp = self.xp
        if not _writeable(param):  # e.g. loaded with mmap: rebound to a new array, not written
            param = xp.asarray(param, copy=True)
        if weight_decay:
            if decoupled:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's lerp, weight < 0.5
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        denom = xp.sqrt(exp_avg_sq) / bias2_sqrt + eps
        param -= (lr / bias1) * (exp_avg / denom)
        return param, exp_avg, exp_avg_sq

    # An optimizer's state for all its parameters at once: the portable version keeps one array
    # per parameter and state key, and updates parameter after parameter.
    def pack_state(self, state: list[list[Any]]) -> tuple[list[list[Any]], Any]:
        """(state, packing): the state arrays (per parameter, per key) in the layout these ops
        update fastest, and what they need to know about it (None: as given)."""
        return state, None

    def adam_group(self, params: list[Any], grads: list[Any], state: list[list[Any]],
                   packing: Any, lr: float, beta1: float, beta2: float, eps: float,
                   weight_decay: float, decoupled: bool, bias1: float,
                   bias2_sqrt: float) -> list[Any]:
        """:meth:`adam` on every parameter; returns the parameters and rebinds the entries of
        ``state`` (per parameter: [exp_avg, exp_avg_sq]) to the updated arrays."""
        out = []
        for param, grad, slots in zip(params, grads, state, strict=True):
            param, slots[0], slots[1] = self.adam(param, grad, slots[0], slots[1], lr, beta1,
                                                  beta2, eps, weight_decay, decoupled, bias1,
                                                  bias2_sqrt)
            out.append(param)
        return out


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

    def take_rows(self, a: Any, index: Any) -> Any:
        # np.take copies a whole non-contiguous array before gathering (x as columns of a
        # stored block: 100x slower per batch); fancy indexing gathers the rows directly
        return self.np.take(a, index, axis=0) if a.flags.c_contiguous else a[index]

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

    # -- classification: no one-hot, the label's column picked by index -------------------
    def cross_entropy_index(self, z2: Any, labels: Any, valid: Any) -> tuple[Any, Any]:
        np = self.np
        if valid is not None or not self.takes(z2) or type(labels) is not np.ndarray:
            return super().cross_entropy_index(z2, labels, valid)
        s = np.subtract(z2, z2.max(axis=-1, keepdims=True))
        e = np.exp(s)
        total = np.add.reduce(e, axis=-1, keepdims=True)
        rows = np.arange(z2.shape[0])
        # mean(log(total) - s[label]) as one sum each; same type as np.mean gives
        loss = (np.add.reduce(np.log(total[:, 0])) - np.add.reduce(s[rows, labels])) / rows.size
        e /= total  # e is ours: becomes the softmax in place
        return loss, e

    def labels_in_range(self, labels: Any, n_classes: int) -> bool:
        np = self.np  # the ufuncs' own reductions: no wrapper on a per-step check
        if type(labels) is not np.ndarray:
            return super().labels_in_range(labels, n_classes)
        return bool(np.minimum.reduce(labels) >= 0 and np.maximum.reduce(labels) < n_classes)

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
    # version is slower below _LARGE elements).
    def _update_blocks(self, block: Callable[..., None], *arrays: Any) -> bool:
        """Run ``block`` over flat blocks of equal-shape, same-dtype, C-contiguous large
        arrays; False (nothing done) when they are not all like that."""
        first = arrays[0]
        if first.size < _LARGE or not self.takes(*arrays) or not first.flags.writeable:
            return False
        for a in arrays:
            if a.dtype != first.dtype or a.shape != first.shape or not a.flags.c_contiguous:
                return False
        flat = [a.reshape(-1) for a in arrays]
        for i in range(0, first.size, _BLOCK):
            block(*(f[i:i + _BLOCK] for f in flat))
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
    # is about 13 NumPy calls per parameter). Packed, each state key of all parameters is one
    # flat array (the per-parameter arrays are views into it), and Adam runs its 12 calls once
    # on all parameters, plus one to gather the gradients and one per parameter to apply.
    def pack_state(self, state: list[list[Any]]) -> tuple[list[list[Any]], Any]:
        np = self.np
        arrays = [a for slots in state for a in slots]
        if not arrays or not self.takes(*arrays):
            return state, None
        dtype = arrays[0].dtype
        sizes = [slots[0].size for slots in state]
        total = sum(sizes)
        if total >= _LARGE or any(a.dtype != dtype for a in arrays):
            return state, None  # large ones update fastest in place, block by block
        bounds = []
        start = 0
        for size in sizes:
            bounds.append((start, start + size))
            start += size
        flats = [np.empty(total, dtype=dtype) for _ in state[0]]
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
        (m, v), bounds = packing
        g = np.concatenate([grad.reshape(-1) for grad in grads])  # ours: written below
        if g.dtype != m.dtype:
            return super().adam_group(params, grads, state, packing, lr, beta1, beta2, eps,
                                      weight_decay, decoupled, bias1, bias2_sqrt)
        if weight_decay:
            if decoupled:
                for p in params:
                    p *= 1 - lr * weight_decay
            else:  # g + weight_decay * p, as torch adds it (addition commutes exactly)
                decayed = np.concatenate([p.reshape(-1) for p in params])
                decayed *= weight_decay
                decayed += g
                g = decayed
        t = np.subtract(g, m)
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
        t *= lr / bias1
        for p, (lo, hi) in zip(params, bounds, strict=True):
            p -= t[lo:hi].reshape(p.shape)
        return params


def _writeable(a: Any) -> bool:
    """False only for an array that says it is read-only (NumPy's writeable flag)."""
    return bool(getattr(getattr(a, "flags", None), "writeable", True))


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
