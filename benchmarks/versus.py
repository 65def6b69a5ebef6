"""xmlp's NumPy training step at another git revision against this checkout's, and both against
the PyTorch step, timed in the same interleaved rounds (xmlp bench's method).

    python benchmarks/versus.py REV [--shape B,I,H,O ...] [--dtype D ...] [--clock cpu]

The other revision's ``src/xmlp`` is exported (``git archive``) into a temporary folder as the
package ``xmlp_REV`` (xmlp imports itself relatively, so both load side by side). Prints a
Markdown table: the step at REV and here, the PyTorch step, and both ratios to PyTorch. With
``--clock cpu`` every library runs on one thread and the clock is the process's CPU time, which
other processes on a shared machine barely change.

``--smoke`` (``nox -s bench-smoke``): one round without warm-up, at (8, 3, 5, 2) in float64
unless shapes and dtypes are given, and without the PyTorch step where torch is not installed:
checks that the script works, measures nothing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, into: Path) -> str:
    """``src/xmlp`` at ``rev`` as the package ``xmlp_<rev>`` under ``into``; its name."""
    blob = subprocess.run(["git", "archive", rev, "src/xmlp"], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    name = "xmlp_" + "".join(c if c.isalnum() else "_" for c in rev)
    (into / "src" / "xmlp").rename(into / name)
    return name


def step(module: Any, shape: tuple[int, ...], dtype: str) -> Any:
    """One MLP step (forward, MSE, backward, SGD) with ``module``'s classes."""
    import numpy as np

    b, i, h, o = shape
    gen = np.random.default_rng(0)
    x, t = gen.standard_normal((b, i)).astype(dtype), gen.standard_normal((b, o)).astype(dtype)
    model, loss = module.MLP(i, h, o, dtype=dtype, rng=0, init="xavier"), module.MSELoss()

    def run() -> None:
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        model.update_params(1e-4)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare with, e.g. main or 8fdcec1")
    parser.add_argument("--shape", action="append", metavar="B,I,H,O",
                        help="shapes (default: xmlp bench's full CPU grid)")
    parser.add_argument("--dtype", action="append", choices=("float32", "float64"))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--smoke", action="store_true",
                        help="one round, no warm-up, (8, 3, 5, 2) float64 unless given, no "
                             "PyTorch step without torch: checks that the script works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds = 1
        args.shape, args.dtype = args.shape or ["8,3,5,2"], args.dtype or ["float64"]
    if args.clock == "cpu":  # before NumPy and torch start their thread pools
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XMLP_THREADS"):
            os.environ[var] = "1"
    torch: Any = None
    if args.smoke and importlib.util.find_spec("torch") is None:
        print("versus.py --smoke: torch is not installed, the PyTorch step is left out\n")
    else:
        torch = importlib.import_module("torch")

    import xmlp
    from xmlp.cli.bench_cases import grid, torch_step
    from xmlp.cli.bench_report import fmt_seconds, load_average
    from xmlp.cli.bench_timing import family_of, interleaved

    if args.clock == "cpu" and torch is not None:
        torch.set_num_threads(1)
    shapes = [tuple(int(d) for d in s.split(",")) for s in args.shape or []] or grid("cpu", True)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        old = importlib.import_module(export(args.rev, Path(tmp)))
        print(f"xmlp at {args.rev} against this checkout and the PyTorch step; clock "
              f"{args.clock}; load average {load_average()}\n")
        print(f"| shape | dtype | step at {args.rev} | step here | PyTorch step | before | after |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for shape in shapes:
            for dtype in args.dtype or ["float32", "float64"]:
                variants = {("numpy", "before"): step(old, shape, dtype),
                            ("numpy", "after"): step(xmlp, shape, dtype)}
                if torch is not None:
                    b, i, h, o = shape
                    gen = torch.Generator().manual_seed(0)
                    tdt = getattr(torch, dtype)
                    params = [torch.randn(s, generator=gen, dtype=tdt) * 0.05
                              for s in ((h, i), (h,), (o, h), (o,))]
                    x = torch.randn(b, i, generator=gen, dtype=tdt)
                    t = torch.randn(b, o, generator=gen, dtype=tdt)
                    variants[("torch:cpu", "torch")] = lambda p=params, x=x, t=t: torch_step(
                        p, x, t, 1e-4)
                med = interleaved(variants, rounds=args.rounds,
                                  min_time=0.0 if args.smoke else 0.05,
                                  warmup_time=0.0 if args.smoke else 0.3,
                                  max_time=40.0, family=lambda k: family_of(k[0]),
                                  timer=time.process_time if args.clock == "cpu"
                                  else time.perf_counter)
                before, after = med[("numpy", "before")].seconds, med[("numpy", "after")].seconds
                peer = med[("torch:cpu", "torch")].seconds if torch is not None else None
                print(f"| {shape} | {dtype} | {fmt_seconds(before)} | {fmt_seconds(after)} | "
                      + (f"{fmt_seconds(peer)} | {before / peer:.2f}x | {after / peer:.2f}x |"
                         if peer else "- | - | - |"), flush=True)
        print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
