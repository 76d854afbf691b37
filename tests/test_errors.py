"""Misuse raises PyTorch's exception type with a message naming the op, shape or flag;
a failed call leaves the tape and the tensors as they were; NaN and inf are values."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import wengert as torch
import wengert.nn.functional as F

# ---------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "lt", "eq", "maximum"])
def test_binary_shape_mismatch(op):
    a = torch.ones(3)
    b = torch.ones(4)
    fn = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
          "div": lambda: a / b, "pow": lambda: a ** b, "lt": lambda: a < b,
          "eq": lambda: a == b, "maximum": lambda: torch.maximum(a, b)}[op]
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 0"):
        fn()


def test_binary_shape_mismatch_2d_names_dimension():
    with pytest.raises(RuntimeError, match=r"\(3\).*\(4\).*dimension 1"):
        torch.ones(2, 3) + torch.ones(2, 4)
    with pytest.raises(RuntimeError, match=r"\(2\).*\(5\).*dimension 0"):
        torch.ones(2, 3) * torch.ones(5, 1)


def test_matmul_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 4x5\)"):
        torch.ones(2, 3) @ torch.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 4x5\)"):
        torch.matmul(torch.ones(2, 3, requires_grad=True), torch.ones(4, 5))
    with pytest.raises(RuntimeError, match=r"2x3"):
        torch.ones(2, 3) @ torch.ones(4)
    with pytest.raises(RuntimeError, match=r"inconsistent tensor size.*\[3\].*\[4\]"):
        torch.ones(3) @ torch.ones(4)
    with pytest.raises(RuntimeError, match="mm"):
        torch.ones(2, 3).mm(torch.ones(3))


def test_inplace_broadcast_shape_mismatch():
    y = torch.ones(3) * 1
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the "
                                           r"broadcast shape \[2, 3\]"):
        y.add_(torch.ones(2, 3))
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0, 1.0])


def test_reshape_cat_stack_errors():
    with pytest.raises(RuntimeError, match=r"shape '\[4\]' is invalid for input of size 6"):
        torch.ones(6).reshape(4)
    with pytest.raises(RuntimeError, match=r"(?i)sizes of tensors must match except in "
                                           r"dimension 0"):
        torch.cat([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        torch.stack([torch.ones(2), torch.ones(3)])


def test_dim_out_of_range():
    with pytest.raises(IndexError, match=r"(?i)dimension out of range \(expected to be in "
                                         r"range of \[-2, 1\], but got 2\)"):
        torch.ones(2, 3).sum(dim=2)
    with pytest.raises(IndexError, match="(?i)dimension out of range"):
        torch.ones(2, 3).max(dim=-3)


def test_bce_with_logits_target_size():
    with pytest.raises(ValueError, match=r"Target size .*\[2\].* must be the same as input "
                                         r"size .*\[3\]"):
        F.binary_cross_entropy_with_logits(torch.zeros(3, requires_grad=True), torch.zeros(2))


# ---------------------------------------------------------------------------------------
# backward misuse
# ---------------------------------------------------------------------------------------


def test_backward_twice_without_retain_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through the graph a second time.*"
                                           r"retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_backward_through_freed_intermediate():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (h * 2).sum().backward()


def test_autograd_grad_then_backward_without_retain():
    x = torch.tensor(2.0, requires_grad=True)
    y = x * x
    torch.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    assert x.grad is None


def test_backward_non_scalar_without_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar "
                                           "outputs"):
        y.backward()
    assert x.grad is None
    y.sum().backward()  # the graph is still usable
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_backward_gradient_of_wrong_shape():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\[2\].*\[3\]"):
        y.backward(torch.ones(2))
    assert x.grad is None
    y.backward(torch.ones(3))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and "
                                           "does not have a grad_fn"):
        torch.ones(3).sum().backward()
    x = torch.tensor(1.0, requires_grad=True)
    with torch.no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_autograd_grad_input_without_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.autograd.grad((x * 2).sum(), torch.ones(2))


def test_autograd_grad_unused_input():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    z = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph.*"
                                           "allow_unused=True"):
        torch.autograd.grad((x * 2).sum(), [x, z])


def test_create_graph_not_implemented():
    x = torch.tensor(2.0, requires_grad=True)
    y = x**3
    with pytest.raises(NotImplementedError, match="create_graph"):
        y.backward(create_graph=True)
    with pytest.raises(NotImplementedError, match="create_graph"):
        torch.autograd.grad(y, x, create_graph=True)
    assert x.grad is None
    y.backward()  # nothing was consumed by the refused calls
    assert x.grad.item() == pytest.approx(12.0)


# ---------------------------------------------------------------------------------------
# requires_grad flags
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: torch.tensor([1, 2], requires_grad=True),
    lambda: torch.tensor([True], requires_grad=True),
    lambda: torch.arange(3, requires_grad=True),
    lambda: torch.tensor([1, 2]).requires_grad_(),
    lambda: torch.zeros(2, dtype=torch.int64, requires_grad=True),
], ids=["tensor-int", "tensor-bool", "arange", "requires_grad_", "zeros-int64"])
def test_requires_grad_on_integer_tensors(make):
    with pytest.raises(RuntimeError, match="floating point"):
        make()


def test_requires_grad_false_on_non_leaf():
    x = torch.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    assert y.requires_grad


def test_retain_grad_without_requires_grad():
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        torch.ones(3).retain_grad()


def test_assigning_grad_of_wrong_shape():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"(?i)assigned grad.*\[3\].*\[2\]|"
                                           r"assigned grad has data of a different size"):
        x.grad = torch.ones(3)
    assert x.grad is None


# ---------------------------------------------------------------------------------------
# in-place misuse and version counters
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_", "iadd", "isub", "zero_",
                                "fill_", "copy_", "clamp_"])
def test_inplace_on_leaf_requiring_grad(op):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    fn = {
        "add_": lambda: x.add_(1.0), "sub_": lambda: x.sub_(1.0), "mul_": lambda: x.mul_(2.0),
        "div_": lambda: x.div_(2.0), "zero_": lambda: x.zero_(), "fill_": lambda: x.fill_(3.0),
        "copy_": lambda: x.copy_(torch.ones(2)), "clamp_": lambda: x.clamp_(0.0, 1.5),
    }
    with pytest.raises(RuntimeError, match=r"leaf Variable that requires grad is being used "
                                           r"in an in-place operation"):
        if op == "iadd":
            x += 1.0
        elif op == "isub":
            x -= 1.0
        else:
            fn[op]()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
    assert x.is_leaf and x.requires_grad
    (x * x).sum().backward()  # the leaf and the tape still work
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    with torch.no_grad():  # and the same op is fine under no_grad
        if op == "iadd":
            x += 1.0
        elif op == "isub":
            x -= 1.0
        else:
            fn[op]()
    assert x.is_leaf and x.requires_grad


def test_inplace_result_type_cannot_be_cast():
    i = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        i.add_(0.5)
    assert i.tolist() == [1, 2] and i.dtype == torch.int64
    b = torch.tensor([True, False])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        b.mul_(2)
    assert b.tolist() == [True, False]


def test_setitem_on_leaf_requiring_grad_outside_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="(?i)leaf.*in-place|in-place.*requires grad"):
        x[0] = 5.0
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_setitem_on_leaf_under_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        x[0] = 5.0
    np.testing.assert_array_equal(x.detach().numpy(), [5.0, 2.0])
    assert x.is_leaf and x.requires_grad


def test_modified_leaf_then_backward_again_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()  # MulBackward saves x
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    with torch.no_grad():
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    # the failed backward did not accumulate anything
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_modified_leaf_before_first_backward_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    with torch.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version"):
        y.backward()
    assert x.grad is None


def test_failed_backward_leaves_all_grads_untouched():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)
    a.grad = torch.tensor([10.0, 10.0])
    h = a * 5
    h.retain_grad()
    y = (h * b * b).sum()
    with torch.no_grad():
        b.sub_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [10.0, 10.0])
    assert b.grad is None
    assert h.grad is None


# ---------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------


def test_numpy_on_tensor_requiring_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        x.numpy()
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2).numpy()
    with pytest.raises(RuntimeError, match="detach"):
        np.asarray(x)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_item_on_multi_element_tensor():
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to "
                                           "Scalar"):
        torch.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match="0 elements"):
        torch.tensor([]).item()


def test_bool_of_multi_element_tensor():
    t = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with .* is ambiguous"):
        bool(t)
    with pytest.raises(RuntimeError, match="ambiguous"):
        if t > 0:
            pass


def test_float_of_multi_element_tensor():
    with pytest.raises(ValueError, match="only one element tensors"):
        float(torch.tensor([1.0, 2.0]))


def test_len_and_iter_of_0d_tensor():
    with pytest.raises(TypeError, match="0-d"):
        len(torch.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(torch.tensor(1.0)).__next__()


# ---------------------------------------------------------------------------------------
# indexing
# ---------------------------------------------------------------------------------------


def test_index_out_of_range():
    t = torch.ones(3)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        t[3]
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 0 with "
                                         "size 3"):
        t[-4]
    with pytest.raises(IndexError, match="out of bounds"):
        t[[0, 3]]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 1"):
        t[0, 0]
    with pytest.raises(IndexError, match="mask"):
        t[torch.tensor([True, False])]
    m = torch.ones(4, 3)
    with pytest.raises(IndexError, match="index 5 is out of bounds.*size 4"):
        m[5]


def test_index_out_of_range_names_dimension():
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        torch.ones(2, 3)[0, 3]


def test_failed_index_leaves_graph_usable():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    with pytest.raises(IndexError):
        h[7]
    with pytest.raises(IndexError):
        h[[0, 9]]
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


# ---------------------------------------------------------------------------------------
# integer dtype misuse
# ---------------------------------------------------------------------------------------


def test_mean_of_integer_tensor():
    with pytest.raises(RuntimeError, match="dtype"):
        torch.tensor([1, 2]).mean()


def test_integer_to_negative_integer_power():
    with pytest.raises(RuntimeError, match="(?i)integers to negative integer powers are not "
                                           "allowed"):
        torch.tensor([2, 3]) ** -1


def test_integer_to_negative_integer_tensor_power():
    with pytest.raises(RuntimeError, match="(?i)integers to negative integer powers"):
        torch.tensor([2, 3]) ** torch.tensor([-1, -1])


# ---------------------------------------------------------------------------------------
# failed calls leave the tape and the tensors unchanged
# ---------------------------------------------------------------------------------------


def test_failed_ops_leave_tape_usable():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    a = x * 2
    for bad in (lambda: a + torch.ones(4), lambda: a @ torch.ones(2, 2),
                lambda: torch.cat([a, torch.ones(1, 1)]), lambda: a.reshape(2, 2),
                lambda: torch.stack([a, torch.ones(2)]), lambda: a.sum(dim=1)):
        with pytest.raises((RuntimeError, IndexError)):
            bad()
    out = (a @ w).sum() + (a * a).sum()
    out.backward()
    # out = sum_j (2x @ w)_j + 4 sum x^2  ->  d/dx = 2 w.sum(1) + 8 x
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1.0, 1.0, 2.0]) + 8 * np.array(
        [1.0, 2.0, 3.0]))
    np.testing.assert_allclose(w.grad.numpy(), np.outer([2.0, 4.0, 6.0], [1.0, 1.0]))


def test_failed_inplace_on_leaf_leaves_graph_usable():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    with pytest.raises(RuntimeError, match="in-place"):
        x.add_(1.0)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])


def test_failed_backward_then_successful_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError):
        y.backward()  # non-scalar
    with pytest.raises(RuntimeError):
        y.backward(torch.ones(3))  # wrong shape
    with pytest.raises(NotImplementedError):
        y.sum().backward(create_graph=True)
    assert x.grad is None
    y.backward(torch.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_errors_in_another_thread_do_not_disturb_this_one():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    seen = []

    def other():
        try:
            torch.ones(2) + torch.ones(3)
        except RuntimeError as e:
            seen.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert seen and "must match" in seen[0]
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


# ---------------------------------------------------------------------------------------
# NaN and inf are values, not errors
# ---------------------------------------------------------------------------------------


def _in_fresh_thread(fn, *args):
    """Run ``fn`` on a new thread (a fresh tape), re-raising what it raised.

    A failure inside an evaluation must not leak into the other tests through the
    main thread's tape, whatever wengert does with it.
    """
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_nan_and_inf_from_elementwise_functions():
    assert math.isnan(torch.log(torch.tensor(-1.0)).item())
    assert torch.log(torch.tensor(0.0)).item() == -math.inf
    assert math.isnan(torch.sqrt(torch.tensor(-1.0)).item())
    assert torch.exp(torch.tensor(1000.0)).item() == math.inf
    assert math.isnan((torch.tensor(math.inf) - math.inf).item())
    assert (torch.tensor(0.0) ** -1).item() == math.inf
    v = torch.log(torch.tensor([-1.0, 0.0, 1.0])).numpy()
    assert math.isnan(v[0]) and v[1] == -math.inf and v[2] == 0.0
    assert (torch.tensor(float("nan")) != torch.tensor(float("nan"))).item() is True


@pytest.mark.parametrize("expr, want", [
    (lambda: torch.tensor(1.0) / 0, math.inf),
    (lambda: torch.tensor(-1.0) / 0.0, -math.inf),
    (lambda: torch.tensor(1.0) / torch.tensor(0.0), math.inf),
    (lambda: 1 / torch.tensor(0.0), math.inf),
    (lambda: torch.tensor(0.0).reciprocal(), math.inf),
    (lambda: torch.tensor(0.0) / torch.tensor(0.0), math.nan),
], ids=["t/0", "-t/0.", "t/t0", "1/t0", "reciprocal", "0/0"])
def test_division_by_zero_gives_inf_or_nan(expr, want):
    v = _in_fresh_thread(lambda: expr().item())
    if math.isnan(want):
        assert math.isnan(v)
    else:
        assert v == want


def test_inf_and_nan_do_not_disturb_later_ops():
    """Regression: a 1/0 once raised inside the sweep and left the entry pending, so every
    later evaluation on the thread re-ran it and raised again."""

    def run():
        q = torch.tensor([1.0, 0.0]) / torch.tensor(0.0)
        v = q.tolist()
        x = torch.tensor(2.0, requires_grad=True)
        y = x * x
        assert y.item() == 4.0
        y.backward()
        return v, x.grad.item()

    v, g = _in_fresh_thread(run)
    assert v[0] == math.inf and math.isnan(v[1])
    assert g == 4.0


@pytest.mark.parametrize("fn, want", [
    (lambda x: x.log(), [math.inf, 1.0]),
    (lambda x: x.sqrt(), [math.inf, 0.5]),
    (lambda x: x.reciprocal(), [-math.inf, -1.0]),
], ids=["log", "sqrt", "reciprocal"])
def test_backward_at_singularity_gives_inf(fn, want):
    def run():
        x = torch.tensor([0.0, 1.0], requires_grad=True)
        fn(x).sum().backward()
        return x.grad.numpy()

    np.testing.assert_array_equal(_in_fresh_thread(run), want)


def test_nan_propagates_through_backward():
    x = torch.tensor([-1.0, 4.0], requires_grad=True)
    x.sqrt().sum().backward()
    g = x.grad.numpy()
    assert math.isnan(g[0])
    assert g[1] == pytest.approx(0.25)
