"""``xmlp bench``: GEMM and training-step throughput per backend, dtype and shape.

Measures, for each (batch, in, hidden, out): a raw 2-D matmul, a stacked 3-D batched matmul,
the six GEMMs of one MLP step alone (``step_gemms``, the floor), Linear forward and backward,
the whole xmlp MLP step (``mlp_step``) and the same step in plain PyTorch (``torch_step``,
the peer). Every timed call waits for its results (GPU sync, ``block_until_ready``, Dask
``persist``); times are medians after warm-up. See benchmarks/README.md.

    xmlp bench --quick --backend numpy --out results/
    xmlp bench --shape 1024,256,1024,256 --op mlp_step --op step_gemms --op torch_step
    python -m xmlp.bench ...   # the same without the xmlp entry point
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "main", "run"]

_BACKEND_CHOICES = ("numpy", "array_api_strict", "torch", "torch:cpu", "torch:cuda", "jax",
                    "dask", "cupy", "all")
# (repeats, warm-up calls, minimum warm-up seconds, minimum seconds per repeat, at most this
# many timed seconds per case unless that leaves fewer than 3 repeats) for quick and full runs.
# Warming up for a while, not only a few calls: on NumPy the first tens of steps of a process
# can run 1.5x slower (the allocator settling), which a 2-call warm-up would time.
_TIMING = {True: (5, 2, 0.25, 0.02, 2.0), False: (7, 2, 0.5, 0.1, 10.0)}


def _shape(text: str) -> tuple[int, int, int, int]:
    """"1024,256,1024,256" (or 1024x256x1024x256) -> (1024, 256, 1024, 256)."""
    parts = text.replace("x", ",").split(",")
    try:
        dims: tuple[int, ...] = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"shape must be batch,in,hidden,out (4 positive ints), got {text!r}")
    return dims


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= sys.maxsize:
        raise argparse.ArgumentTypeError(f"must be >= 1 and <= {sys.maxsize}, got {text:.40}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text:.40}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``xmlp bench`` options. Lists may be repeated flags, several values, or commas."""
    from ._bench_cases import DTYPES, OPS

    parser.add_argument(
        "--backend", action="extend", nargs="+", metavar="B",
        help=f"backends to measure: {', '.join(_BACKEND_CHOICES)} (torch = torch:cpu and "
             "torch:cuda where there is one). Default: numpy, and cupy where a GPU is usable.")
    parser.add_argument("--dtype", action="extend", nargs="+", metavar="D",
                        help=f"{' or '.join(DTYPES)} (default: both)")
    parser.add_argument(
        "--op", action="extend", nargs="+", metavar="OP",
        help=f"ops to measure (default: all): {', '.join(OPS)}. torch_step runs on torch "
             "(CPU, and CUDA when a GPU backend is measured) as the peer of mlp_step.")
    parser.add_argument(
        "--shape", action="extend", nargs="+", type=_shape, metavar="B,I,H,O",
        help="measure only these (batch, in, hidden, out) shapes instead of the size grid")
    parser.add_argument("--quick", action="store_true",
                        help="the small grid and fewer repeats (under a minute on 2 CPU cores)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write bench.json, bench.md, bench.png, machine.json and "
                             "machine.md there (default: print the table only)")
    parser.add_argument("--repeat", type=_positive_int, metavar="N",
                        help="timed repeats per case; the median is reported (default: quick 5, "
                             "full 7, fewer but at least 3 for cases that would time more than "
                             "2 s quick, 10 s full)")
    parser.add_argument("--warmup", type=_positive_int, metavar="N",
                        help="untimed calls before timing (default 2, and calls for at least "
                             "0.25 s quick, 0.5 s full)")
    parser.add_argument("--min-time", type=_seconds, metavar="S",
                        help="calls per repeat are chosen so a repeat lasts at least S seconds "
                             "(quick 0.02, full 0.1)")
    parser.add_argument("--wait-quiet", type=_seconds, default=0.0, metavar="S",
                        help="on a shared machine: before each case and each re-timed repeat, "
                             "wait (up to S seconds in all) until other processes leave the "
                             "CPU alone (default 0: never wait)")
    parser.add_argument("--passes", type=_positive_int, default=1, metavar="N",
                        help="measure the whole plan N times and keep each case's fastest "
                             "median (all are in pass_seconds): against a machine whose speed "
                             "drifts over minutes, as shared cloud VMs do (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _backend_names(requested: list[str] | None) -> list[str]:
    from ._bench_cases import BACKENDS, BackendUnavailable, load_backend

    names = _split(requested)
    if not names:
        names = ["numpy"]
        try:
            load_backend("cupy")
            names.append("cupy")
        except BackendUnavailable:
            pass
    out: list[str] = []
    for name in names:
        if name not in _BACKEND_CHOICES:
            raise ValueError(f"unknown backend {name!r}; choose from {_BACKEND_CHOICES}")
        expanded = {"all": list(BACKENDS), "torch": ["torch:cpu", "torch:cuda"]}.get(name, [name])
        out += [n for n in expanded if n not in out]
    return out


def _choose(requested: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str]:
    names = _split(requested) or list(allowed)
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {allowed}")
    return list(dict.fromkeys(names))


def _command(args: argparse.Namespace, backends: list[str], dtypes: list[str],
             ops: list[str]) -> str:
    """The run as one reproducible command line."""
    words = ["xmlp", "bench", "--backend", *backends, "--dtype", *dtypes]
    if args.op:
        words += ["--op", *ops]
    if args.shape:
        words += ["--shape", *(",".join(map(str, s)) for s in args.shape)]
    if args.quick:
        words.append("--quick")
    for flag, value in (("--repeat", args.repeat), ("--warmup", args.warmup),
                        ("--min-time", args.min_time), ("--wait-quiet", args.wait_quiet or None),
                        ("--passes", args.passes if args.passes > 1 else None),
                        ("--out", args.out)):
        if value is not None:
            words += [flag, format(value, "g") if isinstance(value, float) else str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Measure, print the table, write the files; 0 if every case ran, 1 otherwise."""
    from tqdm import tqdm

    from . import _bench_cases as bc
    from . import _bench_report as rep

    try:
        names = _backend_names(args.backend)
        dtypes = _choose(args.dtype, bc.DTYPES, "dtype")
        ops = _choose(args.op, bc.OPS, "op")
        if args.out is not None:  # before measuring, not after
            _check_out(args.out)
    except ValueError as exc:
        print(f"xmlp bench: {exc}", file=sys.stderr)
        return 2
    repeats, warmup, warmup_time, min_time, budget = _TIMING[bool(args.quick)]
    max_time: float | None = budget
    repeats = args.repeat or repeats
    warmup = args.warmup or warmup
    min_time = min_time if args.min_time is None else args.min_time
    if args.repeat:  # asked for: exactly that many
        max_time = None

    loaded, peers, skipped = bc.load_backends(names, with_peers="torch_step" in ops)
    for reason in skipped:
        print(f"xmlp bench: skipped {reason}", file=sys.stderr)
    if not loaded:
        print("xmlp bench: no requested backend can run here; nothing measured", file=sys.stderr)
        return 1

    load_before = rep.load_average()
    cores = os.cpu_count() or 1
    if load_before is not None and load_before[0] > 0.5 * cores:
        print(f"xmlp bench: WARNING load average {load_before[0]:.2f} on {cores} CPUs: other "
              "processes compete for the cores, so CPU timings will be low", file=sys.stderr)
    todo = bc.plan(loaded, dtypes, ops, full=not args.quick, shapes=args.shape, peers=peers)
    by_name = {b.name: b for b in [*loaded, *peers.values()]}
    mode = "quick" if args.quick else "full"
    gate = bc.QuietGate(args.wait_quiet) if args.wait_quiet > 0 else None
    timing_args = {"repeats": repeats, "warmup": warmup, "warmup_time": warmup_time,
                   "min_time": min_time, "max_time": max_time,
                   "others": bc.others_cpu_seconds, "gate": gate}
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    failures: list[str] = []
    devices: dict[str, str] = {}
    progress = tqdm(total=len(todo) * args.passes, desc="xmlp bench", unit="case",
                    disable=args.no_progress, file=sys.stderr)
    for _ in range(args.passes):
        for record in _one_pass(bc, rep, todo, by_name, devices, timing_args, mode, progress,
                                failures):
            key = (record["backend"], record["dtype"], tuple(record["shape"]), record["op"])
            seen = best.get(key)
            medians = [*(seen["pass_seconds"] if seen else []), record["seconds"]]
            if seen is None or record["seconds"] < seen["seconds"]:
                best[key] = record
            best[key]["pass_seconds"] = medians
    progress.close()
    records = list(best.values())
    if gate is not None:
        print(f"xmlp bench: waited {gate.waited:.0f} s in all for other processes to finish",
              file=sys.stderr)

    rep.add_ratios(records)
    if records:
        print(rep.text_table(records))
        print()
        print(rep.LEGEND)
    if args.out is not None and records:
        _write(rep, args, records, devices, _command(args, names, dtypes, ops), load_before)
    disturbed = sum(1 for r in records if r["disturbed"])
    if disturbed:
        print(f"xmlp bench: WARNING {disturbed} of {len(records)} cases (marked *) kept repeats "
              "during which other processes used the CPU; rerun on a quiet machine",
              file=sys.stderr)
    for failure in failures:
        print(f"xmlp bench: FAILED {failure}", file=sys.stderr)
    return 1 if failures or not records else 0


def _one_pass(bc: Any, rep: Any, todo: list[Any], by_name: dict[str, Any],
              devices: dict[str, str], timing_args: dict[str, Any], mode: str, progress: Any,
              failures: list[str]) -> list[dict[str, Any]]:
    """Measure every planned case once; a case that raises is reported and skipped."""
    records = []
    for (name, dtype, shape), group in itertools.groupby(
            todo, key=lambda p: (p.backend, p.dtype, p.shape)):
        backend = by_name[name]
        device = devices.setdefault(name, backend.device_name())
        workload = bc.Workload(backend, dtype, shape)
        for item in group:
            label = f"{item.op} {name} {dtype} {shape}"
            progress.set_postfix_str(label)
            case = None
            try:
                case = workload.case(item.op)
                timing = bc.measure(case.fn, **timing_args)
                record = rep.make_record(case, timing, device=device, mode=mode)
                if backend.kind == "gpu":
                    _event_check(bc, case, record, max(5, timing_args["repeats"]), progress)
                records.append(record)
            except Exception as exc:  # report the case and measure the rest (e.g. GPU OOM)
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
                progress.write(f"xmlp bench: FAILED {failures[-1]}")
            finally:
                case = None  # free this case's arrays before the next one is made (GPU memory)
                progress.update(1)
        del workload
        backend.free()
    return records


def _event_check(bc: Any, case: Any, record: dict[str, Any], n: int, progress: Any) -> None:
    """Cross-check a GPU timing once with CUDA events: the host-side median must not be
    shorter than the GPU's own elapsed time, or something was not synchronized."""
    events = bc.event_seconds(case, n)
    record["cuda_event_seconds"] = events
    if events is not None and record["seconds"] < 0.95 * events:
        progress.write(
            f"xmlp bench: WARNING {case.op} {case.backend.name} {case.shape}: host median "
            f"{record['seconds']:.3g} s < CUDA-event median {events:.3g} s (missing sync?)")


def _check_out(out: Path) -> None:
    """ValueError unless ``out`` is (or can be made) a writable directory: made now, so that
    a bad --out fails before minutes of measuring."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot make the --out directory {str(out)!r}: {exc}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write into the --out directory {str(out)!r}")


def _write(rep: Any, args: argparse.Namespace, records: list[dict[str, Any]],
           devices: dict[str, str], command: str, load_before: list[float] | None) -> None:
    import json

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    info = rep.machine_info(devices, command, load_before)
    rep.write_json(records, out / "bench.json")
    (out / "machine.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (out / "machine.md").write_text(rep.machine_markdown(info), encoding="utf-8")
    head = (f"# xmlp bench ({'quick' if args.quick else 'full'})\n\n{info['date']}, "
            f"{', '.join(sorted(set(devices.values())))}. Command: `{command}`\n\n")
    (out / "bench.md").write_text(head + rep.markdown_table(records), encoding="utf-8")
    try:
        rep.plot(records, out / "bench.png",
                 title="xmlp bench: " + ", ".join(sorted(set(devices.values()))))
    except ImportError:
        print("xmlp bench: matplotlib is not installed, so no bench.png "
              "(pip install 'xmlp[bench]')", file=sys.stderr)
    print(f"\nwrote {out}/bench.json, bench.md, bench.png, machine.json, machine.md")


def main(argv: list[str] | None = None) -> int:
    """``python -m xmlp.bench``: the same as ``xmlp bench``."""
    parser = argparse.ArgumentParser(prog="xmlp bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
