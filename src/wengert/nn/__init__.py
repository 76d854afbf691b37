"""Neural networks: ``Module``, layers, losses, ``functional`` and ``init``.

>>> import wengert
>>> from wengert import nn
>>> wengert.manual_seed(0)
>>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
>>> loss = nn.MSELoss()(net(wengert.randn(4, 2)), wengert.zeros(4, 1))
>>> loss.backward()
>>> net[0].weight.grad.shape
wengert.Size([8, 2])
"""

from . import functional, init
from .container import ModuleList, Sequential
from .layers import (
    Dropout,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module
from .parameter import Parameter

__all__ = ["functional", "init", "Module", "Parameter", "Sequential", "ModuleList", "Linear",
           "Identity", "Flatten", "ReLU", "Tanh", "Sigmoid", "Softplus", "Dropout", "Softmax",
           "LogSoftmax", "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]
