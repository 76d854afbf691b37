"""The op table: one row per primitive operation on the Wengert tape.

Each row names an opcode (a stable number, grouped by family), the PyTorch-style
``grad_fn`` name, and, for elementwise families, the scalar forward formula and its
vector-Jacobian product side by side, in the spirit of PyTorch's ``derivatives.yaml``.

Formulas are Python expressions over these names:

* unary families: ``x`` (input), ``y`` (output), ``g`` (output adjoint), ``c0``/``c1``
  (the entry's two float constants);
* binary families: ``x``, ``y`` (inputs), ``z`` (output), ``g``.

``tools/gen_vm.py`` turns the elementwise rows into the numba dispatch inside
``_vm.py`` (a generated region with a hash of this file, so numba's cache cannot
serve a stale interpreter). Structural ops (reductions, matmul, indexing, ...) have
hand-written kernels in ``_vm.py``; their rows here carry the name, opcode and the
gradient-check cases. ``tests/test_gradcheck.py`` is driven by this table.

Adding an elementwise op: add a row, run ``python tools/gen_vm.py``, done: the
facade method (``Tensor.name`` and ``wengert.name``) and the gradient check come
from the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Families (opcode ranges): the interpreters dispatch on these first.
LEAF = "leaf"  # 0        a value written by Python (imports of leaves and other tapes)
UNARY = "unary"  # 10..29   f(x)
UNARY_C = "unary_c"  # 30..49   f(x, c0) with a Python-number operand
BINARY = "binary"  # 50..69   f(x, y), same size or one side of size 1
COMPARE = "compare"  # 70..79   not differentiable, output bool
STRUCT = "struct"  # 80..     hand-written kernels in _vm.py


@dataclass(frozen=True)
class OpSpec:
    """One primitive: opcode, family, grad_fn name, formulas and test cases."""

    name: str
    code: int
    family: str
    grad_fn: str
    fwd: str = ""
    bwd: str | tuple[str, str] = ""
    # Gradient-check domain (low, high) for random inputs.
    domain: tuple[float, float] = (-2.0, 2.0)
    differentiable: bool = True
    # Extra gradient-check cases: (label, fn(*tensors) -> tensor, input shapes, domain or None).
    cases: tuple[tuple[str, Callable[..., Any], tuple[tuple[int, ...], ...], Any], ...] = field(
        default=()
    )
    # For unary_c rows: the constant used by the gradient check.
    test_const: float = 1.5
    # Facade method name (None: used internally / through another method).
    method: str | None = None


def _cases(*rows):
    return tuple(rows)


OPS: list[OpSpec] = [
    # ---------------------------------------------------------------- leaves
    # An import: no kernel runs; the sweep stops here and Python accumulates .grad.
    OpSpec("import", 0, LEAF, "AccumulateGrad", differentiable=False),
    # ---------------------------------------------------------------- unary, f(x)
    OpSpec("neg", 10, UNARY, "NegBackward0", "-x", "-g", method="neg"),
    # abs: subgradient 0 at 0, as PyTorch.
    OpSpec("abs", 11, UNARY, "AbsBackward0", "abs(x)",
           "g * (1.0 if x > 0 else (-1.0 if x < 0 else 0.0))", method="abs"),
    # square is pow(x, 2) in PyTorch, hence PowBackward0.
    OpSpec("square", 12, UNARY, "PowBackward0", "x * x", "2.0 * x * g", method="square"),
    OpSpec("sqrt", 13, UNARY, "SqrtBackward0", "math.sqrt(x)", "g * 0.5 / y",
           domain=(0.2, 3.0), method="sqrt"),
    OpSpec("exp", 14, UNARY, "ExpBackward0", "math.exp(x)", "g * y", method="exp"),
    OpSpec("log", 15, UNARY, "LogBackward0", "math.log(x)", "g / x",
           domain=(0.2, 3.0), method="log"),
    OpSpec("log1p", 16, UNARY, "Log1PBackward0", "math.log1p(x)", "g / (1.0 + x)",
           domain=(-0.5, 3.0), method="log1p"),
    OpSpec("sin", 17, UNARY, "SinBackward0", "math.sin(x)", "g * math.cos(x)", method="sin"),
    OpSpec("cos", 18, UNARY, "CosBackward0", "math.cos(x)", "-g * math.sin(x)", method="cos"),
    OpSpec("tan", 19, UNARY, "TanBackward0", "math.tan(x)", "g * (1.0 + y * y)",
           domain=(-1.2, 1.2), method="tan"),
    OpSpec("tanh", 20, UNARY, "TanhBackward0", "math.tanh(x)", "g * (1.0 - y * y)",
           method="tanh"),
    # Stable sigmoid kernel; the VJP reuses the output.
    OpSpec("sigmoid", 21, UNARY, "SigmoidBackward0", "_sigmoid(x)", "g * y * (1.0 - y)",
           domain=(-6.0, 6.0), method="sigmoid"),
    # relu: subgradient 0 at 0, as PyTorch.
    OpSpec("relu", 22, UNARY, "ReluBackward0", "x if x > 0.0 else 0.0",
           "g if x > 0.0 else 0.0", method="relu"),
    # clamp(min=c0, max=c1), missing bounds are -inf/+inf; gradient passes inside [c0, c1].
    OpSpec("clamp", 23, UNARY, "ClampBackward1", "min(max(x, c0), c1)",
           "g if (x >= c0 and x <= c1) else 0.0", method=None),
    OpSpec("reciprocal", 24, UNARY, "ReciprocalBackward0", "1.0 / x", "-g * y * y",
           domain=(0.3, 3.0), method="reciprocal"),
    # softplus = log(1 + e^x), written to not overflow.
    OpSpec("softplus", 25, UNARY, "SoftplusBackward0",
           "max(x, 0.0) + math.log1p(math.exp(-abs(x)))", "g * _sigmoid(x)", domain=(-6.0, 6.0),
           method=None),
    # fill(c0): the value of zero_/fill_ on a tensor that lives on the tape.
    OpSpec("fill", 26, UNARY, "FillBackward0", "c0", "0.0", method=None),
    OpSpec("logsigmoid", 27, UNARY, "LogSigmoidBackward0",
           "min(x, 0.0) - math.log1p(math.exp(-abs(x)))", "g * (1.0 - _sigmoid(x))",
           domain=(-6.0, 6.0), method=None),
    OpSpec("sign", 28, UNARY, "SignBackward0",
           "1.0 if x > 0 else (-1.0 if x < 0 else 0.0)", "0.0", method="sign"),
    # ------------------------------------------------- unary with a constant, f(x, c0)
    OpSpec("add_c", 30, UNARY_C, "AddBackward0", "x + c0", "g"),
    OpSpec("sub_c", 31, UNARY_C, "SubBackward0", "x - c0", "g"),
    OpSpec("rsub_c", 32, UNARY_C, "RsubBackward1", "c0 - x", "-g"),
    OpSpec("mul_c", 33, UNARY_C, "MulBackward0", "x * c0", "g * c0"),
    OpSpec("div_c", 34, UNARY_C, "DivBackward0", "x / c0", "g / c0"),
    # c / x: PyTorch computes it as x.reciprocal() * c, hence MulBackward0.
    OpSpec("rdiv_c", 35, UNARY_C, "MulBackward0", "c0 / x", "-g * y / x", domain=(0.3, 3.0)),
    # x ** c: the derivative is 0 where c == 0 (PyTorch masks the 0 * inf there). c == 2 and
    # 3 skip pow(), which is ~20x slower than a multiply (the branch is hoisted from the loop).
    OpSpec("pow_c", 36, UNARY_C, "PowBackward0",
           "x * x if c0 == 2.0 else (x * x * x if c0 == 3.0 else x ** c0)",
           "2.0 * g * x if c0 == 2.0 else (3.0 * g * x * x if c0 == 3.0 else "
           "((g * c0 * x ** (c0 - 1.0)) if c0 != 0.0 else 0.0))", domain=(0.3, 3.0),
           test_const=2.5),
    OpSpec("rpow_c", 37, UNARY_C, "PowBackward2", "c0 ** x", "g * y * math.log(c0)"),
    OpSpec("lt_c", 40, UNARY_C, "", "1.0 if x < c0 else 0.0", "0.0", differentiable=False),
    OpSpec("le_c", 41, UNARY_C, "", "1.0 if x <= c0 else 0.0", "0.0", differentiable=False),
    OpSpec("gt_c", 42, UNARY_C, "", "1.0 if x > c0 else 0.0", "0.0", differentiable=False),
    OpSpec("ge_c", 43, UNARY_C, "", "1.0 if x >= c0 else 0.0", "0.0", differentiable=False),
    OpSpec("eq_c", 44, UNARY_C, "", "1.0 if x == c0 else 0.0", "0.0", differentiable=False),
    OpSpec("ne_c", 45, UNARY_C, "", "1.0 if x != c0 else 0.0", "0.0", differentiable=False),
    # ---------------------------------------------------------------- binary, f(x, y)
    OpSpec("add", 50, BINARY, "AddBackward0", "x + y", ("g", "g")),
    OpSpec("sub", 51, BINARY, "SubBackward0", "x - y", ("g", "-g")),
    OpSpec("mul", 52, BINARY, "MulBackward0", "x * y", ("g * y", "g * x")),
    OpSpec("div", 53, BINARY, "DivBackward0", "x / y", ("g / y", "-g * z / y"),
           domain=(0.3, 3.0)),
    # d/dy x**y = z log x; PyTorch gives 0 there when x == 0.
    OpSpec("pow", 54, BINARY, "PowBackward1", "x ** y",
           ("(g * y * x ** (y - 1.0)) if y != 0.0 else 0.0",
            "(g * z * math.log(x)) if x != 0.0 else 0.0"), domain=(0.3, 3.0)),
    # Ties split the gradient evenly, as PyTorch's maximum/minimum.
    OpSpec("maximum", 55, BINARY, "MaximumBackward0", "max(x, y)",
           ("g if x > y else (0.5 * g if x == y else 0.0)",
            "g if y > x else (0.5 * g if x == y else 0.0)"), method="maximum"),
    OpSpec("minimum", 56, BINARY, "MinimumBackward0", "min(x, y)",
           ("g if x < y else (0.5 * g if x == y else 0.0)",
            "g if y < x else (0.5 * g if x == y else 0.0)"), method="minimum"),
    # Stable BCE with logits (x logits, y targets); reduction is a separate entry.
    OpSpec("bce_logits", 57, BINARY, "BinaryCrossEntropyWithLogitsBackward0",
           "max(x, 0.0) - x * y + math.log1p(math.exp(-abs(x)))",
           ("g * (_sigmoid(x) - y)", "-g * x")),
    OpSpec("lt", 70, COMPARE, "", "1.0 if x < y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("le", 71, COMPARE, "", "1.0 if x <= y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("gt", 72, COMPARE, "", "1.0 if x > y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("ge", 73, COMPARE, "", "1.0 if x >= y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("eq", 74, COMPARE, "", "1.0 if x == y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("ne", 75, COMPARE, "", "1.0 if x != y else 0.0", ("0.0", "0.0"), differentiable=False),
    OpSpec("logical_and", 76, COMPARE, "", "1.0 if (x != 0.0 and y != 0.0) else 0.0",
           ("0.0", "0.0"), differentiable=False),
    OpSpec("logical_or", 77, COMPARE, "", "1.0 if (x != 0.0 or y != 0.0) else 0.0",
           ("0.0", "0.0"), differentiable=False),
    # ------------------------------------------- structural ops (kernels hand-written in _vm.py)
    OpSpec("sum", 80, STRUCT, "SumBackward0", cases=_cases(
        ("all", lambda x: x.sum(), ((3, 4),), None),
        ("dim0", lambda x: x.sum(dim=0), ((3, 4),), None),
        ("dim1_keep", lambda x: x.sum(dim=1, keepdim=True), ((3, 4),), None),
        ("dim_tuple", lambda x: x.sum(dim=(0, 2)), ((2, 3, 4),), None),
    )),
    OpSpec("mean", 81, STRUCT, "MeanBackward0", cases=_cases(
        ("all", lambda x: x.mean(), ((3, 4),), None),
        ("dim-1", lambda x: x.mean(dim=-1), ((3, 4),), None),
    )),
    OpSpec("prod", 82, STRUCT, "ProdBackward0", cases=_cases(
        ("all", lambda x: x.prod(), ((5,),), None),
        ("dim0", lambda x: x.prod(dim=0), ((3, 4),), None),
    )),
    # max/min over everything: ties share the gradient evenly (PyTorch's MaxBackward1).
    OpSpec("max", 83, STRUCT, "MaxBackward1", cases=_cases(
        ("all", lambda x: x.max(), ((3, 4),), None),
        ("dim1", lambda x: x.max(dim=1).values, ((3, 4),), None),
    )),
    OpSpec("min", 84, STRUCT, "MinBackward1", cases=_cases(
        ("all", lambda x: x.min(), ((3, 4),), None),
        ("dim0", lambda x: x.min(dim=0).values, ((3, 4),), None),
    )),
    # p=2 norm; gradient 0 at the zero vector (a subgradient), as PyTorch.
    OpSpec("norm", 85, STRUCT, "NormBackward1", cases=_cases(
        ("all", lambda x: x.norm(), ((3, 4),), None),
        ("dim1", lambda x: x.norm(dim=1), ((3, 4),), None),
    )),
    OpSpec("logsumexp", 86, STRUCT, "LogsumexpBackward0", cases=_cases(
        ("dim1", lambda x: x.logsumexp(dim=1), ((3, 4),), (-5.0, 5.0)),
    )),
    # max/min along a dim: the gradient goes to the (first) index, as PyTorch's MaxBackward0.
    OpSpec("max_dim", 87, STRUCT, "MaxBackward0"),
    OpSpec("min_dim", 88, STRUCT, "MinBackward0"),
    OpSpec("argmax", 89, STRUCT, "", differentiable=False),
    OpSpec("argmin", 90, STRUCT, "", differentiable=False),
    OpSpec("matmul", 100, STRUCT, "MmBackward0", cases=_cases(
        ("mm", lambda a, b: a @ b, ((3, 4), (4, 2)), None),
        ("mv", lambda a, b: a @ b, ((3, 4), (4,)), None),
        ("vm", lambda a, b: a @ b, ((4,), (4, 2)), None),
        ("dot", lambda a, b: a.dot(b), ((4,), (4,)), None),
        ("mm_self", lambda a: a @ a, ((3, 3),), None),
    )),
    OpSpec("copy", 110, STRUCT, "CloneBackward0", cases=_cases(
        ("reshape", lambda x: x.reshape(2, 6) * 1.0, ((3, 4),), None),
        ("view_-1", lambda x: x.view(-1), ((3, 4),), None),
        ("flatten", lambda x: x.flatten(), ((2, 3, 2),), None),
        ("unsqueeze", lambda x: x.unsqueeze(0), ((3,),), None),
        ("squeeze", lambda x: x.squeeze(), ((3, 1),), None),
        ("clone", lambda x: x.clone(), ((3,),), None),
    )),
    OpSpec("transpose", 111, STRUCT, "TBackward0", cases=_cases(
        ("t", lambda x: x.t(), ((3, 4),), None),
        ("T", lambda x: x.T @ x, ((3, 2),), None),
        ("transpose01", lambda x: x.transpose(0, 1), ((2, 5),), None),
    )),
    # Internal: numpy broadcasting of an operand to its output shape (gradient: sum back).
    OpSpec("expand", 112, STRUCT, "ExpandBackward0", cases=_cases(
        ("row+col", lambda a, b: a + b, ((3, 1), (1, 4)), None),
        ("mat*vec", lambda a, b: a * b, ((2, 3), (3,)), None),
        ("vec-mat", lambda a, b: a - b, ((4,), (3, 4)), None),
        ("div_bcast", lambda a, b: a / b, ((2, 1, 3), (4, 1)), (0.5, 2.0)),
        ("expand", lambda a: a.expand(3, 4), ((1, 4),), None),
    )),
    OpSpec("slice", 113, STRUCT, "SliceBackward0", cases=_cases(
        ("x[0]", lambda x: x[0], ((4,),), None),
        ("x[-1]", lambda x: x[-1], ((4,),), None),
        ("x[1:]", lambda x: x[1:], ((5,),), None),
        ("x[:-1]", lambda x: x[:-1], ((5,),), None),
        ("x[::2]", lambda x: x[::2], ((5,),), None),
        ("x[:,0:1]", lambda x: x[:, 0:1], ((3, 4),), None),
        ("x[1,2]", lambda x: x[1, 2], ((3, 4),), None),
        ("unpack", lambda x: x[0] * x[1] + x[2], ((3,),), None),
    )),
    # x[i] on a 1-D tensor, the index in c0: unpacking and x[0] cost no aux integers.
    OpSpec("select", 117, STRUCT, "SelectBackward0", cases=_cases(
        ("x[1]", lambda x: x[1], ((3,),), None),
        ("unpack", lambda x: (lambda a, b, c: a * b - c)(*x), ((3,),), None),
    )),
    # An in-place op under no_grad on a tensor that is part of a graph (u.add_(1) with u a
    # result): the value comes from input b (computed without grad), the gradient passes to
    # input a (u before the op) unchanged, as PyTorch's autograd does not see the change.
    # Always an internal entry: grad_fn looks through it to u's.
    OpSpec("graft", 118, STRUCT, "CopySlices", cases=_cases(
        ("add_ no_grad", lambda x: _graft_case(x), ((3,),), None),
    )),
    OpSpec("gather", 114, STRUCT, "IndexBackward0", cases=_cases(
        ("int_array", lambda x: x[[0, 2, 2]], ((4,),), None),
        ("mask", lambda x: x[x > 0.0], ((6,),), None),
        ("rows", lambda x: x[[1, 0]], ((3, 2),), None),
    )),
    OpSpec("cat", 115, STRUCT, "CatBackward0", cases=_cases(
        ("cat0", lambda a, b: _w().cat([a, b]), ((2, 3), (1, 3)), None),
        ("cat1", lambda a, b: _w().cat([a, b], dim=1), ((2, 3), (2, 2)), None),
        ("stack", lambda a, b: _w().stack([a, b, a]), ((3,), (3,)), None),
        ("stack1", lambda a, b: _w().stack([a, b], dim=1), ((2, 2), (2, 2)), None),
    )),
    OpSpec("where", 116, STRUCT, "WhereBackward0", cases=_cases(
        ("where", lambda a, b: _w().where(a > b, a, b), ((5,), (5,)), None),
        ("where_bcast", lambda a, b: _w().where(a > 0.0, a, b), ((2, 3), (3,)), None),
    )),
]


def _graft_case(x):
    u = x * 2.0
    with _w().no_grad():
        u.add_(1.5)  # d/dx (u x) = u + 2 x: the add does not change the derivative
    return u * x


def _w():
    # Lazy import: the table is imported by wengert itself.
    import wengert

    return wengert


BY_NAME: dict[str, OpSpec] = {op.name: op for op in OPS}
BY_CODE: dict[int, OpSpec] = {op.code: op for op in OPS}
assert len(BY_NAME) == len(OPS) and len(BY_CODE) == len(OPS), "duplicate op name or opcode"

# Opcodes as module constants for the facade (e.g. ``C.ADD``).
C = type("C", (), {op.name.upper(): op.code for op in OPS})
