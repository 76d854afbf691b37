"""Losses and activations with PyTorch's names and ``grad_fn`` names."""

from __future__ import annotations

import warnings
from typing import Any

from ..optable import C
from ..tensor import Tensor, _as_tensor, _record_binary, _record_unary, float64


def _reduce(t: Tensor, reduction: str, name: str) -> Tensor:
    tape = t._tape
    if reduction == "none":
        if tape is not None and t._rg:
            tape.names[t._entry] = name
        return t
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction "
                         "(use 'mean', 'sum' or 'none')")
    out = t.mean() if reduction == "mean" else t.sum()
    if tape is not None:
        tape.names[t._entry] = None  # the elementwise entry is internal
    if out._tape is not None and out._rg:
        out._tape.names[out._entry] = name
    return out


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Sigmoid plus binary cross entropy in one numerically stable op.

    >>> import wengert
    >>> z = wengert.tensor([0.0, 2.0], requires_grad=True)
    >>> wengert.nn.functional.binary_cross_entropy_with_logits(z, wengert.tensor([0.0, 1.0]))
    tensor(0.4100, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)
    """
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: Target size ({list(target.shape)}) "
                         f"must be the same as input size ({list(input.shape)})")
    if pos_weight is not None:
        raise NotImplementedError("binary_cross_entropy_with_logits: pos_weight is not "
                                  "implemented yet")
    loss = _record_binary(C.BCE_LOGITS, input, target, "binary_cross_entropy_with_logits",
                          float64)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "BinaryCrossEntropyWithLogitsBackward0")


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error, ``((input - target) ** 2).mean()``."""
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"mse_loss: using a target size ({list(target.shape)}) that is different "
                      f"to the input size ({list(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting.", UserWarning, stacklevel=2)
    diff = input - target
    if diff._tape is not None:
        diff._tape.names[diff._entry] = None
    return _reduce(diff.square(), reduction, "MseLossBackward0")


def relu(input: Tensor) -> Tensor:
    """max(x, 0)."""
    return input.relu()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def softplus(input: Tensor) -> Tensor:
    """log(1 + exp(x)), computed without overflow."""
    return _record_unary(C.SOFTPLUS, input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed without overflow."""
    return _record_unary(C.LOGSIGMOID, input)
