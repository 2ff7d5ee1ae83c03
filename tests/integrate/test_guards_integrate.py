"""Guards of bea.integrate's step-size control, written to kill mutations of ``tools/mutations.py``.

The error estimates of the two embedded pairs decide every accepted step; a wrong weight in them
(DOP853's 0.01·err3², the factor h of dopri5's h·Σ E_j k_j) leaves the solutions accurate enough
for most tests — the controller just takes other steps — so they are checked here directly against
scipy's independent implementations (``scipy.integrate.RK45`` / ``DOP853``, both transcribed from
Hairer's dopri5.f / dop853.f), on random stages, at step sizes h ≠ 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import DOP853 as ScipyDOP853
from scipy.integrate import RK45 as ScipyRK45

from bea.integrate import INTEGRATORS
from bea.integrate.control import error_norm as _error_norm

CASES = [("dopri5", ScipyRK45), ("dop853", ScipyDOP853)]


@pytest.mark.parametrize("name, scipy_cls", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("h", [0.37, 1.0, 3.0, 1e-3])
def test_error_norm_equals_scipys_estimate(name, scipy_cls, h):
    """The scaled error norm of one step (Hairer's mixed rms norm, DOP853's combined 5th/3rd-order
    estimator) equals scipy's value for the same stages, step h and tolerances."""
    meth = INTEGRATORS[name]
    rng = np.random.default_rng(17)
    for n in (1, 5):
        K = rng.standard_normal((meth.stages + 1, n))
        y = rng.standard_normal(n)
        ynew = y + 0.1 * rng.standard_normal(n)
        rtol, atol = 1e-6, 1e-9
        scale = atol + np.maximum(np.abs(y), np.abs(ynew)) * rtol
        solver = scipy_cls(lambda t, x: -x, 0.0, y, 1.0, rtol=rtol, atol=atol)
        ref = solver._estimate_error_norm(K, h, scale)
        got = _error_norm(K, meth.E, h, y, ynew, rtol, atol)
        assert got == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("name, scipy_cls", CASES, ids=[c[0] for c in CASES])
def test_error_weights_equal_scipys(name, scipy_cls):
    """The error weights E (b − b̂, and DOP853's E5 and E3 rows) are those of scipy's tables, up to
    the sign (the norm only sees |·|)."""
    E = INTEGRATORS[name].E
    rows = [scipy_cls.E] if name == "dopri5" else [scipy_cls.E5, scipy_cls.E3]
    assert E.shape == (len(rows), len(rows[0]))
    for mine, ref in zip(E, rows):
        sign = np.sign(mine[np.argmax(np.abs(mine))]) * np.sign(ref[np.argmax(np.abs(ref))])
        np.testing.assert_allclose(mine, sign * np.asarray(ref), rtol=1e-14, atol=1e-16)
