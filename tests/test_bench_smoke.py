"""The benchmark scripts still run: their pieces at tiny sizes (no timing is asserted).

The scripts live outside the package, in ``benchmarks/``; they are loaded from their files.
JAX is hidden from ``compiled.py`` here: its jit of the unrolled Euler chain compiles for
minutes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import wengert

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def eager():
    return _load("eager")


@pytest.fixture(scope="module")
def compiled():
    return _load("compiled")


@pytest.fixture(scope="module")
def nnb():
    return _load("nn")


# ---------------------------------------------------------------- eager.py
def test_eager_rosenbrock_rows_agree(eager, monkeypatch):
    monkeypatch.setattr(eager, "ITERS", 20)
    x = eager.rosen_wengert()
    assert np.allclose(x, eager.rosen_numpy(), rtol=1e-12)
    if eager.torch is not None:
        assert np.allclose(x, eager.rosen_torch(), rtol=1e-12)


def test_eager_chain(eager, monkeypatch):
    monkeypatch.setattr(eager, "STEPS", 30)
    out = eager.bench_chain(repeat=1)
    assert out["ops"] > 30
    assert all(v > 0 for v in out.values())


def test_eager_main(eager, monkeypatch, capsys):
    monkeypatch.setattr(eager, "ITERS", 20)
    monkeypatch.setattr(eager, "STEPS", 30)
    monkeypatch.setattr(sys, "argv", ["eager.py", "--quick"])
    eager.main()
    out = capsys.readouterr().out
    assert "Euler chain" in out and "wengert eager" in out


# ---------------------------------------------------------------- compiled.py
def test_compiled_hand_written_references(compiled):
    x0 = np.array([-1.0, 1.0])
    f, g = compiled.rosen_vg_njit(x0)
    f_w, g_w = wengert.value_and_grad(compiled.rosen)(x0)
    assert np.isclose(f, f_w) and np.allclose(g, g_w)
    x = np.linspace(-1.0, 1.0, 50)
    f, g = compiled.ext_rosen_numpy_vg(x)
    f_w, g_w = wengert.value_and_grad(compiled.ext_rosen)(x)
    assert np.isclose(f, f_w) and np.allclose(g, g_w)
    r = wengert.minimize(compiled.rosen, x0, method="gd", lr=0.01, max_iter=30)
    assert np.allclose(r.x, compiled.rosen_gd_njit(x0, 0.01, 30))


def test_compiled_main(compiled, monkeypatch, capsys):
    monkeypatch.setattr(compiled, "jax", None)
    monkeypatch.setattr(compiled, "ITERS", 20)
    monkeypatch.setattr(sys, "argv", ["compiled.py", "--quick"])
    compiled.main()
    out = capsys.readouterr().out
    for section in ("1. ", "2. ", "3. ", "4. "):
        assert f"\n{section}" in "\n" + out


# ---------------------------------------------------------------- nn.py
TINY = dict(n=16, d_in=3, d_hidden=5, epochs=4, lr=1e-3, init="normal")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_nn_implementations_agree(nnb, reduction):
    net = nnb.Net("tiny", reduction=reduction, **TINY)
    runs = nnb.run_net(net, seed_style=True)
    assert nnb.NUMPY in runs and "wengert eager, nn + SGD" in runs
    ref = runs[nnb.NUMPY].losses
    for label, run in runs.items():
        assert run.losses.shape == (net.epochs,) and run.seconds.shape == (net.epochs,)
        assert np.allclose(run.losses, ref, rtol=1e-10), label
    text = nnb.table(net, runs)
    assert all(label in text for label in runs)


def test_nn_compiled_step_row_follows_the_api(nnb):
    labels = nnb.implementations(seed_style=False)
    assert ("wengert.compile_step, nn + SGD" in labels) == hasattr(wengert, "compile_step")


def test_nn_main(nnb, monkeypatch, capsys):
    monkeypatch.setattr(nnb, "SEED_NET", nnb.Net("seed, tiny", reduction="sum", **TINY))
    monkeypatch.setattr(nnb, "LARGE_NET", nnb.Net(
        "large, tiny", n=32, d_in=6, d_hidden=8, epochs=3, lr=1e-3, reduction="mean",
        init="fan_in"))
    nnb.main([])
    out = capsys.readouterr().out
    assert "seed, tiny" in out and "large, tiny" in out
    assert "larger network, wengert eager, nn + SGD:" in out and "x hand-written numpy" in out


# ---------------------------------------------------------------- phases.py
def test_phase_tables_time_every_phase():
    phases = _load("phases")
    for fn in (phases.rosenbrock_phases, phases.network_phases):
        names, totals = fn(steps=3, warm=2)
        assert len(names) == len(totals) and (totals > 0).all()
