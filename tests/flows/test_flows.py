"""GD and its flows against independent routes: design.md §3 reference values, closed forms, scipy.

Every check compares bea with something computed another way: GD itself (the definition), the
closed-form solutions of linear flows, scipy's solve_ivp on a field built directly with sympy, or
scipy's matrix logarithm for the principal-flow field.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import sympy as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import bea
from bea import flows
from bea.errors import BEAError, IntegrationError, InvalidInputError, InvalidOrderError, UnknownMethodError
from bea.flows import FLOWS, gd, pf_closed_form, pf_field, trajectory
from conftest import QUAD, ROSEN, ROSEN10

x, y, z = sp.symbols("x y z")
P2 = [x, y]
H_QUAD = np.diag([2.0, 0.02])
THETA0 = np.array([-0.35, -0.2])
HALF = z**2 / 2

# a fixed non-diagonal quadratic ½θᵀAθ + bᵀθ with eigenvalues 2, 0.7, −0.3 (one compile for many tests)
_rot = np.linalg.qr(np.array([[1.0, 0.3, -0.2], [0.1, 1.0, 0.4], [-0.5, 0.2, 1.0]]))[0]
A3 = _rot @ np.diag([2.0, 0.7, -0.3]) @ _rot.T
A3 = 0.5 * (A3 + A3.T)
B3 = np.array([0.3, -0.1, 0.2])
P3 = sp.symbols("a0:3")
QUAD3 = sum(sp.Float(A3[i, j]) * P3[i] * P3[j] for i in range(3) for j in range(3)) / 2 + sum(
    sp.Float(B3[i]) * P3[i] for i in range(3)
)


def gd_linear(A, b, theta0, h, steps):
    """GD on ½θᵀAθ + bᵀθ in plain numpy (the definition, independent of bea)."""
    out = [np.asarray(theta0, float)]
    for _ in range(steps):
        out.append(out[-1] - h * (A @ out[-1] + b))
    return np.array(out)


# --------------------------------------------------------------------------------------------------
# design.md §3 reference values
# --------------------------------------------------------------------------------------------------


def test_reference_unstable_step_h105():
    """h = 1.05 (hλ₀ = 2.1 > 2): GD = PF = (0.5636785, −0.17986367) after 5 steps."""
    g = gd(QUAD, P2, THETA0, 1.05, 5)
    np.testing.assert_allclose(g[-1], [0.5636785, -0.17986367], rtol=1e-7)
    np.testing.assert_allclose(g, gd_linear(H_QUAD, 0, THETA0, 1.05, 5), rtol=1e-15)
    pf = trajectory(QUAD, P2, THETA0, 1.05, 5, flow="pf")
    assert pf.dtype == np.complex128 and pf.shape == (6, 2)
    np.testing.assert_allclose(pf.real, g, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pf.imag, 0.0, atol=1e-8)
    # the closed form of Remark 3.1 is exact: GD at t = kh
    cf = pf_closed_form(2 * np.diag([1.0, 0.01]), None, THETA0, 1.05, 1.05 * np.arange(6))
    np.testing.assert_allclose(cf.real, g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cf.imag, 0.0, atol=1e-12)


def test_reference_long_run_h09():
    """h = 0.9, 200 steps: GD = PF ≈ (−1.45e−20, −5.28844e−3); IGR −5.29052e−3; NGF −5.46474e−3."""
    h, steps = 0.9, 200
    g = gd(QUAD, P2, THETA0, h, steps)
    assert g[-1, 0] == pytest.approx(-1.45e-20, rel=2e-3)
    assert g[-1, 1] == pytest.approx(-5.28844e-3, rel=1e-6)
    pf = trajectory(QUAD, P2, THETA0, h, steps, flow="pf")
    np.testing.assert_allclose(pf.real, g, rtol=1e-7, atol=1e-12)
    # component by component, also the one GD shrinks to 1e-20 (relative error control)
    np.testing.assert_allclose(pf.real, g, rtol=1e-7, atol=0)
    assert np.all(np.abs(pf.imag) <= 1e-7 * np.abs(g))
    igr = trajectory(QUAD, P2, THETA0, h, steps, flow="igr")
    ngf = trajectory(QUAD, P2, THETA0, h, steps, flow="ngf")
    assert igr.dtype == np.float64 and ngf.dtype == np.float64
    assert igr[-1, 1] == pytest.approx(-5.29052e-3, rel=1e-6)
    assert ngf[-1, 1] == pytest.approx(-5.46474e-3, rel=1e-6)
    # closed forms of the linear flows: NGF rate −λ, IGR rate −λ(1 + hλ/2)
    t = h * np.arange(steps + 1)
    lam = np.diag(H_QUAD)
    np.testing.assert_allclose(ngf[:, 1], THETA0[1] * np.exp(-lam[1] * t), rtol=1e-8)
    np.testing.assert_allclose(igr[:, 1], THETA0[1] * np.exp(-lam[1] * (1 + h * lam[1] / 2) * t), rtol=1e-8)
    cf = pf_closed_form(H_QUAD, None, THETA0, h, t[-1])
    assert cf[0].real == pytest.approx(-1.45e-20, rel=2e-3)
    assert cf[1].real == pytest.approx(-5.28844e-3, rel=1e-6)


@pytest.mark.parametrize(
    "h,steps,gd_value",
    [(1.5, 1, -0.5), (2.5, 5, (-1.5) ** 5)],
)
def test_reference_one_dimensional(h, steps, gd_value):
    """E = z²/2, z0 = 1: GD = PF = −0.5 at h = t = 1.5 and −7.59375 at h = 2.5, t = 12.5."""
    g = gd(HALF, [z], [1.0], h, steps)
    assert g[-1, 0] == pytest.approx(gd_value, rel=1e-15)
    pf = trajectory(HALF, [z], [1.0], h, steps, flow="pf")
    assert pf[-1, 0].real == pytest.approx(gd_value, rel=1e-8)
    assert abs(pf[-1, 0].imag) < 1e-8 * abs(gd_value)


def test_reference_one_dimensional_ngf_igr():
    """E = z²/2, h = t = 1.5: NGF = e^{−1.5} = 0.223130, IGR = e^{−2.625} = 0.072440."""
    ngf = trajectory(HALF, [z], [1.0], 1.5, 1, flow="ngf")
    igr = trajectory(HALF, [z], [1.0], 1.5, 1, flow="igr")
    assert ngf[-1, 0] == pytest.approx(0.223130, abs=5e-7)
    assert ngf[-1, 0] == pytest.approx(math.exp(-1.5), rel=1e-9)
    assert igr[-1, 0] == pytest.approx(0.072440, abs=5e-7)
    assert igr[-1, 0] == pytest.approx(math.exp(-2.625), rel=1e-9)


def test_pf_rate_reference_in_diagnostics():
    """log(1 − hλ₀)/h at h = 1.05, λ₀ = 2 is 0.090772 + 2.991993i."""
    d = bea.flows.diagnostics.diagnostics(QUAD, P2, THETA0, 1.05)
    assert d.rates[0].real == pytest.approx(0.090772, abs=5e-7)
    assert d.rates[0].imag == pytest.approx(2.991993, abs=5e-7)


# --------------------------------------------------------------------------------------------------
# PF = GD on quadratics (Remark 3.1), also for unstable steps
# --------------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    h=st.floats(0.05, 1.3),
    theta0=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
    steps=st.integers(0, 6),
)
@example(h=0.75, theta0=[1.0, -0.5, 0.3], steps=6)  # hλ₀ = 1.5 ∈ (1, 2)
@example(h=1.25, theta0=[0.2, 1.0, -1.0], steps=5)  # hλ₀ = 2.5 > 2: GD diverges, PF too
def test_pf_equals_gd_on_a_quadratic(h, theta0, steps):
    """Re PF(kh) = GD_k on ½θᵀAθ + bᵀθ (eigenvalues 2, 0.7, −0.3; hλ₀ from 0.1 to 2.6)."""
    assume(abs(h * 2.0 - 1.0) > 1e-3 and abs(h * 0.7 - 1.0) > 1e-3)  # hλ = 1 has its own test
    ref = gd_linear(A3, B3, theta0, h, steps)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(gd(QUAD3, P3, theta0, h, steps), ref, rtol=1e-12, atol=1e-13 * scale)
    pf = trajectory(QUAD3, P3, theta0, h, steps, flow="pf")
    np.testing.assert_allclose(pf.real, ref, rtol=1e-7, atol=1e-8 * scale)
    np.testing.assert_allclose(pf.imag, 0.0, atol=1e-7 * scale)
    cf = pf_closed_form(A3, B3, theta0, h, h * np.arange(steps + 1))
    np.testing.assert_allclose(cf.real, ref, rtol=1e-10, atol=1e-11 * scale)


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 5),
    h=st.floats(0.05, 3.0),
    steps=st.integers(0, 8),
)
def test_closed_form_equals_gd_on_random_quadratics(seed, n, h, steps):
    """The Remark 3.1 solution (with the b-term done right) lands on GD at t = kh, any A, b."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    A = (M + M.T) / 2
    b = rng.normal(size=n)
    theta0 = rng.normal(size=n)
    assume(np.min(np.abs(h * np.linalg.eigvalsh(A) - 1.0)) > 1e-6)
    ref = gd_linear(A, b, theta0, h, steps)
    cf = pf_closed_form(A, b, theta0, h, h * np.arange(steps + 1))
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(cf.real, ref, rtol=1e-9, atol=1e-10 * scale)
    np.testing.assert_allclose(cf.imag, 0.0, atol=1e-9 * scale)


def test_closed_form_solves_the_pf():
    """d/dt of the closed form equals the PF field φ(hA)(Aθ + b), φ(hA) from scipy's logm."""
    h, t = 0.8, 1.3  # hλ₀ = 1.6: complex
    phi = scipy.linalg.logm(np.eye(3) - h * A3) @ np.linalg.inv(h * A3)
    theta = pf_closed_form(A3, B3, [0.4, -0.2, 0.1], h, t)
    eps = 1e-6
    deriv = (pf_closed_form(A3, B3, [0.4, -0.2, 0.1], h, t + eps) - pf_closed_form(A3, B3, [0.4, -0.2, 0.1], h, t - eps)) / (2 * eps)
    np.testing.assert_allclose(deriv, phi @ (A3 @ theta + B3), rtol=1e-7, atol=1e-8)


def test_one_step_direction_h_lambda_equal_one():
    """hλ = 1: GD lands on the minimiser's coordinate in one step; the PF does (to rounding), no NaN."""
    pf = trajectory(HALF, [z], [1.0], 1.0, 4, flow="pf")
    assert np.all(np.isfinite(pf))
    np.testing.assert_allclose(pf[1:].real, 0.0, atol=1e-11)
    # 2-D: λ₀ = 2 at h = 0.5 collapses, λ₁ = 0.02 keeps its GD factor 0.99
    pf2 = trajectory(QUAD, P2, THETA0, 0.5, 3, flow="pf")
    g2 = gd(QUAD, P2, THETA0, 0.5, 3)
    assert np.all(np.isfinite(pf2))
    np.testing.assert_allclose(pf2.real, g2, atol=1e-11)
    cf = pf_closed_form(H_QUAD, None, THETA0, 0.5, [0.0, 0.5, 1.0])
    assert cf[1, 0] == 0.0 and cf[2, 0] == 0.0 and cf[0, 0] == THETA0[0]
    # with b ≠ 0 the one-step coordinate goes to the minimiser's, −β/λ
    cf_b = pf_closed_form(H_QUAD, [0.2, 0.0], THETA0, 0.5, 0.5)
    assert cf_b[0].real == pytest.approx(-0.1, abs=1e-15)
    # and the field is finite there
    assert np.all(np.isfinite(pf_field(QUAD, P2, THETA0, 0.5)))


def test_pf_plus_np_equals_pf_on_a_quadratic():
    """T = 0 for a quadratic, so PF+NP = PF = GD."""
    a = trajectory(QUAD, P2, THETA0, 1.05, 5, flow="pf+np")
    np.testing.assert_allclose(a.real, gd(QUAD, P2, THETA0, 1.05, 5), rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# the PF field against scipy's matrix logarithm; analyticity of the complex field
# --------------------------------------------------------------------------------------------------


def _hess_grad(E, params, theta):
    """H and g at θ from sympy directly (independent of bea's kernels)."""
    sub = dict(zip(params, theta))
    g = np.array([complex(sp.diff(E, p).subs(sub)) for p in params])
    H = np.array([[complex(sp.diff(E, p, q).subs(sub)) for q in params] for p in params])
    return H, g


@pytest.mark.parametrize("theta,h", [((-1.0, 1.2), 0.003), ((-1.2, 1.0), 0.0012), ((0.5, 0.1), 0.0045)])
def test_pf_field_matches_matrix_logarithm(theta, h):
    """F = log(I − hH)(hH)⁻¹g with scipy's logm (principal branch = +iπ on negative eigenvalues)."""
    H, g = _hess_grad(ROSEN, P2, theta)
    H = H.real
    phi = scipy.linalg.logm(np.eye(2) - h * H) @ np.linalg.inv(h * H)
    ref = phi @ g.real
    np.testing.assert_allclose(pf_field(ROSEN, P2, theta, h), ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_pf_field_at_complex_theta_matches_matrix_logarithm():
    """At a complex θ the field is the analytic continuation: logm of the complex symmetric H."""
    theta = np.array([-1.0 + 0.05j, 1.2 - 0.03j])
    h = 0.0008  # hλ < 1: principal branch everywhere
    H, g = _hess_grad(ROSEN, P2, theta)
    ref = scipy.linalg.logm(np.eye(2) - h * H) @ np.linalg.solve(h * H, g)
    np.testing.assert_allclose(pf_field(ROSEN, P2, theta, h), ref, rtol=1e-9)
    # the non-principal term of Eq. 14: −h²/12 T(g, g), T from sympy
    sub = dict(zip(P2, theta))
    T = np.array([[[complex(sp.diff(ROSEN, a, b, c).subs(sub)) for c in P2] for b in P2] for a in P2])
    tgg = np.einsum("ijk,j,k->i", T, g, g)
    np.testing.assert_allclose(pf_field(ROSEN, P2, theta, h, nonprincipal=True), ref - h**2 / 12 * tgg, rtol=1e-9)


def test_complex_field_is_holomorphic_across_the_real_axis():
    """F(θ + iδv) = F(θ) + iδ·J v + O(δ²) with J v from real finite differences, at hλ₀ > 1.

    The real points use the real eigendecomposition, the complex ones the complex one, so this
    checks that the two agree and that the branch of log(1 − hλ) is continuous off the axis.
    """
    theta, h = np.array([-1.0, 1.2]), 0.003  # hλ₀ ≈ 2.9
    v = np.array([0.6, -0.8])
    eps, delta = 1e-6, 1e-7
    Jv = (pf_field(ROSEN, P2, theta + eps * v, h) - pf_field(ROSEN, P2, theta - eps * v, h)) / (2 * eps)
    F0 = pf_field(ROSEN, P2, theta, h)
    for sign in (1.0, -1.0):
        Fc = pf_field(ROSEN, P2, theta + 1j * sign * delta * v, h)
        np.testing.assert_allclose((Fc - F0) / (1j * sign * delta), Jv, rtol=1e-4)


def test_pf_approaches_gd_as_the_loss_approaches_a_quadratic():
    """Quadratic + ε·cubic at the unstable h = 1.05: |Re PF − GD| = O(ε) over 5 steps (Remark 3.2)."""
    errs = []
    for eps in (1e-2, 1e-3, 1e-4):
        E = QUAD + sp.Float(eps) * (x**3 + x * y**2)
        g = gd(E, P2, THETA0, 1.05, 5)
        pf = trajectory(E, P2, THETA0, 1.05, 5, flow="pf")
        errs.append(np.abs(pf.real - g).max())
    assert errs[0] > 0
    assert 5 < errs[0] / errs[1] < 20 and 5 < errs[1] / errs[2] < 20


@pytest.mark.parametrize("hz", [0.8, 1.2, 1.5, 1.8])
def test_pf_branch_follows_the_analytic_continuation(hz):
    """1-D E = u²/2 + u⁴/8 from u = 0.5 with hλ(u0) = hz: the eigenvalue z = hE''(u) swings round
    z = 1 during the first steps.  Reference: scipy integrates (u, L) with L = log(1 − z) carried as
    a state (L' = −z'/(1 − z)), i.e. the analytic continuation along the path with no branch choice
    at all after the seed's initial value log|1 − z0| + iπ·[z0 > 1]."""
    u = sp.Symbol("u")
    E = u**2 / 2 + u**4 / 8
    u0 = 0.5
    h = hz / (1 + 1.5 * u0**2)

    def rhs(_t, Y):
        th, L = Y
        zz = h * (1 + 1.5 * th**2)
        thdot = L / zz * (th + th**3 / 2)
        return np.array([thdot, -h * 3 * th * thdot / (1 - zz)])

    z0 = h * (1 + 1.5 * u0**2)
    L0 = complex(math.log(abs(1 - z0)), math.pi if z0 > 1 else 0.0)
    ref = scipy.integrate.solve_ivp(rhs, (0, 5 * h), np.array([u0 + 0j, L0]), method="DOP853",
                                    t_eval=h * np.arange(6), rtol=1e-12, atol=1e-14)
    assert ref.success
    ours = trajectory(E, [u], [u0], h, 5, flow="pf")[:, 0]
    np.testing.assert_allclose(ours, ref.y[0], rtol=0, atol=1e-9)


def test_pf_on_rosenbrock_runs_through_complex_regime():
    """hλ₀ ≈ 1.5 at the start (complex-stable): the PF runs 30 steps, stays near GD, no failure."""
    h = 0.001
    pf = trajectory(ROSEN, P2, [-1.2, 1.0], h, 30, flow="pf")
    g = gd(ROSEN, P2, [-1.2, 1.0], h, 30)
    assert pf.dtype == np.complex128 and np.all(np.isfinite(pf))
    assert np.abs(pf.real - g).max() < 0.1
    # in the real-stable regime (hλ < 1 everywhere) the PF is real and closer to GD than the NGF
    h = 0.0005
    pf = trajectory(ROSEN, P2, [-1.2, 1.0], h, 20, flow="pf")
    ngf = trajectory(ROSEN, P2, [-1.2, 1.0], h, 20, flow="ngf")
    g = gd(ROSEN, P2, [-1.2, 1.0], h, 20)
    assert np.all(pf.imag == 0.0)
    assert np.abs(pf.real - g).max() < 0.5 * np.abs(ngf - g).max()


# --------------------------------------------------------------------------------------------------
# the other flows against closed forms and scipy
# --------------------------------------------------------------------------------------------------


def test_positive_and_flipped_flows_on_the_quadratic():
    """positive: θ̇ = +Hθ; flipped: +λ₀ along u₀ = e₁, −λ₁ along e₂ (closed forms)."""
    h, steps = 0.1, 10
    t = h * np.arange(steps + 1)
    lam = np.diag(H_QUAD)
    pos = trajectory(QUAD, P2, THETA0, h, steps, flow="positive")
    np.testing.assert_allclose(pos, THETA0 * np.exp(np.outer(t, lam)), rtol=1e-8)
    fl = trajectory(QUAD, P2, THETA0, h, steps, flow="flipped")
    np.testing.assert_allclose(fl[:, 0], THETA0[0] * np.exp(lam[0] * t), rtol=1e-8)
    np.testing.assert_allclose(fl[:, 1], THETA0[1] * np.exp(-lam[1] * t), rtol=1e-8)


def test_bea_order_n_on_one_dimensional_quadratic():
    """E = z²/2: the order-n BEA field is −z Σ_{k≤n} h^k/(k+1); its flow is an exponential."""
    h, steps = 0.4, 5
    for order in (0, 1, 3):
        rate = sum(h**k / (k + 1) for k in range(order + 1))
        out = trajectory(HALF, [z], [1.0], h, steps, flow="bea", order=order)
        np.testing.assert_allclose(out[:, 0], np.exp(-rate * h * np.arange(steps + 1)), rtol=1e-9)
    # "third" is the order-2 field
    third = trajectory(HALF, [z], [1.0], h, steps, flow="third")
    np.testing.assert_allclose(third[:, 0], np.exp(-(1 + h / 2 + h**2 / 3) * h * np.arange(steps + 1)), rtol=1e-9)


def _sympy_field(E, params, h, kind):
    """The IGR / third-order field built directly with sympy (not with bea.modified_field)."""
    g = sp.Matrix([sp.diff(E, p) for p in params])
    H = sp.hessian(E, params)
    f = -g - h / 2 * H * g
    if kind == "third":
        T_gg = sp.Matrix([sum(sp.diff(E, a, b, c) * g[b_i] * g[c_i]
                              for b_i, b in enumerate(params) for c_i, c in enumerate(params)) for a in params])
        f = f - h**2 * (H * H * g / 3 + T_gg / 12)
    return sp.lambdify([params], list(f), "numpy")


@pytest.mark.parametrize("flow", ["igr", "third"])
def test_integrator_agrees_with_scipy_dop853(flow):
    """bea's numba DOP853 vs scipy.solve_ivp(DOP853, rtol=1e-12) on a nonlinear loss: 1e-9."""
    h, steps, theta0 = 0.01, 60, np.array([-1.0, 1.5])
    f = _sympy_field(ROSEN10, P2, h, flow)
    t = h * np.arange(steps + 1)
    ref = scipy.integrate.solve_ivp(lambda _t, u: f(u), (0, t[-1]), theta0, method="DOP853",
                                    t_eval=t, rtol=1e-12, atol=1e-14)
    assert ref.success
    ours = trajectory(ROSEN10, P2, theta0, h, steps, flow=flow, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours, ref.y.T, rtol=0, atol=1e-9)
    # and with our dopri5
    ours5 = trajectory(ROSEN10, P2, theta0, h, steps, flow=flow, method="dopri5", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours5, ref.y.T, rtol=0, atol=1e-9)


def test_gd_against_numpy_loop_on_rosenbrock():
    f = sp.lambdify([P2], [sp.diff(ROSEN, p) for p in P2], "numpy")
    th = np.array([-1.2, 1.0])
    ref = [th]
    for _ in range(50):
        th = th - 0.001 * np.array(f(th))
        ref.append(th)
    np.testing.assert_allclose(gd(ROSEN, P2, [-1.2, 1.0], 0.001, 50), ref, rtol=1e-13, atol=1e-15)


def test_steps_zero_and_shapes():
    for flow in ("ngf", "pf"):
        out = trajectory(QUAD, P2, THETA0, 0.1, 0, flow=flow)
        assert out.shape == (1, 2)
        np.testing.assert_array_equal(out[0].real, THETA0)
    assert gd(QUAD, P2, THETA0, 0.1, 0).shape == (1, 2)
    assert gd(HALF, [z], 1.0, 0.1, 2).shape == (3, 1)  # a scalar start for one parameter
    assert FLOWS == ("ngf", "igr", "third", "pf", "pf+np", "positive", "flipped", "bea")
    assert set(flows.COMPLEX_FLOWS) == {"pf", "pf+np"}


def test_flow_field_is_a_numba_field():
    f = flows.flow_field(QUAD, P2, "igr")
    np.testing.assert_allclose(f(THETA0, 0.9), -(H_QUAD @ THETA0) - 0.45 * H_QUAD @ H_QUAD @ THETA0, rtol=1e-14)


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(theta0=[1.0, 2.0, 3.0]), InvalidInputError, "shape"),
        (dict(theta0=[[1.0, 2.0]]), InvalidInputError, "shape"),
        (dict(theta0=[np.nan, 1.0]), InvalidInputError, "finite"),
        (dict(theta0=[np.inf, 1.0]), InvalidInputError, "finite"),
        (dict(theta0="ab"), InvalidInputError, "theta0"),
        (dict(h=0.0), InvalidInputError, "step size"),
        (dict(h=-0.1), InvalidInputError, "step size"),
        (dict(h=np.nan), InvalidInputError, "step size"),
        (dict(steps=-1), InvalidInputError, "steps"),
        (dict(steps=2.5), InvalidInputError, "steps"),
        (dict(flow="gf"), UnknownMethodError, "unknown flow"),
        (dict(flow=None), UnknownMethodError, "unknown flow"),
        (dict(flow="bea"), InvalidOrderError, "order"),
        (dict(flow="bea", order=-1), InvalidOrderError, "order"),
        (dict(flow="ngf", order=2), InvalidInputError, "order"),
        (dict(method="rk45"), UnknownMethodError, "method"),
    ],
)
def test_trajectory_bad_inputs(kwargs, exc, match):
    args = dict(theta0=THETA0, h=0.1, steps=3, flow="ngf")
    args.update(kwargs)
    with pytest.raises(exc, match=match) as info:
        trajectory(QUAD, P2, args.pop("theta0"), args.pop("h"), args.pop("steps"), **args)
    assert isinstance(info.value, BEAError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "theta0,h,steps,match",
    [([1.0], 0.1, 2, "shape"), ([1.0, np.nan], 0.1, 2, "finite"), (THETA0, 0, 2, "step size"), (THETA0, 0.1, -3, "steps")],
)
def test_gd_bad_inputs(theta0, h, steps, match):
    with pytest.raises(InvalidInputError, match=match):
        gd(QUAD, P2, theta0, h, steps)


def test_bad_loss_and_params():
    with pytest.raises(BEAError):
        gd(QUAD, [x], THETA0, 0.1, 2)  # y missing from params
    with pytest.raises(BEAError):
        trajectory([QUAD], P2, THETA0, 0.1, 2)


def test_diverging_flow_reports_its_time():
    """θ̇ = +∇(x⁴/4) = x³ from x = 1 blows up at t = 1/2."""
    with pytest.raises(IntegrationError, match="positive") as info:
        trajectory(x**4 / 4, [x], [1.0], 0.1, 10, flow="positive")
    assert info.value.t == pytest.approx(0.5, abs=1e-3)


def test_diverging_gd_reports_the_step():
    """GD on x⁴ from x = 10 with h = 1 overflows within a few steps: the step and time are named."""
    with pytest.raises(IntegrationError, match="iterate") as info:
        gd(x**4, [x], [10.0], 1.0, 20)
    k = info.value.t
    assert k is not None and 1 <= k <= 10 and float(k).is_integer()
    out = gd(x**4, [x], [10.0], 1.0, 20, on_failure="return")
    assert not np.isfinite(out[int(k), 0]) and np.all(np.isnan(out[int(k) + 1 :]))
    assert np.all(np.isfinite(out[: int(k)]))


# --------------------------------------------------------------------------------------------------
# critical points, zero eigen-components, hλ exactly 1 and 2 (issue 11: a ZeroDivisionError there)
# --------------------------------------------------------------------------------------------------

ALL_FLOWS = [("ngf", None), ("igr", None), ("third", None), ("bea", 3), ("pf", None), ("pf+np", None),
             ("positive", None), ("flipped", None)]


def _linear_rates(flow, order, lam, h):
    """The rate r(λ) of each flow on a quadratic (θ − θ* = Σ c_i u_i, c_i' = r(λ_i) c_i): BEA order
    n is −λ Σ_{k≤n} (hλ)^k/(k+1) (NGF n = 0, IGR 1, third 2); positive +λ; flipped +λ on the
    largest λ, −λ elsewhere.  (The PF is GD: handled by the caller.)"""
    n = {"ngf": 0, "igr": 1, "third": 2}.get(flow, order)
    if flow == "positive":
        return lam
    if flow == "flipped":
        return np.where(lam == lam.max(), lam, -lam)
    return -lam * sum((h * lam) ** k / (k + 1) for k in range(n + 1))


def _quadratic_expected(flow, order, A, b, theta0, h, steps):
    """Every flow on ½θᵀAθ + bᵀθ in closed form, in the eigenbasis of A around the minimiser θ*
    (A invertible); the PF and PF+NP (T = 0) are GD exactly (Remark 3.1)."""
    if flow in ("pf", "pf+np"):
        return gd_linear(A, b, theta0, h, steps)
    lam, U = np.linalg.eigh(A)
    star = -np.linalg.solve(A, b)
    c0 = U.T @ (np.asarray(theta0, float) - star)
    t = h * np.arange(steps + 1)
    return star + (np.exp(np.outer(t, _linear_rates(flow, order, lam, h))) * c0) @ U.T


@pytest.mark.parametrize("flow,order", ALL_FLOWS)
@pytest.mark.parametrize(
    "E,A,b,theta0,h",
    [
        # issue 11: from (0, 0) the x eigen-coordinate is 0, hλ = 1.125 and 2.125
        (sp.Rational(9, 4) * x**2 + sp.Rational(17, 4) * y**2 + y, np.diag([4.5, 8.5]), np.array([0.0, 1.0]), [0.0, 0.0], 0.25),
        # hλ exactly 1 and 2, with and without zero eigen-components
        (2 * x**2 + 4 * y**2, np.diag([4.0, 8.0]), np.zeros(2), [0.3, -0.2], 0.25),
        (2 * x**2 + 4 * y**2, np.diag([4.0, 8.0]), np.zeros(2), [0.0, -0.2], 0.25),
        (2 * x**2 + 4 * y**2, np.diag([4.0, 8.0]), np.zeros(2), [0.3, 0.0], 0.25),
    ],
    ids=["issue11", "hl1-2", "hl1-2-zero-x", "hl1-2-zero-y"],
)
def test_every_flow_at_zero_components_and_h_lambda_one_and_two(flow, order, E, A, b, theta0, h):
    """Every flow and GD on quadratics whose start has a zero eigen-coordinate (the ZeroDivisionError
    of issue 11 in the integrator's initial step) and with hλ exactly 1 and 2: the closed forms.
    At hλ = 1 the PF coordinate is GD's 0 to within the floor ε (module docstring)."""
    steps = 4
    ref = _quadratic_expected(flow, order, A, b, theta0, h, steps)
    np.testing.assert_allclose(gd(E, P2, theta0, h, steps), gd_linear(A, b, theta0, h, steps), rtol=1e-15, atol=1e-15)
    out = trajectory(E, P2, theta0, h, steps, flow=flow, order=order)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(out.real, ref, rtol=1e-8, atol=1e-10 * scale)
    if flow in ("pf", "pf+np"):
        np.testing.assert_allclose(out.imag, 0.0, atol=1e-8 * scale)


@pytest.mark.parametrize("flow,order", ALL_FLOWS)
@pytest.mark.parametrize(
    "E,theta_star,h",
    [
        ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, [3.0, 2.0], 0.01),  # Himmelblau minimum
        (ROSEN, [1.0, 1.0], 0.001),  # Rosenbrock minimum, hλ₀ ≈ 1.0
        (x**2 - y**2 + y**4 / 4, [0.0, 0.0], 0.1),  # a saddle
        (x**2 / 2 + x**4 / 4 + y**2, [0.0, 0.0], 1.0),  # hλ exactly 1 and 2 at the minimum
    ],
    ids=["himmelblau", "rosenbrock", "saddle", "hl1-2"],
)
def test_every_flow_stays_at_a_critical_point(flow, order, E, theta_star, h):
    """g(θ*) = 0 exactly: GD and every flow (every field vanishes with g) stay at θ* — to rounding
    for the BEA fields, whose compiled expanded polynomials vanish there only up to ~1e-16."""
    np.testing.assert_array_equal(gd(E, P2, theta_star, h, 3), np.tile(theta_star, (4, 1)))
    out = trajectory(E, P2, theta_star, h, 3, flow=flow, order=order)
    np.testing.assert_allclose(out, np.tile(np.asarray(theta_star, out.dtype), (4, 1)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("flow,order", ALL_FLOWS)
def test_every_flow_on_a_non_quadratic_with_h_lambda_one_and_two(flow, order):
    """E = x²/2 + x⁴/4 + y² from (0, 1) at h = 1: g_x = 0 keeps x = 0 exactly, where hλ_x = 1 and
    T = 0; the y-coordinate is a quadratic with hλ_y = 2 — PF = GD = (−1)^k, the other flows the
    1-D closed form with λ = 2 (flipped: y is the top direction)."""
    E = x**2 / 2 + x**4 / 4 + y**2
    h, steps = 1.0, 4
    out = trajectory(E, P2, [0.0, 1.0], h, steps, flow=flow, order=order)
    assert np.all(out[:, 0] == 0.0)
    if flow in ("pf", "pf+np"):
        expected = (-1.0) ** np.arange(steps + 1)
        np.testing.assert_allclose(out[:, 1].imag, 0.0, atol=1e-8)
    else:
        rate = _linear_rates(flow, order, np.array([1.0, 2.0]), h)[1]
        expected = np.exp(rate * h * np.arange(steps + 1))
    np.testing.assert_allclose(out[:, 1].real, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(gd(E, P2, [0.0, 1.0], h, steps)[:, 1], expected if flow == "pf" else (-1.0) ** np.arange(steps + 1))


def test_blowing_up_pf_fails_fast_with_its_time():
    """Rosenbrock from (1.05, 1.1) at hλ₀ = 2.6 (notebook 03): the PF blows up near GD step 20.
    It is reported by the magnitude guard (MAX_NORM) with its time, not after ~10⁶ shrinking
    steps; the fixed-branch field integrated directly stalls at its cut and is stopped early too
    (it took 10⁶ steps and ≈ 100 s before)."""
    theta0 = np.array([1.05, 1.1])
    lam0 = np.linalg.eigvalsh(np.array([[2 + 1200 * 1.05**2 - 400 * 1.1, -400 * 1.05], [-400 * 1.05, 200.0]])).max()
    h = 2.6 / lam0
    with pytest.raises(IntegrationError, match="max_norm") as info:
        trajectory(ROSEN, P2, theta0, h, 40, flow="pf")
    assert 15 * h < info.value.t < 25 * h
    sol = bea.solve_ode(bea.flow_field(ROSEN, P2, "pf"), theta0.astype(complex), h * np.arange(41), h,
                        method="dop853", rtol=1e-10, atol=1e-12, on_failure="return")
    assert sol.status == 5 and sol.nsteps <= 20_000 and 0 < sol.t_fail < 40 * h
