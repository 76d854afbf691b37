"""Autograd entry points: ``backward``, ``grad`` and grad modes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import AccumulateGrad, Node

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "Node", "AccumulateGrad"]


def _seeds(outputs: list, grad_outputs: Sequence | None, who: str) -> list[np.ndarray]:
    from ..tensor import Tensor

    seeds = []
    for k, out in enumerate(outputs):
        g = None if grad_outputs is None else grad_outputs[k]
        if not out._rg:
            raise RuntimeError(f"{who}: element {k} of tensors does not require grad and does "
                               "not have a grad_fn")
        if g is None:
            if out._n != 1:
                raise RuntimeError(f"{who}: grad can be implicitly created only for scalar "
                                   f"outputs (output {k} has shape {list(out._shape)}); pass "
                                   "a gradient of that shape")
            seeds.append(np.ones(1))
            continue
        arr = g._values() if isinstance(g, Tensor) else np.asarray(g, dtype=np.float64)
        if tuple(arr.shape) != out._shape:
            raise RuntimeError(f"{who}: Mismatch in shape: grad_output[{k}] has a shape of "
                               f"{list(arr.shape)} and output[{k}] has a shape of "
                               f"{list(out._shape)}")
        seeds.append(np.array(arr, dtype=np.float64))
    return seeds


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Any = None) -> None:
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad``.

    >>> import wengert
    >>> x = wengert.tensor([1.0, 2.0], requires_grad=True)
    >>> wengert.autograd.backward([(x * x).sum()])
    >>> x.grad
    tensor([2., 4.])
    """
    from ..tape import run_backward
    from ..tensor import Tensor

    if create_graph:
        raise NotImplementedError("create_graph=True (gradients of gradients) is not "
                                  "implemented yet in wengert")
    if inputs is not None:
        raise NotImplementedError("backward(inputs=...) is not implemented; use "
                                  "wengert.autograd.grad(outputs, inputs)")
    outs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is not None and isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    seeds = _seeds(outs, grad_tensors, "backward")
    run_backward(outs, seeds, bool(retain_graph))


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    >>> import wengert
    >>> x = wengert.tensor(3.0, requires_grad=True)
    >>> wengert.autograd.grad(x ** 2, x)
    (tensor(6.),)
    """
    from ..tape import run_backward
    from ..tensor import Tensor, _leaf

    if create_graph:
        raise NotImplementedError("create_graph=True (gradients of gradients) is not "
                                  "implemented yet in wengert")
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for k, t in enumerate(ins):
        if not t._rg:
            raise RuntimeError(f"grad: One of the differentiated Tensors (input {k}) does not "
                               "require grad")
    if grad_outputs is not None and isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = _seeds(outs, grad_outputs, "grad")
    res = run_backward(outs, seeds, bool(retain_graph), inputs=ins, allow_unused=allow_unused)
    return tuple(None if g is None else _leaf(g) for g in res)
