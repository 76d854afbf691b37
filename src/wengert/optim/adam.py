"""Adam and AdamW with PyTorch's update rules (bias correction, optional AMSGrad)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ..autograd.grad_mode import no_grad
from ..creation import zeros
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma and Ba), with the update rules of ``torch.optim.Adam``::

        g = grad + weight_decay * p                 (Adam; AdamW decays p instead)
        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2
        vmax = max(vmax, v)                         (amsgrad; v below becomes vmax)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    >>> import wengert
    >>> w = wengert.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = wengert.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([ 0.9000, -0.9000], requires_grad=True)
    """

    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update; ``closure`` (re-evaluating the loss) is optional."""
        loss = self._closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = -p.grad if group["maximize"] else p.grad
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = zeros(*p.shape)
                        state["exp_avg_sq"] = zeros(*p.shape)
                        if group["amsgrad"]:
                            state["max_exp_avg_sq"] = zeros(*p.shape)
                    state["step"] += 1
                    t = state["step"]
                    if wd != 0:
                        if self._decoupled:
                            p.mul_(1 - lr * wd)
                        else:
                            g = g + p * wd
                    m, v = state["exp_avg"], state["exp_avg_sq"]
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).add_(g * g, alpha=1 - beta2)
                    if group["amsgrad"]:
                        vmax = state["max_exp_avg_sq"]
                        vmax.copy_(vmax.maximum(v))
                        v = vmax
                    step_size = lr / (1 - beta1 ** t)
                    denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + eps
                    p.sub_(m / denom * step_size)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as ``torch.optim.AdamW``:
    ``p = p * (1 - lr * weight_decay)`` before the Adam step (default decay 1e-2).

    >>> import wengert
    >>> w = wengert.tensor([1.0], requires_grad=True)
    >>> opt = wengert.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.8500], requires_grad=True)
    """

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
