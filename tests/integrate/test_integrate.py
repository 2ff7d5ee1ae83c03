"""Tests of bea.integrate: every check goes through an independent route (scipy, closed forms,
order conditions by fixed-step convergence, known blow-up times).

The jitted right-hand sides live at module level so that each is compiled once per session.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import types

from bea.errors import BEAError, IntegrationError, InvalidInputError, UnknownMethodError
from bea.integrate import DOP853, DOPRI5, INTEGRATORS, Solution, solve
from bea.flows.diagnostics import alpha_scalar
from conftest import rosenbrock_ngf

METHOD_NAMES = ["dopri5", "dop853"]


# ----------------------------------------------------------------------------- fields (module level)


@numba.njit
def damped_oscillator(y, p):
    """x'' + p x' + x + x³/10 = 0 (nonlinear)."""
    out = np.empty_like(y)
    out[0] = y[1]
    out[1] = -p * y[1] - y[0] - 0.1 * y[0] ** 3
    return out


A_REAL = np.array([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
A_CPLX = np.array([[-0.5 + 2.0j, 0.3, 0.0], [0.1j, 0.2 - 1.0j, 0.5], [0.0, -0.3 + 0.1j, -1.0 + 3.0j]])
RATES = np.array([-1.0 + 2.991993j, 0.090772 + 2.991993j, -0.02 + 0.0j])


@numba.njit
def linear_real(y, p):
    return p * (A_REAL @ y)


@numba.njit
def linear_cplx(y, p):
    return p * (A_CPLX @ y)


@numba.njit
def diagonal_rates(y, p):
    """The principal flow of a quadratic has this form: y_i' = r_i y_i, r_i complex."""
    return RATES * y


@numba.njit
def rotate_complex(y, p):
    """Returns complex for real input: y' = (−p + i) y."""
    return (-p + 1.0j) * y


@numba.njit
def square(y, p):
    return y * y


@numba.njit
def fast_growth(y, p):
    return p * y


@numba.njit
def nan_field(y, p):
    return y * np.nan


@numba.njit
def wrong_shape(y, p):
    return np.zeros(y.shape[0] + 1)


@numba.njit(types.float64[:](types.float64[:], types.float64))
def explicit_signature(y, p):
    out = np.empty(y.shape[0])
    for i in range(y.shape[0]):
        out[i] = -p * y[i]
    return out


def scipy_reference(rhs, y0, t_eval, p):
    sol = scipy.integrate.solve_ivp(
        lambda t, y: rhs(np.ascontiguousarray(y), p), (t_eval[0], t_eval[-1]), y0,
        method="DOP853", t_eval=t_eval, rtol=1e-12, atol=1e-14,
    )
    assert sol.success
    return sol.y.T


# ----------------------------------------------------------------------------- tableaux


@pytest.mark.parametrize("meth", [DOPRI5, DOP853], ids=lambda m: m.name)
def test_tableau_consistency(meth):
    np.testing.assert_allclose(meth.A.sum(axis=1), meth.c, atol=1e-14)
    assert math.isclose(meth.b.sum(), 1.0, abs_tol=1e-14)
    np.testing.assert_allclose(meth.E.sum(axis=1), 0.0, atol=1e-13)
    assert np.all(np.triu(meth.A) == 0)


def _fixed_step(A, b, f, y0, T, N):
    """Plain numpy explicit RK with N fixed steps (independent of the numba code)."""
    h = T / N
    y = np.array(y0, dtype=float)
    s = len(b)
    for _ in range(N):
        K = np.zeros((s, y.size))
        for i in range(s):
            K[i] = f(y + h * (A[i, :i] @ K[:i]))
        y = y + h * (b @ K)
    return y


def _observed_order(A, b, N=(8, 16)):
    # y' = [y1, -sin(y0)] (pendulum), reference by scipy at tight tolerance
    f = lambda y: np.array([y[1], -np.sin(y[0])])  # noqa: E731
    y0, T = np.array([1.0, 0.0]), 2.0
    ref = scipy.integrate.solve_ivp(lambda t, y: f(y), (0, T), y0, method="DOP853", rtol=1e-14, atol=1e-16).y[:, -1]
    e = [np.linalg.norm(_fixed_step(A, b, f, y0, T, n) - ref) for n in N]
    return math.log2(e[0] / e[1])


def _embedded_tableau(meth, row):
    """The embedded weights b̂ = b − E[row] as an (s+1)-stage tableau (stage s is ŷ's FSAL point)."""
    s = meth.stages
    A = np.zeros((s + 1, s + 1))
    A[:s, :s] = meth.A
    A[s, :s] = meth.b
    b_ext = np.append(meth.b, 0.0)
    return A, b_ext - meth.E[row]


@pytest.mark.parametrize(
    "meth,row,order",
    [(DOPRI5, None, 5), (DOPRI5, 0, 4), (DOP853, None, 8), (DOP853, 0, 5), (DOP853, 1, 3)],
    ids=["dopri5", "dopri5-embedded4", "dop853", "dop853-embedded5", "dop853-embedded3"],
)
def test_tableau_order_by_convergence(meth, row, order):
    if row is None:
        A, b = meth.A, meth.b
    else:
        A, b = _embedded_tableau(meth, row)
    N = (4, 8) if order == 8 else (8, 16)
    p = _observed_order(A, b, N)
    assert order - 0.5 < p < order + 1.2, p


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_rosenbrock_gradient_flow_against_scipy(method):
    t_eval = np.linspace(0.0, 2.0, 11)
    y0 = np.array([-1.2, 1.0])
    sol = solve(rosenbrock_ngf, y0, t_eval, method=method, rtol=1e-12, atol=1e-14)
    ref = scipy_reference(rosenbrock_ngf, y0, t_eval, 0.0)
    assert sol.success and sol.y.dtype == np.float64
    np.testing.assert_allclose(sol.y, ref, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sol.t, t_eval)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_damped_oscillator_against_scipy(method):
    t_eval = np.linspace(0.0, 20.0, 41)
    y0 = np.array([2.0, 0.0])
    sol = solve(damped_oscillator, y0, t_eval, 0.1, method=method, rtol=1e-12, atol=1e-14)
    ref = scipy_reference(damped_oscillator, y0, t_eval, 0.1)
    np.testing.assert_allclose(sol.y, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("kind", ["real", "complex"])
def test_linear_system_against_expm(method, kind):
    A, rhs = (A_REAL, linear_real) if kind == "real" else (A_CPLX, linear_cplx)
    y0 = np.array([1.0, -0.5, 0.25]) * (1.0 if kind == "real" else (1.0 - 0.5j))
    t_eval = np.array([0.0, 0.1, 0.7, 1.0, 2.5, 4.0])
    p = 0.8
    sol = solve(rhs, y0, t_eval, p, method=method, rtol=1e-11, atol=1e-13)
    exact = np.array([scipy.linalg.expm(p * A * t) @ y0 for t in t_eval])
    assert sol.y.dtype == (np.float64 if kind == "real" else np.complex128)
    np.testing.assert_allclose(sol.y, exact, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_complex_diagonal_rates(method):
    y0 = np.array([1.0 + 0.0j, -0.35 + 0.1j, 2.0])
    t_eval = np.linspace(0.0, 5.0, 26)
    sol = solve(diagonal_rates, y0, t_eval, method=method, rtol=1e-12, atol=1e-14)
    exact = np.exp(np.outer(t_eval, RATES)) * y0
    np.testing.assert_allclose(sol.y, exact, rtol=1e-9)


def test_complex_equals_real_split():
    """A complex system integrated directly and as its real 2n-dimensional split agree."""
    y0 = np.array([1.0 - 0.5j, 0.3 + 0.2j, -0.1j])
    t_eval = np.linspace(0, 3, 7)
    direct = solve(linear_cplx, y0, t_eval, 1.0, rtol=1e-12, atol=1e-14).y
    M = np.block([[A_CPLX.real, -A_CPLX.imag], [A_CPLX.imag, A_CPLX.real]])
    exact_split = np.array([scipy.linalg.expm(M * t) @ np.concatenate([y0.real, y0.imag]) for t in t_eval])
    np.testing.assert_allclose(direct.real, exact_split[:, :3], atol=1e-10)
    np.testing.assert_allclose(direct.imag, exact_split[:, 3:], atol=1e-10)


def test_real_state_promoted_by_complex_field():
    t_eval = np.array([0.0, 1.0, 2.0])
    sol = solve(rotate_complex, np.array([1.0, 2.0]), t_eval, 0.5)
    assert sol.y.dtype == np.complex128
    exact = np.exp((-0.5 + 1.0j) * t_eval)[:, None] * np.array([1.0, 2.0])
    np.testing.assert_allclose(sol.y, exact, rtol=1e-8)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_tolerance_sweep(method):
    """The global error decreases with the tolerance, roughly proportionally (Brouwer-like)."""
    y0 = np.array([2.0, 0.0])
    t_eval = np.array([0.0, 10.0])
    ref = scipy_reference(damped_oscillator, y0, np.array([0.0, 10.0]), 0.1)[-1]
    tols = [1e-4, 1e-6, 1e-8, 1e-10]
    errs = []
    for tol in tols:
        y = solve(damped_oscillator, y0, t_eval, 0.1, method=method, rtol=tol, atol=tol).y[-1]
        errs.append(np.max(np.abs(y - ref)))
    errs = np.array(errs)
    assert np.all(np.diff(np.log10(errs)) < -0.5), errs  # strictly better at every tighter tolerance
    slope = np.polyfit(np.log10(tols), np.log10(errs), 1)[0]
    assert 0.6 < slope < 1.4, (slope, errs)
    assert np.all(errs < 1e3 * np.array(tols)), errs


@numba.njit
def scaled_oscillator(y, p):
    """y' = p·(y₁, −y₀ − 0.1y₁): one damped oscillation, on the time scale 1/p."""
    out = np.empty_like(y)
    out[0] = p * y[1]
    out[1] = -p * y[0] - 0.1 * p * y[1]
    return out


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("rtol", [1e-4, 1e-7])
def test_step_control_is_time_scale_invariant_and_matches_scipy(method, rtol):
    """The error estimate is h·Σ E_j k_j: the same problem on the time scales 1/p = 100 (steps ≫ 1)
    and 1/p = 0.01 (steps ≪ 1) takes the same number of steps, that number is within 25% of
    scipy's RK45/DOP853 (the same pairs and norm), and the error is at the tolerance.  Dropping the
    factor h changes the step count by ~4× between the two scales."""
    y0 = np.array([1.0, 0.0])
    counts = []
    for p in (0.01, 100.0):
        T = 20.0 / p
        ref = scipy_reference(scaled_oscillator, y0, np.array([0.0, T]), p)[-1]
        sol = solve(scaled_oscillator, y0, [0.0, T], p, method=method, rtol=rtol, atol=rtol * 1e-3)
        assert np.abs(sol.y[-1] - ref).max() < 10 * rtol
        theirs = scipy.integrate.solve_ivp(lambda t, u: scaled_oscillator(u, p), (0.0, T), y0,
                                           method={"dopri5": "RK45", "dop853": "DOP853"}[method], rtol=rtol, atol=rtol * 1e-3)
        stages = {"dopri5": 6, "dop853": 12}[method]
        scipy_steps = (theirs.nfev - 2) / stages
        assert abs(sol.nsteps - scipy_steps) <= 0.25 * scipy_steps, (p, sol.nsteps, scipy_steps)
        counts.append(sol.nsteps)
    assert abs(counts[0] - counts[1]) <= 0.1 * max(counts), counts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    y0=st.lists(st.complex_numbers(max_magnitude=10.0, allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
    times=st.lists(st.floats(0.0, 6.0, allow_nan=False), min_size=1, max_size=8, unique=True),
    method=st.sampled_from(METHOD_NAMES),
)
def test_property_diagonal_flow_at_arbitrary_output_times(y0, times, method):
    t_eval = np.unique(np.array([0.0] + times))
    y0 = np.array(y0, dtype=complex)
    sol = solve(diagonal_rates, y0, t_eval, method=method, rtol=1e-11, atol=1e-12)
    exact = np.exp(np.outer(t_eval, RATES)) * y0
    np.testing.assert_allclose(sol.y, exact, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize(
    "t_eval",
    [
        [0.0, 5e-324],  # the deep-profile falsifying example of the property test above
        [0.0, 5e-324, 1e-323, 2.0],
        [1.0, float(np.nextafter(1.0, 2.0))],
        [3.0, float(np.nextafter(3.0, 4.0)), float(np.nextafter(np.nextafter(3.0, 4.0), 4.0)), 4.0],
    ],
    ids=["subnormal", "subnormal-then-normal", "one-ulp", "two-ulps-then-normal"],
)
def test_output_times_an_ulp_apart_or_subnormal_are_reached(method, t_eval):
    """Property: every strictly increasing output grid is landed on, however close its times — a
    step clipped to the next output time moves t (t < t_out), so it is no step-size underflow, and
    a subnormal step is not mistaken for one (0.1·h is 0 there).  Checked against the closed form
    exp((t − t0)·rates)·y0 of the diagonal linear flow."""
    y0 = np.array([1.0 + 0.5j, 2.0j, -3.0])
    t_eval = np.array(t_eval)
    sol = solve(diagonal_rates, y0, t_eval, method=method, rtol=1e-11, atol=1e-12)
    assert sol.success, sol.message
    exact = np.exp(np.outer(t_eval - t_eval[0], RATES)) * y0
    np.testing.assert_allclose(sol.y, exact, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_blow_up_between_output_times_is_still_reported(method):
    """The other side of the output-grid fix: y' = y² from y0 = 1 blows up at t = 1.  Output times
    just before the pole are reached (1/(1 − t) in closed form), and the run asked to go on to
    t = 1.5 still stops there (step-size underflow or divergence), not at the next output time."""
    t_eval = [0.0, 1.0 - 1e-6, float(np.nextafter(1.0 - 1e-6, 2.0)), 1.5]
    sol = solve(square, [1.0], t_eval, method=method, rtol=1e-12, atol=1e-12, on_failure="return")
    np.testing.assert_allclose(sol.y[1:3, 0], 1.0 / (1.0 - np.array(t_eval[1:3])), rtol=1e-5)
    assert not sol.success and sol.status in (2, 3, 5), (sol.status, sol.message)
    assert 1.0 - 1e-6 < sol.t_fail <= 1.0 + 1e-9 and np.isnan(sol.y[3, 0])


def test_output_grid_does_not_change_the_answer():
    y0 = np.array([-1.2, 1.0])
    coarse = solve(rosenbrock_ngf, y0, [0.0, 3.0], rtol=1e-11, atol=1e-13).y[-1]
    fine = solve(rosenbrock_ngf, y0, np.linspace(0.0, 3.0, 301), rtol=1e-11, atol=1e-13).y[-1]
    np.testing.assert_allclose(coarse, fine, atol=1e-9)


def test_single_output_time_returns_y0():
    sol = solve(rosenbrock_ngf, [0.5, 0.5], [1.0])
    assert sol.success and sol.nsteps == 0
    np.testing.assert_array_equal(sol.y, [[0.5, 0.5]])


def test_nonzero_start_time_and_first_step():
    sol = solve(fast_growth, [1.0], [2.0, 3.0], -1.0, first_step=1e-3, rtol=1e-10)
    np.testing.assert_allclose(sol.y[-1], [math.exp(-1.0)], rtol=1e-8)


@pytest.mark.parametrize("meth", [DOPRI5, DOP853], ids=lambda m: m.name)
def test_work_counters(meth):
    sol = solve(damped_oscillator, [2.0, 0.0], [0.0, 5.0], 0.1, method=meth.name)
    assert sol.nsteps == sol.naccepted + sol.nrejected
    # initial f(y0) and the hinit trial point, then s−1 new stages per attempted step plus rhs(ŷ):
    # always for dopri5 (it enters the error), only for accepted steps for dop853
    if meth is DOPRI5:
        assert sol.nfev == 2 + 6 * sol.nsteps
    else:
        assert sol.nfev == 2 + 11 * sol.nsteps + sol.naccepted


def test_explicit_signature_rhs_uses_generic_driver():
    sol = solve(explicit_signature, np.array([1.0, 2.0]), [0.0, 1.0], 2.0, rtol=1e-10)
    np.testing.assert_allclose(sol.y[-1], np.array([1.0, 2.0]) * math.exp(-2.0), rtol=1e-8)


H_DIAG = np.array([2.0, 0.02])


@numba.njit
def pf_quadratic(theta, h):
    """Principal flow θ̇ = Σ α(hλ_i)(gᵀu_i)u_i of E = θ₁² + 0.01θ₂² (H = diag(2, 0.02), u_i = e_i)."""
    out = np.empty(theta.shape[0], dtype=np.complex128)
    for i in range(theta.shape[0]):
        out[i] = alpha_scalar(h * H_DIAG[i]) * H_DIAG[i] * theta[i]
    return out


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("h,steps,expected", [(1.05, 5, (0.5636785, -0.17986367)), (0.9, 200, (-1.45e-20, -5.28844e-3))])
def test_principal_flow_reproduces_gd_on_quadratic(method, h, steps, expected):
    """design.md §3 (Remark 3.1 of seed 002): PF sampled at t = kh equals GD on a quadratic."""
    theta0 = np.array([-0.35, -0.2])
    t_eval = h * np.arange(steps + 1)
    sol = solve(pf_quadratic, theta0, t_eval, h, method=method, rtol=1e-12, atol=1e-14)
    assert sol.y.dtype == np.complex128
    gd = [theta0]
    for _ in range(steps):
        gd.append(gd[-1] - h * H_DIAG * gd[-1])
    gd = np.array(gd)
    np.testing.assert_allclose(sol.y.real, gd, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol.y.imag, 0.0, atol=1e-9)
    np.testing.assert_allclose(sol.y[-1].real, expected, rtol=1e-6, atol=1e-12)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_blow_up_of_y_squared(method):
    """y' = y², y(0) = 1: y = 1/(1 − t) blows up at t = 1."""
    with pytest.raises(IntegrationError) as info:
        solve(square, [1.0], [0.0, 0.5, 2.0], method=method)
    assert abs(info.value.t - 1.0) < 1e-3
    assert "t = 0.99" in str(info.value) or "t = 1.0" in str(info.value)
    sol = solve(square, [1.0], [0.0, 0.5, 0.9, 2.0], method=method, on_failure="return")
    assert sol.status in (2, 3) and not sol.success
    np.testing.assert_allclose(sol.y[:3, 0], [1.0, 2.0, 10.0], rtol=1e-7)
    assert np.isnan(sol.y[3, 0])
    assert abs(sol.t_fail - 1.0) < 1e-3


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_overflow_is_divergence_with_its_time(method):
    """y' = 1000 y: the field 1000·e^{1000 t} overflows float64 at t = log(1.797e308/1000)/1000 ≈ 0.702875."""
    sol = solve(fast_growth, [1.0], [0.0, 1.0], 1000.0, method=method, on_failure="return")
    assert sol.status == 3
    assert abs(sol.t_fail - math.log(np.finfo(float).max / 1000.0) / 1000.0) < 1e-6
    assert np.isnan(sol.y[-1, 0])
    with pytest.raises(IntegrationError, match="non-finite"):
        solve(fast_growth, [1.0], [0.0, 1.0], 1000.0, method=method)


def test_non_finite_field_at_start():
    with pytest.raises(IntegrationError) as info:
        solve(nan_field, [1.0, 2.0], [0.5, 1.0])
    assert info.value.t == 0.5
    sol = solve(nan_field, [1.0, 2.0], [0.5, 1.0], on_failure="return")
    assert sol.status == 3 and np.all(np.isnan(sol.y[1]))


def test_max_steps():
    with pytest.raises(IntegrationError, match="maximum number of steps") as info:
        solve(rosenbrock_ngf, [-1.2, 1.0], [0.0, 10.0], max_steps=20)
    assert 0.0 < info.value.t < 10.0
    sol = solve(rosenbrock_ngf, [-1.2, 1.0], [0.0, 1e-6, 10.0], max_steps=20, on_failure="return")
    assert sol.status == 1 and sol.nsteps == 20
    assert np.all(np.isfinite(sol.y[:2])) and np.all(np.isnan(sol.y[2]))
    assert isinstance(sol, Solution) and "maximum" in sol.message


@numba.njit
def ramp_and_decay(y, p):
    """y₀' = 1, y₁' = −y₁: y₀(t) = t from 0, y₁(t) = e^{−t}."""
    out = np.empty_like(y)
    out[0] = 1.0
    out[1] = -y[1]
    return out


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_zero_component_under_pure_relative_tolerance(method):
    """A component that starts at 0 under atol ≈ 0 (the PF of a quadratic uses 1e-300): the
    initial-step estimate divided by a vanishing weight (issue 11: ZeroDivisionError) — now a
    positive first step and the closed form (t, e^{−t}) to the tolerance."""
    sol = solve(ramp_and_decay, [0.0, 1.0], [0.0, 1.0, 2.0], 0.0, method=method, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(sol.y, [[0.0, 1.0], [1.0, math.exp(-1.0)], [2.0, math.exp(-2.0)]], rtol=1e-8)
    assert sol.nsteps < 2000


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_max_norm_guard_stops_with_the_time(method):
    """y' = y from 1: |y| passes 1e10 at t = ln 1e10 = 23.03; the guard stops the first accepted
    step beyond it (status 4), reports that time, and raises with ``.t`` by default."""
    sol = solve(fast_growth, [1.0], [0.0, 100.0], 1.0, method=method, max_norm=1e10, on_failure="return")
    assert sol.status == 4 and "max_norm" in sol.message
    assert math.log(1e10) <= sol.t_fail <= math.log(1e10) + 2.0
    assert abs(sol.y_last[0] - math.exp(sol.t_fail)) < 1e-6 * math.exp(sol.t_fail)
    with pytest.raises(IntegrationError, match="max_norm") as info:
        solve(fast_growth, [1.0], [0.0, 100.0], 1.0, method=method, max_norm=1e10)
    assert info.value.t == sol.t_fail
    # without the guard the same run reaches t = 100 (e^100 is finite)
    assert solve(fast_growth, [1.0], [0.0, 100.0], 1.0, method=method).success


@numba.njit
def sliding(y, p):
    """y' = −sign(y): reaches 0 at t = y(0), then chatters across the discontinuity."""
    out = np.empty_like(y)
    out[0] = -1.0 if y[0] > 0.0 else 1.0
    return out


def test_stalled_run_fails_fast_with_its_time():
    """A field discontinuous at y = 0 pins the step size once y reaches 0 at t = 1; the run stops
    (status 5) within a few thousand steps instead of spending max_steps = 10⁶."""
    sol = solve(sliding, [1.0], [0.0, 3.0], method="dop853", on_failure="return")
    assert sol.status == 5 and "stalled" in sol.message
    assert abs(sol.t_fail - 1.0) < 1e-3 and sol.nsteps <= 20_000
    with pytest.raises(IntegrationError, match="stalled") as info:
        solve(sliding, [1.0], [0.0, 3.0])
    assert abs(info.value.t - 1.0) < 1e-3


@numba.njit
def drift_and_counter(y, p):
    """y₀' = y₁ (a rate the hook sets), y₁' = 0, y₂' = 0 (a counter of accepted steps)."""
    out = np.zeros_like(y)
    out[0] = y[1]
    return out


@numba.njit
def count_steps(y, p):
    y[2] += 1.0
    return True


@numba.njit
def stop_after_one(y, p):
    return y[0] < 0.5


def test_on_accept_hook_runs_once_per_accepted_step():
    """on_accept sees every accepted state once and may rewrite constant components in place; a
    hook that returns False stops the run (status 3) at that time."""
    sol = solve(drift_and_counter, [0.0, 1.0, 0.0], [0.0, 0.3, 1.0], method="dopri5", on_accept=count_steps)
    assert sol.success and sol.y[-1, 2] == sol.naccepted
    np.testing.assert_allclose(sol.y[:, 0], [0.0, 0.3, 1.0], rtol=1e-12)
    sol = solve(drift_and_counter, [0.0, 1.0, 0.0], [0.0, 0.3, 1.0], method="dopri5", on_accept=stop_after_one,
                on_failure="return")
    assert sol.status == 3 and 0.5 <= sol.t_fail <= 1.0 and sol.y_last[0] >= 0.5
    with pytest.raises(InvalidInputError, match="on_accept"):
        solve(drift_and_counter, [0.0, 1.0, 0.0], [0.0, 1.0], on_accept=lambda y, p: True)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(y0=np.ones((2, 1))), "1-D"),
        (dict(y0=[]), "1-D"),
        (dict(y0=[1.0, np.nan]), "finite"),
        (dict(y0=["a", "b"]), "numeric"),
        (dict(t_eval=[0.0, 1.0, 1.0]), "strictly increasing"),
        (dict(t_eval=[1.0, 0.0]), "strictly increasing"),
        (dict(t_eval=[[0.0, 1.0]]), "1-D"),
        (dict(t_eval=[0.0, np.inf]), "finite"),
        (dict(rtol=0.0), "rtol"),
        (dict(atol=-1.0), "atol"),
        (dict(atol=np.nan), "atol"),
        (dict(max_steps=0), "max_steps"),
        (dict(max_steps=2.5), "max_steps"),
        (dict(first_step=-0.1), "first_step"),
        (dict(on_failure="ignore"), "on_failure"),
        (dict(p=1j), "real"),
        (dict(p=np.inf), "finite"),
        (dict(max_norm=0.0), "max_norm"),
        (dict(max_norm=np.nan), "max_norm"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = dict(rhs=rosenbrock_ngf, y0=[1.0, 1.0], t_eval=[0.0, 1.0])
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match) as info:
        solve(**args)
    assert isinstance(info.value, (BEAError, ValueError))


def test_unknown_method():
    with pytest.raises(UnknownMethodError, match="dopri5"):
        solve(rosenbrock_ngf, [1.0, 1.0], [0.0, 1.0], method="rk45")
    assert set(INTEGRATORS) == {"dopri5", "dop853"}


def test_rhs_must_be_jitted_and_shape_checked():
    with pytest.raises(InvalidInputError, match="njit"):
        solve(lambda y, p: -y, [1.0], [0.0, 1.0])
    with pytest.raises(InvalidInputError, match="shape"):
        solve(wrong_shape, [1.0, 2.0], [0.0, 1.0])


def test_methods_registry_is_a_deprecated_alias_of_integrators():
    """bea.integrate.METHODS (a name shared with bea.derive.methods.METHODS) still works, with a warning."""
    import bea.integrate as bi

    with pytest.warns(DeprecationWarning, match="INTEGRATORS"):
        assert bi.METHODS is bi.INTEGRATORS
    with pytest.raises(AttributeError):
        bi.NO_SUCH_NAME  # noqa: B018
