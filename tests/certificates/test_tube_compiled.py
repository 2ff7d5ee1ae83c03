"""The compiled step loop of :func:`bea.certificates.tube.discrete_bound` (``_run_steps``) against the plain-Python
recursion it replaced (kept here verbatim as the reference, on ``math.nextafter`` and
:func:`bea.certificates.intervals.inflate_sum`): same bounds, radii, M_k, needs, failure texts and tube evaluations,
on synthetic step bounds and tubes covering every branch (scalar, componentwise with and without the
tensor C, re-centred with and without M̃, user-given radius, non-smooth tube, runaway)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bea.certificates.intervals import inflate_sum
from bea.certificates.tube import BoundResult, Recentred, StepBounds, Tube, TubeData, discrete_bound
from bea.certificates.tube import _accept, _choose, _fail_text, _radii_text

_U = 2.0**-53
_TINY = 2.0**-1060


def _up(x):
    return math.nextafter(x, math.inf)


def _dn(x):
    return math.nextafter(x, -math.inf)


def _abs_one_minus_up(hmu):
    return _up(abs(1.0 - hmu) + 4.0 * _U * (1.0 + abs(hmu)) + _TINY)


def _norm_up(v, n):
    s = float(inflate_sum(np.dot(v, v), n))
    return _up(math.sqrt(s)) if s > 0 else 0.0


def reference(steps, tube, *, radius=None, recentred=None):
    """discrete_bound as it was before the compiled loop (commit b5136a4), line for line."""
    _up_vec = inflate_sum
    K = steps.K
    h = float(steps.h)
    rec = recentred if radius is None else None
    e = np.full(K + 1, math.inf)
    e[0] = 0.0
    radii = np.full(K, np.nan)
    Ms = np.full(K, np.nan)
    needs = np.full(K, np.nan)
    comp = steps.componentwise
    n = steps.absP.shape[-1] if comp and K else 1
    Z = np.zeros(n)
    ek = 0.0
    Wk = 0.0
    h2 = _up(h / 2)
    valid = K + 1
    failure = ""
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(K):
            need = Wk if rec is not None else ek
            needs[k] = need
            R, data, i, failure = _choose(tube, k, need, radius)
            if failure:
                valid = k + 1
                break
            failure = _fail_text(data, i, k, R, ek, tube)
            if failure:
                valid = k + 1
                break
            M = float(data.M[i])
            radii[k], Ms[k] = R, M
            if not math.isfinite(M):
                failure = (f"no finite bound of the Hessian-Lipschitz constant in the tube of radius r = "
                           f"{R:.3g} at step {k} (bound {ek:.3g}); {_radii_text(tube)}")
                valid = k + 1
                break
            lam_lo, lam_hi = float(steps.lam_lo[k]), float(steps.lam_hi[k])
            Me2 = _up(_up(M * ek) / 2) if ek > 0 and M > 0 else 0.0
            rho = max(_abs_one_minus_up(h * _dn(lam_lo - Me2)), _abs_one_minus_up(h * _up(lam_hi + Me2)))
            ell_eps = _up(float(steps.ell[k]) + float(steps.eps[k]))
            enext = float(_up_vec(rho * ek + ell_eps, 3))
            if comp:
                if data.C is not None:
                    quad = h2 * np.einsum("ijl,j,l->i", data.C[i], Z, Z)
                else:
                    zn = _norm_up(Z, n)
                    quad = h * float(steps.nQinv[k + 1]) * float(steps.nQ[k]) * M * ek / 2 * zn
                Zn = _up_vec(steps.absP[k] @ Z + quad + steps.L[k] + steps.rows[k + 1] * float(steps.eps[k]),
                             2 * n * n + 4)
                enext = min(enext, _up(float(steps.nQ[k + 1]) * _norm_up(Zn, n)))
            if rec is not None:
                rho1 = max(_abs_one_minus_up(h * float(rec.lam_lo[k])), _abs_one_minus_up(h * float(rec.lam_hi[k])))
                if rec.Mt is not None:
                    q2 = float(data.N[i])
                    cross = _up(h2 * float(rec.Mt[k]) * Wk * Wk)
                else:
                    q2, cross = M, 0.0
                Wn = float(_up_vec(rho1 * Wk + float(rec.lin[k]) + float(steps.eps[k]) + h2 * q2 * ek * ek + cross, 6))
                enext = min(enext, _up(float(rec.Dnorm[k + 1]) + Wn))
                Wk = min(Wn, _up(enext + float(rec.Dnorm[k + 1])))
            if comp:
                Z = np.minimum(Zn, _up_vec(steps.rows[k + 1] * enext, 1))
            failure = _accept(e, k, ek, enext, R, radius, tube, f", M = {M:.3g}", "the Hessian-Lipschitz constant is")
            if failure:
                valid = k + 1
                break
            ek = enext
    e[valid:] = math.inf
    return BoundResult(e, radii, Ms, valid, failure, needs, tube.tried, radius is None)


def _problem(seed, K, n, *, comp, with_C, rec, Mt, growth=1.0, rough_at=None):
    rng = np.random.default_rng(seed)
    h = 0.05
    lam_lo = rng.uniform(-1.0, 1.0, K + 1)
    lam_hi = lam_lo + rng.uniform(0.0, 6.0, K + 1)
    sb = StepBounds(h, lam_lo, lam_hi, rng.uniform(1e-6, 1e-4, K), rng.uniform(0, 1e-14, K))
    if comp:
        sb.absP = rng.uniform(0.0, 1.0 / n, (K, n, n))
        sb.L = rng.uniform(1e-7, 1e-4, (K, n))
        sb.rows = rng.uniform(0.5, 2.0, (K + 1, n))
        sb.nQ = rng.uniform(1.0, 2.0, K + 1)
        sb.nQinv = rng.uniform(1.0, 2.0, K + 1)
    rc = None
    if rec:
        rc = Recentred(D=np.zeros((K + 1, n)), Dnorm=rng.uniform(0.0, 1e-3, K + 1), lin=rng.uniform(0.0, 1e-5, K),
                       lam_lo=lam_lo[:K] - 0.1, lam_hi=lam_hi[:K] + 0.1, Mt=rng.uniform(0.0, 3.0, K) if Mt else None)
    M0 = rng.uniform(0.5, 5.0, K) * growth
    C0 = rng.uniform(0.0, 2.0, (K, n, n, n)) * growth
    N0 = rng.uniform(0.0, 1.0, K) * growth

    def compute(r, start, stop):
        f = 1.0 + 10.0 * r
        smooth = None
        if rough_at is not None:
            smooth = np.arange(start, stop) != rough_at
        return TubeData(M=M0[start:stop] * f, C=C0[start:stop] * f if with_C else None, N=N0[start:stop] * f,
                        smooth=smooth, why="the loss may not be smooth here")

    return sb, rc, compute


CASES = [
    dict(comp=False, with_C=False, rec=False, Mt=False),
    dict(comp=True, with_C=True, rec=False, Mt=False),
    dict(comp=True, with_C=False, rec=False, Mt=False),
    dict(comp=False, with_C=False, rec=True, Mt=True),
    dict(comp=True, with_C=True, rec=True, Mt=True),
    dict(comp=True, with_C=False, rec=True, Mt=False),
    dict(comp=True, with_C=True, rec=True, Mt=True, rough_at=77),
    dict(comp=False, with_C=False, rec=True, Mt=True, growth=1e4),  # the bound runs away
]


def _same(a, b):
    assert a.valid == b.valid and a.failure == b.failure and a.tried == b.tried
    for x, y in ((a.e, b.e), (a.radius, b.radius), (a.M, b.M), (a.need, b.need)):
        np.testing.assert_array_equal(np.isfinite(x), np.isfinite(y))
        f = np.isfinite(x)
        # einsum / BLAS against the compiled loops: the same sums in another order at most
        np.testing.assert_allclose(x[f], y[f], rtol=1e-13, atol=0)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("window,coarse", [(1, 0.0), (7, 1e-3), (64, 1e-6), (64, 1e-3)])
def test_compiled_loop_is_the_python_recursion(case, window, coarse):
    """Property: the compiled loop computes the same recursion and makes the same tube choices
    (Tube.at_least replicated in the kernel: same radii tried, same number of tube evaluations) as
    the plain-Python loop, step for step, including where and why it stops."""
    K, n = 150, 3
    kw = dict(CASES[case])
    sb, rc, compute = _problem(case, K, n, **kw)
    tubes = [Tube(compute, r_min=1e-9, K=K, window=window, coarse=coarse, r_max=1e3) for _ in range(2)]
    ref = reference(sb, tubes[0], recentred=rc)
    got = discrete_bound(sb, tubes[1], recentred=rc)
    _same(ref, got)
    assert tubes[0].evaluations == tubes[1].evaluations
    if kw.get("rough_at") is not None:
        assert got.valid == kw["rough_at"] + 1 and "not be smooth" in got.failure
    if kw.get("growth", 1.0) > 1:
        assert got.valid < K + 1 and "ran away" in got.failure


@pytest.mark.parametrize("radius", [1e-2, 2e-5])
def test_compiled_loop_with_a_given_radius(radius):
    """Property: with a user-given radius the compiled loop proves the same steps as the Python
    recursion and stops, with the same reason, at the first bound beyond the radius."""
    K, n = 120, 2
    sb, rc, compute = _problem(11, K, n, comp=True, with_C=True, rec=True, Mt=True)
    tubes = [Tube(compute, r_min=1e-9, K=K, window=16) for _ in range(2)]
    ref = reference(sb, tubes[0], radius=radius, recentred=rc)
    got = discrete_bound(sb, tubes[1], radius=radius, recentred=rc)
    _same(ref, got)
    if radius < 1e-4:
        assert got.valid < K + 1 and "left the tube" in got.failure
