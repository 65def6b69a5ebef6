"""The example messages of docs/errors.md's table, word for word (NumPy float64 parameters, as
in the table), so that a message that loses its owner, one side of a mismatch or its fix
is caught."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.helpers import (
    Duck,
    message,
)


def linear34() -> xmlp.Linear:
    return xmlp.Linear(3, 4, rng=0)


def trained_mlp() -> xmlp.MLP:
    model = xmlp.MLP(3, 6, 2, rng=0)
    model.backward(model.forward(np.ones((5, 3))))
    return model


# (id, error type, call, the whole message)
TABLE: list[tuple[str, type[BaseException], Callable[[], Any], str]] = [
    ("feature count", ValueError, lambda: linear34().forward(np.ones((5, 2))),
     "Linear(3, 4).forward: x must have shape (..., 3) (input_dim features), got (5, 2)"),
    ("0-d to Linear", ValueError, lambda: linear34().predict(np.float64(1.0)),
     "Linear(3, 4).predict: x must have shape (..., 3) (input_dim features), got ()"),
    ("0-d to activation", ValueError, lambda: xmlp.Tanh().forward(np.array(1.0)),
     "Tanh.forward: x must have shape (...) with ndim >= 1, got shape () (a 0-d array); "
     "reshape it, e.g. to (1,)."),
    ("integer array", TypeError, lambda: linear34().forward(np.ones((5, 3), dtype=np.int64)),
     "Linear(3, 4).forward: x has dtype int64; xmlp layers take real floating arrays. Convert "
     "with numpy.astype(x, numpy.float64)."),
    ("other float", TypeError, lambda: linear34().forward(np.ones((5, 3), dtype=np.float32)),
     "Linear(3, 4).forward: x has dtype float32 but the parameters are float64. Convert the "
     "input with numpy.astype(x, numpy.float64) or the model with .to(dtype=numpy.float32)."),
    ("other namespace", TypeError, lambda: linear34().forward(strict.ones((5, 3))),
     "Linear(3, 4).forward: x is an array_api_strict array but the parameters are numpy "
     "arrays. Convert the input (numpy.asarray(...), or cupy.asarray / .get() between NumPy and "
     "CuPy), or move the model with .to(array_api_strict)."),
    ("numpy into strict", TypeError,
     lambda: xmlp.Linear(3, 4, xp=strict, rng=0).forward(np.ones((5, 3))),
     "Linear(3, 4).forward: x is a numpy array but the parameters are array_api_strict "
     "arrays. Convert the input (array_api_strict.asarray(...), or cupy.asarray / .get() "
     "between NumPy and CuPy), or move the model with .to(numpy)."),
    ("other device", TypeError,
     lambda: xmlp.Linear(3, 2, xp=strict, rng=0).forward(
         strict.ones((5, 3), device=strict.Device("device1"))),
     "Linear(3, 2).forward: x is on device array_api_strict.Device('device1') but the "
     "parameters are on array_api_strict.Device('CPU_DEVICE'). Move the input with "
     "array_api_compat.to_device(x, array_api_strict.Device('CPU_DEVICE')) or the model with "
     ".to(array_api_strict, device=array_api_strict.Device('device1')); xmlp never transfers "
     "silently."),
    ("list", TypeError, lambda: linear34().forward([[1.0, 2.0, 3.0]]),
     "Linear(3, 4).forward: x must be a numpy array, got list. Convert it with "
     "numpy.asarray(...)."),
    ("grad_output shape", ValueError,
     lambda: (lambda m: (m.forward(np.ones((5, 3))), m.backward(np.ones((5, 3)))))(linear34()),
     "Linear(3, 4).backward: grad_output must have the output's shape (5, 4), got (5, 3)"),
    ("activation grad dtype", TypeError,
     lambda: (lambda a: (a.forward(np.ones((5, 4))),
                         a.backward(np.ones((5, 4), dtype=np.float32))))(xmlp.Tanh()),
     "Tanh.backward: grad_output has dtype float32 but the forward input is float64. Convert "
     "the input with numpy.astype(x, numpy.float64) (or convert the forward input to "
     "float32)."),
    ("target shape", ValueError, lambda: xmlp.MSELoss().forward(np.ones((5, 1)), np.ones(5)),
     "MSELoss.forward: y and t must have the same shape, got (5, 1) and (5,) (an (N, 1) "
     "against (N,) would broadcast to (N, N)); reshape the target to the prediction's shape."),
    ("target namespace", TypeError,
     lambda: xmlp.MSELoss().forward(strict.ones((5, 1)), np.ones((5, 1))),
     "MSELoss.forward: t (the target) is a numpy array but y (the prediction) is an "
     "array_api_strict array. Convert the input (array_api_strict.asarray(...), or "
     "cupy.asarray / .get() between NumPy and CuPy), so that it matches y (the prediction)."),
    ("empty", ValueError, lambda: xmlp.MSELoss().forward(np.ones((0, 1)), np.ones((0, 1))),
     "MSELoss.forward: y and t are empty (shape (0, 1))"),
    ("no gradient", xmlp.NoGradientError, lambda: xmlp.MLP(3, 6, 2, rng=0).update_params(0.1),
     "MLP.update_params: no gradient for 'linear1.weights'; call backward() after forward() "
     "first."),
    ("gradient shape", ValueError,
     lambda: (lambda m: (setattr(m.linear2, "grad_weights", np.ones((3, 2))),
                         m.update_params(0.1)))(trained_mlp()),
     "MLP.update_params: the gradient for 'linear2.weights' must have the parameter's shape "
     "(2, 6), got (3, 2)"),
    ("gradient dtype", TypeError,
     lambda: (lambda m: (setattr(m.linear2, "grad_biases", np.ones(2, dtype=np.float32)),
                         m.update_params(0.1)))(trained_mlp()),
     "MLP.update_params: the gradient for 'linear2.biases' has dtype float32 but the "
     "parameters are float64. Convert the input with numpy.astype(x, numpy.float64) or the "
     "model with .to(dtype=numpy.float32)."),
    ("learning rate type", TypeError, lambda: linear34().update_params("0.1"),
     "learning_rate must be a real number (a Python or NumPy scalar), got str: '0.1'"),
    ("learning rate value", ValueError, lambda: linear34().update_params(float("nan")),
     "learning_rate must be finite and >= 0, got nan"),
    ("initial shape", ValueError, lambda: xmlp.Linear(3, 4, np.ones((3, 4))),
     "Linear(3, 4): initial_weights must have shape (4, 3), got (3, 4)"),
    ("dim type", TypeError, lambda: xmlp.Linear("3", 4),
     "Linear: input_dim must be a positive int, got str: '3'"),
    ("dim value", ValueError, lambda: xmlp.Linear(0, 4),
     "Linear: input_dim must be a positive int, got 0"),
    ("dtype", TypeError, lambda: xmlp.Linear(3, 4, dtype="int64"),
     "dtype='int64' is not a real floating dtype; use float32 or float64 (e.g. "
     "dtype=numpy.float32)."),
    ("not a module", TypeError, lambda: xmlp.Sequential(xmlp.Linear(2, 2), Duck()),
     "Sequential: layer 1 (Duck) is not an xmlp.Module; subclass xmlp.Module and define "
     "forward/backward/predict."),
    ("dims disagree", ValueError,
     lambda: xmlp.Sequential(xmlp.Linear(3, 4), xmlp.Tanh(), xmlp.Linear(5, 1)),
     "Sequential: layer 0 gives 4 features but layer 2 takes 5"),
    ("fit samples", ValueError,
     lambda: xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), np.ones((100, 1)), np.ones((5, 1)), epochs=1,
                      lr=0.1),
     "fit: x has 100 samples but y has 5"),
]


@pytest.mark.parametrize(("exc_type", "call", "expected"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_message(exc_type, call, expected):
    assert message(exc_type, call) == expected
