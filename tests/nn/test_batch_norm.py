"""BatchNorm1d on every backend: equal to torch.nn.BatchNorm1d to 1e-12 in float64 in train
mode (forward: output, dL/dx, grad_weight, grad_bias, the running statistics over several
batches) and eval mode (predict), float32 within its tolerance, gradcheck; its running
statistics are buffers: saved, loaded, moved by to(), restored by fit, never trained."""

from __future__ import annotations

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.helpers import (
    PoisonedLoss,
    data,
    foreign,
    layer_kwargs,
    make_data,
    ns_name,
    rejects,
)
from tests.nn.torch_reference import largest_difference, needs_torch

GEN = np.random.default_rng(8)
WEIGHT, BIAS = GEN.standard_normal(3), GEN.standard_normal(3)
BATCHES = [GEN.standard_normal((n, 3)) * [1.0, 5.0, 0.2] + [0.0, -3.0, 7.0] for n in (6, 2, 9)]
GRADS = [GEN.standard_normal(b.shape) for b in BATCHES]


def torch_module(momentum=0.1, eps=1e-5):
    torch = needs_torch()
    module = torch.nn.BatchNorm1d(3, eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(WEIGHT))
        module.bias.copy_(torch.tensor(BIAS))
    return module


def layer(xp, dtype="float64", **kw):
    norm = xmlp.BatchNorm1d(3, **kw, **layer_kwargs(xp, dtype))
    norm.weight, norm.bias = xp.from_numpy(WEIGHT, dtype), xp.from_numpy(BIAS, dtype)
    return norm


@pytest.mark.parametrize(("momentum", "eps"), [(0.1, 1e-5), (0.5, 1e-3), (1.0, 1e-9), (0.0, 0.5)])
def test_equal_to_pytorch_in_train_and_eval_mode(xp, momentum, eps):
    """Three batches in train mode (each output, gradient and the running statistics after
    it), then eval mode on each batch."""
    torch = needs_torch()
    reference, norm = torch_module(momentum, eps), layer(xp, momentum=momentum, eps=eps)
    for x, g in zip(BATCHES, GRADS, strict=True):
        xt = torch.tensor(x, requires_grad=True)
        reference.weight.grad = reference.bias.grad = None
        yt = reference(xt)
        yt.backward(torch.tensor(g))
        out = norm.forward(xp.from_numpy(x))
        grad_x = norm.backward(xp.from_numpy(g))
        for got, want in ((out, yt), (grad_x, xt.grad), (norm.grad_weight, reference.weight.grad),
                          (norm.grad_bias, reference.bias.grad),
                          (norm.running_mean, reference.running_mean),
                          (norm.running_var, reference.running_var)):
            assert largest_difference(got, want.detach().numpy()) <= 1e-12
    reference.eval()
    for x in BATCHES:
        want = reference(torch.tensor(x)).detach().numpy()
        assert largest_difference(norm.predict(xp.from_numpy(x)), want) <= 1e-12
    assert largest_difference(norm.predict(xp.from_numpy(x[:1])), want[:1]) <= 1e-12


def test_float32_within_its_tolerance(xp):
    torch = needs_torch()
    reference, norm = torch_module(), layer(xp, "float32")
    x = BATCHES[0].astype(np.float32)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    reference(xt).backward(torch.tensor(GRADS[0].astype(np.float32).astype(np.float64)))
    out = norm.forward(xp.from_numpy(x))
    norm.backward(xp.from_numpy(GRADS[0], "float32"))
    assert out.dtype == xp.float32 and norm.running_var.dtype == xp.float32
    for got, want in ((norm.grad_weight, reference.weight.grad),
                      (norm.running_mean, reference.running_mean),
                      (norm.running_var, reference.running_var)):
        np.testing.assert_allclose(xp.to_numpy(got), want.detach().numpy(),
                                   **tolerances("float32"))


def test_gradcheck_leaves_the_running_statistics_alone(xp):
    norm = layer(xp)
    xmlp.gradcheck(norm, xp.from_numpy(BATCHES[1][:2]), rng=0)
    np.testing.assert_array_equal(xp.to_numpy(norm.running_mean), np.zeros(3))
    np.testing.assert_array_equal(xp.to_numpy(norm.running_var), np.ones(3))


def test_starts_as_pytorch_does_and_lists_its_buffers(xp):
    norm = xmlp.BatchNorm1d(3, **layer_kwargs(xp, "float32"))
    for name, value in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
        got = getattr(norm, name)
        assert got.dtype == xp.float32
        np.testing.assert_array_equal(xp.to_numpy(got), np.full(3, value, np.float32))
    assert [n for n, _ in norm.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in norm.named_buffers()] == ["running_mean", "running_var"]
    assert norm.num_features == 3
    assert repr(norm).startswith(f"BatchNorm1d(3, eps=1e-05, momentum=0.1, {ns_name(xp)}")


# -- buffers -------------------------------------------------------------------------------------
def model(xp, dtype="float64"):
    kw = layer_kwargs(xp, dtype)
    return xmlp.Sequential(xmlp.Linear(3, 4, rng=0, **kw), xmlp.BatchNorm1d(4, **kw),
                           xmlp.ReLU(), xmlp.Linear(4, 1, rng=1, **kw))


@pytest.mark.parametrize("make", [
    lambda m: xmlp.optim.SGD(m, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda m: xmlp.optim.Adam(m, lr=0.1, weight_decay=0.1),
    lambda m: xmlp.optim.AdamW(m, lr=0.1)], ids=["SGD", "Adam", "AdamW"])
def test_optimizers_train_the_parameters_not_the_buffers(xp, make):
    net = model(xp)
    opt = make(net)
    net.forward(data(xp, (5, 3)))
    net.backward(data(xp, (5, 1), seed=1))
    stats = [xp.to_numpy(b) for _, b in net.named_buffers()]
    bias = xp.to_numpy(net[1].bias)
    opt.step()
    for (_, got), want in zip(net.named_buffers(), stats, strict=True):
        np.testing.assert_array_equal(xp.to_numpy(got), want)
    assert not np.array_equal(xp.to_numpy(net[1].bias), bias)
    assert set(opt.state_dict()["state"]) <= {n for n, _ in net.named_parameters()}
    net.update_params(0.1)  # plain SGD too
    for (_, got), want in zip(net.named_buffers(), stats, strict=True):
        np.testing.assert_array_equal(xp.to_numpy(got), want)


def test_save_and_load_keep_the_running_statistics(xp, tmp_path):
    net = model(xp)
    for seed in range(3):
        net.forward(data(xp, (5, 3), seed=seed))
    xmlp.save(net, tmp_path / "bn.npz")
    with np.load(tmp_path / "bn.npz") as stored:
        assert {"1.running_mean", "1.running_var", "1.weight", "1.bias"} <= set(stored.files)
        np.testing.assert_array_equal(stored["1.running_var"], xp.to_numpy(net[1].running_var))
    other = model(xp, "float32")
    assert xmlp.load(other, tmp_path / "bn.npz") is other
    assert other[1].running_mean.dtype == xp.float32
    np.testing.assert_allclose(xp.to_numpy(other[1].running_mean),
                               xp.to_numpy(net[1].running_mean), **tolerances("float32"))
    x = data(xp, (4, 3))
    np.testing.assert_allclose(xp.to_numpy(other.predict(xp.astype(x, xp.float32))),
                               xp.to_numpy(net.predict(x)), **tolerances("float32"))


def test_a_checkpoint_without_the_buffers_is_refused(tmp_path):
    plain = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.LayerNorm(4),
                            xmlp.Linear(4, 1, rng=1))
    xmlp.save(plain, tmp_path / "plain.npz")
    target = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.BatchNorm1d(4),
                             xmlp.Linear(4, 1, rng=1))
    before = [b.copy() for _, b in target.named_buffers()]
    with pytest.raises(ValueError) as info:
        xmlp.load(target, tmp_path / "plain.npz")
    assert "has no buffer '1.running_mean' of the Sequential" in str(info.value)
    for (_, b), want in zip(target.named_buffers(), before, strict=True):
        np.testing.assert_array_equal(b, want)
    xmlp.save(target, tmp_path / "bn.npz")
    with pytest.raises(ValueError) as info:
        xmlp.load(plain, tmp_path / "bn.npz")
    assert "holds '1.running_mean', which the Sequential does not have (its parameters:" in str(
        info.value)


def test_to_moves_the_buffers(xp):
    net = xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.BatchNorm1d(4))
    net.forward(np.random.default_rng(0).standard_normal((5, 3)))
    want = net[1].running_var.copy()
    net.to(xp.module, device=xp.device, dtype="float32")
    got = net[1].running_var
    assert got.dtype == xp.float32 and type(got) is type(xp.from_numpy(want, "float32"))
    np.testing.assert_allclose(xp.to_numpy(got), want, **tolerances("float32"))
    net.forward(data(xp, (5, 3), "float32"))  # the model works where it now is


def test_fit_restores_the_running_statistics_after_a_non_finite_epoch():
    """Epoch 2's loss is NaN (so are the parameters and running statistics after it): fit
    puts back those after epoch 1, buffers included, as a one-epoch fit leaves them."""
    x, t = make_data(10, 3)

    def net():
        return xmlp.Sequential(xmlp.Linear(3, 4, rng=0), xmlp.BatchNorm1d(4),
                               xmlp.Linear(4, 1, rng=1))

    once = net()
    xmlp.fit(once, x, t, epochs=1, lr=0.01, progress=False)
    failed = net()
    with pytest.raises(FloatingPointError, match="the loss of epoch 2 is nan"):
        xmlp.fit(failed, x, t, epochs=3, lr=0.01, loss=PoisonedLoss(2), progress=False)
    for got, want in zip([*failed.named_parameters(), *failed.named_buffers()],
                         [*once.named_parameters(), *once.named_buffers()], strict=True):
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"num_features": 0}, ValueError, "BatchNorm1d: num_features must be a positive int"),
    ({"num_features": 3, "momentum": 1.5}, ValueError,
     "BatchNorm1d: momentum must be in [0, 1], got 1.5"),
    ({"num_features": 3, "momentum": None}, TypeError,
     "BatchNorm1d: momentum must be a real number, got NoneType"),
    ({"num_features": 3, "eps": float("nan")}, ValueError, "BatchNorm1d: eps must be a finite"),
    ({"num_features": 3, "eps": 0}, ValueError, "BatchNorm1d: eps must be a finite number > 0"),
], ids=str)
def test_arguments_are_checked(kwargs, error, words):
    with pytest.raises(error) as info:
        xmlp.BatchNorm1d(**kwargs)
    assert str(info.value).startswith(words)


def test_bad_input_is_refused_and_changes_nothing(xp):
    norm = layer(xp)
    norm.forward(data(xp, (5, 3)))
    norm.backward(data(xp, (5, 3), seed=1))
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (1, 3))),
            "BatchNorm1d(3).forward", "a batch of 1 sample has no variance")
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (5, 3, 2))), "x must have shape (N, 3)",
            "got (5, 3, 2)")
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (3,))), "got (3,)")
    rejects(ValueError, norm, lambda: norm.predict(data(xp, (5, 4))), "BatchNorm1d(3).predict",
            "got (5, 4)")
    rejects(TypeError, norm, lambda: norm.forward(data(xp, (5, 3), "float32")), "float32")
    x, other = foreign(xp, np.ones((5, 3)))
    rejects(TypeError, norm, lambda: norm.forward(x), ns_name(xp), other)
    rejects(ValueError, norm, lambda: norm.backward(data(xp, (4, 3))), "got (4, 3)")
    norm.running_var = data(xp, (3,), "float32")
    rejects(TypeError, norm, lambda: norm.predict(data(xp, (5, 3))), "buffer 'running_var'",
            "float32")
    norm.running_var = data(xp, (2,))
    rejects(ValueError, norm, lambda: norm.forward(data(xp, (5, 3))), "buffer 'running_var'",
            "shape (2,)")


def test_predict_takes_one_sample(xp):
    norm = layer(xp)
    out = norm.predict(data(xp, (1, 3)))
    assert tuple(out.shape) == (1, 3)


@pytest.mark.xp_only("dask")
def test_fit_on_dask_persists_the_running_statistics(xp):
    """A model on Dask: fit persists the buffers with the parameters (their graphs stay one
    computed chunk), and trains as on NumPy."""
    x, t = make_data(20, 3)
    nets = []
    for kw in (layer_kwargs(xp), {}):
        net = xmlp.Sequential(xmlp.Linear(3, 4, rng=0, **kw), xmlp.BatchNorm1d(4, **kw),
                              xmlp.Linear(4, 1, rng=1, **kw))
        data_x, data_t = (xp.from_numpy(x), xp.from_numpy(t)) if kw else (x, t)
        xmlp.fit(net, data_x, data_t, epochs=2, lr=0.05, batch_size=4, progress=False)
        nets.append(net)
    for (name, got), (_, want) in zip(nets[0].named_buffers(), nets[1].named_buffers(),
                                      strict=True):
        assert len(got.__dask_graph__()) == 1, name
        np.testing.assert_allclose(xp.to_numpy(got), want, rtol=1e-12, atol=1e-14)


def test_the_summary_counts_the_running_statistics_as_non_trainable():
    """As Keras counts a BatchNormalization: 4 C elements, 2 C of them not trained."""
    net = xmlp.Sequential(xmlp.Linear(3, 8, rng=0), xmlp.BatchNorm1d(8), xmlp.Linear(8, 2, rng=1))
    summary = net.summary((None, 3))
    assert [row.params + row.buffers for row in summary.rows] == [32, 32, 18]
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (
        82, 66, 16)
    assert "Non-trainable params: 16 (128 B)" in str(summary)


def test_early_stopping_restores_the_best_epochs_running_statistics():
    """restore_best_weights puts back the buffers with the parameters (Keras restores its
    non-trainable weights too): the restored model's validation loss, which predict computes
    with the running statistics, is the best epoch's."""
    gen = np.random.default_rng(3)
    x = gen.standard_normal((24, 3))
    t = x[:, :1] * 2 + 0.5 * gen.standard_normal((24, 1))
    net = xmlp.Sequential(xmlp.Linear(3, 16, rng=0), xmlp.BatchNorm1d(16), xmlp.ReLU(),
                          xmlp.Linear(16, 1, rng=1))
    kept = {}

    def remember(epoch, history):
        kept[epoch] = [b.copy() for _, b in net.named_buffers()]

    stop = xmlp.EarlyStopping(patience=3, restore_best_weights=True)
    history = xmlp.fit(net, x[:16], t[:16], epochs=60, batch_size=8, shuffle=True, rng=0,
                       optimizer=xmlp.optim.Adam(net, lr=0.05), validation_data=(x[16:], t[16:]),
                       callback=remember, early_stopping=stop, progress=False)
    best = stop.best_epoch
    assert best < len(history)
    for (_, got), want in zip(net.named_buffers(), kept[best], strict=True):
        np.testing.assert_array_equal(got, want)
    loss = xmlp.MSELoss().predict(net.predict(x[16:]), t[16:])
    assert float(loss) == pytest.approx(min(history.val_loss), rel=1e-12)
