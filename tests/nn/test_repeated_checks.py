"""What a repeated NumPy step checks. After a model's first step the next ones run none of the
slow, general checks, which would only give the same answer later: parameters found to fit
are remembered by identity, gradients are checked in one expression, and a prediction of a
kind already seen reuses its spec. What changes by hand is checked again in full."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
import xmlp.nn.target_checks as target_checks
from tests.helpers import message
from xmlp.backend import ArraySpec
from xmlp.nn import Module

# the general checks, each called with the object it checks first
SLOW = [(Module, "params_ok"), (Module, "check_params"), (Module, "grads_ok"),
        (Module, "check_grads"), (ArraySpec, "check")]


def _model(kind: str) -> Module:
    if kind == "mlp":
        return xmlp.MLP(3, 8, 2, rng=0)
    return xmlp.Sequential(xmlp.Linear(3, 8, rng=0), xmlp.Tanh(), xmlp.Linear(8, 2, rng=1))


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record (check, class of what it checks) for every general check from now on."""
    calls: list[tuple[str, str]] = []
    for owner, name in SLOW:
        original = getattr(owner, name)

        def spy(obj, *args, _original=original, _name=name, **kwargs):
            calls.append((_name, type(obj).__name__))
            return _original(obj, *args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    floating_spec = target_checks.floating_spec

    def spec_spy(*args, **kwargs):
        calls.append(("floating_spec", "y"))
        return floating_spec(*args, **kwargs)

    monkeypatch.setattr(target_checks, "floating_spec", spec_spy)
    return calls


@pytest.mark.parametrize("kind", ["mlp", "sequential"])
def test_a_numpy_step_after_the_first_runs_no_general_check(monkeypatch, kind):
    model, loss = _model(kind), xmlp.MSELoss()
    gen = np.random.default_rng(0)
    x, t = gen.standard_normal((5, 3)), gen.standard_normal((5, 2))

    def step() -> None:
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        model.update_params(0.01)

    step()
    calls = _spy(monkeypatch)
    step()
    step()
    # Tanh holds no parameters: its grads_ok is the general one, and has nothing to check
    assert [c for c in calls if c != ("grads_ok", "Tanh")] == []

    # a parameter assigned by hand is checked again, by the general checks, and refused
    last = [m for m in model.modules() if isinstance(m, xmlp.Linear)][-1]
    last.weights = last.weights.astype(np.float32)
    assert "float32" in message(TypeError, lambda: model.forward(x))
    assert ("params_ok", "Linear") in calls and ("check_params", "Linear") in calls


def test_a_gradient_assigned_by_hand_is_checked_by_the_general_checks(monkeypatch):
    model = xmlp.MLP(3, 8, 2, rng=0)
    x = np.ones((5, 3))
    model.forward(x)
    model.backward(np.ones((5, 2)))
    calls = _spy(monkeypatch)
    model.linear2.grad_biases = np.ones(3)  # a shape that would broadcast
    assert "grad" in message(ValueError, lambda: model.update_params(0.1))
    assert ("grads_ok", "Linear") in calls and ("check_grads", "MLP") in calls
