"""``Parameter``: a leaf tensor that a ``Module`` registers when assigned as an attribute."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, _init_leaf, _to_array


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` that modules collect in ``parameters()``.

    The data is copied (wengert tensors own their storage); integer data is refused when
    ``requires_grad`` is True, as PyTorch does.

    >>> import wengert
    >>> p = wengert.nn.Parameter(wengert.zeros(2))
    >>> p
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    >>> (p * 2).sum().backward()
    >>> p.grad
    tensor([2., 2.])
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        arr = _to_array(data if data is not None else np.zeros(0))
        _init_leaf(self, arr, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(self._np().copy(), requires_grad=self.requires_grad)
        if self._grad is not None:
            p._grad = Tensor(self._grad._np().copy())
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, proto: Any) -> Any:
        return (Parameter, (self._np().copy(), self.requires_grad))
