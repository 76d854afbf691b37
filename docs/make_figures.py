"""Draw the figures of the README into ``docs/``.

    python docs/make_figures.py

``rosenbrock_path.png``: the paths of ``wengert.minimize`` with ``method="gd"``, ``"adam"``
and ``"lbfgs"`` from (-1, 1) over the contour lines of Rosenbrock's function
(a = 1, b = 5), drawn with ``wengert.viz.plot_path``. Needs matplotlib.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import wengert  # noqa: E402
from wengert import viz  # noqa: E402

HERE = Path(__file__).resolve().parent
A, B = 1.0, 5.0
X0 = [-1.0, 1.0]
# method: (keyword arguments, colour)
RUNS = {
    "gd": ({"lr": 0.01}, "tab:red"),
    "adam": ({"lr": 0.05}, "tab:blue"),
    "lbfgs": ({}, "black"),
}
XLIM, YLIM = (-1.5, 1.5), (-0.6, 1.6)


def rosenbrock(x):
    """(a - x1)^2 + b (x2 - x1^2)^2: minimum 0 at (1, 1)."""
    return (A - x[0]) ** 2 + B * (x[1] - x[0] ** 2) ** 2


def rosenbrock_paths(max_iter: int = 1000) -> dict:
    """``wengert.minimize`` results (with ``.path``) for each method of ``RUNS``."""
    return {m: wengert.minimize(rosenbrock, X0, method=m, max_iter=max_iter,
                                record_path=True, **kw)
            for m, (kw, _) in RUNS.items()}


def rosenbrock_figure(results: dict) -> plt.Figure:
    """All paths on one set of axes; the contours are drawn once, by the first call."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    levels = [0.05, 0.2, 0.5, 1, 2, 4, 8, 15, 25]
    for k, (m, r) in enumerate(results.items()):
        color = RUNS[m][1]
        viz.plot_path(rosenbrock, r.path, ax=ax, xlim=XLIM, ylim=YLIM, grid=200,
                      levels=levels if k == 0 else [], cmap="viridis", color=color,
                      marker="." if m != "gd" else "", labels=False)
        ax.lines[-1].set_label(f"{m}: {r.nit} iterations, f = {r.fun:.1e}")
        if k == 0:  # fade the contour lines and their labels behind the paths
            for artist in [*ax.collections, *ax.texts]:
                artist.set_alpha(0.45)
    ax.plot(*X0, "o", color="tab:green", markersize=7, label="start (-1, 1)")
    ax.plot(1, 1, "*", color="gold", markeredgecolor="black", markersize=14,
            label="minimum (1, 1)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    ax.set_title("wengert.minimize on Rosenbrock (a = 1, b = 5)")
    fig.tight_layout()
    return fig


def main() -> int:
    results = rosenbrock_paths()
    fig = rosenbrock_figure(results)
    out = HERE / "rosenbrock_path.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"wrote {out.relative_to(HERE.parent)} ({out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
