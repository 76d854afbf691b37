"""The seed network of ``simple_network.py``, written with ``nn.Sequential`` and ``optim.SGD``.

100 observations of 3 features; the target is y = 0.2 x1 - 1.3 x2 - 0.5 x3 + noise.
The model is ``Linear(3, 32) -> ReLU -> Linear(32, 1)``, the loss the sum of squared
errors (``mse_loss(..., reduction="sum")``), and ``optim.SGD(lr=1e-4)`` moves the
weights for 200 epochs; the loss is printed every 10 epochs.

The weights start where the seed's do (standard normal weights drawn in the same order
from ``wengert.manual_seed(777)``, zero biases) instead of ``nn.Linear``'s own
initialization, so the printed losses are those of ``simple_network.py``
(``init="default"`` keeps PyTorch's initialization instead).

Run it with::

    python examples/simple_network_nn.py
"""

from __future__ import annotations

import wengert
import wengert.nn.functional as F
from wengert import nn
from wengert.viz import progress  # a tqdm bar when tqdm is installed

D_IN, D_HIDDEN, D_OUT, N = 3, 32, 1, 100
LEARNING_RATE = 1e-4
EPOCHS = 200


def make_data(seed: int = 777) -> tuple[wengert.Tensor, wengert.Tensor]:
    """Random inputs and the noisy linear target (the seed's draws)."""
    wengert.manual_seed(seed)
    x = wengert.randn(N, D_IN)
    y = x[:, 0:1] * 0.2 - x[:, 1:2] * 1.3 - x[:, 2:3] * 0.5 + wengert.randn(N, 1)
    return x, y


def make_model(init: str = "seed") -> nn.Sequential:
    """The network; ``init="seed"`` copies in the seed's starting weights."""
    if init == "seed":
        w1, w2 = wengert.randn(D_IN, D_HIDDEN), wengert.randn(D_HIDDEN, D_OUT)
    model = nn.Sequential(nn.Linear(D_IN, D_HIDDEN), nn.ReLU(), nn.Linear(D_HIDDEN, D_OUT))
    if init == "seed":
        with wengert.no_grad():
            model[0].weight.copy_(w1.t())  # nn.Linear keeps weights as (out, in)
            model[2].weight.copy_(w2.t())
        nn.init.zeros_(model[0].bias)
        nn.init.zeros_(model[2].bias)
    elif init != "default":
        raise ValueError(f"init must be 'seed' or 'default', got {init!r}")
    return model


def train(model: nn.Module, x: wengert.Tensor, y: wengert.Tensor,
          verbose: bool = True) -> list[tuple[int, float]]:
    """SGD on the sum of squared errors; returns (epoch, loss) every 10 epochs."""
    opt = wengert.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    losses = []
    for t in progress(range(1, EPOCHS + 1), desc="nn + optim", leave=False):
        loss = F.mse_loss(model(x), y, reduction="sum")
        if t % 10 == 0:
            losses.append((t, loss.item()))
            if verbose:
                print(f"Epoch: {t:4d}   Loss: {loss.item():.4f}")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def train_compiled(model: nn.Module, x: wengert.Tensor, y: wengert.Tensor,
                   verbose: bool = True) -> list[tuple[int, float]]:
    """The same training as ``train``, each step one numba call (``wengert.compile_step``).

    The step returns the loss before its update, like ``loss.item()`` in the eager loop.
    """
    opt = wengert.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    step = wengert.compile_step(model, lambda out, target: F.mse_loss(out, target,
                                                                      reduction="sum"), opt)
    losses = []
    for t in progress(range(1, EPOCHS + 1), desc="compiled", leave=False):
        loss = step(x, y)
        if t % 10 == 0:
            losses.append((t, loss))
            if verbose:
                print(f"Epoch: {t:4d}   Loss: {loss:.4f}")
    return losses


def main(init: str = "seed", compiled: bool = False) -> list[tuple[int, float]]:
    x, y = make_data()
    model = make_model(init)
    print(model)
    return (train_compiled if compiled else train)(model, x, y)


if __name__ == "__main__":
    main()
