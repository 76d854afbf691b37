"""Leaf gradients added in one call (``_gradblock``): the plan must never change results."""

import numpy as np
import pytest

import wengert

RNG = np.random.default_rng(7)
X = RNG.standard_normal((20, 3))
Y = RNG.standard_normal((20, 1))
P0 = [RNG.standard_normal(s) for s in [(3, 5), (5,), (5, 1), (1,)]]


def _params():
    return [wengert.tensor(p, requires_grad=True) for p in P0]


def _loss(ps, x=X, y=Y):
    w1, b1, w2, b2 = ps
    h = wengert.tensor(x).mm(w1).add(b1).relu()
    return (h.mm(w2).add(b2) - wengert.tensor(y)).pow(2).sum()


def _reference(ps_values, x=X, y=Y):
    """The gradients by numpy (the network's backward written out)."""
    w1, b1, w2, b2 = ps_values
    a = x @ w1 + b1
    h = np.maximum(a, 0.0)
    r = h @ w2 + b2 - y
    g = 2 * r
    gw2 = h.T @ g
    gb2 = g.sum(0)
    gh = g @ w2.T * (a > 0)
    return [x.T @ gh, gh.sum(0), gw2, gb2]


@pytest.fixture
def calls(monkeypatch):
    """Count the one-call additions (copy=False) and copies (copy=True) of the plans."""
    from wengert import _fastcall, _gradblock, _vm

    seen = {True: 0, False: 0}
    real = _fastcall.bind(_vm.add_blocks, _fastcall.ADD_BLOCKS)

    def counting(adj, idx, blk, copy):
        seen[bool(copy)] += 1
        real(adj, idx, blk, copy)

    monkeypatch.setattr(_gradblock, "_add_blocks", counting)
    return seen


@pytest.mark.parametrize("reset", ["zero_", "none", "mixed"])
def test_training_loop_matches_numpy(reset, calls):
    ps = _params()
    vals = [p.copy() for p in P0]
    for step in range(6):
        _loss(ps).backward()
        ref = _reference(vals)
        for p, r in zip(ps, ref):
            np.testing.assert_allclose(p.grad.numpy(), r, rtol=1e-12, atol=1e-12)
        with wengert.no_grad():
            for p in ps:
                p -= 1e-3 * p.grad
        vals = [v - 1e-3 * r for v, r in zip(vals, ref)]
        for i, p in enumerate(ps):
            if reset == "zero_" or (reset == "mixed" and (step + i) % 2):
                p.grad.zero_()
            else:
                p.grad = None
    if reset == "zero_":  # every backward after each tape's first adds in one call
        assert calls[False] >= 3
    elif reset == "none":  # every backward makes the grads in one block
        assert calls[True] == 6


def test_gradients_accumulate_without_zeroing():
    ps = _params()
    for _ in range(4):
        _loss(ps).backward()
    ref = _reference(P0)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p.grad.numpy(), 4 * r, rtol=1e-12)


def test_grads_are_separate_storage():
    ps = _params()
    for _ in range(3):  # the first backward makes the block, the third uses its plan
        for p in ps:
            p.grad = None if p.grad is None else p.grad.zero_()
        _loss(ps).backward()
    before = [p.grad.numpy().copy() for p in ps]
    ps[0].grad.fill_(5.0)
    for p, b in zip(ps[1:], before[1:]):
        np.testing.assert_array_equal(p.grad.numpy(), b)
    assert ps[0].grad.numpy().shape == (3, 5)


def test_user_assigned_grad_is_used_and_kept():
    ps = _params()
    for _ in range(3):
        _loss(ps).backward()
    mine = wengert.zeros(5)
    ps[1].grad = mine
    _loss(ps).backward()
    assert ps[1].grad is mine
    np.testing.assert_allclose(mine.numpy(), _reference(P0)[1], rtol=1e-12)
    _loss(ps).backward()
    assert ps[1].grad is mine
    np.testing.assert_allclose(mine.numpy(), 2 * _reference(P0)[1], rtol=1e-12)
    np.testing.assert_allclose(ps[0].grad.numpy(), 5 * _reference(P0)[0], rtol=1e-12)


def test_grad_held_by_user_is_not_overwritten_after_set_to_none():
    ps = _params()
    _loss(ps).backward()
    _loss(ps).backward()
    kept = [p.grad for p in ps]
    kept_values = [g.numpy().copy() for g in kept]
    for p in ps:
        p.grad = None
    _loss(ps, x=2 * X).backward()
    for g, v in zip(kept, kept_values):
        np.testing.assert_array_equal(g.numpy(), v)
    for p, r in zip(ps, _reference(P0, x=2 * X)):
        np.testing.assert_allclose(p.grad.numpy(), r, rtol=1e-12)


def test_unused_parameter_keeps_no_grad():
    ps = _params()
    extra = wengert.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        _loss(ps).backward()
    assert extra.grad is None
    np.testing.assert_allclose(ps[3].grad.numpy(), 3 * _reference(P0)[3], rtol=1e-12)


def test_version_moves_and_backward_into_pending_grad():
    ps = _params()
    _loss(ps).backward()
    _loss(ps).backward()
    v = ps[0].grad._version
    _loss(ps).backward()
    assert ps[0].grad._version == v + 1
    big = wengert.tensor(RNG.standard_normal(5000), requires_grad=True)
    for _ in range(3):
        (big * big).sum().backward()
    # A large grad updated in place is recorded (pending), not written at once.
    big.grad.mul_(0.5)
    (big * big).sum().backward()
    np.testing.assert_allclose(big.grad.numpy(), (0.5 * 3 + 1) * 2 * big.detach().numpy(),
                               rtol=1e-12)


def test_retain_graph_twice_accumulates():
    ps = _params()
    for _ in range(2):
        _loss(ps).backward()
    for p in ps:
        p.grad.zero_()
    loss = _loss(ps)
    loss.backward(retain_graph=True)
    loss.backward()
    for p, r in zip(ps, _reference(P0)):
        np.testing.assert_allclose(p.grad.numpy(), 2 * r, rtol=1e-12)


def test_one_leaf_loop_as_rosenbrock():
    x = wengert.tensor([-1.0, 1.5], requires_grad=True)
    for _ in range(5):
        f = (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2
        f.backward()
        g = x.grad.numpy().copy()
        a, b = x.detach().numpy()
        np.testing.assert_allclose(g, [-2 * (1 - a) - 20 * a * (b - a * a), 10 * (b - a * a)],
                                   rtol=1e-12)
        with wengert.no_grad():
            x -= 0.01 * x.grad
            x.grad.zero_()


def test_a_plan_does_not_keep_a_dropped_model_alive():
    import gc
    import weakref

    ps = _params()
    for _ in range(4):
        _loss(ps).backward()
    ref = weakref.ref(ps[0])
    del ps
    other = wengert.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(4):  # other graphs, on both tapes of the loop
        (other * other).sum().backward()
    gc.collect()
    assert ref() is None
