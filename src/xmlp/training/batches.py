"""Where fit's mini-batches come from: slices of in-memory arrays, or Dask chunks streamed into
a model that lives elsewhere (NumPy, CuPy, torch...).

:func:`xmlp.fit` asks :func:`batch_source` for a source and trains on what ``source.epoch()``
yields, ``(x_batch, y_batch, weight)`` with weight = batch samples / all samples; the loop is
the same for both sources:

- :class:`MemoryBatches`: ``x[start:stop]`` of arrays already in the model's namespace. A model
  on Dask arrays goes here too: its batches are lazy slices and each step is a data-parallel
  task graph (the route for one huge batch).
- :class:`StreamedBatches`: ``x`` and ``y`` are Dask arrays and the model is not. A background
  thread computes one group of chunks at a time (chunks of ``x`` and ``y`` aligned along the
  samples), converts it once to the model's namespace, device and dtype, and hands it over, at
  most ``prefetch`` groups ahead, so that Dask reads and prepares the next chunk while the model
  trains on the current one, and memory holds a few chunks whatever the data's size.

Batches never depend on the chunking: the samples left at the end of a chunk (fewer than a
batch) are copied and completed with the first samples of the next chunk. With
``shuffle=False`` the batches, and so the trained weights, are exactly those of in-memory
``fit``. :func:`rechunk_for` makes chunks whole multiples of the batch so that no batch has to
be assembled from two chunks.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import array_namespace

from ..backend import ArraySpec, adopt, positive_int
from ..nn.module import Module

__all__ = [
    "MemoryBatches",
    "StreamedBatches",
    "batch_source",
    "first_batch",
    "model_namespace",
    "plan_chunks",
    "rechunk_for",
    "streams",
]


def batch_source(
    model: Module, x: Any, y: Any, *, xp: Any, n: int, step: int, shuffle: bool,
    rng: np.random.Generator, epochs: int, prefetch: int = 1,
) -> MemoryBatches | StreamedBatches:
    """The batches of ``fit``: streamed when x and y are Dask arrays and the model is not.

    Args:
        model: the :class:`xmlp.Module` being trained.
        x, y: inputs and targets, (N, ...) each.
        xp: the namespace of ``x`` and ``y``.
        n: their number of samples.
        step: the batch size (``n`` for full batch; fit refuses full batch for streamed
            data before it gets here).
        shuffle: a new order every epoch, drawn from ``rng``.
        rng: a ``numpy.random.Generator``.
        epochs: how many epochs will be asked for (streaming plans its reads for all).
        prefetch: groups of chunks computed ahead of training when streaming.

    Returns:
        A :class:`MemoryBatches` or :class:`StreamedBatches`; ``source.epoch()`` yields
        ``(x_batch, y_batch, weight)``, weight = batch samples / all samples, and
        ``source.close()`` releases it.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.training.batches import batch_source
        >>> x, y = np.zeros((10, 2)), np.zeros((10, 1))
        >>> source = batch_source(xmlp.MLP(2, 3, 1, rng=0), x, y, xp=np, n=10, step=4,
        ...                       shuffle=False,
        ...                       rng=np.random.default_rng(0), epochs=1)
        >>> [(xb.shape[0], weight) for xb, yb, weight in source.epoch()]
        [(4, 0.4), (4, 0.4), (2, 0.2)]
        >>> source.close()
    """
    spec = _model_spec(model)
    if spec is None or not streams(model, x):
        return MemoryBatches(x, y, xp=xp, n=n, step=step, shuffle=shuffle, rng=rng)
    return StreamedBatches(spec, x, y, n=n, step=step, shuffle=shuffle, rng=rng, epochs=epochs,
                           prefetch=prefetch)


def first_batch(model: Module, x: Any, y: Any, k: int) -> tuple[Any, Any] | None:
    """The first ``k`` samples of ``x`` and ``y`` as fit's first step sees them, for checks
    against the model before training: slices of data in memory; for streamed Dask data,
    zeros of the shape, namespace, device and dtype its chunks become (made from Dask's meta,
    computing nothing; a masked meta is refused as a masked chunk is). None where a streamed
    array's shape is not known past the sample axis (its chunks are checked as they arrive).

    Args:
        model: an :class:`xmlp.Module`.
        x: inputs (N, ...), in memory or a Dask array.
        y: targets (N, ...), as ``x``.
        k: how many samples.

    Example:
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.training.batches import first_batch
        >>> x, y = np.ones((10, 2)), np.zeros((10, 1))
        >>> [a.shape for a in first_batch(xmlp.MLP(2, 3, 1, rng=0), x, y, 4)]
        [(4, 2), (4, 1)]
    """
    spec = _model_spec(model)
    if spec is None or not streams(model, x):
        return x[:k, ...], y[:k, ...]
    shapes = [(k, *a.shape[1:]) for a in (x, y)]
    if any(d is None or math.isnan(d) for shape in shapes for d in shape):
        return None
    return (adopt(spec, np.zeros_like(x._meta, shape=shapes[0])),
            adopt(spec, np.zeros_like(y._meta, shape=shapes[1])))


def streams(model: Module, x: Any) -> bool:
    """Whether fit streams ``x``: a Dask array, and a model with parameters not on Dask.

    Args:
        model: an :class:`xmlp.Module`.
        x: the training inputs.

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.training.batches import streams
        >>> model = xmlp.MLP(1, 4, 1, rng=0)                 # parameters in NumPy
        >>> streams(model, da.ones((100, 1), chunks=10)), streams(model, np.ones((100, 1)))
        (True, False)
    """
    spec = _model_spec(model)
    return (spec is not None and array_api_compat.is_dask_array(x)
            and not array_api_compat.is_dask_namespace(spec.xp))


def model_namespace(model: Module) -> Any:
    """The namespace of the model's parameters (None for a model without parameters).

    Args:
        model: an :class:`xmlp.Module`.

    Example:
        >>> import xmlp
        >>> from xmlp.training.batches import model_namespace
        >>> model_namespace(xmlp.MLP(1, 4, 1, rng=0)).__name__, model_namespace(xmlp.Tanh())
        ('array_api_compat.numpy', None)
    """
    spec = _model_spec(model)
    return None if spec is None else spec.xp


def _model_spec(model: Module) -> ArraySpec | None:
    """Where the model's parameters live (None for a model without parameters)."""
    for module in model.modules():
        if module.param_names:
            return module.spec
    return None


class MemoryBatches:
    """Batches sliced from in-memory arrays, in a new order each epoch when shuffling (one
    ``rng.permutation(n)`` per epoch, applied with ``xp.take`` on the arrays' device).

    Args:
        x, y: inputs and targets, (N, ...) each, in the model's namespace.
        xp: their namespace.
        n: their number of samples.
        step: the batch size; the last batch may be shorter.
        shuffle: a new order every epoch, drawn from ``rng``.
        rng: a ``numpy.random.Generator``.

    Example:
        >>> import numpy as np
        >>> from xmlp.training.batches import MemoryBatches
        >>> x = np.arange(5.0).reshape(5, 1)
        >>> batches = MemoryBatches(x, x, xp=np, n=5, step=2, shuffle=False,
        ...                         rng=np.random.default_rng(0))
        >>> len(batches), [xb[:, 0].tolist() for xb, yb, weight in batches.epoch()]
        (3, [[0.0, 1.0], [2.0, 3.0], [4.0]])
    """

    def __init__(self, x: Any, y: Any, *, xp: Any, n: int, step: int, shuffle: bool,
                 rng: np.random.Generator) -> None:
        self.x, self.y, self.xp, self.shuffle, self.rng = x, y, xp, shuffle, rng
        # (start, stop, weight): a batch's mean loss times its share of the samples.
        self.batches = [(s, min(s + step, n), (min(s + step, n) - s) / n)
                        for s in range(0, n, step)]

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.batches)

    def epoch(self) -> Iterator[tuple[Any, Any, float]]:
        xe, ye = self.x, self.y
        if self.shuffle:
            order = self.xp.asarray(self.rng.permutation(self.x.shape[0]),
                                    device=array_api_compat.device(self.x))
            xe, ye = self.xp.take(self.x, order, axis=0), self.xp.take(self.y, order, axis=0)
        for start, stop, weight in self.batches:
            yield xe[start:stop, ...], ye[start:stop, ...], weight

    def close(self) -> None:
        """Nothing to release (the same call as :meth:`StreamedBatches.close`)."""


def plan_chunks(sizes: tuple[int, ...], min_samples: int) -> list[tuple[int, int]]:
    """Groups ``(first, stop)`` of consecutive chunk indices, each of at least ``min_samples``
    samples except possibly the last: the units that are computed, shuffled and handed over.

    Chunks of a batch or more are their own group; smaller ones are grouped so that one
    compute (a few milliseconds of scheduling on Dask's local scheduler, more on a cluster)
    brings at least one batch. Empty chunks at the end are dropped.

    Args:
        sizes: the samples of each chunk (a Dask array's ``chunks[0]``).
        min_samples: the fewest samples a group may hold (the batch size).

    Example:
        >>> from xmlp.training.batches import plan_chunks
        >>> plan_chunks((100, 100, 30, 0), 150)    # chunks 0 and 1 together, then chunk 2
        [(0, 2), (2, 4)]
    """
    groups: list[tuple[int, int]] = []
    first, count = 0, 0
    for index, size in enumerate(sizes):
        count += size
        if count >= min_samples:
            groups.append((first, index + 1))
            first, count = index + 1, 0
    if count:
        groups.append((first, len(sizes)))
    return groups


class StreamedBatches:
    """Batches of Dask data ``x``, ``y`` computed chunk by chunk into the model's ``spec``.

    One background thread (started by the first :meth:`epoch`) computes the groups of
    :func:`plan_chunks` for all epochs in turn, at most ``prefetch`` groups ahead of training;
    :meth:`close` stops it. With ``shuffle``, each epoch visits the groups in a new order and
    the samples of each group in a new order, drawn from a generator seeded once from ``rng``:
    an approximation of a global shuffle that keeps reads sequential within a chunk.

    Args:
        spec: where the batches go: the model's namespace, device and dtype.
        x, y: Dask arrays, (N, ...) each, chunked along the samples.
        n: their number of samples.
        step: the batch size; every batch is full but the last, whatever the chunks.
        shuffle: a new order of groups and of samples within them every epoch.
        rng: a ``numpy.random.Generator``, drawn from once.
        epochs: how many epochs the background thread computes.
        prefetch: groups computed ahead of training.

    Example:
        Made by :func:`batch_source` for a model that is not on Dask (``spec`` is internal):

        >>> import dask.array as da
        >>> import numpy as np
        >>> import xmlp
        >>> from xmlp.training.batches import batch_source
        >>> x, y = da.ones((10, 2), chunks=3), da.zeros((10, 1), chunks=3)
        >>> source = batch_source(xmlp.MLP(2, 3, 1, rng=0), x, y, xp=da, n=10, step=4,
        ...                       shuffle=False,
        ...                       rng=np.random.default_rng(0), epochs=1)
        >>> type(source).__name__, [type(xb).__name__ for xb, yb, w in source.epoch()]
        ('StreamedBatches', ['ndarray', 'ndarray', 'ndarray'])
        >>> source.close()
    """

    def __init__(self, spec: ArraySpec, x: Any, y: Any, *, n: int, step: int, shuffle: bool,
                 rng: np.random.Generator, epochs: int, prefetch: int = 1) -> None:
        self.spec, self.n, self.step, self.epochs, self.prefetch = spec, n, step, epochs, prefetch
        self.xp = spec.xp  # the namespace of the batches
        samples = x.chunks[0]
        # Chunks aligned along the samples, every other axis whole: a block is then a set of
        # whole samples of x with the same samples of y.
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
        y = y.rechunk({0: samples, **{axis: -1 for axis in range(1, y.ndim)}})
        # Unoptimized: x and y keep the keys of their shared tasks (x and y as column slices
        # of one stored array, say), so one compute of both reads each file once; optimized
        # separately, each would fuse its own copy of the read.
        self.x_blocks = list(x.to_delayed(optimize_graph=False).ravel())
        self.y_blocks = list(y.to_delayed(optimize_graph=False).ravel())
        self.groups = plan_chunks(samples, step)
        # One draw from the caller's generator; the plan's draws come from this private one in
        # the background thread, in a fixed order, so the result does not depend on timing.
        self.rng = np.random.default_rng(rng.integers(2**63)) if shuffle else None
        self._feed: _Prefetcher | None = None

    def __len__(self) -> int:
        """Batches per epoch: every one full but the last, as in memory."""
        return -(-self.n // self.step)

    def _groups(self) -> Iterator[tuple[Any, Any, Any]]:
        """Runs in the background thread: every epoch's groups, computed and converted, with
        the order of their samples (an index array of the model's namespace, or None)."""
        import dask

        for _ in range(self.epochs):
            order = range(len(self.groups)) if self.rng is None else self.rng.permutation(
                len(self.groups))
            for index in order:
                first, stop = self.groups[index]
                xs, ys = dask.compute(self.x_blocks[first:stop], self.y_blocks[first:stop])
                xg, yg = _concat(xs), _concat(ys)
                del xs, ys  # the blocks, when a group had several
                # The samples are gathered batch by batch in this order (xp.take): no shuffled
                # copy of the whole group.
                within = None if self.rng is None else adopt(
                    self.spec, self.rng.permutation(xg.shape[0]))
                yield adopt(self.spec, xg), adopt(self.spec, yg), within

    def epoch(self) -> Iterator[tuple[Any, Any, float]]:
        """One pass over the data: full batches of ``step`` samples (the last may be short)."""
        if self._feed is None:
            self._feed = _Prefetcher(self._groups(), self.prefetch)
        feed, spec, xp, step, n = self._feed, self.spec, self.spec.xp, self.step, self.n
        carry: tuple[Any, Any] | None = None  # fewer than `step` samples left from a group
        for _ in self.groups:
            xc, yc, order = feed.get()
            # The next group is computed once this one has trained a step: by then the model
            # holds no view of the group before, so memory holds two groups, not three.
            size, start, released = xc.shape[0], 0, False
            if carry is not None:  # complete the samples left from the group before
                start = min(step - carry[0].shape[0], size)
                carry = (xp.concat([carry[0], _rows(spec, xc, order, 0, start)], axis=0),
                         xp.concat([carry[1], _rows(spec, yc, order, 0, start)], axis=0))
                if carry[0].shape[0] == step:
                    yield carry[0], carry[1], step / n
                    carry, released = None, True
                    feed.release()
            stop = start + (size - start) // step * step
            for lo in range(start, stop, step):
                yield (_rows(spec, xc, order, lo, lo + step), _rows(spec, yc, order, lo, lo + step),
                       step / n)
                if not released:
                    released = True
                    feed.release()
            if stop < size:  # a copy: a view would keep the whole group in memory
                carry = (_rows(spec, xc, order, stop, size, copy=True),
                         _rows(spec, yc, order, stop, size, copy=True))
            if not released:
                feed.release()
        if carry is not None:
            yield carry[0], carry[1], carry[0].shape[0] / n

    def close(self) -> None:
        """Stop the background thread (waiting for a compute in progress) and drop what it
        prefetched. Safe to call more than once."""
        if self._feed is not None:
            self._feed.close()


def _concat(blocks: list[Any]) -> Any:
    if len(blocks) == 1:
        return blocks[0]
    return array_namespace(*blocks).concat(blocks, axis=0)


def _rows(spec: ArraySpec, a: Any, order: Any, lo: int, hi: int, *, copy: bool = False) -> Any:
    """Rows lo:hi of a group, in its sample order when shuffled (then always a new array)."""
    if order is not None:
        return spec.ops.take_rows(a, order[lo:hi])
    return spec.xp.asarray(a[lo:hi, ...], copy=True) if copy else a[lo:hi, ...]


class _Prefetcher:
    """Pulls items from ``source`` in one daemon thread, at most ``depth`` items computed (or
    computing) and not yet released by the trainer; an exception in the thread is raised by the
    next :meth:`get`."""

    def __init__(self, source: Iterator[Any], depth: int) -> None:
        self._source = source
        self._slots = threading.Semaphore(depth)  # items computed or computing, not released
        self._items: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xmlp-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._slots.acquire()  # a free slot before computing: memory stays bounded
            if self._stop.is_set():
                return
            try:
                item = next(self._source)
            except StopIteration:
                return
            except BaseException as exc:  # handed to the trainer, raised there
                self._items.put((False, exc))
                return
            self._items.put((True, item))

    def get(self) -> Any:
        """The next item; call :meth:`release` when its memory may be reused for another."""
        while True:
            try:
                ok, item = self._items.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._items.empty():
                    raise RuntimeError("streaming: no more chunks to train on") from None
        if not ok:
            raise item
        return item

    def release(self) -> None:
        """Lets the thread compute one more item."""
        self._slots.release()

    def close(self) -> None:
        self._stop.set()
        self._slots.release()  # wakes the thread if it waits for a slot
        self._thread.join()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break


def rechunk_for(x: Any, batch_size: int, *, samples_per_chunk: int | None = None) -> Any:
    """``x`` (a Dask array) rechunked for streaming with :func:`xmlp.fit`: along the first
    (sample) axis every chunk but the last holds a whole number of batches, and every other
    axis is one chunk.

    Args:
        x: a Dask array (N, ...).
        batch_size: the ``batch_size`` you will pass to ``fit``.
        samples_per_chunk: about how many samples a chunk should hold; default x's largest
            chunk. Rounded to the nearest multiple of ``batch_size`` (at least one batch).

    Lazy, like every rechunk: chunks are only made when computed. Rechunking data on disk reads
    each stored chunk for every new chunk it overlaps; chunks stored as multiples of the batch
    from the start avoid that. ``y`` needs no call: fit aligns it to ``x``'s chunks.

    Example:
        >>> import dask.array as da
        >>> import xmlp
        >>> x = da.ones((1000, 3), chunks=(300, 3))
        >>> xmlp.rechunk_for(x, 64).chunks        # 300 samples rounded to 5 batches of 64
        ((320, 320, 320, 40), (3,))
    """
    if not array_api_compat.is_dask_array(x):
        raise TypeError(
            f"rechunk_for: x must be a Dask array, got {type(x).__name__}; in-memory data has "
            "no chunks to plan (pass it to fit as it is)."
        )
    size = positive_int(batch_size, "rechunk_for: batch_size")
    known = x.chunks[0] if x.ndim else ()
    if x.ndim < 1 or any(math.isnan(c) for c in known):
        raise ValueError(
            "rechunk_for: x needs a leading sample axis of known chunk sizes, got shape "
            f"{tuple(x.shape)}; call .compute_chunk_sizes() first."
        )
    target = max(known, default=size) if samples_per_chunk is None else positive_int(
        samples_per_chunk, "rechunk_for: samples_per_chunk")
    per_chunk = size * max(1, round(target / size))
    return x.rechunk({0: per_chunk, **{axis: -1 for axis in range(1, x.ndim)}})

