"""Losses and activations of ``wengert.nn.functional`` and the loss modules.

Values are compared with numpy formulas of PyTorch's definitions, gradients with
central finite differences (``tests/gradcheck.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck import check

import wengert as torch
import wengert.nn.functional as F
from wengert import nn

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((5, 4))
Y = RNG.standard_normal((5, 4))
P = RNG.uniform(0.05, 0.95, (5, 4))
B = (RNG.random((5, 4)) > 0.5).astype(float)
T = np.array([0, 3, 2, 2, 1])
W = np.array([1.0, 2.0, 0.5, 3.0])
REDUCTIONS = ["mean", "sum", "none"]


def _red(v: np.ndarray, reduction: str) -> np.ndarray:
    return {"mean": v.mean(), "sum": v.sum(), "none": v}[reduction]


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


# ---------------------------------------------------------------------------------------
# regression losses
# ---------------------------------------------------------------------------------------
def _huber(d: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


REGRESSION = {
    "mse": (lambda a, b, r: F.mse_loss(a, b, reduction=r), lambda d: d * d),
    "l1": (lambda a, b, r: F.l1_loss(a, b, reduction=r), np.abs),
    "huber": (lambda a, b, r: F.huber_loss(a, b, reduction=r, delta=0.7),
              lambda d: _huber(d, 0.7)),
    "smooth_l1": (lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.7),
                  lambda d: _huber(d, 0.7) / 0.7),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_loss_values(name, reduction):
    fn, ref = REGRESSION[name]
    out = fn(torch.tensor(X), torch.tensor(Y), reduction)
    np.testing.assert_allclose(_np(out), _red(ref(X - Y), reduction), rtol=1e-12)
    assert tuple(out.shape) == (() if reduction != "none" else X.shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_loss_gradients(name, reduction):
    fn = REGRESSION[name][0]
    check(lambda a, b: fn(a, b, reduction), [X, Y])


def test_huber_both_pieces_and_the_seam():
    d = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 2.5])
    x = torch.tensor(d, requires_grad=True)
    F.huber_loss(x, torch.zeros(7), reduction="sum").backward()
    np.testing.assert_allclose(x.grad.numpy(), np.clip(d, -1, 1))  # continuous at |d| = 1
    np.testing.assert_allclose(F.huber_loss(x, torch.zeros(7), reduction="none").detach()
                               .numpy(), _huber(d, 1.0))


def test_smooth_l1_with_beta_zero_is_l1():
    a, b = torch.tensor(X), torch.tensor(Y)
    assert F.smooth_l1_loss(a, b, beta=0.0).item() == pytest.approx(np.abs(X - Y).mean())


def test_mse_shape_mismatch_warns_and_names_shapes():
    with pytest.warns(UserWarning, match=r"target size \(\[5, 1\]\).*input size \(\[5\]\)"):
        F.mse_loss(torch.zeros(5), torch.zeros(5, 1))


def test_mse_unbroadcastable_shapes_raise_naming_shapes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match=r"\[5\].*\[3\]"):
            F.mse_loss(torch.zeros(5), torch.zeros(3))


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss,
                                F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
                                F.cross_entropy, F.nll_loss])
def test_bad_reduction_is_refused(fn):
    target = torch.tensor([0, 1]) if fn in (F.cross_entropy, F.nll_loss) else torch.zeros(2, 2)
    with pytest.raises(ValueError, match="'max' is not a valid value for reduction|max is not "
                                         "a valid value for reduction"):
        fn(torch.full((2, 2), 0.5), target, reduction="max")


# ---------------------------------------------------------------------------------------
# binary losses
# ---------------------------------------------------------------------------------------
def _bce(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    out = F.binary_cross_entropy(torch.tensor(P), torch.tensor(B), reduction=reduction)
    np.testing.assert_allclose(_np(out), _red(_bce(P, B), reduction), rtol=1e-12)
    check(lambda p: F.binary_cross_entropy(p, torch.tensor(B), reduction=reduction), [P])
    soft = RNG.uniform(0, 1, P.shape)  # soft targets: differentiable in the target too
    check(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction), [P, soft])


def test_binary_cross_entropy_weight_and_clamped_logs():
    w = np.array([1.0, 2.0, 0.5, 3.0])
    out = F.binary_cross_entropy(torch.tensor(P), torch.tensor(B), weight=torch.tensor(w))
    assert out.item() == pytest.approx((_bce(P, B) * w).mean(), rel=1e-12)
    # log(0) is clamped at -100, as PyTorch: finite loss for certain wrong answers
    edge = F.binary_cross_entropy(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]),
                                  reduction="none")
    assert edge.tolist() == [100.0, 100.0]


def test_binary_cross_entropy_errors():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target size \(\[2, 1\]\).*input size \(\[2\]\)"):
        F.binary_cross_entropy(torch.tensor([0.5, 0.5]), torch.zeros(2, 1))


def _bce_logits(x: np.ndarray, t: np.ndarray, pw: np.ndarray | float = 1.0) -> np.ndarray:
    log_sig = -np.logaddexp(0, -x)
    log_one_minus = -np.logaddexp(0, x)
    return -(pw * t * log_sig + (1 - t) * log_one_minus)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_and_pos_weight(reduction):
    out = F.binary_cross_entropy_with_logits(torch.tensor(X), torch.tensor(B),
                                             reduction=reduction)
    np.testing.assert_allclose(_np(out), _red(_bce_logits(X, B), reduction), rtol=1e-12)
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    out = F.binary_cross_entropy_with_logits(torch.tensor(X), torch.tensor(B),
                                             reduction=reduction, pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(_np(out), _red(_bce_logits(X, B, pw), reduction), rtol=1e-12)
    check(lambda x: F.binary_cross_entropy_with_logits(
        x, torch.tensor(B), reduction=reduction, pos_weight=torch.tensor(pw)), [X])


def test_bce_with_logits_is_stable_for_large_logits():
    z = torch.tensor([1000.0, -1000.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, torch.tensor([0.0, 1.0]), reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(2000.0)
    assert z.grad.tolist() == [1.0, -1.0]


# ---------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------
def _nll_ref(logp: np.ndarray, t: np.ndarray, w: np.ndarray | None, ignore: int,
             reduction: str) -> np.ndarray:
    keep = t != ignore
    safe = np.where(keep, t, 0)
    ww = (np.ones(logp.shape[1]) if w is None else w)[safe] * keep
    per = -logp[np.arange(len(t)), safe] * ww
    if reduction == "mean":
        return per.sum() / ww.sum()
    return per.sum() if reduction == "sum" else per


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [-100, 2])
def test_cross_entropy_and_nll_values(reduction, weighted, ignore):
    w = W if weighted else None
    wt = torch.tensor(W) if weighted else None
    ref = _nll_ref(_log_softmax(X, 1), T, w, ignore, reduction)
    out = F.cross_entropy(torch.tensor(X), torch.tensor(T), weight=wt, ignore_index=ignore,
                          reduction=reduction)
    np.testing.assert_allclose(_np(out), ref, rtol=1e-12, atol=1e-15)
    out = F.nll_loss(torch.tensor(X), torch.tensor(T), weight=wt, ignore_index=ignore,
                     reduction=reduction)
    np.testing.assert_allclose(_np(out), _nll_ref(X, T, w, ignore, reduction), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_and_nll_gradients(reduction, weighted):
    wt = torch.tensor(W) if weighted else None
    check(lambda x: F.cross_entropy(x, torch.tensor(T), weight=wt, reduction=reduction,
                                    ignore_index=2), [X])
    check(lambda x: F.nll_loss(x, torch.tensor(T), weight=wt, reduction=reduction), [X])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = torch.tensor(X, requires_grad=True)
    F.cross_entropy(x, torch.tensor(T), reduction="sum").backward()
    sm = np.exp(_log_softmax(X, 1))
    np.testing.assert_allclose(x.grad.numpy(), sm - np.eye(4)[T], atol=1e-14)


def _smoothed_ref(x: np.ndarray, t: np.ndarray, eps: float, w: np.ndarray | None,
                  ignore: int, reduction: str) -> np.ndarray:
    """PyTorch's label smoothing: (1 - eps) nll + eps / C * sum_c -w_c logp_c."""
    logp = _log_softmax(x, 1)
    c = x.shape[1]
    ww = np.ones(c) if w is None else w
    keep = t != ignore
    smooth = -(logp * ww).sum(1) * keep
    nll = _nll_ref(logp, t, w, ignore, reduction)
    if reduction == "mean":
        smooth = smooth.sum() / ww[np.where(keep, t, 0)][keep].sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - eps) * nll + eps / c * smooth


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_label_smoothing(reduction, weighted):
    wt = torch.tensor(W) if weighted else None
    out = F.cross_entropy(torch.tensor(X), torch.tensor(T), weight=wt, ignore_index=2,
                          reduction=reduction, label_smoothing=0.2)
    ref = _smoothed_ref(X, T, 0.2, W if weighted else None, 2, reduction)
    np.testing.assert_allclose(_np(out), ref, rtol=1e-12, atol=1e-15)
    check(lambda x: F.cross_entropy(x, torch.tensor(T), weight=wt, reduction=reduction,
                                    label_smoothing=0.2), [X])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_class_probabilities(reduction):
    probs = np.exp(_log_softmax(Y, 1))
    out = F.cross_entropy(torch.tensor(X), torch.tensor(probs), reduction=reduction)
    per = -(probs * _log_softmax(X, 1)).sum(1)
    np.testing.assert_allclose(_np(out), _red(per, reduction), rtol=1e-12)
    check(lambda x, p: F.cross_entropy(x, p, reduction=reduction), [X, probs])


def test_cross_entropy_on_one_sample_and_on_spatial_inputs():
    x1 = X[0]
    out = F.cross_entropy(torch.tensor(x1), torch.tensor(3))
    assert out.item() == pytest.approx(-_log_softmax(x1[None], 1)[0, 3], rel=1e-12)
    x3 = RNG.standard_normal((2, 3, 4))
    t3 = np.array([[0, 1, 2, 2], [1, 1, 0, 2]])
    per = -np.take_along_axis(_log_softmax(x3, 1), t3[:, None, :], 1)[:, 0, :]
    out = F.cross_entropy(torch.tensor(x3), torch.tensor(t3), reduction="none")
    assert tuple(out.shape) == (2, 4)
    np.testing.assert_allclose(_np(out), per, rtol=1e-12)
    check(lambda x: F.cross_entropy(x, torch.tensor(t3)), [x3])


def test_cross_entropy_is_stable_for_huge_logits():
    x = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]], requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0, 2]), reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 1.0 + np.log1p(np.exp(-1.0))],
                               atol=1e-12)
    assert np.isfinite(x.grad.numpy()).all()


def test_cross_entropy_refuses_float_class_targets():
    with pytest.raises(RuntimeError, match=r"cross_entropy: expected scalar type Long but "
                                           r"found Double.*float64.*\[5\]"):
        F.cross_entropy(torch.tensor(X), torch.tensor(T.astype(float)))
    with pytest.raises(RuntimeError, match=r"nll_loss: expected scalar type Long.*float64"):
        F.nll_loss(torch.tensor(X), torch.tensor(T.astype(float)))
    with pytest.raises(RuntimeError, match=r"expected scalar type Long.*bool"):
        F.nll_loss(torch.tensor(X), torch.tensor(T > 1))


def test_cross_entropy_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"Expected input batch_size \(5\) to match target "
                                         r"batch_size \(3\).*\[5, 4\].*\[3\]"):
        F.cross_entropy(torch.tensor(X), torch.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match=r"expected target of shape \[2, 4\].*\[2, 3, 4\].*"
                                           r"\[2, 5\]"):
        F.cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="1 or more dimensions"):
        F.nll_loss(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(RuntimeError, match=r"weight tensor.*4 classes.*\[3\]"):
        F.nll_loss(torch.tensor(X), torch.tensor(T), weight=torch.ones(3))


def test_nll_loss_target_out_of_bounds():
    with pytest.raises(IndexError, match=r"Target 4 is out of bounds"):
        F.nll_loss(torch.tensor(X), torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(IndexError, match=r"Target -1 is out of bounds"):
        F.cross_entropy(torch.tensor(X), torch.tensor([0, 1, 2, 3, -1]))


def test_label_smoothing_range():
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(torch.tensor(X), torch.tensor(T), label_smoothing=1.5)


# ---------------------------------------------------------------------------------------
# softmax family and activations
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim):
    lp = _log_softmax(X, dim)
    np.testing.assert_allclose(_np(F.log_softmax(torch.tensor(X), dim)), lp, rtol=1e-12)
    np.testing.assert_allclose(_np(F.softmax(torch.tensor(X), dim)), np.exp(lp), rtol=1e-12)
    check(lambda x: F.softmax(x, dim), [X])
    check(lambda x: F.log_softmax(x, dim), [X])


def test_softmax_is_stable_and_warns_without_dim():
    out = F.softmax(torch.tensor([[1000.0, 1000.0, -1000.0]]), dim=1)
    np.testing.assert_allclose(out.numpy(), [[0.5, 0.5, 0.0]])
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(torch.tensor(X))  # 2-D: dim 1, as PyTorch
    np.testing.assert_allclose(out.numpy().sum(1), np.ones(5))


def test_softplus_beta_and_threshold():
    x = np.array([-30.0, -1.0, 0.0, 0.5, 4.0, 30.0])
    out = F.softplus(torch.tensor(x))
    ref = np.where(x > 20, x, np.logaddexp(0, x))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-14)
    out = F.softplus(torch.tensor(x), beta=2.0, threshold=5.0)
    ref = np.where(2 * x > 5, x, np.logaddexp(0, 2 * x) / 2)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-14)
    check(lambda a: F.softplus(a, beta=2.0), [X])
    assert F.softplus(torch.tensor(X, requires_grad=True)).grad_fn.name() == "SoftplusBackward0"


def test_relu_sigmoid_tanh_logsigmoid():
    x = torch.tensor(X)
    np.testing.assert_allclose(F.relu(x).numpy(), np.maximum(X, 0))
    np.testing.assert_allclose(F.sigmoid(x).numpy(), 1 / (1 + np.exp(-X)), rtol=1e-14)
    np.testing.assert_allclose(F.tanh(x).numpy(), np.tanh(X), rtol=1e-14)
    np.testing.assert_allclose(F.logsigmoid(x).numpy(), -np.logaddexp(0, -X), rtol=1e-14)
    check(lambda a: F.logsigmoid(a) + F.tanh(a) * F.sigmoid(a), [X])


# ---------------------------------------------------------------------------------------
# grad_fn names and loss modules
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr, name", [
    ("F.mse_loss(x, y)", "MseLossBackward0"),
    ("F.mse_loss(x, y, reduction='none')", "MseLossBackward0"),
    ("F.l1_loss(x, y)", "MeanBackward0"),
    ("F.l1_loss(x, y, reduction='sum')", "SumBackward0"),
    ("F.huber_loss(x, y)", "HuberLossBackward0"),
    ("F.smooth_l1_loss(x, y)", "SmoothL1LossBackward0"),
    ("F.binary_cross_entropy(x.sigmoid(), b)", "BinaryCrossEntropyBackward0"),
    ("F.binary_cross_entropy_with_logits(x, b)", "BinaryCrossEntropyWithLogitsBackward0"),
    ("F.cross_entropy(x, t)", "NllLossBackward0"),
    ("F.cross_entropy(x, t, reduction='none')", "NllLossBackward0"),
    ("F.nll_loss(F.log_softmax(x, 1), t)", "NllLossBackward0"),
    ("F.softmax(x, 1)", "SoftmaxBackward0"),
    ("F.log_softmax(x, 1)", "LogSoftmaxBackward0"),
    ("F.linear(x, y.t())", "MmBackward0"),
    ("F.linear(x, y.t(), torch.zeros(5))", "AddmmBackward0"),
])
def test_grad_fn_names(expr, name):
    x = torch.tensor(X, requires_grad=True)
    y, b, t = torch.tensor(Y), torch.tensor(B), torch.tensor(T)
    if "linear" in expr:
        y = torch.tensor(RNG.standard_normal((4, 5)))
    out = eval(expr, {"F": F, "torch": torch, "x": x, "y": y, "b": b, "t": t})
    assert out.grad_fn.name() == name


@pytest.mark.parametrize("module, fn, target", [
    (nn.MSELoss(reduction="sum"), lambda a, b: F.mse_loss(a, b, reduction="sum"), Y),
    (nn.L1Loss(), F.l1_loss, Y),
    (nn.HuberLoss(delta=0.5), lambda a, b: F.huber_loss(a, b, delta=0.5), Y),
    (nn.SmoothL1Loss(beta=0.5), lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), Y),
    (nn.BCEWithLogitsLoss(pos_weight=torch.tensor(W)),
     lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(W)), B),
    (nn.CrossEntropyLoss(weight=torch.tensor(W), label_smoothing=0.1),
     lambda a, b: F.cross_entropy(a, b, weight=torch.tensor(W), label_smoothing=0.1), T),
    (nn.NLLLoss(ignore_index=2, reduction="none"),
     lambda a, b: F.nll_loss(a, b, ignore_index=2, reduction="none"), T),
])
def test_loss_modules_match_functional(module, fn, target):
    a, b = torch.tensor(X), torch.tensor(target)
    np.testing.assert_allclose(_np(module(a, b)), _np(fn(a, b)), rtol=1e-15)


def test_bce_loss_module_and_bad_reduction():
    a, b = torch.tensor(P), torch.tensor(B)
    assert nn.BCELoss(weight=torch.tensor(W))(a, b).item() == pytest.approx(
        (_bce(P, B) * W).mean(), rel=1e-12)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
