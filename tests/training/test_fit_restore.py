"""fit's restore point when an epoch's loss or parameters are not finite: the last state whose
loss and parameters were all finite (the initial one after a first epoch), optimizer state
included, on every backend, with a message that names the epoch; losses that return Python
floats and models on Dask too."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xmlp
from tests.helpers import (
    PoisonedLoss,
    host_params,
    layer_kwargs,
    make_data,
    message,
    toy_data,
)


# -- non-finite losses -------------------------------------------------------------------------
@pytest.mark.parametrize("epoch", [1, 2, 3])
def test_fit_nonfinite_loss_message(epoch):
    x, t = make_data(6)
    kept = "to their initial values" if epoch == 1 else f"after epoch {epoch - 1}"
    got = message(FloatingPointError, lambda: xmlp.fit(
        xmlp.MLP(2, 3, 1, rng=0), x, t, epochs=4, lr=0.1, loss=PoisonedLoss(epoch),
        progress=False))
    assert got == (f"fit: the loss of epoch {epoch} is nan; parameters restored {kept}. Try a "
                   "smaller learning rate.")


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


# -- parameters that overflow ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_overflowing_parameters_are_never_returned(xp, dtype, epochs):
    """With lr near the float maximum the first update overflows the parameters while the
    epoch's loss (computed before it) is finite: fit raises and restores finite parameters."""
    x, y = toy_data(xp, dtype)
    model = xmlp.MLP(1, 4, 1, rng=0, **layer_kwargs(xp, dtype))
    start = host_params(xp, model)
    lr = 1e308 if dtype == "float64" else 1e38
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError,
                                                  match=r"overflowed.*epoch 1") as info:
        xmlp.fit(model, x, y, epochs=epochs, lr=lr, progress=False)
    assert len(info.value.history) == 1 and math.isfinite(info.value.history[0])
    for p, q in zip(host_params(xp, model), start, strict=True):
        np.testing.assert_array_equal(p, q)
    assert all(g is None for _, g in model.named_grads())


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


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(log_lr=st.one_of(st.floats(-3, 10), st.floats(300, 308.2)), epochs=st.integers(1, 4),
       batch=st.sampled_from([None, 7]))
def test_fit_returns_or_restores_only_finite_parameters(log_lr, epochs, batch):
    x = np.linspace(-1, 1, 20)[:, None]
    y = 2 * x**2 + 3
    model = xmlp.MLP(1, 4, 1, rng=0)
    with np.errstate(all="ignore"):
        try:
            history = xmlp.fit(model, x, y, epochs=epochs, lr=10.0**log_lr, batch_size=batch,
                               progress=False)
        except FloatingPointError as exc:
            history = exc.history
            failed = True
        else:
            failed = False
    params = list(model.parameters())
    assert all(np.isfinite(p).all() for p in params)
    if not failed:
        assert len(history) == epochs and all(math.isfinite(v) for v in history)
        return
    # restored to the state after the last good epoch: replay it to compare
    replay = xmlp.MLP(1, 4, 1, rng=0)
    good = len(history) - 1
    if good:
        with np.errstate(all="ignore"):
            xmlp.fit(replay, x, y, epochs=good, lr=10.0**log_lr, batch_size=batch,
                     progress=False)
    for p, q in zip(params, replay.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
