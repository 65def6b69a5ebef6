"""Every dtype and memory layout xmlp accepts: the fast paths take only native float32 and
float64 arrays, and equal the portable ops for every dtype and layout (bit for bit where
they do the same operations); whole trainings are the same with and without them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xmlp
from tests.helpers import (
    with_and_without_fast_paths,
)
from xmlp.ops.numpy_fast import NumpyOps, PortableOps


def test_fast_paths_take_only_native_float32_and_float64():
    ops = NumpyOps(np)
    f64, f32 = np.ones((4, 3)), np.ones((4, 3), np.float32)
    assert ops.takes(f64) and ops.takes(f32) and ops.takes(f64, f64)
    assert not ops.takes(np.ones(3, np.float16))
    assert not ops.takes(np.ones(3, ">f8")) and not ops.takes(f64, np.ones((4, 3), ">f8"))
    assert not ops.takes(f64, f32)  # mixed
    assert not ops.takes(np.ma.array(f64))  # a subclass
    readonly = f64.copy()
    readonly.flags.writeable = False
    assert ops.takes(readonly)  # reading is fine; sgd checks writeable itself


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values in every memory layout a user can hand a layer."""
    fortran = np.asfortranarray(a)
    strided = np.repeat(a, 2, axis=1)[:, ::2]
    readonly = a.copy()
    readonly.flags.writeable = False
    wide = np.zeros((a.shape[0] * 2, a.shape[1]), a.dtype)
    wide[::2] = a
    return {"contiguous": a.copy(), "fortran": fortran, "strided": strided,
            "readonly": readonly, "row-strided": wide[::2]}


ELEMENTWISE_SHAPES = [(7, 3), (600, 300)]  # small: direct path; large: the blocked path


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided", "readonly",
                                    "row-strided"])
def test_every_op_equals_portable_for_every_dtype_and_layout(dtype, shape, layout):
    fast, portable = NumpyOps(np), PortableOps(np)
    gen = np.random.default_rng(0)
    x, g, t = (_layouts(gen.standard_normal(shape).astype(dtype))[layout] for _ in range(3))
    y = np.tanh(x)
    w = _layouts(gen.standard_normal((5, shape[1])).astype(dtype))[layout]
    b = gen.standard_normal(5).astype(dtype)
    # tanh on long arrays is computed, not NumPy's: within a few ulp (docs/performance.md)
    got, want = fast.tanh(x), portable.tanh(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    ulp = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want))
    assert ulp.max() <= {"float16": 0, "float32": 7, "float64": 3}[dtype]
    pairs = [
        (fast.tanh_grad(g, y), portable.tanh_grad(g, y)),
        (fast.sum_rows(g), portable.sum_rows(g)),
        (fast.affine(x, w, b), portable.affine(x, w, b)),
        (fast.matmul(x, w.T), portable.matmul(x, w.T)),
        (fast.mse_grad(g, g.size), portable.mse_grad(g, g.size)),
        (fast.relu_grad(g, x), portable.relu_grad(g, x)),
    ]
    for got, want in pairs:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # bitwise: the same operations
    (fl, fd), (pl, pd) = fast.mse(y, t), portable.mse(y, t)
    np.testing.assert_array_equal(fd, pd)
    assert fl.dtype == pl.dtype
    if dtype == "float16":
        assert fl == pl  # float16 takes the portable path: identical
    else:  # a BLAS dot product against a pairwise mean: the last bits may differ
        np.testing.assert_allclose(fl, pl, rtol=1e-6 if dtype == "float32" else 1e-13)
    p = _layouts(gen.standard_normal(shape).astype(dtype))[layout]
    p_fast, p_port = p.copy(order="K"), p.copy(order="K")
    if layout == "readonly":
        p_fast.flags.writeable = p_port.flags.writeable = False
    np.testing.assert_array_equal(fast.sgd(p_fast, g, 0.25), portable.sgd(p_port, g, 0.25))


def test_float16_mse_does_not_overflow_on_the_fast_path():
    """A float16 sum of squares overflows at 65504: the portable mean accumulates in float32."""
    y = np.full((300, 1), 100.0, np.float16)
    t = np.zeros((300, 1), np.float16)
    losses = with_and_without_fast_paths(lambda: xmlp.MSELoss().forward(y, t))
    assert losses[0] == losses[1] == np.float16(10000.0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided", "readonly", "3d"])
def test_training_is_identical_with_and_without_fast_paths(dtype, layout):
    """Whole fits (mini-batches, shuffling) with XMLP_FAST_PATHS on and off: the same
    parameters bit for bit, for every accepted dtype and input layout."""
    gen = np.random.default_rng(1)
    x = gen.standard_normal((40, 6)).astype(dtype)
    t = np.sin(x[:, :2]).astype(dtype)
    if layout == "3d":
        x, t = x.reshape(8, 5, 6), t.reshape(8, 5, 2)
    else:
        x, t = _layouts(x)[layout], _layouts(t)[layout]

    def train() -> tuple[Any, list[np.ndarray]]:
        model = xmlp.MLP(6, 16, 2, rng=2, dtype=dtype, init="xavier")
        history = xmlp.fit(model, x, t, epochs=3, lr=0.05, batch_size=16, shuffle=True, rng=3,
                           progress=False)
        return history, [p.copy() for p in model.parameters()]

    (h_fast, p_fast), (h_port, p_port) = with_and_without_fast_paths(train)
    for a, b in zip(p_fast, p_port, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(h_fast, h_port, rtol=1e-6 if dtype == "float32" else 1e-13)
    if dtype == "float16":
        assert h_fast == h_port
