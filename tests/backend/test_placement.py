"""Where arrays live: device placement, namespace/device mismatches, Module.to(), JAX.

Tests that need one particular backend (array_api_strict's second device, torch CUDA, CuPy, JAX)
carry ``requires_backends`` and are collected only where that backend is active, so each nox
session runs its own and reports no skips for the others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import array_api_compat
import array_api_strict as xps
import numpy as np
import pytest
from array_api_compat import array_namespace, device

import xmlp
from tests.conftest import Backend, backend, tolerances
from tests.helpers import ns_name, rejects, used_mlp
from tests.reference import mlp_step
from xmlp.backend import ArraySpec
from xmlp.errors import ForwardNotCalledError, NoGradientError

# The source of every to() test: NumPy is a dependency, so these run in every session.
NUMPY = Backend("numpy", np, array_namespace(np.asarray(0.0)))

# Readable names each backend's error messages must use (keyed by the fixture's name).
NAMES = {"numpy": "numpy", "array_api_strict": "array_api_strict", "torch": "torch",
         "jax": "jax", "dask": "dask", "cupy": "cupy"}


def _data(xp: Backend, n_in: int, n_out: int, dtype: Any, n: int = 8, seed: int = 0):
    gen = np.random.default_rng(seed)
    x, t = gen.standard_normal((n, n_in)), gen.standard_normal((n, n_out))
    return x, t, xp.from_numpy(x, dtype), xp.from_numpy(t, dtype)


def _build(kind: str, **where: Any) -> xmlp.Module:
    """A model taking 3 features to 2, drawn from rng 11 wherever it lives."""
    if kind == "linear":
        return xmlp.Linear(3, 2, rng=11, **where)
    if kind == "mlp":
        return xmlp.MLP(3, 5, 2, rng=11, **where)
    gen = np.random.default_rng(11)
    return xmlp.Sequential(
        xmlp.Linear(3, 5, rng=gen, **where), xmlp.Tanh(),
        xmlp.Linear(5, 4, rng=gen, **where), xmlp.Sigmoid(),
        xmlp.Linear(4, 4, rng=gen, **where), xmlp.ReLU(),
        xmlp.Linear(4, 2, rng=gen, **where),
    )


def _step(model: xmlp.Module, loss: xmlp.MSELoss, x: Any, t: Any, lr: float = 0.1) -> Any:
    value = loss.forward(model.forward(x), t)
    model.backward(loss.backward())
    model.update_params(lr)
    return value


def _assert_placed(arrays: dict[str, Any], like: Any) -> None:
    """Every array of ``like``'s namespace, device and dtype."""
    ns, dev = array_namespace(like), device(like)
    for name, a in arrays.items():
        assert array_namespace(a) is ns, f"{name}: {type(a).__name__}, input {type(like).__name__}"
        assert device(a) == dev, f"{name} is on {device(a)}, the input on {dev}"
        assert a.dtype == like.dtype, f"{name} is {a.dtype}, the input {like.dtype}"


def _made_arrays(model: xmlp.Module, x: Any, t: Any) -> dict[str, Any]:
    """Everything one training step (and inference) makes, by name."""
    loss = xmlp.MSELoss()
    made = {"predict": model.predict(x), "output": model.forward(x)}
    made["loss"] = loss.forward(made["output"], t)
    made["loss.predict"] = loss.predict(made["output"], t)
    made["grad_output"] = loss.backward()
    made["grad_x"] = model.backward(made["grad_output"])
    for i, module in enumerate(model.modules()):
        for attr in ("output", "grad_input"):
            if getattr(module, attr, None) is not None:
                made[f"{i}.{attr}"] = getattr(module, attr)
    made.update({f"grad {n}": g for n, g in model.named_grads()})
    model.update_params(0.1)
    made.update({f"updated {n}": p for n, p in model.named_parameters()})
    return made


# -- device placement ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["linear", "mlp", "sequential"])
def test_every_array_is_made_where_the_input_lives(xp, dtype, kind):
    model = _build(kind, xp=xp.module, device=xp.device, dtype=dtype)
    _, _, x, t = _data(xp, 3, 2, dtype)
    made = _made_arrays(model, x, t)
    assert len(made) >= 10
    _assert_placed(made, x)


def test_layer_built_from_arrays_lives_where_they_live(xp, dtype):
    gen = np.random.default_rng(2)
    w, b = xp.from_numpy(gen.standard_normal((2, 3)), dtype), xp.from_numpy(np.zeros(2), dtype)
    layer = xmlp.Linear(3, 2, w, b)
    _, _, x, t = _data(xp, 3, 2, dtype)
    _assert_placed({"weights": layer.weights, "biases": layer.biases}, x)
    _assert_placed(_made_arrays(layer, x, t), x)


# -- a second device: array_api_strict's "device1" -----------------------------------------
@pytest.fixture
def strict() -> Backend:
    """array_api_strict; tests that take it carry requires_backends("array_api_strict")."""
    return backend("array_api_strict")


STRICT = pytest.mark.requires_backends("array_api_strict")


@STRICT
def test_model_on_a_second_device_keeps_everything_there(strict):
    xps = strict.module
    dev1 = xps.Device("device1")
    assert dev1 != xps.__array_namespace_info__().default_device()
    model = xmlp.MLP(3, 5, 2, xp=xps, device=dev1, rng=0)
    assert all(device(p) == dev1 for p in model.parameters())
    x, t, _, _ = _data(strict, 3, 2, "float64")
    xs, ts = xps.asarray(x, device=dev1), xps.asarray(t, device=dev1)
    made = _made_arrays(model, xs, ts)
    _assert_placed(made, xs)
    assert all(device(a) == dev1 for a in made.values())


@STRICT
def test_no_silent_transfer_from_the_default_device(strict):
    xps = strict.module
    dev1 = xps.Device("device1")
    model = xmlp.MLP(3, 5, 2, xp=xps, device=dev1, rng=0)
    x, t, _, _ = _data(strict, 3, 2, "float64")
    x1, t1 = xps.asarray(x, device=dev1), xps.asarray(t, device=dev1)
    loss = xmlp.MSELoss()
    loss.forward(model.forward(x1), t1)
    before = {n: strict.to_numpy(p) for n, p in model.named_parameters()}
    stored = model.linear1.x

    for call in (lambda: model.forward(xps.asarray(x)), lambda: model.predict(xps.asarray(x))):
        with pytest.raises(TypeError) as info:
            call()
        message = str(info.value)
        assert "device1" in message and "CPU_DEVICE" in message
        assert "to_device" in message and ".to(" in message  # the two fixes
        assert "never transfers silently" in message
    with pytest.raises(TypeError, match="CPU_DEVICE"):
        model.backward(xps.asarray(np.ones((8, 2))))
    with pytest.raises(TypeError, match="CPU_DEVICE"):
        loss.forward(model.predict(x1), xps.asarray(t))
    # rejected calls changed nothing
    assert model.linear1.x is stored
    for n, p in model.named_parameters():
        assert device(p) == dev1
        np.testing.assert_array_equal(strict.to_numpy(p), before[n])

    with pytest.raises(TypeError, match="device"):
        xmlp.Linear(3, 2, xps.asarray(np.ones((2, 3)), device=dev1), xps.asarray(np.ones(2)))
    with pytest.raises(TypeError, match="device"):
        xmlp.Linear(3, 2, xps.asarray(np.ones((2, 3))), device=dev1)
    assert device(xmlp.Linear(3, 2, xps.asarray(np.ones((2, 3)), device=dev1)).biases) == dev1


@STRICT
def test_to_a_second_device_and_back(strict):
    xps = strict.module
    dev1, cpu = xps.Device("device1"), xps.__array_namespace_info__().default_device()
    model = xmlp.MLP(3, 5, 2, xp=xps, rng=4)
    twin = xmlp.MLP(3, 5, 2, rng=4)
    x, t, _, _ = _data(strict, 3, 2, "float64")
    loss, twin_loss = xmlp.MSELoss(), xmlp.MSELoss()
    for target in (dev1, cpu, dev1):
        assert model.to(device=target) is model
        assert model.device == target
        assert all(device(p) == target for p in model.parameters())
        for _ in range(2):
            _step(model, loss, xps.asarray(x, device=target), xps.asarray(t, device=target))
            _step(twin, twin_loss, x, t)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(strict.to_numpy(p), q, rtol=1e-12, atol=1e-14)


# -- GPUs: torch cuda:0 and CuPy (skipped without a GPU) -------------------------------------
@pytest.mark.requires_backends("torch:cuda")
def test_torch_cuda_and_cpu_do_not_mix():
    cuda = backend("torch:cuda")
    torch = cuda.module
    x, t, _, _ = _data(cuda, 3, 2, "float32")
    on_gpu = xmlp.MLP(3, 5, 2, xp=torch, device="cuda:0", dtype="float32", rng=0)
    on_cpu = xmlp.MLP(3, 5, 2, xp=torch, device="cpu", dtype="float32", rng=0)
    assert all(p.is_cuda for p in on_gpu.parameters())
    xc, xg = torch.asarray(x, dtype=torch.float32), torch.asarray(x, device="cuda:0",
                                                                  dtype=torch.float32)
    for model, wrong in ((on_gpu, xc), (on_cpu, xg)):
        with pytest.raises(TypeError) as info:
            model.forward(wrong)
        message = str(info.value)
        assert "cuda" in message and "cpu" in message
        assert "to_device" in message and ".to(" in message
    with pytest.raises(TypeError, match="cuda"):
        xmlp.MSELoss().forward(on_gpu.predict(xg), torch.asarray(t, dtype=torch.float32))
    # .to() moves it, and training there matches the CPU copy
    assert on_cpu.to(device="cuda:0") is on_cpu
    assert all(p.is_cuda for p in on_cpu.parameters())
    tg = torch.asarray(t, device="cuda:0", dtype=torch.float32)
    for _ in range(3):
        _step(on_cpu, xmlp.MSELoss(), xg, tg)
        _step(on_gpu, xmlp.MSELoss(), xg, tg)
    for p, q in zip(on_cpu.parameters(), on_gpu.parameters(), strict=True):
        np.testing.assert_allclose(cuda.to_numpy(p), cuda.to_numpy(q), **tolerances("float32"))


@pytest.mark.requires_backends("cupy")
def test_cupy_and_numpy_do_not_mix():
    cp = backend("cupy").module
    x, t, _, _ = _data(backend("cupy"), 3, 2, "float64")
    on_gpu = xmlp.MLP(3, 5, 2, xp=cp, rng=0)
    on_cpu = xmlp.MLP(3, 5, 2, rng=0)
    for model, wrong in ((on_gpu, x), (on_cpu, cp.asarray(x))):
        with pytest.raises(TypeError) as info:
            model.forward(wrong)
        message = str(info.value)
        assert "numpy" in message and "cupy" in message
        assert ".get()" in message and ".to(" in message
    with pytest.raises(TypeError, match="numpy"):
        xmlp.MSELoss().forward(on_gpu.predict(cp.asarray(x)), t)
    assert on_cpu.to(cp) is on_cpu
    assert all(isinstance(p, cp.ndarray) for p in on_cpu.parameters())
    for _ in range(3):
        _step(on_cpu, xmlp.MSELoss(), cp.asarray(x), cp.asarray(t))
        _step(on_gpu, xmlp.MSELoss(), cp.asarray(x), cp.asarray(t))
    for p, q in zip(on_cpu.parameters(), on_gpu.parameters(), strict=True):
        np.testing.assert_allclose(p.get(), q.get(), rtol=1e-12, atol=1e-14)


# -- namespace mismatch ----------------------------------------------------------------------
@STRICT
def test_numpy_input_to_a_strict_model_names_both(strict):
    model = xmlp.MLP(3, 5, 2, xp=strict.module, rng=0)
    with pytest.raises(TypeError) as info:
        model.forward(np.ones((4, 3)))
    message = str(info.value)
    assert "numpy" in message and "array_api_strict" in message
    assert ".to(numpy)" in message
    assert model.linear1.x is None


def test_input_from_another_namespace_is_rejected(xp):
    """A model on ``xp`` given the same data as NumPy arrays (or array_api_strict arrays, for a
    NumPy model): TypeError naming both namespaces, nothing stored."""
    if xp.name == "numpy":
        other = pytest.importorskip("array_api_strict")
        foreign, foreign_name = other.asarray, "array_api_strict"
    else:
        foreign, foreign_name = np.asarray, "numpy"
    model = xmlp.MLP(3, 5, 2, xp=xp.module, device=xp.device, dtype="float32", rng=0)
    x, t, xs, _ = _data(xp, 3, 2, "float32")
    mine = NAMES[xp.name.split(":")[0]]
    for call in (lambda: model.forward(foreign(x.astype("float32"))),
                 lambda: xmlp.MSELoss().forward(model.predict(xs), foreign(t.astype("float32")))):
        with pytest.raises(TypeError) as info:
            call()
        message = str(info.value)
        assert foreign_name in message and mine in message, message
    assert model.linear1.x is None
    model.forward(xs)
    with pytest.raises(TypeError, match=foreign_name):
        model.backward(foreign(np.ones((8, 2), dtype="float32")))
    assert model.linear1.grad_weights is None


# -- Module.to() -------------------------------------------------------------------------------
# (backend, device: None or "device1", dtype: None keeps float64)
TARGETS = [
    ("array_api_strict", None, None),
    ("array_api_strict", "device1", None),
    ("numpy", None, "float32"),
    ("torch:cpu", None, None),
    ("torch:cpu", None, "float32"),
    ("jax", None, None),
    ("jax", None, "float32"),
    ("dask", None, None),
]


def _target(name: str, dev: Any) -> tuple[Backend, Any]:
    target = backend(name)
    if dev == "device1":
        return target, target.module.Device("device1")
    return target, target.device


def _state_cleared(model: xmlp.Module) -> bool:
    modules = list(model.modules())
    stored = [getattr(m, a, None) for m in modules for a in ("x", "output", "grad_input")]
    return all(s is None for s in stored) and all(g is None for _, g in model.named_grads())


@pytest.mark.parametrize("kind", ["linear", "mlp", "sequential"])
@pytest.mark.parametrize(("name", "dev", "dtype"), [
    pytest.param(n, d, t, id=f"{n}-{d or 'default'}-{t or 'float64'}",
                 marks=pytest.mark.requires_backends(n)) for n, d, t in TARGETS])
def test_to_moves_the_model_and_training_continues(kind, name, dev, dtype):
    """A NumPy float64 model, trained one step, moved with to(); it keeps training there and
    matches its NumPy float64 twin (itself checked against reference.py in test_models)."""
    backend, where = _target(name, dev)
    model, twin = _build(kind), _build(kind)
    x, t, _, _ = _data(NUMPY, 3, 2, "float64")
    loss, twin_loss = xmlp.MSELoss(), xmlp.MSELoss()
    _step(model, loss, x, t)
    _step(twin, twin_loss, x, t)
    assert not _state_cleared(model)
    before = {n: np.array(p) for n, p in model.named_parameters()}

    moved = model.to(backend.module, device=where, dtype=dtype)

    assert moved is model
    assert _state_cleared(model)
    want = dtype or "float64"
    target_ns = backend.ns
    for n, p in model.named_parameters():
        assert array_namespace(p) is target_ns, n
        assert p.dtype == getattr(target_ns, want), n
        if where is not None:
            assert device(p) == where, n
        np.testing.assert_array_equal(backend.to_numpy(p), before[n].astype(want))
    with pytest.raises(ForwardNotCalledError):
        model.backward(backend.from_numpy(np.ones((8, 2)), want))
    with pytest.raises(NoGradientError):
        model.update_params(0.1)

    # training continues on the new backend and matches NumPy float64
    if dev == "device1":
        xs, ts = (backend.module.asarray(a, dtype=getattr(target_ns, want), device=where)
                  for a in (x, t))
    else:
        xs, ts = backend.from_numpy(x, want), backend.from_numpy(t, want)
    for _ in range(3):
        value = _step(model, loss, xs, ts)
        twin_value = _step(twin, twin_loss, x, t)
    tol = tolerances(want)
    np.testing.assert_allclose(float(value), float(twin_value), **tol)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(backend.to_numpy(p), q, **tol)

    # and back to NumPy float64
    model.to(np, dtype="float64")
    for p in model.parameters():
        assert isinstance(p, np.ndarray) and p.dtype == np.float64
    _step(model, loss, x, t)
    _step(twin, twin_loss, x, t)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p, q, **tol)


def test_to_on_a_parameter_free_layer_clears_it(xp):
    tanh = xmlp.Tanh()
    tanh.forward(np.linspace(-1, 1, 6).reshape(3, 2))
    assert tanh.to(xp.module, device=xp.device) is tanh
    assert tanh.x is None and tanh.output is None
    with pytest.raises(ForwardNotCalledError):
        tanh.backward(np.ones((3, 2)))
    x = np.linspace(-1, 1, 6).reshape(3, 2)
    out = tanh.forward(xp.from_numpy(x))
    np.testing.assert_allclose(xp.to_numpy(out), np.tanh(x), rtol=1e-12)


def _trained_mlp() -> tuple[xmlp.MLP, np.ndarray]:
    model = xmlp.MLP(3, 5, 2, rng=0)
    x, t, _, _ = _data(NUMPY, 3, 2, "float64")
    loss = xmlp.MSELoss()
    loss.forward(model.forward(x), t)
    model.backward(loss.backward())
    return model, x


def _every_attribute(model: xmlp.Module) -> list[tuple[Any, dict[str, Any]]]:
    return [(module, dict(module.__dict__)) for module in model.modules()]


def _assert_unchanged(model: xmlp.Module, snapshot: list[tuple[Any, dict[str, Any]]]) -> None:
    """Every attribute of every module is the same object as before (and so the same value)."""
    for module, attrs in snapshot:
        assert module.__dict__.keys() == attrs.keys()
        for key, value in attrs.items():
            assert module.__dict__[key] is value, f"{type(module).__name__}.{key} changed"


@pytest.mark.parametrize("bad", [{"dtype": "int32"}, {"xp": object()}, {"device": "gpu:7"}],
                         ids=["int-dtype", "not-a-namespace", "unknown-device"])
def test_rejected_to_changes_nothing(bad):
    model, _ = _trained_mlp()
    snapshot = _every_attribute(model)
    values = [p.copy() for p in model.parameters()]
    with pytest.raises(TypeError):
        model.to(**bad)
    _assert_unchanged(model, snapshot)
    for p, v in zip(model.parameters(), values, strict=True):
        np.testing.assert_array_equal(p, v)
    assert model.linear1.grad_weights is not None  # gradients kept: update still possible
    model.update_params(0.1)


def test_to_failing_half_way_changes_nothing(monkeypatch):
    """The third parameter's copy fails (as a full device would): the first two, already made,
    are never assigned."""
    model, x = _trained_mlp()
    snapshot = _every_attribute(model)
    real = ArraySpec.convert
    calls = []

    def flaky(self: ArraySpec, a: Any) -> Any:
        calls.append(a)
        if len(calls) == 3:
            raise MemoryError("out of device memory (simulated)")
        return real(self, a)

    monkeypatch.setattr(ArraySpec, "convert", flaky)
    with pytest.raises(MemoryError):
        model.to(dtype="float32")
    assert len(calls) == 3
    _assert_unchanged(model, snapshot)
    monkeypatch.undo()
    model.update_params(0.1)  # the gradients were kept
    np.testing.assert_array_equal(model.forward(x), model.predict(x))


@STRICT
def test_to_mixed_model_failing_on_a_later_layer_changes_nothing(strict):
    """The first layer could move to device1, the NumPy one after it cannot: nothing moves."""
    xps = strict.module
    model = xmlp.Sequential(xmlp.Linear(3, 4, xp=xps, rng=0), xmlp.Tanh(),
                            xmlp.Linear(4, 2, xp=xps, rng=1))
    model.layers[2] = xmlp.Linear(4, 2, rng=1)  # by hand: Sequential() refuses mixed layers
    snapshot = _every_attribute(model)
    with pytest.raises(TypeError, match="device1"):
        model.to(device=xps.Device("device1"))
    _assert_unchanged(model, snapshot)
    assert device(model[0].weights) == xps.__array_namespace_info__().default_device()


# -- JAX: immutable arrays ---------------------------------------------------------------------
@pytest.mark.requires_backends("jax")
@pytest.mark.parametrize("jax_dtype", ["float32", "float64"])
def test_jax_update_rebinds_the_attributes(jax_dtype):
    jx = backend("jax")
    import jax

    assert jax.config.jax_enable_x64, "the jax backend runs with x64 enabled"
    gen = np.random.default_rng(3)
    x = gen.standard_normal((8, 3)).astype(jax_dtype)
    t = gen.standard_normal((8, 2)).astype(jax_dtype)
    model = xmlp.MLP(3, 5, 2, xp=jx.module, dtype=jax_dtype, rng=7)
    old = model.parameters()
    old_values = [np.array(p) for p in old]
    loss = xmlp.MSELoss()
    value = _step(model, loss, jx.from_numpy(x), jx.from_numpy(t))

    _, _, ref_new, _ = mlp_step(old_values, x.astype(np.float64), t.astype(np.float64), 0.1)
    tol = tolerances(jax_dtype)
    for p, o, before, r in zip(model.parameters(), old, old_values, ref_new, strict=True):
        assert isinstance(p, jax.Array) and p.dtype == jax_dtype
        np.testing.assert_array_equal(np.array(o), before)  # the old array is untouched
        np.testing.assert_allclose(np.array(p), r, **tol)  # the attribute holds the new one
    assert value.dtype == jax_dtype


@pytest.mark.requires_backends("jax")
def test_jax_float64_without_x64_is_a_clear_type_error():
    script = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np, xmlp
        assert not jax.config.jax_enable_x64
        for make in (lambda: xmlp.MLP(1, 4, 1, xp=jnp, dtype="float64"),
                     lambda: xmlp.MLP(1, 4, 1, rng=0).to(jnp, dtype="float64")):
            try:
                make()
            except TypeError as exc:
                print("TypeError:", exc)
            else:
                raise SystemExit("no error")
        model = xmlp.MLP(1, 4, 1, rng=0)  # NumPy float64
        before = model.linear1.weights
        try:
            model.to(jnp)  # keeps float64: not possible without x64
        except TypeError:
            pass
        assert model.linear1.weights is before and model.dtype == np.float64
        model.to(jnp, dtype="float32")  # float32 needs no x64
        print("moved:", np.dtype(model.dtype).name)
    """)
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    # -W error as in our pytest config: JAX's own float64 warning must not mask the TypeError
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("TypeError")]
    assert len(errors) == 2
    for line in errors:
        assert "float64" in line and "jax_enable_x64" in line
    assert "moved: float32" in done.stdout


# -- backend names as xp= ------------------------------------------------------------------------
def test_backend_names_work_wherever_xp_does(xp):
    """xp="torch" (the names `xmlp demo --backend` takes) is the same as xp=torch."""
    name = xp.name.split(":")[0]
    by_name = xmlp.MLP(3, 5, 2, xp=name, device=xp.device, dtype="float32", rng=0)
    by_module = xmlp.MLP(3, 5, 2, xp=xp.module, device=xp.device, dtype="float32", rng=0)
    layer = xmlp.Linear(3, 2, xp=name, device=xp.device, rng=0)
    moved = _build("sequential").to(name, device=xp.device, dtype="float32")
    for model in (by_name, layer, moved):
        for p in model.parameters():
            assert array_namespace(p) is xp.ns
            assert device(p) == device(by_module.linear1.weights)
    for p, q in zip(by_name.parameters(), by_module.parameters(), strict=True):
        np.testing.assert_array_equal(xp.to_numpy(p), xp.to_numpy(q))
    # a name given with initial arrays must agree with them, as a module must
    w = xp.from_numpy(np.ones((2, 3)))
    assert xmlp.Linear(3, 2, w, xp=name).weights.shape == (2, 3)


def test_a_backend_name_whose_library_is_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    for make in (lambda: xmlp.MLP(1, 4, 1, xp="cupy"), lambda: xmlp.Linear(1, 4).to("cupy")):
        with pytest.raises(ModuleNotFoundError, match=r'cupy-cuda12x .*"\.\[cupy\]"'):
            make()


@pytest.mark.parametrize("bad", ["numpi", "tensorflow", "", 3, np.linalg, object()], ids=repr)
def test_what_is_not_a_backend_is_a_type_error_without_internals(bad):
    model = xmlp.Linear(2, 1, rng=0)
    before = model.weights
    for make in (lambda: xmlp.MLP(1, 4, 1, xp=bad), lambda: model.to(bad)):
        with pytest.raises(TypeError) as info:
            make()
        message = str(info.value)
        assert "has no attribute" not in message, message
        assert "'numpy'" in message and "'array_api_strict'" in message, message  # the names
    assert model.weights is before


def test_every_backend_name_points_at_an_extra_that_exists():
    """The install hint of a missing library names an extra pyproject.toml defines."""
    from xmlp.backend import BACKEND_NAMES

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    extras = set(re.findall(r"^([\w-]+) = \[", pyproject.split("[project.optional-dependencies]")
                            [1].split("\n[")[0], re.MULTILINE))
    assert {"cupy", "cupy-cuda12", "cupy-cuda13", "torch", "jax", "dask", "strict"} <= extras
    for name, (_, extra) in BACKEND_NAMES.items():
        assert extra is None or extra in extras, (name, extra)


# -- Module.to(): bad targets, and what it is not asked to change ------------------------------
@pytest.mark.parametrize(("kwargs", "word"), [
    ({"dtype": "int64"}, "real floating"), ({"dtype": "int32"}, "real floating"),
    ({"dtype": "bool"}, "real floating"), ({"dtype": "complex128"}, "real floating"),
    ({"xp": "numpi"}, "'numpi' is not a backend name"), ({"xp": 3}, "xp=3"),
], ids=repr)
def test_to_rejects_bad_targets_and_changes_nothing(xp, kwargs, word):
    model = used_mlp(xp)
    if "dtype" in kwargs and kwargs["dtype"] != "complex128":
        kwargs = {"dtype": getattr(xp.ns, kwargs["dtype"])}  # the backend's own dtype object
    rejects(TypeError, model, lambda: model.to(**kwargs), word)


def test_to_rejects_unknown_device(xp):
    model = used_mlp(xp)
    rejects(TypeError, model, lambda: model.to(device="no-such-device"), "no-such-device",
            ns_name(xp))


def test_to_keeps_what_it_is_not_asked_to_change():
    dev1 = xps.Device("device1")
    model = xmlp.MLP(2, 3, 1, xp=xps, device=dev1, rng=0)
    model.to(dtype="float32")  # the device stays device1
    assert model.device == dev1 and model.dtype == xps.float32
    assert all(device(p) == dev1 and p.dtype == xps.float32 for p in model.parameters())
    small = xmlp.MLP(2, 3, 1, dtype="float32", rng=0)
    small.to(xps)  # the dtype stays float32
    assert small.xp is xps and small.dtype == xps.float32
    assert all(p.dtype == xps.float32 for p in small.parameters())


# -- a second device: refused, never moved; shuffled on it -------------------------------------
def test_other_device_is_rejected_not_moved():
    strict = pytest.importorskip("array_api_strict")
    dev1 = strict.Device("device1")
    layer = xmlp.Linear(3, 2, xp=strict, rng=0)
    layer.forward(strict.ones((4, 3), dtype=strict.float64))
    x = strict.ones((4, 3), dtype=strict.float64, device=dev1)
    rejects(TypeError, layer, lambda: layer.forward(x), "device1", "CPU_DEVICE", "to_device",
            "never transfers silently")
    layer.backward(strict.ones((4, 2), dtype=strict.float64))
    g = strict.ones((4, 2), dtype=strict.float64, device=dev1)
    layer.forward(strict.ones((4, 3), dtype=strict.float64))
    rejects(TypeError, layer, lambda: layer.backward(g), "device1", "CPU_DEVICE")

    loss = xmlp.MSELoss()
    y = strict.ones((4, 2), dtype=strict.float64)
    rejects(TypeError, loss, lambda: loss.forward(y, g), "device1", "y (the prediction)")

    act = xmlp.Tanh()
    act.forward(y)
    rejects(TypeError, act, lambda: act.backward(g), "device1", "the forward input")

    layer.to(device=dev1)  # the way out the message names
    assert array_api_compat.device(layer.forward(x)) == dev1


def test_shuffled_fit_on_a_second_device():
    """The permutation is made on the data's device (array-api-strict's device1 here)."""
    dev1 = xps.Device("device1")
    gen = np.random.default_rng(5)
    x, t = gen.standard_normal((8, 2)), gen.standard_normal((8, 1))
    model = xmlp.MLP(2, 3, 1, xp=xps, device=dev1, rng=0)
    history = xmlp.fit(model, xps.asarray(x, device=dev1), xps.asarray(t, device=dev1),
                       epochs=2, lr=0.1, batch_size=3, shuffle=True, rng=1, progress=False)
    twin = xmlp.MLP(2, 3, 1, rng=0)
    assert history == xmlp.fit(twin, x, t, epochs=2, lr=0.1, batch_size=3, shuffle=True, rng=1,
                               progress=False)
    assert all(device(p) == dev1 for p in model.parameters())
