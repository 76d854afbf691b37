"""Optimizers (``wengert.optim``): ``SGD``, ``Adam``, ``AdamW``, ``LBFGS``.

Updates are in-place tensor ops under ``no_grad``; wengert records them lazily, so a
step costs no sweep of its own: it is computed with the next forward pass.

>>> import wengert
>>> w = wengert.tensor([3.0], requires_grad=True)
>>> opt = wengert.optim.SGD([w], lr=0.25)
>>> for _ in range(3):
...     opt.zero_grad()
...     loss = (w ** 2).sum()
...     loss.backward()
...     opt.step()
>>> w
tensor([0.3750], requires_grad=True)
"""

from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LBFGS"]
