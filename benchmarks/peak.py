"""An independent check of this machine's GEMM peak, to hold ``xmlp bench`` numbers against.

Shares no code with xmlp: times a plain loop of large square matmuls by hand (NumPy's BLAS,
and torch.mm when torch is installed) and works the theoretical peak out of the CPU's FMA units
and clock. Prints a Markdown section; with ``--check`` it also compares the GEMM-only records
of a bench.json (matmul, batched_matmul, step_gemms on CPU backends) with the measured peak and
exits 1 if any is above it.

    python benchmarks/peak.py --check DIR/bench.json >> DIR/machine.md
    python benchmarks/peak.py --sizes 2048 4096 --repeat 5 --passes 3 --max-ghz 3.5
    python benchmarks/peak.py --smoke --check DIR/bench.json   # checks the script works

``--smoke`` times one small matmul per library and dtype: the peak it finds is far below the
machine's, so a ``--check`` is printed but does not set the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo ({} where there is none)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return info
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def fp64_flops_per_cycle(info: dict[str, str]) -> tuple[int, str]:
    """Double-precision FLOP per cycle per core from the ISA (FMA = 2 FLOP per lane), with the
    reasoning; single precision is twice that."""
    flags = set(info.get("flags", "").split())
    vendor, family = info.get("vendor_id", ""), int(info.get("cpu family", "0") or 0)
    model = int(info.get("model", "0") or 0)
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == 25:
            return 16, "Zen 4: AVX-512 on two 256-bit FMA pipes"
        if vendor == "AuthenticAMD":
            return 32, "AMD AVX-512 with 512-bit FMA pipes"
        return 32, "AVX-512 with two 512-bit FMA units (one-FMA SKUs: half)"
    if {"avx2", "fma"} <= flags:
        if vendor == "AuthenticAMD" and family == 23 and model < 0x30:
            return 8, "Zen/Zen+: AVX2 on two 128-bit FMA pipes"
        name = "Zen 2/3" if vendor == "AuthenticAMD" else "AVX2 core"
        return 16, f"{name}: two 256-bit FMA units (AVX2, no AVX-512)"
    if "avx" in flags:
        return 8, "AVX without FMA: one 256-bit add and one multiply per cycle"
    return 4, "SSE2: 128-bit add and multiply"


def clock_ghz(info: dict[str, str]) -> tuple[float | None, str]:
    """The highest clock the OS shows, and where it came from."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    if "cpu MHz" in info:
        return float(info["cpu MHz"]) / 1e3, ("/proc/cpuinfo 'cpu MHz' (no cpufreq: in a VM this "
                                              "is the nominal clock; turbo is not visible)")
    return None, "unknown"


def time_square(matmul: Any, make: Any, n: int, repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` calls of an n x n x n matmul, after one warm-up call."""
    a, b, c = make(n, 0), make(n, 1), make(n, 2)
    matmul(a, b, c)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        matmul(a, b, c)
        times.append(time.perf_counter() - start)
    return times


def measured(sizes: list[int], repeat: int, passes: int) -> list[dict[str, Any]]:
    """GFLOP/s of NumPy (and torch) square matmuls: best and median over the repeats of every
    pass. The passes run one after another through all rows, so a stretch of time in which
    the machine runs slower (cloud VMs drift) does not set the peak."""
    libs: list[tuple[str, Any, Any]] = []
    for dtype in ("float32", "float64"):

        def make_np(n: int, seed: int, dtype: str = dtype) -> np.ndarray:
            return np.random.default_rng(seed).random((n, n)).astype(dtype)

        libs.append((f"numpy {dtype}", lambda a, b, c: np.matmul(a, b, out=c), make_np))
        try:
            import torch
        except ImportError:
            continue

        def make_torch(n: int, seed: int, dtype: str = dtype) -> Any:
            return torch.from_numpy(make_np(n, seed))

        libs.append((f"torch {dtype}", lambda a, b, c: torch.mm(a, b, out=c), make_torch))
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(passes):
        for name, matmul, make in libs:
            for n in sizes:
                times.setdefault((name, n), []).extend(time_square(matmul, make, n, repeat))
    rows = []
    for (name, n), ts in times.items():
        flops = 2.0 * n**3
        rows.append({"lib": name.split()[0], "dtype": name.split()[1], "n": n,
                     "best": flops / min(ts) / 1e9, "median": flops / statistics.median(ts) / 1e9})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per row and pass")
    parser.add_argument("--passes", type=int, default=3,
                        help="times through all rows; best and median are over all passes")
    parser.add_argument("--max-ghz", type=float,
                        help="the CPU's maximum boost clock, from its spec sheet, for a second "
                             "theoretical figure (the OS may show only the base clock)")
    parser.add_argument("--check", type=Path, metavar="BENCH_JSON",
                        help="compare the CPU GEMM records of this bench.json with the peak")
    parser.add_argument("--smoke", action="store_true",
                        help="one 128 x 128 matmul per library and dtype: checks that the "
                             "script works; --check's verdict then does not count")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeat, args.passes = [128], 1, 1

    info = cpuinfo()
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    per_cycle, why = fp64_flops_per_cycle(info)
    ghz, ghz_from = clock_ghz(info)
    rows = measured(args.sizes, args.repeat, args.passes)
    best = {dt: max(r["best"] for r in rows if r["dtype"] == dt) for dt in ("float32", "float64")}

    out = ["## GEMM peak: an independent check", "",
           f"CPU: {info.get('model name', 'unknown')} (vendor {info.get('vendor_id', '?')}, "
           f"family {info.get('cpu family', '?')}, model {info.get('model', '?')}), "
           f"{cores} cores usable. Load average before: "
           + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".", "",
           f"Theoretical: {per_cycle} FP64 / {2 * per_cycle} FP32 FLOP per cycle per core "
           f"({why}).", ""]
    clocks = [(ghz, ghz_from)] if ghz else []
    if args.max_ghz:
        clocks.append((args.max_ghz, "--max-ghz (spec-sheet boost clock)"))
    for g, source in clocks:
        out.append(f"- at {g:.2f} GHz ({source}): float64 {per_cycle * cores * g:.1f} GFLOP/s, "
                   f"float32 {2 * per_cycle * cores * g:.1f} GFLOP/s")
    out.append(
        f"- the clock the best measured GEMM implies (at 100% FMA use): "
        f"float64 {best['float64'] / (per_cycle * cores):.2f} GHz, "
        f"float32 {best['float32'] / (2 * per_cycle * cores):.2f} GHz")
    out += ["", f"Measured: square n x n x n matmuls into a preallocated output; {args.passes} "
            f"passes through the rows, each with one warm-up call and {args.repeat} calls "
            "timed one by one with time.perf_counter; best and median over all passes.", "",
            "| library | dtype | n | best GFLOP/s | median GFLOP/s |",
            "| --- | --- | ---: | ---: | ---: |"]
    out += [f"| {r['lib']} | {r['dtype']} | {r['n']} | {r['best']:.1f} | {r['median']:.1f} |"
            for r in rows]
    out += ["", f"Measured peak (best of all rows): float32 {best['float32']:.1f} GFLOP/s, "
            f"float64 {best['float64']:.1f} GFLOP/s.", ""]
    status = 0
    if args.check is not None:
        records = json.loads(args.check.read_text(encoding="utf-8"))
        out += [f"Check of {args.check.name} (GEMM-only ops on CPU backends, median rates):", ""]
        for dt in ("float32", "float64"):
            gemm = [r for r in records if r.get("kind") == "cpu" and r["dtype"] == dt
                    and r["op"] in ("matmul", "batched_matmul", "step_gemms")]
            if not gemm:
                continue
            top = max(gemm, key=lambda r: r["gflops"])
            ok = top["gflops"] <= best[dt]
            status |= not ok
            out.append(
                f"- {dt}: highest {top['gflops']:.1f} GFLOP/s ({top['op']}, {top['backend']}, "
                f"shape {tuple(top['shape'])}) = {100 * top['gflops'] / best[dt]:.0f}% of the "
                f"measured peak: {'OK, not above it' if ok else 'ABOVE THE PEAK: check timing'}")
        out.append("")
        if args.smoke:
            out += ["(--smoke: a small matmul is far from the peak, so this check is not "
                    "judged.)", ""]
            status = 0
    print("\n".join(out))
    return status


if __name__ == "__main__":
    sys.exit(main())
