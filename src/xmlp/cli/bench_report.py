"""What ``xmlp bench`` writes: records, ratios, tables, targets, the machine and two figures."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .bench_cases import ALL_OPS, Case, cpu_model, gemms, gflops, op_flops
from .bench_timing import Timing

__all__ = [
    "NOTES",
    "TARGETS",
    "add_ratios",
    "disturbances",
    "machine_info",
    "machine_markdown",
    "make_record",
    "markdown_report",
    "plot_gemm",
    "plot_step",
    "write_json",
]

ORDER = ("numpy", "array_api_strict", "torch:cpu", "jax", "dask", "cupy", "torch:cuda")
PEER_OF = {"cpu": "torch:cpu", "gpu": "torch:cuda"}  # whose torch_step an mlp_step is compared to
# Why a backend runs xmlp's step the way it does, in one line: shown under the tables and in
# the step figure's legend.
NOTES = {
    "numpy": "NumPy with xmlp's fast paths (src/xmlp/ops/numpy_fast.py)",
    "array_api_strict": "the standard's reference library: Python checks around every NumPy "
                        "call, slow at small sizes by design",
    "torch:cpu": "xmlp's portable layers on torch tensors, one torch call per op",
    "jax": "eager JAX: each op is dispatched to XLA on its own (no jit across the step)",
    "dask": "a task graph is built, scheduled and persisted every step: milliseconds per step",
    "cupy": "each op is a kernel launch: small batches are launch-bound",
    "torch:cuda": "xmlp's portable layers on CUDA tensors: small batches are launch-bound",
}
# (backend, shape or None for every shape, dtype or None for both, compared with, at most)
TARGETS: list[tuple[str, tuple[int, ...] | None, str | None, str, float]] = [
    ("numpy", None, None, "torch_step", 1.0),
    ("numpy", (100, 1, 10, 1), "float64", "torch_step", 0.25),
    ("numpy", (1024, 256, 1024, 256), None, "step_gemms", 1.10),
    ("numpy", (4096, 1024, 4096, 1024), "float32", "step_gemms", 1.06),
]
_VERSIONED = ("xmlp", "numpy", "array-api-compat", "array-api-strict", "torch", "jax", "jaxlib",
              "dask", "cupy-cuda12x", "cupy-cuda13x", "threadpoolctl", "pytest-benchmark")
COLUMNS = ("op", "backend", "device", "dtype", "shape", "median", "GFLOP/s", "vs floor",
           "vs torch", "vs jax jit")
STEPS = ("mlp_step", "torch_step", "compiled_step", "jax_jit", "torch_compile")
LEGEND = (
    "shape = (batch, in, hidden, out). Medians over interleaved rounds of one run. GFLOP/s = "
    "2·m·k·n summed over the op's GEMMs / median time. vs floor = the step's time / the time "
    "of its six GEMMs alone (step_gemms) on the same backend. vs torch = the xmlp step's time "
    "/ the plain PyTorch step's (torch_step) on the same kind of device; below 1, xmlp is "
    "faster. vs jax jit = a step's time / the hand-written JAX step's under jax.jit (jax_jit) "
    "at the same shape and dtype. Compiled steps (compiled_step, jax_jit, torch_compile) run "
    "five GEMMs: nothing asks for grad x."
)


# -- records ----------------------------------------------------------------------------------
def make_record(case: Case, timing: Timing, *, device: str, mode: str,
                others_cpu: float | None = None) -> dict[str, Any]:
    """One bench.json entry: the documented keys (backend, device, dtype, op, batch, shape,
    seconds, gflops) and what else helps read it."""
    be = case.backend
    return {
        "op": case.op, "backend": be.name, "device": device, "kind": be.kind,
        "dtype": case.dtype, "batch": case.shape[0], "shape": [int(d) for d in case.shape],
        "seconds": timing.seconds, "gflops": gflops(case.flops, timing.seconds),
        "flops": op_flops(case.op, case.shape),
        "gemms": [list(g) for g in gemms(case.op, case.shape)],
        "times": timing.times, "number": timing.number, "rounds": len(timing.times),
        "warmup_calls": timing.warmup_calls, "threads": be.threads(),
        "finite": case.check() if case.check is not None else None,
        # compiled ops: seconds of the first call (the compile and one step), never timed above
        "compile_s": case.compile_s,
        # CPUs other processes used while this case's group was timed, and the load after it
        "others_cpu": others_cpu, "load_average": _load1(), "mode": mode,
    }


def _load1() -> float | None:
    load = load_average()
    return load[0] if load else None


def add_ratios(records: Sequence[dict[str, Any]]) -> None:
    """Set ``ratio_floor`` (mlp_step and torch_step / step_gemms of the same backend),
    ``ratio_torch`` (mlp_step / its kind's torch_step) and ``ratio_jit`` (every step /
    the jax_jit step at the same shape and dtype); None where not measured."""
    index = {(r["backend"], r["dtype"], tuple(r["shape"]), r["op"]): r for r in records}
    for r in records:
        key = (r["dtype"], tuple(r["shape"]))
        floor = index.get((r["backend"], *key, "step_gemms"))
        peer = index.get((PEER_OF[r["kind"]], *key, "torch_step"))
        steps = ("mlp_step", "torch_step")
        r["ratio_floor"] = r["seconds"] / floor["seconds"] if floor and r["op"] in steps else None
        r["ratio_torch"] = (r["seconds"] / peer["seconds"]
                            if peer and r["op"] == "mlp_step" else None)
        jit = index.get(("jax", *key, "jax_jit"))
        r["ratio_jit"] = r["seconds"] / jit["seconds"] if jit and r["op"] in STEPS else None


def _rank(backend: str) -> int:
    return ORDER.index(backend) if backend in ORDER else len(ORDER)


def _sort_key(r: dict[str, Any]) -> tuple[Any, ...]:
    b, i, h, o = r["shape"]
    return (i, h, o, b, r["dtype"], ALL_OPS.index(r["op"]), _rank(r["backend"]))


def write_json(records: Sequence[dict[str, Any]], path: Path) -> None:
    path.write_text(json.dumps(sorted(records, key=_sort_key), indent=1) + "\n", encoding="utf-8")


# -- tables -----------------------------------------------------------------------------------
def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s"


def fmt_rate(g: float) -> str:
    return f"{g:.0f}" if g >= 100 else f"{g:.1f}" if g >= 10 else f"{g:.2g}"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def _shape(shape: Iterable[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _rows(records: Iterable[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(r["op"], r["backend"], r["device"], r["dtype"], _shape(r["shape"]),
             fmt_seconds(r["seconds"]), fmt_rate(r["gflops"]), _ratio(r.get("ratio_floor")),
             _ratio(r.get("ratio_torch")), _ratio(r.get("ratio_jit")))
            for r in sorted(records, key=_sort_key)]


def _md(header: Sequence[str], rows: Iterable[Sequence[str]], right_from: int) -> list[str]:
    return ["| " + " | ".join(header) + " |",
            "| " + " | ".join("---:" if c >= right_from else "---" for c in range(len(header)))
            + " |", *("| " + " | ".join(row) + " |" for row in rows)]


def _steps(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]],
                                                       dict[tuple[Any, ...], dict[str, Any]]]:
    """(backends with an mlp_step, (shape, dtype) keys in order, index by (backend, op, key))."""
    index = {(r["backend"], r["op"], tuple(r["shape"]), r["dtype"]): r for r in records}
    steps = sorted((r for r in records if r["op"] == "mlp_step"), key=_sort_key)
    backends = sorted({r["backend"] for r in steps}, key=_rank)
    keys = list(dict.fromkeys((tuple(r["shape"]), r["dtype"]) for r in steps))
    return backends, keys, index


def step_tables(records: Sequence[dict[str, Any]]) -> list[str]:
    """Two Markdown tables of the training step: xmlp on every backend / the PyTorch step,
    and / its own GEMM floor."""
    backends, keys, index = _steps(records)
    if not keys:
        return []
    peer_rows, floor_rows = [], []
    for shape, dtype in keys:
        kind = index[(backends[0], "mlp_step", shape, dtype)]["kind"] if (
            backends[0], "mlp_step", shape, dtype) in index else "cpu"
        peer = index.get((PEER_OF[kind], "torch_step", shape, dtype))
        cells = [_ratio(index[(b, "mlp_step", shape, dtype)].get("ratio_torch"))
                 if (b, "mlp_step", shape, dtype) in index else "" for b in backends]
        peer_rows.append([_shape(shape), dtype, fmt_seconds(peer["seconds"]) if peer else "-",
                          *cells])
        floors = [_ratio(index[(b, "mlp_step", shape, dtype)].get("ratio_floor"))
                  if (b, "mlp_step", shape, dtype) in index else "" for b in backends]
        floor_rows.append([_shape(shape), dtype, *floors,
                           _ratio(peer.get("ratio_floor")) if peer else ""])
    out = ["### xmlp's training step on each backend / the PyTorch step", "",
           *_md(["shape (batch, in, hidden, out)", "dtype", "PyTorch step", *backends],
                peer_rows, 2), "",
           "### Each step / its own six GEMMs (the floor)", "",
           *_md(["shape (batch, in, hidden, out)", "dtype", *backends, "PyTorch"],
                floor_rows, 2), ""]
    return out


def compile_table(records: Sequence[dict[str, Any]]) -> list[str]:
    """The compiled steps' first call (the compile, timed apart from the step) beside their
    step time and the step / the hand-written JAX jit step's."""
    mine = sorted((r for r in records if r.get("compile_s") is not None), key=_sort_key)
    if not mine:
        return []
    rows = [(r["op"], r["backend"], r["dtype"], _shape(r["shape"]), fmt_seconds(r["compile_s"]),
             fmt_seconds(r["seconds"]), _ratio(r.get("ratio_jit"))) for r in mine]
    return ["### Compiled steps: compile time (first call) and step time", "",
            *_md(["op", "backend", "dtype", "shape", "compile", "step (median)", "vs jax jit"],
                 rows, 4), ""]


def target_rows(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, float, float,
                                                                   bool]]:
    """(shape, dtype, compared with, measured ratio, limit, met) for every target measured."""
    index = {(r["backend"], r["op"], tuple(r["shape"]), r["dtype"]): r for r in records}
    rows = []
    for backend, shape, dtype, against, limit in TARGETS:
        for (b, op, s, d), r in sorted(index.items(), key=lambda kv: _sort_key(kv[1])):
            if (b, op) != (backend, "mlp_step") or shape not in (None, s) or dtype not in (
                    None, d):
                continue
            ratio = r["ratio_torch"] if against == "torch_step" else r["ratio_floor"]
            if ratio is not None:
                rows.append((_shape(s), d, against, ratio, limit, ratio <= limit))
    return rows


def notes(records: Sequence[dict[str, Any]], skipped: Sequence[str] = ()) -> list[str]:
    """One line per backend measured (what it is, why it is slow where it is) and one per
    backend or peer that could not run."""
    eager = ("batched_matmul", "step_gemms", "mlp_step")  # what the notes describe
    names = sorted({r["backend"] for r in records if r["op"] in eager}, key=_rank)
    lines = [f"- {n}: {NOTES[n]}" for n in names if n in NOTES]
    lines += [f"- not measured: {reason}" for reason in skipped]
    return lines


def markdown_report(records: Sequence[dict[str, Any]], head: str,
                    skipped: Sequence[str] = (), disturbed: Sequence[str] = (),
                    advice: str = "") -> str:
    """bench.md: a warning if the run was ``disturbed`` (the reasons, then ``advice``), the
    step tables, the targets (or, in a disturbed run, that they could not be judged), the
    notes, then every case."""
    out = [head, "", *disturbance_lines(disturbed, advice), *step_tables(records),
           *compile_table(records)]
    targets = target_rows(records)
    if targets and disturbed:
        out += ["### Targets (NumPy backend)", "",
                "Not judged: this run was disturbed (see the warning above), so its ratios "
                "say nothing about the targets either way.", ""]
    elif targets:
        out += ["### Targets (NumPy backend)", "",
                *_md(["shape", "dtype", "xmlp step /", "ratio", "at most", "met"],
                     [(s, d, a, f"{v:.2f}x", f"{lim:.2f}x", "yes" if ok else "**no**")
                      for s, d, a, v, lim, ok in targets], 3), ""]
    out += ["### Backends", "", *notes(records, skipped), "", "### Every case", "",
            *_md(COLUMNS, _rows(records), 5), "", LEGEND, ""]
    return "\n".join(out)


# -- a disturbed run --------------------------------------------------------------------------
# When a run's numbers say more about the machine than about the libraries. float32 does half
# the memory traffic of float64 and at least its FLOP rate: a case that took more than
# DTYPE_SLOWDOWN times its float64 time at the same shape waited for something else (a
# library's threads spinning against other processes for the cores). The load limits are per
# CPU: the 1-minute load average before the run; the same sampled during it, where this run's
# own threads count too (hence twice); and the CPUs other processes took while a group was
# timed, from /proc/stat (median over groups).
DTYPE_SLOWDOWN = 2.0
LOAD_BEFORE_PER_CPU = 1.0
LOAD_DURING_PER_CPU = 2.0
OTHERS_PER_CPU = 0.5


def disturbances(records: Sequence[dict[str, Any]], *, cores: int,
                 load_before: Sequence[float] | None = None,
                 load_during: Sequence[float] = (), others: Sequence[float] = (),
                 clock: str = "wall") -> list[str]:
    """Why this run's times and ratios cannot be trusted, one sentence each; [] when nothing
    points that way. ``load_during``: 1-minute load averages sampled during the run;
    ``others``: CPUs other processes used per group. With ``clock="cpu"`` (this process's CPU
    time, on one thread) the load of others barely moves the numbers, so only the dtype check
    applies."""
    reasons = []
    index = {(r["backend"], r["op"], tuple(r["shape"]), r["dtype"]): r for r in records}
    for (backend, op, shape, dtype), r in sorted(index.items(), key=lambda kv: _sort_key(kv[1])):
        wide = index.get((backend, op, shape, "float64"))
        if dtype != "float32" or wide is None or wide["seconds"] <= 0:
            continue
        slowdown = r["seconds"] / wide["seconds"]
        if slowdown > DTYPE_SLOWDOWN:
            reasons.append(
                f"{op} on {backend} at {_shape(shape)} took {fmt_seconds(r['seconds'])} in "
                f"float32 against {fmt_seconds(wide['seconds'])} in float64 ({slowdown:.1f}x; "
                "float32, half the bytes of float64, is not that much slower on its own)")
    if clock == "cpu":
        return reasons
    cores = max(int(cores), 1)
    if load_before and load_before[0] > LOAD_BEFORE_PER_CPU * cores:
        reasons.append(f"the load average was {load_before[0]:.2f} on {cores} CPUs before the "
                       "run: other processes were already competing for the cores")
    during = [v for v in load_during if v is not None]
    if during and max(during) > LOAD_DURING_PER_CPU * cores:
        reasons.append(f"the load average reached {max(during):.2f} on {cores} CPUs during the "
                       "run")
    if others:
        median = sorted(others)[len(others) // 2]
        if median >= OTHERS_PER_CPU * cores:
            reasons.append(f"other processes used {median:.2f} of the {cores} CPUs while the "
                           "cases were timed (median over groups)")
    return reasons


def disturbance_advice(clock: str = "wall", threads: int | None = None) -> str:
    """What to run instead, after the options this run already had."""
    if clock == "cpu":
        return "Run it again on a quieter machine."
    tries = ["`--clock cpu` (this process's CPU time, every library on one thread)"]
    if threads != 1:
        tries.append("`--threads 1` (every library on one thread)")
    return f"Run it again with {' or '.join(tries)}, or on a quieter machine."


def disturbance_lines(reasons: Sequence[str], advice: str = "") -> list[str]:
    """The report's warning: what was seen and that its numbers, ratios included, are not the
    libraries' own."""
    if not reasons:
        return []
    return ["### Warning: this run was disturbed", "",
            "Other load on the machine distorted this run: its times **and its ratios** (vs "
            "floor, vs torch) measure the competition for the cores, not the libraries. Seen:",
            "", *(f"- {reason}" for reason in reasons), "",
            *([advice, ""] if advice else [])]


# -- the machine ------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    from .. import __version__

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        if name == "xmlp":  # the code that ran, not whatever metadata the path finds first
            out[name] = __version__
            continue
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _blas() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: lib[k] for k in keep if k in lib} for lib in threadpool_info()]


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _source() -> str | None:
    """The git commit xmlp was imported from, "+ uncommitted changes" when the tree differs;
    None outside a git checkout (an installed wheel)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                              capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, text=True,
                               capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def machine_info(devices: dict[str, str], command: str, load_before: list[float] | None,
                 others: Sequence[float]) -> dict[str, Any]:
    """CPU, BLAS libraries and threads (threadpoolctl: library, version, kernel), devices,
    versions, load averages before and after, how many CPUs other processes used while the
    groups were timed, date and the command run."""
    torch = sys.modules.get("torch")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "cpus_usable": affinity, "platform": platform.platform(), "devices": devices,
        "blas": _blas(), "torch_threads": int(torch.get_num_threads()) if torch else None,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "versions": _versions(), "xmlp_source": _source(),
        "load_average_before": load_before, "load_average_after": load_average(),
        "others_cpu": [min(others), sorted(others)[len(others) // 2], max(others)]
        if others else None,
    }


def machine_markdown(info: dict[str, Any]) -> str:
    """machine.md: the facts a reader needs to compare these numbers with their own."""
    lines = ["# Machine", "", f"- Date (UTC): {info['date']}",
             f"- CPU: {info['cpu']}, {info['cpu_count']} logical CPUs "
             f"({info['cpus_usable']} usable by this process)", f"- Platform: {info['platform']}"]
    lines += [f"- Device of {b}: {d}" for b, d in info["devices"].items()]
    for lib in info["blas"]:
        path = str(lib.get("filepath", ""))
        owner = path.split("site-packages/", 1)[1].split("/")[0] if "site-packages/" in path else ""
        what = " ".join(str(v) for v in (lib.get("internal_api"), lib.get("version")) if v)
        lines.append(
            f"- Thread pool (threadpoolctl): {lib.get('prefix')} ({what}, {lib.get('user_api')})"
            + (f" from {owner}" if owner else "") + f": {lib.get('num_threads')} threads"
            + (f", {lib['architecture']} kernels" if lib.get("architecture") else ""))
    if info.get("torch_threads") is not None:
        lines.append(f"- torch.get_num_threads(): {info['torch_threads']}")
    if info.get("xla_flags"):
        lines.append(f"- XLA_FLAGS: {info['xla_flags'].strip()}")
    for when in ("before", "after"):
        load = info.get(f"load_average_{when}")
        if load is not None:
            lines.append(f"- Load average (1, 5, 15 min) {when} the run: "
                         + ", ".join(f"{v:.2f}" for v in load))
    if info.get("others_cpu"):
        lo, mid, hi = info["others_cpu"]
        lines.append(f"- CPUs used by other processes while a group was timed: median {mid:.2f}"
                     f" (least {lo:.2f}, most {hi:.2f})")
    for reason in info.get("disturbed") or ():
        lines.append(f"- **Disturbed run**: {reason}")
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    if info.get("xmlp_source"):
        lines.append(f"- xmlp source: git {info['xmlp_source']}")
    lines += ["", "Command:", "", "```", info["command"], "```", ""]
    return "\n".join(lines)


# -- figures ----------------------------------------------------------------------------------
def _colors(backends: Sequence[str]) -> dict[str, str]:
    return {b: f"C{_rank(b) if b in ORDER else 7 + n}" for n, b in enumerate(backends)}


def plot_gemm(records: Sequence[dict[str, Any]], path: Path, title: str = "") -> bool:
    """Batched-matmul GFLOP/s against batch size, a line per backend; a panel per dtype
    (rows) and (in, hidden, out) family (columns). A family measured at one batch size is
    drawn as bars, not a column of dots. False (nothing written) if there is nothing to draw."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    mine = [r for r in records if r["op"] == "batched_matmul"]
    if not mine:
        return False
    families = sorted({tuple(r["shape"][1:]) for r in mine})
    dtypes = sorted({r["dtype"] for r in mine})
    backends = sorted({r["backend"] for r in mine}, key=_rank)
    colors = _colors(backends)
    width = max(4.6 * len(families), 1.5 * len(backends) + 0.5)  # room for the legend's row
    fig = Figure(figsize=(width, 3.4 * len(dtypes) + 0.8), layout="constrained")
    axes = fig.subplots(len(dtypes), len(families), squeeze=False)
    for row, dtype in enumerate(dtypes):
        for col, fam in enumerate(families):
            ax = axes[row][col]
            here = [r for r in mine if r["dtype"] == dtype and tuple(r["shape"][1:]) == fam]
            batches = sorted({r["batch"] for r in here})
            for n, b in enumerate(backends):
                pts = sorted((r["batch"], r["gflops"]) for r in here if r["backend"] == b)
                if not pts:
                    continue
                if len(batches) == 1:
                    ax.bar(n, pts[0][1], color=colors[b], label=b)
                else:
                    ax.plot(*zip(*pts, strict=True), marker="o", color=colors[b], label=b)
            if len(batches) == 1:
                ax.set_xticks([])
                ax.set_xlabel(f"batch {batches[0]}")
            else:
                ax.set_xscale("log")
                # the measured batch sizes as labels: log-scale minor labels overlap
                ax.set_xticks(batches, [str(b) for b in batches])
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlabel("batch size")
            ax.set_yscale("log")
            ax.set_ylabel("GFLOP/s")
            i, h, _ = fam
            ax.set_title(f"{dtype}: (batch, {i}) @ ({i}, {h})", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = _legend_entries(axes)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 7))
    fig.suptitle(title or "Batched matmul: GFLOP/s against batch size")
    fig.savefig(path, dpi=100)
    return True


def plot_step(records: Sequence[dict[str, Any]], path: Path, title: str = "") -> bool:
    """The training step on every backend as bars, a group per shape: its time over its own
    six GEMMs (top) and over the PyTorch step (bottom), log scale, a line at 1; a column per
    dtype. The legend gives each backend's one-line note. False if there is nothing to draw."""
    from matplotlib.figure import Figure

    backends, keys, index = _steps(records)
    peer_ok = any(index[k].get("ratio_torch") for k in index if k[1] == "mlp_step")
    if not keys:
        return False
    dtypes = sorted({d for _, d in keys})
    rows = [("ratio_floor", "step / its own GEMMs")] + (
        [("ratio_torch", "xmlp step / PyTorch step")] if peer_ok else [])
    colors = _colors([*backends, "torch:cpu"])
    shapes = list(dict.fromkeys(s for s, _ in keys))
    # wide enough for the bars and for the legend's longest note (about 0.075 inch a letter)
    text = max(len(f"{b}: {NOTES.get(b, '')}") for b in backends)
    fig = Figure(figsize=(max(0.075 * text + 1, 0.75 * len(shapes) * len(dtypes) + 2),
                          3.2 * len(rows) + 0.25 * (len(backends) + 1) + 1),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(dtypes), squeeze=False)
    width = 0.8 / (len(backends) + 1)
    for row, (field, label) in enumerate(rows):
        for col, dtype in enumerate(dtypes):
            ax = axes[row][col]
            series = [*backends, "PyTorch"] if field == "ratio_floor" else backends
            for n, b in enumerate(series):
                op, name = ("torch_step", "torch:cpu") if b == "PyTorch" else ("mlp_step", b)
                vals = [(x, index[(name, op, s, dtype)].get(field))
                        for x, s in enumerate(shapes) if (name, op, s, dtype) in index]
                vals = [(x, v) for x, v in vals if v]
                if vals:
                    xs, ys = zip(*vals, strict=True)
                    ax.bar([x + (n - (len(series) - 1) / 2) * width for x in xs], ys, width,
                           color="0.35" if b == "PyTorch" else colors[b],
                           label="PyTorch (plain torch step)" if b == "PyTorch"
                           else f"{b}: {NOTES.get(b, '')}")
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xticks(range(len(shapes)), [_shape(s) for s in shapes], rotation=35,
                          ha="right", fontsize=7)
            ax.set_ylabel(label)
            ax.set_title(dtype, fontsize=10)
            ax.grid(True, axis="y", which="both", alpha=0.3)
    handles, labels = _legend_entries(axes)
    fig.legend(handles, labels, loc="outside lower center", ncol=1, fontsize=8)
    fig.suptitle(title or "One training step (batch, in, hidden, out): below 1 is faster")
    fig.savefig(path, dpi=100)
    return True


def _legend_entries(axes: Any) -> tuple[list[Any], list[str]]:
    """Every labelled artist of every panel, once: one legend for the figure, outside the
    panels, so it never hides a point."""
    seen: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen)
