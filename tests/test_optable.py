"""The op table is complete: kernels in both sweeps, gradient checks, a fresh _vm.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wengert
from wengert import _vm
from wengert.optable import BINARY, COMPARE, LEAF, OPS, STRUCT, UNARY, UNARY_C

ROOT = Path(__file__).resolve().parents[1]


def test_generated_dispatch_is_fresh():
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_vm.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _three_entry_tape(op: int, binary: bool):
    # Two imports (entries 0 and 1) and the op under test (entry 2).
    code = np.array([[0, -1, -1, -1, 0, 1, 1], [0, -1, -1, -1, 1, 1, 1],
                     [op, 0, 1 if binary else -1, -1, 2, 1, 1]], np.int64)
    consts = np.array([[0, 0], [0, 0], [0.5, 0.7]], dtype=float)
    aux = np.zeros(1, np.int64)
    val = np.array([0.3, 0.6, 0.0])
    return code, consts, aux, val


@pytest.mark.parametrize("spec", [s for s in OPS if s.family not in (STRUCT, LEAF)],
                         ids=lambda s: s.name)
def test_elementwise_opcode_has_both_kernels(spec):
    binary = spec.family in (BINARY, COMPARE)
    code, consts, aux, val = _three_entry_tape(spec.code, binary)
    _vm.forward(code, consts, aux, val, np.zeros(3, np.uint8), 0, 3)  # raises on an unknown opcode
    adj = np.array([0.0, 0.0, 1.0])
    reached = np.array([0, 0, 1], np.uint8)
    err = _vm.backward(code, consts, aux, val, adj, reached, np.zeros(3, np.uint8), 3, True)
    assert err == -1
    assert reached[0] == 1


def test_every_struct_opcode_is_exercised_by_a_gradient_case():
    used: set[int] = set()
    for spec in OPS:
        for _, fn, shapes, _ in spec.cases:
            xs = [wengert.rand(*s, requires_grad=True) for s in shapes]
            out = fn(*xs)
            tape = out._tape
            used.update(tape.code[0::7])
            out.sum().backward()
    # max/min along a dim also record argmax/argmin entries (not differentiable).
    missing = [s.name for s in OPS if s.family == STRUCT and s.code not in used]
    assert not missing, f"no gradient-check case records these ops: {missing}"


def test_opcodes_sit_in_their_family_ranges():
    ranges = {LEAF: (0, 10), UNARY: (10, 30), UNARY_C: (30, 50), BINARY: (50, 70),
              COMPARE: (70, 80), STRUCT: (80, 200)}
    for spec in OPS:
        lo, hi = ranges[spec.family]
        assert lo <= spec.code < hi, spec.name
        assert spec.grad_fn or not spec.differentiable, spec.name


def test_facade_methods_come_from_the_table():
    for spec in OPS:
        if spec.family == UNARY and spec.method:
            assert hasattr(wengert.Tensor, spec.method), spec.method
            assert hasattr(wengert, spec.method), spec.method
            x = wengert.tensor([0.5], requires_grad=True)
            y = getattr(x, spec.method)()
            assert y.grad_fn.name() == spec.grad_fn


def test_opcode_names_in_the_interpreter_match_the_table():
    """_vm.py names some opcodes for its hand-written kernels: they must be the table's."""
    from wengert import _vm
    from wengert.optable import C

    named = [k for k in vars(C) if k.isupper() and hasattr(_vm, k)]
    assert {"ADD", "SUM", "MEAN", "COPY", "SLICE", "CAT", "WHERE", "SELECT", "MATMUL"} <= set(named)
    for k in named:
        assert getattr(_vm, k) == getattr(C, k), k
