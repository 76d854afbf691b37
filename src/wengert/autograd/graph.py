"""``grad_fn`` objects: views of tape entries with PyTorch's names."""

from __future__ import annotations

from typing import Any

from ..optable import BY_CODE

W, RG = 7, 6  # row width and rg column of tape.code (see tape.py)

_classes: dict[str, type] = {}


class Node:
    """A backward function of the graph, like ``torch.autograd.graph.Node``.

    >>> import wengert
    >>> x = wengert.tensor(2.0, requires_grad=True)
    >>> (x * 3).grad_fn.name()
    'MulBackward0'
    """

    __slots__ = ("_tape", "_entry", "_name", "_gen")

    def name(self) -> str:
        """The PyTorch-style name, e.g. ``'SubBackward0'``."""
        return self._name

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        """One ``(node or None, 0)`` pair per input, as in PyTorch."""
        tape, e = self._tape, self._entry
        if tape is None or tape.gen != self._gen or e >= tape.n:
            return ()  # the graph was freed and its tape reused
        op, i0, i1, x = tape.code[W * e: W * e + 4]
        spec = BY_CODE[op]
        if spec.name == "cat":
            bufs = [tape.aux[x + 3 + 2 * q] for q in range(tape.aux[x + 2])]
        elif spec.name == "where":
            bufs = [-1, i0, i1]
        else:
            bufs = [i0] + ([i1] if i1 >= 0 else [])
            if spec.family == "unary_c" and spec.name in ("add_c", "sub_c", "mul_c", "div_c"):
                bufs.append(-1)  # the Python number, as PyTorch shows it
        return tuple((node_for_buffer(tape, b), 0) for b in bufs)

    def __repr__(self) -> str:
        return f"<{self._name} object at {hex(id(self))}>"


class AccumulateGrad(Node):
    """The node that accumulates into a leaf's ``.grad``."""

    __slots__ = ("variable",)

    def name(self) -> str:
        """PyTorch's name for the node."""
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        """A leaf has no inputs: ``()``."""
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


def make_node(name: str, tape: Any, entry: int) -> Node:
    """A ``grad_fn`` node of class ``name`` for entry ``entry`` of ``tape``."""
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = type(name, (Node,), {"__slots__": ()})
    n = cls.__new__(cls)
    n._tape, n._entry, n._name = tape, entry, name
    n._gen = tape.gen if tape is not None else -1
    return n


def entry_name(tape: Any, e: int) -> str | None:
    """The grad_fn name of entry ``e`` (None for an internal entry)."""
    if e in tape.names:
        return tape.names[e]
    return BY_CODE[tape.code[W * e]].grad_fn


def node_for_buffer(tape: Any, buf: int) -> Node | None:
    """The node that produced entry ``buf`` (None for non-differentiable inputs)."""
    if buf < 0 or not tape.code[W * buf + RG]:
        return None
    imp = tape.imported(buf)
    if imp is not None:
        if imp[0] == "leaf":
            acc = AccumulateGrad.__new__(AccumulateGrad)
            acc._tape, acc._entry, acc._name, acc._gen = None, -1, "AccumulateGrad", -1
            acc.variable = imp[1]
            return acc
        if imp[0] == "link":
            return node_for_buffer(imp[1], imp[2])
        t = imp[1]
        return make_node(t._gfn, None, -1)
    if tape.code[W * buf] == 0:  # an import without a gradient link
        return None
    name = entry_name(tape, buf)
    if name is None:  # internal entry (e.g. broadcasting): look through it
        return node_for_buffer(tape, tape.code[W * buf + 1])
    return make_node(name, tape, buf)
