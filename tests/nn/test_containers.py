"""MLP and Sequential on every backend: a training step against the NumPy float64 reference,
leading batch dims, the layers they call and how they are built; a pass one of their
layers refuses leaves every layer as it was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import (
    MODELS,
    assert_unchanged,
    data,
    foreign,
    layer_kwargs,
    message,
    ns_name,
    rejects,
    state,
    used_mlp,
)
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


# -- a pass a layer refuses --------------------------------------------------------------------
@pytest.mark.parametrize("kind", MODELS)
def test_container_forward_rejected(xp, kind):
    model = used_mlp(xp, kind)
    layer = "Linear(3, 6)"
    for method in ("forward", "predict"):
        call = getattr(model, method)
        rejects(ValueError, model, lambda c=call: c(data(xp, (5, 2))), layer, "got (5, 2)")
        rejects(ValueError, model, lambda c=call: c(xp.from_numpy(np.float64(1.0))),
                layer, "got ()")
        rejects(TypeError, model, lambda c=call: c(data(xp, (5, 3), "float32")),
                "float32", "float64")
        rejects(TypeError, model, lambda c=call: c(xp.from_numpy(np.ones((5, 3)), "int64")),
                "int64")
        rejects(TypeError, model, lambda c=call: c(foreign(xp, np.ones((5, 3)))[0]),
                ns_name(xp))
        rejects(TypeError, model, lambda c=call: c(np.ones((5, 3)).tolist()), "list")


@pytest.mark.parametrize("kind", MODELS)
def test_container_backward_rejected(xp, kind):
    model = used_mlp(xp, kind)
    rejects(ValueError, model, lambda: model.backward(data(xp, (5, 3))), "(5, 2)", "got (5, 3)")
    rejects(TypeError, model, lambda: model.backward(data(xp, (5, 2), "float32")), "float32")


# MLP.forward/backward skip the snapshot only while its layers agree and are chained; a layer
# moved or cleared on its own (public calls on model.linear1 / model.linear2) takes the
# snapshot path, so these hold for MLP as for Sequential.
CONTAINERS_MIDWAY = ["mlp", "sequential"]


@pytest.mark.parametrize("kind", CONTAINERS_MIDWAY)
def test_container_backward_rejected_by_an_earlier_layer(xp, kind):
    """The first layer's state was cleared (``to()`` on it alone does that), so backward runs
    through the last layers and then fails: those keep their previous gradients too."""
    model = used_mlp(xp, kind)
    linears = [m for m in model.modules() if isinstance(m, xmlp.Linear)]
    linears[0].to()
    rejects(xmlp.ForwardNotCalledError, model, lambda: model.backward(data(xp, (5, 2), seed=7)),
            "Perform forward pass first.")


@pytest.mark.parametrize("kind", CONTAINERS_MIDWAY)
def test_container_forward_rejected_by_a_later_layer(xp, kind):
    """The last layer was moved to float32 on its own, so forward runs through the first
    layers and then fails: those keep the x and output of the previous forward."""
    model = used_mlp(xp, kind)
    last = [m for m in model.modules() if isinstance(m, xmlp.Linear)][-1]
    last.to(dtype=xp.float32)
    rejects(TypeError, model, lambda: model.forward(data(xp, (5, 3), seed=7)),
            "float64", "float32")


def test_mlp_backward_after_a_sub_layer_ran_on_its_own_changes_nothing_when_rejected():
    """A sub-layer's own forward (another batch size) breaks the chain MLP.forward left; the
    backward that this makes fail must leave every layer as it was (the snapshot path)."""
    gen = np.random.default_rng(3)
    for sub, grad_rows in (("linear1", 5), ("activation", 5), ("linear2", 3)):
        model = xmlp.MLP(2, 4, 1, rng=0)
        model.forward(gen.standard_normal((5, 2)))
        model.backward(gen.standard_normal((5, 1)))  # gradients to keep
        layer = getattr(model, sub)
        width = 2 if sub == "linear1" else 4
        layer.forward(gen.standard_normal((3, width)))
        rejects(ValueError, model, lambda m=model, r=grad_rows: m.backward(np.ones((r, 1))))


def test_sequential_backward_after_a_sub_layer_ran_on_its_own_changes_nothing_when_rejected():
    """As for MLP: Sequential.backward skips its snapshot only when the stored arrays are those
    of one forward through the whole chain. A layer's own forward (another batch size) breaks
    the chain, and the backward this makes fail leaves every layer as it was; with two Linear
    layers the only link of the chain is the broken one."""
    gen = np.random.default_rng(3)
    cases = [  # (layers, the one that runs on its own, its input width, rows of the gradient)
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Linear(4, 1, rng=1)], 0, 2, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 0, 2, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 1, 4, 5),
        (lambda: [xmlp.Linear(2, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 1, rng=1)], 2, 4, 3),
    ]
    for make, sub, width, grad_rows in cases:
        model = xmlp.Sequential(*make())
        model.forward(gen.standard_normal((5, 2)))
        model.backward(gen.standard_normal((5, 1)))  # gradients to keep
        model[sub].forward(gen.standard_normal((3, width)))
        rejects(ValueError, model, lambda m=model, r=grad_rows: m.backward(np.ones((r, 1))))


def _swaps(xp: Any) -> dict[str, Any]:
    """name -> a function that changes a used MLP by hand so that its forward must fail in the
    last layer (after the first has run)."""

    def dims(m: Any) -> None:
        m.linear2 = xmlp.Linear(7, 2, rng=0, **layer_kwargs(xp))

    def dtype(m: Any) -> None:
        m.linear2.weights = xp.astype(m.linear2.weights, xp.float32)

    def shape(m: Any) -> None:
        m.linear2.weights = data(xp, (2, 7))

    def bias(m: Any) -> None:
        m.linear2.biases = data(xp, (3,))

    def activation(m: Any) -> None:
        class Refuses(xmlp.Tanh):
            def forward(self, x: Any) -> Any:
                raise ValueError("refused")

        m.activation = Refuses()

    return {"dims": dims, "dtype": dtype, "shape": shape, "bias": bias,
            "activation": activation}


@pytest.mark.parametrize("swap", list(_swaps(None)))
def test_mlp_forward_after_a_swap_by_hand_keeps_every_layer(xp, swap):
    model = used_mlp(xp)
    _swaps(xp)[swap](model)
    for method in ("forward", "backward"):
        arg = data(xp, (5, 3), seed=4) if method == "forward" else data(xp, (5, 2), seed=4)
        before = state(model)
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            getattr(model, method)(arg)
        assert_unchanged(before, model)


# -- chains ------------------------------------------------------------------------------------
def test_sequential_trusts_only_layers_that_declare_chain_safety():
    """Sequential skips its snapshot only around layers whose own class declares
    ``chain_safe``: a Linear subclass that rejects more (and does not say otherwise) is not
    trusted, so a pass it rejects midway still leaves the earlier layers as they were."""

    class Picky(xmlp.Linear):
        def forward(self, x):
            raise ValueError("Picky rejects every input")

    first = xmlp.Linear(3, 4, rng=0)
    model = xmlp.Sequential(first, xmlp.ReLU(), Picky(4, 2, rng=1))
    assert not model.plain("forward")
    with pytest.raises(ValueError, match="Picky"):
        model.forward(np.ones((5, 3)))
    assert first.x is None and first.output is None and model.layers[1].output is None
    plain = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.ReLU(), xmlp.Linear(4, 2, rng=1))
    assert plain.plain("forward")


def test_sequential_that_is_no_plain_chain_undoes_a_forward_a_later_layer_rejects():
    """Only the first layer of a plain chain sees the outside array. A Sequential that starts
    with an activation, or whose Linear layers no longer chain (one swapped by hand), takes the
    snapshot path: the layers before the one that rejects the pass keep their old state."""
    x = np.random.default_rng(0).standard_normal((5, 3))
    starts_with_tanh = xmlp.Sequential(xmlp.Tanh(), xmlp.Linear(3, 2, rng=0))
    starts_with_tanh.forward(x)
    rejects(ValueError, starts_with_tanh, lambda: starts_with_tanh.forward(np.ones((5, 4))),
            "Linear(3, 2)", "got (5, 4)")
    swapped = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 2, rng=1))
    swapped.forward(x)
    swapped.layers[2] = xmlp.Linear(5, 2, rng=2)  # takes 5 features, the chain gives 4
    rejects(ValueError, swapped, lambda: swapped.forward(x), "Linear(5, 2)", "got (5, 4)")


def test_sequential_calls_a_chain_safe_subclass_own_forward_and_backward():
    """Inside a plain chain the inner Linears run without re-checking what the chain hands
    them, but a chain-safe Linear subclass that overrides forward or backward still has its
    own method called, in every position, with the values of a plain Linear."""
    calls = []

    class Logged(xmlp.Linear):
        chain_safe = True

        def forward(self, x):
            calls.append(("forward", id(self)))
            return super().forward(x)

        def backward(self, grad_output):
            calls.append(("backward", id(self)))
            return super().backward(grad_output)

    gen = np.random.default_rng(0)
    x, g = gen.standard_normal((5, 3)), gen.standard_normal((5, 2))
    layers = [Logged(3, 4, rng=0), xmlp.Tanh(), Logged(4, 4, rng=1), xmlp.ReLU(),
              Logged(4, 2, rng=2)]
    model = xmlp.Sequential(*layers)
    plain = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.Tanh(), xmlp.Linear(4, 4, rng=1),
                            xmlp.ReLU(), xmlp.Linear(4, 2, rng=2))
    assert model.plain("forward") and plain.plain("forward")
    np.testing.assert_array_equal(model.forward(x), plain.forward(x))
    np.testing.assert_array_equal(model.backward(g), plain.backward(g))
    ids = [id(layer) for layer in layers[::2]]
    assert calls == [("forward", i) for i in ids] + [("backward", i) for i in ids[::-1]]
    for a, b in zip(layers[::2], plain.layers[::2], strict=True):
        np.testing.assert_array_equal(a.grad_weights, b.grad_weights)
        np.testing.assert_array_equal(a.grad_biases, b.grad_biases)


# -- construction ------------------------------------------------------------------------------
def test_mlp_constructor_checks():
    with pytest.raises(ValueError, match="positive int"):
        xmlp.MLP(1, 0, 1)
    with pytest.raises(TypeError, match="real floating"):
        xmlp.MLP(1, 10, 1, dtype="int64")
    with pytest.raises(TypeError, match="not an array namespace"):
        xmlp.MLP(1, 10, 1, xp=np.linalg)
    with pytest.raises(TypeError, match="cannot make arrays on device='gpu'"):
        xmlp.MLP(1, 10, 1, device="gpu")


def test_sequential_of_mixed_dtypes_or_namespaces_is_refused(xp):
    with pytest.raises(TypeError, match=r"layer 2 holds .*float32.*layer 0 holds .*float64"):
        xmlp.Sequential(xmlp.Linear(2, 2, **layer_kwargs(xp)), xmlp.Tanh(),
                        xmlp.Linear(2, 2, **layer_kwargs(xp, "float32")))
    other = np if xp.name != "numpy" else pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"one namespace, device and dtype\. Convert a layer "
                                        r"with \.to\(\.\.\.\) first\.$"):
        xmlp.Sequential(xmlp.Sequential(xmlp.Linear(2, 2, **layer_kwargs(xp))),
                        xmlp.Linear(2, 2, xp=other))
    fixed = xmlp.Linear(2, 2, **layer_kwargs(xp, "float32")).to(dtype=xp.ns.float64)
    xmlp.Sequential(xmlp.Linear(2, 2, **layer_kwargs(xp)), fixed).forward(data(xp, (3, 2)))


def test_mlp_children_are_named_as_in_the_seed():
    names = [name for name, _ in xmlp.MLP(1, 2, 1, rng=0).named_children()]
    assert names == ["linear1", "activation", "linear2"]


class NoPredict(xmlp.Module):
    """A Module whose predict was switched off: not callable."""

    predict = None  # type: ignore[assignment]

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, grad_output: Any) -> Any:
        return grad_output


def test_a_layer_without_predict_is_refused():
    assert message(TypeError, lambda: xmlp.Sequential(NoPredict())) == (
        "Sequential: layer 0 (NoPredict) has no predict() method")


def test_a_sequential_needs_a_layer():
    assert message(ValueError, lambda: xmlp.Sequential()) == "Sequential needs at least one layer"
