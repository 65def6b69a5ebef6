"""xmlp's Linear forward and backward, its whole MLP training step, and the PyTorch peer."""

from __future__ import annotations

OPS = ("linear_forward", "linear_backward", "mlp_step", "torch_step")


def test_step(bench_case):
    bench_case()
