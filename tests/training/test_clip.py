"""xmlp.clip_grad_norm on every backend: torch.nn.utils.clip_grad_norm_'s total norm and
clipped gradients (against torch itself and a NumPy float64 reference), the namespace, device
and dtype of what it returns, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import layer_kwargs, message, rejects
from xmlp.backend import to_host

SHAPES = [(6, 3), (6,), (2, 6), (2,)]  # MLP(3, 6, 2)'s parameters
NORMS = [2.0, 1.0, 3.5, math.inf]


def grads_np(scale: float, seed: int = 1) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    return [scale * gen.standard_normal(s) for s in SHAPES]


def with_grads(xp, grads, dtype="float64"):
    model = xmlp.MLP(3, 6, 2, rng=0, **layer_kwargs(xp, dtype))
    for (module, leaf), g in zip(_slots(model), grads, strict=True):
        setattr(module, "grad_" + leaf, xp.from_numpy(g, dtype))
    return model


def _slots(model):
    return [(model.linear1, "weights"), (model.linear1, "biases"),
            (model.linear2, "weights"), (model.linear2, "biases")]


def reference(grads, max_norm, norm_type):
    """torch's formula in NumPy float64: (total norm, clipped gradients)."""
    flat = np.concatenate([g.ravel() for g in grads])
    total = (np.abs(flat).max() if norm_type == math.inf
             else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type))
    coef = min(1.0, max_norm / (total + 1e-6))
    return total, [g * coef for g in grads]


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("scale", [10.0, 0.01], ids=["clipped", "left-alone"])
def test_matches_the_numpy_reference(xp, dtype, norm_type, scale):
    grads = grads_np(scale)
    model = with_grads(xp, grads, dtype)
    total = xmlp.clip_grad_norm(model, max_norm=1.5, norm_type=norm_type)
    want_total, want = reference([g.astype(dtype).astype(np.float64) for g in grads], 1.5,
                                 norm_type)
    assert tuple(total.shape) == () and total.dtype == getattr(xp.ns, dtype)
    ref = xp.ns.asarray(0.0, dtype=getattr(xp.ns, dtype), device=xp.device)
    assert type(total) is type(ref) or xp.name == "dask"  # 0-d array: no host read
    tol = tolerances(dtype)
    np.testing.assert_allclose(to_host(total), want_total, **tol)
    for (module, leaf), w in zip(_slots(model), want, strict=True):
        got = getattr(module, "grad_" + leaf)
        assert got.dtype == getattr(xp.ns, dtype)
        np.testing.assert_allclose(to_host(got), w, **tol)


@pytest.mark.parametrize("norm_type", NORMS)
def test_equal_to_torch_clip_grad_norm(xp, norm_type):
    torch = pytest.importorskip("torch", reason="torch is the reference clip_grad_norm_")
    grads = grads_np(5.0)
    model = with_grads(xp, grads)
    total = xmlp.clip_grad_norm(model, 2.0, norm_type=norm_type)
    params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    torch_total = torch.nn.utils.clip_grad_norm_(params, 2.0, norm_type=norm_type)
    np.testing.assert_allclose(to_host(total), torch_total.numpy(), rtol=1e-13, atol=0)
    for (module, leaf), p in zip(_slots(model), params, strict=True):
        np.testing.assert_allclose(to_host(getattr(module, "grad_" + leaf)), p.grad.numpy(),
                                   rtol=1e-13, atol=1e-15)


# gradients whose squares (powers) overflow or underflow, per dtype
EXTREMES = {"float64": (1e200, 1e-200), "float32": (1e25, 1e-25)}


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("which", [0, 1], ids=["huge", "tiny"])
def test_gradients_whose_powers_overflow_or_underflow(xp, dtype, norm_type, which):
    """The total is scale times the total of the gradients / scale (torch's is inf for the
    huge ones, 0 for the tiny ones): huge gradients are clipped to max_norm, not zeroed."""
    scale = EXTREMES[dtype][which]
    unit = grads_np(1.0)
    model = with_grads(xp, [scale * g for g in unit], dtype)
    total = xmlp.clip_grad_norm(model, max_norm=1.5, norm_type=norm_type)
    want_total = reference([g.astype(dtype).astype(np.float64) for g in unit], 1.5,
                           norm_type)[0]
    tol = tolerances(dtype)
    np.testing.assert_allclose(to_host(total) / scale, want_total, **tol)
    for (module, leaf), g in zip(_slots(model), unit, strict=True):
        got = to_host(getattr(module, "grad_" + leaf))  # huge: times 1.5 / total, tiny: kept
        w = g * 1.5 / want_total if which == 0 else scale * g
        np.testing.assert_allclose(got, w, rtol=tol["rtol"], atol=0)


@pytest.mark.parametrize("norm_type", [1e5, 1e300, 10**400], ids=["1e5", "1e300", "10**400"])
def test_a_huge_norm_type_is_the_max_norm(xp, norm_type):
    """Its powers of every element but the largest underflow to 0 (torch's overflow to inf
    and zero every gradient); an int beyond the float range is the max-norm itself."""
    model = with_grads(xp, grads_np(10.0))
    total = xmlp.clip_grad_norm(model, max_norm=1.5, norm_type=norm_type)
    want_total, want = reference(grads_np(10.0), 1.5, math.inf)
    np.testing.assert_allclose(to_host(total), want_total, rtol=1e-14, atol=0)
    for (module, leaf), w in zip(_slots(model), want, strict=True):
        np.testing.assert_allclose(to_host(getattr(module, "grad_" + leaf)), w, rtol=1e-14,
                                   atol=0)


def test_below_1_the_total_grows_as_the_count_to_the_power_1_over_p():
    """norm_type=1e-300: one nonzero element is its own norm; two make a total beyond the
    float range (2 ** 1e300), computed as inf: every gradient is clipped to 0."""
    model = with_grads(_numpy(), [np.zeros(s) for s in SHAPES])
    model.linear1.grad_weights[0, 0] = -4.0
    assert float(xmlp.clip_grad_norm(model, 1e9, norm_type=1e-300)) == 4.0
    model.linear2.grad_biases[1] = 1.0
    with np.errstate(over="ignore"):  # NumPy warns of 2.0 ** 1e300
        assert float(xmlp.clip_grad_norm(model, 1e9, norm_type=1e-300)) == math.inf
    assert not any(np.any(g) for _, g in model.named_grads())


def test_the_clipped_step_is_the_step_on_clipped_gradients(xp):
    """An optimizer step after clipping uses the clipped gradients."""
    grads = grads_np(10.0)
    model = with_grads(xp, grads)
    start = [to_host(p) for p in model.parameters()]
    xmlp.clip_grad_norm(model, 1.0)
    xmlp.optim.SGD(model, lr=0.1).step()
    _, clipped = reference(grads, 1.0, 2.0)
    for got, p0, g in zip(model.parameters(), start, clipped, strict=True):
        np.testing.assert_allclose(to_host(got), p0 - 0.1 * g, **tolerances("float64"))


@pytest.mark.requires_backends("jax")
def test_it_traces_under_jax_jit():
    import jax

    from tests.conftest import backend

    jb = backend("jax")
    model = with_grads(jb, grads_np(10.0))
    holders = [model.linear1, model.linear2]
    names = [n for n, _ in model.named_grads()]

    @jax.jit
    def clip(grads):
        for (module, leaf), g in zip(_slots(model), grads, strict=True):
            setattr(module, "grad_" + leaf, g)
        from xmlp.training.clip import clip_grads

        total = clip_grads(holders, 1.0, 2.0)
        return total, [getattr(m, "grad_" + leaf) for m, leaf in _slots(model)]

    total, clipped = clip([jb.from_numpy(g) for g in grads_np(10.0)])
    want_total, want = reference(grads_np(10.0), 1.0, 2.0)
    np.testing.assert_allclose(float(total), want_total, rtol=1e-12)
    assert len(names) == len(clipped)
    for got, w in zip(clipped, want, strict=True):
        np.testing.assert_allclose(np.asarray(got), w, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"max_norm": 0.0}, ValueError, "clip_grad_norm: max_norm must be a finite number > 0, "
     "got 0.0"),
    ({"max_norm": math.nan}, ValueError,
     "clip_grad_norm: max_norm must be a finite number > 0, got nan"),
    ({"max_norm": "1"}, TypeError, "clip_grad_norm: max_norm must be a real number, got "
     "str: '1'"),
    ({"max_norm": 1.0, "norm_type": 0}, ValueError,
     "clip_grad_norm: norm_type must be a number > 0 or 'inf', got 0"),
    ({"max_norm": 1.0, "norm_type": "fro"}, TypeError,
     "clip_grad_norm: norm_type must be a number > 0 or 'inf', got 'fro'"),
])
def test_bad_arguments_change_nothing(kwargs, error, text):
    model = with_grads(_numpy(), grads_np(10.0))
    assert rejects(error, model, lambda: xmlp.clip_grad_norm(model, **kwargs)) == text


def test_inf_as_a_string_is_the_max_norm():
    model = with_grads(_numpy(), grads_np(10.0))
    total = xmlp.clip_grad_norm(model, 1.0, norm_type="inf")
    assert float(total) == pytest.approx(reference(grads_np(10.0), 1.0, math.inf)[0])


def test_missing_or_mismatched_gradients_change_nothing():
    model = xmlp.MLP(3, 6, 2, rng=0)
    rejects(xmlp.NoGradientError, model, lambda: xmlp.clip_grad_norm(model, 1.0),
            "clip_grad_norm: no gradient for 'linear1.weights'")
    model = with_grads(_numpy(), grads_np(10.0))
    model.linear2.grad_biases = np.zeros(3)
    rejects(ValueError, model, lambda: xmlp.clip_grad_norm(model, 1.0),
            "the gradient for 'linear2.biases' must have the parameter's shape (2,)")
    assert message(TypeError, lambda: xmlp.clip_grad_norm("model", 1.0)) == (
        "clip_grad_norm: model must be an xmlp.Module, got str")
    assert message(ValueError, lambda: xmlp.clip_grad_norm(xmlp.Tanh(), 1.0)) == (
        "clip_grad_norm: the Tanh has no parameters")


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_nonfinite_gradient_is_clipped_as_torch_clips_it(bad):
    """No error (that would read the norm): an infinite total zeroes the finite gradients
    and makes the infinite elements NaN, a NaN makes every gradient NaN, as in torch."""
    torch = pytest.importorskip("torch")
    grads = grads_np(1.0)
    grads[0][0, 0] = bad
    model = with_grads(_numpy(), grads)
    with np.errstate(invalid="ignore"):  # NumPy warns of inf * 0
        total = xmlp.clip_grad_norm(model, 1.0)
    params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.from_numpy(g.copy())
    want = torch.nn.utils.clip_grad_norm_(params, 1.0)
    np.testing.assert_array_equal(to_host(total), want.numpy())
    for (module, leaf), p in zip(_slots(model), params, strict=True):
        np.testing.assert_array_equal(getattr(module, "grad_" + leaf), p.grad.numpy())
    assert np.isnan(model.linear1.grad_weights[0, 0])


def _numpy():
    from tests.conftest import Backend

    return Backend("numpy", np, np)
