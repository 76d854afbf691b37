"""Calling a jitted function's compiled entry point directly, for the hottest calls.

numba's dispatcher works out the types of the arguments at every call to pick the
compiled version: about 70 ns of a 250 ns call on small arrays, and an eager training
step makes a dozen such calls (the sweeps, the ``no_grad`` updates, the gradients).
``bind`` returns the entry point compiled for *one* signature. It is called like the
dispatcher but converts its arguments as that signature says, without checking them,
so its callers pass exactly those types: the tape's own arrays, float64 arrays they
checked (C-contiguous), Python ints, floats and bools. It compiles, or loads from
numba's cache, on first use, as the dispatcher would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import types

I64, F64, U8, BOOL = types.int64, types.float64, types.uint8, types.boolean
F1, I1, U1 = types.float64[::1], types.int64[::1], types.uint8[::1]
F2, I2 = types.float64[:, ::1], types.int64[:, ::1]

# The signatures of the bound calls (see the callers: tensor.py, tape.py, _gradblock.py).
UNARY = (I64, F1, F64, F1)  # _vm.unary(op, x, c0, out)
BINARY = (I64, F1, F1, F1)  # _vm.binary(op, x, y, out)
ADD_BLOCKS = (F1, I1, F1, BOOL)  # _vm.add_blocks(adj, idx, blk, copy)
FORWARD = (I2, F2, I1, F1, U1, I64, I64)  # _vm.forward(code, consts, aux, val, freed, a, b)
SWEEP_FROM = (I2, F2, I1, F1, F1, U1, U1, I64, I64, I64, BOOL)  # _vm.sweep_from(...)


def bind(dispatcher: Any, signature: tuple) -> Callable:
    """The entry point of ``dispatcher`` compiled for ``signature`` (or the dispatcher
    itself, should this numba not expose one).

    >>> from wengert import _vm
    >>> import numpy as np
    >>> f = bind(_vm.unary, UNARY)
    >>> out = np.empty(2)
    >>> f(33, np.array([1.0, 2.0]), 3.0, out)  # 33: mul_c
    >>> out
    array([3., 6.])
    """
    try:
        entry = dispatcher.compile(signature)
    except AttributeError:  # pragma: no cover - a numba without Dispatcher.compile
        return dispatcher
    return entry if callable(entry) else dispatcher
