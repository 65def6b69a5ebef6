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

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_VERSION = 1
_META_KEY = "__xmlp__"  # a JSON string: {"format": 1, "class": "MLP", "shapes": {...}}
_NUMERIC_KINDS = "fiu"


def save(model: Module, path: str | os.PathLike[str]) -> None:
    """Write ``model``'s parameters to a ``.npz`` at exactly ``path`` (no suffix added).

    Keys are the names of :meth:`~xmlp.Module.named_parameters` ("linear1.weights", ...), each a
    host copy of the parameter in its dtype, plus ``"__xmlp__"``: a JSON string with the
    format version, the model's class name and the parameter shapes. The file is written to a
    temporary file in the same directory and renamed over ``path``, so a crash never leaves a
    half-written checkpoint there.
    """
    target = _check_args(model, path, "save")
    named = list(model.named_parameters())
    arrays: dict[str, Any] = {name: to_host(value) for name, value in named}
    meta = {
        "format": FORMAT_VERSION,
        "class": type(model).__name__,
        "shapes": {name: list(a.shape) for name, a in arrays.items()},
    }
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


def load(model: Module, path: str | os.PathLike[str]) -> Module:
    """Fill ``model``'s parameters from a file written by :func:`save`; returns ``model``.

    Each value is cast to the dtype of the parameter it replaces and made on that parameter's
    namespace and device, so a checkpoint saved from CuPy float32 loads into a NumPy float64
    model and back. Stored activations and gradients are cleared.

    Raises:
        ValueError: the file's parameter names or shapes differ from the model's (the message
            names the first mismatch), or the file is not a readable xmlp checkpoint (corrupt,
            truncated, holding object arrays: nothing is ever unpickled).
        OSError: the file cannot be opened.
    The model is left unchanged whenever an error is raised.
    """
    target = _check_args(model, path, "load")
    stored = _read(target)
    meta = _meta(stored, target)
    named = list(model.named_parameters())
    names = [name for name, _ in named]
    found = [key for key in stored if key != _META_KEY]
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
