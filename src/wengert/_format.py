"""PyTorch-like text for tensors: ``tensor([ 2., -2.,  0.], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

_THRESHOLD = 1000
_EDGE = 3


def _float_formatter(vals: np.ndarray):
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v}"
    if np.all(finite == np.round(finite)):
        fmt = "{:.0f}."
        big = np.abs(finite).max()
        if big >= 1e8:
            fmt = "{:.4e}"
    else:
        nz = np.abs(finite[finite != 0])
        lo, hi = (nz.min(), nz.max()) if nz.size else (0.0, 0.0)
        fmt = "{:.4e}" if nz.size and (hi / lo > 1000.0 or hi > 1e8 or lo < 1e-4) else "{:.4f}"

    def f(v: float) -> str:
        return _special(v) or fmt.format(v)

    return f


def _special(v: float) -> str:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return ""


def _summary(a: np.ndarray) -> np.ndarray:
    if a.size <= _THRESHOLD or a.ndim == 0:
        return a.reshape(-1)
    parts = []
    for idx in range(a.shape[0]) if a.shape[0] <= 2 * _EDGE else list(range(_EDGE)) + list(
            range(a.shape[0] - _EDGE, a.shape[0])):
        parts.append(_summary(a[idx]))
    return np.concatenate(parts)


def format_array(a: np.ndarray, indent: int = 7) -> str:
    """The body PyTorch prints between ``tensor(`` and the suffixes."""
    if a.dtype == np.bool_:
        fmt = lambda v: "True" if v else "False"  # noqa: E731
        shown = _summary(a)
    elif np.issubdtype(a.dtype, np.integer):
        fmt = lambda v: str(int(v))  # noqa: E731
        shown = _summary(a)
    else:
        shown = _summary(a).astype(np.float64)
        fmt = _float_formatter(shown)
    width = max((len(fmt(v)) for v in shown), default=0)
    summarize = a.size > _THRESHOLD

    def rec(x: np.ndarray, ind: int) -> str:
        if x.ndim == 0:
            return fmt(x.item()).rjust(width)
        n = x.shape[0]
        if summarize and n > 2 * _EDGE:
            idx = list(range(_EDGE)) + [None] + list(range(n - _EDGE, n))
        else:
            idx = list(range(n))
        if x.ndim == 1:
            items = ["..." if i is None else fmt(x[i].item()).rjust(width) for i in idx]
            return "[" + ", ".join(items) + "]"
        sep = "," + "\n" * (x.ndim - 1) + " " * (ind + 1)
        items = ["..." if i is None else rec(x[i], ind + 1) for i in idx]
        return "[" + sep.join(items) + "]"

    if a.ndim == 0:
        return fmt(a.item())
    return rec(a, indent)
