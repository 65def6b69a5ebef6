"""PyTorch's layers as the reference for xmlp's new layers: the same computation in torch
float64 on the CPU, its output and every gradient (autograd) as NumPy arrays. Tests that use
it skip, saying why, where torch is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def needs_torch() -> Any:
    """The torch module, or a skip of the calling test that says how to install it."""
    return pytest.importorskip(
        "torch", reason='the PyTorch reference needs torch: pip install ".[torch]"')


def torch_pass(module: Any, x: np.ndarray, g: np.ndarray | None) -> dict[str, np.ndarray]:
    """``module`` (a torch.nn.Module) on float64 CPU ``x``, then backward of ``g`` (dL/dy;
    None: y is a scalar loss): {"output", "input" (dL/dx), and each parameter's gradient by
    its name}, as NumPy float64."""
    torch = needs_torch()
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = module(xt)
    out.backward(None if g is None else torch.tensor(g, dtype=torch.float64))
    found = {"output": out.detach().numpy().copy(), "input": xt.grad.numpy().copy()}
    for name, p in module.named_parameters():
        found[name] = p.grad.numpy().copy()
    return found


def largest_difference(got: Any, want: np.ndarray) -> float:
    """max |got - want| over every element (``got`` an array of any backend)."""
    from xmlp.backend import to_host

    host = to_host(got)
    assert host.shape == want.shape, f"shape {host.shape} != {want.shape}"
    return float(np.max(np.abs(host.astype(np.float64) - want))) if want.size else 0.0
