"""Pictures of what autograd recorded, and of optimisation paths.

* ``to_dot`` / ``make_dot``: the backward graph in the style of torchviz, walked through
  ``grad_fn.next_functions``. ``to_dot`` returns DOT text and needs nothing;
  ``make_dot`` returns a ``graphviz.Digraph`` (``pip install graphviz``, plus the ``dot``
  program to render it).
* ``plot_path`` / ``plot_path_3d``: an optimiser's path over the contour lines of a 2-D
  function, or through 3-D space (matplotlib).
* ``progress``: a tqdm progress bar when tqdm is installed, a silent passthrough otherwise.

graphviz, matplotlib and tqdm are optional (the ``viz`` extra); each is imported only
inside the function that needs it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["to_dot", "make_dot", "plot_path", "plot_path_3d", "progress"]

# torchviz's look: boxes, small monospace labels.
NODE_ATTR = {"style": "filled", "shape": "box", "align": "left", "fontsize": "10",
             "ranksep": "0.1", "height": "0.2", "fontname": "monospace"}
GRAPH_ATTR = {"size": "12,12"}
OUTPUT_COLOR = "darkolivegreen1"
LEAF_COLOR = "lightblue"
W = 7  # ints per tape row (see tape.py)


# ---------------------------------------------------------------------- the graph
@dataclass
class _Graph:
    """Nodes (id, label, attributes) and edges (tail id, head id), in discovery order."""

    nodes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)


def _shape_str(shape: Sequence[int]) -> str:
    return str(tuple(int(s) for s in shape))


def _fn_name(fn: Any) -> str:
    return fn.name().replace("torch::autograd::", "")


def _fn_attrs(fn: Any) -> list[tuple[str, str]]:
    """What ``show_attrs`` shows for a node: its tape entry, op and constants."""
    from .listing import _fmt_const
    from .optable import BY_CODE

    tape, e = getattr(fn, "_tape", None), getattr(fn, "_entry", -1)
    if tape is None or e < 0 or e >= tape.n:
        return []
    op = BY_CODE[tape.code[W * e]]
    attrs = [("entry", str(e)), ("op", op.name), ("numel", str(tape.code[W * e + 5]))]
    c0, c1 = tape.consts[2 * e], tape.consts[2 * e + 1]
    if op.family == "unary_c":
        attrs.append(("other", _fmt_const(c0)))
    elif op.name == "clamp":
        attrs += [("min", _fmt_const(c0)), ("max", _fmt_const(c1))]
    elif op.name == "select":
        attrs.append(("index", str(int(c0))))
    return attrs


def _label(name: str, attrs: list[tuple[str, str]]) -> str:
    if not attrs:
        return name
    width = max(len(k) for k, _ in attrs)
    body = [f"{k.ljust(width)}: {v}" for k, v in attrs]
    return "\n".join([name, "-" * max(len(name), *(len(b) for b in body)), *body])


def _build(tensor: Tensor | Sequence[Tensor], params: Mapping[str, Tensor] | None,
           show_attrs: bool) -> _Graph:
    """Walk ``grad_fn.next_functions`` from the output(s) and collect nodes and edges."""
    outputs = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    for t in outputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"to_dot: expected a wengert Tensor, got {type(t).__name__}")
    if params is not None:
        for k, v in params.items():
            if not isinstance(v, Tensor):
                raise TypeError(f"to_dot: params[{k!r}] is a {type(v).__name__}, not a Tensor")
    names = {id(v): k for k, v in (params or {}).items()}
    g = _Graph()
    ids: dict[Any, str] = {}

    def var_label(t: Tensor) -> str:
        name = names.get(id(t), "")
        return f"{name}\n{_shape_str(t.shape)}" if name else _shape_str(t.shape)

    def key_of(fn: Any) -> Any:
        var = getattr(fn, "variable", None)
        if var is not None:
            return ("acc", id(var))
        tape = getattr(fn, "_tape", None)
        if tape is not None:
            return ("fn", id(tape), fn._gen, fn._entry)
        return ("obj", id(fn))

    def node_id(key: Any) -> tuple[str, bool]:
        nid = ids.get(key)
        if nid is not None:
            return nid, False
        nid = ids[key] = f"n{len(ids)}"
        return nid, True

    def add(fn: Any, nid: str) -> None:
        attrs = _fn_attrs(fn) if show_attrs else []
        g.nodes.append((nid, _label(_fn_name(fn), attrs), {}))
        var = getattr(fn, "variable", None)
        if var is not None:  # a leaf: draw the tensor that accumulates the gradient
            vid, vnew = node_id(("var", id(var)))
            if vnew:
                g.nodes.append((vid, var_label(var), {"fillcolor": LEAF_COLOR}))
            g.edges.append((vid, nid))

    def visit(root: Any) -> str:
        # Depth first with an explicit stack: long chains (a loop of 10,000 ops) are fine.
        rid, new = node_id(key_of(root))
        if not new:
            return rid
        add(root, rid)
        stack = [(root, rid)]
        while stack:
            fn, nid = stack.pop()
            for nxt, _ in fn.next_functions:
                if nxt is None:
                    continue
                cid, cnew = node_id(key_of(nxt))
                g.edges.append((cid, nid))
                if cnew:
                    add(nxt, cid)
                    stack.append((nxt, cid))
        return rid

    for out in outputs:
        oid, new = node_id(("var", id(out)))
        if new:
            g.nodes.append((oid, var_label(out), {"fillcolor": OUTPUT_COLOR}))
        fn = out.grad_fn
        if fn is not None:
            g.edges.append((visit(fn), oid))
    return g


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attr_list(attrs: Mapping[str, str]) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def to_dot(tensor: Tensor | Sequence[Tensor], params: Mapping[str, Tensor] | None = None,
           show_attrs: bool = False) -> str:
    """DOT source of the backward graph of ``tensor`` (torchviz's ``make_dot``, as text).

    One box per ``grad_fn`` (``MulBackward0``, ...), a light-blue box per leaf under its
    ``AccumulateGrad`` labelled with its name from ``params`` and its shape, and a green
    box for the output with its shape. Edges go from inputs to the ops that use them.
    Needs no graphviz: render the text with ``dot -Tsvg`` or any DOT viewer.

    Args:
        tensor: the output (or a sequence of outputs) whose graph to draw.
        params: optional ``{"w": w, ...}`` naming leaves (and outputs).
        show_attrs: also show each node's tape entry, op and constants.

    >>> import wengert
    >>> w = wengert.ones(5, 3, requires_grad=True)
    >>> dot = to_dot((w * 2).sum(), params={"w": w})
    >>> "SumBackward0" in dot and '"w\\\\n(5, 3)"' in dot
    True
    """
    g = _build(tensor, params, show_attrs)
    lines = ["digraph {", f"\tgraph [{_attr_list(GRAPH_ATTR)}]",
             f"\tnode [{_attr_list(NODE_ATTR)}]"]
    for nid, label, attrs in g.nodes:
        extra = (" " + _attr_list(attrs)) if attrs else ""
        lines.append(f"\t{nid} [label={_quote(label)}{extra}]")
    lines += [f"\t{a} -> {b}" for a, b in g.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


_GRAPHVIZ_MISSING = (
    "make_dot needs the Python package 'graphviz': pip install graphviz (or "
    "pip install 'wengert[viz]'). Rendering also needs the Graphviz 'dot' program "
    "(Debian/Ubuntu: apt-get install graphviz). to_dot() gives the DOT text without either.")


def make_dot(tensor: Tensor | Sequence[Tensor], params: Mapping[str, Tensor] | None = None,
             show_attrs: bool = False) -> Any:
    """The backward graph of ``tensor`` as a ``graphviz.Digraph`` (like torchviz's).

    Same nodes and edges as ``to_dot``. Needs the optional ``graphviz`` package; rendering
    (``.render()``, ``.pipe()``, display in a notebook) also needs Graphviz's ``dot``.

    >>> import wengert
    >>> x = wengert.tensor(2.0, requires_grad=True)
    >>> g = make_dot(x * x, params={"x": x})   # doctest: +SKIP
    >>> g.render("graph", format="svg")        # doctest: +SKIP
    """
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(_GRAPHVIZ_MISSING) from err
    g = _build(tensor, params, show_attrs)
    dot = graphviz.Digraph(node_attr=dict(NODE_ATTR), graph_attr=dict(GRAPH_ATTR))
    for nid, label, attrs in g.nodes:
        # graphviz quotes the label itself; "\n" must reach DOT as its escape sequence.
        dot.node(nid, label.replace("\\", "\\\\").replace("\n", "\\n"), **attrs)
    for a, b in g.edges:
        dot.edge(a, b)
    return dot


# ---------------------------------------------------------------------- plots
def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install matplotlib (or "
                          "pip install 'wengert[viz]')") from err
    return plt


def _points(path: Any, dim: int) -> np.ndarray:
    """An (N, dim) float array from a tensor, an array, or a list of points/tensors."""
    if isinstance(path, Tensor):
        arr = path.detach().numpy()
    else:
        arr = np.asarray([p.detach().numpy() if isinstance(p, Tensor) else np.asarray(p, float)
                          for p in path], dtype=float)
    arr = np.asarray(arr, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected a path of {dim}-D points, shape (N, {dim}); got an array "
                         f"of shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("the path is empty")
    return arr


def _n_positional(f: Callable[..., Any]) -> int | None:
    """How many positional arguments ``f`` requires (None if unknown or variadic)."""
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
    return n


def _to_numpy(v: Any) -> np.ndarray:
    if isinstance(v, Tensor):
        return v.detach().numpy().astype(float)
    return np.asarray(v, dtype=float)


def _evaluate_grid(f: Callable[..., Any], X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``f`` on the grid: ``f(X, Y)`` for numpy-style functions of two arguments,
    otherwise ``f(p)`` with ``p`` a wengert tensor ``[x, y]`` (one vectorised call on a
    ``(2, ny, nx)`` tensor when ``f`` is elementwise, else point by point)."""
    from . import autograd
    from .creation import tensor as _tensor

    n = _n_positional(f)
    if n is None or n >= 2:
        try:
            Z = _to_numpy(f(X, Y))
            if Z.shape == X.shape:
                return Z
        except Exception:
            if n is not None:
                raise
    def at(x: float, y: float) -> float:
        return float(_to_numpy(f(_tensor([x, y]))).reshape(-1)[0])

    with autograd.no_grad():
        try:  # Rosenbrock-style code indexes p[0], p[1]: works on whole grids at once
            Z = _to_numpy(f(_tensor(np.stack([X, Y]))))
            # A function that reduces (p.sum(), p @ p) would silently mix grid points:
            # trust the vectorised call only if it agrees with a few single points.
            probe = [(0, 0), (-1, -1), (X.shape[0] // 3, X.shape[1] // 2)]
            if Z.shape == X.shape and all(
                    np.isclose(Z[i], at(X[i], Y[i]), rtol=1e-9, atol=1e-12, equal_nan=True)
                    for i in probe):
                return Z
        except Exception:  # fall back to one point at a time
            pass
        Z = np.empty(X.shape)
        for idx in np.ndindex(X.shape):
            Z[idx] = at(X[idx], Y[idx])
    return Z


def plot_path(f: Callable[..., Any], path: Any, levels: int | Sequence[float] = 20,
              ax: Any = None, *, xlim: tuple[float, float] | None = None,
              ylim: tuple[float, float] | None = None, grid: int = 100,
              log_levels: bool = False, cmap: str = "viridis", color: str = "red",
              marker: str = ".", labels: bool = True,
              axis_labels: tuple[str, str] = ("x1", "x2"), title: str | None = None) -> Any:
    """Contour lines of a 2-D function with an optimisation path drawn over them.

    Args:
        f: the function. Either numpy-style ``f(x, y)`` taking two grids, or a
            wengert-style ``f(p)`` of a length-2 tensor (``p[0]``, ``p[1]``, or
            ``x, y = p``); the latter is tried on the whole grid at once, then point by
            point.
        path: the visited points, shape ``(N, 2)``: a tensor, an array, or a list of
            tensors/pairs.
        levels: number of contour levels, or the levels themselves.
        ax: an existing matplotlib Axes to draw on (a new figure otherwise).
        xlim, ylim: the plotted window (default: the path's extent, padded).
        grid: grid points per axis.
        log_levels: space an integer number of levels geometrically (for functions like
            Rosenbrock's, whose valley is much flatter than its walls).
        cmap, color, marker: contour colour map; colour and marker of the path.
        labels: write "Initial" and "Final" at the ends of the path.
        axis_labels, title: axis names and an optional title.

    Returns:
        The matplotlib Figure.

    >>> import numpy as np
    >>> path = np.array([[-1.5, 1.5], [-0.5, 0.5], [0.0, 0.0]])
    >>> fig = plot_path(lambda x, y: 0.2 * x**2 + 0.2 * y**2 - 5, path)  # doctest: +SKIP
    """
    plt = _pyplot()
    pts = _points(path, 2)
    if xlim is None or ylim is None:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = np.maximum(0.25 * (hi - lo), 0.5)
        xlim = xlim or (float(lo[0] - pad[0]), float(hi[0] + pad[0]))
        ylim = ylim or (float(lo[1] - pad[1]), float(hi[1] + pad[1]))
    xs = np.linspace(xlim[0], xlim[1], grid)
    ys = np.linspace(ylim[0], ylim[1], grid)
    X, Y = np.meshgrid(xs, ys)
    Z = _evaluate_grid(f, X, Y)
    if log_levels and isinstance(levels, int):
        zmin = float(np.nanmin(Z))
        shift = 1e-3 * max(float(np.nanmax(Z)) - zmin, 1e-12)
        levels = list(zmin + np.geomspace(shift, float(np.nanmax(Z)) - zmin + shift, levels)
                      - shift)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    cs = ax.contour(X, Y, Z, levels=levels, cmap=cmap)
    ax.clabel(cs, inline=True, fontsize=7, fmt="%.3g")
    ax.plot(pts[:, 0], pts[:, 1], color=color, marker=marker, markersize=3, linewidth=1)
    if labels:
        ax.annotate("Initial", pts[0], color="red", textcoords="offset points", xytext=(4, 4))
        ax.annotate("Final", pts[-1], color="green", textcoords="offset points",
                    xytext=(4, 4))
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title:
        ax.set_title(title)
    return fig


def plot_path_3d(path: Any, ax: Any = None, *, s: float = 2, cmap: str = "viridis",
                 view: tuple[float, float] | None = None,
                 xlim: tuple[float, float] | None = None,
                 ylim: tuple[float, float] | None = None,
                 zlim: tuple[float, float] | None = None,
                 axis_labels: tuple[str, str, str] = ("X", "Y", "Z"),
                 title: str | None = None) -> Any:
    """A 3-variable optimisation path: points coloured by step, "Initial" and "Final".

    Args:
        path: the visited points, shape ``(N, 3)`` (tensor, array or list of tensors).
        ax: an existing 3-D Axes (``projection="3d"``); a new figure otherwise.
        s, cmap: marker size and colour map (early steps dark, late steps bright).
        view: ``(elevation, azimuth)`` in degrees for ``ax.view_init``.
        xlim, ylim, zlim: axis limits (default: matplotlib's).
        axis_labels, title: axis names and an optional title.

    Returns:
        The matplotlib Figure.

    >>> import numpy as np
    >>> fig = plot_path_3d(np.linspace(0, 1, 30)[:, None] * [-1, 1, 1])  # doctest: +SKIP
    """
    plt = _pyplot()
    pts = _points(path, 3)
    if ax is None:
        fig = plt.figure(figsize=(6, 5))
        ax = fig.add_subplot(projection="3d")
    else:
        fig = ax.figure
    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], c=np.arange(len(pts)), s=s, cmap=cmap)
    ax.text(*pts[0], "Initial", color="red")
    ax.text(*pts[-1], "Final", color="green")
    if view is not None:
        ax.view_init(*view)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_zlabel(axis_labels[2])
    if xlim is not None:
        ax.set_xlim(xlim)
    if ylim is not None:
        ax.set_ylim(ylim)
    if zlim is not None:
        ax.set_zlim(zlim)
    if title:
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------- progress
def progress(iterable: Iterable[Any], enabled: bool = True, **kw: Any) -> Iterable[Any]:
    """``iterable`` wrapped in a tqdm progress bar, when tqdm is installed and ``enabled``.

    Otherwise ``iterable`` itself, unchanged and silent. Keyword arguments go to tqdm
    (``desc=``, ``total=``, ``leave=``, ...).

    >>> list(progress(range(3), enabled=False))
    [0, 1, 2]
    """
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **kw)
