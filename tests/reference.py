"""The one NumPy float64 reference every backend is compared with: the seed's math, written out."""

from __future__ import annotations

import numpy as np


def linear_forward(x, w, b):
    return np.dot(x.reshape(-1, w.shape[1]), w.T).reshape(*x.shape[:-1], w.shape[0]) + b


def linear_backward(x, w, g):
    x2, g2 = x.reshape(-1, w.shape[1]), g.reshape(-1, w.shape[0])
    return g2.T @ x2, g2.sum(axis=0), (g2 @ w).reshape(x.shape)


def mlp_step(params, x, t, lr):
    """One training step of the seed's MLP; returns (loss, grads, new params, dL/dx)."""
    w1, b1, w2, b2 = (np.array(p, dtype=np.float64) for p in params)
    h = x @ w1.T + b1
    a = np.tanh(h)
    y = a @ w2.T + b2
    loss = np.mean((y - t) ** 2)
    gy = 2 * (y - t) / y.size
    gw2, gb2, ga = gy.T @ a, gy.sum(0), gy @ w2
    gh = ga * (1 - np.tanh(h) ** 2)
    gw1, gb1, gx = gh.T @ x, gh.sum(0), gh @ w1
    grads = (gw1, gb1, gw2, gb2)
    new = tuple(p - lr * g for p, g in zip((w1, b1, w2, b2), grads, strict=True))
    return loss, grads, new, gx
