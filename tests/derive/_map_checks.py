"""Shared checks for tests/derive/test_maps.py and tests/derive/test_optimizers.py: the exact flow of a derived
field (mpmath GBS integration, :func:`bea.testing.integrate_mp`) against an iteration computed in
mpmath straight from its definition."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import sympy as sp

from bea.testing import fit_order, integrate_mp


def step_scale(E, params, theta0) -> float:
    """max(1, |λ|_max(H), ‖g‖) at θ0: step sizes 2^-k / scale are in the asymptotic regime."""
    g = sp.Matrix([sp.diff(E, p) for p in params])
    H = sp.hessian(E, params)
    at = dict(zip(params, [sp.Rational(str(v)) for v in theta0]))
    gv = np.array([float(v.subs(at)) for v in g])
    Hv = np.array([[float(v.subs(at)) for v in row] for row in H.tolist()])
    return max(1.0, float(np.max(np.abs(np.linalg.eigvalsh(Hv)))), float(np.linalg.norm(gv)))


def mp_function(exprs, params, h=None):
    """An mpmath callable f(theta_list[, h]) of sympy expressions."""
    args = (list(params),) if h is None else (list(params), h)
    return sp.lambdify(args, list(exprs), "mpmath", cse=True)


def warm_start(mf, theta0, H, K: int) -> list:
    """A point from which K steps land close to θ0: the field's flow run back over time K·h (RK4 in
    float64, 4 steps per h). Iterations that start their state at zero need K steps to reach the slow
    manifold; starting here keeps the point where the local error is measured at θ0 for every h."""
    import numpy as np

    fn = sp.lambdify((list(mf.params), mf.h), list(mf.field), "numpy")
    hf = float(H)
    f = lambda u: np.array(fn(list(u), hf), dtype=float)  # noqa: E731
    u, d = np.array(theta0, dtype=float), -hf / 4
    for _ in range(4 * K):
        k1 = f(u)
        k2 = f(u + d / 2 * k1)
        k3 = f(u + d / 2 * k2)
        k4 = f(u + d * k3)
        u = u + d / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return [mp.mpf(float(v)) for v in u]


def flow_errors(mf, reference, hs, *, dps: int = 40, levels: int = 8) -> np.ndarray:
    """‖φ^{f̃}_{steps·h}(start) − end‖ for each h, where ``reference(h) -> (start, end)`` (mpmath lists)
    is the iteration from its definition and φ the exact flow of ``mf.field``."""
    fn = mp_function(mf.field, mf.params, mf.h)
    out = []
    with mp.workdps(dps):
        for h in hs:
            H = mp.mpf(h)
            start, end = reference(H)
            # one GBS macro step of order 2·levels per step h: its error is far below the errors measured
            y = integrate_mp(lambda u: fn(u, H), start, mf.steps * H, dps=dps, steps=mf.steps, levels=levels)
            out.append(float(mp.sqrt(sum((a - b) ** 2 for a, b in zip(y, end)))))
    return np.array(out)


def assert_slope(mf, reference, hs, *, tol: float = 0.3, dps: int = 40) -> float:
    """The local error must fall like h^{order+2}; returns the fitted slope."""
    errors = flow_errors(mf, reference, hs, dps=dps)
    print(f"{mf.kind}: order {mf.order}, errors {errors}, slope {fit_order(hs, errors):.3f}")
    assert np.all(errors > 10.0 ** (-dps + 8)), f"errors {errors} reach the precision floor"
    slope = fit_order(hs, errors)
    assert slope > mf.order + 2 - tol, f"slope {slope:.3f} < {mf.order + 2} - {tol}; errors {errors}"
    return slope
