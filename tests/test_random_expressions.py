"""Hypothesis builds random expressions from the op table and checks their gradients."""

from __future__ import annotations

import numpy as np
from gradcheck import check
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wengert.optable import BINARY, OPS, UNARY, UNARY_C
from wengert.tensor import _record_binary, _record_unary, float64

# Smooth ops only: finite differences are meaningless at kinks (abs, relu, clamp, ...).
KINKS = {"abs", "relu", "clamp", "sign", "fill", "maximum", "minimum"}
UNARIES = [s for s in OPS if s.family in (UNARY, UNARY_C) and s.differentiable
           and s.name not in KINKS]
BINARIES = [s for s in OPS if s.family == BINARY and s.differentiable and s.name not in KINKS]


def _into(x, domain):
    """Map any value into the op's domain smoothly: lo + (hi - lo) * sigmoid(x)."""
    lo, hi = domain
    return x.sigmoid() * (hi - lo) + lo


def _apply(spec, args):
    if spec.family == UNARY:
        return _record_unary(spec.code, _into(args[0], spec.domain), 0.25)
    if spec.family == UNARY_C:
        return _record_unary(spec.code, _into(args[0], spec.domain), spec.test_const)
    a, b = (_into(t, spec.domain) for t in args)
    if spec.name == "bce_logits":
        b = args[1].sigmoid()
    return _record_binary(spec.code, a, b, spec.name, float64)


step = st.tuples(st.sampled_from(UNARIES + BINARIES), st.integers(0, 100), st.integers(0, 100))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=8), seed=st.integers(0, 2**16),
       shape=st.sampled_from([(), (3,), (2, 2)]))
def test_random_expression_gradients(steps, seed, shape):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, size=shape) for _ in range(2)]

    def fn(x, y):
        pool = [x, y]
        for spec, i, j in steps:
            args = [pool[i % len(pool)], pool[j % len(pool)]]
            pool.append(_apply(spec, args[: 1 if spec.family != BINARY else 2]))
        return pool[-1]

    check(fn, arrays, rtol=1e-4, atol=1e-6)
