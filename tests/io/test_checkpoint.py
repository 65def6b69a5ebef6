"""xmlp.save / xmlp.load: round trips across backends and dtypes, and files that must be refused."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import xmlp
import xmlp.io.checkpoint


def make_model(xp, dtype="float64", seed=1, hidden=5):
    return xmlp.MLP(2, hidden, 1, xp=xp.module, device=xp.device, dtype=dtype, rng=seed)


def host_params(xp, model):
    return [xp.to_numpy(p) for p in model.parameters()]


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


@pytest.mark.parametrize("name", ["model.ckpt", "weights", "model.npz"])
def test_save_writes_exactly_the_path_given(tmp_path, name):
    model = xmlp.MLP(1, 3, 1, rng=0)
    xmlp.save(model, str(tmp_path / name))
    assert sorted(os.listdir(tmp_path)) == [name]
    assert zipfile.is_zipfile(tmp_path / name)


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


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    first, second = xmlp.MLP(1, 3, 1, rng=0), xmlp.MLP(1, 3, 1, rng=1)
    xmlp.save(first, path)
    xmlp.save(second, path)  # replaces
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = xmlp.load(xmlp.MLP(1, 3, 1, rng=2), path)
    np.testing.assert_array_equal(loaded.linear1.weights, second.linear1.weights)

    def crash(file, **arrays):  # dies half-way through writing
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(xmlp.io.checkpoint.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        xmlp.save(first, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = xmlp.load(xmlp.MLP(1, 3, 1, rng=2), path)  # the previous file, whole
    np.testing.assert_array_equal(loaded.linear1.weights, second.linear1.weights)


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
    with pytest.raises(FileNotFoundError):
        xmlp.load(xmlp.MLP(1, 2, 1), tmp_path / "nothing.npz")


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
