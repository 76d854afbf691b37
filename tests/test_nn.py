"""``wengert.nn``: Module, Parameter, layers, containers, init, state dicts."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from gradcheck import check

import wengert as torch
import wengert.nn.functional as F
from wengert import nn

RNG = np.random.default_rng(7)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(torch.ones(4))
        self.register_buffer("count", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x).tanh() * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


# ---------------------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------------------
def test_parameter_is_a_leaf_tensor_requiring_grad():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    assert isinstance(p, torch.Tensor) and p.is_leaf and p.requires_grad
    assert p.grad_fn is None
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    (p * p).sum().backward()
    assert p.grad.tolist() == [2.0, 4.0]
    assert nn.Parameter(torch.zeros(2), requires_grad=False).requires_grad is False


def test_parameter_refuses_integer_data_and_copies_its_input():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(torch.tensor([1, 2]))
    src = torch.zeros(2)
    p = nn.Parameter(src)
    with torch.no_grad():
        p.add_(1.0)
    assert src.tolist() == [0.0, 0.0] and p.tolist() == [1.0, 1.0]


def test_parameter_deepcopy_is_independent():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    (p * 3).sum().backward()
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q.tolist() == [1.0, 2.0]
    assert q.grad.tolist() == [3.0, 3.0]
    with torch.no_grad():
        q.mul_(0.0)
    assert p.tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------
# Module registration and traversal
# ---------------------------------------------------------------------------------------
def test_named_parameters_buffers_children_modules():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "head.1.weight", "head.1.bias"]
    assert [n for n, _ in net.named_buffers()] == ["block.count", "block.scratch"]
    assert [n for n, _ in net.named_children()] == ["block", "head", "drop"]
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Block", "Linear", "Sequential", "ReLU", "Linear", "Dropout"]
    assert [type(m).__name__ for m in net.children()] == ["Block", "Sequential", "Dropout"]
    assert len(list(net.parameters())) == 5
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]
    assert net.block.fc.weight is net.block._modules["fc"]._parameters["weight"]


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_attribute_rules():
    m = nn.Module()
    m.w = nn.Parameter(torch.zeros(2))
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = torch.zeros(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.sub = nn.ReLU()
    with pytest.raises(TypeError, match="child module 'sub'"):
        m.sub = 3
    m.plain = torch.zeros(1)  # a plain tensor attribute is not registered
    assert list(m.state_dict()) == []
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        m.nope
    del m.sub
    assert list(m.children()) == []
    with pytest.raises(KeyError, match="cannot contain"):
        m.register_buffer("a.b", torch.zeros(1))

    class Early(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(torch.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_forward_is_required():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(torch.zeros(1))


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[1].training


def test_zero_grad_sets_grads_to_none():
    net = Net()
    net(torch.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_freezes_and_apply_visits_every_module():
    net = Net()
    net.block.requires_grad_(False)
    assert [p.requires_grad for p in net.parameters()] == [False, False, False, True, True]
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and len(seen) == 7


def test_repr_like_pytorch():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (block): Block(\n"
        "    (fc): Linear(in_features=3, out_features=4, bias=True)\n"
        "  )\n"
        "  (head): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        "  (drop): Dropout(p=0.25, inplace=False)\n"
        ")")
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Linear(2, 1, bias=False)) == "Linear(in_features=2, out_features=1, bias=False)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Identity()) == "Identity()"


# ---------------------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------------------
def test_state_dict_keys_and_copies():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["block.scale", "block.count", "block.fc.weight", "block.fc.bias",
                        "head.1.weight", "head.1.bias"]  # the non-persistent buffer is not
    assert not any(v.requires_grad for v in sd.values())
    assert sd["block.count"].dtype == torch.int64
    before = sd["block.fc.weight"].numpy().copy()
    with torch.no_grad():
        net.block.fc.weight.add_(1.0)
    np.testing.assert_array_equal(sd["block.fc.weight"].numpy(), before)  # a snapshot
    assert net.state_dict(keep_vars=True)["block.fc.weight"] is net.block.fc.weight


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    x = torch.randn(4, 3)
    a.eval()
    b.eval()
    assert not np.allclose(a(x).detach().numpy(), b(x).detach().numpy())
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert b.block.fc.weight.is_leaf and b.block.fc.weight.requires_grad


def test_load_state_dict_errors_name_the_keys_and_shapes():
    net = Net()
    sd = net.state_dict()
    del sd["head.1.bias"]
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "head.1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.1.bias"] and res.unexpected_keys == ["extra.weight"]

    sd = Net().state_dict()
    sd["block.fc.weight"] = torch.zeros(3, 4)
    old = net.block.scale.tolist()
    with pytest.raises(RuntimeError, match=r"size mismatch for block.fc.weight: copying a "
                                           r"param with shape \[3, 4\] from checkpoint, the "
                                           r"shape in current model is \[4, 3\]"):
        net.load_state_dict(sd, strict=False)
    assert net.block.scale.tolist() == old  # nothing was copied
    with pytest.raises(TypeError, match="dict-like"):
        net.load_state_dict([1, 2])


# ---------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------
def test_linear_computes_x_weight_t_plus_bias():
    lin = nn.Linear(3, 2)
    assert tuple(lin.weight.shape) == (2, 3) and tuple(lin.bias.shape) == (2,)
    x = RNG.standard_normal((5, 3))
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    out = lin(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), x @ w.T + b, rtol=1e-12, atol=1e-14)
    assert out.grad_fn.name() == "AddmmBackward0"
    np.testing.assert_allclose(lin(torch.tensor(x[0])).detach().numpy(), x[0] @ w.T + b)
    x3 = RNG.standard_normal((2, 4, 3))
    out3 = lin(torch.tensor(x3))
    assert tuple(out3.shape) == (2, 4, 2)
    np.testing.assert_allclose(out3.detach().numpy(), x3 @ w.T + b, rtol=1e-12, atol=1e-14)
    assert lin.bias is not None and nn.Linear(3, 2, bias=False).bias is None


def test_linear_gradients():
    x, w, b = RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal(2)
    check(lambda x_, w_, b_: F.linear(x_, w_, b_), [x, w, b])
    check(lambda x_, w_: F.linear(x_, w_), [x[0], w])
    check(lambda x_, w_, b_: F.linear(x_, w_, b_), [RNG.standard_normal((2, 2, 3)), w, b])
    lin = nn.Linear(3, 2)
    lin(torch.tensor(x)).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.ones((4, 2)).T @ x, rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(lin.bias.grad.numpy(), [4.0, 4.0])


def test_linear_default_init_is_pytorchs():
    torch.manual_seed(0)
    lin = nn.Linear(400, 300)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) on fan_in 400
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)  # uniform: var = bound^2 / 3
    assert abs(w.mean()) < 0.01 * bound
    torch.manual_seed(0)
    again = nn.Linear(400, 300)
    np.testing.assert_array_equal(again.weight.detach().numpy(), w)


def test_linear_wrong_input_size_names_shapes():
    with pytest.raises(RuntimeError, match=r"last dimension 3 \(in_features\), got shape "
                                           r"\[5, 4\]"):
        nn.Linear(3, 2)(torch.zeros(5, 4))


# ---------------------------------------------------------------------------------------
# containers and simple layers
# ---------------------------------------------------------------------------------------
def test_sequential_indexing_and_ordered_dict():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.ReLU)
    sub = seq[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is seq[0]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    seq.append(nn.Sigmoid())
    assert [n for n, _ in seq.named_children()][-1] == "3"
    named = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["hidden.weight", "hidden.bias"]
    x = torch.tensor(RNG.standard_normal((4, 2)))
    expect = np.tanh(x.numpy() @ named.hidden.weight.detach().numpy().T
                     + named.hidden.bias.detach().numpy())
    np.testing.assert_allclose(named(x).detach().numpy(), expect, rtol=1e-12, atol=1e-14)


def test_module_list_registers_parameters():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.Linear(2, 1))
    assert [n for n, _ in layers.named_parameters()][-1] == "3.bias"


@pytest.mark.parametrize("layer, ref", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Tanh(), np.tanh),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Softplus(), lambda x: np.logaddexp(0, x)),
    (nn.Softplus(beta=3.0), lambda x: np.logaddexp(0, 3 * x) / 3),
    (nn.Identity(), lambda x: x),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
])
def test_activation_layers(layer, ref):
    x = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(layer(torch.tensor(x)).numpy(), ref(x), rtol=1e-13)
    if not isinstance(layer, nn.Identity):
        check(lambda a: layer(a), [x])


def test_flatten():
    assert tuple(nn.Flatten()(torch.zeros(2, 3, 4)).shape) == (2, 12)
    assert tuple(nn.Flatten(0)(torch.zeros(2, 3, 4)).shape) == (24,)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.3)
    x = torch.ones(200, 50, requires_grad=True)
    torch.manual_seed(5)
    y = drop(x)
    vals = y.detach().numpy()
    kept = vals != 0
    np.testing.assert_allclose(vals[kept], 1 / 0.7)
    assert kept.mean() == pytest.approx(0.7, abs=0.02)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7)  # the gradient is the mask
    torch.manual_seed(5)
    np.testing.assert_array_equal(drop(x).detach().numpy(), vals)  # seeded
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).detach().numpy().any()
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


# ---------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------
def test_constant_initializers_work_in_place_without_a_graph():
    p = nn.Parameter(torch.randn(3, 4))
    assert nn.init.zeros_(p) is p
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    assert not p.detach().numpy().any()
    assert nn.init.ones_(p).detach().numpy().sum() == 12
    assert set(nn.init.constant_(p, 0.25).detach().numpy().ravel()) == {0.25}
    (p * 2).sum().backward()
    assert p.grad.tolist() == [[2.0] * 4] * 3


def test_random_initializers_have_the_right_ranges_and_moments():
    torch.manual_seed(1)
    t = torch.empty(300, 200)
    u = nn.init.uniform_(t, -2.0, 3.0).numpy()
    assert u.min() >= -2.0 and u.max() < 3.0 and u.mean() == pytest.approx(0.5, abs=0.02)
    n = nn.init.normal_(t, 1.0, 2.0).numpy()
    assert n.mean() == pytest.approx(1.0, abs=0.02) and n.std() == pytest.approx(2.0, rel=0.01)
    a = math.sqrt(6 / 500)
    xu = nn.init.xavier_uniform_(t).numpy()
    assert np.abs(xu).max() <= a and np.abs(xu).max() > 0.99 * a
    xn = nn.init.xavier_normal_(t, gain=2.0).numpy()
    assert xn.std() == pytest.approx(2.0 * math.sqrt(2 / 500), rel=0.01)
    b = math.sqrt(6 / 200)  # relu gain sqrt(2), fan_in 200: sqrt(3) * sqrt(2) / sqrt(200)
    ku = nn.init.kaiming_uniform_(t, nonlinearity="relu").numpy()
    assert np.abs(ku).max() <= b and np.abs(ku).max() > 0.99 * b
    kn = nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu").numpy()
    assert kn.std() == pytest.approx(math.sqrt(2 / 300), rel=0.01)


def test_initializers_are_reproducible_and_take_a_generator():
    torch.manual_seed(3)
    a = nn.init.normal_(torch.empty(5)).tolist()
    torch.manual_seed(3)
    assert nn.init.normal_(torch.empty(5)).tolist() == a
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    assert (nn.init.uniform_(torch.empty(4), generator=g1).tolist()
            == nn.init.uniform_(torch.empty(4), generator=g2).tolist())


def test_init_errors_and_gains():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(torch.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(torch.empty(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert nn.init.calculate_gain("sigmoid") == 1.0


# ---------------------------------------------------------------------------------------
# whole models
# ---------------------------------------------------------------------------------------
def test_network_gradients_match_finite_differences():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Softplus(),
                        nn.Linear(4, 2))
    x = RNG.standard_normal((6, 3))
    names = [n for n, _ in net.named_parameters()]
    values = [p.detach().numpy().copy() for p in net.parameters()]

    def fn(*params):
        out = torch.tensor(x)
        k = 0
        for layer in net:
            if isinstance(layer, nn.Linear):
                out = F.linear(out, params[k], params[k + 1])
                k += 2
            else:
                out = layer(out)
        return out

    check(fn, values)
    out = net(torch.tensor(x))
    weight = np.random.default_rng(0).uniform(0.5, 1.5, size=(6, 2))  # check()'s weights
    (out * torch.tensor(weight)).sum().backward()
    xs = [torch.tensor(v, requires_grad=True) for v in values]
    (fn(*xs) * torch.tensor(weight)).sum().backward()
    for name, p, q in zip(names, net.parameters(), xs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-13, err_msg=name)


def test_seed_network_with_nn_reproduces_simple_network():
    def load(name):
        spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"_example_{name}"] = mod  # dataclasses look their module up
        try:
            spec.loader.exec_module(mod)
        finally:
            del sys.modules[f"_example_{name}"]
        return mod

    seed, ported = load("simple_network"), load("simple_network_nn")
    x, y = seed.make_data()
    expected = seed.train(x, y, seed.init_weights())
    x, y = ported.make_data()
    got = ported.train(ported.make_model(), x, y, verbose=False)
    assert [e for e, _ in got] == list(range(10, 201, 10))
    np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-10)
    assert got[-1][1] < 0.5 * got[0][1]


def test_copy_parameters_between_models_under_no_grad():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        for p, q in zip(b.parameters(), a.parameters()):
            p.copy_(q)  # e.g. a target network in reinforcement learning
    assert b.weight.tolist() == a.weight.tolist()
    assert b.weight.is_leaf and b.weight.requires_grad
