"""The messages of docs/errors.md's table, word for word, and of the other errors users meet.

test_errors.py checks the error types and that a rejected call changes nothing, with the key
words of each message; here each message is compared whole (NumPy float64 parameters, as in
the table), so a message that loses its owner, one side of a mismatch or its fix is caught.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from xmlp._backend import _device_error


def message(exc_type: type[BaseException], call: Callable[[], Any]) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


def linear34() -> xmlp.Linear:
    return xmlp.Linear(3, 4, rng=0)


class Duck:
    def forward(self, x: Any) -> Any:
        return x


class NoPredict(xmlp.Module):
    """A Module whose predict was switched off: not callable."""

    predict = None  # type: ignore[assignment]

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, grad_output: Any) -> Any:
        return grad_output


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"model.npz"


def used_mlp() -> xmlp.MLP:
    model = xmlp.MLP(3, 6, 2, rng=0)
    model.backward(model.forward(np.ones((5, 3))))
    return model


# (id, error type, call, the whole message)
TABLE: list[tuple[str, type[BaseException], Callable[[], Any], str]] = [
    ("feature count", ValueError, lambda: linear34().forward(np.ones((5, 2))),
     "Linear(3, 4).forward: x must have shape (..., 3) (input_dim features), got (5, 2)"),
    ("0-d to Linear", ValueError, lambda: linear34().predict(np.float64(1.0)),
     "Linear(3, 4).predict: x must have shape (..., 3) (input_dim features), got ()"),
    ("0-d to activation", ValueError, lambda: xmlp.Tanh().forward(np.array(1.0)),
     "Tanh.forward: x must have shape (...) with ndim >= 1, got shape () (a 0-d array); "
     "reshape it, e.g. to (1,)."),
    ("integer array", TypeError, lambda: linear34().forward(np.ones((5, 3), dtype=np.int64)),
     "Linear(3, 4).forward: x has dtype int64; xmlp layers take real floating arrays. Convert "
     "with numpy.astype(x, numpy.float64)."),
    ("other float", TypeError, lambda: linear34().forward(np.ones((5, 3), dtype=np.float32)),
     "Linear(3, 4).forward: x has dtype float32 but the parameters are float64. Convert the "
     "input with numpy.astype(x, numpy.float64) or the model with .to(dtype=numpy.float32)."),
    ("other namespace", TypeError, lambda: linear34().forward(strict.ones((5, 3))),
     "Linear(3, 4).forward: x is an array_api_strict array but the parameters are numpy "
     "arrays. Convert the input (numpy.asarray(...), or cupy.asarray / .get() between NumPy and "
     "CuPy), or move the model with .to(array_api_strict)."),
    ("numpy into strict", TypeError,
     lambda: xmlp.Linear(3, 4, xp=strict, rng=0).forward(np.ones((5, 3))),
     "Linear(3, 4).forward: x is a numpy array but the parameters are array_api_strict "
     "arrays. Convert the input (array_api_strict.asarray(...), or cupy.asarray / .get() "
     "between NumPy and CuPy), or move the model with .to(numpy)."),
    ("other device", TypeError,
     lambda: xmlp.Linear(3, 2, xp=strict, rng=0).forward(
         strict.ones((5, 3), device=strict.Device("device1"))),
     "Linear(3, 2).forward: x is on device array_api_strict.Device('device1') but the "
     "parameters are on array_api_strict.Device('CPU_DEVICE'). Move the input with "
     "array_api_compat.to_device(x, array_api_strict.Device('CPU_DEVICE')) or the model with "
     ".to(array_api_strict, device=array_api_strict.Device('device1')); xmlp never transfers "
     "silently."),
    ("list", TypeError, lambda: linear34().forward([[1.0, 2.0, 3.0]]),
     "Linear(3, 4).forward: x must be a numpy array, got list. Convert it with "
     "numpy.asarray(...)."),
    ("grad_output shape", ValueError,
     lambda: (lambda m: (m.forward(np.ones((5, 3))), m.backward(np.ones((5, 3)))))(linear34()),
     "Linear(3, 4).backward: grad_output must have the output's shape (5, 4), got (5, 3)"),
    ("activation grad dtype", TypeError,
     lambda: (lambda a: (a.forward(np.ones((5, 4))),
                         a.backward(np.ones((5, 4), dtype=np.float32))))(xmlp.Tanh()),
     "Tanh.backward: grad_output has dtype float32 but the forward input is float64. Convert "
     "the input with numpy.astype(x, numpy.float64) (or convert the forward input to "
     "float32)."),
    ("target shape", ValueError, lambda: xmlp.MSELoss().forward(np.ones((5, 1)), np.ones(5)),
     "MSELoss.forward: y and t must have the same shape, got (5, 1) and (5,) (an (N, 1) "
     "against (N,) would broadcast to (N, N)); reshape the target to the prediction's shape."),
    ("target namespace", TypeError,
     lambda: xmlp.MSELoss().forward(strict.ones((5, 1)), np.ones((5, 1))),
     "MSELoss.forward: t (the target) is a numpy array but y (the prediction) is an "
     "array_api_strict array. Convert the input (array_api_strict.asarray(...), or "
     "cupy.asarray / .get() between NumPy and CuPy), so that it matches y (the prediction)."),
    ("empty", ValueError, lambda: xmlp.MSELoss().forward(np.ones((0, 1)), np.ones((0, 1))),
     "MSELoss.forward: y and t are empty (shape (0, 1))"),
    ("no gradient", xmlp.NoGradientError, lambda: xmlp.MLP(3, 6, 2, rng=0).update_params(0.1),
     "MLP.update_params: no gradient for 'linear1.weights'; call backward() after forward() "
     "first."),
    ("gradient shape", ValueError,
     lambda: (lambda m: (setattr(m.linear2, "grad_weights", np.ones((3, 2))),
                         m.update_params(0.1)))(used_mlp()),
     "MLP.update_params: the gradient for 'linear2.weights' must have the parameter's shape "
     "(2, 6), got (3, 2)"),
    ("gradient dtype", TypeError,
     lambda: (lambda m: (setattr(m.linear2, "grad_biases", np.ones(2, dtype=np.float32)),
                         m.update_params(0.1)))(used_mlp()),
     "MLP.update_params: the gradient for 'linear2.biases' has dtype float32 but the "
     "parameters are float64. Convert the input with numpy.astype(x, numpy.float64) or the "
     "model with .to(dtype=numpy.float32)."),
    ("learning rate type", TypeError, lambda: linear34().update_params("0.1"),
     "learning_rate must be a real number (a Python or NumPy scalar), got str: '0.1'"),
    ("learning rate value", ValueError, lambda: linear34().update_params(float("nan")),
     "learning_rate must be finite and >= 0, got nan"),
    ("initial shape", ValueError, lambda: xmlp.Linear(3, 4, np.ones((3, 4))),
     "Linear(3, 4): initial_weights must have shape (4, 3), got (3, 4)"),
    ("dim type", TypeError, lambda: xmlp.Linear("3", 4),
     "Linear: input_dim must be a positive int, got str: '3'"),
    ("dim value", ValueError, lambda: xmlp.Linear(0, 4),
     "Linear: input_dim must be a positive int, got 0"),
    ("dtype", TypeError, lambda: xmlp.Linear(3, 4, dtype="int64"),
     "dtype='int64' is not a real floating dtype; use float32 or float64 (e.g. "
     "dtype=numpy.float32)."),
    ("not a module", TypeError, lambda: xmlp.Sequential(xmlp.Linear(2, 2), Duck()),
     "Sequential: layer 1 (Duck) is not an xmlp.Module; subclass xmlp.Module and define "
     "forward/backward/predict."),
    ("no predict", TypeError, lambda: xmlp.Sequential(NoPredict()),
     "Sequential: layer 0 (NoPredict) has no predict() method"),
    ("no layers", ValueError, lambda: xmlp.Sequential(),
     "Sequential needs at least one layer"),
    ("dims disagree", ValueError,
     lambda: xmlp.Sequential(xmlp.Linear(3, 4), xmlp.Tanh(), xmlp.Linear(5, 1)),
     "Sequential: layer 0 gives 4 features but layer 2 takes 5"),
    ("fit samples", ValueError,
     lambda: xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), np.ones((100, 1)), np.ones((5, 1)), epochs=1,
                      lr=0.1),
     "fit: x has 100 samples but y has 5"),
    ("save path", TypeError, lambda: xmlp.save(xmlp.MLP(1, 2, 1), 3),
     "save: path must be a str or os.PathLike, got int"),
    ("load path", TypeError, lambda: xmlp.load(xmlp.MLP(1, 2, 1), b"model.npz"),
     "load: path must be a str or os.PathLike, got bytes"),
    ("save model", TypeError, lambda: xmlp.save(Duck(), "model.npz"),
     "save: model must be an xmlp.Module (its parameters are listed by named_parameters()), "
     "got Duck"),
    ("load bytes path", TypeError, lambda: xmlp.load(xmlp.MLP(1, 2, 1), BytesPath()),
     "load: path must name a file as text, got b'model.npz'"),
]


@pytest.mark.parametrize(("exc_type", "call", "expected"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_message(exc_type, call, expected):
    assert message(exc_type, call) == expected


def test_device_message_lists_the_devices():
    got = message(TypeError, lambda: xmlp.Linear(3, 4, device="gpu"))
    assert got.startswith("numpy cannot make arrays on device='gpu' (")
    assert got.endswith("). Its devices: ['cpu'].")
    got = message(TypeError, lambda: xmlp.Linear(3, 4, xp=strict, device="nope"))
    assert got.startswith("array_api_strict cannot make arrays on device='nope' (")
    assert ". Its devices: [array_api_strict.Device('CPU_DEVICE'), " in got


def test_device_message_of_a_namespace_without_inspection():
    class Bare:
        __name__ = "bare"

    got = str(_device_error(Bare(), "gpu", RuntimeError("no such device")))
    assert got == "bare cannot make arrays on device='gpu' (no such device)."


def test_namespace_messages(monkeypatch):
    names = "'numpy', 'cupy', 'torch', 'jax', 'dask', 'array_api_strict'"
    assert message(TypeError, lambda: xmlp.Linear(3, 4, xp="numpi")) == (
        "xp='numpi' is not a backend name xmlp knows; use one of 'numpy', 'cupy', 'torch', "
        "'jax', 'jax.numpy', 'dask', 'dask.array', 'array_api_strict' or pass the array module "
        "itself.")
    assert message(TypeError, lambda: xmlp.Linear(3, 4, xp=3)) == (
        "xp=3 is not an array namespace xmlp can use. Pass an array module (numpy, cupy, torch, "
        f"jax.numpy, dask.array, array_api_strict) or its name ({names}).")

    class Broken:
        __name__ = "broken"

        def asarray(self, value: Any) -> Any:
            raise RuntimeError("no device")

    assert message(TypeError, lambda: xmlp.Linear(3, 4, xp=Broken())) == (
        "xp=broken could not make an array here: RuntimeError: no device. Pass an array module "
        "such as numpy, cupy, torch, jax.numpy, dask.array or array_api_strict (CuPy also needs "
        "a working NVIDIA GPU).")
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    got = message(ModuleNotFoundError, lambda: xmlp.Linear(3, 4, xp="cupy"))
    assert got.startswith("xp='cupy' needs cupy, which is not installed here (")
    assert got.endswith('); install it with: pip install cupy-cuda12x (from the xmlp checkout: '
                        'pip install ".[cupy]")')


# -- load ------------------------------------------------------------------------------------
def write(path: Any, arrays: dict[str, np.ndarray], record: Any) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays, __xmlp__=np.array(record))


def good() -> dict[str, np.ndarray]:
    return {name: np.asarray(p) for name, p in xmlp.MLP(2, 3, 1, rng=9).named_parameters()}


def record(arrays: dict[str, np.ndarray], **changes: Any) -> str:
    meta = {"format": 1, "class": "MLP", "shapes": {k: list(v.shape) for k, v in arrays.items()}}
    meta.update(changes)
    return json.dumps({k: v for k, v in meta.items() if v is not None})


def load_message(path: Any, model: xmlp.Module | None = None) -> str:
    return message(ValueError, lambda: xmlp.load(model or xmlp.MLP(2, 3, 1, rng=0), path))


def test_load_messages_name_the_file_and_the_fault(tmp_path):
    path = tmp_path / "m.npz"
    arrays = good()
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    assert load_message(path) == (f"load: {str(path)!r} is not a readable xmlp checkpoint: it "
                                  "holds a single array, not an .npz archive")
    head = f"load: {str(path)!r} is not a readable xmlp checkpoint"
    write(path, arrays, record(arrays, shapes=None))
    assert load_message(path) == f"{head}: its '__xmlp__' record has no parameter shapes"
    write(path, arrays, json.dumps([1, 2]))
    assert load_message(path) == f"{head}: its '__xmlp__' record is a JSON list, not an object"
    for bad_record, kind in ((np.array(5), "an array of dtype int64 and shape ()"),
                             (np.array(["{}", "{}"]), "an array of dtype <U2 and shape (2,)")):
        with open(path, "wb") as f:
            np.savez(f, **arrays, __xmlp__=bad_record)
        assert load_message(path) == f"{head}: its '__xmlp__' record is {kind}, not one string"
    write(path, arrays, record(arrays, format=99))
    assert load_message(path) == (f"load: {str(path)!r} has format version 99; this xmlp reads "
                                  "version 1")
    write(path, {**arrays, "extra": np.ones(1)}, record(arrays))
    assert load_message(path) == (f"{head}: its '__xmlp__' record lists {sorted(arrays)} but it "
                                  f"holds {sorted([*arrays, 'extra'])}")


def test_load_message_for_a_pickle(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    assert load_message(path).endswith(
        " (load never unpickles: pickles and object arrays are refused)")


def test_load_messages_name_the_model(tmp_path):
    path = tmp_path / "m.npz"
    seq = xmlp.Sequential(xmlp.Linear(2, 3, rng=0), xmlp.Tanh(), xmlp.Linear(3, 1, rng=1))
    xmlp.save(seq, path)
    assert load_message(path) == (
        f"load: {str(path)!r} has no parameter 'linear1.weights' of the MLP; it was saved from "
        "a Sequential with ['0.weights', '0.biases', '2.weights', '2.biases']")
    # a record without the class name (written by hand): the message still reads
    arrays = good()
    write(path, {"w": np.ones(1)}, json.dumps({"format": 1, "shapes": {"w": [1]}}))
    assert load_message(path) == (
        f"load: {str(path)!r} has no parameter 'linear1.weights' of the MLP; it was saved from "
        "a unknown model with ['w']")
    extra = {**arrays, "scale": np.ones(1)}
    write(path, extra, record(extra))
    assert load_message(path) == (
        f"load: {str(path)!r} holds 'scale', which the MLP does not have (its parameters: "
        f"{list(arrays)})")
    xmlp.save(xmlp.MLP(2, 10, 1, rng=0), path)
    assert load_message(path) == (
        f"load: 'linear1.weights' has shape (10, 2) in {str(path)!r} but (3, 2) in the MLP")


def test_load_messages_about_optimizer_state(tmp_path):
    path = tmp_path / "m.npz"
    arrays = good()
    write(path, arrays, record(arrays))

    def load_with_optimizer() -> str:
        model = xmlp.MLP(2, 3, 1, rng=0)
        return message(ValueError, lambda: xmlp.load(model, path,
                                                      optimizer=xmlp.optim.Adam(model)))

    assert load_with_optimizer() == (
        f"load: {str(path)!r} holds no optimizer state (it was saved without optimizer=); load "
        "the model alone, or train on from a fresh optimizer")
    write(path, arrays, record(arrays, optimizer=["Adam"]))
    assert load_with_optimizer() == (
        f"load: {str(path)!r} is not a readable xmlp checkpoint: its '__xmlp__' record has an "
        "'optimizer' field that is not an object")


@pytest.mark.parametrize("caller", ["save", "load"])
def test_save_and_load_messages_about_the_optimizer_argument(caller, tmp_path):
    path = tmp_path / "m.npz"
    model = xmlp.MLP(2, 3, 1, rng=0)
    xmlp.save(model, path)
    call = getattr(xmlp, caller)
    foreign = xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=1))
    assert message(ValueError, lambda: call(model, path, optimizer=foreign)) == (
        f"{caller}: the optimizer was built on another model; pass the optimizer of this MLP")
    assert message(TypeError, lambda: call(model, path, optimizer="adam")) == (
        f"{caller}: optimizer must be an xmlp.optim optimizer, got str")


class Holder(xmlp.Module):
    """A container whose one layer is named "optimizer"."""

    def __init__(self) -> None:
        self.inner = xmlp.Linear(2, 1, rng=0)

    def named_children(self) -> Any:
        yield "optimizer", self.inner


def test_save_message_for_a_parameter_named_like_optimizer_state(tmp_path):
    path = tmp_path / "m.npz"
    model = Holder()
    assert [name for name, _ in model.named_parameters()] == ["optimizer.weights",
                                                             "optimizer.biases"]
    assert message(ValueError, lambda: xmlp.save(model, path,
                                                 optimizer=xmlp.optim.SGD(model, lr=0.1))) == (
        "save: the parameter name 'optimizer.weights' collides with the 'optimizer.' keys of "
        "the optimizer state")
    assert not path.exists()
    xmlp.save(model, path)  # without optimizer state the names are only parameters
    assert load_message(path) == (
        f"load: {str(path)!r} has no parameter 'linear1.weights' of the MLP; it was saved from "
        "a Holder with ['optimizer.weights', 'optimizer.biases']")
    assert load_message(path, xmlp.Sequential(xmlp.Linear(2, 1, rng=0))) == (
        f"load: {str(path)!r} has no parameter '0.weights' of the Sequential; it was saved from "
        "a Holder with ['optimizer.weights', 'optimizer.biases']")


def test_load_message_lists_the_parameters_of_a_file_with_optimizer_state(tmp_path):
    """The saved parameters named in the message are the model's, not the optimizer's arrays."""
    path = tmp_path / "m.npz"
    source = xmlp.MLP(2, 3, 1, rng=0)
    optimizer = xmlp.optim.Adam(source)
    source.backward(source.forward(np.ones((4, 2))))
    optimizer.step()
    xmlp.save(source, path, optimizer=optimizer)
    with np.load(path) as data:
        assert "optimizer.linear1.weights.exp_avg" in data.files
    assert load_message(path, xmlp.Sequential(xmlp.Linear(2, 1, rng=0))) == (
        f"load: {str(path)!r} has no parameter '0.weights' of the Sequential; it was saved from "
        f"a MLP with {[name for name, _ in source.named_parameters()]}")


def test_save_onto_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        xmlp.save(xmlp.MLP(1, 2, 1), tmp_path)
    exc = info.value
    assert (exc.errno, exc.strerror, exc.filename) == (errno.EISDIR,
                                                       "save: the path is a directory",
                                                       str(tmp_path))
    assert str(exc) == f"[Errno {errno.EISDIR}] save: the path is a directory: {str(tmp_path)!r}"


@pytest.mark.parametrize(("value", "expected"), [
    ("a" * 78, "'" + "a" * 78 + "'"),  # 80 characters: kept whole
    ("a" * 79, "'" + "a" * 76 + "..."),  # 81: cut to 80, the last three "..."
])
def test_values_in_messages_are_cut_to_80_characters(value, expected):
    from xmlp._backend import short_repr

    assert short_repr(value) == expected and len(expected) == 80


def test_a_value_without_a_repr_is_named_by_its_type():
    from xmlp._backend import short_repr

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert short_repr(Broken()) == "<a Broken>"
    assert short_repr(10**5000) == f"<an int of {(10**5000).bit_length()} bits>"


def test_os_errors_are_not_rewritten(tmp_path):
    with pytest.raises(FileNotFoundError):
        xmlp.load(xmlp.MLP(1, 2, 1), os.fspath(tmp_path / "nothing.npz"))


# -- fit ---------------------------------------------------------------------------------------
X6, T6 = np.ones((6, 2)), np.ones((6, 1))
FIT = [
    ({"epochs": 0}, ValueError, "fit: epochs must be a positive int, got 0"),
    ({"epochs": 2.0}, TypeError, "fit: epochs must be a positive int, got 2.0"),
    ({"batch_size": 0}, ValueError, "fit: batch_size must be a positive int, got 0"),
    ({"batch_size": 1.5}, TypeError, "fit: batch_size must be a positive int, got 1.5"),
    ({"shuffle": "yes"}, TypeError, "fit: shuffle must be True or False, got 'yes'"),
    ({"progress": "yes"}, TypeError, "fit: progress must be None, True or False, got 'yes'"),
    ({"loss": Duck()}, TypeError, "fit: loss must have a backward() method, got Duck"),
    ({"rng": "seed"}, TypeError,
     "fit: rng must be None, a non-negative int seed or a numpy.random.Generator, got 'seed'"),
    ({"rng": -1}, ValueError,
     "fit: rng must be None, a non-negative int seed or a numpy.random.Generator, got -1"),
    ({"x": [1.0]}, TypeError, "fit: x must be an array, got list"),
    ({"y": (1.0,)}, TypeError, "fit: y must be an array, got tuple"),
    ({"x": np.float64(1.0)}, ValueError,
     "fit: x and y need a leading sample axis, got shapes () and (6, 1)"),
    ({"y": np.array(1.0)}, ValueError,
     "fit: x and y need a leading sample axis, got shapes (6, 2) and ()"),
    ({"x": np.ones((0, 2)), "y": np.ones((0, 1))}, ValueError, "fit: x and y hold no samples"),
]


@pytest.mark.parametrize(("kwargs", "exc_type", "expected"), FIT, ids=[str(k) for k, *_ in FIT])
def test_fit_message(kwargs, exc_type, expected):
    call = {"x": X6, "y": T6, "epochs": 2, "lr": 0.1, "progress": False, **kwargs}
    x, y = call.pop("x"), call.pop("y")
    assert message(exc_type, lambda: xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), x, y, **call)) == expected


def test_fit_model_messages():
    assert message(TypeError, lambda: xmlp.fit(Duck(), X6, T6, epochs=1, lr=0.1)) == (
        "fit: model has no backward() method (Duck)")

    class Bare:
        def forward(self, x: Any) -> Any:
            return x

        def backward(self, g: Any) -> Any:
            return g

        def update_params(self, lr: float) -> None:
            pass

    assert message(TypeError, lambda: xmlp.fit(Bare(), X6, T6, epochs=1, lr=0.1)) == (
        "fit: model must be an xmlp.Module (got Bare): fit lists, restores and persists "
        "parameters through named_parameters(). Subclass xmlp.Module or wrap your layers in "
        "xmlp.Sequential.")
    got = message(TypeError, lambda: xmlp.fit(xmlp.MLP(2, 3, 1), strict.ones((6, 2)), T6,
                                              epochs=1, lr=0.1))
    assert got == ("fit: x and y must be arrays of one namespace, got array_api_strict and "
                   "numpy arrays; convert both with numpy.asarray(...), the model's namespace")
    # a model without parameters has no namespace of its own: x's is named
    got = message(TypeError, lambda: xmlp.fit(xmlp.Tanh(), strict.ones((6, 2)), T6,
                                              epochs=1, lr=0.1))
    assert got == ("fit: x and y must be arrays of one namespace, got array_api_strict and "
                   "numpy arrays; convert y with array_api_strict.asarray(...)")


@pytest.mark.requires_backends("dask")
def test_unknown_dask_sizes_are_value_errors():
    """Dask arrays after boolean indexing have a nan length: every entry point says so."""
    import dask.array as da

    x = da.from_array(np.linspace(-1, 1, 8).reshape(8, 1), chunks=4)
    y = da.from_array(np.zeros((8, 1)), chunks=4)
    keep = x[:, 0] > -2
    xu, yu = x[keep], y[keep]
    assert np.isnan(xu.shape[0])
    hint = (" is unknown (a Dask array with unknown chunk sizes?); call .compute_chunk_sizes() "
            "first.")
    model = xmlp.MLP(1, 2, 1, xp=da, rng=0)
    assert message(ValueError, lambda: xmlp.fit(model, xu, y, epochs=1, lr=0.1)) == (
        "fit: the number of samples of x" + hint)
    assert message(ValueError, lambda: xmlp.fit(model, x, yu, epochs=1, lr=0.1)) == (
        "fit: the number of samples of y" + hint)
    assert message(ValueError, lambda: model.linear1.forward(xu)) == (
        "Linear(1, 2).forward: x has an unknown size, shape (nan, 1); on Dask call "
        "x.compute_chunk_sizes() first (needed after boolean indexing, for instance).")
    assert message(ValueError, lambda: xmlp.MSELoss().forward(xu, yu)) == (
        "MSELoss.forward: y has an unknown size, shape (nan, 1), so the mean cannot be taken; on "
        "Dask call .compute_chunk_sizes() on the input first.")


@pytest.mark.parametrize("epoch", [1, 2, 3])
def test_fit_nonfinite_loss_message(epoch):
    from test_training import PoisonedLoss

    kept = "to their initial values" if epoch == 1 else f"after epoch {epoch - 1}"
    got = message(FloatingPointError, lambda: xmlp.fit(
        xmlp.MLP(2, 3, 1, rng=0), X6, T6, epochs=4, lr=0.1, loss=PoisonedLoss(epoch),
        progress=False))
    assert got == (f"fit: the loss of epoch {epoch} is nan; parameters restored {kept}. Try a "
                   "smaller learning rate.")


def test_a_parameter_of_a_lone_layer_replaced_by_hand_is_named_without_a_prefix():
    layer = xmlp.Linear(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    layer.backward(np.ones((4, 3)))
    layer.weights = np.ones((3, 2), dtype=np.float32)
    assert message(TypeError, lambda: layer.update_params(0.1)).startswith(
        "Linear.update_params: parameter 'weights' ")


@pytest.mark.parametrize("caller", ["update_params", "SGD.step"])
def test_a_parameter_replaced_by_hand_is_named_with_the_call(caller):
    model = xmlp.MLP(2, 3, 1, rng=0)
    model.forward(np.ones((4, 2)))
    model.backward(np.ones((4, 1)))
    model.linear1.weights = np.ones((3, 2), dtype=np.float32)  # not the layer's float64
    if caller == "update_params":
        text = message(TypeError, lambda: model.update_params(0.1))
        assert text.startswith("MLP.update_params: parameter 'linear1.weights' ")
    else:
        opt = xmlp.optim.SGD(model, lr=0.1)
        assert message(TypeError, opt.step).startswith("SGD.step: parameter 'linear1.weights' ")


@pytest.mark.parametrize(("replacement", "problem"), [
    ([[1.0, 2.0]] * 3, "is a list, not an array"),
    (strict.ones((3, 2), dtype=strict.float64), "is an array_api_strict array"),
    (np.ones((3, 2), dtype=">f8"), "has non-native byte order ('>f8')"),
    (np.ones((3, 2), dtype=np.float32), "has dtype float32"),
], ids=["list", "other-namespace", "byte-order", "dtype"])
def test_what_is_wrong_with_a_replaced_parameter(replacement, problem):
    layer = xmlp.Linear(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    layer.backward(np.ones((4, 3)))
    layer.weights = replacement
    assert message(TypeError, lambda: layer.update_params(0.1)).startswith(
        f"Linear.update_params: parameter 'weights' {problem}, but the layer's parameters are ")


# -- the pieces behind several messages (survivors of the mutation run) -----------------------
def test_mismatch_says_how_an_array_differs():
    from xmlp._backend import ArraySpec

    spec = ArraySpec.of(np.zeros(2))
    assert spec.mismatch(np.zeros(2)) is None
    assert spec.mismatch([0.0, 0.0]) == "is a list, not an array"
    assert spec.mismatch(np.zeros(2, np.float32)) == "has dtype float32"
    assert spec.mismatch(np.zeros(2, ">f8")) == "has non-native byte order ('>f8')"
    assert spec.mismatch(np.ma.zeros(2)) == "is a MaskedArray"  # right namespace and dtype
    # float32: np.dtype(None) is float64, so only another dtype tells the names apart
    spec32 = ArraySpec.of(np.zeros(2, np.float32))
    assert spec32.mismatch(np.zeros(2, ">f4")) == "has non-native byte order ('>f4')"


def test_mismatch_says_a_tensor_requires_grad():
    from xmlp._backend import ArraySpec

    torch = pytest.importorskip("torch", reason="PyTorch is not installed: its autograd text")
    tspec = ArraySpec.of(torch.zeros(2, dtype=torch.float64))
    assert tspec.mismatch(torch.zeros(2, dtype=torch.float64, requires_grad=True)) == (
        "requires grad (it would record an autograd graph every step)")


def test_a_hand_replaced_parameter_of_a_lone_layer_names_it_and_the_fix():
    layer = linear34()
    layer.biases = np.zeros(4, np.float32)
    assert message(TypeError, lambda: layer.forward(np.ones((2, 3)))) == (
        "Linear(3, 4).forward: parameter 'biases' has dtype float32, but the layer's parameters "
        "are numpy float64 on cpu. Was it replaced by hand? Assign a numpy float64 array on "
        "cpu, or call .to() on the model to convert every parameter to one namespace, device "
        "and dtype.")


def test_a_hand_replaced_parameter_of_a_float32_layer_names_its_dtype():
    layer = xmlp.Linear(3, 4, rng=0, dtype=np.float32)
    layer.biases = np.zeros(4)
    assert message(TypeError, lambda: layer.forward(np.ones((2, 3), np.float32))) == (
        "Linear(3, 4).forward: parameter 'biases' has dtype float64, but the layer's parameters "
        "are numpy float32 on cpu. Was it replaced by hand? Assign a numpy float32 array on "
        "cpu, or call .to() on the model to convert every parameter to one namespace, device "
        "and dtype.")


def test_a_layer_put_twice_by_hand_is_named_by_the_pass_that_found_it():
    model = xmlp.Sequential(xmlp.Linear(2, 2, rng=0), xmlp.Tanh(), xmlp.Linear(2, 2, rng=1))
    model.layers[2] = model.layers[0]
    text = message(ValueError, lambda: model.forward(np.ones((1, 2))))
    assert text.startswith("Sequential.forward: Linear(2, 2, numpy float64 on cpu) is used "
                           "twice, as 0 and as 2; a layer object can be used once")
    text = message(ValueError, lambda: model.backward(np.ones((1, 2))))
    assert text.startswith("Sequential.backward: Linear(2, 2, numpy float64 on cpu) is used "
                           "twice, as 0 and as 2; a layer object can be used once")


def test_describe_names_the_exception_and_cuts_its_text():
    from xmlp.io import _describe

    assert _describe(ValueError("bad header")) == "ValueError: bad header"
    assert _describe(KeyError()) == "KeyError"
    assert _describe(OSError("x" * 400)) == "OSError: " + "x" * 300


def test_activation_messages_name_the_layer_and_the_input():
    with pytest.raises(TypeError) as info:
        xmlp.ReLU().forward(np.array([1, 2]))
    assert str(info.value).startswith("ReLU.forward: x has dtype int64; ")
    with pytest.raises(ValueError) as info:
        xmlp.Tanh().forward(np.zeros((0, 3)))
    assert str(info.value) == ("Tanh.forward: x is an empty batch (shape (0, 3)); pass at least "
                               "one sample")


def test_linear_backward_names_itself_for_a_parameter_replaced_by_hand():
    layer = xmlp.Linear(3, 4, rng=0)
    layer.forward(np.ones((2, 3)))
    layer.weights = np.ones((5, 3))
    with pytest.raises(ValueError) as info:
        layer.backward(np.ones((2, 4)))
    assert str(info.value) == ("Linear(3, 4).backward: parameter 'weights' has shape (5, 3) but "
                               "the layer needs (4, 3) (was it replaced by hand?)")
    layer.weights = np.ones((4, 3))
    with pytest.raises(TypeError) as info:
        layer.backward(np.ones((2, 4), dtype=np.float32))
    assert str(info.value).startswith("Linear(3, 4).backward: grad_output has dtype float32 ")


def test_an_activation_follows_its_input_to_another_device():
    """array-api-strict has several devices: an activation used on one and then on another
    takes each input's device, forward and backward (no stale device from the last call)."""
    import array_api_strict as xp

    act = xmlp.Tanh()
    for name in ("CPU_DEVICE", "device1", "CPU_DEVICE"):
        device = xp.Device(name)
        y = act.forward(xp.asarray([[0.5, -1.0]], device=device))
        g = act.backward(xp.ones_like(y))
        assert y.device == device and g.device == device


def test_a_namespace_without_a_name_is_shown_by_its_repr():
    """namespace_name, which every message uses to name a namespace, falls back on repr() for
    a namespace object that is not a module (one without __name__)."""
    import types

    from xmlp._backend import namespace_name

    ns = types.SimpleNamespace(kind="custom")
    assert namespace_name(ns) == "namespace(kind='custom')"
    assert namespace_name(np) == "numpy"
