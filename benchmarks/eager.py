"""Eager-mode costs of wengert: recording, sweeps, and the seed's Rosenbrock loop.

Run: ``python benchmarks/eager.py`` (add ``--quick`` for fewer repeats). Prints one table;
PyTorch is measured too when it is installed. Absolute times drift on a shared machine:
compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import wengert
from wengert import _vm
from wengert._state import STATE
from wengert.tape import _Run

try:
    import torch
except ImportError:  # optional comparison
    torch = None


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---------------------------------------------------------------- the Euler chain
STEPS, DT = 2500, 0.01


def euler_chain(r, y0=0.5):
    """y' = r y (1 - y/10) by explicit Euler: 6 tape entries per step."""
    y = y0
    for _ in range(STEPS):
        y = y + DT * r * y * (1 - y / 10)
    return y


def bench_chain(repeat: int) -> dict[str, float]:
    def record():
        STATE.tape = None  # a fresh tape per chain
        r = wengert.tensor(0.7, requires_grad=True)
        return euler_chain(r)

    t_rec = best(record, repeat)
    y = record()
    tape = y._tape
    n_ops = tape.n
    tape.sync()

    def fwd():
        _vm.forward(tape._code, tape._consts, tape._aux, tape.val, tape.freed, 0, tape.n)

    fwd()
    t_fwd = best(fwd, repeat * 5)
    tape.freed[:] = 0
    run = _Run(tape)

    def bwd():
        run.adj[:] = 0.0
        run.reached[:] = 0
        run.seed(y._buf, np.ones(1))
        _vm.backward(tape._code, tape._consts, tape._aux, tape.val, run.adj, run.reached,
                     tape.freed, tape.n, True)

    t_bwd = best(bwd, repeat * 5)

    def end_to_end():
        r = wengert.tensor(0.7, requires_grad=True)
        euler_chain(r).backward()
        return r.grad

    t_e2e = best(end_to_end, repeat)
    out = {"ops": n_ops, "record_us_per_op": t_rec / n_ops * 1e6,
           "fwd_ns_per_op": t_fwd / n_ops * 1e9, "bwd_ns_per_op": t_bwd / n_ops * 1e9,
           "e2e_ms": t_e2e * 1e3}
    if torch is not None:
        def torch_chain():
            r = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            euler_chain(r).backward()
            return r.grad

        out["torch_e2e_ms"] = best(torch_chain, repeat) * 1e3
    return out


# ---------------------------------------------------------------- Rosenbrock (seed)
A, B, LR, ITERS = 1.0, 5.0, 0.01, 1000


def rosen(x):
    x1, x2 = x[0], x[1]
    return (A - x1) ** 2 + B * (x2 - x1 ** 2) ** 2


def rosen_wengert() -> np.ndarray:
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    for _ in range(ITERS):
        value = rosen(x)
        value.backward()
        with wengert.no_grad():
            x.sub_(LR * x.grad)
            x.grad.zero_()
    return x.detach().numpy()


def rosen_numpy() -> np.ndarray:
    x = np.array([-1.0, 1.0])
    for _ in range(ITERS):
        x1, x2 = x
        g = np.array([-2 * (A - x1) - 4 * B * x1 * (x2 - x1 ** 2), 2 * B * (x2 - x1 ** 2)])
        x = x - LR * g
    return x


def rosen_torch() -> np.ndarray:
    x = torch.tensor([-1.0, 1.0], dtype=torch.float64, requires_grad=True)
    for _ in range(ITERS):
        value = rosen(x)
        value.backward()
        with torch.no_grad():
            x.sub_(LR * x.grad)
            x.grad.zero_()
    return x.detach().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    repeat = 2 if args.quick else 5

    rosen_wengert()  # warm the numba cache and code paths
    chain = bench_chain(repeat)
    print(f"Euler chain: {STEPS} steps, {chain['ops']} tape entries, gradient d y(T) / d r")
    print(f"  {'recording':<28}{chain['record_us_per_op']:>10.3f} us/op   (target <= 1.5)")
    fb = chain["fwd_ns_per_op"] + chain["bwd_ns_per_op"]
    print(f"  {'forward sweep':<28}{chain['fwd_ns_per_op']:>10.2f} ns/op")
    print(f"  {'reverse sweep':<28}{chain['bwd_ns_per_op']:>10.2f} ns/op")
    print(f"  {'forward + reverse':<28}{fb:>10.2f} ns/op   (target <= 10)")
    print(f"  {'record + backward, wengert':<28}{chain['e2e_ms']:>10.2f} ms")
    if "torch_e2e_ms" in chain:
        print(f"  {'record + backward, torch':<28}{chain['torch_e2e_ms']:>10.2f} ms"
              f"   ({chain['torch_e2e_ms'] / chain['e2e_ms']:.1f}x wengert)")

    print(f"\nRosenbrock (a={A:g}, b={B:g}), {ITERS} steps of gradient descent, lr={LR}")
    rows = [("wengert eager", rosen_wengert), ("numpy, hand gradient", rosen_numpy)]
    if torch is not None:
        rows.append(("torch eager (float64)", rosen_torch))
    times = {}
    for name, fn in rows:
        times[name] = best(fn, repeat)
        x = fn()
        print(f"  {name:<28}{times[name] * 1e3:>10.2f} ms  {times[name] / ITERS * 1e6:>8.2f} "
              f"us/step   x = ({x[0]:.4f}, {x[1]:.4f})")
    w = times["wengert eager"]
    for name, t in times.items():
        if name != "wengert eager":
            print(f"  {'wengert vs ' + name:<28}{t / w:>10.2f}x")


if __name__ == "__main__":
    main()
