"""Guards of ``bea.certify(flow=...)`` (issue #14) and of the Picard enclosures, written to kill
mutations of ``tools/mutations.py`` (issue #17).  Each test checks against an independent route:
the modified fields written out by hand from their definitions (IGR −g − (h/2)Hg, third order
−g − (h/2)Hg − h²(H²g/3 + T(g, g)/12)) and integrated by mpmath's Taylor ODE solver at 30 digits,
or brute-force flows of a box's corners."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from bea.certificates.certify import certify
from bea.errors import InvalidInputError

z = sp.Symbol("z")
x, y = sp.symbols("x y")

# E = z²/2 + z³/6: E' = z + z²/2, E'' = 1 + z, E''' = 1.  GD stays below every flow from z0 = 1 and
# the local errors have the sign of the accumulated error, so the discrete recursion is exact
CUBIC = z**2 / 2 + z**3 / 6


def _g(v):
    return v + v * v / 2


def _hand_field(flow, h):
    """The modified field of the cubic at step h, from its definition (not bea.modified_field)."""
    h = mp.mpf(h)
    if flow == "igr":
        return lambda t, v: -(_g(v) + h / 2 * (1 + v) * _g(v))
    assert flow == "third"
    return lambda t, v: -(_g(v) + h / 2 * (1 + v) * _g(v) + h * h * ((1 + v) ** 2 * _g(v) / 3 + _g(v) ** 2 / 12))


def _distances_to(flow, z0, h, steps):
    """|θ̂_k − θ̃(kh)|: the float GD iterates (as certify takes them) against the hand-written
    modified flow integrated by mpmath (Taylor series method) at 30 digits."""
    th = [float(z0)]
    for _ in range(steps):
        th.append(th[-1] - h * _g(th[-1]))
    with mp.workdps(30):
        sol = mp.odefun(_hand_field(flow, h), 0, mp.mpf(z0))
        return np.array([float(abs(mp.mpf(th[k]) - sol(k * mp.mpf(h)))) for k in range(steps + 1)])


@pytest.mark.parametrize("flow", ["igr", "third"])
@pytest.mark.parametrize("h,steps", [(0.1, 30), (0.4, 12)])
def test_modified_flow_bound_is_exact_on_the_cubic(flow, h, steps):
    """Property: bound[k] ≥ |θ̂_k − θ̃(kh)| for GD against the IGR and the third-order flow, and on
    the cubic, where every inequality of the discrete recursion is attained, bound[k] ≤ (1 + 1e-6)
    times that distance — so a local error Φ(Y_k) − Y_{k+1} entered smaller than it is (halved, in
    the norm or the componentwise recursion) falls below the distance."""
    cert = certify(CUBIC, [z], [1.0], h, steps, flow=flow)
    assert cert.certified, cert.reason
    d = _distances_to(flow, 1.0, h, steps)
    assert np.all(cert.bound >= d)
    assert np.all(cert.bound[1:] <= d[1:] * (1 + 1e-6))


def test_modified_flow_bound_is_exact_componentwise_on_a_decoupled_pair():
    """Property: with two decoupled copies of the cubic, E = c(x) + c(y/2)·4 (each coordinate its own
    1-D problem), the componentwise recursion against the IGR flow still covers the distance of GD
    to the hand-written flow and is within 1e-6 of it — the componentwise local error vector must be
    entered in full."""
    E = x**2 / 2 + x**3 / 6 + y**2 / 2 + y**3 / 6
    h, steps = 0.2, 15
    cert = certify(E, [x, y], [1.0, 0.5], h, steps, flow="igr", componentwise=True)
    assert cert.certified, cert.reason
    dx = _distances_to("igr", 1.0, h, steps)
    dy = _distances_to("igr", 0.5, h, steps)
    d = np.hypot(dx, dy)
    assert np.all(cert.bound >= d)
    assert np.all(cert.bound[1:] <= d[1:] * (1 + 1e-6))


@pytest.mark.parametrize("h", [0.55, 0.9])
def test_pf_on_a_non_quadratic_is_refused_where_h_lambda_reaches_one(h):
    """Property: the real principal flow exists only while h·λ_max < 1 (log(1 − hλ) is complex
    beyond); on the cubic from z0 = 1, λ = E''(1) = 2, so h·λ ∈ [1.1, 1.8) must be refused with the
    documented InvalidInputError, not certified against a flow that does not exist."""
    assert h * 2.0 >= 1.0
    with pytest.raises(InvalidInputError, match="λ_max"):
        certify(CUBIC, [z], [1.0], h, 5, flow="pf")


def test_pf_on_a_non_quadratic_below_the_limit_is_accepted():
    """The refusal's other side: h·λ_max = 0.6 < 1 along the flow is certified (or refused for
    another, stated reason), never refused for h·λ."""
    cert = certify(CUBIC, [z], [1.0], 0.3, 5, flow="pf")
    assert cert.certified or "λ_max" not in cert.reason


# --------------------------------------------------------------------------------------------------
# the ball-arithmetic view of a modified field (bea.certificates.rigorous.field_interval_loss)
# --------------------------------------------------------------------------------------------------


def _field_loss(flow, h):
    from bea.compile.loss import compile_loss
    from bea.certificates.rigorous import field_interval_loss

    E = x**2 / 2 + x**3 / 6 + x * y + y**4 / 4 - y**2  # non-convex, coupled
    loss = compile_loss(E, [x, y])
    order = {"igr": 1, "third": 2}[flow]
    return E, field_interval_loss(loss, flow, order, h)


def _hand_igr(E, h):
    """IGR field −g − (h/2)Hg and its Jacobian, by sympy from E (independent of modified_field)."""
    P = [x, y]
    g = sp.Matrix([sp.diff(E, p) for p in P])
    H = sp.hessian(E, P)
    f = -g - sp.Rational(float(h)) / 2 * H * g
    J = f.jacobian(P)
    return f, J


@pytest.mark.parametrize("h", [0.1, 0.3])
def test_rigorous_modified_field_is_the_field_at_step_h(h):
    """Property: the ball-arithmetic field of ``flow='igr'`` at step h encloses −g − (h/2)Hg at
    points (its ``grad`` is −f̃), computed from E by hand at 30 digits — the field of the step h,
    not of another step."""
    from flint import arb

    E, fl = _field_loss("igr", h)
    f, _ = _hand_igr(E, h)
    for pt in ([0.3, -0.7], [1.1, 0.4], [-0.5, 1.3]):
        box = [arb(v) for v in pt]
        enc = fl.grad(box)
        exact = [-float(sp.N(fi.subs({x: sp.Float(pt[0], 30), y: sp.Float(pt[1], 30)}), 30)) for fi in f]
        for e, v in zip(enc, exact):
            assert float(e.mid()) - float(e.rad()) - 1e-14 <= v <= float(e.mid()) + float(e.rad()) + 1e-14
            assert abs(float(e.mid()) - v) <= 1e-13 * (1 + abs(v))


@pytest.mark.parametrize("h", [0.1, 0.3])
def test_rigorous_modified_field_spread_is_its_logarithmic_norm(h):
    """Property: the Lohner spread of a modified field uses λ_lo ≤ −μ₂(J), μ₂(J) = λ_max((J + Jᵀ)/2)
    the logarithmic norm of the field's Jacobian (two flow lines separate at most like
    exp(τ μ₂)): at points, the eigenvalue bounds of the field's ``hess`` must enclose the spectrum
    of −(J + Jᵀ)/2 computed by hand (sympy Jacobian, numpy eigenvalues)."""
    from bea.certificates.rigorous import make_box

    E, fl = _field_loss("igr", h)
    _, J = _hand_igr(E, h)
    Jf = sp.lambdify([x, y], J, "numpy")
    for pt in ([0.3, -0.7], [1.1, 0.4], [-0.5, 1.3], [0.0, 0.9]):
        Jp = np.array(Jf(*pt), dtype=float)
        S = -(Jp + Jp.T) / 2
        ev = np.linalg.eigvalsh(S)
        lo, hi = fl.eig_bounds(make_box(np.array(pt), 0.0))
        assert lo <= ev[0] + 1e-12 * (1 + abs(ev[0])) and ev[-1] - 1e-12 * (1 + abs(ev[-1])) <= hi
        # and not a wild enclosure: the point box is tight
        assert ev[0] - lo <= 1e-9 * (1 + abs(ev[0])) and hi - ev[-1] <= 1e-9 * (1 + abs(ev[-1]))


# --------------------------------------------------------------------------------------------------
# Picard enclosures: Y + [0, τ]·f(B) ⊆ B must be tested before B is called an enclosure
# --------------------------------------------------------------------------------------------------


def _corner_flows(grad, corners, tau, n_t=9):
    """The gradient flows from the given points over [0, tau], sampled at n_t times (mpmath, 25 digits)."""
    out = []
    with mp.workdps(25):
        for c in corners:
            sol = mp.odefun(lambda t, v: [-gi for gi in grad(*v)], 0, [mp.mpf(ci) for ci in c])
            for t in np.linspace(0.0, tau, n_t):
                out.append([float(v) for v in sol(mp.mpf(t))])
    return np.array(out)


# a fast-expanding flow ẋ = 10x − x³, ẏ = 6y: over a long τ the flow from Y leaves every box the first
# iterations build (a box accepted without the test would miss it); over a short τ an enclosure exists
EXPAND = -5 * x**2 + x**4 / 4 - 3 * y**2
PICARD_CASES = [(0.05, True), (0.35, False), (0.5, False)]  # (τ, an enclosure must be found)


def _expand_corners(tau):
    c, r = np.array([1.0, 0.5]), 0.01
    grad = sp.lambdify([x, y], [sp.diff(EXPAND, p) for p in (x, y)], "mpmath")
    corners = [c + r * np.array(s) for s in ([-1, -1], [-1, 1], [1, -1], [1, 1], [0, 0])]
    return c, r, _corner_flows(grad, corners, tau)


@pytest.mark.parametrize("tau,must_find", PICARD_CASES)
def test_float_interval_picard_boxes_contain_the_flows_from_the_box(tau, must_find):
    """Property (Picard–Lindelöf): a box B that ``bea.certificates.intervals`` BoxLoss.picard reports as valid
    contains the flow from every point of Y over [0, τ] — checked on the flows from Y's corners and
    centre, integrated in mpmath, on an expanding flow; over a long τ refusing is the only sound
    answer (the flow leaves every candidate), over a short one an enclosure is found."""
    from bea.certificates.intervals import Iv, box_loss
    from bea.compile.loss import compile_loss

    bl = box_loss(compile_loss(EXPAND, [x, y]))
    c, r, pts = _expand_corners(tau)
    B, _, ok = bl.picard(Iv(np.array([c - r]), np.array([c + r])), tau)
    if ok[0]:
        assert np.all(B.lo[0] <= pts.min(axis=0)) and np.all(pts.max(axis=0) <= B.hi[0])
    assert ok[0] or not must_find, "no Picard enclosure over a short step"


@pytest.mark.parametrize("tau,must_find", PICARD_CASES)
def test_arb_picard_boxes_contain_the_flows_from_the_box(tau, must_find):
    """Property (Picard–Lindelöf), ball-arithmetic backend: a box of ``IntervalLoss.picard``
    contains the mpmath flows from the corners and centre of Y over [0, τ] on the expanding flow,
    or none is returned."""
    from bea.compile.loss import compile_loss
    from bea.certificates.rigorous import interval_loss, make_box

    il = interval_loss(compile_loss(EXPAND, [x, y]))
    c, r, pts = _expand_corners(tau)
    B, _ = il.picard(make_box(c, r), tau)
    if B is not None:
        for i, b in enumerate(B):
            lo, hi = float(b.mid()) - float(b.rad()), float(b.mid()) + float(b.rad())
            assert lo <= pts[:, i].min() and pts[:, i].max() <= hi
    assert B is not None or not must_find, "no Picard enclosure over a short step"
