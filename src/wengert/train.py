"""``wengert.compile_step``: a whole training step (forward, loss, backward, optimiser
update) traced once and replayed as one numba call per batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _replay
from .compile import TraceError, _as_array, _Trace
from .tensor import Tensor, _leaf


def _batch_array(b: Any) -> np.ndarray:
    """A batch item as a float64 array (no copy for a float64 leaf tensor or array)."""
    if type(b) is Tensor and b._tape is None and b._ptape is None and b._data.dtype == np.float64:
        return b._data
    return _as_array(b)


class CompiledStep:
    """A training step replayed in numba; call it with a batch, get the loss as a float.

    The model's parameters become views into one flat float64 vector that the step
    updates in place, so the model (and eager code using it) always sees the current
    values. Their ``.grad`` are views of the last step's gradient. Optimiser state
    (momentum, Adam moments) lives in this object, starting from zero.

    >>> import wengert
    >>> from wengert import nn, optim
    >>> model = nn.Linear(3, 1)
    >>> opt = optim.SGD(model.parameters(), lr=0.1)
    >>> step = wengert.compile_step(model, nn.MSELoss(), opt)
    >>> x, y = wengert.randn(8, 3), wengert.randn(8, 1)
    >>> isinstance(step(x, y), float)
    True
    """

    def __init__(self, model: Any, loss_fn: Callable, optimizer: Any) -> None:
        if len(optimizer.param_groups) != 1:
            raise NotImplementedError("compile_step: one parameter group only (got "
                                      f"{len(optimizer.param_groups)})")
        kind = type(optimizer).__name__
        if kind not in ("SGD", "Adam", "AdamW"):
            raise NotImplementedError(f"compile_step: {kind} is not supported; use SGD, Adam "
                                      "or AdamW (or an eager loop)")
        if kind != "SGD" and optimizer.param_groups[0].get("amsgrad"):
            raise NotImplementedError("compile_step: amsgrad is not supported")
        self.model, self.loss_fn, self.optimizer, self.kind = model, loss_fn, optimizer, kind
        self.params: list[Tensor] = [p for p in optimizer.param_groups[0]["params"]
                                     if p.requires_grad]
        sizes = [p.numel() for p in self.params]
        self.theta = np.empty(sum(sizes))
        self.grad = np.zeros(sum(sizes))
        self._views: list[np.ndarray] = []
        self._gviews: list[np.ndarray] = []
        k = 0
        for p, n in zip(self.params, sizes):
            self.theta[k: k + n] = p._values().reshape(-1)
            self._views.append(self.theta[k: k + n].reshape(p._shape))
            self._gviews.append(self.grad[k: k + n].reshape(p._shape))
            k += n
        self._link()
        n = self.theta.size
        self.state = [np.zeros(n), np.zeros(n)]  # momentum buffer, or Adam's m and v
        self.t = 0  # steps taken
        self.traces: dict[tuple, list[tuple[_Trace, tuple]]] = {}
        self._flat: dict[tuple, np.ndarray] = {}  # batch shapes -> the flat batch buffer
        self.n_traces = 0

    def _link(self) -> None:
        """Make every parameter (and its .grad) a view into theta (and the gradient)."""
        for p, view, gv in zip(self.params, self._views, self._gviews):
            if p._tape is not None or p._ptape is not None or p._data is not view:
                if p._ptape is not None:
                    p._settle()
                view[...] = p._values()  # the parameter was changed outside the step
                p._data = view
                p._shared = True  # eager in-place ops write through to theta
                p._version += 1
            grad = p._grad
            if grad is None or grad._data is not gv:
                p._grad = _leaf(gv)
                p._grad._shared = True

    def _trace(self, arrays: list[np.ndarray]) -> tuple[_Trace, tuple]:
        def step_loss(*batch: Tensor) -> Tensor:
            return self.loss_fn(self.model(*batch[:-1]), batch[-1])

        tr = _Trace(step_loss, arrays, (), True)
        self.n_traces += 1
        entries = []
        for p in self.params:
            hit = tr.tape.imp_cache.get(id(p))
            if hit is None:
                raise TraceError("compile_step: a parameter of the optimizer is not used by "
                                 "the loss; give the optimizer only the parameters it trains")
            entries.append(hit[2])
        # Reorder the program's inputs: parameters first, then the batch (entries 0..).
        code, ints, floats, flags = tr.prog
        m = int(ints[0])
        meta = list(ints[1: 1 + m])
        nb = meta[2]
        guards = meta[3 + nb:]
        meta = [meta[0], meta[1], len(entries) + nb] + entries + list(range(nb)) + guards
        ints = np.concatenate([[len(meta)], meta, ints[1 + m:]]).astype(np.int64)
        params = {id(p) for p in self.params}
        tr.captured = [c for c in tr.captured if id(c[0]) not in params]
        return tr, (code, ints, floats, flags)

    def __call__(self, *batch: Any) -> float:
        """One step on a batch (inputs..., target); returns the loss before the update."""
        arrays = [_batch_array(b) for b in batch]
        key = tuple(a.shape for a in arrays)
        flat = self._flat.get(key)  # reused: a fresh large array costs page faults each step
        if flat is None:
            flat = self._flat[key] = np.empty(sum(a.size for a in arrays))
        np.concatenate(arrays, axis=None, out=flat)
        self._link()
        g = self.optimizer.param_groups[0]
        for attempt in range(self.n_traces + 2):
            cands = self.traces.get(key)
            if not cands or attempt > 0:
                cands = self.traces.setdefault(key, [])
                if attempt > 0 or not cands:
                    cands.insert(0, self._trace(arrays))
                    del cands[8:]
            tr, prog = cands[0]
            if tr.captured:
                tr.refresh()
            nparam = len(self.params)
            # float()/bool() everywhere: an int lr would compile the kernel a second time
            lr, wd, maximize = float(g["lr"]), float(g["weight_decay"]), bool(g.get("maximize"))
            if self.kind == "SGD":
                loss, ok = _replay.sgd_step(*prog, self.theta, flat, self.grad, nparam, lr,
                                            float(g["momentum"]), float(g["dampening"]),
                                            bool(g["nesterov"]), wd, maximize, self.state[0],
                                            self.t == 0)
            else:
                b1, b2 = g["betas"]
                loss, ok = _replay.adam_step(*prog, self.theta, flat, self.grad, nparam, lr,
                                             float(b1), float(b2), float(g["eps"]), wd,
                                             self.kind == "AdamW", maximize, self.state[0],
                                             self.state[1], self.t + 1)
            if ok:
                self.t += 1
                for p in self.params:
                    p._version += 1
                return float(loss)
        raise TraceError("compile_step: the step takes a different path each time it is "
                         "traced on the same batch")


def compile_step(model: Any, loss_fn: Callable, optimizer: Any) -> CompiledStep:
    """Trace one training step of ``model`` with ``loss_fn`` and ``optimizer`` (SGD, Adam or
    AdamW) once; each later call on a batch of the same shape is one numba call.

    ``step(x, y)`` computes ``loss_fn(model(x), y)``, its gradient with respect to the
    optimizer's parameters and the optimizer's update, and returns the loss.

    >>> import wengert
    >>> from wengert import nn, optim
    >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> step = wengert.compile_step(model, nn.MSELoss(), optim.Adam(model.parameters()))
    >>> losses = [step(wengert.ones(4, 3), wengert.zeros(4, 1)) for _ in range(3)]
    >>> losses[2] < losses[0]
    True
    """
    return CompiledStep(model, loss_fn, optimizer)
