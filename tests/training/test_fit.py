"""xmlp.fit on every backend against the NumPy float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import PoisonedLoss, host_params, make_data
from tests.reference import mlp_step

# -- helpers -----------------------------------------------------------------------------------


def make_model(xp, dtype="float64", hidden=5, seed=7, in_dim=2):
    return xmlp.MLP(in_dim, hidden, 1, xp=xp.module, device=xp.device, dtype=dtype, rng=seed)


def reference_fit(params, x, t, *, epochs, lr, batch_size=None, orders=None):
    """The loop fit() promises, in NumPy float64: per-sample-weighted epoch losses."""
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    params = [np.array(p, dtype=np.float64) for p in params]
    history, batch_losses = [], []
    for epoch in range(epochs):
        xe, te = (x, t) if orders is None else (x[orders[epoch]], t[orders[epoch]])
        total, losses = 0.0, []
        for start in range(0, n, step):
            xb, tb = xe[start:start + step], te[start:start + step]
            loss, _, params, _ = mlp_step(params, xb, tb, lr)
            losses.append(loss)
            total += loss * xb.shape[0]
        history.append(total / n)
        batch_losses.append(losses)
    return history, params, batch_losses


# -- results -----------------------------------------------------------------------------------


def test_fit_matches_reference(xp, dtype):
    x, t = make_data()
    model = make_model(xp, dtype)
    start = host_params(xp, model)
    history = xmlp.fit(model, xp.from_numpy(x, dtype), xp.from_numpy(t, dtype),
                       epochs=3, lr=0.1, progress=False)
    ref_history, ref_params, _ = reference_fit(start, x.astype(dtype).astype(np.float64),
                                               t.astype(dtype).astype(np.float64),
                                               epochs=3, lr=0.1)
    assert len(history) == 3
    assert all(type(v) is float for v in history)
    tol = tolerances(dtype)
    np.testing.assert_allclose(history, ref_history, **tol)
    for p, r in zip(model.parameters(), ref_params, strict=True):
        assert type(p) is type(xp.from_numpy(x))
        assert p.dtype == getattr(xp.ns, dtype)
        np.testing.assert_allclose(xp.to_numpy(p), r, **tol)


def test_short_last_batch_weighs_less(xp):
    x, t = make_data()
    model = make_model(xp)
    start = host_params(xp, model)
    history = xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=2, lr=0.2,
                       batch_size=4, progress=False)
    _, ref_params, batch_losses = reference_fit(start, x, t, epochs=2, lr=0.2, batch_size=4)
    # by hand: batches of 4, 4 and 2 samples
    expected = [(4 * a + 4 * b + 2 * c) / 10 for a, b, c in batch_losses]
    unweighted = [sum(losses) / 3 for losses in batch_losses]
    assert abs(expected[0] - unweighted[0]) > 1e-3  # the data tell the two apart
    np.testing.assert_allclose(history, expected, rtol=1e-10)
    for p, r in zip(host_params(xp, model), ref_params, strict=True):
        np.testing.assert_allclose(p, r, rtol=1e-10, atol=1e-12)


def test_batch_size_larger_than_data_is_full_batch(xp):
    x, t = make_data()
    a, b = make_model(xp), make_model(xp)
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    full = xmlp.fit(a, xs, ts, epochs=3, lr=0.1, progress=False)
    big = xmlp.fit(b, xs, ts, epochs=3, lr=0.1, batch_size=100, progress=False)
    assert full == big
    for p, q in zip(host_params(xp, a), host_params(xp, b), strict=True):
        np.testing.assert_array_equal(p, q)


def test_shuffle_same_rng_same_history_and_weights(xp):
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    runs = []
    for rng in (3, np.random.default_rng(3), 4):
        model = make_model(xp)
        history = xmlp.fit(model, xs, ts, epochs=2, lr=0.1, batch_size=4, shuffle=True,
                           rng=rng, progress=False)
        runs.append((history, host_params(xp, model)))
    (h3, p3), (h3g, p3g), (h4, _) = runs
    assert h3 == h3g
    for p, q in zip(p3, p3g, strict=True):
        np.testing.assert_array_equal(p, q)
    assert h3 != h4
    # and the order is one seeded permutation per epoch
    gen = np.random.default_rng(3)
    orders = [gen.permutation(10) for _ in range(2)]
    start = host_params(xp, make_model(xp))
    ref_history, ref_params, _ = reference_fit(start, x, t, epochs=2, lr=0.1, batch_size=4,
                                               orders=orders)
    np.testing.assert_allclose(h3, ref_history, rtol=1e-10)
    for p, r in zip(p3, ref_params, strict=True):
        np.testing.assert_allclose(p, r, rtol=1e-10, atol=1e-12)


def test_fit_trains_a_deeper_sequential(xp):
    x, t = make_data()

    def linear(i, o, seed, init):
        return xmlp.Linear(i, o, xp=xp.module, device=xp.device, rng=seed, init=init,
                           dtype="float64")

    model = xmlp.Sequential(linear(2, 5, 1, "he"), xmlp.ReLU(), linear(5, 5, 2, "he"),
                            xmlp.Sigmoid(), linear(5, 1, 3, "xavier"))
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    history = xmlp.fit(model, xs, ts, epochs=5, lr=0.3, batch_size=4, shuffle=True, rng=0,
                       progress=False)
    assert history[-1] < history[0] / 4
    assert float(xmlp.MSELoss().predict(model.predict(xs), ts)) < history[0] / 4


# -- the epoch callback ------------------------------------------------------------------------


def test_callback_sees_every_epoch_and_changes_nothing(xp):
    """Called after each epoch with its number and the History so far; returning None or
    False trains on as without it (same losses, same weights)."""
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    plain = make_model(xp)
    expected = xmlp.fit(plain, xs, ts, epochs=4, lr=0.1, batch_size=4, shuffle=True, rng=1,
                        progress=False)
    seen = []

    def callback(epoch, history):
        seen.append((epoch, list(history)))
        return None if epoch % 2 else False

    model = make_model(xp)
    history = xmlp.fit(model, xs, ts, epochs=4, lr=0.1, batch_size=4, shuffle=True, rng=1,
                       progress=False, callback=callback)
    assert history == expected
    assert seen == [(e, expected[:e]) for e in range(1, 5)]
    for p, q in zip(host_params(xp, model), host_params(xp, plain), strict=True):
        np.testing.assert_array_equal(p, q)


def test_callback_returning_true_stops_after_that_epoch(xp):
    """Stopping at epoch 2 of 5 leaves what fit(epochs=2) gives; a learning rate changed by the
    callback applies from the next epoch (a schedule)."""
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    two = make_model(xp)
    expected = xmlp.fit(two, xs, ts, epochs=2, lr=0.1, progress=False)
    model = make_model(xp)
    history = xmlp.fit(model, xs, ts, epochs=5, lr=0.1, progress=False,
                       callback=lambda epoch, history: epoch == 2)
    assert history == expected
    for p, q in zip(host_params(xp, model), host_params(xp, two), strict=True):
        np.testing.assert_array_equal(p, q)

    scheduled, stepwise = make_model(xp), make_model(xp)
    opt = xmlp.optim.SGD(scheduled, lr=0.1)
    xmlp.fit(scheduled, xs, ts, epochs=2, optimizer=opt, progress=False,
             callback=lambda epoch, history: setattr(opt, "lr", 0.05))
    xmlp.fit(stepwise, xs, ts, epochs=1, lr=0.1, progress=False)
    xmlp.fit(stepwise, xs, ts, epochs=1, lr=0.05, progress=False)
    for p, q in zip(host_params(xp, scheduled), host_params(xp, stepwise), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


# -- non-finite losses -------------------------------------------------------------------------


def test_nonfinite_loss_restores_last_finite_epoch(xp):
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    clean = make_model(xp)
    # eager, as the run with a loss of the test's own (compiled steps round otherwise)
    clean_history = xmlp.fit(clean, xs, ts, epochs=2, lr=0.1, progress=False, compile=False)
    model = make_model(xp)
    with pytest.raises(FloatingPointError, match="epoch 3") as info:
        xmlp.fit(model, xs, ts, epochs=5, lr=0.1, loss=PoisonedLoss(3), progress=False)
    history = info.value.history
    assert history[:2] == clean_history
    assert len(history) == 3 and math.isnan(history[2])
    for p, q in zip(host_params(xp, model), host_params(xp, clean), strict=True):
        np.testing.assert_array_equal(p, q)
    assert all(g is None for _, g in model.named_grads())
    assert model.linear1.x is None


def test_nonfinite_first_epoch_restores_initial_parameters(xp):
    x, t = make_data()
    model = make_model(xp)
    start = host_params(xp, model)
    # the second of three steps of epoch 1 turns everything NaN, after one real update
    with pytest.raises(FloatingPointError, match="epoch 1") as info:
        xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=3, lr=0.1, batch_size=4,
                 loss=PoisonedLoss(2), progress=False)
    assert len(info.value.history) == 1
    for p, q in zip(host_params(xp, model), start, strict=True):
        np.testing.assert_array_equal(p, q)


# -- progress and syncs ------------------------------------------------------------------------


def test_progress_false_prints_nothing(capsys):
    x, t = make_data(6)
    xmlp.fit(make_model_np(), x, t, epochs=3, lr=0.1, progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_none_is_silent_off_a_terminal(capsys):
    x, t = make_data(6)
    xmlp.fit(make_model_np(), x, t, epochs=3, lr=0.1)
    assert capsys.readouterr() == ("", "")


def test_progress_true_draws_a_bar_on_stderr(capsys):
    x, t = make_data(6)
    xmlp.fit(make_model_np(), x, t, epochs=3, lr=0.1, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "3/3" in err and "loss=" in err


def make_model_np():
    return xmlp.MLP(2, 5, 1, rng=7)


class CountingLoss(xmlp.MSELoss):
    """Returns the loss wrapped so that every conversion to a Python float is counted."""

    conversions = 0

    def forward(self, y, t):
        return Counted(super().forward(y, t))


class Counted:
    def __init__(self, value):
        self.value = value

    def __mul__(self, other):
        return Counted(self.value * other)

    def __add__(self, other):
        return Counted(self.value + other.value)

    def __float__(self):
        CountingLoss.conversions += 1
        return float(self.value)


def test_loss_becomes_a_float_once_per_epoch():
    x, t = make_data(10)
    CountingLoss.conversions = 0
    history = xmlp.fit(make_model_np(), x, t, epochs=4, lr=0.1, batch_size=3,
                       loss=CountingLoss(), progress=False)
    assert len(history) == 4
    assert CountingLoss.conversions == 4  # not 16 (4 steps per epoch)


@pytest.mark.requires_backends("dask")
def test_dask_parameters_are_persisted_each_epoch():
    import dask.array as da
    x, t = make_data(16)
    model = xmlp.MLP(2, 5, 1, xp=da, rng=7)
    xs, ts = da.from_array(x, chunks=(4, 2)), da.from_array(t, chunks=(4, 1))
    xmlp.fit(model, xs, ts, epochs=3, lr=0.1, batch_size=4, progress=False)
    for name, p in model.named_parameters():
        # persisted: one in-memory task per chunk, not the graph of 12 SGD steps
        assert len(p.__dask_graph__()) == p.npartitions, name


# -- argument checks ---------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ({"epochs": 0}, ValueError),
    ({"epochs": -2}, ValueError),
    ({"epochs": 2.0}, TypeError),
    ({"epochs": True}, TypeError),
    ({"lr": -0.1}, ValueError),
    ({"lr": math.nan}, ValueError),
    ({"lr": "0.1"}, TypeError),
    ({"batch_size": 0}, ValueError),
    ({"batch_size": 1.5}, TypeError),
    ({"shuffle": "yes"}, TypeError),
    ({"progress": "yes"}, TypeError),
    ({"loss": object()}, TypeError),
    ({"rng": "seed"}, TypeError),
    ({"rng": -1}, ValueError),
    ({"callback": "stop"}, TypeError),
]


@pytest.mark.parametrize(("kwargs", "error"), BAD_ARGUMENTS,
                         ids=[next(iter(k)) + "=" + repr(next(iter(k.values())))
                              for k, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_rejected_before_training(kwargs, error):
    x, t = make_data(6)
    model = make_model_np()
    before = [p.copy() for p in model.parameters()]
    call = {"epochs": 2, "lr": 0.1, "progress": False, **kwargs}
    with pytest.raises(error):
        xmlp.fit(model, x, t, **call)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)
    assert model.linear1.x is None


def test_bad_data_are_rejected(xp):
    x, t = make_data()
    model = make_model(xp)
    before = host_params(xp, model)
    with pytest.raises(ValueError, match="10 samples but y has 9"):
        xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t[:9]), epochs=1, lr=0.1)
    with pytest.raises(TypeError, match="must be an array"):
        xmlp.fit(model, x.tolist(), xp.from_numpy(t), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="no samples"):
        xmlp.fit(model, xp.from_numpy(x[:0]), xp.from_numpy(t[:0]), epochs=1, lr=0.1)
    if xp.name != "numpy":
        with pytest.raises(TypeError, match="one namespace"):
            xmlp.fit(model, xp.from_numpy(x), t, epochs=1, lr=0.1)
    for p, q in zip(host_params(xp, model), before, strict=True):
        np.testing.assert_array_equal(p, q)


def test_a_first_step_the_model_rejects_leaves_it_unchanged(xp):
    x, t = make_data()
    model = make_model(xp)
    before = host_params(xp, model)
    with pytest.raises(ValueError, match="shape"):  # 3 features for a 2-input model
        xmlp.fit(model, xp.from_numpy(np.ones((10, 3))), xp.from_numpy(t), epochs=2, lr=0.1)
    with pytest.raises(ValueError, match="same shape"):  # the loss rejects (10, 2) targets
        xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(np.ones((10, 2))), epochs=2, lr=0.1)
    for p, q in zip(host_params(xp, model), before, strict=True):
        np.testing.assert_array_equal(p, q)
    assert model.linear1.x is None and model.linear2.output is None


def test_model_must_be_an_xmlp_module():
    x, t = make_data(4)

    class Duck:
        def forward(self, x):
            return x

        def backward(self, g):
            return g

        def update_params(self, lr):
            pass

    with pytest.raises(TypeError, match=r"xmlp\.Module"):
        xmlp.fit(Duck(), x, t, epochs=1, lr=0.1)
    with pytest.raises(TypeError, match="no forward"):
        xmlp.fit(object(), x, t, epochs=1, lr=0.1)


def test_fit_leaves_the_optimizer_state_where_it_is_between_epochs():
    """On NumPy persisting is a no-op: fit must not hand the optimizer its own state back (the
    optimizer would lay it out again, a copy of it all every epoch)."""
    gen = np.random.default_rng(0)
    x, y = gen.standard_normal((40, 3)), gen.standard_normal((40, 2))
    model = xmlp.MLP(3, 5, 2, rng=np.random.default_rng(1))
    opt = xmlp.optim.Adam(model, lr=1e-2)
    seen = []
    xmlp.fit(model, x, y, epochs=3, optimizer=opt, batch_size=16,
             callback=lambda epoch, history: seen.append(opt._state_arrays()))
    assert len(seen) == 3 and all(a is b for a, b in zip(seen[0], seen[2], strict=True))


def test_validation_is_evaluated_with_the_loss_predict_and_leaves_it_as_training_left_it():
    """fit evaluates validation data with the loss's predict (which stores nothing): after fit
    the loss still holds the last training batch, as backward() would need it; a loss with no
    predict is evaluated with forward."""
    gen = np.random.default_rng(3)
    x, y = gen.standard_normal((30, 3)), gen.standard_normal((30, 2))
    xv, yv = gen.standard_normal((7, 3)), gen.standard_normal((7, 2))
    model = xmlp.MLP(3, 4, 2, rng=np.random.default_rng(4))
    loss = xmlp.MSELoss()
    history = xmlp.fit(model, x, y, epochs=2, lr=0.05, loss=loss, batch_size=16,
                       validation_data=(xv, yv))
    assert loss.y.shape == (14, 2) and loss.t is not None  # the last batch of 30 by 16
    np.testing.assert_array_equal(loss.t, y[16:])
    expected = float(np.mean((model.predict(xv) - yv) ** 2))
    assert history.val_loss[-1] == pytest.approx(expected, rel=1e-12)

    class NoPredict:
        def __init__(self):
            self.inner, self.seen = xmlp.MSELoss(), []

        def forward(self, y_pred, t):
            self.seen.append(t.shape[0])
            return self.inner.forward(y_pred, t)

        def backward(self):
            return self.inner.backward()

    plain = NoPredict()
    xmlp.fit(model, x, y, epochs=1, lr=0.05, loss=plain, batch_size=16,
             validation_data=(xv, yv))
    assert plain.seen == [16, 14, 7]  # two training batches, then the validation set


# -- the learning rule, validation data and the parameter check: whole messages and values ----
def _fit_message(exc_type, **kwargs):
    x, t = make_data(6)
    call = {"epochs": 1, "progress": False, **kwargs}
    with pytest.raises(exc_type) as info:
        xmlp.fit(make_model_np(), x, t, **call)
    return str(info.value)


def test_fit_messages_about_lr_and_optimizer():
    """Neither lr nor optimizer, or both: the message says which to give, and with both it
    quotes the optimizer's own learning rate ('?' for an object without one)."""
    assert _fit_message(TypeError) == (
        "fit: give lr (plain SGD with that learning rate) or optimizer= (an xmlp.optim "
        "optimizer built on the model)")
    model = make_model_np()
    x, t = make_data(6)
    with pytest.raises(TypeError) as info:
        xmlp.fit(model, x, t, epochs=1, lr=0.1, optimizer=xmlp.optim.SGD(model, lr=0.25),
                 progress=False)
    assert str(info.value) == (
        "fit: give lr or optimizer, not both: the optimizer uses its own learning rate "
        "(SGD.lr = 0.25); set that instead")
    assert _fit_message(TypeError, lr=0.1, optimizer=object()) == (
        "fit: give lr or optimizer, not both: the optimizer uses its own learning rate "
        "(object.lr = ?); set that instead")


def test_fit_messages_about_validation_data():
    """validation_data that is not a pair, or arrays of a third namespace: the message names
    what was given."""
    import array_api_strict as strict

    x6, t6 = make_data(6)
    assert _fit_message(TypeError, lr=0.1, validation_data=(x6, strict.asarray(t6))) == (
        "fit: x_val and y_val must be arrays of one namespace, got numpy and array_api_strict "
        "arrays; convert both with numpy.asarray(...), the model's namespace")

    assert _fit_message(TypeError, lr=0.1, validation_data=5) == (
        "fit: validation_data must be a pair (x_val, y_val), got int")
    x, t = make_data(6)
    assert _fit_message(TypeError, lr=0.1, validation_data=(x, t, t)) == (
        "fit: validation_data must be a pair (x_val, y_val), got tuple")
    got = _fit_message(TypeError, lr=0.1,
                       validation_data=(strict.asarray(x), strict.asarray(t)))
    assert got == (
        "fit: validation_data must be arrays of the training data's namespace (or the model's, "
        "or Dask arrays), got array_api_strict arrays next to numpy training data; convert them "
        "with numpy.asarray(...)")
    # Dask training data streams into a NumPy model: the fix named is the model's namespace
    # (dask.array.asarray of array-api-strict data does not work)
    da = pytest.importorskip("dask.array", reason="Dask is not installed here")
    xd, td = da.from_array(x, chunks=3), da.from_array(t, chunks=3)
    with pytest.raises(TypeError) as info:
        xmlp.fit(make_model_np(), xd, td, lr=0.1, epochs=1, batch_size=3, progress=False,
                 validation_data=(strict.asarray(x), strict.asarray(t)))
    assert str(info.value) == (
        "fit: validation_data must be arrays of the training data's namespace (or the model's, "
        "or Dask arrays), got array_api_strict arrays next to dask.array training data; "
        "convert them with numpy.asarray(...)")


def _linear_1_1(xp, weight, bias):
    return xmlp.Linear(1, 1, initial_weights=xp.from_numpy(np.array([[weight]])),
                       initial_biases=xp.from_numpy(np.array([bias])))


def test_one_parameter_overflowing_in_the_last_step_is_caught(xp):
    """Only the weight overflows (to -inf) in the epoch's last step, the bias stays 0 and the
    epoch's loss (computed before the step) is finite: fit still reports the overflow and
    restores the parameters. x = [1, -1] with targets [-1, 1] makes the bias gradient exactly
    0 and the weight gradient 3."""
    x = xp.from_numpy(np.array([[1.0], [-1.0]]))
    t = xp.from_numpy(np.array([[-1.0], [1.0]]))
    model = _linear_1_1(xp, 0.5, 0.0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        xmlp.fit(model, x, t, epochs=2, lr=1e308, progress=False)
    assert str(info.value) == (
        "fit: the parameters overflowed to NaN or infinity in epoch 1 (its loss was 2.25); "
        "parameters restored to their initial values. Try a smaller learning rate.")
    assert list(info.value.history) == [2.25]
    assert [xp.to_numpy(p).tolist() for p in model.parameters()] == [[[0.5]], [0.0]]


def test_huge_finite_parameters_are_not_reported_as_overflowed(xp):
    """A weight of 1e308 and a bias of -1e308 are finite (and so is their sum): the model's
    output 1e308 * 1 - 1e308 = 0 fits the targets, and fit trains without complaint."""
    x = xp.from_numpy(np.ones((2, 1)))
    t = xp.from_numpy(np.zeros((2, 1)))
    model = _linear_1_1(xp, 1e308, -1e308)
    history = xmlp.fit(model, x, t, epochs=2, lr=0.1, progress=False)
    assert list(history) == [0.0, 0.0]
    assert [xp.to_numpy(p).tolist() for p in model.parameters()] == [[[1e308]], [-1e308]]


def test_fit_says_when_a_dask_sample_count_is_unknown():
    """Dask arrays after boolean indexing have a nan length: fit names the array (training or
    validation) and the fix. Runs wherever Dask is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x = da.from_array(np.linspace(-1, 1, 8).reshape(8, 1), chunks=4)
    y = da.from_array(np.zeros((8, 1)), chunks=4)
    keep = x[:, 0] > -2
    xu, yu = x[keep], y[keep]
    hint = (" is unknown (a Dask array with unknown chunk sizes?); call .compute_chunk_sizes() "
            "first.")
    for args, name in [((xu, y, None), "x"), ((x, yu, None), "y"), ((x, y, (xu, y)), "x_val"),
                       ((x, y, (x, yu)), "y_val")]:
        xa, ya, val = args
        with pytest.raises(ValueError) as info:
            xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), xa, ya, epochs=1, lr=0.1, batch_size=4,
                     validation_data=val, progress=False)
        assert str(info.value) == f"fit: the number of samples of {name}" + hint


def test_streamed_fit_takes_validation_data_of_the_model_or_of_dask():
    """A NumPy model: Dask training data with NumPy validation data, and NumPy training data
    with Dask validation data, both validate exactly as all-NumPy data do. Runs wherever Dask
    is installed."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = make_data(8, in_dim=1)
    xv, tv = make_data(6, in_dim=1, seed=1)
    ref = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, batch_size=4,
                   validation_data=(xv, tv), progress=False)
    streamed = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), da.from_array(x, chunks=4),
                        da.from_array(t, chunks=4), epochs=2, lr=0.1, batch_size=4,
                        validation_data=(xv, tv), progress=False)
    dask_val = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, batch_size=4,
                        validation_data=(da.from_array(xv, chunks=3),
                                         da.from_array(tv, chunks=3)), progress=False)
    for history in (streamed, dask_val):
        assert list(history) == pytest.approx(list(ref), rel=1e-12)
        assert history.val_loss == pytest.approx(ref.val_loss, rel=1e-12)


def test_streamed_validation_data_is_converted_and_checked_by_the_model():
    """Streamed data is converted to the model's dtype, data in memory is not: each is checked
    by the model as it reaches it. Validation data the model refuses is refused before the
    first step, in memory on its first batch, streamed on a stand-in of its chunks' shape and
    dtype: the model (parameters, stored activations and gradients) and the optimizer are left
    as they were."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = make_data(8, in_dim=1)
    xv, tv = make_data(6, in_dim=1, seed=1)

    def model32():
        return xmlp.MLP(1, 3, 1, rng=0, dtype="float32")

    x32, t32 = x.astype(np.float32), t.astype(np.float32)
    # float64 Dask validation data streams into the float32 model as float32: taken, and
    # validates as the same data in float32 does
    ref = xmlp.fit(model32(), x32, t32, epochs=2, lr=0.1, batch_size=4, progress=False,
                   validation_data=(xv.astype(np.float32), tv.astype(np.float32)))
    streamed = xmlp.fit(model32(), x32, t32, epochs=2, lr=0.1, batch_size=4, progress=False,
                        validation_data=(da.from_array(xv, chunks=3),
                                         da.from_array(tv, chunks=3)))
    assert streamed.val_loss == pytest.approx(ref.val_loss, rel=1e-6)
    # and float32 Dask validation data streams into a float64 model as float64
    ref64 = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, batch_size=4,
                     progress=False, validation_data=(xv, tv))
    val32 = (da.from_array(xv.astype(np.float32), chunks=3),
             da.from_array(tv.astype(np.float32), chunks=3))
    streamed64 = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, batch_size=4,
                          progress=False, validation_data=val32)
    assert streamed64.val_loss == pytest.approx(ref64.val_loss, rel=1e-6)
    # float64 Dask training data streams as float32; float64 NumPy validation data does not
    model = model32()
    before = [np.array(p) for p in model.parameters()]
    with pytest.raises(TypeError) as info:
        xmlp.fit(model, da.from_array(x, chunks=4), da.from_array(t, chunks=4), epochs=1,
                 lr=0.1, batch_size=4, progress=False, validation_data=(xv, tv))
    assert str(info.value) == (
        "fit: validation_data was refused: Linear(1, 3).predict: x has dtype float64 but the "
        "parameters are float32. Convert the input with numpy.astype(x, numpy.float32) or the "
        "model with .to(dtype=numpy.float64).")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # streamed validation data of the wrong shape: refused before the first step
    model = xmlp.MLP(1, 3, 1, rng=0)
    xmlp.fit(model, x, t, epochs=1, lr=0.1, progress=False)  # activations and gradients
    opt = xmlp.optim.Adam(model, lr=0.01)
    xmlp.fit(model, x, t, epochs=1, optimizer=opt, progress=False)  # Adam's state
    held = {name: (p, np.array(p)) for name, p in model.named_parameters()}
    attrs = {name: getattr(model.linear1, name) for name in ("x", "output", "grad_weights")}
    state = [[np.array(a) for a in arrays] for arrays in opt._state_arrays()]
    with pytest.raises(ValueError) as info:
        xmlp.fit(model, x, t, epochs=3, optimizer=opt, batch_size=4, progress=False,
                 validation_data=(da.from_array(np.hstack([xv, xv]), chunks=3),
                                  da.from_array(tv, chunks=3)))
    assert str(info.value).startswith(
        "fit: validation_data was refused: Linear(1, 3).predict: x must have shape (..., 1)")
    for name, p in model.named_parameters():
        assert p is held[name][0]
        np.testing.assert_array_equal(p, held[name][1])
    assert all(getattr(model.linear1, n) is a for n, a in attrs.items())
    assert opt.step_count == 1
    for arrays, kept in zip(opt._state_arrays(), state, strict=True):
        for a, b in zip(arrays, kept, strict=True):
            np.testing.assert_array_equal(a, b)


def test_dask_class_labels_validate_a_classifier_trained_in_memory():
    """Streamed integer labels keep their dtype (only floats take the model's): Dask labels,
    int64 or int32, validate a classifier trained on NumPy labels as the NumPy ones do."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    gen = np.random.default_rng(0)
    x, xv = gen.standard_normal((12, 3)), gen.standard_normal((6, 3))
    t, tv = ((a[:, 0] > 0).astype(np.int64) + 2 * (a[:, 1] > 0) for a in (x, xv))

    def run(val):
        return xmlp.fit(xmlp.MLP(3, 5, 4, rng=0), x, t, epochs=2, lr=0.1, batch_size=4,
                        loss=xmlp.CrossEntropyLoss(), progress=False, validation_data=val)

    ref = run((xv, tv))
    for labels in (tv, tv.astype(np.int32)):
        got = run((da.from_array(xv, chunks=3), da.from_array(labels, chunks=3)))
        assert got.val_loss == pytest.approx(ref.val_loss, rel=1e-12)
        assert got.val_accuracy == ref.val_accuracy


def test_validation_data_on_another_device_is_refused_before_training():
    """torch's meta device stands in for a GPU: validation data on another device than the
    model is refused by the model, on its first batch, before the first step."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, t = make_data(8, in_dim=1)
    xv, tv = make_data(6, in_dim=1, seed=1)
    model = xmlp.MLP(1, 3, 1, rng=0, xp=torch, dtype=torch.float64)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(TypeError) as info:
        xmlp.fit(model, torch.asarray(x), torch.asarray(t), epochs=1, lr=0.1, progress=False,
                 validation_data=(torch.asarray(xv, device="meta"), torch.asarray(tv)))
    message = str(info.value)
    assert message.startswith("fit: validation_data was refused: Linear(1, 3).predict: ")
    assert "meta" in message
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_batch_refused_in_the_first_epoch_leaves_the_model_as_it_was(xp):
    """A class label out of range in the third training batch, or in the second validation
    batch: refused before the first step (fit reads the labels whole where that is free), the
    model and optimizer as they were before the call."""
    if xp.name not in ("numpy", "array_api_strict", "torch") or xp.device not in (None, "cpu"):
        pytest.skip("labels are range-checked only where reading them costs nothing (NumPy, "
                    "array-api-strict, torch on the CPU)")
    gen = np.random.default_rng(0)
    x, xv = gen.standard_normal((12, 3)), gen.standard_normal((8, 3))
    t, tv = np.arange(12) % 4, np.arange(8) % 4
    bad_t, bad_tv = t.copy(), tv.copy()
    bad_t[9], bad_tv[6] = 7, 4
    ce = xmlp.CrossEntropyLoss()
    for labels, val_labels, where in ((bad_t, tv, "t holds the label 7"),
                                      (t, bad_tv, "validation_data was refused")):
        model = xmlp.MLP(3, 5, 4, rng=0, xp=xp.module, device=xp.device, dtype="float64")
        opt = xmlp.optim.Adam(model, lr=0.01)
        xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=1, batch_size=4,
                 optimizer=opt, loss=ce, progress=False)
        held = {name: (p, xp.to_numpy(p)) for name, p in model.named_parameters()}
        count = opt.step_count
        with pytest.raises(ValueError, match=where):
            xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(labels), epochs=2, batch_size=4,
                     optimizer=opt, loss=ce, progress=False,
                     validation_data=(xp.from_numpy(xv), xp.from_numpy(val_labels)))
        for name, p in model.named_parameters():
            assert p is held[name][0]
            np.testing.assert_array_equal(xp.to_numpy(p), held[name][1])
        assert opt.step_count == count


def test_validation_data_the_model_takes_is_taken():
    """No rule of fit's own: what the model and loss take as validation data, fit takes (a
    model without parameters next to data of another dtype, extra batch axes, class
    probabilities next to class indices)."""
    x, t = make_data(8, in_dim=2)
    xv, tv = make_data(6, in_dim=2, seed=1)
    history = xmlp.fit(xmlp.Tanh(), x.astype(np.float32), np.tanh(x.astype(np.float32)),
                       epochs=1, lr=0.1, progress=False,
                       validation_data=(xv, np.tanh(xv)))
    assert history.val_loss == [0.0]
    layer = xmlp.Linear(2, 1, rng=0)
    history = xmlp.fit(layer, x, t, epochs=1, lr=0.1, progress=False,
                       validation_data=(xv.reshape(3, 2, 2), tv.reshape(3, 2, 1)))
    assert history.val_loss[0] == pytest.approx(
        float(np.mean((layer.predict(xv) - tv) ** 2)), rel=1e-12)


def test_validation_data_in_memory_is_refused_before_the_first_step():
    """The model and loss see the first validation batch before anything trains: no training
    step runs when they refuse it (without that probe the refusal came after an epoch)."""

    class Counting(xmlp.MSELoss):
        steps = 0

        def forward(self, y, t):
            Counting.steps += 1
            return super().forward(y, t)

    x, t = make_data(8, in_dim=2)
    xv, tv = make_data(6, in_dim=2, seed=1)
    with pytest.raises(ValueError, match=r"validation_data was refused: \w+\.predict: y and t"):
        xmlp.fit(make_model_np(), x, t, epochs=3, lr=0.1, loss=Counting(), progress=False,
                 validation_data=(xv, tv[:, 0]))
    assert Counting.steps == 0
    xmlp.fit(make_model_np(), x, t, epochs=3, lr=0.1, loss=Counting(), progress=False,
             validation_data=(xv, tv))
    assert Counting.steps == 3


class _Counting(xmlp.CrossEntropyLoss):
    """CrossEntropyLoss counting its training steps (forward calls)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def forward(self, logits, t):
        self.steps += 1
        return super().forward(logits, t)


def _classes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    return gen.standard_normal((n, 3)), np.arange(n) % 4


def test_labels_past_the_first_batch_are_refused_before_training():
    """A class label out of range past the first batch, of the training or of the validation
    data, is refused before the first step: fit reads the labels whole (where that costs no
    sync), so no step runs and the model is as it was. The index is the label's in y."""
    x, t = _classes(12)
    xv, tv = _classes(8, seed=1)
    bad_t, bad_tv = t.copy(), tv.copy()
    bad_t[10], bad_tv[6] = 9, 9
    label = r"\w+\.predict: t holds the label 9 at index {}, outside \[0, 4\) for logits with 4"
    for labels, val_labels, message in (
            (bad_t, tv, label.format(10)),
            (t, bad_tv, "fit: validation_data was refused: " + label.format(6))):
        model, loss = xmlp.MLP(3, 5, 4, rng=0), _Counting()
        before = [np.array(p) for p in model.parameters()]
        with pytest.raises(ValueError, match=message):
            xmlp.fit(model, x, labels, epochs=2, lr=0.1, batch_size=4, loss=loss,
                     progress=False, validation_data=(xv, val_labels))
        assert loss.steps == 0
        assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters(),
                                                        strict=True))


def test_training_data_the_loss_refuses_is_refused_before_the_first_step():
    """The first training batch goes through model.predict and the loss's predict before any
    step: targets the loss refuses never reach its forward, and the model keeps what it
    stored (the activations of its last call) as it was."""
    x, t = _classes(12)
    model, loss = xmlp.MLP(3, 5, 4, rng=0), _Counting()
    xmlp.fit(model, x, t, epochs=1, lr=0.1, loss=loss, progress=False)
    stored, before = model.linear1.x, [np.array(p) for p in model.parameters()]
    with pytest.raises(ValueError, match=r"\w+\.predict: class indices t must have shape"):
        xmlp.fit(model, x, t[:, None], epochs=1, lr=0.1, loss=loss, progress=False)
    assert loss.steps == 1 and model.linear1.x is stored
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_masked_dask_validation_data_is_refused_in_fit_s_own_words():
    """Masked streamed validation data: adopt's message ("fit: ...") as it is, not prefixed
    again, before the first step (Dask's meta says the chunks are masked)."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = make_data(8, in_dim=2)
    xv, tv = make_data(6, in_dim=2, seed=1)
    model = make_model_np()
    before = [np.array(p) for p in model.parameters()]
    with pytest.raises(TypeError) as info:
        xmlp.fit(model, x, t, epochs=2, lr=0.1, batch_size=4, progress=False,
                 validation_data=(da.ma.masked_greater(da.from_array(xv, chunks=3), 1.0),
                                  da.from_array(tv, chunks=3)))
    assert str(info.value).startswith(
        "fit: a chunk of the Dask data is a numpy.ma.MaskedArray; xmlp layers ignore masks.")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_an_error_after_the_first_epoch_is_validated_undoes_nothing():
    """A callback that raises in epoch 1: the epoch was trained and validated, so it stays
    (only a streamed chunk refused in the first epoch undoes it)."""
    x, t = make_data(8, in_dim=2)
    xv, tv = make_data(6, in_dim=2, seed=1)
    trained = make_model_np()
    xmlp.fit(trained, x, t, epochs=1, lr=0.1, progress=False)
    model = make_model_np()

    def stop(epoch, history):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        xmlp.fit(model, x, t, epochs=3, lr=0.1, progress=False, callback=stop,
                 validation_data=(xv, tv))
    for p, q in zip(model.parameters(), trained.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_an_interrupted_first_step_leaves_the_model_as_it_was():
    """KeyboardInterrupt in the first step (here from the loss): the activations the model
    stored in that step are dropped again, as for a refused first step."""

    class Interrupting(xmlp.MSELoss):
        def forward(self, y, t):
            raise KeyboardInterrupt

    x, t = make_data(8, in_dim=2)
    model = make_model_np()
    with pytest.raises(KeyboardInterrupt):
        xmlp.fit(model, x, t, epochs=1, lr=0.1, loss=Interrupting(), progress=False)
    assert model.linear1.x is None and model.linear2.output is None


def _streamed_labels_refused(model, bad, **kwargs):
    """fit on 12 samples streamed in chunks of 4 with label 9 at index ``bad`` (a 4-class
    problem): the loss refuses it in the third batch, after two steps."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = _classes(12)
    t[bad] = 9
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="t holds the label 9"):
        xmlp.fit(model, da.from_array(x, chunks=4), da.from_array(t, chunks=4), epochs=2,
                 batch_size=4, loss=xmlp.CrossEntropyLoss(), progress=False, **kwargs)


@pytest.mark.parametrize("case", ["plain", "overflow", "nan"])
def test_a_streamed_chunk_refused_in_the_first_epoch_is_undone(case):
    """Streamed chunks are seen only as they are computed: a label out of range in the third
    chunk is refused after two steps changed the parameters in place (NumPy). Every initial
    value is written back into the same arrays, and stored activations and gradients are
    cleared. "overflow": a huge learning rate turns them into infinities and NaNs first; "nan":
    a NaN put into a weight by hand spreads to every parameter in the first step, and is
    written back too."""
    model = xmlp.MLP(3, 5, 4, rng=0)
    if case == "nan":
        model.linear1.weights[0, 0] = np.nan
    held = [(p, np.array(p)) for p in model.parameters()]
    _streamed_labels_refused(model, 10, lr=1e300 if case == "overflow" else 0.1)
    for (p, values), now in zip(held, model.parameters(), strict=True):
        assert now is p
        np.testing.assert_array_equal(now, values)  # NaN where values has NaN
    assert model.linear1.x is None and model.linear1.grad_weights is None


def test_a_streamed_refusal_puts_the_optimizer_back():
    """Adam after a first fit: a streamed training chunk, or a streamed validation chunk, refused
    in the first epoch puts the parameters, Adam's state and its step count back as they were
    before the call."""
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    x, t = _classes(12)
    xv, tv = _classes(8, seed=1)
    tv[6] = 9
    for val in (None, (da.from_array(xv, chunks=4), da.from_array(tv, chunks=4))):
        model = xmlp.MLP(3, 5, 4, rng=0)
        opt = xmlp.optim.Adam(model, lr=0.01)
        xmlp.fit(model, x, t, epochs=1, batch_size=4, optimizer=opt,
                 loss=xmlp.CrossEntropyLoss(), progress=False)
        held = {name: (p, np.array(p)) for name, p in model.named_parameters()}
        state = [[np.array(a) for a in arrays] for arrays in opt._state_arrays()]
        if val is None:
            _streamed_labels_refused(model, 10, optimizer=opt)
        else:
            with pytest.raises(ValueError, match=r"fit: validation_data was refused: .*label 9"):
                xmlp.fit(model, x, t, epochs=2, batch_size=4, optimizer=opt, progress=False,
                         loss=xmlp.CrossEntropyLoss(), validation_data=val)
        for name, p in model.named_parameters():
            assert p is held[name][0]
            np.testing.assert_array_equal(p, held[name][1])
        assert opt.step_count == 3
        for arrays, kept in zip(opt._state_arrays(), state, strict=True):
            for a, b in zip(arrays, kept, strict=True):
                np.testing.assert_array_equal(a, b)


def test_undo_leaves_parameters_it_did_not_change_alone():
    """Parameters the first epoch did not write in place are not written back: a read-only
    weight put in by hand (updated by rebinding, not in place) stays as it is, and the
    refusal of a streamed chunk is the loss's, not a failed write."""
    model = xmlp.MLP(3, 5, 4, rng=0)
    frozen = np.array(model.linear1.weights)
    frozen.flags.writeable = False
    model.linear1.weights = frozen
    _streamed_labels_refused(model, 10, lr=0.1)
    assert model.linear1.weights is frozen
