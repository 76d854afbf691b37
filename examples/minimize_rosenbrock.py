"""Rosenbrock's function minimised by ``wengert.minimize`` with every method.

The story of ``notebooks/02_rosenbrock.ipynb`` for a terminal. f(x1, x2) = (a - x1)^2 +
b (x2 - x1^2)^2 with a = 1, b = 5 has its minimum 0 at (1, 1), at the end of a curved
valley. From (-1, 1), ``wengert.minimize`` traces f once and runs the whole loop in
numba with plain gradient descent (the seed's lr = 0.01, 1000 steps), heavy-ball and
Nesterov momentum, Adam and L-BFGS. One row per method: where it stopped, f there, the
iterations and function evaluations it used, and the wall time of one call (after a
warm-up call, which loads the method's compiled loop from numba's cache).

Run it with::

    python examples/minimize_rosenbrock.py
    python examples/minimize_rosenbrock.py --plot rosenbrock.png   # needs matplotlib
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import wengert

A, B = 1.0, 5.0
X0 = (-1.0, 1.0)
# method -> keyword arguments of wengert.minimize (learning rates that suit this function)
METHODS: dict[str, dict] = {
    "gd": {"lr": 0.01},
    "momentum": {"lr": 0.005},
    "nesterov": {"lr": 0.005},
    "adam": {"lr": 0.05},
    "lbfgs": {},
}


def rosenbrock(x):
    """(a - x1)^2 + b (x2 - x1^2)^2 for x = (x1, x2)."""
    return (A - x[0]) ** 2 + B * (x[1] - x[0] ** 2) ** 2


@dataclass(frozen=True)
class Row:
    """One method's result."""

    method: str
    x: np.ndarray
    fun: float
    nit: int
    nfev: int
    seconds: float
    success: bool
    path: np.ndarray


def run(method: str, max_iter: int = 1000, tol: float = 1e-5) -> Row:
    """``wengert.minimize`` from (-1, 1) with ``method``; timed after one warm-up call."""
    kw = dict(METHODS[method], max_iter=max_iter, tol=tol, record_path=True)
    wengert.minimize(rosenbrock, X0, method=method, **kw)  # warm-up: load numba's cache
    t0 = time.perf_counter()
    r = wengert.minimize(rosenbrock, X0, method=method, **kw)
    seconds = time.perf_counter() - t0
    return Row(method, r.x, float(r.fun), int(r.nit), int(r.nfev), seconds, bool(r.success),
               r.path)


def format_rows(rows: Sequence[Row]) -> str:
    lines = [f"{'method':<10}{'x':>24}{'f':>12}{'nit':>7}{'nfev':>7}{'time':>11}  converged"]
    for r in rows:
        x = f"({r.x[0]:.6f}, {r.x[1]:.6f})"
        lines.append(f"{r.method:<10}{x:>24}{r.fun:12.3e}{r.nit:7d}{r.nfev:7d}"
                     f"{r.seconds * 1e3:8.2f} ms  {'yes' if r.success else 'no'}")
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: str) -> None:
    """The paths over the contour lines of f, one panel per method (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), sharey=True)
    for ax, r in zip(np.atleast_1d(axes), rows):
        wengert.viz.plot_path(rosenbrock, r.path, ax=ax, xlim=(-1.5, 1.5), ylim=(-0.6, 1.6),
                              levels=[0.05, 0.2, 0.5, 1, 2, 4, 8, 15], marker="",
                              title=f"{r.method}: {r.nit} iterations")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] = ()) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=1000, help="iteration limit")
    parser.add_argument("--tol", type=float, default=1e-5, help="stop when max |grad| < tol")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--plot", metavar="PATH", help="save a figure of the paths (PNG)")
    args = parser.parse_args(argv)

    rows = [run(m, args.max_iter, args.tol) for m in args.methods]
    print(f"Rosenbrock, a = {A:g}, b = {B:g}, from {X0}; minimum 0 at (1, 1)")
    print(format_rows(rows))
    if args.plot:
        try:
            plot(rows, args.plot)
        except ImportError:
            print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
            return rows
        print("wrote", args.plot)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
