"""The parts of streaming fit that need no Dask, on every backend session: how chunks are grouped
(plan_chunks), the prefetch thread that computes them ahead of training, and how a group's rows
are taken. The streamed fit itself is tested with Dask data in tests/test_streaming.py."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import xmlp
from xmlp.backend import ArraySpec, adopt, dtype_name
from xmlp.training import batches as streaming


def test_plan_chunks_groups_small_chunks_into_at_least_a_batch():
    assert streaming.plan_chunks((40, 40, 40), 20) == [(0, 1), (1, 2), (2, 3)]
    assert streaming.plan_chunks((20, 20), 20) == [(0, 1), (1, 2)]  # exactly a batch: its own
    assert streaming.plan_chunks((7,) * 5, 20) == [(0, 3), (3, 5)]
    assert streaming.plan_chunks((10, 10, 0, 0), 10) == [(0, 1), (1, 2)]
    assert streaming.plan_chunks((5, 0, 30), 10) == [(0, 3)]
    assert streaming.plan_chunks((3, 4), 10) == [(0, 2)]  # all of it short of a batch: one group
    assert streaming.plan_chunks((), 10) == []


class Source:
    """An iterator that counts what the prefetch thread pulled, and can fail at one item."""

    def __init__(self, items: int, fail_at: int | None = None) -> None:
        self.items, self.fail_at, self.pulled = items, fail_at, 0

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> int:
        if self.pulled == self.items:
            raise StopIteration
        self.pulled += 1
        if self.pulled - 1 == self.fail_at:
            raise KeyError(f"chunk {self.fail_at} is unreadable")
        return self.pulled - 1


def settle(feed: streaming._Prefetcher, source: Source, want: int) -> None:
    """Wait (a bounded while) until the thread pulled `want` items or stopped."""
    for _ in range(200):
        if source.pulled >= want or not feed._thread.is_alive():
            return
        time.sleep(0.01)


@pytest.mark.parametrize("depth", [1, 2])
def test_prefetch_hands_over_every_item_in_order_at_most_depth_ahead(depth):
    source = Source(5)
    feed = streaming._Prefetcher(source, depth)
    try:
        got = []
        for i in range(5):
            got.append(feed.get())
            settle(feed, source, min(5, depth + i))
            time.sleep(0.05)  # room for a thread that ignores its bound to run ahead
            assert source.pulled == min(5, depth + i)  # held: this item is not released yet
            feed.release()
        assert got == [0, 1, 2, 3, 4]
        with pytest.raises(RuntimeError) as info:
            feed.get()
        assert str(info.value) == "streaming: no more chunks to train on"
    finally:
        feed.close()
    assert not feed._thread.is_alive()
    # a stream left open (its trainer gone) must not keep the interpreter from exiting
    assert feed._thread.daemon


def test_prefetch_waits_for_a_slow_chunk():
    def slow():
        time.sleep(0.8)  # longer than one wait of get(): it must wait again, not give up
        yield "chunk"

    feed = streaming._Prefetcher(slow(), 1)
    try:
        assert feed.get() == "chunk"
    finally:
        feed.close()


def test_prefetch_raises_the_sources_error_in_the_trainer():
    feed = streaming._Prefetcher(Source(5, fail_at=1), 2)
    try:
        assert feed.get() == 0
        feed.release()
        with pytest.raises(KeyError, match="chunk 1 is unreadable"):
            feed.get()
    finally:
        feed.close()


def test_prefetch_close_stops_a_waiting_thread_and_drops_its_items():
    source = Source(100)
    feed = streaming._Prefetcher(source, 2)
    settle(feed, source, 2)
    feed.close()  # the thread waits for a slot: close must wake it and end it
    assert not feed._thread.is_alive()
    assert source.pulled <= 3 and feed._items.empty()
    feed.close()  # twice is safe


def test_rows_of_a_group_in_order_or_shuffled():
    spec = ArraySpec.resolve(np)
    group = np.arange(12.0).reshape(6, 2)
    view = streaming._rows(spec, group, None, 1, 3)
    np.testing.assert_array_equal(view, group[1:3])
    assert np.shares_memory(view, group)  # in order: a view, no copy per batch
    copy = streaming._rows(spec, group, None, 4, 6, copy=True)
    np.testing.assert_array_equal(copy, group[4:6])
    assert not np.shares_memory(copy, group)  # the carry: must not pin the whole group
    order = np.array([5, 0, 3, 1, 4, 2])
    np.testing.assert_array_equal(streaming._rows(spec, group, order, 2, 5), group[[3, 1, 4]])


def test_concat_of_one_block_is_that_block():
    a, b = np.ones((2, 3)), np.zeros((1, 3))
    assert streaming._concat([a]) is a
    np.testing.assert_array_equal(streaming._concat([a, b]), np.concatenate([a, b]))


def test_rechunk_for_refuses_in_memory_data_and_says_what_to_do():
    with pytest.raises(TypeError) as info:
        xmlp.rechunk_for(np.zeros((4, 2)), 2)
    assert str(info.value) == (
        "rechunk_for: x must be a Dask array, got ndarray; in-memory data has no chunks to plan "
        "(pass it to fit as it is).")


# -- adopt: each computed chunk into the model's namespace ----------------------------------------
def test_adopt_brings_numpy_chunks_into_the_model_namespace(xp):
    """A NumPy chunk (what Dask computes) comes out in the spec's namespace and device; float data
    takes the spec's dtype, integer labels keep theirs."""
    spec = ArraySpec.resolve(xp.module, device=xp.device, dtype="float32")
    a = np.arange(6.0).reshape(3, 2)
    got = adopt(spec, a)
    assert type(got) is spec.array_type and got.dtype == spec.dtype
    np.testing.assert_array_equal(xp.to_numpy(got), a)
    labels = np.array([0, 2, 1], dtype=np.int16)
    got = adopt(spec, labels)
    assert type(got) is spec.array_type and dtype_name(got.dtype) == "int16"
    np.testing.assert_array_equal(xp.to_numpy(got), labels)


def test_adopt_takes_arrays_of_the_namespace_as_they_are(xp):
    """An array already of the spec's namespace is not copied through NumPy: returned as it is
    when its dtype fits, cast (floats only) when not."""
    a = np.arange(6.0).reshape(3, 2)
    spec64 = ArraySpec.resolve(xp.module, device=xp.device)
    spec32 = ArraySpec.resolve(xp.module, device=xp.device, dtype="float32")
    x = spec64.from_host(a)
    if xp.name == "numpy":  # a NumPy chunk into NumPy: its own buffer, no copy
        assert np.shares_memory(adopt(spec64, x), x)
    else:
        assert adopt(spec64, x) is x
    got = adopt(spec32, x)
    assert type(got) is spec32.array_type and got.dtype == spec32.dtype
    np.testing.assert_array_equal(xp.to_numpy(got), a)
    labels = xp.from_numpy(np.array([1, 0, 1], dtype=np.int32))
    got = adopt(spec32, labels)
    assert dtype_name(got.dtype) == "int32"
    np.testing.assert_array_equal(xp.to_numpy(got), [1, 0, 1])
    if xp.name != "numpy":
        assert got is labels


def test_adopt_reads_foreign_arrays_through_the_host(xp):
    """An array of another namespace (here the backend's, into a NumPy model) comes in by value."""
    if xp.name == "numpy":
        pytest.skip("needs a second namespace to adopt from")
    a = np.arange(6.0).reshape(3, 2)
    theirs = xp.from_numpy(a)
    spec = ArraySpec.resolve(np, dtype="float32")
    got = adopt(spec, theirs)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, a)
    got = adopt(spec, xp.from_numpy(np.array([2, 0, 1], dtype=np.int32)))  # labels: not cast
    assert isinstance(got, np.ndarray) and got.dtype == np.int32
    np.testing.assert_array_equal(got, [2, 0, 1])


def test_adopt_copies_a_read_only_chunk_only_where_it_must(xp):
    """A read-only NumPy buffer (a memory-mapped file, say) is shared by a NumPy model, and
    copied for any other (torch cannot share one and warns): values the same either way."""
    a = np.arange(6.0).reshape(3, 2)
    frozen = a.copy()
    frozen.flags.writeable = False
    spec = ArraySpec.resolve(xp.module, device=xp.device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = adopt(spec, frozen)
    np.testing.assert_array_equal(xp.to_numpy(got), a)
    if xp.name == "numpy":
        assert np.shares_memory(got, frozen)
    elif xp.name.startswith("torch") and xp.name != "torch:cuda":
        assert not np.shares_memory(got.numpy(), frozen)


def test_adopt_moves_a_chunk_of_the_namespace_to_the_model_device():
    """A chunk of the model's namespace on another device is moved to the model's device (and
    cast), one already there is not moved: array-api-strict has several devices to show it."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    spec = ArraySpec.resolve(strict, dtype="float32")
    for where in ("device1", "CPU_DEVICE"):
        chunk = strict.asarray([[1.0, 2.0]], device=strict.Device(where))
        got = adopt(spec, chunk)
        assert got.device == spec.device and got.dtype == strict.float32
        np.testing.assert_array_equal(np.asarray(got), [[1.0, 2.0]])
    labels = strict.asarray([2, 0], device=strict.Device("device2"))
    got = adopt(spec, labels)
    assert got.device == spec.device and got.dtype == strict.int64
    # a NumPy chunk goes to the spec's device, not the namespace's default one
    spec1 = ArraySpec.resolve(strict, device=strict.Device("device1"))
    for chunk in (np.ones((2, 2)), np.array([1, 0])):
        assert adopt(spec1, chunk).device == strict.Device("device1")


def test_adopt_shares_a_writeable_chunk_with_torch_and_copies_a_read_only_one():
    """Into torch on the CPU a chunk's buffer is shared (a copy fewer per chunk); a read-only
    one is copied first, without the warning torch gives when asked to share it."""
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    spec = ArraySpec.resolve(torch, device="cpu", dtype="float64")
    chunk = np.arange(6.0).reshape(3, 2)
    assert np.shares_memory(adopt(spec, chunk).numpy(), chunk)
    chunk.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = adopt(spec, chunk)
    assert not np.shares_memory(got.numpy(), chunk)
    np.testing.assert_array_equal(got.numpy(), chunk)


def test_adopt_takes_reversed_and_big_endian_chunks_into_every_namespace(xp):
    """Chunks as Dask may compute them from a reversed or big-endian source (negative strides,
    labels in another byte order) come in by value: torch and array-api-strict take neither as
    such (torch raised ValueError, array-api-strict TypeError, through a streamed fit)."""
    spec = ArraySpec.resolve(xp.module, device=xp.device)
    for chunk in (np.arange(6.0)[::-1], np.arange(6.0).reshape(2, 3)[:, ::-2],
                  np.arange(3).astype(">i8"), np.arange(4)[::-1]):
        got = adopt(spec, chunk)
        assert type(got) is spec.array_type
        np.testing.assert_array_equal(xp.to_numpy(got), chunk)
        if chunk.dtype.kind == "i":
            assert dtype_name(got.dtype) == "int64"


def test_adopt_takes_0d_chunks():
    """A 0-d chunk (no strides at all) comes in by value into torch and array-api-strict."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    chunk = np.array(2.5)
    assert float(adopt(ArraySpec.resolve(strict), chunk)) == 2.5
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    got = adopt(ArraySpec.resolve(torch, device="cpu", dtype="float64"), chunk)
    assert got.shape == () and float(got) == 2.5


def test_adopt_refuses_masked_chunks(xp):
    """A Dask array of masked blocks (dask.array.ma) computes to numpy.ma chunks; their mask
    would be dropped on the way into the model, so they are refused, as masked arrays are
    everywhere else."""
    spec = ArraySpec.resolve(xp.module, device=xp.device, dtype="float64")
    chunk = np.ma.masked_greater(np.arange(6.0).reshape(3, 2), 3.0)
    with pytest.raises(TypeError) as info:
        adopt(spec, chunk)
    assert str(info.value) == (
        "fit: a chunk of the Dask data is a numpy.ma.MaskedArray; xmlp layers ignore masks. "
        "Fill or drop the masked values first (x.filled(...), or numpy.asarray(x) to use the "
        "data as it is).")
    labels = np.ma.masked_equal(np.arange(4), 2)
    with pytest.raises(TypeError, match="MaskedArray"):
        adopt(spec, labels)


def test_masked_dask_data_is_refused_by_streamed_fit():
    """dask.array.ma data streamed into a NumPy model: a TypeError, and the model as it was."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    gen = np.random.default_rng(0)
    x = da.ma.masked_greater(da.from_array(gen.random((8, 2)), chunks=4), 0.9)
    y = da.from_array(gen.random((8, 1)), chunks=4)
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [np.array(p) for p in model.parameters()]
    with pytest.raises(TypeError, match=r"a chunk of the Dask data is a numpy\.ma\.MaskedArray"):
        xmlp.fit(model, x, y, epochs=1, lr=0.1, batch_size=2, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
