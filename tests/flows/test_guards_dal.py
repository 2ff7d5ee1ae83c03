"""Guards of bea.flows.dal written to kill mutations of ``tools/mutations.py``: the DAL-p rate at one
point for p ≠ 1, against ‖Hĝ‖ computed from the explicit Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from bea.flows.dal import dal, dal_learning_rate

x, y = sp.symbols("x y")


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("c", [2.0, 0.5])
def test_dal_learning_rate_is_c_over_drift_to_the_p(p, c):
    """dal_learning_rate = c/‖H(θ)ĝ(θ)‖^p (Eq. 19) with H and g from sympy's derivatives at θ, on a
    non-quadratic loss; it is also the rate of the first step of bea.flows.dal with the same p and c."""
    E = x**4 / 4 + x * y + 3 * y**2 / 2 + sp.cos(x + 2 * y)
    theta = [0.7, -0.4]
    at = dict(zip((x, y), theta))
    g = np.array([float(sp.diff(E, v).subs(at)) for v in (x, y)])
    H = np.array([[float(sp.diff(E, u, v).subs(at)) for v in (x, y)] for u in (x, y)])
    drift = np.linalg.norm(H @ (g / np.linalg.norm(g)))
    expected = c / drift**p
    assert dal_learning_rate(E, [x, y], theta, p=p, numerator=c) == pytest.approx(expected, rel=1e-12)
    run = dal(E, [x, y], theta, 1, p=p, numerator=c)
    assert run.lrs[0] == pytest.approx(expected, rel=1e-12)
