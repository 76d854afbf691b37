"""Record once, replay in numba: ``trace``, ``value_and_grad`` and ``grad``.

The first call runs ``f`` eagerly on placeholder tensors, recording a private tape. Later
calls copy the inputs into the tape's input entries and run forward and reverse sweeps in
one numba call. Python control flow that reads a traced value is recorded as a **guard**
(the comparison and its outcome); a replay whose guards do not hold is traced again for
the new path, and both traces are kept, so results always equal eager evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _replay, _vm
from ._state import STATE
from .optable import BY_CODE
from .tape import OFF, Tape, W
from .tensor import Tensor, _lazy, float64

MAX_TRACES = 8  # traces (paths) kept per input shape
_F64 = np.dtype(np.float64)  # a singleton: compared by identity on the hot path


class TraceError(RuntimeError):
    """A traced function did something a trace cannot replay faithfully."""


class _Trace:
    """One recorded path of a function: the program arrays, guards and inputs."""

    __slots__ = ("tape", "prog", "val_offset", "sizes", "shapes", "captured", "out_shape",
                 "fresh")

    def __init__(self, f: Callable, args: Sequence[np.ndarray], argnums: tuple[int, ...],
                 need_scalar: bool) -> None:
        _vm.prepare_replay()
        tape = Tape()
        saved = STATE.tape, STATE.trace, STATE.grad_enabled, STATE.guards
        STATE.tape, STATE.trace, STATE.grad_enabled, STATE.guards = tape, tape, True, []
        try:
            inputs = []
            for k, a in enumerate(args):
                e = tape._import_entry(a.size, 1 if k in argnums else 0)
                tape.val[tape.top - a.size: tape.top] = a.reshape(-1)
                inputs.append(_lazy(tape, e, a.shape, a.size, float64, k in argnums))
            out = f(*inputs)
            guards = STATE.guards
        finally:
            STATE.tape, STATE.trace, STATE.grad_enabled, STATE.guards = saved
        if not isinstance(out, Tensor):
            raise TraceError(f"a traced function must return a wengert Tensor, got "
                             f"{type(out).__name__}")
        self.out_shape = out._shape
        if need_scalar:
            self.check_scalar()
        if out._tape is not tape:  # the output does not depend on the inputs
            out = _lazy_copy(tape, out)
        tape.forward()
        n, top = tape.n, tape.top
        meta = [top, out._buf, len(args)] + list(range(len(args)))  # inputs: entries 0..
        meta += [len(guards)] + [e for e, _ in guards]
        code = np.ascontiguousarray(tape._code[:n])
        aux = tape._aux[: tape._na]
        keep = np.zeros(n, np.uint8)  # values read after the replay: always stored
        keep[out._buf] = 1
        for e, _ in guards:
            keep[e] = 1
        low = _vm.lower(code, np.ascontiguousarray(tape._consts[:n]), aux, out._buf, keep)
        ints = np.concatenate((np.array([len(meta)] + meta + [low.size], np.int64), low, aux))
        floats = np.concatenate((tape._consts[:n].reshape(-1), tape.val[:top], np.zeros(top),
                                 np.array([v for _, v in guards], np.float64)))
        # (code, ints, floats, flags): see _replay.py for the layout.
        self.prog = (code, ints, floats,
                     np.zeros(2 * n, np.uint8))
        self.val_offset = 2 * n  # where val starts in floats
        self.fresh = True  # made by tracing, not yet run as a program
        self.tape = tape
        self.sizes = [a.size for a in args]
        self.shapes = [a.shape for a in args]
        # Leaves captured from outside f are constants of the trace; a leaf changed in
        # place since (its version moved) is copied in again before the next replay.
        self.captured = [[t, ver, e] for key, (t, ver, e) in tape.imp_cache.items()
                         if isinstance(key, int) and t is not None]

    def refresh(self) -> None:
        """Copy captured leaves that changed in place since tracing into the arena."""
        val, code = self.prog[2][self.val_offset:], self.tape.code
        for item in self.captured:
            t, ver, e = item
            if t._version != ver or t._ptape is not None:
                o = code[W * e + OFF]
                v = t._values().reshape(-1)
                val[o: o + v.size] = v
                item[1] = t._version

    def __len__(self) -> int:
        return self.tape.n

    def check_scalar(self) -> None:
        if math.prod(self.out_shape) != 1:
            raise TraceError("value_and_grad/grad need a function with a scalar output; got "
                             f"shape {list(self.out_shape)}")


def _lazy_copy(tape: Tape, t: Tensor) -> Tensor:
    from .optable import C
    from .tensor import _record_unary

    saved = STATE.tape
    STATE.tape = tape
    try:
        return _record_unary(C.COPY, t, rg=False, name=None)
    finally:
        STATE.tape = saved


def _as_array(a: Any) -> np.ndarray:
    if isinstance(a, Tensor):
        return np.array(a._values(), dtype=np.float64)
    return np.asarray(a, dtype=np.float64)


class Compiled:
    """A function traced into tapes and replayed by numba (see ``wengert.trace``).

    >>> import wengert
    >>> c = wengert.trace(lambda x: (x ** 2).sum(), [1.0, 2.0])
    >>> c.value_and_grad([3.0, 4.0])
    (25.0, array([6., 8.]))
    """

    def __init__(self, f: Callable, argnums: int | Sequence[int] = 0,
                 max_traces: int = MAX_TRACES) -> None:
        self.f = f
        self.argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        self._single = isinstance(argnums, int)
        self.max_traces = max_traces
        self.traces: dict[tuple, list[_Trace]] = {}
        self.n_traces = 0  # how many times f was traced
        self._last: _Trace | None = None  # the trace the last call used
        self.__doc__ = getattr(f, "__doc__", None)

    # ------------------------------------------------------------------ tracing
    def _find(self, arrays: list[np.ndarray], x: np.ndarray, need_scalar: bool = True) -> _Trace:
        """A trace whose guards hold at ``x`` (tracing ``f`` anew if none does)."""
        key = tuple(a.shape for a in arrays)
        traces = self.traces.get(key)
        if traces:
            for k, tr in enumerate(traces):
                if tr.captured:
                    tr.refresh()
                _, ok = _replay.evaluate(*tr.prog, x)
                if ok:
                    if k:
                        traces.insert(0, traces.pop(k))  # most recently used first
                    return tr
        tr = _Trace(self.f, arrays, self.argnums, need_scalar)
        self.n_traces += 1
        traces = self.traces.setdefault(key, [])
        traces.insert(0, tr)
        del traces[self.max_traces:]
        if len(self.traces) > 4 * self.max_traces:  # many shapes: forget the oldest
            del self.traces[next(iter(self.traces))]
        return tr

    def _inputs(self, args: tuple) -> tuple[list[np.ndarray], np.ndarray]:
        arrays = [_as_array(a) for a in args]
        for k in self.argnums:
            if k >= len(arrays):
                raise TypeError(f"argnums={self.argnums} but the function got {len(arrays)} "
                                "argument(s)")
        x = arrays[0].reshape(-1) if len(arrays) == 1 else np.concatenate(
            [a.reshape(-1) for a in arrays])
        return arrays, np.ascontiguousarray(x, dtype=np.float64)

    def trace_for(self, *args: Any) -> _Trace:
        """The trace (path) of the function at these arguments, traced if needed."""
        arrays, x = self._inputs(args)
        self._last = self._find(arrays, x, need_scalar=False)
        return self._last

    # ------------------------------------------------------------------ calls
    def value(self, *args: Any) -> Any:
        """f(*args) by replay: a float for a scalar output, else a numpy array."""
        arrays, x = self._inputs(args)
        # _find runs the candidates (evaluate) and returns one whose guards hold, so its
        # value is in the arena already: read it instead of evaluating again.
        tr = self._find(arrays, x, need_scalar=False)
        f, ok = _replay.evaluate(*tr.prog, x) if tr.fresh else (None, True)
        tr.fresh = False
        if not ok:
            raise TraceError("the traced function takes a different path each time it is "
                             "traced at the same input")
        if f is None:
            out = int(tr.prog[1][2])
            f = tr.prog[2][tr.val_offset + tr.tape.code[W * out + OFF]]
        if tr.out_shape == ():
            return float(f)
        out = int(tr.prog[1][2])
        o = tr.val_offset + tr.tape.code[W * out + OFF]
        return tr.prog[2][o: o + math.prod(tr.out_shape)].reshape(tr.out_shape).copy()

    __call__ = value

    def value_and_grad(self, *args: Any) -> tuple[float, Any]:
        """(f(*args), gradient with respect to the ``argnums`` arguments)."""
        tr = self._last
        if len(args) == 1 and tr is not None:
            # Fast path: one float64 array argument of the last shape, the last path.
            x = args[0]
            if (type(x) is np.ndarray and x.dtype is _F64 and x.shape == tr.shapes[0]
                    and x.flags.c_contiguous):
                if tr.captured:
                    tr.refresh()
                if x.ndim == 1:
                    g = np.empty_like(x)
                    f, ok = _replay.evaluate_grad(*tr.prog, x, g)
                    if ok:
                        return f, g
                else:
                    g = np.empty(x.size)
                    f, ok = _replay.evaluate_grad(*tr.prog, x.reshape(-1), g)
                    if ok:
                        return f, g.reshape(x.shape)
            elif type(x) is float and tr.shapes[0] == ():  # a function of one Python float
                if tr.captured:
                    tr.refresh()
                g = np.empty(1)
                f, ok = _replay.evaluate_grad(*tr.prog, np.array((x,)), g)
                if ok:
                    return f, float(g[0])
        arrays, x = self._inputs(args)
        g = np.empty_like(x)
        # Try the kept traces for this shape directly (a failed guard costs one forward
        # sweep), most recently used first; trace anew when none holds.
        traces = self.traces.get(tuple(a.shape for a in arrays), [])
        for k, tr in enumerate(traces):
            tr.check_scalar()
            if tr.captured:
                tr.refresh()
            f, ok = _replay.evaluate_grad(*tr.prog, x, g)
            if ok:
                if k:
                    traces.insert(0, traces.pop(k))
                self._last = tr
                return f, self._split(g, arrays, args)
        for _ in range(2):
            tr = self._find(arrays, x)
            tr.check_scalar()
            f, ok = _replay.evaluate_grad(*tr.prog, x, g)
            if ok:
                self._last = tr
                return f, self._split(g, arrays, args)
        raise TraceError("the traced function takes a different path each time it is traced "
                         "at the same input (does it use randomness or global state?)")

    def grad(self, *args: Any) -> Any:
        """The gradient with respect to the ``argnums`` arguments."""
        return self.value_and_grad(*args)[1]

    def _split(self, g: np.ndarray, arrays: list[np.ndarray], args: tuple) -> Any:
        out, k = [], 0
        for j, a in enumerate(arrays):
            if j in self.argnums:
                piece = g[k: k + a.size].reshape(a.shape)
                out.append(float(piece) if isinstance(args[j], (float, int)) else piece)
            k += a.size
        return out[0] if self._single else tuple(out)

    # ------------------------------------------------------------------ inspection
    def __len__(self) -> int:
        """Entries on the most recently used tape."""
        tr = self._latest()
        return len(tr) if tr is not None else 0

    def _latest(self) -> _Trace | None:
        for traces in self.traces.values():
            if traces:
                return traces[0]
        return None

    def listing(self) -> str:
        """The tape, one line per entry: ``v7 = sub v5 v6``."""
        tr = self._latest()
        if tr is None:
            return ""
        meta = tr.prog[1][1: 1 + int(tr.prog[1][0])]
        k = 3 + int(meta[2])
        guards = {int(e) for e in meta[k + 1: k + 1 + int(meta[k])]}
        return tape_text(tr.tape, n_inputs=len(tr.sizes), guards=guards)

    def __repr__(self) -> str:
        name = getattr(self.f, "__name__", "f")
        return (f"<wengert.Compiled {name}: {self.n_traces} trace(s), "
                f"{len(self)} tape entries>")


def tape_text(tape: Tape, n_inputs: int = 0, guards: set[int] | None = None) -> str:
    """A readable Wengert list of a whole tape: ``v7 = sub v5 v6    # value``."""
    tape.forward()
    lines = []
    code, consts, aux = tape.code, tape.consts, tape.aux
    guard_set = guards or set()
    for e in range(tape.n):
        op, i0, i1, x, _, size, _ = code[W * e: W * e + W]
        c0, c1 = consts[2 * e], consts[2 * e + 1]
        spec = BY_CODE[op]
        v = tape.value(e)
        shown = f"{v[0]:.6g}" if size == 1 else f"[{size} values]"
        if op == 0:
            what = f"input {e}" if e < n_inputs else (f"copy v{i0}" if i0 >= 0 else "const")
            lines.append(f"v{e} = {what}    # {shown}")
            continue
        args = []
        if spec.name == "cat":
            args = [f"v{aux[x + 3 + 2 * q]}" for q in range(aux[x + 2])]
        else:
            args = [f"v{i}" for i in (i0, i1) if i >= 0]
        if spec.family == "unary_c" or spec.name in ("clamp", "fill"):
            args.append(f"{c0:g}")
            if spec.name == "clamp":
                args.append(f"{c1:g}")
        elif spec.name == "select":
            args.append(f"[{int(c0)}]")
        note = "    guard" if e in guard_set else ""
        lines.append(f"v{e} = {spec.name} {' '.join(args)}    # {shown}{note}")
    return "\n".join(lines)


def trace(f: Callable, *example_args: Any, argnums: int | Sequence[int] = 0) -> Compiled:
    """Trace ``f`` at ``example_args`` and return the compiled function.

    >>> import wengert
    >>> c = wengert.trace(lambda x: (x[0] - 1) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2, [0.0, 0.0])
    >>> round(c.value([1.0, 1.0]), 6), len(c) > 0
    (0.0, True)
    """
    c = Compiled(f, argnums)
    c.trace_for(*example_args)
    return c


class ValueAndGrad(Compiled):
    """``Compiled`` whose call returns ``(value, gradient)``."""

    __call__ = Compiled.value_and_grad  # type: ignore[assignment]


class Grad(Compiled):
    """``Compiled`` whose call returns the gradient."""

    __call__ = Compiled.grad  # type: ignore[assignment]


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0) -> ValueAndGrad:
    """A function returning ``(f(*args), df/dargs)``, traced once and replayed in numba.

    Inputs may be floats, numpy arrays or tensors; the value is a float and the gradient
    a numpy array (a tuple of them for a tuple ``argnums``). Works with SciPy as written:
    ``scipy.optimize.minimize(wengert.value_and_grad(f), x0, jac=True, method="L-BFGS-B")``.

    >>> import wengert
    >>> vg = wengert.value_and_grad(lambda x: (x ** 2).sum())
    >>> vg([1.0, 2.0])
    (5.0, array([2., 4.]))
    """
    return ValueAndGrad(f, argnums)


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Grad:
    """A function returning ``df/dargs``, traced once and replayed in numba.

    >>> import wengert
    >>> wengert.grad(lambda x: (x ** 3).sum())([1.0, 2.0])
    array([ 3., 12.])
    """
    return Grad(f, argnums)
