"""wengert: reverse-mode automatic differentiation on a numba-compiled Wengert tape.

It speaks PyTorch's autograd language::

    >>> import wengert
    >>> x1 = wengert.tensor(2.0, requires_grad=True)
    >>> x2 = wengert.tensor(2.0, requires_grad=True)
    >>> x7 = x1.square() * 0.2 + x2.square() * 0.2 - 5
    >>> x7
    tensor(-3.4000, grad_fn=<SubBackward0>)
    >>> x7.backward()
    >>> x1.grad
    tensor(0.8000)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import autograd, nn
from . import optim as optim
from . import utils as utils
from . import viz as viz
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .compile import Compiled, TraceError, grad, trace, value_and_grad
from .creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    generator,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .listing import tape_listing as tape_listing
from .optable import OPS, UNARY
from .optimize import minimize
from .serialization import load as load
from .serialization import save as save
from .tensor import Size, Tensor, cat, matmul, stack, where
from .train import CompiledStep, compile_step

__version__ = "0.1.0"

float64 = double = np.dtype(np.float64)
# float32 is accepted for PyTorch code and computed in float64, wengert's compute type.
float32 = float = float64
int64 = long = np.dtype(np.int64)
int32 = int = int64
bool = np.dtype(np.bool_)  # noqa: A001


def _fn(name: str):
    def f(input: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(tensor(input) if not isinstance(input, Tensor) else input, name)(
            *args, **kwargs)

    f.__name__ = name
    f.__doc__ = f"Function form of ``Tensor.{name}``."
    return f


for _op in OPS:
    if _op.family == UNARY and _op.method:
        globals()[_op.method] = _fn(_op.method)

(sum, mean, prod, norm, logsumexp, argmax, argmin, amax, amin, clamp, clip, reshape, flatten,
 squeeze, unsqueeze, transpose, t, dot, mm, mv, maximum, minimum, add, sub, mul, div, pow,
 permute, detach, clone, numel, lt, le, gt, ge, eq, ne) = (
    _fn(n) for n in ("sum", "mean", "prod", "norm", "logsumexp", "argmax", "argmin", "amax",
                     "amin", "clamp", "clip", "reshape", "flatten", "squeeze", "unsqueeze",
                     "transpose", "t", "dot", "mm", "mv", "maximum", "minimum", "add", "sub",
                     "mul", "div", "pow", "permute", "detach", "clone", "numel", "lt", "le",
                     "gt", "ge", "eq", "ne"))
max = _fn("max")  # noqa: A001
min = _fn("min")  # noqa: A001
abs = _fn("abs")  # noqa: A001


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a wengert Tensor."""
    return isinstance(obj, Tensor)


__all__ = ["Tensor", "Size", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full",
           "empty", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
           "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
           "manual_seed", "generator", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "autograd", "nn", "cat", "stack", "where", "matmul",
           "is_tensor", "trace", "value_and_grad", "grad", "Compiled", "TraceError", "minimize",
           "compile_step", "CompiledStep"]
