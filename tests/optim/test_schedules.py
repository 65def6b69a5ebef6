"""xmlp.optim's learning-rate schedules against torch.optim.lr_scheduler itself: the same
learning rates (and cycled momenta) over 50 epochs, bit for bit; their state, and bad input.

The schedules are Python arithmetic on floats, the same on every backend: these tests run
once, in the NumPy session (fit with a schedule runs on every backend in tests/training/)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

import xmlp
from tests.helpers import HUGE_INT, message

pytestmark = pytest.mark.requires_backends("numpy")

EPOCHS = 50
# a validation loss that falls, stalls, wobbles and falls again: every branch of
# ReduceLROnPlateau (bad epochs, reductions, cooldown, min_lr) is taken
GEN = np.random.default_rng(3)
METRICS = [float(v) for v in np.concatenate([
    np.linspace(1.0, 0.5, 10), np.full(8, 0.5), 0.5 + 0.01 * GEN.standard_normal(12),
    np.linspace(0.49, 0.3, 10), np.full(10, 0.3)])]
assert len(METRICS) == EPOCHS

# name: (optimizer, its keyword arguments, schedule, the schedule's keyword arguments)
CASES = {
    "step": ("SGD", {"lr": 0.1}, "StepLR", {"step_size": 7, "gamma": 0.5}),
    "step-default-gamma": ("Adam", {"lr": 0.01}, "StepLR", {"step_size": 3}),
    "exponential": ("SGD", {"lr": 0.1, "momentum": 0.9}, "ExponentialLR", {"gamma": 0.93}),
    "cosine": ("Adam", {"lr": 0.01}, "CosineAnnealingLR", {"T_max": 50}),
    "cosine-eta-min-restarts": ("SGD", {"lr": 0.1}, "CosineAnnealingLR",
                                {"T_max": 12, "eta_min": 0.001}),
    "linear-warmup": ("AdamW", {"lr": 0.003}, "LinearLR",
                      {"start_factor": 0.1, "total_iters": 10}),
    "linear-decay": ("SGD", {"lr": 0.1}, "LinearLR",
                     {"start_factor": 1.0, "end_factor": 0.05, "total_iters": 40}),
    "linear-default": ("SGD", {"lr": 0.1}, "LinearLR", {}),
    "onecycle-sgd": ("SGD", {"lr": 0.1, "momentum": 0.9}, "OneCycleLR",
                     {"max_lr": 0.5, "total_steps": 50}),
    "onecycle-adam-linear": ("Adam", {"lr": 0.001}, "OneCycleLR",
                             {"max_lr": 0.01, "epochs": 5, "steps_per_epoch": 10,
                              "anneal_strategy": "linear", "pct_start": 0.25}),
    "onecycle-three-phase": ("AdamW", {"lr": 0.001}, "OneCycleLR",
                             {"max_lr": 0.02, "total_steps": 50, "three_phase": True,
                              "div_factor": 10.0, "final_div_factor": 100.0}),
    "onecycle-no-momentum": ("SGD", {"lr": 0.1}, "OneCycleLR",
                             {"max_lr": 0.3, "total_steps": 60, "cycle_momentum": False,
                              "base_momentum": 0.8, "max_momentum": 0.9}),
    "plateau": ("SGD", {"lr": 0.1}, "ReduceLROnPlateau", {"factor": 0.5, "patience": 2}),
    "plateau-abs-cooldown-min": ("Adam", {"lr": 0.01}, "ReduceLROnPlateau",
                                 {"factor": 0.3, "patience": 1, "threshold": 0.01,
                                  "threshold_mode": "abs", "cooldown": 2, "min_lr": 1e-4}),
    "plateau-max": ("SGD", {"lr": 0.1}, "ReduceLROnPlateau",
                    {"mode": "max", "factor": 0.5, "patience": 3, "threshold": 0.0}),
    "plateau-defaults": ("SGD", {"lr": 0.1}, "ReduceLROnPlateau", {}),
}


def model():
    return xmlp.MLP(2, 3, 1, rng=0)


def momentum_of(opt) -> float | None:
    """SGD's momentum or Adam's beta1, for xmlp and torch optimizers alike."""
    if hasattr(opt, "param_groups"):
        group = opt.param_groups[0]
        return group["betas"][0] if "betas" in group else group.get("momentum")
    return opt.betas[0] if hasattr(opt, "betas") else getattr(opt, "momentum", None)


def trajectory(opt, scheduler, metric_mode: str | None, steps: int = EPOCHS, torch_opt=None):
    """[(lr, momentum, get_last_lr()[0])] before the first step and after each step."""
    values = []
    for i in range(steps + 1):
        lr = opt.param_groups[0]["lr"] if hasattr(opt, "param_groups") else opt.lr
        values.append((lr, momentum_of(opt), scheduler.get_last_lr()[0]))
        if i == steps:
            break
        if torch_opt is not None:
            torch_opt.step()  # torch warns about a schedule stepped before its optimizer
        if metric_mode is None:
            scheduler.step()
        else:
            metric = METRICS[i] if metric_mode == "min" else 1 - METRICS[i]
            scheduler.step(metric)
    return values


def pair(case):
    """(the xmlp run, the torch run): the trajectories of the same schedule."""
    torch = pytest.importorskip("torch", reason="torch (pip install '.[torch]') is the "
                                "reference these schedules are compared with")
    opt_name, opt_kw, name, kw = CASES[case]
    mode = None if name != "ReduceLROnPlateau" else kw.get("mode", "min")
    steps = EPOCHS if name != "OneCycleLR" else min(EPOCHS, _total(kw))
    opt = getattr(xmlp.optim, opt_name)(model(), **opt_kw)
    ours = trajectory(opt, getattr(xmlp.optim, name)(opt, **kw), mode, steps)
    param = torch.zeros(1, requires_grad=True)
    topt = getattr(torch.optim, opt_name)([param], **opt_kw)
    theirs = trajectory(topt, getattr(torch.optim.lr_scheduler, name)(topt, **kw), mode,
                        steps, torch_opt=topt)
    return ours, theirs


def _total(kw) -> int:
    return kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]


def largest_difference(case) -> float:
    """The largest difference of learning rate (and momentum) from torch's over the run."""
    ours, theirs = pair(case)
    return max(abs(a - b) for x, y in zip(ours, theirs, strict=True)
               for a, b in zip(x, y, strict=True) if a is not None and b is not None)


@pytest.mark.parametrize("case", list(CASES))
def test_equal_to_torch_over_fifty_epochs(case):
    """The same learning rates, momenta and get_last_lr() as torch's, exactly: the same
    float operations in the same order. (OneCycleLR with a linear anneal: after the last
    batch torch's rate runs on past the end of the cycle, below zero; xmlp's stays at the
    cycle's last rate.)"""
    ours, theirs = pair(case)
    kw = CASES[case][3]
    if kw.get("anneal_strategy") == "linear" and len(ours) == _total(kw) + 1:
        (lr, momentum, last), (torch_lr, _, _) = ours.pop(), theirs.pop()
        assert torch_lr < 0 < lr == last == pytest.approx(
            kw["max_lr"] / kw.get("div_factor", 25.0) / kw.get("final_div_factor", 1e4))
        assert momentum == kw.get("max_momentum", 0.95)
    assert ours == theirs
    lrs = [lr for lr, _, _ in ours]
    assert len(set(lrs)) > 1  # the schedule moved the rate (a case that tests something)


def test_a_rate_changed_by_hand_is_followed_as_torch_follows_it():
    """The recursive forms scale the optimizer's current lr: a rate set by hand between steps
    carries on from there, in xmlp as in torch."""
    torch = pytest.importorskip("torch")
    runs = []
    for lib in ("xmlp", "torch"):
        if lib == "xmlp":
            opt = xmlp.optim.SGD(model(), lr=0.1)
            scheduler = xmlp.optim.CosineAnnealingLR(opt, T_max=10)
        else:
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        rates = []
        for epoch in range(10):
            if lib == "torch":
                opt.step()
            scheduler.step()
            if epoch == 3:
                if lib == "xmlp":
                    opt.lr = 0.02
                else:
                    opt.param_groups[0]["lr"] = 0.02
            rates.append(scheduler.get_last_lr()[0])
        runs.append(rates)
    assert runs[0] == runs[1]


def test_the_closed_forms_hold_to_round_off():
    """The documented formulas (torch's closed forms) hold to float round-off."""
    opt = xmlp.optim.SGD(model(), lr=0.1)
    cos = xmlp.optim.CosineAnnealingLR(opt, T_max=20, eta_min=0.001)
    for epoch in range(1, EPOCHS + 1):
        cos.step()
        want = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * epoch / 20)) / 2
        assert opt.lr == pytest.approx(want, rel=1e-12, abs=1e-15)
    opt = xmlp.optim.SGD(model(), lr=0.1)
    step = xmlp.optim.StepLR(opt, step_size=4, gamma=0.3)
    for epoch in range(1, 30):
        step.step()
        assert opt.lr == pytest.approx(0.1 * 0.3 ** (epoch // 4), rel=1e-12)


def test_building_a_schedule_sets_the_first_rate():
    opt = xmlp.optim.SGD(model(), lr=0.1)
    xmlp.optim.LinearLR(opt, start_factor=0.5)
    assert opt.lr == 0.05
    opt = xmlp.optim.SGD(model(), lr=0.1, momentum=0.9)
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert (opt.lr, opt.momentum) == (pytest.approx(1.0 / 25), 0.95)
    assert scheduler.base_lrs == [0.1] and scheduler.last_epoch == 0
    opt = xmlp.optim.SGD(model(), lr=0.1)
    xmlp.optim.ReduceLROnPlateau(opt)
    assert opt.lr == 0.1


def test_onecycle_steps_at_most_total_steps_times():
    opt = xmlp.optim.Adam(model(), lr=0.01)
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.1, total_steps=4)
    for _ in range(4):
        scheduler.step()
    before = (opt.lr, opt.betas, scheduler.last_epoch)
    text = message(ValueError, scheduler.step)
    assert text == "OneCycleLR.step: tried to step 5 times; the cycle has total_steps=4"
    assert (opt.lr, opt.betas, scheduler.last_epoch) == before


def test_onecycle_loads_no_state_past_its_total_steps():
    """last_epoch up to the loaded total_steps (that of the state dict, which replaces the
    schedule's); one more is refused before anything changes."""
    opt = xmlp.optim.Adam(model(), lr=0.01)
    longer = xmlp.optim.OneCycleLR(opt, max_lr=0.1, total_steps=6)
    for _ in range(5):
        longer.step()
    scheduler = xmlp.optim.OneCycleLR(opt, max_lr=0.1, total_steps=4)
    good = longer.state_dict()
    before = _state(scheduler)
    for last_epoch in (7, 10**6):
        text = message(ValueError, lambda e=last_epoch: scheduler.load_state_dict(
            {**good, "last_epoch": e}))
        assert text.startswith("OneCycleLR.load_state_dict: last_epoch must be at most "
                               "total_steps=6 (the steps of the cycle), got ")
        assert _state(scheduler) == before
    scheduler.load_state_dict({**good, "last_epoch": 6})
    assert (scheduler.last_epoch, scheduler.total_steps) == (6, 6)
    assert "tried to step 7 times" in message(ValueError, scheduler.step)


def test_a_rate_the_optimizer_refuses_changes_nothing():
    """A growing schedule that passes the float range is refused by the optimizer's lr
    check before the schedule counts the step."""
    opt = xmlp.optim.SGD(model(), lr=1e300)
    scheduler = xmlp.optim.ExponentialLR(opt, gamma=1e10)
    text = message(ValueError, scheduler.step)
    assert text.startswith("SGD: lr must be a finite number >= 0")
    assert (opt.lr, scheduler.last_epoch, scheduler.get_last_lr()) == (1e300, 0, [1e300])


@pytest.mark.parametrize("case", ["cosine-eta-min-restarts", "linear-warmup", "onecycle-sgd",
                                  "onecycle-three-phase", "plateau-abs-cooldown-min"])
def test_state_dict_resumes_exactly(case):
    """20 steps, state saved (through JSON, as a checkpoint keeps it) into a fresh optimizer
    and schedule, 20 more: the rates of 40 uninterrupted steps."""
    opt_name, opt_kw, name, kw = CASES[case]
    mode = None if name != "ReduceLROnPlateau" else "min"

    def build():
        opt = getattr(xmlp.optim, opt_name)(model(), **opt_kw)
        return opt, getattr(xmlp.optim, name)(opt, **kw)

    def steps(opt, scheduler, start, count):
        rates = []
        for i in range(start, start + count):
            scheduler.step() if mode is None else scheduler.step(METRICS[i])
            rates.append((opt.lr, momentum_of(opt)))
        return rates

    straight = steps(*build(), 0, 40)
    opt, scheduler = build()
    first = steps(opt, scheduler, 0, 20)
    saved = json.loads(json.dumps({"opt": opt.state_dict(), "sched": scheduler.state_dict()}))
    opt2, scheduler2 = build()
    opt2.load_state_dict(saved["opt"])
    scheduler2.load_state_dict(saved["sched"])
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert first + steps(opt2, scheduler2, 20, 20) == straight


def test_state_dict_is_plain_data():
    opt = xmlp.optim.SGD(model(), lr=0.1)
    scheduler = xmlp.optim.ReduceLROnPlateau(opt, patience=0)
    scheduler.step(1.0)
    scheduler.step(2.0)
    assert scheduler.state_dict() == {
        "scheduler": "ReduceLROnPlateau", "last_epoch": 2, "base_lrs": [0.1],
        "last_lr": [pytest.approx(0.01)],
        "hyperparameters": {"mode": "min", "factor": 0.1, "patience": 0, "threshold": 1e-4,
                            "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0,
                            "eps": 1e-8},
        "state": {"best": 1.0, "num_bad_epochs": 0, "cooldown_counter": 0}}
    fresh = xmlp.optim.ReduceLROnPlateau(xmlp.optim.SGD(model(), lr=0.1))
    assert fresh.state_dict()["state"]["best"] == math.inf  # torch's, before any epoch


def _state(scheduler):
    return dict(vars(scheduler))


@pytest.mark.parametrize(("change", "error", "words"), [
    (lambda s: "x", TypeError, "expected a dict"),
    (lambda s: {k: v for k, v in s.items() if k != "state"}, ValueError, "no 'state' entry"),
    (lambda s: {**s, "scheduler": "StepLR"}, ValueError, "of a 'StepLR' schedule"),
    (lambda s: {**s, "last_epoch": -1}, ValueError, "last_epoch must be an int >= 0"),
    (lambda s: {**s, "last_epoch": 2.0}, ValueError, "last_epoch must be an int >= 0"),
    (lambda s: {**s, "last_epoch": True}, ValueError, "last_epoch must be an int >= 0, got "
     "True"),
    (lambda s: {**s, "last_epoch": 10**5000}, ValueError,
     f"last_epoch must be an int >= 0 up to {sys.maxsize}, got <an int of 16610 bits>"),
    (lambda s: {**s, "base_lrs": [0.1, 0.2]}, ValueError, "base_lrs must be a list of one"),
    (lambda s: {**s, "last_lr": ["a"]}, TypeError, "last_lr[0] must be a real number"),
    (lambda s: {**s, "hyperparameters": {"T_max": 3}}, ValueError, "hyperparameters must"),
    (lambda s: {**s, "hyperparameters": {"T_max": 0, "eta_min": 0.0}}, ValueError,
     "T_max must be a positive int"),
    (lambda s: {**s, "state": {"best": 1.0}}, ValueError, "state must be empty"),
    (lambda s: {**s, "state": []}, TypeError, "state must be a dict"),
])
def test_a_bad_state_dict_changes_nothing(change, error, words):
    opt = xmlp.optim.SGD(model(), lr=0.1)
    scheduler = xmlp.optim.CosineAnnealingLR(opt, T_max=5)
    scheduler.step()
    good = scheduler.state_dict()
    before = _state(scheduler)
    text = message(error, lambda: scheduler.load_state_dict(change(good)))
    assert text.startswith("CosineAnnealingLR") and words in text
    assert _state(scheduler) == before


@pytest.mark.parametrize(("counters", "error", "words"), [
    ({"best": 1.0}, ValueError, "state must hold best, num_bad_epochs and cooldown_counter"),
    ({"best": "x", "num_bad_epochs": 0, "cooldown_counter": 0}, TypeError, "best must be"),
    ({"best": math.nan, "num_bad_epochs": 0, "cooldown_counter": 0}, ValueError, "got nan"),
    ({"best": 1.0, "num_bad_epochs": -1, "cooldown_counter": 0}, ValueError,
     "num_bad_epochs must be an int >= 0"),
])
def test_a_bad_plateau_state_changes_nothing(counters, error, words):
    scheduler = xmlp.optim.ReduceLROnPlateau(xmlp.optim.SGD(model(), lr=0.1))
    good = scheduler.state_dict()
    before = _state(scheduler)
    text = message(error, lambda: scheduler.load_state_dict({**good, "state": counters}))
    assert words in text
    assert _state(scheduler) == before


@pytest.mark.parametrize(("build", "error", "text"), [
    (lambda o: xmlp.optim.StepLR(o, step_size=0), ValueError,
     "StepLR: step_size must be a positive int, got 0"),
    (lambda o: xmlp.optim.StepLR(o, step_size=2.0), TypeError,
     "StepLR: step_size must be a positive int, got 2.0"),
    (lambda o: xmlp.optim.StepLR(o, 2, gamma=-0.1), ValueError,
     "StepLR: gamma must be a finite number in [0, inf), got -0.1"),
    (lambda o: xmlp.optim.ExponentialLR(o, gamma=math.inf), ValueError,
     "ExponentialLR: gamma must be a finite number in [0, inf), got inf"),
    (lambda o: xmlp.optim.ExponentialLR(o, gamma=HUGE_INT), ValueError,
     "ExponentialLR: gamma must be a finite number"),
    (lambda o: xmlp.optim.ExponentialLR(o, gamma=True), TypeError,
     "ExponentialLR: gamma must be a real number, got bool: True"),
    (lambda o: xmlp.optim.CosineAnnealingLR(o, T_max=10, eta_min=-1.0), ValueError,
     "CosineAnnealingLR: eta_min must be a finite number in [0, inf), got -1.0"),
    (lambda o: xmlp.optim.LinearLR(o, start_factor=0.0), ValueError,
     "LinearLR: start_factor must be a finite number in (0, 1], got 0.0"),
    (lambda o: xmlp.optim.LinearLR(o, end_factor=1.5), ValueError,
     "LinearLR: end_factor must be a finite number in [0, 1], got 1.5"),
    (lambda o: xmlp.optim.OneCycleLR(o, max_lr=0.1), ValueError,
     "OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    (lambda o: xmlp.optim.OneCycleLR(o, max_lr=0.0, total_steps=5), ValueError,
     "OneCycleLR: max_lr must be a finite number in (0, inf), got 0.0"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=0), ValueError,
     "OneCycleLR: steps_per_epoch must be a positive int, got 0"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, total_steps=5, pct_start=1.5), ValueError,
     "OneCycleLR: pct_start must be a finite number in [0, 1], got 1.5"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, total_steps=5, anneal_strategy="exp"),
     ValueError, "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, total_steps=5, max_momentum=1.0), ValueError,
     "OneCycleLR: max_momentum must be a finite number in [0, 1), got 1.0"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, total_steps=5, three_phase=1), TypeError,
     "OneCycleLR: three_phase must be True or False, got 1"),
    (lambda o: xmlp.optim.OneCycleLR(o, 0.1, total_steps=5), ValueError,
     "OneCycleLR: cycle_momentum=True cycles the momentum, but this SGD has none"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(o, mode="lowest"), ValueError,
     "ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(o, factor=1.0), ValueError,
     "ReduceLROnPlateau: factor must be a finite number in [0, 1), got 1.0"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(o, patience=-1), ValueError,
     "ReduceLROnPlateau: patience must be an int >= 0, got -1"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(o, cooldown=10**5000), ValueError,
     f"ReduceLROnPlateau: cooldown must be an int >= 0 up to {sys.maxsize}, got <an int of "
     "16610 bits>"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(o, threshold_mode="relative"), ValueError,
     "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'relative'"),
    (lambda o: xmlp.optim.StepLR("opt", 2), TypeError,
     "StepLR: optimizer must be an xmlp.optim optimizer (SGD, Adam, AdamW), got str"),
    (lambda o: xmlp.optim.ReduceLROnPlateau(None), TypeError,
     "ReduceLROnPlateau: optimizer must be an xmlp.optim optimizer"),
])
def test_bad_arguments_are_refused_and_leave_the_optimizer_alone(build, error, text):
    opt = xmlp.optim.SGD(model(), lr=0.1)
    assert message(error, lambda: build(opt)).startswith(text)
    assert opt.lr == 0.1


def test_sgd_momentum_cycled_down_to_zero_is_refused():
    opt = xmlp.optim.SGD(model(), lr=0.1, momentum=0.9)
    text = message(ValueError, lambda: xmlp.optim.OneCycleLR(opt, 0.1, total_steps=5,
                                                             base_momentum=0.0))
    assert "base_momentum and max_momentum must be > 0 for SGD" in text
    assert opt.momentum == 0.9


def test_the_plateau_metric_is_a_number_or_a_0d_array():
    opt = xmlp.optim.SGD(model(), lr=0.1)
    scheduler = xmlp.optim.ReduceLROnPlateau(opt, patience=0)
    scheduler.step(np.float64(1.0))
    scheduler.step(np.asarray(2.0))  # a 0-d array, as a loss is returned
    assert opt.lr == pytest.approx(0.01)
    for bad in ("x", np.ones(2), None, True):
        assert "the metric must be a number or a 0-d array" in message(
            TypeError, lambda bad=bad: scheduler.step(bad))
    assert scheduler.last_epoch == 2


def test_repr_names_the_optimizer_and_the_hyperparameters():
    opt = xmlp.optim.Adam(model(), lr=0.01)
    assert repr(xmlp.optim.StepLR(opt, 3)) == "StepLR(Adam, step_size=3, gamma=0.1)"


def test_the_schedules_are_xmlp_optim_names_and_import_in_any_order():
    import subprocess
    import sys

    assert xmlp.optim.StepLR.__module__ == "xmlp.schedules"
    assert xmlp.optim.OneCycleLR.per_step and not xmlp.optim.StepLR.per_step
    for first in ("xmlp.schedules", "xmlp.optim", "xmlp"):
        code = f"import {first}; from xmlp.optim import OneCycleLR, StepLR; print('ok')"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False)
        assert done.stdout.strip() == "ok", done.stderr


def test_plateau_takes_an_int_beyond_the_float_range_as_infinite():
    """A metric or a stored best of 10**400 is +inf (float() would raise OverflowError)."""
    opt = xmlp.optim.SGD(xmlp.Linear(2, 1, rng=0), lr=0.1)
    plateau = xmlp.optim.ReduceLROnPlateau(opt)
    plateau.step(10**400)
    assert plateau.best == float("inf") and plateau.num_bad_epochs == 1
    state = plateau.state_dict()
    state["state"]["best"] = -(10**400)
    plateau.load_state_dict(state)
    assert plateau.best == -float("inf")
