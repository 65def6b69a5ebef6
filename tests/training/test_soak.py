"""Soak tests on NumPy: many small steps stay finite and keep learning; a run that
blows up ends in fit's FloatingPointError with the last finite parameters restored."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xmlp
from xmlp.data import generate_data

STEPS = 10_000


def assert_finite_parameters(model: xmlp.Module) -> None:
    for name, p in model.named_parameters():
        assert np.isfinite(p).all(), f"{name} is not finite"


@pytest.mark.parametrize("seed", [0, 1])
def test_ten_thousand_steps_stay_finite_and_learn(seed):
    """The seed's loop, full batch, 10,000 steps: every loss finite, the loss falls."""
    x, t = generate_data()
    model = xmlp.MLP(1, 10, 1, rng=seed)
    mse = xmlp.MSELoss()
    losses = np.empty(STEPS)
    for step in range(STEPS):
        losses[step] = mse.forward(model.forward(x), t)
        model.backward(mse.backward())
        model.update_params(0.1)
        if step % 1000 == 999:
            assert_finite_parameters(model)
    assert np.isfinite(losses).all()
    early, late = losses[:100].mean(), losses[-1000:].mean()
    assert late < 0.25 * early, (early, late)
    # the noise in the seed's data has variance 0.2**2 = 0.04: the fit gets close to it
    assert late < 0.06, late
    # and keeps it: no late divergence or oscillation
    assert losses[-1000:].max() < 1.5 * losses[-1000:].min()


def test_ten_thousand_minibatch_steps_with_fit():
    """fit with batch_size=10 and shuffling: 1,000 epochs of 10 steps."""
    x, t = generate_data()
    model = xmlp.MLP(1, 10, 1, rng=0)
    history = xmlp.fit(model, x, t, epochs=STEPS // 10, lr=0.05, batch_size=10, shuffle=True,
                       rng=0, progress=False)
    assert len(history) == STEPS // 10
    assert np.isfinite(history).all()
    assert_finite_parameters(model)
    early, late = np.mean(history[:10]), np.mean(history[-100:])
    assert late < 0.25 * early and late < 0.06, (early, late)


@pytest.mark.parametrize("lr", [10.0, 1e3, 1e6])
def test_huge_learning_rate_ends_in_floating_point_error(lr):
    """The loss overflows to inf after some epochs: FloatingPointError naming that epoch, the
    parameters of the epoch before restored (finite, and equal to a run that stopped there),
    stored activations and gradients cleared."""
    x, t = generate_data()
    model = xmlp.MLP(1, 10, 1, rng=0)
    # NumPy warns on overflow, and pytest makes warnings errors: fit sees the inf itself
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(FloatingPointError) as info:
        xmlp.fit(model, x, t, epochs=1000, lr=lr, progress=False)
    history = info.value.history
    bad_epoch = len(history)
    assert bad_epoch > 1 and np.isfinite(history[:-1]).all() and not np.isfinite(history[-1])
    assert re.search(rf"\bepoch {bad_epoch}\b", str(info.value)), str(info.value)
    assert_finite_parameters(model)
    assert all(grad is None for _, grad in model.named_grads())
    assert model.linear1.x is None and model.linear2.output is None

    replay = xmlp.MLP(1, 10, 1, rng=0)
    with np.errstate(over="ignore", invalid="ignore"):
        replay_history = xmlp.fit(replay, x, t, epochs=bad_epoch - 1, lr=lr, progress=False)
    np.testing.assert_array_equal(replay_history, history[:-1])
    for (name, got), (_, want) in zip(model.named_parameters(),
                                                 replay.named_parameters(), strict=True):
        np.testing.assert_array_equal(got, want, err_msg=name)
    # usable again (the restored parameters are finite, though large enough here that the
    # next forward overflows: they are the ones the last finite epoch ended with)
    assert model.forward(x[:1] * 0).shape == (1, 1)
