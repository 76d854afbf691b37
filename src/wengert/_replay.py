"""numba kernels that replay a traced tape: value, value-and-gradient, optimisers.

One call runs a whole evaluation, or a whole optimisation loop, without Python.
"""
# ruff: noqa: E501
# Stamped by tools/gen_vm.py: this line changes when _vm.py does, so numba's cache of this
# file is never older than the interpreter it calls.
# _vm.py sha256: caf82cb9668db7c1

import math

import numpy as np
from numba import njit

from ._vm import (
    L_COPY,
    L_FUSED,
    L_MASK,
    LHEAD,
    LW,
    OFF,
    SHORT,
    SIZE,
    _jit,
    _scalar_bwd,
    _scalar_fwd,
    other_backward,
    other_forward,
)

OK, GUARD_FAILED = 0, 1

# A program is four arrays: ``code`` (the rows), ``ints`` = [len(meta), *meta, len(low),
# *low, *aux] with meta = [top, out, n_in, in_0.., n_guards, guard_0..] and low the
# streams of ``_vm.lower``, ``floats`` = [consts (2 per row), val (top), adj (top), guard
# values], ``flags`` = [reached (n), freed (n)].
# Few arguments: numba's unboxing of each array is a visible part of a short replay.


# _run allocates nothing, so it is compiled without numba's reference counting: with it,
# every array passed in or viewed costs two atomic operations per call, which made up
# half of an optimiser iteration on a short scalar tape (75 -> 33 ns of fixed cost).
# It calls no jitted function but the inlined scalar kernels and _vm.other_forward /
# other_backward (compiled beforehand and frozen: see _vm.prepare_replay).
@njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
def _run(code, ints, floats, flags, x, g, n_grad, set_x):
    """One replay: f(x), and with n_grad >= 0 the gradient of the first n_grad inputs
    into g. Returns (f, False) when a guard does not hold (another path).

    One function on purpose, indexing the program arrays with offsets: numba counts
    references to every array view made or passed to a call (an atomic operation each),
    which cost more than the sweeps of a short scalar tape. Views are made only when
    the program has entries that need the per-entry kernels."""
    n = code.shape[0]
    m = ints[0]
    top = ints[1]
    lo = 1 + m  # ints[lo] = len(low); the streams follow
    nf, nb, ngen = ints[lo + 1], ints[lo + 2], ints[lo + 3]
    rows = lo + 1 + LHEAD
    vb = 2 * n  # floats: consts, then val, then adj
    ab = vb + top
    if ngen:
        consts = floats[:vb].reshape((n, 2))
        aux = ints[lo + 1 + ints[lo]:]
        val = floats[vb:ab]
        adj = floats[ab: ab + top]
        reached = flags[:n]
    n_in = ints[3]
    if set_x:  # scatter the flat input vector into the input entries
        k = 0
        for j in range(n_in):
            e = ints[4 + j]
            o = vb + code[e, OFF]
            sz = code[e, SIZE]
            # Loops over views: an index like floats[o + i] is checked for wraparound,
            # which keeps LLVM from vectorising a long copy.
            dst = floats[o: o + sz]
            src = x[k: k + sz]
            for i in range(sz):
                dst[i] = src[i]
            k += sz
    if n_grad >= 0:  # clear the adjoints the reverse sweep uses (a fused region that ends
        # in the output already adds into its inputs' adjoints in the forward stream)
        zr = rows + (nf + nb) * LW
        for k in range(ints[lo + 4]):
            o = ab + ints[zr + 2 * k]
            adj0 = floats[o: o + ints[zr + 2 * k + 1]]
            for i in range(adj0.size):
                adj0[i] = 0.0
    # forward stream
    for k in range(nf):
        r = rows + k * LW
        w0 = ints[r]
        op = w0 & 255
        if op > L_FUSED:
            c = 2 * (w0 >> 10)
            w1 = ints[r + 1]
            floats[vb + ints[r + 2]] = _scalar_fwd(op, floats[vb + (w1 & L_MASK)], floats[vb + (w1 >> 32)],
                                                   floats[c], floats[c + 1])
        elif op == L_COPY:
            floats[vb + ints[r + 2]] = floats[vb + (ints[r + 1] & L_MASK)]
        else:
            other_forward(op, ints, lo + 1 + ints[r + 1], w0 >> 10, code, consts, aux, val, adj,
                          n_grad >= 0)
    # guards: each recorded value must come out as it did when traced
    g0 = 4 + n_in
    gb = ab + top
    for j in range(ints[g0]):
        if floats[vb + code[ints[g0 + 1 + j], OFF]] != floats[gb + j]:
            return np.nan, False
    out = vb + code[ints[2], OFF]
    if n_grad < 0:
        return floats[out], True
    # reverse stream, from the output's adjoint 1
    floats[out + top] = 1.0
    rows += nf * LW
    for k in range(nb):
        r = rows + k * LW
        w0 = ints[r]
        op = w0 & 255
        if op > L_FUSED:
            w1 = ints[r + 1]
            a = vb + (w1 & L_MASK)
            b = vb + (w1 >> 32)
            o = vb + ints[r + 2]
            c = 2 * (w0 >> 10)
            gx, gy = _scalar_bwd(op, floats[a], floats[b], floats[o], floats[o + top], floats[c],
                                 floats[c + 1])
            if w0 & 256:
                floats[a + top] += gx
            if w0 & 512:
                floats[b + top] += gy
        elif op == L_COPY:
            if w0 & 256:
                floats[ab + (ints[r + 1] & L_MASK)] += floats[ab + ints[r + 2]]
        else:
            other_backward(op, ints, lo + 1 + ints[r + 1], w0 >> 10, code, consts, aux, val, adj,
                           reached)
    k = 0
    for j in range(n_grad):
        e = ints[4 + j]
        o = ab + code[e, OFF]
        sz = code[e, SIZE]
        src = floats[o: o + sz]
        dst = g[k: k + sz]
        for i in range(sz):
            dst[i] = src[i]
        k += sz
    return floats[out], True


@_jit
def evaluate(code, ints, floats, flags, x):
    """f(x); the second result is False when a guard does not hold (another path)."""
    return _run(code, ints, floats, flags, x, x, -1, True)


@_jit
def evaluate_grad(code, ints, floats, flags, x, g):
    """f(x) and its gradient into g (flat, like x)."""
    return _run(code, ints, floats, flags, x, g, ints[3], True)


# ---------------------------------------------------------------- optimisers
# Every loop takes the program, the state arrays (updated in place, so that Python can
# resume after a guard failure) and returns (status, iterations done, evaluations).
# ``path`` has one row per iterate (size 0: not recorded); ``xfail`` receives the
# point whose evaluation left the traced path.

CONVERGED, MAXITER, LINESEARCH_FAILED = 2, 3, 4


@_jit
def _maxabs(g):
    m = 0.0
    for i in range(g.size):
        a = abs(g[i])
        if a > m:
            m = a
    return m


GD, MOMENTUM, ADAM = 0, 1, 2


@_jit
def first_order(prog, kind, hyper, x, g, fval, s1, s2, tol, max_iter, it0, path, xfail):
    """Gradient descent (GD), heavy ball / Nesterov momentum (MOMENTUM, as torch.optim.SGD)
    or Adam with bias correction (ADAM, as torch.optim.Adam). Stops when max |g| < tol (as
    in the seed) or at max_iter. hyper = [lr, momentum, nesterov, beta1, beta2, eps];
    s1, s2: the momentum buffer, or Adam's moments."""
    code, ints, floats, flags = prog
    lr = hyper[0]
    nfev = 0
    for it in range(it0, max_iter):
        f, ok = _run(code, ints, floats, flags, x, g, ints[3], True)
        nfev += 1
        if not ok:
            for i in range(x.size):
                xfail[i] = x[i]
            return GUARD_FAILED, it, nfev
        fval[0] = f
        if path.shape[0] > it:
            for i in range(x.size):
                path[it, i] = x[i]
        if _maxabs(g) < tol:
            return CONVERGED, it, nfev
        if kind == GD:
            for i in range(x.size):
                x[i] -= lr * g[i]
        elif kind == MOMENTUM:
            mu, nesterov = hyper[1], hyper[2] != 0.0
            for i in range(x.size):
                s1[i] = mu * s1[i] + g[i] if it > 0 else g[i]
                x[i] -= lr * (g[i] + mu * s1[i]) if nesterov else lr * s1[i]
        else:
            b1, b2, eps = hyper[3], hyper[4], hyper[5]
            c1 = 1.0 - b1 ** (it + 1)
            c2 = 1.0 - b2 ** (it + 1)
            for i in range(x.size):
                s1[i] = b1 * s1[i] + (1.0 - b1) * g[i]
                s2[i] = b2 * s2[i] + (1.0 - b2) * g[i] * g[i]
                x[i] -= lr * (s1[i] / c1) / (math.sqrt(s2[i] / c2) + eps)
    return MAXITER, max_iter, nfev


@_jit
def _dot(a, b):
    s = 0.0
    for i in range(a.size):
        s += a[i] * b[i]
    return s


@_jit
def lbfgs(prog, x, g, fval, S, Y, rho, hist, tol, max_iter, c1, c2, it0, path, xfail):
    """L-BFGS with a line search satisfying the strong Wolfe conditions.

    ``S``/``Y`` hold the last ``m`` steps and gradient changes (ring buffer), ``hist`` is
    ``[count, newest]``. Nocedal & Wright, Algorithms 7.4, 3.5 and 3.6 (zoom by safeguarded
    cubic interpolation).
    """
    code, ints, floats, flags = prog
    mem = S.shape[0]
    n = x.size
    nfev = 0
    d = np.empty(n)
    q = np.empty(n)
    alpha = np.empty(mem)
    xt = np.empty(n)
    gt = np.empty(n)
    f, ok = _run(code, ints, floats, flags, x, g, ints[3], True)
    nfev += 1
    if not ok:
        xfail[:] = x
        return GUARD_FAILED, it0, nfev
    fval[0] = f
    for it in range(it0, max_iter):
        if path.shape[0] > it:
            path[it, :] = x
        if _maxabs(g) < tol:
            return CONVERGED, it, nfev
        # two-loop recursion: d = -H g
        q[:] = g
        cnt = hist[0]
        for k in range(cnt):
            j = (hist[1] - k) % mem
            alpha[j] = rho[j] * _dot(S[j], q)
            for i in range(n):
                q[i] -= alpha[j] * Y[j, i]
        if cnt > 0:
            j = hist[1] % mem
            gamma = _dot(S[j], Y[j]) / _dot(Y[j], Y[j])
        else:
            gamma = 1.0 / max(1.0, math.sqrt(_dot(g, g)))
        for i in range(n):
            q[i] *= gamma
        for k in range(cnt - 1, -1, -1):
            j = (hist[1] - k) % mem
            beta = rho[j] * _dot(Y[j], q)
            for i in range(n):
                q[i] += S[j, i] * (alpha[j] - beta)
        for i in range(n):
            d[i] = -q[i]
        dg0 = _dot(d, g)
        if dg0 >= 0.0:  # not a descent direction: restart from steepest descent
            hist[0] = 0
            for i in range(n):
                d[i] = -g[i]
            dg0 = -_dot(g, g)
        # strong Wolfe line search
        f0 = f
        a_prev, f_prev, dg_prev = 0.0, f0, dg0
        a = 1.0
        lo, hi, flo, dglo, fhi, dghi = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        found = False
        zoom = False
        for ls in range(25):
            for i in range(n):
                xt[i] = x[i] + a * d[i]
            ft, ok = _run(code, ints, floats, flags, xt, gt, ints[3], True)
            nfev += 1
            if not ok:
                xfail[:] = xt
                return GUARD_FAILED, it, nfev
            dgt = _dot(gt, d)
            if ft > f0 + c1 * a * dg0 or (ls > 0 and ft >= f_prev):
                lo, flo, dglo, hi, fhi, dghi = a_prev, f_prev, dg_prev, a, ft, dgt
                zoom = True
                break
            if abs(dgt) <= -c2 * dg0:
                found = True
                break
            if dgt >= 0.0:
                lo, flo, dglo, hi, fhi, dghi = a, ft, dgt, a_prev, f_prev, dg_prev
                zoom = True
                break
            a_prev, f_prev, dg_prev = a, ft, dgt
            a = 2.0 * a
        if zoom:
            for _ in range(30):
                # cubic interpolation between lo and hi, kept inside the bracket
                d1 = dglo + dghi - 3.0 * (flo - fhi) / (lo - hi)
                rad = d1 * d1 - dglo * dghi
                a = 0.5 * (lo + hi)
                if rad >= 0.0:
                    d2 = math.copysign(math.sqrt(rad), hi - lo)
                    den = dghi - dglo + 2.0 * d2
                    if den != 0.0:
                        cand = hi - (hi - lo) * (dghi + d2 - d1) / den
                        lo_b, hi_b = min(lo, hi), max(lo, hi)
                        margin = 0.1 * (hi_b - lo_b)
                        if lo_b + margin < cand < hi_b - margin:
                            a = cand
                for i in range(n):
                    xt[i] = x[i] + a * d[i]
                ft, ok = _run(code, ints, floats, flags, xt, gt, ints[3], True)
                nfev += 1
                if not ok:
                    xfail[:] = xt
                    return GUARD_FAILED, it, nfev
                dgt = _dot(gt, d)
                if ft > f0 + c1 * a * dg0 or ft >= flo:
                    hi, fhi, dghi = a, ft, dgt
                else:
                    if abs(dgt) <= -c2 * dg0:
                        found = True
                        break
                    if dgt * (hi - lo) >= 0.0:
                        hi, fhi, dghi = lo, flo, dglo
                    lo, flo, dglo = a, ft, dgt
                if abs(hi - lo) < 1e-16:
                    break
            if not found and ft < f0:
                found = True  # accept a decrease even if the curvature test was not met
        if not found:
            return LINESEARCH_FAILED, it, nfev
        # update the history with s = xt - x, y = gt - g
        j = (hist[1] + 1) % mem
        sy = 0.0
        for i in range(n):
            S[j, i] = xt[i] - x[i]
            Y[j, i] = gt[i] - g[i]
            sy += S[j, i] * Y[j, i]
        if sy > 1e-12:
            rho[j] = 1.0 / sy
            hist[1] = j
            hist[0] = min(hist[0] + 1, mem)
        x[:] = xt
        g[:] = gt
        f = ft
        fval[0] = f
    return MAXITER, max_iter, nfev


# ---------------------------------------------------------------- compiled training steps
# Inputs 0..nparam-1 are the parameters (from ``theta``, the flat parameter storage that
# the model's Parameter tensors view), the rest the batch; one call does forward, loss,
# backward and the optimiser's update of ``theta``.

@_jit
def _copy(dst, o, src, k, n):
    """dst[o: o + n] = src[k: k + n] (through views when long: those loops vectorise)."""
    if n <= SHORT:
        for i in range(n):
            dst[o + i] = src[k + i]
    else:
        d = dst[o: o + n]
        s = src[k: k + n]
        for i in range(n):
            d[i] = s[i]


@_jit
def evaluate_grad_split(code, ints, floats, flags, theta, batch, g, nparam):
    """Like evaluate_grad, with the inputs from theta (the first nparam) and batch."""
    vb = 2 * code.shape[0]
    kt = 0
    kb = 0
    for j in range(ints[3]):
        e = ints[4 + j]
        o = vb + code[e, OFF]
        sz = code[e, SIZE]
        if j < nparam:
            _copy(floats, o, theta, kt, sz)
            kt += sz
        else:
            _copy(floats, o, batch, kb, sz)
            kb += sz
    return _run(code, ints, floats, flags, theta, g, nparam, False)


@_jit
def sgd_step(code, ints, floats, flags, theta, batch, g, nparam, lr, momentum, dampening,
             nesterov, weight_decay, maximize, buf, first):
    """torch.optim.SGD's update after one evaluation (buf: momentum buffer)."""
    f, ok = evaluate_grad_split(code, ints, floats, flags, theta, batch, g, nparam)
    if not ok:
        return f, False
    for i in range(theta.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            d += weight_decay * theta[i]
        if momentum != 0.0:
            if first:
                buf[i] = d
            else:
                buf[i] = momentum * buf[i] + (1.0 - dampening) * d
            d = d + momentum * buf[i] if nesterov else buf[i]
        theta[i] -= lr * d
    return f, True


@_jit
def adam_step(code, ints, floats, flags, theta, batch, g, nparam, lr, beta1, beta2, eps,
              weight_decay, decoupled, maximize, m, v, t):
    """torch.optim.Adam / AdamW's update (step number t, from 1) after one evaluation."""
    f, ok = evaluate_grad_split(code, ints, floats, flags, theta, batch, g, nparam)
    if not ok:
        return f, False
    step_size = lr / (1.0 - beta1 ** t)
    bc2 = math.sqrt(1.0 - beta2 ** t)
    for i in range(theta.size):
        d = -g[i] if maximize else g[i]
        if weight_decay != 0.0:
            if decoupled:
                theta[i] *= 1.0 - lr * weight_decay
            else:
                d += weight_decay * theta[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * d
        v[i] = beta2 * v[i] + (1.0 - beta2) * d * d
        theta[i] -= step_size * m[i] / (math.sqrt(v[i]) / bc2 + eps)
    return f, True
