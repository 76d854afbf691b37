"""The Wengert tape: one flat row per entry, and the backward engine.

Entry ``e`` writes buffer ``e``. Its row is ``(opcode, in0, in1, aux, off, size, rg)``
(see ``_vm.py``); ``consts`` holds two floats per entry and ``aux`` the integers of
structural ops. Recording appends to Python lists (no numpy or numba call per op);
``sync`` mirrors the new rows into numpy arrays right before a sweep. See
ARCHITECTURE.md for the life cycle.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import weakref
from typing import Any

import numpy as np

from . import _fastcall, _gradblock, _vm
from ._state import STATE

W = 7  # ints per row
OFF, SIZE, RG = 4, 5, 6
_ids = itertools.count(1)
_wref = weakref.ref

# An evaluated tape with more entries (or arena elements, when these are also more than
# eight times its largest entry) than this stops being the current tape, so that a long
# loop that never calls backward() does not grow one tape for ever; the old tape lives as
# long as tensors (or a graph) need it. A network step with activations of millions of
# values thus stays on one tape (sealing it between layers would copy every activation).
SEAL_ENTRIES = 1 << 16
SEAL_ELEMENTS = 1 << 21
# backward() retires a tape of at most this many arena elements (see release); a larger
# one is emptied at once, so that a big network does not hold two arenas of activations.
RETIRE_ELEMENTS = 1 << 20

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


def _grow(arr: np.ndarray, need: int, keep: int) -> np.ndarray:
    cap = max(need, 2 * len(arr), 32)
    new = np.zeros((cap,) + arr.shape[1:], arr.dtype)
    keep = min(keep, len(arr))
    new[:keep] = arr[:keep]
    return new


class Tape:
    """One recording: a flat list of entries over a value arena.

    >>> import wengert
    >>> x = wengert.tensor(2.0, requires_grad=True)
    >>> y = x * 3 + 1
    >>> len(y._tape) >= 3   # the import of x, mul, add
    True
    """

    __slots__ = (
        "id", "gen", "code", "consts", "aux", "top", "n", "n_eval",
        "_code", "_consts", "_aux", "_nc", "_na", "_mcode", "_mconsts", "_maux", "val", "freed",
        "leaves", "links", "imports", "imp_cache", "names", "tensors", "retained",
        "exported", "has_dead", "flush_at", "owner", "_adj", "_reached", "pending", "_plan",
        "__weakref__",
    )

    def __init__(self) -> None:
        self.id = next(_ids)
        self.gen = 0  # bumped when the tape is reset for reuse
        self.code: list[int] = []  # W ints per entry
        self.consts: list[float] = []  # 2 floats per entry
        self.aux: list[int] = []
        self.top = 0  # arena elements in use
        self.n = 0  # entries recorded
        self.n_eval = 0  # entries whose values are computed
        self._code = np.zeros((0, W), np.int64)
        self._consts = np.zeros((0, 2))
        self._aux = np.zeros(1, np.int64)
        self._nc = self._na = 0  # how much of the lists is mirrored
        # What the numpy arrays hold, as lists: a loop that records the same entries
        # again after a reset (every step of an eager training loop) skips the copy.
        self._mcode: list[int] = []
        self._mconsts: list[float] = []
        self._maux: list[int] = []
        self.val = np.zeros(32)
        self.freed = np.zeros(0, np.uint8)  # per entry: swept by a backward without retain
        self.leaves: list[tuple[int, Any, int]] = []  # (entry, leaf, version) needing grad
        self.links: list[tuple[int, Tape, int]] = []  # (entry, source tape, source entry)
        # entry -> ("link", tape, e) | ("dead", t); leaves are in self.leaves (see imported)
        self.imports: dict[int, tuple] = {}
        self.imp_cache: dict[Any, tuple] = {}
        self.names: dict[int, str | None] = {}  # entry -> grad_fn name (None: internal)
        self.tensors: list[weakref.ref] = []  # tensors recorded here, to release them
        self.pending: list[weakref.ref] = []  # leaves whose in-place update is pending here
        self.retained: dict[int, weakref.ref] = {}  # entry -> tensor with retain_grad()
        self.exported = False  # another tape imported from this one
        self.has_dead = False  # holds an import whose graph an earlier backward freed
        # Recording that nobody looks at is evaluated once it holds this many elements, so
        # that a long unevaluated loop keeps a bounded arena (see flush).
        self.flush_at = SEAL_ELEMENTS
        self.owner = threading.get_ident()
        # Scratch of backward_scalar, kept between steps (gradients are copied out of it).
        self._adj = np.zeros(32)
        self._reached = np.zeros(32, np.uint8)
        self._plan = None  # where backward_scalar adds the leaves' gradients (_gradblock)

    def __len__(self) -> int:
        return self.n

    def reset(self) -> None:
        """Empty the tape for reuse (its arrays keep their capacity)."""
        if self._plan is not None and self._plan.gen != self.gen:
            self._plan = None  # the recording just ended did not use it (see _gradblock)
        self.gen += 1
        self.code.clear()
        self.consts.clear()
        self.aux.clear()
        self.top = self.n = self.n_eval = self._nc = self._na = 0
        self.leaves.clear()
        self.imports.clear()
        self.imp_cache.clear()
        self.tensors.clear()
        self.pending.clear()
        # Usually empty (every step of a training loop resets the tape).
        if self.links:
            self.links.clear()
        if self.names:
            self.names.clear()
        if self.retained:
            self.retained.clear()
        self.has_dead = False
        self.flush_at = SEAL_ELEMENTS

    # ------------------------------------------------------------------ recording
    def entry(self, op: int, i0: int, i1: int, size: int, rg: int,
              c0: float = 0.0, c1: float = 0.0, aux: int = -1) -> int:
        """Append one entry writing ``size`` new elements; return its index."""
        if self.top > self.flush_at:
            # Before appending: the previous op is complete (callers may still resize the
            # entry they just recorded, so a flush must never run between the two).
            self.flush()
        e = self.n
        self.code += (op, i0, i1, aux, self.top, size, rg)
        self.consts += (c0, c1)
        self.top += size
        self.n = e + 1
        return e

    def flush(self) -> None:
        """Evaluate what is pending (a large unevaluated recording); may seal the tape."""
        self.forward()
        self.flush_at = self.top + SEAL_ELEMENTS

    def resize_last(self, size: int) -> None:
        """Change the output size of the entry just recorded (reductions, broadcasts)."""
        k = W * (self.n - 1) + SIZE
        self.top += size - self.code[k]
        self.code[k] = size

    def off(self, e: int) -> int:
        """Where entry ``e``'s values start in the arena."""
        return self.code[W * e + OFF]

    def size(self, e: int) -> int:
        """How many elements entry ``e`` has."""
        return self.code[W * e + SIZE]

    def import_tensor(self, t: Any) -> int:
        """The entry holding ``t``'s value on this tape (copied in at first use).

        Copying at import keeps eager semantics: a later in-place change of ``t`` does
        not change what this tape computes (and backward checks ``t``'s version).
        """
        src = t._tape
        if src is None:
            key = id(t)
            hit = self.imp_cache.get(key)
            ver = t._version
            if hit is not None and hit[1] == ver and (hit[0] is t or hit[0]() is t):
                return hit[2]
            rg = 1 if t._rg else 0
            pt = t._ptape
            if pt is None:  # the usual case, entry() and _import_entry() written out:
                if self.top > self.flush_at:  # every step of a training loop imports its
                    self.flush()  # parameters and data (the flush as in entry())
                n, o, e = t._n, self.top, self.n
                self.code += (0, -1, -1, -1, o, n, rg)
                self.consts += (0.0, 0.0)
                self.top = top = o + n
                self.n = e + 1
                if top > len(self.val):
                    self.val = _grow(self.val, top, o)
                self.val[o: top] = t._data.ravel()
            elif pt is self:
                # A leaf updated in place on this tape: copy its pending entry.
                e = self.entry(0, t._buf, -1, t._n, rg)
            else:
                t._settle()
                return self.import_tensor(t)
            if rg:
                self.imp_cache[key] = (t, ver, e)
                if t._gfn is None:  # (imported() finds it in leaves)
                    self.leaves.append((e, t, ver))
                else:  # a non-leaf whose graph was freed by an earlier backward
                    self.imports[e] = ("dead", t)
                    self.has_dead = True
            else:
                # A leaf that needs no gradient is held weakly (its values are copied), so
                # that a long no_grad loop feeding new tensors to this tape does not keep
                # them all alive; a trace keeps its captured constants.
                self.imp_cache[key] = (_wref(t) if STATE.trace is not self else t, ver, e)
            return e
        key = (src.id, src.gen, t._buf)
        hit = self.imp_cache.get(key)
        if hit is not None:
            return hit[2]
        src.forward()
        src.exported = True
        rg = 1 if t._rg else 0
        e = self._import_entry(t._n, rg)
        so = src.off(t._buf)
        self.val[self.top - t._n: self.top] = src.val[so: so + t._n]
        self.imp_cache[key] = (None, 0, e)  # no reference: an old tape may go away
        if rg:
            self.links.append((e, src, t._buf))
            self.imports[e] = ("link", src, t._buf)
        return e

    def imported(self, e: int) -> tuple | None:
        """What entry ``e`` imports: ("leaf", tensor), ("dead", tensor) (a non-leaf whose
        graph an earlier backward freed), ("link", tape, entry), or None."""
        imp = self.imports.get(e)
        if imp is None:
            for le, leaf, _ in self.leaves:
                if le == e:
                    return ("leaf", leaf)
        return imp

    def _import_entry(self, size: int, rg: int) -> int:
        e = self.entry(0, -1, -1, size, rg)
        if self.top > len(self.val):
            self.val = _grow(self.val, self.top, self.top - size)
        return e

    # ------------------------------------------------------------------ sweeps
    def sync(self) -> None:
        """Mirror what was recorded since the last sweep into the numpy arrays."""
        n, nc = self.n, self._nc
        if n > nc:
            if n > len(self._code):
                self._code = _grow(self._code, n, nc)
                self._consts = _grow(self._consts, n, nc)
                self.freed = _grow(self.freed, n, nc)
            if nc == 0 and len(self._mcode) == len(self.code):
                # The usual step of a loop: compare whole lists, no slices copied.
                if self._mcode != self.code:
                    self._code[:n] = np.array(self.code, np.int64).reshape(-1, W)
                    self._mcode = self.code.copy()
                if self._mconsts != self.consts:
                    self._consts[:n] = np.array(self.consts).reshape(-1, 2)
                    self._mconsts = self.consts.copy()
            else:
                seg = self.code[W * nc:]
                if self._mcode[W * nc: W * n] != seg:
                    self._code[nc:n] = np.array(seg, np.int64).reshape(-1, W)
                    self._mcode[W * nc:] = seg
                seg = self.consts[2 * nc:]
                if self._mconsts[2 * nc: 2 * n] != seg:
                    self._consts[nc:n] = np.array(seg).reshape(-1, 2)
                    self._mconsts[2 * nc:] = seg
            self._nc = n
        na, nao = len(self.aux), self._na
        if na > nao:
            if na > len(self._aux):
                self._aux = _grow(self._aux, na, nao)
            if nao or self._maux != self.aux:  # (a loop's step records the same integers)
                self._aux[nao:na] = self.aux[nao:]
                self._maux[nao:] = self.aux[nao:]
            self._na = na
        if self.top > len(self.val):
            self.val = _grow(self.val, self.top, len(self.val))

    def forward(self) -> None:
        """Compute every pending entry: one numba call."""
        if self.n_eval < self.n:
            self.sync()
            _forward(self._code, self._consts, self._aux, self.val, self.freed, self.n_eval,
                     self.n)
            self.n_eval = self.n
            if ((self.n > SEAL_ENTRIES or (self.top > SEAL_ELEMENTS and self._too_big()))
                    and STATE.tape is self and STATE.trace is not self):
                STATE.tape = None  # later ops start a new tape; this one lives while used

    def _too_big(self) -> bool:
        """Whether the arena outgrew SEAL_ELEMENTS and 8 times its largest entry: a step
        of a network with large activations stays on one tape, a loop of them does not."""
        big = max(self.code[SIZE: W * self.n: W], default=0)
        return self.top > 8 * big

    def value(self, e: int) -> np.ndarray:
        """The values of entry ``e`` (a view into the arena: copy before keeping it)."""
        if self.n_eval <= e:
            self.forward()
        k = W * e
        o = self.code[k + OFF]
        return self.val[o: o + self.code[k + SIZE]]

    def release(self) -> None:
        """Let go of the graph that a backward without retain_graph swept (marked freed).

        The thread's current tape is retired rather than emptied: tensors still alive
        (the loss a loop just printed) keep reading their values from it, and recording
        goes on on the tape retired the time before (``STATE.spare``), emptied first. In a
        training loop two tapes alternate, and a value is copied out (``_materialize``)
        only when its tensor outlives the next backward too. A tape that something still
        needs (a graph not yet swept, an export) is left to live as long as that. A tape
        larger than ``RETIRE_ELEMENTS`` is emptied at once instead (one arena, not two).
        """
        st = STATE
        if st.tape is self:
            if self.pending:  # leaves updated in place: their values go home now, so that
                for ref in self.pending:  # the next update of a loop finds them concrete
                    t = ref()
                    if t is not None and t._ptape is self:
                        t._settle()
                self.pending.clear()
            if self.top > RETIRE_ELEMENTS:
                if self._let_go():
                    self.reset()
                else:
                    st.tape = None
                return
            spare = st.spare
            st.spare = self
            if spare is not None and spare is not self and spare._let_go():
                spare.reset()
                st.tape = spare
            else:
                st.tape = None  # the next op starts a tape
        elif self._let_go() and st.tape is None and self.owner == threading.get_ident():
            self.reset()  # a sealed tape that nothing needs any more: record on it again
            st.tape = self

    def _let_go(self) -> bool:
        """Copy the values of live tensors that no longer need this tape out of it (and
        settle leaves updated in place on it); True when nothing else needs it."""
        keep = []
        freed = self.freed
        for ref in self.tensors:
            t = ref()
            if t is None:
                continue
            if t._tape is self:
                if not t._rg or freed[t._entry]:
                    t._materialize()
                else:
                    keep.append(ref)
            elif t._ptape is self:
                t._settle()
        self.tensors = keep
        return not keep and not self.exported


# The two sweeps of every eager step, called through their compiled entry points (see
# _fastcall: the tape's own arrays, Python ints and a bool), bound at first use.
def _forward(*args: Any) -> None:
    global _forward
    _forward = _fastcall.bind(_vm.forward, _fastcall.FORWARD)
    _forward(*args)


def _sweep_from(*args: Any) -> int:
    global _sweep_from
    _sweep_from = _fastcall.bind(_vm.sweep_from, _fastcall.SWEEP_FROM)
    return _sweep_from(*args)


# ---------------------------------------------------------------------- the engine
class _Run:
    """Seeds for one reverse sweep of one tape."""

    __slots__ = ("tape", "adj", "reached")

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.adj = np.zeros(max(tape.top, 1))
        self.reached = np.zeros(max(tape.n, 1), np.uint8)

    def seed(self, e: int, g: np.ndarray) -> None:
        code = self.tape.code
        o, n = code[W * e + OFF], code[W * e + SIZE]
        if n == 1:
            self.adj[o] += g.flat[0]
        else:
            self.adj[o: o + n] += g.reshape(-1)
        self.reached[e] = 1

    def grad(self, e: int) -> np.ndarray:
        o = self.tape.off(e)
        return self.adj[o: o + self.tape.size(e)]


def run_backward(roots: list, seeds: list[np.ndarray], retain_graph: bool,
                 inputs: list | None = None, allow_unused: bool = False) -> list | None:
    """Reverse sweep from ``roots`` (with output adjoints ``seeds``).

    With ``inputs`` None, gradients accumulate into the ``.grad`` of the leaves (and of
    tensors that called ``retain_grad()``); otherwise the gradients of ``inputs`` are
    returned and no ``.grad`` is touched. Tapes are swept newest first; an import from
    an older tape seeds that tape. Nothing is committed until every sweep succeeded.
    """
    pending: dict[int, _Run] = {}
    heap: list[tuple[int, int, Tape]] = []
    done: list[_Run] = []
    leaf_grads: list[tuple[Any, np.ndarray]] = []

    for t, g in zip(roots, seeds):
        if t._tape is None:
            if t._gfn is not None:
                raise RuntimeError(SECOND_BACKWARD)
            leaf_grads.append((t, g))  # backward() on a leaf itself
        else:
            _seed(pending, heap, t._tape, t._buf, g)

    while heap:
        tape = heapq.heappop(heap)[2]
        run = pending.pop(tape.id)
        tape.sync()
        err = _vm.sweep(tape._code, tape._consts, tape._aux, tape.val, run.adj, run.reached,
                        tape.freed, tape.n_eval, tape.n, tape.n, retain_graph)
        tape.n_eval = tape.n
        if err >= 0:
            _unfree(done, retain_graph)
            raise RuntimeError(SECOND_BACKWARD)
        done.append(run)
        reached = run.reached
        for e, leaf, ver in tape.leaves:
            if reached[e]:
                if leaf._version != ver:
                    _unfree(done, retain_graph)
                    raise _modified(leaf, ver)
                leaf_grads.append((leaf, run.grad(e)))
        if tape.links:
            for e, src, se in tape.links:
                if reached[e]:
                    _seed(pending, heap, src, se, run.grad(e))
            for e, imp in tape.imports.items():
                if imp[0] == "dead" and reached[e]:
                    _unfree(done, retain_graph)
                    raise RuntimeError(SECOND_BACKWARD)
        elif tape.has_dead:
            for e, imp in tape.imports.items():
                if imp[0] == "dead" and reached[e]:
                    _unfree(done, retain_graph)
                    raise RuntimeError(SECOND_BACKWARD)

    result = None
    if inputs is not None:
        result = [_gradient_of(t, done, leaf_grads, allow_unused) for t in inputs]
    else:  # commit: nothing above wrote outside the runs' own arrays
        for run in done:
            if run.tape.retained:
                for e, ref in list(run.tape.retained.items()):
                    t = ref()
                    if t is not None and run.reached[e]:
                        t._accumulate(run.grad(e))
        for leaf, g in leaf_grads:
            leaf._accumulate(g)
    if not retain_graph:
        for run in done:
            run.tape.release()
    return result


def _modified(leaf: Any, ver: int) -> RuntimeError:
    """PyTorch's error for a leaf changed in place after the graph that needs it was built."""
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [tensor of shape {list(leaf.shape)}] is at version "
        f"{leaf._version}; expected version {ver} instead. Change it after backward(), or "
        "build the graph again.")


def backward_scalar(t: Any, retain_graph: bool) -> None:
    """``t.backward()`` for a one-element ``t``: the common case of a training loop.

    When ``t``'s tape imports nothing from other tapes, one numba call clears the tape's
    scratch arrays, seeds 1 and sweeps; otherwise the general engine runs.
    """
    tape = t._tape
    if tape.links or tape.has_dead:
        run_backward([t], [np.ones(1)], retain_graph)
        return
    tape.sync()
    root = t._buf
    if tape.top > len(tape._adj):
        tape._adj = np.zeros(max(tape.top, 2 * len(tape._adj)))
    if tape.n > len(tape._reached):
        tape._reached = np.zeros(max(tape.n, 2 * len(tape._reached)), np.uint8)
    adj, reached = tape._adj, tape._reached
    err = _sweep_from(tape._code, tape._consts, tape._aux, tape.val, adj, reached,
                      tape.freed, tape.n_eval, tape.n, root, retain_graph)
    tape.n_eval = tape.n
    if err >= 0:
        raise RuntimeError(SECOND_BACKWARD)
    code = tape.code
    leaves = tape.leaves
    # The leaves' gradients first: the plan's one call (which checks versions), or every
    # check before anything is committed, then leaf by leaf.
    if leaves and not _gradblock.accumulate(tape, code, adj, reached, root):
        for e, leaf, ver in leaves:
            if leaf._version != ver and e <= root and reached[e]:
                if not retain_graph:
                    tape.freed[: root + 1][reached[: root + 1] != 0] = 0
                raise _modified(leaf, ver)
        _gradblock.add_general(tape, code, adj, reached, root)
    if tape.retained:
        for e, ref in list(tape.retained.items()):
            r = ref()
            if r is not None and e <= root and reached[e]:
                o = code[W * e + OFF]
                r._accumulate(adj[o: o + code[W * e + SIZE]])
    if not retain_graph:
        tape.release()


def _seed(pending: dict, heap: list, tape: Tape, e: int, g: np.ndarray) -> None:
    run = pending.get(tape.id)
    if run is None:
        run = pending[tape.id] = _Run(tape)
        heapq.heappush(heap, (-tape.id, len(heap) + len(pending), tape))
    run.seed(e, g)


def _unfree(done: list[_Run], retain_graph: bool) -> None:
    """Undo the freed marks of sweeps that succeeded before a later failure."""
    if not retain_graph:
        for run in done:
            n = run.tape.n
            run.tape.freed[:n][run.reached[:n] != 0] = 0


def _gradient_of(t: Any, done: list[_Run], leaf_grads: list, allow_unused: bool):
    total = None
    if t._tape is not None:
        for run in done:
            if run.tape is t._tape and run.reached[t._buf]:
                g = run.grad(t._buf)
                total = g.copy() if total is None else total + g
    else:
        for leaf, g in leaf_grads:
            if leaf is t:
                total = g.copy() if total is None else total + g
    if total is None:
        if not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior.")
        return None
    return total.reshape(t._shape)
