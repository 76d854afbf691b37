"""Autograd basics: gradients, retained gradients and the backward graph.

Walks through the first autograd lessons with wengert's PyTorch-style API:

1. f(x1, x2) = 0.2 x1^2 + 0.2 x2^2 - 5 at (2, 2), built node by node (x3..x7):
   x7 = -3.4 and both gradients are 0.4 * 2 = 0.8.
2. Reading ``.grad`` of an intermediate (non-leaf) tensor gives None and a warning;
   ``retain_grad()`` keeps those gradients (0.2, 0.2, 1, 1).
3. The ``grad_fn`` recorded for each intermediate.
4. A 2x2 graph, out = mean(3 * (x1 * (x2 + 2))^2), whose backward functions are
   walked through ``next_functions`` down to the leaves' ``AccumulateGrad``, and
   whose gradients are 0.25 (z), 4.65 (y), 18.6 (x2) and 14.415 (x1).

Run it with::

    python examples/autograd_basics.py
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import wengert


@dataclass(frozen=True)
class BasicsResult:
    """The numbers this example prints, for tests and notebooks."""

    x7: float
    x1_grad: float
    x2_grad: float
    nonleaf_grad_warned: bool
    retained: dict[str, float]
    grad_fn_names: dict[str, str]
    mean_grad: list[list[float]]
    graph_walk: list[list[str]]
    z_grad: list[list[float]]
    y_grad: list[list[float]]
    x2_grad_2x2: float
    x1_grad_2x2: list[list[float]]


def _names(node: Any) -> list[str]:
    """The names of a backward node's inputs (``None`` for constants)."""
    return ["None" if fn is None else fn.name() for fn, _ in node.next_functions]


def quadratic_graph() -> tuple[float, float, float]:
    """f(x1, x2) = 0.2 x1^2 + 0.2 x2^2 - 5 at (2, 2): value and both gradients."""
    x1 = wengert.tensor(2.0, requires_grad=True)
    x2 = wengert.tensor(2.0, requires_grad=True)

    x3 = x1.square()
    x5 = x3 * 0.2
    x4 = x2.square()
    x6 = x4 * 0.2
    x7 = x5 + x6 - 5
    print("x7 =", x7)
    print("x7.requires_grad:", x7.requires_grad)  # inherited from the leaves

    x7.backward()
    print("x1.grad =", x1.grad)  # 0.4 * x1
    print("x2.grad =", x2.grad)  # 0.4 * x2
    return x7.item(), x1.grad.item(), x2.grad.item()


def nonleaf_grad() -> bool:
    """Intermediate gradients are not kept: reading one warns and gives None."""
    x1 = wengert.tensor(2.0, requires_grad=True)
    x2 = wengert.tensor(2.0, requires_grad=True)
    x3 = x1.square()
    x7 = x3 * 0.2 + x2.square() * 0.2 - 5
    x7.backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = x3.grad
    print("x3.grad =", g)
    for w in caught:
        print(f"  ({w.category.__name__}: {w.message})")
    return g is None and any(issubclass(w.category, UserWarning) for w in caught)


def retained_grads() -> tuple[dict[str, float], dict[str, str]]:
    """retain_grad() on x3..x6 keeps d x7 / d x3..x6; also report each grad_fn."""
    x1 = wengert.tensor(2.0, requires_grad=True)
    x2 = wengert.tensor(2.0, requires_grad=True)

    x3 = x1.square()
    x3.retain_grad()
    x5 = x3 * 0.2
    x5.retain_grad()
    x4 = x2.square()
    x4.retain_grad()
    x6 = x4 * 0.2
    x6.retain_grad()
    x7 = x5 + x6 - 5
    x7.backward()

    nodes = {"x3": x3, "x4": x4, "x5": x5, "x6": x6}
    grads = {}
    for name, t in nodes.items():
        print(f"{name}.grad =", t.grad)
        grads[name] = t.grad.item()
    names = {}
    for name, t in {**nodes, "x7": x7}.items():
        print(f"{name}.grad_fn:", t.grad_fn.name())
        names[name] = t.grad_fn.name()
    return grads, names


def mean_of_ones() -> list[list[float]]:
    """The smallest graph: y = mean(x) for a 2x2 x of ones, so dy/dx = 1/4."""
    x = wengert.ones(2, 2, requires_grad=True)
    y = x.mean()
    print("y.grad_fn:", y.grad_fn.name())
    y.backward()
    print("x.grad =", x.grad)
    return x.grad.tolist()


def two_by_two_graph() -> tuple[list[list[str]], Any, Any, float, Any]:
    """out = mean(3 * (x1 * (x2 + 2))^2): walk its backward graph, then differentiate."""
    x1 = wengert.ones(2, 2, requires_grad=True)
    x2 = wengert.tensor(1.1, requires_grad=True)
    y = x1 * (x2 + 2)
    z = y.pow(2) * 3
    out = z.mean()

    # keep the gradients of the two intermediates for printing below
    y.retain_grad()
    z.retain_grad()

    walk = []
    mean_fn = out.grad_fn
    print("out.grad_fn:", mean_fn.name())
    # follow next_functions from the output back to the leaves; a None entry is a
    # Python constant, AccumulateGrad is where a leaf's .grad gets written
    mul3_fn = mean_fn.next_functions[0][0]
    pow_fn = mul3_fn.next_functions[0][0]
    mul_fn = pow_fn.next_functions[0][0]
    x1_acc, add_fn = (fn for fn, _ in mul_fn.next_functions)
    steps = [
        ("out = z.mean()", mean_fn),
        ("z = y.pow(2) * 3", mul3_fn),
        ("y.pow(2)", pow_fn),
        ("y = x1 * (x2 + 2)", mul_fn),
        ("x2 + 2", add_fn),
    ]
    for what, node in steps:
        names = _names(node)
        print(f"{what:>18}  {node.name()}.next_functions -> {names}")
        walk.append(names)
    x2_acc = add_fn.next_functions[0][0]
    # an AccumulateGrad node ends each path and points at its leaf
    print("AccumulateGrad nodes hold x1 and x2:",
          x1_acc.variable is x1 and x2_acc.variable is x2)

    out.backward()
    print("z.grad =", z.grad)
    print("y.grad =", y.grad)
    print("x2.grad =", x2.grad)
    print("x1.grad =", x1.grad)
    return walk, z.grad.tolist(), y.grad.tolist(), x2.grad.item(), x1.grad.tolist()


def main() -> BasicsResult:
    """Run every part and return the numbers it printed."""
    print("== f(x1, x2) = 0.2 x1^2 + 0.2 x2^2 - 5 at (2, 2)")
    x7, g1, g2 = quadratic_graph()
    print("\n== gradient of an intermediate, without retain_grad")
    warned = nonleaf_grad()
    print("\n== with retain_grad on x3..x6")
    retained, names = retained_grads()
    print("\n== y = mean(x), x = ones(2, 2)")
    mean_grad = mean_of_ones()
    print("\n== the 2x2 graph and its backward functions")
    walk, z_grad, y_grad, x2_grad, x1_grad = two_by_two_graph()
    return BasicsResult(x7, g1, g2, warned, retained, names, mean_grad, walk, z_grad, y_grad,
                        x2_grad, x1_grad)


if __name__ == "__main__":
    main()
