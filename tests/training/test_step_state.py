"""Compiled steps of models whose layers keep state from step to step: BatchNorm1d's running
statistics (buffers, inputs and outputs of the traced step) and Dropout's masks (drawn on the
host each step, as the eager step draws them, and handed in). Compiled and eager training give
the same parameters, running statistics and generator states; a batch BatchNorm1d refuses is
refused before anything changes; the buffers are real arrays between steps."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.helpers import layer_kwargs
from xmlp.backend import to_host

GEN = np.random.default_rng(12)
X, Y = GEN.standard_normal((24, 3)), GEN.standard_normal((24, 2))


def model(**kw):
    return xmlp.Sequential(
        xmlp.Linear(3, 8, rng=0, init="he", **kw), xmlp.Tanh(), xmlp.BatchNorm1d(8, **kw),
        xmlp.Dropout(0.3, rng=1), xmlp.LayerNorm(8, **kw), xmlp.GELU(),
        xmlp.Dropout(0.2, rng=2), xmlp.Linear(8, 2, rng=3, **kw))


def arrays(net):
    return [(name, to_host(a)) for name, a in [*net.named_parameters(), *net.named_buffers()]]


def train(xp, compile_, batches, make_optimizer):
    net = model(**layer_kwargs(xp))
    step = xmlp.TrainStep(net, optimizer=make_optimizer(net), compile=compile_)
    losses = [float(step(xp.from_numpy(X[rows]), xp.from_numpy(Y[rows]))) for rows in batches]
    return net, step, losses


# inductor itself calls torch.jit.script_method, which torch deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

BATCHES = [slice(0, 24), slice(0, 24), slice(0, 10), slice(10, 24), slice(0, 24)]
OPTIMIZERS = {
    "sgd-momentum": lambda m: xmlp.optim.SGD(m, lr=0.05, momentum=0.9),
    "adam": lambda m: xmlp.optim.Adam(m, lr=0.01),
}


@pytest.mark.xp_only("jax", "torch")
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_steps_equal_eager_steps(xp, name):
    """Five steps over three batch shapes: the same losses, parameters, running statistics and
    generator states (the masks were drawn alike, a fresh one each step)."""
    eager, eager_step, eager_losses = train(xp, False, BATCHES, OPTIMIZERS[name])
    compiled, step, losses = train(xp, True, BATCHES, OPTIMIZERS[name])
    assert step.compiled and not eager_step.compiled
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12)
    for (name_a, a), (name_b, b) in zip(arrays(compiled), arrays(eager), strict=True):
        assert name_a == name_b
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name_a)
    for a, b in ((compiled[3], eager[3]), (compiled[6], eager[6])):
        assert a.rng.bit_generator.state == b.rng.bit_generator.state
    # each step drew a mask: the generators moved on from where a fresh one starts
    assert compiled[3].rng.bit_generator.state != np.random.default_rng(1).bit_generator.state


@pytest.mark.xp_only("jax", "torch")
def test_fit_compiled_equals_fit_eager(xp):
    histories, nets = [], []
    for compile_ in ("auto" if xp.name == "jax" else True, False):
        net = model(**layer_kwargs(xp))
        histories.append(xmlp.fit(
            net, xp.from_numpy(X), xp.from_numpy(Y), epochs=3, compile=compile_,
            optimizer=xmlp.optim.SGD(net, lr=0.05, momentum=0.9), batch_size=10, shuffle=True,
            rng=0, validation_data=(xp.from_numpy(X), xp.from_numpy(Y)), progress=False))
        nets.append(net)
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-12)
    np.testing.assert_allclose(histories[0].val_loss, histories[1].val_loss, rtol=1e-12)
    for (_, a), (_, b) in zip(arrays(nets[0]), arrays(nets[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.xp_only("jax", "torch")
def test_between_compiled_steps_the_model_is_the_model(xp, tmp_path):
    """Buffers are real arrays after each step, stored activations and masks cleared; a
    checkpoint loaded between steps is what the next step starts from."""
    net, step, _ = train(xp, True, BATCHES[:2], OPTIMIZERS["sgd-momentum"])
    for _, buffer in net.named_buffers():
        assert type(buffer) is type(net[0].weights)  # never a tracer
    assert net[3].mask is None and net[3].given_mask is None and net[2].xhat is None
    xmlp.save(net, tmp_path / "bn.npz", step.optimizer)
    step(xp.from_numpy(X), xp.from_numpy(Y))
    step(xp.from_numpy(X), xp.from_numpy(Y))
    after_two = arrays(net)
    xmlp.load(net, tmp_path / "bn.npz", step.optimizer)
    for dropout, seed in ((net[3], 1), (net[6], 2)):  # the masks of those two steps again
        dropout.rng = np.random.default_rng(seed)
        for shape in ((24, 8), (24, 8)):
            dropout.rng.random(shape)
    step(xp.from_numpy(X), xp.from_numpy(Y))
    step(xp.from_numpy(X), xp.from_numpy(Y))
    for (name, a), (_, b) in zip(arrays(net), after_two, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.xp_only("jax", "torch")
def test_a_batch_batchnorm_refuses_changes_nothing(xp):
    """A batch of one sample: BatchNorm1d's forward refuses it in a compiled step as in an
    eager one, before anything (parameters, buffers, generators) changes."""
    net, step, _ = train(xp, True, BATCHES[:1], OPTIMIZERS["sgd-momentum"])
    before = arrays(net)
    states = [net[3].rng.bit_generator.state, net[6].rng.bit_generator.state]
    with pytest.raises(ValueError, match="a batch of 1 sample has no variance"):
        step(xp.from_numpy(X[:1]), xp.from_numpy(Y[:1]))
    for (_, a), (_, b) in zip(arrays(net), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [net[3].rng.bit_generator.state, net[6].rng.bit_generator.state] == states
    step(xp.from_numpy(X), xp.from_numpy(Y))  # and trains on
