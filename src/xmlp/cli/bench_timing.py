"""The one timing method behind ``xmlp bench``, ``pytest benchmarks`` and benchmarks/*.py.

Every variant to compare (an op on a backend, the xmlp step and the PyTorch step, checks on and
off...) is a callable that runs once **and waits for its results**. :func:`interleaved` warms
each up, sizes its samples, then times them in rounds, every variant once per round, so a
machine that slows down for a while (a shared VM, another process) slows every variant alike
and same-run ratios stay fair, as long as the other load is light: under heavy load a library
whose threads wait for each other loses far more than one that runs on one thread, and ratios
mislead too (``_bench_report.disturbances`` flags such runs). The reported time is the median
over rounds.

Libraries with thread pools of their own (OpenBLAS under NumPy, OpenMP under PyTorch, XLA's
pool under JAX) are *families*: their idle workers keep spinning for a while after a call,
and on a machine with few cores the next library's call would share its cores with them.
Within a round the variants run family by family, with a pause before each change of family.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["PAUSE", "Timing", "family_of", "interleaved", "others_cpu_seconds"]

K = TypeVar("K", bound=Hashable)

# Seconds to wait before switching to another family's variants: longer than OpenBLAS's
# worker threads spin after a call (2**28 cycles, about 0.1 s at 2.5 GHz). Measured on the
# 2-core CI-like VM: see benchmarks/README.md, "How the timing works".
PAUSE = 0.2


@dataclass
class Timing:
    """Median seconds per call over ``rounds`` samples of ``number`` calls each."""

    seconds: float
    times: list[float] = field(default_factory=list)  # seconds per call, one per round
    number: int = 1
    warmup_calls: int = 0


def family_of(backend: str) -> str:
    """The thread pool a backend's calls run on: "torch", "jax", "cupy" or "numpy"
    (NumPy's BLAS, also under array-api-strict and Dask)."""
    head = backend.split(":")[0]
    return head if head in ("torch", "jax", "cupy") else "numpy"


def others_cpu_seconds() -> float | None:
    """CPU seconds used so far by everything but this process (other processes, interrupts
    and time a hypervisor stole), from /proc/stat; None where there is none. The difference
    over a span, divided by its length, is how many CPUs others took meanwhile."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    own = os.times()
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return busy - (own.user + own.system)


def _warm_up(fn: Callable[[], None], warmup_time: float, timer: Callable[[], float]
             ) -> tuple[float, int]:
    """Call ``fn`` for at least ``warmup_time`` seconds, and at least twice unless one call
    takes a second (compilation, memory pools, caches and the allocator settle; a call that
    long is past all that); (seconds of the last call, calls made)."""
    calls, last = 0, 0.0
    begin = timer()
    while calls < 1 or (calls < 2 and last < 1.0) or timer() - begin < warmup_time:
        start = timer()
        fn()
        last = timer() - start
        calls += 1
    return last, calls


def interleaved(
    variants: Mapping[K, Callable[[], None]],
    *,
    rounds: int,
    min_time: float = 0.05,
    warmup_time: float = 0.25,
    max_time: float | None = None,
    family: Callable[[K], str] | None = None,
    pause: float = PAUSE,
    timer: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[K, Timing]:
    """Time every variant in ``rounds`` interleaved rounds; the median per call of each.

    One sample is ``number`` back-to-back calls, ``number`` chosen after warm-up so a sample
    lasts ``min_time`` seconds. ``max_time`` caps the timed seconds of all rounds together by
    making fewer rounds, never fewer than 3 (or ``rounds`` if that is less). ``family(key)``
    groups variants that share a thread pool: each round runs the families in turn, pausing
    ``pause`` seconds before each change; odd rounds run everything in reverse order, so no
    variant always comes first after a pause.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    fam: Callable[[K], str] = family or (lambda _key: "")
    order = sorted(variants, key=lambda k: fam(k))  # stable: callers' order within a family
    number: dict[K, int] = {}
    warm: dict[K, int] = {}
    per_round = 0.0
    previous: str | None = None
    for key in order:
        if previous is not None and fam(key) != previous:
            sleep(pause)
        previous = fam(key)
        last, warm[key] = _warm_up(variants[key], warmup_time, timer)
        number[key] = max(1, math.ceil(min_time / last)) if last > 0 else 1
        per_round += number[key] * last
    if max_time is not None and per_round > 0:
        rounds = max(min(3, rounds), min(rounds, int(max_time // per_round)))
    times: dict[K, list[float]] = {key: [] for key in order}
    for r in range(rounds):
        for key in (order if r % 2 == 0 else order[::-1]):
            if previous is not None and fam(key) != previous:
                sleep(pause)
            previous = fam(key)
            fn, n = variants[key], number[key]
            start = timer()
            for _ in range(n):
                fn()
            times[key].append((timer() - start) / n)
    return {key: Timing(statistics.median(times[key]), times[key], number[key], warm[key])
            for key in order}
