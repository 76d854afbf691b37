"""The Wengert tape: flat arrays of entries and buffers, and the backward engine.

Recording appends to Python lists (no numpy or numba call per op); ``sync`` mirrors
the new part into numpy arrays right before a sweep. See ARCHITECTURE.md.
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from typing import Any

import numpy as np

from . import _vm
from ._state import STATE

_ids = itertools.count(1)

# An evaluated tape with more entries than this stops being the current tape, so that a
# long loop that never calls backward() does not grow one tape for ever.
SEAL_ENTRIES = 1 << 16

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    cap = max(need, 2 * len(arr), 64)
    new = np.zeros((cap,) + arr.shape[1:], arr.dtype)
    new[: len(arr)] = arr
    return new


class Tape:
    """One recording: entries (opcode, in0, in1, out, aux) over buffers in a value arena."""

    __slots__ = (
        "id", "code", "consts", "aux", "boff", "bsize", "rg", "top", "n", "n_eval",
        "_code", "_consts", "_aux", "_boff", "_bsize", "_rg", "_nc", "_na", "_nb",
        "val", "freed", "leaves", "links", "imports", "imp_cache", "names", "tensors",
        "retained", "__weakref__",
    )

    def __init__(self) -> None:
        self.id = next(_ids)
        self.code: list[int] = []  # 5 ints per entry
        self.consts: list[float] = []  # 2 floats per entry
        self.aux: list[int] = []
        self.boff: list[int] = []
        self.bsize: list[int] = []
        self.rg: list[int] = []
        self.top = 0  # arena elements in use
        self.n = 0  # entries recorded
        self.n_eval = 0  # entries whose values are computed
        self._code = np.zeros((64, 5), np.int64)
        self._consts = np.zeros((64, 2))
        self._aux = np.zeros(64, np.int64)
        self._boff = np.zeros(64, np.int64)
        self._bsize = np.zeros(64, np.int64)
        self._rg = np.zeros(64, np.uint8)
        self._nc = self._na = self._nb = 0  # how much of the lists is mirrored
        self.val = np.zeros(64)
        self.freed = np.zeros(64, np.uint8)  # per entry: swept by a backward without retain
        self.leaves: list[tuple[int, Any, int]] = []  # (buf, leaf tensor, version) needing grad
        self.links: list[tuple[int, Tape, int]] = []  # (buf, source tape, source buf)
        self.imports: dict[int, tuple] = {}  # buf -> ("leaf", t) | ("link", tape, buf) | ("dead", t)
        self.imp_cache: dict[Any, tuple] = {}
        self.names: dict[int, str | None] = {}  # entry -> grad_fn name (None: internal entry)
        self.tensors: list[weakref.ref] = []  # tensors recorded here, to release them
        self.retained: dict[int, weakref.ref] = {}  # buf -> tensor with retain_grad()

    def __len__(self) -> int:
        return self.n

    # ------------------------------------------------------------------ recording
    def entry(self, op: int, i0: int, i1: int, size: int, rg: int,
              c0: float = 0.0, c1: float = 0.0, aux: int = -1) -> int:
        """Append one entry writing a new buffer of ``size`` elements; return the buffer."""
        b = len(self.bsize)
        self.boff.append(self.top)
        self.bsize.append(size)
        self.rg.append(rg)
        self.top += size
        self.code += (op, i0, i1, b, aux)
        self.consts += (c0, c1)
        self.n += 1
        return b

    def buffer(self, size: int, rg: int) -> int:
        """A buffer that no entry writes (an import); its values are set by Python."""
        b = len(self.bsize)
        self.boff.append(self.top)
        self.bsize.append(size)
        self.rg.append(rg)
        self.top += size
        if self.top > len(self.val):
            self.val = _grow(self.val, self.top)
        return b

    def import_tensor(self, t: Any) -> int:
        """The buffer holding ``t``'s value on this tape (copied in at first use).

        Copying at import keeps eager semantics: a later in-place change of ``t`` does
        not change what this tape computes (and backward checks ``t``'s version).
        """
        src = t._tape
        if src is None:
            key = id(t)
            hit = self.imp_cache.get(key)
            if hit is not None and hit[1] == t._version:
                return hit[2]
            rg = 1 if t._rg else 0
            b = self.buffer(t._n, rg)
            o = self.boff[b]
            self.val[o: o + t._n] = t._data.reshape(-1)
            self.imp_cache[key] = (t, t._version, b)
            if rg:
                if t._gfn is None:
                    self.leaves.append((b, t, t._version))
                    self.imports[b] = ("leaf", t)
                else:  # a non-leaf whose graph was freed by an earlier backward
                    self.imports[b] = ("dead", t)
            return b
        key = (src.id, t._buf)
        hit = self.imp_cache.get(key)
        if hit is not None:
            return hit[2]
        src.forward()
        rg = 1 if t._rg else 0
        b = self.buffer(t._n, rg)
        so, o = src.boff[t._buf], self.boff[b]
        self.val[o: o + t._n] = src.val[so: so + t._n]
        self.imp_cache[key] = (src, 0, b)
        if rg:
            self.links.append((b, src, t._buf))
            self.imports[b] = ("link", src, t._buf)
        return b

    # ------------------------------------------------------------------ sweeps
    def sync(self) -> None:
        """Mirror what was recorded since the last sweep into the numpy arrays."""
        n, nc = self.n, self._nc
        if n > nc:
            if n > len(self._code):
                self._code = _grow(self._code, n)
                self._consts = _grow(self._consts, n)
                self.freed = _grow(self.freed, n)
            self._code.reshape(-1)[5 * nc: 5 * n] = self.code[5 * nc:]
            self._consts.reshape(-1)[2 * nc: 2 * n] = self.consts[2 * nc:]
            self._nc = n
        nb, nbo = len(self.bsize), self._nb
        if nb > nbo:
            if nb > len(self._boff):
                self._boff = _grow(self._boff, nb)
                self._bsize = _grow(self._bsize, nb)
                self._rg = _grow(self._rg, nb)
            self._boff[nbo:nb] = self.boff[nbo:]
            self._bsize[nbo:nb] = self.bsize[nbo:]
            self._rg[nbo:nb] = self.rg[nbo:]
            self._nb = nb
        na, nao = len(self.aux), self._na
        if na > nao:
            if na > len(self._aux):
                self._aux = _grow(self._aux, na)
            self._aux[nao:na] = self.aux[nao:]
            self._na = na
        if self.top > len(self.val):
            self.val = _grow(self.val, self.top)

    def forward(self) -> None:
        """Compute every pending entry: one numba call."""
        if self.n_eval < self.n:
            self.sync()
            _vm.forward(self._code, self._consts, self._aux, self._boff, self._bsize,
                        self.val, self.n_eval, self.n)
            self.n_eval = self.n
            if self.n > SEAL_ENTRIES and STATE.tape is self:
                STATE.tape = None  # later ops start a new tape; this one lives while used

    def value(self, buf: int) -> np.ndarray:
        """The values of ``buf`` (a view into the arena: copy before keeping it)."""
        self.forward()
        o = self.boff[buf]
        return self.val[o: o + self.bsize[buf]]

    def release(self, reached: np.ndarray) -> None:
        """Free the graph swept by a backward without retain_graph.

        Entries that were swept are marked freed (a second backward through them
        raises). Live tensors that no longer need this tape get their values copied
        out, so that the arena goes away with the last tensor that does need it.
        """
        n = self.n
        outs = self._code[:n, 3]
        self.freed[:n] |= reached[outs]
        if STATE.tape is self:
            STATE.tape = None
        keep = []
        for ref in self.tensors:
            t = ref()
            if t is None or t._tape is not self:
                continue
            if not t._rg or (t._entry >= 0 and self.freed[t._entry]):
                t._materialize()
            else:
                keep.append(ref)
        self.tensors = keep


# ---------------------------------------------------------------------- the engine
class _Run:
    """Seeds for one reverse sweep of one tape."""

    __slots__ = ("tape", "adj", "reached")

    def __init__(self, tape: Tape) -> None:
        tape.sync()
        self.tape = tape
        self.adj = np.zeros(max(tape.top, 1))
        self.reached = np.zeros(max(len(tape.bsize), 1), np.uint8)

    def seed(self, buf: int, g: np.ndarray) -> None:
        o = self.tape.boff[buf]
        self.adj[o: o + self.tape.bsize[buf]] += g.reshape(-1)
        self.reached[buf] = 1


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

    def seed(tape: Tape, buf: int, g: np.ndarray) -> None:
        run = pending.get(tape.id)
        if run is None:
            run = pending[tape.id] = _Run(tape)
            heapq.heappush(heap, (-tape.id, len(done) + len(heap), tape))
        run.seed(buf, g)

    for t, g in zip(roots, seeds):
        if t._tape is None:
            if t._gfn is not None:
                raise RuntimeError(SECOND_BACKWARD)
            leaf_grads.append((t, g))  # backward() on a leaf itself
        else:
            seed(t._tape, t._buf, g)

    while heap:
        _, _, tape = heapq.heappop(heap)
        run = pending.pop(tape.id)
        fstart = tape.n_eval
        tape.sync()
        err = _vm.sweep(tape._code, tape._consts, tape._aux, tape._boff, tape._bsize,
                        tape.val, run.adj, tape._rg, run.reached, tape.freed,
                        fstart, tape.n, tape.n)
        tape.n_eval = tape.n
        if err >= 0:
            raise RuntimeError(SECOND_BACKWARD)
        done.append(run)
        reached, adj, boff, bsize = run.reached, run.adj, tape.boff, tape.bsize
        for b, leaf, ver in tape.leaves:
            if reached[b]:
                if leaf._version != ver:
                    raise RuntimeError(
                        "one of the variables needed for gradient computation has been "
                        f"modified by an inplace operation: [tensor of shape {list(leaf.shape)}] "
                        f"is at version {leaf._version}; expected version {ver} instead. "
                        "Change it after backward(), or under no_grad() before building "
                        "the graph.")
                leaf_grads.append((leaf, adj[boff[b]: boff[b] + bsize[b]]))
        for b, src, sbuf in tape.links:
            if reached[b]:
                seed(src, sbuf, adj[boff[b]: boff[b] + bsize[b]])
        for b, imp in tape.imports.items():
            if imp[0] == "dead" and reached[b]:
                raise RuntimeError(SECOND_BACKWARD)

    result = None
    if inputs is not None:
        result = [_gradient_of(t, done, leaf_grads, allow_unused) for t in inputs]

    # Commit: nothing above wrote outside the runs' own arrays.
    if inputs is None:
        for run in done:
            tape = run.tape
            for b, ref in list(tape.retained.items()):
                t = ref()
                if t is not None and run.reached[b]:
                    o = tape.boff[b]
                    t._accumulate(run.adj[o: o + tape.bsize[b]])
        for leaf, g in leaf_grads:
            leaf._accumulate(g)
    if not retain_graph:
        for run in done:
            run.tape.release(run.reached)
    return result


def _gradient_of(t: Any, done: list[_Run], leaf_grads: list, allow_unused: bool):
    total = None
    if t._tape is not None:
        for run in done:
            if run.tape is t._tape and run.reached[t._buf]:
                o = run.tape.boff[t._buf]
                g = run.adj[o: o + t._n]
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
