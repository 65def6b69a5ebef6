"""pytest-benchmark suite: backend x dtype x shape, timing the same cases as ``xmlp bench``.

Not part of the test suite (testpaths is tests/); run it by naming the folder:

    pytest benchmarks                                        # numpy + torch:cpu peer, quick grid
    XMLP_BENCH_FULL=1 pytest benchmarks --benchmark-json=out.json
    XMLP_BENCH_BACKENDS=numpy,jax,torch XMLP_BENCH_DTYPES=float32 pytest benchmarks
    XMLP_BENCH_OPS=mlp_step,step_gemms,torch_step XMLP_BENCH_SHAPES=1024,256,1024,256 \\
        pytest benchmarks

XMLP_BENCH_BACKENDS: numpy (default), array_api_strict, torch (= torch:cpu and torch:cuda),
torch:cpu, torch:cuda, jax, dask, cupy, all. A backend that cannot run here is skipped with the
reason. torch_step (plain PyTorch) runs as the peer on torch:cpu, and on torch:cuda when a GPU
backend is selected. XMLP_BENCH_SHAPES: shapes separated by ";" instead of the size grid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from xmlp import _bench_cases as bc
from xmlp.bench import _backend_names, _shape

FULL = os.environ.get("XMLP_BENCH_FULL", "") == "1"
ROUNDS = 7 if FULL else 5  # timed rounds; pytest-benchmark reports their statistics
WARMUP = 2  # untimed calls before calibration, plus one warm-up round in pedantic
WARMUP_TIME = 1.0 if FULL else 0.25  # and untimed calls for at least this many seconds
MIN_TIME = 0.1 if FULL else 0.02  # seconds per round: iterations are chosen to fill it


def _env_list(name: str, default: str) -> list[str]:
    raw = os.environ.get(name, "").strip() or default
    return [v.strip() for v in raw.split(",") if v.strip()]


def _selection() -> tuple[list[Any], list[str], dict[str, bc.Backend]]:
    """(params for the cases, reasons for skipped backends, loaded backends by name)."""
    names = _backend_names(_env_list("XMLP_BENCH_BACKENDS", "numpy"))
    dtypes = _env_list("XMLP_BENCH_DTYPES", ",".join(bc.DTYPES))
    ops = _env_list("XMLP_BENCH_OPS", ",".join(bc.OPS))
    for what, got, allowed in (("dtype", dtypes, bc.DTYPES), ("op", ops, bc.OPS)):
        bad = sorted(set(got) - set(allowed))
        if bad:
            raise pytest.UsageError(f"XMLP_BENCH: unknown {what} {bad}; choose from {allowed}")
    shapes_env = os.environ.get("XMLP_BENCH_SHAPES", "").strip()
    shapes = [_shape(s) for s in shapes_env.split(";") if s.strip()] or None
    loaded, peers, skipped = bc.load_backends(names, with_peers="torch_step" in ops)
    todo = bc.plan(loaded, dtypes, ops, full=FULL, shapes=shapes, peers=peers)
    by_name = {b.name: b for b in [*loaded, *peers.values()]}
    return todo, skipped, by_name


TODO, SKIPPED, BACKENDS = _selection()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``planned`` with the cases of the ops the test module lists in ``OPS``."""
    if "planned" not in metafunc.fixturenames:
        return
    mine = getattr(metafunc.module, "OPS", bc.OPS)
    params = [
        pytest.param(p, id=f"{p.op}-{p.backend}-{p.dtype}-{'x'.join(map(str, p.shape))}")
        for p in TODO if p.op in mine
    ]
    params += [pytest.param(None, id=f"skipped{n}", marks=pytest.mark.skip(reason=reason))
               for n, reason in enumerate(SKIPPED)]
    if not params:
        params = [pytest.param(None, id="none", marks=pytest.mark.skip(reason="no case selected"))]
    metafunc.parametrize("planned", params)


class _Workloads:
    """Keeps the arrays of one (backend, dtype, shape) at a time: cases come grouped by it."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.workload: bc.Workload | None = None

    def get(self, p: bc.Planned) -> bc.Workload:
        key = (p.backend, p.dtype, p.shape)
        if key != self.key or self.workload is None:
            self.close()
            self.workload = bc.Workload(BACKENDS[p.backend], p.dtype, p.shape)
            self.key = key
        return self.workload

    def close(self) -> None:
        if self.workload is not None:
            backend = self.workload.backend
            self.workload = self.key = None
            backend.free()


@pytest.fixture(scope="session")
def workloads() -> Iterator[_Workloads]:
    cache = _Workloads()
    yield cache
    cache.close()


@pytest.fixture
def bench_case(benchmark: Any, planned: bc.Planned, workloads: _Workloads) -> Any:
    """A function that times ``planned`` with ``benchmark.pedantic`` and fills extra_info."""

    def run() -> None:
        case = workloads.get(planned).case(planned.op)
        number = bc.calibrate(case.fn, warmup=WARMUP, warmup_time=WARMUP_TIME,
                              min_time=MIN_TIME)
        benchmark.group = f"{planned.dtype} {planned.shape}"
        benchmark.pedantic(case.fn, rounds=ROUNDS, warmup_rounds=1, iterations=number)
        backend = case.backend
        info = {
            "op": planned.op, "backend": backend.name, "device": backend.device_name(),
            "dtype": planned.dtype, "shape": list(planned.shape), "batch": planned.shape[0],
            "flops": case.flops, "threads": backend.threads(), "iterations": number,
        }
        if benchmark.stats is not None:  # None under --benchmark-disable
            info["gflops"] = bc.gflops(case.flops, benchmark.stats.stats.median)
        if case.check is not None:
            info["finite"] = case.check()
        if backend.kind == "gpu":
            info["cuda_event_seconds"] = bc.event_seconds(case, ROUNDS)
        benchmark.extra_info.update(info)

    return run
