"""Every case of ``xmlp bench``: batched matmul, the step's GEMMs, xmlp's step, PyTorch's."""

from __future__ import annotations


def test_case(bench_case):
    bench_case()
