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


# -- classification and optimizers -------------------------------------------------------------
def log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def cross_entropy(z, t):
    """PyTorch's CrossEntropyLoss(reduction="mean") with classes on the last axis: t is class
    indices (z.shape[:-1]) or probabilities (z.shape). Returns (loss, dL/dz)."""
    c = z.shape[-1]
    z2 = z.reshape(-1, c)
    target = np.eye(c)[t.reshape(-1)] if t.dtype.kind in "iu" else t.reshape(-1, c)
    logp = log_softmax(z2)
    loss = -(target * logp).sum(axis=-1).mean()
    grad = (np.exp(logp) * target.sum(axis=-1, keepdims=True) - target) / z2.shape[0]
    return loss, grad.reshape(z.shape)


def softmax(z):
    return np.exp(log_softmax(z))


def sgd_reference(params, grads_per_step, lrs, momentum=0.0, nesterov=False, weight_decay=0.0):
    """torch.optim.SGD (dampening 0), written out: the parameters after each step's grads."""
    params = [np.array(p, dtype=np.float64) for p in params]
    bufs = [None] * len(params)
    for grads, lr in zip(grads_per_step, lrs, strict=True):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = p - lr * g
    return params, bufs


def adam_reference(params, grads_per_step, lrs, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.0, decoupled=False):
    """torch.optim.Adam / AdamW (``decoupled``), written out; returns (params, m, v)."""
    b1, b2 = betas
    params = [np.array(p, dtype=np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs, strict=True), start=1):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params, m, v
