"""``save`` and ``load``: state dicts as ``.npz`` files, without pickle.

Tensors become arrays of the archive; the structure around them (nested dicts, lists
and tuples of tensors, numbers, strings, booleans and None) is a JSON manifest stored as
a string array. Nothing is unpickled on load (``allow_pickle=False``), so a file can
carry no code.

>>> import os, tempfile, wengert
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> wengert.save({"w": wengert.ones(2), "step": 3}, path)
>>> wengert.load(path)
{'w': tensor([1., 1.]), 'step': 3}
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import IO, Any

import numpy as np

from .tensor import Tensor

__all__ = ["load", "save"]

_MANIFEST = "__wengert__"
_FORMAT = 1


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, float)):
            return obj
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return obj.item()
        if isinstance(obj, (Tensor, np.ndarray)):
            arr = obj._np() if isinstance(obj, Tensor) else obj
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"wengert.save: array at {where} has dtype {arr.dtype}; only "
                                "numeric and bool arrays can be saved")
            key = f"t{len(self.arrays)}"
            self.arrays[key] = np.array(arr, copy=True)
            return {"T": key}
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (bool, int, float, str))):
                    raise TypeError(f"wengert.save: dict key {k!r} at {where} is a "
                                    f"{type(k).__name__}; keys must be strings or numbers")
                items.append([k, self.encode(v, f"{where}[{k!r}]")])
            return {"O" if isinstance(obj, OrderedDict) else "D": items}
        if isinstance(obj, (list, tuple)):
            vals = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            return {"L" if isinstance(obj, list) else "U": vals}
        raise TypeError(f"wengert.save: cannot save a {type(obj).__name__} at {where}: only "
                        "tensors, arrays, numbers, strings, booleans, None and dicts, lists "
                        "and tuples of them (no pickled objects)")


def _decode(node: Any, arrays: Any) -> Any:
    if not isinstance(node, dict):
        return node
    (tag, val), = node.items()
    if tag == "T":
        return Tensor(arrays[val])
    if tag in ("D", "O"):
        out = OrderedDict() if tag == "O" else {}
        for k, v in val:
            out[k] = _decode(v, arrays)
        return out
    if tag == "L":
        return [_decode(v, arrays) for v in val]
    if tag == "U":
        return tuple(_decode(v, arrays) for v in val)
    raise ValueError(f"wengert.load: unknown entry {tag!r} in the manifest")


def save(obj: Any, f: str | os.PathLike | IO[bytes]) -> None:
    """Write ``obj`` (e.g. ``model.state_dict()`` or ``optimizer.state_dict()``) to ``f``.

    ``f`` is a path (written as given; no ``.npz`` is appended) or a binary file.

    >>> import io, wengert
    >>> buf = io.BytesIO()
    >>> wengert.save(wengert.nn.Linear(2, 1).state_dict(), buf)
    >>> _ = buf.seek(0)
    >>> sorted(wengert.load(buf))
    ['bias', 'weight']
    """
    enc = _Encoder()
    manifest = {"format": _FORMAT, "root": enc.encode(obj, "root")}
    arrays = dict(enc.arrays)
    arrays[_MANIFEST] = np.array(json.dumps(manifest))
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


def load(f: str | os.PathLike | IO[bytes], map_location: Any = None) -> Any:
    """Read what ``save`` wrote; tensors come back as wengert tensors (no grad).

    An ``.npz`` written by ``numpy.savez`` loads as a dict of tensors. ``map_location``
    is accepted for PyTorch compatibility and ignored.

    >>> import io, wengert
    >>> buf = io.BytesIO()
    >>> wengert.save({"step": 3, "betas": (0.9, 0.999)}, buf)
    >>> _ = buf.seek(0)
    >>> wengert.load(buf)
    {'step': 3, 'betas': (0.9, 0.999)}
    """
    with np.load(f, allow_pickle=False) as z:
        names = list(z.files)
        if _MANIFEST not in names:
            return {k: Tensor(z[k]) for k in names}
        manifest = json.loads(str(z[_MANIFEST]))
        if manifest.get("format") != _FORMAT:
            raise ValueError(f"wengert.load: unsupported file format {manifest.get('format')!r}")
        arrays = {k: z[k] for k in names if k != _MANIFEST}
    return _decode(manifest["root"], arrays)
