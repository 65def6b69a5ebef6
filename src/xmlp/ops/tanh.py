"""tanh for NumPy arrays from a few vectorized NumPy operations, within a few ulp of the exact
value and several times faster than NumPy's own scalar loop on CPUs without AVX-512: a
rational function in float32, a table and the addition formula in float64. Used by the NumPy
fast path (:class:`xmlp.ops.numpy_fast.NumpyOps`) on long arrays, block by block."""

from __future__ import annotations

from typing import Any

__all__ = ["TANH32", "TANH64_T", "tanh32_block", "tanh64_block"]

# float32 tanh: x P(x^2) / Q(x^2) on x clamped to [-c, c], the rational function Eigen, XLA
# and ONNX Runtime use; within 7 ulp of the exact value (NumPy's: 1.3).
TANH32 = (7.90531110763549805,  # c
           (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
            4.89352455891786e-03),  # P, highest power first
           (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
            4.89352518554385e-03))  # Q
# float64 tanh: from a table of tanh(k / 256), |k| <= 256 * 20 (tanh is 1 to the last bit
# beyond 20), and the addition formula tanh(x0 + d) = (T + t) / (1 + T t), t = tanh(d) for
# |d| <= 1/512 from three terms of its series (the fourth is below 4e-18 of it); within
# 3 ulp. Entry k + M holds tanh(k / K).
_TANH64_K = 256
_TANH64_M = 20 * _TANH64_K
_TANH64_X = float(_TANH64_M // _TANH64_K)
_ROUND = 1.5 * 2.0**52  # x + _ROUND - _ROUND rounds x to an integer, for |x| < 2**51
_ROUND_BITS = 0x4338000000000000  # the bits of _ROUND as a float64
TANH64_T = (2 / 15 / _TANH64_K**5, -1 / 3 / _TANH64_K**3, 1 / _TANH64_K)  # t/d' in d'^2
_table: Any = None


def _tanh64_table(np: Any) -> Any:
    """tanh(k / K) for k in [-M, M], made on first use."""
    global _table
    if _table is None:
        _table = np.tanh(np.arange(-_TANH64_M, _TANH64_M + 1) / _TANH64_K)
    return _table


def _horner(np: Any, out: Any, s: Any, coefs: Any) -> Any:
    """out = the polynomial with ``coefs`` (highest power first) at s."""
    np.multiply(s, coefs[0], out=out)
    for c in coefs[1:-1]:
        np.add(out, c, out=out)
        np.multiply(out, s, out=out)
    return np.add(out, coefs[-1], out=out)


def tanh32_block(np: Any, c: Any, out: Any, x: Any, s: Any, p: Any) -> None:
    clamp, p_coefs, q_coefs = c
    np.clip(x, -clamp, clamp, out=out)
    np.multiply(out, out, out=s)
    _horner(np, p, s, p_coefs)
    np.multiply(p, out, out=p)  # x P(x^2)
    np.divide(p, _horner(np, out, s, q_coefs), out=out)


def tanh64_block(np: Any, c: Any, out: Any, x: Any, u: Any, kf: Any, t: Any, tk: Any,
            k: Any) -> None:
    table = _tanh64_table(np)
    np.clip(x, -_TANH64_X, _TANH64_X, out=u)  # NaN stays NaN
    np.multiply(u, float(_TANH64_K), out=u)  # exact: K is a power of two
    # round to the nearest integer by adding 1.5 * 2**52: the sum's low bits hold rint(u)
    # (|u| <= M), so one addition gives both the index (its bits) and x0 (minus the constant)
    np.add(u, _ROUND, out=kf)
    np.subtract(kf.view(np.int64), _ROUND_BITS - _TANH64_M, out=k)  # rint(u) + M, in [0, 2M]
    np.subtract(kf, _ROUND, out=kf)
    # T = tanh(x0), x0 = k / K; a NaN's index is out of range and clipped: its d' is NaN
    np.take(table, k, out=tk, mode="clip")
    np.subtract(u, kf, out=u)  # d' = K (x - x0), exact, in [-1/2, 1/2]
    s = np.multiply(u, u, out=kf)
    _horner(np, t, s, c)
    np.multiply(t, u, out=t)  # t = tanh(d)
    np.multiply(tk, t, out=s)
    np.add(s, 1.0, out=s)
    np.add(tk, t, out=out)
    np.divide(out, s, out=out)
    np.copysign(out, x, out=out)  # tanh is odd: the sign of x, also for -0 (0 + 0 lost it)
