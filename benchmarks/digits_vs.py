"""xmlp on NumPy against scikit-learn's MLPClassifier and a plain PyTorch loop: the training of
``xmlp demo --task digits``, timed.

The same task for all three: the digits demo's data (the stratified 80/20 split, standardised
pixels), the same network (64 -> hidden -> 10, tanh, softmax cross-entropy), the same epochs,
optimizer (Adam with torch's defaults and the demo's learning rate, no weight decay), batch size,
dtype and a new shuffle every epoch. Each run times training only (the data are already arrays
of each library); runs are interleaved (the order rotates every round) so that other load on a
shared machine falls on all three alike, and the table reports the median run. Each run's test
accuracy is recorded too, to show the three trained the same kind of model.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/digits_vs.py \\
        --runs 7 --out benchmarks/results/digits-cpu-2core

Needs scikit-learn, torch and threadpoolctl besides xmlp (from the xmlp checkout:
``pip install ".[bench,torch,sklearn]"``). ``--smoke`` runs one epoch once, in float64, to check
that the script works (``nox -s bench-smoke``): its numbers mean nothing, and it leaves PyTorch
out where torch is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import xmlp
from xmlp.cli.bench_report import load_average, machine_info
from xmlp.cli.bench_timing import others_cpu_seconds
from xmlp.cli.demo import DIGITS_SPLIT_SEED, TASK_DEFAULTS, digits_data

CONTENDERS: tuple[str, ...] = ("xmlp", "sklearn", "torch")


def train_xmlp(data: tuple[np.ndarray, ...], cfg: argparse.Namespace, dtype: str,
               seed: int) -> Callable[[], float]:
    x, y, xt, yt = data
    x, xt = x.astype(dtype), xt.astype(dtype)

    def run() -> float:
        model = xmlp.MLP(64, cfg.hidden, 10, dtype=dtype, rng=seed, init="xavier")
        opt = xmlp.optim.Adam(model, lr=cfg.lr)
        xmlp.fit(model, x, y, epochs=cfg.epochs, optimizer=opt, loss=xmlp.CrossEntropyLoss(),
                 batch_size=cfg.batch_size, shuffle=True, rng=seed, progress=False)
        return float(xmlp.accuracy(model.predict(xt), yt))

    return run


def train_sklearn(data: tuple[np.ndarray, ...], cfg: argparse.Namespace, dtype: str,
                  seed: int) -> Callable[[], float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y, xt, yt = data
    x, xt = x.astype(dtype), xt.astype(dtype)

    def run() -> float:
        clf = MLPClassifier(
            hidden_layer_sizes=(cfg.hidden,), activation="tanh", solver="adam", alpha=0.0,
            batch_size=cfg.batch_size, learning_rate_init=cfg.lr, max_iter=cfg.epochs,
            shuffle=True, random_state=seed, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
            # every epoch runs: no stopping on a plateau, no validation split
            tol=0.0, n_iter_no_change=cfg.epochs + 1, early_stopping=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # "max_iter reached": meant
            clf.fit(x, y)
        assert clf.n_iter_ == cfg.epochs, clf.n_iter_
        return float(clf.score(xt, yt))

    return run


def train_torch(data: tuple[np.ndarray, ...], cfg: argparse.Namespace, dtype: str,
                seed: int) -> Callable[[], float]:
    import torch

    tdtype = getattr(torch, dtype)
    x, y, xt, yt = data
    xs, ys = torch.tensor(x, dtype=tdtype), torch.tensor(y)
    xts, yts = torch.tensor(xt, dtype=tdtype), torch.tensor(yt)
    n = xs.shape[0]

    def run() -> float:
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, cfg.hidden), torch.nn.Tanh(),
                                    torch.nn.Linear(cfg.hidden, 10)).to(tdtype)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(cfg.epochs):
            order = torch.randperm(n)
            xe, ye = xs[order], ys[order]
            for start in range(0, n, cfg.batch_size):
                opt.zero_grad()
                loss = loss_fn(model(xe[start:start + cfg.batch_size]),
                               ye[start:start + cfg.batch_size])
                loss.backward()
                opt.step()
        with torch.no_grad():
            return float((model(xts).argmax(dim=1) == yts).double().mean())

    return run


BUILDERS = {"xmlp": train_xmlp, "sklearn": train_sklearn, "torch": train_torch}


def set_threads(threads: int | None, contenders: tuple[str, ...] = CONTENDERS) -> Any:
    """Load the libraries and limit their BLAS/OpenMP threads (None: each library's default).
    Returns the limiter."""
    # every library that brings a thread pool is loaded first: threadpoolctl limits the pools
    # loaded at the time (scikit-learn brings SciPy's OpenBLAS and its own OpenMP runtime)
    import sklearn.neural_network  # noqa: F401

    torch = __import__("torch") if "torch" in contenders else None
    if threads is None:
        return None
    from threadpoolctl import threadpool_limits

    if torch is not None:
        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


def measure(cfg: argparse.Namespace, contenders: tuple[str, ...] = CONTENDERS
            ) -> tuple[list[dict[str, Any]], list[float]]:
    """(a record per dtype and library, CPUs other processes used during each run)."""
    data = digits_data()
    records = []
    busy_runs: list[float] = []
    for dtype in cfg.dtype:
        runs = {name: BUILDERS[name](data, cfg, dtype, cfg.seed) for name in contenders}
        for run in runs.values():  # warm-up: imports, first-call costs, allocator
            run()
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        others: dict[str, list[float]] = {name: [] for name in contenders}
        accuracy: dict[str, list[float]] = {name: [] for name in contenders}
        count = len(contenders)
        for r in range(cfg.runs):
            order = contenders[r % count:] + contenders[:r % count]
            for name in order:
                busy = others_cpu_seconds()
                own = time.process_time()
                start = time.perf_counter()
                acc = runs[name]()
                elapsed = time.perf_counter() - start
                cpu[name].append(time.process_time() - own)
                after = others_cpu_seconds()
                seconds[name].append(elapsed)
                accuracy[name].append(acc)
                if busy is not None and after is not None:
                    others[name].append((after - busy) / elapsed)  # CPUs others used meanwhile
                    busy_runs.append(others[name][-1])
            print(f"{dtype} round {r + 1}/{cfg.runs}: " + ", ".join(
                f"{n} {seconds[n][-1]:.3f} s" for n in contenders), file=sys.stderr)
        for name in contenders:
            records.append({
                "contender": name, "dtype": dtype, "runs": cfg.runs,
                "median_s": statistics.median(seconds[name]), "min_s": min(seconds[name]),
                "max_s": max(seconds[name]), "seconds": seconds[name],
                "cpu_median_s": statistics.median(cpu[name]), "cpu_seconds": cpu[name],
                "test_accuracy_median": statistics.median(accuracy[name]),
                "test_accuracy": accuracy[name],
                "other_cpus_median": statistics.median(others[name]) if others[name] else None,
            })
        base = statistics.median(seconds["xmlp"])
        for rec in records[-count:]:
            rec["vs_xmlp"] = rec["median_s"] / base
    return records, busy_runs


LABELS = {"xmlp": "xmlp (NumPy)", "sklearn": "scikit-learn MLPClassifier",
          "torch": "PyTorch loop (CPU)"}


def markdown(records: list[dict[str, Any]], info: dict[str, Any], cfg: argparse.Namespace,
             steps: int) -> str:
    lines = [
        "# Digits training: xmlp vs scikit-learn vs PyTorch",
        "",
        f"MLP(64, {cfg.hidden}, 10) with tanh and softmax cross-entropy, Adam (lr {cfg.lr}, "
        f"betas (0.9, 0.999), eps 1e-8, no weight decay), {cfg.epochs} epochs of shuffled "
        f"batches of {cfg.batch_size} ({steps} steps) on the 1438 training images of "
        f"`xmlp demo --task digits` (split seed {DIGITS_SPLIT_SEED}). Median of {cfg.runs} "
        "interleaved runs (the order rotates every round), training only.",
        "",
        "| dtype | library | median | min | max | time / xmlp's | CPU time (median) "
        "| test accuracy (median) | other processes' CPUs (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        busy = "" if r["other_cpus_median"] is None else f"{r['other_cpus_median']:.2f}"
        lines.append(
            f"| {r['dtype']} | {LABELS[r['contender']]} | {r['median_s']:.3f} s | "
            f"{r['min_s']:.3f} s | {r['max_s']:.3f} s | {r['vs_xmlp']:.2f}x | "
            f"{r['cpu_median_s']:.3f} s | {r['test_accuracy_median']:.3f} | {busy} |")
    blas = "; ".join(
        f"{b.get('internal_api')} {b.get('version') or ''} ({b.get('prefix')}): "
        f"{b.get('num_threads')} threads, {b.get('architecture') or '-'}"
        for b in info["blas"])
    lines += [
        "",
        "Times are wall-clock (the median, min and max of the runs; \"time / xmlp's\" compares "
        "medians). \"CPU time\" is this process's user + system time during a run (all its "
        "threads): less sensitive to other load than wall-clock time, but it counts the time "
        "idle worker threads spin. \"Other processes' CPUs\" is how many CPUs everything else "
        "on the machine used, on average, while a run went on (from /proc/stat): the machine "
        "is shared, and the runs are interleaved so that this load falls on all three alike.",
        "",
        "## Machine",
        "",
        f"- Date (UTC): {info['date']}",
        f"- CPU: {info['cpu']}, {info['cpus_usable']} usable CPUs",
        f"- Thread pools (threadpoolctl): {blas}",
        f"- torch.get_num_threads(): {info['torch_threads']}; --threads: "
        f"{cfg.threads if cfg.threads is not None else 'not given (each library its default)'}",
        f"- Load average (1, 5, 15 min) before: {info['load_average_before']}, after: "
        f"{info['load_average_after']}",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')!r}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')!r} (unset: the native kernels)",
        f"- xmlp source: {info['xmlp_source']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        "",
        "Command:",
        "",
        "```",
        info["command"],
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    defaults = TASK_DEFAULTS["digits"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per library (7)")
    parser.add_argument("--epochs", type=int, default=defaults["epochs"])
    parser.add_argument("--hidden", type=int, default=defaults["hidden"])
    parser.add_argument("--lr", type=float, default=defaults["lr"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                        choices=("float64", "float32"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for all three (default: each library's own)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for digits.json and digits.md (default: print only)")
    parser.add_argument("--smoke", action="store_true",
                        help="one run of one epoch in float64, PyTorch left out where torch is "
                             "not installed: checks that the script works, measures nothing")
    cfg = parser.parse_args(argv)
    command = "python benchmarks/digits_vs.py " + " ".join(sys.argv[1:] if argv is None else argv)
    contenders = CONTENDERS
    if cfg.smoke:
        cfg.runs, cfg.epochs, cfg.dtype = 1, 1, ["float64"]
        if importlib.util.find_spec("torch") is None:
            print("digits_vs.py --smoke: torch is not installed, PyTorch left out",
                  file=sys.stderr)
            contenders = ("xmlp", "sklearn")
    set_threads(cfg.threads, contenders)  # also loads torch, whose threads machine_info reports

    before = load_average()
    records, others = measure(cfg, contenders)
    info = machine_info({name: "cpu" for name in contenders}, command, before, others)
    steps = cfg.epochs * -(-len(digits_data()[1]) // cfg.batch_size)
    text = markdown(records, info, cfg, steps)
    print(text)
    if cfg.out is not None:
        cfg.out.mkdir(parents=True, exist_ok=True)
        (cfg.out / "digits.json").write_text(json.dumps(
            {"config": {k: v for k, v in vars(cfg).items() if k != "out"}, "machine": info,
             "results": records}, indent=1) + "\n")
        (cfg.out / "digits.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
