"""Gradients of a one-layer network's loss, and two ways to stop tracking them.

Input x = ones(5), expected output y = zeros(3), parameters w (5x3) and b (3) drawn
from a normal distribution; z = x @ w + b and the loss is
``binary_cross_entropy_with_logits(z, y)``. The script prints which tensors require
grad, the ``grad_fn`` of z and of the loss, ``w.grad`` and ``b.grad`` after
``loss.backward()`` (checked against the closed form sigmoid(z) / 3), and shows that
z computed under ``wengert.no_grad()`` or taken through ``detach()`` requires no grad.

Run it with::

    python examples/one_layer_bce.py
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import wengert
import wengert.nn.functional as F


@dataclass(frozen=True)
class OneLayerResult:
    """What the script prints, as plain values."""

    z_grad_fn: str
    loss_grad_fn: str
    loss: float
    w_grad: list[list[float]]
    b_grad: list[float]
    max_diff_from_closed_form: float
    requires_grad_tracked: bool
    requires_grad_no_grad: bool
    requires_grad_detached: bool


def main(seed: int = 0) -> OneLayerResult:
    """Build the network, differentiate the loss, then turn tracking off two ways."""
    wengert.manual_seed(seed)
    x = wengert.ones(5)  # input
    y = wengert.zeros(3)  # expected output
    w = wengert.randn(5, 3, requires_grad=True)
    b = wengert.randn(3, requires_grad=True)
    z = wengert.matmul(x, w) + b
    loss = F.binary_cross_entropy_with_logits(z, y)

    print(f"x: {x.requires_grad}, y: {y.requires_grad}, w: {w.requires_grad}, "
          f"b: {b.requires_grad}")
    z_fn, loss_fn = z.grad_fn.name(), loss.grad_fn.name()
    print(f"Gradient function for z = {z.grad_fn}")
    print(f"Gradient function for loss = {loss.grad_fn}")
    print("loss =", loss)

    loss.backward()
    print("w.grad =", w.grad)
    print("b.grad =", b.grad)

    # with x all ones and y all zeros, d loss / d z_j = sigmoid(z_j) / 3, and every
    # row of d loss / d w equals that vector
    zv = z.detach().numpy()
    expected_b = 1 / (1 + np.exp(-zv)) / 3
    diff = max(float(np.abs(b.grad.numpy() - expected_b).max()),
               float(np.abs(w.grad.numpy() - np.tile(expected_b, (5, 1))).max()))
    print(f"largest difference from sigmoid(z) / 3: {diff:.2e}")

    print("\n== turning gradient tracking off")
    z = wengert.matmul(x, w) + b
    tracked = z.requires_grad
    print(z.requires_grad)
    with wengert.no_grad():
        z = wengert.matmul(x, w) + b
    in_no_grad = z.requires_grad
    print(z.requires_grad)

    z = wengert.matmul(x, w) + b
    z_det = z.detach()
    print(z_det.requires_grad)

    return OneLayerResult(
        z_grad_fn=z_fn,
        loss_grad_fn=loss_fn,
        loss=loss.item(),
        w_grad=w.grad.tolist(),
        b_grad=b.grad.tolist(),
        max_diff_from_closed_form=diff,
        requires_grad_tracked=tracked,
        requires_grad_no_grad=in_no_grad,
        requires_grad_detached=z_det.requires_grad,
    )


if __name__ == "__main__":
    main()
