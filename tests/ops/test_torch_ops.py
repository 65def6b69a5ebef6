"""PyTorch's own calls in TorchOps equal the portable ops they stand in for."""

from __future__ import annotations

import math

import array_api_compat.torch as compat_torch
import numpy as np
import torch

from xmlp.ops import PortableOps, TorchOps, ops_for


def test_torch_namespaces_get_the_torch_ops():
    assert type(ops_for(compat_torch)) is TorchOps


def test_relu_equals_the_portable_one_nan_and_infinities_included():
    x = torch.tensor([-math.inf, -2.0, -0.0, 0.0, 3.0, math.inf, math.nan], dtype=torch.float64)
    got, want = TorchOps(compat_torch).relu(x), PortableOps(compat_torch).relu(x)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert got.dtype == want.dtype


def test_label_mask_equals_the_portable_one():
    labels = torch.tensor([2, 0, 1, 2], dtype=torch.int64)
    got = TorchOps(compat_torch).is_label(labels, 3)
    want = PortableOps(compat_torch).is_label(labels, 3)
    assert got.dtype == want.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), want.numpy())
