"""Early stopping (Keras' semantics, epochs counted from 1), callback objects and the History's
``stopped_epoch`` / ``best_epoch``; the best weights restored on every backend."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import xmlp
from tests.helpers import layer_kwargs, make_data, message, rejects
from xmlp.backend import to_host

X, T = make_data(20)


class Values(list):
    """A stand-in History: the training losses, and val_loss / accuracy lists."""

    def __init__(self):
        super().__init__()
        self.val_loss, self.accuracy, self.val_accuracy = [], [], []


def stops(values, key="val_loss", **kw):
    """Feed ``values`` to an EarlyStopping watching ``key`` (no weights to keep): (the epoch
    it stopped after or None, its best_epoch, its best)."""
    stop = xmlp.EarlyStopping(monitor=key, **kw)
    history = Values()
    for epoch, value in enumerate(values, start=1):
        (history if key == "loss" else getattr(history, key)).append(value)
        if stop.on_epoch_end(epoch, history):
            return epoch, stop.best_epoch, stop.best
    return None, stop.best_epoch, stop.best


# (values, keyword arguments, (stopped after, best epoch)): Keras' rules, epochs from 1
CASES = {
    "patience-0": ([1.0, 0.9, 0.95, 0.8], {}, (3, 2)),
    "patience-2": ([1.0, 0.9, 0.95, 0.96, 0.8], {"patience": 2}, (4, 2)),
    "patience-2-recovers": ([1.0, 0.9, 0.95, 0.85, 0.86, 0.87], {"patience": 2}, (6, 4)),
    "never-after-the-first-epoch": ([1.0], {}, (None, 1)),
    "equal-is-no-improvement": ([1.0, 1.0], {}, (2, 1)),
    "min-delta": ([1.0, 0.96, 0.9], {"min_delta": 0.05}, (2, 1)),
    "min-delta-beaten": ([1.0, 0.94, 0.9], {"min_delta": 0.05}, (3, 2)),
    "max-mode": ([0.5, 0.6, 0.55], {"mode": "max"}, (3, 2)),
    "baseline-not-beaten": ([0.9, 0.8, 0.85], {"baseline": 0.5, "patience": 2}, (3, 2)),
    "baseline-beaten": ([0.9, 0.4, 0.45], {"baseline": 0.5, "patience": 2}, (None, 2)),
    "start-from-epoch": ([5.0, 6.0, 1.0, 2.0], {"start_from_epoch": 2}, (4, 3)),
    "nan-is-no-improvement": ([1.0, math.nan, 0.5], {"patience": 2}, (None, 3)),
    "nan-counts-as-bad": ([1.0, math.nan, 0.5], {"patience": 1}, (2, 1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_keras_rules(case):
    values, kw, (stopped, best_epoch) = CASES[case]
    got_stopped, got_best_epoch, best = stops(values, **kw)
    assert (got_stopped, got_best_epoch) == (stopped, best_epoch)
    assert best == values[best_epoch - 1]


def test_auto_mode_maximizes_accuracies_and_minimizes_losses():
    assert stops([0.5, 0.6, 0.55], "val_accuracy")[:2] == (3, 2)
    assert stops([0.5, 0.6, 0.55], "accuracy")[:2] == (3, 2)
    assert stops([0.5, 0.6, 0.55], "loss")[:2] == (2, 1)
    assert stops([0.5, 0.4, 0.45], "val_loss", mode="min")[:2] == (3, 2)


def run(xp, epochs=60, **kw):
    """A fit with validation data (the last 5 samples) that overfits on 15 noisy samples."""
    model = xmlp.MLP(2, 16, 1, rng=0, **layer_kwargs(xp))
    kept: dict[int, list[np.ndarray]] = {}

    def remember(epoch, history):
        kept[epoch] = [to_host(p) for p in model.parameters()]

    x, t = xp.from_numpy(X), xp.from_numpy(T)
    opt = xmlp.optim.Adam(model, lr=0.05)
    history = xmlp.fit(model, x[:15, ...], t[:15, ...], epochs=epochs, optimizer=opt,
                       validation_data=(x[15:, ...], t[15:, ...]), callback=remember,
                       progress=False, **kw)
    return model, opt, history, kept


def test_restore_best_weights_puts_back_the_best_epoch(xp):
    stop = xmlp.EarlyStopping(patience=3, restore_best_weights=True)
    model, opt, history, kept = run(xp, early_stopping=stop)
    best = 1 + int(np.argmin(history.val_loss))
    assert history.best_epoch == best == stop.best_epoch
    assert history.stopped_epoch == len(history) == best + 3 < 60
    for got, want in zip(model.parameters(), kept[best], strict=True):
        np.testing.assert_array_equal(to_host(got), want)
    assert model.linear1.x is None and model.linear1.grad_weights is None
    assert opt.step_count == len(history)  # the optimizer is as the last epoch left it
    # the restored parameters are the best epoch's: their validation loss is the best
    loss = xmlp.MSELoss().predict(model.predict(xp.from_numpy(X[15:])), xp.from_numpy(T[15:]))
    assert float(loss) == pytest.approx(min(history.val_loss), rel=1e-9)


def test_best_weights_are_restored_also_when_training_runs_to_the_end():
    """As Keras 3: restore_best_weights restores at the end of training, stopped or not."""
    stop = xmlp.EarlyStopping(patience=1000, restore_best_weights=True)
    model, _, history, kept = run(_np(), epochs=40, early_stopping=stop)
    assert history.stopped_epoch is None and len(history) == 40
    best = 1 + int(np.argmin(history.val_loss))
    assert history.best_epoch == best < 40
    for got, want in zip(model.parameters(), kept[best], strict=True):
        np.testing.assert_array_equal(got, want)


def test_without_restoring_the_model_keeps_the_last_epoch():
    stop = xmlp.EarlyStopping(patience=3)
    model, _, history, kept = run(_np(), early_stopping=stop)
    assert history.stopped_epoch == len(history) == history.best_epoch + 3
    for got, want in zip(model.parameters(), kept[len(history)], strict=True):
        np.testing.assert_array_equal(got, want)


def test_monitoring_the_training_loss_and_accuracy():
    gen = np.random.default_rng(1)
    x, labels = gen.standard_normal((40, 3)), np.arange(40) % 3
    model = xmlp.MLP(3, 8, 3, rng=0)
    stop = xmlp.EarlyStopping(monitor="accuracy", patience=2)
    history = xmlp.fit(model, x, labels, epochs=200, optimizer=xmlp.optim.Adam(model, lr=0.05),
                       loss=xmlp.CrossEntropyLoss(), early_stopping=stop, progress=False)
    assert history.best_epoch == 1 + int(np.argmax(history.accuracy))
    stop = xmlp.EarlyStopping(monitor="loss", min_delta=1e-3, patience=0)
    history = xmlp.fit(xmlp.MLP(2, 5, 1, rng=0), X, T, epochs=500, lr=0.1,
                       early_stopping=stop, progress=False)
    assert history.stopped_epoch == len(history) < 500
    assert history[-2] - history[-1] <= 1e-3


def test_verbose_says_where_it_stopped_and_what_it_restored(capsys):
    stop = xmlp.EarlyStopping(patience=3, restore_best_weights=True, verbose=1)
    _, _, history, _ = run(_np(), early_stopping=stop)
    assert capsys.readouterr().out == (
        f"Epoch {history.stopped_epoch}: early stopping\n"
        f"Restoring model weights from the end of the best epoch: {history.best_epoch}.\n")


def test_an_early_stopping_object_starts_afresh_in_each_fit():
    stop = xmlp.EarlyStopping(patience=3, restore_best_weights=True)
    _, _, first, _ = run(_np(), early_stopping=stop)
    _, _, second, _ = run(_np(), early_stopping=stop)
    assert (second.stopped_epoch, second.best_epoch) == (first.stopped_epoch, first.best_epoch)


def test_an_early_stopping_in_callbacks_works_as_early_stopping():
    _, _, history, _ = run(_np(), callbacks=[xmlp.EarlyStopping(patience=3)])
    _, _, want, _ = run(_np(), early_stopping=xmlp.EarlyStopping(patience=3))
    assert (history.stopped_epoch, history.best_epoch) == (want.stopped_epoch, want.best_epoch)


# -- callback objects -----------------------------------------------------------------------
class Log(xmlp.Callback):
    def __init__(self, log, name, stop_at=None):
        self.log, self.name, self.stop_at = log, name, stop_at

    def on_train_begin(self, history):
        self.log.append((self.name, "begin", len(history), self.model is not None))

    def on_epoch_end(self, epoch, history):
        self.log.append((self.name, epoch, len(history)))
        return epoch == self.stop_at

    def on_train_end(self, history):
        self.log.append((self.name, "end", len(history)))


def test_callbacks_run_in_order_every_epoch_and_any_can_stop():
    log: list = []

    def function(epoch, history):
        log.append(("function", epoch, len(history)))

    history = xmlp.fit(xmlp.MLP(2, 5, 1, rng=0), X, T, epochs=10, lr=0.1, progress=False,
                       callbacks=[Log(log, "a"), Log(log, "b", stop_at=2)], callback=function)
    assert log == [("a", "begin", 0, True), ("b", "begin", 0, True),
                   ("a", 1, 1), ("b", 1, 1), ("function", 1, 1),
                   ("a", 2, 2), ("b", 2, 2), ("function", 2, 2),
                   ("a", "end", 2), ("b", "end", 2)]
    assert (len(history), history.stopped_epoch, history.best_epoch) == (2, 2, None)


def test_an_object_with_on_epoch_end_alone_is_a_callback():
    class Counter:
        calls = 0

        def on_epoch_end(self, epoch, history):
            Counter.calls += 1

    history = xmlp.fit(xmlp.MLP(2, 5, 1, rng=0), X, T, epochs=3, lr=0.1, progress=False,
                       callbacks=(Counter(),))
    assert Counter.calls == 3 and history.stopped_epoch is None


def test_the_plain_callback_function_sets_stopped_epoch():
    history = xmlp.fit(xmlp.MLP(2, 5, 1, rng=0), X, T, epochs=10, lr=0.1, progress=False,
                       callback=lambda epoch, history: epoch == 4)
    assert (len(history), history.stopped_epoch) == (4, 4)


def test_no_on_train_end_after_an_error():
    log: list = []
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError):
        xmlp.fit(xmlp.MLP(2, 5, 1, rng=0), X, T, epochs=50, lr=1e30, progress=False,
                 callbacks=[Log(log, "a")])
    assert ("a", "end", 1) not in log and log[0] == ("a", "begin", 0, True)


# -- what fit and EarlyStopping refuse --------------------------------------------------------
def test_fit_refuses_what_early_stopping_cannot_monitor():
    model = xmlp.MLP(2, 5, 1, rng=0)
    assert rejects(ValueError, model, lambda: xmlp.fit(
        model, X, T, epochs=3, lr=0.1, early_stopping=xmlp.EarlyStopping(),
        progress=False)) == (
        "fit: EarlyStopping monitors 'val_loss', which fit records only with "
        "validation_data; pass validation_data=(x_val, y_val), or monitor 'loss'")
    assert rejects(ValueError, model, lambda: xmlp.fit(
        model, X, T, epochs=3, lr=0.1, callbacks=[xmlp.EarlyStopping(monitor="accuracy")],
        progress=False)) == (
        "fit: EarlyStopping monitors 'accuracy', which fit records only for a classifier "
        "(loss=xmlp.CrossEntropyLoss())")


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"early_stopping": "val_loss"}, TypeError,
     "fit: early_stopping must be None or an xmlp.EarlyStopping, got str"),
    ({"callbacks": Log([], "a")}, TypeError,
     "fit: callbacks must be a list of callback objects, got Log"),
    ({"callbacks": [print]}, TypeError,
     "fit: callbacks[0] (builtin_function_or_method) has no on_epoch_end(epoch, history) "
     "method; subclass xmlp.Callback, or pass a function as callback="),
])
def test_fit_refuses_bad_callbacks(kwargs, error, text):
    model = xmlp.MLP(2, 5, 1, rng=0)
    assert rejects(error, model, lambda: xmlp.fit(model, X, T, epochs=3, lr=0.1,
                                                  progress=False, **kwargs)) == text


def test_fit_refuses_a_callback_given_twice():
    stop = xmlp.EarlyStopping(monitor="loss")
    model = xmlp.MLP(2, 5, 1, rng=0)
    for kwargs in ({"early_stopping": stop, "callbacks": [stop]}, {"callbacks": [stop, stop]}):
        assert rejects(ValueError, model, lambda kwargs=kwargs: xmlp.fit(
            model, X, T, epochs=3, lr=0.1, progress=False, **kwargs)) == (
            "fit: a callback object is given twice (in early_stopping= and callbacks=, or "
            "twice in callbacks=): it would count each epoch twice")


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"monitor": "val_acc"}, ValueError, "EarlyStopping: monitor must be one of loss, "
     "val_loss, accuracy, val_accuracy (the lists of fit's History), got 'val_acc'"),
    ({"mode": "lowest"}, ValueError, "EarlyStopping: mode must be 'auto', 'min' or 'max'"),
    ({"patience": -1}, ValueError, "EarlyStopping: patience must be an int >= 0, got -1"),
    ({"patience": 2.5}, TypeError, "EarlyStopping: patience must be an int >= 0, got 2.5"),
    ({"min_delta": -0.1}, ValueError, "EarlyStopping: min_delta must be a finite number >= 0"),
    ({"min_delta": math.nan}, ValueError,
     "EarlyStopping: min_delta must be a finite number >= 0, got nan"),
    ({"baseline": "x"}, TypeError, "EarlyStopping: baseline must be a real number"),
    ({"restore_best_weights": 1}, TypeError,
     "EarlyStopping: restore_best_weights must be True or False, got 1"),
    ({"verbose": 2}, ValueError, "EarlyStopping: verbose must be 0 or 1, got 2"),
    ({"verbose": "1"}, TypeError, "EarlyStopping: verbose must be 0 or 1, got '1'"),
    ({"verbose": 1.0}, TypeError, "EarlyStopping: verbose must be 0 or 1, got 1.0"),
    ({"verbose": 1 + 0j}, TypeError, "EarlyStopping: verbose must be 0 or 1, got (1+0j)"),
    ({"verbose": np.array(1)}, TypeError, "EarlyStopping: verbose must be 0 or 1, got "
     "array(1)"),
    ({"patience": 10**5000}, ValueError, f"EarlyStopping: patience must be an int >= 0 up to "
     f"{sys.maxsize}, got <an int of 16610 bits>"),
    ({"start_from_epoch": 10**400}, ValueError, f"EarlyStopping: start_from_epoch must be an "
     f"int >= 0 up to {sys.maxsize}, got 1000"),
    ({"start_from_epoch": -2}, ValueError, "EarlyStopping: start_from_epoch must be an int"),
])
def test_early_stopping_refuses_bad_arguments(kwargs, error, text):
    assert message(error, lambda: xmlp.EarlyStopping(**kwargs)).startswith(text)


@pytest.mark.parametrize(("verbose", "level"), [(True, 1), (False, 0), (np.int64(1), 1),
                                              (1, 1), (0, 0)])
def test_verbose_is_an_int_and_a_bool_is_one(verbose, level):
    """As in Keras, where verbose is an int and Python's True is 1."""
    stop = xmlp.EarlyStopping(verbose=verbose)
    assert type(stop.verbose) is int and stop.verbose == level


def test_repr():
    assert repr(xmlp.EarlyStopping(patience=3, restore_best_weights=True)) == (
        "EarlyStopping(monitor='val_loss', min_delta=0.0, patience=3, mode='auto', "
        "restore_best_weights=True)")


def _np():
    from tests.conftest import Backend

    return Backend("numpy", np, np)


def test_restoring_needs_the_model_fit_sets():
    stop = xmlp.EarlyStopping(monitor="loss", restore_best_weights=True)
    history = Values()
    history.append(1.0)
    assert message(RuntimeError, lambda: stop.on_epoch_end(1, history)).startswith(
        "EarlyStopping: restore_best_weights keeps the model's parameters, but no model was "
        "set")


@pytest.mark.parametrize("name", ["min_delta", "baseline"])
def test_early_stopping_refuses_a_number_beyond_the_float_range(name):
    with pytest.raises(ValueError, match=f"EarlyStopping: {name} must be a finite number"):
        xmlp.EarlyStopping(**{name: 10**400})
