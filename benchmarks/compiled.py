"""Compiled (traced and replayed) wengert beside hand-written numba, numpy, PyTorch and JAX.

Run: ``python benchmarks/compiled.py`` (``--quick`` for fewer repeats, ``--big`` to include
n = 10^6 in the extended Rosenbrock rows). Prints one table; PyTorch and JAX columns appear
when they are installed. Compare ratios within one run: absolute times drift on a shared
machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from numba import njit

import wengert

try:
    import torch
except ImportError:  # optional comparison
    torch = None
try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # optional comparison
    jax = None


def best(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Best wall time per call over ``repeat`` rounds of ``number`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def first_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


A, B, LR, ITERS = 1.0, 5.0, 0.01, 1000


def rosen(x):
    return (A - x[0]) ** 2 + B * (x[1] - x[0] ** 2) ** 2


@njit(cache=False)  # a script: its cache would be keyed on how it was imported
def rosen_vg_njit(x):
    """The practical limit: value and gradient written by hand in numba."""
    a = A - x[0]
    b = x[1] - x[0] * x[0]
    g = np.empty(2)
    g[0] = -2.0 * a - 4.0 * B * x[0] * b
    g[1] = 2.0 * B * b
    return a * a + B * b * b, g


@njit(cache=False)  # a script: its cache would be keyed on how it was imported
def rosen_gd_njit(x0, lr, iters):
    x = x0.copy()
    for _ in range(iters):
        a = A - x[0]
        b = x[1] - x[0] * x[0]
        g0 = -2.0 * a - 4.0 * B * x[0] * b
        g1 = 2.0 * B * b
        x[0] -= lr * g0
        x[1] -= lr * g1
    return x


def rosen_eager_wengert() -> np.ndarray:
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    for _ in range(ITERS):
        rosen(x).backward()
        with wengert.no_grad():
            x.sub_(LR * x.grad)
            x.grad.zero_()
    return x.detach().numpy()


def rosen_eager_torch() -> np.ndarray:
    x = torch.tensor([-1.0, 1.0], dtype=torch.float64, requires_grad=True)
    for _ in range(ITERS):
        rosen(x).backward()
        with torch.no_grad():
            x.sub_(LR * x.grad)
            x.grad.zero_()
    return x.detach().numpy()


def ext_rosen(x):
    """Extended Rosenbrock: sum(100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def ext_rosen_numpy_vg(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Vectorised numpy value and analytic gradient."""
    d = x[1:] - x[:-1] ** 2
    e = 1 - x[:-1]
    f = float(np.sum(100 * d * d + e * e))
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * d - 2 * e
    g[1:] += 200 * d
    return f, g


def row(label: str, t: float, ref: float | None = None, unit: str = "us") -> str:
    scale = {"us": 1e6, "ms": 1e3, "ns": 1e9}[unit]
    ratio = f"{t / ref:8.2f}x" if ref else ""
    return f"  {label:<40}{t * scale:>12.2f} {unit}  {ratio}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--big", action="store_true", help="include n = 10^6")
    args = ap.parse_args()
    rep = 3 if args.quick else 7
    x0 = np.array([-1.0, 1.0])

    print("1. Rosenbrock (a=1, b=5): one value-and-gradient call   [ratio: / hand-written njit]")
    t_first = first_call(lambda: wengert.value_and_grad(rosen)(x0))
    vg = wengert.value_and_grad(rosen)
    vg(x0)
    rosen_vg_njit(x0)
    t_njit = best(lambda: rosen_vg_njit(x0), rep, 20000)
    print(row("hand-written @njit", t_njit, t_njit))
    print(row("wengert.value_and_grad (replay)", best(lambda: vg(x0), rep, 20000), t_njit))
    if torch is not None:
        def torch_vg():
            x = torch.tensor(x0, requires_grad=True)
            v = rosen(x)
            v.backward()
            return v.item(), x.grad.numpy()
        print(row("torch eager", best(torch_vg, rep, 2000), t_njit))
    if jax is not None:
        jvg = jax.jit(jax.value_and_grad(rosen))
        jx = jnp.asarray(x0)
        jvg(jx)[0].block_until_ready()
        print(row("jax.jit(value_and_grad)", best(lambda: jvg(jx)[0].block_until_ready(),
                                                  rep, 2000), t_njit))
    print(row("wengert first call (trace; warm numba cache)", t_first, None, "ms"))

    print(f"\n2. {ITERS} steps of gradient descent, lr={LR}   [ratio: / wengert.minimize]")
    wengert.minimize(rosen, x0, method="gd", lr=LR, max_iter=ITERS)
    t_min = best(lambda: wengert.minimize(rosen, x0, method="gd", lr=LR, max_iter=ITERS),
                 rep)
    rosen_gd_njit(x0, LR, ITERS)
    print(row("wengert.minimize(method='gd')", t_min, t_min, "ms"))
    print(row("hand-written @njit loop", best(lambda: rosen_gd_njit(x0, LR, ITERS), rep),
              t_min, "ms"))
    print(row("wengert eager (seed loop)", best(rosen_eager_wengert, rep), t_min, "ms"))
    if torch is not None:
        print(row("torch eager (seed loop)", best(rosen_eager_torch, rep), t_min, "ms"))
    r = wengert.minimize(rosen, x0, method="gd", lr=LR, max_iter=ITERS)
    print(f"  minimize: x = ({r.x[0]:.4f}, {r.x[1]:.4f}), f = {r.fun:.4e}")

    print("\n3. Extended Rosenbrock, value and gradient   [ratio: / wengert replay]")
    sizes = [100, 10_000] + ([1_000_000] if args.big else [])
    for n in sizes:
        x = np.linspace(-1.0, 1.0, n)
        t_first = first_call(lambda x=x: wengert.value_and_grad(ext_rosen)(x))
        evg = wengert.value_and_grad(ext_rosen)
        evg(x)
        number = max(1, 200_000 // n)
        t_w = best(lambda evg=evg, x=x: evg(x), rep, number)
        print(f"  n = {n}")
        print(row("  wengert.value_and_grad (replay)", t_w, t_w))
        print(row("  numpy, vectorised analytic gradient", best(lambda x=x: ext_rosen_numpy_vg(x),
                                                               rep, number), t_w))
        if torch is not None:
            def tvg(x=x):
                xt = torch.tensor(x, requires_grad=True)
                v = ext_rosen(xt)
                v.backward()
                return v.item(), xt.grad.numpy()
            print(row("  torch eager", best(tvg, rep, number), t_w))
        if jax is not None:
            jf = jax.jit(jax.value_and_grad(ext_rosen))
            jx = jnp.asarray(x)
            jf(jx)[0].block_until_ready()
            print(row("  jax.jit(value_and_grad)", best(lambda jf=jf, jx=jx: jf(jx)[0]
                                                       .block_until_ready(),
                                                       rep, number), t_w))
        print(row("  wengert first call (trace)", t_first, None, "ms"))

    print("\n4. Euler chain, 2,500 steps of y' = r y (1 - y/10): d y(T) / d r")

    def euler(r):
        y = 0.5
        for _ in range(2500):
            y = y + 0.01 * r * y * (1 - y / 10)
        return y

    t_first = first_call(lambda: wengert.value_and_grad(euler)(0.7))
    evg = wengert.value_and_grad(euler)
    evg(0.7)
    n_ops = len(evg)
    t = best(lambda: evg(0.7), rep, 20)
    print(row(f"wengert replay, per op ({n_ops} tape entries)", t / n_ops, None, "ns")
          + "  (target <= 6 ns)")
    print(row("wengert replay, whole call", t, None, "us"))
    print(row("wengert first call (trace)", t_first, None, "ms"))
    if torch is not None:
        def teuler():
            r = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            v = euler(r)
            v.backward()
            return r.grad
        print(row("torch eager, whole call", best(teuler, rep), None, "us"))
    if jax is not None and not args.quick:  # XLA compiles the unrolled loop for ~1 min
        je = jax.jit(jax.value_and_grad(euler))
        t0 = time.perf_counter()
        je(0.7)[0].block_until_ready()
        print(row("jax.jit first call (trace + XLA compile)", time.perf_counter() - t0, None,
                  "ms"))
        print(row("jax.jit(value_and_grad), whole call", best(lambda: je(0.7)[0]
                                                              .block_until_ready(), rep, 20),
                  None, "us"))


if __name__ == "__main__":
    main()
