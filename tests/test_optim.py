"""``wengert.optim`` against numpy references of PyTorch's update rules."""

from __future__ import annotations

import numpy as np
import pytest

import wengert as torch
from wengert import _vm, nn

RNG = np.random.default_rng(11)
X = RNG.standard_normal((10, 4))
Y = RNG.standard_normal((10, 3))
W0 = RNG.standard_normal((4, 3))
B0 = RNG.standard_normal(3)


# ---------------------------------------------------------------------------------------
# the problem: f(W, b) = sum((tanh(X W + b) - Y)^2) + 0.1 sum(W^4)
# ---------------------------------------------------------------------------------------
def loss_wengert(w, b):
    return ((torch.tensor(X) @ w + b).tanh() - torch.tensor(Y)).pow(2).sum() + \
        (w ** 4).sum() * 0.1


def loss_and_grads_numpy(params):
    w, b = params
    h = np.tanh(X @ w + b)
    dz = 2 * (h - Y) * (1 - h * h)
    f = ((h - Y) ** 2).sum() + 0.1 * (w ** 4).sum()
    return f, [X.T @ dz + 0.4 * w ** 3, dz.sum(0)]


def run_wengert(make_opt, steps):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = make_opt([w, b])
    for _ in range(steps):
        opt.zero_grad()
        loss_wengert(w, b).backward()
        opt.step()
    return [w.detach().numpy(), b.detach().numpy()], opt


def sgd_numpy(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
              maximize=False):
    params = [W0.copy(), B0.copy()]
    bufs = [None, None]
    for _ in range(steps):
        grads = loss_and_grads_numpy(params)[1]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            if weight_decay:
                g = g + weight_decay * p
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else \
                    momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = p - lr * g
    return params


def adam_numpy(steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
               decoupled=False, maximize=False):
    params = [W0.copy(), B0.copy()]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params]
    b1, b2 = betas
    for t in range(1, steps + 1):
        grads = loss_and_grads_numpy(params)[1]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            if weight_decay:
                if decoupled:
                    p = p * (1 - lr * weight_decay)
                else:
                    g = g + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vv = v[i]
            if amsgrad:
                vmax[i] = np.maximum(vmax[i], v[i])
                vv = vmax[i]
            denom = np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps
            params[i] = p - lr / (1 - b1 ** t) * m[i] / denom
    return params


SGD_CASES = {
    "plain": dict(lr=0.01),
    "momentum": dict(lr=0.01, momentum=0.9),
    "dampening+decay": dict(lr=0.01, momentum=0.9, dampening=0.3, weight_decay=0.1),
    "nesterov+decay": dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=0.05),
    "maximize": dict(lr=0.001, momentum=0.5, maximize=True),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_matches_numpy_reference(case):
    kw = SGD_CASES[case]
    got, _ = run_wengert(lambda p: torch.optim.SGD(p, **kw), steps=6)
    for g, e in zip(got, sgd_numpy(6, **kw)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


ADAM_CASES = {
    "adam": (torch.optim.Adam, dict(lr=0.05), dict()),
    "adam decay amsgrad betas": (torch.optim.Adam, dict(lr=0.05, weight_decay=0.1, amsgrad=True,
                                                        betas=(0.8, 0.99)), dict()),
    "adam eps maximize": (torch.optim.Adam, dict(lr=0.01, eps=0.1, maximize=True), dict()),
    "adamw": (torch.optim.AdamW, dict(lr=0.05), dict(decoupled=True, weight_decay=1e-2)),
    "adamw amsgrad": (torch.optim.AdamW, dict(lr=0.05, weight_decay=0.3, amsgrad=True),
                      dict(decoupled=True)),
}


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_and_adamw_match_numpy_reference(case):
    cls, kw, extra = ADAM_CASES[case]
    got, opt = run_wengert(lambda p: cls(p, **kw), steps=6)
    ref_kw = {**kw, **extra}
    for g, e in zip(got, adam_numpy(6, **ref_kw)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["step"] == 6
    assert ("max_exp_avg_sq" in state) == kw.get("amsgrad", False)


def test_param_groups_have_their_own_hyperparameters():
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w]}, {"params": b, "lr": 0.1}], lr=0.01, momentum=0.5)
    loss_wengert(w, b).backward()
    opt.step()
    gw, gb = loss_and_grads_numpy([W0, B0])[1]
    np.testing.assert_allclose(w.detach().numpy(), W0 - 0.01 * gw, rtol=1e-13)
    np.testing.assert_allclose(b.detach().numpy(), B0 - 0.1 * gb, rtol=1e-13)
    assert [g["momentum"] for g in opt.param_groups] == [0.5, 0.5]


# ---------------------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------------------
def lbfgs_numpy(calls, lr=1.0, max_iter=20, history_size=100, tolerance_grad=1e-7,
                tolerance_change=1e-9):
    """torch.optim.LBFGS without line search, on flat numpy vectors."""
    shapes = [W0.shape, B0.shape]

    def fg(x):
        params = [x[:12].reshape(shapes[0]), x[12:]]
        f, g = loss_and_grads_numpy(params)
        return f, np.concatenate([gg.ravel() for gg in g])

    x = np.concatenate([W0.ravel(), B0])
    st = {"n_iter": 0}
    max_eval = max_iter * 5 // 4
    for _ in range(calls):
        loss, g = fg(x)
        evals = 1
        if np.abs(g).max() <= tolerance_grad:
            continue
        for n_iter in range(1, max_iter + 1):
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                d, st["dirs"], st["stps"], st["ro"], st["H"] = -g, [], [], [], 1.0
            else:
                y, s = g - st["prev_g"], st["d"] * st["t"]
                ys = y @ s
                if ys > 1e-10:
                    if len(st["dirs"]) == history_size:
                        for k in ("dirs", "stps", "ro"):
                            st[k].pop(0)
                    st["dirs"].append(y)
                    st["stps"].append(s)
                    st["ro"].append(1.0 / ys)
                    st["H"] = ys / (y @ y)
                q, al = -g, [0.0] * len(st["dirs"])
                for i in reversed(range(len(st["dirs"]))):
                    al[i] = (st["stps"][i] @ q) * st["ro"][i]
                    q = q - al[i] * st["dirs"][i]
                r = q * st["H"]
                for i in range(len(st["dirs"])):
                    be = (st["dirs"][i] @ r) * st["ro"][i]
                    r = r + (al[i] - be) * st["stps"][i]
                d = r
            st["d"], st["prev_g"], prev_loss = d, g.copy(), loss
            t = min(1.0, 1.0 / np.abs(g).sum()) * lr if st["n_iter"] == 1 else lr
            st["t"] = t
            if g @ d > -tolerance_change:
                break
            x = x + t * d
            opt_cond = False
            if n_iter != max_iter:
                loss, g = fg(x)
                evals += 1
                opt_cond = np.abs(g).max() <= tolerance_grad
            if n_iter == max_iter or evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break
    return x


@pytest.mark.parametrize("kw", [dict(lr=0.5, max_iter=6, history_size=3),
                                dict(lr=0.2, max_iter=4)])
def test_lbfgs_matches_numpy_reference(kw):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], **kw)

    def closure():
        opt.zero_grad()
        loss = loss_wengert(w, b)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first.item() == pytest.approx(loss_and_grads_numpy([W0, B0])[0], rel=1e-13)
    for _ in range(2):
        opt.step(closure)
    got = np.concatenate([w.detach().numpy().ravel(), b.detach().numpy()])
    np.testing.assert_allclose(got, lbfgs_numpy(3, **kw), rtol=1e-10, atol=1e-12)


def _rosenbrock_closure(x, opt, calls):
    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss
    return closure


def test_lbfgs_strong_wolfe_step_satisfies_the_wolfe_conditions():
    x0 = np.array([-1.2, 1.0])
    x = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.LBFGS([x], max_iter=1, line_search_fn="strong_wolfe")
    calls = []
    f0 = opt.step(_rosenbrock_closure(x, opt, calls)).item()

    def fg(v):
        a, b = v
        return ((1 - a) ** 2 + 100 * (b - a * a) ** 2,
                np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)]))

    _, g0 = fg(x0)
    step = x.detach().numpy() - x0
    t = step @ -g0 / (g0 @ g0)
    np.testing.assert_allclose(step, -t * g0, rtol=1e-12)  # first direction: -gradient
    f1, g1 = fg(x.detach().numpy())
    gtd = g0 @ -g0
    assert f1 <= f0 + 1e-4 * t * gtd  # sufficient decrease
    assert abs(g1 @ -g0) <= 0.9 * abs(gtd)  # curvature (strong Wolfe)
    assert len(calls) >= 2 and opt.state[x]["func_evals"] == len(calls)


def test_lbfgs_strong_wolfe_solves_rosenbrock():
    x = torch.tensor([-1.2, 1.0], requires_grad=True)
    opt = torch.optim.LBFGS([x], max_iter=100, line_search_fn="strong_wolfe")
    calls = []
    opt.step(_rosenbrock_closure(x, opt, calls))
    # torch.optim.LBFGS stops at the same point after the same 43 evaluations (35
    # iterations): the loss no longer changes by tolerance_change
    np.testing.assert_allclose(x.detach().numpy(), [0.9999814210791366, 0.9999619651810989],
                               rtol=1e-9)
    assert len(calls) == 43 and opt.state[x]["n_iter"] == 35


def test_lbfgs_strong_wolfe_matches_values_recorded_from_pytorch():
    """torch.optim.LBFGS(max_iter=8, history_size=3, line_search_fn="strong_wolfe"), two
    steps on this problem, run in float64 with PyTorch 2.x: the point reached and the
    number of evaluations (the line search decides both)."""
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=8, history_size=3, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_wengert(w, b)
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
    w_torch = [[-0.28072067611365753, 0.7850842399451778, 0.09765906749363648],
               [1.0984467827265663, -0.06522903430362716, 0.00939185943710134],
               [0.3758975981509316, -0.7710729444927666, 0.24624273981076064],
               [1.0354931027800327, -0.8667648975539417, 0.3923614032508101]]
    b_torch = [-0.24727573383789617, 0.501870232917383, 0.33047820056871124]
    np.testing.assert_allclose(w.detach().numpy(), w_torch, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), b_torch, rtol=1e-9, atol=1e-12)
    assert (opt.state[w]["func_evals"], opt.state[w]["n_iter"]) == (20, 14)
    assert loss_and_grads_numpy([np.array(w_torch), np.array(b_torch)])[0] == pytest.approx(
        8.239729411157237, rel=1e-12)


def test_lbfgs_errors():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="only line_search_fn=None or 'strong_wolfe'"):
        torch.optim.LBFGS([x], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="parameter groups"):
        torch.optim.LBFGS([{"params": [x]}, {"params": [torch.zeros(1, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="closure"):
        torch.optim.LBFGS([x]).step(None)


# ---------------------------------------------------------------------------------------
# laziness: updates are tape ops, computed with the next forward pass
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True),
    lambda p: torch.optim.AdamW(p, lr=0.01),
])
def test_step_runs_no_sweep_and_keeps_parameters_leaves(make_opt, monkeypatch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = make_opt(net.parameters())
    x = torch.tensor(X)
    calls = []
    for _ in range(3):
        opt.zero_grad()
        ((net(x) - torch.tensor(Y)) ** 2).sum().backward()
        # (tolist reads values; p.detach() would share p's storage with the outside,
        # after which wengert writes in-place updates of p at once)
        before = [np.array(p.tolist()) for p in net.parameters()]
        for name in ("forward", "sweep"):
            orig = getattr(_vm, name)
            monkeypatch.setattr(_vm, name, lambda *a, _o=orig, _n=name: (calls.append(_n),
                                                                         _o(*a))[1])
        opt.step()
        assert calls == []  # recorded, not computed
        monkeypatch.undo()
        for p, old in zip(net.parameters(), before):
            assert p.is_leaf and p.requires_grad and p.grad_fn is None
            assert not np.array_equal(np.array(p.tolist()), old)


# ---------------------------------------------------------------------------------------
# the Optimizer base: groups, zero_grad, closures, state dicts, errors
# ---------------------------------------------------------------------------------------
def test_zero_grad_and_parameters_without_grad():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    opt = torch.optim.SGD([a, b], lr=0.5, momentum=0.9)
    (a * a).sum().backward()
    opt.step()  # b has no grad: untouched, no state
    assert b.tolist() == [3.0] and b not in opt.state and "momentum_buffer" in opt.state[a]
    opt.zero_grad(set_to_none=False)
    assert a.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert a.grad is None


def test_step_with_closure_returns_the_loss():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = torch.optim.Adam([a], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with torch.no_grad():  # the closure runs with grad enabled anyway
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 1.9])


def test_optimizer_construction_errors():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        torch.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        torch.optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        torch.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        torch.optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon"):
        torch.optim.AdamW([w], eps=-1.0)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        torch.optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(TypeError, match="use a list"):
        torch.optim.SGD([{"params": {w}}], lr=0.1)


def _train(model, opt, steps):
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True),
])
def test_optimizer_state_dict_resumes_training_exactly(make_opt, tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    opt = make_opt(model.parameters())
    _train(model, opt, 3)
    torch.save(model.state_dict(), tmp_path / "model.npz")
    torch.save(opt.state_dict(), tmp_path / "opt.npz")

    torch.manual_seed(99)
    twin = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    twin_opt = make_opt(twin.parameters())
    twin.load_state_dict(torch.load(tmp_path / "model.npz"))
    twin_opt.load_state_dict(torch.load(tmp_path / "opt.npz"))
    assert twin_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    _train(model, opt, 3)
    _train(twin, twin_opt, 3)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_optimizer_state_dict_layout_and_load_errors():
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.1}])
    (a.sum() + b.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sorted(sd["state"]) == [0, 1] and sd["state"][1]["step"] == 1
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    sd["state"][0]["exp_avg"].zero_()  # a copy: the optimizer's state is untouched
    assert opt.state[a]["exp_avg"].numpy().any()

    with pytest.raises(ValueError, match="different number of parameter groups"):
        torch.optim.Adam([a, b]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        torch.optim.Adam([{"params": [a, b]}, {"params": [torch.zeros(1,
                                                                      requires_grad=True)]}]
                         ).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_lbfgs_state_dict_round_trip(tmp_path):
    def fresh():
        w = torch.tensor(W0, requires_grad=True)
        b = torch.tensor(B0, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=3, history_size=4)

        def closure():
            opt.zero_grad()
            loss = loss_wengert(w, b)
            loss.backward()
            return loss
        return w, opt, closure

    w1, opt1, c1 = fresh()
    opt1.step(c1)
    torch.save(opt1.state_dict(), tmp_path / "lbfgs.npz")
    w2, opt2, c2 = fresh()
    with torch.no_grad():
        for p, q in zip(opt2.param_groups[0]["params"], opt1.param_groups[0]["params"]):
            p.copy_(q)
    opt2.load_state_dict(torch.load(tmp_path / "lbfgs.npz"))
    assert len(opt2.state[w2]["old_dirs"]) == len(opt1.state[w1]["old_dirs"]) > 0
    opt1.step(c1)
    opt2.step(c2)
    np.testing.assert_array_equal(w1.detach().numpy(), w2.detach().numpy())
