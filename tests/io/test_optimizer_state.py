"""Checkpoints with optimizer state: xmlp.save(model, path, optimizer) / xmlp.load(model, path,
optimizer) resume training exactly on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xmlp
from tests.helpers import rejects

OPTIMIZERS = {
    "sgd-nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {"lr": 0.05, "weight_decay": 0.01}),
    "adamw": ("AdamW", {"lr": 0.05}),
}


def data(xp):
    gen = np.random.default_rng(0)
    x = gen.standard_normal((12, 3))
    return xp.from_numpy(x), xp.from_numpy((x[:, 0] > 0).astype(int) + (x[:, 1] > 0))


def build(xp, case, seed=7):
    model = xmlp.MLP(3, 5, 3, xp=xp.module, device=xp.device, dtype="float64", rng=seed)
    name, kwargs = OPTIMIZERS[case]
    return model, getattr(xmlp.optim, name)(model, **kwargs)


def train(model, opt, x, t, epochs):
    """Mini-batch training, batches of 4 of the 12 samples: three steps per epoch."""
    xmlp.fit(model, x, t, epochs=epochs, optimizer=opt, batch_size=4,
             loss=xmlp.CrossEntropyLoss(), progress=False)


@pytest.mark.parametrize("case", list(OPTIMIZERS))
def test_save_load_resumes_exactly(xp, case, tmp_path):
    x, t = data(xp)
    straight, opt = build(xp, case)
    train(straight, opt, x, t, 4)
    assert opt.step_count == 12

    first, opt1 = build(xp, case)
    train(first, opt1, x, t, 2)
    path = tmp_path / "ckpt.npz"
    xmlp.save(first, path, optimizer=opt1)
    resumed, opt2 = build(xp, case, seed=99)  # other weights, a fresh optimizer
    opt2.lr = 1.0  # restored from the file too
    assert xmlp.load(resumed, path, optimizer=opt2) is resumed
    assert opt2.step_count == 6 and opt2.lr == OPTIMIZERS[case][1]["lr"]
    train(resumed, opt2, x, t, 2)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(a), xp.to_numpy(b))


def test_the_file_stays_plain_npz(tmp_path):
    model = xmlp.MLP(3, 5, 3, rng=0)
    opt = xmlp.optim.Adam(model, lr=0.01)
    x, t = np.ones((4, 3)), np.array([0, 1, 2, 0])
    xmlp.fit(model, x, t, epochs=2, optimizer=opt, loss=xmlp.CrossEntropyLoss(), progress=False)
    path = tmp_path / "c.npz"
    xmlp.save(model, path, optimizer=opt)
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        meta = json.loads(str(f["__xmlp__"]))
        np.testing.assert_array_equal(f["optimizer.linear1.weights.exp_avg"],
                                      opt.state_dict()["state"]["linear1.weights"]["exp_avg"])
    assert "optimizer.linear2.biases.exp_avg_sq" in keys and "linear1.weights" in keys
    assert meta["optimizer"] == {"optimizer": "Adam", "step_count": 2, "hyperparameters": {
        "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}}
    # a model-only load ignores the optimizer state
    other = xmlp.load(xmlp.MLP(3, 5, 3, rng=1), path)
    for a, b in zip(other.parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_reject_bad_optimizers(xp, tmp_path):
    model, opt = build(xp, "adam")
    x, t = data(xp)
    train(model, opt, x, t, 1)
    path = tmp_path / "c.npz"
    _, other_opt = build(xp, "adam")
    with pytest.raises(ValueError, match="another model"):
        xmlp.save(model, path, optimizer=other_opt)
    with pytest.raises(TypeError, match=r"xmlp\.optim"):
        xmlp.save(model, path, optimizer="adam")
    assert not path.exists()

    xmlp.save(model, path)  # no optimizer state in this one
    target, target_opt = build(xp, "adam", seed=3)
    rejects(ValueError, target, lambda: xmlp.load(target, path, optimizer=target_opt),
            "no optimizer state")
    assert target_opt.step_count == 0

    xmlp.save(model, path, optimizer=opt)
    sgd = xmlp.optim.SGD(target, lr=0.1, momentum=0.9)
    rejects(ValueError, target, lambda: xmlp.load(target, path, optimizer=sgd),
            "does not fit", "'Adam'")
    assert sgd.step_count == 0 and sgd.state_dict()["state"] == {}
    wrong_shape = xmlp.MLP(3, 4, 3, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    wrong_opt = xmlp.optim.Adam(wrong_shape)
    rejects(ValueError, wrong_shape, lambda: xmlp.load(wrong_shape, path, optimizer=wrong_opt),
            "linear1.weights")
    assert wrong_opt.step_count == 0
