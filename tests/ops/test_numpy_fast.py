"""Every fast path in xmlp.ops.numpy_fast equals the portable Array API version, never writes into
an array it was given, and is left for the portable path when the arrays are not plain."""

from __future__ import annotations

import math

import array_api_compat.numpy as anp
import numpy as np
import pytest

import xmlp
from xmlp.ops import numpy_fast as _dispatch
from xmlp.ops.numpy_fast import NumpyOps, PortableOps

# Small shapes take the direct path; long ones the blocked path.
SHAPES = [(7, 3), (100, 10), (1024, 300), (700, 1031), (20000, 10)]


@pytest.fixture(params=["float64", "float32"])
def dt(request):
    return np.dtype(request.param)


def _pair():
    return NumpyOps(anp), PortableOps(anp)


def _close(fast, portable, dt):
    assert type(fast) is type(portable)
    assert fast.dtype == portable.dtype and fast.shape == portable.shape
    tol = 1e-13 if dt == np.float64 else 2e-6
    np.testing.assert_allclose(fast, portable, rtol=tol, atol=tol)


def _sums_close(fast, g, dt):
    """Row sums against float64 ones: as accurate as pairwise summation (NumPy's sum along a
    column of a row-major array, the portable path's, adds row after row and is less so)."""
    exact = g.astype(np.float64).sum(axis=0)
    assert fast.dtype == dt and fast.shape == exact.shape
    eps = np.finfo(dt).eps * np.log2(len(g) + 1) * 4
    np.testing.assert_allclose(fast, exact, rtol=0, atol=eps * np.abs(g).sum(axis=0).max())


def _frozen(*arrays):
    """Read-only copies: a fast path that writes into its input raises."""
    out = []
    for a in arrays:
        a = a.copy(order="K")
        a.flags.writeable = False
        out.append(a)
    return out


def test_numpy_namespace_gets_the_fast_path():
    assert type(xmlp.ops.ops_for(anp)) is NumpyOps
    import array_api_strict

    assert type(xmlp.ops.ops_for(array_api_strict)) is PortableOps


@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_fast_paths_equal_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(0)
    x, g, t = _frozen(*(gen.standard_normal(shape).astype(dt) * 3 for _ in range(3)))
    y = _frozen(np.tanh(x))[0]
    for order in ("C", "F"):  # an outer product's result is column-major
        xo, go, yo = (np.asarray(a, order=order) for a in (x, g, y))
        _close(fast.tanh(xo), portable.tanh(xo), dt)
        _close(fast.tanh_grad(go, yo), portable.tanh_grad(go, yo), dt)
        _sums_close(fast.sum_rows(go), go, dt)
        assert fast.tanh(xo).flags.f_contiguous == xo.flags.f_contiguous  # memory order kept
    (fl, fd), (pl, pd) = fast.mse(y, t), portable.mse(y, t)
    assert type(fl) is type(pl) and fl.dtype == pl.dtype
    np.testing.assert_allclose(fl, pl, rtol=1e-12 if dt == np.float64 else 1e-5)
    _close(fd, pd, dt)
    (fd,) = _frozen(fd)  # mse_grad must not write into the stored difference either
    _close(fast.mse_grad(fd, fd.size), portable.mse_grad(pd, pd.size), dt)


def test_tanh_is_within_a_few_ulp_everywhere(dt):
    """The vectorized tanh against float64 NumPy over the whole range and the edge cases."""
    fast = NumpyOps(anp)
    gen = np.random.default_rng(5)
    x = np.concatenate([gen.standard_normal(50_000) * s for s in (1e-6, 0.3, 1.0, 3.0, 12.0)]
                       + [np.linspace(-25, 25, 20_001), [0.0, 0.625, -0.625, 7.9, 30.0]])
    x = x.astype(dt)
    exact = np.tanh(x.astype(np.float64))
    got = fast.tanh(x)
    ulp = np.abs(got - exact) / np.spacing(np.abs(exact).astype(dt))
    assert ulp.max() <= (7 if dt == np.float32 else 3)
    edge = np.array([0.0, -0.0, np.inf, -np.inf, np.nan] * 5000, dtype=dt)  # long: fast path
    got = fast.tanh(edge)
    np.testing.assert_array_equal(got[:5], [0.0, -0.0, 1.0, -1.0, np.nan])
    assert np.signbit(got[1]) and not np.signbit(got[0])


@pytest.mark.parametrize("shape", SHAPES)
def test_affine_and_matmul_equal_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(1)
    n, k = shape
    x, w, b = _frozen(*(gen.standard_normal(s).astype(dt) for s in ((n, k), (513, k), (513,))))
    _close(fast.affine(x, w, b), portable.affine(x, w, b), dt)
    _close(fast.matmul(x, w.T), portable.matmul(x, w.T), dt)
    g = _frozen(gen.standard_normal((n, 513)).astype(dt))[0]
    _close(fast.sum_outer(g, x), portable.sum_outer(g, x), dt)


@pytest.mark.parametrize("n", [5, 199, 200, 300, 20_000])
def test_one_wide_products_are_outer_products(n, dt):
    """k = 1: x (N, 1) @ W.T (1, H) and gy (N, 1) @ W2 (1, H) give column-major results equal
    to the GEMM's; what follows (tanh, its gradient, the row sums, GEMMs) takes them as is."""
    fast, portable = _pair()
    gen = np.random.default_rng(2)
    x, w, b, gy = _frozen(*(gen.standard_normal(shape).astype(dt)
                            for shape in ((n, 1), (10, 1), (10,), (n, 1))))
    h = fast.affine(x, w, b)
    _close(h, portable.affine(x, w, b), dt)
    ga = fast.matmul(gy, w.T)
    _close(ga, portable.matmul(gy, w.T), dt)
    # from _OUTER_MIN output elements an outer product; below, a GEMM (as fast there)
    outer = n * w.shape[0] >= _dispatch._OUTER_MIN
    assert h.flags.f_contiguous == outer and ga.flags.f_contiguous == outer
    gh = fast.tanh_grad(ga, fast.tanh(h))
    _close(gh, portable.tanh_grad(ga, np.tanh(h)), dt)
    _sums_close(fast.sum_rows(gh), gh, dt)
    _close(fast.matmul(gh.T, x), portable.matmul(gh.T, x), dt)
    _close(fast.sum_outer(gh, x), portable.sum_outer(gh, x), dt)


@pytest.mark.parametrize("shape", SHAPES)
def test_sgd_equals_portable_and_is_in_place(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(2)
    p = gen.standard_normal(shape).astype(dt)
    (g,) = _frozen(gen.standard_normal(shape).astype(dt))
    p_fast, p_port = p.copy(), p.copy()
    out = fast.sgd(p_fast, g, 0.3)
    assert out is p_fast  # in place: a user's reference to the weights sees the step
    _close(out, portable.sgd(p_port, g, 0.3), dt)  # g is read-only: only p is written


# A wide bias is a 1-D parameter; a row may be wider than a block (_BLOCK_BYTES). All pass
# _LARGE, so they take the blocked paths.
WIDE = [(140_000,), (1, 140_000), (3, 50_000), (5, _dispatch._BLOCK_BYTES // 4 + 1)]


@pytest.mark.parametrize("shape", WIDE, ids=str)
def test_wide_and_1d_arrays_through_the_blocked_paths(shape, dt):
    assert np.prod(shape) >= _dispatch._LARGE
    fast, portable = _pair()
    gen = np.random.default_rng(5)
    p = gen.standard_normal(shape).astype(dt)
    g = gen.standard_normal(shape).astype(dt)
    y = np.tanh(gen.standard_normal(shape)).astype(dt)
    g_before, y_before = g.copy(), y.copy()
    p_fast = p.copy()
    out = fast.sgd(p_fast, g, 0.25)
    assert out is p_fast
    _close(out, portable.sgd(p.copy(), g, 0.25), dt)
    _close(fast.tanh_grad(g, y), portable.tanh_grad(g, y), dt)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(y, y_before)


def test_arrays_that_are_not_plain_take_the_portable_path(dt):
    """Strided views, mixed memory orders, byte-swapped or float16 data, subclasses: the fast
    path hands them to the portable one, which gets them right."""
    fast, portable = _pair()
    gen = np.random.default_rng(3)
    big = gen.standard_normal((800, 400)).astype(dt)
    g, y = big[:, ::2], np.tanh(big[:, 1::2])
    _close(fast.tanh_grad(g, y), portable.tanh_grad(g, y), dt)
    _close(fast.tanh(g), portable.tanh(g), dt)
    mixed = np.asfortranarray(y)
    _close(fast.tanh_grad(g.copy(), mixed), portable.tanh_grad(g.copy(), mixed), dt)
    swapped = big.astype(dt.newbyteorder())
    _close(fast.tanh(swapped), portable.tanh(swapped), dt)
    half = big.astype(np.float16)
    np.testing.assert_allclose(fast.tanh(half), np.tanh(half), rtol=1e-3)
    column = big[:, :1]  # (N, 1) but strided: not an outer product
    w = gen.standard_normal((5, 1)).astype(dt)
    _close(fast.affine(column, w, w[:, 0]), portable.affine(column, w, w[:, 0]), dt)
    sub = big.view(np.matrix)
    np.testing.assert_allclose(np.asarray(fast.tanh(sub)), np.tanh(big))
    w = gen.standard_normal((400, 800)).astype(dt).T  # non-contiguous parameter
    w_fast, w_port = w.copy(order="F"), w.copy(order="F")
    _close(fast.sgd(w_fast, big, 0.1), portable.sgd(w_port, big, 0.1), dt)


@pytest.mark.parametrize("layout", ["contiguous", "columns of a wider array", "labels"])
def test_take_rows_equals_portable(layout, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(3)
    wide = gen.standard_normal((50, 9)).astype(dt)
    a = {"contiguous": wide[:, :6].copy(), "columns of a wider array": wide[:, :6],
         "labels": gen.integers(0, 4, size=50)}[layout]
    index = gen.permutation(50)[:17]
    got, want = fast.take_rows(a, index), portable.take_rows(a, index)
    assert type(got) is type(want) and got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, a)


def test_fast_paths_can_be_turned_off():
    import xmlp

    try:
        xmlp.ops.set_fast_paths(False)
        model = xmlp.MLP(2, 3, 1, rng=0)
        assert type(model.linear1.spec.ops) is PortableOps
    finally:
        xmlp.ops.set_fast_paths(True)
    assert type(xmlp.MLP(2, 3, 1, rng=0).linear1.spec.ops) is NumpyOps


@pytest.mark.parametrize("shape", [(600, 300, 500, 40), (20000, 1, 10, 1), (3000, 1, 40, 2)])
def test_whole_step_same_with_and_without_fast_paths(shape):
    import xmlp

    n, i, h, o = shape
    gen = np.random.default_rng(4)
    x, t = gen.standard_normal((n, i)), gen.standard_normal((n, o))
    results = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            model, loss = xmlp.MLP(i, h, o, rng=1, init="xavier"), xmlp.MSELoss()
            for _ in range(2):
                value = loss.forward(model.forward(x), t)
                gx = model.backward(loss.backward())
                model.update_params(0.1)
            results.append([value, gx, *model.parameters(), *(g for _, g in model.named_grads()),
                            model.linear1.output, model.activation.output])
        finally:
            xmlp.ops.set_fast_paths(True)
    for fast, portable in zip(*results, strict=True):
        np.testing.assert_allclose(fast, portable, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("shape", [(16, 256, 1024), (64, 256, 1024), (65, 256, 1024),
                                   (64, 1024, 256)])
def test_few_row_products_equal_the_exact_product(shape):
    """float32 (m, k) @ (k, n) with m <= 64, k >= 256, n >= 512 runs as (b.T @ a.T).T: within
    the GEMM error bound k eps |a| |b| of the exact product (the sums run in another order than
    the other orientation's, so the last bits differ), row-major like a plain product."""
    fast = NumpyOps(anp)
    m, k, n = shape
    gen = np.random.default_rng(7)
    for dt in (np.dtype("float32"), np.dtype("float64")):
        a, w, bias = _frozen(*(gen.standard_normal(s).astype(dt) for s in ((m, k), (n, k), (n,))))
        exact = a.astype(np.float64) @ w.T.astype(np.float64)
        bound = k * np.finfo(dt).eps * (np.abs(a).astype(np.float64) @ np.abs(w).T)
        for got, want in ((fast.matmul(a, w.T), exact), (fast.affine(a, w, bias), exact + bias)):
            assert got.dtype == dt and got.shape == (m, n) and got.flags.c_contiguous
            assert np.all(np.abs(got - want) <= bound + np.finfo(dt).eps * np.abs(want))


# -- classification and optimizers -------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 3), (1, 1), (100, 10), (300, 16), (300, 17),
                                   (1000, 200)])
def test_cross_entropy_fast_path_equals_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(5)
    z = (gen.standard_normal(shape) * 5).astype(dt)
    labels = gen.integers(0, shape[1], shape[0])
    z_copy = z.copy()
    (fl, fp), (pl, pp) = fast.cross_entropy_index(z, labels, None), \
        portable.cross_entropy_index(z, labels, None)
    assert type(fl) is type(pl) and fl.dtype == pl.dtype
    np.testing.assert_allclose(fl, pl, rtol=1e-12 if dt == np.float64 else 1e-5)
    _close(fp, pp, dt)
    fp_copy = fp.copy()
    _close(fast.cross_entropy_grad_index(fp, labels, None, shape[0]),
           portable.cross_entropy_grad_index(pp, labels, None, shape[0]), dt)
    # inputs (and the stored softmax) are never written
    np.testing.assert_array_equal(z, z_copy)
    np.testing.assert_array_equal(fp, fp_copy)
    # up to _FEW_CLASSES classes the softmax comes from the transposed logits: column-major
    assert fp.flags.f_contiguous == (shape[1] <= _dispatch._FEW_CLASSES)
    # a mask of invalid labels takes the portable path
    valid = np.ones(shape[0], dtype=bool)
    valid[0] = False
    loss, _ = fast.cross_entropy_index(z, labels, valid)
    assert np.isnan(loss)


OPTIM_SHAPES = [(7, 3), (300,), (1024, 300), (700, 1031)]


@pytest.mark.parametrize("shape", OPTIM_SHAPES)
@pytest.mark.parametrize(("momentum", "nesterov", "decay"),
                         [(0.9, False, 0.0), (0.8, True, 0.01), (0.5, False, 0.1)])
def test_sgd_momentum_fast_path_equals_portable(shape, dt, momentum, nesterov, decay):
    fast, portable = _pair()
    gen = np.random.default_rng(6)
    p, buf = gen.standard_normal(shape).astype(dt), gen.standard_normal(shape).astype(dt)
    grads = [gen.standard_normal(shape).astype(dt) for _ in range(3)]
    pf, bf, pp, bp = p.copy(), buf.copy(), p.copy(), buf.copy()
    for g in grads:
        g_copy = g.copy()
        out_p, out_b = fast.sgd_momentum(pf, g, bf, 0.1, momentum, nesterov, decay)
        assert out_p is pf and out_b is bf  # in place on the parameter and the state
        np.testing.assert_array_equal(g, g_copy)  # the gradient is never written
        pp, bp = portable.sgd_momentum(pp, g, bp, 0.1, momentum, nesterov, decay)
    _close(pf, pp, dt)
    _close(bf, bp, dt)


@pytest.mark.parametrize("shape", OPTIM_SHAPES)
@pytest.mark.parametrize(("decay", "decoupled"), [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_fast_path_equals_portable(shape, dt, decay, decoupled):
    fast, portable = _pair()
    gen = np.random.default_rng(7)
    p = gen.standard_normal(shape).astype(dt)
    zeros = np.zeros(shape, dtype=dt)
    pf, mf, vf, pp, mp, vp = p.copy(), zeros.copy(), zeros.copy(), p.copy(), zeros.copy(), \
        zeros.copy()
    for t in range(1, 4):
        g = gen.standard_normal(shape).astype(dt)
        g_copy = g.copy()
        args = (0.01, 0.9, 0.999, 1e-8, decay, decoupled, 1 - 0.9**t, (1 - 0.999**t) ** 0.5)
        out = fast.adam(pf, g, mf, vf, *args)
        assert out[0] is pf and out[1] is mf and out[2] is vf  # in place
        np.testing.assert_array_equal(g, g_copy)
        pp, mp, vp = portable.adam(pp, g, mp, vp, *args)
    _close(pf, pp, dt)
    _close(mf, mp, dt)
    _close(vf, vp, dt)


# (40, 30) takes the direct path; (400, 330) is above _UPDATE_LARGE, where the blocked path
# must decline what it cannot update in place block by block
@pytest.mark.parametrize("shape", [(40, 30), (400, 330)])
def test_optimizer_fast_paths_fall_back_on_odd_layouts(dt, shape):
    fast, portable = _pair()
    gen = np.random.default_rng(8)
    p = np.asfortranarray(gen.standard_normal(shape).astype(dt))
    g = gen.standard_normal(shape).astype(dt)
    m, v = np.zeros_like(p), np.zeros_like(p)
    args = (0.01, 0.9, 0.999, 1e-8, 0.0, False, 0.1, 0.001**0.5)
    got = fast.adam(p.copy(order="F"), g, m.copy(), v.copy(), *args)
    want = portable.adam(p.copy(order="F"), g, m.copy(), v.copy(), *args)
    for a, b in zip(got, want, strict=True):
        _close(a, b, dt)
    assert np.abs(got[0] - p).max() > 1e-3  # the step was applied (to the array returned)
    other = np.float32 if dt == np.float64 else np.float64
    b_other = np.zeros(shape, dtype=other)  # a buffer of another dtype
    got_p, _ = fast.sgd_momentum(p.copy(), g, b_other.copy(), 0.1, 0.9, False, 0.0)
    want_p, _ = portable.sgd_momentum(p.copy(), g, b_other.copy(), 0.1, 0.9, False, 0.0)
    _close(got_p, want_p, dt)
    assert np.abs(got_p - p).max() > 1e-3
    # every array column-major: no flat view to update block by block in place
    g_f = np.asfortranarray(g)
    got = fast.adam(p.copy(order="F"), g_f, m.copy(order="F"), v.copy(order="F"), *args)
    want = portable.adam(p.copy(order="F"), g_f, m.copy(order="F"), v.copy(order="F"), *args)
    for a, b in zip(got, want, strict=True):
        _close(a, b, dt)
    got_p, _ = fast.sgd_momentum(p.copy(order="F"), g_f, m.copy(order="F"), 0.1, 0.9, False, 0.0)
    want_p, _ = portable.sgd_momentum(p.copy(order="F"), g_f, m.copy(order="F"), 0.1, 0.9, False,
                                      0.0)
    _close(got_p, want_p, dt)
    # a C-ordered parameter with F-ordered state: not updated through copies
    m_f, v_f = np.asfortranarray(m), np.asfortranarray(v)
    p_c = np.ascontiguousarray(p)
    got = fast.adam(p_c.copy(), g, m_f.copy(order="F"), v_f.copy(order="F"), *args)
    want = portable.adam(p_c.copy(), g, m_f.copy(order="F"), v_f.copy(order="F"), *args)
    for a, b in zip(got, want, strict=True):
        _close(a, b, dt)


@pytest.mark.parametrize("shape", [(40, 30), (400, 330)])
def test_optimizer_steps_leave_read_only_parameters_unwritten(dt, shape):
    """A read-only parameter (weights loaded with mmap) is never written: the ops return a
    new array with the step applied, the same values as on a writeable copy, on the direct and
    the blocked path, for Adam and SGD with momentum, fast and portable alike."""
    fast, portable = _pair()
    gen = np.random.default_rng(11)
    (p,) = _frozen(gen.standard_normal(shape).astype(dt))
    before = p.copy()
    g = gen.standard_normal(shape).astype(dt)
    args = (0.01, 0.9, 0.999, 1e-8, 0.0, False, 0.1, 0.001**0.5)
    for ops in (fast, portable):
        m, v = np.zeros_like(p), np.zeros_like(p)
        got = ops.adam(p, g, m, v, *args)
        want = portable.adam(p.copy(), g, np.zeros_like(p), np.zeros_like(p), *args)
        assert got[0] is not p
        for a, b in zip(got, want, strict=True):
            _close(a, b, dt)
        got_p, got_b = ops.sgd_momentum(p, g, np.zeros_like(p), 0.1, 0.9, True, 0.0)
        want_p, want_b = portable.sgd_momentum(p.copy(), g, np.zeros_like(p), 0.1, 0.9, True,
                                               0.0)
        assert got_p is not p
        _close(got_p, want_p, dt)
        _close(got_b, want_b, dt)
        np.testing.assert_array_equal(p, before)
    # the values themselves: nesterov's first step is p - lr * (g + momentum * g)
    np.testing.assert_allclose(want_p, before - 0.1 * (g + 0.9 * g), rtol=1e-6)


def test_scratch_arrays_are_kept_per_thread_and_per_key():
    """_scratch_arrays: one array per letter ("f": the dtype asked for, "i": int64) of the size
    asked for, the same arrays again for the same key on the same thread (kept between
    calls), other arrays for another key or another thread."""
    import threading

    size = 12_345  # a key no fast path has used
    got: dict[str, list] = {}

    def run(label):
        first = _dispatch._scratch_arrays("ffi", size, np.dtype(np.float32))
        again = _dispatch._scratch_arrays("ffi", size, np.dtype(np.float32))
        other = _dispatch._scratch_arrays("f", size + 1, np.dtype(np.float64))
        got[label] = [first, again, other]

    for label in ("a", "b"):  # fresh threads: their caches start empty
        thread = threading.Thread(target=run, args=(label,))
        thread.start()
        thread.join()
    for first, again, other in got.values():
        assert [a.dtype for a in first] == [np.float32, np.float32, np.int64]
        assert all(a.shape == (size,) for a in first)
        assert all(a is b for a, b in zip(first, again, strict=True))
        assert len(other) == 1 and other[0].dtype == np.float64 and other[0].shape == (size + 1,)
        assert first[0] is not first[1]
    assert not any(a is b for a, b in zip(got["a"][0], got["b"][0], strict=True))


def test_portable_cross_entropy_marks_rows_of_invalid_labels_nan():
    """Where labels cannot be read without a sync (CuPy, JAX, Dask), the loss takes a mask of
    valid rows: invalid rows make the loss NaN and their gradient rows NaN; valid rows keep
    their values. On array-api-strict, whose full_like takes only a real fill value."""
    import array_api_strict as xp

    ops = PortableOps(xp)
    gen = np.random.default_rng(12)
    z = xp.asarray(gen.standard_normal((6, 4)))
    labels = xp.asarray(np.array([0, 3, 1, 2, 3, 0]))
    valid = xp.asarray(np.array([True, True, False, True, True, True]))
    loss, probs = ops.cross_entropy_index(z, labels, valid)
    assert np.isnan(float(loss))
    clean, clean_probs = ops.cross_entropy_index(z, labels, None)
    assert np.isfinite(float(clean))
    grad = np.asarray(ops.cross_entropy_grad_index(probs, labels, valid, 6))
    want = np.asarray(ops.cross_entropy_grad_index(clean_probs, labels, None, 6))
    assert np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, axis=0)).all()
    np.testing.assert_allclose(np.delete(grad, 2, axis=0), np.delete(want, 2, axis=0))


def test_one_hot_is_made_on_the_labels_device():
    """array-api-strict has several devices: the class indices compared with the labels are
    made on the labels' device (a comparison across devices is an error)."""
    import array_api_strict as xp

    device = xp.Device("device1")
    labels = xp.asarray([2, 0, 1], device=device)
    hot = PortableOps(xp).one_hot(labels, 3, xp.float64)
    assert hot.device == device and hot.dtype == xp.float64
    back = hot.to_device(xp.Device("CPU_DEVICE"))
    np.testing.assert_array_equal(np.asarray(back), np.eye(3)[[2, 0, 1]])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_optimizer_steps_same_with_and_without_fast_paths(name):
    import xmlp

    gen = np.random.default_rng(9)
    x, t = gen.standard_normal((600, 300)), gen.integers(0, 40, 600)
    kwargs = {"lr": 0.01, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    results = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            model, loss = xmlp.MLP(300, 500, 40, rng=1, init="xavier"), xmlp.CrossEntropyLoss()
            opt = getattr(xmlp.optim, name)(model, **kwargs)
            for _ in range(3):
                value = loss.forward(model.forward(x), t)
                model.backward(loss.backward())
                opt.step()
            results.append([value, *model.parameters(), *opt._state_arrays()])
        finally:
            xmlp.ops.set_fast_paths(True)
    for fast, portable in zip(*results, strict=True):
        np.testing.assert_allclose(fast, portable, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("decay", "decoupled"), [(0.0, False), (0.1, False), (0.1, True)])
def test_packed_adam_group_equals_portable(dt, decay, decoupled):
    """The packed (flat-state) Adam of small models: equal to the per-parameter portable one,
    in place on the parameters, and the state views stay views of the packed (keys, total)
    array: exp_avg in row 0, exp_avg_sq in row 1."""
    fast, portable = _pair()
    gen = np.random.default_rng(10)
    shapes = [(5, 3), (5,), (4, 5), (4,)]
    start = [gen.standard_normal(s).astype(dt) for s in shapes]
    pf, pp = [p.copy() for p in start], [p.copy() for p in start]
    state_f = [[np.zeros(s, dtype=dt), np.zeros(s, dtype=dt)] for s in shapes]
    state_p = [[np.zeros(s, dtype=dt), np.zeros(s, dtype=dt)] for s in shapes]
    state_f, packing = fast.pack_state(state_f)
    assert packing is not None and portable.pack_state(state_p)[1] is None
    moments = packing[0]
    assert moments.shape == (2, sum(math.prod(s) for s in shapes))
    for t in range(1, 4):
        grads = [gen.standard_normal(s).astype(dt) for s in shapes]
        copies = [g.copy() for g in grads]
        args = (0.01, 0.9, 0.999, 1e-8, decay, decoupled, 1 - 0.9**t, (1 - 0.999**t) ** 0.5)
        out = fast.adam_group(pf, grads, state_f, packing, *args)
        assert all(a is b for a, b in zip(out, pf, strict=True))  # in place
        for g, c in zip(grads, copies, strict=True):
            np.testing.assert_array_equal(g, c)
        pp = portable.adam_group(pp, grads, state_p, None, *args)
    for a, b in zip(pf, pp, strict=True):
        _close(a, b, dt)
    for sf, sp in zip(state_f, state_p, strict=True):
        for a, b in zip(sf, sp, strict=True):
            _close(a, b, dt)
    assert state_f[2][0].base is moments and state_f[2][1].base is moments
    assert np.shares_memory(state_f[2][0], moments[0]) and np.shares_memory(state_f[3][1],
                                                                            moments[1])
    # a large model keeps one array per parameter (updated block by block instead)
    big = [[np.zeros((600, 300), dtype=dt), np.zeros((600, 300), dtype=dt)]]
    assert fast.pack_state(big)[1] is None


@pytest.mark.parametrize("shape", [(7, 3), (200, 100), (700, 1031)])
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_relu_equals_portable(shape, order, dt):
    """max(x, 0) against a block of zeros: the portable values, NaN kept, infinities and signed
    zeros as np.maximum gives them, any layout, blocks shared between threads; x not written."""
    fast, portable = _pair()
    gen = np.random.default_rng(8)
    x = gen.standard_normal(shape).astype(dt)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    x[-1, -3:] = [-0.0, 0.0, -np.nan]
    (x,) = _frozen(np.asfortranarray(x) if order == "F" else x)
    if order == "strided":
        x = x[:, ::2]  # not contiguous: the portable path
    got, want = fast.relu(x), portable.relu(x)
    assert type(got) is np.ndarray and got.dtype == dt and got.shape == x.shape
    np.testing.assert_array_equal(got, want)  # exact, NaN where NaN
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    assert np.isnan(got[0, 0])
    if order != "strided":
        assert got[0, 1] == np.inf and got[0, 2] == 0 and np.isnan(got[-1, -1])
        assert got.flags.f_contiguous == x.flags.f_contiguous  # x's memory order


@pytest.mark.parametrize("shape", [(1,), (100, 64), (10, 100), (300, 301)])
def test_sum_squares_equals_portable(shape, dt):
    fast, portable = _pair()
    gen = np.random.default_rng(9)
    (a,) = _frozen(gen.standard_normal(shape).astype(dt))
    got, want = fast.sum_squares(a), portable.sum_squares(a)
    assert type(got) is type(want) and got.dtype == want.dtype == dt
    exact = np.sum(a.astype(np.float64) ** 2)
    np.testing.assert_allclose(got, exact, rtol=1e-13 if dt == np.float64 else 2e-6)
    np.testing.assert_allclose(want, exact, rtol=1e-13 if dt == np.float64 else 2e-6)
    # column-major or strided: the portable path, same value
    np.testing.assert_allclose(fast.sum_squares(a.T), want, rtol=1e-6)
    np.testing.assert_allclose(fast.sum_squares(a[::2]), portable.sum_squares(a[::2]), rtol=1e-6)


def test_few_class_cross_entropy_is_stable_for_huge_logits(dt):
    """The transposed few-class path shifts each row by its own max: logits of +-1e4, rows far
    apart, give the portable (finite) loss and softmax."""
    fast, portable = _pair()
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1, -1e4 + 2], [3.0, 2.0, 1.0],
                  [-5e3, 5e3, 0.0]], dtype=dt)
    labels = np.array([0, 2, 1, 1])
    (fl, fp), (pl, pp) = fast.cross_entropy_index(z, labels, None), \
        portable.cross_entropy_index(z, labels, None)
    assert np.isfinite(fl) and np.isfinite(fp).all()
    np.testing.assert_allclose(fl, pl, rtol=1e-6)
    _close(fp, pp, dt)


def test_relu_zeros_are_per_dtype_and_read_only():
    """The zeros block is kept per dtype (float64 first, then a float32 array longer than the
    float64 block) and cannot be written."""
    fast, portable = _pair()
    gen = np.random.default_rng(13)
    for dt in (np.float64, np.float32):
        x = gen.standard_normal(40_000).astype(dt)
        np.testing.assert_array_equal(fast.relu(x), portable.relu(x))
        zeros = fast._zeros(np.dtype(dt))
        assert zeros.dtype == dt and not zeros.flags.writeable and not zeros.any()


def test_packed_adam_group_leaves_read_only_or_other_dtype_parameters_to_the_portable_path():
    """The packed Adam writes into the parameters: read-only ones (mmap-loaded weights), or a
    packed state of another dtype than the parameters, take the portable per-parameter path,
    with the portable values (read-only parameters come back as new arrays)."""
    fast, portable = _pair()
    gen = np.random.default_rng(14)
    shapes = [(5, 3), (5,)]
    for params_dt, state_dt, frozen, decoupled in ((np.float64, np.float64, True, False),
                                                   (np.float32, np.float64, False, False),
                                                   (np.float32, np.float64, False, True)):
        args = (0.01, 0.9, 0.999, 1e-8, 0.1, decoupled, 0.1, 0.001**0.5)
        start = [gen.standard_normal(s).astype(params_dt) for s in shapes]
        grads = [gen.standard_normal(s).astype(params_dt) for s in shapes]
        params = _frozen(*start) if frozen else [p.copy() for p in start]
        state, packing = fast.pack_state([[np.zeros(s, state_dt), np.zeros(s, state_dt)]
                                          for s in shapes])
        assert packing is not None
        got = fast.adam_group(list(params), grads, state, packing, *args)
        want_state = [[np.zeros(s, state_dt), np.zeros(s, state_dt)] for s in shapes]
        want = portable.adam_group([p.copy() for p in start], grads, want_state, None, *args)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        for sf, sp in zip(state, want_state, strict=True):
            for a, b in zip(sf, sp, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-6)
        if frozen:
            assert all(g is not p for g, p in zip(got, params, strict=True))
            np.testing.assert_array_equal(params[0], start[0])


def test_sgd_updates_a_strided_parameter_in_place():
    """A strided parameter (a view into a larger array) is updated in place, as the portable
    path does it."""
    fast, portable = _pair()
    gen = np.random.default_rng(15)
    base = gen.standard_normal((700, 2 * 400))
    p_fast, p_port = base.copy()[:, ::2], base.copy()[:, ::2]  # (700, 400): 280,000 elements
    g = gen.standard_normal((700, 400))
    out = fast.sgd(p_fast, g, 0.3)
    assert out is p_fast
    np.testing.assert_array_equal(p_fast, portable.sgd(p_port, g, 0.3))
    np.testing.assert_allclose(p_fast, base[:, ::2] - 0.3 * g)
    # read-only (mmap-loaded weights): a new array with the step, the parameter unchanged
    (frozen,) = _frozen(np.ascontiguousarray(base[:, ::2]))
    stepped = fast.sgd(frozen, g, 0.3)
    assert stepped is not frozen
    np.testing.assert_allclose(stepped, base[:, ::2] - 0.3 * g)
    np.testing.assert_array_equal(frozen, base[:, ::2])


@pytest.mark.parametrize("shape", [(7, 5), (200, 100), (700, 1031)])
@pytest.mark.parametrize("order", ["C", "F", "strided", "mixed"])
def test_relu_grad_equals_portable(shape, order, dt):
    """grad_output times the mask x > 0 as floats: bit for bit the portable product (a NaN or
    infinite gradient where x <= 0 gives NaN, a negative one -0.0; NaN in x masks), any layout;
    neither input written."""
    fast, portable = _pair()
    gen = np.random.default_rng(21)
    x, g = (gen.standard_normal(shape).astype(dt) for _ in range(2))
    x[0, :4] = [np.nan, -1.0, -2.0, 0.0]
    g[0, :4] = [5.0, np.nan, np.inf, -3.0]
    x[-1, -3:] = [-0.0, 1.0, np.inf]
    g[-1, -3:] = [-1.0, -np.inf, 2.0]
    if order == "F":
        x, g = np.asfortranarray(x), np.asfortranarray(g)
    elif order == "mixed":
        x = np.asfortranarray(x)
    x, g = _frozen(x, g)
    if order == "strided":
        x, g = x[:, ::2], g[:, ::2]
    with np.errstate(invalid="ignore"):  # inf * 0, on both paths
        got, want = fast.relu_grad(g, x), portable.relu_grad(g, x)
    assert type(got) is np.ndarray and got.dtype == dt and got.shape == x.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    if order != "strided":
        assert got[0, 0] == 0 and np.isnan(got[0, 1]) and np.isnan(got[0, 2])
        assert got[0, 3] == 0 and np.signbit(got[0, 3])
        assert got[-1, -3] == 0 and got[-1, -2] == -np.inf and got[-1, -1] == 2.0


def test_relu_grad_of_other_dtypes_or_shapes_takes_the_portable_path():
    fast, portable = _pair()
    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    for g in (np.array([[3.0, 4.0]], dtype=np.float64), np.array([3.0, 4.0], dtype=np.float32)):
        got, want = fast.relu_grad(g, x), portable.relu_grad(g, x)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint64"])
def test_labels_in_range_equals_portable(dtype):
    """One reduction over the labels seen as unsigned: a negative label is out of range
    (it wraps above every class count), the largest valid one is C - 1; any integer dtype,
    strided labels too."""
    fast, portable = _pair()
    info = np.iinfo(dtype)
    cases = [[0, 1, 2], [2, 2], [0, 3], [3], [0, 1, 2, 2, 1, 0][::2], [info.max], [info.max, 0],
             [127], [128 % (info.max + 1)]]
    if info.min < 0:
        cases += [[-1], [0, -1, 2], [info.min], [1, info.min]]
    for values in cases:
        labels = np.array(values, dtype=dtype)
        for n_classes in (1, 3, 4, 127, 128, 129, 300):
            want = portable.labels_in_range(labels, n_classes)
            assert fast.labels_in_range(labels, n_classes) is want, (values, n_classes)
    strided = np.array([0, -1, 1, -1, 2], dtype="int64")[::2]
    assert fast.labels_in_range(strided, 3) and not fast.labels_in_range(strided, 2)


def _backward_fast_and_portable(build, x, t, check_fast):
    """One MSE forward/backward of ``build()`` with the fast paths on (``check_fast(model)``
    then looks at the layouts) and off: every layer's grad_input and every parameter gradient
    agree. Returns the two lists (grad_inputs first, in layer order)."""
    import xmlp

    grads = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            model, loss = build(), xmlp.MSELoss()
            loss.forward(model.forward(x), t)
            model.backward(loss.backward())
            if enabled:
                check_fast(model)
            grads.append([*(layer.grad_input for layer in model),
                          *(g for _, g in model.named_grads())])
        finally:
            xmlp.ops.set_fast_paths(True)
    for fast, portable in zip(*grads, strict=True):
        np.testing.assert_allclose(fast, portable, rtol=1e-12, atol=1e-13)
    return grads


def test_numpy_cross_entropy_with_a_mask_of_valid_rows_takes_the_portable_path():
    """Where labels are not read (a mask of valid rows), the NumPy ops hand the loss and the
    gradient to the portable ones, with every argument: the invalid row's gradient is NaN,
    the loss NaN, the other rows the portable (softmax - one_hot) / N."""
    fast, portable = _pair()
    gen = np.random.default_rng(25)
    for n_classes in (4, 20):
        z = gen.standard_normal((6, n_classes))
        labels = np.array([0, 3, 1, 2, 3, 0])
        valid = np.array([True, True, False, True, True, True])
        loss, probs = fast.cross_entropy_index(z, labels, valid)
        assert np.isnan(loss)
        grad = fast.cross_entropy_grad_index(probs, labels, valid, 6)
        want = portable.cross_entropy_grad_index(probs, labels, valid, 6)
        assert type(grad) is np.ndarray and grad.shape == (6, n_classes)
        assert np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, axis=0)).all()
        np.testing.assert_array_equal(grad, want)
        clean = portable.cross_entropy_grad_index(probs, labels, None, 6)
        np.testing.assert_array_equal(np.delete(grad, 2, axis=0), np.delete(clean, 2, axis=0))


def test_masked_labels_take_the_portable_range_check():
    """Class indices in a masked array are not a plain ndarray: the range check is the
    portable one, which leaves the masked label out (a label hidden under the mask, here -1,
    does not fail it). CrossEntropyLoss itself refuses masked labels."""
    fast, portable = _pair()
    labels = np.ma.array([0, -1, 2, 1], mask=[False, True, False, False])
    assert fast.labels_in_range(labels, 3) is portable.labels_in_range(labels, 3) is True
    assert fast.labels_in_range(labels, 2) is portable.labels_in_range(labels, 2) is False


def test_many_class_cross_entropy_is_stable_for_huge_logits(dt):
    """Beyond _FEW_CLASSES the NumPy cross-entropy shifts each row by its own max (not the
    largest logit of the batch): rows of logits far below the others, +-1e4, give the finite
    portable loss and softmax."""
    fast, portable = _pair()
    n_classes = _dispatch._FEW_CLASSES + 24
    gen = np.random.default_rng(27)
    z = gen.standard_normal((4, n_classes)).astype(dt)
    z[0] += 1e4
    z[1] -= 1e4
    z[2, 5] = 5e3
    labels = np.array([0, 7, 5, n_classes - 1])
    (fl, fp), (pl, pp) = fast.cross_entropy_index(z, labels, None), \
        portable.cross_entropy_index(z, labels, None)
    assert np.isfinite(fl) and np.isfinite(fp).all()
    assert not fp.flags.f_contiguous
    np.testing.assert_allclose(fl, pl, rtol=1e-6)
    _close(fp, pp, dt)
    np.testing.assert_allclose(fp.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("n_classes", [3, _dispatch._FEW_CLASSES, _dispatch._FEW_CLASSES + 1,
                                       40])
def test_cross_entropy_gradient_is_laid_out_like_the_softmax(n_classes, dt):
    """docs/performance.md: over at most _FEW_CLASSES classes the stored softmax is
    column-major, "like the gradient made from it": CrossEntropyLoss.backward gives a
    column-major gradient there (row-major beyond), with the portable values."""
    import xmlp

    gen = np.random.default_rng(28)
    z = (gen.standard_normal((300, n_classes)) * 3).astype(dt)
    t = gen.integers(0, n_classes, 300)
    grads = []
    for enabled in (True, False):
        try:
            xmlp.ops.set_fast_paths(enabled)
            loss = xmlp.CrossEntropyLoss()
            loss.forward(z, t)
            grads.append(loss.backward())
        finally:
            xmlp.ops.set_fast_paths(True)
    fast, portable = grads
    assert fast.dtype == dt and fast.shape == (300, n_classes)
    assert fast.flags.f_contiguous == (n_classes <= _dispatch._FEW_CLASSES)
    assert fast.flags.c_contiguous == (n_classes > _dispatch._FEW_CLASSES)
    _close(fast, portable, dt)


def test_relu_grad_of_masked_or_broadcasting_gradients_takes_the_portable_path():
    """A masked gradient (a subclass) and a gradient of another shape that broadcasts against
    x are the portable product's: the mask kept, the broadcast shape."""
    fast, portable = _pair()
    x = np.array([[-1.0, 2.0, 3.0]])
    g = np.ma.array([[1.0, 5.0, 7.0]], mask=[[False, True, False]])
    got, want = fast.relu_grad(g, x), portable.relu_grad(g, x)
    assert type(got) is type(want) is np.ma.MaskedArray
    np.testing.assert_array_equal(np.ma.getmaskarray(got), [[False, True, False]])
    np.testing.assert_array_equal(got.filled(-1.0), [[0.0, -1.0, 7.0]])
    for dt in (np.float32, np.float64):
        for x, g in ((np.array([-1.0, 2.0], dt), np.array([[3.0, 4.0], [5.0, -6.0]], dt)),
                     (np.array([[-1.0, 2.0]], dt), np.array([[3.0], [4.0], [5.0]], dt))):
            got, want = fast.relu_grad(g, x), portable.relu_grad(g, x)
            assert type(got) is np.ndarray and got.dtype == dt and got.shape == want.shape
            assert got.shape == np.broadcast_shapes(x.shape, g.shape)
            np.testing.assert_array_equal(got, want)


def test_relu_grad_is_laid_out_like_the_input():
    """The ReLU gradient's floats are the mask of x, so it keeps x's memory order: after a
    one-input layer (a column-major output, docs/performance.md) and before a 10-wide one (a
    row-major gradient) ReLU's grad_input is column-major like its input, with the portable
    values. Arrays the fast path declines (another dtype) get the portable product's order."""
    import xmlp

    gen = np.random.default_rng(29)
    x, t = gen.standard_normal((200, 1)), gen.standard_normal((200, 10))

    def check_fast(model):
        assert model[1].x.flags.f_contiguous and not model[1].x.flags.c_contiguous
        assert model[2].grad_input.flags.c_contiguous
        got = model[1].grad_input
        assert got.flags.f_contiguous and not got.flags.c_contiguous

    grads = _backward_fast_and_portable(lambda: xmlp.Sequential(
        xmlp.Linear(1, 100, rng=0), xmlp.ReLU(), xmlp.Linear(100, 10, rng=1)), x, t, check_fast)
    np.testing.assert_array_equal(grads[0][1], grads[1][1])  # ReLU's: the same floats
    # the op itself: like x for plain arrays; declined (x float32, g float64): the portable's
    fast, portable = _pair()
    xf = np.asfortranarray(gen.standard_normal((50, 40)))
    g = gen.standard_normal((50, 40))
    got = fast.relu_grad(g, xf)
    assert got.flags.f_contiguous and not got.flags.c_contiguous
    np.testing.assert_array_equal(got, portable.relu_grad(g, xf))
    x32 = xf.astype(np.float32, order="F")
    got, want = fast.relu_grad(g, x32), portable.relu_grad(g, x32)
    assert got.dtype == want.dtype == np.float64
    assert (got.flags.c_contiguous, got.flags.f_contiguous) == \
        (want.flags.c_contiguous, want.flags.f_contiguous)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8", "uint64"])
def test_labels_in_range_of_two_dimensional_labels(dtype):
    """Labels of any shape are checked as a whole (every element, as the portable min and max
    are): (N, T) labels of any integer dtype, in range, or with one bad label, or with a
    class count beyond the dtype's."""
    fast, portable = _pair()
    good = np.array([[0, 1, 2], [2, 0, 1]], dtype=dtype)
    cases = [(good, 3), (good, 2), (good, 300)]
    for bad in (3, -1 if np.dtype(dtype).kind == "i" else 100):
        labels = good.copy()
        labels[1, 2] = bad
        cases += [(labels, 3), (labels, 300)]
    for labels, n_classes in cases:
        want = portable.labels_in_range(labels, n_classes)
        assert fast.labels_in_range(labels, n_classes) is want, (labels, n_classes)
    assert fast.labels_in_range(good, 3) and not fast.labels_in_range(good, 2)


def test_state_is_packed_up_to_the_blocked_size_and_for_a_single_array(dt):
    """pack_state packs a state of fewer than _UPDATE_LARGE elements (one state array of one
    parameter too: SGD momentum on a one-parameter module), and leaves a state of exactly
    _UPDATE_LARGE elements to the blocked per-parameter updates."""
    fast, _ = _pair()
    gen = np.random.default_rng(25)
    single = [[gen.standard_normal(5).astype(dt)]]
    packed, packing = fast.pack_state(single)
    assert packing is not None
    np.testing.assert_array_equal(packed[0][0], single[0][0])
    limit = _dispatch._UPDATE_LARGE
    for size, is_packed in ((limit - 1, True), (limit, False)):
        state = [[np.zeros(size - 3, dt), np.zeros(size - 3, dt)], [np.ones(3, dt), np.ones(3, dt)]]
        assert (fast.pack_state(state)[1] is not None) is is_packed, size


def test_sgd_momentum_trains_a_one_parameter_module():
    """A user's module with a single parameter, trained with SGD momentum on NumPy (its one
    momentum buffer packed): the torch formula, step for step."""
    import xmlp
    from xmlp.backend import ArraySpec
    from xmlp.optim import SGD

    class Scale(xmlp.Module):
        param_names = ("w",)

        def __init__(self):
            self.w = np.array([2.0, -1.0])
            self.grad_w = None
            self.spec = ArraySpec.resolve(np, None, np.float64)  # where the parameter lives

        def forward(self, x):
            self.x = x
            return x * self.w

        def predict(self, x):
            return x * self.w

        def backward(self, g):
            self.grad_w = (g * self.x).sum(axis=0)
            return g * self.w

    model = Scale()
    opt = SGD(model, lr=0.1, momentum=0.9)
    x, t = np.array([[1.0, 2.0], [3.0, -1.0]]), np.zeros((2, 2))
    w, buf = model.w.copy(), None
    for _ in range(3):
        loss = xmlp.MSELoss()
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())
        g = model.grad_w.copy()
        opt.step()
        buf = g if buf is None else 0.9 * buf + g
        w = w - 0.1 * buf
        np.testing.assert_allclose(model.w, w, rtol=1e-14)


def test_tanh_grad_of_declined_large_arrays_is_the_portable_one_dtype_included():
    """Large arrays the fast path declines (non-native byte order) get the portable
    product: the same values in the machine's byte order, as NumPy's ufuncs return them."""
    fast, portable = _pair()
    gen = np.random.default_rng(31)
    n = _dispatch._LARGE + 10
    g, y = gen.standard_normal(n).astype(">f8"), np.tanh(gen.standard_normal(n)).astype(">f8")
    got, want = fast.tanh_grad(g, y), portable.tanh_grad(g, y)
    assert got.dtype == want.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, want)


def test_tanh_grad_of_a_subclass_keeps_the_subclass_like_the_portable_op():
    """A gradient of an ndarray subclass is declined by the fast path: the portable product,
    whose type is the subclass's (a plain ndarray came back before)."""
    fast, portable = _pair()

    class Tagged(np.ndarray):
        pass

    for n in (12, _dispatch._LARGE + 10):
        y = np.tanh(np.linspace(-1.0, 1.0, n))
        g = np.ones(n)
        for args in ((g.view(Tagged), y), (g, y.view(Tagged))):  # either one a subclass
            got, want = fast.tanh_grad(*args), portable.tanh_grad(*args)
            assert type(got) is Tagged and type(want) is Tagged
            np.testing.assert_array_equal(got, want)


def test_tanh_grad_broadcasts_as_the_portable_op():
    """Gradient and stored output of different (broadcastable) shapes but one dtype: the
    portable product's broadcast shape, not an error from an output array too small."""
    fast, portable = _pair()
    gen = np.random.default_rng(32)
    y, g = np.tanh(gen.standard_normal((3, 1))), gen.standard_normal((3, 4))
    got, want = fast.tanh_grad(g, y), portable.tanh_grad(g, y)
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(got, want)
