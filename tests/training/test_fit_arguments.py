"""What fit refuses before it trains, with its messages word for word (counts, flags, the loss,
the callback, the model, data without samples or of unknown size, streamed data without a
batch size), and what it takes (NumPy integers, counts up to sys.maxsize, samples without a
feature axis, a single sample)."""

from __future__ import annotations

import sys
from typing import Any

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.helpers import (
    HUGE_INT,
    Duck,
    assert_unchanged,
    int_id,
    layer_kwargs,
    make_data,
    message,
    state,
)
from tests.reference import (
    mlp_step,
)

# -- whole messages ----------------------------------------------------------------------------
X6, T6 = np.ones((6, 2)), np.ones((6, 1))


FIT = [
    ({"epochs": 0}, ValueError, "fit: epochs must be a positive int, got 0"),
    ({"epochs": 2.0}, TypeError, "fit: epochs must be a positive int, got 2.0"),
    ({"batch_size": 0}, ValueError, "fit: batch_size must be a positive int, got 0"),
    ({"batch_size": 1.5}, TypeError, "fit: batch_size must be a positive int, got 1.5"),
    ({"shuffle": "yes"}, TypeError, "fit: shuffle must be True or False, got 'yes'"),
    ({"progress": "yes"}, TypeError, "fit: progress must be None, True or False, got 'yes'"),
    ({"loss": Duck()}, TypeError, "fit: loss must have a backward() method, got Duck"),
    ({"rng": "seed"}, TypeError,
     "fit: rng must be None, a non-negative int seed or a numpy.random.Generator, got 'seed'"),
    ({"rng": -1}, ValueError,
     "fit: rng must be None, a non-negative int seed or a numpy.random.Generator, got -1"),
    ({"x": [1.0]}, TypeError, "fit: x must be an array, got list"),
    ({"y": (1.0,)}, TypeError, "fit: y must be an array, got tuple"),
    ({"x": np.float64(1.0)}, ValueError,
     "fit: x and y need a leading sample axis, got shapes () and (6, 1)"),
    ({"y": np.array(1.0)}, ValueError,
     "fit: x and y need a leading sample axis, got shapes (6, 2) and ()"),
    ({"x": np.ones((0, 2)), "y": np.ones((0, 1))}, ValueError, "fit: x and y hold no samples"),
]


@pytest.mark.parametrize(("kwargs", "exc_type", "expected"), FIT, ids=[str(k) for k, *_ in FIT])
def test_fit_message(kwargs, exc_type, expected):
    call = {"x": X6, "y": T6, "epochs": 2, "lr": 0.1, "progress": False, **kwargs}
    x, y = call.pop("x"), call.pop("y")
    assert message(exc_type, lambda: xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), x, y, **call)) == expected


def test_fit_model_messages():
    assert message(TypeError, lambda: xmlp.fit(Duck(), X6, T6, epochs=1, lr=0.1)) == (
        "fit: model has no backward() method (Duck)")

    class Bare:
        def forward(self, x: Any) -> Any:
            return x

        def backward(self, g: Any) -> Any:
            return g

        def update_params(self, lr: float) -> None:
            pass

    assert message(TypeError, lambda: xmlp.fit(Bare(), X6, T6, epochs=1, lr=0.1)) == (
        "fit: model must be an xmlp.Module (got Bare): fit lists, restores and persists "
        "parameters through named_parameters(). Subclass xmlp.Module or wrap your layers in "
        "xmlp.Sequential.")
    got = message(TypeError, lambda: xmlp.fit(xmlp.MLP(2, 3, 1), strict.ones((6, 2)), T6,
                                              epochs=1, lr=0.1))
    assert got == ("fit: x and y must be arrays of one namespace, got array_api_strict and "
                   "numpy arrays; convert both with numpy.asarray(...), the model's namespace")
    # a model without parameters has no namespace of its own: x's is named
    got = message(TypeError, lambda: xmlp.fit(xmlp.Tanh(), strict.ones((6, 2)), T6,
                                              epochs=1, lr=0.1))
    assert got == ("fit: x and y must be arrays of one namespace, got array_api_strict and "
                   "numpy arrays; convert y with array_api_strict.asarray(...)")


def fit_message(exc_type, model=None, x=None, y=None, **kwargs) -> str:
    """The message of the error fit raises for these arguments (NumPy data of 6 samples)."""
    if x is None:
        x, y = make_data(6)
    call = {"epochs": 1, "lr": 0.1, "progress": False, **kwargs}
    with pytest.raises(exc_type) as info:
        xmlp.fit(xmlp.MLP(2, 3, 1, rng=0) if model is None else model, x, y, **call)
    return str(info.value)


def test_a_callback_that_is_not_callable_is_named_in_the_message():
    """callback=5: the message says what callback must be and quotes the 5 given."""
    assert fit_message(TypeError, callback=5) == (
        "fit: callback must be None or a function of (epoch, history), got 5")


def test_an_optimizer_of_another_model_is_named_in_the_message():
    """An optimizer built on another model: the message names that model's class and id, and
    shows how to build the optimizer's own class on the model being trained."""
    other = xmlp.Sequential(xmlp.Linear(2, 1, rng=0))
    got = fit_message(ValueError, lr=None, optimizer=xmlp.optim.Adam(other, lr=0.01))
    assert got == (
        f"fit: the optimizer was built on another model (Sequential at {id(other):#x}); "
        "build it on the model being trained, e.g. xmlp.optim.Adam(model, ...)")


@pytest.mark.requires_backends("dask")
def test_unknown_dask_sizes_are_value_errors():
    """Dask arrays after boolean indexing have a nan length: every entry point says so."""
    import dask.array as da

    x = da.from_array(np.linspace(-1, 1, 8).reshape(8, 1), chunks=4)
    y = da.from_array(np.zeros((8, 1)), chunks=4)
    keep = x[:, 0] > -2
    xu, yu = x[keep], y[keep]
    assert np.isnan(xu.shape[0])
    hint = (" is unknown (a Dask array with unknown chunk sizes?); call .compute_chunk_sizes() "
            "first.")
    model = xmlp.MLP(1, 2, 1, xp=da, rng=0)
    assert message(ValueError, lambda: xmlp.fit(model, xu, y, epochs=1, lr=0.1)) == (
        "fit: the number of samples of x" + hint)
    assert message(ValueError, lambda: xmlp.fit(model, x, yu, epochs=1, lr=0.1)) == (
        "fit: the number of samples of y" + hint)
    assert message(ValueError, lambda: model.linear1.forward(xu)) == (
        "Linear(1, 2).forward: x has an unknown size, shape (nan, 1); on Dask call "
        "x.compute_chunk_sizes() first (needed after boolean indexing, for instance).")
    assert message(ValueError, lambda: xmlp.MSELoss().forward(xu, yu)) == (
        "MSELoss.forward: y has an unknown size, shape (nan, 1), so the mean cannot be taken; on "
        "Dask call .compute_chunk_sizes() on the input first.")


def test_streamed_training_data_refuse_full_batch():
    """Dask data and a NumPy model: batch_size=None would gather every sample at once, so fit
    refuses it and says what to do. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = make_data(8)
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [p.copy() for p in model.parameters()]
    got = fit_message(ValueError, model=model, x=da.from_array(x, chunks=4),
                      y=da.from_array(t, chunks=4))
    assert got.startswith("fit: x and y are Dask arrays and the model is on ")
    assert got.endswith(
        ", so fit streams the data chunk by chunk; batch_size=None (full batch) would gather "
        "all 8 samples in memory at once. Pass a batch_size, or move the model to Dask "
        "(model.to(dask.array)) for full-batch, data-parallel steps.")
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


# -- counts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arg", ["epochs", "batch_size"])
def test_counts_past_sys_maxsize_name_the_limit(arg):
    """A count past sys.maxsize: the message names the limit; a count below 1 does not."""
    assert fit_message(ValueError, **{arg: sys.maxsize + 1}) == (
        f"fit: {arg} must be a positive int up to {sys.maxsize}, got {sys.maxsize + 1}")
    assert fit_message(ValueError, **{arg: 0}) == f"fit: {arg} must be a positive int, got 0"


def test_counts_of_exactly_sys_maxsize_are_taken():
    """sys.maxsize is the largest count fit takes: as batch_size it is full batch, as epochs
    it trains until the callback stops it."""
    x, t = make_data(6)
    full = xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), x, t, epochs=2, lr=0.1, progress=False)
    huge_batch = xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), x, t, epochs=2, lr=0.1,
                          batch_size=sys.maxsize, progress=False)
    assert list(huge_batch) == list(full)
    stopped = xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), x, t, epochs=sys.maxsize, lr=0.1,
                       progress=False, callback=lambda epoch, history: epoch == 2)
    assert list(stopped) == list(full)


@pytest.mark.parametrize(("value", "error"), [
    (0, ValueError), (-1, ValueError), (sys.maxsize + 1, ValueError), (HUGE_INT, ValueError),
    (-(10**5000), ValueError), (1.0, TypeError), (True, TypeError), ("3", TypeError),
    (np.float64(2), TypeError)], ids=int_id)
@pytest.mark.parametrize("arg", ["epochs", "batch_size"])
def test_fit_counts_get_the_documented_error(value, error, arg):
    model = xmlp.MLP(1, 2, 1, rng=0)
    before = state(model)
    kwargs = {"epochs": 1, arg: value}
    with pytest.raises(error, match=arg):
        xmlp.fit(model, np.ones((4, 1)), np.ones((4, 1)), lr=0.1, progress=False, **kwargs)
    assert_unchanged(before, model)


def test_numpy_integers_are_taken_where_ints_are():
    x, y = np.ones((10, 1)), np.ones((10, 1))
    history = xmlp.fit(xmlp.MLP(1, 2, 1, rng=np.int64(0)), x, y, epochs=np.int64(2),
                       batch_size=np.int32(3), lr=np.float32(0.1), progress=False)
    assert len(history) == 2
    assert xmlp.MLP(np.int8(1), np.uint16(3), np.int64(1)).linear1.weights.shape == (3, 1)


def test_rechunk_for_takes_numpy_ints_and_refuses_huge_ones():
    da = pytest.importorskip("dask.array", reason="rechunk_for is for Dask arrays")
    x = da.ones((12, 2), chunks=(5, 2))
    assert xmlp.rechunk_for(x, np.int64(4)).chunks[0] == xmlp.rechunk_for(x, 4).chunks[0]
    with pytest.raises(ValueError, match="batch_size"):
        xmlp.rechunk_for(x, HUGE_INT)
    with pytest.raises(TypeError, match="batch_size"):
        xmlp.rechunk_for(x, 4.0)


# -- samples -----------------------------------------------------------------------------------
def test_empty_batch_in_fit_and_loss(xp):
    empty = xp.from_numpy(np.ones((0, 1)))
    with pytest.raises(ValueError):
        xmlp.fit(xmlp.MLP(1, 2, 1, **layer_kwargs(xp)), empty, empty, epochs=1, lr=0.1,
                 progress=False)
    with pytest.raises(ValueError, match="empty"):
        xmlp.MSELoss().forward(empty, empty)


def test_fit_takes_samples_without_a_feature_axis_and_a_single_sample():
    x = np.linspace(-1, 1, 8)  # (N,) inputs and targets, for a model that takes them
    history = xmlp.fit(xmlp.Sequential(xmlp.Tanh()), x, np.zeros(8), epochs=2, lr=0.1,
                       progress=False)
    np.testing.assert_allclose(history, [np.mean(np.tanh(x) ** 2)] * 2, rtol=1e-12)
    model = xmlp.MLP(1, 2, 1, rng=0)
    params = [p.copy() for p in model.parameters()]
    history = xmlp.fit(model, np.ones((1, 1)), np.zeros((1, 1)), epochs=1, lr=0.1,
                       progress=False)
    loss, _, expected, _ = mlp_step(params, np.ones((1, 1)), np.zeros((1, 1)), 0.1)
    np.testing.assert_allclose(history, [loss], rtol=1e-12)
    for p, e in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-12)
