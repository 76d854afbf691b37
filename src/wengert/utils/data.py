"""Datasets and batching: ``Dataset``, ``TensorDataset``, ``DataLoader``.

>>> import wengert
>>> from wengert.utils.data import DataLoader, TensorDataset
>>> x, y = wengert.arange(10.0).reshape(5, 2), wengert.arange(5)
>>> for xb, yb in DataLoader(TensorDataset(x, y), batch_size=2):
...     print(list(xb.shape), yb.tolist())
[2, 2] [0, 1]
[2, 2] [2, 3]
[1, 2] [4]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..creation import generator
from ..tensor import Tensor, stack

__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(i)`` and ``__len__``.

    A subclass may also define ``get_batch(indices)`` (an int64 numpy array) returning a
    whole batch at once; ``DataLoader`` then uses it instead of one call per sample.

    >>> from wengert.utils.data import Dataset
    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return float(i), float(i * i)
    >>> Squares()[3]
    (3.0, 9.0)
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


def _take(t: Tensor, idx: np.ndarray) -> Tensor:
    """Rows ``idx`` of ``t`` in one indexing operation."""
    if t.requires_grad:
        return t[idx]  # one gather on the tape, in the graph
    # Data without a graph: index the values directly. (Indexing on the tape would first
    # copy the whole tensor into the tape's arena, once per tape, i.e. once per step.)
    return Tensor(t._np()[idx], dtype=t.dtype)


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension.

    >>> import wengert
    >>> from wengert.utils.data import TensorDataset
    >>> ds = TensorDataset(wengert.zeros(3, 2), wengert.tensor([0, 1, 2]))
    >>> len(ds), ds[1][1]
    (3, tensor(1))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset takes wengert tensors, got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError("TensorDataset: a 0-d tensor has no samples to index")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        """The samples at ``indices``, as one tensor per field (one indexing each)."""
        return tuple(_take(t, indices) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples field by field: tensors, numbers, arrays, tuples, dicts.

    >>> import wengert
    >>> from wengert.utils.data import default_collate
    >>> default_collate([(wengert.zeros(2), 1), (wengert.ones(2), 0)])
    (tensor([[0., 0.],
            [1., 1.]]), tensor([1, 0]))
    """
    first = samples[0]
    if isinstance(first, Tensor):
        if any(s.requires_grad for s in samples):
            return stack(list(samples))
        return Tensor(np.stack([s._np() for s in samples]), dtype=first.dtype)
    if isinstance(first, (bool, int, float, np.number, np.bool_, np.ndarray)):
        return Tensor(np.stack([np.asarray(s) for s in samples]))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise RuntimeError("each sample in a batch should have the same number of fields")
        return tuple(default_collate(list(field)) for field in zip(*samples))
    raise TypeError(f"default_collate: can't batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over a dataset in batches.

    ``TensorDataset`` batches are cut with one int64 index array per tensor (no Python
    loop over samples); other datasets are read sample by sample and stacked by
    ``default_collate``. With ``shuffle``, every epoch (every ``iter``) visits the
    samples in a new random order drawn from a generator seeded with ``seed`` (or from
    ``wengert.generator()`` when ``seed`` is None); the sequence of epochs is
    reproducible. ``drop_last`` drops a final batch smaller than ``batch_size``.

    >>> import wengert
    >>> from wengert.utils.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(wengert.arange(6))
    >>> [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, seed=0)]
    [[3, 2, 5, 4], [0, 1]]
    >>> len(DataLoader(ds, batch_size=4, drop_last=True))
    1
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = self._rng if self._rng is not None else generator()
        return rng.permutation(n).astype(np.int64)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        bs = self.batch_size
        get_batch = getattr(self.dataset, "get_batch", None)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            if self.drop_last and len(idx) < bs:
                break
            if get_batch is not None:
                yield get_batch(idx)
            else:
                yield default_collate([self.dataset[int(i)] for i in idx])

    def __repr__(self) -> str:
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed})")
