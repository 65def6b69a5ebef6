"""LeakyReLU, ELU, GELU (tanh), SiLU and Softplus on every backend: equal to PyTorch's to 1e-12
in float64 (forward, predict and dL/dx), float32 within its tolerance, gradcheck, their edges
(far out, at 0, NaN), their arguments, and what they refuse."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import data, foreign, ns_name, rejects
from tests.nn.torch_reference import largest_difference, needs_torch, torch_pass

GEN = np.random.default_rng(11)
# spread wide enough to reach Softplus's threshold and ELU's saturation; 0 included
X = np.concatenate([GEN.standard_normal(20) * 4, [0.0, -0.0, 25.0, -25.0]]).reshape(6, 4)
G = GEN.standard_normal((6, 4))

# name -> (xmlp layer, the torch module, as strings of torch.nn calls)
CASES = {
    "LeakyReLU": (lambda: xmlp.LeakyReLU(), lambda nn: nn.LeakyReLU()),
    "LeakyReLU(0.2)": (lambda: xmlp.LeakyReLU(0.2), lambda nn: nn.LeakyReLU(0.2)),
    "ELU": (lambda: xmlp.ELU(), lambda nn: nn.ELU()),
    "ELU(1.7)": (lambda: xmlp.ELU(alpha=1.7), lambda nn: nn.ELU(alpha=1.7)),
    "GELU": (lambda: xmlp.GELU(), lambda nn: nn.GELU(approximate="tanh")),
    "SiLU": (lambda: xmlp.SiLU(), lambda nn: nn.SiLU()),
    "Softplus": (lambda: xmlp.Softplus(), lambda nn: nn.Softplus()),
    "Softplus(2, 5)": (lambda: xmlp.Softplus(beta=2, threshold=5),
                       lambda nn: nn.Softplus(beta=2, threshold=5)),
}
LAYERS = [xmlp.LeakyReLU, xmlp.ELU, xmlp.GELU, xmlp.SiLU, xmlp.Softplus]


@pytest.mark.parametrize("name", list(CASES))
def test_equal_to_pytorch_in_float64(xp, name):
    torch = needs_torch()
    make, make_torch = CASES[name]
    want = torch_pass(make_torch(torch.nn), X, G)
    layer = make()
    out = layer.forward(xp.from_numpy(X))
    grad_x = layer.backward(xp.from_numpy(G))
    assert largest_difference(out, want["output"]) <= 1e-12
    assert largest_difference(grad_x, want["input"]) <= 1e-12
    assert largest_difference(layer.predict(xp.from_numpy(X)), want["output"]) <= 1e-12
    assert out.dtype == xp.float64 and grad_x.dtype == xp.float64


@pytest.mark.parametrize("name", list(CASES))
def test_float32_within_its_tolerance(xp, name):
    torch = needs_torch()
    make, make_torch = CASES[name]
    x32, g32 = X.astype(np.float32), G.astype(np.float32)
    want = torch_pass(make_torch(torch.nn), x32.astype(np.float64), g32.astype(np.float64))
    layer = make()
    out = layer.forward(xp.from_numpy(x32))
    grad_x = layer.backward(xp.from_numpy(g32))
    assert out.dtype == xp.float32 and grad_x.dtype == xp.float32
    np.testing.assert_allclose(xp.to_numpy(out), want["output"], **tolerances("float32"))
    np.testing.assert_allclose(xp.to_numpy(grad_x), want["input"], **tolerances("float32"))


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_gradcheck(xp, cls):
    # away from the kinks at 0 (LeakyReLU, ELU), where a central difference straddles them
    x = np.array([[-2.5, -0.7, 0.4], [1.3, 3.0, -1.6]])
    xmlp.gradcheck(cls(), xp.from_numpy(x), rng=0)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_far_out_no_overflow_and_no_warning(cls):
    """No exp of a large x is ever computed, even in the branch xp.where discards: no overflow
    warning (an error under -W error), finite values and gradients."""
    x = np.array([-1e4, -800.0, 800.0, 1e4])
    layer = cls()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer.forward(x)
        grad = layer.backward(np.ones(4))
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    np.testing.assert_array_equal(out[2:], x[2:])  # linear far right, for all five
    np.testing.assert_array_equal(grad[2:], [1.0, 1.0])


def test_values_at_their_edges():
    leaky = xmlp.LeakyReLU(0.5)
    np.testing.assert_array_equal(leaky.forward(np.array([-2.0, 0.0, 2.0])), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(leaky.backward(np.ones(3)), [0.5, 0.5, 1.0])  # 0: the slope
    elu = xmlp.ELU(2.0)
    assert elu.forward(np.array([-1e4]))[0] == -2.0
    np.testing.assert_array_equal(elu.backward(np.ones(1)), [0.0])
    assert xmlp.GELU().forward(np.array([0.0]))[0] == 0.0
    assert xmlp.SiLU().forward(np.array([-1e4]))[0] == -0.0
    soft = xmlp.Softplus(beta=2.0, threshold=4.0)
    out = soft.forward(np.array([1.99, 2.01]))  # beta x on each side of the threshold
    assert out[0] == pytest.approx(np.log1p(np.exp(3.98)) / 2, rel=1e-15) and out[1] == 2.01
    np.testing.assert_allclose(soft.backward(np.ones(2)), [1 / (1 + np.exp(-3.98)), 1.0],
                               rtol=1e-15)


def test_zero_is_on_the_slope_side_of_leaky_relu():
    """x = 0 takes the negative_slope branch: with a negative slope, +0.0 becomes -0.0, as
    torch.nn.LeakyReLU(-0.5) gives (-0.0 becomes +0.0)."""
    leaky = xmlp.LeakyReLU(-0.5)
    x = np.array([0.0, -0.0, 2.0, -2.0])
    for out in (leaky.predict(x), leaky.forward(x)):
        np.testing.assert_array_equal(out, [0.0, 0.0, 2.0, 1.0])
        np.testing.assert_array_equal(np.signbit(out), [True, False, False, False])


def test_softplus_is_linear_only_past_its_default_threshold_of_20():
    """Softplus() (threshold 20, as torch's): at beta x = 20 itself the soft formula still
    applies (log1p(exp(20)) is 2e-9 above 20), past it the input comes back as it is; the
    gradient likewise (sigmoid(20) just below 1, then exactly 1)."""
    soft = xmlp.Softplus()
    x = np.array([20.0, 20.5])
    for out in (soft.predict(x), soft.forward(x)):
        assert out[0] == np.log1p(np.exp(20.0)) and out[0] > 20.0
        assert out[1] == 20.5
    e = np.exp(20.0)
    grad = soft.backward(np.ones(2))
    assert grad[0] == e / (e + 1.0) and grad[0] < 1.0
    assert grad[1] == 1.0


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_a_new_layer_holds_no_state(cls):
    """Before any forward, every stored activation (GELU's tanh_inner too) is None, as after
    clear_state()."""
    layer = cls()
    assert layer.state_names
    assert {name: getattr(layer, name) for name in layer.state_names} == dict.fromkeys(
        layer.state_names)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_nan_stays_nan(cls):
    out = cls().forward(np.array([np.nan, 1.0]))
    assert np.isnan(out[0]) and np.isfinite(out[1])


# -- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "error", "words"), [
    (lambda: xmlp.LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a real number"),
    (lambda: xmlp.LeakyReLU(True), TypeError, "got bool: True"),
    (lambda: xmlp.LeakyReLU(float("nan")), ValueError, "must be a finite number, got nan"),
    (lambda: xmlp.ELU(None), TypeError, "ELU: alpha must be a real number, got NoneType"),
    (lambda: xmlp.ELU(float("inf")), ValueError, "ELU: alpha must be a finite number"),
    (lambda: xmlp.Softplus(beta=0), ValueError, "Softplus: beta must be a finite number > 0"),
    (lambda: xmlp.Softplus(beta=-1.0), ValueError, "got -1.0"),
    (lambda: xmlp.Softplus(threshold=float("inf")), ValueError, "threshold must be a finite"),
    (lambda: xmlp.Softplus(threshold=[20]), TypeError,
     "Softplus: threshold must be a real number, got list: [20]"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_arguments_are_checked(make, error, words):
    with pytest.raises(error) as info:
        make()
    assert words in str(info.value)


def test_arguments_of_every_real_type_and_reprs():
    assert repr(xmlp.LeakyReLU(np.float32(0.25))) == "LeakyReLU(negative_slope=0.25)"
    assert type(xmlp.LeakyReLU(np.float32(0.25)).negative_slope) is float
    assert repr(xmlp.ELU(2)) == "ELU(alpha=2.0)"
    assert repr(xmlp.GELU()) == 'GELU(approximate="tanh")'
    assert repr(xmlp.SiLU()) == "SiLU()"
    assert repr(xmlp.Softplus(1, 20)) == "Softplus(beta=1.0, threshold=20.0)"


# -- what they refuse --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_bad_input_is_refused_and_changes_nothing(xp, cls):
    act = cls()
    act.forward(data(xp, (5, 3)))
    act.backward(data(xp, (5, 3), seed=1))
    name = cls.__name__
    rejects(TypeError, act, lambda: act.forward(xp.from_numpy(np.ones(3), "int64")),
            f"{name}.forward", "int64")
    rejects(ValueError, act, lambda: act.forward(xp.from_numpy(np.float64(1.0))),
            f"{name}.forward", "got shape ()")
    rejects(ValueError, act, lambda: act.backward(data(xp, (3, 5))), f"{name}.backward",
            "(5, 3)", "got (3, 5)")
    rejects(TypeError, act, lambda: act.backward(data(xp, (5, 3), "float32")), "float32")
    g, other = foreign(xp, np.ones((5, 3)))
    rejects(TypeError, act, lambda: act.backward(g), ns_name(xp), other)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_backward_before_forward(cls):
    with pytest.raises(xmlp.ForwardNotCalledError):
        cls().backward(np.ones(3))


# -- in a model --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_in_a_sequential_trained_by_fit(xp, cls):
    """Each runs in the plain chain of a Sequential (it is chain-safe) and trains: the loss
    falls, and the model's gradients pass gradcheck."""
    kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
    model = xmlp.Sequential(xmlp.Linear(2, 4, rng=0, init="he", **kw), cls(),
                            xmlp.Linear(4, 1, rng=1, init="xavier", **kw))
    assert model.plain("forward")
    x = np.random.default_rng(0).standard_normal((16, 2))
    t = np.sin(x[:, :1]) + x[:, 1:] ** 2
    history = xmlp.fit(model, xp.from_numpy(x), xp.from_numpy(t), epochs=10, lr=0.05,
                       progress=False)
    assert history[-1] < history[0]
    xmlp.gradcheck(model, xp.from_numpy(x[:2]), rng=1)
