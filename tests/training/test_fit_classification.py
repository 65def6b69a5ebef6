"""fit with an optimizer, validation data and CrossEntropyLoss on every backend; History; the
restore of parameters and optimizer state on a non-finite epoch; bad arguments; models on Dask."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.helpers import make_data as regression_data
from tests.helpers import rejects
from tests.reference import adam_reference, cross_entropy, sgd_reference

N, IN, HIDDEN, CLASSES = 12, 3, 5, 4


def make_data(seed: int = 0, n: int = N):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, IN))
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)  # learnable: 4 classes
    return x, labels


def make_model(xp, seed=7):
    return xmlp.MLP(IN, HIDDEN, CLASSES, xp=xp.module, device=xp.device, dtype="float64",
                    rng=seed)


def mlp_ce_grads(params, x, t):
    """Loss, logits and gradients of the seed's MLP under cross-entropy, in NumPy float64."""
    w1, b1, w2, b2 = params
    a = np.tanh(x @ w1.T + b1)
    z = a @ w2.T + b2
    loss, gz = cross_entropy(z, t)
    ga = gz @ w2
    gh = ga * (1 - a * a)
    return loss, z, [gh.T @ x, gh.sum(0), gz.T @ a, gz.sum(0)]


def reference_fit(start, x, t, xv, tv, *, epochs, batch_size, optimizer, **kwargs):
    """fit's promise, in NumPy float64. The reference optimizers take every step's gradients
    at once, so each step replays them all from the start."""
    params = [np.array(p, dtype=np.float64) for p in start]
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    all_grads = []
    n = x.shape[0]
    for _ in range(epochs):
        total = hits = 0.0
        for i in range(0, n, batch_size):
            xb, tb = x[i:i + batch_size], t[i:i + batch_size]
            loss, z, grads = mlp_ce_grads(params, xb, tb)
            all_grads.append(grads)
            total += loss * xb.shape[0] / n
            hits += (z.argmax(-1) == tb).sum()
            params = step_reference(start, all_grads, optimizer, **kwargs)
        history["loss"].append(total)
        history["accuracy"].append(hits / n)
        val_loss, zv, _ = mlp_ce_grads(params, xv, tv)
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append((zv.argmax(-1) == tv).mean())
    return history, params


def step_reference(params, grads, optimizer, lr, **kwargs):
    lrs = [lr] * len(grads)
    if optimizer == "SGD":
        return sgd_reference(params, grads, lrs, **kwargs)[0]
    return adam_reference(params, grads, lrs, decoupled=optimizer == "AdamW", **kwargs)[0]


@pytest.mark.parametrize(("name", "kwargs"), [("Adam", {"lr": 0.05}),
                                              ("SGD", {"lr": 0.2, "momentum": 0.9})])
def test_fit_with_an_optimizer_matches_reference(xp, name, kwargs):
    x, t = make_data()
    xv, tv = make_data(seed=1, n=8)
    model = make_model(xp)
    start = [xp.to_numpy(p) for p in model.parameters()]
    opt = getattr(xmlp.optim, name)(model, **kwargs)
    history = xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=3, optimizer=opt,
                       loss=xmlp.CrossEntropyLoss(), batch_size=5,
                       validation_data=(xp.from_numpy(xv), xp.from_numpy(tv)), progress=False)
    want, params = reference_fit(start, x, t, xv, tv, epochs=3, batch_size=5,
                                 optimizer=name, **kwargs)
    assert isinstance(history, list) and isinstance(history, xmlp.History)
    assert opt.step_count == 9  # batches of 5, 5 and 2, three epochs
    for key in ("val_loss", "accuracy", "val_accuracy"):
        values = getattr(history, key)
        assert len(values) == 3 and all(type(v) is float for v in values)
        np.testing.assert_allclose(values, want[key], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(list(history), want["loss"], rtol=1e-10)
    for got, ref in zip(model.parameters(), params, strict=True):
        np.testing.assert_allclose(xp.to_numpy(got), ref, rtol=1e-10, atol=1e-12)


def test_probability_targets_and_accuracy(xp):
    x, t = make_data()
    onehot = np.eye(CLASSES)[t]
    histories = []
    for target in (xp.from_numpy(t), xp.from_numpy(onehot)):
        model = make_model(xp)
        histories.append(xmlp.fit(model, xp.from_numpy(x), target, epochs=2,
                                  optimizer=xmlp.optim.Adam(model, lr=0.05),
                                  loss=xmlp.CrossEntropyLoss(), progress=False,
                                  validation_data=(xp.from_numpy(x), target)))
    by_index, by_probs = histories
    np.testing.assert_allclose(list(by_probs), list(by_index), rtol=1e-12)
    assert by_probs.accuracy == by_index.accuracy and by_probs.val_accuracy == by_index.val_accuracy


def test_regression_history_has_no_accuracy(xp):
    x = xp.from_numpy(np.linspace(-1, 1, 10)[:, None])
    y = xp.from_numpy(np.linspace(-1, 1, 10)[:, None] ** 2)
    model = xmlp.MLP(1, 4, 1, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    history = xmlp.fit(model, x, y, epochs=2, lr=0.1, validation_data=(x, y), progress=False)
    assert history.accuracy == [] and history.val_accuracy == [] and len(history.val_loss) == 2
    plain = xmlp.fit(model, x, y, epochs=2, lr=0.1, progress=False)
    assert plain.val_loss == [] and history == list(history)
    # the validation loss is the loss of the parameters at the end of the epoch
    np.testing.assert_allclose(history.val_loss[-1], plain[0], rtol=1e-12)


class PoisonedCE(xmlp.CrossEntropyLoss):
    """Cross-entropy whose logits turn NaN from the ``poison``-th forward call on."""

    def __init__(self, poison: int) -> None:
        super().__init__()
        self.calls = 0
        self.poison = poison

    def forward(self, logits, t):
        self.calls += 1
        if self.calls >= self.poison:
            logits = logits * math.nan
        return super().forward(logits, t)


def test_non_finite_epoch_restores_the_optimizer_state(xp):
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    model_a = make_model(xp)
    opt_a = xmlp.optim.Adam(model_a, lr=0.05)
    xmlp.fit(model_a, xs, ts, epochs=2, optimizer=opt_a, loss=xmlp.CrossEntropyLoss(),
             batch_size=5, progress=False, compile=False)  # eager, as with PoisonedCE
    model_b = make_model(xp)
    opt_b = xmlp.optim.Adam(model_b, lr=0.05)
    with pytest.raises(FloatingPointError, match="parameters and optimizer state restored "
                                                 "after epoch 2") as info:
        xmlp.fit(model_b, xs, ts, epochs=4, optimizer=opt_b, loss=PoisonedCE(poison=8),
                 batch_size=5, progress=False)
    history = info.value.history
    assert isinstance(history, xmlp.History) and len(history) == 3 and math.isnan(history[-1])
    assert opt_b.step_count == opt_a.step_count == 6
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(a), xp.to_numpy(b))
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    for name, entry in sa["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(sb["state"][name][key], value)
    # and training goes on from there as if the bad epoch never happened
    for model, opt in ((model_a, opt_a), (model_b, opt_b)):
        xmlp.fit(model, xs, ts, epochs=1, optimizer=opt, loss=xmlp.CrossEntropyLoss(),
                 batch_size=5, progress=False)
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(a), xp.to_numpy(b))


def test_out_of_range_labels_in_fit(xp):
    x, t = make_data()
    t[4] = CLASSES  # one label too many
    model = make_model(xp)
    opt = xmlp.optim.Adam(model, lr=0.05)
    call = lambda: xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=2,  # noqa: E731
                            optimizer=opt, loss=xmlp.CrossEntropyLoss(), progress=False)
    if xp.name in ("numpy", "array_api_strict", "torch:cpu"):
        rejects(ValueError, model, call, "label 4 at index 4")
        assert opt.step_count == 0
    else:
        start = [xp.to_numpy(p) for p in model.parameters()]
        with pytest.raises(FloatingPointError, match="epoch 1 is nan"):
            call()
        for a, b in zip(model.parameters(), start, strict=True):
            np.testing.assert_array_equal(xp.to_numpy(a), b)


# -- bad arguments ------------------------------------------------------------------------------
def test_fit_rejects_bad_optimizer_arguments(xp):
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    model = make_model(xp)
    opt = xmlp.optim.Adam(model)
    ce = xmlp.CrossEntropyLoss()
    rejects(TypeError, model, lambda: xmlp.fit(model, xs, ts, epochs=1, loss=ce),
            "lr", "optimizer")
    rejects(TypeError, model, lambda: xmlp.fit(model, xs, ts, epochs=1, lr=0.1, optimizer=opt,
                                               loss=ce), "not both", "Adam.lr")
    other = xmlp.optim.Adam(make_model(xp, seed=8))
    rejects(ValueError, model, lambda: xmlp.fit(model, xs, ts, epochs=1, optimizer=other,
                                                loss=ce), "another model")
    rejects(TypeError, model, lambda: xmlp.fit(model, xs, ts, epochs=1, optimizer="adam",
                                               loss=ce), "xmlp.optim", "str")
    assert opt.step_count == 0 and other.step_count == 0


def test_fit_rejects_bad_validation_data(xp):
    x, t = make_data()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)
    model = make_model(xp)
    opt = xmlp.optim.SGD(model, lr=0.1)
    ce = xmlp.CrossEntropyLoss()

    def fit(validation):
        return lambda: xmlp.fit(model, xs, ts, epochs=1, optimizer=opt, loss=ce,
                                validation_data=validation)

    rejects(TypeError, model, fit(xs), "validation_data", "pair")
    rejects(TypeError, model, fit((xs, ts, ts)), "pair")
    rejects(ValueError, model, fit((xs, ts[:3])), "x_val has 12 samples but y_val has 3")
    rejects(TypeError, model, fit((xs, [1, 2])), "y_val must be an array")
    other = np.asarray(x) if xp.name != "numpy" else pytest.importorskip("array_api_strict") \
        .asarray(x)
    other_t = np.asarray(t) if xp.name != "numpy" else pytest.importorskip("array_api_strict") \
        .asarray(t)
    rejects(TypeError, model, fit((other, other_t)), "namespace")
    # validation runs after the first epoch: data the model or loss refuses is refused on its
    # first batch before anything trains, the model and optimizer as they were
    xv, tv = make_data(seed=1, n=5)
    refused = "fit: validation_data was refused: "
    rejects(ValueError, model, fit((xp.from_numpy(xv[:, :2]), xp.from_numpy(tv))), refused,
            "Linear(3, 5).predict: x must have shape (..., 3)", "got (5, 2)")
    rejects(ValueError, model, fit((xp.from_numpy(xv), xp.from_numpy(tv[:, None]))), refused,
            "CrossEntropyLoss.predict: class indices t must have shape")
    rejects(TypeError, model, fit((xp.from_numpy(xv, "float32"), xp.from_numpy(tv))), refused,
            "x has dtype float32 but the parameters are float64")
    rejects(TypeError, model, fit((xp.from_numpy(xv), xp.from_numpy(tv, "float64"))), refused,
            "holds class indices but has the floating dtype float64")
    assert opt.step_count == 0
    # class labels of another integer dtype, signed or not, and class probabilities are taken,
    # as the loss takes them
    for labels in (xp.from_numpy(tv, "int32"), xp.from_numpy(tv, "uint8"),
                   xp.from_numpy(np.eye(CLASSES)[tv])):
        history = xmlp.fit(model, xs, ts, epochs=1, optimizer=opt, loss=ce, progress=False,
                           validation_data=(xp.from_numpy(xv), labels))
        assert len(history.val_loss) == 1
    assert opt.step_count == 3


def test_dask_persists_within_long_epochs(monkeypatch):
    """On Dask the parameters and the optimizer's state are persisted every few steps of an
    epoch, not only at its end: otherwise each step's graph building grows with the steps
    before it."""
    da = pytest.importorskip("dask.array")
    import xmlp.training.epoch

    calls = []
    real = xmlp.training.epoch.persist_parameters

    def counting(model, *extra):
        calls.append(len(extra))
        return real(model, *extra)

    monkeypatch.setattr(xmlp.training.epoch, "persist_parameters", counting)
    x, t = make_data(n=20)
    model = xmlp.MLP(IN, HIDDEN, CLASSES, xp=da, dtype="float64", rng=7)
    opt = xmlp.optim.Adam(model, lr=0.05)
    xmlp.fit(model, da.from_array(x, chunks=(10, IN)), da.from_array(t, chunks=10), epochs=1,
             optimizer=opt, loss=xmlp.CrossEntropyLoss(), batch_size=2, progress=False)
    steps = xmlp.training.epoch.PERSIST_STEPS
    assert len(calls) == 1 + (10 - 1) // steps  # within the epoch, and once at its end
    assert all(n == 2 + 8 for n in calls[:-1])  # loss and hits sums, Adam's 2 x 4 arrays
    assert all(len(p.dask) == 1 for p in model.parameters())  # persisted: one layer each


def test_accuracy_counts_the_last_axis_with_any_integer_labels():
    """fit's accuracy counts the samples whose largest logit is at the label: for logits
    (N, T, C), whose class axis is the last one, with int32 class indices (argmax gives
    int64) and with class probabilities alike."""
    gen = np.random.default_rng(21)
    x, t = gen.standard_normal((40, 3, 4)), gen.integers(0, 5, (40, 3))
    model = xmlp.Linear(4, 5, rng=0)
    want = float(np.mean(np.argmax(model.predict(x), axis=-1) == t))
    for labels in (t.astype(np.int32), t.astype(np.int8), np.eye(5)[t]):
        # lr = 0: the weights stay, so the epoch's predictions are model.predict(x)
        history = xmlp.fit(model, x, labels, epochs=1, lr=0.0, loss=xmlp.CrossEntropyLoss(),
                           progress=False, validation_data=(x, labels))
        assert history.accuracy == [pytest.approx(want)]
        assert history.val_accuracy == [pytest.approx(want)]
    assert 0 < want < 1


# -- validation data and the shuffle -----------------------------------------------------------
def test_validation_draws_nothing_from_the_shuffling_generator():
    """Validation batches are taken in order: with shuffle=True and a seed, training with
    validation data visits the same orders, and ends with the same weights, as without it."""
    x, t = regression_data(10)
    xv, tv = regression_data(7, seed=1)
    kwargs = {"epochs": 3, "lr": 0.1, "batch_size": 3, "shuffle": True, "rng": 5,
              "progress": False}
    plain_model, val_model = xmlp.MLP(2, 5, 1, rng=7), xmlp.MLP(2, 5, 1, rng=7)
    plain = xmlp.fit(plain_model, x, t, **kwargs)
    validated = xmlp.fit(val_model, x, t, validation_data=(xv, tv), **kwargs)
    assert list(validated) == list(plain)
    for p, q in zip(val_model.parameters(), plain_model.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert len(validated.val_loss) == 3


# -- models on Dask ----------------------------------------------------------------------------
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
    x, t = regression_data(16)
    model = xmlp.MLP(2, 5, 1, xp=da, rng=7)
    opt = xmlp.optim.Adam(model, lr=0.01)
    xmlp.fit(model, da.from_array(x, chunks=(4, 2)), da.from_array(t, chunks=(4, 1)),
             epochs=2, optimizer=opt, batch_size=4, progress=False)
    state = opt._state_arrays()
    assert len(state) == 8  # two arrays for each of the 4 parameters
    for a in state:
        assert len(a.__dask_graph__()) == a.npartitions
