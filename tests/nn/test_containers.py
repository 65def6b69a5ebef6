"""MLP, Sequential and MSELoss on every backend against the NumPy float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace, is_array_api_obj

import xmlp
from tests.conftest import tolerances
from tests.reference import mlp_step
from xmlp.data import generate_data


def test_mlp_step_matches_reference(xp, dtype):
    gen = np.random.default_rng(3)
    x = gen.standard_normal((8, 3)).astype(dtype)
    t = gen.standard_normal((8, 2)).astype(dtype)
    model = xmlp.MLP(3, 5, 2, xp=xp.module, device=xp.device, dtype=dtype, rng=7)
    params = [xp.to_numpy(p).astype(np.float64) for p in model.parameters()]
    loss_fn = xmlp.MSELoss()
    xs, ts = xp.from_numpy(x), xp.from_numpy(t)

    loss = loss_fn.forward(model.forward(xs), ts)
    grad_x = model.backward(loss_fn.backward())
    model.update_params(0.1)

    ref_loss, ref_grads, ref_new, ref_gx = mlp_step(params, x.astype(np.float64),
                                                    t.astype(np.float64), 0.1)
    tol = tolerances(dtype)
    np.testing.assert_allclose(float(loss), ref_loss, **tol)
    np.testing.assert_allclose(xp.to_numpy(grad_x), ref_gx, **tol)
    for (_, g), r in zip(model.named_grads(), ref_grads, strict=True):
        np.testing.assert_allclose(xp.to_numpy(g), r, **tol)
    for p, r in zip(model.parameters(), ref_new, strict=True):
        assert p.dtype == getattr(xp.ns, dtype)
        np.testing.assert_allclose(xp.to_numpy(p), r, **tol)


def test_mse_gradient_for_several_outputs(xp):
    y = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    t = np.zeros_like(y)
    loss = xmlp.MSELoss()
    value = loss.forward(xp.from_numpy(y), xp.from_numpy(t))
    np.testing.assert_allclose(float(value), np.mean(y**2))
    # dL/dy = 2 (y - t) / y.size: the notebook's / N would be 3x too large here
    np.testing.assert_allclose(xp.to_numpy(loss.backward()), 2 * y / y.size)


def test_mse_loss_is_not_converted(xp, dtype):
    """forward returns what the namespace's mean returns (a 0-d array of y's namespace and
    dtype; a NumPy scalar on NumPy), never a Python float: converting would sync a GPU."""
    y, t = xp.from_numpy(np.ones((2, 1)), dtype), xp.from_numpy(np.zeros((2, 1)), dtype)
    loss_fn = xmlp.MSELoss()
    for loss in (loss_fn.forward(y, t), loss_fn.predict(y, t)):
        assert type(loss) is not float  # np.float64 subclasses float; a plain float is the bug
        assert is_array_api_obj(loss) and array_namespace(loss) is xp.ns
        assert loss.dtype == getattr(xp.ns, dtype)
        assert tuple(loss.shape) == ()
        assert float(loss) == 1.0
    assert loss_fn.loss is not None and type(loss_fn.loss) is not float


def test_sequential_matches_mlp(xp):
    mlp = xmlp.MLP(2, 4, 1, xp=xp.module, device=xp.device, rng=5)
    seq = xmlp.Sequential(xmlp.Linear(2, 4, mlp.linear1.weights, mlp.linear1.biases), xmlp.Tanh(),
                          xmlp.Linear(4, 1, mlp.linear2.weights, mlp.linear2.biases))
    names = [n for n, _ in seq.named_parameters()]
    assert names == ["0.weights", "0.biases", "2.weights", "2.biases"]
    x = xp.from_numpy(np.linspace(-1, 1, 6).reshape(3, 2), mlp.dtype)
    g = xp.from_numpy(np.ones((3, 1)), mlp.dtype)
    np.testing.assert_allclose(xp.to_numpy(seq.forward(x)), xp.to_numpy(mlp.forward(x)))
    np.testing.assert_allclose(xp.to_numpy(seq.backward(g)), xp.to_numpy(mlp.backward(g)))
    seq.update_params(0.1)
    mlp.update_params(0.1)
    for a, b in zip(seq.parameters(), mlp.parameters(), strict=True):
        np.testing.assert_allclose(xp.to_numpy(a), xp.to_numpy(b))


def test_sequential_checks_dims():
    with pytest.raises(ValueError, match="layer 0 gives 4 features but layer 2 takes 5"):
        xmlp.Sequential(xmlp.Linear(3, 4), xmlp.Tanh(), xmlp.Linear(5, 1))


def test_leading_batch_dims_in_mlp(xp):
    model = xmlp.MLP(3, 4, 2, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    out = model.forward(xp.from_numpy(x))
    assert tuple(out.shape) == (2, 5, 2)
    flat = model.predict(xp.from_numpy(x.reshape(10, 3)))
    np.testing.assert_allclose(xp.to_numpy(out).reshape(10, 2), xp.to_numpy(flat), rtol=1e-12)
    gi = model.backward(xp.from_numpy(np.ones((2, 5, 2))))
    assert tuple(gi.shape) == (2, 5, 3)


@pytest.mark.slow
def test_seed_training_converges_for_most_seeds():
    x, y = generate_data()
    finals = []
    for seed in range(20):
        model, loss = xmlp.MLP(1, 10, 1, rng=seed), xmlp.MSELoss()
        for _ in range(150):
            value = loss.forward(model.forward(x), y)
            model.backward(loss.backward())
            model.update_params(0.1)
        finals.append(float(value))
    assert sum(v < 0.15 for v in finals) >= 18, finals


def test_new_activations_hold_nothing():
    """Before any pass an activation's stored arrays are None (the seed's attributes)."""
    for act in (xmlp.Tanh(), xmlp.ReLU(), xmlp.Sigmoid(), xmlp.Softmax()):
        assert act.x is None and act.output is None and act.grad_input is None


def test_mlp_passes_init_to_both_layers():
    """init="xavier" / "he" give zero biases in both layers, as Linear does."""
    for init in ("xavier", "he"):
        model = xmlp.MLP(3, 4, 2, init=init, rng=0)
        assert not np.any(model.linear1.biases) and not np.any(model.linear2.biases)


def test_mlp_forward_names_its_first_layer_in_a_shape_error():
    model = xmlp.MLP(2, 3, 1, rng=0)
    with pytest.raises(ValueError) as info:
        model.forward(np.zeros((4, 5)))
    assert str(info.value) == ("Linear(2, 3).forward: x must have shape (..., 2) (input_dim "
                               "features), got (4, 5)")


def test_mlp_calls_a_linear_subclass_own_forward():
    """A Linear subclass put in an MLP by hand keeps its own forward (MLP's fast path is only
    for xmlp's Linear itself), in either position."""

    class Shifted(xmlp.Linear):
        def forward(self, x):
            return super().forward(x) + 1.0

    x = np.ones((4, 2))
    for position in ("linear1", "linear2"):
        model = xmlp.MLP(2, 3, 1, rng=0)
        plain = model.forward(x)
        layer = getattr(model, position)
        shifted = Shifted(layer.input_dim, layer.output_dim, layer.weights, layer.biases)
        setattr(model, position, shifted)
        got = model.forward(x)
        if position == "linear2":
            np.testing.assert_allclose(got, plain + 1.0)
        else:
            want = model.linear2.forward(np.tanh(model.linear1.weights.sum(axis=1)[None, :]
                                                 + model.linear1.biases + 1.0).repeat(4, 0))
            np.testing.assert_allclose(got, want)
