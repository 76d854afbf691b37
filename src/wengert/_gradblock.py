"""Accumulating the leaves' gradients of a backward in one numba call.

A training loop runs ``backward()`` on the same graph every step, and each parameter's
``.grad`` takes ``grad += adjoint``. Done leaf by leaf that is a Python call, checks and a
numba call per parameter (~0.8 us each). Instead, the gradients of the leaves reached by
one backward live in one flat block (each ``.grad`` is a view of its range), and a tape
keeps a *plan*: for every leaf, where its adjoint is in the arena and where its gradient
is in the block. Each later backward checks, per leaf, that the plan still holds (the same
leaf at the same arena offset, the same ``.grad`` tensor on the same storage, nothing
pending on it) and then adds every adjoint with one call (``_vm.add_blocks``).

Gradients that are not views of one block (assigned by the user, say) take the per-leaf
path (``Tensor._accumulate``); so does anything the plan does not describe. Gradients set
to None between steps (``optimizer.zero_grad()``) are made again in a new block. A plan
holds its leaves; a recording that does not use it drops it (``Tape.reset``), so a model
is not kept alive longer than by the tape's own list of leaves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _fastcall, _vm

W, OFF = 7, 4  # as in tape.py
_result: Any = None  # tensor._result (bound by tensor.py, which imports this module)


def _add_blocks(adj: np.ndarray, idx: np.ndarray, blk: np.ndarray, copy: bool) -> None:
    """``_vm.add_blocks`` through its entry point (see _fastcall), bound at first use."""
    global _add_blocks
    _add_blocks = _fastcall.bind(_vm.add_blocks, _fastcall.ADD_BLOCKS)
    _add_blocks(adj, idx, blk, copy)


class GradPlan:
    """Where the adjoints of a tape's leaves go: see the module docstring."""

    __slots__ = ("leaves", "grads", "datas", "offs", "idx", "bofs", "blk", "last", "gen")

    def __init__(self, leaves: list, grads: list, offs: list[int], idx: np.ndarray,
                 blk: np.ndarray, last: int) -> None:
        self.leaves = leaves  # the leaf tensors, in the order of tape.leaves
        self.grads = grads  # their .grad tensors (views of blk)
        self.datas = [g._data for g in grads]
        self.offs = offs  # arena offset of each leaf's entry
        self.idx = idx  # (arena offset, block offset, size) per leaf, flat int64
        self.bofs = idx[1::3].tolist()  # block offsets
        self.blk = blk
        self.last = last  # the largest entry: every one must be below the root
        self.gen = -1  # the tape generation that last used it (Tape.reset drops the rest)


def accumulate(tape: Any, code: list, adj: np.ndarray, reached: np.ndarray,
               root: int) -> bool:
    """Add the adjoints of ``tape``'s leaves into their ``.grad`` as the tape's plan says:
    True when done, False (nothing written) when the plan does not hold, or a leaf
    changed in place since it was recorded (``add_general`` then checks and raises)."""
    leaves = tape.leaves
    plan = tape._plan
    if plan is None or len(leaves) != len(plan.leaves) or plan.last > root:
        return False
    state = 0  # 1: every .grad is the plan's; 2: every .grad is None
    for (e, leaf, ver), pl, pg, pd, po in zip(leaves, plan.leaves, plan.grads, plan.datas,
                                             plan.offs):
        if (leaf is not pl or code[W * e + OFF] != po or not reached[e]
                or leaf._version != ver):
            return False
        g = leaf._grad
        if g is None:
            if state == 1:
                return False
            state = 2
        elif state == 2 or g is not pg or g._data is not pd or g._ptape is not None:
            return False
        else:
            state = 1
    plan.gen = tape.gen
    if state == 1:
        _add_blocks(adj, plan.idx, plan.blk, False)
        for g in plan.grads:
            g._version += 1
    else:  # set to None since (zero_grad): a new block, the same layout
        _fill(plan, adj)
    return True


def _fill(plan: GradPlan, adj: np.ndarray) -> None:
    """New gradients for the plan's leaves: a new block, copied from the adjoints."""
    blk = np.empty(plan.blk.size)
    _add_blocks(adj, plan.idx, blk, True)
    grads, datas = [], []
    for leaf, b in zip(plan.leaves, plan.bofs):
        n = leaf._n
        shape = leaf._shape
        d = blk[b: b + n].reshape(shape)
        leaf._grad = g = _result(d, shape, n)
        grads.append(g)
        datas.append(d)
    plan.grads = grads
    plan.datas = datas
    plan.blk = blk


def add_general(tape: Any, code: list, adj: np.ndarray, reached: np.ndarray,
                root: int) -> None:
    """Leaf by leaf; then make a plan for the next backward when the grads allow one."""
    leaves = tape.leaves
    used = [(e, leaf) for e, leaf, _ in leaves if e <= root and reached[e]]
    if used and len(used) == len(leaves) and all(leaf._grad is None for _, leaf in used):
        if len({id(leaf) for _, leaf in used}) == len(used):
            _new_block(tape, used, code, adj)
            return
    for e, leaf in used:
        k = W * e + OFF
        o = code[k]
        leaf._accumulate(adj[o: o + code[k + 1]])  # (SIZE follows OFF)
    plan = _plan_of(used, code) if used and len(used) == len(leaves) else None
    if plan is not None:
        plan.gen = tape.gen
    tape._plan = plan


def _new_block(tape: Any, used: list, code: list, adj: np.ndarray) -> None:
    """First gradients of these leaves: one block, copied from the adjoints in one call."""
    idx, offs, b = [], [], 0
    for e, leaf in used:
        o = code[W * e + OFF]
        idx += (o, b, leaf._n)
        offs.append(o)
        b += leaf._n
    plan = GradPlan([leaf for _, leaf in used], [], offs, np.array(idx, np.int64),
                    np.empty(b), max(e for e, _ in used))
    _fill(plan, adj)
    plan.gen = tape.gen
    tape._plan = plan


def _plan_of(used: list, code: list) -> GradPlan | None:
    """A plan for grads that are already views of one flat float64 block, or None."""
    grads = [leaf._grad for _, leaf in used]
    base = None
    for g in grads:
        if g is None or g._tape is not None or g._ptape is not None:
            return None
        d = g._data
        b = d.base
        if (b is None or d.dtype != np.float64 or not d.flags.c_contiguous
                or (base is not None and b is not base)):
            return None
        base = b
    if (base.dtype != np.float64 or base.ndim != 1 or not base.flags.c_contiguous
            or not base.flags.writeable):
        return None
    start = base.__array_interface__["data"][0]
    idx, offs = [], []
    for (e, leaf), g in zip(used, grads):
        o = code[W * e + OFF]
        pos = g._data.__array_interface__["data"][0] - start
        if pos % 8 or g._data.size != leaf._n:
            return None
        idx += (o, pos // 8, leaf._n)
        offs.append(o)
    return GradPlan([leaf for _, leaf in used], grads, offs, np.array(idx, np.int64), base,
                    max(e for e, _ in used))
