"""``wengert.save`` / ``wengert.load``: state dicts as .npz without pickle."""

from __future__ import annotations

import io
import math
from collections import OrderedDict

import numpy as np
import pytest

import wengert as torch
from wengert import nn


def _model():
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))


def test_module_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    a = _model()
    path = tmp_path / "model.npz"
    torch.save(a.state_dict(), path)
    sd = torch.load(path)
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for k, v in a.state_dict().items():
        assert isinstance(sd[k], torch.Tensor) and not sd[k].requires_grad
        np.testing.assert_array_equal(sd[k].numpy(), v.numpy())
    b = _model()
    b.load_state_dict(sd)
    x = torch.randn(4, 3)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_nested_values_keep_their_types(tmp_path):
    obj = {
        "model": OrderedDict(w=torch.tensor([[1.5, -2.0]]), n=torch.tensor([1, 2, 3]),
                             mask=torch.tensor([True, False])),
        "epoch": 7, "lr": 1e-3, "name": "run-1", "done": False, "none": None,
        "betas": (0.9, 0.999), "history": [1.0, 0.5, torch.zeros(2)],
        3: "int key", 0.5: "float key",
        "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
        "special": torch.tensor([math.inf, -math.inf, math.nan]),
        "np": np.arange(3), "np_scalar": np.float64(0.25),
    }
    path = tmp_path / "all.npz"
    torch.save(obj, path)
    out = torch.load(path)
    assert list(out) == list(obj)
    assert isinstance(out["model"], OrderedDict) and type(out) is dict
    assert out["model"]["w"].tolist() == [[1.5, -2.0]]
    assert out["model"]["n"].dtype == torch.int64 and out["model"]["n"].tolist() == [1, 2, 3]
    assert out["model"]["mask"].dtype == torch.bool
    assert (out["epoch"], out["lr"], out["name"], out["done"], out["none"]) == (
        7, 1e-3, "run-1", False, None)
    assert type(out["epoch"]) is int and type(out["lr"]) is float
    assert out["betas"] == (0.9, 0.999) and isinstance(out["betas"], tuple)
    assert out["history"][:2] == [1.0, 0.5] and out["history"][2].tolist() == [0.0, 0.0]
    assert out[3] == "int key" and out[0.5] == "float key"
    assert out["scalar"].shape == () and out["scalar"].item() == 2.5
    assert tuple(out["empty"].shape) == (0, 3)
    sp = out["special"].numpy()
    assert sp[0] == math.inf and sp[1] == -math.inf and math.isnan(sp[2])
    assert isinstance(out["np"], torch.Tensor) and out["np"].tolist() == [0, 1, 2]
    assert out["np_scalar"] == 0.25


def test_the_file_is_plain_npz_without_pickle(tmp_path):
    path = tmp_path / "weights.bin"  # written as given: no .npz appended
    torch.save({"w": torch.ones(2, 2), "step": 1}, path)
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()
    with np.load(path, allow_pickle=False) as z:
        for name in z.files:
            assert z[name].dtype != object
        assert any(np.array_equal(z[n], np.ones((2, 2))) for n in z.files)


def test_file_objects_and_plain_npz_files(tmp_path):
    buf = io.BytesIO()
    torch.save({"a": torch.arange(3)}, buf)
    buf.seek(0)
    assert torch.load(buf)["a"].tolist() == [0, 1, 2]
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.eye(2), b=np.zeros(2, dtype=np.float32))
    out = torch.load(path)
    assert sorted(out) == ["b", "w"] and out["w"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert out["b"].dtype == torch.float64


@pytest.mark.parametrize("bad, what", [
    ({"f": lambda x: x}, "function"),
    ({"s": {1, 2}}, "set"),
    ({(1, 2): torch.zeros(1)}, "keys must be strings or numbers"),
    ({"o": np.array(["a", "b"])}, "dtype <U1"),
    (nn.Linear(2, 2), "Linear"),
])
def test_unsupported_objects_are_refused(bad, what, tmp_path):
    with pytest.raises(TypeError, match=what):
        torch.save(bad, tmp_path / "x.npz")


def test_a_tampered_manifest_is_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, __wengert__=np.array('{"format": 99, "root": null}'))
    with pytest.raises(ValueError, match="unsupported file format 99"):
        torch.load(path)


def test_load_state_dict_from_a_different_model_is_a_clear_error(tmp_path):
    path = tmp_path / "small.npz"
    torch.save(_model().state_dict(), path)
    wide = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2), nn.Linear(2, 1))
    with pytest.raises(RuntimeError) as err:
        wide.load_state_dict(torch.load(path))
    msg = str(err.value)
    assert 'Missing key(s) in state_dict: "3.weight", "3.bias"' in msg
    assert "size mismatch for 0.weight: copying a param with shape [5, 3] from checkpoint, " \
           "the shape in current model is [6, 3]" in msg


def test_saved_values_are_a_snapshot(tmp_path):
    t = torch.zeros(2)
    path = tmp_path / "t.npz"
    torch.save({"t": t}, path)
    t.add_(1.0)
    assert torch.load(path)["t"].tolist() == [0.0, 0.0]
