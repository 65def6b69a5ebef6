"""The ``xp`` fixture: one parametrization per backend that is selected and can run here.

``XMLP_BACKENDS=numpy,array_api_strict pytest`` runs those two; unset (or ``all``) runs every
backend that imports here. Only the active backends' cases are collected, so a run reports no
skip per other backend:

* ``xp`` (and any fixture parametrized with :data:`BACKEND_PARAMS`) runs once per active
  backend; torch adds ``torch:cuda`` where CUDA is available.
* ``@pytest.mark.requires_backends("jax")``: a test (or one ``pytest.param``) that needs those
  backends, e.g. one comparing two of them, is collected only when all of them are active.
* ``@pytest.mark.xp_only("numpy", "array_api_strict")``: the ``xp`` cases of a test are limited
  to those backends (the test is not collected in other backends' sessions).
* ``test_<backend>.py`` and ``test_<backend>_*.py`` in any folder of tests/ (backend/test_dask.py,
  training/test_dask_streaming.py...) are collected only where that backend is active, so they
  may import it at the top.

A backend named in XMLP_BACKENDS that cannot run here (not installed, CuPy without a GPU) is a
usage error that says why, rather than a page of skips. Unset, the backends that cannot run
are listed once in the report header.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# scikit-learn's array API dispatch (tests/sklearn/) needs SciPy's array API support,
# which SciPy reads once, when it is first imported: set it before anything imports SciPy.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
# the extra that installs each backend, for messages
EXTRAS = {"array_api_strict": "strict", "torch": "torch", "jax": "jax", "dask": "dask",
          "cupy": "cupy"}


def selected_backends() -> list[str]:
    """The backend names XMLP_BACKENDS asks for (every known one when it is unset)."""
    raw = os.environ.get("XMLP_BACKENDS", "").strip()
    if not raw or raw == "all":
        return list(ALL_BACKENDS)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"XMLP_BACKENDS names unknown backends {sorted(unknown)}; "
                                f"known: {', '.join(ALL_BACKENDS)}")
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
        from xmlp.backend import to_host

        return to_host(a)


def dtype_str(dtype: Any) -> str:
    from xmlp.backend import dtype_name

    return dtype_name(dtype)


def _load(name: str) -> list[Backend] | str:
    """The Backend cases of one name (torch: cpu, and cuda where available), or why it cannot
    run here."""
    import array_api_compat

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
        return (f'not installed ({exc}); from the xmlp checkout: pip install '
                f'".[{EXTRAS.get(name, name)}]"')
    if name == "cupy":
        try:
            if module.cuda.runtime.getDeviceCount() < 1:
                return "no NVIDIA GPU visible to CuPy"
        except Exception as exc:
            return f"no usable NVIDIA GPU ({type(exc).__name__}: {exc})"
    ns = array_api_compat.array_namespace(module.asarray(0.0))
    if name == "torch":
        cases = [Backend("torch:cpu", module, ns, module.device("cpu"))]
        if module.cuda.is_available():
            cases.append(Backend("torch:cuda", module, ns, module.device("cuda:0")))
        return cases
    return [Backend(name, module, ns)]


ACTIVE: list[Backend] = []  # the cases every xp test runs on, in ALL_BACKENDS order
UNAVAILABLE: dict[str, str] = {}  # selected backend name -> why it cannot run here
for _name in selected_backends():
    _loaded = _load(_name)
    if isinstance(_loaded, str):
        UNAVAILABLE[_name] = _loaded
    else:
        ACTIVE.extend(_loaded)

BACKEND_PARAMS = [pytest.param(b, id=b.name) for b in ACTIVE]


def is_active(name: str) -> bool:
    """Whether backend ``name`` ("torch", or one device of it: "torch:cuda") runs here."""
    return any(b.name == name or b.name.split(":")[0] == name for b in ACTIVE)


def backend(name: str) -> Backend:
    """The active case ``name`` ("array_api_strict", "torch:cuda"; "torch" is torch:cpu).
    Tests that call it carry ``requires_backends(name)``, so it is there."""
    for b in ACTIVE:
        if b.name == name or b.name == f"{name}:cpu":
            return b
    raise LookupError(f"{name} is not active; mark the test requires_backends({name!r})")


def pytest_configure(config: pytest.Config) -> None:
    """A backend named in XMLP_BACKENDS that cannot run here stops the run, saying why."""
    if os.environ.get("XMLP_BACKENDS", "").strip() not in ("", "all") and UNAVAILABLE:
        why = "; ".join(f"{n}: {r}" for n, r in UNAVAILABLE.items())
        raise pytest.UsageError(f"XMLP_BACKENDS names backends that cannot run here ({why}). "
                                "Leave them out, or unset XMLP_BACKENDS to run every backend "
                                "that imports.")


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"xmlp backends: {', '.join(b.name for b in ACTIVE)} "
             f"(XMLP_BACKENDS={os.environ.get('XMLP_BACKENDS', '') or 'unset: all'})"]
    if UNAVAILABLE:
        lines.append("not run here: " + "; ".join(f"{n} ({r})" for n, r in UNAVAILABLE.items()))
    return lines


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """test_dask.py, test_jax_*.py... (in any folder): only where that backend is active."""
    stem = collection_path.stem
    if collection_path.suffix == ".py" and stem.startswith("test_"):
        for name in ALL_BACKENDS:
            if stem == f"test_{name}" or stem.startswith(f"test_{name}_"):
                return True if not is_active(name) else None
    return None


def _collected(item: pytest.Item) -> bool:
    for mark in item.iter_markers("requires_backends"):
        if not all(is_active(n) for n in mark.args):
            return False
    limits = [set(mark.args) for mark in item.iter_markers("xp_only")]
    callspec = getattr(item, "callspec", None)
    if limits and callspec is not None:
        for value in callspec.params.values():
            if isinstance(value, Backend) and not all(
                value.name in names or value.name.split(":")[0] in names for names in limits
            ):
                return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop (and report as deselected) the cases of backends that are not active; under mutmut,
    order the rest fastest first."""
    keep = [item for item in items if _collected(item)]
    if len(keep) < len(items):
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
        items[:] = keep
    _fastest_first_under_mutmut(items)


@pytest.fixture(params=BACKEND_PARAMS)
def xp(request: pytest.FixtureRequest) -> Backend:
    """Each active backend in turn."""
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
    # Dask's threaded scheduler has the same trouble (a fork inherits its pool's locks, not its
    # threads): compute in the calling thread.
    try:
        import dask
    except ImportError:
        pass
    else:
        dask.config.set(scheduler="synchronous")
    # torch's CPU thread pool (OpenMP) is not fork-safe either: a fork of a process whose pool
    # has run waits forever in its first parallel op (seen: test_cross_entropy_matches_pytorch
    # timing out for every mutant it ran, false "kills"). One thread: no pool is ever started.
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(1)
    # The docs' examples are left out, as in the backend sessions (nox -s examples runs them):
    # they test the pages, and would make every mutant of the core modules run them.
    collect_ignore = ["docs/test_examples.py"]


def _fastest_first_under_mutmut(items: list[pytest.Item]) -> None:
    """Under mutmut (``nox -s mutate``, tools/mutation/README.md): the fastest tests first, by
    the durations mutmut recorded, so that a mutant's first failure comes early (it stops at
    the first failure). Order is free: no test depends on another (docs/test_examples.py,
    whose blocks run in page order, is left out of mutmut's runs in pyproject.toml)."""
    if not os.environ.get("MUTANT_UNDER_TEST") or not os.path.exists("mutmut-stats.json"):
        return
    with open("mutmut-stats.json") as f:
        durations = json.load(f).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
