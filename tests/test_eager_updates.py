"""no_grad arithmetic on concrete values runs at once (``tensor.EAGER_MAX``): the same
numbers as the recorded path, PyTorch's in-place semantics, and the fallbacks."""

from __future__ import annotations

import gc
import sys
import warnings
import weakref

import numpy as np
import pytest

import wengert as torch
from wengert.optable import BINARY, OPS, UNARY, UNARY_C

tensor_mod = sys.modules["wengert.tensor"]

_ELEMENTWISE = [op for op in OPS if op.family in (UNARY, UNARY_C, BINARY) and op.code != 26]


def _sample(rng, spec, shape):
    lo, hi = spec.domain
    return rng.uniform(lo, hi, shape)


@pytest.mark.parametrize("spec", _ELEMENTWISE, ids=lambda s: s.name)
def test_no_grad_result_equals_the_recorded_entry(spec):
    """The eager kernel is the tapes' scalar kernel: bit-for-bit the recorded values."""
    rng = np.random.default_rng(spec.code)
    x = _sample(rng, spec, (3, 4))
    y = _sample(rng, spec, (3, 4))
    c = spec.test_const

    def run(a, b):
        if spec.family == UNARY:
            return tensor_mod._fast1(a, spec.code, 0.0)
        if spec.family == UNARY_C:
            return tensor_mod._fast1(a, spec.code, c)
        return tensor_mod._fast2(a, b, spec.code)

    recorded = run(torch.tensor(x, requires_grad=True), torch.tensor(y))
    assert recorded._tape is not None
    with torch.no_grad():
        eager = run(torch.tensor(x), torch.tensor(y))
    assert eager._tape is None and eager.is_leaf and not eager.requires_grad
    np.testing.assert_array_equal(eager.numpy(), recorded.detach().numpy())


def test_no_grad_ops_record_nothing():
    a = torch.tensor([1.0, 2.0, 3.0])
    b = torch.tensor([0.5, 0.5, 0.5])
    with torch.no_grad():
        c = (a * 2.0 + b) - 1.0
        d = 3.0 - c * b
    assert c._tape is None and d._tape is None
    np.testing.assert_array_equal(d.numpy(), [2.25, 1.25, 0.25])


def test_no_grad_division_by_zero_is_a_value_without_warning():
    a = torch.tensor([1.0, -1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            q = a / 0.0
            r = a / torch.zeros(3)
            a2 = a.clone()
            a2 /= 0.0
    np.testing.assert_array_equal(q.numpy()[:2], [np.inf, -np.inf])
    assert np.isnan(q.numpy()[2])
    np.testing.assert_array_equal(r.numpy()[:2], [np.inf, -np.inf])
    np.testing.assert_array_equal(a2.numpy()[:2], [np.inf, -np.inf])


def test_update_writes_into_the_storage_and_bumps_the_version():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w * w).sum().backward()
    view = w.detach().numpy()  # shares storage, as in PyTorch
    v0 = w._version
    with torch.no_grad():
        w -= 0.5 * w.grad
        w.sub_(torch.tensor(1.0))  # a one-element operand broadcasts
        w *= 2
        w.add_(torch.tensor([1.0, 1.0, 1.0]))
    expected = ((np.array([1.0, 2.0, 3.0]) * 0.0) - 1.0) * 2 + 1.0
    np.testing.assert_array_equal(view, expected)
    np.testing.assert_array_equal(w.detach().numpy(), expected)
    assert w._version == v0 + 4
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


def test_update_after_the_graph_used_the_value_makes_backward_raise():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with torch.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_update_shape_mismatch_keeps_the_pytorch_error():
    w = torch.tensor([1.0, 2.0, 3.0])
    with torch.no_grad():
        with pytest.raises(RuntimeError):
            w -= torch.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError):
            w += torch.ones(2, 3)  # broadcasts to a larger shape: not in place
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0, 3.0])


def test_update_of_non_contiguous_storage_takes_the_general_path():
    arr = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    t = torch.from_numpy(arr)
    with torch.no_grad():
        t += 1.0
        t.mul_(torch.full((2, 3), 2.0))
    np.testing.assert_array_equal(t.numpy(), (np.arange(6.0).reshape(2, 3) + 1.0) * 2.0)
    np.testing.assert_array_equal(arr, t.numpy())  # still the user's storage


def test_large_tensors_are_recorded_with_the_same_values():
    n = tensor_mod.EAGER_MAX + 1
    a = torch.linspace(0.0, 1.0, n)
    with torch.no_grad():
        big = a * 3.0 - 1.0
        small = torch.tensor(a.numpy()[:10]) * 3.0 - 1.0
    assert big._tape is not None and small._tape is None
    np.testing.assert_array_equal(big.numpy()[:10], small.numpy())


def test_pending_inplace_value_is_used():
    """A leaf whose in-place update is still pending on a tape (recorded, not eager)."""
    n = tensor_mod.EAGER_MAX + 1
    w = torch.ones(n)
    with torch.no_grad():
        w.sub_(torch.full((n,), 0.25))  # large: recorded, pending
        assert w._ptape is not None
        r = w[:3] * 2.0
    np.testing.assert_array_equal(r.numpy(), [1.5, 1.5, 1.5])


def test_traced_functions_still_record_no_grad_arithmetic():
    scale = torch.tensor([2.0, 3.0])

    def f(x):
        with torch.no_grad():
            s = scale * 2.0  # a constant of the trace
        return (x * s).sum()

    vg = torch.value_and_grad(f)
    for x0 in ([1.0, 1.0], [0.5, -1.0]):
        v, g = vg(np.array(x0))
        assert v == pytest.approx(4.0 * x0[0] + 6.0 * x0[1])
        np.testing.assert_allclose(g, [4.0, 6.0])


def test_a_tape_holds_leaves_without_grad_weakly():
    """A no_grad loop that reads new tensors into one tape does not keep them alive."""
    x = torch.ones(5)
    with torch.no_grad():
        s = x.sum()  # recorded: imports x
    ref = weakref.ref(x)
    del x
    gc.collect()
    assert ref() is None
    assert s.item() == 5.0


# ---------------------------------------------------------------------- retired tapes
def _step(w):
    loss = (w * w).sum() * 0.5
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
    return loss


def test_a_loss_outlives_its_backward_with_the_values_and_errors_of_a_freed_graph():
    """After backward() the loss stays on the retired tape (Tape.release) until the next
    backward recycles that tape: before and after, it behaves the same."""
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    first = _step(w)
    for _ in range(3):  # on the retired tape, then materialized
        assert first.item() == pytest.approx(2.5)
        assert first.requires_grad and not first.is_leaf
        assert first.grad_fn.name() == "MulBackward0"
        assert first.grad_fn.next_functions == ()
        with pytest.raises(RuntimeError, match="retain_graph=True"):
            first.backward()
        with pytest.raises(RuntimeError, match="retain_graph=True"):
            (first * 2).backward()
        _step(w)


def test_losses_kept_across_steps_keep_their_values():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    history = [_step(w) for _ in range(6)]
    expected = [0.5 * 5.0 * 0.81 ** k for k in range(6)]
    np.testing.assert_allclose([h.item() for h in history], expected)
    with torch.no_grad():
        total = sum(history)
    assert total.item() == pytest.approx(sum(expected))
    _step(w)  # recycling tapes that exported values to others
    np.testing.assert_allclose([h.item() for h in history], expected)


def test_a_training_loop_alternates_two_tapes():
    from wengert._state import STATE

    w = torch.tensor([1.0, 2.0], requires_grad=True)
    seen = set()
    for _ in range(20):
        _step(w)
        seen.add(id(STATE.tape))
        seen.add(id(STATE.spare))
    assert len(seen) <= 3  # the pair, plus None before the first recycle


def test_large_tapes_are_emptied_at_backward(monkeypatch):
    """Above RETIRE_ELEMENTS a tape is not retired: live values are copied out at once."""
    from wengert._state import STATE

    monkeypatch.setattr(sys.modules["wengert.tape"], "RETIRE_ELEMENTS", 0)
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    first = _step(w)
    assert first._tape is None  # copied out by this backward
    tape = STATE.tape
    for _ in range(3):
        _step(w)
        assert STATE.tape is tape  # one tape, reused
    assert first.item() == pytest.approx(2.5)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        first.backward()


def test_a_step_with_large_activations_stays_on_one_tape():
    n = (1 << 21) + 1  # above SEAL_ELEMENTS
    w = torch.ones(n, requires_grad=True)
    h = (w * 2.0).relu()
    h.sum().item()  # evaluated: a larger tape would be sealed here
    out = (h * 3.0 + 1.0).sum()
    assert out._tape is h._tape and not h._tape.links
    out.backward()
    assert w.grad.numpy()[:3].tolist() == [6.0, 6.0, 6.0]


def test_in_place_with_grad_enabled_records_when_an_operand_requires_grad():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([10.0, 20.0])
    x += w  # x joins the graph, as in PyTorch
    assert x.requires_grad and x.grad_fn is not None
    (x * x).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [22.0, 44.0])
    plain = torch.tensor([1.0, 2.0])
    plain *= torch.tensor([3.0, 4.0])  # nothing requires grad: done at once
    assert plain._tape is None and plain.tolist() == [3.0, 8.0]


def test_gradients_given_to_backward_accumulate_in_their_shape():
    x = torch.tensor(np.ones((2, 3)), requires_grad=True)
    x.backward(torch.ones(2, 3))
    x.backward(torch.ones(2, 3) * 2)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 3.0))
    y = torch.tensor(np.ones((2, 3)), requires_grad=True)
    (y * 2).backward(torch.ones(2, 3))
    (y * 3).backward(torch.ones(2, 3))
    np.testing.assert_array_equal(y.grad.numpy(), np.full((2, 3), 5.0))


def test_read_only_storage_is_not_written_by_the_eager_kernels():
    arr = np.arange(4.0)
    arr.setflags(write=False)
    t = torch.from_numpy(arr)
    with torch.no_grad():
        doubled = t * 2  # reading is fine
        with pytest.raises(ValueError, match="read-only"):
            t += 1
    np.testing.assert_array_equal(doubled.numpy(), [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(arr, np.arange(4.0))


def test_eager_ops_read_strided_and_fortran_storage():
    base = np.arange(24.0).reshape(4, 6)
    strided = torch.from_numpy(base[:, ::2])
    fortran = torch.from_numpy(np.asfortranarray(base))
    with torch.no_grad():
        np.testing.assert_array_equal((strided * 3).numpy(), base[:, ::2] * 3)
        np.testing.assert_array_equal((fortran - fortran).numpy(), np.zeros((4, 6)))
        np.testing.assert_array_equal((1.5 + fortran).numpy(), base + 1.5)
        w = torch.zeros(4, 3)
        w += strided
    np.testing.assert_array_equal(w.numpy(), base[:, ::2])


def test_gradient_accumulates_into_a_grad_the_user_assigned_with_other_storage():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w.grad = torch.from_numpy(np.asfortranarray(np.ones((2, 2))))
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 1 + 2 * w.detach().numpy())
