"""The ``xp`` fixture: one parametrization per installed backend, filtered by XMLP_BACKENDS.

``XMLP_BACKENDS=numpy,array_api_strict pytest`` runs those two; unset runs every backend that
imports here. A backend that is named but missing (or a GPU backend without a GPU) is skipped
with the reason.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")


def selected_backends() -> list[str]:
    raw = os.environ.get("XMLP_BACKENDS", "").strip()
    if not raw or raw == "all":
        return list(ALL_BACKENDS)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"XMLP_BACKENDS names unknown backends {sorted(unknown)}")
    return names


@dataclass
class Backend:
    """A backend under test: the module users pass as ``xp=`` and helpers to move data."""

    name: str  # test id: "numpy", "torch:cpu", "cupy"...
    module: Any  # as users import it: numpy, torch, jax.numpy, dask.array...
    ns: Any  # its Array API namespace (array-api-compat wrapper where there is one)
    device: Any = None

    def __getattr__(self, attr: str) -> Any:  # xp.float32, xp.asarray... from the namespace
        return getattr(self.ns, attr)

    def from_numpy(self, a: Any, dtype: Any = None) -> Any:
        """A fresh array of this backend from NumPy data (dtype: a name or dtype, default a's)."""
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(np.dtype(dtype_str(dtype)))
        if self.name == "dask":
            chunk = max(1, a.shape[0] // 2) if a.ndim else ()
            chunks = (chunk, *a.shape[1:]) if a.ndim else ()
            return self.module.from_array(a.copy(), chunks=chunks)
        return self.ns.asarray(a.copy(), device=self.device, copy=True)

    def to_numpy(self, a: Any) -> np.ndarray:
        from xmlp._backend import to_host

        return to_host(a)


def dtype_str(dtype: Any) -> str:
    from xmlp._backend import dtype_name

    return dtype_name(dtype)


def _load(name: str) -> list[Any]:
    """pytest.params for one backend name (several for torch: cpu and cuda)."""
    import array_api_compat

    reason = None
    try:
        if name == "jax":
            jax = importlib.import_module("jax")
            jax.config.update("jax_enable_x64", True)
            module = importlib.import_module("jax.numpy")
        elif name == "dask":
            module = importlib.import_module("dask.array")
        else:
            module = importlib.import_module(name)
    except ImportError as exc:
        reason = f"{name} is not installed ({exc})"
    if reason is None and name == "cupy":
        try:
            if module.cuda.runtime.getDeviceCount() < 1:
                reason = "cupy: no CUDA device"
        except Exception as exc:
            reason = f"cupy: no usable CUDA GPU ({type(exc).__name__}: {exc})"
    if reason is not None:
        return [pytest.param(None, id=name, marks=pytest.mark.skip(reason=reason))]
    ns = array_api_compat.array_namespace(module.asarray(0.0))
    if name == "torch":
        cpu = Backend("torch:cpu", module, ns, module.device("cpu"))
        params = [pytest.param(cpu, id="torch:cpu")]
        if module.cuda.is_available():
            params.append(pytest.param(Backend("torch:cuda", module, ns, module.device("cuda:0")),
                                       id="torch:cuda"))
        return params
    return [pytest.param(Backend(name, module, ns), id=name)]


BACKEND_PARAMS = [p for name in selected_backends() for p in _load(name)]


@pytest.fixture(params=BACKEND_PARAMS)
def xp(request: pytest.FixtureRequest) -> Backend:
    """Each selected backend in turn (skipped with a reason where it cannot run here)."""
    return request.param


@pytest.fixture(params=["float64", "float32"])
def dtype(request: pytest.FixtureRequest) -> str:
    return request.param


def tolerances(dtype: str) -> dict[str, float]:
    """float64 tight, float32 loose."""
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 2e-4, "atol": 2e-5}


if os.environ.get("MUTANT_UNDER_TEST") is not None:
    # Under mutmut every mutant is a fork of one test process. tqdm's default lock is a
    # multiprocessing lock, shared by all those forks: a mutant killed (timed out) inside fit's
    # progress bar leaves it held, and every later fork that makes a bar waits on it forever.
    # A per-process lock and no monitor thread keep the forks independent.
    import threading

    import tqdm

    tqdm.tqdm.monitor_interval = 0
    tqdm.tqdm.set_lock(threading.RLock())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut (``nox -s mutate``, tests/mutation/README.md): the fastest tests first, by
    the durations mutmut recorded, so that a mutant's first failure comes early (it stops at
    the first failure). Order is free: no test depends on another."""
    if not os.environ.get("MUTANT_UNDER_TEST") or not os.path.exists("mutmut-stats.json"):
        return
    with open("mutmut-stats.json") as f:
        durations = json.load(f).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
