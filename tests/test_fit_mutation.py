"""Tests of xmlp.fit's behaviour found by mutation testing: whole messages of its argument
checks, the limits of its counts, the optimizer state it restores after a non-finite first
epoch, validation data that draws nothing from the shuffling generator, and the running sums
and state it persists on Dask (those tests run wherever Dask is installed)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import xmlp
from tests.training.test_fit import PoisonedLoss


def make_data(n: int = 10, in_dim: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, in_dim))
    t = np.sin(x.sum(axis=1, keepdims=True)) + 0.1 * gen.standard_normal((n, 1))
    return x, t


def fit_message(exc_type, model=None, x=None, y=None, **kwargs) -> str:
    """The message of the error fit raises for these arguments (NumPy data of 6 samples)."""
    if x is None:
        x, y = make_data(6)
    call = {"epochs": 1, "lr": 0.1, "progress": False, **kwargs}
    with pytest.raises(exc_type) as info:
        xmlp.fit(xmlp.MLP(2, 3, 1, rng=0) if model is None else model, x, y, **call)
    return str(info.value)


# -- argument checks: whole messages -----------------------------------------------------------


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


# -- restoring after a non-finite epoch ----------------------------------------------------------


def test_a_failed_first_epoch_restores_the_optimizer_to_its_initial_state(xp):
    """The second of three Adam steps of epoch 1 turns everything NaN: the optimizer is put
    back as it was built (no step taken, no state), so training on with it gives what a fresh
    model and optimizer give."""
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)

    def model():
        return xmlp.MLP(2, 5, 1, xp=xp.module, device=xp.device, dtype="float64", rng=7)

    trained = model()
    opt = xmlp.optim.Adam(trained, lr=0.01)
    with pytest.raises(FloatingPointError) as info:
        xmlp.fit(trained, xs, ts, epochs=3, optimizer=opt, batch_size=4,
                 loss=PoisonedLoss(2), progress=False)
    assert str(info.value) == (
        "fit: the loss of epoch 1 is nan; parameters and optimizer state restored to their "
        "initial values. Try a smaller learning rate.")
    assert opt.step_count == 0
    assert opt.state_dict()["state"] == {}
    history = xmlp.fit(trained, xs, ts, epochs=2, optimizer=opt, batch_size=4, progress=False)
    fresh = model()
    expected = xmlp.fit(fresh, xs, ts, epochs=2, optimizer=xmlp.optim.Adam(fresh, lr=0.01),
                        batch_size=4, progress=False)
    np.testing.assert_allclose(list(history), list(expected), rtol=1e-12)
    for p, q in zip(trained.parameters(), fresh.parameters(), strict=True):
        np.testing.assert_allclose(xp.to_numpy(p), xp.to_numpy(q), rtol=1e-12)


# -- validation data -----------------------------------------------------------------------------


def test_validation_draws_nothing_from_the_shuffling_generator():
    """Validation batches are taken in order: with shuffle=True and a seed, training with
    validation data visits the same orders, and ends with the same weights, as without it."""
    x, t = make_data(10)
    xv, tv = make_data(7, seed=1)
    kwargs = {"epochs": 3, "lr": 0.1, "batch_size": 3, "shuffle": True, "rng": 5,
              "progress": False}
    plain_model, val_model = xmlp.MLP(2, 5, 1, rng=7), xmlp.MLP(2, 5, 1, rng=7)
    plain = xmlp.fit(plain_model, x, t, **kwargs)
    validated = xmlp.fit(val_model, x, t, validation_data=(xv, tv), **kwargs)
    assert list(validated) == list(plain)
    for p, q in zip(val_model.parameters(), plain_model.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert len(validated.val_loss) == 3


# -- Dask: streaming into a model elsewhere, and a model on Dask ---------------------------------


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


def test_a_dask_classifier_over_many_batches_matches_numpy():
    """A model on Dask, plain SGD, 10 mini-batches an epoch (persisted every 4 steps): each
    epoch's loss and accuracy count every batch, as on NumPy. Runs wherever Dask is
    installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    gen = np.random.default_rng(3)
    x = gen.standard_normal((20, 2))
    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    kwargs = {"epochs": 2, "lr": 0.5, "batch_size": 2, "loss": xmlp.CrossEntropyLoss(),
              "progress": False}
    ref = xmlp.fit(xmlp.MLP(2, 4, 3, rng=7), x, labels, **kwargs)
    model = xmlp.MLP(2, 4, 3, xp=da, rng=7)
    got = xmlp.fit(model, da.from_array(x, chunks=(10, 2)), da.from_array(labels, chunks=10),
                   **kwargs)
    assert list(got) == pytest.approx(list(ref), rel=1e-12)
    assert got.accuracy == ref.accuracy
    assert 0 < ref.accuracy[0] < 1


def test_the_optimizer_state_of_a_dask_model_is_persisted_each_epoch():
    """Adam on a model on Dask: after fit, its state arrays are persisted (one in-memory task
    per chunk), not the graphs of the epoch's steps. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = make_data(16)
    model = xmlp.MLP(2, 5, 1, xp=da, rng=7)
    opt = xmlp.optim.Adam(model, lr=0.01)
    xmlp.fit(model, da.from_array(x, chunks=(4, 2)), da.from_array(t, chunks=(4, 1)),
             epochs=2, optimizer=opt, batch_size=4, progress=False)
    state = opt._state_arrays()
    assert len(state) == 8  # two arrays for each of the 4 parameters
    for a in state:
        assert len(a.__dask_graph__()) == a.npartitions


def test_a_dask_model_whose_parameter_overflows_in_the_last_step_is_caught():
    """A Linear on Dask whose weight overflows (to -inf) in the epoch's last step while the
    epoch's loss (computed before it) is finite: fit reports the overflow after persisting,
    and restores the initial parameters. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    model = xmlp.Linear(1, 1, initial_weights=da.from_array(np.array([[0.5]])),
                        initial_biases=da.from_array(np.array([0.0])))
    x = da.from_array(np.array([[1.0], [-1.0]]))
    t = da.from_array(np.array([[-1.0], [1.0]]))
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        xmlp.fit(model, x, t, epochs=2, lr=1e308, progress=False)
    assert str(info.value) == (
        "fit: the parameters overflowed to NaN or infinity in epoch 1 (its loss was 2.25); "
        "parameters restored to their initial values. Try a smaller learning rate.")
    assert [np.asarray(p).tolist() for p in model.parameters()] == [[[0.5]], [0.0]]


# -- losses that return Python floats ------------------------------------------------------------


class InfiniteFloatLoss(xmlp.MSELoss):
    """MSE's gradient (finite), but a forward that returns the Python float inf."""

    def forward(self, y, t):
        super().forward(y, t)
        return math.inf


def test_an_infinite_float_loss_stops_training_even_with_finite_parameters():
    """A loss returning Python floats takes the check without the parameter sum: an infinite
    epoch loss still raises, though every parameter stays finite, and the parameters are
    restored."""
    x, t = make_data(6)
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(FloatingPointError) as info:
        xmlp.fit(model, x, t, epochs=2, lr=0.1, loss=InfiniteFloatLoss(), progress=False)
    assert str(info.value) == (
        "fit: the loss of epoch 1 is inf; parameters restored to their initial values. Try a "
        "smaller learning rate.")
    assert list(info.value.history) == [math.inf]
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)
