"""Property tests: the principal flow (seed 002) against backward error analysis.

Independent routes used here, never the engine against itself:
* Taylor coefficients of α(z) = log(1−z)/z by mpmath's numerical differentiation;
* the PF field from a numpy eigendecomposition, expanded in h by a Cauchy integral over complex h;
* elementary differentials from full derivative tensors (sympy derive_by_array + numpy einsum),
  not from bea.derive.symbolic's directional derivatives;
* PF trajectories integrated in mpmath (complex GBS) against exact GD iterates.
"""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea.flows.diagnostics import alpha, alpha_coefficients
from bea.derive.series import modified_series
from bea.testing import assert_matches_gd, points, polynomial_losses, quadratics
from bea.derive.trees import RootedTree, rooted_trees

ORDER = 10  # the tree series is checked to this order (trees with 11 nodes)


# ------------------------------------------------------------------------------------------------
# independent numerical helpers
# ------------------------------------------------------------------------------------------------


def derivative_tensors(E, params, theta, kmax):
    """[∇^1 E, ..., ∇^kmax E] at θ as numpy arrays (full tensors)."""
    out, d = [], E
    subs = dict(zip(params, [sp.Rational(float(v)) for v in theta]))
    for _ in range(kmax):
        d = sp.derive_by_array(d, params)
        out.append(np.array(d.subs(subs).tolist(), dtype=float) if hasattr(d, "tolist") else np.array(float(d)))
    return out


def G(tree, D):
    """G(•) = g, G([t1..tm]) = ∇^{m+1}E(G(t1), ..., G(tm)) by tensor contraction."""
    kids = tree.children
    T = D[len(kids)]
    for c in kids:
        T = np.tensordot(T, G(c, D), axes=([T.ndim - 1], [0]))
    return T


def F(tree, D):
    """Elementary differential of f = −∇E: F(t) = (−1)^{|t|} G(t)."""
    return (-1) ** tree.order * G(tree, D)


def pf_numpy(g, H, h):
    """Σ_i α(hλ_i)(gᵀu_i)u_i (seed 002, Def. 3.2) from numpy's eigh; h may be complex."""
    lam, U = np.linalg.eigh(H)
    a = alpha(np.asarray(h * lam, dtype=complex))
    return U @ (a * (U.T @ g))


def taylor_in_h(fun, pmax, radius, n_points=64):
    """Taylor coefficients 0..pmax of an analytic vector function of h by the Cauchy integral
    (trapezoidal rule on |h| = radius, exponentially accurate)."""
    ks = np.arange(n_points)
    w = np.exp(2j * np.pi * ks / n_points)
    vals = np.array([fun(radius * wk) for wk in w])  # (N, n)
    return [(vals * (w ** (-p))[:, None]).mean(axis=0) / radius**p for p in range(pmax + 1)]


def field_terms_at(mf, theta):
    """Numerical values of mf.terms[k] at θ."""
    fn = sp.lambdify([mf.params], [list(t) for t in mf.terms], "numpy")
    return [np.array(v, dtype=float) for v in fn(list(theta))]


# ------------------------------------------------------------------------------------------------
# (a) α's Taylor coefficients are the principal terms
# ------------------------------------------------------------------------------------------------


def test_alpha_taylor_coefficients_are_the_ladder_coefficients():
    s = modified_series(ORDER)
    with mp.workdps(40):
        log_coeffs = mp.taylor(lambda z: mp.log(1 - z), 0, ORDER + 1)  # numerical differentiation
    exact = alpha_coefficients(ORDER)
    for p in range(ORDER + 1):
        ladder = tuple(range(1, p + 2))
        # F(ladder) = (−1)^{p+1} H^p g, so the coefficient of h^p H^p g is c·(−1)^{p+1}
        from_trees = s.coefficient(ladder) * (-1) ** (p + 1)
        assert from_trees == exact[p]
        assert abs(float(from_trees) - float(log_coeffs[p + 1])) < 1e-25
    # and no other tree of the series is principal: the ladder is the only tree whose
    # elementary differential involves only H and g
    for k in range(1, ORDER + 2):
        assert sum(t.is_ladder() for t in rooted_trees(k)) == 1


def test_alpha_function_expands_into_the_principal_series():
    """α evaluated on a circle of complex z (bea.flows.diagnostics.alpha) -> Taylor coefficients -> −1/(p+1)."""
    coeffs = taylor_in_h(lambda z: np.array([alpha(complex(z))]), ORDER, 0.5)
    for p, c in enumerate(coeffs):
        assert abs(c[0] - float(alpha_coefficients(ORDER)[p])) < 1e-12


@settings(max_examples=6)
@given(polynomial_losses(n_params=2, max_degree=4, min_degree=3))
def test_principal_part_of_concrete_fields(case):
    E, params = case
    order = 6
    pp = modified_series(order).principal_part().evaluate(E, params)
    g = sp.Matrix([sp.diff(E, p) for p in params])
    H = sp.hessian(E, params)
    v = g
    for p, a in enumerate(alpha_coefficients(order)):
        assert sp.expand(pp.terms[p] - sp.Rational(a.numerator, a.denominator) * v) == sp.zeros(2, 1)
        v = H * v


# ------------------------------------------------------------------------------------------------
# (b) PF's expansion in h = principal part of the BEA field; the rest = the non-principal terms
# ------------------------------------------------------------------------------------------------

PMAX = 4
_R = Fraction
# coefficient of G(t) in f_p for the trees containing ∇³E or higher (design.md §1: f_2, f_3, f_4)
NON_PRINCIPAL = {
    0: {},
    1: {},
    2: {(1, 2, 2): _R(-1, 12)},  # −1/12 T(g,g)  (Eq. 8's non-principal third-order term)
    3: {(1, 2, 3, 3): _R(-1, 12), (1, 2, 3, 2): _R(-1, 12)},  # H T(g,g), T(g,Hg)
    4: {
        (1, 2, 3, 4, 4): _R(-3, 40),  # H² T(g,g)
        (1, 2, 3, 4, 3): _R(-1, 10),  # H T(g,Hg)
        (1, 2, 3, 3, 3): _R(-1, 180),  # H Q(g,g,g)
        (1, 2, 3, 4, 2): _R(-1, 20),  # T(g,H²g)
        (1, 2, 3, 3, 2): _R(-1, 120),  # T(g,T(g,g))
        (1, 2, 3, 2, 3): _R(-1, 60),  # T(Hg,Hg)
        (1, 2, 3, 2, 2): _R(1, 120),  # Q(g,g,Hg)
        (1, 2, 2, 2, 2): _R(1, 720),  # P(g,g,g,g)
    },
}


@settings(max_examples=12)
@given(polynomial_losses(n_params=2, max_degree=4, min_degree=3), points(2, bound=1.0, grid=16))
def test_pf_expansion_is_the_principal_part_of_the_modified_field(case, theta):
    E, params = case
    D = derivative_tensors(E, params, theta, PMAX + 2)
    g, H = D[0], D[1]
    lam_max = max(np.max(np.abs(np.linalg.eigvalsh(H))), 1e-3)
    radius = 0.5 / lam_max
    pf_coeffs = taylor_in_h(lambda h: pf_numpy(g, H, h), PMAX, radius)

    series = modified_series(PMAX)
    full = field_terms_at(bea.modified_field(E, params, PMAX), theta)
    principal = field_terms_at(series.principal_part().evaluate(E, params), theta)
    scale = (1 + np.linalg.norm(g)) * (1 + lam_max) ** PMAX
    for p in range(PMAX + 1):
        # the PF coefficient is real and is the principal part of f_p
        assert np.allclose(pf_coeffs[p].imag, 0, atol=1e-9 * scale)
        assert np.allclose(principal[p], pf_coeffs[p].real, atol=1e-9 * scale, rtol=1e-9)
        # the full field differs from it by exactly the non-principal terms of design.md
        # (gradient notation verified by brute-force flow matching), G(t) from full tensors
        nonprincipal = sum((float(c) * G(RootedTree(t), D) for t, c in NON_PRINCIPAL[p].items()), np.zeros(2))
        assert np.allclose(full[p] - pf_coeffs[p].real, nonprincipal, atol=1e-9 * scale, rtol=1e-9)
        # and those are exactly the non-ladder trees of the series
        assert {tuple(t) for t, _ in series.terms(p) if not t.is_ladder()} == set(NON_PRINCIPAL[p])


@settings(max_examples=8)
@given(polynomial_losses(n_params=2, max_degree=3, min_degree=3), points(2, bound=1.0, grid=8))
def test_non_principal_part_vanishes_exactly_on_the_ladder_free_remainder(case, theta):
    """principal + non-principal = full, symbolically (the split loses and duplicates nothing)."""
    E, params = case
    s = modified_series(3)
    full = s.evaluate(E, params)
    pp, npp = s.principal_part().evaluate(E, params), s.non_principal_part().evaluate(E, params)
    for a, b, c in zip(full.terms, pp.terms, npp.terms):
        assert sp.expand(a - b - c) == sp.zeros(2, 1)
    assert npp.terms[0] == sp.zeros(2, 1) and npp.terms[1] == sp.zeros(2, 1)


# ------------------------------------------------------------------------------------------------
# (c) quadratics: the modified field is the principal series, and PF reproduces GD
# ------------------------------------------------------------------------------------------------


@settings(max_examples=15)
@given(quadratics(3, h=Fraction(1, 10), require=("oscillating", "unstable")))
def test_modified_field_of_a_quadratic_is_its_principal_series(q):
    order = 5
    mf = bea.modified_field(q.E, q.params, order)
    npp = modified_series(order).non_principal_part().evaluate(q.E, q.params)
    assert all(t == sp.zeros(3, 1) for t in npp.terms)
    # eigen form: f_p = −Σ_i λ_i^p/(p+1) (gᵀu_i) u_i with the exact eigenpairs of the case
    g, Q = q.gradient(), q.eigenvectors
    for p, term in enumerate(mf.terms):
        eig = Q * sp.diag(*[-(lam**p) / (p + 1) for lam in q.eigenvalues]) * Q.T * g
        assert sp.expand(term - eig) == sp.zeros(3, 1)


def _pf_mp(q):
    """The PF field of a quadratic case in mpmath, from its exact eigenpairs (complex for hλ > 1)."""
    lams = [mp.mpf(sp.Rational(v).p) / sp.Rational(v).q for v in q.eigenvalues]
    U = [[mp.mpf(sp.Rational(q.eigenvectors[i, j]).p) / sp.Rational(q.eigenvectors[i, j]).q for j in range(len(lams))] for i in range(len(lams))]
    A = [[mp.mpf(sp.Rational(v).p) / sp.Rational(v).q for v in row] for row in q.A.tolist()]
    b = [mp.mpf(sp.Rational(v).p) / sp.Rational(v).q for v in q.b]
    n = len(lams)

    def field(theta, h):
        g = [sum(A[i][j] * theta[j] for j in range(n)) + b[i] for i in range(n)]
        out = [mp.mpc(0)] * n
        for k, lam in enumerate(lams):
            z = h * lam
            a = mp.log(1 - mp.mpc(z)) / z if z != 0 else mp.mpf(-1)  # principal branch: +iπ for z > 1
            c = a * sum(U[i][k] * g[i] for i in range(n))
            out = [o + c * U[i][k] for i, o in enumerate(out)]
        return out

    return field


@settings(max_examples=12)
@given(
    quadratics(2, h=Fraction(1, 4), require=("oscillating",)) | quadratics(2, h=Fraction(1, 4), require=("unstable",)),
    points(2, bound=1.0, grid=8),
)
def test_pf_reproduces_gd_on_quadratics(q, theta):
    assert any(z > 1 for z in q.hlambda)
    assert_matches_gd(_pf_mp(q), q.E, q.params, theta, float(q.h), 4, rtol=1e-12, atol=1e-14)


def test_assert_matches_gd_has_teeth_for_pf_on_a_non_quadratic():
    """On a cubic loss the PF is *not* GD: the same check fails."""
    x, y = sp.symbols("x y")
    E = x**3 / 3 + x * y + y**2
    params = (x, y)
    gfun = sp.lambdify([params], [sp.diff(E, p) for p in params], "mpmath")
    Hfun = sp.lambdify([params], sp.hessian(E, params), "mpmath")

    def field(theta, h):
        lam, U = mp.eigsy(mp.matrix([[complex(v).real for v in row] for row in Hfun(theta).tolist()]))
        g = gfun(theta)
        out = [mp.mpc(0)] * 2
        for k in range(2):
            z = h * lam[k]
            a = mp.log(1 - mp.mpc(z)) / z
            c = a * sum(U[i, k] * g[i] for i in range(2))
            out = [o + c * U[i, k] for i, o in enumerate(out)]
        return out

    with pytest.raises(AssertionError, match="departs from GD"):
        assert_matches_gd(field, E, params, [0.5, -0.3], 0.1, 3, rtol=1e-8, atol=1e-10)


@settings(max_examples=4)
@given(quadratics(2, h=Fraction(1, 4), require=("oscillating", "unstable"), rotate=True), points(2, grid=8))
def test_bea_trajectory_pf_reproduces_gd_on_quadratics(q, theta):
    """The same claim through bea.trajectory (numba integrator), when that module exists."""
    if not hasattr(bea, "trajectory"):
        flows = pytest.importorskip("bea.flows")
        trajectory = flows.trajectory
    else:
        trajectory = bea.trajectory
    traj = trajectory(q.E, list(q.params), theta, float(q.h), 4, flow="pf")
    assert_matches_gd(traj, q.E, q.params, theta, float(q.h), 4, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# (d) PF+NP (Eq. 14) = order-2 BEA truncation + principal terms of order ≥ 3
# ------------------------------------------------------------------------------------------------


@settings(max_examples=12)
@given(polynomial_losses(n_params=2, max_degree=4, min_degree=3), points(2, bound=1.0, grid=16))
def test_pf_plus_np_is_the_order_two_truncation_up_to_principal_h3_terms(case, theta):
    E, params = case
    D = derivative_tensors(E, params, theta, 3)
    g, H, T = D
    lam_max = max(np.max(np.abs(np.linalg.eigvalsh(H))), 1e-2)
    Tgg = np.einsum("ijk,j,k->i", T, g, g)
    f = field_terms_at(bea.modified_field(E, params, 2), theta)
    hs = 0.05 / lam_max * 2.0 ** -np.arange(4)
    resid = []
    for h in hs:
        pfnp = pf_numpy(g, H, h).real - h**2 / 12 * Tgg  # Eq. 14
        bea2 = f[0] + h * f[1] + h**2 * f[2]
        # the difference is exactly the principal tail −Σ_{p≥3} h^p H^p g/(p+1) ...
        tail = pf_numpy(g, H, h).real + g + h / 2 * H @ g + h**2 / 3 * H @ H @ g
        assert np.allclose(pfnp - bea2, tail, atol=1e-12 * (1 + np.linalg.norm(g)))
        # ... which starts with −h³/4 H³g
        lead = -(h**3) / 4 * np.linalg.matrix_power(H, 3) @ g
        assert np.linalg.norm(pfnp - bea2 - lead) <= 2 * h**4 * lam_max**4 * np.linalg.norm(g) + 1e-13
        resid.append(np.linalg.norm(pfnp - bea2))
    if np.linalg.norm(np.linalg.matrix_power(H, 3) @ g) > 1e-6 * lam_max**3 * np.linalg.norm(g) > 0:
        slope = np.polyfit(np.log(hs), np.log(resid), 1)[0]
        assert abs(slope - 3) < 0.1


def test_bea_flows_pf_field_agrees_with_the_eigendecomposition():
    """Cross-check bea.flows.pf_field (when present) against this file's numpy PF, with and without NP."""
    flows = pytest.importorskip("bea.flows")
    if not hasattr(flows, "pf_field"):
        pytest.skip("bea.flows has no pf_field")
    x, y = sp.symbols("x y")
    E = x**3 / 3 + x * y + 2 * y**2 - x**2 * y / 2
    theta = np.array([0.4, -0.3])
    D = derivative_tensors(E, (x, y), theta, 3)
    for h in (0.05, 0.3, 0.9):  # the last has hλ_max > 1: a complex PF
        ours = pf_numpy(D[0], D[1], h)
        assert np.allclose(flows.pf_field(E, [x, y], theta, h), ours, rtol=1e-10, atol=1e-12)
        np_term = h**2 / 12 * np.einsum("ijk,j,k->i", D[2], D[0], D[0])
        assert np.allclose(flows.pf_field(E, [x, y], theta, h, nonprincipal=True), ours - np_term, rtol=1e-10, atol=1e-12)
