"""The portable operations: each op of a training step written once against the Python Array
API standard, correct on every backend. They are the reference: every NumPy fast path
(:mod:`xmlp.ops.numpy_fast`) is tested to equal them."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

__all__ = ["PortableOps", "writeable"]


class PortableOps:
    """Each op written once against the Array API standard; correct on every backend.

    Args:
        xp: the array namespace the ops compute with (``array_api_compat.array_namespace``
            of the arrays).

    Example:
        >>> import numpy as np
        >>> from array_api_compat import array_namespace
        >>> from xmlp.ops import PortableOps
        >>> x = np.array([[1.0, 2.0]])
        >>> ops = PortableOps(array_namespace(x))
        >>> print(ops.affine(x, np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([0.5, 0.0])))
        [[3.5 2. ]]
    """

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

    def relu(self, x: Any) -> Any:
        """max(x, 0) elementwise; NaN stays NaN."""
        return self.xp.maximum(x, 0.0)

    def relu_grad(self, grad_output: Any, x: Any) -> Any:
        """grad_output where x > 0, times 0 elsewhere (so a NaN or infinite gradient there
        gives NaN, and a negative one -0.0): the product with the mask as floats."""
        xp = self.xp
        return grad_output * xp.astype(x > 0, grad_output.dtype)

    def sum_outer(self, g2: Any, x2: Any) -> Any:
        """(N, out), (N, in) -> (out, in): g2.T @ x2, the weights' gradient, written as the
        contraction over the rows it is: no transposed operand, so ``jax.jit`` emits one dot,
        the program ``jax.grad`` makes, where a transpose first became a copy."""
        return self.xp.tensordot(g2, x2, axes=((0,), (0,)))

    def sum_squares(self, a: Any) -> Any:
        """sum(a**2) over all elements, a 0-d value (an L2 penalty's ||W||**2)."""
        flat = self.xp.reshape(a, (-1,))
        return self.xp.vecdot(flat, flat)

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
            if writeable(param):
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
        """(mean over rows of -sum(t * log_softmax(z)), softmax(z)) for targets t2 (N, C).
        A class of probability 0 adds nothing, also where its logit is -inf (0 * -inf would
        be NaN)."""
        xp = self.xp
        s, e, total = self.log_softmax_parts(z2)
        log_p = s - xp.log(total)
        rows = xp.sum(t2 * xp.where(t2 != 0, log_p, xp.zeros_like(log_p)), axis=-1)
        return -xp.mean(rows), e / total

    def cross_entropy_index(self, z2: Any, labels: Any, valid: Any) -> tuple[Any, Any]:
        """(mean over rows of -log_softmax(z)[label], softmax(z)) for class indices (N,) of the
        namespace's indexing dtype. The label's column is selected, not multiplied by a
        one-hot (0 * -inf is NaN: a masked class's logit of -inf must not spoil the row).
        ``valid`` (N,) bool or None: rows where it is False give a NaN loss (labels outside
        [0, C) on backends where checking them would cost a sync)."""
        xp = self.xp
        s, e, total = self.log_softmax_parts(z2)
        picked = xp.sum(xp.where(self.is_label(labels, z2.shape[-1]), s, xp.zeros_like(s)),
                        axis=-1)
        rows = xp.log(total[:, 0]) - picked
        if valid is not None:
            rows = xp.where(valid, rows, xp.full_like(rows, math.nan))
        return xp.mean(rows), e / total

    def labels_in_range(self, labels: Any, n_classes: int) -> bool:
        """Whether every class index is in [0, n_classes): reads the data, so only for arrays
        whose host reads cost no sync (see _backend.reads_are_free)."""
        xp = self.xp
        return int(xp.min(labels)) >= 0 and int(xp.max(labels)) < n_classes

    def is_label(self, labels: Any, n_classes: int) -> Any:
        """(N,) class indices -> (N, C) bool: True at the label."""
        xp = self.xp
        classes = xp.arange(n_classes, dtype=labels.dtype, device=array_api_compat.device(labels))
        return xp.reshape(labels, (-1, 1)) == classes

    def one_hot(self, labels: Any, n_classes: int, dtype: Any) -> Any:
        """(N,) class indices -> (N, C) of ``dtype``: 1 at the label, 0 elsewhere."""
        return self.xp.astype(self.is_label(labels, n_classes), dtype)

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
        if not writeable(param):
            return param - lr * step, buf
        param -= lr * step
        return param, buf

    def adam(self, param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, lr: float,
             beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool,
             bias1: float, bias2_sqrt: float) -> tuple[Any, Any, Any]:
        """torch.optim.Adam (``decoupled``: AdamW) on one parameter. ``bias1`` = 1 - beta1**t,
        ``bias2_sqrt`` = sqrt(1 - beta2**t) for step t."""
        xp = self.xp
        if not writeable(param):  # e.g. loaded with mmap: rebound to a new array, not written
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


def writeable(a: Any) -> bool:
    """False only for an array that says it is read-only (NumPy's writeable flag)."""
    return bool(getattr(getattr(a, "flags", None), "writeable", True))

