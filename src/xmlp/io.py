"""save() / load(): parameters in a plain ``.npz``, readable without xmlp and without pickle."""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from typing import Any

import numpy as np

from ._backend import ArraySpec, to_host
from .module import Module
from .optim import Optimizer

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_VERSION = 1
_META_KEY = "__xmlp__"  # a JSON string: {"format": 1, "class": "MLP", "shapes": {...}}
# An optimizer's state arrays are stored as "optimizer.<parameter>.<state key>", and its class,
# step count and hyperparameters as the record's "optimizer" field.
_OPT_PREFIX = "optimizer."
_NUMERIC_KINDS = "fiu"


def save(model: Module, path: str | os.PathLike[str], optimizer: Optimizer | None = None) -> None:
    """Write ``model``'s parameters (and ``optimizer``'s state) to a ``.npz`` at exactly
    ``path`` (no suffix added).

    Keys are the names of :meth:`~xmlp.Module.named_parameters` ("linear1.weights", ...), each a
    host copy of the parameter in its dtype, plus ``"__xmlp__"``: a JSON string with the
    format version, the model's class name and the array shapes. With an ``optimizer`` (an
    :mod:`xmlp.optim` optimizer built on ``model``) its state arrays are stored as
    "optimizer.<parameter>.<state key>" and its class, step count and hyperparameters in the
    record, so that :func:`load` with an optimizer resumes training exactly. The file is
    written to a temporary file in the same directory and renamed over ``path``, so a crash
    never leaves a half-written checkpoint there.
    """
    target = _check_args(model, path, "save")
    _check_optimizer(model, optimizer, "save")
    named = list(model.named_parameters())
    arrays: dict[str, Any] = {name: to_host(value) for name, value in named}
    opt_record = None
    if optimizer is not None:
        clash = [name for name in arrays if name.startswith(_OPT_PREFIX)]
        if clash:
            raise ValueError(f"save: the parameter name {clash[0]!r} collides with the "
                             f"{_OPT_PREFIX!r} keys of the optimizer state")
        state = optimizer.state_dict()
        for name, entry in state["state"].items():
            for key, value in entry.items():
                arrays[f"{_OPT_PREFIX}{name}.{key}"] = value
        opt_record = {k: state[k] for k in ("optimizer", "step_count", "hyperparameters")}
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "class": type(model).__name__,
        "shapes": {name: list(a.shape) for name, a in arrays.items()},
    }
    if opt_record is not None:
        meta["optimizer"] = opt_record
    arrays[_META_KEY] = np.array(json.dumps(meta))
    directory, base = os.path.split(os.path.abspath(target))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: np.savez appends ".npz" only to names
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(model: Module, path: str | os.PathLike[str], optimizer: Optimizer | None = None) -> Module:
    """Fill ``model``'s parameters (and ``optimizer``'s state) from a file written by
    :func:`save`; returns ``model``.

    Each value is cast to the dtype of the parameter it replaces and made on that parameter's
    namespace and device, so a checkpoint saved from CuPy float32 loads into a NumPy float64
    model and back. Stored activations and gradients are cleared. With an ``optimizer`` (built
    on ``model``, of the class that was saved) its step count, hyperparameters and state are
    restored too (:meth:`~xmlp.optim.Optimizer.load_state_dict`); without one, any optimizer
    state in the file is ignored.

    Raises:
        ValueError: the file's parameter names or shapes differ from the model's (the message
            names the first mismatch), or the file is not a readable xmlp checkpoint (corrupt,
            truncated, holding object arrays: nothing is ever unpickled).
        OSError: the file cannot be opened.
    The model (and the optimizer) are left unchanged whenever an error is raised.
    """
    target = _check_args(model, path, "load")
    _check_optimizer(model, optimizer, "load")
    stored = _read(target)
    meta = _meta(stored, target)
    named = list(model.named_parameters())
    names = [name for name, _ in named]
    found = [key for key in stored if key != _META_KEY and not (
        "optimizer" in meta and key.startswith(_OPT_PREFIX))]
    for name in names:
        if name not in stored:
            raise ValueError(
                f"load: {target!r} has no parameter {name!r} of the {type(model).__name__}; it "
                f"was saved from a {meta['class']} with {found}"
            )
    for key in found:
        if key not in names:
            raise ValueError(
                f"load: {target!r} holds {key!r}, which the {type(model).__name__} does not "
                f"have (its parameters: {names})"
            )
    values = {}
    for name, current in named:
        host = stored[name]
        if tuple(host.shape) != tuple(current.shape):
            raise ValueError(
                f"load: {name!r} has shape {tuple(host.shape)} in {target!r} but "
                f"{tuple(current.shape)} in the {type(model).__name__}"
            )
        values[name] = ArraySpec.of(current).from_host(host)
    if optimizer is not None:  # checks everything before it changes anything
        try:
            optimizer.load_state_dict(_optimizer_state(stored, meta, target))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"load: the optimizer state in {target!r} does not fit: {exc}") \
                from exc
    model._assign_parameters(values)
    model._clear_state()
    return model


def _check_args(model: Any, path: Any, caller: str) -> str:
    if not isinstance(model, Module):
        raise TypeError(
            f"{caller}: model must be an xmlp.Module (its parameters are listed by "
            f"named_parameters()), got {type(model).__name__}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{caller}: path must be a str or os.PathLike, got {type(path).__name__}")
    target = os.fspath(path)
    if not isinstance(target, str):
        raise TypeError(f"{caller}: path must name a file as text, got {target!r}")
    return target


def _check_optimizer(model: Module, optimizer: Any, caller: str) -> None:
    if optimizer is None:
        return
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{caller}: optimizer must be an xmlp.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    if optimizer.model is not model:
        raise ValueError(f"{caller}: the optimizer was built on another model; pass the "
                         f"optimizer of this {type(model).__name__}")


def _optimizer_state(stored: dict[str, np.ndarray], meta: dict[str, Any],
                     target: str) -> dict[str, Any]:
    """The state dict saved with the model, for Optimizer.load_state_dict."""
    record = meta.get("optimizer")
    if record is None:
        raise ValueError(f"load: {target!r} holds no optimizer state (it was saved without "
                         "optimizer=); load the model alone, or train on from a fresh optimizer")
    if not isinstance(record, dict):
        raise ValueError(f"load: {target!r} is not an xmlp checkpoint: its optimizer record "
                         "is not a JSON object")
    state: dict[str, dict[str, np.ndarray]] = {}
    for key, value in stored.items():
        if key.startswith(_OPT_PREFIX):
            name, _, slot = key[len(_OPT_PREFIX):].rpartition(".")
            state.setdefault(name, {})[slot] = value
    return {"optimizer": record.get("optimizer"), "step_count": record.get("step_count"),
            "hyperparameters": record.get("hyperparameters"), "state": state}


def _read(target: str) -> dict[str, np.ndarray]:
    """Every array of the file, read into memory with pickling disabled."""
    # Our own file object: np.load leaks the file it opened when the zip directory is broken.
    with open(target, "rb") as f:
        try:
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with data:
                return {key: data[key] for key in data.files}
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            hint = ""
            if "pickle" in str(exc):
                hint = " (load never unpickles: pickles and object arrays are refused)"
            raise ValueError(
                f"load: {target!r} is not a readable xmlp checkpoint: {exc}{hint}"
            ) from exc


def _meta(stored: dict[str, np.ndarray], target: str) -> dict[str, Any]:
    """The checked ``__xmlp__`` record; ValueError unless it and the arrays are consistent."""
    bad = f"load: {target!r} is not an xmlp checkpoint"
    raw = stored.get(_META_KEY)
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"{bad}: no {_META_KEY!r} record (was it written by xmlp.save?)")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{bad}: its {_META_KEY!r} record is not JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("shapes"), dict):
        raise ValueError(f"{bad}: its {_META_KEY!r} record has no parameter shapes")
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"load: {target!r} has format version {meta.get('format')!r}; this xmlp reads "
            f"version {FORMAT_VERSION}"
        )
    meta.setdefault("class", "unknown model")
    shapes = meta["shapes"]
    arrays = {key: a for key, a in stored.items() if key != _META_KEY}
    if set(shapes) != set(arrays):
        raise ValueError(f"{bad}: its record lists {sorted(shapes)} but it holds {sorted(arrays)}")
    for key, a in arrays.items():
        if a.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{bad}: {key!r} has dtype {a.dtype}, not a real number type")
        if list(a.shape) != shapes[key]:
            raise ValueError(
                f"{bad}: {key!r} has shape {a.shape} but its record says {tuple(shapes[key])}"
            )
    return meta
