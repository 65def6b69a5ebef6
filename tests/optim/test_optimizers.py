"""xmlp.optim on every backend: SGD, Adam and AdamW against a NumPy float64 reference of
torch.optim's formulas and against torch.optim itself, state, schedules, bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import array_api_compat
import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import HUGE_INT, Tagged, int_id, rejects
from tests.reference import adam_reference, sgd_reference

STEPS = 20
# (optimizer, keyword arguments); lr is changed half-way (a schedule) in the tests below
CASES = {
    "sgd": ("SGD", {"lr": 0.1}),
    "sgd-wd": ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    "momentum": ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    "nesterov": ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    "adam": ("Adam", {"lr": 0.01}),
    "adam-l2": ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    "adamw": ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
}
SHAPES = [(5, 3), (5,), (4, 5), (4,)]  # MLP(3, 5, 4)'s parameters


def make_model(xp, dtype="float64", seed=0):
    return xmlp.MLP(3, 5, 4, xp=xp.module, device=xp.device, dtype=dtype, rng=seed)


def gradients(seed: int = 1) -> list[list[np.ndarray]]:
    gen = np.random.default_rng(seed)
    return [[gen.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def learning_rates(lr: float) -> list[float]:
    return [lr] * (STEPS // 2) + [lr / 2] * (STEPS - STEPS // 2)


def set_grads(xp, model, grads, dtype="float64"):
    """Store gradients by hand, as backward() would."""
    for layer, (gw, gb) in ((model.linear1, grads[:2]), (model.linear2, grads[2:])):
        layer.grad_weights = xp.from_numpy(gw, dtype)
        layer.grad_biases = xp.from_numpy(gb, dtype)


def run(xp, case, dtype="float64", steps=STEPS, model=None, opt=None, start=0):
    name, kwargs = CASES[case]
    model = make_model(xp, dtype) if model is None else model
    opt = getattr(xmlp.optim, name)(model, **kwargs) if opt is None else opt
    grads, lrs = gradients(), learning_rates(kwargs["lr"])
    for i in range(start, start + steps):
        opt.lr = lrs[i]
        set_grads(xp, model, grads[i], dtype)
        opt.step()
    return model, opt


def reference(case, params, dtype="float64"):
    name, kwargs = CASES[case]
    kwargs = dict(kwargs)
    grads = [[g.astype(dtype).astype(np.float64) for g in step] for step in gradients()]
    lrs = learning_rates(kwargs.pop("lr"))
    if name == "SGD":
        return sgd_reference(params, grads, lrs, **kwargs)[0]
    return adam_reference(params, grads, lrs, decoupled=name == "AdamW", **kwargs)[0]


@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_reference(xp, dtype, case):
    start = [xp.to_numpy(p).astype(np.float64) for p in make_model(xp, dtype).parameters()]
    model, opt = run(xp, case, dtype)
    assert opt.step_count == STEPS
    tol = tolerances(dtype) if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-4}
    for got, want in zip(model.parameters(), reference(case, start, dtype), strict=True):
        assert got.dtype == getattr(xp.ns, dtype)
        np.testing.assert_allclose(xp.to_numpy(got), want, **tol)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_optim(xp, case):
    """Same weights, same gradients, torch.optim itself: equal to 1e-12 in float64."""
    torch = pytest.importorskip("torch")
    name, kwargs = CASES[case]
    model = make_model(xp)
    params = [torch.tensor(xp.to_numpy(p)) for p in model.parameters()]
    topt = getattr(torch.optim, name)(params, **kwargs)
    grads, lrs = gradients(), learning_rates(kwargs["lr"])
    for i in range(STEPS):
        for group in topt.param_groups:
            group["lr"] = lrs[i]
        for p, g in zip(params, grads[i], strict=True):
            p.grad = torch.from_numpy(g)
        topt.step()
    model, _ = run(xp, case)
    for got, want in zip(model.parameters(), params, strict=True):
        np.testing.assert_allclose(xp.to_numpy(got), want.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["momentum", "adam"])
def test_state_lives_with_the_parameters(xp, dtype, case):
    model, opt = run(xp, case, dtype, steps=2)
    assert opt._state is not None
    for arrays, param in zip(opt._state, model.parameters(), strict=True):
        for a in arrays:
            assert type(a) is type(param) and a.dtype == param.dtype
            assert array_api_compat.device(a) == array_api_compat.device(param)
            assert tuple(a.shape) == tuple(param.shape)


@pytest.mark.parametrize("case", ["nesterov", "adam-l2", "adamw"])
def test_state_dict_resumes_exactly(xp, case):
    straight, _ = run(xp, case, steps=10)
    first, opt = run(xp, case, steps=5)
    saved = opt.state_dict()
    assert saved["optimizer"] == CASES[case][0] and saved["step_count"] == 5
    for entry in saved["state"].values():
        for a in entry.values():
            assert type(a) is np.ndarray  # plain host data
    resumed = make_model(xp, seed=99)  # other weights: they come from the first model
    resumed.assign_parameters({n: xp.from_numpy(xp.to_numpy(p))
                                for n, p in first.named_parameters()})
    name, kwargs = CASES[case]
    fresh = getattr(xmlp.optim, name)(resumed, **{**kwargs, "lr": 123.0})
    fresh.load_state_dict(saved)
    assert fresh.lr == saved["hyperparameters"]["lr"] and fresh.step_count == 5
    run(xp, case, model=resumed, opt=fresh, steps=5, start=5)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(a), xp.to_numpy(b))


def test_state_dict_before_the_first_step():
    model = xmlp.MLP(3, 5, 4, rng=0)
    opt = xmlp.optim.Adam(model)
    saved = opt.state_dict()
    assert saved == {"optimizer": "Adam", "step_count": 0, "state": {},
                     "hyperparameters": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                                         "weight_decay": 0.0}}
    other = xmlp.optim.Adam(model, lr=0.5)
    other.load_state_dict(saved)
    assert other.lr == 1e-3 and other.state_dict() == saved
    plain = xmlp.optim.SGD(model, lr=0.1)
    model.forward(np.ones((2, 3)))
    model.backward(np.ones((2, 4)))
    plain.step()
    assert plain.state_dict()["state"] == {} and plain.step_count == 1


def test_sgd_without_momentum_is_update_params(xp):
    """The same arithmetic as the seed's model.update_params."""
    x = xp.from_numpy(np.random.default_rng(0).standard_normal((6, 3)))
    a, b = make_model(xp), make_model(xp)
    opt = xmlp.optim.SGD(b, lr=0.3)
    for model, update in ((a, lambda: a.update_params(0.3)), (b, opt.step)):
        model.forward(x)
        model.backward(xp.from_numpy(np.ones((6, 4))))
        update()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(p), xp.to_numpy(q))


def test_repr_and_defaults():
    model = xmlp.MLP(2, 3, 1, rng=0)
    assert repr(xmlp.optim.AdamW(model)) == (
        "AdamW(lr=0.001, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.01)")
    sgd = xmlp.optim.SGD(model, lr=np.float32(0.5), momentum=0.9)
    assert type(sgd.lr) is float and sgd.momentum == 0.9 and not sgd.nesterov
    assert xmlp.optim.Adam(model).betas == (0.9, 0.999)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"lr": -0.1}, ValueError, ["lr", ">= 0"]),
    ({"lr": math.nan}, ValueError, ["lr"]),
    ({"lr": "0.1"}, TypeError, ["lr", "str"]),
    ({"betas": 0.9}, TypeError, ["pair"]),
    ({"betas": (0.9, 0.99, 0.9)}, TypeError, ["pair"]),
])
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_rejects_bad_hyperparameters(name, kwargs, exc, words):
    with pytest.raises(exc) as info:
        getattr(xmlp.optim, name)(xmlp.MLP(2, 3, 1, rng=0), **kwargs)
    for word in [name, *words]:
        assert word in str(info.value)


@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"lr": -1.0}, ValueError, ["lr"]),
    ({"lr": None}, TypeError, ["lr", "NoneType"]),
    ({"lr": 0.1, "momentum": -0.5}, ValueError,
     ["SGD: momentum must be a finite number >= 0, got -0.5"]),
    ({"lr": 0.1, "nesterov": True}, ValueError, ["nesterov", "momentum > 0"]),
    ({"lr": 0.1, "momentum": 0.9, "nesterov": 1}, TypeError, ["nesterov"]),
    ({"lr": 0.1, "weight_decay": math.inf}, ValueError,
     ["SGD: weight_decay must be a finite number >= 0, got inf"]),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, exc, words):
    with pytest.raises(exc) as info:
        xmlp.optim.SGD(xmlp.MLP(2, 3, 1, rng=0), **kwargs)
    for word in ["SGD", *words]:
        assert word in str(info.value)


@pytest.mark.parametrize("value", [10**400, -(10**400), Fraction(10**400, 3)],
                         ids=["10**400", "-10**400", "fraction-beyond-float"])
@pytest.mark.parametrize("name", ["lr", "weight_decay", "eps"])
def test_hyperparameters_beyond_the_float_range_are_value_errors(name, value):
    # an int too large for a float is still a real number: out of range, not the wrong type
    with pytest.raises(ValueError) as info:
        xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=0), **{name: value})
    assert "Adam" in str(info.value) and name in str(info.value)


def test_hyperparameters_of_every_real_type_become_floats():
    model = xmlp.MLP(2, 3, 1, rng=0)
    opt = xmlp.optim.Adam(model, lr=Fraction(1, 4), betas=(np.float32(0.5), 0),
                          eps=np.int64(1), weight_decay=np.uint8(2))
    assert opt.lr == 0.25 and opt.betas == (0.5, 0.0) and opt.eps == 1.0
    assert opt.weight_decay == 2.0
    assert all(type(v) is float for v in (opt.lr, *opt.betas, opt.eps, opt.weight_decay))
    sgd = xmlp.optim.SGD(model, lr=10**300, momentum=Fraction(1, 2))
    assert sgd.lr == 1e300 and sgd.momentum == 0.5


def test_bad_lr_assignment_keeps_the_old_one():
    opt = xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=0), lr=0.01)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.lr == 0.01
    opt.lr = 0.001
    assert opt.lr == 0.001


@pytest.mark.parametrize("case", ["momentum", "adam"])
def test_step_before_backward_changes_nothing(xp, case):
    model = make_model(xp)
    name, kwargs = CASES[case]
    opt = getattr(xmlp.optim, name)(model, **kwargs)
    rejects(xmlp.NoGradientError, model, opt.step, f"{name}.step", "linear1.weights", "backward")
    assert opt.step_count == 0 and opt._state is None
    run(xp, case, model=model, opt=opt, steps=1)
    before = opt.state_dict()
    model.linear2.grad_biases = None
    rejects(xmlp.NoGradientError, model, opt.step, "linear2.biases")
    model.linear2.grad_biases = xp.from_numpy(np.ones(3))  # wrong shape
    rejects(ValueError, model, opt.step, "linear2.biases", "(4,)", "(3,)")
    after = opt.state_dict()
    assert after["step_count"] == before["step_count"] == 1
    for n, entry in before["state"].items():
        for k, a in entry.items():
            np.testing.assert_array_equal(after["state"][n][k], a)


def test_model_moved_after_steps(xp):
    model, opt = run(xp, "adam", steps=2)
    model.to(dtype="float32")
    set_grads(xp, model, gradients()[0], "float32")
    rejects(TypeError, model, opt.step, "Adam.step", "float32", "float64", "load_state_dict")
    opt.load_state_dict(opt.state_dict())  # the way out the message names
    opt.step()
    assert opt.step_count == 3 and model.linear1.weights.dtype == xp.float32


def test_layers_changed_after_building():
    model = xmlp.Sequential(xmlp.Linear(2, 3, rng=0), xmlp.Tanh(), xmlp.Linear(3, 1, rng=1))
    opt = xmlp.optim.SGD(model, lr=0.1)
    model.layers[0] = xmlp.Linear(2, 3, rng=2)
    model.forward(np.ones((4, 2)))
    model.backward(np.ones((4, 1)))
    with pytest.raises(RuntimeError) as info:
        opt.step()
    assert str(info.value) == (
        "SGD.step: the Sequential's layers changed since this optimizer was built; build a new "
        "optimizer for the model as it is now.")


def test_load_state_dict_rejects_bad_dicts():
    model, opt = run(_numpy(), "adam", steps=2)
    good = opt.state_dict()
    before = opt.state_dict()

    def bad(change, exc, *words):
        sd = {**good, "state": {k: dict(v) for k, v in good["state"].items()},
              "hyperparameters": dict(good["hyperparameters"])}
        change(sd)
        with pytest.raises(exc) as info:
            opt.load_state_dict(sd)
        for word in words:
            assert word in str(info.value)
        now = opt.state_dict()
        assert now["step_count"] == before["step_count"] and opt.lr == good["hyperparameters"]["lr"]
        for n, entry in before["state"].items():
            for k, a in entry.items():
                np.testing.assert_array_equal(now["state"][n][k], a)

    bad(lambda sd: sd.update(optimizer="SGD"), ValueError, "'SGD'", "'Adam'")
    bad(lambda sd: sd.pop("step_count"), ValueError, "step_count")
    bad(lambda sd: sd.update(step_count=-1), ValueError, "step_count")
    bad(lambda sd: sd.update(step_count=2.5), ValueError, "step_count must be an int >= 0")
    bad(lambda sd: sd.update(step_count=True), ValueError, "step_count must be an int >= 0")
    bad(lambda sd: sd["hyperparameters"].update(betas=[0.9, 1.5]), ValueError, "betas[1]")
    bad(lambda sd: sd["hyperparameters"].pop("eps"), ValueError, "hyperparameters")
    bad(lambda sd: sd["state"].pop("linear2.biases"), ValueError, "linear2.biases",
        "but the MLP has")
    bad(lambda sd: sd["state"]["linear1.weights"].pop("exp_avg"), ValueError,
        "the state of 'linear1.weights' must hold ['exp_avg', 'exp_avg_sq'], got ['exp_avg_sq']")
    bad(lambda sd: sd["state"].update({"linear1.weights": 5}), ValueError,
        "the state of 'linear1.weights' must hold ['exp_avg', 'exp_avg_sq'], got 5")
    bad(lambda sd: sd.update(state=[1]), TypeError,
        "Adam.load_state_dict: state must be a dict, got list")
    bad(lambda sd: sd["state"]["linear1.weights"].update(exp_avg=np.zeros((2, 2))), ValueError,
        "linear1.weights.exp_avg", "(2, 2)", "(5, 3)")
    bad(lambda sd: sd["state"]["linear1.biases"].update(exp_avg=np.array(["a"] * 5)), TypeError,
        "dtype <U1, not a real number type")
    bad(lambda sd: sd.update(state={}), ValueError, "no state")
    with pytest.raises(TypeError) as info:
        opt.load_state_dict([1, 2])
    assert str(info.value) == "Adam.load_state_dict: expected a dict from state_dict(), got list"
    sgd = xmlp.optim.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match=r"SGD\.load_state_dict: SGD with these hyperparameters "
                                         r"keeps no state"):
        sgd.load_state_dict({**good, "optimizer": "SGD", "hyperparameters": {
            "lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}})


def _numpy():
    import array_api_compat.numpy as anp

    from tests.conftest import Backend

    return Backend("numpy", np, anp)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_steps_update_the_parameters_in_place_where_arrays_are_mutable(xp, name):
    """On NumPy, array-api-strict, torch and CuPy a step writes into the parameter arrays: a
    reference to layer.weights taken before the step sees it (JAX and Dask rebind new ones)."""
    if xp.name in ("jax", "dask"):
        pytest.skip(f"{xp.name} arrays are immutable or lazy: steps rebind new arrays")
    model = xmlp.MLP(3, 4, 2, rng=0, xp=xp.module, device=xp.device)
    opt = (xmlp.optim.SGD(model, lr=0.1, momentum=0.9) if name == "SGD"
           else xmlp.optim.Adam(model, lr=0.1))
    held = [model.linear1.weights, model.linear2.biases]
    before = [xp.to_numpy(a).copy() for a in held]
    model.forward(xp.from_numpy(np.ones((5, 3)), model.dtype))
    model.backward(xp.from_numpy(np.ones((5, 2)), model.dtype))
    opt.step()
    assert model.linear1.weights is held[0] and model.linear2.biases is held[1]
    assert not np.array_equal(xp.to_numpy(held[0]), before[0])


def _mixed_ops_model(xp, start):
    """Linear(3, 5), Tanh, Linear(5, 4) from the weights ``start``, the second Linear built
    after xmlp.ops.numpy_fast.set_fast_paths was called: its ops are another object than the first
    one's (on NumPy the portable ops beside the fast ones; elsewhere a second portable ops), as
    for a user who toggles the fast paths between building two layers of one model."""

    was = xmlp.ops._fast_paths

    def linear(w, b):
        return xmlp.Linear(w.shape[1], w.shape[0], xp.from_numpy(w), xp.from_numpy(b),
                           xp=xp.module, device=xp.device, dtype="float64")

    try:
        first = linear(*start[:2])
        xmlp.ops.set_fast_paths(not was)
        second = linear(*start[2:])
    finally:
        xmlp.ops.set_fast_paths(was)
    return xmlp.Sequential(first, xmlp.Tanh(), second)


@pytest.mark.parametrize("case", ["adam", "adam-l2", "adamw"])
def test_adam_steps_layers_of_different_ops_one_parameter_at_a_time(xp, case):
    """Parameters that do not share one ops object take Adam's per-parameter loop (each
    parameter with its own layer's ops): the same values as the reference and as the grouped
    update of the same model built in one go, with decay (L2 or decoupled), lr schedule, state
    and step count kept per parameter."""
    name, kwargs = CASES[case]
    uniform = make_model(xp)
    start = [xp.to_numpy(p).astype(np.float64) for p in uniform.parameters()]
    model = _mixed_ops_model(xp, start)
    first, second = model.layers[0], model.layers[2]
    assert first.spec.ops is not second.spec.ops
    opt = getattr(xmlp.optim, name)(model, **kwargs)
    grads, lrs = gradients(), learning_rates(kwargs["lr"])
    for i in range(STEPS):
        opt.lr = lrs[i]
        for layer, (gw, gb) in ((first, grads[i][:2]), (second, grads[i][2:])):
            layer.grad_weights, layer.grad_biases = xp.from_numpy(gw), xp.from_numpy(gb)
        opt.step()
    assert opt._group_ops is None and opt.step_count == STEPS  # the per-parameter loop ran
    _, grouped = run(xp, case, model=uniform)
    assert grouped._group_ops is not None
    want = reference(case, start)
    for got, same, ref in zip(model.parameters(), uniform.parameters(), want, strict=True):
        assert got.dtype == xp.float64 and tuple(got.shape) == ref.shape
        np.testing.assert_allclose(xp.to_numpy(got), ref, **tolerances("float64"))
        np.testing.assert_allclose(xp.to_numpy(got), xp.to_numpy(same), rtol=1e-12, atol=1e-14)
    # the moments too: per parameter, in state_dict order, as the grouped optimizer's
    mine, theirs = opt.state_dict()["state"], grouped.state_dict()["state"]
    assert len(mine) == len(theirs) == 4
    for (_, entry), (_, other) in zip(sorted(mine.items()), sorted(theirs.items()), strict=True):
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(entry[key], other[key], rtol=1e-12, atol=1e-14)


def test_small_numpy_models_take_the_packed_adam(monkeypatch):
    """With the NumPy fast paths, the Adam step of a small model whose parameters share one ops
    object runs the packed update (all parameters in one pass over one (2, total) state
    array), never the per-parameter adam: the two round v differently in the last bits."""
    from xmlp.ops import numpy_fast as _dispatch

    was = xmlp.ops._fast_paths
    xmlp.ops.set_fast_paths(True)
    try:
        model = xmlp.MLP(3, 5, 4, rng=0)
    finally:
        xmlp.ops.set_fast_paths(was)
    ops = model.linear1.spec.ops
    assert isinstance(ops, _dispatch.NumpyOps) and model.linear2.spec.ops is ops
    calls = []

    def per_parameter(*args):
        calls.append(args)
        return type(ops).adam(ops, *args)

    monkeypatch.setattr(ops, "adam", per_parameter)
    start = [np.array(p) for p in model.parameters()]
    opt = xmlp.optim.AdamW(model, lr=0.01, weight_decay=0.1)
    grads = gradients()
    for step in range(3):
        for layer, (gw, gb) in ((model.linear1, grads[step][:2]),
                                (model.linear2, grads[step][2:])):
            layer.grad_weights, layer.grad_biases = gw, gb
        opt.step()
    assert calls == [] and opt._group_ops is ops and opt._packing is not None
    moments = opt._packing[0]
    assert moments.shape == (2, 5 * 3 + 5 + 4 * 5 + 4)
    assert all(a.base is moments for arrays in opt._state for a in arrays)
    want = adam_reference(start, grads[:3], [0.01] * 3, weight_decay=0.1, decoupled=True)[0]
    for got, ref in zip(model.parameters(), want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"betas": (-0.1, 0.9)}, ValueError, "betas[0] must be in [0, 1), got -0.1"),
    ({"betas": (1.5, 0.9)}, ValueError, "betas[0] must be in [0, 1), got 1.5"),
    ({"betas": ("a", 0.9)}, TypeError, "betas[0] must be a real number, got str: 'a'"),
    ({"betas": (0.9, 1.0)}, ValueError, "betas[1] must be in [0, 1), got 1.0"),
    ({"betas": (0.9, None)}, TypeError, "betas[1] must be a real number, got NoneType: None"),
    ({"eps": -1e-8}, ValueError, "eps must be a finite number >= 0, got -1e-08"),
    ({"eps": math.inf}, ValueError, "eps must be a finite number >= 0, got inf"),
    ({"weight_decay": -0.01}, ValueError, "weight_decay must be a finite number >= 0, got -0.01"),
    ({"weight_decay": True}, TypeError, "weight_decay must be a real number, got bool: True"),
])
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_hyperparameter_messages_name_each_one(name, kwargs, exc, message):
    """The whole message: the optimizer, the hyperparameter as the user wrote it, the range."""
    with pytest.raises(exc) as info:
        getattr(xmlp.optim, name)(xmlp.MLP(2, 3, 1, rng=0), **kwargs)
    assert str(info.value) == f"{name}: {message}"


# -- whole messages, checked steps, the state dict's arrays ------------------------------------
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


def test_loaded_optimizer_state_is_a_copy_of_the_dict(xp):
    """load_state_dict copies the state dict's arrays: changing the dict afterwards does not
    change the optimizer's state (which it updates in place on NumPy)."""
    model = xmlp.MLP(3, 5, 4, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    gen = np.random.default_rng(1)
    for layer in (model.linear1, model.linear2):
        layer.grad_weights = xp.from_numpy(gen.standard_normal(tuple(layer.weights.shape)))
        layer.grad_biases = xp.from_numpy(gen.standard_normal(tuple(layer.biases.shape)))
    opt = xmlp.optim.SGD(model, lr=0.1, momentum=0.9)
    opt.step()
    saved = opt.state_dict()
    want = {name: {k: a.copy() for k, a in entry.items()} for name, entry in saved["state"].items()}
    fresh = xmlp.optim.SGD(model, lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    for entry in saved["state"].values():
        for a in entry.values():
            a[...] = 123.0
    got = fresh.state_dict()["state"]
    assert got.keys() == want.keys()
    for name, entry in want.items():
        for key, a in entry.items():
            np.testing.assert_array_equal(got[name][key], a)


# -- numbers beyond the float range ------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda m, v: xmlp.optim.SGD(m, lr=v), lambda m, v: xmlp.optim.SGD(m, lr=0.1, momentum=v),
    lambda m, v: xmlp.optim.SGD(m, lr=0.1, weight_decay=v), lambda m, v: xmlp.optim.Adam(m, lr=v),
    lambda m, v: xmlp.optim.Adam(m, lr=0.1, eps=v),
    lambda m, v: xmlp.optim.Adam(m, lr=0.1, betas=(v, 0.9)),
], ids=["sgd-lr", "momentum", "weight_decay", "adam-lr", "eps", "beta1"])
@pytest.mark.parametrize("value", [HUGE_INT, -HUGE_INT, Fraction(HUGE_INT, 7)], ids=int_id)
def test_optimizer_hyperparameters_beyond_the_float_range(make, value):
    with pytest.raises(ValueError) as info:
        make(xmlp.MLP(1, 2, 1), value)
    assert type(info.value) is ValueError
