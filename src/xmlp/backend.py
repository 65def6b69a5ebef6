"""Where arrays live: namespace, device and dtype resolution, host transfer and random init.

This is the only module that knows about particular backends (NumPy, CuPy, torch, JAX, Dask,
array-api-strict). Layer code asks it for an :class:`ArraySpec` and then calls only Array API
functions on ``spec.xp``.
"""

from __future__ import annotations

import importlib
import math
import numbers
import sys
import warnings
from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from .ops import PortableOps, ops_for

__all__ = [
    "BACKEND_NAMES",
    "ArraySpec",
    "adopt",
    "check_learning_rate",
    "dtype_name",
    "floating_spec",
    "make_rng",
    "namespace_name",
    "namespace_or_none",
    "native_dtype",
    "persist_parameters",
    "positive_int",
    "reads_are_free",
    "real_as_float",
    "resolve_namespace",
    "short_repr",
    "to_host",
]

_FLOAT_NAMES = ("float16", "float32", "float64")


def namespace_name(xp: Any) -> str:
    """A readable name for a namespace: "numpy", "cupy", "torch", "jax.numpy", "dask.array"..."""
    name = getattr(xp, "__name__", repr(xp))
    return name.removeprefix("array_api_compat.")


# Backend names accepted for ``xp=`` (the ones ``xmlp demo --backend`` takes, plus the module
# paths): name -> (module to import, extra that installs it).
BACKEND_NAMES: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", None),
    "cupy": ("cupy", "cupy"),
    "torch": ("torch", "torch"),
    "jax": ("jax.numpy", "jax"),
    "jax.numpy": ("jax.numpy", "jax"),
    "dask": ("dask.array", "dask"),
    "dask.array": ("dask.array", "dask"),
    "array_api_strict": ("array_api_strict", "strict"),
}


def _import_backend(name: str) -> Any:
    """The module for a backend name; ImportError naming the extra when it is not installed."""
    if name not in BACKEND_NAMES:
        raise TypeError(
            f"xp={short_repr(name)} is not a backend name xmlp knows; use one of "
            f"{', '.join(repr(n) for n in BACKEND_NAMES)} or pass the array module itself."
        )
    module_name, extra = BACKEND_NAMES[name]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"xp={name!r} needs {module_name}, which is not installed here ({exc}); install "
            "it with: pip install "
            f'{ {"cupy": "cupy-cuda12x", "torch": "torch==2.13.0"}.get(name, name.split(".")[0])}'
            f' (from the xmlp checkout: pip install ".[{extra}]")'
        ) from exc


def resolve_namespace(xp: Any = None, device: Any = None) -> Any:
    """The Array API namespace for a user's ``xp``: a module as imported, or its compat wrapper.

    ``xp`` is an array module (``numpy``, ``cupy``, ``torch``, ``jax.numpy``, ``dask.array``,
    ``array_api_strict``), one of the names in :data:`BACKEND_NAMES` (``"numpy"``, ``"cupy"``,
    ``"torch"``, ``"jax"``, ``"dask"``, ``"array_api_strict"``), or ``None`` for NumPy. A
    module is resolved by making one scalar array with it, so any library array-api-compat
    knows works. A name whose library is missing raises ModuleNotFoundError naming the extra to
    install; anything else that is not an array module raises TypeError.
    """
    if xp is None:
        xp = np
    elif isinstance(xp, str):
        xp = _import_backend(xp)
    if not callable(getattr(xp, "asarray", None)):
        raise TypeError(
            f"xp={short_repr(xp)} is not an array namespace xmlp can use. Pass an array module "
            "(numpy, cupy, torch, jax.numpy, dask.array, array_api_strict) or its name "
            f"({', '.join(repr(n) for n in BACKEND_NAMES if '.' not in n)})."
        )
    try:
        ns = array_namespace(xp.asarray(0.0))
    except Exception as exc:
        raise TypeError(
            f"xp={namespace_name(xp)} could not make an array here: {type(exc).__name__}: "
            f"{exc}. Pass an array module such as numpy, cupy, torch, jax.numpy, dask.array or "
            "array_api_strict (CuPy also needs a working NVIDIA GPU)."
        ) from exc
    if device is not None:
        try:
            ns.asarray(0.0, device=device)  # ns: raw dask.array takes no device=
        except Exception as exc:  # the namespace is fine, the device is not
            raise _device_error(ns, device, exc) from exc
    return ns


def _device_error(ns: Any, device: Any, exc: Exception) -> TypeError:
    """TypeError for a device a namespace cannot make arrays on, listing the ones it has."""
    try:
        known = f" Its devices: {list(ns.__array_namespace_info__().devices())}."
    except Exception:  # a namespace without the inspection API
        known = ""
    return TypeError(
        f"{namespace_name(ns)} cannot make arrays on device={short_repr(device)} ({exc}).{known}"
    )


def dtype_name(dtype: Any) -> str:
    """"float32" for numpy.float32, torch.float32, array_api_strict.float32, "float32"..."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, int):  # never a dtype (np.dtype() would read it as a number)
        return short_repr(dtype)
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype).rsplit(".", 1)[-1]


def _resolve_dtype(xp: Any, dtype: Any, device: Any) -> Any:
    if dtype is None:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=device)["real floating"]
    name = dtype_name(dtype)
    resolved = getattr(xp, name, None) if name in _FLOAT_NAMES else None
    if resolved is None:
        raise TypeError(
            f"dtype={short_repr(dtype)} is not a real floating dtype; use float32 or float64 "
            f"(e.g. dtype={namespace_name(xp)}.float32)."
        )
    return resolved


def to_host(a: Any) -> np.ndarray:
    """A NumPy copy of any supported array (device-to-host where it lives on a GPU)."""
    if isinstance(a, np.ndarray):
        return np.array(a, copy=True)
    if array_api_compat.is_cupy_array(a):
        return a.get()
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy().copy()
    if array_api_compat.is_dask_array(a):
        return np.array(a.compute(), copy=True)
    try:
        return np.array(a, copy=True)
    except Exception:
        xp = array_namespace(a)
        cpu = xp.__array_namespace_info__().default_device()
        return np.array(np.from_dlpack(array_api_compat.to_device(a, cpu)), copy=True)


def reads_are_free(a: Any) -> bool:
    """Whether reading ``a``'s values on the host costs no device sync and no graph compute:
    NumPy, array-api-strict and torch CPU arrays (not CuPy, CUDA torch, JAX's asynchronous
    dispatch or Dask's graphs). Data checks (labels in range...) run only where this holds."""
    if isinstance(a, (np.ndarray, np.generic)):  # np.int64(3) is a label too
        return True
    torch = sys.modules.get("torch")  # isinstance: what torch.compile traces through
    if torch is not None and isinstance(a, torch.Tensor):
        return bool(a.device.type == "cpu")
    return array_api_compat.is_array_api_strict_namespace(namespace_or_none(a))


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (an int of more than 4300
    digits has no repr, and a user's object may have a broken one)."""
    try:
        text = repr(value)
    except Exception:
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_rng(rng: Any = None) -> np.random.Generator:
    """``numpy.random.default_rng`` for None, an int seed (NumPy ints too) or a Generator
    (returned as is). TypeError for anything else, ValueError for a negative seed."""
    if isinstance(rng, bool):
        raise TypeError("rng must be None, a non-negative int seed or a numpy.random.Generator, "
                        f"got bool: {rng!r}")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError, OverflowError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(
            "rng must be None, a non-negative int seed or a numpy.random.Generator, got "
            f"{type(rng).__name__}: {short_repr(rng)}"
        ) from exc


def real_as_float(value: Any) -> float:
    """``float(value)`` for a real number, +-inf for one beyond the float range (``10**400``,
    where ``float`` raises OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_learning_rate(learning_rate: Any) -> float:
    """A learning rate as a Python float (never a NumPy scalar: that would drag NumPy in as a
    second namespace on CuPy). TypeError if it is not a real number, ValueError if NaN, inf,
    < 0 or too large for a float (``10**400``)."""
    if type(learning_rate) is float and 0.0 <= learning_rate < math.inf:
        return learning_rate  # the common case, once per training step
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            f"learning_rate must be a real number (a Python or NumPy scalar), "
            f"got {type(learning_rate).__name__}: {short_repr(learning_rate)}"
        )
    raw: Any = learning_rate
    try:
        lr = float(raw)
    except OverflowError:  # an int or Fraction beyond the float range: infinite as a float
        lr = math.inf if raw > 0 else -math.inf
    if not math.isfinite(lr) or lr < 0:
        shown = short_repr(learning_rate) if math.isinf(lr) else repr(lr)
        raise ValueError(f"learning_rate must be finite and >= 0, got {shown}")
    return lr


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int from 1 to ``sys.maxsize`` (the most that ``range()``, tqdm and an
    array axis can count): a count of epochs, samples or rounds. NumPy ints are taken, bools
    are not. TypeError for anything else, ValueError out of range; the message begins with
    ``name`` (e.g. "fit: epochs") and names the limit only for a value above it."""
    what = f"{name} must be a positive int" if name else "must be a positive int"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what}, got {short_repr(value)}")
    number = int(value)
    if not 1 <= number <= sys.maxsize:
        limit = f" up to {sys.maxsize}" if number > 0 else ""
        raise ValueError(f"{what}{limit}, got {short_repr(value)}")
    return number


class ArraySpec:
    """Namespace, device and dtype of a layer's arrays, with O(1) checks of incoming arrays.

    The checks look at types, dtypes, shapes and devices only: nothing that reads data, so
    nothing that would synchronize a GPU or compute a Dask graph.
    """

    __slots__ = ("array_type", "autograd", "check_device", "device", "dtype", "name", "ops", "xp")

    def __init__(self, xp: Any, device: Any, dtype: Any) -> None:
        self.xp = xp
        self.ops: PortableOps = ops_for(xp)
        self.dtype = dtype
        try:
            with warnings.catch_warnings():
                # JAX without x64 warns and hands out float32: the dtype check below says so
                # (as an error, not as a misleading "bad device" under -W error)
                warnings.simplefilter("ignore")
                probe = xp.zeros((1,), dtype=dtype, device=device)
        except Exception as exc:  # setup only: a bad device, never a hot path
            raise _device_error(xp, device, exc) from exc
        if probe.dtype != dtype:  # JAX without x64 silently hands out float32
            raise TypeError(
                f"{namespace_name(xp)} gave {dtype_name(probe.dtype)} when asked for "
                f"{dtype_name(dtype)}; for float64 on JAX run "
                "jax.config.update('jax_enable_x64', True) first (or set JAX_ENABLE_X64=1)."
            )
        # The dtype object arrays carry (np.dtype('float64') rather than the scalar type
        # np.float64): the per-call checks compare with it, about 3x faster on NumPy.
        self.dtype = probe.dtype
        self.device = array_api_compat.device(probe)
        self.array_type = type(probe)
        self.name = namespace_name(xp)
        # torch tensors may record an autograd graph; xmlp computes gradients itself, so an
        # array that requires grad is refused (inputs) or detached (copies it makes).
        self.autograd = array_api_compat.is_torch_namespace(xp)
        try:
            with warnings.catch_warnings():
                # array-api-compat lists torch's devices by trying every device type, and torch
                # warns about one ('mkldnn'): not the user's business
                warnings.simplefilter("ignore")
                devices = xp.__array_namespace_info__().devices()
            self.check_device = len(devices) > 1
        except Exception:
            self.check_device = True

    @classmethod
    def resolve(cls, xp: Any = None, device: Any = None, dtype: Any = None) -> ArraySpec:
        """Spec for ``xp`` (a module or None for NumPy) on ``device`` with ``dtype``."""
        ns = resolve_namespace(xp, device)
        return cls(ns, device, _resolve_dtype(ns, dtype, device))

    @classmethod
    def of(cls, a: Any, dtype: Any = None) -> ArraySpec:
        """Spec of an existing array (optionally with another dtype). Always in the machine's
        byte order: a spec made from big-endian NumPy data holds native float64, say."""
        xp = array_namespace(a)
        device = array_api_compat.device(a)
        wanted = native_dtype(a.dtype) if dtype is None else _resolve_dtype(xp, dtype, device)
        return cls(xp, device, wanted)

    def __copy__(self) -> ArraySpec:
        return self  # immutable in use: copy.deepcopy(layer) shares it

    def __deepcopy__(self, memo: dict[int, Any]) -> ArraySpec:
        return self

    def moved(self, xp: Any = None, device: Any = None, dtype: Any = None) -> ArraySpec:
        """This spec with another namespace, device and/or dtype (None keeps each, except that
        a new namespace starts on its default device)."""
        ns = self.xp if xp is None else resolve_namespace(xp, device)
        if device is None and ns is self.xp:
            device = self.device
        name = dtype_name(self.dtype) if dtype is None else dtype
        return ArraySpec(ns, device, _resolve_dtype(ns, name, device))

    def same_place(self, other: ArraySpec) -> bool:
        """Same namespace, device and dtype (O(1))."""
        return self is other or (
            self.xp is other.xp and self.dtype == other.dtype and self.device == other.device
        )

    def describe(self) -> str:
        return f"{self.name} {dtype_name(self.dtype)} on {self.device}"

    # -- making arrays -------------------------------------------------------------------
    def from_host(self, host: np.ndarray) -> Any:
        """A fresh array of this spec from a NumPy array (always a copy: torch.asarray would
        otherwise share NumPy's buffer and in-place updates would write into it)."""
        host = np.asarray(host, dtype=dtype_name(self.dtype))
        return self.xp.asarray(host, dtype=self.dtype, device=self.device, copy=True)

    def convert(self, a: Any) -> Any:
        """A copy of array ``a`` (any supported namespace/device/dtype/byte order) in this
        spec, holding values only: a torch tensor is detached first, so the copy records no
        autograd graph."""
        if getattr(a, "requires_grad", False):
            a = a.detach()
        if type(a) is self.array_type or namespace_or_none(a) is self.xp:
            moved = a
            if self.check_device and array_api_compat.device(a) != self.device:
                moved = array_api_compat.to_device(a, self.device)
            return self.xp.astype(moved, self.dtype, copy=True)
        return self.from_host(to_host(a))

    def random_normal(self, rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> Any:
        """Standard-normal float64 draws (times ``scale``), cast to the dtype, moved here."""
        draws = rng.standard_normal(shape)
        if scale != 1.0:
            draws *= scale
        return self.from_host(draws)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    # -- checking arrays -----------------------------------------------------------------
    def holds(self, a: Any) -> bool:
        """Whether array ``a`` is of this spec as it stands: same type, dtype and device, and
        (torch) not recording an autograd graph. O(1), no message built: a layer that keeps
        the spec of its last input reuses it while this holds, and checks afresh otherwise."""
        return (
            type(a) is self.array_type
            and a.dtype == self.dtype
            and (not self.check_device or array_api_compat.device(a) == self.device)
            and not (self.autograd and a.requires_grad)
        )

    def mismatch(self, a: Any) -> str | None:
        """How array ``a`` differs from this spec, as the end of a sentence ("has dtype
        float32", "is on device cuda:1", "requires grad"...), or None if it fits (what
        :meth:`check` accepts with ``dtype=True``)."""
        try:
            self.check(a, "", "")
        except TypeError:
            pass
        else:
            return None
        other = namespace_or_none(a)
        if other is None:
            return f"is a {type(a).__name__}, not an array"
        if other is not self.xp:
            return f"is {_a(namespace_name(other))} {namespace_name(other)} array"
        if a.dtype != self.dtype:
            if dtype_name(a.dtype) == dtype_name(self.dtype):
                return f"has non-native byte order ({a.dtype.str!r})"
            return f"has dtype {dtype_name(a.dtype)}"
        if self.check_device and array_api_compat.device(a) != self.device:
            return f"is on device {array_api_compat.device(a)}"
        if self.autograd and a.requires_grad:
            return "requires grad (it would record an autograd graph every step)"
        return f"is a {type(a).__name__}"

    def check(
        self, a: Any, owner: str, what: str, *, dtype: bool = True, against: str | None = None
    ) -> None:
        """TypeError unless ``a`` is an array of this namespace, device and (if ``dtype``) dtype.

        With ``dtype`` (arrays used as they are: inputs, gradients, parameters) the byte order
        must be native and a torch tensor must not require grad; without it (arrays that will
        be converted, such as initial weights) only the kind, namespace and device matter.
        ``against`` names what this spec was taken from when that is not a layer's parameters
        (e.g. "y" for MSELoss's target), so the message does not suggest moving a model.
        """
        if type(a) is not self.array_type:
            other = namespace_or_none(a)
            if other is None:
                raise TypeError(
                    f"{owner}: {what} must be a {self.name} array, got {type(a).__name__}. "
                    f"Convert it with {self.name}.asarray(...)."
                )
            refuse_masked(a, owner, what)  # its mask would be ignored by some ops only
            if other is not self.xp:
                params, ref = _reference(against)
                theirs = namespace_name(other)
                ours = f"{self.name} arrays" if params else f"{_a(self.name)} {self.name} array"
                where = (f"or move the model with .to({theirs})." if params
                         else f"so that it matches {against}.")
                raise TypeError(
                    f"{owner}: {what} is {_a(theirs)} {theirs} array but {ref} {ours}. Convert "
                    f"the input ({self.name}.asarray(...), or cupy.asarray / .get() between NumPy "
                    f"and CuPy), {where}"
                )
        if a.dtype != self.dtype:
            dt, want = dtype_name(a.dtype), dtype_name(self.dtype)
            if dt not in _FLOAT_NAMES:
                raise TypeError(
                    f"{owner}: {what} has dtype {dt}; xmlp layers take real floating arrays. "
                    f"Convert with {self.name}.astype(x, {self.name}.{want})."
                )
            if dtype and dt == want and not getattr(a.dtype, "isnative", True):
                raise TypeError(
                    f"{owner}: {what} has dtype {dt} in non-native byte order "
                    f"({a.dtype.str!r}); xmlp takes arrays in this machine's byte order. "
                    f"Convert with {self.name}.astype(x, {self.name}.{want})."
                )
            if dtype:
                params, ref = _reference(against)
                where = (f" or the model with .to(dtype={self.name}.{dt})" if params
                         else f" (or convert {against} to {dt})")
                raise TypeError(
                    f"{owner}: {what} has dtype {dt} but {ref} {want}. Convert the "
                    f"input with {self.name}.astype(x, {self.name}.{want}){where}."
                )
        if self.check_device:
            dev = array_api_compat.device(a)
            if dev != self.device:
                params, ref = _reference(against)
                where = (f"the model with .to({self.name}, device={dev!r})" if params
                         else f"{against} to {dev!r}")
                raise TypeError(
                    f"{owner}: {what} is on device {dev} but {ref} on {self.device}. "
                    f"Move the input with array_api_compat.to_device(x, {self.device!r}) or "
                    f"{where}; xmlp never transfers silently."
                )
        if dtype and self.autograd and a.requires_grad:
            raise TypeError(
                f"{owner}: {what} is a torch tensor that requires grad; xmlp computes "
                "gradients itself (backward()) and must not record an autograd graph, which "
                "would grow with every step. Pass x.detach() (no copy)."
            )


def refuse_masked(a: Any, owner: str, what: str) -> None:
    """TypeError for a NumPy masked array, whose mask xmlp would ignore: every array
    :meth:`ArraySpec.check` sees, and class labels of any integer dtype, which it does not."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(
            f"{owner}: {what} is a numpy.ma.MaskedArray; xmlp layers ignore masks. Fill or "
            "drop the masked values first (x.filled(...), or numpy.asarray(x) to use the data "
            "as it is)."
        )


def _a(word: str) -> str:
    """The article for ``word``: "an" array_api_strict array, "a" numpy array."""
    return "an" if word[:1] in "aeiou" else "a"


def _reference(against: str | None) -> tuple[bool, str]:
    """(whether the reference is a layer's parameters, "the parameters are" / "y is")."""
    return (True, "the parameters are") if against is None else (False, f"{against} is")


def namespace_or_none(a: Any) -> Any:
    if not is_array_api_obj(a):
        return None
    try:
        return array_namespace(a)
    except TypeError:
        return None


def native_dtype(dtype: Any) -> Any:
    """``dtype`` in the machine's byte order (the same object when it already is, as every
    non-NumPy dtype is)."""
    if getattr(dtype, "isnative", True):
        return dtype
    return dtype.newbyteorder("=")


def floating_spec(a: Any, owner: str, what: str, *, converting: bool = False) -> ArraySpec:
    """Spec of an input to a parameter-free layer; TypeError unless it is a real floating array
    that can be used as it is (native byte order, no autograd). ``converting``: ``a`` will be
    copied into the spec (initial weights), so only its kind matters."""
    if namespace_or_none(a) is None:
        raise TypeError(f"{owner}: {what} must be an array, got {type(a).__name__}.")
    name = dtype_name(a.dtype)
    if name not in _FLOAT_NAMES:
        xp = array_namespace(a)
        raise TypeError(
            f"{owner}: {what} has dtype {name}; xmlp layers take real floating arrays. "
            f"Convert with {namespace_name(xp)}.astype(x, {namespace_name(xp)}.float64)."
        )
    spec = ArraySpec.of(a)
    if not converting:
        spec.check(a, owner, what)
    return spec


def persist_parameters(model: Any, *extra: Any) -> tuple[Any, ...]:
    """On Dask, compute ``model``'s parameters and buffers (and the ``extra`` arrays, in the
    same pass) into memory and rebind them, so the graph stops growing with every SGD step.

    Returns ``extra``, persisted where they are Dask arrays. A no-op for other arrays.

    Args:
        model: an :class:`xmlp.Module` whose parameters are persisted in place.
        *extra: more arrays to compute in the same pass (a loss, say).

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> import xmlp
        >>> model = xmlp.MLP(1, 4, 1, xp=da, rng=0)
        >>> loss_fn = xmlp.MSELoss()
        >>> x = da.from_array(np.linspace(-1, 1, 8).reshape(8, 1), chunks=4)
        >>> for _ in range(3):
        ...     loss = loss_fn.forward(model.forward(x), x ** 2)
        ...     grad_x = model.backward(loss_fn.backward())
        ...     model.update_params(0.1)
        ...     (loss,) = xmlp.persist_parameters(model, loss)
        >>> len(model.linear1.weights.__dask_graph__())   # one computed chunk, not 3 steps
        1
    """
    named = list(model.named_parameters())
    buffers = list(model.named_buffers())  # running statistics grow graphs too
    arrays = [a for _, a in named] + [a for _, a in buffers] + list(extra)
    if not any(array_api_compat.is_dask_array(a) for a in arrays):
        return extra
    import dask

    persisted = dask.persist(*arrays)
    model.assign_parameters(
        {name: a for (name, _), a in zip(named, persisted[: len(named)], strict=True)}
    )
    done = len(named) + len(buffers)
    model.assign_buffers(
        {name: a for (name, _), a in zip(buffers, persisted[len(named):done], strict=True)})
    return tuple(persisted[done:])


def adopt(spec: ArraySpec, a: Any) -> Any:
    """Array ``a`` (a data chunk, e.g. NumPy from Dask) in ``spec``'s namespace and device, and
    in its dtype if ``a`` is real floating (integer class labels keep theirs).

    Shares ``a``'s buffer where the backend can (NumPy into NumPy or torch on the CPU; CuPy
    already on the device): right for data that is only read, like training batches, and a
    copy fewer per chunk. A read-only NumPy buffer is copied first, except into NumPy (torch
    cannot share one, and warns).
    """
    refuse_masked(a, "fit", "a chunk of the Dask data")  # np.asarray would drop its mask
    floating = dtype_name(a.dtype) in _FLOAT_NAMES
    if not isinstance(a, np.ndarray) and namespace_or_none(a) is spec.xp:
        if spec.check_device and array_api_compat.device(a) != spec.device:
            a = array_api_compat.to_device(a, spec.device)
        return spec.xp.astype(a, spec.dtype) if floating and a.dtype != spec.dtype else a
    host = a if isinstance(a, np.ndarray) else to_host(a)
    # floats in the model's dtype, labels in the machine's byte order (torch and
    # array-api-strict take no other)
    host = np.asarray(host, dtype=dtype_name(spec.dtype) if floating else native_dtype(host.dtype))
    if not array_api_compat.is_numpy_namespace(spec.xp) and (
            not host.flags.writeable or min(host.strides, default=0) < 0):
        host = np.array(host, copy=True)  # torch shares neither read-only nor reversed buffers
    return spec.xp.asarray(host, device=spec.device)
