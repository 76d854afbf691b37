"""Fit a straight line by gradient descent with autograd, and check it with numpy.

The data follow y = b0 + b1 x + e with b0 = b1 = 1, x ~ U(0, 2), e ~ N(0, 0.25^2)
and n = 200 (seeded). The intercept and slope start at 0 and move down the gradient of
the mean squared error (``wengert.nn.functional.mse_loss``) that ``backward()``
computes. The result is printed next to numpy's least-squares solution, and
``wengert.autograd.grad`` confirms that the loss is flat at that solution.

Run it with::

    python examples/regression_lab.py
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import wengert
import wengert.nn.functional as F


@dataclass(frozen=True)
class RegressionResult:
    """The estimates and the reference solution."""

    b0: float
    b1: float
    lstsq_b0: float
    lstsq_b1: float
    loss: float
    grad_at_lstsq: list[float]  # d loss / d (b0, b1) at numpy's solution


def make_data(n: int = 200, seed: int = 1) -> tuple[wengert.Tensor, wengert.Tensor]:
    """n points of y = 1 + x + e."""
    wengert.manual_seed(seed)
    x = wengert.rand(n) * 2
    e = wengert.randn(n) * 0.25
    return x, 1 + 1 * x + e


def fit(x: wengert.Tensor, y: wengert.Tensor, lr: float = 0.2, num_steps: int = 300,
        report_every: int = 30) -> tuple[float, float, float]:
    """Gradient descent on (b0, b1) from (0, 0); returns b0, b1 and the final loss."""
    b0 = wengert.zeros(1, requires_grad=True)
    b1 = wengert.zeros(1, requires_grad=True)
    for i in range(1, num_steps + 1):
        loss = F.mse_loss(b0 + b1 * x, y)
        loss.backward()
        if i == 1 or i % report_every == 0:
            print(f"step {i:5d}   loss {loss.item():.6f}   b0 {b0.item():.6f}   "
                  f"b1 {b1.item():.6f}")
        with wengert.no_grad():
            b0 -= lr * b0.grad
            b1 -= lr * b1.grad
            b0.grad.zero_()
            b1.grad.zero_()
    final = F.mse_loss(b0 + b1 * x, y).item()
    return b0.item(), b1.item(), final


def main() -> RegressionResult:
    """Fit, compare with numpy, and check the gradient at numpy's solution."""
    x, y = make_data()
    b0, b1, loss = fit(x, y)

    design = np.column_stack([np.ones(len(x)), x.numpy()])
    (ls_b0, ls_b1), *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)

    print(f"\n{'':18}{'b0':>10}{'b1':>10}")
    print(f"{'gradient descent':18}{b0:10.6f}{b1:10.6f}")
    print(f"{'numpy lstsq':18}{ls_b0:10.6f}{ls_b1:10.6f}")
    print(f"{'true':18}{1.0:10.6f}{1.0:10.6f}")

    # the least-squares solution is where the loss gradient vanishes
    p0 = wengert.tensor([ls_b0], requires_grad=True)
    p1 = wengert.tensor([ls_b1], requires_grad=True)
    g0, g1 = wengert.autograd.grad(F.mse_loss(p0 + p1 * x, y), (p0, p1))
    grad = [g0.item(), g1.item()]
    print(f"\ngradient of the loss at numpy's solution: [{grad[0]:.2e}, {grad[1]:.2e}]")
    return RegressionResult(b0, b1, float(ls_b0), float(ls_b1), loss, grad)


if __name__ == "__main__":
    main()
