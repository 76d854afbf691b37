"""The seed tutorials, reproduced with their printed numbers.

The seeds ran PyTorch (or torch for R) in float32 and print 4 to 7 significant digits;
wengert computes in float64, so comparisons use tolerances matched to what was printed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wengert as torch
import wengert.nn.functional as F

# ---------------------------------------------------------------------------------------
# Seed 004 / 000: f(x1, x2) = 0.2 x1^2 + 0.2 x2^2 - 5, built node by node (x1 .. x7)
# ---------------------------------------------------------------------------------------


def _x_graph(retain: bool = False):
    x1 = torch.tensor(2.0, requires_grad=True)
    x2 = torch.tensor(2.0, requires_grad=True)
    x3 = x1.square()
    if retain:
        x3.retain_grad()
    x5 = x3 * 0.2
    if retain:
        x5.retain_grad()
    x4 = x2.square()
    if retain:
        x4.retain_grad()
    x6 = x4 * 0.2
    if retain:
        x6.retain_grad()
    x7 = x5 + x6 - 5
    return x1, x2, x3, x4, x5, x6, x7


def test_x7_value_and_repr():
    *_, x7 = _x_graph()
    assert x7.item() == pytest.approx(-3.4, abs=1e-12)
    assert repr(x7) == "tensor(-3.4000, grad_fn=<SubBackward0>)"
    assert str(x7) == "tensor(-3.4000, grad_fn=<SubBackward0>)"
    assert x7.requires_grad is True
    assert x7.shape == ()


def test_x7_backward_grads():
    x1, x2, *_, x7 = _x_graph()
    x7.backward()
    assert x1.grad.item() == pytest.approx(0.8, abs=1e-12)
    assert x2.grad.item() == pytest.approx(0.8, abs=1e-12)
    assert repr(x1.grad) == "tensor(0.8000)"
    assert repr(x2.grad) == "tensor(0.8000)"


def test_x_graph_grad_fn_names():
    _, _, x3, x4, x5, x6, x7 = _x_graph()
    assert x3.grad_fn.name() == "PowBackward0"
    assert x4.grad_fn.name() == "PowBackward0"
    assert x5.grad_fn.name() == "MulBackward0"
    assert x6.grad_fn.name() == "MulBackward0"
    assert x7.grad_fn.name() == "SubBackward0"
    assert type(x3.grad_fn).__name__ == "PowBackward0"
    assert repr(x5.grad_fn).startswith("<MulBackward0 object at 0x")


def test_nonleaf_grad_without_retain_warns_and_is_none():
    x1, _, x3, _, _, _, x7 = _x_graph()
    x7.backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        g = x3.grad
    assert g is None
    # reading a leaf's grad does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x1.grad is not None


def test_retain_grad_intermediate_grads():
    x1, x2, x3, x4, x5, x6, x7 = _x_graph(retain=True)
    x7.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # retained grads are read without a warning
        assert x3.grad.item() == pytest.approx(0.2, abs=1e-12)
        assert x4.grad.item() == pytest.approx(0.2, abs=1e-12)
        assert x5.grad.item() == pytest.approx(1.0, abs=1e-12)
        assert x6.grad.item() == pytest.approx(1.0, abs=1e-12)
    assert repr(x3.grad) == "tensor(0.2000)"
    assert repr(x5.grad) == "tensor(1.)"
    assert x1.grad.item() == pytest.approx(0.8, abs=1e-12)
    assert x2.grad.item() == pytest.approx(0.8, abs=1e-12)


# ---------------------------------------------------------------------------------------
# Seed 002: the 2x2 graph and its grad_fn chain
# ---------------------------------------------------------------------------------------


def test_simple_mean_grad_fn_and_grad():
    x = torch.ones(2, 2, requires_grad=True)
    y = x.mean()
    assert y.grad_fn.name() == "MeanBackward0"
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 2), 0.25), rtol=0, atol=1e-15)
    assert repr(x.grad) == "tensor([[0.2500, 0.2500],\n        [0.2500, 0.2500]])"


def _two_by_two():
    x1 = torch.ones(2, 2, requires_grad=True)
    x2 = torch.tensor(1.1, requires_grad=True)
    y = x1 * (x2 + 2)
    y.retain_grad()
    z = y.pow(2) * 3
    z.retain_grad()
    out = z.mean()
    return x1, x2, y, z, out


def test_two_by_two_grad_fn_chain():
    x1, x2, y, z, out = _two_by_two()
    mean = out.grad_fn
    assert mean.name() == "MeanBackward0"
    nf = mean.next_functions
    assert len(nf) == 1
    mul3 = nf[0][0]
    assert mul3.name() == "MulBackward0"
    pw = mul3.next_functions[0][0]
    assert pw.name() == "PowBackward0"
    assert mul3.next_functions[1][0] is None  # the Python number 3
    mul = pw.next_functions[0][0]
    assert mul.name() == "MulBackward0"
    (acc1, _), (add, _) = mul.next_functions
    assert acc1.name() == "torch::autograd::AccumulateGrad"
    assert acc1.variable is x1
    assert add.name() == "AddBackward0"
    acc2 = add.next_functions[0][0]
    assert acc2.name() == "torch::autograd::AccumulateGrad"
    assert acc2.variable is x2
    assert acc2.next_functions == ()


def test_two_by_two_grads():
    x1, x2, y, z, out = _two_by_two()
    assert out.item() == pytest.approx(3 * 3.1**2, rel=1e-12)
    out.backward()
    np.testing.assert_allclose(z.grad.numpy(), np.full((2, 2), 0.25), atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), np.full((2, 2), 4.65), atol=1e-12)
    assert x2.grad.item() == pytest.approx(18.6, abs=1e-12)
    np.testing.assert_allclose(x1.grad.numpy(), np.full((2, 2), 14.415), atol=1e-12)
    assert repr(z.grad) == "tensor([[0.2500, 0.2500],\n        [0.2500, 0.2500]])"
    assert repr(y.grad) == "tensor([[4.6500, 4.6500],\n        [4.6500, 4.6500]])"
    assert repr(x2.grad) == "tensor(18.6000)"
    assert repr(x1.grad) == "tensor([[14.4150, 14.4150],\n        [14.4150, 14.4150]])"


# ---------------------------------------------------------------------------------------
# Seed 000 / 004: minimising Rosenbrock (a=1, b=5) with autograd
# ---------------------------------------------------------------------------------------

ROSEN_PRINTED = {
    # iteration: (value, gradient) as printed by the seed (float32)
    100: (0.3502924, (-0.667685, -0.5771312)),
    200: (0.07398106, (-0.1603189, -0.2532476)),
    300: (0.02483024, (-0.07679074, -0.1373911)),
    400: (0.009619333, (-0.04347242, -0.08254051)),
    500: (0.003990697, (-0.02652063, -0.05206227)),
    600: (0.001719962, (-0.01683905, -0.03373682)),
    700: (0.0007584976, (-0.01095017, -0.02221584)),
    800: (0.0003393509, (-0.007221781, -0.01477957)),
    900: (0.0001532408, (-0.004811743, -0.009894371)),
    1000: (6.962555e-05, (-0.003222887, -0.006653666)),
}


def _rosen_numpy(num_iterations=1000, lr=0.01, a=1.0, b=5.0):
    """The same loop in float64 numpy, gradient by hand."""
    x = np.array([-1.0, 1.0])
    log = {}
    for i in range(1, num_iterations + 1):
        x1, x2 = x
        value = (a - x1) ** 2 + b * (x2 - x1**2) ** 2
        g = np.array([-2 * (a - x1) - 4 * b * x1 * (x2 - x1**2), 2 * b * (x2 - x1**2)])
        log[i] = (value, g.copy())
        x = x - lr * g
    return x, log


@pytest.fixture(scope="module")
def rosenbrock_run():
    a, b = 1, 5

    def rosenbrock(x):
        x1 = x[0]
        x2 = x[1]
        return (a - x1) ** 2 + b * (x2 - x1**2) ** 2

    num_iterations = 1000
    lr = 0.01
    x = torch.tensor([-1.0, 1.0], requires_grad=True)
    log = {}
    for i in range(1, num_iterations + 1):
        value = rosenbrock(x)
        if i % 100 == 0:
            v = float(value)
        value.backward()
        if i % 100 == 0:
            log[i] = (v, x.grad.numpy().copy())
        with torch.no_grad():
            x.sub_(lr * x.grad)
            x.grad.zero_()
    return x, log


@pytest.mark.parametrize("it", sorted(ROSEN_PRINTED))
def test_rosenbrock_printed_values(rosenbrock_run, it):
    _, log = rosenbrock_run
    value, grad = log[it]
    pvalue, pgrad = ROSEN_PRINTED[it]
    assert value == pytest.approx(pvalue, rel=1e-4)
    # float32 vs float64 drift over hundreds of steps: the printed gradients agree to ~1e-3
    assert grad == pytest.approx(np.array(pgrad), rel=1e-3)


def test_rosenbrock_matches_float64_reference(rosenbrock_run):
    x, log = rosenbrock_run
    xref, ref = _rosen_numpy()
    for it, (value, grad) in log.items():
        assert value == pytest.approx(ref[it][0], rel=1e-10, abs=1e-15)
        np.testing.assert_allclose(grad, ref[it][1], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(x.detach().numpy(), xref, rtol=1e-12)


def test_rosenbrock_end_point(rosenbrock_run):
    x, log = rosenbrock_run
    assert log[1000][0] < 1e-4
    end = x.detach().numpy()
    assert end[0] == pytest.approx(0.9918, abs=5e-5)
    assert end[1] == pytest.approx(0.9830, abs=5e-5)
    assert repr(x) == "tensor([0.9918, 0.9830], requires_grad=True)"
    assert x.requires_grad and x.is_leaf and x.grad_fn is None


def test_rosenbrock_naive_update_is_refused():
    """The seed's 'not the correct procedure yet': sub_ on a leaf outside no_grad."""
    x = torch.tensor([-1.0, 1.0], requires_grad=True)
    value = (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2
    value.backward()
    with pytest.raises(RuntimeError, match="leaf"):
        x.sub_(0.01 * x.grad)
    np.testing.assert_array_equal(x.detach().numpy(), [-1.0, 1.0])


# ---------------------------------------------------------------------------------------
# Seed 001: f(x, y, z) = x^2 + 2y^2 + 3z^2 - 2xy + 2xz - 4yz + 2x - 2y + 2
# ---------------------------------------------------------------------------------------


def function(a):
    x, y, z = a
    return x**2 + 2 * y**2 + 3 * z**2 - 2 * x * y + 2 * x * z - 4 * y * z + 2 * x - 2 * y + 2


def gradient(a):
    x, y, z = a
    df_dx = 2 * x - 2 * y + 2 * z + 2
    df_dy = 4 * y - 2 * x - 4 * z - 2
    df_dz = 6 * z + 2 * x - 4 * y
    return torch.tensor((df_dx, df_dy, df_dz))


H = np.array([[2.0, -2.0, 2.0], [-2.0, 4.0, -4.0], [2.0, -4.0, 6.0]])
G0 = np.array([2.0, -2.0, 0.0])


def test_hand_gradient_at_origin():
    a = torch.zeros(3, requires_grad=True)
    g = gradient(a)
    assert repr(g) == "tensor([ 2., -2.,  0.])"
    np.testing.assert_array_equal(g.numpy(), G0)


def test_autograd_gradient_at_origin():
    a = torch.zeros(3, requires_grad=True)
    y = function(a)
    assert y.item() == 2.0
    y.backward()
    assert repr(a.grad) == "tensor([ 2., -2.,  0.])"
    np.testing.assert_array_equal(a.grad.numpy(), G0)


def test_autograd_equals_hand_gradient_at_random_points():
    torch.manual_seed(1234)
    for _ in range(6):
        a = torch.rand(3, requires_grad=True)
        y = function(a)
        y.backward()
        hand = gradient(a).numpy()
        an = a.detach().numpy()
        np.testing.assert_allclose(a.grad.numpy(), hand, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.grad.numpy(), H @ an + G0, rtol=1e-12, atol=1e-12)
        assert repr(a.grad) == repr(gradient(a))


def _gd_numpy(steps, lr=0.01):
    a = np.zeros(3)
    traj = []
    for _ in range(steps):
        a = a - lr * (H @ a + G0)
        traj.append(a.copy())
    return a, np.array(traj)


def test_gradient_descent_1000_steps():
    a = torch.zeros(3, requires_grad=True)
    learning_rate = 0.01
    for _ in range(1000):
        y = function(a).backward()
        assert y is None
        with torch.no_grad():
            a += -learning_rate * a.grad
            a.grad.zero_()
    assert a.is_leaf and a.requires_grad
    assert repr(a) == "tensor([-1.0006,  0.9993,  0.9997], requires_grad=True)"
    ref, _ = _gd_numpy(1000)
    np.testing.assert_allclose(a.detach().numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(a.detach().numpy(), [-1.0006, 0.9993, 0.9997], atol=5e-5)


def test_gradient_descent_until_tolerance():
    tol = 1e-5
    learning_rate = 0.01
    a = torch.zeros(3, requires_grad=True)
    stop = False
    steps = 0
    while not stop:
        function(a).backward()
        stop = torch.max(torch.abs(a.grad)) < tol
        with torch.no_grad():
            a += -learning_rate * a.grad
            a.grad.zero_()
        steps += 1
        assert steps < 10_000
    assert stop.dtype == torch.bool
    np.testing.assert_allclose(a.detach().numpy(), [-1.0, 1.0, 1.0], atol=1e-4)
    assert repr(a) == "tensor([-1.0000,  1.0000,  1.0000], requires_grad=True)"
    # same number of steps as the float64 reference loop
    b, n = np.zeros(3), 0
    while True:
        g = H @ b + G0
        b = b - learning_rate * g
        n += 1
        if np.max(np.abs(g)) < tol:
            break
    assert steps == n
    np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-12)


def test_gradient_descent_trajectory_stack():
    learning_rate = 0.01
    a = torch.zeros(3, requires_grad=True)
    a_all = []
    for _ in range(250):
        function(a).backward()
        with torch.no_grad():
            a += -learning_rate * a.grad
            a.grad.zero_()
        a_all.append(a * 1)
    assert a_all[0].requires_grad  # a*1 outside no_grad is recorded
    stacked = torch.stack(a_all)
    assert stacked.grad_fn.name() == "StackBackward0"
    arr = stacked.detach().numpy()
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (250, 3)
    _, traj = _gd_numpy(250)
    np.testing.assert_allclose(arr, traj, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(arr[0], [-0.02, 0.02, 0.0], atol=1e-15)


# ---------------------------------------------------------------------------------------
# Seed 003: the one-layer network with binary_cross_entropy_with_logits
# ---------------------------------------------------------------------------------------


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _one_layer(seed=0):
    torch.manual_seed(seed)
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    z = torch.matmul(x, w) + b
    loss = F.binary_cross_entropy_with_logits(z, y)
    return x, y, w, b, z, loss


def test_one_layer_flags_and_grad_fns():
    x, y, w, b, z, loss = _one_layer()
    assert (x.requires_grad, y.requires_grad, w.requires_grad, b.requires_grad) == (
        False, False, True, True)
    assert z.shape == (3,)
    assert loss.shape == ()
    assert loss.grad_fn.name() == "BinaryCrossEntropyWithLogitsBackward0"
    assert z.grad_fn.name() == "AddBackward0"
    assert str(loss.grad_fn).startswith("<BinaryCrossEntropyWithLogitsBackward0 object at 0x")
    assert str(z.grad_fn).startswith("<AddBackward0 object at 0x")


def test_one_layer_loss_value():
    x, y, w, b, z, loss = _one_layer()
    zn = np.ones(5) @ w.detach().numpy() + b.detach().numpy()
    np.testing.assert_allclose(z.detach().numpy(), zn, rtol=1e-12)
    yn = np.zeros(3)
    ref = np.mean(-(yn * np.log(_sigmoid(zn)) + (1 - yn) * np.log(1 - _sigmoid(zn))))
    assert loss.item() == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_layer_gradients_are_analytic(seed):
    x, y, w, b, z, loss = _one_layer(seed)
    loss.backward()
    zn = x.numpy() @ w.detach().numpy() + b.detach().numpy()
    dz = (_sigmoid(zn) - y.numpy()) / 3
    np.testing.assert_allclose(b.grad.numpy(), dz, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), np.outer(x.numpy(), dz), rtol=1e-12)
    assert w.grad.shape == (5, 3)
    assert b.grad.shape == (3,)
    assert x.grad is None and y.grad is None


def test_one_layer_disabling_gradient_tracking():
    x, y, w, b, _, _ = _one_layer()
    z = torch.matmul(x, w) + b
    assert z.requires_grad is True
    with torch.no_grad():
        z = torch.matmul(x, w) + b
    assert z.requires_grad is False
    assert z.grad_fn is None
    z = torch.matmul(x, w) + b
    z_det = z.detach()
    assert z_det.requires_grad is False
    assert z_det.grad_fn is None
    np.testing.assert_array_equal(z_det.numpy(), z.detach().numpy())


def test_one_layer_second_backward_raises():
    x, y, w, b, z, loss = _one_layer()
    loss.backward()
    g = w.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), g)


def test_one_layer_retain_graph_accumulates():
    x, y, w, b, z, loss = _one_layer()
    loss.backward(retain_graph=True)
    gw, gb = w.grad.numpy().copy(), b.grad.numpy().copy()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), 2 * gw, rtol=1e-14)
    np.testing.assert_allclose(b.grad.numpy(), 2 * gb, rtol=1e-14)
    loss.backward()  # the last one may free the graph
    np.testing.assert_allclose(b.grad.numpy(), 3 * gb, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Seed 002: the simple network trained with autograd (torch for R blog)
# ---------------------------------------------------------------------------------------


def _simple_network_data(seed=777):
    torch.manual_seed(seed)
    d_in, d_out, n, d_hidden = 3, 1, 100, 32
    x = torch.randn(n, d_in)
    y = x[:, 0:1] * 0.2 - x[:, 1:2] * 1.3 - x[:, 2:3] * 0.5 + torch.randn(n, 1)
    w1 = torch.randn(d_in, d_hidden, requires_grad=True)
    w2 = torch.randn(d_hidden, d_out, requires_grad=True)
    b1 = torch.zeros(1, d_hidden, requires_grad=True)
    b2 = torch.zeros(1, d_out, requires_grad=True)
    return x, y, w1, w2, b1, b2


def _simple_network_numpy(x, y, w1, w2, b1, b2, lr=1e-4, epochs=200):
    losses = []
    for _ in range(epochs):
        h = x @ w1 + b1
        hr = np.maximum(h, 0)
        yp = hr @ w2 + b2
        d = yp - y
        losses.append(float(np.sum(d**2)))
        gy = 2 * d
        gw2 = hr.T @ gy
        gb2 = gy.sum(0, keepdims=True)
        gh = (gy @ w2.T) * (h > 0)
        gw1 = x.T @ gh
        gb1 = gh.sum(0, keepdims=True)
        w1, w2, b1, b2 = w1 - lr * gw1, w2 - lr * gw2, b1 - lr * gb1, b2 - lr * gb2
    return losses, (w1, w2, b1, b2)


def test_simple_network_training():
    x, y, w1, w2, b1, b2 = _simple_network_data()
    init = [t.detach().numpy().copy() for t in (w1, w2, b1, b2)]
    learning_rate = 1e-4
    losses = []
    for _ in range(200):
        y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1.sub_(learning_rate * w1.grad)
            w2.sub_(learning_rate * w2.grad)
            b1.sub_(learning_rate * b1.grad)
            b2.sub_(learning_rate * b2.grad)
            w1.grad.zero_()
            w2.grad.zero_()
            b1.grad.zero_()
            b2.grad.zero_()
    assert losses[-1] < 0.5 * losses[0]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:]))
    ref_losses, ref_params = _simple_network_numpy(x.numpy(), y.numpy(), *init)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    for t, r in zip((w1, w2, b1, b2), ref_params):
        np.testing.assert_allclose(t.detach().numpy(), r, rtol=1e-9, atol=1e-12)


def test_simple_network_relu_and_seed_reproducible():
    def run():
        x, y, w1, w2, b1, b2 = _simple_network_data(seed=5)
        for _ in range(20):
            loss = (F.relu(x.mm(w1) + b1).mm(w2) + b2 - y).pow(2).sum()
            loss.backward()
            with torch.no_grad():
                for p in (w1, w2, b1, b2):
                    p -= 1e-4 * p.grad
                    p.grad.zero_()
        return loss.item(), w1.detach().numpy().copy()

    l1, w_a = run()
    l2, w_b = run()
    assert l1 == l2
    np.testing.assert_array_equal(w_a, w_b)


# ---------------------------------------------------------------------------------------
# Seed 000 lab: y = 1 + x + e, fit b0, b1 by gradient descent with autograd
# ---------------------------------------------------------------------------------------


def test_regression_lab_matches_least_squares():
    torch.manual_seed(1)
    n = 200
    x = torch.rand(n) * 2  # U(0, 2)
    y = 1 + 1 * x + torch.randn(n) * 0.25
    b0 = torch.zeros(1, requires_grad=True)
    b1 = torch.zeros(1, requires_grad=True)
    lr = 0.2
    first = None
    for _ in range(600):
        loss = ((y - b0 - b1 * x) ** 2).mean()
        if first is None:
            first = loss.item()
        loss.backward()
        with torch.no_grad():
            b0 -= lr * b0.grad
            b1 -= lr * b1.grad
            b0.grad.zero_()
            b1.grad.zero_()
    xn, yn = x.numpy(), y.numpy()
    A = np.column_stack([np.ones(n), xn])
    (c0, c1), *_ = np.linalg.lstsq(A, yn, rcond=None)
    assert b0.item() == pytest.approx(c0, abs=1e-6)
    assert b1.item() == pytest.approx(c1, abs=1e-6)
    # and the estimates are near the truth (1, 1)
    assert abs(c0 - 1) < 0.15 and abs(c1 - 1) < 0.15
    assert loss.item() < first
    resid = yn - c0 - c1 * xn
    assert loss.item() == pytest.approx(np.mean(resid**2), rel=1e-8)
