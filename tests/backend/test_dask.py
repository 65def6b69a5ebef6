"""Dask: the same layer code on arrays chunked along the batch, lazy until computed; the seed's
training matches NumPy, on the local scheduler and on a dask.distributed LocalCluster; the task
graph stays bounded when parameters are persisted every few steps."""

from __future__ import annotations

import os
from typing import Any

# collected only where the dask backend is active (tests/conftest.py: test_<backend>.py)
import dask
import dask.array as da
import numpy as np
import pytest

import xmlp
from tests.reference import mlp_step
from xmlp import persist_parameters
from xmlp.data import generate_data


def _no_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a Dask graph was computed where everything should stay lazy")


def _seed_data(chunk: int) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    """The seed's (100, 1) data, and as Dask arrays chunked along the batch only."""
    x, y = generate_data()
    return x, y, da.from_array(x, chunks=(chunk, 1)), da.from_array(y, chunks=(chunk, 1))


def _train(model: xmlp.Module, x: Any, y: Any, epochs: int, persist_every: int | None) -> Any:
    """The seed's loop (full batch, lr 0.1); persists the parameters every ``persist_every``
    steps. Returns the last loss (lazy on Dask)."""
    loss = xmlp.MSELoss()
    value = None
    for step in range(1, epochs + 1):
        value = loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        model.update_params(0.1)
        if persist_every and step % persist_every == 0:
            (value,) = persist_parameters(model, value)
    return value


def _numpy_seed_run(epochs: int = 150) -> tuple[list[np.ndarray], float]:
    x, y = generate_data()
    model = xmlp.MLP(1, 10, 1, rng=0)
    value = _train(model, x, y, epochs, None)
    return model.parameters(), float(value)


def test_training_step_stays_lazy_and_chunked_along_the_batch():
    gen = np.random.default_rng(0)
    x, t = gen.standard_normal((100, 3)), gen.standard_normal((100, 2))
    xd, td = da.from_array(x, chunks=(25, 3)), da.from_array(t, chunks=(25, 2))
    model = xmlp.MLP(3, 6, 2, xp=da, rng=1)
    params = [np.array(p) for p in model.parameters()]
    loss = xmlp.MSELoss()

    with dask.config.set(scheduler=_no_compute):
        value = loss.forward(model.forward(xd), td)
        grad_x = model.backward(loss.backward())
        model.update_params(0.1)
        with pytest.raises(AssertionError, match="computed"):
            float(value)  # the guard works: converting would compute

    batch = ((25, 25, 25, 25),)
    made = {"output": model.linear2.output, "hidden": model.activation.output, "grad_x": grad_x}
    for name, a in made.items():
        assert isinstance(a, da.Array), name
        assert a.chunks[:1] == batch and len(a.chunks[1]) == 1, (name, a.chunks)  # features: 1
    lazy = [value, *model.parameters(), *(g for _, g in model.named_grads())]
    assert all(isinstance(a, da.Array) for a in lazy)
    assert all(a.npartitions == 1 for a in lazy)  # parameters and gradients: one block each

    ref_loss, ref_grads, ref_new, ref_gx = mlp_step(params, x, t, 0.1)
    grads = [g for _, g in model.named_grads()]
    computed = dask.compute(value, grad_x, *model.parameters(), *grads)
    np.testing.assert_allclose(computed[0], ref_loss, rtol=1e-12)
    np.testing.assert_allclose(computed[1], ref_gx, rtol=1e-12, atol=1e-15)
    for got, want in zip(computed[2:], ref_new + ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_every_layer_on_chunked_arrays_matches_numpy():
    """Sequential with every activation, (batch, seq, features) input chunked on both leading
    axes: the folded GEMM still sees whole rows of features."""
    gen = np.random.default_rng(2)
    x, g = gen.standard_normal((6, 8, 3)), gen.standard_normal((6, 8, 2))

    def build() -> xmlp.Sequential:
        r = np.random.default_rng(5)
        return xmlp.Sequential(xmlp.Linear(3, 4, rng=r), xmlp.Tanh(), xmlp.Linear(4, 4, rng=r),
                               xmlp.Sigmoid(), xmlp.Linear(4, 2, rng=r), xmlp.ReLU())

    lazy, ref = build().to(da), build()
    xd, gd = da.from_array(x, chunks=(3, 4, 3)), da.from_array(g, chunks=(3, 4, 2))
    with dask.config.set(scheduler=_no_compute):
        out = lazy.forward(xd)
        grad_x = lazy.backward(gd)
        lazy.update_params(0.05)
    np.testing.assert_allclose(out.compute(), ref.forward(x), rtol=1e-12)
    np.testing.assert_allclose(grad_x.compute(), ref.backward(g), rtol=1e-12, atol=1e-15)
    ref.update_params(0.05)
    for got, want in zip(dask.compute(*lazy.parameters()), ref.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_seed_training_on_dask_matches_numpy():
    _, _, xd, yd = _seed_data(chunk=25)
    model = xmlp.MLP(1, 10, 1, xp=da, rng=0)
    value = _train(model, xd, yd, 150, persist_every=10)
    got = dask.compute(value, *model.parameters())
    want, want_loss = _numpy_seed_run()
    for g, w in zip(got[1:], want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[0], want_loss, rtol=1e-10)
    assert got[0] < 0.15  # the seed's own check


def _graph_size(model: xmlp.Module) -> int:
    return max(len(p.__dask_graph__()) for p in model.parameters())


def test_persisting_every_k_steps_keeps_the_graph_bounded():
    _, _, xd, yd = _seed_data(chunk=50)
    grown, bounded = xmlp.MLP(1, 10, 1, xp=da, rng=3), xmlp.MLP(1, 10, 1, xp=da, rng=3)
    k, steps = 5, 30
    sizes_grown, sizes_bounded = [], []
    for step in range(1, steps + 1):
        _train(grown, xd, yd, 1, None)
        _train(bounded, xd, yd, 1, None)
        if step % k == 0:
            persist_parameters(bounded)
            # persisted: each parameter is one stored block, no history
            assert all(len(p.__dask_graph__()) == 1 for p in bounded.parameters())
        sizes_grown.append(_graph_size(grown))
        sizes_bounded.append(_graph_size(bounded))

    assert sizes_grown == sorted(sizes_grown) and sizes_grown[-1] > 4 * sizes_grown[k - 1]
    assert max(sizes_bounded) <= sizes_grown[k - 1]  # never more than k steps of graph
    both = zip(dask.compute(*grown.parameters()), dask.compute(*bounded.parameters()), strict=True)
    for a, b in both:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_persist_parameters_is_a_no_op_off_dask():
    model = xmlp.MLP(1, 3, 1, rng=0)
    before = model.parameters()
    extra = np.ones(2)
    assert persist_parameters(model, extra) == (extra,)
    assert all(a is b for a, b in zip(model.parameters(), before, strict=True))


def test_unknown_batch_size_is_a_clear_error():
    xd = da.from_array(np.linspace(-1, 1, 20).reshape(10, 2), chunks=(5, 2))
    masked = xd[xd[:, 0] > 0]  # boolean indexing: the batch size is unknown until computed
    model = xmlp.MLP(2, 3, 1, xp=da, rng=0)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        model.forward(masked)
    assert model.linear1.x is None
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        xmlp.MSELoss().forward(masked[:, :1], masked[:, 1:])
    masked.compute_chunk_sizes()
    out = model.forward(masked)
    assert tuple(out.shape) == (10 - 5, 1)


@pytest.mark.slow
def test_seed_training_on_a_local_cluster_matches_numpy():
    """Two worker processes, one thread each: the same code, the same weights as NumPy."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                      '(pip install ".[dask]" brings it)')
    x, y, _, _ = _seed_data(chunk=50)
    want, want_loss = _numpy_seed_run()
    # dashboard_address=":0": the scheduler's HTTP server would take port 8787 even without a
    # dashboard, and warn (an error here) when another cluster already holds it
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        # A Nanny starts each worker with one BLAS thread (distributed's default).
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            assert set(client.run(os.getenv, var).values()) == {"1"}, var
        # one block of the batch on each worker, placed there: dask.persist leaves placement
        # to the scheduler, which on a loaded machine put both blocks on the worker that
        # answered first
        names = sorted(client.scheduler_info()["workers"])
        blocks = {
            name: [client.scatter(a[i * 50:(i + 1) * 50], workers=[w])
                   for i, w in enumerate(names)]
            for name, a in (("x", x), ("y", y))
        }
        xd, yd = (da.concatenate([da.from_delayed(b, shape=(50, 1), dtype=np.float64)
                                  for b in blocks[name]]) for name in ("x", "y"))
        model = xmlp.MLP(1, 10, 1, xp=da, rng=0)
        value = _train(model, xd, yd, 150, persist_every=10)
        # the parameters live on the workers until asked for
        assert all(distributed.futures_of(p) for p in model.parameters())
        got = client.compute([value, *model.parameters()], sync=True)
        held = client.who_has(blocks["x"] + blocks["y"])
        workers = {w for where in held.values() for w in where}
        assert len(workers) == 2  # the batch stayed split over both workers
    for g, w in zip(got[1:], want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[0], want_loss, rtol=1e-10)
