"""Train the seed's problem on a dask.distributed LocalCluster and compare it with NumPy.

    python examples/dask_distributed.py [--workers 2] [--epochs 150] [--persist-every 10]

The (100, 1) data is chunked along the batch (one block per worker, the feature axis whole); the
layer code is the same as on NumPy. Every step only builds a task graph; every few steps the
parameters are persisted on the workers so that the graph restarts from stored values instead of
growing with each step. Prints the final loss and the largest difference from the same training
on NumPy, and exits with status 1 if that difference is above 1e-10.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import xmlp
from xmlp import persist_parameters
from xmlp.data import generate_data

LEARNING_RATE = 0.1
TOLERANCE = 1e-10


def train(model: xmlp.MLP, x: Any, y: Any, epochs: int, persist_every: int) -> Any:
    """The seed's full-batch loop; returns the last loss (lazy on Dask)."""
    loss_fn = xmlp.MSELoss()
    loss = None
    for step in range(1, epochs + 1):
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        model.update_params(LEARNING_RATE)
        if persist_every and step % persist_every == 0:
            (loss,) = persist_parameters(model, loss)  # computed on the workers, kept there
    return loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--epochs", type=int, default=150, help="SGD steps (default 150)")
    parser.add_argument("--persist-every", type=int, default=10,
                        help="persist the parameters every k steps (default 10; 0: never)")
    args = parser.parse_args(argv)

    x, y = generate_data()
    reference = xmlp.MLP(1, 10, 1, rng=0)
    reference_loss = float(train(reference, x, y, args.epochs, 0))

    chunk = -(-x.shape[0] // args.workers)  # one block of the batch per worker
    # dashboard_address=":0": a free port (the scheduler's HTTP server takes 8787 otherwise,
    # and only warns when another cluster holds it)
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                     dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        blas = set(client.run(os.getenv, "OPENBLAS_NUM_THREADS").values())
        print(f"cluster: {args.workers} worker processes x 1 thread, "
              f"OPENBLAS_NUM_THREADS on the workers: {', '.join(sorted(map(str, blas)))}")
        xd, yd = dask.persist(da.from_array(x, chunks=(chunk, 1)),
                              da.from_array(y, chunks=(chunk, 1)))
        model = xmlp.MLP(1, 10, 1, xp=da, rng=0)  # the same rng: the same initial weights
        start = time.perf_counter()
        loss = train(model, xd, yd, args.epochs, args.persist_every)
        final_loss, *params = client.compute([loss, *model.parameters()], sync=True)
        elapsed = time.perf_counter() - start

    pairs = zip(params, reference.parameters(), strict=True)
    diff = max(float(np.max(np.abs(p - r))) for p, r in pairs)
    print(f"trained {args.epochs} epochs on dask.distributed in {elapsed:.1f} s "
          f"(persisting every {args.persist_every} steps)")
    print(f"final loss: {float(final_loss):.10f} (NumPy: {reference_loss:.10f})")
    print(f"max |weights - NumPy weights|: {diff:.3e}")
    if diff > TOLERANCE:
        print(f"FAILED: the difference is above {TOLERANCE:g}")
        return 1
    return 0


if __name__ == "__main__":  # required: the worker processes are spawned and import this file
    raise SystemExit(main())
