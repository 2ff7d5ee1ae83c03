"""Drift-adjusted learning rates (seed 002 Eqs. 18–21) against plain numpy loops with explicit H."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from bea.flows.dal import DALResult, dal, dal_learning_rate, dal_momentum, dal_p, dal_per_parameter, hvp_kernel
from bea.errors import BEAError, IntegrationError, InvalidInputError
from conftest import QUAD, ROSEN, rosen_grad, rosen_hess

x, y = sp.symbols("x y")
P2 = [x, y]
H = np.diag([2.0, 0.02])
THETA0 = np.array([-0.35, -0.2])




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
    # at p = 0.25 the rate 2/‖Hĝ‖^¼ ≈ 1.7 makes hλ_0 ≈ 3.4 > 2: the run diverges (E ≈ 2e10 at step
    # 15), which the default growth guard reports; blowup=inf compares all 20 steps with numpy
    r = dal(QUAD, P2, THETA0, 20, p=p, blowup=math.inf)
    np.testing.assert_allclose(r.thetas, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.lrs, lrs, rtol=1e-12)
    if p == 0.25:
        with pytest.raises(IntegrationError, match="diverged at step 15"):
            dal(QUAD, P2, THETA0, 20, p=p)
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


HIMMELBLAU = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def test_divergence_is_detected_at_the_step():
    """DAL-0.5 on Himmelblau from 0 blows up (E ≈ 6e157 after 100 steps while every number stays
    finite): the run stops at the first iterate whose |E| passes blowup·max(1, |E_0|), names it, and
    the iterates before it are the plain numpy DAL loop's (explicit H, lambdified derivatives)."""
    with pytest.raises(IntegrationError, match="diverged at step") as info:
        dal(HIMMELBLAU, P2, [0.0, 0.0], 100, p=0.5)
    k = int(info.value.t)
    r = dal(HIMMELBLAU, P2, [0.0, 0.0], 100, p=0.5, on_failure="return")
    assert r.diverged and r.diverged_at == k and "DIVERGED" in r.summary() and "E(θ" in r.reason
    f = sp.lambdify([P2], HIMMELBLAU, "numpy")
    assert abs(f(r.thetas[k])) > 1e10 * 170 >= np.max(np.abs([f(t) for t in r.thetas[:k]]))
    grad, hess = _numpy_derivatives(HIMMELBLAU)
    ref, lrs = numpy_dal(grad, hess, [0.0, 0.0], k, p=0.5)
    np.testing.assert_allclose(r.thetas[: k + 1], ref, rtol=1e-9)
    np.testing.assert_allclose(r.lrs[:k], lrs, rtol=1e-9)
    assert np.all(np.isnan(r.thetas[k + 1 :])) and np.all(np.isnan(r.losses[k + 1 :]))
    # p = 1 converges on the same problem: no false alarm
    ok = dal(HIMMELBLAU, P2, [0.0, 0.0], 100)
    assert not ok.diverged and ok.losses[-1] < 1.0 and np.all(np.isfinite(ok.thetas))


def test_overflow_is_divergence_not_an_infinite_rate():
    """With the growth guard off, the same run ends when H g overflows to inf: reported as
    divergence with the step, not as 'the learning rate is infinite' (and never frozen at lr = 0)."""
    with pytest.raises(IntegrationError, match="overflows") as info:
        dal(HIMMELBLAU, P2, [0.0, 0.0], 200, p=0.5, blowup=math.inf)
    assert "infinite" not in str(info.value) and info.value.t > 0
    r = dal(HIMMELBLAU, P2, [0.0, 0.0], 200, p=0.5, blowup=math.inf, on_failure="return")
    k = r.diverged_at
    assert np.all(np.isfinite(r.thetas[: k + 1])) and np.all(r.lrs[:k] > 0)
    hg = hvp_kernel(HIMMELBLAU, P2)(r.thetas[k])
    assert not np.all(np.isfinite(hg))


def test_bea_dal_is_callable_and_a_module():
    """``bea.dal(...)`` runs :func:`bea.flows.dal.dal` and ``bea.dal`` is still the module (its functions,
    ``import bea.dal``, ``from bea.dal import ...``): the very module :mod:`bea.flows.dal`."""
    import importlib

    import bea

    mod = importlib.import_module("bea.dal")
    assert mod is importlib.import_module("bea.flows.dal")
    assert bea.dal is mod and bea.dal.dal is dal and bea.dal.dal_p is dal_p
    a = bea.dal(QUAD, P2, THETA0, 5, p=0.5)
    b = dal(QUAD, P2, THETA0, 5, p=0.5)
    np.testing.assert_array_equal(a.thetas, b.thetas)
    import inspect

    assert "on_failure" in inspect.signature(bea.dal).parameters


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
        (dict(on_failure="ignore"), "on_failure"),
        (dict(blowup=0.0), "blowup"),
    ],
)
def test_dal_bad_inputs(kwargs, match):
    args = dict(theta0=THETA0, steps=3)
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match) as info:
        dal(QUAD, P2, args.pop("theta0"), args.pop("steps"), **args)
    assert isinstance(info.value, BEAError)
