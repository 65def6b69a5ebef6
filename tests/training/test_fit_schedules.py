"""fit with a learning-rate schedule and gradient clipping, on every backend: the same
parameters as the loop a PyTorch user writes by hand (steps, ``scheduler.step()`` after each
epoch or batch, ``clip_grad_norm`` between backward and the update), what fit checks first,
and what it puts back after a failed epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.helpers import PoisonedLoss, layer_kwargs, make_data, message, rejects
from xmlp.backend import to_host

TOL = {"rtol": 1e-10, "atol": 1e-12}
X, T = make_data(20)  # (20, 2), (20, 1)


def build(xp, opt_name="Adam", **opt_kw):
    model = xmlp.MLP(2, 5, 1, rng=0, **layer_kwargs(xp))
    opt_kw = opt_kw or {"lr": 0.05}
    return model, getattr(xmlp.optim, opt_name)(model, **opt_kw)


SCHEDULES = {
    "cosine": (lambda opt: xmlp.optim.CosineAnnealingLR(opt, T_max=6, eta_min=0.001), {}),
    "step": (lambda opt: xmlp.optim.StepLR(opt, step_size=2, gamma=0.5), {}),
    "warmup": (lambda opt: xmlp.optim.LinearLR(opt, start_factor=0.2, total_iters=3), {}),
    "onecycle": (lambda opt: xmlp.optim.OneCycleLR(opt, max_lr=0.1, epochs=6,
                                                   steps_per_epoch=3), {}),
    "onecycle-sgd": (lambda opt: xmlp.optim.OneCycleLR(opt, max_lr=0.2, total_steps=18),
                     {"opt": ("SGD", {"lr": 0.1, "momentum": 0.9})}),
    "plateau": (lambda opt: xmlp.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0), {}),
}


def by_hand(xp, name, epochs=6, batch_size=7, clip=None, validation=False):
    """The loop of a torch user: per batch forward, backward, (clip), step (and a per-batch
    schedule's step); per epoch the schedule's step (ReduceLROnPlateau on the validation loss
    with the parameters at the end of the epoch, as fit evaluates it)."""
    make, extra = SCHEDULES[name]
    opt_name, opt_kw = extra.get("opt", ("Adam", {}))
    model, opt = build(xp, opt_name, **opt_kw)
    scheduler = make(opt)
    loss = xmlp.MSELoss()
    x, t = xp.from_numpy(X), xp.from_numpy(T)
    rates = []
    for _ in range(epochs):
        rates.append(opt.lr)
        epoch_loss = 0.0
        for start in range(0, 20, batch_size):
            stop = min(start + batch_size, 20)
            xb, tb = x[start:stop, ...], t[start:stop, ...]
            value = loss.forward(model.forward(xb), tb)
            model.backward(loss.backward())
            if clip is not None:
                xmlp.clip_grad_norm(model, clip)
            opt.step()
            epoch_loss += float(value) * xb.shape[0] / 20
            if scheduler.per_step:
                scheduler.step()
        if isinstance(scheduler, xmlp.optim.ReduceLROnPlateau):
            metric = float(loss.predict(model.predict(x[15:, ...]), t[15:, ...])) \
                if validation else epoch_loss
            scheduler.step(metric)
        elif not scheduler.per_step:
            scheduler.step()
    return model, opt, scheduler, rates


def with_fit(xp, name, epochs=6, batch_size=7, clip=None, validation=False, **kw):
    make, extra = SCHEDULES[name]
    opt_name, opt_kw = extra.get("opt", ("Adam", {}))
    model, opt = build(xp, opt_name, **opt_kw)
    scheduler = make(opt)
    rates = []
    x, t = xp.from_numpy(X), xp.from_numpy(T)
    val = (x[15:, ...], t[15:, ...]) if validation else None
    history = xmlp.fit(model, x, t, epochs=epochs, batch_size=batch_size, optimizer=opt,
                       scheduler=scheduler, clip_grad_norm=clip, progress=False,
                       validation_data=val,
                       callbacks=[_Rates(opt, rates)], **kw)
    return model, opt, scheduler, rates, history


class _Rates(xmlp.Callback):
    """Records the rate each epoch trained with (callbacks run before the schedule's step)."""

    def __init__(self, opt, rates):
        self.opt, self.rates = opt, rates

    def on_epoch_end(self, epoch, history):
        self.rates.append(self.opt.lr)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_fit_with_a_schedule_is_the_loop_by_hand(xp, name):
    want_model, want_opt, want_sched, want_rates = by_hand(xp, name)
    model, opt, scheduler, rates, _ = with_fit(xp, name)
    if scheduler.per_step:  # recorded after the epoch's last batch stepped it
        want_rates = [*want_rates[1:], opt.lr]
    assert rates == pytest.approx(want_rates, rel=1e-12)
    assert len(set(rates)) > 1
    assert opt.lr == pytest.approx(want_opt.lr, rel=1e-12)
    assert scheduler.state_dict() == want_sched.state_dict() or name == "plateau"
    for got, want in zip(model.parameters(), want_model.parameters(), strict=True):
        np.testing.assert_allclose(to_host(got), to_host(want), **TOL)


def test_plateau_steps_on_the_validation_loss_or_the_training_loss():
    """ReduceLROnPlateau sees each epoch's validation loss when there is validation data,
    else its training loss."""
    class Spy(xmlp.optim.ReduceLROnPlateau):
        def step(self, metrics):
            self.seen.append(metrics)
            super().step(metrics)

    for validation in (True, False):
        model, opt = build(_np())
        val = (X[15:], T[15:]) if validation else None
        spy = Spy(opt, patience=0)
        spy.seen = []
        history = xmlp.fit(model, X, T, epochs=5, batch_size=7, optimizer=opt,
                           scheduler=spy, validation_data=val, progress=False)
        assert spy.seen == (history.val_loss if validation else list(history))


@pytest.mark.parametrize("name", ["plateau", "cosine"])
def test_plateau_and_cosine_equal_by_hand_with_validation(name):
    xp = _np()
    want_model, want_opt, _, _ = by_hand(xp, name, validation=True)
    model, opt, _, _, _ = with_fit(xp, name, validation=True)
    assert opt.lr == pytest.approx(want_opt.lr, rel=1e-12)
    for got, want in zip(model.parameters(), want_model.parameters(), strict=True):
        np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("name", ["cosine", "onecycle"])
def test_clipping_in_fit_is_clip_grad_norm_before_each_update(xp, name):
    """clip_grad_norm= clips every step's gradients (to a norm small enough that every step
    is clipped) before the update, as the loop by hand does."""
    want_model, *_ = by_hand(xp, name, clip=0.05)
    model, *_ = with_fit(xp, name, clip=0.05)
    unclipped, *_ = with_fit(xp, name)
    for got, want, free in zip(model.parameters(), want_model.parameters(),
                               unclipped.parameters(), strict=True):
        np.testing.assert_allclose(to_host(got), to_host(want), **TOL)
        assert not np.allclose(to_host(got), to_host(free))


def test_clipping_with_plain_sgd():
    model = xmlp.MLP(2, 5, 1, rng=0)
    xmlp.fit(model, X, T, epochs=3, lr=0.1, clip_grad_norm=0.01, progress=False)
    want = xmlp.MLP(2, 5, 1, rng=0)
    loss = xmlp.MSELoss()
    for _ in range(3):
        loss.forward(want.forward(X), T)
        want.backward(loss.backward())
        xmlp.clip_grad_norm(want, 0.01)
        want.update_params(0.1)
    for got, w in zip(model.parameters(), want.parameters(), strict=True):
        np.testing.assert_allclose(got, w, **TOL)


def test_a_nonfinite_epoch_puts_the_schedule_back():
    """A per-batch schedule steps during the epoch that fails: fit puts the schedule, the rate
    and the momentum it set back as they were after the last finite epoch, with the
    parameters and the optimizer's state."""
    model, opt = build(_np(), "SGD", lr=0.1, momentum=0.9)
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.2, total_steps=9)
    kept = {}

    def remember(epoch, history):
        kept[epoch] = (opt.lr, opt.momentum, scheduler.state_dict(),
                       [p.copy() for p in model.parameters()])

    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError) as info:
        xmlp.fit(model, X, T, epochs=3, batch_size=7, optimizer=opt, scheduler=scheduler,
                 loss=PoisonedLoss(poison=5), callback=remember, progress=False)
    assert "restored after epoch 1" in str(info.value)
    lr, momentum, state, params = kept[1]
    assert (opt.lr, opt.momentum, scheduler.state_dict()) == (lr, momentum, state)
    assert scheduler.last_epoch == 3
    for got, want in zip(model.parameters(), params, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_nonfinite_epoch_keeps_the_schedule_stepped_after_the_last_finite_one():
    """An epoch schedule steps after each epoch's callbacks: after the failed epoch 2 it is
    as epoch 1 left it, stepped once, with the rate of epoch 2."""
    model, opt = build(_np())
    scheduler = xmlp.optim.CosineAnnealingLR(opt, T_max=4)
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError):
        xmlp.fit(model, X, T, epochs=3, batch_size=7, optimizer=opt, scheduler=scheduler,
                 loss=PoisonedLoss(poison=5), progress=False)
    want_opt = build(_np())[1]
    want = xmlp.optim.CosineAnnealingLR(want_opt, T_max=4)
    want.step()
    assert scheduler.state_dict() == want.state_dict() and opt.lr == want_opt.lr


def test_a_streamed_refusal_puts_the_schedule_back():
    da = pytest.importorskip("dask.array", reason="Dask is not installed")
    gen = np.random.default_rng(0)
    x, t = gen.standard_normal((12, 3)), np.arange(12) % 4
    t[10] = 9  # refused by the loss in the third batch, after two steps
    model = xmlp.MLP(3, 5, 4, rng=0)
    opt = xmlp.optim.Adam(model, lr=0.01)
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.1, total_steps=6)
    before = (opt.lr, opt.betas, scheduler.state_dict())
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="t holds the label 9"):
        xmlp.fit(model, da.from_array(x, chunks=4), da.from_array(t, chunks=4), epochs=2,
                 batch_size=4, loss=xmlp.CrossEntropyLoss(), progress=False, optimizer=opt,
                 scheduler=scheduler)
    assert (opt.lr, opt.betas, scheduler.state_dict()) == before


# -- what fit refuses before anything changes --------------------------------------------------
def test_a_schedule_needs_fit_s_optimizer():
    model, opt = build(_np())
    scheduler = xmlp.optim.StepLR(opt, 2)
    text = rejects(ValueError, model, lambda: xmlp.fit(
        model, X, T, epochs=2, lr=0.1, scheduler=scheduler, progress=False))
    assert text.startswith("fit: the StepLR sets the learning rate of the optimizer it was "
                           "built on, but fit was given lr=0.1 (plain SGD, no optimizer)")
    _, other = build(_np())
    scheduler = xmlp.optim.StepLR(other, 2)
    text = rejects(ValueError, model, lambda: xmlp.fit(
        model, X, T, epochs=2, optimizer=opt, scheduler=scheduler, progress=False))
    assert text.startswith("fit: the StepLR was built on another optimizer (Adam at 0x")
    assert (opt.lr, other.lr, scheduler.last_epoch) == (0.05, 0.05, 0)
    assert message(TypeError, lambda: xmlp.fit(
        model, X, T, epochs=2, optimizer=opt, scheduler="cosine", progress=False)) == (
        "fit: scheduler must be an xmlp.optim schedule (StepLR, CosineAnnealingLR, "
        "OneCycleLR, ReduceLROnPlateau...), got str")


def test_a_one_cycle_too_short_for_the_fit_is_refused():
    model, opt = build(_np())
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.1, epochs=5, steps_per_epoch=2)
    before = scheduler.state_dict()
    text = rejects(ValueError, model, lambda: xmlp.fit(
        model, X, T, epochs=5, batch_size=7, optimizer=opt, scheduler=scheduler,
        progress=False))
    assert text == ("fit: the OneCycleLR has 10 steps left (total_steps=10, 0 taken) but fit "
                    "takes 15 (one per batch); build it with total_steps=15, or epochs and "
                    "steps_per_epoch of this fit (steps_per_epoch: batches per epoch)")
    assert scheduler.state_dict() == before
    # exactly enough: 5 epochs of 3 batches, the last step after the last batch
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.1, epochs=5, steps_per_epoch=3)
    xmlp.fit(model, X, T, epochs=5, batch_size=7, optimizer=opt, scheduler=scheduler,
             progress=False)
    assert scheduler.last_epoch == 15


@pytest.mark.parametrize(("value", "error", "text"), [
    (0.0, ValueError, "fit: clip_grad_norm must be a finite number > 0, got 0.0"),
    (math.inf, ValueError, "fit: clip_grad_norm must be a finite number > 0, got inf"),
    ("1", TypeError, "fit: clip_grad_norm must be a real number, got str: '1'"),
])
def test_a_bad_clip_is_refused_before_training(value, error, text):
    model, opt = build(_np())
    assert rejects(error, model, lambda: xmlp.fit(
        model, X, T, epochs=2, optimizer=opt, clip_grad_norm=value, progress=False)) == text


def test_clipping_a_model_without_parameters_is_refused():
    assert message(ValueError, lambda: xmlp.fit(
        xmlp.Tanh(), X, X, epochs=1, lr=0.1, clip_grad_norm=1.0, progress=False)) == (
        "fit: clip_grad_norm= clips gradients, but the Tanh has no parameters")


def _np():
    from tests.conftest import Backend

    return Backend("numpy", np, np)


# -- compiled steps: the schedule's values are inputs, clipping is inside -----------------------
def _count_traces(monkeypatch):
    """How many times the step's Python runs: once per trace (jax.jit), never per call."""
    calls = [0]
    pure = xmlp.TrainStep._pure

    def counting(self, *args, **kwargs):
        calls[0] += 1
        return pure(self, *args, **kwargs)

    monkeypatch.setattr(xmlp.TrainStep, "_pure", counting)
    return calls


@pytest.mark.xp_only("jax")
@pytest.mark.parametrize("name", ["cosine", "onecycle", "onecycle-sgd", "plateau"])
def test_a_schedule_costs_no_new_trace(xp, name, monkeypatch):
    """Six epochs of three batches (7, 7, 6 samples: two shapes) with a rate that changes
    every epoch or every batch (and a momentum cycled every batch): two traces, as with a
    constant rate; the same numbers as the eager fit."""
    traces = _count_traces(monkeypatch)
    model, _, _, rates, _ = with_fit(xp, name, clip=0.5)
    assert traces[0] == 2
    assert len(set(rates)) == 6 or name == "plateau"
    eager, *_ = with_fit(xp, name, clip=0.5, compile=False)
    assert traces[0] == 2
    for got, want in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(to_host(got), to_host(want), **TOL)


@pytest.mark.xp_only("jax")
def test_the_compiled_step_clips_as_the_eager_step(xp):
    """TrainStep(clip_grad_norm=) clips inside the trace: the same parameters as the eager
    step that calls clip_grad_norm, every step clipped."""
    x, t = xp.from_numpy(X), xp.from_numpy(T)
    params = []
    for compile in (True, False):
        model, opt = build(xp)
        step = xmlp.TrainStep(model, optimizer=opt, compile=compile, clip_grad_norm=0.05)
        assert step.compiled is compile
        for _ in range(10):
            step(x, t)
        params.append([to_host(p) for p in model.parameters()])
    want_model, want_opt = build(xp)
    loss = xmlp.MSELoss()
    for _ in range(10):
        loss.forward(want_model.forward(x), t)
        want_model.backward(loss.backward())
        assert float(xmlp.clip_grad_norm(want_model, 0.05)) > 0.05  # every step clipped
        want_opt.step()
    for compiled, eager, want in zip(*params, want_model.parameters(), strict=True):
        np.testing.assert_allclose(compiled, eager, **TOL)
        np.testing.assert_allclose(eager, to_host(want), **TOL)


@pytest.mark.slow
@pytest.mark.xp_only("torch")
# inductor itself calls torch.jit.script_method, which torch deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_with_a_cycled_momentum_and_clipping(xp, monkeypatch):
    """The compiled step on PyTorch: OneCycleLR's rate and momentum and the clipping inside
    the program; one program per batch shape (no new one for a new rate), the eager
    numbers."""
    from xmlp.training import torch_program

    made = []
    init = torch_program._Program.__init__
    monkeypatch.setattr(torch_program._Program, "__init__",
                        lambda self, *args: made.append(1) or init(self, *args))
    model, *_ = with_fit(xp, "onecycle-sgd", clip=0.5, compile=True)
    assert len(made) == 2
    eager, *_ = with_fit(xp, "onecycle-sgd", clip=0.5, compile=False)
    for got, want in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(to_host(got), to_host(want), **TOL)


def test_train_step_refuses_a_bad_clip():
    model, opt = build(_np())
    assert message(ValueError, lambda: xmlp.TrainStep(model, optimizer=opt,
                                                      clip_grad_norm=-1.0)) == (
        "TrainStep: clip_grad_norm must be a finite number > 0, got -1.0")
