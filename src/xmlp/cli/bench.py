"""``xmlp bench``: GEMM and training-step speed on every backend, in one run.

For each (batch, in, hidden, out) and dtype, every backend's batched matmul, the six GEMMs of
one MLP step alone (``step_gemms``, the floor), xmlp's whole step (``mlp_step``) and the same
step in plain PyTorch (``torch_step``, the peer) are timed in the same interleaved rounds
(:mod:`xmlp.cli.bench_timing`); every timed call waits for its results. See benchmarks/README.md.

    xmlp bench --quick --backend all --out results/
    xmlp bench --shape 1024,256,1024,256 --op mlp_step step_gemms torch_step
    python -m xmlp.cli.bench ...   # the same without the xmlp entry point
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .options import count_option

__all__ = ["add_arguments", "main", "run"]

_BACKEND_CHOICES = ("numpy", "array_api_strict", "torch", "torch:cpu", "torch:cuda", "jax",
                    "dask", "cupy", "cpu", "all")
# (rounds, seconds per sample, warm-up seconds per case, most timed seconds per group) for
# quick and full runs. Warming up for a while, not a few calls: on NumPy the first tens of
# steps of a process can run 1.5x slower (the allocator settling).
_TIMING = {True: (5, 0.02, 0.2, 5.0), False: (7, 0.05, 0.5, 60.0)}


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


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text:.40}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``xmlp bench`` options to ``parser``. Lists may be repeated flags, several
    values, or commas.

    Args:
        parser: the parser (or sub-command parser) that gets the options.

    Example:
        >>> import argparse
        >>> from xmlp.cli import bench
        >>> parser = argparse.ArgumentParser(prog="xmlp bench")
        >>> bench.add_arguments(parser)
        >>> args = parser.parse_args(["--backend", "numpy", "--shape", "64,8,16,4"])
        >>> args.backend, args.shape, args.clock
        (['numpy'], [(64, 8, 16, 4)], 'wall')
    """
    from .bench_cases import COMPILED_OPS, DTYPES, OPS

    parser.add_argument(
        "--backend", action="extend", nargs="+", metavar="B",
        help=f"backends to measure: {', '.join(_BACKEND_CHOICES)} (torch = torch:cpu and "
             "torch:cuda; cpu = every CPU backend). Default: numpy, and cupy where a GPU is "
             "usable.")
    parser.add_argument("--dtype", action="extend", nargs="+", metavar="D",
                        help=f"{' or '.join(DTYPES)} (default: both)")
    parser.add_argument(
        "--op", action="extend", nargs="+", metavar="OP",
        help=f"ops to measure (default: {', '.join(OPS)}; on request: "
             f"{', '.join(COMPILED_OPS)}). torch_step runs on torch (CPU, and CUDA when a GPU "
             "backend is measured) as the peer of mlp_step. compiled_step is xmlp's step "
             "through xmlp.TrainStep(compile=True) on jax and torch; jax_jit (the step written "
             "in JAX under jax.jit) and torch_compile (PyTorch's nn.Sequential step, "
             "torch.compile'd) are its peers; their first call, the compile, is timed apart.")
    parser.add_argument(
        "--shape", action="extend", nargs="+", type=_shape, metavar="B,I,H,O",
        help="measure only these (batch, in, hidden, out) shapes instead of the size grid")
    parser.add_argument("--quick", action="store_true",
                        help="the small grid and fewer rounds (a minute or two on 2 CPU cores)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write bench.json, bench.md, gemm.png, step.png, machine.json and "
                             "machine.md there (default: print the tables only)")
    parser.add_argument("--rounds", type=count_option, metavar="N",
                        help="interleaved rounds per group; the median is reported (default: "
                             "quick 5, full 7, fewer but at least 3 for groups that would time "
                             "more than 5 s quick, 60 s full)")
    parser.add_argument("--min-time", type=_seconds, metavar="S",
                        help="calls per sample are chosen so a sample lasts at least S seconds "
                             "(quick 0.02, full 0.05)")
    parser.add_argument("--threads", type=count_option, metavar="N",
                        help="limit every library's thread pool to N threads (BLAS and OpenMP "
                             "through threadpoolctl, torch.set_num_threads, Dask's workers; "
                             "XLA's with N = 1 only): for comparisons that a "
                             "busy shared machine does not distort (default: each library's "
                             "own choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: the CPU time of this process, "
                             "every library on one thread (implies --threads 1): other "
                             "processes on a shared machine then barely change the numbers")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none when stderr is not a terminal)")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _backend_names(requested: list[str] | None) -> list[str]:
    from .bench_cases import BACKENDS, BackendUnavailable, kind_of, load_backend

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
        expanded = {"all": list(BACKENDS), "torch": ["torch:cpu", "torch:cuda"],
                    "cpu": [b for b in BACKENDS if kind_of(b) == "cpu"]}.get(name, [name])
        out += [n for n in expanded if n not in out]
    return out


def _choose(requested: list[str] | None, allowed: tuple[str, ...], what: str,
            default: tuple[str, ...] | None = None) -> list[str]:
    names = _split(requested) or list(allowed if default is None else default)
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
    if args.clock != "wall":
        words += ["--clock", args.clock]
    for flag, value in (("--rounds", args.rounds), ("--min-time", args.min_time),
                        ("--threads", args.threads), ("--out", args.out)):
        if value is not None:
            words += [flag, format(value, "g") if isinstance(value, float) else str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Measure, print the tables, write the files; 0 if every case ran, 1 otherwise (2 for
    bad options).

    Args:
        args: the options, as :func:`add_arguments` parses them.

    Example:
        >>> import argparse
        >>> from xmlp.cli import bench
        >>> parser = argparse.ArgumentParser(prog="xmlp bench")
        >>> bench.add_arguments(parser)
        >>> args = parser.parse_args(["--backend", "numpy", "--op", "mlp_step", "--dtype",
        ...                           "float64", "--shape", "64,8,16,4", "--quick",
        ...                           "--rounds", "1", "--min-time", "0", "--no-progress"])
        >>> status = bench.run(args)
        # xmlp bench (quick)
        ...
        >>> status
        0
    """
    from . import bench_cases as bc
    from . import bench_report as rep

    try:
        names, dtypes, ops, timing = _options(args, bc)
    except ValueError as exc:
        print(f"xmlp bench: {exc}", file=sys.stderr)
        return 2
    if args.threads == 1:  # read when JAX starts: before the backends are loaded
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_"
                                   "thread_eigen=false intra_op_parallelism_threads=1")
    loaded, peers, skipped = bc.load_backends(
        names, with_peers=any(bc.PEER_OPS.get(op) == "torch" for op in ops),
        jax_peer="jax_jit" in ops)
    if args.threads:
        _limit_threads(args.threads)
    if not loaded:
        for reason in skipped:
            print(f"xmlp bench: skipped {reason}", file=sys.stderr)
        print("xmlp bench: no requested backend can run here; nothing measured", file=sys.stderr)
        return 1
    load_before = rep.load_average()
    cores = os.cpu_count() or 1
    if load_before is not None and load_before[0] > 0.5 * cores:
        print(f"xmlp bench: WARNING load average {load_before[0]:.2f} on {cores} CPUs: other "
              "processes compete for the cores, which can distort times and ratios alike (a "
              "library whose threads wait for each other suffers most). "
              f"{rep.disturbance_advice(args.clock, args.threads)}", file=sys.stderr)
    groups = bc.plan(loaded, dtypes, ops, full=not args.quick, shapes=args.shape, peers=peers)
    by_name = {b.name: b for b in [*loaded, *peers.values()]}
    devices = {name: be.device_name() for name, be in by_name.items()}
    records, failures, others = _measure_all(args, groups, by_name, devices, timing)
    rep.add_ratios(records)
    disturbed = rep.disturbances(records, cores=cores, load_before=load_before,
                                 load_during=[r["load_average"] for r in records],
                                 others=others, clock=args.clock)
    for r in records:
        r["disturbed"] = disturbed
    command = _command(args, names, dtypes, ops)
    report = _report(args, records, devices, command, skipped, disturbed)
    print(report)  # what bench.md holds: the tables a reader (or the README) quotes
    if args.out is not None and records:
        _write(rep, args, records, devices, command, load_before, others, report, disturbed)
    if disturbed:
        print("xmlp bench: WARNING this run was disturbed by other load; its times and ratios "
              f"are not the libraries' own ({'; '.join(disturbed)}). "
              f"{rep.disturbance_advice(args.clock, args.threads)}", file=sys.stderr)
    for failure in failures:
        print(f"xmlp bench: FAILED {failure}", file=sys.stderr)
    return 1 if failures or not records else 0


def _options(args: argparse.Namespace, bc: Any) -> tuple[list[str], list[str], list[str],
                                                          dict[str, Any]]:
    """(backend names, dtypes, ops, timing settings) from the options; ValueError for a bad
    one (before anything is measured). ``--clock cpu`` implies ``--threads 1``."""
    names = _backend_names(args.backend)
    dtypes = _choose(args.dtype, bc.DTYPES, "dtype")
    ops = _choose(args.op, bc.ALL_OPS, "op", default=bc.OPS)
    if args.out is not None:  # before measuring, not after
        _check_out(args.out)
    if args.clock == "cpu":
        if (args.threads or 1) != 1:
            raise ValueError("--clock cpu adds up every thread's time: use --threads 1")
        args.threads = 1
    rounds, min_time, warmup_time, max_time = _TIMING[bool(args.quick)]
    timing = {"rounds": args.rounds or rounds, "warmup_time": warmup_time,
              "min_time": min_time if args.min_time is None else args.min_time,
              "max_time": None if args.rounds else max_time,
              "timer": time.process_time if args.clock == "cpu" else time.perf_counter}
    return names, dtypes, ops, timing


def _measure_all(args: argparse.Namespace, groups: list[Any], by_name: dict[str, Any],
                 devices: dict[str, str], timing: dict[str, Any],
                 ) -> tuple[list[dict[str, Any]], list[str], list[float]]:
    """(a record per case measured, failures, the other processes' CPU share per group)."""
    from tqdm import tqdm

    from . import bench_cases as bc
    from . import bench_report as rep
    from .bench_timing import others_cpu_seconds

    mode = "quick" if args.quick else "full"
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    others: list[float] = []
    # tqdm's disable=None: no bar when stderr is not a terminal (CI logs, redirects)
    progress = tqdm(groups, desc="xmlp bench", unit="group", file=sys.stderr,
                    disable=True if args.no_progress else None)
    for group in progress:
        progress.set_postfix_str(f"{group.dtype} {group.shape}")
        before, start = others_cpu_seconds(), time.perf_counter()
        measured = _measure_group(bc, group, by_name, timing, failures)
        after, span = others_cpu_seconds(), time.perf_counter() - start
        share = None if before is None or after is None or span <= 0 else (after - before) / span
        if share is not None:
            others.append(share)
        records += [rep.make_record(case, t, device=devices[case.backend.name], mode=mode,
                                    others_cpu=share) for case, t in measured]
    progress.close()
    return records, failures, others


def _report(args: argparse.Namespace, records: list[dict[str, Any]], devices: dict[str, str],
            command: str, skipped: list[str], disturbed: list[str]) -> str:
    """The Markdown report of the run (what bench.md holds); empty without records."""
    from . import bench_report as rep

    mode = "quick" if args.quick else "full"
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")
    head = (f"# xmlp bench ({mode})\n\n{when}, {', '.join(sorted(set(devices.values())))}. "
            f"Command: `{command}`")
    if args.clock == "cpu":
        head += ("\n\nTimes are CPU seconds of the process (time.process_time) with every "
                 "library on one thread, not elapsed time.")
    advice = rep.disturbance_advice(args.clock, args.threads)
    return rep.markdown_report(records, head, skipped, disturbed, advice) if records else ""


_limits: list[Any] = []  # threadpoolctl's limiter, kept alive for the run


def _limit_threads(n: int) -> None:
    """BLAS and OpenMP pools (threadpoolctl), torch and Dask's scheduler to ``n`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("xmlp bench: threadpoolctl is not installed, so --threads cannot limit BLAS "
              "(pip install threadpoolctl)", file=sys.stderr)
    else:
        _limits.append(threadpool_limits(limits=n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "dask" in sys.modules:
        sys.modules["dask"].config.set(num_workers=n)


def _measure_group(bc: Any, group: Any, by_name: dict[str, Any], timing: dict[str, Any],
                   failures: list[str]) -> list[tuple[Any, Any]]:
    """Time every case of one (dtype, shape) in the same rounds; a case that cannot be made
    or fails its first call is reported in ``failures`` and left out (e.g. GPU memory)."""
    from .bench_timing import family_of, interleaved

    workloads: dict[str, Any] = {}
    cases = {}
    for name, op in group.items:
        label = f"{op} {name} {group.dtype} {group.shape}"
        try:
            if name not in workloads:
                workloads[name] = bc.Workload(by_name[name], group.dtype, group.shape)
            case = workloads[name].case(op)
            case.fn()
            cases[(name, op)] = case
        except Exception as exc:  # report the case and measure the rest
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    try:
        timings = interleaved({k: c.fn for k, c in cases.items()},
                              family=lambda k: family_of(k[0]), **timing)
    except Exception as exc:
        failures.append(f"{group.dtype} {group.shape}: {type(exc).__name__}: {exc}")
        timings = {}
    out = [(cases[k], t) for k, t in timings.items()]
    cases.clear()
    workloads.clear()  # free this group's arrays before the next group's are made
    for name in dict.fromkeys(n for n, _ in group.items):
        by_name[name].free()
    return out


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
           devices: dict[str, str], command: str, load_before: list[float] | None,
           others: list[float], report: str, disturbed: list[str]) -> None:
    import json

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    info = {**rep.machine_info(devices, command, load_before, others), "disturbed": disturbed}
    rep.write_json(records, out / "bench.json")
    (out / "machine.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (out / "machine.md").write_text(rep.machine_markdown(info), encoding="utf-8")
    (out / "bench.md").write_text(report, encoding="utf-8")
    written = ["bench.json", "bench.md", "machine.json", "machine.md"]
    try:
        for name, draw in (("gemm.png", rep.plot_gemm), ("step.png", rep.plot_step)):
            if draw(records, out / name):
                written.append(name)
    except ImportError:
        print("xmlp bench: matplotlib is not installed, so no figures "
              "(pip install matplotlib)", file=sys.stderr)
    print(f"wrote {out}/: {', '.join(written)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m xmlp.cli.bench``: the same as ``xmlp bench``; returns its exit status.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``).

    Example:
        >>> from xmlp.cli import bench
        >>> bench.main(["--backend", "numpy", "--op", "step_gemms", "--dtype", "float32",
        ...             "--shape", "64,8,16,4", "--quick", "--rounds", "1",
        ...             "--min-time", "0", "--no-progress"])
        # xmlp bench (quick)
        ...
        0
    """
    parser = argparse.ArgumentParser(prog="xmlp bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
