"""The Wengert list behind a tensor: one line per tape entry it depends on.

Every op on a tensor appends one entry to the thread's tape (``tape.py``). This module
prints the part of that tape a tensor was computed from, in the classic notation of
evaluation traces::

    v0 = input            2.0000  (x1)
    v1 = square v0        4.0000
    v2 = mul_c v1 0.2     0.8000
    ...

``tape_listing`` returns the text; ``Tensor.tape()`` (attached at the end of this
module) prints it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

from .optable import BY_CODE
from .tensor import Tensor

__all__ = ["tape_listing"]

W = 7  # ints per tape row: (opcode, in0, in1, aux, off, size, rg); see tape.py
_WITH_C0 = {"fill", "select"}  # structural or unary ops whose constant is worth showing
_ELEMENTWISE = {"unary", "unary_c", "binary", "compare"}


def _fmt_num(v: float) -> str:
    """A number the way PyTorch prints a scalar: 4 decimals, or 4 in scientific form."""
    if not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    a = abs(v)
    if a == 0.0 or 1e-4 <= a < 1e8:
        return f"{v:.4f}"
    return f"{v:.4e}"


def _fmt_const(c: float) -> str:
    """A constant operand as written in code: ``0.2``, ``5``, ``1e-05``."""
    c = float(c)
    if c == math.inf or c == -math.inf or c != c:
        return repr(c)
    s = repr(c)
    return s[:-2] if s.endswith(".0") else s


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _fmt_values(g: np.ndarray, most: int = 4) -> str:
    """A short list of values: all of them up to ``most``, else the first few and '...'."""
    flat = g.reshape(-1)
    shown = [_fmt_num(float(v)) for v in flat[: most if flat.size <= most else most - 1]]
    return "[" + ", ".join(shown) + (", ...]" if flat.size > most else "]")


def _inputs(tape: Any, e: int) -> list[int]:
    """The entries that entry ``e`` reads, in operand order."""
    op, i0, i1, x = tape.code[W * e: W * e + 4]
    name = BY_CODE[op].name
    if name == "cat":  # aux: outer, out_block, n_in, then (entry, block) per input
        return [tape.aux[x + 3 + 2 * q] for q in range(tape.aux[x + 2])]
    if name == "where":  # aux: the condition entry
        return [tape.aux[x], i0, i1]
    return [b for b in (i0, i1) if b >= 0]


def _dependencies(tape: Any, root: int) -> list[int]:
    """Every entry ``root`` depends on (itself included), in tape order."""
    seen = {root}
    stack = [root]
    while stack:
        e = stack.pop()
        for b in _inputs(tape, e):
            if b not in seen:
                seen.add(b)
                stack.append(b)
    return sorted(seen)


def _tensors_of(tape: Any) -> dict[int, Any]:
    """Entry -> a tensor known to hold it: live results, imported leaves and constants."""
    out: dict[int, Any] = {}
    for ref in tape.tensors:
        t = ref()
        if t is not None and t._tape is tape and t._buf >= 0:
            out.setdefault(t._buf, t)
    for e, leaf, _ in tape.leaves:
        out.setdefault(e, leaf)
    for e, imp in tape.imports.items():
        if imp[0] == "dead":
            out.setdefault(e, imp[1])
    for hit in tape.imp_cache.values():
        t = hit[0]  # (tensor or a weak reference to it, version, entry) of a tensor copied in
        if isinstance(t, weakref.ref):
            t = t()
        if t is not None:
            out.setdefault(hit[2], t)
    return out


def _shapes(tape: Any, entries: list[int], known: dict[int, Any]) -> dict[int, tuple]:
    """The shape of each entry: from its tensor, or from an input of the same size for
    elementwise ops (entries themselves only record sizes)."""
    shapes: dict[int, tuple] = {}
    for e in entries:
        t = known.get(e)
        if t is not None:
            shapes[e] = tuple(t._shape)
            continue
        op, size = tape.code[W * e], tape.code[W * e + 5]
        if BY_CODE[op].family in _ELEMENTWISE or op == 0:
            for b in _inputs(tape, e):
                if b in shapes and tape.code[W * b + 5] == size:
                    shapes[e] = shapes[b]
                    break
    return shapes


def _known_adjoints(tape: Any, entries: list[int]) -> dict[int, np.ndarray]:
    """Adjoints that backward stored: leaves' ``.grad`` and ``retain_grad`` tensors."""
    out: dict[int, np.ndarray] = {}
    for e in entries:
        imp = tape.imported(e)
        t = None
        if imp is not None and imp[0] == "leaf":
            t = imp[1]
        elif e in tape.retained:
            t = tape.retained[e]()
        if t is not None and t._grad is not None:
            out[e] = t._grad._values()
    return out


def _swept_adjoints(tensor: Tensor, entries: list[int]) -> dict[int, np.ndarray]:
    """d(tensor)/d(entry) for every entry, by one reverse sweep that keeps the graph.

    Nothing is accumulated into any ``.grad``. Raises RuntimeError when the graph was
    freed or the tensor is not a scalar.
    """
    from .tape import run_backward

    if tensor._n != 1:
        raise RuntimeError("tape_listing(adjoints=True): the adjoints are those of a scalar "
                           f"output; this tensor has shape {list(tensor._shape)}")
    tape = tensor._tape
    probes = [SimpleNamespace(_tape=tape, _buf=e, _shape=(tape.size(e),)) for e in entries]
    grads = run_backward([tensor], [np.ones(1)], True, inputs=probes, allow_unused=True)
    return {e: g for e, g in zip(entries, grads) if g is not None}


def tape_listing(tensor: Tensor, names: Mapping[str, Tensor] | None = None,
                 adjoints: bool | None = None) -> str:
    """The Wengert list that computed ``tensor``: one line per entry it depends on.

    Entries are renumbered ``v0, v1, ...`` in tape order; entries the tensor does not
    depend on are left out. Each line shows the op (its name in the op table, with the
    constant of ``*_c`` ops), the value (a number for one element, the shape otherwise)
    and, when known, the adjoint ``grad`` = d(output)/d(entry).

    Args:
        tensor: the tensor to explain. Its graph must still exist: after ``backward()``
            list it only if that call had ``retain_graph=True``.
        names: optional ``{"x1": x1, ...}``; tensors found on the listing get their name
            appended, e.g. ``(x1)``. Leaves not named show ``(leaf)``.
        adjoints: ``None`` shows the adjoints a backward stored (the ``.grad`` of leaves
            and of ``retain_grad()`` tensors); ``True`` computes every entry's adjoint
            with a fresh reverse sweep (scalar output; no ``.grad`` is touched);
            ``False`` shows none.

    >>> import wengert
    >>> x = wengert.tensor(3.0, requires_grad=True)
    >>> print(tape_listing(x.square() * 2 + 1, names={"x": x}))
    v0 = input        3.0000  (x)
    v1 = square v0    9.0000
    v2 = mul_c v1 2  18.0000
    v3 = add_c v2 1  19.0000
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tape_listing: expected a wengert Tensor, got {type(tensor).__name__}")
    label_of: dict[int, str] = {id(t): k for k, t in (names or {}).items()}
    tape = tensor._tape
    if tensor._rg and tensor._swept():
        raise RuntimeError(
            "tape_listing: the graph of this tensor was freed by backward(); call "
            "backward(retain_graph=True) to list it afterwards, or list it before")
    if tape is None:
        v = tensor._values()
        val = _fmt_num(float(v.reshape(-1)[0])) if tensor._n == 1 else _fmt_shape(tensor._shape)
        tag = label_of.get(id(tensor), "leaf" if tensor._rg else "const")
        grad = ""
        if adjoints is not False and tensor._grad is not None and tensor._n == 1:
            grad = f"  grad {_fmt_num(float(tensor._grad._values().reshape(-1)[0]))}"
        return f"v0 = input  {val}{grad}  ({tag})"

    root = tensor._buf
    tape.value(root)  # evaluate what is pending (one forward sweep)
    entries = _dependencies(tape, root)
    number = {e: k for k, e in enumerate(entries)}
    live = _tensors_of(tape)
    live[root] = tensor
    shapes = _shapes(tape, entries, live)

    if adjoints is False:
        adj: dict[int, np.ndarray] = {}
    elif adjoints:
        adj = _swept_adjoints(tensor, entries)
    else:
        adj = _known_adjoints(tape, entries)

    rows = []
    wn = len(f"v{len(entries) - 1}")
    for e in entries:
        op, i0, _i1, _x, _off, size, _rg = tape.code[W * e: W * e + W]
        spec = BY_CODE[op]
        c0, c1 = tape.consts[2 * e], tape.consts[2 * e + 1]
        imp = tape.imported(e)
        tag = ""
        if spec.code == 0:
            lhs = "input" if i0 < 0 else f"input v{number[i0]}"  # i0: a pending in-place value
            if imp is None:
                tag = "const"
            elif imp[0] == "leaf":
                tag = label_of.get(id(imp[1]), "leaf")
            elif imp[0] == "link":
                tag = f"from tape {imp[1].id} entry {imp[2]}"
            else:
                tag = "freed graph"
        else:
            args = [f"v{number[b]}" for b in _inputs(tape, e)]
            if spec.family == "unary_c" or spec.name in _WITH_C0:
                args.append(str(int(c0)) if spec.name == "select" else _fmt_const(c0))
            elif spec.name == "clamp":
                args += [_fmt_const(c0), _fmt_const(c1)]
            lhs = " ".join([spec.name, *args])
        t = live.get(e)
        if t is not None and id(t) in label_of:
            tag = label_of[id(t)]
        if size == 1:
            val = _fmt_num(float(tape.value(e)[0]))
        elif e in shapes:
            val = _fmt_shape(shapes[e])
        else:
            val = f"[{size} values]"
        g = adj.get(e)
        if g is None:
            gs = ""
        elif g.size == 1:
            gs = _fmt_num(float(g.reshape(-1)[0]))
        else:
            gs = _fmt_values(g)
        rows.append((f"{'v' + str(number[e]):<{wn}} = {lhs}", val, gs, tag))

    wl = max(len(r[0]) for r in rows)
    wv = max(len(r[1]) for r in rows)
    wg = max(len(r[2]) for r in rows)
    # Numbers line up on the right; lists of values (array adjoints) start on the left.
    right = all(not r[2].startswith("[") for r in rows)
    lines = []
    for lhs, val, gs, tag in rows:
        line = f"{lhs:<{wl}}  {val:>{wv}}"
        if wg:
            cell = f"{gs:>{wg}}" if right else f"{gs:<{wg}}"
            line += f"  grad {cell}" if gs else " " * (wg + 7)
        if tag:
            line += f"  ({tag})"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _tape_method(self: Tensor, **kwargs: Any) -> None:
    """Print the Wengert list that computed this tensor (see ``tape_listing``).

    >>> import wengert
    >>> x = wengert.tensor(2.0, requires_grad=True)
    >>> (x * x).tape(names={"x": x})
    v0 = input      2.0000  (x)
    v1 = mul v0 v0  4.0000
    """
    print(tape_listing(self, **kwargs))


if not hasattr(Tensor, "tape"):  # the one method this module adds to Tensor
    Tensor.tape = _tape_method  # type: ignore[attr-defined]
