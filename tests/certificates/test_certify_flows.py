"""bea.certify(flow=...) (issue #14): certified distances between GD and the modified flows.

Independent route everywhere: GD in mpmath and the flow integrated in mpmath (GBS extrapolation,
:func:`bea.testing.integrate_mp`) from its definition — the BEA field from
:func:`bea.modified_field`, the PF from mpmath eigen-decompositions of the Hessian."""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea.errors import BEAError, InvalidInputError, InvalidOrderError, UnknownMethodError
from bea.testing import fit_order, integrate_mp, points, polynomial_losses, quadratics
from conftest import QUAD

x, y = sp.symbols("x y")
E1 = x**2 / 2 + y**2 + x**4 / 4 + sp.Rational(3, 10) * x * y  # non-quadratic, convex near θ0
TH1 = [0.8, 0.5]
THQ = [-0.35, -0.2]
FLOW_ORDER = {"ngf": 0, "igr": 1, "third": 2}


def _mp_field(E, params, h, flow, order):
    """rhs(list of mpf) -> list: the flow's field at the step h, from its definition."""
    h_mp = mp.mpf(h)
    if flow == "pf":
        g = sp.lambdify(params, [sp.diff(E, p) for p in params], "mpmath")
        H = sp.lambdify(params, sp.hessian(E, params), "mpmath")

        def rhs(v):
            lam, U = mp.eigsy(mp.matrix(H(*v)))
            gv = mp.matrix(g(*v))
            out = mp.matrix(len(v), 1)
            for i in range(len(v)):
                z = h_mp * lam[i]
                alpha = mp.log(1 - z) / z if z != 0 else mp.mpf(-1)
                u = U[:, i]
                out += alpha * (u.T * gv)[0] * u
            return [out[i] for i in range(len(v))]

        return rhs
    n = FLOW_ORDER.get(flow, order)
    mf = bea.modified_field(E, params, order=n)
    exprs = [e.subs(mf.h, sp.Rational(float(h))) for e in mf.field]
    f = sp.lambdify(params, exprs, "mpmath")
    return lambda v: list(f(*v))


def _mp_flow_step(rhs, y0, h, dps):
    """The flow over one GD step, refined (2, 4, 8, ... GBS macro-steps) until two resolutions agree
    to dps − 8 digits: near a blow-up a fixed resolution is not accurate enough to judge a bound."""
    s, prev = 2, integrate_mp(rhs, y0, h, dps=dps, steps=2, levels=8)
    while True:
        s *= 2
        cur = integrate_mp(rhs, y0, h, dps=dps, steps=s, levels=8)
        diff = mp.sqrt(sum((a - b) ** 2 for a, b in zip(cur, prev)))
        if diff <= mp.mpf(10) ** (8 - dps) * (1 + mp.sqrt(sum(a**2 for a in cur))):
            return cur
        if s >= 512:
            raise AssertionError(f"the mpmath reference flow did not converge (last change {float(diff):.3g})")
        prev = cur


def mp_distances(E, params, theta0, h, steps, flow, order=None, dps=30):
    """‖θ_k − θ̃(kh)‖ with GD and the flow θ̃ both in mpmath (``dps`` digits)."""
    grad = sp.lambdify(params, [sp.diff(E, p) for p in params], "mpmath")
    with mp.workdps(dps):
        rhs = _mp_field(E, params, h, flow, order)
        th = [mp.mpf(v) for v in theta0]
        yk = list(th)
        hh = mp.mpf(h)
        out = [0.0]
        for _ in range(steps):
            th = [a - hh * b for a, b in zip(th, grad(*th))]
            yk = _mp_flow_step(rhs, yk, hh, dps)
            out.append(float(mp.sqrt(sum((a - b) ** 2 for a, b in zip(th, yk)))))
        return np.array(out)


def _check_dominates(cert, exact):
    if not cert.certified:
        assert cert.reason
        assert np.all(np.isinf(cert.bound[cert.valid_steps:]))
        return
    assert np.all(cert.bound >= exact), (cert.bound - exact, cert.bound, exact)


@settings(max_examples=8, deadline=None)
@given(case=polynomial_losses(2, 4, min_degree=3, max_terms=4), theta0=points(2, 0.8, grid=40),
       h=st.sampled_from([0.01, 0.05, 0.1]), flow=st.sampled_from(["igr", "third", "bea"]))
def test_bound_dominates_mp_distance_to_each_modified_flow(case, theta0, h, flow):
    """Property: bound[k] ≥ ‖θ_k − θ̃(kh)‖ for the IGR, third-order and order-3 BEA flows on
    generated polynomial losses, against GD and the flow both computed in mpmath."""
    E, params = case
    order = 3 if flow == "bea" else None
    steps = 6
    cert = bea.certify(E, params, theta0, h, steps, flow=flow, order=order)
    assert cert.flow == flow and len(cert.bound) == steps + 1
    if cert.certified:
        _check_dominates(cert, mp_distances(E, params, theta0, h, steps, flow, order))
    else:
        _check_dominates(cert, None)


@settings(max_examples=5, deadline=None)
@given(case=polynomial_losses(2, 4, min_degree=3, max_terms=4), theta0=points(2, 0.8, grid=40),
       h=st.sampled_from([0.02, 0.1]), flow=st.sampled_from(["igr", "third"]))
def test_rigorous_bound_dominates_mp_distance(case, theta0, h, flow):
    """Property: with rigorous=True (the BEA field enclosed in ball arithmetic) the bound dominates
    the mpmath distance, and the reported distance is within its proven error of it."""
    E, params = case
    steps = 5
    cert = bea.certify(E, params, theta0, h, steps, flow=flow, rigorous=True)
    if not cert.certified:
        _check_dominates(cert, None)
        return
    exact = mp_distances(E, params, theta0, h, steps, flow)
    _check_dominates(cert, exact)
    assert np.all(np.abs(cert.distance - exact) <= cert.distance_error + 1e-25)


@pytest.mark.parametrize("flow", ["ngf", "igr", "third", "pf"])
def test_bound_dominates_mp_distance_on_a_fixed_loss(flow):
    """Property: on a fixed non-quadratic loss, bound ≥ the mpmath distance for every flow (the PF
    from mpmath eigen-decompositions), and the bound is tight (≤ 1.01 × distance at the end)."""
    h, steps = 0.1, 12
    cert = bea.certify(E1, [x, y], TH1, h, steps, flow=flow)
    assert cert.certified, cert.reason
    exact = mp_distances(E1, [x, y], TH1, h, steps, flow)
    _check_dominates(cert, exact)
    assert cert.bound[-1] <= 1.01 * exact[-1]


@pytest.mark.parametrize("flow,order,n", [("ngf", None, 0), ("igr", None, 1), ("third", None, 2), ("bea", 3, 3)])
def test_order_n_bound_shrinks_like_h_to_the_n_plus_1(flow, order, n):
    """Property: at a fixed time the bound against the order-n BEA flow is O(h^{n+1}) (local error
    O(h^{n+2}) over t/h steps): the fitted slope of bound(h) is n + 1, as is the mpmath distance's."""
    T = 1.6
    hs, bounds, exact = [], [], []
    for k in (16, 32, 64):
        h = T / k
        c = bea.certify(E1, [x, y], TH1, h, k, flow=flow, order=order)
        assert c.certified, c.reason
        hs.append(h)
        bounds.append(c.bound[-1])
        if k <= 32:
            exact.append(mp_distances(E1, [x, y], TH1, h, k, flow, order, dps=25)[-1])
    slope = fit_order(hs, bounds)
    assert abs(slope - (n + 1)) < 0.2, (slope, bounds)
    assert abs(fit_order(hs[:2], exact) - (n + 1)) < 0.3
    assert all(b >= e for b, e in zip(bounds, exact))


def test_pf_bound_on_a_quadratic_is_at_rounding_level():
    """Property: on a quadratic the PF at t = kh is exact GD (Remark 3.1), so the bound is a few
    roundings of the float GD iterates; it dominates their mpmath distance to exact GD and is far
    below the gradient-flow bound."""
    h, steps = 0.4, 50  # h·λ_max = 0.8 < 1: the real PF exists
    c = bea.certify(QUAD, [x, y], THQ, h, steps, flow="pf")
    assert c.certified, c.reason
    grad = sp.lambdify([x, y], [sp.diff(QUAD, v) for v in (x, y)], "mpmath")
    with mp.workdps(40):
        th = [mp.mpf(v) for v in THQ]
        fl = np.array(THQ)
        d = [0.0]
        for _ in range(steps):
            th = [a - mp.mpf(h) * b for a, b in zip(th, grad(*th))]
            fl = fl - h * np.array([2 * fl[0], fl[1] / 50])  # the float GD, as certify runs it
            d.append(float(mp.sqrt(sum((mp.mpf(float(a)) - b) ** 2 for a, b in zip(fl, th)))))
    assert np.all(c.bound >= np.array(d))
    assert c.bound[-1] <= 1e-15 * (1 + np.max(np.abs(THQ))) * steps
    assert bea.certify(QUAD, [x, y], THQ, h, steps).bound[-1] > 1e6 * c.bound[-1]
    r = bea.certify(QUAD, [x, y], THQ, h, steps, flow="pf", rigorous=True)
    assert r.certified and np.all(r.bound >= np.array(d)) and r.bound[-1] <= 1e-15 * (1 + np.max(np.abs(THQ))) * steps


def test_bad_flow_input_raises_bea_errors():
    """Property: unknown flows, a missing or misplaced order, the PF where hλ ≥ 1 (no real flow),
    Theorem 1 with a modified flow and a rigorous PF on a non-quadratic raise bea.BEAError
    subclasses naming the problem."""
    with pytest.raises(UnknownMethodError, match="flow must be one of"):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="heavy-ball")
    with pytest.raises(UnknownMethodError):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="pf+np")
    with pytest.raises(InvalidOrderError, match="order"):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="bea")
    with pytest.raises(InvalidOrderError):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="bea", order=-1)
    with pytest.raises(InvalidInputError, match="order applies only"):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="igr", order=2)
    with pytest.raises(InvalidInputError, match="h·λ_max < 1"):
        bea.certify(QUAD, [x, y], THQ, 0.6, 5, flow="pf")  # h·λ = 1.2
    with pytest.raises(InvalidInputError, match="h·λ_max < 1"):
        bea.certify(E1, [x, y], TH1, 0.6, 5, flow="pf")  # λ_max ≈ 3 at θ0
    with pytest.raises(InvalidInputError, match="mode='discrete'"):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="igr", mode="theorem1")
    with pytest.raises(InvalidInputError, match="quadratic"):
        bea.certify(E1, [x, y], TH1, 0.1, 5, flow="pf", rigorous=True)
    with pytest.raises(BEAError):
        bea.max_step(E1, [x, y], TH1, 1.0, 1e-3, flow="nope")


def test_max_step_per_flow():
    """Property: max_step(flow=...) returns the largest η = t/k whose certificate against that flow
    is ≤ tol (checked by certify at k and k − 1); a higher-order flow certifies a larger step."""
    t, tol = 1.0, 1e-4
    steps = {}
    for flow in ("ngf", "igr"):
        ans = bea.max_step(E1, [x, y], TH1, t, tol, flow=flow)
        k = ans.certified_steps
        assert k > 0 and ans.certified_step <= ans.empirical_step * 1.0001
        c = bea.certify(E1, [x, y], TH1, t / k, k, flow=flow)
        assert c.certified and c.bound[-1] <= tol
        if k > 1:
            w = bea.certify(E1, [x, y], TH1, t / (k - 1), k - 1, flow=flow)
            assert not (w.certified and w.bound[-1] <= tol)
        steps[flow] = ans.certified_step
    assert steps["igr"] > 2 * steps["ngf"]


@pytest.mark.parametrize("flow", ["igr", "third", "pf"])
def test_torch_twin_bound_dominates_mp_distance(flow):
    """Property: bea.torch.certify(flow=...) (HVPs, Lanczos, float mode) bounds the mpmath distance
    between GD and the same flow on the fixed loss, and agrees with the numpy certificate's distance."""
    torch = pytest.importorskip("torch")
    from bea.torch.certify import certify as torch_certify

    def f(t):
        return t[0] ** 2 / 2 + t[1] ** 2 + t[0] ** 4 / 4 + 0.3 * t[0] * t[1]

    h, steps = 0.1, 12
    c = torch_certify(f, torch.tensor(TH1, dtype=torch.float64), h, steps, flow=flow)
    assert c.certified, c.reason
    assert c.flow == flow
    exact = mp_distances(E1, [x, y], TH1, h, steps, flow)
    assert np.all(c.bound >= exact), (c.bound - exact)
    assert np.allclose(c.distance, exact, rtol=1e-7, atol=1e-12)
    assert c.bound[-1] <= 1.2 * exact[-1]


def test_torch_twin_bad_flow_input():
    """Property: the torch twin refuses unknown flows, 'bea' (sympy only), k without the PF and the
    PF where h·λ_max ≥ 1, with bea errors naming the problem."""
    torch = pytest.importorskip("torch")
    from bea.torch.certify import certify as torch_certify

    def f(t):
        return t[0] ** 2 / 2 + t[1] ** 2 + t[0] ** 4 / 4 + 0.3 * t[0] * t[1]

    th = torch.tensor(TH1, dtype=torch.float64)
    with pytest.raises(UnknownMethodError, match="sympy loss"):
        torch_certify(f, th, 0.1, 3, flow="bea")
    with pytest.raises(UnknownMethodError):
        torch_certify(f, th, 0.1, 3, flow="nope")
    with pytest.raises(InvalidInputError, match="k applies only"):
        torch_certify(f, th, 0.1, 3, flow="igr", k=1)
    with pytest.raises(InvalidInputError, match="h·λ_max < 1"):
        torch_certify(f, th, 0.6, 3, flow="pf")


@settings(max_examples=6, deadline=None)
@given(case=quadratics(2, h=Fraction(1, 10), regimes=("negative", "stable")), theta0=points(2, 1.0, grid=20))
def test_pf_bound_on_generated_quadratics(case, theta0):
    """Property: on quadratics with h·λ < 1 (stable and negative eigenvalues) the PF integrated in
    mpmath from its definition (eigsy) equals mpmath GD at t = kh (Remark 3.1, which the PF
    certificate of a quadratic relies on), the bound dominates the mpmath distance and the reported
    one (float GD to the enclosed exact GD), and it is at rounding level."""
    E, params = case.E, list(case.params)
    h, steps = 0.1, 8
    c = bea.certify(E, params, theta0, h, steps, flow="pf")
    assert c.certified, c.reason
    grad = sp.lambdify(params, [sp.diff(E, p) for p in params], "mpmath")
    with mp.workdps(30):
        rhs = _mp_field(E, params, h, "pf", None)
        yk = [mp.mpf(float(v)) for v in theta0]
        th = list(yk)
        d = [0.0]
        for _ in range(steps):
            yk = _mp_flow_step(rhs, yk, mp.mpf(h), 30)
            th = [a - mp.mpf(h) * b for a, b in zip(th, grad(*th))]
            d.append(float(mp.sqrt(sum((a - b) ** 2 for a, b in zip(th, yk)))))
    scale = (1 + np.max(np.abs(theta0))) * (1 + float(max(abs(v) for v in case.eigenvalues)))
    assert max(d) <= 1e-20 * scale
    assert np.all(c.bound >= np.array(d)) and np.all(c.bound >= c.distance)
    # rounding level: float GD's rounding errors are ~ε·|θ_k| and a negative eigenvalue amplifies them
    # by |1 − hλ| per step, so the scale holds the size of the iterates and that amplification
    lams = [float(v) for v in case.eigenvalues]
    size = 1 + float(np.max(np.abs(bea.gd(E, params, theta0, h, steps))))
    growth = max(1.0, *(abs(1 - h * lam) for lam in lams)) ** steps
    assert c.bound[-1] <= 1e-14 * size * (1 + max(abs(v) for v in lams)) * growth
