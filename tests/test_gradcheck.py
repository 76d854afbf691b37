"""Every differentiable op of the table against central finite differences.

The parameters come from ``wengert.optable.OPS``: elementwise rows are checked on
scalars, vectors, matrices and broadcasting pairs; structural rows bring their cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check

import wengert
from wengert.optable import BINARY, LEAF, OPS, STRUCT, UNARY, UNARY_C
from wengert.tensor import _record_binary, _record_unary, float64

# Operands longer than _vm.SHORT (8) run the vectorised *_v kernels, shorter ones *_s.
UNARY_SHAPES = [(), (3,), (2, 3), (17,)]
BINARY_SHAPES = [((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), ()), ((), (4,)),
                 ((2, 1), (1, 3)), ((4, 3), (3,)), ((3, 1), (3, 4)),
                 ((17,), (17,)), ((17,), ()), ((), (17,)), ((3, 6), (6,)),
                 # broadcast by rows (no EXPAND entry), rows longer than SHORT: a row
                 # repeated, a column repeated, both; a middle axis still uses EXPAND
                 ((4, 12), (12,)), ((12,), (4, 12)), ((2, 3, 10), (1, 10)), ((10, 1), (10, 9)),
                 ((3, 1), (1, 12)), ((2, 1, 3), (4, 1))]


def _sample(shape: tuple, domain: tuple, rng: np.random.Generator) -> np.ndarray:
    lo, hi = domain
    return rng.uniform(lo, hi, size=shape)


def _elementwise_fn(spec):
    if spec.family == UNARY:
        c0, c1 = (-0.5, 0.5) if spec.name == "clamp" else (0.25, 0.0)
        return lambda x: _record_unary(spec.code, x, c0, c1)
    if spec.family == UNARY_C:
        return lambda x: _record_unary(spec.code, x, spec.test_const)
    return lambda a, b: _record_binary(spec.code, a, b, spec.name, float64)


DIFF_UNARY = [s for s in OPS if s.family in (UNARY, UNARY_C) and s.differentiable
              and s.name != "fill"]
DIFF_BINARY = [s for s in OPS if s.family == BINARY and s.differentiable]


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("spec", DIFF_UNARY, ids=lambda s: s.name)
def test_unary_gradients(spec, shape):
    rng = np.random.default_rng(spec.code)
    check(_elementwise_fn(spec), [_sample(shape, spec.domain, rng)])


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("spec", DIFF_BINARY, ids=lambda s: s.name)
def test_binary_gradients(spec, shapes):
    rng = np.random.default_rng(spec.code)
    domain = spec.domain
    if spec.name == "bce_logits":  # the target is a probability
        arrays = [_sample(shapes[0], (-3, 3), rng), _sample(shapes[1], (0, 1), rng)]
    else:
        arrays = [_sample(s, domain, rng) for s in shapes]
    check(_elementwise_fn(spec), arrays)


STRUCT_CASES = [(s, c) for s in OPS if s.family == STRUCT for c in s.cases]


@pytest.mark.parametrize("spec,case", STRUCT_CASES,
                         ids=[f"{s.name}-{c[0]}" for s, c in STRUCT_CASES])
def test_struct_gradients(spec, case):
    _, fn, shapes, domain = case
    rng = np.random.default_rng(spec.code)
    check(fn, [_sample(s, domain or (-2.0, 2.0), rng) for s in shapes])


# Forward values against numpy (elementwise rows with a numpy counterpart).
NUMPY_REF = {
    "neg": np.negative, "abs": np.abs, "square": np.square, "sqrt": np.sqrt, "exp": np.exp,
    "log": np.log, "log1p": np.log1p, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0), "reciprocal": np.reciprocal,
    "softplus": lambda x: np.log1p(np.exp(x)), "logsigmoid": lambda x: -np.log1p(np.exp(-x)),
    "sign": np.sign, "clamp": lambda x: np.clip(x, -0.5, 0.5),
    "fill": lambda x: np.full_like(x, 0.25),
    "add_c": lambda x: x + 1.5, "sub_c": lambda x: x - 1.5, "rsub_c": lambda x: 1.5 - x,
    "mul_c": lambda x: x * 1.5, "div_c": lambda x: x / 1.5, "rdiv_c": lambda x: 1.5 / x,
    "pow_c": lambda x: x ** 2.5, "rpow_c": lambda x: 1.5 ** x,
    "lt_c": lambda x: x < 1.5, "le_c": lambda x: x <= 1.5, "gt_c": lambda x: x > 1.5,
    "ge_c": lambda x: x >= 1.5, "eq_c": lambda x: x == 1.5, "ne_c": lambda x: x != 1.5,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "bce_logits": lambda x, y: np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))),
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or,
}
ELEMENTWISE = [s for s in OPS if s.family not in (STRUCT, LEAF)]


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
def test_elementwise_forward_matches_numpy(spec):
    assert spec.name in NUMPY_REF, f"add a numpy reference for {spec.name}"
    rng = np.random.default_rng(1)
    ref = NUMPY_REF[spec.name]
    if spec.family in (UNARY, UNARY_C):
        x = _sample((2, 15), spec.domain, rng)  # long rows: the *_v kernels too
        x[0, 0] = 1.5  # hit the equality branch of comparisons
        if spec.family == UNARY_C:
            got = _record_unary(spec.code, wengert.tensor(x), 2.5 if spec.name == "pow_c"
                                else 1.5)
            want = ref(x) if spec.name != "pow_c" else x ** 2.5
        else:
            c0, c1 = (-0.5, 0.5) if spec.name == "clamp" else (0.25, 0.0)
            got = _record_unary(spec.code, wengert.tensor(x), c0, c1)
            want = ref(x)
    else:
        x = _sample((2, 15), spec.domain, rng)
        y = _sample((15,), spec.domain, rng)
        y[0] = x[0, 0]
        got = _record_binary(spec.code, wengert.tensor(x), wengert.tensor(y), spec.name,
                             float64)
        want = ref(x, y)
    np.testing.assert_allclose(got._values(), np.asarray(want, dtype=float), rtol=1e-12,
                               atol=1e-12)


def test_long_chain_matches_closed_form():
    # 10,000 ops on one tape: y_{k+1} = y_k + h * r * y_k * (1 - y_k / 10).
    r = wengert.tensor(0.7, requires_grad=True)
    y = wengert.tensor(0.5)
    h = 1e-3
    ys = [0.5]
    for _ in range(2000):
        y = y + h * r * y * (1 - y / 10)
        ys.append(y.item())
    y.backward()
    # Forward-mode derivative by hand along the same recursion.
    yv, dy = 0.5, 0.0
    for _ in range(2000):
        dy = dy + h * (yv * (1 - yv / 10) + 0.7 * dy * (1 - yv / 10) - 0.7 * yv * dy / 10)
        yv = yv + h * 0.7 * yv * (1 - yv / 10)
    assert y.item() == pytest.approx(yv, rel=1e-12)
    assert r.grad.item() == pytest.approx(dy, rel=1e-10)


def test_reuse_of_one_tensor():
    x = wengert.tensor([1.5, -2.0], requires_grad=True)
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.5, -2.0]) ** 2)


@pytest.mark.parametrize("c", [2.0, 3.0, 2.5, 0.5, -1.0])
def test_pow_const_every_branch(c):
    # pow_c has fast branches for c == 2 and 3; x ** 2 records square.
    rng = np.random.default_rng(7)
    x = rng.uniform(0.3, 2.0, size=(2, 3))
    check(lambda t: _record_unary(wengert.optable.C.POW_C, t, c), [x])
    check(lambda t: t ** c, [x])


def test_flushes_between_ops_keep_results_exact(monkeypatch):
    # A tape evaluates pending work once it holds SEAL_ELEMENTS more elements (and then
    # stops being the current tape); a flush must never split an op from the resize of its
    # output (slices, reductions). With a tiny threshold every op flushes and seals, so the
    # gradient also crosses tapes through links: regression test.
    import wengert.tape as tape_mod
    from wengert._state import STATE

    def ext(x):
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

    xv = np.linspace(-1.0, 1.0, 50)
    d, e = xv[1:] - xv[:-1] ** 2, 1 - xv[:-1]
    want = np.zeros_like(xv)
    want[:-1] = -400 * xv[:-1] * d - 2 * e
    want[1:] += 200 * d
    monkeypatch.setattr(tape_mod, "SEAL_ELEMENTS", 10)
    saved = STATE.tape
    try:
        STATE.tape = tape_mod.Tape()
        x = wengert.tensor(xv, requires_grad=True)
        y = ext(x)
        y.backward()
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12, atol=1e-9)
        assert y.item() == pytest.approx(float(np.sum(100 * d * d + e * e)), rel=1e-13)
        np.testing.assert_allclose(wengert.grad(ext)(xv), want, rtol=1e-12, atol=1e-9)
    finally:
        STATE.tape = saved


@pytest.mark.parametrize("shapes", [((20, 30), (30, 25)), ((40, 30), (30,)), ((30,), (30, 40)),
                                    ((70, 70), (70,)),
                                    # matrix-vector: BLAS from GEMV_MIN, else unrolled loops
                                    ((40, 30), (30, 1)), ((5, 10), (10, 1)), ((3, 7), (7,)),
                                    # an inner dimension below BLAS_K, an outer product
                                    ((100, 3), (3, 32)), ((70, 1), (1, 70))], ids=str)
def test_matmul_blas_sizes(shapes):
    # Products of at least _vm.BLAS_MIN multiply-adds go through BLAS: values and gradients.
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal(s) for s in shapes)
    ta, tb = wengert.tensor(a, requires_grad=True), wengert.tensor(b, requires_grad=True)
    out = ta @ tb
    np.testing.assert_allclose(out.detach().numpy(), a @ b, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (out * wengert.tensor(w)).sum().backward()
    wa = w if w.ndim == 2 else (w[:, None] if a.ndim == 2 else w[None, :])
    a2 = a if a.ndim == 2 else a[None, :]
    b2 = b if b.ndim == 2 else b[:, None]
    np.testing.assert_allclose(ta.grad.numpy(), (wa @ b2.T).reshape(a.shape), rtol=1e-10)
    np.testing.assert_allclose(tb.grad.numpy(), (a2.T @ wa).reshape(b.shape), rtol=1e-10)


@pytest.mark.parametrize("x_shape, w_shape", [((4, 3), (5, 3)), ((3,), (5, 3)), ((6, 2), (1, 2)),
                                              ((100, 3), (32, 3)), ((100, 32), (1, 32)),
                                              ((30, 20), (25, 20)), ((20,), (300, 20))], ids=str)
def test_linear_transposed_weight(x_shape, w_shape):
    # nn.functional.linear records one matmul reading the (out, in) weight transposed (no
    # transposed copy): loops and BLAS, matrix-vector, 1-D input; values and gradients.
    from wengert.nn import functional as F
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[0]))
    tx, tw, tb = (wengert.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.linear(tx, tw, tb)
    want = x @ w.T + b
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(want.shape)
    (out * wengert.tensor(g)).sum().backward()
    x2, g2 = (x[None, :], g[None, :]) if x.ndim == 1 else (x, g)
    np.testing.assert_allclose(tx.grad.numpy(), (g2 @ w).reshape(x.shape), rtol=1e-10)
    np.testing.assert_allclose(tw.grad.numpy(), g2.T @ x2, rtol=1e-10)
    np.testing.assert_allclose(tb.grad.numpy(), g2.sum(0), rtol=1e-10)
    if x.size <= 12:
        check(lambda a, c: F.linear(a, c), [x, w])
