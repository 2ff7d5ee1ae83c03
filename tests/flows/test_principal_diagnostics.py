"""PF diagnostics (seed 002 Def. 3.4, Thm 6.1, Eq. 16/18) and the flows' α, against hand formulas."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bea.errors import InvalidInputError
from bea.flows.diagnostics import (
    ONE_STEP_FLOOR,
    PFDiagnostics,
    alpha,
    diagnostics,
    diagnostics_along,
    flow_alpha,
    flow_alpha_scalar,
)
from conftest import QUAD, ROSEN

x, y = sp.symbols("x y")
P2 = [x, y]
THETA0 = np.array([-0.35, -0.2])


def test_diagnostics_on_the_reference_quadratic():
    h = 1.05
    d = diagnostics(QUAD, P2, THETA0, h)
    assert isinstance(d, PFDiagnostics)
    np.testing.assert_allclose(d.eigenvalues, [2.0, 0.02], rtol=1e-15)
    g = np.array([2 * -0.35, 0.02 * -0.2])
    np.testing.assert_allclose(d.grad, g, rtol=1e-15)
    # u_i signed so that gᵀu_i ≥ 0
    np.testing.assert_allclose(d.g_dot_u, [0.7, 0.004], rtol=1e-14)
    np.testing.assert_allclose(np.abs(d.eigenvectors), np.eye(2), atol=1e-15)
    # PF Jacobian eigenvalues log(1 − hλ)/h (Eq. 16): reference 0.090772 + 2.991993i
    assert d.rates[0] == pytest.approx(cmath.log(complex(1 - 2.1, 0.0)) / h, rel=1e-14)
    assert d.rates[0].real == pytest.approx(0.090772, abs=5e-7)
    assert d.rates[0].imag == pytest.approx(2.991993, abs=5e-7)
    # sc_i = α(hλ_i)·gᵀu_i (Def. 3.4), α(2.1) = (log 1.1 + iπ)/2.1
    sc0 = (math.log(1.1) + 1j * math.pi) / 2.1 * 0.7
    sc1 = math.log1p(-0.021) / 0.021 * 0.004
    np.testing.assert_allclose(d.stability_coefficients, [sc0, sc1], rtol=1e-13)
    assert d.sc0.real > 0 and d.unstable
    # drift (Thm 6.1) and DAL's ‖Hĝ‖ = 1.99998 (design.md §3)
    Hg = np.array([2 * g[0], 0.02 * g[1]])
    assert d.drift == pytest.approx(np.linalg.norm(Hg), rel=1e-15)
    # design.md prints 1.99998; the exact value is 1.9999673 (h = 2/1.9999673 = 1.000016)
    assert d.drift_normalized == pytest.approx(1.99998, abs=2e-5)
    assert d.drift_normalized == pytest.approx(np.linalg.norm(Hg) / np.linalg.norm(g), rel=1e-14)
    assert 2 / d.drift_normalized == pytest.approx(1.000016, abs=5e-7)
    # progress ratio by hand: E(θ − hg) − E(θ) over h‖g‖²
    E = lambda t: t[0] ** 2 + t[1] ** 2 / 100  # noqa: E731
    ratio = (E(THETA0 - h * g) - E(THETA0)) / (h * g @ g)
    assert d.progress_ratio == pytest.approx(ratio, rel=1e-12)
    assert ratio > 0  # hλ₀ > 2: the GD step increases the loss
    assert list(d.classes) == ["complex-unstable", "real-stable"]
    s = d.summary()
    assert "complex-unstable" in s and "DAL h = 1" in s
    assert "sc0" in repr(d)
    # the shared PFQuantities (also behind bea.torch.PFDiagnostics): hλ₀/2 and ‖g‖ by hand
    assert d.edge_ratio == pytest.approx(h * 2 / 2, rel=1e-15) and d.lambda_max == pytest.approx(2.0, rel=1e-15)
    assert d.grad_norm == pytest.approx(math.hypot(*g), rel=1e-15)


def test_progress_ratio_is_minus_one_for_small_steps():
    d = diagnostics(ROSEN, P2, [-1.2, 1.0], 1e-7)
    assert d.progress_ratio == pytest.approx(-1.0, abs=1e-3)


def test_one_step_direction_gives_minus_infinity_not_nan():
    d = diagnostics(QUAD, P2, THETA0, 0.5)  # hλ₀ = 1
    assert d.rates[0] == complex(-np.inf, 0.0)
    assert d.stability_coefficients[0].real == -np.inf and d.stability_coefficients[0].imag == 0.0
    assert not np.any(np.isnan(d.stability_coefficients))
    assert d.classes[0] == "one-step"


def test_critical_point():
    d = diagnostics(QUAD, P2, [0.0, 0.0], 0.1)
    assert d.drift == 0.0
    assert math.isnan(d.drift_normalized) and math.isnan(d.progress_ratio)
    np.testing.assert_array_equal(d.stability_coefficients, 0.0)
    assert "critical point" in d.summary()


def test_diagnostics_along_gd_against_numpy():
    """Eigenvalues along the GD run equal numpy's eigvalsh of the sympy Hessian at numpy GD iterates."""
    h, steps = 0.0015, 15
    tr = diagnostics_along(ROSEN, P2, [-1.2, 1.0], h, steps)
    grad = sp.lambdify([P2], [sp.diff(ROSEN, p) for p in P2], "numpy")
    hess = sp.lambdify([P2], sp.hessian(ROSEN, P2), "numpy")
    loss = sp.lambdify([P2], ROSEN, "numpy")
    th = np.array([-1.2, 1.0])
    for k in range(steps + 1):
        np.testing.assert_allclose(tr.thetas[k], th, rtol=1e-12)
        lam = np.linalg.eigvalsh(np.array(hess(th), float))[::-1]
        np.testing.assert_allclose(tr.eigenvalues[k], lam, rtol=1e-10)
        assert tr.losses[k] == pytest.approx(loss(th), rel=1e-12)
        g = np.array(grad(th))
        assert tr.drift[k] == pytest.approx(np.linalg.norm(np.array(hess(th), float) @ g), rel=1e-10)
        th = th - h * g
    assert len(tr) == steps + 1
    assert tr.loss_increases.shape == (steps,)
    assert tr.at(3).lambda_max == tr.eigenvalues[3, 0]
    assert "steps" in tr.summary()
    # at the start λ₀ > 2/h: the top direction is complex-unstable, Re sc_0 > 0
    assert tr.eigenvalues[0, 0] > 2 / h and tr.stability_coefficients[0, 0].real > 0


def test_diagnostics_bad_inputs():
    with pytest.raises(InvalidInputError, match="shape"):
        diagnostics(QUAD, P2, [1.0], 0.1)
    with pytest.raises(InvalidInputError, match="finite"):
        diagnostics(QUAD, P2, [1.0, np.inf], 0.1)
    with pytest.raises(InvalidInputError, match="step size"):
        diagnostics(QUAD, P2, THETA0, -1.0)
    with pytest.raises(InvalidInputError):
        diagnostics_along(QUAD, P2, THETA0, 0.1, -2)


# --------------------------------------------------------------------------------------------------
# α as used inside the flows
# --------------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(st.floats(-50.0, 50.0).filter(lambda v: abs(v - 1.0) > 1e-9))
def test_flow_alpha_equals_alpha_on_the_real_axis(v):
    """On the real axis the flows' α is the seed's α: log|1 − z|/z, + iπ/z for z > 1."""
    ref = complex(alpha(v, complex_output=True))
    assert flow_alpha(v) == pytest.approx(ref, rel=1e-14, abs=1e-300)
    assert flow_alpha(complex(v, 0.0)) == pytest.approx(ref, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("v", [1.3, 2.0, 2.1, 7.5])
def test_flow_alpha_is_continuous_across_the_real_axis_beyond_one(v):
    """The principal log jumps from +iπ to −iπ just above z > 1; the flows' branch does not."""
    on_axis = (math.log(v - 1.0) + 1j * math.pi) / v
    for d in (1e-12, -1e-12):
        assert flow_alpha_scalar(complex(v, d)) == pytest.approx(on_axis, rel=1e-9)
    # for comparison, the principal branch (cmath) above the axis is the conjugate branch
    assert cmath.log(1 - complex(v, 1e-12)).imag == pytest.approx(-math.pi, rel=1e-9)


def test_flow_alpha_floor_at_one_and_elsewhere():
    assert flow_alpha(1.0) == pytest.approx(math.log(ONE_STEP_FLOOR))
    assert np.isfinite(flow_alpha(np.array([1.0, 1.0 + 1e-17, 1.0 - 1e-16]))).all()
    np.testing.assert_allclose(flow_alpha(np.array([0.0, 1e-3])), alpha(np.array([0.0, 1e-3]), complex_output=True), rtol=1e-15)
    assert flow_alpha(np.array([[0.2, 3.0]])).shape == (1, 2)
    with pytest.raises(InvalidInputError):
        flow_alpha(np.array(["a"]))
