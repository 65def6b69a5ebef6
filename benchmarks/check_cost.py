"""What the input checks cost on the seed-sized training step.

One step is MLP(1, 10, 1) forward, MSELoss forward and backward, MLP backward and
update_params, on the seed's batch of 100 samples, float64, NumPy. The same step is timed with
the checks and with them patched out (here only, for the measurement: the library has no switch
to turn them off), alternating the two in one run; the medians and their ratio are printed.

Patched out: every layer's and loss's ``check`` (what the base class runs before the math:
namespace, dtype, device, shapes, parameters replaced by hand), the containers' test that their
layers form a plain chain, and update_params's learning-rate and gradient checks. What stays in
both is the math and the calls that dispatch to it.

Two clocks: wall time (what a user sees) and the main thread's CPU time
(``time.thread_time``), which a busy shared machine disturbs less; at this size BLAS runs on
the calling thread, so the thread's CPU time is the step's.

    python benchmarks/check_cost.py [--rounds 20] [--steps 2000]
    python benchmarks/check_cost.py --smoke    # a few steps: checks the script works
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

import xmlp
from xmlp.cli.bench_timing import interleaved
from xmlp.data import generate_data
from xmlp.nn import containers as models
from xmlp.nn import linear as layers
from xmlp.nn import losses, module


@contextlib.contextmanager
def checks_off() -> Iterator[None]:
    """Replace every check with the cheapest stand-in that still returns what callers use."""
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    patch(module.Module, "check", lambda self, method, *args: None)
    patch(layers.Linear, "check", lambda self, method, *args: None)
    patch(losses.Loss, "check", lambda self, method, *args: None)
    # the containers' test that their layers form a plain chain (only its first layer checks)
    patch(models.Container, "plain", lambda self, method, layers=None: True)
    # update_params without the learning-rate and gradient checks: each layer's SGD step
    patch(module.Module, "update_params",
          lambda self, lr: [m.sgd_step(lr) for m in self.modules() if m.param_names])
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def make_step(dtype: str = "float64") -> Callable[[], None]:
    model = xmlp.MLP(1, 10, 1, rng=0, dtype=dtype)
    loss = xmlp.MSELoss()
    x, y = (a.astype(dtype) for a in generate_data())

    def step() -> None:
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        model.update_params(0.1)

    return step


def measure(rounds: int, steps: int, warmup_time: float = 0.5) -> dict[str, Any]:
    """Median microseconds per step with and without checks, in interleaved rounds of
    ``steps`` steps per sample (xmlp bench's timing, :func:`xmlp.cli.bench_timing.interleaved`)."""
    step = make_step()

    def with_checks() -> None:
        for _ in range(steps):
            step()

    def without_checks() -> None:
        with checks_off():
            for _ in range(steps):
                step()

    result: dict[str, Any] = {}
    for clock_name, clock in (("wall", time.perf_counter), ("thread_cpu", time.thread_time)):
        med = interleaved({"on": with_checks, "off": without_checks}, rounds=rounds,
                          min_time=0.0, warmup_time=warmup_time, timer=clock)
        on, off = (med[k].seconds / steps * 1e6 for k in ("on", "off"))
        result[clock_name] = {
            "step_us_with_checks": round(on, 2),
            "step_us_without_checks": round(off, 2),
            "checks_us": round(on - off, 2),
            "ratio_with_over_without": round(on / off, 3),
            "checks_share_of_step": round((on - off) / on, 3),
        }
    result["rounds"], result["steps_per_sample"] = rounds, steps
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true",
                        help="2 rounds of 20 steps, no warm-up: checks that the script works "
                             "(the numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.steps = 2, 20
    result = measure(args.rounds, args.steps, warmup_time=0.0 if args.smoke else 0.5)
    result["numpy"] = np.__version__
    result["python"] = platform.python_version()
    result["blas"] = [{k: info.get(k) for k in ("internal_api", "num_threads", "version")}
                      for info in threadpool_info()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
