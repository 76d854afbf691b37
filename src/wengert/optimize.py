"""``wengert.minimize``: trace once, run the whole optimisation loop inside numba."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from . import _replay
from ._reuse import reads
from .compile import Compiled, TraceError

# Traces kept between calls of minimize, for functions whose trace can be reused (see
# _reuse.py): a few small programs, so that repeated minimisations skip the tracing.
_KEPT: dict[int, tuple[Any, tuple, Compiled]] = {}
_KEEP_MAX, _KEEP_FLOATS = 16, 100_000

METHODS = ("gd", "momentum", "nesterov", "adam", "lbfgs")
_MESSAGES = {
    _replay.CONVERGED: "Optimization terminated successfully: max |gradient| < tol.",
    _replay.MAXITER: "Maximum number of iterations reached.",
    _replay.LINESEARCH_FAILED: "The line search did not find a point satisfying the Wolfe "
                               "conditions.",
}


def minimize(f: Callable, x0: Any, method: str = "lbfgs", *, lr: float | None = None,
             tol: float = 1e-5, max_iter: int = 1000, momentum: float = 0.9,
             nesterov: bool = False, betas: tuple[float, float] = (0.9, 0.999),
             eps: float = 1e-8, m: int = 10, c1: float = 1e-4, c2: float = 0.9,
             record_path: bool = False, progress: bool = False,
             max_retraces: int = 1000) -> OptimizeResult:
    """Minimise a scalar function of one array, with the loop running inside numba.

    ``f`` is traced once (and again when a guard on its control flow fails, after which
    the loop resumes where it was). Methods: ``"gd"`` (fixed ``lr``), ``"momentum"``
    (heavy ball, or Nesterov with ``nesterov=True`` / ``method="nesterov"``), ``"adam"``,
    ``"lbfgs"`` (memory ``m``, strong Wolfe line search with ``c1``, ``c2``). Iteration
    stops when max |gradient| < ``tol`` or after ``max_iter`` iterations.

    Returns a SciPy ``OptimizeResult`` with ``x``, ``fun``, ``jac``, ``nit``, ``nfev``,
    ``success``, ``message``, ``ntraces`` (traces made by this call) and, with
    ``record_path=True``, ``path`` (one row per iterate, for plotting).

    A later call with the same ``f`` reuses its trace when everything ``f`` reads from
    outside its argument (globals, closure cells, defaults, the functions it calls) is
    unchanged and immutable (numbers, strings, functions, tensors at the same version);
    a function that reads an array, a list or an object is traced on every call.

    >>> import wengert
    >>> r = wengert.minimize(lambda x: (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2,
    ...                      [-1.0, 1.0], method="gd", lr=0.01, max_iter=1000)
    >>> [round(float(v), 4) for v in r.x]
    [0.9918, 0.983]
    """
    if method not in METHODS:
        raise ValueError(f"minimize: unknown method {method!r}; use one of {METHODS}")
    if method == "nesterov":
        method, nesterov = "momentum", True
    if lr is None:
        lr = {"gd": 0.01, "momentum": 0.01, "adam": 0.001}.get(method, 1.0)
    # Plain floats and ints: an int lr would make numba compile the loop a second time.
    lr, tol, momentum, eps, c1, c2 = (float(v) for v in (lr, tol, momentum, eps, c1, c2))
    betas = (float(betas[0]), float(betas[1]))
    max_iter, m = int(max_iter), int(m)
    x0 = np.array(x0, dtype=np.float64)
    shape = x0.shape
    x = np.ascontiguousarray(x0.reshape(-1)).copy()
    n = x.size
    key = reads(f)
    comp = _compiled(f, key)
    traces_before = comp.n_traces
    tr = comp._find([x.reshape(shape)], x)
    g = np.zeros(n)
    fval = np.full(1, np.nan)
    xfail = np.empty(n)
    path = np.empty((max_iter + 1 if record_path else 0, n))
    state: tuple = ()
    if method == "momentum":
        state = (np.zeros(n),)
    elif method == "adam":
        state = (np.zeros(n), np.zeros(n))
    elif method == "lbfgs":
        state = (np.zeros((m, n)), np.zeros((m, n)), np.zeros(m), np.zeros(2, np.int64))

    bar = _progress(max_iter) if progress else None
    chunk = max(1, max_iter // 100) if bar is not None else max_iter
    it, nfev, retraces = 0, 0, 0
    while True:
        stop = min(it + chunk, max_iter)
        status, new_it, nf = _run(method, tr, x, g, fval, state, lr, momentum, nesterov,
                                  betas, eps, tol, stop, c1, c2, it, path, xfail)
        nfev += nf
        if bar is not None:
            bar.update(new_it - it)
        it = new_it
        if status == _replay.GUARD_FAILED:
            retraces += 1
            if retraces > max_retraces:
                raise TraceError(f"minimize: more than {max_retraces} guard failures; the "
                                 "function's control flow changes too often to trace")
            tr = comp._find([xfail.reshape(shape)], xfail)
            continue
        if status == _replay.MAXITER and it < max_iter:
            continue  # next progress chunk
        break
    if bar is not None:
        bar.close()
    # f and its gradient at the final point: one more replay of the path that holds there.
    if tr.captured:
        tr.refresh()
    grad = np.empty(n)
    value, ok = _replay.evaluate_grad(*tr.prog, x, grad)
    if not ok:
        value, grad = comp.value_and_grad(x.reshape(shape))
    grad = grad.reshape(shape)
    res = OptimizeResult(
        x=x.reshape(shape), fun=value, jac=grad, nit=it, nfev=nfev + 1,
        success=status == _replay.CONVERGED, status=status, message=_MESSAGES[status],
        ntraces=comp.n_traces - traces_before, method=method)
    _keep(f, key, comp, tr)
    if record_path:
        res.path = path[: min(it + 1, max_iter + 1)].copy()
        res.path[min(it, max_iter)] = x
    return res


def _run(method: str, tr: Any, x: np.ndarray, g: np.ndarray, fval: np.ndarray, state: tuple,
         lr: float, mu: float, nesterov: bool, betas: tuple, eps: float, tol: float,
         max_iter: int, c1: float, c2: float, it0: int, path: np.ndarray,
         xfail: np.ndarray) -> tuple[int, int, int]:
    prog = tr.prog
    if tr.captured:
        tr.refresh()
    if method in ("gd", "momentum", "adam"):
        kind = {"gd": _replay.GD, "momentum": _replay.MOMENTUM, "adam": _replay.ADAM}[method]
        hyper = np.array([lr, mu, float(nesterov), betas[0], betas[1], eps])
        s1 = state[0] if state else g
        s2 = state[1] if len(state) > 1 else g
        return _replay.first_order(prog, kind, hyper, x, g, fval, s1, s2, tol, max_iter, it0,
                                   path, xfail)
    return _replay.lbfgs(prog, x, g, fval, *state, tol, max_iter, c1, c2, it0, path,
                         xfail)


def _compiled(f: Callable, key: tuple | None) -> Compiled:
    """The kept traces of ``f`` if what it reads is unchanged since, else a new Compiled.
    Taken out of the cache while in use: a replay writes the program's arena, so two
    threads minimising the same function must not share one."""
    hit = _KEPT.pop(id(f), None)
    if key is not None and hit is not None and hit[0] is f and hit[1] == key:
        return hit[2]
    return Compiled(f, 0)


def _keep(f: Callable, key: tuple | None, comp: Compiled, tr: Any) -> None:
    """Keep ``comp`` for the next call with ``f`` (``key``: what f read before tracing)."""
    if key is None or tr.prog[2].size > _KEEP_FLOATS:
        _KEPT.pop(id(f), None)
        return
    _KEPT.pop(id(f), None)  # re-insert: the most recently used go last
    _KEPT[id(f)] = (f, key, comp)
    while len(_KEPT) > _KEEP_MAX:
        del _KEPT[next(iter(_KEPT))]


def _progress(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional dependency: no bar
        return None
    return tqdm(total=total, desc="minimize", leave=False)
