"""Tests written to kill surviving mutants of xmlp.optim (the Optimizer's construction, step
and state checks): whole error messages, and the checked path a step takes for gradients that
are not the parameters' exact array type."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.reference import adam_reference, sgd_reference


class Tagged(np.ndarray):
    """An ndarray subclass: not the parameters' exact type, so a step's fast gradient check
    declines it and the checked path (which accepts it) finds the layers again."""


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_construction_messages_name_the_optimizer_and_what_was_passed(name):
    """The whole message: the optimizer's class, the type passed instead of a model, and the
    model class that holds no parameters."""
    cls = getattr(xmlp.optim, name)
    with pytest.raises(TypeError) as info:
        cls([np.zeros(3)], lr=0.1)
    assert str(info.value) == (
        f"{name}: model must be an xmlp.Module (its parameters are listed by "
        "named_parameters()), got list")
    with pytest.raises(ValueError) as info:
        cls(xmlp.Sequential(xmlp.Tanh()), lr=0.1)
    assert str(info.value) == f"{name}: the Sequential has no parameters to optimize"


@pytest.mark.parametrize(("name", "kwargs"), [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.01}),
])
def test_steps_accept_gradients_of_an_array_subclass(name, kwargs):
    """Gradients of an ndarray subclass (accepted by the checked path, as update_params does)
    update every parameter as plain gradients would, over several steps."""
    gen = np.random.default_rng(3)
    x, t = gen.standard_normal((6, 2)), gen.standard_normal((6, 1))
    model = xmlp.Sequential(xmlp.Linear(2, 3, rng=1), xmlp.Tanh(), xmlp.Linear(3, 1, rng=2))
    opt = getattr(xmlp.optim, name)(model, **kwargs)
    params = [np.array(p) for p in model.parameters()]
    steps = []
    for _ in range(3):
        loss = xmlp.MSELoss()
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        grads = []
        for module in model.modules():
            for leaf in module.param_names:
                grad = getattr(module, "grad_" + leaf)
                grads.append(np.array(grad))
                setattr(module, "grad_" + leaf, grad.view(Tagged))
        steps.append(grads)  # plain copies of this step's gradients, for the reference
        opt.step()
    assert opt.step_count == 3
    lrs = [kwargs["lr"]] * 3
    rest = {k: v for k, v in kwargs.items() if k != "lr"}
    if name == "SGD":
        want = sgd_reference(params, steps, lrs, **rest)[0]
    else:
        want = adam_reference(params, steps, lrs, **rest)[0]
    for got, ref in zip(model.parameters(), want, strict=True):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


def test_model_moved_after_steps_message_in_full():
    """The whole message: where the parameters and the state are, why, and the way out."""
    model = xmlp.MLP(2, 3, 1, rng=0)
    opt = xmlp.optim.Adam(model, lr=0.01)
    x = np.ones((4, 2))
    model.forward(x)
    model.backward(np.ones((4, 1)))
    opt.step()
    model.to(dtype="float32")
    model.forward(x.astype(np.float32))
    model.backward(np.ones((4, 1), np.float32))
    with pytest.raises(TypeError) as info:
        opt.step()
    assert str(info.value) == (
        "Adam.step: the parameters are now numpy float32 on cpu but this optimizer's state is "
        "numpy float64 on cpu (the model was moved with .to() after steps were taken). Carry "
        "the state over with opt.load_state_dict(opt.state_dict()), which makes it where the "
        "parameters are now; xmlp never transfers silently.")
    assert opt.step_count == 1
