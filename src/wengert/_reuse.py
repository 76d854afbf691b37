"""When a trace of a function may be reused by a later call: what the function reads.

``minimize(f, ...)`` traces ``f`` on every call unless it can prove the trace is still
what ``f`` computes. A trace bakes in everything ``f`` reads from outside its arguments:
globals, closure cells, defaults, the attributes it takes from modules, and the same for
the plain functions it calls. ``reads(f)`` returns those values (compared by value for
numbers and strings, by identity for functions, modules and classes); when any of them is
mutable (an array, a list, an object), or ``f`` is not a plain function, it returns None
and the caller traces again. Tensors are allowed: a trace refreshes captured tensors whose
version moved.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable
from typing import Any

import numpy as np

_SCALARS = (int, float, complex, bool, str, bytes, type(None), np.number, np.bool_)
_MISSING = object()
_MAX_DEPTH = 3
# Modules whose attributes are functions and constants that do not change while we run.
_FROZEN_MODULES = ("math", "cmath", "numpy", "wengert", "builtins", "operator", "functools")


def _names(code: types.CodeType) -> set[str]:
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _names(c)
    return out


def _value_key(v: Any, depth: int) -> Any:
    """A comparable stand-in for a value f reads, or _MISSING if it may change unseen."""
    from .tensor import Tensor

    if isinstance(v, _SCALARS):
        return (type(v), v)
    if isinstance(v, tuple):
        parts = tuple(_value_key(x, depth) for x in v)
        return _MISSING if any(p is _MISSING for p in parts) else ("tuple", parts)
    if isinstance(v, types.FunctionType):
        k = reads(v, depth + 1)
        return _MISSING if k is None else ("fn", id(v), k)
    if isinstance(v, types.ModuleType):
        root = v.__name__.split(".")[0]
        return ("module", id(v)) if root in _FROZEN_MODULES else _MISSING
    if isinstance(v, Tensor):  # an in-place change bumps the version (and may rebind it)
        return ("tensor", id(v), v._version)
    if isinstance(v, (types.BuiltinFunctionType, np.ufunc)):
        return ("id", id(v))
    if isinstance(v, type) and v.__module__.split(".")[0] in _FROZEN_MODULES:
        return ("id", id(v))
    return _MISSING


def reads(f: Callable, depth: int = 0) -> tuple | None:
    """What ``f`` reads from outside its arguments, or None when a trace of ``f`` must not
    be reused (see the module docstring).

    >>> A = 2.0
    >>> reads(lambda x: (x - A) ** 2) is not None
    True
    """
    code = getattr(f, "__code__", None)
    if not isinstance(f, types.FunctionType) or code is None or depth > _MAX_DEPTH:
        return None
    names = sorted(_names(code))
    g = f.__globals__
    key: list[Any] = [id(code)]
    modules = []
    for name in names:
        v = g.get(name, _MISSING)
        if v is _MISSING:
            v = getattr(builtins, name, _MISSING)
        if v is _MISSING:
            continue  # an attribute name, or a global that does not exist yet
        k = _value_key(v, depth)
        if k is _MISSING:
            return None
        key.append((name, k))
        if isinstance(v, types.ModuleType):
            modules.append(v)
    for mod in modules:  # np.pi, wengert.exp: the attributes f may take from its modules
        for name in names:
            v = getattr(mod, name, _MISSING)
            if v is not _MISSING:
                k = _value_key(v, depth)
                if k is _MISSING:
                    return None
                key.append((mod.__name__, name, k))
    for cell in f.__closure__ or ():
        try:
            v = cell.cell_contents
        except ValueError:  # a cell not bound yet
            return None
        k = _value_key(v, depth)
        if k is _MISSING:
            return None
        key.append(("cell", k))
    for d in (f.__defaults__ or ()) + tuple((f.__kwdefaults__ or {}).values()):
        k = _value_key(d, depth)
        if k is _MISSING:
            return None
        key.append(("default", k))
    return tuple(key)
