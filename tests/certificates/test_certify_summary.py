"""Certificate.summary() (issue #11): the tightness it reports, M ≤ 0 on quadratics, no numpy
warnings on uncertified runs."""

import math
import re
import warnings

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import bea
from conftest import QUAD

x, y = sp.symbols("x y")
THETA0 = [-0.35, -0.2]


def _quad_distance_mp(h, k):
    """‖θ_k − θ(kh)‖ on QUAD in mpmath: GD is (1 − hλ)^k, the flow e^{−λkh} per coordinate."""
    with mp.workdps(40):
        d2 = sum(((1 - mp.mpf(h) * lam) ** k - mp.exp(-lam * mp.mpf(h) * k)) ** 2 * mp.mpf(c) ** 2
                 for lam, c in ((2, THETA0[0]), (mp.mpf("0.02"), THETA0[1])))
        return float(mp.sqrt(d2))


def test_summary_reports_the_ratio_of_bound_to_an_independent_distance():
    """Property: the tightness line of summary() is bound/distance at the final step, where the
    distance agrees with the closed-form GD and flow of a quadratic (mpmath)."""
    h, k = 0.3, 40
    c = bea.certify(QUAD, [x, y], THETA0, h, k)
    d = _quad_distance_mp(h, k)
    assert c.distance[-1] == pytest.approx(d, rel=1e-9)
    assert c.bound[-1] >= d
    m = re.search(r"bound / distance: final ([0-9.e+-]+), median ([0-9.e+-]+), max ([0-9.e+-]+)", c.summary())
    assert m, c.summary()
    assert float(m.group(1)) == pytest.approx(c.bound[-1] / d, rel=1e-3)
    assert 1.0 <= float(m.group(1)) <= 1.01  # exact up to enclosure widths on a quadratic


def test_summary_shows_zero_hessian_lipschitz_on_a_quadratic():
    """Property: on a quadratic ∇³E = 0, so the reported Hessian-Lipschitz constant is exactly 0
    (printed "M ≤ 0", not a subnormal such as 4.9e-324)."""
    c = bea.certify(QUAD, [x, y], THETA0, 0.9, 30)
    assert np.nanmax(c.hessian_lipschitz) == 0.0
    assert "Hessian-Lipschitz M ≤ 0 in the tube" in c.summary()


UNCERTIFIED = [
    ((x**4 - x**2 * y, [x, y], [3.0, 1.0], 0.3, 20), {}),  # GD overflows, bound runs away
    ((QUAD, [x, y], THETA0, 1.05, 5), {}),  # beyond the stability limit
    ((QUAD, [x, y], THETA0, 2.5, 30), {}),
    ((-(x**4) - y**2, [x, y], [1.0, 1.0], 0.1, 40), {}),  # the flow blows up in finite time
    ((x**2 * y**2 + x**4, [x, y], [1.0, 1.0], 0.1, 10), {"tube_radius": 1e-12}),  # tube left
    ((QUAD, [x, y], THETA0, 0.1, 0), {}),  # no step at all
    ((-(x**4) + y**2, [x, y], [0.5, 0.1], 0.1, 40), {"flow": "pf"}),  # GD overflows to finite 1e200s
    ((-(x**4) + y**2, [x, y], [0.5, 0.1], 0.1, 40), {"flow": "igr", "rigorous": True}),
]


@pytest.mark.parametrize("args,kw", UNCERTIFIED)
def test_summary_of_failed_runs_emits_no_numpy_warning(args, kw):
    """Property: certify() on diverging runs emits no numpy RuntimeWarning, and summary() and repr()
    of any certificate (also an uncertified one, with inf / NaN entries) run with warnings as errors; the final ratio is inf/NaN or the quotient of the entries."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        c = bea.certify(*args, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = c.summary()
        repr(c)
        r = c.ratio
    assert ("NOT certified" in text) == (not c.certified)
    b, d = float(c.bound[-1]), float(c.distance[-1])
    if d > 0 and math.isfinite(b) and math.isfinite(d):
        assert r == pytest.approx(b / d)
    else:
        assert math.isnan(r) or math.isinf(r) or r == 0.0


def test_interval_operations_with_inf_emit_no_warning():
    """Property: interval products 0·inf and sanitize() of ±inf boxes are handled on purpose (the
    whole line / unchanged), silently; the results are those of exact interval arithmetic's hull."""
    from bea.certificates.intervals import Iv

    a = Iv(np.array([0.0, -1.0]), np.array([0.0, 2.0]))
    b = Iv(np.array([-np.inf, 1.0]), np.array([np.inf, 3.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = (a * b).sanitize()
        s = Iv(np.array([-np.inf]), np.array([np.inf])).sanitize()
    assert p.lo[0] <= 0.0 <= p.hi[0]  # contains 0·[−inf, inf] = {0}
    assert p.lo[1] <= -3.0 and p.hi[1] >= 6.0  # [−1, 2]·[1, 3] = [−3, 6]
    assert s.lo[0] == -np.inf and s.hi[0] == np.inf
