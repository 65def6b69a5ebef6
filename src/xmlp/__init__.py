"""xmlp: the layers of a classic MLP exercise, written once against the Python Array API.

The same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays.
"""

from __future__ import annotations

from ._backend import persist_parameters
from .activations import ReLU, Sigmoid, Tanh
from .errors import ForwardNotCalledError, NoGradientError
from .io import load, save
from .layers import Linear
from .losses import MSELoss
from .models import MLP, Sequential
from .module import Module
from .training import fit

__version__ = "0.2.0"

__all__ = [
    "MLP",
    "ForwardNotCalledError",
    "Linear",
    "MSELoss",
    "Module",
    "NoGradientError",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "__version__",
    "fit",
    "load",
    "persist_parameters",
    "save",
]
