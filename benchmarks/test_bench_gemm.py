"""The GEMM floors: one 2-D matmul, a stacked 3-D batched matmul, the six GEMMs of a step."""

from __future__ import annotations

OPS = ("matmul", "batched_matmul", "step_gemms")


def test_gemm(bench_case):
    bench_case()
