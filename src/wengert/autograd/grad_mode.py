"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (per thread)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .._state import STATE


class _GradMode:
    # Entered once per step of a training loop: kept to a few attribute writes.
    __slots__ = ("_prev",)
    _mode = True

    def __new__(cls, orig_func: Callable | None = None) -> Any:
        # Bare ``@no_grad`` (no parentheses) decorates directly, as in PyTorch.
        if orig_func is None or cls is set_grad_enabled:
            self = object.__new__(cls)
            self._prev = []  # here rather than in __init__: one Python call less per `with`
            return self
        return cls()(orig_func)

    def __enter__(self) -> None:
        st = STATE
        self._prev.append(st.grad_enabled)
        st.grad_enabled = self._mode

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        STATE.grad_enabled = self._prev.pop()

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record no graph.

    >>> import wengert
    >>> x = wengert.tensor(1.0, requires_grad=True)
    >>> with wengert.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    __slots__ = ()
    _mode = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside ``no_grad``."""

    __slots__ = ()
    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` as a call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev.append(STATE.grad_enabled)
        STATE.grad_enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __call__(self, fn: Callable) -> Callable:
        STATE.grad_enabled = self._prev.pop()
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


def is_grad_enabled() -> bool:
    """Whether ops record a graph on this thread."""
    return STATE.grad_enabled
