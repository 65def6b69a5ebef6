"""Dropout on every backend: the same masks from the same rng everywhere, a fresh mask each
forward, backward through that mask, predict the identity, p=0, equal to PyTorch's dropout
given PyTorch's mask (to 1e-12 in float64), gradcheck, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import data, foreign, ns_name, rejects
from tests.nn.torch_reference import largest_difference, needs_torch

GEN = np.random.default_rng(3)
X = GEN.standard_normal((6, 5))
G = GEN.standard_normal((6, 5))


def host_mask(seed, shape, p, draws=1):
    """The ``draws``-th mask a Dropout(p, rng=seed) makes, written out with NumPy: one float64
    uniform per element, kept where >= p, scaled by 1 / (1 - p)."""
    gen = np.random.default_rng(seed)
    for _ in range(draws):
        keep = gen.random(shape) >= p
    return keep / (1 - p)


def test_the_same_rng_gives_the_same_masks_on_every_backend(xp, dtype):
    drop = xmlp.Dropout(0.3, rng=5)
    x = xp.from_numpy(X, dtype)
    for draw in (1, 2, 3):  # a fresh mask each forward, the generator's next
        out = drop.forward(x)
        mask = host_mask(5, X.shape, 0.3, draw)
        np.testing.assert_allclose(xp.to_numpy(drop.mask), mask.astype(dtype), rtol=0, atol=0)
        np.testing.assert_allclose(xp.to_numpy(out), X.astype(dtype) * mask.astype(dtype),
                                   **tolerances(dtype))
        assert out.dtype == x.dtype and drop.mask.dtype == x.dtype
    grad = drop.backward(xp.from_numpy(G, dtype))
    np.testing.assert_allclose(xp.to_numpy(grad), G.astype(dtype) * mask.astype(dtype),
                               **tolerances(dtype))


def test_equal_to_pytorch_given_its_mask(xp):
    """PyTorch's dropout draws from its own generator, so its masks cannot be xmlp's: with the
    mask PyTorch drew (read off its output), xmlp's forward and backward equal PyTorch's."""
    torch = needs_torch()
    p = 0.35
    xt = torch.tensor(X, requires_grad=True)
    torch.manual_seed(0)
    yt = torch.nn.functional.dropout(xt, p, training=True)
    yt.backward(torch.tensor(G))
    keep = xt.grad.numpy() != 0  # where G (never 0) came through: the kept elements

    class TorchMask(xmlp.Dropout):
        def draw_mask(self, x):
            return xp.astype(xp.from_numpy(keep), x.dtype) * (1.0 / (1.0 - self.p))

    drop = TorchMask(p)
    out = drop.forward(xp.from_numpy(X))
    assert largest_difference(out, yt.detach().numpy()) <= 1e-12
    assert largest_difference(drop.backward(xp.from_numpy(G)), xt.grad.numpy()) <= 1e-12


def test_predict_is_the_identity_and_draws_nothing(xp):
    drop = xmlp.Dropout(0.5, rng=1)
    x = xp.from_numpy(X)
    before = drop.rng.bit_generator.state
    assert drop.predict(x) is x
    assert drop.rng.bit_generator.state == before
    assert drop.x is None and drop.mask is None


def test_p_zero_passes_x_through_and_draws_nothing(xp):
    drop = xmlp.Dropout(0.0, rng=1)
    before = drop.rng.bit_generator.state
    out = drop.forward(xp.from_numpy(X))
    np.testing.assert_array_equal(xp.to_numpy(out), X)
    np.testing.assert_array_equal(xp.to_numpy(drop.backward(xp.from_numpy(G))), G)
    assert drop.rng.bit_generator.state == before


def test_the_fraction_kept_and_the_mean_kept():
    """Over 200 000 elements about 1 - p are kept (within 5 standard deviations) and the mean
    is kept in expectation (the 1 / (1 - p) scaling)."""
    for p in (0.1, 0.5, 0.9):
        out = xmlp.Dropout(p, rng=0).forward(np.ones((400, 500)))
        kept = np.count_nonzero(out) / out.size
        assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / out.size)
        assert set(np.unique(out)) <= {0.0, 1 / (1 - p)}
        assert abs(out.mean() - 1) < 5 * np.sqrt(p / (1 - p) / out.size)


def test_a_shared_generator_advances_and_int_seeds_repeat():
    gen = np.random.default_rng(9)
    a, b = xmlp.Dropout(0.5, rng=gen), xmlp.Dropout(0.5, rng=gen)
    assert a.rng is gen and b.rng is gen
    first, second = a.forward(np.ones(50)), b.forward(np.ones(50))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(xmlp.Dropout(0.5, rng=4).forward(np.ones(50)),
                                  xmlp.Dropout(0.5, rng=4).forward(np.ones(50)))


def test_gradcheck(xp):
    """gradcheck runs every evaluation on a copy of the layer's generator: the same mask."""
    drop = xmlp.Dropout(0.4, rng=2)
    before = drop.rng.bit_generator.state
    xmlp.gradcheck(drop, xp.from_numpy(X[:2]), rng=0)
    assert drop.rng.bit_generator.state == before


# -- arguments and refusals ----------------------------------------------------------------------
@pytest.mark.parametrize(("p", "error", "words"), [
    (1.0, ValueError, "Dropout: p must be in [0, 1), got 1.0"),
    (1, ValueError, "got 1"),
    (-0.1, ValueError, "got -0.1"),
    (float("nan"), ValueError, "got nan"),
    ("0.5", TypeError, "Dropout: p must be a real number, got str"),
    (None, TypeError, "got NoneType"),
    (True, TypeError, "got bool"),
], ids=repr)
def test_p_must_be_in_zero_to_one(p, error, words):
    with pytest.raises(error) as info:
        xmlp.Dropout(p)
    assert words in str(info.value)


@pytest.mark.parametrize("rng", ["seed", -1, 1.5], ids=repr)
def test_rng_is_checked(rng):
    with pytest.raises((TypeError, ValueError), match="rng must be None"):
        xmlp.Dropout(0.5, rng=rng)


def test_p_of_every_real_type_and_repr():
    drop = xmlp.Dropout(np.float32(0.25))
    assert drop.p == 0.25 and type(drop.p) is float
    assert repr(drop) == "Dropout(p=0.25)"
    assert repr(xmlp.Dropout()) == "Dropout(p=0.5)"


def test_bad_input_is_refused_and_draws_nothing(xp):
    drop = xmlp.Dropout(0.5, rng=0)
    drop.forward(data(xp, (5, 3)))
    drop.backward(data(xp, (5, 3), seed=1))
    before = drop.rng.bit_generator.state
    rejects(TypeError, drop, lambda: drop.forward(xp.from_numpy(np.ones(3), "int64")),
            "Dropout.forward", "int64")
    rejects(ValueError, drop, lambda: drop.forward(xp.from_numpy(np.zeros((0, 3)))),
            "Dropout.forward", "empty batch")
    rejects(ValueError, drop, lambda: drop.backward(data(xp, (3, 5))), "Dropout.backward",
            "got (3, 5)")
    g, other = foreign(xp, np.ones((5, 3)))
    rejects(TypeError, drop, lambda: drop.backward(g), ns_name(xp), other)
    assert drop.rng.bit_generator.state == before
    with pytest.raises(xmlp.ForwardNotCalledError):
        xmlp.Dropout(0.5).backward(data(xp, (5, 3)))


def test_in_a_model_fit_trains_and_validation_sees_no_dropout(xp):
    """fit's steps drop (forward), its validation predicts (no dropout): the validation loss
    of the last epoch equals the loss of model.predict after training."""
    kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
    model = xmlp.Sequential(xmlp.Linear(2, 16, rng=0, init="he", **kw), xmlp.ReLU(),
                            xmlp.Dropout(0.2, rng=0), xmlp.Linear(16, 1, rng=1, **kw))
    x = np.random.default_rng(0).standard_normal((32, 2))
    t = x[:, :1] - 2 * x[:, 1:]
    xd, td = xp.from_numpy(x), xp.from_numpy(t)
    history = xmlp.fit(model, xd, td, epochs=15, lr=0.02, validation_data=(xd, td),
                       progress=False)
    assert history.val_loss[-1] < history.val_loss[0]
    final = float(xmlp.MSELoss().predict(model.predict(xd), td))
    assert history.val_loss[-1] == pytest.approx(final, rel=1e-12)


def test_a_chain_refused_after_the_dropout_draws_nothing(xp):
    """LayerNorm(5) after 4 features refuses, after the Dropout before it drew a mask: the
    undone call puts the generator's state back with everything else."""
    kw = {"xp": xp.module, "device": xp.device, "dtype": xp.float64}
    model = xmlp.Sequential(xmlp.Linear(3, 4, rng=0, **kw), xmlp.Dropout(0.5, rng=0),
                            xmlp.LayerNorm(5, **kw))
    before = model[1].rng.bit_generator.state
    rejects(ValueError, model, lambda: model.forward(data(xp, (2, 3))), "LayerNorm(5).forward")
    assert model[1].rng.bit_generator.state == before
