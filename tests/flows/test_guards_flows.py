"""Guards of bea.flows written to kill mutations of ``tools/mutations.py``: cases the property
tests never draw (an exactly flat direction), each checked against plain GD."""

from __future__ import annotations

import numpy as np
import pytest

from bea.flows import pf_closed_form


def _gd_linear(A, b, theta0, h, steps):
    """GD on ½θᵀAθ + bᵀθ by its definition θ_{k+1} = θ_k − h(Aθ_k + b)."""
    out = [np.asarray(theta0, dtype=float)]
    for _ in range(steps):
        out.append(out[-1] - h * (A @ out[-1] + b))
    return np.array(out)


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("h", [0.3, 0.75, 1.6])
def test_pf_closed_form_on_a_flat_direction_is_gd(h, rotated):
    """On E = ½θᵀAθ + bᵀθ with a zero eigenvalue of A (exactly 0 for a diagonal A, rounding-level
    when rotated) and b not orthogonal to its eigenvector, the flat coordinate drifts linearly,
    c(t) = c(0) − β t (α(0) = −1): the Remark 3.1 solution lands on GD at every t = kh (also for
    hλ_0 ∈ (1, 2))."""
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0] if rotated else np.eye(3)[[2, 0, 1]]
    A = (Q * np.array([1.0, 0.4, 0.0])) @ Q.T
    A = 0.5 * (A + A.T)
    b = Q @ np.array([0.1, -0.2, 0.5])  # β = 0.5 along the flat direction
    theta0 = np.array([0.3, -0.1, 0.2])
    steps = 8
    ref = _gd_linear(A, b, theta0, h, steps)
    cf = pf_closed_form(A, b, theta0, h, h * np.arange(steps + 1))
    np.testing.assert_allclose(cf.real, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cf.imag, 0.0, atol=1e-12)
