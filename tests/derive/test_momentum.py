"""Heavy-ball momentum (seed 002, Eq. 20): its modified equation on the slow manifold.

Independent routes: closed forms from the literature for the first two terms; the exact linear
theory (dominant root of ζ² − (1+m−z)ζ + m) for every principal coefficient; momentum iterates in
mpmath/numpy against the flow of the modified field (GBS in mpmath), locally and globally.
"""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import bea
from bea import BEAError, modified_series, rooted_trees
from bea.derive.methods import InvalidMethodError, InvalidMomentumError, LinearMultistep, Momentum
from bea.derive.momentum import coefficients, iterate, modified_field, slow_manifold_velocity
from bea.testing import assert_local_order, fit_order, integrate_mp, local_errors

x, y = sp.symbols("x y")
LOSS = x**2 * y / 2 + x**3 / 3 + y**4 / 12 + x * y
THETA0 = [0.3, -0.7]
m = sp.Symbol("m")


def test_leading_term_and_first_correction_closed_form():
    c = coefficients(1)  # symbolic m
    assert sp.simplify(c[bea.RootedTree((1,))] - 1 / (1 - m)) == 0
    # F([•]) = f'f = Hg for f = −∇E, so f_1 = c([•]) Hg = −(1+m)/(2(1−m)³) Hg
    assert sp.simplify(c[bea.RootedTree((1, 2))] + (1 + m) / (2 * (1 - m) ** 3)) == 0
    mf = modified_field(LOSS, [x, y], m, order=1)
    g = sp.Matrix([sp.diff(LOSS, v) for v in (x, y)])
    H = sp.hessian(LOSS, (x, y))
    assert sp.simplify(mf.terms[0] + g / (1 - m)) == sp.zeros(2, 1)
    assert sp.simplify(mf.terms[1] + (1 + m) / (2 * (1 - m) ** 3) * H * g) == sp.zeros(2, 1)
    # the same, exactly, for a rational m
    c9 = coefficients(1, Fraction(9, 10))
    assert c9[bea.RootedTree((1,))] == 10 and c9[bea.RootedTree((1, 2))] == -Fraction(19, 10) / (2 * Fraction(1, 10) ** 3) == -950


def test_zero_momentum_is_gradient_descent():
    a, b = modified_series(6, Momentum(0)), modified_series(6, "gd")
    for k in range(1, 8):
        for t in rooted_trees(k):
            assert a.coefficient(t) == b.coefficient(t)


@pytest.mark.parametrize("mv", [Fraction(1, 2), Fraction(9, 10), Fraction(1, 3)])
def test_principal_coefficients_from_the_linear_recursion(mv):
    """On E = λθ²/2 momentum is θ_{n+1} = (1+m−z)θ_n − mθ_{n−1}, z = hλ; on the slow manifold
    θ_{n+1} = ζ(z)θ_n with ζ the root → 1 as z → 0, i.e. the rate log ζ(z)/h. Its Taylor series in z
    must be Σ_k c(ladder_{k+1})(−1)^{k+1} z^{k+1}."""
    z = sp.Symbol("z")
    M = sp.Rational(mv.numerator, mv.denominator)
    zeta = ((1 + M - z) + sp.sqrt((1 + M - z) ** 2 - 4 * M)) / 2
    order = 6
    ser = sp.series(sp.log(zeta), z, 0, order + 2).removeO()
    s = modified_series(order, Momentum(mv))
    for k in range(order + 1):
        c = s.coefficient(tuple(range(1, k + 3 - 1)))  # ladder with k+1 nodes
        assert sp.Rational(c.numerator, c.denominator) * (-1) ** (k + 1) == ser.coeff(z, k + 1)


def test_principal_coefficients_symbolic_in_m():
    z = sp.Symbol("z")
    zeta = ((1 + m - z) + sp.sqrt((1 + m - z) ** 2 - 4 * m)) / 2
    # expand log ζ by its ODE-free route: ζ is analytic at z = 0 with ζ(0) = 1 for m < 1
    ser = sp.series(sp.log(zeta.subs(m, sp.Rational(1, 5))), z, 0, 4).removeO()
    c = coefficients(2)
    for k in range(3):
        ladder = bea.RootedTree(range(1, k + 2))
        assert sp.simplify(c[ladder].subs(m, sp.Rational(1, 5)) * (-1) ** (k + 1) - ser.coeff(z, k + 1)) == 0


@pytest.mark.parametrize("mv", [Fraction(1, 2), Fraction(9, 10)])
@pytest.mark.parametrize("order", [0, 1, 2])
def test_local_error_against_momentum_iterates(mv, order):
    """θ_{−1} = φ_{−h}(θ0) on the flow, θ_1 by Eq. 20 in mpmath, against φ_h(θ0): O(h^{order+2})."""
    mf = bea.modified_field(LOSS, [x, y], order, method=Momentum(mv))
    result = assert_local_order(mf, theta0=THETA0, sharp=True)
    assert abs(result.slope - (order + 2)) < 0.25


def test_wrong_momentum_correction_is_detected():
    mf = modified_field(LOSS, [x, y], Fraction(1, 2), order=1)
    bad = bea.ModifiedField(mf.loss, mf.params, mf.h, [mf.terms[0], mf.terms[1] * sp.Rational(11, 10)], mf.series)
    with pytest.raises(AssertionError, match="does not match"):
        assert_local_order(bad, theta0=THETA0)
    # and GD's own field is not momentum's
    gd_field = bea.modified_field(LOSS, [x, y], 1)
    hs = [2.0**-k / 8 for k in range(5, 9)]
    errs = local_errors(gd_field, THETA0, hs, method=Momentum(Fraction(1, 2)))
    assert fit_order(hs, errs) < 1.3


def _flow_at(mf, T, h):
    field = sp.lambdify((mf.params, mf.h), list(mf.field), "mpmath")
    with mp.workdps(30):
        out = integrate_mp(lambda u: field(u, mp.mpf(h)), [mp.mpf(v) for v in THETA0], T, dps=30, steps=4)
    return np.array([float(v) for v in out])


@pytest.mark.parametrize("order", [1, 2])
def test_global_error_from_the_slow_manifold(order):
    """Iterates started on the slow manifold follow the order-n field with global error O(h^{n+1});
    the usual start v0 = 0 leaves the manifold: O(h) error, whatever n."""
    mv, T = Fraction(1, 2), 0.5
    mf = modified_field(LOSS, [x, y], mv, order=order)
    Ns = [16, 32, 64, 128]
    hs = [T / N for N in Ns]
    on, off = [], []
    for N, h in zip(Ns, hs):
        target = _flow_at(mf, T, h)
        v0 = slow_manifold_velocity(LOSS, [x, y], THETA0, h, mv, order=order + 2)
        on.append(np.linalg.norm(iterate(LOSS, [x, y], THETA0, h, mv, N, v0=v0)[-1] - target))
        off.append(np.linalg.norm(iterate(LOSS, [x, y], THETA0, h, mv, N)[-1] - target))
    assert abs(fit_order(hs, on) - (order + 1)) < 0.25, on
    assert 0.5 < fit_order(hs, off) < 1.25, off  # O(h) (pre-asymptotic at the largest h)
    assert off[-1] > 10 * on[-1]


@pytest.mark.parametrize("order", [0, 1, 2])
def test_slow_manifold_velocity_is_the_backward_flow(order):
    """v0 = θ0 − φ_{−h}(θ0), the B-series of φ_{−1} against mpmath backward integration."""
    mv = Fraction(1, 2)
    mf = modified_field(LOSS, [x, y], mv, order=order + 2)  # reference accurate to O(h^{order+4})
    field = sp.lambdify((mf.params, mf.h), list(mf.field), "mpmath")
    hs = [2.0**-k for k in range(6, 10)]
    errs = []
    for h in hs:
        with mp.workdps(30):
            back = integrate_mp(lambda u: field(u, mp.mpf(h)), [mp.mpf(v) for v in THETA0], -h, dps=30)
            exact = [float(mp.mpf(a) - b) for a, b in zip(THETA0, back)]
        errs.append(np.linalg.norm(slow_manifold_velocity(LOSS, [x, y], THETA0, h, mv, order=order) - exact))
    assert abs(fit_order(hs, errs) - (order + 2)) < 0.3, errs


def test_method_keyword_and_symbolic_m_agree():
    a = bea.modified_field(LOSS, [x, y], 2, method=Momentum(Fraction(1, 3)))
    b = modified_field(LOSS, [x, y], Fraction(1, 3), order=2)
    c = modified_field(LOSS, [x, y], m, order=2)
    for ta, tb, tc in zip(a.terms, b.terms, c.terms):
        assert sp.expand(ta - tb) == sp.zeros(2, 1)
        assert sp.simplify(tc.subs(m, sp.Rational(1, 3)) - ta) == sp.zeros(2, 1)
    assert a.gradient_notation(0) == "-3/2 g"
    assert a.method == Momentum("1/3")


@pytest.mark.parametrize("bad", [1, 1.0, -0.1, 1.5, 2, float("nan"), float("inf"), "x", None, True, [0.5]])
def test_momentum_outside_the_unit_interval_is_refused(bad):
    with pytest.raises(InvalidMomentumError) as info:
        Momentum(bad)
    assert isinstance(info.value, BEAError) and isinstance(info.value, ValueError)
    assert "momentum" in str(info.value)
    with pytest.raises(InvalidMomentumError):
        modified_field(LOSS, [x, y], bad, order=1)


def test_numerical_momentum_needs_a_number():
    with pytest.raises(InvalidMomentumError, match="numeric"):
        iterate(LOSS, [x, y], THETA0, 0.1, m, 3)
    with pytest.raises(bea.InvalidInputError):
        iterate(LOSS, [x, y], THETA0, -0.1, 0.5, 3)
    with pytest.raises(bea.InvalidInputError):
        iterate(LOSS, [x, y], [1.0], 0.1, 0.5, 3)


def test_iterate_is_eq_20():
    out = iterate(LOSS, [x, y], THETA0, 0.1, 0.9, 3)
    grad = sp.lambdify([(x, y)], [sp.diff(LOSS, v) for v in (x, y)], "numpy")
    th, v = np.array(THETA0), np.zeros(2)
    for k in range(3):
        v = 0.9 * v - 0.1 * np.array(grad(th))
        th = th + v
        assert np.allclose(out[k + 1], th, rtol=1e-15, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# the same machinery for other linear multistep methods
# ------------------------------------------------------------------------------------------------

AB2 = LinearMultistep([0, -1, 1], [Fraction(-1, 2), Fraction(3, 2), 0], name="ab2")  # explicit
BDF2 = LinearMultistep([Fraction(1, 2), -2, Fraction(3, 2)], [0, 0, 1], name="bdf2")  # implicit


@pytest.mark.parametrize("lmm", [AB2, BDF2], ids=["ab2", "bdf2"])
def test_second_order_multistep_methods(lmm):
    """f_1 = 0 and f_2 = −C_3/ρ'(1) y''' (y''' = f'f'f + f''(f,f)), C_3 the classical error constant
    Σ j³α_j/6 − Σ j²β_j/2; the flow matches the actual multistep step to O(h^{n+2})."""
    C3 = sum(Fraction(j**3) * a for j, a in zip(lmm.offsets, lmm.alpha)) / 6 - sum(
        Fraction(j**2) * b for j, b in zip(lmm.offsets, lmm.beta)
    ) / 2
    drho = sum(j * a for j, a in zip(lmm.offsets, lmm.alpha))
    s = modified_series(2, lmm)
    assert s.coefficient((1,)) == 1 and s.coefficient((1, 2)) == 0
    assert s.coefficient((1, 2, 3)) == -C3 / drho
    assert s.coefficient((1, 2, 2)) == -C3 / drho  # c(t) multiplies F(t); y''' has f''(f,f) once
    for n in (1, 2):
        r = assert_local_order(bea.modified_field(LOSS, [x, y], n, method=lmm), theta0=THETA0, sharp=True)
        assert abs(r.slope - (n + 2)) < 0.25


def test_bad_multistep_methods():
    with pytest.raises(InvalidMethodError, match="alpha"):
        LinearMultistep([1, 1], [1, 0])  # Σ α ≠ 0
    with pytest.raises(InvalidMethodError, match="nonzero"):
        LinearMultistep([1, -2, 1], [0, 1, 0])  # ρ'(1) = 0
    with pytest.raises(InvalidMethodError, match="equal length"):
        LinearMultistep([1, -1], [1])
    with pytest.raises(InvalidMethodError, match="distinct"):
        LinearMultistep([1, -1], [1, 0], offsets=[0, 0])
