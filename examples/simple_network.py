"""A two-layer network trained with autograd and hand-written weight updates.

100 observations of 3 features; the target is y = 0.2 x1 - 1.3 x2 - 0.5 x3 + noise.
The network has one hidden layer of 32 ReLU units and one output, the loss is the sum
of squared errors, and the weights move by 1e-4 times their gradient for 200 epochs.
``loss.backward()`` computes every gradient; the updates happen under
``wengert.no_grad()`` and each ``.grad`` is zeroed afterwards, as gradients accumulate.
The loss is printed every 10 epochs, and the same training is replayed with numpy and
hand-derived backpropagation to show that autograd's gradients are the same. Then the same
network is trained two more ways (see ``simple_network_nn.py``): with ``nn.Sequential`` and
``optim.SGD``, and with ``wengert.compile_step`` (one numba call per epoch); all three print
the same losses, and each prints its time per epoch.

Run it with::

    python examples/simple_network.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import wengert
from wengert.viz import progress  # a tqdm bar when tqdm is installed

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for simple_network_nn

D_IN, D_HIDDEN, D_OUT, N = 3, 32, 1, 100
LEARNING_RATE = 1e-4
EPOCHS = 200


@dataclass(frozen=True)
class NetworkResult:
    """Loss every 10 epochs, and how far a numpy replay of the training ends up."""

    losses: list[tuple[int, float]]
    numpy_losses: list[tuple[int, float]]
    max_weight_diff: float  # between wengert's and numpy's trained weights


def make_data(seed: int = 777) -> tuple[wengert.Tensor, wengert.Tensor]:
    """Random inputs and the noisy linear target."""
    wengert.manual_seed(seed)
    x = wengert.randn(N, D_IN)
    y = x[:, 0:1] * 0.2 - x[:, 1:2] * 1.3 - x[:, 2:3] * 0.5 + wengert.randn(N, 1)
    return x, y


def init_weights() -> list[wengert.Tensor]:
    """w1, w2 standard normal; biases b1, b2 zero."""
    w1 = wengert.randn(D_IN, D_HIDDEN, requires_grad=True)
    w2 = wengert.randn(D_HIDDEN, D_OUT, requires_grad=True)
    b1 = wengert.zeros(1, D_HIDDEN, requires_grad=True)
    b2 = wengert.zeros(1, D_OUT, requires_grad=True)
    return [w1, w2, b1, b2]


def train(x: wengert.Tensor, y: wengert.Tensor,
          params: list[wengert.Tensor]) -> list[tuple[int, float]]:
    """Train in place; returns (epoch, loss) every 10 epochs."""
    w1, w2, b1, b2 = params
    losses = []
    for t in progress(range(1, EPOCHS + 1), desc="by hand", leave=False):
        # forward pass
        y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2)
        # sum of squared errors
        loss = (y_pred - y).pow(2).sum()
        if t % 10 == 0:
            print(f"Epoch: {t:4d}   Loss: {loss.item():.4f}")
            losses.append((t, loss.item()))
        # backward pass: fills w1.grad, w2.grad, b1.grad, b2.grad
        loss.backward()
        # the updates are not part of the model: keep them off the graph
        with wengert.no_grad():
            w1.sub_(LEARNING_RATE * w1.grad)
            w2.sub_(LEARNING_RATE * w2.grad)
            b1.sub_(LEARNING_RATE * b1.grad)
            b2.sub_(LEARNING_RATE * b2.grad)
            # gradients accumulate across backward() calls: reset them
            w1.grad.zero_()
            w2.grad.zero_()
            b1.grad.zero_()
            b2.grad.zero_()
    return losses


def train_numpy(x: np.ndarray, y: np.ndarray,
                params: list[np.ndarray]) -> tuple[list[tuple[int, float]], list[np.ndarray]]:
    """The same training with gradients derived by hand (a reference, not wengert)."""
    w1, w2, b1, b2 = (p.copy() for p in params)
    losses = []
    for t in range(1, EPOCHS + 1):
        h = x @ w1 + b1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2 + b2
        if t % 10 == 0:
            losses.append((t, float(((y_pred - y) ** 2).sum())))
        g_pred = 2 * (y_pred - y)
        g_w2 = h_relu.T @ g_pred
        g_b2 = g_pred.sum(axis=0, keepdims=True)
        g_h = (g_pred @ w2.T) * (h > 0)
        g_w1 = x.T @ g_h
        g_b1 = g_h.sum(axis=0, keepdims=True)
        w1 -= LEARNING_RATE * g_w1
        w2 -= LEARNING_RATE * g_w2
        b1 -= LEARNING_RATE * g_b1
        b2 -= LEARNING_RATE * g_b2
    return losses, [w1, w2, b1, b2]


def main() -> NetworkResult:
    """Train by hand, replay with numpy, then with nn/optim and with a compiled step."""
    x, y = make_data()
    params = init_weights()
    start = [p.detach().numpy().copy() for p in params]
    (x.mm(params[0]).sum() * 0).backward()  # warm up: load numba's compiled sweeps
    for p in params:
        p.grad = None
    print("1. by hand: autograd gradients, updates under no_grad")
    t0 = time.perf_counter()
    losses = train(x, y, params)
    t_hand = (time.perf_counter() - t0) / EPOCHS

    np_losses, np_params = train_numpy(x.numpy(), y.numpy(), start)
    diff = max(float(np.abs(p.detach().numpy() - q).max()) for p, q in zip(params, np_params))
    print(f"\nnumpy replay: final loss {np_losses[-1][1]:.4f}, "
          f"largest weight difference {diff:.2e}")

    import simple_network_nn as with_nn  # the sibling script

    timings = {"by hand": t_hand}
    for label, trainer in (("2. nn.Sequential + optim.SGD", with_nn.train),
                           ("3. wengert.compile_step", with_nn.train_compiled)):
        print(f"\n{label}")
        x, y = with_nn.make_data()  # same seed: same data and starting weights
        model = with_nn.make_model("seed")
        t0 = time.perf_counter()
        trainer(model, x, y)
        timings[label[3:]] = (time.perf_counter() - t0) / EPOCHS
    print("\ntime per epoch (the compiled step's includes its first call, the trace): "
          + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in timings.items()))
    return NetworkResult(losses, np_losses, diff)


if __name__ == "__main__":
    main()
