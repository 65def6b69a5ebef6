"""Every case of ``xmlp bench``: batched matmul, the step's GEMMs, xmlp's step, PyTorch's."""

from __future__ import annotations

from collections.abc import Callable


def test_case(bench_case: Callable[[], None]) -> None:
    bench_case()
