"""One layer object, one use: a layer used twice in a model, or one that belongs to another
live model, is refused when the model is built and when it is put in by hand later (before
anything changes); nested layers are named by their full path."""

from __future__ import annotations

import copy
import gc
from typing import Any

import numpy as np
import pytest

import xmlp
from tests.helpers import (
    data,
    layer_kwargs,
    message,
    rejects,
)


def test_layer_used_twice_in_one_model_is_refused(xp):
    lin = xmlp.Linear(2, 2, rng=0, **layer_kwargs(xp))
    with pytest.raises(ValueError, match=r"is used twice, as 0 and as 2.*deepcopy"):
        xmlp.Sequential(lin, xmlp.Tanh(), lin)
    act = xmlp.Tanh()
    with pytest.raises(ValueError, match="used twice, as 1 and as 3"):
        xmlp.Sequential(xmlp.Linear(2, 2, **layer_kwargs(xp)), act,
                        xmlp.Linear(2, 2, **layer_kwargs(xp)), act)
    with pytest.raises(ValueError, match=r"used twice, as 0\.0 and as 1"):
        xmlp.Sequential(xmlp.Sequential(lin), lin)
    # nothing was recorded by the refused constructions: the layer is free to use
    seq = xmlp.Sequential(lin, xmlp.Tanh())
    seq.forward(data(xp, (4, 2)))


def test_layer_of_another_live_model_is_refused(xp):
    lin = xmlp.Linear(2, 2, rng=0, **layer_kwargs(xp))
    first = xmlp.Sequential(lin, xmlp.Tanh())
    with pytest.raises(ValueError, match=r"layer 0 \(Linear\(2, 2.*already belongs to Sequential"):
        xmlp.Sequential(lin, xmlp.ReLU())
    mlp = xmlp.MLP(2, 3, 1, **layer_kwargs(xp))
    with pytest.raises(ValueError, match="already belongs to MLP"):
        xmlp.Sequential(mlp.linear1, xmlp.Tanh())
    # the model itself can be wrapped, and a copy of a layer is a new layer
    wrapped = xmlp.Sequential(mlp, xmlp.Sigmoid())
    twin = copy.deepcopy(lin)
    second = xmlp.Sequential(twin, xmlp.ReLU())
    np.testing.assert_array_equal(xp.to_numpy(twin.weights), xp.to_numpy(lin.weights))
    second.forward(data(xp, (4, 2)))
    second.backward(data(xp, (4, 2)))
    second.update_params(0.5)
    assert not np.array_equal(xp.to_numpy(twin.weights), xp.to_numpy(lin.weights))
    assert wrapped.forward(data(xp, (4, 2))).shape == (4, 1)
    del first, wrapped
    gc.collect()  # a model that is gone frees its layers
    xmlp.Sequential(lin, xmlp.ReLU())


@pytest.mark.parametrize("kind", ["sequential", "mlp"])
def test_sharing_put_in_by_hand_is_refused_before_anything_changes(xp, kind):
    if kind == "sequential":
        model = xmlp.Sequential(xmlp.Linear(3, 3, rng=0, **layer_kwargs(xp)), xmlp.Tanh(),
                                xmlp.Linear(3, 3, rng=1, **layer_kwargs(xp)))
        model.forward(data(xp, (5, 3)))
        model.backward(data(xp, (5, 3)))
        model.layers.append(model.layers[0])  # by hand, after construction
    else:
        model = xmlp.MLP(3, 3, 3, rng=0, **layer_kwargs(xp))
        model.forward(data(xp, (5, 3)))
        model.backward(data(xp, (5, 3)))
        model.linear2 = model.linear1
    rejects(ValueError, model, lambda: model.forward(data(xp, (5, 3), seed=3)), "used twice")
    rejects(ValueError, model, lambda: model.backward(data(xp, (5, 3), seed=3)), "used twice")
    # the message says why (the stored forward state, the update twice) and what to do instead
    rejects(ValueError, model, lambda: model.update_params(0.1),
            f"{type(model).__name__}.update_params: ", "used twice",
            "would overwrite the other's stored forward state and the update would be applied "
            "twice", "Make another layer (copy.deepcopy(layer)).")


def test_a_layer_used_twice_deep_inside_is_named_by_its_full_path():
    lin = xmlp.Linear(2, 2, rng=0)
    got = message(ValueError, lambda: xmlp.Sequential(
        xmlp.Sequential(xmlp.Sequential(lin, xmlp.Tanh())), lin))
    assert got.startswith(f"Sequential: {lin!r} is used twice, as 0.0.0 and as 1; ")


def test_a_layer_put_twice_by_hand_is_named_by_the_pass_that_found_it():
    model = xmlp.Sequential(xmlp.Linear(2, 2, rng=0), xmlp.Tanh(), xmlp.Linear(2, 2, rng=1))
    model.layers[2] = model.layers[0]
    text = message(ValueError, lambda: model.forward(np.ones((1, 2))))
    assert text.startswith("Sequential.forward: Linear(2, 2, numpy float64 on cpu) is used "
                           "twice, as 0 and as 2; a layer object can be used once")
    text = message(ValueError, lambda: model.backward(np.ones((1, 2))))
    assert text.startswith("Sequential.backward: Linear(2, 2, numpy float64 on cpu) is used "
                           "twice, as 0 and as 2; a layer object can be used once")


class _ComparedByValue(xmlp.Module):
    """A user's layer that defines __eq__ only, so that Python makes it unhashable."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def forward(self, x: Any) -> Any:
        return 2 * x

    def backward(self, grad_output: Any) -> Any:
        return 2 * grad_output

    def predict(self, x: Any) -> Any:
        return 2 * x


def test_an_unhashable_layer_can_be_put_in_a_model():
    """A layer that cannot be hashed cannot key the owner registry: it is left out of it, and
    the model is built and runs."""
    odd = _ComparedByValue()
    model = xmlp.Sequential(xmlp.Linear(2, 2, np.eye(2), np.zeros(2)), odd)
    np.testing.assert_array_equal(model.forward(np.ones((3, 2))), np.full((3, 2), 2.0))
    xmlp.Sequential(xmlp.Linear(2, 2, rng=0), _ComparedByValue())
