"""xmlp: the layers of a classic MLP exercise, written once against the Python Array API.

The same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays.
"""

from __future__ import annotations

from . import optim
from .backend import persist_parameters
from .errors import ForwardNotCalledError, NoGradientError
from .io.checkpoint import load, save
from .metrics import accuracy
from .nn.activations import ReLU, Sigmoid, Softmax, Tanh
from .nn.containers import MLP, Sequential
from .nn.linear import Linear
from .nn.losses import CrossEntropyLoss, MSELoss
from .nn.module import Module
from .training.batches import rechunk_for
from .training.callbacks import Callback, EarlyStopping
from .training.clip import clip_grad_norm
from .training.loop import History, fit
from .training.step import TrainStep

#: The version of this xmlp (PEP 440), as in its package metadata.
__version__ = "0.2.0"

__all__ = [
    "MLP",
    "Callback",
    "CrossEntropyLoss",
    "EarlyStopping",
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
    "TrainStep",
    "__version__",
    "accuracy",
    "clip_grad_norm",
    "fit",
    "load",
    "optim",
    "persist_parameters",
    "rechunk_for",
    "save",
]
