"""A shuffled streaming fit as the model sees it: a NumPy model trained on dask.array data,
its batches recorded by a pass-through first layer and a recording loss. Each epoch visits
every sample once, with its own target, chunk by chunk; two epochs of one fit see different
orders; the seed fixes them all; shuffle=False streams the rows in order every epoch.

These need Dask only as the data source, so they run in the NumPy session wherever Dask is
installed (tests/test_streaming.py, which also trains torch, JAX and CuPy models on Dask data,
runs where dask is in XMLP_BACKENDS)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xmlp

pytestmark = pytest.mark.requires_backends("numpy")

N, CHUNK, BATCH, EPOCHS = 100, 20, 8, 3


@pytest.fixture
def da() -> Any:
    return pytest.importorskip(
        "dask.array", reason="Dask is not installed here, and these tests stream dask.array "
        "data (pip install 'dask[array]')"
    )


class Recorder(xmlp.Module):
    """A first layer that passes x through and records the sample ids (column 0) of each
    training batch."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def forward(self, x: Any) -> Any:
        self.batches.append(np.asarray(x)[:, 0].astype(np.int64))
        return x

    def backward(self, grad_output: Any) -> Any:
        return grad_output

    def predict(self, x: Any) -> Any:
        return x


class RecordingLoss(xmlp.MSELoss):
    """MSELoss that records the targets of each training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[np.ndarray] = []

    def forward(self, y: Any, t: Any) -> Any:
        self.targets.append(np.asarray(t)[:, 0].copy())
        return super().forward(y, t)


def streamed_epochs(da: Any, shuffle: bool, seed: int | None = 0) -> list[np.ndarray]:
    """The sample ids of each epoch of a streamed fit, in the order the model saw them.
    x holds each sample's id in both columns; y is ten times the id (chunked unlike x)."""
    ids = np.arange(N, dtype=np.float64)[:, None]
    x = da.from_array(np.hstack([ids, ids]), chunks=(CHUNK, 2))
    y = da.from_array(ids * 10.0, chunks=(35, 1))
    recorder, loss = Recorder(), RecordingLoss()
    model = xmlp.Sequential(recorder, xmlp.Linear(2, 1, rng=0, init="xavier"))
    xmlp.fit(model, x, y, epochs=EPOCHS, lr=1e-6, batch_size=BATCH, shuffle=shuffle,
             rng=seed, loss=loss, progress=False)
    per_epoch = -(-N // BATCH)
    assert len(recorder.batches) == len(loss.targets) == EPOCHS * per_epoch
    for xb, tb in zip(recorder.batches, loss.targets, strict=True):
        np.testing.assert_array_equal(tb, xb * 10.0)  # each target stays with its sample
    sizes = [len(b) for b in recorder.batches[:per_epoch]]
    assert sizes == [BATCH] * (N // BATCH) + [N % BATCH]
    return [np.concatenate(recorder.batches[e * per_epoch:(e + 1) * per_epoch])
            for e in range(EPOCHS)]


def test_each_shuffled_epoch_is_a_new_chunkwise_permutation(da):
    epochs = streamed_epochs(da, shuffle=True)
    for stream in epochs:
        assert sorted(stream.tolist()) == list(range(N))  # every sample once
        # chunk by chunk: the stream is the chunks in some order, each one's rows in some order
        for run in stream.reshape(N // CHUNK, CHUNK):
            first = run.min() - run.min() % CHUNK
            assert set(run.tolist()) == set(range(first, first + CHUNK))
    for a in range(EPOCHS):
        for b in range(a + 1, EPOCHS):
            assert not np.array_equal(epochs[a], epochs[b]), (a, b)
    in_order = np.arange(N)
    assert not any(np.array_equal(stream, in_order) for stream in epochs)
    chunk_orders = [stream.reshape(N // CHUNK, CHUNK).min(axis=1) // CHUNK for stream in epochs]
    assert any(not np.array_equal(o, np.arange(N // CHUNK)) for o in chunk_orders)


def test_the_seed_fixes_every_epochs_order(da):
    first = streamed_epochs(da, shuffle=True, seed=5)
    again = streamed_epochs(da, shuffle=True, seed=5)
    other = streamed_epochs(da, shuffle=True, seed=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, c) for a, c in zip(first, other, strict=True))


def test_unshuffled_streams_the_rows_in_order_every_epoch(da):
    for stream in streamed_epochs(da, shuffle=False, seed=None):
        np.testing.assert_array_equal(stream, np.arange(N))
