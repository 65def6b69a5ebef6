"""A layer of the user's own, written the public way (a subclass of xmlp.Module that lists
``param_names`` and writes forward, backward and predict), on every backend: it gets
grad_<p> (None before backward), its place from its parameters, the base class's checks,
update_params, named_parameters / named_grads, every optimizer, fit, save / load, to(),
Sequential (first or anywhere), compiled steps where it is pure array math, and declared
buffers (``buffer_names``) saved, loaded and moved but never trained. The old private
``_param_names`` works, with a DeprecationWarning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xmlp
from tests.helpers import foreign, layer_kwargs, ns_name, rejects
from tests.reference import adam_reference, sgd_reference


class Scale(xmlp.Module):
    """y = x * scale, one scale per feature (the guide's layer)."""

    param_names = ("scale",)
    state_names = ("x", "output")

    def __init__(self, scale: Any) -> None:
        self.scale = scale
        self.x: Any = None
        self.output: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        self.output = x * self.scale
        return self.output

    def predict(self, x: Any) -> Any:
        return x * self.scale

    def backward(self, grad_output: Any) -> Any:
        xp = xmlp.ops.ops_like(grad_output).xp
        self.grad_scale = xp.sum(xp.reshape(grad_output * self.x, (-1, self.scale.shape[0])),
                                 axis=0)
        return grad_output * self.scale


class Square(xmlp.Module):
    """y = x**2: a layer without parameters that stores only x."""

    def forward(self, x: Any) -> Any:
        self.x = x
        return x * x

    def predict(self, x: Any) -> Any:
        return x * x

    def backward(self, grad_output: Any) -> Any:
        return 2.0 * self.x * grad_output


class Center(xmlp.Module):
    """y = x - mean, the mean a running average kept in a buffer (updated by forward)."""

    buffer_names = ("mean",)
    state_names = ("x", "output")

    def __init__(self, mean: Any) -> None:
        self.mean = mean
        self.x: Any = None
        self.output: Any = None

    def forward(self, x: Any) -> Any:
        xp = xmlp.ops.ops_like(x).xp
        self.mean = 0.5 * self.mean + 0.5 * xp.mean(x, axis=0)
        self.x, self.output = x, x - self.mean
        return self.output

    def predict(self, x: Any) -> Any:
        return x - self.mean

    def backward(self, grad_output: Any) -> Any:
        return grad_output  # the running mean is no function of this x's gradient path


def scale(xp, values=(0.5, -2.0, 1.5), dtype="float64"):
    return Scale(xp.from_numpy(np.array(values), dtype))


X = np.random.default_rng(1).standard_normal((5, 3))


# -- the protocol ----------------------------------------------------------------------------------
def test_gradient_is_none_until_the_first_backward(xp):
    layer = scale(xp)
    assert layer.grad_scale is None and layer.grad_names == ("grad_scale",)
    assert dict(layer.named_grads()) == {"scale": None}
    layer.forward(xp.from_numpy(X))
    layer.backward(xp.from_numpy(np.ones((5, 3))))
    np.testing.assert_allclose(xp.to_numpy(layer.grad_scale), X.sum(axis=0), rtol=1e-15)
    with pytest.raises(AttributeError, match="'Scale' object has no attribute 'grad_other'"):
        layer.grad_other  # noqa: B018 - only gradients of listed parameters read None


def test_the_place_is_the_parameters(xp):
    layer = scale(xp, dtype="float32")
    assert layer.dtype == xp.float32 and layer.xp is xmlp.ops.ops_like(layer.scale).xp
    assert layer.spec.describe().startswith(f"{ns_name(xp)} float32")


def test_the_base_class_checks_what_the_math_is_handed(xp):
    layer = scale(xp)
    with pytest.raises(xmlp.ForwardNotCalledError):
        layer.backward(xp.from_numpy(np.ones((5, 3))))
    layer.forward(xp.from_numpy(X))
    layer.backward(xp.from_numpy(np.ones((5, 3))))
    rejects(TypeError, layer, lambda: layer.forward(xp.from_numpy(X, "float32")),
            "Scale.forward", "float32", "float64")
    x, other = foreign(xp, X)
    rejects(TypeError, layer, lambda: layer.forward(x), "Scale.forward", ns_name(xp), other)
    rejects(ValueError, layer, lambda: layer.forward(xp.from_numpy(np.zeros((0, 3)))),
            "empty batch")
    rejects(ValueError, layer, lambda: layer.backward(xp.from_numpy(np.ones((3, 5)))),
            "Scale.backward", "got (3, 5)")
    layer.scale = xp.from_numpy(np.ones(3), "float32")  # replaced by hand
    rejects(TypeError, layer, lambda: layer.predict(xp.from_numpy(X)), "parameter 'scale'",
            "float32")


def test_a_layer_without_parameters_takes_any_floating_input(xp):
    layer = Square()
    out = layer.forward(xp.from_numpy(X, "float32"))
    assert out.dtype == xp.float32
    rejects(TypeError, layer, lambda: layer.forward(xp.from_numpy(np.ones(3), "int64")),
            "Square.forward", "int64")
    xmlp.gradcheck(layer, xp.from_numpy(X[:2]), rng=0)


def test_the_old_private_name_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"Old\._param_names is deprecated; declare the "
                      r"parameters as param_names = \('w',\)"):
        class Old(xmlp.Module):
            _param_names = ["w"]  # noqa: RUF012 - old code wrote lists

            def __init__(self):
                self.w = np.ones(2)

            def forward(self, x):
                self.x = x
                return x * self.w

            def backward(self, g):
                self.grad_w = g * self.x
                return g * self.w

    layer = Old()
    assert Old.param_names == ("w",) and layer.grad_w is None
    layer.forward(np.ones(2))
    layer.backward(np.ones(2))
    layer.update_params(0.5)
    np.testing.assert_array_equal(layer.w, [0.5, 0.5])


@pytest.mark.parametrize(("attrs", "words"), [
    ({"param_names": "scale"}, "Bad.param_names must be a tuple of attribute names, e.g. "
                               "('scale',), got 'scale'"),
    ({"param_names": ["scale"]}, "got ['scale']"),
    ({"buffer_names": ("not a name",)}, "Bad.buffer_names must be a tuple"),
    ({"param_names": ("a",), "buffer_names": ("a",)}, "'a' is listed twice"),
], ids=["str", "list", "not-identifier", "both"])
def test_names_are_checked_when_the_class_is_made(attrs, words):
    with pytest.raises(TypeError) as info:
        type("Bad", (xmlp.Module,), attrs)
    assert words in str(info.value)


# -- what the protocol gives --------------------------------------------------------------------
def test_update_params_and_every_optimizer_follow_the_torch_formulas(xp):
    """Three steps of each optimizer on a Scale: the reference formulas, step for step."""
    t = np.random.default_rng(2).standard_normal((5, 3))
    for kind in ("plain", "sgd", "adam", "adamw"):
        layer = scale(xp)
        opt = {"plain": None, "sgd": lambda m: xmlp.optim.SGD(m, lr=0.1, momentum=0.9),
               "adam": lambda m: xmlp.optim.Adam(m, lr=0.1),
               "adamw": lambda m: xmlp.optim.AdamW(m, lr=0.1, weight_decay=0.1)}[kind]
        optimizer = opt(layer) if opt else None
        grads = []
        for _ in range(3):
            loss = xmlp.MSELoss()
            loss.forward(layer.forward(xp.from_numpy(X)), xp.from_numpy(t))
            layer.backward(loss.backward())
            grads.append([xp.to_numpy(layer.grad_scale)])
            layer.update_params(0.1) if optimizer is None else optimizer.step()
        start = [np.array([0.5, -2.0, 1.5])]
        if kind in ("plain", "sgd"):
            want = sgd_reference(start, grads, [0.1] * 3, momentum=0.9 * (kind == "sgd"))[0]
        else:
            want = adam_reference(start, grads, [0.1] * 3, weight_decay=0.1 * (kind == "adamw"),
                                  decoupled=kind == "adamw")[0]
        np.testing.assert_allclose(xp.to_numpy(layer.scale), want[0], rtol=1e-12, atol=1e-14)


def test_fit_save_load_and_to(xp, tmp_path):
    model = xmlp.Sequential(scale(xp), xmlp.Linear(3, 1, rng=0, **layer_kwargs(xp)))
    assert [n for n, _ in model.named_parameters()] == ["0.scale", "1.weights", "1.biases"]
    assert model.spec.same_place(model[0].spec)  # the first layer with parameters says
    t = xp.from_numpy(X @ np.array([[1.0], [2.0], [-1.0]]))
    opt = xmlp.optim.Adam(model, lr=0.05)
    history = xmlp.fit(model, xp.from_numpy(X), t, epochs=20, optimizer=opt, progress=False)
    assert history[-1] < history[0]
    xmlp.save(model, tmp_path / "own.npz", opt)
    other = xmlp.Sequential(scale(xp, (1.0, 1.0, 1.0)), xmlp.Linear(3, 1, rng=1,
                                                                      **layer_kwargs(xp)))
    other_opt = xmlp.optim.Adam(other, lr=0.5)
    xmlp.load(other, tmp_path / "own.npz", other_opt)
    np.testing.assert_array_equal(xp.to_numpy(other[0].scale), xp.to_numpy(model[0].scale))
    assert other_opt.step_count == 20 and other_opt.lr == 0.05
    other.to(dtype="float32")
    assert other[0].scale.dtype == xp.float32 and other[0].x is None
    out = other.predict(xp.from_numpy(X, "float32"))
    np.testing.assert_allclose(xp.to_numpy(out), xp.to_numpy(model.predict(xp.from_numpy(X))),
                               rtol=1e-5, atol=1e-5)


def test_a_model_of_own_layers_alone(xp):
    """A Sequential whose only layer with parameters is the user's: it lives where that
    layer's parameters do; fit, update_params and gradcheck work."""
    model = xmlp.Sequential(Square(), scale(xp))
    assert model.spec.same_place(model[1].spec)
    history = xmlp.fit(model, xp.from_numpy(X), xp.from_numpy(X), epochs=5, lr=0.01,
                       progress=False)
    assert history[-1] < history[0]
    xmlp.gradcheck(model, xp.from_numpy(X[:2]), rng=0)


def test_a_refused_chain_changes_nothing(xp):
    """The second layer of the chain refuses (a Linear of 4 inputs after 3 features): the
    user's layer, which ran first, is put back as it was."""
    model = xmlp.Sequential(scale(xp), xmlp.Linear(4, 1, rng=0, **layer_kwargs(xp)))
    rejects(ValueError, model, lambda: model.forward(xp.from_numpy(X)), "Linear(4, 1).forward")


@pytest.mark.slow
@pytest.mark.xp_only("jax", "torch")
# inductor itself calls torch.jit.script_method, which torch deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_compiled_step_equals_the_eager_one(xp):
    """compile=True traces the user's layer (pure array math): the same parameters as eager
    steps; compile='auto' keeps a model with a layer of the user's eager."""
    t = xp.from_numpy(X[:, :1])
    models = []
    for compile_ in (False, True):
        model = xmlp.Sequential(scale(xp), xmlp.Linear(3, 1, rng=0, **layer_kwargs(xp)))
        step = xmlp.TrainStep(model, optimizer=xmlp.optim.Adam(model, lr=0.1), compile=compile_)
        assert step.compiled is compile_
        for _ in range(3):
            step(xp.from_numpy(X), t)
        models.append(model)
    for a, b in zip(models[1].parameters(), models[0].parameters(), strict=True):
        assert type(a) is type(b)
        np.testing.assert_allclose(xp.to_numpy(a), xp.to_numpy(b), rtol=1e-12, atol=1e-14)
    auto = xmlp.Sequential(scale(xp), xmlp.Linear(3, 1, rng=0, **layer_kwargs(xp)))
    assert not xmlp.TrainStep(auto, lr=0.1).compiled


# -- buffers of the user's own -------------------------------------------------------------------
def test_declared_buffers_are_listed_saved_loaded_moved_and_not_trained(xp, tmp_path):
    model = xmlp.Sequential(Center(xp.from_numpy(np.zeros(3))),
                            xmlp.Linear(3, 1, rng=0, **layer_kwargs(xp)))
    assert [n for n, _ in model.named_buffers()] == ["0.mean"]
    assert [n for n, _ in model.named_parameters()] == ["1.weights", "1.biases"]
    opt = xmlp.optim.Adam(model, lr=0.1)
    model.forward(xp.from_numpy(X))
    model.backward(xp.from_numpy(np.ones((5, 1))))
    mean = xp.to_numpy(model[0].mean)
    np.testing.assert_allclose(mean, 0.5 * X.mean(axis=0), rtol=1e-15)
    opt.step()
    np.testing.assert_array_equal(xp.to_numpy(model[0].mean), mean)  # not trained
    xmlp.save(model, tmp_path / "center.npz")
    other = xmlp.Sequential(Center(xp.from_numpy(np.ones(3))),
                            xmlp.Linear(3, 1, rng=1, **layer_kwargs(xp)))
    xmlp.load(other, tmp_path / "center.npz")
    np.testing.assert_array_equal(xp.to_numpy(other[0].mean), mean)
    other.to(dtype="float32")
    assert other[0].mean.dtype == xp.float32
