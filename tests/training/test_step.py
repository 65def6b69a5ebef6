"""TrainStep: one call per training step, compiled on JAX (and PyTorch on request), the same
numbers as the eager step, the model left as an eager step leaves it."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import layer_kwargs
from xmlp.backend import to_host

# inductor itself calls torch.jit.script_method, which torch deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

COMPILERS = pytest.mark.xp_only("jax", "torch")  # the backends with a compiler

GEN = np.random.default_rng(7)
X_REG, Y_REG = GEN.standard_normal((40, 4)), GEN.standard_normal((40, 2))
X_CLS, Y_CLS = GEN.standard_normal((40, 4)), GEN.integers(0, 3, 40)


def mlp(**kw):
    return xmlp.MLP(4, 8, 2, rng=0, **kw)


def deep(**kw):
    return xmlp.Sequential(xmlp.Linear(4, 8, rng=1, init="xavier", **kw), xmlp.ReLU(),
                           xmlp.Linear(8, 8, rng=2, init="xavier", **kw), xmlp.Tanh(),
                           xmlp.Linear(8, 3, rng=3, init="xavier", **kw))


CONFIGS = {
    "mlp-mse-sgd": (mlp, xmlp.MSELoss, lambda m: {"lr": 0.1}, "reg"),
    "deep-ce-adam": (deep, xmlp.CrossEntropyLoss,
                     lambda m: {"optimizer": xmlp.optim.Adam(m, lr=0.01)}, "cls"),
    "deep-ce-adamw": (deep, xmlp.CrossEntropyLoss,
                      lambda m: {"optimizer": xmlp.optim.AdamW(m, lr=0.01, weight_decay=0.1)},
                      "cls"),
    "mlp-mse-nesterov": (mlp, xmlp.MSELoss,
                         lambda m: {"optimizer": xmlp.optim.SGD(
                             m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)}, "reg"),
}


def data_for(kind, xp, dtype="float64"):
    if kind == "reg":
        return xp.from_numpy(X_REG, dtype), xp.from_numpy(Y_REG, dtype)
    return xp.from_numpy(X_CLS, dtype), xp.from_numpy(Y_CLS)


def eager_reference(name, steps=20):
    """The NumPy float64 parameters after ``steps`` eager steps through the public passes."""
    build, loss_cls, opt_kw, kind = CONFIGS[name]
    model, loss = build(), loss_cls()
    kw = opt_kw(model)
    opt = kw.get("optimizer") or xmlp.optim.SGD(model, lr=kw["lr"])
    x, y = (X_REG, Y_REG) if kind == "reg" else (X_CLS, Y_CLS)
    for _ in range(steps):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
    return [p.copy() for p in model.parameters()]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_twenty_steps_equal_the_eager_numpy_reference(xp, name):
    build, loss_cls, opt_kw, kind = CONFIGS[name]
    model = build(**layer_kwargs(xp))
    kw = opt_kw(model)
    step = xmlp.TrainStep(model, loss_cls(), **kw)
    assert step.compiled is (xp.name == "jax")
    x, y = data_for(kind, xp)
    for _ in range(20):
        loss = step(x, y)
    assert tuple(loss.shape) == ()
    for got, want in zip(model.parameters(), eager_reference(name), strict=True):
        assert type(got) is type(xp.ns.asarray(0.0, device=xp.device)) or xp.name == "dask"
        np.testing.assert_allclose(to_host(got), want, rtol=0, atol=1e-12)
    assert step.optimizer.step_count == 20


@pytest.mark.slow
@COMPILERS
@pytest.mark.parametrize("name", list(CONFIGS))
def test_twenty_compiled_steps_equal_the_eager_numpy_reference(xp, name):
    build, loss_cls, opt_kw, kind = CONFIGS[name]
    model = build(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, loss_cls(), compile=True, **opt_kw(model))
    assert step.compiled
    x, y = data_for(kind, xp)
    for _ in range(20):
        loss = step(x, y)
    assert tuple(loss.shape) == ()
    for got, want in zip(model.parameters(), eager_reference(name), strict=True):
        assert type(got) is type(x)
        np.testing.assert_allclose(to_host(got), want, rtol=0, atol=1e-12)
    assert step.optimizer.step_count == 20


@COMPILERS
@pytest.mark.parametrize("name", ["mlp-mse-sgd", "deep-ce-adam"])
def test_float32_models_stay_float32(xp, name):
    build, loss_cls, opt_kw, kind = CONFIGS[name]
    model = build(**layer_kwargs(xp, "float32"))
    step = xmlp.TrainStep(model, loss_cls(), compile=True, **opt_kw(model))
    x, y = data_for(kind, xp, "float32")
    for _ in range(3):
        loss = step(x, y)
    assert loss.dtype == xp.ns.float32
    assert all(p.dtype == xp.ns.float32 for p in model.parameters())
    for got, want in zip(model.parameters(), eager_reference(name, 3), strict=True):
        np.testing.assert_allclose(to_host(got), want, **tolerances("float32"))


def traces(step):
    """How many programs the step's compiler made (one per input shape and dtype)."""
    (traced,) = [fn for (_, output, _), fn in step._traced.items() if not output]
    return len(traced.programs) if hasattr(traced, "programs") else traced._cache_size()


@COMPILERS
def test_one_trace_per_input_shape(xp):
    model = mlp(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    for _ in range(5):
        step(x, y)
    assert traces(step) == 1
    step(x[:30, ...], y[:30, ...])  # a shorter last batch: one more shape
    step(x, y)
    assert traces(step) == 2


@COMPILERS
def test_a_new_learning_rate_costs_no_new_trace(xp):
    model = mlp(**layer_kwargs(xp))
    opt = xmlp.optim.Adam(model, lr=0.01)
    step = xmlp.TrainStep(model, optimizer=opt, compile=True)
    x, y = data_for("reg", xp)
    step(x, y)
    opt.lr = 0.001
    step(x, y)
    assert traces(step) == 1


@COMPILERS
def test_the_model_stays_the_model_between_compiled_steps(xp, tmp_path):
    """Parameters are real arrays after every call, activations cleared; save, load, to(),
    predict and eager steps work between compiled ones, and the whole sequence equals the
    same sequence of eager steps."""
    model = mlp(**layer_kwargs(xp))
    opt = xmlp.optim.Adam(model, lr=0.01)
    step = xmlp.TrainStep(model, optimizer=opt, compile=True)
    eager = xmlp.TrainStep(model, optimizer=opt, compile=False)
    assert step.compiled and not eager.compiled
    x, y = data_for("reg", xp)
    step(x, y)
    assert all(type(p) is type(x) for p in model.parameters())  # never a tracer
    assert model.linear1.x is None and model.linear1.grad_weights is None
    xmlp.save(model, tmp_path / "m.npz", optimizer=opt)
    eager(x, y)
    step(x, y)
    xmlp.load(model, tmp_path / "m.npz", optimizer=opt)
    model.predict(x)
    step(x, y)
    eager(x, y)
    want = eager_reference_adam(3)
    for got, w in zip(model.parameters(), want, strict=True):
        np.testing.assert_allclose(to_host(got), w, rtol=0, atol=1e-12)
    assert opt.step_count == 3


def eager_reference_adam(steps):
    model, loss = mlp(), xmlp.MSELoss()
    opt = xmlp.optim.Adam(model, lr=0.01)
    for _ in range(steps):
        loss.forward(model.forward(X_REG), Y_REG)
        model.backward(loss.backward())
        opt.step()
    return model.parameters()


def test_a_refused_call_changes_nothing(xp):
    model = mlp(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, lr=0.1)
    x, y = data_for("reg", xp)
    before = [to_host(p) for p in model.parameters()]
    with pytest.raises(TypeError):
        step(xp.from_numpy(X_REG, "float32"), y)
    with pytest.raises(ValueError):
        step(x, y[:, :1])
    with pytest.raises(ValueError):
        step(x[:, :3], y)
    for got, want in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(to_host(got), want)
    assert step.optimizer.step_count == 0


@pytest.mark.parametrize("compile", ["yes", 1, None])
def test_compile_takes_auto_true_or_false(compile):
    with pytest.raises(ValueError, match="compile must be 'auto', True or False"):
        xmlp.TrainStep(mlp(), lr=0.1, compile=compile)


def test_compile_true_without_a_compiler_is_refused():
    with pytest.raises(ValueError, match="numpy has no compiler xmlp can use"):
        xmlp.TrainStep(mlp(), lr=0.1, compile=True)
    assert not xmlp.TrainStep(mlp(), lr=0.1).compiled


def test_lr_or_optimizer_as_in_fit():
    model = mlp()
    with pytest.raises(TypeError, match="give lr"):
        xmlp.TrainStep(model)
    with pytest.raises(TypeError, match="not both"):
        xmlp.TrainStep(model, lr=0.1, optimizer=xmlp.optim.SGD(model, lr=0.1))


@COMPILERS
def test_fit_compiled_equals_fit_eager(xp):
    """fit trains through the compiled step (by default on JAX), the shorter last batch
    included, with the same numbers as the eager fit."""
    x, y = data_for("cls", xp)
    histories, params = [], []
    for compile in ("auto" if xp.name == "jax" else True, False):
        model = deep(**layer_kwargs(xp))
        opt = xmlp.optim.Adam(model, lr=0.01)
        histories.append(xmlp.fit(model, x, y, epochs=4, batch_size=16, optimizer=opt,
                                  loss=xmlp.CrossEntropyLoss(), compile=compile,
                                  progress=False))
        params.append([to_host(p) for p in model.parameters()])
    np.testing.assert_allclose(histories[0], histories[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(histories[0].accuracy, histories[1].accuracy)
    for a, b in zip(*params, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.xp_only("torch")
def test_auto_on_torch_compiles_once_the_eager_steps_took_what_a_compile_takes(xp):
    """compile="auto" on PyTorch: eager steps first (a short run never pays a compile), the
    compiled step once they have taken ``compile_after`` seconds; the same numbers."""
    model = mlp(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, lr=0.1)
    x, y = data_for("reg", xp)
    step(x, y)
    assert not step.compiled and not step._traced
    step.compile_after = 0.0
    step(x, y)  # eager, the second: past the time
    assert step.compiled and not step._traced
    for _ in range(18):
        step(x, y)
    assert traces(step) == 1
    for got, want in zip(model.parameters(), eager_reference("mlp-mse-sgd"), strict=True):
        np.testing.assert_allclose(to_host(got), want, rtol=0, atol=1e-12)
    own = xmlp.Sequential(xmlp.Linear(4, 2, **layer_kwargs(xp)), OwnTanh())
    step = xmlp.TrainStep(own, lr=0.1)
    step.compile_after = 0.0
    step(x, y)
    step(x, y)
    assert not step.compiled  # a layer of the user's: eager, as on JAX


class OwnTanh(xmlp.Tanh):
    """A layer of the user's (defined outside xmlp)."""


@pytest.mark.xp_only("torch")
def test_a_torch_step_updates_the_parameters_in_place_as_the_eager_step(xp):
    """The compiled torch step writes the new values into the same tensors, as an eager step
    and torch.optim do: a reference a user holds sees them."""
    model = mlp(**layer_kwargs(xp))
    held = list(model.parameters())
    step = xmlp.TrainStep(model, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    for _ in range(3):
        step(x, y)
    assert all(a is b for a, b in zip(model.parameters(), held, strict=True))
    for got, want in zip(held, eager_reference("mlp-mse-sgd", 3), strict=True):
        np.testing.assert_allclose(to_host(got), want, rtol=0, atol=1e-12)


@pytest.mark.xp_only("torch")
def test_a_torch_input_laid_out_differently_gets_a_program_of_its_own(xp):
    """x of the same shape, dtype and device but other strides (a transposed copy's
    transpose): a program of its own, the same numbers."""
    x, y = data_for("reg", xp)
    strided = x.T.contiguous().T  # column-major
    assert x.stride() != strided.stride()
    results = []
    for batches in ([x, x, x], [x, strided, x]):
        model = mlp(**layer_kwargs(xp))
        step = xmlp.TrainStep(model, lr=0.1, compile=True)
        for batch in batches:
            step(batch, y)
        results.append(_host(model))
    assert traces(step) == 2
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


# -- what a compiled step notices between calls (it checks nothing again while nothing changed)
def _warm(xp, **kw):
    model = mlp(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, compile=True, **(kw or {"lr": 0.1}))
    x, y = data_for("reg", xp)
    step(x, y)
    step(x, y)
    return model, step, x, y


def _host(model):
    return [to_host(p).copy() for p in model.parameters()]


@COMPILERS
def test_a_parameter_replaced_by_hand_is_checked_again(xp):
    model, step, x, y = _warm(xp)
    model.linear1.weights = xp.from_numpy(np.ones((8, 4)), "float32")
    before = _host(model)
    with pytest.raises(TypeError, match="parameter 'weights'"):
        step(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(_host(model), before, strict=True))
    model.linear1.weights = xp.from_numpy(np.ones((8, 4)))  # a right one is trained
    step(x, y)
    assert not np.array_equal(to_host(model.linear1.weights), np.ones((8, 4)))


@COMPILERS
def test_a_layer_replaced_by_hand_is_refused_as_by_the_optimizer(xp):
    model, step, x, y = _warm(xp)
    model.linear2 = xmlp.Linear(8, 2, rng=5, **layer_kwargs(xp))
    with pytest.raises(RuntimeError, match="layers changed since this optimizer was built"):
        step(x, y)


@COMPILERS
def test_arrays_unlike_those_checked_before_are_checked(xp):
    model, step, x, y = _warm(xp)
    before = _host(model)
    with pytest.raises(TypeError):
        step(xp.ns.astype(x, xp.ns.float32), y)
    with pytest.raises(ValueError):
        step(x, y[:, :1])
    with pytest.raises(TypeError):
        step(X_REG, Y_REG)  # NumPy arrays for a JAX or torch model: never moved silently
    assert all(np.array_equal(a, b) for a, b in zip(_host(model), before, strict=True))
    assert step.optimizer.step_count == 2


@COMPILERS
def test_eager_steps_and_new_hyperparameters_between_compiled_steps(xp):
    """An eager step, a new momentum and load_state_dict between compiled steps: the same
    parameters as the same sequence of eager steps."""
    def run(compiled):
        model = mlp(**layer_kwargs(xp))
        opt = xmlp.optim.SGD(model, lr=0.05, momentum=0.9)
        step = xmlp.TrainStep(model, optimizer=opt, compile=compiled)
        loss = xmlp.MSELoss()
        x, y = data_for("reg", xp)
        step(x, y)
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        step(x, y)
        opt.momentum = 0.5
        step(x, y)
        opt.load_state_dict(opt.state_dict())
        step(x, y)
        return _host(model), opt.step_count

    (compiled, n1), (eager, n2) = run(True), run(False)
    assert n1 == n2 == 5
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@COMPILERS
def test_changes_by_hand_between_steps_on_the_same_arrays_are_used(xp):
    """The same x and y each call (the quickest check: identity with what the last step
    left): a new activation layer, its new slope, a new learning rate and a parameter set by
    hand are each used by the next compiled step, as by the eager step."""
    def run(compiled):
        model = mlp(**layer_kwargs(xp))
        opt = xmlp.optim.SGD(model, lr=0.05)
        step = xmlp.TrainStep(model, optimizer=opt, compile=compiled)
        x, y = data_for("reg", xp)
        step(x, y)
        model.activation = xmlp.LeakyReLU(0.1)
        step(x, y)
        model.activation.negative_slope = 0.3
        step(x, y)
        opt.lr = 0.01
        step(x, y)
        model.linear2.biases = xp.from_numpy(np.full(2, 0.5))
        step(x, y)
        return _host(model)

    for a, b in zip(run(True), run(False), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@COMPILERS
def test_activations_stay_cleared_after_compiled_steps(xp):
    model, step, x, y = _warm(xp)
    model.forward(x)  # an eager pass between stores real arrays...
    step(x, y)  # ...which the next compiled step clears
    assert model.linear1.x is None and model.activation.output is None
    assert model.linear2.grad_weights is None and step.loss.diff is None


@COMPILERS
def test_the_output_is_handed_back_on_request(xp):
    model = mlp(**layer_kwargs(xp))
    step = xmlp.TrainStep(model, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    loss, output = step.run(x, y)
    assert tuple(output.shape) == (40, 2)
    loss, output = step.run(x, y, output=False)
    assert output is None and tuple(loss.shape) == ()


@COMPILERS
def test_a_loss_made_of_losses_is_left_without_the_trace_s_arrays(xp):
    """The stored arrays of a loss's own sub-losses are cleared after a compiled step, as the
    layers' are: never a tracer."""
    from xmlp.sklearn._losses import HalfSquaredError, L2Penalty

    model = mlp(**layer_kwargs(xp))
    loss = L2Penalty(HalfSquaredError(), [model.linear1, model.linear2], 0.1)
    step = xmlp.TrainStep(model, loss, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    step(x, y)
    step(x, y)
    assert [m for m in loss.modules()][1:] == [loss.loss, loss.loss.mse]
    assert loss.loss.mse.y is None and loss.loss.mse.diff is None


class ReadsAValue(xmlp.Tanh):
    """A layer of the user's whose forward branches on an array's value: no trace holds it."""

    def forward(self, x):
        return super().forward(-x if float(x[0, 0]) > 100 else x)


@COMPILERS
def test_a_trace_that_fails_leaves_no_tracer_and_the_parameters_as_they_were(xp):
    model = xmlp.Sequential(xmlp.Linear(4, 2, rng=0, **layer_kwargs(xp)), ReadsAValue())
    step = xmlp.TrainStep(model, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    model.forward(x)  # real activations before
    before = _host(model)
    with pytest.raises(Exception):  # noqa: B017  (JAX's and PyTorch's own errors)
        step(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(_host(model), before, strict=True))
    assert step.optimizer.step_count == 0
    for module in model.modules():
        for name in (*module.state_names, *module.grad_names):
            assert getattr(module, name) is None, name
    xmlp.TrainStep(model, lr=0.1, compile=False)(x, y)  # and it trains eagerly


def _compiled_as_eager(run):
    """``run(compile)`` returns host parameters: the compiled ones equal the eager ones."""
    for a, b in zip(run(False), run(True), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@COMPILERS
def test_the_same_tensor_as_x_and_y_then_two_tensors(xp):
    """An autoencoder's step(x, x), then distinct x and y like them: a trace made for one
    tensor in two places is not reused for two tensors."""
    x, _ = data_for("reg", xp)
    y = xp.from_numpy(GEN.standard_normal((40, 4)))

    def run(compiled):
        model = xmlp.MLP(4, 3, 4, rng=0, **layer_kwargs(xp))
        step = xmlp.TrainStep(model, lr=0.1, compile=compiled)
        step(x, x)
        for _ in range(3):
            step(x, y)
        step(y, y)
        return _host(model)

    _compiled_as_eager(run)


@pytest.mark.xp_only("torch")
def test_weights_tied_by_hand_then_untied(xp):
    x, _ = data_for("reg", xp)

    def run(compiled):
        model = xmlp.MLP(4, 4, 4, rng=0, **layer_kwargs(xp))
        step = xmlp.TrainStep(model, lr=0.05, compile=compiled)
        model.linear2.weights = model.linear1.weights  # tied: one tensor, two updates
        step(x, x)
        step(x, x)
        model.linear2.weights = model.linear1.weights * 0.5  # untied
        step(x, x)
        step(x, x)
        return _host(model)

    _compiled_as_eager(run)


@COMPILERS
def test_a_layer_number_set_by_hand_as_a_numpy_scalar_is_used_each_time(xp):
    x, y = data_for("reg", xp)

    def run(compiled):
        model = xmlp.MLP(4, 8, 2, rng=0, **layer_kwargs(xp))
        model.activation = xmlp.LeakyReLU(0.01)
        step = xmlp.TrainStep(model, lr=0.05, compile=compiled)
        step(x, y)
        for slope in np.linspace(0.5, 3.0, 3):  # np.float64 values
            model.activation.negative_slope = slope
            step(x, y)
        return _host(model)

    _compiled_as_eager(run)


@COMPILERS
def test_a_failed_first_compiled_step_leaves_generators_and_optimizer_as_they_were(xp):
    model = xmlp.Sequential(xmlp.Linear(4, 2, rng=0, **layer_kwargs(xp)), xmlp.Dropout(0.3, rng=1),
                            ReadsAValue())
    opt = xmlp.optim.Adam(model, lr=0.01)
    step = xmlp.TrainStep(model, optimizer=opt, compile=True)
    x, y = data_for("reg", xp)
    generator = model[1].rng_state
    with pytest.raises(Exception):  # noqa: B017  (JAX's own error; xmlp's TypeError on torch)
        step(x, y)
    assert model[1].rng_state == generator
    assert opt.state_dict()["state"] == {} and opt.step_count == 0
    eager = xmlp.TrainStep(model, optimizer=opt, compile=False)
    eager(x, y)  # trains on, eagerly, with the first mask
    model1 = xmlp.Sequential(xmlp.Linear(4, 2, rng=0, **layer_kwargs(xp)),
                             xmlp.Dropout(0.3, rng=1), xmlp.Tanh())
    xmlp.TrainStep(model1, optimizer=xmlp.optim.Adam(model1, lr=0.01), compile=False)(x, y)
    for a, b in zip(_host(model), _host(model1), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@COMPILERS
def test_a_refused_first_compiled_step_makes_no_optimizer_state(xp):
    model = xmlp.Sequential(xmlp.Linear(4, 3, rng=0, **layer_kwargs(xp)),
                            xmlp.BatchNorm1d(3, **layer_kwargs(xp)), xmlp.Linear(3, 2, rng=1,
                                                                               **layer_kwargs(xp)))
    opt = xmlp.optim.Adam(model, lr=0.01)
    step = xmlp.TrainStep(model, optimizer=opt, compile=True)
    x, y = data_for("reg", xp)
    with pytest.raises(ValueError, match="a batch of 1 sample"):
        step(x[:1, ...], y[:1, ...])
    assert opt.state_dict()["state"] == {} and opt.step_count == 0


@pytest.mark.xp_only("torch")
def test_a_step_torch_cannot_trace_says_so_and_what_to_do(xp):
    model = xmlp.Sequential(xmlp.Linear(4, 2, rng=0, **layer_kwargs(xp)), ReadsAValue())
    step = xmlp.TrainStep(model, lr=0.1, compile=True)
    x, y = data_for("reg", xp)
    with pytest.raises(TypeError, match=r"cannot be compiled for PyTorch.*compile=False"):
        step(x, y)


@pytest.mark.xp_only("torch")
def test_a_parameter_set_to_require_grad_in_place_is_refused_as_eagerly(xp):
    model, step, x, y = _warm(xp)
    before = _host(model)
    model.linear1.weights.requires_grad_(True)
    with pytest.raises(TypeError, match="requires grad"):
        step(x, y)
    with pytest.raises(TypeError, match="requires grad"):
        xmlp.TrainStep(model, lr=0.1, compile=False)(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(_host(model), before, strict=True))
