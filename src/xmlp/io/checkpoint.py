"""save() / load(): parameters in a plain ``.npz``, readable without xmlp and without pickle.

Reading is in two stages, so that a hostile file costs little: :class:`Checkpoint` validates the
zip directory, every member's ``.npy`` header and the JSON record *before* any array data is read
(names, member kinds, compression, header sizes, declared shape x itemsize against the member's
real size, dtypes), and then :meth:`Checkpoint.read` reads only the arrays asked for. Every
problem with the file's content is a ``ValueError``; only the file system raises ``OSError``.
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import re
import secrets
import stat
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ..backend import ArraySpec, to_host
from ..nn.module import Module
from ..optim import Optimizer
from ..schedules import LRScheduler

__all__ = ["FORMAT_VERSION", "RECORD_KEY", "Checkpoint", "Member", "load", "open_checkpoint",
           "save", "write_checkpoint"]

FORMAT_VERSION = 1
RECORD_KEY = "__xmlp__"  # a JSON string: {"format": 1, "class": "MLP", "shapes": {...}}
# An optimizer's state arrays are stored as "optimizer.<parameter>.<state key>", and its class,
# step count and hyperparameters as the record's "optimizer" field; a learning-rate schedule's
# state (plain numbers) as the record's "scheduler" field.
_OPT_PREFIX = "optimizer."
_NUMERIC_KINDS = "fiu"
_MAX_HEADER = 10_000  # bytes of an .npy header dict; numpy.load's own limit
_MAX_RECORD = 1 << 22  # characters of the JSON record: 4 Mi, far above any real model's
# levels of JSON arrays and objects in the record (xmlp writes 4): parsing deeper ones recurses
# near Python's limit, where whatever the garbage collector finalizes then fails
_MAX_NESTING = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NPY_MAGIC = b"\x93NUMPY"
# What numpy.savez and numpy.savez_compressed write; any other method (bzip2, lzma, AES...) is
# refused before zipfile would need a module that may be missing.
_COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


# -- saving ---------------------------------------------------------------------------------------
def save(model: Module, path: str | os.PathLike[str], optimizer: Optimizer | None = None,
         scheduler: LRScheduler | None = None) -> None:
    """Write ``model``'s parameters and buffers (and ``optimizer``'s state, and
    ``scheduler``'s) to a ``.npz`` at exactly ``path`` (no suffix added).

    Keys are the names of :meth:`~xmlp.Module.named_parameters` ("linear1.weights", ...) and
    of :meth:`~xmlp.Module.named_buffers` ("1.running_mean", ...), each a host copy of the
    array in its dtype, plus ``"__xmlp__"``: a JSON string with the
    format version, the model's class name and the array shapes. With an ``optimizer`` (an
    :mod:`xmlp.optim` optimizer built on ``model``) its state arrays are stored as
    "optimizer.<parameter>.<state key>" and its class, step count and hyperparameters in the
    record's "optimizer" field, so that :func:`load` with an optimizer resumes training exactly.
    With a ``scheduler`` (an :mod:`xmlp.optim` schedule built on ``optimizer``) its state is
    the record's "scheduler" field (:meth:`~xmlp.optim.LRScheduler.state_dict`).

    The file is written to a temporary file in the target's directory and renamed over it, so a
    crash never leaves a half-written checkpoint. ``path`` is resolved like ``open(path, "w")``
    would: a symbolic link is followed and the file it points to is replaced (the link stays a
    link); an existing file keeps its permission bits (a new one gets the umask's).

    Args:
        model: an :class:`xmlp.Module`.
        path: the file to write (``str`` or path-like), used as given.
        optimizer: an :mod:`xmlp.optim` optimizer built on ``model``, whose state is saved too.
        scheduler: a learning-rate schedule built on ``optimizer``, whose state is saved too.

    Example:
        >>> import xmlp
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> xmlp.save(model, "model.npz")
        >>> copy = xmlp.load(xmlp.MLP(1, 10, 1, rng=1), "model.npz")
        >>> bool((copy.linear1.weights == model.linear1.weights).all())
        True
    """
    target = _check_args(model, path, "save")
    _check_optimizer(model, optimizer, "save")
    _check_scheduler(optimizer, scheduler, "save")
    arrays: dict[str, Any] = {name: to_host(value) for name, value in
                              [*model.named_parameters(), *model.named_buffers()]}
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
    record: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "class": type(model).__name__,
        "shapes": {name: list(a.shape) for name, a in arrays.items()},
    }
    if opt_record is not None:
        record["optimizer"] = opt_record
    if scheduler is not None:
        record["scheduler"] = scheduler.state_dict()
    write_checkpoint(target, arrays, record)


def write_checkpoint(target: str, arrays: dict[str, Any], record: dict[str, Any]) -> None:
    """Atomically write the NumPy ``arrays`` and the JSON ``record`` (under ``"__xmlp__"``) to
    ``target``. Follows symbolic links and keeps an existing file's permission bits (see
    :func:`save`)."""
    members: dict[str, Any] = {**arrays, RECORD_KEY: np.array(json.dumps(record))}
    resolved = os.path.realpath(target)  # a link is followed, as open() would
    if os.path.isdir(resolved):
        raise IsADirectoryError(errno.EISDIR, "save: the path is a directory", target)
    try:
        mode: int | None = stat.S_IMODE(os.stat(resolved).st_mode)
    except FileNotFoundError:
        mode = None  # a new file: the umask decides, as for open()
    directory, base = os.path.split(resolved)
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            np.savez(f, **members)  # a file object: np.savez appends ".npz" only to names
            f.flush()
            os.fsync(f.fileno())
        if mode is not None and not hasattr(os, "fchmod"):  # Windows
            os.chmod(tmp, mode)
        os.replace(tmp, resolved)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """One validated ``.npy`` member: its array's shape and dtype, read from the header only."""

    name: str  # the key, without ".npy"
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    data_offset: int  # bytes of magic and header before the data, inside the member

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class Checkpoint:
    """An ``.npz`` whose zip directory, ``.npy`` headers and JSON record have been validated;
    arrays are read only when asked for. Use as a context manager (:func:`open_checkpoint`).

    After construction, ``record`` is the checked JSON record (``format``, ``class``,
    ``shapes``, and any further keys as they were) and ``members`` maps every array's name
    (other than the record) to its :class:`Member`, whose shape and dtype agree with the record.
    Reading an array costs its declared size and nothing more: sizes were checked against the
    archive before any data was read.
    """

    def __init__(self, file: BinaryIO, label: str) -> None:
        self.label = label
        self._file = file
        self._zip: zipfile.ZipFile | None = None
        self.members: dict[str, Member] = {}
        self.record: dict[str, Any] = {}
        try:
            self._refuse_other_formats()
            with self._refusing():
                self._zip = zipfile.ZipFile(file)
                record = self._check_directory(os.fstat(file.fileno()).st_size)
                self.record = self._read_record(record)
            self._check_record()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def _refuse_other_formats(self) -> None:
        """A clearer message than zipfile's for the two files most often mistaken for one."""
        head = self._file.read(6)
        self._file.seek(0)
        if head == b"\x93NUMPY":  # what np.save writes
            raise self.error("it holds a single array, not an .npz archive")
        if head[:1] == b"\x80":  # a pickle's PROTO opcode
            raise self.error("it is a Python pickle, not an .npz archive (load never unpickles: "
                             "pickles and object arrays are refused)")

    # -- errors -------------------------------------------------------------------------------
    def error(self, what: str) -> ValueError:
        return ValueError(f"load: {self.label!r} is not a readable xmlp checkpoint: {what}")

    @contextmanager
    def _refusing(self) -> Iterator[None]:
        """Whatever zipfile, the header parser or json raise for malformed content (BadZipFile,
        EOFError, NotImplementedError, RuntimeError for encryption, RecursionError for deep
        nesting, MemoryError, struct.error, UnicodeDecodeError...) becomes a ValueError; an
        OSError stays one unless it is a seek to an impossible offset written in the file."""
        try:
            yield
        except ValueError as exc:
            if str(exc).startswith("load: "):
                raise
            raise self.error(_describe(exc)) from exc
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, None):  # the disk, not the content
                raise
            raise self.error(_describe(exc)) from exc
        except Exception as exc:
            raise self.error(_describe(exc)) from exc

    # -- the directory and headers ------------------------------------------------------------
    def _check_directory(self, file_size: int) -> Member:
        """Every member's kind, compression, bounds and .npy header; returns the record's."""
        assert self._zip is not None
        record = None
        seen: set[str] = set()
        for info in self._zip.infolist():
            name = info.filename
            if name in seen:
                raise self.error(f"it holds {name!r} twice")
            seen.add(name)
            if info.is_dir() or not name.endswith(".npy"):
                raise self.error(f"it holds {name!r}, which is not an .npy array")
            if info.flag_bits & 0x1:
                raise self.error(f"{name!r} is encrypted")
            if info.compress_type not in _COMPRESSIONS:
                raise self.error(
                    f"{name!r} uses zip compression method {info.compress_type}; xmlp reads "
                    "stored or deflated members (what numpy.savez and savez_compressed write)"
                )
            if info.header_offset + info.compress_size > file_size:
                raise self.error(f"{name!r} runs past the end of the file (truncated?)")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise self.error(
                    f"{name!r} is stored uncompressed but its sizes differ "
                    f"({info.compress_size} and {info.file_size} bytes)"
                )
            member = self._header(info)
            if member.name == RECORD_KEY:
                record = member
            else:
                self.members[member.name] = member
        if record is None:
            raise self.error(f"no {RECORD_KEY!r} record (was it written by xmlp.save?)")
        return record

    def _header(self, info: zipfile.ZipInfo) -> Member:
        """Parse one member's .npy header (magic, version, bounded dict) and check that the
        declared shape x itemsize is exactly the data the member holds."""
        assert self._zip is not None
        name = info.filename[: -len(".npy")]
        with self._zip.open(info) as f:
            head = f.read(10)
            if len(head) < 10 or head[:6] != _NPY_MAGIC:
                raise self.error(f"{name!r} is not an .npy array (no NUMPY magic)")
            version = (head[6], head[7])
            if version == (1, 0):
                (length,), start, encoding = struct.unpack("<H", head[8:10]), 10, "latin1"
            elif version in ((2, 0), (3, 0)):
                more = f.read(2)
                (length,) = struct.unpack("<I", head[8:10] + more)
                start, encoding = 12, "latin1" if version == (2, 0) else "utf8"
            else:
                raise self.error(f"{name!r} has .npy format version {version}")
            if length > _MAX_HEADER:
                raise self.error(f"{name!r} has a {length}-byte .npy header (at most "
                                 f"{_MAX_HEADER})")
            text = f.read(length)
        if len(text) != length:
            raise self.error(f"{name!r} ends inside its .npy header")
        header = ast.literal_eval(text.decode(encoding))
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise self.error(f"{name!r} has an .npy header that is not numpy's: {header!r:.200}")
        shape, fortran = header["shape"], header["fortran_order"]
        if not (isinstance(shape, tuple)
                and all(type(d) is int and d >= 0 for d in shape)):
            raise self.error(f"{name!r} declares the shape {shape!r:.200}")
        if not isinstance(fortran, bool):
            raise self.error(f"{name!r} declares fortran_order={fortran!r:.200}")
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        if dtype.hasobject:
            raise self.error(f"{name!r} holds Python objects (load never unpickles: pickles "
                             "and object arrays are refused)")
        if dtype.fields is not None or dtype.subdtype is not None:
            raise self.error(f"{name!r} has the structured dtype {dtype}")
        member = Member(name, info, shape, dtype, fortran, start + length)
        if member.data_offset + member.nbytes != info.file_size:
            raise self.error(
                f"{name!r} declares shape {shape} of {dtype} ({member.nbytes} bytes) but holds "
                f"{info.file_size - member.data_offset} bytes of data"
            )
        return member

    # -- the record ---------------------------------------------------------------------------
    def _read_record(self, member: Member) -> Any:
        """The JSON record, read only once its header says it is one bounded string."""
        if member.shape != () or member.dtype.kind != "U":
            raise self.error(f"its {RECORD_KEY!r} record is an array of dtype {member.dtype} "
                             f"and shape {member.shape}, not one string")
        if member.dtype.itemsize // 4 > _MAX_RECORD:
            raise self.error(f"its {RECORD_KEY!r} record declares {member.dtype.itemsize // 4} "
                             f"characters (at most {_MAX_RECORD})")
        text = str(self._read_member(member)[()])
        if _deepest(text) > _MAX_NESTING:  # refused before the parser recurses that deep
            raise self.error(f"its {RECORD_KEY!r} record is nested too deeply")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"its {RECORD_KEY!r} record is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise self.error(f"its {RECORD_KEY!r} record is nested too deeply") from exc

    def _check_record(self) -> None:
        """The record's fields and types, and that it lists exactly the arrays of the file."""
        record, bad = self.record, f"its {RECORD_KEY!r} record"
        if not isinstance(record, dict):
            raise self.error(f"{bad} is a JSON {type(record).__name__}, not an object")
        if type(record.get("format")) is not int or record["format"] != FORMAT_VERSION:
            raise ValueError(
                f"load: {self.label!r} has format version {record.get('format')!r:.50}; this "
                f"xmlp reads version {FORMAT_VERSION}"
            )
        record.setdefault("class", "unknown model")
        if not isinstance(record["class"], str):
            raise self.error(f"{bad} has a 'class' that is not a string")
        shapes = record.get("shapes")
        if not isinstance(shapes, dict):
            raise self.error(f"{bad} has no parameter shapes")
        if set(shapes) != set(self.members):
            raise self.error(f"{bad} lists {sorted(shapes)} but it holds {sorted(self.members)}")
        for name, member in self.members.items():
            listed = shapes[name]
            if not (isinstance(listed, list) and all(type(d) is int for d in listed)):
                raise self.error(f"{bad} gives {name!r} the shape {listed!r:.100}")
            if tuple(listed) != member.shape:
                raise self.error(
                    f"{name!r} has shape {member.shape} but {bad} says {tuple(listed)}"
                )

    # -- data -----------------------------------------------------------------------------------
    def read(self, name: str, kinds: str = _NUMERIC_KINDS) -> np.ndarray:
        """The array ``name`` (a host copy); ValueError unless its dtype kind is in ``kinds``
        (real numbers by default) or its data is broken (CRC, truncation)."""
        return self._read_member(self.check_kind(name, kinds))

    def check_kind(self, name: str, kinds: str = _NUMERIC_KINDS) -> Member:
        """The member ``name``, read no further than its header; ValueError as :meth:`read`
        gives unless its dtype kind is in ``kinds``."""
        member = self.members[name]
        if member.dtype.kind not in kinds:
            raise self.error(f"{name!r} has dtype {member.dtype}, not a real number type")
        return member

    def _read_member(self, member: Member) -> np.ndarray:
        assert self._zip is not None
        with self._refusing(), self._zip.open(member.info) as f:
            f.read(member.data_offset)
            data = f.read(member.nbytes)
            if len(data) != member.nbytes or f.read(1):  # reading to the end checks the CRC
                raise self.error(f"{member.name!r} holds other than {member.nbytes} bytes")
        flat = np.frombuffer(data, dtype=member.dtype).copy()  # writable, for torch.asarray
        if member.fortran_order:
            return flat.reshape(member.shape[::-1]).transpose()
        return flat.reshape(member.shape)


def _deepest(text: str) -> int:
    """How deeply the JSON ``text`` nests arrays and objects (brackets inside strings do not
    count), in one vectorized pass."""
    codes = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))))
    return int(np.cumsum(steps).max()) if steps.size else 0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text:.300}" if text else type(exc).__name__


@contextmanager
def open_checkpoint(path: str) -> Iterator[Checkpoint]:
    """A validated :class:`Checkpoint` of the file at ``path``, closed on exit.

    OSError if it cannot be opened (missing, a directory, no permission); ValueError if it is
    not a regular file or not a readable xmlp checkpoint.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # open() below raises the right OSError
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        # a FIFO would block, a device would stream forever
        raise ValueError(f"load: {path!r} is not a regular file")
    with open(path, "rb") as f:
        checkpoint = Checkpoint(f, path)
        try:
            yield checkpoint
        finally:
            checkpoint.close()


def load(model: Module, path: str | os.PathLike[str], optimizer: Optimizer | None = None,
         scheduler: LRScheduler | None = None) -> Module:
    """Fill ``model``'s parameters and buffers (and ``optimizer``'s state, and
    ``scheduler``'s) from a file written by :func:`save`; returns ``model``.

    Each value is cast to the dtype of the parameter it replaces and made on that parameter's
    namespace and device, so a checkpoint saved from CuPy float32 loads into a NumPy float64
    model and back. Stored activations and gradients are cleared. With an ``optimizer`` (built
    on ``model``, of the class that was saved) its step count, hyperparameters and state are
    restored too (:meth:`~xmlp.optim.Optimizer.load_state_dict`); without one, any optimizer
    state in the file is ignored (and not read). With a ``scheduler`` (built on ``optimizer``,
    of the class that was saved) its state is restored too, so that training resumes where
    it stopped (the learning rate it set is the optimizer's, restored with it).

    The file's zip directory, array headers and record are checked before any array data is
    read, and only the arrays the model (and optimizer) need are read, once the headers say
    they have the names, types and shapes needed: a hostile file costs memory in proportion
    to its own size and the model's arrays, never to what its headers declare.

    Args:
        model: an :class:`xmlp.Module` with the parameter (and buffer) names and shapes of
            the saved one.
        path: a file written by :func:`save` (``str`` or path-like).
        optimizer: an :mod:`xmlp.optim` optimizer built on ``model``, of the saved class, whose
            state is restored too.
        scheduler: a learning-rate schedule built on ``optimizer``, of the saved class, whose
            state is restored too.

    Raises:
        ValueError: the file's parameter names or shapes differ from the model's, its
            optimizer or schedule state does not fit ``optimizer`` or ``scheduler`` (or a
            field is malformed, such as ``"eps": "x"``), or the file is not a readable xmlp
            checkpoint (corrupt, truncated, not a zip of .npy arrays, holding object arrays:
            nothing is ever unpickled); the message names the first problem.
        OSError: the file cannot be opened (missing, a directory, no permission) or read.
    The model, the optimizer and the schedule are left unchanged whenever an error is raised.

    Example:
        >>> import xmlp
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> opt = xmlp.optim.Adam(model, lr=0.01)
        >>> xmlp.save(model, "model.npz", opt)
        >>> other = xmlp.MLP(1, 10, 1, rng=1)
        >>> other_opt = xmlp.optim.Adam(other, lr=0.5)
        >>> _ = xmlp.load(other, "model.npz", other_opt)
        >>> other_opt.lr, bool((other.linear2.biases == model.linear2.biases).all())
        (0.01, True)
    """
    target = _check_args(model, path, "load")
    _check_optimizer(model, optimizer, "load")
    _check_scheduler(optimizer, scheduler, "load")
    params, buffers = list(model.named_parameters()), list(model.named_buffers())
    named = params + buffers
    with open_checkpoint(target) as checkpoint:
        _check_names(checkpoint, model, named, {name for name, _ in buffers})
        schedule = None if scheduler is None else _scheduler_state(checkpoint, scheduler)
        # the optimizer state is checked from the headers before any array is read: only
        # arrays of the names, kinds and shapes the optimizer needs are ever read
        opt_members = None if optimizer is None else _optimizer_members(checkpoint, optimizer)
        hosts = {name: checkpoint.read(name) for name, _ in named}
        opt_state = None
        if opt_members is not None:
            opt_state = {**opt_members[0], "state": {
                name: {slot: checkpoint.read(key) for slot, key in slots.items()}
                for name, slots in opt_members[1].items()}}
    values = {name: _spec_of(model, name, buffer=False).from_host(hosts[name])
              for name, _ in params}
    buffer_values = {name: _spec_of(model, name, buffer=True).from_host(hosts[name])
                     for name, _ in buffers}
    if optimizer is not None:  # checks everything before it changes anything
        assert opt_state is not None
        with _not_fitting(target):
            optimizer.load_state_dict(opt_state)
    if scheduler is not None:  # checked by _scheduler_state: cannot fail now
        assert schedule is not None
        scheduler.load_state_dict(schedule)
    model.assign_parameters(values)
    model.assign_buffers(buffer_values)
    model.clear_state()
    return model


def _spec_of(model: Module, name: str, *, buffer: bool) -> ArraySpec:
    """Where parameter (or buffer) ``name`` lives: its layer's spec (so loading also repairs
    an array replaced by hand with another dtype)."""
    module, _ = model.owner_of(name, buffer=buffer)
    return module.spec


def _check_names(checkpoint: Checkpoint, model: Module, named: list[tuple[str, Any]],
                 buffers: set[str]) -> None:
    """ValueError unless the file holds exactly the model's parameters and buffers (the
    names in ``buffers``), with their shapes."""
    target, kind = checkpoint.label, type(model).__name__
    names = [name for name, _ in named]
    saved_optimizer = "optimizer" in checkpoint.record
    found = [key for key in checkpoint.members
             if not (saved_optimizer and key.startswith(_OPT_PREFIX))]
    for name in names:
        if name not in checkpoint.members:
            what = "buffer" if name in buffers else "parameter"
            raise ValueError(
                f"load: {target!r} has no {what} {name!r} of the {kind}; it was saved from "
                f"a {checkpoint.record['class']} with {found}"
            )
    listed = "parameters and buffers" if buffers else "parameters"
    for key in found:
        if key not in names:
            raise ValueError(
                f"load: {target!r} holds {key!r}, which the {kind} does not have (its "
                f"{listed}: {names})"
            )
    for name, current in named:
        shape = checkpoint.members[name].shape
        if shape != tuple(current.shape):
            raise ValueError(
                f"load: {name!r} has shape {shape} in {target!r} but {tuple(current.shape)} "
                f"in the {kind}"
            )


def _check_optimizer(model: Module, optimizer: Any, caller: str) -> None:
    if optimizer is None:
        return
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{caller}: optimizer must be an xmlp.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    if optimizer.model is not model:
        raise ValueError(f"{caller}: the optimizer was built on another model; pass the "
                         f"optimizer of this {type(model).__name__}")


def _check_scheduler(optimizer: Any, scheduler: Any, caller: str) -> None:
    if scheduler is None:
        return
    if not isinstance(scheduler, LRScheduler):
        raise TypeError(f"{caller}: scheduler must be an xmlp.optim schedule, got "
                        f"{type(scheduler).__name__}")
    if optimizer is None:
        raise ValueError(f"{caller}: scheduler= needs optimizer= too: the learning rate the "
                         f"{type(scheduler).__name__} set is part of the optimizer's state")
    if scheduler.optimizer is not optimizer:
        raise ValueError(f"{caller}: the {type(scheduler).__name__} was built on another "
                         "optimizer; pass the schedule of this optimizer")


def _scheduler_state(checkpoint: Checkpoint, scheduler: LRScheduler) -> dict[str, Any]:
    """The file's schedule state, once ``scheduler`` has accepted it (checked, not loaded)."""
    state = checkpoint.record.get("scheduler")
    if state is None:
        raise ValueError(f"load: {checkpoint.label!r} holds no schedule state (it was saved "
                         "without scheduler=); load without scheduler= and build the schedule "
                         "anew")
    with _not_fitting(checkpoint.label, "schedule"):
        scheduler._check_state_dict(state)
    return dict(state)


@contextmanager
def _not_fitting(target: str, what: str = "optimizer") -> Iterator[None]:
    """The optimizer's (or schedule's) refusal of the file's state (ValueError or TypeError)
    as a ValueError: it is a problem with the file's content."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise ValueError(f"load: the {what} state in {target!r} does not fit: {exc}") \
            from exc


def _optimizer_members(checkpoint: Checkpoint, optimizer: Optimizer
                       ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The optimizer record's fields (class, step count, hyperparameters) and, per parameter
    and state key, the member holding that state, once the optimizer has accepted them all
    from the record and the members' headers alone (placeholders of the declared dtypes and
    shapes, which cost no memory): every array that is then read has a shape of the model's
    parameters, whatever the file declares."""
    record = checkpoint.record.get("optimizer")
    if record is None:
        raise ValueError(f"load: {checkpoint.label!r} holds no optimizer state (it was saved "
                         "without optimizer=); load the model alone, or train on from a fresh "
                         "optimizer")
    if not isinstance(record, dict):
        raise checkpoint.error(f"its {RECORD_KEY!r} record has an 'optimizer' field that is "
                               "not an object")
    keys: dict[str, dict[str, str]] = {}
    placeholders: dict[str, dict[str, np.ndarray]] = {}
    for key in checkpoint.members:
        if key.startswith(_OPT_PREFIX):
            name, _, slot = key[len(_OPT_PREFIX):].rpartition(".")
            member = checkpoint.check_kind(key)
            keys.setdefault(name, {})[slot] = key
            placeholders.setdefault(name, {})[slot] = np.broadcast_to(
                np.zeros((), member.dtype), member.shape)
    fields = {"optimizer": record.get("optimizer"), "step_count": record.get("step_count"),
              "hyperparameters": record.get("hyperparameters")}
    with _not_fitting(checkpoint.label):
        optimizer._check_state_dict({**fields, "state": placeholders})
    return fields, keys


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
