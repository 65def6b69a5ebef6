"""``xmlp demo``: the seed notebook's training cell as a command, on any backend, with a plot.

Trains ``MLP(1, hidden, 1)`` on :func:`xmlp.data.generate_data` (y = 2 x**2 + 3 + noise) with
full-batch SGD, prints ``final loss: <value>`` and writes a PNG with the data points, the fitted
curve and the loss curve. Backends are imported only when asked for, matplotlib only to plot.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import Any

import numpy as np

from ._backend import ArraySpec, to_host
from .cli import CommandError
from .data import generate_data
from .models import MLP
from .training import fit

__all__ = ["BACKENDS", "DEFAULT_SEED", "add_arguments", "check_output_file", "import_backend",
           "make_figure", "run"]

BACKENDS = ("numpy", "cupy", "torch", "jax", "dask", "array_api_strict")
# With the defaults, seeds 0..19 all end between 0.044 and 0.083 (float64 and float32); 0: 0.0763.
DEFAULT_SEED = 0
_EXTRAS = {"cupy": "cupy", "torch": "torch", "jax": "jax", "dask": "dask",
           "array_api_strict": "strict"}


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= sys.maxsize:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer up to {sys.maxsize}, got {text:.40}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text:.40}")
    return value


def _learning_rate(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options, on ``parser``."""
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="array library to train with (default: numpy)")
    parser.add_argument("--device", default=None,
                        help="device of that library: cpu, cuda:0, gpu... (default: its default)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                        help="parameter and data dtype (default: float64)")
    parser.add_argument("--epochs", type=_positive_int, default=150,
                        help="full-batch SGD steps (default: 150)")
    parser.add_argument("--lr", type=_learning_rate, default=0.1,
                        help="learning rate (default: 0.1)")
    parser.add_argument("--hidden", type=_positive_int, default=10,
                        help="hidden units (default: 10)")
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED,
                        help=f"seed of the weight init (default: {DEFAULT_SEED})")
    parser.add_argument("--out", default="demo.png",
                        help="PNG to write (default: demo.png)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: only when stderr is a terminal)")


def import_backend(name: str, dtype: str = "float64") -> Any:
    """The array module users would pass as ``xp=`` for backend ``name``, imported now.

    For JAX with float64 this turns on ``jax_enable_x64`` (JAX hands out float32 otherwise).
    """
    if name not in BACKENDS:
        raise CommandError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    try:
        if name == "jax":
            jax = importlib.import_module("jax")
            if dtype == "float64":
                jax.config.update("jax_enable_x64", True)
            return importlib.import_module("jax.numpy")
        if name == "dask":
            return importlib.import_module("dask.array")
        return importlib.import_module(name)
    except ImportError as exc:
        extra = _EXTRAS.get(name)
        hint = f'pip install "xmlp[{extra}]"' if extra else "install it"
        raise CommandError(f"backend {name} is not available ({exc}); {hint}") from exc


def parse_device(name: str, module: Any, text: str | None) -> Any:
    """A device object of backend ``name`` from its command-line spelling (None: the default)."""
    if text is None:
        return None
    try:
        if name == "torch":
            return module.device(text)
        if name == "cupy":
            index = text.lower().removeprefix("cuda:").removeprefix("gpu:")
            return module.cuda.Device(int(index))
        if name == "jax":
            platform, _, index = text.partition(":")
            jax = importlib.import_module("jax")
            return jax.devices(platform)[int(index or 0)]
        if name == "array_api_strict":
            wanted = "CPU_DEVICE" if text.lower() == "cpu" else text
            for dev in module.__array_namespace_info__().devices():
                if str(dev) == wanted or repr(dev).endswith(f"('{wanted}')"):
                    return dev
            raise ValueError("no such device")
        if text.lower() == "cpu":  # numpy, dask: the one device, which is the default
            return None
        raise ValueError(f"{name} arrays live on the cpu only")
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise CommandError(f"--device {text!r} is not a device of {name}: {exc}") from exc


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CommandError(
            f'the demo plot needs matplotlib ({exc}); install it with: pip install "xmlp[plot]"'
        ) from exc
    return Figure, FigureCanvasAgg


def check_output_file(path: str) -> None:
    """CommandError unless ``path`` can be written as a file: checked before any long work,
    so a bad ``--out`` fails at once rather than after training or measuring."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"cannot write {path!r}: it is a directory")
    if not os.path.isdir(folder):
        raise CommandError(f"cannot write {path!r}: no directory {folder!r}")
    if not os.access(folder, os.W_OK | os.X_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CommandError(f"cannot write {path!r}: permission denied")


def make_figure(x: np.ndarray, y: np.ndarray, grid: np.ndarray, fitted: np.ndarray,
                history: list[float], title: str) -> Any:
    """A matplotlib Figure (Agg canvas, no pyplot state): data and fit left, loss curve right.

    x, y: the data (N, 1); grid, fitted: the model's curve (M, 1); history: loss per epoch.
    """
    figure_cls, canvas_cls = _matplotlib()
    fig = figure_cls(figsize=(10, 4), layout="constrained")
    canvas_cls(fig)
    ax_fit, ax_loss = fig.subplots(1, 2)
    ax_fit.plot(x[:, 0], y[:, 0], "b.", label="data points")
    ax_fit.plot(grid[:, 0], fitted[:, 0], "r-", label="fitted curve")
    ax_fit.set(xlabel="input", ylabel="output", title=title)
    ax_fit.grid(True)
    ax_fit.legend()
    epochs = np.arange(1, len(history) + 1)
    ax_loss.plot(epochs, history, "k-", label="training loss")
    ax_loss.set(xlabel="epoch", ylabel="MSE loss", yscale="log",
                title=f"final loss {history[-1]:.4g}")
    ax_loss.grid(True, which="both", alpha=0.4)
    ax_loss.legend()
    return fig


def run(args: argparse.Namespace) -> int:
    """Train, print ``final loss: <value>``, write the PNG; 0 on success."""
    _matplotlib()  # fail before training, not after
    check_output_file(args.out)
    module = import_backend(args.backend, args.dtype)
    device = parse_device(args.backend, module, args.device)
    try:
        spec = ArraySpec.resolve(module, device, args.dtype)
    except TypeError as exc:
        raise CommandError(str(exc)) from exc
    x_host, y_host = generate_data()
    try:
        model = MLP(1, args.hidden, 1, xp=spec.xp, device=spec.device, dtype=spec.dtype,
                    rng=args.seed)
    except (ValueError, MemoryError) as exc:  # --hidden too large for this machine
        raise CommandError(f"cannot build MLP(1, {args.hidden}, 1): {exc}") from exc
    x, y = spec.from_host(x_host), spec.from_host(y_host)
    try:
        history = fit(model, x, y, epochs=args.epochs, lr=args.lr, progress=args.progress)
    except FloatingPointError as exc:
        print(f"xmlp demo: {exc}", file=sys.stderr)
        return 1
    grid = np.linspace(-1.0, 1.0, 201)[:, None]
    fitted = to_host(model.predict(spec.from_host(grid)))
    title = f"MLP(1, {args.hidden}, 1), {args.backend} {args.dtype}, {args.epochs} epochs"
    fig = make_figure(x_host, y_host, grid, fitted, history, title)
    try:
        fig.savefig(args.out, format="png", dpi=100)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out!r}: {exc}") from exc
    print(f"final loss: {history[-1]:.6g}")
    print(f"plot written to {args.out}")
    return 0
