"""Tests of bea.flows.diagnostics against independent routes: mpmath at 50 digits, the defining property
exp(h·r) = 1 − hλ of the PF rates, the Taylor series of log(1 − z) by mpmath, design.md values."""

from __future__ import annotations

import cmath
import math
from fractions import Fraction

import mpmath as mp
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bea.errors import BEAError, InvalidInputError, InvalidOrderError
from bea.flows.diagnostics import (
    CLASSES,
    SERIES_RADIUS,
    alpha,
    alpha_coefficients,
    alpha_real_scalar,
    alpha_scalar,
    classify,
    log1m,
    pf_rates,
)

mp.mp.dps = 50
REL = 4e-16  # real z: observed ≤ 1 ulp
REL_C = 9e-16  # complex z: observed ≤ 2.5 ulp (complex log and division each round)


def alpha_mp(z) -> complex:
    """log(1 − z)/z at 50 digits, principal branch (mpmath's log(negative) = log|x| + iπ)."""
    z = mp.mpc(z) if isinstance(z, complex) else mp.mpf(z)
    if z == 0:
        return -1.0 + 0j
    return complex(mp.log1p(-z) / z)  # log1p: no loss of digits for tiny (even subnormal) z


def rel_err(a, b) -> float:
    return abs(complex(a) - b) / abs(b)


finite_real = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------- α against mpmath


@settings(max_examples=300, deadline=None)
@given(x=st.one_of(finite_real, st.floats(-0.2, 0.2), st.floats(0.9, 1.1), st.floats(1.9, 2.1)).filter(lambda x: x != 1.0))
def test_alpha_real_against_mpmath(x):
    ref = alpha_mp(x)
    val = alpha(x)
    assert rel_err(val, ref) <= REL
    if x < 1.0:
        assert isinstance(val, np.floating) and ref.imag == 0.0
    else:
        assert isinstance(val, np.complexfloating)
        assert math.isclose(val.imag, math.pi / x, rel_tol=1e-15)  # principal branch +iπ
    assert rel_err(alpha_scalar(x), ref) <= REL
    assert abs(alpha_real_scalar(x) - ref.real) <= REL * abs(ref)  # Re α(2) = 0: error relative to |α|


@settings(max_examples=300, deadline=None)
@given(
    r=st.one_of(st.floats(0.0, 0.3), st.floats(0.3, 3.0), st.floats(3.0, 1e6)),
    theta=st.floats(-math.pi, math.pi),
)
def test_alpha_complex_against_mpmath(r, theta):
    z = cmath.rect(r, theta)
    if z == 1.0:
        return
    ref = alpha_mp(z)
    assert rel_err(alpha(z), ref) <= REL_C
    assert rel_err(alpha_scalar(z), ref) <= REL_C


def test_alpha_near_one_and_two():
    for z in [1 - 1e-12, 1 + 1e-12, 1 - 2**-40, 2.0, 2 + 1e-9, 0.5 + 1e-13j, 1 + 1e-10j]:
        assert rel_err(alpha(z), alpha_mp(z)) <= REL_C, z


def test_continuity_across_switch_radii():
    """On the switch circles the two formulas that meet there agree to a few ulp."""
    from bea.flows.alpha import _complex_log1m, _series

    thetas = np.linspace(-math.pi, math.pi, 73)
    z = SERIES_RADIUS * np.exp(1j * thetas)
    with np.errstate(all="ignore"):
        direct = _complex_log1m(z) / z
    series = _series(z)
    np.testing.assert_allclose(series, direct, rtol=1e-15)
    np.testing.assert_allclose(series, [alpha_mp(complex(v)) for v in z], rtol=REL_C)
    x = np.array([-SERIES_RADIUS, SERIES_RADIUS])
    np.testing.assert_allclose(_series(x), np.log1p(-x) / x, rtol=1e-15)
    # |z| = 0.5: the cancellation-free log1p form against the direct principal log
    z = 0.5 * np.exp(1j * thetas)
    u = -z
    log1p_form = 0.5 * np.log1p(u.real * (2 + u.real) + u.imag**2) + 1j * np.arctan2(u.imag, 1 + u.real)
    np.testing.assert_allclose(log1p_form, np.log(1.0 - z), rtol=1e-15)
    # and just inside / outside each radius both sides are accurate
    for radius in (SERIES_RADIUS, 0.5):
        for zz in np.concatenate([radius * (1 - 1e-13) * np.exp(1j * thetas), radius * (1 + 1e-13) * np.exp(1j * thetas)]):
            assert rel_err(alpha(zz), alpha_mp(complex(zz))) <= REL_C


def test_alpha_special_values():
    assert alpha(1.0) == -np.inf and isinstance(alpha(1.0), np.floating)
    a = alpha(1.0, complex_output=True)
    assert a.real == -np.inf and a.imag == 0.0
    b = alpha(1 + 0j)
    assert b.real == -np.inf and b.imag == 0.0
    assert alpha_scalar(1.0) == complex(-np.inf, 0.0)
    assert alpha_real_scalar(1.0) == -np.inf
    assert alpha(0.0) == -1.0 and alpha(0j) == -1.0
    assert alpha(np.inf) == 0.0 and alpha(-np.inf) == 0.0
    out = alpha(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]))
    assert not np.any(np.isnan(out))
    assert out[2] == -np.inf
    np.testing.assert_allclose(out[4], 1j * math.pi / 2, rtol=1e-15)  # |1 − 2| = 1: purely imaginary


def test_alpha_dtype_rule_and_shapes():
    assert alpha(np.array([-1.0, 0.5, 1.0])).dtype == np.float64
    assert alpha(np.array([-1.0, 0.5, 1.5])).dtype == np.complex128
    assert alpha(np.array([0.5]), complex_output=True).dtype == np.complex128
    assert alpha(np.array([0.5 + 0j])).dtype == np.complex128
    assert alpha(np.arange(2)).dtype == np.float64  # integers are real input
    z = np.linspace(-3, 0.9, 12).reshape(3, 4)
    assert alpha(z).shape == (3, 4)
    np.testing.assert_array_equal(alpha(z).ravel(), alpha(z.ravel()))
    # complex input on the cut agrees with the real principal branch for either sign of zero
    assert alpha(complex(3.0, 0.0)) == alpha(3.0) == alpha(complex(3.0, -0.0))
    with pytest.raises(InvalidInputError):
        alpha("abc")


def test_log1m_principal_branch():
    np.testing.assert_allclose(log1m(3.0), math.log(2.0) + 1j * math.pi, rtol=1e-16)
    assert log1m(1.0) == -np.inf
    assert log1m(0.25) == math.log1p(-0.25)


def test_scalar_versions_inside_njit():
    @numba.njit
    def use(zs):
        out = np.empty(zs.shape[0], dtype=np.complex128)
        for i in range(zs.shape[0]):
            out[i] = alpha_scalar(zs[i])
        return out

    zs = np.array([-5.0, -0.05, 0.0, 0.05, 0.7, 1.0, 1.3, 2.0, 7.5])
    np.testing.assert_allclose(use(zs), alpha(zs), rtol=REL)
    zc = zs + 0.3j
    np.testing.assert_allclose(use(zc), alpha(zc), rtol=REL_C)


# ----------------------------------------------------------------------------- Taylor coefficients


@pytest.mark.parametrize("order", [0, 1, 5, 12])
def test_alpha_coefficients_against_mpmath_taylor(order):
    coeffs = alpha_coefficients(order)
    assert len(coeffs) == order + 1 and all(isinstance(c, Fraction) for c in coeffs)
    # log(1 − z) = Σ_{q≥1} l_q z^q, so α = log(1 − z)/z has a_p = l_{p+1}: an independent route
    log_taylor = mp.taylor(lambda z: mp.log(1 - z), 0, order + 1)
    for p, c in enumerate(coeffs):
        assert abs(mp.mpf(c.numerator) / c.denominator - log_taylor[p + 1]) < mp.mpf(10) ** -30
    # and the series itself reproduces α for small z
    z = Fraction(1, 50)
    approx = float(sum(c * z**p for p, c in enumerate(alpha_coefficients(20))))
    assert rel_err(approx, alpha_mp(0.02)) < 1e-16


def test_alpha_coefficients_bad_order():
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InvalidOrderError):
            alpha_coefficients(bad)


# ----------------------------------------------------------------------------- PF rates


def test_pf_rate_reference_value():
    """design.md §3: PF rate in u₀ at h = 1.05, λ₀ = 2 is 0.090772 + 2.991993i."""
    r = pf_rates([2.0, 0.02], 1.05)
    assert r.dtype == np.complex128
    assert abs(r[0] - (0.090772 + 2.991993j)) < 1e-6
    assert r[1].imag == 0.0 and r[1].real < 0


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(-50, 50).filter(lambda v: v == 0 or abs(v) > 1e-300), h=st.floats(1e-3, 3.0))
def test_pf_rates_reproduce_gd_factor(lam, h):
    """exp(h·r) = 1 − hλ (Remark 3.1: the PF of a quadratic is GD at t = kh)."""
    if h * lam == 1.0:
        return
    r = pf_rates(lam, h)
    factor = 1.0 - h * lam
    assert abs(np.exp(h * r) - factor) <= 1e-13 * max(1.0, abs(factor))
    if lam != 0.0:
        assert rel_err(r, lam * alpha_mp(h * lam)) < 1e-14


def test_pf_rates_one_step_and_errors():
    r = pf_rates([1.0], 1.0)
    assert r[0].real == -np.inf and r[0].imag == 0.0
    with pytest.raises(InvalidInputError):
        pf_rates([1.0], 0.0)
    with pytest.raises(InvalidInputError):
        pf_rates([1.0 + 1j], 0.1)
    with pytest.raises(InvalidInputError):
        pf_rates([np.nan], 0.1)


# ----------------------------------------------------------------------------- classification


def test_classify_every_class():
    h = 0.5
    z = np.array([-1.0, 0.0, 0.4, 1.0, 1.5, 2.0, 2.5])
    labels = classify(z / h, h)
    assert list(labels) == list(CLASSES)


def test_classify_matches_rate_signs():
    """Independent route: the class follows from the sign of Re r and whether r is real."""
    rng = np.random.default_rng(0)
    h = 0.7
    lams = rng.uniform(-2, 5, 200)
    rates = pf_rates(lams, h)
    for lam, r, c in zip(lams, rates, classify(lams, h)):
        stable = "stable" if r.real < 0 else "unstable"
        kind = "real" if r.imag == 0 else "complex"
        assert c == f"{kind}-{stable}", (lam, r, c)


def test_classify_design_example():
    # H = diag(2, 0.02): h = 1.05 → hλ₀ = 2.1 (GD unstable in u₀); h = 0.9 → hλ₀ = 1.8
    assert list(classify([2.0, 0.02], 1.05)) == ["complex-unstable", "real-stable"]
    assert list(classify([2.0, 0.02], 0.9)) == ["complex-stable", "real-stable"]
    assert classify(2.0, 0.5) == "one-step" and classify(2.0, 1.0) == "complex-neutral"
    assert classify(2.0 + 1e-12, 0.5, tol=1e-9) == "one-step"
    assert classify(2.0 + 1e-12, 0.5) == "complex-stable"


def test_classify_bad_inputs():
    for args in [([1.0], -1.0), ([1j], 1.0), ([1.0], np.nan)]:
        with pytest.raises(InvalidInputError) as info:
            classify(*args)
        assert isinstance(info.value, (BEAError, ValueError))
    with pytest.raises(InvalidInputError):
        classify([1.0], 1.0, tol=-1.0)
