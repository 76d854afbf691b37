"""Record once, replay in numba: value_and_grad, grad, trace, guards and minimize."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

import wengert


def rosen(x):
    return (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2


def rosen_grad(x):
    return np.array([-2 * (1 - x[0]) - 20 * x[0] * (x[1] - x[0] ** 2), 10 * (x[1] - x[0] ** 2)])


def eager_value_and_grad(f, *args, argnums=0):
    ts = [wengert.tensor(np.asarray(a, float), requires_grad=True) for a in args]
    out = f(*ts)
    out.backward()
    nums = (argnums,) if isinstance(argnums, int) else argnums
    grads = [ts[k].grad.numpy() if ts[k].grad is not None else np.zeros(ts[k].shape)
             for k in nums]
    return out.item(), grads[0] if isinstance(argnums, int) else tuple(grads)


@pytest.mark.parametrize("x", [[-1.0, 1.0], [0.3, -2.0], [2.0, 2.0]])
def test_value_and_grad_matches_eager_and_hand(x):
    vg = wengert.value_and_grad(rosen)
    for _ in range(3):  # first call traces, later calls replay
        f, g = vg(np.array(x))
        assert f == pytest.approx(rosen(np.array(x)), rel=1e-14)
        np.testing.assert_allclose(g, rosen_grad(np.array(x)), rtol=1e-13)
    assert vg.n_traces == 1


def test_inputs_floats_lists_tensors_and_several_arguments():
    def f(a, b, c):
        return (a * b).sum() + c ** 2

    vg = wengert.value_and_grad(f, argnums=(0, 2))
    val, (ga, gc) = vg([1.0, 2.0], np.array([3.0, 4.0]), 1.5)
    assert val == pytest.approx(11 + 2.25)
    np.testing.assert_allclose(ga, [3.0, 4.0])
    assert gc == pytest.approx(3.0) and isinstance(gc, float)
    val2, (ga2, _) = vg(wengert.tensor([2.0, 0.0]), [1.0, 1.0], 0.0)
    assert val2 == pytest.approx(2.0)
    np.testing.assert_allclose(ga2, [1.0, 1.0])
    g = wengert.grad(f, argnums=1)([1.0, 2.0], [0.0, 0.0], 0.0)
    np.testing.assert_allclose(g, [1.0, 2.0])


def test_new_shape_traces_anew():
    vg = wengert.value_and_grad(lambda x: (x ** 2).sum())
    assert vg(np.ones(3))[0] == 3.0
    assert vg(np.ones((2, 2)))[0] == 4.0
    np.testing.assert_allclose(vg(np.ones((2, 2)))[1], 2 * np.ones((2, 2)))
    assert vg.n_traces == 2


def test_trace_object_listing_and_len():
    c = wengert.trace(rosen, [0.0, 0.0])
    assert len(c) == 11
    text = c.listing()
    assert text.splitlines()[0].startswith("v0 = input 0")
    assert "v7 = sub v4 v6" in text and "v9 = mul_c v8 5" in text
    assert c.value([1.0, 1.0]) == 0.0
    f, g = c.value_and_grad(np.array([-1.0, 1.0]))
    assert f == 4.0
    np.testing.assert_allclose(c.grad(np.array([-1.0, 1.0])), g)
    assert "rosen" in repr(c)


def test_vector_output_value():
    c = wengert.trace(lambda x: x * 2 + 1, np.zeros(3))
    np.testing.assert_allclose(c.value(np.array([1.0, 2.0, 3.0])), [3.0, 5.0, 7.0])


def test_scipy_lbfgsb_as_written_in_readme():
    r = scipy.optimize.minimize(wengert.value_and_grad(rosen), [-1.0, 1.0], jac=True,
                                method="L-BFGS-B")
    assert r.success
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-4)


def test_scipy_on_a_2d_parameter():
    target = np.arange(6.0).reshape(2, 3)

    def f(w):
        return ((w.reshape(2, 3) - wengert.tensor(target)) ** 2).sum()

    r = scipy.optimize.minimize(wengert.value_and_grad(f), np.zeros(6), jac=True,
                                method="BFGS")
    np.testing.assert_allclose(r.x, target.reshape(-1), atol=1e-6)


# ---------------------------------------------------------------- guards
def piecewise(x):
    if x[0] > 0:
        return (x ** 2).sum()
    return (x ** 3).sum() - x[1]


def abs_with_if(x):
    s = x.sum()
    if s < 0:
        return -s
    return s


def loop_until(x):
    y = x
    while (y ** 2).sum() < 10:  # the trip count depends on the value
        y = y * 2
    return (y ** 2).sum()


def py_max(x):
    return max(x[0], x[1]) ** 2  # Python's max compares tensors


@pytest.mark.parametrize("f", [piecewise, abs_with_if, loop_until, py_max])
def test_guards_give_eager_results_on_every_branch(f):
    vg = wengert.value_and_grad(f)
    rng = np.random.default_rng(0)
    points = [rng.uniform(-3, 3, size=2) for _ in range(12)] + [np.array([0.5, 0.5]),
                                                               np.array([-0.5, 0.5])]
    for _ in range(2):  # the second round replays the kept traces
        for p in points:
            val, g = vg(p)
            ev, eg = eager_value_and_grad(f, p)
            assert val == pytest.approx(ev, rel=1e-13, abs=1e-13)
            np.testing.assert_allclose(g, eg, rtol=1e-12, atol=1e-12)
    assert vg.n_traces >= 2


def test_guard_traces_are_reused_not_retraced():
    vg = wengert.value_and_grad(piecewise)
    for _ in range(5):
        vg(np.array([1.0, 1.0]))
        vg(np.array([-1.0, 1.0]))
    assert vg.n_traces == 2


def test_float_of_traced_value_raises_clear_error():
    def f(x):
        return float(x[0]) * x[1]

    with pytest.raises(wengert.TraceError, match="constant"):
        wengert.grad(f)(np.array([1.0, 2.0]))
    with pytest.raises(wengert.TraceError):
        wengert.grad(lambda x: x[0].item() * x)(np.array([1.0, 2.0]))


def test_backward_inside_trace_raises():
    def f(x):
        y = (x ** 2).sum()
        y.backward()
        return y

    with pytest.raises(wengert.TraceError, match="backward"):
        wengert.value_and_grad(f)(np.ones(2))


def test_integer_reads_are_guarded():
    def f(x):
        k = int(x.argmax())  # an index read as a Python int: guarded, not baked
        return x[k] * 3

    vg = wengert.value_and_grad(f)
    for p in ([1.0, 5.0, 2.0], [7.0, 1.0, 2.0], [0.0, 1.0, 9.0]):
        val, g = vg(np.array(p))
        assert val == 3 * max(p)
        assert g[int(np.argmax(p))] == 3.0 and g.sum() == 3.0


def test_captured_leaf_changed_in_place_is_seen():
    w = wengert.tensor([1.0, 2.0])
    vg = wengert.value_and_grad(lambda x: (x * w).sum())
    assert vg(np.array([1.0, 1.0]))[0] == 3.0
    with wengert.no_grad():
        w.mul_(10)
    assert vg(np.array([1.0, 1.0]))[0] == 30.0


def test_non_scalar_output_for_grad_raises():
    with pytest.raises(wengert.TraceError, match="scalar"):
        wengert.grad(lambda x: x * 2)(np.ones(3))


# ---------------------------------------------------------------- minimize
def test_minimize_gd_reproduces_the_seed_loop():
    r = wengert.minimize(rosen, [-1.0, 1.0], method="gd", lr=0.01, max_iter=1000)
    np.testing.assert_allclose(r.x, [0.9918, 0.9830], atol=5e-5)
    assert r.fun == pytest.approx(6.96e-05, rel=1e-2)
    assert r.nit == 1000 and not r.success and "Maximum" in r.message
    # identical to the eager loop
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    for _ in range(1000):
        rosen(x).backward()
        with wengert.no_grad():
            x.sub_(0.01 * x.grad)
            x.grad.zero_()
    np.testing.assert_allclose(r.x, x.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("method,kw", [
    ("momentum", dict(lr=0.002, max_iter=20000)),
    ("nesterov", dict(lr=0.002, max_iter=20000)),
    ("adam", dict(lr=0.05, max_iter=20000)),
    ("lbfgs", dict()),
])
def test_minimize_methods_reach_the_minimum(method, kw):
    r = wengert.minimize(rosen, [-1.0, 1.0], method=method, tol=1e-6, **kw)
    assert r.success, r.message
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-4)
    assert np.max(np.abs(r.jac)) < 1e-5
    assert {"x", "fun", "jac", "nit", "nfev", "success", "message"} <= set(r.keys())


def test_lbfgs_needs_few_evaluations_on_a_quadratic():
    a = np.diag([1.0, 10.0, 100.0])
    r = wengert.minimize(lambda x: (x * wengert.tensor(a @ np.ones(3)) * x).sum() / 2,
                         [1.0, 1.0, 1.0], method="lbfgs", tol=1e-9)
    assert r.success and r.nfev < 60
    np.testing.assert_allclose(r.x, 0.0, atol=1e-8)


def test_minimize_seed_3d_quadratic_with_tolerance():
    def f(a):
        x, y, z = a
        return x**2 + 2*y**2 + 3*z**2 - 2*x*y + 2*x*z - 4*y*z + 2*x - 2*y + 2

    r = wengert.minimize(f, np.zeros(3), method="gd", lr=0.01, tol=1e-5, max_iter=100000,
                         record_path=True)
    assert r.success
    np.testing.assert_allclose(r.x, [-1.0, 1.0, 1.0], atol=1e-4)
    assert r.path.shape == (r.nit + 1, 3)
    np.testing.assert_allclose(r.path[0], 0.0)
    np.testing.assert_allclose(r.path[-1], r.x)


def test_minimize_crosses_a_guard_and_retraces():
    def f(x):  # a kink at 0 written with if: |x - 3| + small quadratic
        d = x[0] - 3
        if d < 0:
            return -d + 0.01 * (x ** 2).sum()
        return d + 0.01 * (x ** 2).sum()

    r = wengert.minimize(f, [0.0, 1.0], method="gd", lr=0.05, max_iter=400,
                         record_path=True)
    assert r.ntraces >= 2
    # the same loop eagerly
    x = wengert.tensor([0.0, 1.0], requires_grad=True)
    for _ in range(400):
        f(x).backward()
        with wengert.no_grad():
            x.sub_(0.05 * x.grad)
            x.grad.zero_()
    np.testing.assert_allclose(r.x, x.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_minimize_bad_method():
    with pytest.raises(ValueError, match="unknown method"):
        wengert.minimize(rosen, [0.0, 0.0], method="newton")


# ---------------------------------------------------------------- the lowered replay streams
def _mixed(x):
    """Scalar entries (selects, elementwise) beside vector ones (sum, cat, matmul)."""
    a = x[0] * x[2] - x[1].exp()
    v = wengert.stack([a, x[1], x[2] ** 2])
    w = (x * v).sum() + (v @ x).tanh()
    return w + wengert.cat([x[1:], v]).square().mean() * a.sigmoid()


@pytest.mark.parametrize("x", [[0.3, -1.2, 0.8], [2.0, 0.1, -0.5], [-1.0, 1.0, 3.0]])
def test_replay_of_mixed_scalar_and_vector_entries_matches_eager(x):
    vg = wengert.value_and_grad(_mixed)
    vg(np.array([0.5, 0.5, 0.5]))  # trace at another point
    f, g = vg(np.array(x))
    t = wengert.tensor(x, requires_grad=True)
    out = _mixed(t)
    out.backward()
    assert f == pytest.approx(out.item(), rel=1e-14)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_unused_intermediates_do_not_touch_the_gradient():
    def f(x):
        junk = (x - 10.0).log()  # nan, and never used by the output
        _ = junk * 0.0
        return (x * x).sum()

    f_val, g = wengert.value_and_grad(f)(np.array([1.0, 2.0]))
    assert f_val == 5.0
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_gradient_of_an_input_the_output_does_not_use_is_zero():
    vg = wengert.value_and_grad(lambda x, y: (x * 3.0).sum(), argnums=(0, 1))
    f, (gx, gy) = vg(np.array([1.0, 2.0]), np.array([5.0]))
    assert f == 9.0
    np.testing.assert_array_equal(gx, [3.0, 3.0])
    np.testing.assert_array_equal(gy, [0.0])


# ---------------------------------------------------------------- fused regions (long vectors)
N_FUSED = 10_001  # above _vm.FUSE_MIN and not a multiple of the block


def _ext_rosen(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _stored_member(x):
    a = x * x + 1.0  # used inside the run and, through a[5] and a.max(), after it
    return (a.exp() * 1e-3).mean() + a[5] * 2.0 + a.max()


def _dead_member(x):
    junk = (x - 10.0).log()  # nan, never reaches the output
    _ = junk * 0.0
    return (x * x).sum()


def _no_terminal(x):
    v = x.tanh() * 2.0 + 1.0
    return v @ v


def _window_of_other_input(x, y):
    return ((y[1:] - x[:-1]) ** 2 * y[:-1]).sum()


@pytest.mark.parametrize("f", [_ext_rosen, _stored_member, _dead_member, _no_terminal])
def test_fused_regions_match_eager(f):
    x = np.linspace(-1.0, 1.0, N_FUSED)
    vg = wengert.value_and_grad(f)
    vg(x * 0.5)  # trace at another point
    val, g = vg(x)
    ev, eg = eager_value_and_grad(f, x)
    assert val == pytest.approx(ev, rel=1e-12)
    np.testing.assert_allclose(g, eg, rtol=1e-11, atol=1e-12)
    assert np.isfinite(g).all()


def test_fused_region_with_scalar_and_second_input():
    x = np.linspace(-1.0, 1.0, N_FUSED)
    y = np.cos(np.linspace(0.0, 3.0, N_FUSED))
    vg = wengert.value_and_grad(_window_of_other_input, argnums=(0, 1))
    val, (gx, gy) = vg(x, y)
    ev, (ex, ey) = eager_value_and_grad(_window_of_other_input, x, y, argnums=(0, 1))
    assert val == pytest.approx(ev, rel=1e-12)
    np.testing.assert_allclose(gx, ex, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(gy, ey, rtol=1e-11, atol=1e-12)

    def scaled(x, s):
        return ((x - s) ** 2 * s).mean()

    val, (gx, gs) = wengert.value_and_grad(scaled, argnums=(0, 1))(x, np.array(0.3))
    ev, (ex, es) = eager_value_and_grad(scaled, x, np.array(0.3), argnums=(0, 1))
    assert val == pytest.approx(ev, rel=1e-12)
    np.testing.assert_allclose(gx, ex, rtol=1e-11, atol=1e-15)
    assert float(gs) == pytest.approx(float(es), rel=1e-10)


def test_fused_region_is_used():
    from wengert import _vm

    c = wengert.trace(_ext_rosen, np.zeros(N_FUSED))
    code, ints, _, _ = c._latest().prog
    m = int(ints[0])
    low = ints[m + 2: m + 2 + int(ints[m + 1])]
    nf, nb = int(low[0]), int(low[1])
    rows = low[_vm.LHEAD: _vm.LHEAD + _vm.LW * (nf + nb)].reshape(-1, _vm.LW)
    # one fused row; the sum is the output, so its reverse runs within that row
    assert (rows[:, 0] & 255).tolist() == [_vm.L_FUSED] and nb == 0


def test_fused_region_value_only_and_guarded_branches():
    x = np.linspace(-1.0, 1.0, N_FUSED)
    c = wengert.trace(_ext_rosen, x)
    assert c.value(x * 0.3) == pytest.approx(eager_value_and_grad(_ext_rosen, x * 0.3)[0],
                                             rel=1e-12)

    def branchy(x):
        s = (x * x).sum()
        if s > 1000.0:  # a guard on the output of a fused region
            return s * 0.5
        return (x.sin() ** 2).sum()

    vg = wengert.value_and_grad(branchy)
    for scale in (1.0, 0.1, 1.0):  # both sides of the branch, then back
        val, g = vg(x * scale)
        ev, eg = eager_value_and_grad(branchy, x * scale)
        assert val == pytest.approx(ev, rel=1e-12)
        np.testing.assert_allclose(g, eg, rtol=1e-11, atol=1e-13)
    assert vg.n_traces == 2


# ---------------------------------------------------------------- minimize keeps traces
SHIFT = 1.0
TARGET = np.array([1.0, 2.0])


def _shifted(x):
    return ((x - SHIFT) ** 2).sum()


def _to_target(x):
    return ((x - wengert.tensor(TARGET)) ** 2).sum()


def _helper(x):
    return (x - SHIFT) ** 2


def _calls_helper(x):
    return _helper(x).sum()


def test_minimize_reuses_its_trace_while_what_f_reads_is_unchanged():
    global SHIFT
    x0 = np.zeros(2)
    try:
        r1 = wengert.minimize(_shifted, x0, method="lbfgs")
        r2 = wengert.minimize(_shifted, x0 + 3.0, method="lbfgs")
        assert r1.ntraces == 1 and r2.ntraces == 0
        np.testing.assert_allclose(r2.x, [1.0, 1.0], atol=1e-6)
        SHIFT = -2.0  # a global the trace baked in: traced again
        r3 = wengert.minimize(_shifted, x0, method="lbfgs")
        assert r3.ntraces == 1
        np.testing.assert_allclose(r3.x, [-2.0, -2.0], atol=1e-6)
        SHIFT = 0.5  # read through a helper function
        r4 = wengert.minimize(_calls_helper, x0, method="lbfgs")
        SHIFT = 4.0
        r5 = wengert.minimize(_calls_helper, x0, method="lbfgs")
        assert r5.ntraces == 1
        np.testing.assert_allclose(r4.x, [0.5, 0.5], atol=1e-6)
        np.testing.assert_allclose(r5.x, [4.0, 4.0], atol=1e-6)
    finally:
        SHIFT = 1.0


def test_minimize_never_reuses_a_trace_that_read_something_mutable():
    x0 = np.zeros(2)
    r1 = wengert.minimize(_to_target, x0, method="lbfgs")
    TARGET[:] = [-3.0, 5.0]  # changed in place: same object, new values
    try:
        r2 = wengert.minimize(_to_target, x0, method="lbfgs")
        assert r1.ntraces == 1 and r2.ntraces == 1
        np.testing.assert_allclose(r2.x, [-3.0, 5.0], atol=1e-6)
    finally:
        TARGET[:] = [1.0, 2.0]

    def make(c):
        def f(x):
            return ((x - c) ** 2).sum()
        return f

    f = make(1.0)
    assert wengert.minimize(f, x0).x == pytest.approx([1.0, 1.0], abs=1e-6)
    cell = f.__closure__[0]
    cell.cell_contents = 7.0  # a closure rebound after the first call
    assert wengert.minimize(f, x0).x == pytest.approx([7.0, 7.0], abs=1e-6)

    from wengert._reuse import reads

    assert reads(_to_target) is None  # reads an array
    assert reads(_shifted) is not None
    assert reads(np.sin) is None  # not a Python function
