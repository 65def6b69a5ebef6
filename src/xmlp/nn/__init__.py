"""Layers, models and losses: each with ``forward``, ``backward`` and ``predict``."""

from .activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .containers import MLP, Container, Sequential
from .dropout import Dropout
from .linear import Linear
from .losses import CrossEntropyLoss, MSELoss
from .module import Module, math_of
from .normalization import BatchNorm1d, LayerNorm
from .summary import Summary, summarize

__all__ = ["ELU", "GELU", "MLP", "BatchNorm1d", "Container", "CrossEntropyLoss", "Dropout",
           "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "Module", "ReLU", "Sequential", "SiLU",
           "Sigmoid", "Softmax", "Softplus", "Summary", "Tanh", "math_of", "summarize"]
