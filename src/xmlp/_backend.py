"""Where arrays live: namespace, device and dtype resolution, host transfer and random init.

This is the only module that knows about particular backends (NumPy, CuPy, torch, JAX, Dask,
array-api-strict). Layer code asks it for an :class:`ArraySpec` and then calls only Array API
functions on ``spec.xp``.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

__all__ = [
    "ArraySpec",
    "check_learning_rate",
    "dtype_name",
    "make_rng",
    "namespace_name",
    "resolve_namespace",
    "to_host",
]

_FLOAT_NAMES = ("float16", "float32", "float64")


def namespace_name(xp: Any) -> str:
    """A readable name for a namespace: "numpy", "cupy", "torch", "jax.numpy", "dask.array"..."""
    name = getattr(xp, "__name__", repr(xp))
    return name.removeprefix("array_api_compat.")


def resolve_namespace(xp: Any = None, device: Any = None) -> Any:
    """The Array API namespace for a user's ``xp``: a module as imported, or its compat wrapper.

    Resolved by making one scalar array with it, so any library array-api-compat knows works
    without a table of names here. ``None`` means NumPy.
    """
    if xp is None:
        xp = np
    try:
        probe = xp.asarray(0.0) if device is None else xp.asarray(0.0, device=device)
        return array_namespace(probe)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a usable namespace"
        raise TypeError(
            f"xp={xp!r} is not an array namespace xmlp can use (on device={device!r}): {exc}. "
            "Pass an array module such as numpy, cupy, torch, jax.numpy, dask.array or "
            "array_api_strict."
        ) from exc


def dtype_name(dtype: Any) -> str:
    """"float32" for numpy.float32, torch.float32, array_api_strict.float32, "float32"..."""
    if isinstance(dtype, str):
        return dtype
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
            f"dtype={dtype!r} is not a real floating dtype; use float32 or float64 "
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
    except Exception:  # noqa: BLE001 - array-api-strict and friends speak DLPack instead
        xp = array_namespace(a)
        cpu = xp.__array_namespace_info__().default_device()
        return np.array(np.from_dlpack(array_api_compat.to_device(a, cpu)), copy=True)


def make_rng(rng: Any = None) -> np.random.Generator:
    """``numpy.random.default_rng`` for None, an int seed or a Generator (returned as is)."""
    return np.random.default_rng(rng)


def check_learning_rate(learning_rate: Any) -> float:
    """A learning rate as a Python float (never a NumPy scalar: that would drag NumPy in as a
    second namespace on CuPy). TypeError if it is not a real number, ValueError if NaN, inf or < 0."""
    if isinstance(learning_rate, bool) or not _is_real_number(learning_rate):
        raise TypeError(
            f"learning_rate must be a real number (a Python or NumPy scalar), "
            f"got {type(learning_rate).__name__}: {learning_rate!r}"
        )
    lr = float(learning_rate)
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"learning_rate must be finite and >= 0, got {lr!r}")
    return lr


def _is_real_number(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real)


class ArraySpec:
    """Namespace, device and dtype of a layer's arrays, with O(1) checks of incoming arrays.

    The checks look at types, dtypes, shapes and devices only: nothing that reads data, so
    nothing that would synchronize a GPU or compute a Dask graph.
    """

    __slots__ = ("array_type", "check_device", "device", "dtype", "name", "xp")

    def __init__(self, xp: Any, device: Any, dtype: Any) -> None:
        self.xp = xp
        self.dtype = dtype
        probe = xp.zeros((1,), dtype=dtype, device=device)
        if probe.dtype != dtype:  # JAX without x64 silently hands out float32
            raise TypeError(
                f"{namespace_name(xp)} gave {probe.dtype} when asked for {dtype}; for float64 on "
                "JAX run jax.config.update('jax_enable_x64', True) first."
            )
        self.device = array_api_compat.device(probe)
        self.array_type = type(probe)
        self.name = namespace_name(xp)
        try:
            devices = xp.__array_namespace_info__().devices()
            self.check_device = len(devices) > 1
        except Exception:  # noqa: BLE001 - a namespace without the inspection API
            self.check_device = True

    @classmethod
    def resolve(cls, xp: Any = None, device: Any = None, dtype: Any = None) -> ArraySpec:
        """Spec for ``xp`` (a module or None for NumPy) on ``device`` with ``dtype``."""
        ns = resolve_namespace(xp, device)
        return cls(ns, device, _resolve_dtype(ns, dtype, device))

    @classmethod
    def of(cls, a: Any, dtype: Any = None) -> ArraySpec:
        """Spec of an existing array (optionally with another dtype)."""
        xp = array_namespace(a)
        device = array_api_compat.device(a)
        return cls(xp, device, a.dtype if dtype is None else _resolve_dtype(xp, dtype, device))

    def moved(self, xp: Any = None, device: Any = None, dtype: Any = None) -> ArraySpec:
        """This spec with another namespace, device and/or dtype (None keeps each, except that
        a new namespace starts on its default device)."""
        ns = self.xp if xp is None else resolve_namespace(xp, device)
        if device is None and ns is self.xp:
            device = self.device
        name = dtype_name(self.dtype) if dtype is None else dtype
        return ArraySpec(ns, device, _resolve_dtype(ns, name, device))

    def describe(self) -> str:
        return f"{self.name} {dtype_name(self.dtype)} on {self.device}"

    # -- making arrays -------------------------------------------------------------------
    def from_host(self, host: np.ndarray) -> Any:
        """A fresh array of this spec from a NumPy array (always a copy: torch.asarray would
        otherwise share NumPy's buffer and in-place updates would write into it)."""
        host = np.asarray(host, dtype=dtype_name(self.dtype))
        return self.xp.asarray(host, dtype=self.dtype, device=self.device, copy=True)

    def convert(self, a: Any) -> Any:
        """A copy of array ``a`` (any supported namespace/device/dtype) in this spec."""
        if type(a) is self.array_type or _namespace_or_none(a) is self.xp:
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
    def check(self, a: Any, owner: str, what: str, *, dtype: bool = True) -> None:
        """TypeError unless ``a`` is an array of this namespace, device and (if ``dtype``) dtype."""
        if type(a) is not self.array_type:
            other = _namespace_or_none(a)
            if other is None:
                raise TypeError(
                    f"{owner}: {what} must be a {self.name} array, got {type(a).__name__}. "
                    f"Convert it with {self.name}.asarray(...)."
                )
            if other is not self.xp:
                raise TypeError(
                    f"{owner}: {what} is a {namespace_name(other)} array but the parameters are "
                    f"{self.name} arrays. Convert the input ({self.name}.asarray(...), or "
                    f"cupy.asarray / .get() between NumPy and CuPy), or move the model with "
                    f".to({namespace_name(other)})."
                )
        if a.dtype != self.dtype:
            dt, want = dtype_name(a.dtype), dtype_name(self.dtype)
            if dt not in _FLOAT_NAMES:
                raise TypeError(
                    f"{owner}: {what} has dtype {dt}; xmlp layers take real floating arrays. "
                    f"Convert with {self.name}.astype(x, {self.name}.{want})."
                )
            if dtype:
                raise TypeError(
                    f"{owner}: {what} has dtype {dt} but the parameters are {want}. Convert the "
                    f"input with {self.name}.astype(x, {self.name}.{want}) or the model with "
                    f".to(dtype={self.name}.{dt})."
                )
        if self.check_device:
            dev = array_api_compat.device(a)
            if dev != self.device:
                raise TypeError(
                    f"{owner}: {what} is on device {dev} but the parameters are on {self.device}. "
                    f"Move the input with array_api_compat.to_device(x, {self.device!r}) or the "
                    f"model with .to({self.name}, device={dev!r}); xmlp never transfers silently."
                )


def _namespace_or_none(a: Any) -> Any:
    if not is_array_api_obj(a):
        return None
    try:
        return array_namespace(a)
    except TypeError:
        return None


def floating_spec(a: Any, owner: str, what: str) -> ArraySpec:
    """Spec of an input to a parameter-free layer; TypeError unless it is a real floating array."""
    if _namespace_or_none(a) is None:
        raise TypeError(f"{owner}: {what} must be an array, got {type(a).__name__}.")
    name = dtype_name(a.dtype)
    if name not in _FLOAT_NAMES:
        xp = array_namespace(a)
        raise TypeError(
            f"{owner}: {what} has dtype {name}; xmlp layers take real floating arrays. "
            f"Convert with {namespace_name(xp)}.astype(x, {namespace_name(xp)}.float64)."
        )
    return ArraySpec.of(a)
