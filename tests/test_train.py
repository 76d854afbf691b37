"""compile_step: a traced training step gives the same parameters as the eager loop."""

from __future__ import annotations

import numpy as np
import pytest

import wengert
from wengert import nn, optim


def make_model(seed: int = 1):
    wengert.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))


def data(seed: int = 0, n: int = 50):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = (x @ np.array([0.2, -1.3, -0.5]) + 0.1 * rng.standard_normal(n))[:, None]
    return wengert.tensor(x), wengert.tensor(y)


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd_momentum_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True,
                                                     weight_decay=0.01),
    "sgd_momentum_dampening": lambda ps: optim.SGD(ps, lr=0.01, momentum=0.5, dampening=0.3),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.001),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_100_compiled_steps_equal_100_eager_steps(name):
    x, y = data()
    loss_fn = nn.MSELoss()
    eager = make_model()
    opt = OPTIMIZERS[name](eager.parameters())
    eager_losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn(eager(x), y)
        loss.backward()
        opt.step()
        eager_losses.append(loss.item())

    model = make_model()
    step = wengert.compile_step(model, loss_fn, OPTIMIZERS[name](model.parameters()))
    losses = [step(x, y) for _ in range(100)]
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-10, atol=1e-12)
    for pe, pc in zip(eager.parameters(), model.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-10,
                                   atol=1e-10)
    assert step.n_traces == 1
    assert losses[-1] < losses[0]


def test_minibatches_of_one_shape_share_a_trace_and_grads_are_views():
    x, y = data(n=64)
    model = make_model()
    step = wengert.compile_step(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05))
    for _epoch in range(3):
        for i in range(0, 64, 16):
            step(x[i: i + 16], y[i: i + 16])
    assert step.n_traces == 1
    # .grad holds the last step's gradient: compare with an eager backward at the same point
    w_before = [p.detach().numpy().copy() for p in model.parameters()]
    step(x[:16], y[:16])
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    check = make_model()
    with wengert.no_grad():
        for p, w in zip(check.parameters(), w_before):
            p.copy_(wengert.tensor(w))
    nn.MSELoss()(check(x[:16]), y[:16]).backward()
    for g, p in zip(grads, check.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_parameters_changed_outside_the_step_are_seen():
    x, y = data()
    model = make_model()
    step = wengert.compile_step(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05))
    step(x, y)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    before = step(x, y)
    model.load_state_dict({k: wengert.tensor(v) for k, v in state.items()})
    again = step(x, y)  # same parameters as before the second step: same loss
    assert again == pytest.approx(before, rel=1e-12)
    with wengert.no_grad():
        for p in model.parameters():
            p.zero_()
    assert step(x, y) == pytest.approx(float(((y.numpy()) ** 2).mean()), rel=1e-12)


def test_eager_forward_sees_compiled_updates():
    x, y = data()
    model = make_model()
    step = wengert.compile_step(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01))
    for _ in range(5):
        step(x, y)
    eager_loss = nn.MSELoss()(model(x), y).item()
    assert step(x, y) == pytest.approx(eager_loss, rel=1e-12)


def test_unsupported_optimizer_is_refused():
    model = make_model()
    with pytest.raises(NotImplementedError, match="LBFGS"):
        wengert.compile_step(model, nn.MSELoss(), optim.LBFGS(model.parameters()))
