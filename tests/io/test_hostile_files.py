"""xmlp.load against hostile files.

Every file that is not a valid xmlp checkpoint raises exactly ``ValueError`` (``OSError`` only
for the file system) and leaves the model, on every backend, exactly as it was; memory stays
bounded by the file's real size, whatever its headers declare.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xmlp
from tests.helpers import assert_unchanged, state

SHAPES = {"linear1.weights": (3, 2), "linear1.biases": (3,), "linear2.weights": (1, 3),
          "linear2.biases": (1,)}


def good_arrays() -> dict[str, np.ndarray]:
    model = xmlp.MLP(2, 3, 1, rng=9)
    return {name: np.array(p) for name, p in model.named_parameters()}


def record(arrays: dict[str, Any] | None = None, **overrides: Any) -> str:
    arrays = good_arrays() if arrays is None else arrays
    rec = {"format": 1, "class": "MLP", "shapes": {k: list(np.shape(v)) for k, v in arrays.items()}}
    rec.update(overrides)
    return json.dumps(rec)


def shapes_with(**changes: Any) -> dict[str, Any]:
    return {**{k: list(v) for k, v in SHAPES.items()}, **changes}


def rec_npy(**overrides: Any) -> bytes:
    """The record member, with fields replaced (None: removed)."""
    rec = json.loads(record())
    rec.update(overrides)
    return npy(np.array(json.dumps({k: v for k, v in rec.items() if v is not None})))


def npy(a: Any, version: tuple[int, int] | None = None) -> bytes:
    """An array as numpy writes it into an .npz member (in .npy format ``version``)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), version=version, allow_pickle=True)
    return buf.getvalue()


def raw_npy(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0),
            length: int | None = None) -> bytes:
    """An .npy member with a header written by hand (``length`` overrides the declared size)."""
    text = header.encode("latin1")
    size = len(text) if length is None else length
    if version == (1, 0):
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", size)
    else:
        head = b"\x93NUMPY" + bytes(version) + struct.pack("<I", size)
    return head + text + data


def members(**replace: bytes | None) -> dict[str, bytes]:
    """Member name -> bytes of a good checkpoint, with some replaced (None: removed)."""
    out = {f"{k}.npy": npy(v) for k, v in good_arrays().items()}
    out["__xmlp__.npy"] = npy(np.array(record()))
    for key, value in replace.items():
        name = key.replace("__", ".") if key != "record" else "__xmlp__"
        name += ".npy"
        if value is None:
            out.pop(name)
        else:
            out[name] = value
    return out


def zip_bytes(entries: dict[str, bytes] | list[tuple[str, bytes]],
              method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression=method) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, as meant here
        items = entries.items() if isinstance(entries, dict) else entries
        for name, content in items:
            zf.writestr(name, content)
    return buf.getvalue()


def patch_headers(data: bytes, *, method: int | None = None, flag: int | None = None) -> bytes:
    """Set the compression method and/or OR a flag bit into every local and central header."""
    out = bytearray(data)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        pos = out.find(sig)
        while pos != -1:
            if flag is not None:
                bits = struct.unpack_from("<H", out, pos + flag_at)[0] | flag
                struct.pack_into("<H", out, pos + flag_at, bits)
            if method is not None:
                struct.pack_into("<H", out, pos + method_at, method)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def good_file() -> bytes:
    return zip_bytes(members())


def _bomb_member() -> bytes:
    """A deflated record member whose .npy header declares 2**40 characters of string but
    whose data (a few kB compressed) is only zeros."""
    return raw_npy("{'descr': '<U1099511627776', 'fortran_order': False, 'shape': ()}",
                   b"\0" * 100_000)


WEIGHTS_HEADER = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}"
HUGE = 2**20

# id -> bytes of the whole file. Every one must be a ValueError.
HOSTILE: dict[str, Callable[[], bytes]] = {
    # members of the wrong kind
    "directory-member": lambda: zip_bytes([*members().items(), ("sub/", b"")]),
    "text-member": lambda: zip_bytes({**members(), "notes.txt": b"hello"}),
    "member-is-a-zip": lambda: zip_bytes(members(linear1__weights=good_file())),
    "member-is-a-pickle": lambda: zip_bytes(members(linear1__biases=b"\x80\x04K\x01.")),
    "duplicate-member": lambda: zip_bytes(
        [*members().items(), ("linear1.weights.npy", npy(np.zeros((3, 2))))]),
    "object-array": lambda: zip_bytes(members(linear1__biases=npy(np.array([1, "a", None],
                                                                           dtype=object)))),
    "structured-dtype": lambda: zip_bytes(members(linear1__biases=npy(
        np.zeros(3, dtype=[("a", "<f8")])))),
    "subarray-dtype": lambda: zip_bytes(members(linear1__biases=raw_npy(
        "{'descr': ('<f8', (1,)), 'fortran_order': False, 'shape': (3,)}", b"\0" * 24))),
    "string-parameter": lambda: zip_bytes(members(linear2__biases=npy(np.array(["x"])))),
    "complex-parameter": lambda: zip_bytes(members(linear2__biases=npy(np.ones(1, complex)))),
    "bool-parameter": lambda: zip_bytes(members(linear2__biases=npy(np.ones(1, bool)))),
    "record-is-numeric": lambda: zip_bytes(members(record=npy(np.float64(1.0)))),
    "record-is-1d": lambda: zip_bytes(members(record=npy(np.array([record()])))),
    "record-is-bytes": lambda: zip_bytes(members(record=npy(np.array(record().encode())))),
    "record-is-object": lambda: zip_bytes(members(record=npy(np.array(record(), dtype=object)))),
    "no-record": lambda: zip_bytes(members(record=None)),
    "empty-zip": lambda: zip_bytes({}),
    # a record that is not what it should be
    "record-a-list": lambda: zip_bytes(members(record=npy(np.array("[1, 2]")))),
    "record-a-string": lambda: zip_bytes(members(record=npy(np.array('"MLP"')))),
    "record-null": lambda: zip_bytes(members(record=npy(np.array("null")))),
    "record-not-json": lambda: zip_bytes(members(record=npy(np.array("{not json")))),
    "record-empty": lambda: zip_bytes(members(record=npy(np.array("")))),
    "record-format-true": lambda: zip_bytes(members(record=rec_npy(format=True))),
    "record-format-float": lambda: zip_bytes(members(record=rec_npy(format=1.0))),
    "record-format-missing": lambda: zip_bytes(members(record=rec_npy(format=None))),
    "record-class-a-list": lambda: zip_bytes(members(record=rec_npy(**{"class": ["MLP"]}))),
    "record-shapes-a-list": lambda: zip_bytes(members(record=rec_npy(shapes=list(SHAPES)))),
    "record-shape-a-dict": lambda: zip_bytes(members(record=rec_npy(
        shapes=shapes_with(**{"linear1.biases": {"0": 3}})))),
    "record-shape-floats": lambda: zip_bytes(members(record=rec_npy(
        shapes=shapes_with(**{"linear1.biases": [3.0]})))),
    "record-shape-disagrees": lambda: zip_bytes(members(record=rec_npy(
        shapes=shapes_with(**{"linear1.biases": [4]})))),
    "record-bad-unicode": lambda: zip_bytes(members(record=raw_npy(
        "{'descr': '<U1', 'fortran_order': False, 'shape': ()}", b"\xff\xff\xff\xff"))),
    # archive features the reader does not support
    "bzip2": lambda: zip_bytes(members(), method=zipfile.ZIP_BZIP2),
    "lzma": lambda: zip_bytes(members(), method=zipfile.ZIP_LZMA),
    "unknown-method": lambda: patch_headers(good_file(), method=99),
    "encrypted": lambda: patch_headers(good_file(), flag=0x1),
    "stored-sizes-differ": lambda: _stored_sizes_differ(),
    # a record or header nested deeply
    "record-nested-deeply": lambda: zip_bytes(members(record=npy(np.array(
        "[" * 200_000 + "]" * 200_000)))),
    "record-nested-in-a-field": lambda: zip_bytes(members(record=npy(np.array(
        record()[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")))),
    "header-nested-deeply": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': " + "(" * 3000 + "'<f8'" + ")" * 3000 + ", 'fortran_order': False, "
        "'shape': (3, 2)}", b"\0" * 48))),
    "header-a-list": lambda: zip_bytes(members(linear1__weights=raw_npy("[1, 2, 3]"))),
    "header-not-python": lambda: zip_bytes(members(linear1__weights=raw_npy("{'descr': ]"))),
    "header-extra-key": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'x': 1}", b"\0" * 48))),
    "header-bad-descr": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': 'nonsense', 'fortran_order': False, 'shape': (3, 2)}", b"\0" * 48))),
    "header-descr-a-dict": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': {'a': 1}, 'fortran_order': False, 'shape': (3, 2)}", b"\0" * 48))),
    "header-fortran-not-bool": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': '<f8', 'fortran_order': 1, 'shape': (3, 2)}", b"\0" * 48))),
    "header-negative-dim": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-3, -2)}", b"\0" * 48))),
    "header-bool-dim": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (True, 2)}", b"\0" * 16))),
    "header-too-long": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER + " " * 20_000, b"\0" * 48))),
    "header-declares-4GiB": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, b"\0" * 48, version=(2, 0), length=2**32 - 1))),
    "header-past-the-end": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, length=500))),
    "npy-version-9": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, b"\0" * 48, version=(9, 0)))),
    "npy-magic-only": lambda: zip_bytes(members(linear1__weights=b"\x93NUMPY")),
    # a header that declares more (or less) data than the member holds
    "shape-larger-than-data": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, b"\0" * 8))),
    "shape-smaller-than-data": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, b"\0" * 64))),
    "shape-huge": lambda: zip_bytes(members(
        linear1__weights=raw_npy(
            f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({HUGE}, {HUGE})}}", b"\0" * 8),
        record=rec_npy(shapes=shapes_with(**{"linear1.weights": [HUGE, HUGE]})))),
    "record-declares-4TiB": lambda: zip_bytes(members(record=_bomb_member()),
                                              method=zipfile.ZIP_DEFLATED),
    # broken archives
    "empty-file": lambda: b"",
    "garbage": lambda: bytes(range(256)) * 4,
    "a-pickle": lambda: b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
    "single-npy": lambda: npy(np.ones(3)),
    "truncated": lambda: good_file()[: len(good_file()) // 2],
    "truncated-directory": lambda: good_file()[:-30],
    "crc": lambda: _flip_data(good_file()),
    "deflated-crc": lambda: _flip_data(zip_bytes(members(), method=zipfile.ZIP_DEFLATED)),
    # sizes at and past the limits, and headers that only look right
    "header-length-unsigned": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER, b"\0" * 48, length=40_000))),  # above 32767: a signed read is negative
    "header-one-byte-too-long": lambda: zip_bytes(members(linear1__weights=raw_npy(
        WEIGHTS_HEADER.ljust(10_001), b"\0" * 48))),
    "header-shape-a-list": lambda: zip_bytes(members(linear1__weights=raw_npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': [3, 2]}", b"\0" * 48))),
    "structured-dtype-npy-2.0": lambda: zip_bytes(members(linear1__biases=npy(
        np.zeros(3, dtype=[("\xe9", "<f8")]), version=(2, 0)))),  # a latin-1 header
    "structured-dtype-npy-3.0": lambda: zip_bytes(members(linear1__biases=npy(
        np.zeros(3, dtype=[("\u03a9", "<f8")]), version=(3, 0)))),  # a UTF-8 header
    "member-runs-past-the-end": lambda: _member_runs_past_the_end(),
    "member-shorter-than-declared": lambda: _member_shorter_than_declared(),
    "record-one-character-too-long": lambda: zip_bytes(members(record=raw_npy(
        f"{{'descr': '<U{(1 << 22) + 1}', 'fortran_order': False, 'shape': ()}}",
        bytes(4 * ((1 << 22) + 1)))), method=zipfile.ZIP_DEFLATED),
}

# What load says for each case whose fault xmlp itself names (the rest carry the text of the
# exception zipfile, ast or numpy raised): the words after "load: '<path>' is not a readable
# xmlp checkpoint: ".
MESSAGES = {
    "directory-member": "it holds 'sub/', which is not an .npy array",
    "text-member": "it holds 'notes.txt', which is not an .npy array",
    "member-is-a-zip": "'linear1.weights' is not an .npy array (no NUMPY magic)",
    "member-is-a-pickle": "'linear1.biases' is not an .npy array (no NUMPY magic)",
    "npy-magic-only": "'linear1.weights' is not an .npy array (no NUMPY magic)",
    "duplicate-member": "it holds 'linear1.weights.npy' twice",
    "object-array": "'linear1.biases' holds Python objects (load never unpickles: pickles and "
                    "object arrays are refused)",
    "structured-dtype": "'linear1.biases' has the structured dtype [('a', '<f8')]",
    "subarray-dtype": "'linear1.biases' has the structured dtype ('<f8', (1,))",
    "structured-dtype-npy-2.0": "'linear1.biases' has the structured dtype [('\xe9', '<f8')]",
    "structured-dtype-npy-3.0": "'linear1.biases' has the structured dtype [('\u03a9', '<f8')]",
    "complex-parameter": "'linear2.biases' has dtype complex128, not a real number type",
    "record-is-numeric": "its '__xmlp__' record is an array of dtype float64 and shape (), not "
                         "one string",
    "no-record": "no '__xmlp__' record (was it written by xmlp.save?)",
    "empty-zip": "no '__xmlp__' record (was it written by xmlp.save?)",
    "record-not-json": "its '__xmlp__' record is not JSON: Expecting property name enclosed in "
                       "double quotes: line 1 column 2 (char 1)",
    "record-one-character-too-long": "its '__xmlp__' record declares 4194305 characters (at "
                                     "most 4194304)",
    "record-class-a-list": "its '__xmlp__' record has a 'class' that is not a string",
    "record-shape-a-dict": "its '__xmlp__' record gives 'linear1.biases' the shape {'0': 3}",
    "record-shape-disagrees": "'linear1.biases' has shape (3,) but its '__xmlp__' record says "
                              "(4,)",
    "bzip2": "'linear1.weights.npy' uses zip compression method 12; xmlp reads stored or "
             "deflated members (what numpy.savez and savez_compressed write)",
    "encrypted": "'linear1.weights.npy' is encrypted",
    "stored-sizes-differ": "'linear1.weights.npy' is stored uncompressed but its sizes differ "
                           "(176 and 1073741824 bytes)",
    "member-runs-past-the-end": "'linear1.weights.npy' runs past the end of the file "
                                "(truncated?)",
    "member-shorter-than-declared": "'linear1.weights' holds other than 48 bytes",
    "record-nested-deeply": "its '__xmlp__' record is nested too deeply",
    "header-a-list": "'linear1.weights' has an .npy header that is not numpy's: [1, 2, 3]",
    "header-fortran-not-bool": "'linear1.weights' declares fortran_order=1",
    "header-negative-dim": "'linear1.weights' declares the shape (-3, -2)",
    "header-bool-dim": "'linear1.weights' declares the shape (True, 2)",
    "header-shape-a-list": "'linear1.weights' declares the shape [3, 2]",
    "header-too-long": "'linear1.weights' has a 20057-byte .npy header (at most 10000)",
    "header-declares-4GiB": "'linear1.weights' has a 4294967295-byte .npy header (at most "
                            "10000)",
    "header-length-unsigned": "'linear1.weights' has a 40000-byte .npy header (at most 10000)",
    "header-one-byte-too-long": "'linear1.weights' has a 10001-byte .npy header (at most 10000)",
    "header-past-the-end": "'linear1.weights' ends inside its .npy header",
    "npy-version-9": "'linear1.weights' has .npy format version (9, 0)",
    "shape-larger-than-data": "'linear1.weights' declares shape (3, 2) of float64 (48 bytes) but "
                              "holds 8 bytes of data",
    "shape-smaller-than-data": "'linear1.weights' declares shape (3, 2) of float64 (48 bytes) "
                               "but holds 64 bytes of data",
    "a-pickle": "it is a Python pickle, not an .npz archive (load never unpickles: pickles and "
                "object arrays are refused)",
    "single-npy": "it holds a single array, not an .npz archive",
}


def _stored_sizes_differ() -> bytes:
    """A stored member whose central directory claims 1 GiB uncompressed."""
    data = bytearray(good_file())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, pos + 24, 2**30)  # uncompressed size
    return bytes(data)


def _member_runs_past_the_end() -> bytes:
    """The central directory gives the first member 1 GiB of compressed data."""
    data = bytearray(good_file())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, pos + 20, 2**30)  # compressed size
    return bytes(data)


def _member_shorter_than_declared() -> bytes:
    """A deflated member whose stream (with a matching CRC) ends 40 bytes before the size its
    zip headers and its .npy header declare."""
    short = raw_npy(WEIGHTS_HEADER, b"\0" * 8)
    data = bytearray(zip_bytes(members(linear1__weights=short), method=zipfile.ZIP_DEFLATED))
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size
        pos = data.find(sig)  # the first member's: linear1.weights
        struct.pack_into("<I", data, pos + size_at, len(short) + 40)
    return bytes(data)


def _flip_data(data: bytes) -> bytes:
    """One byte of the first member's (possibly compressed) data flipped: only the CRC (or the
    decompressor) can tell."""
    out = bytearray(data)
    name_len, extra_len = struct.unpack_from("<HH", out, 26)  # the first local header
    size = struct.unpack_from("<I", out, 18)[0]
    out[30 + name_len + extra_len + size - 5] ^= 0xFF
    return bytes(out)


NUMPY = SimpleNamespace(module=np, device=None, from_numpy=lambda a, dtype: np.asarray(a, dtype))


def make_model(xp: Any) -> xmlp.MLP:
    model = xmlp.MLP(2, 3, 1, xp=xp.module, device=xp.device, rng=0)
    x = xp.from_numpy(np.ones((4, 2)), model.dtype)
    model.backward(model.forward(x))  # activations and gradients, which a failed load keeps
    return model


def test_good_file_built_here_loads(tmp_path):
    """The builders above make a loadable file when nothing is broken (so the cases below
    fail for the reason in their names)."""
    path = tmp_path / "good.npz"
    path.write_bytes(good_file())
    model = xmlp.load(xmlp.MLP(2, 3, 1, rng=0), path)
    for (name, p), q in zip(model.named_parameters(), good_arrays().values(), strict=True):
        np.testing.assert_array_equal(p, q, err_msg=name)
    path.write_bytes(zip_bytes(members(), method=zipfile.ZIP_DEFLATED))  # savez_compressed
    xmlp.load(xmlp.MLP(2, 3, 1, rng=0), path)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_file_is_a_value_error_and_changes_nothing(kind, tmp_path):
    path = tmp_path / "bad.npz"
    content = HOSTILE[kind]()
    path.write_bytes(content)
    model = make_model(NUMPY)
    before = state(model)
    with pytest.raises(ValueError) as info:
        xmlp.load(model, path)
    assert type(info.value) is ValueError, repr(info.value)
    assert str(path) in str(info.value)
    assert_unchanged(before, model)
    assert path.read_bytes() == content  # load never writes


def test_hostile_files_change_nothing_on_every_backend(xp, tmp_path):
    """Every case above against a model of each backend: the same ValueError, no attribute
    rebound after any of them, no value changed at the end (values are compared once: on
    Dask each comparison computes every stored array)."""
    model = make_model(xp)
    before = state(model)
    for kind, make in HOSTILE.items():
        path = tmp_path / f"{kind}.npz"
        path.write_bytes(make())
        attrs = [dict(vars(m)) for m in model.modules()]
        with pytest.raises(ValueError) as info:
            xmlp.load(model, path)
        assert type(info.value) is ValueError, (kind, repr(info.value))
        for m, kept in zip(model.modules(), attrs, strict=True):
            assert vars(m).keys() == kept.keys(), kind
            assert all(vars(m)[k] is v for k, v in kept.items()), kind
    assert_unchanged(before, model)


def test_an_unsupported_feature_is_named(tmp_path):
    path = tmp_path / "bad.npz"
    for kind, words in [("bzip2", "compression method 12"), ("encrypted", "encrypted"),
                        ("record-nested-deeply", "nested too deeply"),
                        ("shape-larger-than-data", r"declares shape \(3, 2\)"),
                        ("object-array", "never unpickles"), ("duplicate-member", "twice")]:
        path.write_bytes(HOSTILE[kind]())
        with pytest.raises(ValueError, match=words):
            xmlp.load(xmlp.MLP(2, 3, 1), path)


def test_load_names_the_fault_in_a_hostile_file(tmp_path):
    """The whole message, for every case whose fault xmlp describes itself."""
    path = tmp_path / "bad.npz"
    head = f"load: {str(path)!r} is not a readable xmlp checkpoint: "
    for kind, words in MESSAGES.items():
        path.write_bytes(HOSTILE[kind]())
        with pytest.raises(ValueError) as info:
            xmlp.load(xmlp.MLP(2, 3, 1), path)
        assert str(info.value) == head + words, kind


def load_file(tmp_path: Any, content: bytes) -> xmlp.MLP:
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    return xmlp.load(xmlp.MLP(2, 3, 1, rng=0), path)


def assert_good_values(model: xmlp.MLP) -> None:
    for (name, p), q in zip(model.named_parameters(), good_arrays().values(), strict=True):
        np.testing.assert_array_equal(p, q, err_msg=name)


def test_npy_format_versions_2_and_3_load(tmp_path):
    """numpy writes .npy format 2.0 (4-byte header length) or 3.0 (UTF-8 header) when 1.0
    cannot hold the header; members in either load like 1.0's."""
    versions = [(2, 0), (3, 0), (2, 0), (3, 0)]
    entries = {f"{k}.npy": npy(v, version=ver)
               for (k, v), ver in zip(good_arrays().items(), versions, strict=True)}
    entries["__xmlp__.npy"] = npy(np.array(record()), version=(3, 0))
    assert {e[6:8] for e in entries.values()} == {b"\x02\x00", b"\x03\x00"}
    assert_good_values(load_file(tmp_path, zip_bytes(entries)))


def test_fortran_ordered_members_load(tmp_path):
    """A member numpy wrote in Fortran order (fortran_order: True, its data column by column)
    loads with the same values as a C-ordered one."""
    weights = np.asfortranarray(good_arrays()["linear1.weights"])  # (3, 2): not symmetric
    member = npy(weights)
    assert b"'fortran_order': True" in member
    assert_good_values(load_file(tmp_path, zip_bytes(members(linear1__weights=member))))


def test_a_header_of_exactly_the_limit_loads(tmp_path):
    """An .npy header of exactly 10000 bytes (numpy.load's own limit) is read, as numpy
    reads it; one byte more is refused (HOSTILE["header-one-byte-too-long"])."""
    weights = good_arrays()["linear1.weights"]
    member = raw_npy(WEIGHTS_HEADER.ljust(10_000), weights.tobytes())
    assert struct.unpack("<H", member[8:10]) == (10_000,)
    np.testing.assert_array_equal(np.load(io.BytesIO(member)), weights)
    assert_good_values(load_file(tmp_path, zip_bytes(members(linear1__weights=member))))


def test_a_record_of_exactly_the_limit_loads(tmp_path):
    """A record of exactly 4 Mi characters (padded with spaces) is read; one more is refused
    (HOSTILE["record-one-character-too-long"])."""
    text = record()
    text += " " * ((1 << 22) - len(text))
    member = npy(np.array(text))
    assert b"'<U4194304'" in member
    assert_good_values(load_file(tmp_path, zip_bytes(members(record=member),
                                                     method=zipfile.ZIP_DEFLATED)))


def test_a_member_declared_up_to_the_last_byte_is_not_past_the_end(tmp_path):
    """The truncation check bounds each member by the file's size, exactly: a deflated member
    whose (overstated) compressed size ends at the file's last byte is not refused, and its
    stream, which ends well before, gives the saved values."""
    data = bytearray(zip_bytes(members(), method=zipfile.ZIP_DEFLATED))
    pos = data.rfind(b"PK\x01\x02")  # the last member's central header: the record's
    offset = struct.unpack_from("<I", data, pos + 42)[0]
    struct.pack_into("<I", data, pos + 20, len(data) - offset)  # its compressed size
    assert_good_values(load_file(tmp_path, bytes(data)))
    struct.pack_into("<I", data, pos + 20, len(data) - offset + 1)  # one byte past the end
    path = tmp_path / "m.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"'__xmlp__\.npy' runs past the end of the file"):
        xmlp.load(xmlp.MLP(2, 3, 1), path)


def test_the_reader_takes_arrays_with_a_zero_length_axis(tmp_path):
    """Empty arrays (a 0 in the shape) are valid members: the reader lists and reads them."""
    path = str(tmp_path / "empty.npz")
    arrays = {"none": np.zeros((0, 3)), "scalar": np.float64(2.5)}
    xmlp.io.checkpoint.write_checkpoint(path, arrays, {"format": 1, "class": "Custom",
                                            "shapes": {"none": [0, 3], "scalar": []}})
    with xmlp.io.checkpoint.open_checkpoint(path) as ckpt:
        assert {n: m.shape for n, m in ckpt.members.items()} == {"none": (0, 3), "scalar": ()}
        assert ckpt.read("none").shape == (0, 3)
        assert ckpt.read("scalar")[()] == 2.5


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_any_damage_is_a_value_error_or_the_saved_values(tmp_path, data):
    """Flip, cut or splice bytes anywhere in a saved file: load either raises ValueError and
    changes nothing, or (a byte no reader looks at, such as a timestamp) loads exactly the
    saved values."""
    source = xmlp.MLP(2, 3, 1, rng=5)
    path = tmp_path / "m.npz"
    xmlp.save(source, path)
    content = bytearray(path.read_bytes())
    action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = data.draw(st.integers(0, len(content) - 1))
    if action == "flip":
        content[at] ^= data.draw(st.integers(1, 255))
    elif action == "cut":
        del content[at: at + data.draw(st.integers(1, 64))]
    else:
        content[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path.write_bytes(bytes(content))
    model = xmlp.MLP(2, 3, 1, rng=6)
    before = state(model)
    try:
        xmlp.load(model, path)
    except ValueError as exc:
        assert type(exc) is ValueError
        assert_unchanged(before, model)
    else:
        for p, q in zip(model.parameters(), source.parameters(), strict=True):
            np.testing.assert_array_equal(p, q)


def test_not_a_regular_file(tmp_path):
    model = xmlp.MLP(2, 3, 1)
    with pytest.raises(IsADirectoryError):
        xmlp.load(model, tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match="not a regular file"):
            xmlp.load(model, fifo)  # would block forever if opened


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the address-space limit (RLIMIT_AS) is measured on Linux only")
def test_memory_stays_bounded_by_the_file(tmp_path):
    """Files of a few kB whose headers declare GiBs or TiBs load (and fail) in a process that
    may allocate only 256 MiB more than it already has."""
    paths = []
    for kind in ("shape-huge", "record-declares-4TiB", "stored-sizes-differ",
                 "header-declares-4GiB"):
        path = tmp_path / f"{kind}.npz"
        path.write_bytes(HOSTILE[kind]())
        assert path.stat().st_size < 200_000
        paths.append(str(path))
    script = textwrap.dedent("""
        import resource, sys
        import numpy, xmlp
        model = xmlp.MLP(2, 3, 1, rng=0)
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
        for path in sys.argv[1:]:
            try:
                xmlp.load(model, path)
            except ValueError:
                print("ValueError")
            except BaseException as exc:
                print(type(exc).__name__)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ValueError"] * len(paths), done.stdout + done.stderr




def test_checkpoint_reader_reads_only_what_is_asked(tmp_path):
    """The reader's API, for what else a checkpoint may hold (optimizer state): headers and
    record are there before any data is read."""
    path = tmp_path / "m.npz"
    xmlp.save(xmlp.MLP(2, 3, 1, rng=0), path)
    with xmlp.io.checkpoint.open_checkpoint(str(path)) as ckpt:
        assert ckpt.record["class"] == "MLP"
        assert {n: m.shape for n, m in ckpt.members.items()} == SHAPES
        assert ckpt.members["linear1.weights"].dtype == np.float64
        np.testing.assert_array_equal(ckpt.read("linear2.biases"),
                                      xmlp.MLP(2, 3, 1, rng=0).linear2.biases)
