"""bea.testing itself: the strategies generate what they promise, the reference methods are right,
and the assertion helpers pass correct claims and fail wrong ones."""

import subprocess
import sys
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea.errors import IntegrationError
from bea.derive.methods import Momentum, get_method
from bea.testing import (
    REGIMES,
    LossCase,
    QuadraticCase,
    assert_local_order,
    assert_matches_gd,
    integrate_mp,
    multistep_step_mp,
    points,
    polynomial_losses,
    quadratics,
    rk_step_mp,
    step_sizes,
)

x, y = sp.symbols("x y")


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------


@given(st.data(), st.integers(1, 4), st.integers(1, 5))
def test_polynomial_losses_depend_on_every_param(data, n, deg):
    min_deg = data.draw(st.integers(1, deg))
    case = data.draw(polynomial_losses(n, deg, min_degree=min_deg))
    E, params = case
    assert isinstance(case, LossCase) and len(params) == n
    assert E.free_symbols == set(params)
    poly = sp.Poly(E, *params)
    assert min_deg <= poly.total_degree() <= deg
    for c in poly.coeffs():
        assert c.is_Rational and abs(c.p) <= 3 and c.q <= 4
    assert poly.coeff_monomial(1) == 0
    bea.modified_field(E, params, 1)  # a valid loss for bea


@settings(max_examples=40)
@given(quadratics(3, h=Fraction(1, 5), require=("oscillating", "unstable")))
def test_quadratics_have_the_promised_exact_spectrum(q):
    assert isinstance(q, QuadraticCase)
    E, params = q
    A, Q = q.A, q.eigenvectors
    assert A == A.T and Q.T * Q == sp.eye(3)
    assert A * Q == Q * sp.diag(*q.eigenvalues)
    assert sp.hessian(E, params) == A
    assert sp.Matrix([sp.diff(E, p) for p in params]) == q.gradient()
    z = q.hlambda
    assert any(1 < v < 2 for v in z) and any(v > 2 for v in z)
    assert all(v != 1 and -Fraction(1, 2) < v <= 3 for v in z)
    assert E.free_symbols == set(params)


@given(st.sampled_from(sorted(REGIMES)).flatmap(lambda r: st.tuples(st.just(r), quadratics(2, regimes=(r,)))))
def test_quadratic_regimes(pair):
    regime, q = pair
    lo, hi = REGIMES[regime]
    for z in q.hlambda:
        if regime == "flat":
            assert z == 0
        elif regime == "unstable":
            assert lo < z <= hi
        else:
            assert lo < z < hi


@given(points(3, bound=2.0), points(2, bound=1.0, grid=64), step_sizes(), step_sizes(0.01, 0.1, exact=True))
def test_points_and_steps(p, pg, h, hq):
    assert p.shape == (3,) and p.dtype == np.float64 and np.all(np.abs(p) <= 2.0)
    assert np.all(pg * 64 == np.round(pg * 64))
    assert 2.0**-10 <= h <= 0.25
    assert isinstance(hq, Fraction) and Fraction(1, 100) <= hq <= Fraction(1, 10)


def test_bad_strategy_arguments():
    with pytest.raises(ValueError):
        polynomial_losses(0)
    with pytest.raises(ValueError):
        polynomial_losses(2, 2, min_degree=3)
    with pytest.raises(ValueError, match="regimes"):
        quadratics(2, regimes=("wobbly",))
    with pytest.raises(ValueError):
        quadratics(1, require=("stable", "unstable"))
    with pytest.raises(ValueError):
        quadratics(2, h=0)
    with pytest.raises(ValueError):
        step_sizes(0.5, 0.1)


def test_hypothesis_is_optional_for_users():
    code = (
        "import sys, bea, bea.testing, bea.derive.momentum; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------------
# reference methods
# ------------------------------------------------------------------------------------------------


def _rk4_by_hand(f, y, h):
    k1 = f(y)
    k2 = f([a + h / 2 * b for a, b in zip(y, k1)])
    k3 = f([a + h / 2 * b for a, b in zip(y, k2)])
    k4 = f([a + h * b for a, b in zip(y, k3)])
    return [a + h / 6 * (p + 2 * q + 2 * r + s) for a, p, q, r, s in zip(y, k1, k2, k3, k4)]


def test_rk_step_mp_matches_hand_written_rk4_and_solves_implicit_stages():
    f = lambda u: [u[1], -mp.sin(u[0])]  # noqa: E731  (pendulum)
    with mp.workdps(40):
        y0, h = [mp.mpf("0.7"), mp.mpf("-0.2")], mp.mpf("0.1")
        a, b = rk_step_mp("rk4", f, y0, h), _rk4_by_hand(f, y0, h)
        assert max(abs(u - v) for u, v in zip(a, b)) < mp.mpf(10) ** -38
        # implicit midpoint: y1 = y0 + h f((y0 + y1)/2) to working precision
        y1 = rk_step_mp("implicit_midpoint", f, y0, h)
        mid = f([(u + v) / 2 for u, v in zip(y0, y1)])
        assert max(abs(v - (u + h * w)) for u, v, w in zip(y0, y1, mid)) < mp.mpf(10) ** -35
        # implicit Euler: y1 = y0 + h f(y1)
        y1 = rk_step_mp("implicit_euler", f, y0, h)
        assert max(abs(v - (u + h * w)) for u, v, w in zip(y0, y1, f(y1))) < mp.mpf(10) ** -35


def test_rk_step_mp_reports_non_convergence():
    with mp.workdps(30):
        with pytest.raises(IntegrationError, match="did not converge"):
            rk_step_mp("implicit_euler", lambda u: [-100 * u[0]], [mp.mpf(1)], mp.mpf(1))


def test_multistep_step_mp_is_heavy_ball():
    grad = lambda u: [2 * u[0]]  # noqa: E731
    with mp.workdps(30):
        th0, thm1 = [mp.mpf("0.5")], [mp.mpf("0.6")]
        new = multistep_step_mp(Momentum(Fraction(9, 10)), lambda u: [-g for g in grad(u)], {-1: thm1, 0: th0}, mp.mpf("0.1"))
        expected = th0[0] + mp.mpf("0.9") * (th0[0] - thm1[0]) - mp.mpf("0.1") * grad(th0)[0]
        assert abs(new[0] - expected) < mp.mpf(10) ** -28


def test_integrate_mp_complex_and_backwards():
    with mp.workdps(30):
        y = integrate_mp(lambda u: [mp.mpc(0, 1) * u[0]], [mp.mpc(1)], 1.3, dps=30, steps=8)
        assert abs(y[0] - mp.exp(mp.mpc(0, 1.3))) < mp.mpf(10) ** -25
        y = integrate_mp(lambda u: [-u[0]], [mp.mpf(1)], -0.5, dps=30, steps=4)
        assert abs(y[0] - mp.exp(0.5)) < mp.mpf(10) ** -25


# ------------------------------------------------------------------------------------------------
# assertion helpers
# ------------------------------------------------------------------------------------------------

E2 = x**3 / 3 + x * y**2 / 2 + y**2


def test_assert_local_order_accepts_fields_in_three_forms():
    mf = bea.modified_field(E2, [x, y], 2)
    r = assert_local_order(mf, sharp=True)
    assert abs(r.slope - 4) < 0.3 and len(r.errors) == 4
    # a sympy Matrix with its own h symbol
    k = sp.Symbol("k")
    assert_local_order(mf.field.subs(mf.h, k), E2, [x, y], 2, h=k)
    # a callable (mpmath lists): the NGF −∇E matches GD to O(h²)
    g = sp.lambdify([(x, y)], [-sp.diff(E2, v) for v in (x, y)], "mpmath")
    r = assert_local_order(lambda th, h: g(th), E2, [x, y], 0, sharp=True)
    assert abs(r.slope - 2) < 0.3


def test_assert_local_order_fails_for_a_wrong_claim():
    mf = bea.modified_field(E2, [x, y], 1)
    with pytest.raises(AssertionError, match="does not match"):
        assert_local_order(mf, order=2)  # IGR is not good to O(h^4)
    with pytest.raises(AssertionError, match="sharp"):
        assert_local_order(bea.modified_field(E2, [x, y], 3), order=1, sharp=True)
    with pytest.raises(ValueError):
        assert_local_order(mf.field, order=1)  # no E/params for a bare Matrix


def test_assert_matches_gd():
    q_E = x**2 + y**2 / 100
    params = [x, y]
    theta0, h, steps = [-0.35, -0.2], 1.05, 5
    gd = [np.array(theta0)]
    for _ in range(steps):
        t = gd[-1]
        gd.append(t - h * np.array([2 * t[0], t[1] / 50]))
    gd = np.array(gd)
    assert np.allclose(gd[-1], [0.5636785, -0.17986367])  # design.md §3
    assert assert_matches_gd(gd, q_E, params, theta0, h, steps) < 1e-12
    ngf = lambda th, hh: [-2 * th[0], -th[1] / 50]  # noqa: E731
    with pytest.raises(AssertionError, match="departs from GD at step 1"):
        assert_matches_gd(ngf, q_E, params, theta0, h, steps)
    with pytest.raises(ValueError, match="shape"):
        assert_matches_gd(gd[:3], q_E, params, theta0, h, steps)


def test_default_step_sizes_follow_the_stiffness():
    """A stiff loss gets smaller steps, so the asymptotic slope is still seen."""
    E = 50 * x**2 + x**3 + y**2
    r = assert_local_order(bea.modified_field(E, [x, y], 1), theta0=[0.2, 0.1])
    assert max(r.hs) < 1 / 100


def test_assert_local_order_on_a_modifying_integrator():
    """For f̂ the claim is the method's step on f̂ = exact gradient flow, to O(h^{n+2})."""
    from bea.derive.series import modifying_integrator

    for method, n in (("gd", 2), ("heun", 3)):
        fh = modifying_integrator(n, method).evaluate(E2, [x, y])
        r = assert_local_order(fh, sharp=True)
        assert abs(r.slope - (n + 2)) < 0.3
    # GD's *modified* field is not a modifying integrator: relabelled, the check fails
    mf = bea.modified_field(E2, [x, y], 2)
    fake = modifying_integrator(2).evaluate(E2, [x, y])
    fake = bea.ModifiedField(fake.loss, fake.params, fake.h, mf.terms, fake.series)
    with pytest.raises(AssertionError):
        assert_local_order(fake)


@settings(max_examples=3)
@given(quadratics(1, h=0.1, regimes=("stable",)))
def test_quadratics_read_a_float_step_as_its_decimal(q):
    assert q.h == sp.Rational(1, 10)


def test_hypothesis_profiles_ci_is_deterministic_and_deep_is_deeper():
    """tests/conftest.py: the ``ci`` profile is derandomized (a landing never depends on luck), ``deep``
    draws random examples with a larger budget, and the profile in force is the one
    HYPOTHESIS_PROFILE (else CI) asks for."""
    import os

    ci, dev, deep = (settings.get_profile(p) for p in ("ci", "dev", "deep"))
    assert ci.derandomize and not dev.derandomize and not deep.derandomize
    assert deep.max_examples >= 10 * ci.max_examples and deep.max_examples >= 500
    expected = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    assert settings.default.derandomize == settings.get_profile(expected).derandomize
    assert settings.default.max_examples == settings.get_profile(expected).max_examples
