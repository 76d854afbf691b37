"""Minimize the Rosenbrock function by plain gradient descent: wengert's main demo.

f(x1, x2) = (a - x1)^2 + b (x2 - x1^2)^2 with a = 1, b = 5 has its minimum at (1, 1).
Starting from (-1, 1), 1000 steps with learning rate 0.01 -- each one a forward pass,
``backward()`` and an in-place update under ``no_grad`` -- end near (0.9918, 0.9830)
with f below 1e-4. Every 100 steps the script prints the step, the value and the
gradient; at the end it prints the final x and how long a step took.

Run it with::

    python examples/rosenbrock.py
    python examples/rosenbrock.py --iterations 5000 --lr 0.02
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import wengert

A = 1.0
B = 5.0


@dataclass(frozen=True)
class RosenbrockResult:
    """Where the descent ended and what it cost."""

    x: list[float]  # the final point
    value: float  # f at the last iteration, before its update (as printed)
    grad: list[float]  # the gradient there
    history: list[tuple[int, float, list[float]]]  # (iteration, value, gradient) every 100 + last
    first_step_seconds: float  # loads numba's compiled sweeps (compiles them on a cold cache)
    seconds_per_step: float  # the other steps


def rosenbrock(x: wengert.Tensor) -> wengert.Tensor:
    """(a - x1)^2 + b (x2 - x1^2)^2 for x = (x1, x2)."""
    x1 = x[0]
    x2 = x[1]
    return (A - x1) ** 2 + B * (x2 - x1**2) ** 2


def descend(num_iterations: int = 1000, lr: float = 0.01, report_every: int = 100,
            verbose: bool = True) -> RosenbrockResult:
    """Gradient descent from (-1, 1); prints progress every ``report_every`` steps."""
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be at least 1, got {num_iterations}")
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    history = []
    first = 0.0
    start = time.perf_counter()
    for i in range(1, num_iterations + 1):
        value = rosenbrock(x)
        value.backward()
        if i % report_every == 0 or i == num_iterations:
            grad = x.grad.tolist()
            history.append((i, value.item(), grad))
            if verbose and i % report_every == 0:
                print(f"Iteration: {i:5d}   value: {value.item():.7g}   "
                      f"gradient: {grad[0]:.7g} {grad[1]:.7g}")
        # the update itself must not be recorded, and .grad accumulates: reset it
        with wengert.no_grad():
            x.sub_(lr * x.grad)
            x.grad.zero_()
        if i == 1:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    per_step = (total - first) / max(num_iterations - 1, 1)
    _, last_value, last_grad = history[-1]
    return RosenbrockResult(x.detach().tolist(), last_value, last_grad, history, first, per_step)


def main(argv: Sequence[str] = ()) -> RosenbrockResult:
    """Parse the command line, run the descent, print the final point and the timing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="number of steps")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate")
    args = parser.parse_args(argv)

    res = descend(args.iterations, args.lr)
    print("x =", wengert.tensor(res.x))
    # the first step loads numba's compiled sweeps from its cache (or compiles them)
    print(f"time: {res.seconds_per_step * 1e6:.0f} us per step over steps 2..{args.iterations}"
          f"; the first step took {res.first_step_seconds * 1e3:.0f} ms")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
