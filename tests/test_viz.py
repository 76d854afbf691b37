"""The inspection layer: DOT graphs, tape listings, plots and progress bars."""

from __future__ import annotations

import re
import sys
from collections import Counter

import numpy as np
import pytest

import wengert
from wengert import viz
from wengert.listing import tape_listing

# ---------------------------------------------------------------------- helpers
_NODE = re.compile(r'^\t(\w+) \[label=("(?:[^"\\]|\\.)*"|[^ \]]+)(.*)\]$')
_EDGE = re.compile(r"^\t(\w+) -> (\w+)$")


def parse_dot(src: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Node id -> label (with real newlines), and the edges, from DOT text."""
    nodes, edges = {}, []
    for line in src.splitlines():
        m = _EDGE.match(line)
        if m:
            edges.append((m.group(1), m.group(2)))
            continue
        m = _NODE.match(line)
        if m:
            label = m.group(2)
            if label.startswith('"'):
                label = label[1:-1].replace("\\n", "\n").replace('\\"', '"')
            nodes[m.group(1)] = label
    return nodes, edges


def labelled(src: str) -> tuple[Counter, Counter]:
    """Multisets of node labels and of (tail label, head label) edges."""
    nodes, edges = parse_dot(src)
    return Counter(nodes.values()), Counter((nodes[a], nodes[b]) for a, b in edges)


def story():
    """The x1..x7 example: f(x1, x2) = 0.2 x1^2 + 0.2 x2^2 - 5 at (2, 2)."""
    x1 = wengert.tensor(2.0, requires_grad=True)
    x2 = wengert.tensor(2.0, requires_grad=True)
    x3 = x1.square()
    x5 = x3 * 0.2
    x4 = x2.square()
    x6 = x4 * 0.2
    x7 = x5 + x6 - 5
    return dict(x1=x1, x2=x2, x3=x3, x4=x4, x5=x5, x6=x6, x7=x7)


def two_by_two():
    """The 2x2 graph: out = mean(3 * (x1 * (x2 + 2))^2), with y and z retained."""
    x1 = wengert.ones(2, 2, requires_grad=True)
    x2 = wengert.tensor(1.1, requires_grad=True)
    y = x1 * (x2 + 2)
    y.retain_grad()
    z = y.pow(2) * 3
    z.retain_grad()
    out = z.mean()
    return dict(x1=x1, x2=x2, y=y, z=z, out=out)


# ---------------------------------------------------------------------- DOT
def test_dot_x1_to_x7():
    v = story()
    nodes, edges = labelled(viz.to_dot(v["x7"], params={"x1": v["x1"], "x2": v["x2"]}))
    assert nodes == Counter({"()": 1, "SubBackward0": 1, "AddBackward0": 1, "MulBackward0": 2,
                             "PowBackward0": 2, "AccumulateGrad": 2, "x1\n()": 1, "x2\n()": 1})
    assert edges == Counter({
        ("x1\n()", "AccumulateGrad"): 1, ("x2\n()", "AccumulateGrad"): 1,
        ("AccumulateGrad", "PowBackward0"): 2, ("PowBackward0", "MulBackward0"): 2,
        ("MulBackward0", "AddBackward0"): 2, ("AddBackward0", "SubBackward0"): 1,
        ("SubBackward0", "()"): 1})


def test_dot_x1_to_x7_chains_are_separate():
    v = story()
    ids, edges = parse_dot(viz.to_dot(v["x7"], params={"x1": v["x1"], "x2": v["x2"]}))
    into: dict[str, list[str]] = {}
    for a, b in edges:
        into.setdefault(b, []).append(a)
    add = next(k for k, lab in ids.items() if lab == "AddBackward0")
    leaves = []
    for mul in into[add]:
        (pow_,) = into[mul]
        (acc,) = into[pow_]
        (var,) = into[acc]
        assert (ids[mul], ids[pow_], ids[acc]) == ("MulBackward0", "PowBackward0",
                                                   "AccumulateGrad")
        leaves.append(ids[var])
    assert sorted(leaves) == ["x1\n()", "x2\n()"]


def test_dot_two_by_two():
    v = two_by_two()
    src = viz.to_dot(v["out"], params={"x1": v["x1"], "x2": v["x2"]})
    nodes, edges = labelled(src)
    assert nodes == Counter({"()": 1, "MeanBackward0": 1, "MulBackward0": 2, "PowBackward0": 1,
                             "AddBackward0": 1, "AccumulateGrad": 2, "x1\n(2, 2)": 1,
                             "x2\n()": 1})
    assert edges == Counter({
        ("x1\n(2, 2)", "AccumulateGrad"): 1, ("x2\n()", "AccumulateGrad"): 1,
        ("AccumulateGrad", "AddBackward0"): 1, ("AccumulateGrad", "MulBackward0"): 1,
        ("AddBackward0", "MulBackward0"): 1, ("MulBackward0", "PowBackward0"): 1,
        ("PowBackward0", "MulBackward0"): 1, ("MulBackward0", "MeanBackward0"): 1,
        ("MeanBackward0", "()"): 1})
    assert 'fillcolor="lightblue"' in src and 'fillcolor="darkolivegreen1"' in src


def test_dot_layer_with_named_params_and_reused_leaf():
    x = wengert.ones(5)
    w = wengert.ones(5, 3, requires_grad=True)
    b = wengert.zeros(3, requires_grad=True)
    z = wengert.matmul(x, w) + b
    loss = (z * z + w.sum()).mean()  # w used twice: one AccumulateGrad, two edges out
    src = viz.to_dot(loss, params={"w": w, "b": b})
    assert '"w\\n(5, 3)"' in src and '"b\\n(3,)"' in src
    nodes, edges = labelled(src)
    assert nodes["AccumulateGrad"] == 2 and nodes["w\n(5, 3)"] == 1
    assert sum(n for (a, _), n in edges.items() if a == "AccumulateGrad") == 3


def test_dot_leaf_output_and_several_outputs():
    x = wengert.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = labelled(viz.to_dot(x, params={"x": x}))
    assert nodes == Counter({"x\n(2,)": 1}) and not edges
    a, b = x * 2, x.exp()
    nodes, edges = labelled(viz.to_dot([a, b], params={"x": x}))
    assert nodes["(2,)"] == 2 and nodes["AccumulateGrad"] == 1
    assert edges[("AccumulateGrad", "MulBackward0")] == 1
    assert edges[("AccumulateGrad", "ExpBackward0")] == 1


def test_dot_show_attrs_and_bad_params():
    v = story()
    src = viz.to_dot(v["x7"], show_attrs=True)
    assert "other: 0.2" in src and "op   : sub_c" in src
    with pytest.raises(TypeError, match="params"):
        viz.to_dot(v["x7"], params={"x1": 2.0})
    with pytest.raises(TypeError):
        viz.to_dot(2.0)


def test_dot_after_backward_without_retain_shows_freed_graph():
    v = story()
    v["x7"].backward()
    nodes, edges = labelled(viz.to_dot(v["x7"]))
    assert nodes == Counter({"()": 1, "SubBackward0": 1})  # the graph is gone, as in PyTorch


def test_make_dot_matches_to_dot():
    pytest.importorskip("graphviz")
    v = two_by_two()
    params = {"x1": v["x1"], "x2": v["x2"]}
    g = viz.make_dot(v["out"], params=params)
    assert labelled(g.source) == labelled(viz.to_dot(v["out"], params=params))


def test_make_dot_without_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    v = story()
    with pytest.raises(ImportError, match="pip install graphviz") as err:
        viz.make_dot(v["x7"])
    assert "apt-get install graphviz" in str(err.value)


# ---------------------------------------------------------------------- tape listing
GOLDEN_X7 = """\
v0 = input          2.0000  (x1)
v1 = square v0      4.0000  (x3)
v2 = mul_c v1 0.2   0.8000  (x5)
v3 = input          2.0000  (x2)
v4 = square v3      4.0000  (x4)
v5 = mul_c v4 0.2   0.8000  (x6)
v6 = add v2 v5      1.6000
v7 = sub_c v6 5    -3.4000  (x7)"""

GOLDEN_X7_RETAINED = """\
v0 = input          2.0000  grad 0.8000  (x1)
v1 = square v0      4.0000  grad 0.2000  (x3)
v2 = mul_c v1 0.2   0.8000  grad 1.0000  (x5)
v3 = input          2.0000  grad 0.8000  (x2)
v4 = square v3      4.0000  grad 0.2000  (x4)
v5 = mul_c v4 0.2   0.8000  grad 1.0000  (x6)
v6 = add v2 v5      1.6000
v7 = sub_c v6 5    -3.4000               (x7)"""

GOLDEN_X7_SWEPT = """\
v0 = input          2.0000  grad 0.8000  (x1)
v1 = square v0      4.0000  grad 0.2000  (x3)
v2 = mul_c v1 0.2   0.8000  grad 1.0000  (x5)
v3 = input          2.0000  grad 0.8000  (x2)
v4 = square v3      4.0000  grad 0.2000  (x4)
v5 = mul_c v4 0.2   0.8000  grad 1.0000  (x6)
v6 = add v2 v5      1.6000  grad 1.0000
v7 = sub_c v6 5    -3.4000  grad 1.0000  (x7)"""


def test_listing_x1_to_x7_golden():
    v = story()
    assert tape_listing(v["x7"], names=v) == GOLDEN_X7


def test_listing_x1_to_x7_adjoints_after_retained_backward():
    v = story()
    for k in ("x3", "x4", "x5", "x6"):
        v[k].retain_grad()
    v["x7"].backward(retain_graph=True)
    assert tape_listing(v["x7"], names=v) == GOLDEN_X7_RETAINED
    assert tape_listing(v["x7"], names=v, adjoints=True) == GOLDEN_X7_SWEPT
    assert "grad" not in tape_listing(v["x7"], names=v, adjoints=False)
    assert v["x1"].grad.item() == pytest.approx(0.8)  # the extra sweep touched no .grad


def test_listing_swept_adjoints_before_backward_touch_nothing():
    v = story()
    assert tape_listing(v["x7"], names=v, adjoints=True) == GOLDEN_X7_SWEPT
    assert v["x1"].grad is None
    v["x7"].backward()  # the graph is still whole
    assert v["x1"].grad.item() == pytest.approx(0.8)


def test_listing_skips_entries_not_depended_on():
    a = wengert.tensor(1.5, requires_grad=True)
    b = wengert.tensor(3.0, requires_grad=True)
    unrelated = b.exp()
    y = a * 2
    also_unrelated = unrelated + 1
    z = y.sin()
    text = tape_listing(z, names={"a": a})
    assert text.splitlines() == [
        "v0 = input       1.5000  (a)",
        "v1 = mul_c v0 2  3.0000",
        "v2 = sin v1      0.1411",
    ]
    assert also_unrelated.item() == pytest.approx(np.exp(3.0) + 1)


def test_listing_two_by_two_shapes_and_adjoints():
    v = two_by_two()
    names = {k: v[k] for k in ("x1", "x2", "y", "z")}
    v["out"].backward(retain_graph=True)
    assert tape_listing(v["out"], names=names).splitlines() == [
        "v0 = input        1.1000  grad 18.6000                               (x2)",
        "v1 = add_c v0 2   3.1000",
        "v2 = input        (2, 2)  grad [14.4150, 14.4150, 14.4150, 14.4150]  (x1)",
        "v3 = mul v2 v1    (2, 2)  grad [4.6500, 4.6500, 4.6500, 4.6500]      (y)",
        "v4 = square v3    (2, 2)",
        "v5 = mul_c v4 3   (2, 2)  grad [0.2500, 0.2500, 0.2500, 0.2500]      (z)",
        "v6 = mean v5     28.8300",
    ]


def test_listing_structural_inputs_cat_and_where():
    a = wengert.tensor([1.0, -2.0], requires_grad=True)
    b = wengert.tensor([3.0, 4.0], requires_grad=True)
    s = wengert.stack([a, b.exp()]).sum()
    lines = tape_listing(s, names={"a": a, "b": b}).splitlines()
    assert lines[0].startswith("v0 = input") and lines[0].endswith("(b)")
    assert lines[1].startswith("v1 = exp v0")
    assert lines[2].startswith("v2 = input") and lines[2].endswith("(a)")
    assert lines[3].startswith("v3 = cat v2 v1")  # stack's inputs live in aux
    assert lines[4].startswith("v4 = sum v3")
    w = wengert.where(a > 0, a, b)
    text = tape_listing(w, names={"a": a, "b": b})
    va = re.search(r"(v\d+) = input .*\(a\)", text).group(1)
    vb = re.search(r"(v\d+) = input .*\(b\)", text).group(1)
    vc = re.search(rf"(v\d+) = gt_c {va} 0 ", text).group(1)
    assert re.search(rf"= where {vc} {va} {vb} ", text), text  # the condition from aux


def test_listing_of_leaves_constants_and_freed_graphs():
    x = wengert.tensor(2.0, requires_grad=True)
    assert tape_listing(x, names={"x": x}) == "v0 = input  2.0000  (x)"
    c = wengert.ones(3)
    assert tape_listing(c) == "v0 = input  (3,)  (const)"
    y = x * x
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        tape_listing(y)
    with pytest.raises(TypeError):
        tape_listing(2.0)


def test_tensor_tape_method_prints_the_listing(capsys):
    v = story()
    assert v["x7"].tape(names=v) is None
    assert capsys.readouterr().out == GOLDEN_X7 + "\n"
    assert wengert.tape_listing is tape_listing


# ---------------------------------------------------------------------- plots
@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def rosenbrock(x):
    x1, x2 = x[0], x[1]
    return (1 - x1) ** 2 + 5 * (x2 - x1 ** 2) ** 2


def descend(f, start, lr, steps):
    x = wengert.tensor(start, requires_grad=True)
    path = []
    for _ in range(steps):
        path.append(x.detach().clone())
        f(x).backward()
        with wengert.no_grad():
            x.sub_(lr * x.grad)
            x.grad.zero_()
    path.append(x.detach().clone())
    return path


def _contours(ax):
    from matplotlib.contour import ContourSet

    return [c for c in ax.collections if isinstance(c, ContourSet)]


def test_plot_path_numpy_function(plt):
    path = np.array([[2.0, 2.0], [1.2, 1.2], [0.7, 0.7], [0.0, 0.0]])
    fig = viz.plot_path(lambda x, y: 0.2 * x ** 2 + 0.2 * y ** 2 - 5, path, levels=10)
    assert isinstance(fig, plt.Figure)
    (ax,) = fig.axes
    (cs,) = _contours(ax)
    assert len(cs.levels) >= 5
    (line,) = ax.lines
    np.testing.assert_allclose(np.c_[line.get_xdata(), line.get_ydata()], path)
    assert {t.get_text() for t in ax.texts} >= {"Initial", "Final"}


def test_plot_path_tensor_function_matches_numpy(plt):
    path = descend(rosenbrock, [-1.0, 1.0], 0.01, 200)
    fig = viz.plot_path(rosenbrock, path, levels=[0.1, 1.0, 3.0, 10.0], grid=40)
    (ax,) = fig.axes
    (cs,) = _contours(ax)
    np.testing.assert_allclose(cs.levels, [0.1, 1.0, 3.0, 10.0])
    (line,) = ax.lines
    assert len(line.get_xdata()) == 201
    assert line.get_xdata()[-1] == pytest.approx(path[-1][0].item())
    # The contour data equals the numpy evaluation of the same function.
    xs = np.linspace(*ax.get_xlim(), 40)
    ys = np.linspace(*ax.get_ylim(), 40)
    X, Y = np.meshgrid(xs, ys)
    Z = viz._evaluate_grid(rosenbrock, X, Y)
    np.testing.assert_allclose(Z, (1 - X) ** 2 + 5 * (Y - X ** 2) ** 2, rtol=1e-12)


def test_plot_path_reducing_function_is_evaluated_point_by_point(plt):
    X, Y = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-2, 2, 5))
    Z = viz._evaluate_grid(lambda p: (p * p).sum(), X, Y)  # would mix points if vectorised
    np.testing.assert_allclose(Z, X ** 2 + Y ** 2)
    Z = viz._evaluate_grid(lambda p: p @ p, X, Y)
    np.testing.assert_allclose(Z, X ** 2 + Y ** 2)


def test_plot_path_on_given_axes_with_log_levels(plt):
    fig, (a0, a1) = plt.subplots(1, 2)
    out = viz.plot_path(rosenbrock, [[-1.0, 1.0], [1.0, 1.0]], ax=a1, levels=12,
                        log_levels=True, grid=30, title="Rosenbrock")
    assert out is fig and not a0.collections and _contours(a1)
    levels = _contours(a1)[0].levels
    assert np.all(np.diff(np.diff(levels)) > 0)  # geometric spacing widens
    assert a1.get_title() == "Rosenbrock"
    with pytest.raises(ValueError, match="2-D points"):
        viz.plot_path(rosenbrock, np.zeros((3, 3)))


def test_plot_path_3d(plt):
    from mpl_toolkits.mplot3d.art3d import Path3DCollection

    pts = np.linspace(0.0, 1.0, 25)[:, None] * np.array([-1.0, 1.0, 1.0])
    path = [wengert.tensor(p) for p in pts]
    fig = viz.plot_path_3d(path, view=(0, 50), xlim=(-1, 0), ylim=(0, 1), zlim=(0, 1))
    (ax,) = fig.axes
    assert ax.name == "3d"
    (sc,) = [c for c in ax.collections if isinstance(c, Path3DCollection)]
    assert len(sc.get_array()) == 25  # coloured by step
    assert [t.get_text() for t in ax.texts] == ["Initial", "Final"]
    assert ax.get_xlim() == (-1, 0)


def test_plots_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        viz.plot_path(rosenbrock, [[0.0, 0.0]])
    with pytest.raises(ImportError, match="pip install matplotlib"):
        viz.plot_path_3d([[0.0, 0.0, 0.0]])


# ---------------------------------------------------------------------- progress
def test_progress_with_tqdm():
    tqdm = pytest.importorskip("tqdm")
    bar = viz.progress(range(4), desc="steps", disable=True)
    assert isinstance(bar, tqdm.tqdm)
    assert list(bar) == [0, 1, 2, 3]


def test_progress_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    items = [1, 2, 3]
    assert viz.progress(items, desc="ignored") is items


def test_progress_disabled_is_passthrough():
    items = range(3)
    assert viz.progress(items, enabled=False) is items


def test_dot_and_listing_of_a_long_chain():
    x = wengert.tensor(1.0, requires_grad=True)
    s = x
    for _ in range(3000):  # deeper than Python's recursion limit
        s = s * 1.0001 + x
    nodes, edges = labelled(viz.to_dot(s, params={"x": x}))
    assert nodes["MulBackward0"] == 3000 and nodes["AddBackward0"] == 3000
    assert nodes["AccumulateGrad"] == 1
    assert edges[("AccumulateGrad", "AddBackward0")] == 3000
    lines = tape_listing(s, names={"x": x}).splitlines()
    assert len(lines) == 6001 and lines[-1].startswith("v6000 = add v5999 v0")
