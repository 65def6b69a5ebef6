"""What ``xmlp bench`` writes: records, ratios, the machine, tables, JSON and the plot."""

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

from ._bench_cases import OPS, Case, Timing, cpu_model, gemms, gflops, op_flops

__all__ = [
    "FLOOR_OF",
    "add_ratios",
    "machine_info",
    "machine_markdown",
    "make_record",
    "markdown_table",
    "plot",
    "text_table",
    "write_json",
]

# The op whose GEMM rate each op is compared with ("vs floor"): the Linear and MLP ops with
# their six GEMMs run bare, the bare GEMMs with one plain 2-D matmul.
FLOOR_OF = {
    "batched_matmul": "matmul",
    "step_gemms": "matmul",
    "linear_forward": "step_gemms",
    "linear_backward": "step_gemms",
    "mlp_step": "step_gemms",
    "torch_step": "step_gemms",
}
_BACKEND_ORDER = ("numpy", "array_api_strict", "torch:cpu", "jax", "dask", "cupy", "torch:cuda")
_VERSIONED = ("xmlp", "numpy", "array-api-compat", "array-api-strict", "torch", "jax", "jaxlib",
              "dask", "cupy-cuda12x", "cupy-cuda13x", "threadpoolctl", "pytest-benchmark")
COLUMNS = ("op", "backend", "device", "dtype", "shape", "median", "GFLOP/s", "vs floor",
           "vs torch")
LEGEND = (
    "shape = (batch, in, hidden, out). GFLOP/s = 2·m·k·n summed over the op's GEMMs / median "
    "time. vs floor = the op's time per GEMM FLOP over that of its floor on the same backend, "
    "dtype and shape (step_gemms for Linear/MLP ops and torch_step, matmul for batched_matmul "
    "and step_gemms); for mlp_step it is simply mlp_step time / step_gemms time. vs torch = "
    "mlp_step time / torch_step time (plain PyTorch, same device kind, dtype and shape). "
    "* = some timed repeats ran while other processes used the CPU (more than a fifth of a "
    "core) even after re-timing: that median is likely too slow."
)


# -- records ----------------------------------------------------------------------------------
def make_record(case: Case, timing: Timing, *, device: str, mode: str) -> dict[str, Any]:
    """One bench.json entry: the documented keys (backend, device, dtype, op, batch, shape,
    seconds, gflops) and what else helps read it."""
    be = case.backend
    finite = case.check() if case.check is not None else None
    return {
        "op": case.op,
        "backend": be.name,
        "device": device,
        "kind": be.kind,
        "dtype": case.dtype,
        "batch": case.shape[0],
        "shape": [int(d) for d in case.shape],
        "seconds": timing.seconds,
        "gflops": gflops(case.flops, timing.seconds),
        "flops": op_flops(case.op, case.shape),
        "gemms": [list(g) for g in gemms(case.op, case.shape)],
        "times": timing.times,
        "number": timing.number,
        "repeats": len(timing.times),
        "warmup": timing.warmup,
        "disturbed": timing.disturbed,
        "retimed": timing.retimed,
        "others_cpu": timing.others_cpu,
        "threads": be.threads(),
        "tf32": _tf32(case),
        "finite": finite,
        "cuda_event_seconds": None,
        "mode": mode,
        "load_average": _load1(),  # when the case finished: other work on the cores?
    }


def _tf32(case: Case) -> bool | None:
    """Whether float32 GEMMs may run on TF32 tensor cores (GPU float32 only)."""
    if case.backend.kind != "gpu" or case.dtype != "float32":
        return None
    if case.backend.name == "cupy":
        return os.environ.get("CUPY_TF32", "0") == "1"
    return bool(case.backend.module.backends.cuda.matmul.allow_tf32)


def _load1() -> float | None:
    load = load_average()
    return load[0] if load else None


def add_ratios(records: Sequence[dict[str, Any]]) -> None:
    """Set ``floor_op``, ``ratio_floor`` and ``ratio_torch`` on every record (None where the
    record to compare with was not measured in this run)."""
    index = {(r["backend"], r["dtype"], tuple(r["shape"]), r["op"]): r for r in records}
    for r in records:
        key = (r["dtype"], tuple(r["shape"]))
        floor = FLOOR_OF.get(r["op"])
        base = index.get((r["backend"], *key, floor)) if floor else None
        r["floor_op"] = floor if base is not None else None
        r["ratio_floor"] = base["gflops"] / r["gflops"] if base is not None else None
        peer = None
        if r["op"] == "mlp_step":
            peer_name = "torch:cuda" if r["kind"] == "gpu" else "torch:cpu"
            peer = index.get((peer_name, *key, "torch_step"))
        r["ratio_torch"] = r["seconds"] / peer["seconds"] if peer is not None else None


def _sort_key(r: dict[str, Any]) -> tuple[Any, ...]:
    b, i, h, o = r["shape"]
    order = _BACKEND_ORDER.index(r["backend"]) if r["backend"] in _BACKEND_ORDER else 99
    return (i, h, o, b, r["dtype"], OPS.index(r["op"]), order)


def write_json(records: Sequence[dict[str, Any]], path: Path) -> None:
    path.write_text(json.dumps(sorted(records, key=_sort_key), indent=1) + "\n", encoding="utf-8")


# -- tables -----------------------------------------------------------------------------------
def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def fmt_rate(g: float) -> str:
    if g >= 100:
        return f"{g:.0f}"
    if g >= 10:
        return f"{g:.1f}"
    if g >= 0.1:
        return f"{g:.2f}"
    return f"{g:.2g}"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def _rows(records: Iterable[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (r["op"], r["backend"], r["device"], r["dtype"],
         "(" + ", ".join(map(str, r["shape"])) + ")",
         fmt_seconds(r["seconds"]) + ("*" if r.get("disturbed") else ""),
         fmt_rate(r["gflops"]), _ratio(r.get("ratio_floor")), _ratio(r.get("ratio_torch")))
        for r in sorted(records, key=_sort_key)
    ]


def text_table(records: Iterable[dict[str, Any]]) -> str:
    """The table printed at the end of a run, one line per record."""
    rows = [COLUMNS, *_rows(records)]
    widths = [max(len(row[c]) for row in rows) for c in range(len(COLUMNS))]
    right = {5, 6, 7, 8}
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.rjust(w) if c in right else cell.ljust(w)
                 for c, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(records: Iterable[dict[str, Any]]) -> str:
    """The same table in Markdown, with the legend under it."""
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "| " + " | ".join("---:" if c >= 5 else "---" for c in range(len(COLUMNS))) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(records)]
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"


# -- the machine ------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
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
    """The 1, 5 and 15-minute load averages (None where the OS has none): other processes
    competing for the cores make CPU timings low."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _source() -> str | None:
    """The git commit xmlp was imported from, "+ changes" when the tree differs from it; None
    outside a git checkout (an installed wheel)."""
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


def machine_info(devices: dict[str, str], command: str,
                 load_before: list[float] | None = None) -> dict[str, Any]:
    """CPU model and cores, BLAS libraries and threads (threadpoolctl), devices per backend,
    library versions, load averages before and after, date and the command run."""
    torch_threads = None
    if "torch" in sys.modules:
        torch_threads = int(sys.modules["torch"].get_num_threads())
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "platform": platform.platform(),
        "devices": devices,
        "blas": _blas(),
        "torch_threads": torch_threads,
        "versions": _versions(),
        "xmlp_source": _source(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def machine_markdown(info: dict[str, Any]) -> str:
    """machine.md: the facts a reader needs to compare these numbers with their own."""
    lines = [
        "# Machine",
        "",
        f"- Date (UTC): {info['date']}",
        f"- CPU: {info['cpu']}, {info['cpu_count']} logical CPUs "
        f"({info['cpus_usable']} usable by this process)",
        f"- Platform: {info['platform']}",
    ]
    for backend, device in info["devices"].items():
        lines.append(f"- Device of {backend}: {device}")
    for lib in info["blas"]:
        path = str(lib.get("filepath", ""))
        owner = path.split("site-packages/", 1)[1].split("/")[0] if "site-packages/" in path else ""
        what = " ".join(str(v) for v in (lib.get("internal_api"), lib.get("version")) if v)
        lines.append(
            f"- Thread pool (threadpoolctl): {lib.get('prefix')} ({what}, {lib.get('user_api')})"
            + (f" from {owner}" if owner else "") + f": {lib.get('num_threads')} threads"
            + (f", {lib['architecture']} kernels" if lib.get("architecture") else "")
            + (f", {lib['threading_layer']}" if lib.get("threading_layer") else "")
        )
    for when in ("before", "after"):
        load = info.get(f"load_average_{when}")
        if load is not None:
            lines.append(f"- Load average (1, 5, 15 min) {when} the run: "
                         + ", ".join(f"{v:.2f}" for v in load))
    if info.get("torch_threads") is not None:
        lines.append(f"- torch.get_num_threads(): {info['torch_threads']}")
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    if info.get("xmlp_source"):
        lines.append(f"- xmlp source: git {info['xmlp_source']}")
    lines += ["", "Command:", "", "```", info["command"], "```", ""]
    return "\n".join(lines)


# -- the plot ---------------------------------------------------------------------------------
def plot(records: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """GFLOP/s against batch size, log axes: a panel per (in, hidden, out) family and dtype, a
    line per backend and op (colour: op, line style and marker: backend)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    families = sorted({tuple(r["shape"][1:]) for r in records})
    dtypes = sorted({r["dtype"] for r in records})
    backends = sorted({r["backend"] for r in records},
                      key=lambda b: _BACKEND_ORDER.index(b) if b in _BACKEND_ORDER else 99)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    colors = {op: f"C{n}" for n, op in enumerate(OPS)}
    fig = Figure(figsize=(6.0 * len(dtypes), 4.2 * len(families)), layout="constrained")
    axes = fig.subplots(len(families), len(dtypes), squeeze=False)
    for row, fam in enumerate(families):
        for col, dtype in enumerate(dtypes):
            ax = axes[row][col]
            for n, backend in enumerate(backends):
                for op in OPS:
                    pts = sorted((r["batch"], r["gflops"]) for r in records
                                 if r["backend"] == backend and r["op"] == op
                                 and r["dtype"] == dtype and tuple(r["shape"][1:]) == fam)
                    if not pts:
                        continue
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors[op],
                            linestyle=styles[n % len(styles)], marker=markers[n % len(markers)],
                            label=f"{backend} {op}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # labels at powers of 10 only
            ax.set_xlabel("batch size")
            ax.set_ylabel("GFLOP/s")
            ax.set_title(f"{dtype}, (in, hidden, out) = {fam}")
            ax.grid(True, which="both", alpha=0.3)
            if ax.has_data():
                ax.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
