"""``wengert.utils.data``: TensorDataset, DataLoader, default_collate."""

from __future__ import annotations

import numpy as np
import pytest

import wengert as torch
from wengert.utils.data import DataLoader, Dataset, TensorDataset, default_collate

N = 23


def _dataset():
    x = torch.arange(N * 2, dtype=torch.float64).reshape(N, 2)
    y = torch.arange(N)
    return TensorDataset(x, y)


def _epoch(loader):
    """The sample ids of one pass, batch by batch (and a check that x and y agree)."""
    ids = []
    for xb, yb in loader:
        assert xb.dtype == torch.float64 and yb.dtype == torch.int64
        np.testing.assert_array_equal(xb.numpy(), np.stack([2 * yb.numpy(),
                                                            2 * yb.numpy() + 1], 1))
        ids.append(yb.tolist())
    return ids


def test_tensor_dataset_items_and_errors():
    ds = _dataset()
    assert len(ds) == N
    x, y = ds[4]
    assert x.tolist() == [8.0, 9.0] and y.item() == 4
    with pytest.raises(ValueError, match=r"Size mismatch between tensors: first dimensions "
                                         r"are \[23, 22\]"):
        TensorDataset(torch.zeros(N, 2), torch.zeros(N - 1))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(TypeError, match="wengert tensors"):
        TensorDataset(np.zeros(3))


@pytest.mark.parametrize("batch_size", [1, 4, 5, 23, 30])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once_per_epoch(batch_size, shuffle):
    loader = DataLoader(_dataset(), batch_size=batch_size, shuffle=shuffle, seed=0)
    for _ in range(2):
        batches = _epoch(loader)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(N))
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        assert len(batches[-1]) == (N if batch_size >= N else N % batch_size or batch_size)
        assert len(batches) == len(loader) == -(-N // batch_size)
        if not shuffle:
            assert flat == list(range(N))


@pytest.mark.parametrize("batch_size", [1, 4, 5, 23, 30])
@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_drops_only_the_short_tail(batch_size, shuffle):
    loader = DataLoader(_dataset(), batch_size=batch_size, shuffle=shuffle, drop_last=True,
                        seed=1)
    batches = _epoch(loader)
    flat = [i for b in batches for i in b]
    assert len(batches) == len(loader) == N // batch_size
    assert all(len(b) == batch_size for b in batches)
    assert len(flat) == len(set(flat)) == N - N % batch_size
    if not shuffle:
        assert flat == list(range(len(flat)))


def test_shuffle_is_reproducible_and_changes_between_epochs():
    a = DataLoader(_dataset(), batch_size=5, shuffle=True, seed=3)
    b = DataLoader(_dataset(), batch_size=5, shuffle=True, seed=3)
    ea1, ea2 = _epoch(a), _epoch(a)
    assert ea1 == _epoch(b) and ea2 == _epoch(b)  # same seed: same sequence of epochs
    assert ea1 != ea2  # each epoch draws a new order
    assert ea1 != _epoch(DataLoader(_dataset(), batch_size=5, shuffle=True, seed=4))
    assert [i for e in ea1 for i in e] != list(range(N))


def test_shuffle_without_seed_follows_manual_seed():
    loader = DataLoader(_dataset(), batch_size=7, shuffle=True)
    torch.manual_seed(10)
    first = _epoch(loader)
    torch.manual_seed(10)
    assert _epoch(loader) == first


def test_batches_are_cut_with_one_index_per_tensor():
    class NoItems(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("per-sample access")

    x = torch.randn(N, 3)
    loader = DataLoader(NoItems(x, torch.arange(N)), batch_size=8, shuffle=True, seed=0)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.numpy(), x.numpy()[yb.numpy()])


def test_batches_of_tensors_requiring_grad_stay_in_the_graph():
    x = torch.randn(N, 2, requires_grad=True)
    loader = DataLoader(TensorDataset(x), batch_size=10, shuffle=True, seed=2)
    for (xb,) in loader:
        (xb * xb).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())  # each row once


def test_generic_dataset_is_collated_sample_by_sample():
    class Squares(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"x": torch.tensor([float(i), 1.0]), "y": i * i}

    batches = list(DataLoader(Squares(), batch_size=4))
    assert [tuple(b["x"].shape) for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert batches[1]["y"].tolist() == [16, 25, 36, 49]
    assert batches[1]["y"].dtype == torch.int64
    with pytest.raises(NotImplementedError):
        len(Dataset())


def test_default_collate():
    out = default_collate([(torch.zeros(2), 1.5, np.array([1, 2])),
                           (torch.ones(2), 2.5, np.array([3, 4]))])
    assert out[0].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert out[1].tolist() == [1.5, 2.5]
    assert out[2].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(TypeError, match="can't batch"):
        default_collate([object(), object()])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(_dataset(), batch_size=bad)


def test_training_with_a_dataloader_reduces_the_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    first = torch.nn.functional.mse_loss(model(x), y).item()
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(xb), yb).backward()
            opt.step()
    assert torch.nn.functional.mse_loss(model(x), y).item() < 1e-3 * first
