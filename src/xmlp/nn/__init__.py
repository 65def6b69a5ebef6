"""Layers, models and losses: each with ``forward``, ``backward`` and ``predict``."""

from .activations import ReLU, Sigmoid, Softmax, Tanh
from .containers import MLP, Container, Sequential
from .linear import Linear
from .losses import CrossEntropyLoss, MSELoss
from .module import Module, math_of
from .summary import Summary, summarize

__all__ = ["MLP", "Container", "CrossEntropyLoss", "Linear", "MSELoss", "Module", "ReLU",
           "Sequential", "Sigmoid", "Softmax", "Summary", "Tanh", "math_of", "summarize"]
