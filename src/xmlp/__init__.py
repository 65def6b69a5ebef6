"""xmlp: the layers of a classic MLP exercise, written once against the Python Array API.

The same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays.
"""

from __future__ import annotations

from . import optim
from ._backend import persist_parameters
from .activations import ReLU, Sigmoid, Softmax, Tanh
from .errors import ForwardNotCalledError, NoGradientError
from .io import load, save
from .layers import Linear
from .losses import CrossEntropyLoss, MSELoss
from .metrics import accuracy
from .models import MLP, Sequential
from .module import Module
from .streaming import rechunk_for
from .training import History, fit

#: The version of this xmlp (PEP 440), as in its package metadata.
__version__ = "0.2.0"

__all__ = [
    "MLP",
    "CrossEntropyLoss",
    "ForwardNotCalledError",
    "History",
    "Linear",
    "MSELoss",
    "Module",
    "NoGradientError",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "__version__",
    "accuracy",
    "fit",
    "load",
    "optim",
    "persist_parameters",
    "rechunk_for",
    "save",
]
