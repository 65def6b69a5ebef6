"""Train on a data set several times larger than the memory the training may use.

    python examples/out_of_core.py [--size-gib 2] [--memory-cap-mib 512] [--dir DIR] [--keep]

1. Writes a synthetic regression set (64 inputs, 10 targets from a fixed random teacher
   network, float32) to disk as a Dask ``.npy`` stack: one file per chunk of
   ``--chunk-rows`` samples, inputs and targets side by side (64 + 10 columns), several times
   larger than ``--memory-cap-mib``. Written chunk by chunk, never whole.
2. Trains ``MLP(64, --hidden, 10)`` (NumPy float32) on it in a fresh process with ``xmlp.fit``:
   x and y are Dask arrays read from the stack, the model is NumPy, so fit streams: one chunk
   in training, the next one read in the background.
3. Prints samples/s, the loss per epoch, the resident memory before training and its peak
   during training (VmHWM, reset after a warm-up), against the cap and against 4 chunks plus
   the model (its parameters and what one training step on one batch allocates, counted with
   tracemalloc). Exits 1 if the peak goes over the cap or training raised it by more than 4
   chunks plus the model.

The cap is checked on the peak resident set of the training process (no cgroup needed);
``--enforce-address-space`` also limits the process's address space (RLIMIT_AS) to its size
after the warm-up plus the cap, so that loading the data whole would fail with MemoryError
rather than only be reported. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

FEATURES, HIDDEN, TARGETS = 64, 256, 10


def teacher_chunk(block_id: tuple[int, int] = (0, 0), *, rows: int, total: int,
                  seed: int = 0) -> np.ndarray:
    """Chunk ``block_id[0]`` of the data: (rows, 64 + 10) float32, inputs then targets."""
    index = block_id[0]
    size = min(rows, total - index * rows)
    weights = np.random.default_rng(seed)  # the same teacher for every chunk
    w1 = weights.standard_normal((FEATURES, 32)) / math.sqrt(FEATURES)
    w2 = weights.standard_normal((32, TARGETS)) / math.sqrt(32)
    gen = np.random.default_rng([seed, index])
    x = gen.standard_normal((size, FEATURES), dtype=np.float32)
    y = np.tanh(x @ w1) @ w2 + 0.05 * gen.standard_normal((size, TARGETS))
    return np.hstack([x, y.astype(np.float32)])


def write(directory: Path, rows: int, total: int) -> float:
    """Writes the stack; returns seconds taken."""
    import dask.array as da

    n_chunks = -(-total // rows)
    chunks = ((rows,) * (n_chunks - 1) + (total - rows * (n_chunks - 1),), (FEATURES + TARGETS,))
    data = da.map_blocks(teacher_chunk, chunks=chunks, dtype=np.float32, rows=rows, total=total,
                         meta=np.empty((0, 0), dtype=np.float32))
    start = time.perf_counter()
    da.to_npy_stack(str(directory), data, axis=0)  # one chunk per file, a few in memory at once
    return time.perf_counter() - start


def status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    """Sets the peak resident set (VmHWM) to the current one (Linux 4.0+). The peak would
    otherwise include what happened before, even the parent's peak: ru_maxrss carries it
    across fork and exec."""
    Path("/proc/self/clear_refs").write_text("5")


def train(args: argparse.Namespace) -> dict[str, object]:
    """Runs in the child process: stream-train and measure."""
    import dask
    import dask.array as da

    import xmlp

    stack = da.from_npy_stack(args.dir, mmap_mode=None)  # each chunk read into memory
    x, y = stack[:, :FEATURES], stack[:, FEATURES:]
    n, rows = int(x.shape[0]), int(stack.chunks[0][0])
    chunk_bytes = rows * stack.shape[1] * stack.dtype.itemsize
    model = xmlp.MLP(FEATURES, args.hidden, TARGETS, dtype="float32", rng=0)
    fit = {"lr": 0.05, "batch_size": args.batch_size, "progress": False}
    # The model's share: its parameters, plus what one training step on one batch allocates
    # (activations, gradients, temporaries), as in-memory training would need it too;
    # counted by tracemalloc on a copy, whatever the allocator keeps.
    xb, yb = (np.ascontiguousarray(a) for a in
              dask.compute(x[: args.batch_size], y[: args.batch_size]))
    twin = xmlp.MLP(FEATURES, args.hidden, TARGETS, dtype="float32", rng=0)
    xmlp.fit(twin, xb, yb, epochs=1, **fit)
    tracemalloc.start()
    xmlp.fit(twin, xb, yb, epochs=1, **fit)
    step_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del twin, xb, yb
    model_bytes = sum(int(np.asarray(p).nbytes) for p in model.parameters()) + step_bytes
    # Warm-up on two chunks: imports, BLAS buffers, Dask's thread pool, first-use allocations.
    xmlp.fit(model, x[: 2 * rows], y[: 2 * rows], epochs=1, **fit)
    if args.enforce_address_space:
        limit = status("VmPeak") + args.memory_cap_mib * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    reset_peak_rss()
    before = status("VmRSS")
    start = time.perf_counter()
    history = xmlp.fit(model, x, y, epochs=args.epochs, shuffle=True, rng=1, **fit)
    seconds = time.perf_counter() - start
    peak = status("VmHWM")
    return {
        "samples": n, "features": FEATURES, "targets": TARGETS, "dtype": "float32",
        "data_bytes": int(stack.nbytes), "chunk_rows": rows, "chunk_bytes": chunk_bytes,
        "chunks": len(stack.chunks[0]), "model_bytes": model_bytes, "step_bytes": step_bytes,
        "hidden": args.hidden, "batch_size": args.batch_size, "epochs": args.epochs,
        "history": history,
        "seconds": seconds, "samples_per_second": n * args.epochs / seconds,
        "rss_before_bytes": before, "peak_rss_bytes": peak, "peak_increase_bytes": peak - before,
        "memory_cap_bytes": args.memory_cap_mib * 2**20,
        "address_space_limit_bytes": resource.getrlimit(resource.RLIMIT_AS)[0],
    }


def mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0,
                        help="size of the data set on disk (default 2)")
    parser.add_argument("--memory-cap-mib", type=int, default=512,
                        help="peak resident memory the training may use (default 512)")
    parser.add_argument("--chunk-rows", type=int, default=131_072,
                        help="samples per chunk/file (default 131,072: 37 MiB)")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units (default 256)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dir", help="where to write the stack (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the data set afterwards")
    parser.add_argument("--enforce-address-space", action="store_true",
                        help="also cap the training process's address space (RLIMIT_AS)")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)

    if args.train:
        print(json.dumps(train(args)))
        return 0

    row_bytes = (FEATURES + TARGETS) * 4
    total = int(args.size_gib * 2**30 // row_bytes)
    if args.size_gib * 1024 < 2 * args.memory_cap_mib:
        parser.error("--size-gib must be at least twice --memory-cap-mib: the point is data "
                     "that does not fit")
    directory = Path(args.dir or tempfile.mkdtemp(prefix="xmlp-out-of-core-"))
    try:
        if (directory / "info").exists():
            print(f"reusing the data set in {directory}")
        else:
            directory.mkdir(parents=True, exist_ok=True)
            seconds = write(directory, args.chunk_rows, total)
            print(f"wrote {total:,} samples ({mib(total * row_bytes)}) in "
                  f"{-(-total // args.chunk_rows)} chunks to {directory} in {seconds:.1f} s")
        child = [sys.executable, __file__, "--train", "--dir", str(directory),
                 "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                 "--hidden", str(args.hidden),
                 "--memory-cap-mib", str(args.memory_cap_mib)]
        if args.enforce_address_space:
            child.append("--enforce-address-space")
        out = subprocess.run(child, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stdout, out.stderr, sep="\n", file=sys.stderr)
            return 1
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)

    bound = 4 * result["chunk_bytes"] + result["model_bytes"]
    cap, peak, raised = result["memory_cap_bytes"], result["peak_rss_bytes"], \
        result["peak_increase_bytes"]
    print(f"data: {mib(result['data_bytes'])} on disk, {result['chunks']} chunks of "
          f"{mib(result['chunk_bytes'])}; memory cap {mib(cap)} "
          f"({result['data_bytes'] / cap:.1f}x smaller than the data)")
    print(f"trained MLP({FEATURES}, {result['hidden']}, {TARGETS}) float32, batch "
          f"{result['batch_size']}, {result['epochs']} epoch(s) in {result['seconds']:.1f} s: "
          f"{result['samples_per_second']:,.0f} samples/s; loss per epoch "
          + ", ".join(f"{v:.4f}" for v in result["history"]))
    print(f"resident memory: {mib(result['rss_before_bytes'])} before training, peak "
          f"{mib(peak)}; raised by {mib(raised)} = {raised / result['chunk_bytes']:.2f} chunks "
          f"(bound: 4 chunks + model = {mib(bound)}; the model's parameters and one "
          f"step's working memory: {mib(result['model_bytes'])})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    ok = peak <= cap and raised <= bound
    if not ok:
        print("FAILED: the peak is over the cap or the bound")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
