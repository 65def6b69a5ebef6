"""Throughput of fit on Dask data: streamed into a NumPy model vs in-memory NumPy fit (and, with
``--dask-model``, the model on Dask arrays: the data-parallel route).

    python benchmarks/streaming.py [--rounds 5] [--epochs 1] [--threads 2 1] [--dask-model]
                                   [--out DIR]

Data (100,000 x 64) float64 -> MLP(64, 256, 10) float64 (xmlp's default dtype), MSE, lr 0.01,
batch sizes 1,000 and 10,000, shuffle=False. The Dask array is ``da.from_array(x)`` with chunks
of ``--chunk-rows`` samples (default 10,000, a multiple of both batch sizes): its chunks are
already in memory, so the difference from in-memory fit is streaming's own cost (one compute
per chunk, the hand-over, the conversion). The routes alternate within each round (the order
flips every round); each run is a fresh model, timed with ``time.perf_counter``; samples/s is
samples x epochs / seconds. Ratios are per round, streamed / numpy, then the median: same-run
ratios, as fair as a shared machine allows. BLAS threads are set with threadpoolctl per
``--threads`` value. The load average before and after every case is recorded.

``--smoke``: 2,000 samples, chunks of 500, batches of 100, one round on one thread, to check
that the script works (``nox -s bench-smoke``); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import xmlp
from xmlp.cli.bench_cases import cpu_model

N, FEATURES, HIDDEN, TARGETS = 100_000, 64, 256, 10
LR = 0.01


def data(samples: int = N) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(0)
    x = gen.standard_normal((samples, FEATURES))
    y = np.tanh(x @ gen.standard_normal((FEATURES, TARGETS)) / 8.0)
    return x, y


def run(route: str, x: Any, y: Any, batch: int | None, epochs: int) -> tuple[float, float]:
    """(samples/s, last epoch's loss) of one fit from a fresh model."""
    xp = da if route == "dask_model" else None
    model = xmlp.MLP(FEATURES, HIDDEN, TARGETS, xp=xp, rng=0)
    start = time.perf_counter()
    history = xmlp.fit(model, x, y, epochs=epochs, lr=LR, batch_size=batch, progress=False)
    seconds = time.perf_counter() - start
    return x.shape[0] * epochs / seconds, history[-1]


def measure(routes: list[str], inputs: dict[str, Any], batch: int | None, threads: int,
            args: argparse.Namespace) -> dict[str, Any]:
    """Rounds of the routes, alternating their order; plus one Dask-model run with
    ``--dask-model`` when it is not one of the routes (it is slow at small batches)."""
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {r: [] for r in routes}
    losses: dict[str, float] = {}
    epochs = args.epochs if batch is not None else 3 * args.epochs  # one step per full epoch
    with threadpool_limits(threads):
        for r in range(args.rounds):
            for route in (routes if r % 2 == 0 else routes[::-1]):
                xs, ys = inputs[route]
                rate, losses[route] = run(route, xs, ys, batch, epochs)
                rates[route].append(rate)
        if args.dask_model and "dask_model" not in routes:
            xs, ys = inputs["dask_model"]
            rate, losses["dask_model"] = run("dask_model", xs, ys, batch, epochs)
            rates["dask_model"] = [rate]
    ratios = [a / b for a, b in zip(rates[routes[1]], rates["numpy"], strict=True)]
    median = {k: statistics.median(v) for k, v in rates.items()}
    case = {
        "blas_threads": threads, "batch": batch, "epochs": epochs,
        "chunk_rows": inputs[routes[1]][0].chunks[0][0], "routes": routes,
        "samples_per_second": rates, "median_samples_per_second": median,
        "ratios": ratios, "ratio_name": f"{routes[1]} / numpy",
        "median_ratio": statistics.median(ratios),
        "dask_model_over_numpy": (median["dask_model"] / median["numpy"]
                                  if "dask_model" in median else None),
        "last_loss": losses,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    label = "full" if batch is None else f"{batch:,}"
    rest = ", ".join(f"{k} {v:,.0f}/s" for k, v in median.items())
    print(f"threads {threads} batch {label}: {rest}; {case['ratio_name']} "
          f"{case['median_ratio']:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}); load "
          f"{load_before[0]:.1f} -> {case['load_average_after'][0]:.1f}", flush=True)
    # the same batches and weights on every route: the losses agree (exactly when streamed)
    for route in routes[1:]:
        if route == "streamed":
            assert losses[route] == losses["numpy"], losses
        else:
            assert abs(losses[route] - losses["numpy"]) <= 1e-9 * abs(losses["numpy"]), losses
    return case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                        help="BLAS thread counts to measure with (default: 2 1)")
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--dask-model", action="store_true",
                        help="also time the model on Dask arrays: once per mini-batch case "
                             "(slow), and in rounds against NumPy at full batch")
    parser.add_argument("--samples", type=int, default=N,
                        help=f"rows of the data set (default {N:,})")
    parser.add_argument("--out", help="directory for streaming.json and streaming.md")
    parser.add_argument("--smoke", action="store_true",
                        help="2,000 samples in chunks of 500, batches of 100, one round on one "
                             "thread: checks that the script works, measures nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.chunk_rows, args.batch, args.threads, args.rounds = (
            2_000, 500, [100], [1], 1)

    x, y = data(args.samples)
    n = args.samples
    xd = da.from_array(x, chunks=(args.chunk_rows, FEATURES))
    yd = da.from_array(y, chunks=(args.chunk_rows, TARGETS))
    inputs = {"numpy": (x, y), "streamed": (xd, yd), "dask_model": (xd, yd)}
    print(f"load average before: {os.getloadavg()}", flush=True)
    with threadpool_limits(1):
        run("numpy", x[:20_000], y[:20_000], 1000, 1)  # warm-up: imports, BLAS, allocator
        run("streamed", xd[:20_000], yd[:20_000], 1000, 1)
    cases = []
    for threads in args.threads:
        for batch in args.batch:
            cases.append(measure(["numpy", "streamed"], inputs, batch, threads, args))
        if args.dask_model:  # one huge batch: what the Dask model route is for
            full = {"numpy": (x, y), "dask_model": (da.from_array(x, chunks=(n // 4, FEATURES)),
                                                    da.from_array(y, chunks=(n // 4, TARGETS)))}
            cases.append(measure(["numpy", "dask_model"], full, None, threads, args))

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "dask": dask.__version__, "xmlp": xmlp.__version__,
        "threadpool_info": threadpool_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "shape": [n, FEATURES, HIDDEN, TARGETS], "dtype": "float64", "cases": cases,
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "streaming.json").write_text(json.dumps(report, indent=1) + "\n")
        (out / "streaming.md").write_text(markdown(report))
        print(f"wrote {out / 'streaming.json'} and {out / 'streaming.md'}")
    return 0


def markdown(report: dict[str, Any]) -> str:
    blas = ", ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture')}, "
                     f"{i['num_threads']} threads)" for i in report["threadpool_info"])
    lines = [
        "# fit on Dask data: streamed into NumPy vs in-memory NumPy vs the model on Dask",
        "",
        f"{report['date']} · {report['cpu']} ({report['cores']} cores) · numpy "
        f"{report['numpy']} · dask {report['dask']} · BLAS {blas}",
        "",
        f"Command: `{report['command']}`; environment: {report['env']}.",
        "",
        f"({report['shape'][0]:,} x {FEATURES}) float64 -> MLP({FEATURES}, {HIDDEN}, {TARGETS}), "
        "MSE, plain SGD, shuffle=False. Samples/s "
        "are medians over rounds, the routes alternating within each round; the ratio is the "
        "median of per-round ratios (its range in brackets). The Dask-model route at mini-batch "
        "sizes ran once per case. 'full' is one full-batch step per epoch (the Dask data in 4 "
        "chunks).",
        "",
        "| BLAS threads | batch | chunk rows | numpy | streamed | Dask model | ratio "
        "| load (1 min) before -> after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report["cases"]:
        med = c["median_samples_per_second"]

        def cell(route: str, med: dict[str, float] = med) -> str:
            return f"{med[route]:,.0f}/s" if route in med else "-"

        batch = "full" if c["batch"] is None else f"{c['batch']:,}"
        lines.append(
            f"| {c['blas_threads']} | {batch} | {c['chunk_rows']:,} | {cell('numpy')} | "
            f"{cell('streamed')} | {cell('dask_model')} | {c['ratio_name']}: "
            f"{c['median_ratio']:.3f}x ({min(c['ratios']):.3f}-{max(c['ratios']):.3f})"
            + (f"; Dask model / numpy {c['dask_model_over_numpy']:.3f}x"
               if c["dask_model_over_numpy"] and c["routes"][1] != "dask_model" else "")
            + f" | {c['load_average_before'][0]:.1f} -> {c['load_average_after'][0]:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
