"""Training small fully connected networks: wengert beside hand-written numpy and PyTorch.

Run: ``python benchmarks/nn.py`` (``--quick`` for fewer epochs and a smaller large network,
``--no-torch`` to skip PyTorch, ``--repeat N`` to keep the fastest of N runs). Prints one
table per network:

* the seed network: 100 x 3 inputs, 32 hidden ReLU units, 1 output, sum of squared errors,
  plain gradient descent with lr 1e-4 for 200 full-batch epochs; in wengert both as the
  seed writes it (manual updates under ``no_grad``) and with ``nn.Sequential`` +
  ``optim.SGD``;
* a larger one: 10,000 x 64 inputs, 256 hidden ReLU units, 1 output, mean squared error,
  ``optim.SGD`` with lr 1e-3 for 20 full-batch epochs.

Every implementation starts from the same float64 weights and data, so their losses must
agree (the last column: relative difference of the final loss from numpy's). Times are per
epoch (forward, loss as a Python float, backward, update): the first epoch separately (it
loads numba's kernels or traces), then the median of the others. "x numpy" and "x torch"
are that median divided by numpy's and by PyTorch's (``nn.Sequential`` + ``optim.SGD``,
float64); below 1 is faster. Compare ratios within one run: absolute times drift on a
shared machine, and numpy and PyTorch use however many BLAS threads they find.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import wengert
from wengert import nn, optim

try:
    import torch
except ImportError:  # optional comparison
    torch = None


@dataclass(frozen=True)
class Net:
    """A network and its training: ``relu(x @ w1 + b1) @ w2 + b2``, full-batch SGD."""

    title: str
    n: int  # observations
    d_in: int
    d_hidden: int
    epochs: int
    lr: float
    reduction: str  # "sum": sum of squared errors; "mean": mean squared error
    init: str  # "normal": standard normal weights (the seed); "fan_in": normal / sqrt(fan_in)
    repeat: int = 1  # runs per implementation; the one with the lowest median epoch is kept
    seed: int = 777


SEED_NET = Net("seed network: 100 x 3 -> 32 ReLU -> 1, sum of squared errors, lr 1e-4",
               100, 3, 32, 200, 1e-4, "sum", "normal", repeat=3)
LARGE_NET = Net("larger network: 10,000 x 64 -> 256 ReLU -> 1, MSE, SGD lr 1e-3",
                10_000, 64, 256, 20, 1e-3, "mean", "fan_in", repeat=2)


@dataclass
class Data:
    """Inputs, targets and the starting weights, as float64 numpy arrays."""

    x: np.ndarray  # (n, d_in)
    y: np.ndarray  # (n, 1)
    w1: np.ndarray  # (d_in, d_hidden)
    b1: np.ndarray  # (1, d_hidden)
    w2: np.ndarray  # (d_hidden, 1)
    b2: np.ndarray  # (1, 1)


@dataclass
class Run:
    """What one training run gives: the loss before each epoch's update, and its time."""

    losses: np.ndarray
    seconds: np.ndarray

    @classmethod
    def empty(cls, epochs: int) -> Run:
        return cls(np.empty(epochs), np.empty(epochs))

    def record(self, epoch: int, loss: float, t0: float) -> None:
        """Store an epoch's loss and the time since ``t0`` (``time.perf_counter()``)."""
        self.seconds[epoch] = time.perf_counter() - t0
        self.losses[epoch] = loss

    @property
    def first(self) -> float:
        return float(self.seconds[0])

    @property
    def median(self) -> float:
        rest = self.seconds[1:] if len(self.seconds) > 1 else self.seconds
        return float(np.median(rest))


def make_data(net: Net) -> Data:
    """Noisy linear targets (for the seed network: y = 0.2 x1 - 1.3 x2 - 0.5 x3 + noise)."""
    rng = np.random.default_rng(net.seed)
    x = rng.standard_normal((net.n, net.d_in))
    if net.d_in == 3:
        coef = np.array([[0.2], [-1.3], [-0.5]])
    else:
        coef = rng.standard_normal((net.d_in, 1)) / np.sqrt(net.d_in)
    y = x @ coef + rng.standard_normal((net.n, 1))
    s1, s2 = (1.0, 1.0) if net.init == "normal" else (net.d_in ** -0.5, net.d_hidden ** -0.5)
    w1 = rng.standard_normal((net.d_in, net.d_hidden)) * s1
    w2 = rng.standard_normal((net.d_hidden, 1)) * s2
    return Data(x, y, w1, np.zeros((1, net.d_hidden)), w2, np.zeros((1, 1)))


# ---------------------------------------------------------------- numpy (the reference)
def train_numpy(data: Data, net: Net) -> Run:
    """Forward and backward written out by hand with numpy."""
    x, y = data.x, data.y
    w1, b1, w2, b2 = (a.copy() for a in (data.w1, data.b1, data.w2, data.b2))
    mean = net.reduction == "mean"
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        h = x @ w1 + b1
        h_relu = np.maximum(h, 0.0)
        diff = h_relu @ w2 + b2 - y
        loss = float(np.sum(diff * diff)) / (y.size if mean else 1)
        g_pred = (2.0 / y.size if mean else 2.0) * diff
        g_w2 = h_relu.T @ g_pred
        g_b2 = g_pred.sum(axis=0, keepdims=True)
        g_h = (g_pred @ w2.T) * (h > 0)
        g_w1 = x.T @ g_h
        g_b1 = g_h.sum(axis=0, keepdims=True)
        w1 -= net.lr * g_w1
        b1 -= net.lr * g_b1
        w2 -= net.lr * g_w2
        b2 -= net.lr * g_b2
        run.record(t, loss, t0)
    return run


# ---------------------------------------------------------------- wengert, eager
def train_wengert_manual(data: Data, net: Net) -> Run:
    """The seed's loop: autograd for the gradients, updates by hand under ``no_grad``."""
    x, y = wengert.tensor(data.x), wengert.tensor(data.y)
    w1 = wengert.tensor(data.w1, requires_grad=True)
    b1 = wengert.tensor(data.b1, requires_grad=True)
    w2 = wengert.tensor(data.w2, requires_grad=True)
    b2 = wengert.tensor(data.b2, requires_grad=True)
    lr = net.lr
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2)
        err = (y_pred - y).pow(2)
        loss = err.sum() if net.reduction == "sum" else err.mean()
        value = loss.item()
        loss.backward()
        with wengert.no_grad():
            w1 -= lr * w1.grad
            b1 -= lr * b1.grad
            w2 -= lr * w2.grad
            b2 -= lr * b2.grad
            w1.grad.zero_()
            b1.grad.zero_()
            w2.grad.zero_()
            b2.grad.zero_()
        run.record(t, value, t0)
    return run


def wengert_model(data: Data) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` holding the starting weights of ``data``."""
    d_in, d_hidden = data.w1.shape
    model = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, 1))
    with wengert.no_grad():  # nn.Linear keeps its weight as (out, in)
        model[0].weight.copy_(wengert.tensor(data.w1.T))
        model[0].bias.copy_(wengert.tensor(data.b1.reshape(-1)))
        model[2].weight.copy_(wengert.tensor(data.w2.T))
        model[2].bias.copy_(wengert.tensor(data.b2.reshape(-1)))
    return model


def train_wengert_nn(data: Data, net: Net) -> Run:
    """``nn.Sequential`` + ``nn.MSELoss`` + ``optim.SGD``, the usual PyTorch loop."""
    x, y = wengert.tensor(data.x), wengert.tensor(data.y)
    model = wengert_model(data)
    loss_fn = nn.MSELoss(reduction=net.reduction)
    opt = optim.SGD(model.parameters(), lr=net.lr)
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        value = loss.item()
        loss.backward()
        opt.step()
        run.record(t, value, t0)
    return run


# ================================================================ compiled step
# wengert.compile_step(model, loss_fn, optimizer) traces one whole training step (forward,
# loss, backward, SGD update) on the first call; every later ``step(x, y)`` replays it in
# one numba call and returns the loss (before the update) as a float. This section runs
# only when the installed wengert has the API: ``if hasattr(wengert, "compile_step")``.
def train_wengert_compiled(data: Data, net: Net) -> Run:
    """The ``nn`` loop as one compiled step per epoch."""
    x, y = wengert.tensor(data.x), wengert.tensor(data.y)
    model = wengert_model(data)
    opt = optim.SGD(model.parameters(), lr=net.lr)
    step = wengert.compile_step(model, nn.MSELoss(reduction=net.reduction), opt)
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        loss = step(x, y)
        run.record(t, loss, t0)
    return run
# ================================================================ end of compiled step


# ---------------------------------------------------------------- PyTorch (float64)
def train_torch_manual(data: Data, net: Net) -> Run:
    """The seed's loop in PyTorch."""
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    w1, b1, w2, b2 = (torch.tensor(a, requires_grad=True)
                      for a in (data.w1, data.b1, data.w2, data.b2))
    lr = net.lr
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        y_pred = x.mm(w1).add(b1).relu().mm(w2).add(b2)
        err = (y_pred - y).pow(2)
        loss = err.sum() if net.reduction == "sum" else err.mean()
        value = loss.item()
        loss.backward()
        with torch.no_grad():
            w1 -= lr * w1.grad
            b1 -= lr * b1.grad
            w2 -= lr * w2.grad
            b2 -= lr * b2.grad
            w1.grad.zero_()
            b1.grad.zero_()
            w2.grad.zero_()
            b2.grad.zero_()
        run.record(t, value, t0)
    return run


def train_torch_nn(data: Data, net: Net) -> Run:
    """``torch.nn.Sequential`` + ``MSELoss`` + ``torch.optim.SGD``, in float64."""
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    d_in, d_hidden = data.w1.shape
    model = torch.nn.Sequential(torch.nn.Linear(d_in, d_hidden), torch.nn.ReLU(),
                                torch.nn.Linear(d_hidden, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(data.w1.T))
        model[0].bias.copy_(torch.from_numpy(data.b1.reshape(-1)))
        model[2].weight.copy_(torch.from_numpy(data.w2.T))
        model[2].bias.copy_(torch.from_numpy(data.b2.reshape(-1)))
    loss_fn = torch.nn.MSELoss(reduction=net.reduction)
    opt = torch.optim.SGD(model.parameters(), lr=net.lr)
    run = Run.empty(net.epochs)
    for t in range(net.epochs):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        value = loss.item()
        loss.backward()
        opt.step()
        run.record(t, value, t0)
    return run


# ---------------------------------------------------------------- the table
NUMPY = "numpy, hand-written backward"
TORCH = "torch eager, nn + SGD"


def implementations(seed_style: bool, with_torch: bool = True) -> dict[str, Callable]:
    """The rows to run: label -> train function (the seed style adds the manual loops)."""
    rows: dict[str, Callable] = {NUMPY: train_numpy}
    if seed_style:
        rows["wengert eager, manual no_grad"] = train_wengert_manual
    rows["wengert eager, nn + SGD"] = train_wengert_nn
    if hasattr(wengert, "compile_step"):
        rows["wengert.compile_step, nn + SGD"] = train_wengert_compiled
    if with_torch and torch is not None:
        if seed_style:
            rows["torch eager, manual no_grad"] = train_torch_manual
        rows[TORCH] = train_torch_nn
    return rows


def run_net(net: Net, seed_style: bool, with_torch: bool = True) -> dict[str, Run]:
    """Train ``net`` with every implementation; label -> Run.

    With ``net.repeat > 1`` the implementations take turns (so that a burst of load from
    elsewhere does not hit every run of one of them) and each keeps its fastest run.
    """
    data = make_data(net)
    rows = implementations(seed_style, with_torch)
    runs: dict[str, Run] = {}
    for _ in range(max(net.repeat, 1)):
        for label, fn in rows.items():
            run = fn(data, net)
            if label not in runs or run.median < runs[label].median:
                runs[label] = run
    return runs


def table(net: Net, runs: dict[str, Run]) -> str:
    """The rows of one network, times in ms per epoch."""
    ref_np = runs[NUMPY]
    ref_t = runs.get(TORCH)
    head = (f"  {'implementation':<33}{'first':>10}{'per epoch':>11}{'x numpy':>9}"
            f"{'x torch':>9}{'final loss':>14}{'vs numpy':>10}")
    lines = [f"{net.title}, {net.epochs} epochs (full batch); ms per epoch", head]
    for label, r in runs.items():
        x_torch = f"{r.median / ref_t.median:9.2f}" if ref_t is not None else f"{'-':>9}"
        final = r.losses[-1]
        rel = abs(final - ref_np.losses[-1]) / max(abs(ref_np.losses[-1]), 1e-300)
        lines.append(f"  {label:<33}{r.first * 1e3:10.3f}{r.median * 1e3:11.3f}"
                     f"{r.median / ref_np.median:9.2f}{x_torch}{final:14.6g}{rel:10.1e}")
    return "\n".join(lines)


def targets(seed: dict[str, Run], large: dict[str, Run]) -> str:
    """The issue's three targets, as ratios of the runs above (us per epoch)."""
    lines = ["targets (per-epoch medians):"]
    tm = seed.get("torch eager, manual no_grad")
    for label, goal in (("wengert eager, manual no_grad", 2.0),
                        ("wengert.compile_step, nn + SGD", 5.0)):
        r = seed.get(label)
        if r is None or tm is None:
            continue
        x = tm.median / r.median
        lines.append(f"  seed network, {label}: {r.median * 1e6:.1f} us vs torch's manual loop "
                     f"{tm.median * 1e6:.1f} us = {x:.2f}x faster (target >= {goal:g}x: "
                     f"{'met' if x >= goal else 'NOT met'})")
    ref = large[NUMPY]
    for label in ("wengert eager, nn + SGD", "wengert.compile_step, nn + SGD"):
        r = large.get(label)
        if r is not None:
            x = r.median / ref.median
            lines.append(f"  larger network, {label}: {x:.2f}x hand-written numpy "
                         f"(target <= 1.2x: {'met' if x <= 1.2 else 'NOT met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="50 epochs of the seed network, 2,000 rows and 5 epochs for the large")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--repeat", type=int, help="runs per implementation, the fastest kept "
                    "(default: 3 for the seed network, 2 for the large one)")
    args = ap.parse_args(argv)
    seed_net, large_net = SEED_NET, LARGE_NET
    if args.repeat:
        seed_net = Net(**{**seed_net.__dict__, "repeat": args.repeat})
        large_net = Net(**{**large_net.__dict__, "repeat": args.repeat})
    if args.quick:
        seed_net = Net(**{**seed_net.__dict__, "epochs": 50})
        large_net = Net(**{**large_net.__dict__, "n": 2_000, "epochs": 5,
                           "title": large_net.title.replace("10,000", "2,000")})
    with_torch = not args.no_torch
    if torch is not None and with_torch:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"numpy {np.__version__}; wengert {wengert.__version__}")
    else:
        print(f"numpy {np.__version__}; wengert {wengert.__version__}; no PyTorch")
    if not hasattr(wengert, "compile_step"):
        print("(this wengert has no compile_step: the compiled-step rows are skipped)")
    # warm numba's kernels (loading them from the on-disk cache) outside the timings
    tiny = Net("warm-up", 8, 3, 4, 2, 1e-4, "sum", "normal")
    run_net(tiny, seed_style=True, with_torch=with_torch)
    seed_runs = run_net(seed_net, seed_style=True, with_torch=with_torch)
    print()
    print(table(seed_net, seed_runs))
    large_runs = run_net(large_net, seed_style=False, with_torch=with_torch)
    print()
    print(table(large_net, large_runs))
    print()
    print(targets(seed_runs, large_runs))


if __name__ == "__main__":
    main()
