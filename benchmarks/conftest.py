"""pytest-benchmark suite: the cases of ``xmlp bench``, timed the same way.

Each (dtype, shape) group is measured once, by xmlp bench's own code (every backend and op of
the group in the same interleaved rounds, :mod:`xmlp.cli.bench_timing`); each test then hands its
case's per-round times to pytest-benchmark, so its tables, ``--benchmark-json``,
``--benchmark-autosave`` and ``pytest-benchmark compare`` show exactly what ``xmlp bench``
measured. Not part of the test suite (testpaths is tests/); run it by naming the folder:

    pytest benchmarks                                        # numpy + torch:cpu peer, quick grid
    XMLP_BENCH_FULL=1 pytest benchmarks --benchmark-json=out.json
    XMLP_BENCH_BACKENDS=all XMLP_BENCH_DTYPES=float32 pytest benchmarks
    XMLP_BENCH_OPS=mlp_step,step_gemms,torch_step XMLP_BENCH_SHAPES="1024,256,1024,256" \\
        pytest benchmarks

XMLP_BENCH_BACKENDS: as ``xmlp bench --backend`` (default numpy). A backend that cannot run
here is a skipped test that says why. XMLP_BENCH_SHAPES: shapes separated by ";".
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest

from xmlp.cli import bench
from xmlp.cli import bench_cases as bc
from xmlp.cli import bench_report as rep

FULL = os.environ.get("XMLP_BENCH_FULL", "") == "1"
ROUNDS, MIN_TIME, WARMUP_TIME, MAX_TIME = bench._TIMING[not FULL]


def _env_list(name: str, default: str) -> list[str]:
    return [v.strip() for v in (os.environ.get(name, "").strip() or default).split(",")
            if v.strip()]


def _selection() -> tuple[list[bc.Group], list[str], dict[str, bc.Backend]]:
    """(the groups to measure, reasons for skipped backends, loaded backends by name)."""
    try:
        names = bench._backend_names(_env_list("XMLP_BENCH_BACKENDS", "numpy"))
        dtypes = bench._choose(_env_list("XMLP_BENCH_DTYPES", ""), bc.DTYPES, "dtype")
        ops = bench._choose(_env_list("XMLP_BENCH_OPS", ""), bc.OPS, "op")
    except ValueError as exc:
        raise pytest.UsageError(f"XMLP_BENCH: {exc}") from exc
    raw = os.environ.get("XMLP_BENCH_SHAPES", "").strip()
    shapes = [bench._shape(s) for s in raw.split(";") if s.strip()] or None
    loaded, peers, skipped = bc.load_backends(names, with_peers="torch_step" in ops)
    groups = bc.plan(loaded, dtypes, ops, full=FULL, shapes=shapes, peers=peers)
    return groups, skipped, {b.name: b for b in [*loaded, *peers.values()]}


GROUPS, SKIPPED, BACKENDS = _selection()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``planned`` with (group, backend, op) for every case, grouped so a
    group's tests run one after another."""
    if "planned" not in metafunc.fixturenames:
        return
    params = [pytest.param((g, name, op), id=f"{op}-{name}-{g.dtype}-{'x'.join(map(str, g.shape))}")
              for g in GROUPS for name, op in g.items]
    params += [pytest.param(None, id=f"skipped{n}", marks=pytest.mark.skip(reason=reason))
               for n, reason in enumerate(SKIPPED)]
    metafunc.parametrize("planned", params or [pytest.param(None, id="none", marks=pytest.mark.skip(
        reason="no case selected"))])


@pytest.fixture(scope="session")
def measured() -> dict[Any, dict[tuple[str, str], dict[str, Any]]]:
    """Records by group, each group measured when its first test asks for it."""
    return {}


@pytest.fixture
def bench_case(benchmark: Any, planned: Any, measured: dict[Any, Any]) -> Any:
    """Measure the case's group if that was not done yet, then replay the case's per-round
    times through pytest-benchmark."""

    def run() -> None:
        group, name, op = planned
        if group not in measured:
            failures: list[str] = []
            timing = {"rounds": ROUNDS, "min_time": MIN_TIME, "warmup_time": WARMUP_TIME,
                      "max_time": MAX_TIME}
            pairs = bench._measure_group(bc, group, BACKENDS, timing, failures)
            records = [rep.make_record(c, t, device=BACKENDS[c.backend.name].device_name(),
                                       mode="full" if FULL else "quick") for c, t in pairs]
            rep.add_ratios(records)
            measured[group] = {(r["backend"], r["op"]): r for r in records}
            measured[group]["failures"] = failures
        record = measured[group].get((name, op))
        if record is None:
            pytest.fail(f"{op} on {name} failed: {measured[group]['failures']}")
        # pytest-benchmark reads its clock around each round's call: a clock that advances
        # by the measured time of each round makes its statistics those of xmlp bench
        starts = itertools.accumulate(record["times"], initial=0.0)
        ticks = itertools.chain.from_iterable(
            (t0, t0 + dt) for t0, dt in zip(starts, record["times"], strict=False))
        if not hasattr(benchmark, "_timer"):
            raise RuntimeError("this pytest-benchmark has no _timer to replay times through")
        benchmark._timer = lambda: next(ticks)
        benchmark.group = f"{group.dtype} {group.shape}"
        benchmark.pedantic(lambda: None, rounds=len(record["times"]), iterations=1)
        benchmark.extra_info.update({k: v for k, v in record.items() if k != "times"})

    return run
