"""Where an eager step's time goes: the seed loops split into phases (µs per step).

Run: ``python benchmarks/phases.py`` (add ``--steps N``). Prints one table per loop:
the seed's Rosenbrock gradient descent and the seed network trained by hand with
``no_grad`` updates, each phase timed with ``time.perf_counter`` around it (the timer
itself adds about 0.1 µs per phase). The numba work of a phase is what the same
program costs replayed (``benchmarks/compiled.py``, ``compile_step`` in ``nn.py``);
the rest is the Python facade: recording, imports, accumulating ``.grad``, updates.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import wengert

A, B, LR = 1.0, 5.0, 0.01


def _table(title: str, names: list[str], totals: np.ndarray, steps: int) -> str:
    per = totals / steps * 1e6
    lines = [title]
    lines += [f"  {name:<44s} {v:8.2f} us" for name, v in zip(names, per)]
    lines.append(f"  {'step':<44s} {per.sum():8.2f} us")
    return "\n".join(lines)


def rosenbrock_phases(steps: int, warm: int = 200) -> tuple[list[str], np.ndarray]:
    """The seed's loop: rosen(x), backward, ``x.sub_(LR * x.grad)``, ``x.grad.zero_()``."""
    pc = time.perf_counter
    names = ["record rosen(x) (9 ops, 1 import)", "backward()", "no_grad: r = LR * x.grad",
             "x.sub_(r)", "x.grad.zero_() and exit"]
    totals = np.zeros(len(names))
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    for i in range(steps + warm):
        t0 = pc()
        x1, x2 = x[0], x[1]
        value = (A - x1) ** 2 + B * (x2 - x1 ** 2) ** 2
        t1 = pc()
        value.backward()
        t2 = pc()
        with wengert.no_grad():
            r = LR * x.grad
            t3 = pc()
            x.sub_(r)
            t4 = pc()
            x.grad.zero_()
        t5 = pc()
        if i >= warm:
            totals += (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
    return names, totals


def network_phases(steps: int, warm: int = 200) -> tuple[list[str], np.ndarray]:
    """The seed network (100 x 3 -> 32 ReLU -> 1, sum of squares) trained by hand."""
    pc = time.perf_counter
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((100, 3))
    ys = xs @ np.array([[0.2], [-1.3], [-0.5]]) + rng.standard_normal((100, 1))
    x, y = wengert.tensor(xs), wengert.tensor(ys)
    w1 = wengert.tensor(rng.standard_normal((3, 32)), requires_grad=True)
    b1 = wengert.tensor(np.zeros((1, 32)), requires_grad=True)
    w2 = wengert.tensor(rng.standard_normal((32, 1)), requires_grad=True)
    b2 = wengert.tensor(np.zeros((1, 1)), requires_grad=True)
    params = (w1, b1, w2, b2)
    names = ["record forward and loss (8 ops, 6 imports)", "loss.item() (forward sweep)",
             "loss.backward()", "4 updates w -= lr * w.grad", "4 grad.zero_() and exit"]
    totals = np.zeros(len(names))
    for i in range(steps + warm):
        t0 = pc()
        loss = (x.mm(w1).add(b1).relu().mm(w2).add(b2) - y).pow(2).sum()
        t1 = pc()
        loss.item()
        t2 = pc()
        loss.backward()
        t3 = pc()
        with wengert.no_grad():
            for w in params:
                w -= 1e-4 * w.grad
            t4 = pc()
            for w in params:
                w.grad.zero_()
        t5 = pc()
        if i >= warm:
            totals += (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
    return names, totals


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="timed steps per loop")
    args = ap.parse_args(argv)
    runs: list[tuple[str, Callable]] = [
        ("Rosenbrock, the seed's eager loop (µs per step)", rosenbrock_phases),
        ("seed network by hand, no_grad updates (µs per epoch)", network_phases),
    ]
    for title, fn in runs:
        names, totals = fn(args.steps)
        print(_table(title, names, totals, args.steps))
        print()


if __name__ == "__main__":
    main()
