"""Issue 7's report: one MLP training step against its GEMM floor and PyTorch, fast paths on
("after") and off ("before", the portable Array API path), all measured in one run.

    python benchmarks/perf_report.py [--out benchmarks/results/perf-cpu-2core] [--quick]

Every variant of a shape is timed in the same interleaved rounds (A B C D, A B C D, ...), so
a noisy neighbour slows all of them alike; the report gives medians and same-run ratios.
Memory: tracemalloc's peak during one step against the bytes the API must hold afterwards
(parameters, gradients, stored inputs, activations and grad_inputs, the loss's y and t).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import xmlp
from xmlp import _dispatch
from xmlp._bench_cases import cpu_model, step_gemms, torch_step

# (shape (batch, in, hidden, out), dtype, what the step is compared to, target ratio)
TARGETS = [
    ((100, 1, 10, 1), "float64", "torch_step", 0.25),
    ((1024, 256, 1024, 256), "float32", "step_gemms", 1.10),
    ((1024, 256, 1024, 256), "float64", "step_gemms", 1.10),
    ((4096, 1024, 4096, 1024), "float32", "step_gemms", 1.06),
]


def make_step(shape: tuple[int, int, int, int], dtype: str, fast: bool) -> tuple[Any, Callable]:
    batch, n_in, hidden, n_out = shape
    gen = np.random.default_rng(0)
    x = gen.standard_normal((batch, n_in)).astype(dtype)
    t = gen.standard_normal((batch, n_out)).astype(dtype)
    _dispatch.set_fast_paths(fast)
    try:
        model = xmlp.MLP(n_in, hidden, n_out, dtype=dtype, rng=0, init="xavier")
        loss = xmlp.MSELoss()

        def step() -> None:
            loss.forward(model.forward(x), t)
            model.backward(loss.backward())
            model.update_params(1e-4)

        step()  # first call inside: activation and loss specs take this setting
    finally:
        _dispatch.set_fast_paths(True)
    return (model, loss), step


def make_gemms(shape: tuple[int, int, int, int], dtype: str) -> Callable:
    batch, n_in, hidden, n_out = shape
    gen = np.random.default_rng(1)
    x, w1 = gen.standard_normal((batch, n_in)), gen.standard_normal((hidden, n_in))
    a, w2 = gen.standard_normal((batch, hidden)), gen.standard_normal((n_out, hidden))
    gy, gh = gen.standard_normal((batch, n_out)), gen.standard_normal((batch, hidden))
    ops = [o.astype(dtype) for o in (x, w1, a, w2, gy, gh)]
    return lambda: step_gemms(np, *ops)


def make_torch(shape: tuple[int, int, int, int], dtype: str) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    batch, n_in, hidden, n_out = shape
    gen = np.random.default_rng(2)
    tdt = getattr(torch, dtype)
    x = torch.tensor(gen.standard_normal((batch, n_in)), dtype=tdt)
    t = torch.tensor(gen.standard_normal((batch, n_out)), dtype=tdt)
    params = [torch.tensor(gen.standard_normal(s) * 0.05, dtype=tdt)
              for s in ((hidden, n_in), (hidden,), (n_out, hidden), (n_out,))]
    return lambda: torch_step(params, x, t, 1e-4)


def api_bytes(model: Any, loss: Any) -> int:
    """Bytes of the distinct arrays the API holds after a step."""
    seen: dict[int, int] = {}
    for module in model._modules():
        for name in ("x", "output", "grad_input", *module._param_names,
                     *("grad_" + p for p in module._param_names)):
            a = getattr(module, name, None)
            if a is not None:
                seen[id(a)] = a.nbytes
    for a in (loss.y, loss.t):
        seen[id(a)] = a.nbytes
    return sum(seen.values())


def peak_memory(shape: tuple[int, int, int, int], dtype: str, fast: bool) -> dict[str, float]:
    tracemalloc.start()
    try:
        (model, loss), step = make_step(shape, dtype, fast)
        step()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = api_bytes(model, loss)
    return {"peak_bytes": peak, "api_bytes": held, "ratio": peak / held}


def timed(fn: Callable, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def _rounds(variants: dict[str, Callable], rounds: int) -> dict[str, float]:
    once = min(timed(f, 1) for f in variants.values())
    inner = max(1, int(0.02 / max(once, 1e-7)))  # ~20 ms per sample, so timer noise is small
    for fn in variants.values():  # warm-up: caches, allocator
        timed(fn, inner)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(timed(fn, inner))
    return {name: statistics.median(v) for name, v in samples.items()}


def measure(shape: tuple[int, int, int, int], dtype: str, rounds: int) -> dict[str, float]:
    """Medians of the NumPy variants, interleaved; then PyTorch in rounds of its own.

    PyTorch is not interleaved with NumPy: each library's idle worker threads spin for a
    while after a call (OpenBLAS, OpenMP), and on 2 cores the other library's next call then
    shares its cores with them (measured: a 0.1 ms PyTorch step took 8 ms interleaved).
    """
    med = _rounds({
        "step_fast": make_step(shape, dtype, True)[1],
        "step_portable": make_step(shape, dtype, False)[1],
        "step_gemms": make_gemms(shape, dtype),
    }, rounds)
    peer = make_torch(shape, dtype)
    if peer is not None:
        time.sleep(0.5)  # let OpenBLAS's workers go to sleep
        med.update(_rounds({"torch_step": peer}, rounds))
    return med


def blas_info() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    return [{k: i.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for i in threadpool_info()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/perf-cpu-2core"))
    parser.add_argument("--quick", action="store_true", help="fewer rounds, skip the largest shape")
    args = parser.parse_args(argv)
    try:
        import torch

        from xmlp._bench_cases import numpy_blas_threads

        threads = numpy_blas_threads()
        if threads:
            torch.set_num_threads(threads)  # same cores for the peer as for BLAS
    except ImportError:
        pass
    rows = []
    for shape, dtype, against, target in TARGETS:
        if args.quick and shape[0] >= 4096:
            continue
        rounds = 5 if args.quick else (9 if shape[0] >= 4096 else 31)
        med = measure(shape, dtype, rounds)
        mem_fast, mem_port = peak_memory(shape, dtype, True), peak_memory(shape, dtype, False)
        ref = med.get(against)
        row = {
            "shape": list(shape), "dtype": dtype, "against": against, "target": target,
            "seconds": med,
            "after": med["step_fast"] / ref if ref else None,
            "before": med["step_portable"] / ref if ref else None,
            "fast_vs_torch": med["step_fast"] / med["torch_step"] if "torch_step" in med else None,
            "memory_after": mem_fast, "memory_before": mem_port,
        }
        rows.append(row)
        print(f"{shape} {dtype}: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in med.items())
              + f" | before {row['before']:.3f}x after {row['after']:.3f}x {against}"
              + f" (target {target}) | peak/API bytes {mem_fast['ratio']:.2f}"
              + f" (portable {mem_port['ratio']:.2f})", flush=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
        "xmlp": xmlp.__version__, "blas": blas_info(),
        "command": "python benchmarks/perf_report.py" + (" --quick" if args.quick else ""),
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perf.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (args.out / "perf.md").write_text(render(meta, rows))
    print(f"wrote {args.out / 'perf.md'} and perf.json")
    return 0


def render(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# One MLP training step: fast paths vs portable path vs GEMM floor vs PyTorch",
        "",
        f"{meta['date']} · {meta['cpu']} · numpy {meta['numpy']} · torch "
        f"{meta.get('torch', '-')} ({meta.get('torch_threads', '-')} threads) · BLAS "
        + ", ".join(f"{b['internal_api']} {b['version']} ({b['num_threads']} threads)"
                    for b in meta["blas"]),
        "",
        f"Command: `{meta['command']}`. Medians of interleaved rounds; ratios are same-run.",
        "'before' is the portable Array API path (XMLP_FAST_PATHS=0), 'after' the NumPy fast path.",
        "",
        "| shape (batch, in, hidden, out) | dtype | step after | step before | step_gemms "
        "| torch_step | before | after | target | met | peak/API bytes after (before) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["seconds"]
        unit = "µs" if s["step_fast"] < 1e-3 else "ms"
        k = 1e6 if unit == "µs" else 1e3

        def fmt(v: float | None, k: float = k, unit: str = unit) -> str:
            return f"{v * k:.1f} {unit}" if v is not None else "-"

        met = "yes" if r["after"] is not None and r["after"] <= r["target"] else "no"
        lines.append(
            f"| {tuple(r['shape'])} | {r['dtype']} | {fmt(s['step_fast'])} | "
            f"{fmt(s['step_portable'])} | {fmt(s['step_gemms'])} | {fmt(s.get('torch_step'))} | "
            f"{r['before']:.2f}× {r['against']} | {r['after']:.2f}× {r['against']} | "
            f"≤ {r['target']}× | {met} | {r['memory_after']['ratio']:.2f} "
            f"({r['memory_before']['ratio']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
