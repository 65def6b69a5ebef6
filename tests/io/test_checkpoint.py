"""xmlp.save / xmlp.load: round trips across backends, dtypes and byte orders, the file's layout,
files that do not fit the model or must be refused, and the messages that say why."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import xmlp
import xmlp.io.checkpoint
from tests.helpers import Duck, data, host_params, layer_kwargs, message
from xmlp.backend import to_host


def make_model(xp, dtype="float64", seed=1, hidden=5):
    return xmlp.MLP(2, hidden, 1, xp=xp.module, device=xp.device, dtype=dtype, rng=seed)


def assert_unchanged(xp, model, before):
    for p, q in zip(host_params(xp, model), before, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.fixture
def numpy_backend():
    from tests.conftest import Backend

    return Backend("numpy", np, np)


# -- round trips -------------------------------------------------------------------------------


def test_round_trip_keeps_values_namespace_and_dtype(xp, dtype, tmp_path):
    path = tmp_path / "model.npz"
    source = make_model(xp, dtype, seed=1)
    xmlp.save(source, path)
    target = make_model(xp, dtype, seed=2)
    x = xp.from_numpy(np.ones((10, 2)), dtype)
    target.backward(target.forward(x))  # leave activations and gradients behind
    assert xmlp.load(target, path) is target
    for (name, p), q in zip(target.named_parameters(), host_params(xp, source), strict=True):
        assert type(p) is type(x), name
        assert p.dtype == getattr(xp.ns, dtype), name
        np.testing.assert_array_equal(xp.to_numpy(p), q)
    assert all(g is None for _, g in target.named_grads())
    assert target.linear1.x is None and target.activation.output is None


def test_load_casts_into_the_models_backend_and_dtype(xp, tmp_path, numpy_backend):
    path = tmp_path / "f64.npz"
    source = make_model(numpy_backend, "float64", seed=3)
    xmlp.save(source, path)
    target = xmlp.load(make_model(xp, "float32", seed=4), path)
    for p, q in zip(target.parameters(), source.parameters(), strict=True):
        assert p.dtype == xp.ns.float32
        np.testing.assert_array_equal(xp.to_numpy(p), q.astype(np.float32))
    # and back: a float32 checkpoint of this backend into a NumPy float64 model
    xmlp.save(target, tmp_path / "f32.npz")
    back = xmlp.load(make_model(numpy_backend, "float64", seed=5), tmp_path / "f32.npz")
    for p, q in zip(back.parameters(), target.parameters(), strict=True):
        assert p.dtype == np.float64
        np.testing.assert_array_equal(p, xp.to_numpy(q).astype(np.float64))


def test_sequential_round_trip(xp, tmp_path):
    def build(seed):
        return xmlp.Sequential(
            xmlp.Linear(2, 4, xp=xp.module, device=xp.device, rng=seed), xmlp.ReLU(),
            xmlp.Linear(4, 3, xp=xp.module, device=xp.device, rng=seed + 1), xmlp.Sigmoid(),
            xmlp.Linear(3, 1, xp=xp.module, device=xp.device, rng=seed + 2),
        )

    source = build(1)
    xmlp.save(source, tmp_path / "seq")
    with np.load(tmp_path / "seq") as data:
        assert set(data.files) == {
            "0.weights", "0.biases", "2.weights", "2.biases", "4.weights", "4.biases", "__xmlp__"
        }
    target = xmlp.load(build(10), tmp_path / "seq")
    for p, q in zip(host_params(xp, target), host_params(xp, source), strict=True):
        np.testing.assert_array_equal(p, q)


class Scale(xmlp.Module):
    """A hand-written layer with a parameter and no ArraySpec: load makes each value like the
    array it replaces (its namespace, device and dtype)."""

    param_names = ("scale",)

    def __init__(self, scale):
        self.scale = scale
        self.grad_scale = None

    def forward(self, x):
        return x * self.scale


def test_round_trip_of_a_layer_without_a_spec(xp, tmp_path):
    path = tmp_path / "scale.npz"
    values = np.array([0.5, -2.0, 3.25])
    xmlp.save(Scale(xp.from_numpy(values, "float64")), path)
    target = Scale(xp.from_numpy(np.zeros(3), "float32"))
    target.grad_scale = target.scale
    assert xmlp.load(target, path) is target
    assert type(target.scale) is type(xp.from_numpy(values))
    assert target.scale.dtype == xp.ns.float32
    np.testing.assert_array_equal(xp.to_numpy(target.scale), values.astype(np.float32))
    assert target.grad_scale is None


# -- the file ----------------------------------------------------------------------------------


def test_file_holds_parameters_and_a_record(tmp_path):
    model = xmlp.MLP(1, 3, 1, rng=0, dtype="float32")
    xmlp.save(model, tmp_path / "m")
    with np.load(tmp_path / "m", allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    meta = json.loads(str(stored.pop("__xmlp__")))
    assert meta == {
        "format": xmlp.io.checkpoint.FORMAT_VERSION,
        "class": "MLP",
        "shapes": {"linear1.weights": [3, 1], "linear1.biases": [3],
                   "linear2.weights": [1, 3], "linear2.biases": [1]},
    }
    assert list(stored) == [name for name, _ in model.named_parameters()]
    for (_, p), a in zip(model.named_parameters(), stored.values(), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, p)


def test_save_and_load_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match="Module"):
        xmlp.save(object(), tmp_path / "m")
    with pytest.raises(TypeError, match="path"):
        xmlp.save(xmlp.MLP(1, 2, 1), 3)
    with pytest.raises(TypeError, match="Module"):
        xmlp.load(object(), tmp_path / "m")
    assert os.listdir(tmp_path) == []


# -- files that do not fit the model -----------------------------------------------------------


def test_shape_mismatch_names_the_parameter_and_changes_nothing(xp, tmp_path):
    xmlp.save(xmlp.MLP(2, 10, 1, rng=0), tmp_path / "wide")
    model = make_model(xp)
    before = host_params(xp, model)
    with pytest.raises(ValueError, match=r"'linear1\.weights' has shape \(10, 2\).*\(5, 2\)"):
        xmlp.load(model, tmp_path / "wide")
    assert_unchanged(xp, model, before)


def test_name_mismatch_names_the_parameter_and_changes_nothing(xp, tmp_path):
    seq = xmlp.Sequential(xmlp.Linear(2, 3, rng=0), xmlp.Tanh(), xmlp.Linear(3, 1, rng=1))
    xmlp.save(seq, tmp_path / "seq")
    model = make_model(xp)
    before = host_params(xp, model)
    with pytest.raises(ValueError, match=r"no parameter 'linear1\.weights'.*Sequential"):
        xmlp.load(model, tmp_path / "seq")
    assert_unchanged(xp, model, before)
    # a file with every name of the model and one more
    layer = xmlp.Linear(2, 3, xp=xp.module, device=xp.device, rng=0)
    extra = {"weights": np.zeros((3, 2)), "biases": np.zeros(3), "scale": np.ones(1)}
    write_checkpoint(tmp_path / "extra", extra)
    layer_before = host_params(xp, layer)
    with pytest.raises(ValueError, match="'scale'"):
        xmlp.load(layer, tmp_path / "extra")
    assert_unchanged(xp, layer, layer_before)


def write_checkpoint(path, arrays, meta=None, **overrides):
    """An .npz laid out like xmlp.save's, with parts replaced."""
    record = {"format": 1, "class": "MLP",
              "shapes": {k: list(np.shape(v)) for k, v in arrays.items()}}
    record.update(overrides)
    with open(path, "wb") as f:
        np.savez(f, **arrays, __xmlp__=np.array(json.dumps(record) if meta is None else meta))


def good_arrays():
    model = xmlp.MLP(2, 3, 1, rng=9)
    return {name: np.asarray(p) for name, p in model.named_parameters()}


def corrupt_files(path, good):
    """name -> a function writing that kind of broken file at ``path``."""

    def raw(content):
        return lambda: path.write_bytes(content)

    def truncated():
        xmlp.save(xmlp.MLP(2, 3, 1, rng=9), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def flipped():
        xmlp.save(xmlp.MLP(2, 3, 1, rng=9), path)
        data = bytearray(path.read_bytes())
        start = data.index(b"\x93NUMPY")  # inside the first member
        data[start + 130: start + 138] = b"\xff" * 8
        path.write_bytes(bytes(data))

    def single_array():
        with open(path, "wb") as f:
            np.save(f, np.ones(3))

    def no_record():
        with open(path, "wb") as f:
            np.savez(f, **good)

    def strings():
        arrays = dict(good)
        arrays["linear2.biases"] = np.array(["x"])
        write_checkpoint(path, arrays)

    return {
        "empty": raw(b""),
        "garbage": raw(os.urandom(64)),
        "pickle": raw(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."),
        "truncated": truncated,
        "crc": flipped,
        "single-array": single_array,
        "no-record": no_record,
        "record-not-json": lambda: write_checkpoint(path, good, meta="{not json"),
        "future-format": lambda: write_checkpoint(path, good, format=99),
        "record-disagrees": lambda: write_checkpoint(
            path, good, shapes={**{k: list(v.shape) for k, v in good.items()},
                                "linear1.biases": [4]}),
        "string-array": strings,
        # the record and the archive disagree on the keys, the shapes of those both hold agreeing
        "record-lists-a-missing-key": lambda: write_checkpoint(
            path, good, shapes={**{k: list(v.shape) for k, v in good.items()},
                                "linear3.weights": [1, 1]}),
        "record-omits-a-key": lambda: write_checkpoint(
            path, {**good, "linear3.weights": np.ones((1, 1))},
            shapes={k: list(v.shape) for k, v in good.items()}),
    }


CORRUPT = list(corrupt_files(None, {}))


@pytest.mark.parametrize("kind", CORRUPT)
def test_corrupt_file_is_refused_and_changes_nothing(kind, tmp_path):
    path = tmp_path / "bad.npz"
    corrupt_files(path, good_arrays())[kind]()
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [p.copy() for p in model.parameters()]
    with pytest.raises((ValueError, OSError)) as info:
        xmlp.load(model, path)
    assert str(path) in str(info.value)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("kind", ["record-lists-a-missing-key", "record-omits-a-key"])
def test_record_and_archive_must_list_the_same_keys(kind, tmp_path):
    """Even where the model's own parameters are all there with the right shapes."""
    path = tmp_path / "bad.npz"
    corrupt_files(path, good_arrays())[kind]()
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"linear3\.weights"):  # names the odd key
        xmlp.load(model, path)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


def test_missing_file_is_an_oserror(tmp_path):
    """The file system's own error, not rewritten, for a path as a str or a Path."""
    for path in (tmp_path / "nothing.npz", os.fspath(tmp_path / "nothing.npz")):
        with pytest.raises(FileNotFoundError):
            xmlp.load(xmlp.MLP(1, 2, 1), path)


SPRUNG: list[str] = []


def _spring() -> str:
    SPRUNG.append("unpickled")
    return "trap"


class Trap:
    """Unpickling this runs _spring(): a stand-in for a malicious pickle."""

    def __reduce__(self):
        return (_spring, ())


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    arrays = good_arrays()
    trap = np.empty(3, dtype=object)
    trap[:] = [Trap(), Trap(), Trap()]
    arrays["linear1.biases"] = trap
    write_checkpoint(tmp_path / "trap.npz", arrays)
    model = xmlp.MLP(2, 3, 1, rng=0)
    before = [p.copy() for p in model.parameters()]
    SPRUNG.clear()
    with pytest.raises(ValueError, match="never unpickles"):
        xmlp.load(model, tmp_path / "trap.npz")
    assert SPRUNG == []
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


# -- messages ----------------------------------------------------------------------------------
# (id, error type, call, the whole message)
ARGUMENTS: list[tuple[str, type[BaseException], Callable[[], Any], str]] = [
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


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"model.npz"


@pytest.mark.parametrize(("exc_type", "call", "expected"), [row[1:] for row in ARGUMENTS],
                         ids=[row[0] for row in ARGUMENTS])
def test_argument_messages(exc_type, call, expected):
    assert message(exc_type, call) == expected


def write(path: Any, arrays: dict[str, np.ndarray], record: Any) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays, __xmlp__=np.array(record))


def record(arrays: dict[str, np.ndarray], **changes: Any) -> str:
    meta = {"format": 1, "class": "MLP", "shapes": {k: list(v.shape) for k, v in arrays.items()}}
    meta.update(changes)
    return json.dumps({k: v for k, v in meta.items() if v is not None})


def load_message(path: Any, model: xmlp.Module | None = None) -> str:
    return message(ValueError, lambda: xmlp.load(model or xmlp.MLP(2, 3, 1, rng=0), path))


def test_load_messages_name_the_file_and_the_fault(tmp_path):
    path = tmp_path / "m.npz"
    arrays = good_arrays()
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
    arrays = good_arrays()
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
    arrays = good_arrays()
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


def test_describe_names_the_exception_and_cuts_its_text():
    from xmlp.io.checkpoint import _describe

    assert _describe(ValueError("bad header")) == "ValueError: bad header"
    assert _describe(KeyError()) == "KeyError"
    assert _describe(OSError("x" * 400)) == "OSError: " + "x" * 300


# -- byte order and dtypes ---------------------------------------------------------------------
def test_big_endian_checkpoint_loads_native(tmp_path):
    from xmlp.io.checkpoint import write_checkpoint

    model = xmlp.MLP(2, 3, 1, rng=0)
    arrays = {n: np.asarray(p).astype(">f8") for n, p in model.named_parameters()}
    write_checkpoint(str(tmp_path / "big.npz"), arrays, {
        "format": 1, "class": "MLP", "shapes": {n: list(a.shape) for n, a in arrays.items()}})
    loaded = xmlp.load(xmlp.MLP(2, 3, 1, rng=1), tmp_path / "big.npz")
    for p, q in zip(loaded.parameters(), model.parameters(), strict=True):
        assert p.dtype == np.float64 and p.dtype.isnative
        np.testing.assert_array_equal(p, q)
    loaded.forward(np.ones((2, 2)))


def test_load_puts_parameters_back_in_the_layers_dtype(xp, tmp_path):
    """A parameter replaced by hand with another dtype is caught by the next call, and load
    (like .to()) writes every parameter in its layer's namespace, device and dtype."""
    model = xmlp.MLP(2, 3, 1, rng=0, **layer_kwargs(xp))
    xmlp.save(model, tmp_path / "m.npz")
    model.linear1.weights = xp.astype(model.linear1.weights, xp.float32)
    xmlp.load(model, tmp_path / "m.npz")
    assert all(p.dtype == xp.float64 for p in model.parameters())
    model.forward(data(xp, (4, 2)))


def _rewritten(path, tmp_path, change):
    """A copy of the checkpoint at ``path`` with every floating array replaced by change(a)."""
    with np.load(path) as f:
        members = {k: (change(f[k]) if f[k].dtype.kind == "f" else f[k]) for k in f.files}
    out = os.path.join(tmp_path, "changed.npz")
    np.savez(out, **members)
    return out


def test_a_big_endian_checkpoint_loads_into_a_torch_model(tmp_path):
    """A checkpoint whose arrays are big-endian (written on a big-endian machine) loads into a
    torch model: the values are brought to this machine's byte order before torch sees them
    (torch.asarray refuses other byte orders)."""
    torch = pytest.importorskip("torch", reason="loading into a torch model needs torch")
    source = xmlp.Linear(3, 2, rng=0)
    path = os.path.join(tmp_path, "model.npz")
    xmlp.save(source, path)
    big = _rewritten(path, tmp_path, lambda a: a.astype(a.dtype.newbyteorder(">")))
    model = xmlp.load(xmlp.Linear(3, 2, xp=torch, dtype=torch.float64, rng=1), big)
    np.testing.assert_array_equal(to_host(model.weights), source.weights)
    np.testing.assert_array_equal(to_host(model.biases), source.biases)


def test_an_integer_checkpoint_is_rounded_once_to_the_parameters_dtype(tmp_path):
    """Integer values in a checkpoint become the nearest value of the parameter's dtype (one
    rounding): 2**60 + 2**36 + 1 is float32 2**60 + 2**37, where a float64 stop on the way would
    round it to 2**60."""
    big = 2**60 + 2**36 + 1
    path = os.path.join(tmp_path, "model.npz")
    xmlp.save(xmlp.Linear(3, 2, rng=0), path)
    ints = _rewritten(path, tmp_path, lambda a: np.full(a.shape, big, dtype=np.int64))
    model = xmlp.load(xmlp.Linear(3, 2, dtype=np.float32, rng=1), ints)
    assert model.weights.dtype == np.float32
    assert np.all(model.weights == np.float32(2**60 + 2**37))
    assert np.all(model.biases == np.float32(2**60 + 2**37))
