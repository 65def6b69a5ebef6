"""xmlp.sklearn against scikit-learn's own MLPClassifier / MLPRegressor: test score and fit time
over several seeds, same data, architecture, solver, batch size and number of epochs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/sklearn_compare.py --seeds 5 --out benchmarks/results/sklearn-cpu-2core

Data: the 8x8 digits (``sklearn.datasets.load_digits``, shipped with scikit-learn) and a
``make_regression`` problem (nothing is downloaded), each split 80/20 once and standardised on
the training part (the regression target too). Every fit runs exactly ``--epochs`` epochs
(``n_iter_no_change`` above it), seeded by ``random_state`` = the seed for both libraries.
Runs of one seed are interleaved (their order rotates from seed to seed) so that the other
load on a shared machine falls on all of them alike; ratios are taken within a seed.

Variants: scikit-learn on float64 data (``sk64``, the reference) and on float32 data
(``sk32``: scikit-learn keeps float32), xmlp on float64 (``xmlp64``, like for like) and
xmlp told ``dtype="float32"`` on the same float64 data (``xmlp32``).

``--smoke``: one seed, 2 epochs, a hidden layer of 8 and 200 regression samples, to check that
the script works (``nox -s bench-smoke``); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xmlp.cli.bench_cases import cpu_model


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def datasets(n_regression: int) -> dict[str, tuple[Any, ...]]:
    from sklearn.datasets import load_digits, make_regression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    out: dict[str, tuple[Any, ...]] = {}
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    out["digits"] = (scaler.transform(Xtr), scaler.transform(Xte), ytr, yte)
    X, y = make_regression(n_samples=n_regression, n_features=40, n_informative=25,
                           noise=20.0, random_state=0)
    y = y + 0.02 * y**2  # a little curvature, so the hidden layer has something to do
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    mean, std = ytr.mean(), ytr.std()
    out["regression"] = (scaler.transform(Xtr), scaler.transform(Xte), (ytr - mean) / std,
                         (yte - mean) / std)
    return out


def variants(task: str, params: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """name -> (estimator, dtype of the data given to fit)."""
    from sklearn.neural_network import MLPClassifier as SkC
    from sklearn.neural_network import MLPRegressor as SkR

    from xmlp.sklearn import MLPClassifier, MLPRegressor

    sk, ours = (SkC, MLPClassifier) if task == "digits" else (SkR, MLPRegressor)
    return {
        "sk64": (sk(**params), "float64"),
        "sk32": (sk(**params), "float32"),
        "xmlp64": (ours(**params), "float64"),
        "xmlp32": (ours(**params, dtype="float32"), "float64"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--n-regression", type=int, default=5000)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for both libraries (default 1: see the notes)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="1 seed, 2 epochs, hidden 8, 200 regression samples: checks that "
                             "the script works, measures nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.epochs, args.hidden, args.n_regression = 1, 2, [8], 200

    import sklearn
    from threadpoolctl import threadpool_info, threadpool_limits

    import xmlp

    data = datasets(args.n_regression)
    base = dict(hidden_layer_sizes=tuple(args.hidden), activation="relu", solver="adam",
                learning_rate_init=1e-3, alpha=1e-4, batch_size=200, max_iter=args.epochs,
                n_iter_no_change=args.epochs + 1, tol=0.0, shuffle=True)
    runs: list[dict[str, Any]] = []
    load_before = uptime()
    started = time.time()
    with threadpool_limits(limits=args.blas_threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the point here
        blas = threadpool_info()
        for task, (Xtr, Xte, ytr, yte) in data.items():
            names = list(variants(task, base))
            for seed in range(args.seeds):
                order = names[seed % len(names):] + names[:seed % len(names)]
                for name in order:
                    est, dtype = variants(task, {**base, "random_state": seed})[name]
                    X = Xtr.astype(dtype)
                    t0 = time.perf_counter()
                    est.fit(X, ytr)
                    seconds = time.perf_counter() - t0
                    score = float(est.score(Xte.astype(dtype), yte))
                    runs.append({"task": task, "variant": name, "seed": seed,
                                 "fit_s": seconds, "score": score, "epochs": est.n_iter_})
                    print(f"{task:10s} seed {seed} {name:7s} {seconds:7.3f} s  score {score:.4f}",
                          flush=True)
    elapsed = time.time() - started
    load_after = uptime()

    summary = summarise(runs)
    meta = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "params": base, "seeds": args.seeds, "n_regression": args.n_regression,
        "python": platform.python_version(), "numpy": np.__version__,
        "scikit-learn": sklearn.__version__, "xmlp": xmlp.__version__, "commit": commit(),
        "blas_threads": args.blas_threads, "threadpool_info": blas,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "cpu": cpu_model(), "uptime_before": load_before, "uptime_after": load_after,
        "elapsed_s": elapsed,
    }
    report = markdown(summary, meta)
    print(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sklearn_compare.json").write_text(
            json.dumps({"meta": meta, "runs": runs, "summary": summary}, indent=1) + "\n")
        (args.out / "sklearn_compare.md").write_text(report)
    return 0


def commit() -> str:
    """The checkout's commit (with "+dirty" for uncommitted changes), or "n/a"."""
    try:
        run = subprocess.run(["git", "describe", "--always", "--dirty=+dirty"],
                             capture_output=True, text=True, cwd=Path(__file__).parent)
    except OSError:
        return "n/a"
    return run.stdout.strip() or "n/a"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and variant: score mean/std/min/max, fit time median/min/max, and the median
    over seeds of the within-seed time ratio to sk64."""
    out: dict[str, Any] = {}
    for task in dict.fromkeys(r["task"] for r in runs):
        ref = {r["seed"]: r["fit_s"] for r in runs if r["task"] == task and r["variant"] == "sk64"}
        out[task] = {}
        for name in dict.fromkeys(r["variant"] for r in runs if r["task"] == task):
            mine = [r for r in runs if r["task"] == task and r["variant"] == name]
            scores = [r["score"] for r in mine]
            times = [r["fit_s"] for r in mine]
            ratios = [r["fit_s"] / ref[r["seed"]] for r in mine]
            out[task][name] = {
                "score_mean": statistics.fmean(scores),
                "score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "score_min": min(scores), "score_max": max(scores),
                "fit_s_median": statistics.median(times), "fit_s_min": min(times),
                "fit_s_max": max(times),
                "time_ratio_median": statistics.median(ratios),
                "time_ratio_min": min(ratios), "time_ratio_max": max(ratios),
            }
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    metric = {"digits": "accuracy", "regression": "R²"}
    kernels = ", ".join(sorted({
        f"{i.get('internal_api', '?')} {i.get('version')} {i.get('architecture')}"
        for i in meta["threadpool_info"]}))
    lines = [
        "# xmlp.sklearn vs scikit-learn's MLP",
        "",
        f"`{meta['command']}` — {meta['seeds']} seeds; {meta['cpu']}; NumPy {meta['numpy']}, "
        f"scikit-learn {meta['scikit-learn']}, xmlp {meta['xmlp']} at {meta['commit']}, "
        f"Python {meta['python']}; "
        f"BLAS threads: {meta['blas_threads']} ({kernels}); "
        f"OPENBLAS_CORETYPE={meta['OPENBLAS_CORETYPE']}.",
        "",
        f"Machine load: before `{meta['uptime_before']}`, after `{meta['uptime_after']}`.",
        "",
        "Each fit: hidden layers {}, relu, adam (lr 1e-3), alpha 1e-4, batch 200, exactly {} "
        "epochs.".format(meta["params"]["hidden_layer_sizes"], meta["params"]["max_iter"]),
        "",
        "| data | variant | test score (mean ± std) | min–max | fit time median (min–max) "
        "| time / sk64 (median over seeds, min–max) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task, rows in summary.items():
        for name, s in rows.items():
            lines.append(
                f"| {task} ({metric.get(task, 'score')}) | {name} | {s['score_mean']:.4f} ± "
                f"{s['score_std']:.4f} | {s['score_min']:.4f}–{s['score_max']:.4f} | "
                f"{s['fit_s_median']:.3f} s ({s['fit_s_min']:.3f}–{s['fit_s_max']:.3f}) | "
                f"{s['time_ratio_median']:.2f}x ({s['time_ratio_min']:.2f}–"
                f"{s['time_ratio_max']:.2f}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
