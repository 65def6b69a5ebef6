"""Checkpoints with a learning-rate schedule: xmlp.save(model, path, optimizer, scheduler) /
xmlp.load(...) resume fit's training exactly on every backend, and a file or schedule that do
not fit are refused with the model, optimizer and schedule unchanged."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import xmlp
from tests.helpers import message, rejects

SCHEDULES = {
    "cosine-adam": ("Adam", {"lr": 0.05},
                    lambda opt: xmlp.optim.CosineAnnealingLR(opt, T_max=6, eta_min=0.001)),
    "onecycle-sgd": ("SGD", {"lr": 0.1, "momentum": 0.9},
                     lambda opt: xmlp.optim.OneCycleLR(opt, max_lr=0.2, epochs=6,
                                                       steps_per_epoch=3)),
    "plateau-adamw": ("AdamW", {"lr": 0.05},
                      lambda opt: xmlp.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)),
}


def data(xp):
    gen = np.random.default_rng(0)
    x = gen.standard_normal((12, 3))
    return xp.from_numpy(x), xp.from_numpy((x[:, 0] > 0).astype(int) + (x[:, 1] > 0))


def build(xp, case, seed=7):
    name, kwargs, schedule = SCHEDULES[case]
    model = xmlp.MLP(3, 5, 3, xp=xp.module, device=xp.device, dtype="float64", rng=seed)
    opt = getattr(xmlp.optim, name)(model, **kwargs)
    return model, opt, schedule(opt)


def train(model, opt, scheduler, x, t, epochs):
    """Batches of 4 of the 12 samples: three steps per epoch."""
    xmlp.fit(model, x, t, epochs=epochs, optimizer=opt, scheduler=scheduler, batch_size=4,
             loss=xmlp.CrossEntropyLoss(), progress=False)


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_resumed_training_equals_uninterrupted_training(xp, case, tmp_path):
    x, t = data(xp)
    straight, opt, scheduler = build(xp, case)
    train(straight, opt, scheduler, x, t, 6)

    first, opt1, scheduler1 = build(xp, case)
    train(first, opt1, scheduler1, x, t, 3)
    path = tmp_path / "ckpt.npz"
    xmlp.save(first, path, optimizer=opt1, scheduler=scheduler1)
    resumed, opt2, scheduler2 = build(xp, case, seed=99)  # other weights, fresh optimizer
    assert xmlp.load(resumed, path, optimizer=opt2, scheduler=scheduler2) is resumed
    assert scheduler2.state_dict() == scheduler1.state_dict()
    assert opt2.lr == opt1.lr
    train(resumed, opt2, scheduler2, x, t, 3)
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert (opt2.lr, opt2.step_count) == (opt.lr, opt.step_count)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(a), xp.to_numpy(b))


def _np():
    from tests.conftest import Backend

    return Backend("numpy", np, np)


def test_the_schedule_state_is_the_record_s_scheduler_field(tmp_path):
    model, opt, scheduler = build(_np(), "plateau-adamw")
    path = tmp_path / "ckpt.npz"
    xmlp.save(model, path, optimizer=opt, scheduler=scheduler)
    with zipfile.ZipFile(path) as z:
        record = json.loads(str(np.load(z.open("__xmlp__.npy"))))
    assert record["scheduler"] == json.loads(json.dumps(scheduler.state_dict()))
    assert record["scheduler"]["state"]["best"] == float("inf")


def test_save_and_load_need_the_schedule_of_the_optimizer(tmp_path):
    model, opt, scheduler = build(_np(), "cosine-adam")
    path = tmp_path / "ckpt.npz"
    other_model, other_opt, other_scheduler = build(_np(), "cosine-adam")
    for call in (xmlp.save, xmlp.load):
        name = call.__name__
        assert message(ValueError, lambda call=call: call(model, path, scheduler=scheduler)) \
            == (f"{name}: scheduler= needs optimizer= too: the learning rate the "
                "CosineAnnealingLR set is part of the optimizer's state")
        assert message(ValueError, lambda call=call: call(
            model, path, optimizer=opt, scheduler=other_scheduler)) == (
            f"{name}: the CosineAnnealingLR was built on another optimizer; pass the schedule "
            "of this optimizer")
        assert message(TypeError, lambda call=call: call(
            model, path, optimizer=opt, scheduler="cosine")) == (
            f"{name}: scheduler must be an xmlp.optim schedule, got str")
    assert not path.exists()
    del other_model, other_opt


def _unchanged(model, opt, scheduler):
    return ([p.copy() for p in model.parameters()], opt.state_dict(), scheduler.state_dict())


def _same(before, model, opt, scheduler):
    params, opt_state, sched_state = before
    for a, b in zip(model.parameters(), params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert opt.state_dict()["hyperparameters"] == opt_state["hyperparameters"]
    assert scheduler.state_dict() == sched_state


def test_a_file_without_schedule_state_is_refused(tmp_path):
    model, opt, _ = build(_np(), "cosine-adam")
    path = tmp_path / "ckpt.npz"
    xmlp.save(model, path, optimizer=opt)
    other, other_opt, other_scheduler = build(_np(), "cosine-adam", seed=3)
    before = _unchanged(other, other_opt, other_scheduler)
    text = rejects(ValueError, other, lambda: xmlp.load(other, path, optimizer=other_opt,
                                                         scheduler=other_scheduler))
    assert text == (f"load: {str(path)!r} holds no schedule state (it was saved without "
                    "scheduler=); load without scheduler= and build the schedule anew")
    _same(before, other, other_opt, other_scheduler)
    xmlp.load(other, path, optimizer=other_opt)  # without scheduler=: fine


def test_a_schedule_of_another_class_is_refused_before_anything_changes(tmp_path):
    model, opt, scheduler = build(_np(), "cosine-adam")
    path = tmp_path / "ckpt.npz"
    xmlp.save(model, path, optimizer=opt, scheduler=scheduler)
    other = xmlp.MLP(3, 5, 3, rng=3)
    other_opt = xmlp.optim.Adam(other, lr=0.5)
    step = xmlp.optim.StepLR(other_opt, 2)
    before = _unchanged(other, other_opt, step)
    text = rejects(ValueError, other, lambda: xmlp.load(other, path, optimizer=other_opt,
                                                         scheduler=step))
    assert text == (f"load: the schedule state in {str(path)!r} does not fit: "
                    "StepLR.load_state_dict: the state dict is of a 'CosineAnnealingLR' "
                    "schedule, not 'StepLR'")
    _same(before, other, other_opt, step)
