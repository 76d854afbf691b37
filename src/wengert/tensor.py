"""The ``Tensor`` facade: PyTorch's names, recording entries on the current tape.

Every op here is plain Python: it checks shapes, appends one entry (or a few) to the
thread's current tape and returns a lazy tensor. Values are computed by one numba
call when somebody looks (``item()``, ``print``, ``numpy()``, ``bool()``, ``backward()``).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections import namedtuple
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import _fastcall, _gradblock, _vm
from . import tape as _tape_mod
from ._format import format_array, with_suffixes
from ._state import STATE
from .autograd.graph import entry_name, make_node
from .optable import OPS, UNARY, C

Tape = _tape_mod.Tape
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
_new = object.__new__
_NUM = (float, int, bool, np.floating, np.integer, np.bool_)

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _tape() -> Tape:
    t = STATE.tape
    if t is None:
        t = STATE.tape = Tape()
    return t


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


_bcache: dict[tuple, tuple[int, ...]] = {}


def broadcast_shapes(a: tuple, b: tuple, opname: str = "op") -> tuple[int, ...]:
    """numpy's broadcasting of two shapes, with PyTorch's error message."""
    key = (a, b)
    out = _bcache.get(key)
    if out is not None:
        return out
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    res = []
    for d, (x, y) in enumerate(zip(pa, pb)):
        if x == y or y == 1:
            res.append(x)
        elif x == 1:
            res.append(y)
        else:
            raise RuntimeError(
                f"{opname}: the size of tensor a ({x}) must match the size of tensor b ({y}) "
                f"at non-singleton dimension {d - n + len(a) if len(a) >= len(b) else d} "
                f"(shapes {list(a)} and {list(b)})")
    out = tuple(res)
    if len(_bcache) < 4096:
        _bcache[key] = out
    return out


def _result_dtype(a: np.dtype, b: np.dtype) -> np.dtype:
    return float64 if (a == float64 or b == float64) else int64


def _norm_dim(dim: int, ndim: int, opname: str) -> int:
    nd = max(ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(f"{opname}: dimension out of range (expected to be in range of "
                         f"[{-nd}, {nd - 1}], but got {dim})")
    return dim % nd


class Tensor:
    """A float64 (or int64/bool) array that records the operations applied to it.

    >>> import wengert
    >>> x = wengert.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x ** 2).sum()
    >>> y.backward()
    >>> x.grad
    tensor([2., 4.])
    """

    # Three states: a materialized leaf (``_data``), a lazy result (``_tape``, ``_buf``), or
    # a leaf updated in place whose new value is still pending (``_ptape``, ``_buf``).
    __slots__ = ("_tape", "_buf", "_entry", "_data", "_shape", "_n", "_dtype", "_rg",
                 "_grad", "_version", "_gfn", "_retain", "_ptape", "_shared", "__weakref__")

    # ------------------------------------------------------------------ construction
    def __init__(self, data: Any = None, *, dtype: Any = None, requires_grad: bool = False):
        arr = _to_array(data if data is not None else [], dtype)
        _init_leaf(self, arr, requires_grad)

    def _materialize(self) -> None:
        """Copy the value out of the tape and forget the tape (graph already freed)."""
        tape = self._tape
        if tape.n_eval <= self._buf:
            tape.forward()
        o = tape.code[_W * self._buf + _OFF]
        v = tape.val[o: o + self._n].reshape(self._shape)
        self._data = v.copy() if self._dtype is float64 else v.astype(self._dtype)
        if self._rg and self._entry >= 0:
            self._gfn = entry_name(tape, self._entry) or "CloneBackward0"
        self._tape = None
        self._buf = -1
        self._entry = -1

    def _settle(self) -> None:
        """Compute a leaf's pending in-place update and store it in ``_data``."""
        # Written into the existing array: numpy views of a leaf stay shared, as in PyTorch.
        self._data[...] = self._ptape.value(self._buf).reshape(self._shape)
        self._ptape = None
        self._buf = -1

    def _values(self) -> np.ndarray:
        """The value as a float64 array of this shape (may be a view into the tape)."""
        if self._tape is None:
            if self._ptape is not None:
                self._settle()
            d = self._data
            return d if d.dtype == float64 else d.astype(float64)
        return self._tape.value(self._buf).reshape(self._shape)

    def _accumulate(self, g: np.ndarray) -> None:
        gr = self._grad
        if gr is None:
            self._grad = _leaf(g.reshape(self._shape).copy())
        else:
            if gr._tape is not None:  # a grad that was itself made lazy by an op
                gr._materialize()
            elif gr._ptape is not None:
                gr._settle()
            d = gr._data
            f = d.flags
            if (d.dtype is float64 and g.dtype is float64 and g.size == d.size
                    and f.c_contiguous and f.writeable and g.flags.c_contiguous):
                v = d.ravel()  # one numba call: cheaper than numpy's += on small arrays
                _binary(_ADD, v, g.ravel(), v)
            else:
                d += g.reshape(self._shape)
            gr._version += 1

    # ------------------------------------------------------------------ inspection
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints (PyTorch's ``torch.Size``)."""
        return Size(self._shape)

    def size(self, dim: int | None = None) -> Any:
        """The shape, or its length along ``dim``."""
        if dim is None:
            return Size(self._shape)
        return self._shape[_norm_dim(dim, len(self._shape), "size")]

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._shape)

    def dim(self) -> int:
        """Number of dimensions (as ``ndim``)."""
        return len(self._shape)

    def numel(self) -> int:
        """Number of elements."""
        return self._n

    @property
    def dtype(self) -> np.dtype:
        """``wengert.float64``, ``wengert.int64`` or ``wengert.bool``."""
        return self._dtype

    def is_floating_point(self) -> bool:
        """Whether the dtype is float64 (wengert's only float type)."""
        return self._dtype == float64

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for gradients."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        """Whether operations on this tensor are recorded for gradients."""
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; returns self."""
        if requires_grad and self._dtype != float64:
            raise RuntimeError("requires_grad_: only Tensors of floating point dtype can require "
                               f"gradients (this one is {self._dtype.name})")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you "
                               "want to use a computed variable in a subgraph that doesn't "
                               "require differentiation use var_no_grad = var.detach().")
        if self._tape is not None:
            self._materialize()  # a leaf must own its value
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user, and for every tensor that needs no grad."""
        return not self._rg or (self._tape is None and self._gfn is None)

    @property
    def grad_fn(self) -> Any:
        """The backward node that made this tensor (None for leaves)."""
        if not self._rg:
            return None
        if self._tape is None:
            return None if self._gfn is None else make_node(self._gfn, None, -1)
        tape, e = self._tape, self._entry
        while tape.code[_W * e] == _GRAFT:  # changed under no_grad: the node from before
            e = tape.code[_W * e + 1]
        name = entry_name(tape, e) or "CloneBackward0"
        if self._swept():  # as if its value had been copied out (see Tape.release)
            return make_node(name, None, -1)
        return make_node(name, tape, e)

    def _swept(self) -> bool:
        """Whether a backward without retain_graph freed the graph that made this tensor."""
        tape = self._tape
        if tape is None:
            return self._gfn is not None
        e = self._entry
        return 0 <= e < tape._nc and tape.freed[e] != 0

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (None until a backward reaches this leaf)."""
        if self._grad is None and not self._retain and not self.is_leaf:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                "non-leaf Tensor.", UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None and tuple(value.shape) != self._shape:
            raise RuntimeError(f"assigned grad has data of shape {list(value.shape)} but the "
                               f"tensor has shape {list(self._shape)}")
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf."""
        return self._retain

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.is_leaf or self._retain:
            return
        if self._tape is not None:
            self._tape.retained[self._buf] = weakref.ref(self)
        self._retain = True

    @property
    def data(self) -> Tensor:
        """The values without the graph, sharing storage (``w.data -= lr * w.grad``)."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        value = _as_tensor(value)
        if self._tape is not None:
            self._materialize()
        elif self._ptape is not None:
            self._settle()
        if value._tape is None and value._ptape is None and value._data is self._data:
            return  # the result of an in-place op on .data: already written
        self._data = np.array(value._values(), dtype=self._dtype)
        self._shape, self._n = tuple(self._data.shape), self._data.size
        self._version += 1

    def _traced_read(self, what: str) -> bool:
        """Python reads a traced value: record a guard, or refuse (see compile.py)."""
        if self._tape is None or self._tape is not STATE.trace:
            return False
        if what == "bool" or self._dtype != float64:
            v = float(self._tape.value(self._buf)[0])
            STATE.guards.append((self._buf, v))
            return True
        from .compile import TraceError

        raise TraceError(
            f"{what} of a traced value would bake its current value into the trace as a "
            "constant. Keep it a tensor (e.g. use wengert.where(cond, a, b) or "
            "wengert.maximum instead of Python's if/max on values), or call the function "
            "eagerly.")

    def item(self) -> Any:
        """The single value as a Python number."""
        if self._n != 1:
            raise RuntimeError(f"item(): a Tensor with {self._n} elements cannot be converted "
                               "to Scalar")
        if STATE.trace is not None:
            self._traced_read("item()")
        tape = self._tape
        if tape is not None:
            if tape.n_eval <= self._buf:
                tape.forward()
            v = float(tape.val[tape.code[_W * self._buf + _OFF]])
        else:
            v = float(self._values().reshape(-1)[0])
        dt = self._dtype
        if dt is float64:
            return v
        if dt == bool_:
            return bool(v)
        return int(v)

    def tolist(self) -> Any:
        """Nested Python lists (a number for a 0-d tensor)."""
        if STATE.trace is not None and self._n == 1:
            self._traced_read("tolist()")
        elif STATE.trace is not None:
            self._traced_read("tolist() of several values")
        return self._np().tolist()

    def _np(self) -> np.ndarray:
        v = self._values()
        if self._tape is None and self._data.dtype == self._dtype:
            return self._data
        return v.astype(self._dtype) if self._dtype != float64 else v.copy()

    def numpy(self) -> np.ndarray:
        """A numpy array of the values (shared with a leaf, as in PyTorch)."""
        if self._rg:
            raise RuntimeError("numpy(): can't call numpy() on a Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        if self._ptape is not None:
            self._settle()
        if STATE.trace is not None:
            self._traced_read("numpy()")
        self._shared = True
        return self._np()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._rg:
            raise RuntimeError("can't convert a Tensor that requires grad to a numpy array. "
                               "Use tensor.detach().numpy() instead.")
        a = self._np()
        self._shared = True
        return a.astype(dtype) if dtype is not None else a

    def __float__(self) -> float:
        if self._n != 1:
            raise ValueError("only one element tensors can be converted to Python scalars "
                             f"(this one has shape {list(self._shape)})")
        return float(self.item())

    def __int__(self) -> int:
        if self._n != 1:
            raise ValueError("only one element tensors can be converted to Python scalars "
                             f"(this one has shape {list(self._shape)})")
        return int(self.item())

    def __index__(self) -> int:
        if self._dtype == float64:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._n != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._n} values is ambiguous")
        if STATE.trace is not None:
            self._traced_read("bool")
        return bool(self._values().reshape(-1)[0])

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._shape[0]):
            yield self[i]

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = format_array(self._np())
        suffixes = []
        if self._n == 0:
            body = "[]"
            if self._shape != (0,):
                suffixes.append(f"size={tuple(self._shape)}")
        if self._rg:
            gf = self.grad_fn
            suffixes.append("requires_grad=True" if gf is None else f"grad_fn=<{gf.name()}>")
        return with_suffixes(body, suffixes)

    __str__ = __repr__

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        >>> import wengert
        >>> x = wengert.tensor(3.0, requires_grad=True)
        >>> (x * x).backward()
        >>> x.grad
        tensor(6.)
        """
        if STATE.trace is not None:
            from .compile import TraceError

            raise TraceError("backward() inside a traced function: return the value and let "
                             "wengert.value_and_grad/grad differentiate it")
        if (gradient is None and self._n == 1 and self._rg and self._tape is not None
                and not create_graph and inputs is None):
            _tape_mod.backward_scalar(self, bool(retain_graph))  # the common case
            return
        from .autograd import backward as _backward

        _backward([self], None if gradient is None else [gradient], retain_graph,
                  create_graph, inputs)

    def detach(self) -> Tensor:
        """The same values, cut from the graph (``requires_grad=False``)."""
        if self._tape is None:
            if self._ptape is not None:
                self._settle()
            t = _leaf(self._data)  # shares storage, as in PyTorch
            t._shared = self._shared = True
            return t
        return _record_unary(C.COPY, self, rg=False, name="CloneBackward0")

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place; returns self."""
        if self._tape is not None:
            self._materialize()
        self._rg = False
        self._gfn = None
        return self

    def clone(self) -> Tensor:
        """A copy that stays in the graph (``CloneBackward0``)."""
        return _record_unary(C.COPY, self, name="CloneBackward0")

    def contiguous(self) -> Tensor:
        """Self: wengert tensors are always contiguous."""
        return self

    # ------------------------------------------------------------------ arithmetic
    # The hot paths: a float tensor with a Python number, or with a float tensor of the
    # same shape, go straight to _fast1/_fast2; everything else takes the general route.
    def __add__(self, o: Any) -> Tensor:
        if self._dtype is float64:
            to = type(o)
            if to is float or to is int:
                return _fast1(self, _ADD_C, o)
            if to is Tensor and o._dtype is float64:
                if o._shape == self._shape:
                    return _fast2(self, o, _ADD)
                return _record_binary(_ADD, self, o, "add", float64)  # (the row's grad_fn)
        return _arith(self, o, C.ADD, C.ADD_C, "add")

    __radd__ = __add__

    def __sub__(self, o: Any) -> Tensor:
        if self._dtype is float64:
            to = type(o)
            if to is float or to is int:
                return _fast1(self, _SUB_C, o)
            if to is Tensor and o._dtype is float64:
                if o._shape == self._shape:
                    return _fast2(self, o, _SUB)
                return _record_binary(_SUB, self, o, "sub", float64)  # (the row's grad_fn)
        return _arith(self, o, C.SUB, C.SUB_C, "sub")

    def __rsub__(self, o: Any) -> Tensor:
        if self._dtype is float64 and (type(o) is float or type(o) is int):
            return _fast1(self, _RSUB_C, o)
        return _rconst(self, o, C.RSUB_C, "rsub")

    def __mul__(self, o: Any) -> Tensor:
        if self._dtype is float64:
            to = type(o)
            if to is float or to is int:
                return _fast1(self, _MUL_C, o)
            if to is Tensor and o._dtype is float64:
                if o._shape == self._shape:
                    return _fast2(self, o, _MUL)
                return _record_binary(_MUL, self, o, "mul", float64)  # (the row's grad_fn)
        return _arith(self, o, C.MUL, C.MUL_C, "mul")

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> Tensor:
        if self._dtype is float64:
            to = type(o)
            if to is float or to is int:
                return _fast1(self, _DIV_C, o)
            if to is Tensor and o._shape == self._shape and o._dtype is float64:
                return _fast2(self, o, _DIV)
        return _arith(self, o, C.DIV, C.DIV_C, "div", out=float64)

    def __rtruediv__(self, o: Any) -> Tensor:
        if self._dtype is float64 and (type(o) is float or type(o) is int):
            return _fast1(self, _RDIV_C, o)
        return _rconst(self, o, C.RDIV_C, "div", out=float64)

    def __pow__(self, o: Any) -> Tensor:
        if self._dtype is float64 and (type(o) is float or type(o) is int):
            if o == 2:  # the same op as square() (PowBackward0 too), without pow()
                return _fast1(self, _SQUARE, 0.0)
            return _fast1(self, _POW_C, o)
        return _arith(self, o, C.POW, C.POW_C, "pow")

    def __rpow__(self, o: Any) -> Tensor:
        if self._dtype is float64 and (type(o) is float or type(o) is int):
            return _fast1(self, _RPOW_C, o)
        return _rconst(self, o, C.RPOW_C, "pow")

    def __neg__(self) -> Tensor:
        return _record_unary(C.NEG, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _record_unary(C.ABS, self)

    def __matmul__(self, o: Any) -> Tensor:
        return matmul(self, o)

    def __rmatmul__(self, o: Any) -> Tensor:
        return matmul(o, self)

    add = __add__
    mul = __mul__
    sub = __sub__
    div = __truediv__
    pow = __pow__
    multiply = __mul__
    subtract = __sub__
    divide = __truediv__
    true_divide = __truediv__

    # comparisons: not differentiable, bool results
    def __lt__(self, o: Any) -> Tensor:
        return _compare(self, o, C.LT, C.LT_C)

    def __le__(self, o: Any) -> Tensor:
        return _compare(self, o, C.LE, C.LE_C)

    def __gt__(self, o: Any) -> Tensor:
        return _compare(self, o, C.GT, C.GT_C)

    def __ge__(self, o: Any) -> Tensor:
        return _compare(self, o, C.GE, C.GE_C)

    def __eq__(self, o: Any) -> Tensor:  # type: ignore[override]
        return _compare(self, o, C.EQ, C.EQ_C)

    def __ne__(self, o: Any) -> Tensor:  # type: ignore[override]
        return _compare(self, o, C.NE, C.NE_C)

    def __and__(self, o: Any) -> Tensor:
        return _compare(self, o, C.LOGICAL_AND, None)

    def __or__(self, o: Any) -> Tensor:
        return _compare(self, o, C.LOGICAL_OR, None)

    def __invert__(self) -> Tensor:
        if self._dtype != bool_:
            raise TypeError("~ is only defined here for bool tensors")
        return _record_unary(C.EQ_C, self, 0.0, dtype=bool_, rg=False)

    lt, le, gt, ge, eq, ne = __lt__, __le__, __gt__, __ge__, __eq__, __ne__

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient is 1 inside, 0 outside."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        lo = -math.inf if min is None else float(min)
        hi = math.inf if max is None else float(max)
        return _record_unary(C.CLAMP, self, lo, hi)

    clip = clamp

    def clamp_min(self, min: float) -> Tensor:
        """``clamp(min=min)``."""
        return self.clamp(min=min)

    def clamp_max(self, max: float) -> Tensor:
        """``clamp(max=max)``."""
        return self.clamp(max=max)

    def maximum(self, other: Tensor) -> Tensor:
        """Elementwise maximum with ``other`` (ties share the gradient)."""
        return _arith(self, other, C.MAXIMUM, None, "maximum")

    def minimum(self, other: Tensor) -> Tensor:
        """Elementwise minimum with ``other`` (ties share the gradient)."""
        return _arith(self, other, C.MINIMUM, None, "minimum")

    def float(self) -> Tensor:
        """As float64 (wengert's float type)."""
        return self.to(float64)

    def double(self) -> Tensor:
        """As float64."""
        return self.to(float64)

    def long(self) -> Tensor:
        """As int64 (values truncated; not differentiable)."""
        return self.to(int64)

    def int(self) -> Tensor:
        """As int64 (values truncated; not differentiable)."""
        return self.to(int64)

    def bool(self) -> Tensor:
        """As bool (nonzero is True; not differentiable)."""
        return self.to(bool_)

    def to(self, dtype: Any = None, *args: Any, **kwargs: Any) -> Tensor:
        """A copy with another dtype (float64, int64 or bool); devices are ignored."""
        dt = _dtype(dtype) if dtype is not None and not isinstance(dtype, str) else self._dtype
        if dt == self._dtype:
            return self
        v = self._values()
        if dt == int64:
            v = np.trunc(v)
        elif dt == bool_:
            v = (v != 0).astype(float64)
        return _leaf(v.astype(dt))

    def type_as(self, other: Tensor) -> Tensor:
        """As the dtype of ``other``."""
        return self.to(other._dtype)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Sum of all elements, or along ``dim`` (int or tuple)."""
        if dim is None and not keepdim and self._dtype is float64:
            return _reduce_all(self, _SUM)
        return _reduce(self, C.SUM, dim, keepdim, "sum")

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Mean of all elements, or along ``dim``."""
        if self._dtype != float64:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be a "
                               f"floating point dtype. Got: {self._dtype.name} (use .float())")
        if dim is None and not keepdim:
            return _reduce_all(self, _MEAN)
        return _reduce(self, C.MEAN, dim, keepdim, "mean", out=float64)

    def prod(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Product of all elements, or along ``dim`` (zeros handled exactly)."""
        return _reduce(self, C.PROD, dim, keepdim, "prod")

    def norm(self, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
        """The Euclidean norm (p=2) of all elements, or along ``dim``."""
        if p not in (2, 2.0, "fro"):
            return (self.abs() ** p).sum(dim=dim, keepdim=keepdim) ** (1.0 / p)
        return _reduce(self, C.NORM, dim, keepdim, "norm", out=float64)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) along ``dim``, computed without overflow."""
        return _reduce(self, C.LOGSUMEXP, dim, keepdim, "logsumexp", out=float64)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """Largest element; with ``dim``, a ``(values, indices)`` pair; with a tensor, maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return _reduce(self, C.MAX, None, False, "max")
        return MaxMin(_reduce(self, C.MAX_DIM, dim, keepdim, "max"),
                      _reduce(self, C.ARGMAX, dim, keepdim, "argmax", out=int64))

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """Smallest element; with ``dim``, a ``(values, indices)`` pair; with a tensor, minimum."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return _reduce(self, C.MIN, None, False, "min")
        return MaxMin(_reduce(self, C.MIN_DIM, dim, keepdim, "min"),
                      _reduce(self, C.ARGMIN, dim, keepdim, "argmin", out=int64))

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Largest values (ties share the gradient evenly)."""
        return _reduce(self, C.MAX, dim, keepdim, "amax", name="AmaxBackward0")

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Smallest values (ties share the gradient evenly)."""
        return _reduce(self, C.MIN, dim, keepdim, "amin", name="AminBackward0")

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the (first) largest element, overall or along ``dim``."""
        return _reduce(self, C.ARGMAX, dim, keepdim, "argmax", out=int64)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the (first) smallest element, overall or along ``dim``."""
        return _reduce(self, C.ARGMIN, dim, keepdim, "argmin", out=int64)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product (``self @ other``) of 1-D and 2-D tensors."""
        return matmul(self, other)

    def mm(self, other: Tensor) -> Tensor:
        """Product of two 2-D tensors."""
        if type(other) is Tensor and len(self._shape) == 2 and len(other._shape) == 2:
            return _matmul(self, other)
        if self.ndim != 2 or _as_tensor(other).ndim != 2:
            raise RuntimeError(f"mm: both arguments must be 2-D, got {self.ndim}-D and "
                               f"{_as_tensor(other).ndim}-D")
        return matmul(self, other)

    def mv(self, other: Tensor) -> Tensor:
        """Product of a 2-D and a 1-D tensor."""
        return matmul(self, other)

    def dot(self, other: Tensor) -> Tensor:
        """Inner product of two 1-D tensors."""
        other = _as_tensor(other)
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got {self.ndim}D and "
                               f"{other.ndim}D tensors")
        return matmul(self, other)

    def t(self) -> Tensor:
        """Transpose of a 2-D tensor (a 0-D or 1-D tensor is returned as is)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D")
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self) -> Tensor:
        """The transpose (all dimensions reversed)."""
        return self.t() if self.ndim <= 2 else self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        """The transpose of the last two dimensions."""
        return self.transpose(-2, -1)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two dimensions."""
        nd = self.ndim
        d0, d1 = _norm_dim(dim0, nd, "transpose"), _norm_dim(dim1, nd, "transpose")
        if nd < 2 or d0 == d1:
            return self
        if nd == 2:
            shape = (self._shape[1], self._shape[0])
            return _record_unary(C.TRANSPOSE, self, shape=shape,
                                 aux=(self._shape[0], self._shape[1]), name="TBackward0")
        perm = list(range(nd))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self.permute(*perm)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the dimensions (a gather on the tape)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        idx = np.arange(self._n).reshape(self._shape).transpose(dims)
        return _gather(self, idx, "PermuteBackward0")

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one dimension may be -1)."""
        new = _infer_shape(shape, self._n, self._shape)
        if new == self._shape:
            return self
        return _record_unary(C.COPY, self, shape=new, name="ViewBackward0")

    view = reshape

    def view_as(self, other: Tensor) -> Tensor:
        """``reshape`` to the shape of ``other``."""
        return self.reshape(other._shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dimensions ``start_dim..end_dim`` into one."""
        if not self._shape:
            return self.reshape(1)
        nd = self.ndim
        s, e = _norm_dim(start_dim, nd, "flatten"), _norm_dim(end_dim, nd, "flatten")
        new = self._shape[:s] + (_prod(self._shape[s: e + 1]),) + self._shape[e + 1:]
        return self.reshape(new)

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Drop dimensions of size 1 (all, or ``dim``)."""
        if dim is None:
            new = tuple(s for s in self._shape if s != 1)
        else:
            d = _norm_dim(dim, self.ndim, "squeeze")
            new = self._shape if self._shape[d] != 1 else self._shape[:d] + self._shape[d + 1:]
        if new == self._shape:
            return self
        return _record_unary(C.COPY, self, shape=new, name="SqueezeBackward0")

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a dimension of size 1 at ``dim``."""
        d = _norm_dim(dim, self.ndim + 1, "unsqueeze")
        new = self._shape[:d] + (1,) + self._shape[d:]
        return _record_unary(C.COPY, self, shape=new, name="UnsqueezeBackward0")

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes`` (-1 keeps a dimension)."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        pad = len(sizes) - self.ndim
        if pad < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                               f"greater or equal to the number of dimensions ({self.ndim})")
        target = tuple(self._shape[i - pad] if s == -1 else int(s) for i, s in enumerate(sizes))
        if broadcast_shapes(self._shape, target, "expand") != target:
            raise RuntimeError(f"expand: the expanded size {list(target)} is not compatible "
                               f"with the shape {list(self._shape)}")
        return _expand(self, target, name="ExpandBackward0")

    def expand_as(self, other: Tensor) -> Tensor:
        """``expand`` to the shape of ``other``."""
        return self.expand(other._shape)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key: Any) -> Tensor:
        if type(key) is int and self._dtype is float64 and len(self._shape) == 1:
            return _select(self, key)  # x[0] of a float vector: the common case
        return _index(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Write values in place (numpy's indexing and broadcasting).

        On a tensor that is part of a graph the write is recorded (PyTorch's
        ``CopySlices``): the written positions get their gradient from ``value``, the
        others from the tensor as it was. A leaf that requires grad is written only under
        ``no_grad``.

        >>> import wengert
        >>> x = wengert.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = x * 2
        >>> y[0] = 0.0
        >>> y.sum().backward()
        >>> x.grad
        tensor([0., 2., 2.])
        """
        if isinstance(key, Tensor):
            key = key._np()
        if isinstance(key, tuple):
            key = tuple(k._np() if isinstance(k, Tensor) else k for k in key)
        if self._rg:
            if self._tape is None and self._gfn is None:  # a leaf
                if STATE.grad_enabled:
                    raise RuntimeError(
                        "__setitem__: a leaf Variable that requires grad is being used in an "
                        "in-place operation. Wrap the update in `with wengert.no_grad():`.")
            elif self._tape is not None:  # part of a graph: record the write
                self._inplace(_copy_slices(self, key, value), "__setitem__")
                return
        if self._tape is not None:
            self._materialize()
        elif self._ptape is not None:
            self._settle()
        v = value._np() if isinstance(value, Tensor) else value
        self._data[key] = v
        self._version += 1

    # ------------------------------------------------------------------ in place
    def _inplace(self, result: Tensor, opname: str) -> Tensor:
        if result._shape != self._shape:
            raise RuntimeError(f"{opname}: output with shape {list(self._shape)} doesn't match "
                               f"the broadcast shape {list(result._shape)}")
        if result._dtype != self._dtype and self._dtype != float64:
            raise RuntimeError(f"{opname}: result type {result._dtype.name} can't be cast to "
                               f"the desired output type {self._dtype.name}")
        if self._tape is None and not result._rg:
            # A leaf stays a leaf; its new value is computed with the next sweep, so an
            # update like x.sub_(lr * x.grad) costs no numba call of its own.
            if result._tape is None or self._shared:
                # Storage seen from outside (numpy(), detach(), .data): write it now.
                self._data[...] = result._values()
                self._ptape = None
            else:
                self._ptape, self._buf = result._tape, result._buf
                ref = weakref.ref(self)
                result._tape.tensors.append(ref)
                result._tape.pending.append(ref)
        else:  # rebind to the new entry: earlier users keep the old buffer (SSA)
            if self._rg and not result._rg and self._tape is not None:
                # Under no_grad, on a tensor of a graph: it keeps its place in the graph
                # (the change is invisible to autograd, as in PyTorch).
                result = _graft(self, result)
            if self._tape is not None and self._retain:
                self._tape.retained.pop(self._buf, None)
            self._tape, self._buf, self._entry = result._tape, result._buf, result._entry
            self._data, self._rg, self._gfn, self._ptape = None, result._rg, None, None
            result._tape.tensors.append(weakref.ref(self))
            if self._retain:
                self._tape.retained[self._buf] = weakref.ref(self)
        self._version += 1
        return self

    def _check_leaf_inplace(self, opname: str) -> None:
        if self._rg and self._tape is None and self._gfn is None and STATE.grad_enabled:
            raise RuntimeError(
                f"{opname}: a leaf Variable that requires grad is being used in an in-place "
                "operation. Wrap the update in `with wengert.no_grad():`.")

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        """In-place ``self += alpha * other``."""
        if alpha == 1.0 and _update(self, other, _ADD, _ADD_C):  # (no graph: see _update)
            return self
        self._check_leaf_inplace("add_")
        return self._inplace(self + (other * alpha if alpha != 1.0 else other), "add_")

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        """In-place ``self -= alpha * other``."""
        if alpha == 1.0 and _update(self, other, _SUB, _SUB_C):  # (no graph: see _update)
            return self
        self._check_leaf_inplace("sub_")
        return self._inplace(self - (other * alpha if alpha != 1.0 else other), "sub_")

    def mul_(self, other: Any) -> Tensor:
        """In-place ``self *= other``."""
        if _update(self, other, _MUL, _MUL_C):
            return self
        self._check_leaf_inplace("mul_")
        return self._inplace(self * other, "mul_")

    def div_(self, other: Any) -> Tensor:
        """In-place ``self /= other``."""
        if _update(self, other, _DIV, _DIV_C):
            return self
        self._check_leaf_inplace("div_")
        return self._inplace(self / other, "div_")

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        """In-place ``clamp``."""
        self._check_leaf_inplace("clamp_")
        return self._inplace(self.clamp(min, max), "clamp_")

    def fill_(self, value: float) -> Tensor:
        """Set every element to ``value``."""
        self._check_leaf_inplace("fill_")
        if self._tape is None:
            self._ptape = None  # a pending update is overwritten anyway
            self._data.fill(value)
            self._version += 1
            return self
        return self._inplace(_record_unary(C.FILL, self, float(value)), "fill_")

    def zero_(self) -> Tensor:
        """Set every element to 0."""
        if self._tape is None and not (self._rg and self._gfn is None and STATE.grad_enabled):
            self._ptape = None  # (fill_ written out: every step of a loop zeroes its grads)
            self._data.fill(0.0)
            self._version += 1
            return self
        return self.fill_(0.0)

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape) into self."""
        self._check_leaf_inplace("copy_")
        src = _as_tensor(src)
        if src._shape != self._shape:
            src = src.expand(self._shape)
        # Always a recorded copy: a requires-grad source under no_grad copies values only.
        copied = _record_unary(C.COPY, src, rg=src._rg and STATE.grad_enabled,
                               name="CopyBackwards")
        return self._inplace(copied, "copy_")

    # ``w -= lr * w.grad`` is one call: the in-place method itself.
    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_


class Size(tuple):
    """The shape of a tensor: a tuple that prints like ``torch.Size([2, 3])``."""

    def numel(self) -> int:
        """Number of elements of a tensor of this shape."""
        return _prod(self)

    def __repr__(self) -> str:
        return f"wengert.Size({list(self)})"


# ---------------------------------------------------------------------- helpers
def _dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return float64
    if dt.kind in "iu":
        return int64
    if dt.kind == "b":
        return bool_
    raise TypeError(f"unsupported dtype {dt}: wengert has float64, int64 and bool tensors")


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data._np()
    elif isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        arr = np.array([_to_array(d) for d in data])
    else:
        arr = np.asarray(data)
    dt = _dtype(dtype) if dtype is not None else (
        _dtype(arr.dtype) if arr.dtype.kind in "fiub" else None)
    if dt is None:
        raise TypeError(f"can't make a tensor from data of type {arr.dtype}")
    return np.array(arr, dtype=dt, copy=True)


def _init_leaf(t: Tensor, arr: np.ndarray, requires_grad: bool) -> None:
    if requires_grad and arr.dtype != float64:
        raise RuntimeError("Only Tensors of floating point dtype can require gradients "
                           f"(got dtype {arr.dtype.name}); pass float data or dtype=float64")
    t._tape, t._buf, t._entry, t._data = None, -1, -1, arr
    t._shape, t._n, t._dtype = tuple(arr.shape), arr.size, arr.dtype
    t._rg, t._grad, t._version, t._gfn, t._retain = bool(requires_grad), None, 0, None, False
    t._ptape = None
    t._shared = False


def _leaf(arr: np.ndarray, requires_grad: bool = False) -> Tensor:
    t = _new(Tensor)
    _init_leaf(t, arr, requires_grad)
    return t


def _lazy(tape: Tape, buf: int, shape: tuple, n: int, dtype: np.dtype, rg: bool) -> Tensor:
    """The tensor of buffer ``buf``, the entry just recorded on ``tape``."""
    t = _new(Tensor)
    t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
        tape, buf, tape.n - 1, None, shape, n, dtype, rg)
    t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
        None, 0, None, False, None, False)
    tape.tensors.append(_wref(t))
    return t


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return _leaf(_to_array(x))


def _bufin(tape: Tape, t: Tensor) -> int:
    return t._buf if t._tape is tape else tape.import_tensor(t)


_wref = weakref.ref
_W, _OFF = _tape_mod.W, _tape_mod.OFF
_GRAFT = C.GRAFT
_ADD_C, _SUB_C, _RSUB_C, _MUL_C, _DIV_C, _RDIV_C, _POW_C, _RPOW_C = (
    C.ADD_C, C.SUB_C, C.RSUB_C, C.MUL_C, C.DIV_C, C.RDIV_C, C.POW_C, C.RPOW_C)
_ADD, _SUB, _MUL, _DIV, _SQUARE = C.ADD, C.SUB, C.MUL, C.DIV, C.SQUARE


# Under no_grad, elementwise arithmetic of concrete values (materialized, up to this many
# elements) runs at once: nothing needs recording, and importing its operands into a tape
# would cost more than the op (an update like ``w -= lr * w.grad``). Larger ones are
# recorded as usual, where the vectorised sweep kernels serve them.
EAGER_MAX = 4096


# The eager kernels, called through their compiled entry points (see _fastcall: the
# callers pass float64 C arrays, an int opcode and a float): bound at first use.
def _unary(op: int, x: np.ndarray, c0: float, out: np.ndarray) -> None:
    global _unary
    _unary = _fastcall.bind(_vm.unary, _fastcall.UNARY)
    _unary(op, x, c0, out)


def _binary(op: int, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    global _binary
    _binary = _fastcall.bind(_vm.binary, _fastcall.BINARY)
    _binary(op, x, y, out)


def _concrete(x: Tensor) -> bool:
    """Whether ``x`` holds its value itself (no tape, no pending in-place update)."""
    return x._tape is None and x._ptape is None and x._n <= EAGER_MAX


def _update(x: Tensor, o: Any, op: int, op_c: int) -> bool:
    """``x op= o`` written into x's storage at once when x and o are concrete floats and
    there is no graph to record (no_grad, or neither requires grad: ``w.data -= ...``);
    False when the general (recorded) path must run instead."""
    st = STATE
    ge = st.grad_enabled
    if ((ge and x._rg) or x._tape is not None or x._ptape is not None
            or x._dtype is not float64 or x._n > EAGER_MAX or st.trace is not None):
        return False
    d = x._data
    f = d.flags
    if not (f.c_contiguous and f.writeable):  # (the kernels write a flat view of it)
        return False
    to = type(o)
    if to is Tensor:  # (o's size is x's, or 1: at most EAGER_MAX)
        if (o._tape is not None or o._ptape is not None or o._dtype is not float64
                or (ge and o._rg) or not (o._shape == x._shape
                                          or (o._n == 1 and len(o._shape) <= len(x._shape)))):
            return False
        v = d.ravel()
        _binary(op, v, o._data.ravel(), v)
    elif to is float or to is int:
        v = d.ravel()
        _unary(op_c, v, float(o), v)
    else:
        return False
    x._version += 1
    return True


def _result(data: np.ndarray, shape: tuple, n: int) -> Tensor:
    """A new concrete float tensor holding ``data`` (what _leaf does, written out)."""
    t = _new(Tensor)
    t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
        None, -1, -1, data, shape, n, float64, False)
    t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
        None, 0, None, False, None, False)
    return t


_gradblock._result = _result


def _fast1(x: Tensor, op: int, c0: float, c1: float = 0.0) -> Tensor:
    """Record an elementwise op of a float tensor (and constants): the common case."""
    st = STATE
    ge = st.grad_enabled
    if (not ge and x._tape is None and x._ptape is None and x._n <= EAGER_MAX
            and st.trace is None and c1 == 0.0):
        shape = x._shape
        out = np.empty(shape)
        _unary(op, x._data.ravel(), float(c0), out.ravel())
        t = _new(Tensor)  # (_result, written out)
        t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
            None, -1, -1, out, shape, x._n, float64, False)
        t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
            None, 0, None, False, None, False)
        return t
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    elif tape.top > tape.flush_at:  # see Tape.entry
        tape.flush()
        tape = st.tape or _tape()
    b = x._buf if x._tape is tape else tape.import_tensor(x)
    rg = x._rg and ge
    n = x._n
    e = tape.n
    tape.code += (op, b, -1, -1, tape.top, n, 1 if rg else 0)
    tape.consts += (c0, c1)
    tape.top += n
    tape.n = e + 1
    t = _new(Tensor)
    t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
        tape, e, e, None, x._shape, n, float64, rg)
    t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
        None, 0, None, False, None, False)
    tape.tensors.append(_wref(t))
    return t


def _fast2(a: Tensor, b: Tensor, op: int) -> Tensor:
    """Record a binary op of two float tensors of one shape: the common case."""
    st = STATE
    ge = st.grad_enabled
    if not ge and _concrete(a) and _concrete(b) and st.trace is None:
        out = np.empty(a._shape)
        _binary(op, a._data.ravel(), b._data.ravel(), out.ravel())
        return _result(out, a._shape, a._n)
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    elif tape.top > tape.flush_at:  # see Tape.entry
        tape.flush()
        tape = st.tape or _tape()
    ia = a._buf if a._tape is tape else tape.import_tensor(a)
    ib = b._buf if b._tape is tape else tape.import_tensor(b)
    rg = (a._rg or b._rg) and ge
    n = a._n
    e = tape.n
    tape.code += (op, ia, ib, -1, tape.top, n, 1 if rg else 0)
    tape.consts += (0.0, 0.0)
    tape.top += n
    tape.n = e + 1
    t = _new(Tensor)
    t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
        tape, e, e, None, a._shape, n, float64, rg)
    t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
        None, 0, None, False, None, False)
    tape.tensors.append(_wref(t))
    return t


def _select(x: Tensor, i: int) -> Tensor:
    """Record x[i] of a 1-D float tensor (as _fast1, with a one-element output)."""
    n = x._shape[0]
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for dimension 0 with size {n}")
    st = STATE
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    elif tape.top > tape.flush_at:  # see Tape.entry
        tape.flush()
        tape = st.tape or _tape()
    b = x._buf if x._tape is tape else tape.import_tensor(x)
    rg = x._rg and st.grad_enabled
    e = tape.n
    tape.code += (_SELECT, b, -1, -1, tape.top, 1, 1 if rg else 0)
    tape.consts += (i % n, 0.0)
    tape.top += 1
    tape.n = e + 1
    t = _new(Tensor)
    t._tape, t._buf, t._entry, t._data, t._shape, t._n, t._dtype, t._rg = (
        tape, e, e, None, (), 1, float64, rg)
    t._grad, t._version, t._gfn, t._retain, t._ptape, t._shared = (
        None, 0, None, False, None, False)
    tape.tensors.append(_wref(t))
    return t


def _record_unary(op: int, x: Tensor, c0: float = 0.0, c1: float = 0.0, *,
                  dtype: np.dtype | None = None, rg: bool | None = None,
                  shape: tuple | None = None, aux: tuple | None = None,
                  name: str | None = "") -> Tensor:
    """One entry with one input (elementwise, or a copy/transpose with ``aux``)."""
    tape = STATE.tape
    if tape is None:
        tape = STATE.tape = Tape()
    b = x._buf if x._tape is tape else tape.import_tensor(x)
    if rg is None:
        rg = x._rg and STATE.grad_enabled
    if dtype is None:
        dtype = x._dtype if x._dtype == float64 or op in _INT_PRESERVING else float64
    if rg and dtype != float64:
        rg = False
    ax = -1
    if aux is not None:
        ax = len(tape.aux)
        tape.aux += aux
    ob = tape.entry(op, b, -1, x._n, 1 if rg else 0, c0, c1, ax)
    if name:
        tape.names[tape.n - 1] = name
    elif name is None:
        tape.names[tape.n - 1] = None
    return _lazy(tape, ob, x._shape if shape is None else shape, x._n, dtype, rg)


_INT_PRESERVING = {C.NEG, C.ABS, C.SQUARE, C.ADD_C, C.SUB_C, C.RSUB_C, C.MUL_C, C.POW_C,
                   C.CLAMP, C.FILL, C.COPY, C.TRANSPOSE, C.SIGN, C.RELU, C.SELECT}


# (shape a, shape b) -> (broadcast shape, its size, row layout or None), as computed below.
_layouts: dict[tuple, tuple] = {}


def _record_binary(op: int, a: Tensor, b: Tensor, opname: str, dtype: np.dtype,
                   rg: bool | None = None, name: str | None = "") -> Tensor:
    sa, sb = a._shape, b._shape
    rows = None
    if sa == sb:
        shape, n = sa, a._n
    else:
        hit = _layouts.get((sa, sb))
        if hit is None:
            shape = broadcast_shapes(sa, sb, opname)
            n = _prod(shape)
            if (a._n != n and a._n != 1) or (b._n != n and b._n != 1):
                rows = _row_layout(shape, n, sa, a._n, sb, b._n)
            if len(_layouts) < 4096:
                _layouts[(sa, sb)] = (shape, n, rows)
        else:
            shape, n, rows = hit
        if rows is None and ((a._n != n and a._n != 1) or (b._n != n and b._n != 1)):
            if a._n != n and a._n != 1:
                a = _expand(a, shape)
            if b._n != n and b._n != 1:
                b = _expand(b, shape)
    st = STATE
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    ia = a._buf if a._tape is tape else tape.import_tensor(a)
    ib = b._buf if b._tape is tape else tape.import_tensor(b)
    if rg is None:
        rg = (a._rg or b._rg) and st.grad_enabled and dtype == float64
    if tape.top > tape.flush_at:  # as in Tape.entry (written out: a hot path)
        tape.flush()
    ax = -1
    if rows is not None:
        ax = len(tape.aux)
        tape.aux += rows
    ob = tape.n
    tape.code += (op, ia, ib, ax, tape.top, n, 1 if rg else 0)
    tape.consts += (0.0, 0.0)
    tape.top += n
    tape.n = ob + 1
    if name:
        tape.names[ob] = name
    elif name is None:
        tape.names[ob] = None
    return _lazy(tape, ob, shape, n, dtype, rg)


def _row_mode(xs: tuple, nx: int, shape: tuple, q: int, n: int) -> tuple[int, int] | None:
    """How an operand of shape ``xs`` (padded to ``shape``'s rank) broadcasts when the
    output is viewed as (prod(shape[:q]), prod(shape[q:])): (row step, element stride)."""
    if nx == n:  # full
        return _prod(shape[q:]), 1
    if nx == 1:  # one value
        return 0, 0
    if all(d == 1 for d in xs[:q]) and xs[q:] == shape[q:]:  # one row, repeated
        return 0, 1
    if xs[:q] == shape[:q] and all(d == 1 for d in xs[q:]):  # one value per row
        return 1, 0
    return None


def _row_layout(shape: tuple, n: int, sa: tuple, na: int, sb: tuple,
                nb: int) -> tuple[int, ...] | None:
    """The aux of a binary entry broadcasting by whole rows (see ``_vm._binary_rows_fwd``):
    (outer, inner, step_a, stride_a, step_b, stride_b), or None (broadcast with EXPAND)."""
    nd = len(shape)
    xa = (1,) * (nd - len(sa)) + tuple(sa)
    xb = (1,) * (nd - len(sb)) + tuple(sb)
    for q in range(1, nd):
        ma = _row_mode(xa, na, shape, q, n)
        mb = _row_mode(xb, nb, shape, q, n) if ma is not None else None
        if mb is not None:
            outer = _prod(shape[:q])
            return (outer, n // outer, *ma, *mb)
    return None


def _expand(x: Tensor, shape: tuple, name: str | None = None) -> Tensor:
    """Broadcast ``x`` to ``shape`` with an EXPAND entry (internal unless named)."""
    nd = len(shape)
    xs = (1,) * (nd - len(x._shape)) + x._shape
    strides, acc = [0] * nd, 1
    for d in range(nd - 1, -1, -1):
        strides[d] = 0 if xs[d] == 1 else acc
        acc *= xs[d]
    t = _record_unary(C.EXPAND, x, aux=(nd, *shape, *strides), name=name, shape=shape)
    _set_size(t, _prod(shape))
    return t


def _arith(a: Tensor, o: Any, op: int, op_c: int | None, opname: str,
           out: np.dtype | None = None) -> Tensor:
    if isinstance(o, _NUM):
        if op_c is None and opname in ("maximum", "minimum"):
            o = _as_tensor(o)
        else:
            dt = out or (float64 if (a._dtype == float64 or isinstance(o, (float, np.floating)))
                         else int64)
            if opname == "pow" and a._dtype != float64 and isinstance(o, int) and o < 0:
                raise RuntimeError("pow: integers to negative integer powers are not allowed")
            return _record_unary(op_c, a, float(o), dtype=dt)
    elif not isinstance(o, Tensor):
        o = _as_tensor(o)
    dt = out or _result_dtype(a._dtype, o._dtype)
    if a._dtype == bool_ and o._dtype == bool_ and op in (C.ADD, C.MUL):
        # bool + bool is "or", bool * bool is "and" (PyTorch keeps bool)
        return _record_binary(C.LOGICAL_OR if op == C.ADD else C.LOGICAL_AND, a, o, opname,
                              bool_, rg=False)
    if op == C.POW and dt == int64 and bool((o._values() < 0).any()):
        raise RuntimeError("pow: integers to negative integer powers are not allowed")
    name = BY_CODE_NAME[op]
    return _record_binary(op, a, o, opname, dt, name=name)


def _rconst(a: Tensor, o: Any, op_c: int, opname: str, out: np.dtype | None = None) -> Tensor:
    if isinstance(o, _NUM):
        dt = out or (float64 if (a._dtype == float64 or isinstance(o, (float, np.floating)))
                     else int64)
        return _record_unary(op_c, a, float(o), dtype=dt)
    o = _as_tensor(o)
    return {"rsub": Tensor.__sub__, "div": Tensor.__truediv__, "pow": Tensor.__pow__}[opname](
        o, a)


def _compare(a: Tensor, o: Any, op: int, op_c: int | None) -> Tensor:
    if isinstance(o, _NUM) and op_c is not None:
        return _record_unary(op_c, a, float(o), dtype=bool_, rg=False)
    o = _as_tensor(o)
    return _record_binary(op, a, o, "compare", bool_, rg=False)


# Reductions along a dim are the "1" overloads in PyTorch's naming.
_DIM_NAMES = {C.SUM: "SumBackward1", C.MEAN: "MeanBackward1", C.PROD: "ProdBackward1"}


def _reduce(x: Tensor, op: int, dim: Any, keepdim: bool, opname: str,
            out: np.dtype | None = None, name: str = "") -> Tensor:
    dtype = out or (x._dtype if x._dtype == float64 else int64)
    rg = x._rg and STATE.grad_enabled and dtype == float64 and op not in (C.ARGMAX, C.ARGMIN)
    shape = x._shape
    if dim is None:
        if x._n == 0 and op in (C.MAX, C.MIN, C.ARGMAX, C.ARGMIN, C.MAX_DIM, C.MIN_DIM):
            raise RuntimeError(f"{opname}(): expected a non-empty tensor")
        layout = (1, x._n, 1)
        t = _record_unary(op, x, aux=layout, dtype=dtype, rg=rg, shape=(), name=name)
        _set_size(t, 1)
        if keepdim:
            t = t.reshape((1,) * len(shape))
        return t
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = sorted({_norm_dim(d, len(shape), opname) for d in dims}, reverse=True)
    if not shape:
        return _record_unary(C.COPY, x, name=None) if op not in (C.ARGMAX, C.ARGMIN) else \
            _record_unary(C.MUL_C, x, 0.0, dtype=int64, rg=False)
    if len(dims) > 1 and op not in (C.SUM, C.MEAN, C.MAX, C.MIN):
        raise RuntimeError(f"{opname}: reducing several dims at once is not supported")
    t = x
    for k, d in enumerate(dims):
        outer, n, inner = _prod(shape[:d]), shape[d], _prod(shape[d + 1:])
        if n == 0 and op in (C.MAX, C.MIN, C.ARGMAX, C.ARGMIN, C.MAX_DIM, C.MIN_DIM):
            raise IndexError(f"{opname}(): expected reduction dim {d} to have non-zero size")
        shape = shape[:d] + ((1,) if keepdim else ()) + shape[d + 1:]
        last = k == len(dims) - 1
        t = _record_unary(op, t, aux=(outer, n, inner), dtype=dtype, rg=rg, shape=shape,
                          name=(name or _DIM_NAMES.get(op, "")) if last else None)
        _set_size(t, outer * inner)
    return t


_SUM, _MEAN = C.SUM, C.MEAN


def _reduce_all(x: Tensor, op: int) -> Tensor:
    """Record the sum or mean of all elements of a float tensor: the common loss."""
    st = STATE
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    elif tape.top > tape.flush_at:  # see Tape.entry
        tape.flush()
        tape = st.tape or _tape()
    b = x._buf if x._tape is tape else tape.import_tensor(x)
    rg = x._rg and st.grad_enabled
    e = tape.n
    ax = len(tape.aux)
    tape.aux += (1, x._n, 1)
    tape.code += (op, b, -1, ax, tape.top, 1, 1 if rg else 0)
    tape.consts += (0.0, 0.0)
    tape.top += 1
    tape.n = e + 1
    return _lazy(tape, e, (), 1, float64, rg)


def _set_size(t: Tensor, n: int) -> None:
    """Shrink a just-recorded output buffer (reductions write fewer elements)."""
    t._tape.resize_last(n)
    t._n = n


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product of 1-D and 2-D tensors (``@``).

    >>> import wengert
    >>> wengert.tensor([[1.0, 2.0]]) @ wengert.tensor([3.0, 4.0])
    tensor([11.])
    """
    return _matmul(a, b)


def _matmul(a: Any, b: Any, tb: bool = False) -> Tensor:
    """``a @ b``; with ``tb``, ``a @ b.t()`` for a 2-D ``b`` without a transposed copy."""
    if type(a) is not Tensor:
        a = _as_tensor(a)
    if type(b) is not Tensor:
        b = _as_tensor(b)
    sa, sb = a._shape, b._shape
    if tb:
        sb = (sb[1], sb[0])
    la, lb = len(sa), len(sb)
    if la == 2 and lb == 2:  # (the usual case first)
        m, k = sa
        kb, n = sb
    else:
        if not la or not lb:
            raise RuntimeError("matmul: both arguments need at least 1 dimension, got "
                               f"shapes {list(sa)} and {list(sb)}")
        if la > 2 or lb > 2:
            raise RuntimeError("matmul: only 1-D and 2-D tensors are supported, got shapes "
                               f"{list(sa)} and {list(sb)}")
        m = sa[0] if la == 2 else 1
        k = sa[-1]
        n = sb[1] if lb == 2 else 1
        kb = sb[0]
    if k != kb:
        if len(sa) == 1 and len(sb) == 1:
            raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{k}] and src "
                               f"[{kb}] to have the same number of elements, but got {k} and "
                               f"{kb} elements respectively")
        raise RuntimeError(f"matmul: shapes cannot be multiplied ({m}x{k} and {kb}x{n}): "
                           f"tensors of shape {list(sa)} and {list(sb)}")
    nd = la * 2 + lb  # 6: mm, 5: mv, 4: vm, 3: dot
    shape = (m, n) if nd == 6 else ((m,) if nd == 5 else ((n,) if nd == 4 else ()))
    dtype = float64 if (a._dtype is float64 or b._dtype is float64) else _result_dtype(
        a._dtype, b._dtype)
    st = STATE
    tape = st.tape
    if tape is None:
        tape = st.tape = Tape()
    ia = a._buf if a._tape is tape else tape.import_tensor(a)
    ib = b._buf if b._tape is tape else tape.import_tensor(b)
    rg = (a._rg or b._rg) and st.grad_enabled and dtype == float64
    if tape.top > tape.flush_at:  # as in Tape.entry (written out: a hot path)
        tape.flush()
    ob, size = tape.n, m * n
    tape.code += (_MATMUL, ia, ib, len(tape.aux), tape.top, size, 1 if rg else 0)
    tape.consts += (0.0, 0.0)
    tape.aux += (m, k, n, 1 if tb else 0)
    tape.top += size
    tape.n = ob + 1
    if nd != 6:  # (MmBackward0 is the row's own name)
        tape.names[ob] = _MATMUL_NAMES[nd]
    return _lazy(tape, ob, shape, size, dtype, rg)


_MATMUL = C.MATMUL
_MATMUL_NAMES = {6: "MmBackward0", 5: "MvBackward0", 4: "MmBackward0", 3: "DotBackward0"}


def _infer_shape(shape: tuple, n: int, old: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("reshape: only one dimension can be inferred")
    if -1 in shape:
        rest = _prod(s for s in shape if s != -1)
        if rest == 0 or n % rest:
            raise RuntimeError(f"reshape: shape '{list(shape)}' is invalid for input of size {n}")
        shape = tuple(n // rest if s == -1 else s for s in shape)
    if _prod(shape) != n:
        raise RuntimeError(f"reshape: shape '{list(shape)}' is invalid for input of size {n} "
                           f"(input shape {list(old)})")
    return shape


# ---------------------------------------------------------------------- indexing
def _slice_dim(x: Tensor, d: int, start: int, step: int, count: int, keep: bool,
               name: str | None) -> Tensor:
    shape = x._shape
    outer, dl, inner = _prod(shape[:d]), shape[d], _prod(shape[d + 1:])
    new = shape[:d] + ((count,) if keep else ()) + shape[d + 1:]
    t = _record_unary(C.SLICE, x, aux=(outer, count, start, step, inner, dl), shape=new,
                      name=name)
    _set_size(t, outer * count * inner)
    return t


def _index(x: Tensor, key: Any) -> Tensor:
    shape = x._shape
    # Fast path: x[i] on a 1-D tensor (unpacking, Rosenbrock's x[0]).
    if type(key) is int and len(shape) == 1:
        if x._dtype is float64:
            return _select(x, key)
        n = shape[0]
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of bounds for dimension 0 with size {n}")
        t = _record_unary(_SELECT, x, key % n, dtype=x._dtype)
        t._shape = ()
        t._n = 1
        t._tape.resize_last(1)
        return t
    if not isinstance(key, tuple):
        key = (key,)
    if any(isinstance(k, (list, np.ndarray, Tensor)) for k in key):
        nkey = tuple(k._np() if isinstance(k, Tensor) else k for k in key)
        for k in nkey:
            if isinstance(k, np.ndarray) and k.dtype == np.bool_:
                if k.ndim > len(shape) or k.shape != shape[: k.ndim]:
                    raise IndexError(f"The shape of the mask {list(k.shape)} does not match "
                                     f"the shape of the indexed tensor {list(shape)}")
        try:
            idx = np.arange(x._n).reshape(shape)[nkey]
        except IndexError as err:
            raise IndexError(f"index: {err} (tensor of shape {list(shape)})") from None
        return _gather(x, idx, "IndexBackward0")
    # Basic indexing: ints, slices, None and one Ellipsis, one SLICE entry per dim.
    if key.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - n_real) + key[i + 1:]
    t, d, last = x, 0, None
    ops = []
    for k in key:
        if k is None:
            ops.append(("new", d))
            continue
        dim_in = len([o for o in ops if o[0] != "new"])
        size = shape[dim_in]
        if isinstance(k, (int, np.integer)) or (isinstance(k, Tensor) and k._n == 1):
            i = int(k)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dimension {dim_in} with size "
                                 f"{size}")
            ops.append(("int", d, i % size, size))
        elif isinstance(k, slice):
            st, sp, step = k.indices(size)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            cnt = len(range(st, sp, step))
            ops.append(("slice", d, st, step, cnt, size))
            d += 1
        else:
            raise IndexError(f"unsupported index {k!r}")
    real = [o for o in ops if o[0] != "new" and not (o[0] == "slice" and o[4] == o[5]
                                                     and o[3] == 1)]
    for j, o in enumerate(real):
        name = (("SelectBackward0" if o[0] == "int" else "SliceBackward0")
                if j == len(real) - 1 else None)
        if o[0] == "int":
            t = _slice_dim(t, o[1], o[2], 1, 1, False, name)
            last = t
        else:
            t = _slice_dim(t, o[1], o[2], o[3], o[4], True, name)
            last = t
    for o in ops:
        if o[0] == "new":
            t = t.unsqueeze(o[1])
    if last is None and t is x:
        return _record_unary(C.COPY, x, name="AliasBackward0")
    return t


def _graft(old: Tensor, new: Tensor) -> Tensor:
    """A GRAFT entry: the values of ``new``, the gradient passed to ``old`` (see optable)."""
    tape = _tape()
    ia, ib = _bufin(tape, old), _bufin(tape, new)
    ob = tape.entry(C.GRAFT, ia, ib, old._n, 1)
    tape.names[ob] = None  # internal: grad_fn is old's
    return _lazy(tape, ob, old._shape, old._n, old._dtype, True)


def _copy_slices(x: Tensor, key: Any, value: Any) -> Tensor:
    """``x`` with ``x[key] = value`` written, as entries: where(mask, value placed, x)."""
    shape, n = x._shape, x._n
    try:
        pos = np.arange(n).reshape(shape)[key]
    except IndexError as err:
        raise IndexError(f"__setitem__: {err} (tensor of shape {list(shape)})") from None
    region = np.shape(pos)
    pos = np.asarray(pos).reshape(-1)
    mask = np.zeros(n, np.bool_)
    mask[pos] = True
    if isinstance(value, Tensor) and value._rg:
        v = value if value._dtype is float64 else value.to(float64)
        if v._shape != region:
            v = v.expand(region) if len(v._shape) <= len(region) else v.reshape(region)
        inv = np.zeros(n, np.int64)
        inv[pos] = np.arange(pos.size)
        placed = _gather(v.reshape(-1), inv.reshape(shape), None)
    else:
        arr = np.zeros(shape)
        arr[key] = value._np() if isinstance(value, Tensor) else value
        placed = _leaf(arr)
    out = where(_leaf(mask.reshape(shape)), placed, x)
    out._tape.names[out._buf] = "CopySlices"
    return out


def _gather(x: Tensor, idx: np.ndarray, name: str | None) -> Tensor:
    flat = idx.reshape(-1)
    t = _record_unary(C.GATHER, x, aux=(flat.size, *flat.tolist()), shape=tuple(idx.shape),
                      name=name)
    _set_size(t, flat.size)
    return t


BY_CODE_NAME = {op.code: op.grad_fn for op in OPS}
_SELECT = C.SELECT


# ---------------------------------------------------------------------- free functions
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension.

    >>> import wengert
    >>> wengert.cat([wengert.ones(2), wengert.zeros(1)])
    tensor([1., 1., 0.])
    """
    return _join([_as_tensor(t) for t in tensors], dim, stack=False)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    return _join([_as_tensor(t) for t in tensors], dim, stack=True)


def _join(ts: list[Tensor], dim: int, stack: bool) -> Tensor:
    op = "stack" if stack else "cat"
    if not ts:
        raise RuntimeError(f"{op}(): expected a non-empty list of Tensors")
    ref = ts[0]._shape
    if stack:
        for t in ts:
            if t._shape != ref:
                raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                                   f"{list(ref)} and {list(t._shape)}")
        d = _norm_dim(dim, len(ref) + 1, op)
        shape = ref[:d] + (len(ts),) + ref[d:]
        outer = _prod(ref[:d])
        blocks = [_prod(ref[d:])] * len(ts)
    else:
        if not ref:
            raise RuntimeError("zero-dimensional tensor cannot be concatenated")
        d = _norm_dim(dim, len(ref), op)
        for t in ts:
            s = t._shape
            if len(s) != len(ref) or s[:d] != ref[:d] or s[d + 1:] != ref[d + 1:]:
                raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: "
                                   f"got {list(ref)} and {list(s)}")
        shape = ref[:d] + (sum(t._shape[d] for t in ts),) + ref[d + 1:]
        outer = _prod(ref[:d])
        blocks = [_prod(t._shape[d:]) for t in ts]
    dtype = float64 if any(t._dtype == float64 for t in ts) else ts[0]._dtype
    tape = STATE.tape
    if tape is None:
        tape = STATE.tape = Tape()
    bufs = [_bufin(tape, t) for t in ts]
    rg = any(t._rg for t in ts) and STATE.grad_enabled and dtype == float64
    n = _prod(shape)
    ax = len(tape.aux)
    tape.aux += (outer, sum(blocks), len(ts))
    for b, blk in zip(bufs, blocks):
        tape.aux += (b, blk)
    ob = tape.entry(C.CAT, -1, -1, n, 1 if rg else 0, aux=ax)
    tape.names[tape.n - 1] = "StackBackward0" if stack else "CatBackward0"
    return _lazy(tape, ob, shape, n, dtype, rg)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """Elementwise ``input if condition else other`` (broadcasting all three)."""
    cond = _as_tensor(condition)
    a, b = _as_tensor(input), _as_tensor(other)
    if a._dtype != b._dtype:
        a, b = a.to(float64), b.to(float64)
    shape = broadcast_shapes(broadcast_shapes(cond._shape, a._shape, "where"), b._shape, "where")
    n = _prod(shape)
    cond, a, b = (t if t._shape == shape else _expand(t, shape) for t in (cond, a, b))
    tape = STATE.tape
    if tape is None:
        tape = STATE.tape = Tape()
    ic, ia, ib = _bufin(tape, cond), _bufin(tape, a), _bufin(tape, b)
    rg = (a._rg or b._rg) and STATE.grad_enabled and a._dtype == float64
    ax = len(tape.aux)
    tape.aux.append(ic)
    ob = tape.entry(C.WHERE, ia, ib, n, 1 if rg else 0, aux=ax)
    return _lazy(tape, ob, shape, n, a._dtype, rg)


# ---------------------------------------------------------------------- table-driven methods
def _make_unary(code: int, doc: str):
    def method(self: Tensor) -> Tensor:
        if self._dtype is float64:
            return _fast1(self, code, 0.0)
        return _record_unary(code, self)

    method.__doc__ = doc
    return method


for _op in OPS:
    if _op.family == UNARY and _op.method:
        setattr(Tensor, _op.method, _make_unary(
            _op.code, f"Elementwise ``{_op.method}`` (grad_fn ``{_op.grad_fn}``)."))


Tensor.negative = Tensor.neg  # type: ignore[attr-defined]
Tensor.absolute = Tensor.abs  # type: ignore[attr-defined]
