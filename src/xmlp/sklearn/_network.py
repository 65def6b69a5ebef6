"""The network an estimator trains: an :class:`xmlp.Sequential` of Linear layers (with
scikit-learn's L2 term in their gradients) and hidden activations, initialised as
scikit-learn's MLP initialises its own."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from ..backend import ArraySpec
from ..nn.activations import ReLU, Sigmoid, Tanh
from ..nn.containers import Sequential
from ..nn.linear import Linear
from ..nn.module import Module

__all__ = ["ACTIVATIONS", "L2Linear", "build_network", "glorot_uniform"]

# scikit-learn's hidden activation names -> xmlp layers ("identity": no layer at all)
ACTIVATIONS: dict[str, type[Module] | None] = {
    "identity": None,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
}


class L2Linear(Linear):
    """:class:`xmlp.Linear` whose weight gradient also holds scikit-learn's L2 term,
    ``alpha * W / n`` for a batch of n samples (the biases are not penalised).

    The network's first layer (``input_layer=True``) does not compute dL/dx: nothing needs
    the gradient of the data, and it is one GEMM of the five a step would otherwise take
    (scikit-learn's MLP skips it too). Its ``backward`` returns None.
    """

    chain_safe = True  # it refuses nothing Linear would not (see Linear.chain_safe)

    def __init__(self, *args: Any, alpha: float = 0.0, input_layer: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = float(alpha)
        self.input_layer = bool(input_layer)

    def backward(self, grad_output: Any) -> Any:
        """Linear's gradients plus ``alpha * W / n`` in grad_weights; None for dL/dx on the
        input layer. The estimators give 2-D batches (n, out)."""
        ops = self.spec.ops
        if self.input_layer:
            self.grad_weights = ops.sum_outer(grad_output, self.x)
            self.grad_biases = ops.sum_rows(grad_output)
            self.grad_input = None
        else:
            Linear.backward.math(self, grad_output)  # type: ignore[attr-defined]
        if self.alpha != 0.0:
            # in place on NumPy / CuPy / torch (a fresh array of this step); rebinds on JAX
            self.grad_weights += (self.alpha / self.x.shape[0]) * self.weights
        return self.grad_input


def glorot_uniform(
    rng: np.random.RandomState, layer_units: list[int], activation: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's initialisation, draw for draw: per layer, coef (fan_in, fan_out) then
    intercept (fan_out,), uniform in +-sqrt(factor / (fan_in + fan_out)) with factor 2 for
    the logistic activation and 6 otherwise (float64 draws)."""
    factor = 2.0 if activation == "logistic" else 6.0
    params = []
    for fan_in, fan_out in pairwise(layer_units):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rng.uniform(-bound, bound, (fan_in, fan_out))
        intercept = rng.uniform(-bound, bound, fan_out)
        params.append((coef, intercept))
    return params


def build_network(
    spec: ArraySpec,
    params: list[tuple[np.ndarray, np.ndarray]],
    activation: str,
    alpha: float,
) -> Sequential:
    """Sequential(L2Linear, act, ..., L2Linear) on ``spec`` from scikit-learn-layout host
    arrays (coef (in, out), intercept (out,)); the last layer gives raw outputs."""
    act = ACTIVATIONS[activation]
    layers: list[Module] = []
    for i, (coef, intercept) in enumerate(params):
        fan_in, fan_out = coef.shape
        layers.append(L2Linear(
            fan_in, fan_out, spec.from_host(np.ascontiguousarray(coef.T)),
            spec.from_host(intercept), alpha=alpha, input_layer=i == 0,
        ))
        if act is not None and i < len(params) - 1:
            layers.append(act())
    return Sequential(*layers)


def linears(model: Sequential) -> list[L2Linear]:
    """The model's Linear layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, Linear)]  # type: ignore[misc]
