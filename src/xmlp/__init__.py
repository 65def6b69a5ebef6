"""xmlp: the layers of a classic MLP exercise, written once against the Python Array API.

The same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays.
"""

from __future__ import annotations

from . import optim
from .backend import persist_parameters
from .errors import ForwardNotCalledError, NoGradientError
from .gradcheck import GradcheckError, gradcheck
from .io.checkpoint import load, save
from .metrics import accuracy
from .nn.activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .nn.containers import MLP, Sequential
from .nn.dropout import Dropout
from .nn.linear import Linear
from .nn.losses import CrossEntropyLoss, MSELoss
from .nn.module import Module
from .nn.normalization import BatchNorm1d, LayerNorm
from .training.batches import rechunk_for
from .training.callbacks import Callback, EarlyStopping
from .training.clip import clip_grad_norm
from .training.loop import History, fit
from .training.step import TrainStep

#: The version of this xmlp (PEP 440), as in its package metadata.
__version__ = "0.2.0"

__all__ = [
    "ELU",
    "GELU",
    "MLP",
    "BatchNorm1d",
    "Callback",
    "CrossEntropyLoss",
    "Dropout",
    "EarlyStopping",
    "ForwardNotCalledError",
    "GradcheckError",
    "History",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Module",
    "NoGradientError",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "TrainStep",
    "__version__",
    "accuracy",
    "clip_grad_norm",
    "fit",
    "gradcheck",
    "load",
    "optim",
    "persist_parameters",
    "rechunk_for",
    "save",
]
