"""In-place initializers (``wengert.nn.init``), PyTorch's names and formulas.

Each writes new values into ``tensor`` under ``no_grad`` and returns it. Random ones
draw from ``wengert.generator()`` (seeded by ``wengert.manual_seed``) unless a numpy
``generator`` is passed.

>>> import wengert
>>> w = wengert.empty(3, 4, requires_grad=True)
>>> wengert.nn.init.constant_(w, 0.5) is w
True
>>> w.sum()
tensor(6., grad_fn=<SumBackward0>)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import generator as _default_generator
from ..tensor import Tensor

__all__ = ["calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_",
           "ones_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_"]


def _write(tensor: Tensor, values: Any) -> Tensor:
    arr = np.broadcast_to(np.asarray(values, dtype=np.float64), tuple(tensor.shape))
    with no_grad():
        tensor.copy_(Tensor(arr, dtype=tensor.dtype))
    return tensor


def _gen(generator: np.random.Generator | None) -> np.random.Generator:
    return generator if generator is not None else _default_generator()


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (``relu``: sqrt(2), ``tanh``: 5/3, ...).

    >>> import wengert
    >>> round(wengert.nn.init.calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid", "identity")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions (got shape {list(tensor.shape)})")
    receptive = 1
    for s in tuple(tensor.shape)[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0.

    >>> import wengert
    >>> wengert.nn.init.zeros_(wengert.ones(2))
    tensor([0., 0.])
    """
    return _write(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1.

    >>> import wengert
    >>> wengert.nn.init.ones_(wengert.zeros(2))
    tensor([1., 1.])
    """
    return _write(tensor, 1.0)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``.

    >>> import wengert
    >>> wengert.nn.init.constant_(wengert.zeros(2), 0.5)
    tensor([0.5000, 0.5000])
    """
    return _write(tensor, float(val))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Tensor:
    """Samples of U(a, b).

    >>> import wengert
    >>> t = wengert.nn.init.uniform_(wengert.empty(1000), -2.0, 2.0)
    >>> -2.0 <= t.min().item() and t.max().item() < 2.0
    True
    """
    return _write(tensor, _gen(generator).uniform(a, b, tuple(tensor.shape)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    """Samples of N(mean, std^2).

    >>> import wengert
    >>> t = wengert.nn.init.normal_(wengert.empty(10000), mean=3.0, std=0.1)
    >>> round(t.mean().item(), 1)
    3.0
    """
    return _write(tensor, _gen(generator).normal(mean, std, tuple(tensor.shape)))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: np.random.Generator | None = None) -> Tensor:
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot and Bengio).

    >>> import wengert
    >>> w = wengert.nn.init.xavier_uniform_(wengert.empty(20, 30))
    >>> w.abs().max().item() <= (6 / 50) ** 0.5
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: np.random.Generator | None = None) -> Tensor:
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    >>> import wengert
    >>> w = wengert.nn.init.xavier_normal_(wengert.empty(300, 200))
    >>> round(w.square().mean().item() ** 0.5, 2)   # sqrt(2 / 500)
    0.06
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    """U(-b, b) with ``b = gain * sqrt(3 / fan)`` (He et al.); ``a`` is the leaky slope.

    ``nn.Linear`` uses ``a=sqrt(5)``, which gives ``b = 1 / sqrt(fan_in)``.

    >>> import math, wengert
    >>> w = wengert.nn.init.kaiming_uniform_(wengert.empty(4, 9), a=math.sqrt(5))
    >>> w.abs().max().item() <= 1 / 3
    True
    """
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    """N(0, std^2) with ``std = gain / sqrt(fan)`` (He et al.).

    >>> import wengert
    >>> w = wengert.nn.init.kaiming_normal_(wengert.empty(300, 200), nonlinearity="relu")
    >>> round(w.square().mean().item() ** 0.5, 2)   # sqrt(2 / 200)
    0.1
    """
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)
