"""Central finite differences for wengert functions (test helper)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import wengert


def numeric_grads(fn: Callable, arrays: list[np.ndarray], weight: np.ndarray,
                  h: float = 1e-6) -> list[np.ndarray]:
    """d/d(inputs) of sum(weight * fn(*inputs)) by central differences."""

    def loss(arrs: list[np.ndarray]) -> float:
        with wengert.no_grad():
            out = fn(*[wengert.tensor(a) for a in arrs])
        return float(np.sum(weight * out.numpy()))

    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[k][i] += h
            minus[k][i] -= h
            g[i] = (loss(plus) - loss(minus)) / (2 * h)
        grads.append(g)
    return grads


def check(fn: Callable, arrays: list[np.ndarray], rtol: float = 1e-5, atol: float = 1e-6,
          seed: int = 0) -> None:
    """Assert that wengert's reverse sweep matches central differences."""
    rng = np.random.default_rng(seed)
    xs = [wengert.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    weight = rng.uniform(0.5, 1.5, size=tuple(out.shape))
    (out * wengert.tensor(weight)).sum().backward()
    expected = numeric_grads(fn, arrays, weight)
    for k, (x, e) in enumerate(zip(xs, expected)):
        got = x.grad.numpy() if x.grad is not None else np.zeros_like(e)
        np.testing.assert_allclose(got, e, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {k} (shape {e.shape})")
