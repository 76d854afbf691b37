"""Creating tensors: ``tensor``, ``zeros``, ``randn``, ... (PyTorch's names)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor, _dtype, _init_leaf, _leaf, _to_array, float64

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind ``rand``, ``randn``, ``randint`` and ``randperm``."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The numpy generator wengert draws from (seeded by ``manual_seed``)."""
    return _rng


def _size(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _make(arr: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    if dtype is not None:
        arr = arr.astype(_dtype(dtype))
    t = Tensor.__new__(Tensor)
    _init_leaf(t, arr, requires_grad)
    return t


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """A leaf tensor holding a copy of ``data`` (numbers, nested lists, numpy arrays).

    >>> import wengert
    >>> wengert.tensor([2.0, -2.0, 0.0], requires_grad=True)
    tensor([ 2., -2.,  0.], requires_grad=True)
    """
    return _make(_to_array(data, dtype), None, requires_grad)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """Like ``tensor``, but returns a tensor unchanged."""
    if isinstance(data, Tensor) and dtype is None:
        return data
    return tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing ``arr``'s memory when it is float64, int64 or bool."""
    dt = _dtype(arr.dtype)
    t = Tensor.__new__(Tensor)
    _init_leaf(t, arr if arr.dtype == dt else arr.astype(dt), False)
    t._shared = True  # in-place ops write through to ``arr``
    return t


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _make(np.zeros(_size(size)), dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """A tensor of ones."""
    return _make(np.ones(_size(size)), dtype, requires_grad)


def full(size: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False,
         **_: Any) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``."""
    arr = np.full(_size((size,)), fill_value)
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    return _make(arr, dtype, requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """A tensor of ``size`` (zero-filled in wengert)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False, **_: Any) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 for int arguments."""
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    return _make(arr, dtype, requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False, **_: Any) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _make(np.linspace(start, end, steps), dtype, requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False,
        **_: Any) -> Tensor:
    """The identity matrix."""
    return _make(np.eye(n, m), dtype, requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _make(_rng.random(_size(size)), dtype, requires_grad)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """Standard normal samples."""
    return _make(_rng.standard_normal(_size(size)), dtype, requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), **_: Any) -> Tensor:
    """Integers in [low, high)."""
    if high is None:
        low, high = 0, low
    return _make(_rng.integers(low, high, size=_size((size,))), None, False)


def randperm(n: int, **_: Any) -> Tensor:
    """A random permutation of 0..n-1."""
    return _make(_rng.permutation(n), None, False)


def _like(fn: Any) -> Any:
    def like(input: Tensor, dtype: Any = None, requires_grad: bool = False, **kw: Any) -> Tensor:
        return fn(*input.shape, dtype=dtype if dtype is not None else input.dtype,
                  requires_grad=requires_grad)

    like.__doc__ = f"``{fn.__name__}`` with the shape (and dtype) of ``input``."
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
rand_like = _like(rand)
randn_like = _like(randn)
empty_like = _like(empty)


def full_like(input: Tensor, fill_value: float, dtype: Any = None,
              requires_grad: bool = False, **_: Any) -> Tensor:
    """``full`` with the shape of ``input``."""
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype,
                requires_grad=requires_grad)


__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange",
           "linspace", "eye", "rand", "randn", "randint", "randperm", "manual_seed",
           "zeros_like", "ones_like", "rand_like", "randn_like", "full_like", "empty_like",
           "float64", "_leaf"]
