"""Drift-adjusted learning rates (seed 002 Eqs. 18–21) against plain numpy loops with explicit H."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from bea.dal import DALResult, dal, dal_learning_rate, dal_momentum, dal_p, dal_per_parameter, hvp_kernel
from bea.errors import BEAError, IntegrationError, InvalidInputError

x, y = sp.symbols("x y")
P2 = [x, y]
QUAD = x**2 + y**2 / 100
H = np.diag([2.0, 0.02])
THETA0 = np.array([-0.35, -0.2])
ROSEN = (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosen_grad(t):
    a, b = t
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def rosen_hess(t):
    a, b = t
    return np.array([[2 - 400 * (b - a * a) + 800 * a * a, -400 * a], [-400 * a, 200.0]])


def numpy_dal(grad, hess, theta0, steps, *, p=1.0, c=2.0, m=0.0, per_parameter=False):
    th, v = np.array(theta0, float), np.zeros(len(theta0))
    out, lrs = [th], []
    for _ in range(steps):
        g = grad(th)
        Hg = hess(th) @ g
        lr = c / (np.abs(Hg) / np.abs(g)) ** p if per_parameter else c / (np.linalg.norm(Hg) / np.linalg.norm(g)) ** p
        v = m * v - lr * g
        th = th + v
        out.append(th)
        lrs.append(lr)
    return np.array(out), np.array(lrs)


def test_dal_reference_value():
    """DAL (Eq. 18) on H = diag(2, 0.02) at θ0: ‖Hĝ‖ = 1.99998 → h = 1.000016 (design.md §3)."""
    g = H @ THETA0
    hg_norm = np.linalg.norm(H @ g) / np.linalg.norm(g)
    assert hg_norm == pytest.approx(1.99998, abs=2e-5)  # design.md rounds 1.9999673 to 1.99998
    assert dal_learning_rate(QUAD, P2, THETA0) == pytest.approx(2 / hg_norm, rel=1e-14)
    assert dal_learning_rate(QUAD, P2, THETA0) == pytest.approx(1.000016, abs=5e-7)
    r = dal(QUAD, P2, THETA0, 5)
    assert isinstance(r, DALResult) and r.method == "dal"
    assert r.lrs[0] == pytest.approx(1.000016, abs=5e-7)
    assert r.drift_normalized[0] == pytest.approx(hg_norm, rel=1e-14)


def _numpy_derivatives(E):
    g = sp.lambdify([P2], [sp.diff(E, v) for v in P2], "numpy")
    Hf = sp.lambdify([P2], sp.hessian(E, P2), "numpy")
    return (lambda t: np.array(g(t), float)), (lambda t: np.array(Hf(t), float))


# ‖Hĝ‖ < 1 here, so DAL-p with p < 1 takes *smaller* steps than 2/λ and converges
MILD = ((1 - x) ** 2 + (y - x**2) ** 2) / 20


@pytest.mark.parametrize("p,E", [(1.0, ROSEN), (0.5, MILD), (0.25, MILD)])
def test_dal_matches_numpy_on_quadratic_and_nonquadratic(p, E):
    ref, lrs = numpy_dal(lambda t: H @ t, lambda t: H, THETA0, 20, p=p)
    r = dal(QUAD, P2, THETA0, 20, p=p)
    np.testing.assert_allclose(r.thetas, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.lrs, lrs, rtol=1e-12)
    grad, hess = _numpy_derivatives(E)
    ref, lrs = numpy_dal(grad, hess, [-1.2, 1.0], 30, p=p)
    assert np.all(np.isfinite(ref))
    r = dal_p(E, P2, [-1.2, 1.0], 30, p=p)
    np.testing.assert_allclose(r.thetas, ref, rtol=1e-9)
    np.testing.assert_allclose(r.lrs, lrs, rtol=1e-9)
    assert r.method == ("dal" if p == 1.0 else "dal-p")
    f = sp.lambdify([P2], E, "numpy")
    np.testing.assert_allclose(r.losses, [f(t) for t in r.thetas], rtol=1e-12)


def test_dal_momentum_eqs_20_21():
    """v_t = m v_{t−1} − g/(2‖Hĝ‖) (Eq. 21 as printed), θ_t = θ_{t−1} + v_t."""
    ref, lrs = numpy_dal(rosen_grad, rosen_hess, [-1.2, 1.0], 40, c=0.5, m=0.9)
    r = dal_momentum(ROSEN, P2, [-1.2, 1.0], 40, m=0.9)
    assert r.method == "dal-momentum" and r.numerator == 0.5
    np.testing.assert_allclose(r.thetas, ref, rtol=1e-9)
    np.testing.assert_allclose(r.lrs, lrs, rtol=1e-9)
    grad, hess = _numpy_derivatives(MILD)
    ref2, _ = numpy_dal(grad, hess, [-1.2, 1.0], 10, c=2.0, m=0.5, p=0.5)
    np.testing.assert_allclose(dal(MILD, P2, [-1.2, 1.0], 10, momentum=0.5, p=0.5).thetas, ref2, rtol=1e-9)


def test_per_parameter_dal():
    """On a diagonal quadratic r_j = λ_j, so h_j = 2/λ_j; elsewhere the numpy loop."""
    r = dal_per_parameter(QUAD, P2, THETA0, 3)
    np.testing.assert_allclose(r.lrs, [[1.0, 100.0]] * 3, rtol=1e-14)
    assert r.lrs.shape == (3, 2) and r.method == "dal-per-parameter"
    ref, lrs = numpy_dal(rosen_grad, rosen_hess, [-1.2, 1.0], 25, per_parameter=True)
    r = dal_per_parameter(ROSEN, P2, [-1.2, 1.0], 25)
    np.testing.assert_allclose(r.thetas, ref, rtol=1e-9)
    np.testing.assert_allclose(r.lrs, lrs, rtol=1e-9)


@pytest.mark.parametrize("p,lams", [(0.5, (0.5, 0.02)), (2.0, (3.0, 1.5))])
def test_per_parameter_dal_power_p(p, lams):
    """Per-parameter DAL-p uses h_j = c/r_j^p with the power p (not c/r_j): on a diagonal quadratic
    r_j = λ_j, so h_j = 2/λ_j^p in closed form; off the diagonal, the numpy loop with the explicit H.
    (The eigenvalues keep every run stable: λ_j·2/λ_j^p < 2.)"""
    lam = np.array(lams)
    E = lams[0] * x**2 / 2 + lams[1] * y**2 / 2
    r = dal_per_parameter(E, P2, THETA0, 4, p=p)
    np.testing.assert_allclose(r.lrs, np.tile(2.0 / lam**p, (4, 1)), rtol=1e-13)
    th = THETA0.copy()
    for k in range(4):
        th = th - 2.0 / lam**p * lam * th
        np.testing.assert_allclose(r.thetas[k + 1], th, rtol=1e-12)
    A = np.array([[lams[0], 0.3 * lams[1]], [0.3 * lams[1], lams[1]]])
    E2 = (A[0, 0] * x**2 + 2 * A[0, 1] * x * y + A[1, 1] * y**2) / 2
    ref, lrs = numpy_dal(lambda t: A @ t, lambda t: A, THETA0, 6, p=p, per_parameter=True)
    r2 = dal_per_parameter(E2, P2, THETA0, 6, p=p)
    np.testing.assert_allclose(r2.lrs, lrs, rtol=1e-10)
    np.testing.assert_allclose(r2.thetas, ref, rtol=1e-10, atol=1e-14)


def test_hvp_kernel_against_explicit_hessian():
    k = hvp_kernel(ROSEN, P2)
    for t in ([-1.2, 1.0], [0.3, -0.7], [2.0, 4.0]):
        t = np.array(t)
        np.testing.assert_allclose(k(t), rosen_hess(t) @ rosen_grad(t), rtol=1e-13)


def test_infinite_learning_rate_is_explicit():
    """E linear: Hg = 0 along g ≠ 0, the DAL rate is infinite: an error, or the cap when given."""
    E = x + 2 * y
    with pytest.raises(IntegrationError, match="infinite"):
        dal(E, P2, [0.0, 0.0], 3)
    r = dal(E, P2, [0.0, 0.0], 3, max_lr=0.1)
    np.testing.assert_allclose(r.thetas[-1], [-0.3, -0.6], rtol=1e-14)
    np.testing.assert_array_equal(r.lrs, 0.1)
    assert math.isinf(dal_learning_rate(E, P2, [0.0, 0.0]))


def test_stationary_start():
    r = dal(QUAD, P2, [0.0, 0.0], 3)
    np.testing.assert_array_equal(r.thetas, 0.0)
    assert np.all(np.isnan(r.drift_normalized))
    r = dal_per_parameter(QUAD, P2, [0.0, 0.0], 2)
    np.testing.assert_array_equal(r.thetas, 0.0)
    assert "steps" in r.summary()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(p=float("nan")), "p"),
        (dict(numerator=0.0), "numerator"),
        (dict(max_lr=-1.0), "max_lr"),
        (dict(steps=-1), "steps"),
        (dict(theta0=[1.0]), "shape"),
    ],
)
def test_dal_bad_inputs(kwargs, match):
    args = dict(theta0=THETA0, steps=3)
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match) as info:
        dal(QUAD, P2, args.pop("theta0"), args.pop("steps"), **args)
    assert isinstance(info.value, BEAError)
