"""fit streams Dask data into a model that lives elsewhere (NumPy, torch, CuPy): the same batches
and weights as in-memory fit, a reproducible chunk-wise shuffle, the threaded scheduler and a
dask.distributed Client, bounded memory, and clean stops on errors."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xmlp
from tests.conftest import selected_backends
from xmlp.backend import ArraySpec, adopt
from xmlp.training import batches as streaming

if "dask" not in selected_backends():
    pytest.skip("streaming needs Dask arrays: dask is not in XMLP_BACKENDS",
                allow_module_level=True)
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

SRC = Path(__file__).resolve().parents[2] / "src"


# -- helpers -----------------------------------------------------------------------------------
def make_data(n: int = 120, in_dim: int = 3, out_dim: int = 2, seed: int = 0):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, in_dim))
    t = np.tanh(x @ gen.standard_normal((in_dim, out_dim)))
    t += 0.1 * gen.standard_normal((n, out_dim))
    return x, t


def model_backend(name: str) -> tuple[Any, Any]:
    """(module to build the model with, device) for a model backend, or skip saying why."""
    if name == "numpy":
        return np, None
    if name == "array_api_strict":
        return pytest.importorskip("array_api_strict", reason="array-api-strict is not "
                                   "installed here"), None
    if name == "jax":
        jax = pytest.importorskip("jax", reason="JAX is not installed here")
        jax.config.update("jax_enable_x64", True)  # float64 models, as the suite's JAX session
        return importlib.import_module("jax.numpy"), None
    if name.startswith("torch"):
        torch = pytest.importorskip("torch", reason="torch is not installed here")
        if name == "torch:cuda" and not torch.cuda.is_available():
            pytest.skip("torch has no CUDA GPU here")
        return torch, torch.device(name.split(":")[1])
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:
        pytest.skip(f"CuPy with a GPU is not available here ({type(exc).__name__})")
    return cupy, None


MODEL_BACKENDS = ["numpy", "torch:cpu", "torch:cuda", "cupy"]
ALL_MODEL_BACKENDS = [*MODEL_BACKENDS, "jax", "array_api_strict"]


def make_model(name: str, dtype: str = "float64", in_dim: int = 3, out_dim: int = 2):
    module, device = model_backend(name)
    return xmlp.MLP(in_dim, 6, out_dim, xp=module, device=device, dtype=dtype, rng=7)


def host(model) -> list[np.ndarray]:
    return [xmlp.backend.to_host(p) for p in model.parameters()]


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "xmlp-prefetch"]


FIT = {"epochs": 3, "lr": 0.05, "progress": False}


# -- the same training as in memory ------------------------------------------------------------
# (x chunks, y chunks, batch): multiples of the batch; batches straddling chunks; chunks
# smaller than a batch (grouped); y chunked unlike x (aligned by fit); a short last batch.
CHUNKINGS = [(40, 40, 20), (37, 50, 20), (7, 7, 20), (30, 45, 10), (50, 50, 32)]


@pytest.mark.parametrize("chunking", CHUNKINGS, ids=lambda c: "x{}-y{}-b{}".format(*c))
@pytest.mark.parametrize("backend", ALL_MODEL_BACKENDS)
def test_streamed_fit_matches_in_memory_fit(backend, chunking):
    x_chunk, y_chunk, batch = chunking
    x, t = make_data()
    ref = make_model(backend)
    spec = ArraySpec.of(ref.linear1.weights)  # the model's namespace, device and dtype
    want = xmlp.fit(ref, spec.from_host(x), spec.from_host(t), batch_size=batch, **FIT)
    model = make_model(backend)
    got = xmlp.fit(model, da.from_array(x, chunks=(x_chunk, 2)),
                   da.from_array(t, chunks=(y_chunk, 2)), batch_size=batch, **FIT)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    for g, w in zip(host(model), host(ref), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    for p in model.parameters():  # trained where it lives, not moved to Dask
        assert type(p) is type(ref.linear1.weights)
    assert not prefetch_threads()


@pytest.mark.parametrize("backend", ["numpy", "torch:cpu"])
def test_float64_data_train_a_float32_model(backend):
    """Each chunk is converted once to the model's dtype: as if the data were float32."""
    x, t = make_data()
    ref = make_model(backend, "float32")
    spec = ArraySpec.of(ref.linear1.weights)
    want = xmlp.fit(ref, spec.from_host(x), spec.from_host(t), batch_size=16, **FIT)
    model = make_model(backend, "float32")
    got = xmlp.fit(model, da.from_array(x, chunks=(50, 3)), da.from_array(t, chunks=(50, 2)),
                   batch_size=16, **FIT)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for g, w in zip(host(model), host(ref), strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_threaded_scheduler_and_a_distributed_client_give_the_in_memory_weights():
    distributed = pytest.importorskip("distributed")
    x, t = make_data()
    ref = make_model("numpy")
    want = xmlp.fit(ref, x, t, batch_size=10, **FIT)
    xd, td = da.from_array(x, chunks=(30, 3)), da.from_array(t, chunks=(30, 2))
    with dask.config.set(scheduler="threads"):
        model = make_model("numpy")
        got = xmlp.fit(model, xd, td, batch_size=10, **FIT)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(host(model), host(ref), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    # In-process workers (threads): the chunks are computed by the cluster, gathered one at a
    # time by the trainer. dashboard_address=":0": no clash with another cluster's port.
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        xp_, tp_ = client.persist([xd, td])  # chunks held by the workers
        assert distributed.futures_of(xp_)
        model = make_model("numpy")
        got = xmlp.fit(model, xp_, tp_, batch_size=10, **FIT)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(host(model), host(ref), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    assert not prefetch_threads()


def test_a_model_on_dask_keeps_the_data_parallel_route():
    x, t = make_data(16)
    xd, td = da.from_array(x, chunks=(8, 3)), da.from_array(t, chunks=(8, 2))
    model = xmlp.MLP(3, 6, 2, xp=da, rng=7)
    source = streaming.batch_source(model, xd, td, xp=None, n=16, step=16, shuffle=False,
                                    rng=np.random.default_rng(0), epochs=1)
    assert isinstance(source, streaming.MemoryBatches)
    xmlp.fit(model, xd, td, epochs=1, lr=0.1, progress=False)  # full batch, on Dask
    assert all(isinstance(p, da.Array) for p in model.parameters())


def classification_data(n: int = 90, seed: int = 1):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, 3))
    labels = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0).astype(np.int64)  # 4 classes
    return x, labels


@pytest.mark.parametrize("val_kind", ["dask", "in_model_namespace"])
@pytest.mark.parametrize("backend", MODEL_BACKENDS)
def test_streamed_classifier_with_adam_and_validation_matches_in_memory(backend, val_kind):
    """optimizer=, integer class labels, validation data (Dask, evaluated chunk by chunk, or
    in the model's namespace) and History: the same numbers as in-memory fit."""
    x, labels = classification_data()
    xv, lv = classification_data(50, seed=2)

    def run(streamed: bool):
        module, device = model_backend(backend)
        model = xmlp.MLP(3, 6, 4, xp=module, device=device, dtype="float64", rng=7)
        spec = ArraySpec.of(model.linear1.weights)
        data = [x, labels, xv, lv]
        if streamed:  # training data on Dask; validation on Dask or already in place
            data[:2] = [da.from_array(x, chunks=(25, 3)), da.from_array(labels, chunks=40)]
            data[2:] = ([da.from_array(xv, chunks=(15, 3)), da.from_array(lv, chunks=15)]
                        if val_kind == "dask" else [adopt(spec, xv), adopt(spec, lv)])
        else:
            data = [adopt(spec, a) for a in data]
        history = xmlp.fit(model, data[0], data[1], epochs=3, batch_size=10,
                           optimizer=xmlp.optim.Adam(model, lr=0.01),
                           loss=xmlp.CrossEntropyLoss(), validation_data=(data[2], data[3]),
                           progress=False)
        return history, host(model)

    (want, want_params), (got, got_params) = run(False), run(True)
    for name in ("val_loss", "accuracy", "val_accuracy"):
        assert len(getattr(got, name)) == 3, name
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12,
                                   err_msg=name)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(got_params, want_params, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    assert not prefetch_threads()


def test_validation_data_of_another_namespace_is_rejected_before_training():
    x, t = make_data(40)
    model = make_model("numpy")
    before = host(model)
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    with pytest.raises(TypeError, match="validation_data"):
        xmlp.fit(model, da.from_array(x, chunks=20), da.from_array(t, chunks=20), epochs=1,
                 lr=0.1, batch_size=10, progress=False,
                 validation_data=(strict.asarray(x), strict.asarray(t)))
    for a, b in zip(host(model), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_progress_bar_is_drawn_while_streaming(capsys):
    x, t = make_data(40)
    xmlp.fit(make_model("numpy"), da.from_array(x, chunks=20), da.from_array(t, chunks=20),
             epochs=2, lr=0.1, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert "fit" in err and "2/2" in err


# -- shuffling ---------------------------------------------------------------------------------
def test_shuffle_is_reproducible_from_the_seed():
    x, t = make_data()
    xd, td = da.from_array(x, chunks=(25, 3)), da.from_array(t, chunks=(25, 2))
    runs = []
    for seed in (3, 3, 4):
        model = make_model("numpy")
        history = xmlp.fit(model, xd, td, batch_size=10, shuffle=True, rng=seed, **FIT)
        runs.append((history, host(model)))
    (h1, p1), (h2, p2), (h3, p3) = runs
    assert any(not np.array_equal(a, b) for a, b in zip(p1, p3, strict=True))
    assert h1 == h2
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert h1 != h3
    unshuffled = xmlp.fit(make_model("numpy"), xd, td, batch_size=10, **FIT)
    assert h1 != unshuffled


def _epoch_ids(source) -> list[np.ndarray]:
    return [np.asarray(xb)[:, 0].astype(int) for xb, _, _ in source.epoch()]


def test_shuffle_permutes_chunk_order_and_samples_within_chunks():
    """Each epoch: every sample once; the stream is the chunks in a new order, each chunk's
    samples in a new order; y stays with its x."""
    n, chunk = 100, 20
    ids = np.arange(n, dtype=np.float64)[:, None]
    xd = da.from_array(np.hstack([ids, ids]), chunks=(chunk, 2))
    yd = da.from_array(ids * 10, chunks=(35, 1))
    spec = ArraySpec.resolve(np)
    source = streaming.StreamedBatches(spec, xd, yd, n=n, step=8, shuffle=True,
                                       rng=np.random.default_rng(1), epochs=3)
    try:
        epochs = []
        for _ in range(3):
            batches = list(source.epoch())
            for xb, yb, weight in batches:
                np.testing.assert_array_equal(yb[:, 0], xb[:, 0] * 10)
                assert weight == xb.shape[0] / n
            assert [b[0].shape[0] for b in batches] == [8] * 12 + [4]
            assert len(source) == len(batches)
            stream = np.concatenate([b[0][:, 0] for b in batches]).astype(int)
            assert sorted(stream) == list(range(n))
            runs = stream.reshape(n // chunk, chunk)  # one run of the stream per chunk
            chunks = sorted(run.min() // chunk for run in runs)
            assert chunks == list(range(n // chunk))
            for run in runs:
                assert set(run) == set(range(run.min(), run.min() + chunk))
            epochs.append(stream)
        assert not np.array_equal(epochs[0], epochs[1])
        firsts = [[run.min() for run in e.reshape(5, chunk)] for e in epochs]
        assert any(f != [0, 20, 40, 60, 80] for f in firsts)  # chunk order shuffled
        assert any(not np.array_equal(np.sort(r), r) for r in epochs[0].reshape(5, chunk))
    finally:
        source.close()


# -- boundedness and errors -------------------------------------------------------------------
def test_chunks_are_computed_at_most_one_ahead_of_training():
    """A log of chunk computes and training steps: one chunk computed ahead at most, and only
    once the chunk before has trained a step."""
    log: list[tuple[str, int]] = []
    lock = threading.Lock()
    x, t = make_data(100)

    def record(block, block_info=None):
        with lock:
            log.append(("chunk", block_info[0]["chunk-location"][0]))
        return block

    class LoggingLoss(xmlp.MSELoss):
        def forward(self, y, t):
            with lock:
                log.append(("step", 0))
            return super().forward(y, t)

    xd = da.from_array(x, chunks=(10, 3)).map_blocks(record, meta=np.empty((0, 0)))
    xmlp.fit(make_model("numpy"), xd, da.from_array(t, chunks=(10, 2)), batch_size=5,
             loss=LoggingLoss(), **FIT)
    computed = steps = 0
    for kind, _ in log:
        if kind == "chunk":
            computed += 1
        else:
            steps += 1
            # chunk c = (steps - 1) // 2 trains (2 steps per chunk); chunk c + 1 is computed
            # only after c's first step, when nothing refers to chunk c - 1 any more
            assert computed <= (steps - 1) // 2 + 1 + (steps - 1) % 2, log
    assert computed == 3 * 10 and steps == 3 * 20


def test_x_and_y_from_one_store_are_read_once_per_chunk():
    """x and y as column slices of one array: each chunk of it is computed once per epoch."""
    reads: list[int] = []
    data = np.hstack(make_data(60))

    def read(block, block_info=None):
        reads.append(block_info[0]["chunk-location"][0])
        return block

    stored = da.from_array(data, chunks=(20, 5)).map_blocks(read, meta=np.empty((0, 0)))
    ref = make_model("numpy")
    want = xmlp.fit(ref, data[:, :3], data[:, 3:], batch_size=10, **FIT)
    model = make_model("numpy")
    got = xmlp.fit(model, stored[:, :3], stored[:, 3:], batch_size=10, **FIT)
    assert sorted(reads) == sorted([0, 1, 2] * FIT["epochs"])
    assert got == want


def test_a_failing_chunk_raises_its_error_and_leaves_the_model_unchanged():
    x, t = make_data(40)

    def broken(block, block_info=None):
        raise OSError("disk gone")

    xd = da.from_array(x, chunks=(20, 3)).map_blocks(broken, meta=np.empty((0, 0)))
    model = make_model("numpy")
    before = host(model)
    with pytest.raises(OSError, match="disk gone"):
        xmlp.fit(model, xd, da.from_array(t, chunks=(20, 2)), batch_size=5, **FIT)
    for a, b in zip(host(model), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.linear1.x is None
    assert not prefetch_threads()


class PoisonedLoss(xmlp.MSELoss):
    """MSE whose target turns NaN from the ``poison``-th forward call on."""

    def __init__(self, poison: int) -> None:
        super().__init__()
        self.calls, self.poison = 0, poison

    def forward(self, y, t):
        self.calls += 1
        if self.calls >= self.poison:
            t = t * math.nan
        return super().forward(y, t)


def test_nonfinite_epoch_restores_the_last_finite_one_and_stops_the_stream():
    x, t = make_data(40)
    xd, td = da.from_array(x, chunks=(20, 3)), da.from_array(t, chunks=(20, 2))
    ref = make_model("numpy")
    xmlp.fit(ref, x, t, epochs=2, lr=0.05, batch_size=10, progress=False)
    model = make_model("numpy")
    with pytest.raises(FloatingPointError, match="epoch 3") as info:
        # 4 steps per epoch: the 10th step is in epoch 3
        xmlp.fit(model, xd, td, epochs=5, lr=0.05, batch_size=10, progress=False,
                 loss=PoisonedLoss(10))
    assert len(info.value.history) == 3 and not math.isfinite(info.value.history[-1])
    for g, w in zip(host(model), host(ref), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    assert not prefetch_threads()


def test_nonfinite_epoch_restores_the_optimizer_state_too():
    x, t = make_data(40)
    ref = make_model("numpy")
    ref_opt = xmlp.optim.Adam(ref, lr=0.01)
    xmlp.fit(ref, x, t, epochs=2, optimizer=ref_opt, batch_size=10, progress=False)
    model = make_model("numpy")
    opt = xmlp.optim.Adam(model, lr=0.01)
    with pytest.raises(FloatingPointError, match="optimizer state"):
        xmlp.fit(model, da.from_array(x, chunks=(20, 3)), da.from_array(t, chunks=(20, 2)),
                 epochs=5, optimizer=opt, batch_size=10, progress=False, loss=PoisonedLoss(10))
    for g, w in zip(host(model), host(ref), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    got, want = opt.state_dict(), ref_opt.state_dict()
    assert got["step_count"] == want["step_count"] == 8  # 4 steps in each of 2 epochs
    assert got["state"].keys() == want["state"].keys()
    for name, buffers in want["state"].items():
        for key, value in buffers.items():
            np.testing.assert_allclose(got["state"][name][key], value, rtol=0, atol=1e-12)
    assert not prefetch_threads()


def test_a_first_batch_the_model_rejects_leaves_it_unchanged():
    x, t = make_data(40, in_dim=4)  # 4 features for a 3-input model
    model = make_model("numpy")
    before = host(model)
    with pytest.raises(ValueError, match="shape"):
        xmlp.fit(model, da.from_array(x, chunks=20), da.from_array(t, chunks=20), epochs=2,
                 lr=0.1, batch_size=10, progress=False)
    for a, b in zip(host(model), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.linear1.x is None
    assert not prefetch_threads()


def test_full_batch_streaming_is_refused_before_training():
    x, t = make_data(40)
    model = make_model("numpy")
    before = host(model)
    with pytest.raises(ValueError, match="batch_size"):
        xmlp.fit(model, da.from_array(x, chunks=20), da.from_array(t, chunks=20), epochs=1,
                 lr=0.1, progress=False)
    for a, b in zip(host(model), before, strict=True):
        np.testing.assert_array_equal(a, b)


# -- pieces ------------------------------------------------------------------------------------
# plan_chunks and the prefetch thread need no Dask: tests/test_streaming_pieces.py
def test_rechunk_for_makes_chunks_whole_batches():
    x = da.zeros((1000, 6), chunks=(130, 2))
    r = xmlp.rechunk_for(x, 32)
    assert all(c % 32 == 0 for c in r.chunks[0][:-1]) and r.chunks[0][0] == 128
    assert r.chunks[1] == (6,)
    assert xmlp.rechunk_for(x, 32, samples_per_chunk=300).chunks[0][0] == 288
    assert xmlp.rechunk_for(x, 500).chunks[0] == (500, 500)  # at least one batch
    assert xmlp.rechunk_for(da.zeros(10, chunks=3), 2).chunks == ((4, 4, 2),)
    with pytest.raises(TypeError, match="Dask array"):
        xmlp.rechunk_for(np.zeros((4, 2)), 2)
    with pytest.raises(ValueError, match="positive"):
        xmlp.rechunk_for(x, 0)
    with pytest.raises(TypeError, match="positive"):
        xmlp.rechunk_for(x, 2.0)
    masked = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        xmlp.rechunk_for(masked, 2)


# -- memory ------------------------------------------------------------------------------------
MEMORY_SCRIPT = """
import json, sys, tracemalloc
import dask.array as da
import xmlp

path, rows, n_chunks, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = da.random.default_rng(0)
x = rng.standard_normal((rows * n_chunks, features), chunks=(rows, features))
da.to_npy_stack(path + "/x", x)
da.to_npy_stack(path + "/y", x[:, :1] * 0.5)
x = da.from_npy_stack(path + "/x", mmap_mode=None)  # chunks read into memory, not mapped
y = da.from_npy_stack(path + "/y", mmap_mode=None)
model = xmlp.MLP(features, 8, 1, rng=0)
fit = dict(lr=1e-3, batch_size=1000, progress=False)
xmlp.fit(model, x[: 2 * rows], y[: 2 * rows], epochs=1, **fit)  # first-use allocations
tracemalloc.start()
xmlp.fit(model, x, y, epochs=2, shuffle=True, rng=0, **fit)
streamed = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
whole = x.compute()  # the measurement sees array memory: loading it all shows
loaded = tracemalloc.get_traced_memory()[1]
print(json.dumps({"streamed": streamed, "loaded": loaded}))
"""


@pytest.mark.slow
def test_streaming_memory_stays_within_a_few_chunks(tmp_path):
    """Peak traced memory (NumPy buffers included) of a 2-epoch shuffled fit on a .npy stack of
    24 chunks, in a fresh process: the chunk training and the one prefetched (measured 2.7
    chunks with dask 2026.8) stay under 3 chunks plus the model plus 1 MiB, below the 4 chunks
    docs/streaming.md promises; loading the same data at once takes 24 chunks. tracemalloc
    counts this process's allocations only, so the check holds on a busy shared machine."""
    rows, n_chunks, features = 8192, 24, 32
    script = tmp_path / "measure.py"
    script.write_text(textwrap.dedent(MEMORY_SCRIPT))
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(rows), str(n_chunks), str(features)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert out.returncode == 0, out.stderr
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    chunk_bytes = rows * (features + 1) * 8  # a chunk of x and its rows of y
    model_bytes = (features * 8 + 8 + 8 + 1) * 8
    assert measured["loaded"] >= n_chunks * rows * features * 8
    assert measured["streamed"] <= 3 * chunk_bytes + model_bytes + 2**20, measured
