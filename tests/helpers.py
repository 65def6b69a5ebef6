"""What the test files share: what a rejected call must leave behind, error messages, the
models, data and losses many tests start from, and the NumPy fast paths switched off and on."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest

import xmlp
import xmlp.ops
from tests.conftest import tolerances
from xmlp.backend import to_host

# The name each backend's messages use for its namespace.
NS_NAME = {"numpy": "numpy", "array_api_strict": "array_api_strict", "torch": "torch",
           "jax": "jax.numpy", "dask": "dask.array", "cupy": "cupy"}


def ns_name(xp: Any) -> str:
    return NS_NAME[xp.name.split(":")[0]]


def foreign(xp: Any, data: np.ndarray) -> tuple[Any, str]:
    """``data`` as an array of a namespace other than xp's, and that namespace's name."""
    if xp.name == "numpy":
        import array_api_strict

        return array_api_strict.asarray(data), "array_api_strict"
    return np.asarray(data), "numpy"


# -- "exactly as it was" -----------------------------------------------------------------------
def state(obj: Any) -> dict[tuple[int, str], tuple[Any, np.ndarray | None]]:
    """Every attribute of obj and its sub-modules: the object itself, and a host copy of the
    values when it is an array (so an in-place change is caught as well as a rebinding). Dask
    arrays are computed in one pass (one compute per array made the Dask suite several times
    slower)."""
    import array_api_compat

    out: dict[tuple[int, str], tuple[Any, np.ndarray | None]] = {}
    lazy = []
    for module in obj.modules():
        for name, value in vars(module).items():
            if array_api_compat.is_dask_array(value):
                lazy.append(((id(module), name), value))
            else:
                host = (to_host(value) if array_api_compat.is_array_api_obj(value) else None)
                out[(id(module), name)] = (value, host)
    if lazy:
        import dask

        computed = dask.compute(*(v for _, v in lazy))
        for (key, value), host in zip(lazy, computed, strict=True):
            out[key] = (value, np.asarray(host))
    return out


def assert_unchanged(before: dict, obj: Any) -> None:
    """Every attribute of obj and its sub-modules still bound to the same object, with the
    same values."""
    after = state(obj)
    assert after.keys() == before.keys()
    for key, (value, host) in before.items():
        new_value, new_host = after[key]
        assert new_value is value, f"attribute {key[1]!r} was rebound"
        if host is not None:
            np.testing.assert_array_equal(new_host, host, err_msg=f"{key[1]!r} changed")


def rejects(exc_type: type[BaseException], obj: Any, call: Any, *words: str) -> str:
    """Run ``call()``; assert it raises exc_type with every word in the message and leaves
    ``obj`` unchanged; return the message."""
    before = state(obj)
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert_unchanged(before, obj)
    return message


def message(exc_type: type[BaseException], call: Callable[[], Any]) -> str:
    """The text of the ``exc_type`` that ``call()`` raises."""
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


def assert_all_equal(got: Iterable[Any], want: Iterable[Any]) -> None:
    """Two sequences of arrays (of any backend) equal pair by pair, bit for bit."""
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(to_host(a), to_host(b))


def assert_matches(xp: Any, got: Any, want: np.ndarray, dtype: str) -> None:
    """``got``, an array of backend ``xp``, has ``dtype`` and the values of the float64
    reference ``want`` within that dtype's tolerance."""
    assert got.dtype == getattr(xp.ns, dtype), f"{got.dtype} != {dtype}"
    np.testing.assert_allclose(xp.to_numpy(got), want, **tolerances(dtype))


# -- models, data and losses -------------------------------------------------------------------
def linear34() -> xmlp.Linear:
    """A NumPy float64 Linear(3, 4), as in docs/errors.md's examples."""
    return xmlp.Linear(3, 4, rng=0)


def layer_kwargs(xp: Any, dtype: str = "float64") -> dict[str, Any]:
    """The ``xp=``, ``device=`` and ``dtype=`` of a layer made on backend case ``xp``."""
    return {"xp": xp.module, "device": xp.device, "dtype": getattr(xp.ns, dtype)}


def data(xp: Any, shape: tuple[int, ...], dtype: Any = "float64", seed: int = 0) -> Any:
    return xp.from_numpy(np.random.default_rng(seed).standard_normal(shape), dtype)


def used_linear(xp: Any, dtype: str = "float64") -> xmlp.Linear:
    """A Linear(3, 4) that has run forward and backward, so it holds x, output and grads."""
    layer = xmlp.Linear(3, 4, xp=xp.module, device=xp.device, dtype=getattr(xp.ns, dtype), rng=0)
    layer.forward(data(xp, (5, 3), dtype))
    layer.backward(data(xp, (5, 4), dtype, seed=1))
    return layer


def used_mlp(xp: Any, kind: str = "mlp") -> Any:
    if kind == "mlp":
        model = xmlp.MLP(3, 6, 2, xp=xp.module, device=xp.device, dtype=xp.float64, rng=0)
    else:
        kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
        model = xmlp.Sequential(xmlp.Linear(3, 6, rng=0, **kw), xmlp.ReLU(),
                                xmlp.Linear(6, 5, rng=1, **kw), xmlp.Sigmoid(),
                                xmlp.Linear(5, 2, rng=2, **kw))
    model.forward(data(xp, (5, 3)))
    model.backward(data(xp, (5, 2), seed=1))
    return model


def used_activation(xp: Any, cls: type) -> Any:
    act = cls()
    act.forward(data(xp, (5, 3)))
    act.backward(data(xp, (5, 3), seed=1))
    return act


ACTIVATIONS = [xmlp.Tanh, xmlp.ReLU, xmlp.Sigmoid]


MODELS = ["mlp", "sequential"]


def host_params(xp, model) -> list[np.ndarray]:
    return [xp.to_numpy(p) for p in model.parameters()]


# One data shape (10, 2) and one model shape (2 -> 5 -> 1) almost everywhere: JAX compiles each
# op once per shape, so shared shapes keep the suite fast.
def make_data(n: int = 10, in_dim: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, in_dim))
    t = np.sin(x.sum(axis=1, keepdims=True)) + 0.1 * gen.standard_normal((n, 1))
    return x, t


class PoisonedLoss(xmlp.MSELoss):
    """MSE whose target turns NaN from the ``poison``-th forward call on."""

    def __init__(self, poison: int) -> None:
        super().__init__()
        self.calls = 0
        self.poison = poison

    def forward(self, y, t):
        self.calls += 1
        if self.calls >= self.poison:
            t = t * math.nan
        return super().forward(y, t)


def toy_data(xp: Any, dtype: str = "float64") -> tuple[Any, Any]:
    x = np.linspace(-1, 1, 20)[:, None]
    return xp.from_numpy(x, dtype), xp.from_numpy(2 * x**2 + 3, dtype)


class Duck:
    """Has a forward, as a layer has, but is no xmlp.Module."""

    def forward(self, x: Any) -> Any:
        return x


class Tagged(np.ndarray):
    """An ndarray subclass: not the parameters' exact type, so update_params and the optimizers'
    steps take their checked path (which accepts it) instead of the fast one."""


def refuses_unknown_sizes(loss, method, y, t, keep, want):
    """``loss.<method>(y[keep], t[keep])`` (Dask arrays of nan length after boolean indexing)
    raises ValueError with exactly ``want``, on a fresh loss and again after a call with the
    known sizes went through."""
    call = getattr(loss, method)
    for _ in range(2):
        assert message(ValueError, lambda: call(y[keep], t[keep])) == want
        call(y, t)  # a known size goes through


# -- numbers -----------------------------------------------------------------------------------
HUGE_INT = 10**400  # beyond the float range


def int_id(value: Any) -> str:
    """A test id: huge ints by their size (an int of 5000 digits has no repr)."""
    if isinstance(value, int) and abs(value) > 10**30:
        return f"{'-' if value < 0 else ''}int_of_{value.bit_length()}_bits"
    return repr(value)


# -- the NumPy fast paths ----------------------------------------------------------------------
def with_and_without_fast_paths(run: Callable[[], Any]) -> list[Any]:
    """``run()`` with the NumPy fast paths on, then off (turned on again afterwards): the two
    results. Layers take the setting when they are made, so ``run`` makes its own."""
    results = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            results.append(run())
        finally:
            xmlp.ops.set_fast_paths(True)
    return results
