"""Gradient descent on a quadratic in three variables, checked against the hand gradient.

f(x, y, z) = x^2 + 2y^2 + 3z^2 - 2xy + 2xz - 4yz + 2x - 2y + 2 has its minimum,
f = 0, at (-1, 1, 1). The script

1. computes the gradient at the origin by hand and with autograd: [2, -2, 0];
2. compares the two at a few random points;
3. takes 1000 descent steps (lr 0.01) from the origin, reaching about
   (-1.0006, 0.9993, 0.9997);
4. starts again and stops once every gradient component is below 1e-5,
   which lands on (-1, 1, 1);
5. records the first 250 steps of the path and, if matplotlib is installed and
   ``--plot FILE.png`` is given, saves a 3-D scatter of it.

Run it with::

    python examples/gradient_descent_3d.py
    python examples/gradient_descent_3d.py --plot trajectory.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import wengert

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Descent3DResult:
    """The numbers this example prints."""

    grad_at_origin_by_hand: list[float]
    grad_at_origin_autograd: list[float]
    max_hand_vs_autograd_diff: float  # over the random points
    after_1000_steps: list[float]
    converged: list[float]
    converged_steps: int
    trajectory: np.ndarray  # (250, 3)
    plot: str | None  # the PNG written, if any


def function(a: wengert.Tensor) -> wengert.Tensor:
    """f(x, y, z) for a = (x, y, z)."""
    x, y, z = a
    return x**2 + 2 * y**2 + 3 * z**2 - 2 * x * y + 2 * x * z - 4 * y * z + 2 * x - 2 * y + 2


def gradient(a: wengert.Tensor) -> wengert.Tensor:
    """The gradient of ``function`` worked out by hand."""
    x, y, z = a
    df_dx = 2 * x - 2 * y + 2 * z + 2
    df_dy = 4 * y - 2 * x - 4 * z - 2
    df_dz = 6 * z + 2 * x - 4 * y
    return wengert.tensor((df_dx, df_dy, df_dz))


def step(a: wengert.Tensor, lr: float = LEARNING_RATE) -> None:
    """One descent step on ``a`` in place: backward, then an unrecorded update."""
    function(a).backward()
    with wengert.no_grad():
        a += -lr * a.grad
        a.grad.zero_()


def descend_fixed(num_steps: int = 1000) -> wengert.Tensor:
    """``num_steps`` steps from the origin."""
    a = wengert.zeros(3, requires_grad=True)
    for _ in range(num_steps):
        step(a)
    return a


def descend_to_tolerance(tol: float = 1e-5, max_steps: int = 100_000) -> tuple[wengert.Tensor,
                                                                              int]:
    """Step from the origin until every gradient component is below ``tol``."""
    a = wengert.zeros(3, requires_grad=True)
    stop = False
    steps = 0
    while not stop and steps < max_steps:
        function(a).backward()
        stop = wengert.max(wengert.abs(a.grad)) < tol  # a 0-d bool tensor
        with wengert.no_grad():
            a += -LEARNING_RATE * a.grad
            a.grad.zero_()
        steps += 1
    return a, steps


def trajectory(num_steps: int = 250) -> np.ndarray:
    """The first ``num_steps`` points visited from the origin, as a (num_steps, 3) array."""
    a = wengert.zeros(3, requires_grad=True)
    a_all = []
    for _ in range(num_steps):
        step(a)
        a_all.append(a * 1)  # a copy: a itself keeps changing
    return wengert.stack(a_all).detach().numpy()


def save_plot(points: np.ndarray, path: str) -> bool:
    """A 3-D scatter of the path, coloured by step; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    ax.scatter(points[:, 0], points[:, 1], points[:, 2], c=range(len(points)), s=2)
    ax.text(*points[0], "Initial", color="red")
    ax.text(*points[-1], "Final", color="green")
    ax.view_init(0, 50)
    ax.set_xlabel("X")
    ax.set_ylabel("Y")
    ax.set_zlabel("Z")
    ax.set_xlim((-1, 0))
    ax.set_ylim((0, 1))
    ax.set_zlim((0, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: Sequence[str] = ()) -> Descent3DResult:
    """Run all five parts; ``argv`` takes ``--plot PATH`` and ``--seed N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="PATH", help="save the 250-step path as a PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random points")
    args = parser.parse_args(argv)

    print("== gradient at the origin")
    a = wengert.zeros(3, requires_grad=True)
    by_hand = gradient(a)
    print("by hand: ", by_hand)
    function(a).backward()
    print("autograd:", a.grad)

    print("\n== hand gradient vs autograd at random points")
    wengert.manual_seed(args.seed)
    worst = 0.0
    for _ in range(6):
        a_rand = wengert.rand(3, requires_grad=True)
        function(a_rand).backward()
        hand = gradient(a_rand)
        print(f"autograd:            {a_rand.grad}\ndirectly calculated: {hand}\n")
        worst = max(worst, float(np.abs(a_rand.grad.numpy() - hand.numpy()).max()))
    print(f"largest difference: {worst:.3g}")

    print("\n== 1000 steps, learning rate 0.01")
    a1000 = descend_fixed(1000)
    print(a1000)

    print("\n== until every gradient component is below 1e-5")
    a_tol, n = descend_to_tolerance()
    print(a_tol, f"after {n} steps")

    print("\n== the first 250 steps")
    points = trajectory(250)
    print(f"{len(points)} points, from {points[0].round(4)} to {points[-1].round(4)}")
    written = None
    if args.plot:
        if save_plot(points, args.plot):
            written = args.plot
            print("saved the path to", args.plot)
        else:
            print("matplotlib is not installed: no plot (pip install matplotlib)")

    return Descent3DResult(by_hand.tolist(), a.grad.tolist(), worst, a1000.detach().tolist(),
                           a_tol.detach().tolist(), n, points, written)


if __name__ == "__main__":
    main(sys.argv[1:])
