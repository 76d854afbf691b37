"""Losses and activations with PyTorch's names and ``grad_fn`` names.

Everything here is a composite of tape ops (no kernels of its own beyond the op table);
the last entry of a loss is renamed to PyTorch's ``grad_fn`` name through ``tape.names``.

>>> import wengert
>>> import wengert.nn.functional as F
>>> logits = wengert.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
>>> F.cross_entropy(logits, wengert.tensor([0]))
tensor(0.2413, grad_fn=<NllLossBackward0>)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..optable import C
from ..tensor import (
    Tensor,
    _as_tensor,
    _leaf,
    _matmul,
    _record_binary,
    _record_unary,
    float64,
    where,
)

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout",
    "huber_loss", "l1_loss", "linear", "log_softmax", "logsigmoid", "mse_loss", "nll_loss",
    "relu", "sigmoid", "smooth_l1_loss", "softmax", "softplus", "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction "
                         "(use 'mean', 'sum' or 'none')")


def _name(t: Tensor, name: str | None) -> Tensor:
    """Give the entry that made ``t`` a grad_fn name (None: an internal entry)."""
    tape = t._tape
    if tape is not None and t._rg:
        tape.names[t._entry] = name
    return t


def _reduce(t: Tensor, reduction: str, name: str) -> Tensor:
    tape = t._tape
    if reduction == "none":
        if tape is not None and t._rg:
            tape.names[t._entry] = name
        return t
    _check_reduction(reduction)
    out = t.mean() if reduction == "mean" else t.sum()
    if tape is not None:
        tape.names[t._entry] = None  # the elementwise entry is internal
    if out._tape is not None and out._rg:
        out._tape.names[out._entry] = name
    return out


def _float_target(target: Any, who: str, input: Tensor) -> Tensor:
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{who}: using a target size ({list(target.shape)}) that is different "
                      f"to the input size ({list(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=3)
    return target


# ---------------------------------------------------------------------- regression losses
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error, ``((input - target) ** 2).mean()``.

    >>> import wengert
    >>> x = wengert.tensor([1.0, 2.0], requires_grad=True)
    >>> wengert.nn.functional.mse_loss(x, wengert.tensor([0.0, 0.0]))
    tensor(2.5000, grad_fn=<MseLossBackward0>)
    """
    _check_reduction(reduction)
    target = _float_target(target, "mse_loss", input)
    diff = input - target
    if diff._tape is not None:
        diff._tape.names[diff._entry] = None
    return _reduce(diff.square(), reduction, "MseLossBackward0")


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error, ``(input - target).abs().mean()`` (a composite, as in PyTorch).

    >>> import wengert
    >>> x = wengert.tensor([1.0, -3.0], requires_grad=True)
    >>> wengert.nn.functional.l1_loss(x, wengert.tensor([0.0, 0.0]))
    tensor(2., grad_fn=<MeanBackward0>)
    """
    _check_reduction(reduction)
    target = _float_target(target, "l1_loss", input)
    a = (input - target).abs()
    if reduction == "none":
        return a
    return a.mean() if reduction == "mean" else a.sum()


def huber_loss(input: Tensor, target: Any, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """Squared error below ``delta``, linear above: ``0.5 d^2`` or ``delta (|d| - delta/2)``.

    >>> import wengert
    >>> x = wengert.tensor([0.5, 3.0], requires_grad=True)
    >>> wengert.nn.functional.huber_loss(x, wengert.zeros(2))
    tensor(1.3125, grad_fn=<HuberLossBackward0>)
    """
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError(f"huber_loss: delta must be positive, but got {delta}")
    target = _float_target(target, "huber_loss", input)
    a = (input - target).abs()
    q = a.clamp(max=delta)  # 0.5 q^2 + delta (|d| - q): the two pieces in one expression
    loss = q.square() * 0.5 + (a - q) * delta
    return _reduce(loss, reduction, "HuberLossBackward0")


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Huber loss divided by ``beta`` (``beta=0`` is the L1 loss).

    >>> import wengert
    >>> x = wengert.tensor([0.5, 3.0], requires_grad=True)
    >>> wengert.nn.functional.smooth_l1_loss(x, wengert.zeros(2))
    tensor(1.3125, grad_fn=<SmoothL1LossBackward0>)
    """
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss: beta must be non-negative, but got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    target = _float_target(target, "smooth_l1_loss", input)
    a = (input - target).abs()
    q = a.clamp(max=beta)
    loss = q.square() * (0.5 / beta) + (a - q)
    return _reduce(loss, reduction, "SmoothL1LossBackward0")


# ---------------------------------------------------------------------- binary losses
def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """Binary cross entropy of probabilities ``input`` in [0, 1] (logs clamped at -100).

    Prefer ``binary_cross_entropy_with_logits`` on logits: it is stable. Checking that
    ``input`` lies in [0, 1] (as PyTorch does) evaluates it.

    >>> import wengert
    >>> p = wengert.tensor([0.5, 0.8808], requires_grad=True)
    >>> wengert.nn.functional.binary_cross_entropy(p, wengert.tensor([0.0, 1.0]))
    tensor(0.4100, grad_fn=<BinaryCrossEntropyBackward0>)
    """
    _check_reduction(reduction)
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy: using a target size ({list(target.shape)}) "
                         f"that is different to the input size ({list(input.shape)}) is not "
                         "supported; please ensure they have the same size.")
    bad = ((input < 0.0) | (input > 1.0)).sum().item()  # evaluates input, as PyTorch checks
    if bad:
        raise RuntimeError("binary_cross_entropy: all elements of input should be between "
                           f"0 and 1 ({bad} of {input.numel()} are not)")
    loss = -(target * input.log().clamp(min=-100.0)
             + (1.0 - target) * (1.0 - input).log().clamp(min=-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "BinaryCrossEntropyBackward0")


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Sigmoid plus binary cross entropy in one numerically stable op.

    ``pos_weight`` scales the positive term: ``-[pw y log s(x) + (1 - y) log(1 - s(x))]``.

    >>> import wengert
    >>> z = wengert.tensor([0.0, 2.0], requires_grad=True)
    >>> wengert.nn.functional.binary_cross_entropy_with_logits(z, wengert.tensor([0.0, 1.0]))
    tensor(0.4100, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)
    """
    target = _as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: Target size ({list(target.shape)}) "
                         f"must be the same as input size ({list(input.shape)})")
    _check_reduction(reduction)
    if pos_weight is None:
        loss = _record_binary(C.BCE_LOGITS, input, target, "binary_cross_entropy_with_logits",
                              float64)
    else:
        # (1 - y) x + (1 + (pw - 1) y) softplus(-x), PyTorch's formula.
        log_weight = (_as_tensor(pos_weight) - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * _record_unary(C.SOFTPLUS, -input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "BinaryCrossEntropyWithLogitsBackward0")


# ---------------------------------------------------------------------- classification
def _class_dim(input: Tensor, who: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{who}: expected 1 or more dimensions (got 0)")
    return 0 if input.ndim == 1 else 1


def _softmax_dim(ndim: int, who: str) -> int:
    warnings.warn(f"Implicit dimension choice for {who} has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``x - logsumexp(x, dim)``: log-probabilities along ``dim``.

    >>> import wengert
    >>> wengert.nn.functional.log_softmax(wengert.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    if dim is None:
        dim = _softmax_dim(input.ndim, "log_softmax")
    input = _as_tensor(input)
    if input.ndim == 0:
        return _name(input - input, "LogSoftmaxBackward0")
    out = input - input.logsumexp(dim, keepdim=True)
    return _name(out, "LogSoftmaxBackward0")


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``exp(x - logsumexp(x, dim))``: probabilities along ``dim``, without overflow.

    >>> import wengert
    >>> wengert.nn.functional.softmax(wengert.tensor([1000.0, 1000.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    if dim is None:
        dim = _softmax_dim(_as_tensor(input).ndim, "softmax")
    lp = log_softmax(input, dim)
    _name(lp, None)
    return _name(lp.exp(), "SoftmaxBackward0")


def _index_target(input: Tensor, target: Any, who: str) -> tuple[Tensor, np.ndarray, tuple]:
    """(N', C) log-probability rows, the (N',) int targets and the output shape."""
    target = _as_tensor(target)
    if target.dtype != np.int64:
        raise RuntimeError(f"{who}: expected scalar type Long but found "
                           f"{'Double' if target.dtype == float64 else target.dtype.name}: "
                           f"the target must hold int64 class indices, got a "
                           f"{target.dtype.name} target of shape {list(target.shape)} "
                           "(use target.long())")
    nd = input.ndim
    if nd == 0:
        raise ValueError(f"{who}: expected 1 or more dimensions (got 0)")
    tshape = tuple(target.shape)
    if nd == 1:
        if tshape != ():
            raise ValueError(f"{who}: for an input of shape {list(input.shape)} (one sample) "
                             f"the target must be 0-d, got shape {list(tshape)}")
        rows, out_shape = input.reshape(1, -1), ()
    else:
        n = input.shape[0]
        if not tshape or tshape[0] != n:
            raise ValueError(f"{who}: Expected input batch_size ({n}) to match target "
                             f"batch_size ({tshape[0] if tshape else 0}): input shape "
                             f"{list(input.shape)}, target shape {list(tshape)}")
        expect = (n,) + tuple(input.shape[2:])
        if tshape != expect:
            raise RuntimeError(f"{who}: expected target of shape {list(expect)} for input of "
                               f"shape {list(input.shape)}, but got {list(tshape)}")
        if nd == 2:
            rows = input
        else:  # (N, C, d1, ...) -> (N * d1 * ..., C)
            rows = input.permute(0, *range(2, nd), 1).reshape(-1, input.shape[1])
        out_shape = tshape
    return rows, target._np().reshape(-1), out_shape


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of int64 class indices under log-probabilities ``input``.

    ``input`` is (C,), (N, C) or (N, C, d1, ...); ``target`` holds class indices of shape
    (), (N,) or (N, d1, ...). With ``weight`` (one per class) the mean is weighted, as
    PyTorch: ``sum(w[t] * l) / sum(w[t])``. Targets equal to ``ignore_index`` count for
    nothing.

    >>> import wengert
    >>> logp = wengert.tensor([[-0.1, -2.3], [-1.2, -0.4]], requires_grad=True)
    >>> wengert.nn.functional.nll_loss(logp, wengert.tensor([0, 1]))
    tensor(0.2500, grad_fn=<NllLossBackward0>)
    """
    _check_reduction(reduction)
    input = _as_tensor(input)
    rows, t, out_shape = _index_target(input, target, "nll_loss")
    m, c = rows.shape
    ignored = t == ignore_index
    bad = (~ignored) & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexError(f"nll_loss: Target {int(t[bad][0])} is out of bounds (the input has "
                         f"{c} classes)")
    w = None
    if weight is not None:
        w = _as_tensor(weight)._np().astype(np.float64).reshape(-1)
        if w.shape != (c,):
            raise RuntimeError(f"nll_loss: weight tensor should be defined either for all {c} "
                               f"classes or no classes but got weight tensor of shape "
                               f"{list(w.shape)}")
    name = "NllLossBackward0" if input.ndim < 3 else "NllLoss2DBackward0"
    none_name = "ViewBackward0" if input.ndim == 3 else name
    safe = np.where(ignored, 0, t)
    picked = rows[np.arange(m), safe] if m else rows.reshape(-1)[:0]
    if w is None and not ignored.any():
        loss = -picked
        if reduction == "none":
            return _name(loss.reshape(out_shape), none_name)
        return _reduce(loss, reduction, name)
    coef = np.where(ignored, 0.0, 1.0 if w is None else w[safe])
    loss = picked * _leaf(-coef)
    if reduction == "none":
        return _name(loss.reshape(out_shape), none_name)
    total = loss.sum()
    if reduction == "mean":
        total = total / float(coef.sum())
    return _name(total, name)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)``: cross entropy of logits.

    ``target`` holds int64 class indices (a float target is refused unless it has the
    input's shape, in which case it holds class probabilities, as in PyTorch).
    ``label_smoothing`` mixes the targets with the uniform distribution.

    >>> import wengert
    >>> logits = wengert.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> wengert.nn.functional.cross_entropy(logits, wengert.tensor([0]))
    tensor(0.2413, grad_fn=<NllLossBackward0>)
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    input = _as_tensor(input)
    cdim = _class_dim(input, "cross_entropy")
    logp = log_softmax(input, cdim)
    target = _as_tensor(target)
    n_classes = input.shape[cdim]
    if target.dtype == float64 and tuple(target.shape) == tuple(input.shape):
        return _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, cdim)
    if target.dtype != np.int64:
        raise RuntimeError(f"cross_entropy: expected scalar type Long but found "
                           f"{'Double' if target.dtype == float64 else target.dtype.name}: "
                           f"class-index targets must be int64, got a {target.dtype.name} "
                           f"target of shape {list(target.shape)} for input of shape "
                           f"{list(input.shape)} (use target.long(), or pass class "
                           "probabilities with the input's shape)")
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    # PyTorch's smoothing term: -sum_c w_c logp_c, masked where ignored, same reduction.
    tnp = target._np()
    keep = tnp != ignore_index
    lw = logp if weight is None else logp * _class_weights(weight, cdim, input.ndim)
    smooth = -lw.sum(dim=cdim)
    if not keep.all():
        smooth = smooth * _leaf(keep.astype(np.float64))
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / float(keep.sum())
        else:
            w = _as_tensor(weight)._np().astype(np.float64)
            smooth = smooth.sum() / float(w[tnp[keep]].sum())
    elif reduction == "sum":
        smooth = smooth.sum()
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _class_weights(weight: Any, cdim: int, ndim: int) -> Tensor:
    w = _as_tensor(weight)
    if cdim == 1:
        return w.reshape((1, -1) + (1,) * (ndim - 2))
    return w


def _soft_cross_entropy(logp: Tensor, target: Tensor, weight: Any, reduction: str,
                        label_smoothing: float, cdim: int) -> Tensor:
    n_classes = logp.shape[cdim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * target
    if weight is not None:
        prod = prod * _class_weights(weight, cdim, logp.ndim)
    if reduction == "none":
        return -prod.sum(dim=cdim)
    total = -prod.sum()
    return total if reduction == "sum" else total / (logp.numel() / n_classes)


# ---------------------------------------------------------------------- activations & layers
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) (``inplace`` is accepted and ignored: the result is a new tensor).

    >>> import wengert
    >>> wengert.nn.functional.relu(wengert.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return input.relu()


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow.

    >>> import wengert
    >>> wengert.nn.functional.sigmoid(wengert.tensor([0.0, -1000.0]))
    tensor([0.5000, 0.0000])
    """
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent.

    >>> import wengert
    >>> wengert.nn.functional.tanh(wengert.tensor([0.0]))
    tensor([0.])
    """
    return input.tanh()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.

    >>> import wengert
    >>> wengert.nn.functional.softplus(wengert.tensor([0.0, 30.0]))
    tensor([ 0.6931, 30.0000])
    """
    bx = input if beta == 1.0 else input * float(beta)
    sp = _record_unary(C.SOFTPLUS, bx)
    if beta != 1.0:
        sp = sp / float(beta)
    if math.isfinite(threshold):
        sp = where(bx > float(threshold), input, sp)
    return _name(sp, "SoftplusBackward0")


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed without overflow.

    >>> import wengert
    >>> wengert.nn.functional.logsigmoid(wengert.tensor([0.0, -100.0]))
    tensor([  -0.6931, -100.0000])
    """
    return _record_unary(C.LOGSIGMOID, input)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` for inputs of shape (in,), (N, in) or (*, in).

    >>> import wengert
    >>> w = wengert.tensor([[1.0, 2.0]])
    >>> wengert.nn.functional.linear(wengert.tensor([[3.0, 4.0]]), w, wengert.tensor([0.5]))
    tensor([[11.5000]])
    """
    input = _as_tensor(input)
    lead = tuple(input.shape[:-1])
    x = input.reshape(-1, input.shape[-1]) if input.ndim > 2 else input
    weight = _as_tensor(weight)
    out = _matmul(x, weight, True) if weight.ndim == 2 else x @ weight
    if bias is not None:
        out = out + bias
        if input.ndim == 2:
            _name(out, "AddmmBackward0")
    if input.ndim > 2:
        out = out.reshape(*lead, weight.shape[0])
    elif input.ndim == 1:
        _name(out, "ViewBackward0" if bias is not None else "SqueezeBackward4")
    return out


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask is drawn from ``wengert.generator()`` (seeded by ``wengert.manual_seed``);
    with ``training=False`` the input is returned unchanged.

    >>> import wengert
    >>> x = wengert.ones(4)
    >>> wengert.nn.functional.dropout(x, p=0.5, training=False) is x
    True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    from ..creation import generator

    if p == 1.0:
        scale = np.zeros(tuple(input.shape))
    else:
        scale = (generator().random(tuple(input.shape)) >= p) / (1.0 - p)
    return input * _leaf(scale)

