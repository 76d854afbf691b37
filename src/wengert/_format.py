"""PyTorch-like text for tensors: ``tensor([ 2., -2.,  0.], requires_grad=True)``.

The rules follow PyTorch's printing defaults (precision 4, threshold 1000, edgeitems 3,
linewidth 80): one width for every element, taken from the nonzero finite values;
scientific notation when the range is wide.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 4, 1000, 3, 80


class _Formatter:
    def __init__(self, shown: np.ndarray, kind: str) -> None:
        self.kind = kind  # "f", "i" or "b"
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        if kind != "f":
            for v in shown:
                self.width = max(self.width, len(self._plain(v)))
            return
        finite = shown[np.isfinite(shown)]
        nonzero = finite[finite != 0]
        # As in PyTorch, only nonzero finite values set the width (nan/inf may stick out).
        if nonzero.size == 0:
            return
        absv = np.abs(nonzero)
        lo, hi = float(absv.min()), float(absv.max())
        self.int_mode = bool(np.all(nonzero == np.ceil(nonzero)))
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                self.width = max(self.width, *(len(f"{v:.{PRECISION}e}") for v in nonzero))
            else:
                self.width = max(self.width, *(len(f"{v:.0f}") + 1 for v in nonzero))
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            self.width = max(self.width, *(len(f"{v:.{PRECISION}e}") for v in nonzero))
        else:
            self.width = max(self.width, *(len(f"{v:.{PRECISION}f}") for v in nonzero))

    def _plain(self, v: float) -> str:
        if self.kind == "b":
            return "True" if v else "False"
        return str(int(v))

    def format(self, v: float) -> str:
        if self.kind != "f":
            s = self._plain(v)
        elif not math.isfinite(v):
            s = "nan" if v != v else ("inf" if v > 0 else "-inf")
        elif self.sci_mode:
            s = f"{v:.{PRECISION}e}"
        elif self.int_mode:
            s = f"{v:.0f}."
        else:
            s = f"{v:.{PRECISION}f}"
        return s.rjust(self.width)


def _shown(a: np.ndarray, summarize: bool) -> np.ndarray:
    """The elements that will be printed (edges only when summarizing)."""
    if a.ndim == 0:
        return a.reshape(-1)
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        rows = [a[i] for i in range(EDGEITEMS)] + [a[i] for i in range(-EDGEITEMS, 0)]
    else:
        rows = [a[i] for i in range(a.shape[0])]
    if a.ndim == 1:
        return np.array(rows, dtype=a.dtype)
    return np.concatenate([_shown(r, summarize) for r in rows]) if rows else a.reshape(-1)


def format_array(a: np.ndarray, indent: int = 7) -> str:
    """The body PyTorch prints between ``tensor(`` and the suffixes."""
    kind = "b" if a.dtype == np.bool_ else ("i" if a.dtype.kind in "iu" else "f")
    summarize = a.size > THRESHOLD
    shown = _shown(a, summarize)
    fmt = _Formatter(shown.astype(np.float64) if kind == "f" else shown, kind)
    if a.ndim == 0:
        return fmt.format(a.item()).strip()

    def vector(v: np.ndarray, ind: int) -> str:
        n = v.shape[0]
        if summarize and n > 2 * EDGEITEMS:
            items = ([fmt.format(x) for x in v[:EDGEITEMS].tolist()] + [" ..."]
                     + [fmt.format(x) for x in v[-EDGEITEMS:].tolist()])
        else:
            items = [fmt.format(x) for x in v.tolist()]
        per_line = max(1, (LINEWIDTH - ind) // (fmt.width + 2))
        lines = [", ".join(items[i: i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (ind + 1)).join(lines) + "]"

    def rec(x: np.ndarray, ind: int) -> str:
        if x.ndim == 1:
            return vector(x, ind)
        n = x.shape[0]
        if summarize and n > 2 * EDGEITEMS:
            parts = ([rec(x[i], ind + 1) for i in range(EDGEITEMS)] + ["..."]
                     + [rec(x[i], ind + 1) for i in range(n - EDGEITEMS, n)])
        else:
            parts = [rec(x[i], ind + 1) for i in range(n)]
        sep = "," + "\n" * (x.ndim - 1) + " " * (ind + 1)
        return "[" + sep.join(parts) + "]"

    return rec(a, indent)


def with_suffixes(body: str, suffixes: list[str], prefix: str = "tensor(") -> str:
    """PyTorch's rule: a suffix that would pass the line width goes to a new line."""
    for suffix in suffixes:
        last_line = len(body) - body.rfind("\n") + 1
        if last_line + len(suffix) + 2 > LINEWIDTH:
            body += ",\n" + " " * len(prefix) + suffix
        else:
            body += ", " + suffix
    return prefix + body + ")"
