"""Write the tutorial notebooks from the cells below (outputs are never stored).

    python notebooks/build.py          # (re)write every notebook
    python notebooks/build.py --check  # exit 1 if a notebook differs from this script

Each notebook is a list of ("md" | "code", source) pairs. To extend one, add pairs to
its list and run the script; do not edit the .ipynb files by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import io

import matplotlib

matplotlib.use("Agg")  # headless; figures are shown below as PNG images
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import wengert
from wengert import viz


def show(fig):
    """Display a matplotlib figure as a PNG, then close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))'''

DRAW = '''\
import subprocess


def draw(t, params=None):
    """Render the backward graph with graphviz if it is installed, else print its DOT."""
    try:
        from IPython.display import SVG

        display(SVG(viz.make_dot(t, params=params).pipe(format="svg")))
    except (ImportError, RuntimeError, OSError, subprocess.CalledProcessError) as err:
        print(f"[graphviz unavailable ({type(err).__name__}); the DOT source instead]")
        print(viz.to_dot(t, params=params))'''

# ---------------------------------------------------------------------- 01
AUTOGRAD_BASICS = [
    ("md", """\
# Autograd basics

Take $f(x_1, x_2) = 0.2\\,x_1^2 + 0.2\\,x_2^2 - 5$. Its minimum is at $(0, 0)$ and its
gradient is $(0.4\\,x_1,\\ 0.4\\,x_2)$: the direction in which $f$ grows fastest.
Gradient descent steps the other way.

wengert computes such gradients by *reverse-mode automatic differentiation*: the forward
computation is recorded, then walked backwards applying the chain rule. Below we build
$f$ out of named intermediate values $x_3, \\dots, x_7$ and look at what gets recorded."""),
    ("code", SETUP),
    ("code", DRAW),
    ("md", """\
## Forward

Only the inputs need `requires_grad=True`; every tensor computed from them inherits it
and remembers the operation that made it (`grad_fn`)."""),
    ("code", """\
x1 = wengert.tensor(2.0, requires_grad=True)
x2 = wengert.tensor(2.0, requires_grad=True)

x3 = x1.square()
x5 = x3 * 0.2
x4 = x2.square()
x6 = x4 * 0.2
x7 = x5 + x6 - 5
x7"""),
    ("code", "x7.requires_grad"),
    ("md", """\
## Backward

`backward()` fills the `.grad` of the inputs with $\\partial x_7 / \\partial x_i$.
At $(2, 2)$ both are $0.4 \\cdot 2 = 0.8$."""),
    ("code", """\
x7.backward()
print(x1.grad, x2.grad)"""),
    ("md", """\
Intermediate tensors do not keep their gradient (reading it warns and gives `None`):
it is computed on the way back, used, and dropped."""),
    ("code", "print(x3.grad)"),
    ("md", """\
## Keeping intermediate gradients

`retain_grad()` asks for them anyway. We rebuild the graph (fresh inputs, so that the
gradients above do not accumulate into the new ones) and first look at it."""),
    ("code", """\
x1 = wengert.tensor(2.0, requires_grad=True)
x2 = wengert.tensor(2.0, requires_grad=True)
x3 = x1.square()
x3.retain_grad()
x5 = x3 * 0.2
x5.retain_grad()
x4 = x2.square()
x4.retain_grad()
x6 = x4 * 0.2
x6.retain_grad()
x7 = x5 + x6 - 5
names = {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "x5": x5, "x6": x6, "x7": x7}

for k in ("x3", "x4", "x5", "x6", "x7"):
    print(k, names[k].grad_fn.name())"""),
    ("md", """\
Each `grad_fn` points to the functions of its inputs through `next_functions`; the
walk ends at `AccumulateGrad` nodes, which add into a leaf's `.grad`. (`None` stands
for a plain Python number such as `0.2`.)"""),
    ("code", """\
def walk(fn, depth=0):
    if fn is None:
        print("  " * depth + "None")
        return
    extra = ""
    if hasattr(fn, "variable"):
        leaf = fn.variable
        extra = "  -> " + next(k for k, v in names.items() if v is leaf)
    print("  " * depth + fn.name() + extra)
    for nxt, _ in fn.next_functions:
        walk(nxt, depth + 1)


walk(x7.grad_fn)"""),
    ("md", "The same graph drawn torchviz-style: inputs at the top, the output at the bottom."),
    ("code", 'draw(x7, params={"x1": x1, "x2": x2})'),
    ("md", """\
## The tape underneath

wengert records every operation as one entry of a flat list, the *Wengert list*:
$v_i = \\mathrm{op}(v_j, v_k)$, in the order the program ran. `tensor.tape()` prints
the entries a tensor depends on, with their values."""),
    ("code", "x7.tape(names=names)"),
    ("md", """\
`backward(retain_graph=True)` keeps the tape alive, so we can list it again: now with
the adjoints $\\bar v_i = \\partial x_7 / \\partial v_i$ that backward stored in the
leaves and in the retained tensors."""),
    ("code", """\
x7.backward(retain_graph=True)
print(x3.grad, x4.grad, x5.grad, x6.grad)
x7.tape(names=names)"""),
    ("md", """\
`adjoints=True` runs one more reverse sweep just for the listing (nothing is added to
any `.grad`), so every entry shows its adjoint. Read it bottom-up: that is the order
in which the backward pass produces them."""),
    ("code", "x7.tape(names=names, adjoints=True)"),
    ("md", """\
## Going downhill

Repeatedly stepping against the gradient walks to the minimum. The update itself must
not be recorded, hence `no_grad()`; and since gradients accumulate, they are zeroed
after each step."""),
    ("code", """\
def f(x):
    return 0.2 * x[0] ** 2 + 0.2 * x[1] ** 2 - 5


x = wengert.tensor([2.0, 2.0], requires_grad=True)
path = [x.detach().clone()]
for _ in range(25):
    f(x).backward()
    with wengert.no_grad():
        x -= 0.5 * x.grad
        x.grad.zero_()
    path.append(x.detach().clone())
print(x, f(x).item())
show(viz.plot_path(f, path, levels=15, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5)))"""),
]

# ---------------------------------------------------------------------- 02
ROSENBROCK = [
    ("md", """\
# Rosenbrock's function: by hand, then compiled

$$f(x_1, x_2) = (a - x_1)^2 + b\\,(x_2 - x_1^2)^2, \\qquad a = 1,\\ b = 5$$

is zero at $(1, 1)$ and positive everywhere else. The minimum sits at the end of a
narrow, curved valley: easy to fall into, slow to walk along. We start at $(-1, 1)$.

First the loop of the seed tutorial, step by step in Python. Then the same descent, and
better methods, with `wengert.minimize`, which records $f$ once and runs the whole loop
in numba."""),
    ("code", SETUP),
    ("code", """\
import time

import scipy.optimize

a, b = 1, 5


def rosenbrock(x):
    x1, x2 = x[0], x[1]
    return (a - x1) ** 2 + b * (x2 - x1 ** 2) ** 2"""),
    ("md", """\
## Gradient descent by hand

Each step evaluates $f$, calls `backward()` to get the gradient in `x.grad`, and moves
against it with learning rate 0.01. The update runs under `no_grad()` (it is not part of
$f$), and the gradient is zeroed afterwards (gradients accumulate)."""),
    ("code", """\
num_iterations, lr = 1000, 0.01

x = wengert.tensor([-1.0, 1.0], requires_grad=True)
for i in range(1, num_iterations + 1):
    value = rosenbrock(x)
    value.backward()
    if i % 100 == 0:
        g = x.grad.tolist()
        print(f"Iteration: {i:4d}   Value: {value.item():.7g}   Gradient: {g[0]:.7g} {g[1]:.7g}")
    with wengert.no_grad():
        x.sub_(lr * x.grad)
        x.grad.zero_()
x"""),
    ("md", """\
Close to $(1, 1)$ after 1000 steps, with $f < 10^{-4}$, but the gradient is still
shrinking slowly: plain gradient descent crawls along the valley floor.

## `wengert.minimize`

`wengert.minimize(f, x0, method=...)` traces `f` at `x0` into a tape and runs the
optimisation loop over that tape inside numba. It returns a SciPy `OptimizeResult`;
with `record_path=True` it also keeps every iterate in `.path`."""),
    ("code", """\
x0 = [-1.0, 1.0]
settings = {"gd": {"lr": 0.01}, "adam": {"lr": 0.05}, "lbfgs": {}}
results = {m: wengert.minimize(rosenbrock, x0, method=m, max_iter=1000, record_path=True, **kw)
           for m, kw in settings.items()}

print(f"{'method':<7}{'x':>24}{'f':>12}{'nit':>6}{'nfev':>6}  message")
for m, r in results.items():
    print(f"{m:<7}{f'({r.x[0]:.6f}, {r.x[1]:.6f})':>24}{r.fun:12.3e}{r.nit:6d}{r.nfev:6d}"
          f"  {r.message}")"""),
    ("md", """\
`gd` takes exactly the steps of the loop above and ends at the same point. Adam adapts
its step size per coordinate; L-BFGS builds a curvature model from recent gradients
and searches along lines, reaching $(1, 1)$ to full precision in under 20 iterations."""),
    ("code", """\
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, (m, r) in zip(axes, results.items()):
    viz.plot_path(rosenbrock, r.path, ax=ax, xlim=(-1.5, 1.5), ylim=(-0.6, 1.6),
                  levels=[0.05, 0.2, 0.5, 1, 2, 4, 8, 15], marker="" if m == "gd" else ".",
                  title=f"{m}: {r.nit} iterations")
show(fig)"""),
    ("md", """\
## How long does it take?

The same 1000 gradient-descent steps, eagerly in Python and with `minimize`, best of
three runs each. (The first call of each `minimize` method loads its compiled loop from
numba's cache; the runs above did that already.)"""),
    ("code", """\
def eager_loop():
    x = wengert.tensor([-1.0, 1.0], requires_grad=True)
    for _ in range(1000):
        rosenbrock(x).backward()
        with wengert.no_grad():
            x.sub_(0.01 * x.grad)
            x.grad.zero_()
    return x


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


timings = {
    "eager loop, 1000 steps": best_of(eager_loop),
    "minimize gd, 1000 steps": best_of(
        lambda: wengert.minimize(rosenbrock, x0, method="gd", lr=0.01, max_iter=1000)),
    "minimize adam": best_of(
        lambda: wengert.minimize(rosenbrock, x0, method="adam", lr=0.05, max_iter=1000)),
    "minimize lbfgs": best_of(lambda: wengert.minimize(rosenbrock, x0, method="lbfgs")),
}
reference = timings["eager loop, 1000 steps"]
print(f"{'':<26}{'time':>10}{'vs eager':>10}")
for name, t in timings.items():
    print(f"{name:<26}{t * 1e3:7.2f} ms{reference / t:9.1f}x")"""),
    ("md", """\
Times vary from machine to machine; the ratios are what to look at. Each `minimize`
call traces `rosenbrock` anew, which costs roughly as much as a hundred replayed steps;
the rest is the loop running in numba.

## With SciPy

`wengert.value_and_grad(f)` returns a function giving `(f(x), gradient)` as a float and
a numpy array, which is what `scipy.optimize.minimize(..., jac=True)` expects."""),
    ("code", """\
vg = wengert.value_and_grad(rosenbrock)
print(vg(np.array(x0)))

res = scipy.optimize.minimize(vg, x0, jac=True, method="L-BFGS-B")
print(res.x, res.fun, "iterations:", res.nit, "evaluations:", res.nfev)"""),
    ("md", """\
## What was traced

`wengert.trace(f, x0)` records $f$ once. Its tape is a Wengert list: one line per
operation, each naming its inputs, with the value at `x0`. The replay runs these lines
forward and then backward for the gradient."""),
    ("code", """\
compiled = wengert.trace(rosenbrock, x0)
print(compiled)
print(compiled.listing())"""),
    ("md", """\
## Guards: Python control flow

A trace records one path through the code. When `f` branches on a value (`if x[0] > 0:`)
the comparison is recorded as a **guard**. A later call whose guard comes out differently
is traced again, and both traces are kept, so results always match eager evaluation.
`n_traces` counts the tracings."""),
    ("code", """\
def bumpy(x):
    if x[0] > 0:
        return (x ** 2).sum()
    return (x ** 3).sum()


vg = wengert.value_and_grad(bumpy)
for point in ([1.0, 2.0], [-1.0, 2.0], [3.0, 1.0], [-2.0, 0.5]):
    value, grad = vg(np.array(point))
    print(f"x = {point}:  f = {value:6.3f}  grad = {grad}  traces so far: {vg.n_traces}")"""),
    ("md", """\
Two traces, one per branch; the last two calls reused them. In the listing the
comparison that decides the branch is marked `guard`."""),
    ("code", "print(wengert.trace(bumpy, [1.0, 2.0]).listing())"),
]

# ---------------------------------------------------------------------- 03
GRADIENT_DESCENT_3D = [
    ("md", """\
# Gradient descent in three variables

$$f(x, y, z) = x^2 + 2y^2 + 3z^2 - 2xy + 2xz - 4yz + 2x - 2y + 2$$

has its minimum $f = 0$ at $(-1, 1, 1)$. By hand, its gradient is
$\\nabla f = (2x - 2y + 2z + 2,\\ 4y - 2x - 4z - 2,\\ 6z + 2x - 4y)$. We let autograd find
it instead, then use it to walk to the minimum."""),
    ("code", SETUP),
    ("code", """\
def f(a):
    x, y, z = a
    return x**2 + 2 * y**2 + 3 * z**2 - 2 * x * y + 2 * x * z - 4 * y * z + 2 * x - 2 * y + 2


def gradient_by_hand(a):
    x, y, z = a.detach().tolist()
    return np.array([2 * x - 2 * y + 2 * z + 2, 4 * y - 2 * x - 4 * z - 2, 6 * z + 2 * x - 4 * y])


a = wengert.zeros(3, requires_grad=True)
f(a).backward()
print("autograd:", a.grad, "  by hand:", gradient_by_hand(a))"""),
    ("md", "The two agree at random points too:"),
    ("code", """\
wengert.manual_seed(0)
for _ in range(5):
    a = wengert.rand(3, requires_grad=True)
    f(a).backward()
    print(a.grad.numpy().round(4), gradient_by_hand(a).round(4))
    assert np.allclose(a.grad.numpy(), gradient_by_hand(a))"""),
    ("md", """\
## A fixed number of steps

$a_{i+1} = a_i - \\eta\\, \\nabla f(a_i)$ with learning rate $\\eta = 0.01$."""),
    ("code", """\
lr = 0.01
a = wengert.zeros(3, requires_grad=True)
for _ in viz.progress(range(1000), desc="descent"):
    f(a).backward()
    with wengert.no_grad():
        a -= lr * a.grad
        a.grad.zero_()
a"""),
    ("md", """\
Close to $(-1, 1, 1)$, not there. Rather than guessing a step count, stop when every
component of the gradient is below a tolerance."""),
    ("code", """\
tol = 1e-5
a = wengert.zeros(3, requires_grad=True)
steps = 0
while True:
    f(a).backward()
    if wengert.max(wengert.abs(a.grad)) < tol:
        break
    with wengert.no_grad():
        a -= lr * a.grad
        a.grad.zero_()
    steps += 1
print(steps, "steps:", a, " f =", f(a).item())
assert np.allclose(a.detach().numpy(), [-1, 1, 1], atol=1e-4)"""),
    ("md", """\
## The trajectory

The first 250 steps, coloured from dark (early) to bright (late)."""),
    ("code", """\
a = wengert.zeros(3, requires_grad=True)
path = []
for _ in range(250):
    f(a).backward()
    with wengert.no_grad():
        a -= lr * a.grad
        a.grad.zero_()
    path.append(a.detach().clone())

show(viz.plot_path_3d(path, view=(0, 50), xlim=(-1, 0), ylim=(0, 1), zlim=(0, 1)))
show(viz.plot_path_3d(path, view=(25, -60)))"""),
]

# ---------------------------------------------------------------------- 04
REGRESSION_LAB = [
    ("md", """\
# Lab: a straight line by autograd

Data from $y = \\beta_0 + \\beta_1 x + e$ with $\\beta_0 = \\beta_1 = 1$, $x \\sim U(0, 2)$
and noise $e \\sim N(0, 0.25^2)$. We estimate $(\\beta_0, \\beta_1)$ twice: by gradient
descent on the mean squared error, with autograd supplying the gradient, and by
ordinary least squares. They must agree."""),
    ("code", SETUP),
    ("code", """\
wengert.manual_seed(1)
n = 200
x = wengert.rand(n) * 2
y = 1 + 1 * x + 0.25 * wengert.randn(n)
xs, ys = x.numpy(), y.numpy()"""),
    ("md", "## Gradient descent"),
    ("code", """\
beta = wengert.zeros(2, requires_grad=True)
lr = 0.2
path = [beta.detach().clone()]
for step in range(5000):  # noqa: B007 (printed below)
    loss = ((y - beta[0] - beta[1] * x) ** 2).mean()
    loss.backward()
    if wengert.max(wengert.abs(beta.grad)) < 1e-10:
        break
    with wengert.no_grad():
        beta -= lr * beta.grad
        beta.grad.zero_()
    path.append(beta.detach().clone())
print(f"{step} steps, loss {loss.item():.5f}, beta = {beta.detach().numpy()}")"""),
    ("md", """\
## Least squares

Solve $\\min_\\beta \\lVert X\\beta - y \\rVert^2$ with $X = [1, x]$."""),
    ("code", """\
X = np.column_stack([np.ones(n), xs])
beta_ls, *_ = np.linalg.lstsq(X, ys, rcond=None)
print("autograd:     ", beta.detach().numpy())
print("least squares:", beta_ls)
assert np.allclose(beta.detach().numpy(), beta_ls, atol=1e-8)"""),
    ("md", """\
## The descent on the loss surface

The mean squared error as a function of $(\\beta_0, \\beta_1)$ is a long, tilted bowl:
$\\beta_0$ and $\\beta_1$ trade off against each other, which is why plain gradient
descent needs many small steps along the valley."""),
    ("code", """\
def mse(b0, b1):  # numpy grids in, a grid of losses out
    return ((ys[:, None, None] - b0 - b1 * xs[:, None, None]) ** 2).mean(axis=0)


show(viz.plot_path(mse, path[::10] + [path[-1]], levels=20, log_levels=True,
                   xlim=(-0.5, 2.0), ylim=(-0.5, 2.0), axis_labels=("b0", "b1"),
                   title="mean squared error"))"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(xs, ys, s=6, alpha=0.6, label="data")
grid = np.linspace(0, 2, 2)
b = beta.detach().numpy()
ax.plot(grid, b[0] + b[1] * grid, color="red", label=f"fit: {b[0]:.3f} + {b[1]:.3f} x")
ax.plot(grid, 1 + grid, color="black", linestyle="--", label="truth: 1 + x")
ax.legend()
show(fig)"""),
]

# ---------------------------------------------------------------------- 05
SIMPLE_NETWORK = [
    ("md", """\
# A simple network, gradients by autograd

A two-layer network, $\\hat y = \\mathrm{relu}(x W_1 + b_1)\\, W_2 + b_2$, fit to a noisy
linear target with a sum-of-squares loss. The forward pass and the weight update are
written out by hand; autograd only supplies the gradients. Two rules apply: the update
runs under `no_grad()` (it is not part of the model), and gradients are zeroed after
use (they accumulate)."""),
    ("code", SETUP),
    ("code", DRAW),
    ("code", """\
wengert.manual_seed(777)
d_in, d_hidden, d_out, n = 3, 32, 1, 100

x = wengert.randn(n, d_in)
y = x[:, 0:1] * 0.2 - x[:, 1:2] * 1.3 - x[:, 2:3] * 0.5 + wengert.randn(n, 1)

w1 = wengert.randn(d_in, d_hidden, requires_grad=True)
b1 = wengert.zeros(1, d_hidden, requires_grad=True)
w2 = wengert.randn(d_hidden, d_out, requires_grad=True)
b2 = wengert.zeros(1, d_out, requires_grad=True)
params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
start = {k: v.detach().clone() for k, v in params.items()}  # for the nn versions below"""),
    ("md", "## One forward pass, and the graph it records"),
    ("code", """\
y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
loss = (y_pred - y).pow(2).sum()
draw(loss, params)"""),
    ("md", """\
The tape holds every entry, including the ones that made the data `y` and the internal
`expand` that broadcasts each bias over the batch."""),
    ("code", 'loss.tape(names={**params, "x": x, "y": y, "y_pred": y_pred, "loss": loss})'),
    ("md", "## Training"),
    ("code", """\
lr = 1e-4
losses = []
for t in viz.progress(range(200), desc="training"):
    y_pred = x.mm(w1).add(b1).clamp(min=0).mm(w2).add(b2)
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())
    if t % 20 == 0:
        print(f"epoch {t:3d}  loss {loss.item():9.3f}")
    loss.backward()
    with wengert.no_grad():
        for p in params.values():
            p -= lr * p.grad
            p.grad.zero_()
assert losses[-1] < losses[0]"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses)
ax.set_xlabel("epoch")
ax.set_ylabel("sum of squared errors")
ax.set_yscale("log")
show(fig)"""),
    ("md", """\
## The same network with `nn` and `optim`

Writing the layers and the update rule by hand does not scale. Modules (`nn`) hold the
parameters, optimizers (`optim`) hold the update rule. We copy the hand-made weights in
(`nn.Linear` stores its weight as `(out, in)`), so the losses are the same as above."""),
    ("code", """\
from wengert import nn, optim

def make_model():
    model = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))
    with wengert.no_grad():
        model[0].weight.copy_(start["w1"].t())
        model[0].bias.copy_(start["b1"].reshape(-1))
        model[2].weight.copy_(start["w2"].t())
        model[2].bias.copy_(start["b2"].reshape(-1))
    return model

model = make_model()
print(model)
opt = optim.SGD(model.parameters(), lr=lr)
sse = nn.MSELoss(reduction="sum")
nn_losses = []
for t in range(200):
    opt.zero_grad()
    loss = sse(model(x), y)
    nn_losses.append(loss.item())
    loss.backward()
    opt.step()
print(f"final loss {nn_losses[-1]:.4f} (by hand: {losses[-1]:.4f})")
assert abs(nn_losses[-1] - losses[-1]) < 1e-9 * losses[-1]"""),
    ("md", """\
## One numba call per step

`wengert.compile_step` traces forward, loss, backward and the optimizer's update once;
each later step on a batch of the same shape is one numba call. The model's parameters
become views into the step's parameter vector, so the model always sees the new values."""),
    ("code", """\
import time

model = make_model()
step = wengert.compile_step(model, sse, optim.SGD(model.parameters(), lr=lr))
compiled_losses = [step(x, y) for _ in range(200)]
print(f"final loss {compiled_losses[-1]:.4f}")
assert abs(compiled_losses[-1] - losses[-1]) < 1e-9 * losses[-1]

t0 = time.perf_counter()
for _ in range(200):
    step(x, y)
print(f"{(time.perf_counter() - t0) / 200 * 1e6:.0f} us per compiled step")"""),
]

# ---------------------------------------------------------------------- 06
BENCHMARKS = [
    ("md", """\
# Benchmarks

Two scripts in `benchmarks/` time wengert against hand-written numpy and numba code and,
when they are installed, PyTorch and JAX:

* `eager.py`: the cost of recording operations and of the numba sweeps over the tape,
  and the seed's 1000-step Rosenbrock loop run eagerly;
* `compiled.py`: traced functions replayed by `wengert.value_and_grad` and
  `wengert.minimize`.

We run both with `--quick` (fewer repeats) in a fresh Python process, show their tables,
and plot a few of the ratios. Absolute times depend on the machine and on what else it
is doing; compare the ratios within one run."""),
    ("code", SETUP),
    ("code", """\
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents)
            if (p / "benchmarks" / "eager.py").exists())

# Modules hidden from the benchmark processes, as if they were not installed. jax.jit spends
# over a minute compiling compiled.py's unrolled 2,500-step Euler chain, so JAX is left out
# by default; set SKIP = () to include its rows.
SKIP = ("jax",)


def run_benchmark(script, *args, skip=()):
    \"\"\"Run benchmarks/<script> in a new Python process and return what it printed.\"\"\"
    path = str(ROOT / "benchmarks" / script)
    if skip:  # a None entry in sys.modules makes `import name` raise ImportError
        code = (f"import runpy, sys\\n"
                f"sys.modules.update(dict.fromkeys({tuple(skip)!r}))\\n"
                f"sys.argv = [{path!r}, *{args!r}]\\n"
                f"runpy.run_path({path!r}, run_name='__main__')\\n")
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, path, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        raise RuntimeError(f"{script} exited with status {proc.returncode}")
    print(f"[{script} {' '.join(args)}: {time.perf_counter() - t0:.1f} s]")
    return proc.stdout"""),
    ("md", """\
## Eager mode

Recording costs about a microsecond per operation; the forward and reverse sweeps over
the tape a few nanoseconds per entry. The Euler chain builds a 15,000-entry tape for a
single derivative."""),
    ("code", """\
eager_out = run_benchmark("eager.py", "--quick")
print(eager_out)"""),
    ("md", """\
## Compiled: traced once, replayed in numba

`value_and_grad` and `minimize` record the function once and then only replay the tape.
The reference in each section is given in its header."""),
    ("code", """\
compiled_out = run_benchmark("compiled.py", "--quick", skip=SKIP)
print(compiled_out)"""),
    ("md", """\
## A few ratios

Each table row is `label   value unit   ...`. We read them into
`{section: {label: seconds}}`; a section starts at every line that is not indented,
and is named by its first word (`Euler`, `Rosenbrock`, `1.`, `2.`, ...). Lines like
`n = 100` prefix the labels below them. Rows of libraries that are not installed are
simply absent."""),
    ("code", """\
ROW = re.compile(r"^\\s+(?P<label>\\S.*?)\\s{2,}(?P<value>\\d+(?:\\.\\d+)?) (?P<unit>ns|us|ms)\\b")
SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3}


def parse(text):
    table, section, prefix = {}, "", ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            section, prefix = line.split()[0].rstrip(":"), ""
        elif line.strip().startswith("n = "):
            prefix = line.strip() + ": "
        elif (m := ROW.match(line)):
            table.setdefault(section, {})[prefix + m["label"]] = (
                float(m["value"]) * SECONDS[m["unit"]])
    return table


eager, compiled = parse(eager_out), parse(compiled_out)
for name, table in (("eager.py", eager), ("compiled.py", compiled)):
    print(name, {section: len(rows) for section, rows in table.items()})"""),
    ("md", """\
For each comparison: how many times longer the other implementation takes than
wengert's row named in brackets (above 1: wengert is faster)."""),
    ("code", """\
# (what is compared, parsed table, section, wengert's row, [other rows])
COMPARISONS = [
    ("Rosenbrock value+grad", compiled, "1.", "wengert.value_and_grad (replay)",
     ["hand-written @njit", "torch eager", "jax.jit(value_and_grad)"]),
    ("1000 GD steps", compiled, "2.", "wengert.minimize(method='gd')",
     ["hand-written @njit loop", "wengert eager (seed loop)", "torch eager (seed loop)"]),
    ("ext. Rosenbrock, n=100", compiled, "3.", "n = 100: wengert.value_and_grad (replay)",
     ["n = 100: numpy, vectorised analytic gradient", "n = 100: torch eager",
      "n = 100: jax.jit(value_and_grad)"]),
    ("ext. Rosenbrock, n=10^4", compiled, "3.", "n = 10000: wengert.value_and_grad (replay)",
     ["n = 10000: numpy, vectorised analytic gradient", "n = 10000: torch eager",
      "n = 10000: jax.jit(value_and_grad)"]),
    ("Euler chain (replay)", compiled, "4.", "wengert replay, whole call",
     ["torch eager, whole call", "jax.jit(value_and_grad), whole call"]),
    ("Euler chain (eager)", eager, "Euler", "record + backward, wengert",
     ["record + backward, torch"]),
    ("seed loop (eager)", eager, "Rosenbrock", "wengert eager",
     ["numpy, hand gradient", "torch eager (float64)"]),
]

bars = []  # (label, other time / wengert time)
for what, table, section, ours, others in COMPARISONS:
    rows = table.get(section, {})
    if ours not in rows:
        print(f"missing: {section} {ours!r}")
        continue
    print(f"{what}   (wengert: {ours.split(': ')[-1]}, {rows[ours] * 1e6:.2f} us)")
    for other in others:
        if other in rows:
            other_name = other.split(": ")[-1]
            bars.append((f"{what}: {other_name}", rows[other] / rows[ours]))
            print(f"    {other_name:<45}{bars[-1][1]:9.3g}x")"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(8, 0.32 * len(bars) + 1))
labels, ratios = zip(*bars)
ypos = np.arange(len(bars))[::-1]
# bars grow from 1 (equal times): right when wengert is faster, left when it is slower
ax.barh(ypos, [r - 1 for r in ratios], left=1,
        color=["tab:green" if r >= 1 else "tab:orange" for r in ratios])
ax.axvline(1.0, color="black", linewidth=0.8)
ax.set_xscale("log")
ax.set_xlim(min(min(ratios), 1) / 5, max(max(ratios), 1) * 5)  # room for the numbers
ax.set_yticks(ypos, labels, fontsize=8)
ax.set_xlabel("time of the other implementation / time of wengert (log scale)")
ax.set_title("green: wengert faster, orange: the other is faster", fontsize=9)
for y, r in zip(ypos, ratios):
    ax.annotate(f"{r:.3g}x", (r, y), xytext=(3 if r >= 1 else -3, 0),
                textcoords="offset points", ha="left" if r >= 1 else "right",
                va="center", fontsize=7)
show(fig)"""),
    ("md", """\
Hand-written numba is the practical limit for tiny functions; wengert's replay is a
small constant factor from it and far below the per-operation overhead of eager
PyTorch. On large vectors vectorised numpy and XLA pull ahead of a scalar tape
interpreter."""),
]

NOTEBOOKS = {
    "01_autograd_basics.ipynb": AUTOGRAD_BASICS,
    "02_rosenbrock.ipynb": ROSENBROCK,
    "03_gradient_descent_3d.ipynb": GRADIENT_DESCENT_3D,
    "04_regression_lab.ipynb": REGRESSION_LAB,
    "05_simple_network.ipynb": SIMPLE_NETWORK,
    "06_benchmarks.ipynb": BENCHMARKS,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook (no outputs) with stable cell ids, so rebuilding changes nothing."""
    nb = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for k, (kind, source) in enumerate(cells):
        make = new_markdown_cell if kind == "md" else new_code_cell
        nb.cells.append(make(source, id=f"cell-{k:02d}"))
    nbformat.validate(nb)
    return nb


def render(cells: list[tuple[str, str]]) -> str:
    return nbformat.writes(build(cells))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path.relative_to(HERE.parent))
    if stale:
        print("out of date (run python notebooks/build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
