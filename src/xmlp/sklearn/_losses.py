"""The estimators' output losses on raw outputs (logits or log-means), scaled like
scikit-learn's MLP so that the same learning rate takes the same steps.

scikit-learn's MLP back-propagates ``delta = output - y`` divided by the batch size for every
(output activation, loss) pair it has, so each loss here is a mean over samples of a sum over
outputs, and its gradient with respect to the raw outputs is ``(activation(z) - t) / n``:

- :class:`HalfSquaredError`: ``0.5 * sum_k (z - t)**2`` (identity output), built on
  :class:`xmlp.MSELoss`. For one output this is scikit-learn's value; for k outputs
  scikit-learn reports the mean over outputs (k times less) but steps with this gradient.
- :class:`BinaryLogLoss`: ``sum_k softplus(z) - t z`` (sigmoid outputs: binary and
  multi-label classification), computed without overflow for any finite z.
- :class:`HalfPoissonDeviance`: ``sum_k exp(z) - t z + xlogy(t, t) - t`` (log link).

Softmax classification uses :class:`xmlp.CrossEntropyLoss` as it is. :class:`L2Penalty`
adds scikit-learn's ``alpha / 2 * sum ||W||**2 / n`` to any of them; its gradient is added by
the layers (:class:`xmlp.sklearn._network.L2Linear`), since a loss only sees the outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..backend import floating_spec
from ..errors import ForwardNotCalledError
from ..nn.losses import CrossEntropyLoss, MSELoss
from ..nn.module import Module, math_of
from ..ops import ops_like

__all__ = [
    "OUTPUT_LOSSES",
    "BinaryLogLoss",
    "HalfPoissonDeviance",
    "HalfSquaredError",
    "L2Penalty",
]


def _check_pair(z: Any, t: Any, owner: str) -> None:
    """TypeError / ValueError unless ``z`` are raw outputs (n, k) and ``t`` matches them."""
    spec = floating_spec(z, owner, "z (the raw outputs)")
    spec.check(t, owner, "t (the target)", against="z (the raw outputs)")
    if z.ndim != 2 or tuple(t.shape) != tuple(z.shape):
        raise ValueError(
            f"{owner}: z and t must both have shape (n, k), got {tuple(z.shape)} and "
            f"{tuple(t.shape)}"
        )
    if z.shape[0] == 0:
        raise ValueError(f"{owner}: z and t hold no samples")


class HalfSquaredError(Module):
    """mean over samples of ``0.5 * sum_k (z - t)**2``; gradient ``(z - t) / n``.

    :class:`xmlp.MSELoss` times k / 2 (MSELoss averages over all n * k elements).
    """

    state_names = ("_scale",)

    def __init__(self) -> None:
        self.mse = MSELoss()
        self._scale: float | None = None

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield "mse", self.mse  # what it stores is cleared and undone with this loss's

    def check(self, method: str, *args: Any) -> None:
        if method == "backward":
            if self._scale is None:
                raise ForwardNotCalledError("Perform forward pass first.")
        else:
            self.mse.check(method, *args)  # MSELoss's rules, before its math below

    def forward(self, z: Any, t: Any) -> Any:  # type: ignore[override]  # a loss takes (z, t)
        loss = math_of(self.mse, "forward")(self.mse, z, t)
        self._scale = 0.5 * (z.shape[-1] if z.ndim > 1 else 1)
        return loss * self._scale

    def predict(self, z: Any, t: Any) -> Any:  # type: ignore[override]
        return (math_of(self.mse, "predict")(self.mse, z, t)
                * (0.5 * (z.shape[-1] if z.ndim > 1 else 1)))

    def backward(self) -> Any:  # type: ignore[override]
        return math_of(self.mse, "backward")(self.mse) * self._scale


class _RawOutputLoss(Module):
    """A loss on raw outputs ``z`` (n, k) and targets ``t`` of the same shape: the mean over
    samples of a sum over outputs (``_value``), with gradient ``_grad`` (already divided by
    n). Subclasses define those two on (xp, z, t)."""

    state_names = ("z", "t", "_seen")

    def __init__(self) -> None:
        self.z: Any = None
        self.t: Any = None
        self._seen: Any = None  # the namespace of the last forward's arrays

    def check(self, method: str, *args: Any) -> None:
        if method == "backward":
            if self._seen is None:
                raise ForwardNotCalledError("Perform forward pass first.")
        else:
            z, t = args
            _check_pair(z, t, f"{type(self).__name__}.{method}")

    def forward(self, z: Any, t: Any) -> Any:  # type: ignore[override]  # a loss takes (z, t)
        xp = ops_like(z).xp
        self.z, self.t, self._seen = z, t, xp
        return self._value(xp, z, t)

    def predict(self, z: Any, t: Any) -> Any:  # type: ignore[override]
        return self._value(ops_like(z).xp, z, t)

    def backward(self) -> Any:  # type: ignore[override]
        return self._grad(self._seen, self.z, self.t)

    @staticmethod
    def _value(xp: Any, z: Any, t: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _grad(xp: Any, z: Any, t: Any) -> Any:
        raise NotImplementedError


class BinaryLogLoss(_RawOutputLoss):
    """mean over samples of ``sum_k softplus(z) - t z`` (independent sigmoids; t in [0, 1]);
    gradient ``(sigmoid(z) - t) / n``.

    Both from ``e = exp(-|z|)`` in (0, 1], so nothing overflows for any finite z, and each
    term is accurate to rounding also where it is tiny (a confident, right prediction): the
    value as ``(max(z, 0) - t z) + log1p(e)`` (the large parts cancel first), the gradient as
    ``((1 - t) - t e) / (1 + e)`` for z >= 0 and ``((1 - t) e - t) / (1 + e)`` below
    (scikit-learn's form), not ``sigmoid(z) - t``, which rounds ``1 - 4e-18`` to 0.
    """

    @staticmethod
    def _value(xp: Any, z: Any, t: Any) -> Any:
        terms = (xp.maximum(z, 0.0) - t * z) + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.sum(terms) / z.shape[0]

    @staticmethod
    def _grad(xp: Any, z: Any, t: Any) -> Any:
        e = xp.exp(-xp.abs(z))
        miss = 1.0 - t
        numerator = xp.where(z >= 0.0, miss - t * e, miss * e - t)
        return numerator / ((1.0 + e) * z.shape[0])


class HalfPoissonDeviance(_RawOutputLoss):
    """mean over samples of ``sum_k exp(z) - t z + xlogy(t, t) - t`` (z = log of the predicted
    mean, t >= 0); gradient ``(exp(z) - t) / n``. scikit-learn's half Poisson deviance."""

    @staticmethod
    def _value(xp: Any, z: Any, t: Any) -> Any:
        positive = t > 0
        t_log_t = xp.where(positive, t * xp.log(xp.where(positive, t, 1.0)), 0.0)
        return xp.sum(xp.exp(z) - t * z + t_log_t - t) / z.shape[0]

    @staticmethod
    def _grad(xp: Any, z: Any, t: Any) -> Any:
        return (xp.exp(z) - t) * (1.0 / z.shape[0])


class L2Penalty(Module):
    """``loss(z, t) + alpha / 2 * sum ||W||**2 / n`` over the given layers' weights (n: the
    batch's samples), scikit-learn's penalised loss. The penalty's gradient, ``alpha W / n``,
    is added by the layers themselves; ``backward()`` is the wrapped loss's."""

    state_names = ()

    def __init__(self, loss: Any, layers: list[Any], alpha: float) -> None:
        self.loss = loss
        self.layers = layers
        self.alpha = float(alpha)

    def _penalty(self, n: int) -> Any:
        total: Any = None
        for layer in self.layers:
            squares = layer.spec.ops.sum_squares(layer.weights)
            total = squares if total is None else total + squares
        return total * (0.5 * self.alpha / n)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield "loss", self.loss  # the layers are the model's: not this loss's children

    def check(self, method: str, *args: Any) -> None:
        self.loss.check(method, *args)  # the wrapped loss's rules, before its math below

    def forward(self, z: Any, t: Any) -> Any:  # type: ignore[override]
        value = math_of(self.loss, "forward")(self.loss, z, t)
        if self.alpha == 0.0:
            return value
        return value + self._penalty(int(z.shape[0]))

    def predict(self, z: Any, t: Any) -> Any:  # type: ignore[override]
        value = math_of(self.loss, "predict")(self.loss, z, t)
        return value if self.alpha == 0.0 else value + self._penalty(int(z.shape[0]))

    def backward(self) -> Any:  # type: ignore[override]
        return math_of(self.loss, "backward")(self.loss)


# scikit-learn's output activation name (``out_activation_``) -> the loss on raw outputs
OUTPUT_LOSSES: dict[str, type[Module]] = {
    "softmax": CrossEntropyLoss,
    "logistic": BinaryLogLoss,
    "identity": HalfSquaredError,
    "exp": HalfPoissonDeviance,
}
