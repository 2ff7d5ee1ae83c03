"""Guards of bea.certify written to kill mutations of ``tools/mutations.py``: certificates whose
soundness hinges on a single ingredient of the recursion, each checked against a distance known in
closed form (not the certificate's own reference flow)."""

from __future__ import annotations

import dataclasses

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from bea.certificates.certify import certify

z = sp.Symbol("z")


@pytest.mark.parametrize("steps", [60, 200])
def test_bound_covers_float_gd_that_rounds_to_no_move(steps):
    """E = z²/2 from z0 = 1.5 with h = 6e-17: every exact GD step moves by h·z ≈ 0.45 ulp, so the
    float iterate never moves, and the whole distance to the flow, 1.5(1 − e^{−kh}), is rounding of
    the float GD steps — the ε_k term of the recursion.  The bound must still cover it, and the
    reported distance too, whose reference flow (the integrator's float state near 1.5) is off by
    an ulp or so per step: the reported bound carries that uncertainty."""
    h = 6.0e-17
    assert 1.5 - h * 1.5 == 1.5  # the premise: float GD stands still
    cert = certify(z**2 / 2, [z], [1.5], h, steps, atol=1e-20)
    assert cert.certified, cert.reason
    k = np.arange(steps + 1)
    exact = -1.5 * np.expm1(-k * h)  # |θ̂_k − θ(kh)| with θ̂_k = 1.5 for every k
    assert np.all(cert.bound >= exact)
    assert np.all(cert.bound >= cert.distance)


# a 1-D cubic whose certificate is exact up to rounding: E'' = 1 + z grows with z, GD stays below the
# flow (1 − h < e^{−h}), so the mean Hessian on the segment [θ_k, y_k] is exactly λ(y_k) − M e_k/2
# (M = E''' = 1) and every local error has the sign of the accumulated error
CUBIC = z**2 / 2 + z**3 / 6


def _cubic_flow(z0, t):
    """Gradient flow ż = −z − z²/2 in closed form (w = 1/z solves ẇ = w + 1/2)."""
    return 1 / ((1 / mp.mpf(z0) + mp.mpf(1) / 2) * mp.e**t - mp.mpf(1) / 2)


DOUBLE_WELL = -(z**2) / 2 + z**4 / 4


def _double_well_flow(z0, t):
    """ż = z − z³ in closed form: z² = 1/(1 + (1/z0² − 1)e^{−2t})."""
    z0 = mp.mpf(z0)
    return 1 / mp.sqrt(1 + (1 / z0**2 - 1) * mp.e ** (-2 * t))


def _distances(grad, flow, z0, h, steps):
    """|θ̂_k − θ(kh)|: float GD iterates (as certify takes them) against the closed-form flow at 30 digits."""
    th = [float(z0)]
    for _ in range(steps):
        th.append(th[-1] - h * grad(th[-1]))
    with mp.workdps(30):
        return np.array([float(abs(mp.mpf(th[k]) - flow(z0, k * mp.mpf(h)))) for k in range(steps + 1)])


@pytest.mark.parametrize("h,steps", [(0.1, 40), (0.2, 20), (0.4, 15)])
def test_discrete_bound_is_exact_on_a_cubic_where_every_estimate_is_attained(h, steps):
    """On E = z²/2 + z³/6 from z0 = 1 each inequality of the discrete recursion holds with equality
    (ρ_k uses exactly λ − Me/2, ℓ_k is the enclosed local error): the bound must cover the
    closed-form distance and be within 1e-6 of it.  Any weakened term — Me/4, λ + Me/2, a smaller
    local error, a smaller second-order term — falls below the distance."""
    cert = certify(CUBIC, [z], [1.0], h, steps)
    assert cert.certified, cert.reason
    d = _distances(lambda v: v + v * v / 2, _cubic_flow, 1.0, h, steps)
    assert np.all(cert.bound >= d)
    assert np.all(cert.bound[1:] <= d[1:] * (1 + 1e-6))


@pytest.mark.parametrize("mode", ["discrete", "theorem1"])
@pytest.mark.parametrize("z0,h,steps", [(0.2, 0.05, 20), (0.05, 0.02, 50)])
def test_bounds_cover_the_distance_away_from_a_maximum(mode, z0, h, steps):
    """E = −z²/2 + z⁴/4 from near its maximum z = 0 (λ_min = −1 + 3z² < 0 along the start): GD and the
    flow separate like exp(∫|λ₋|); both recursions must cover the closed-form distance, and stay
    within 20% of it (theorem1: its growth exp(−hλ₋) and its fan term are what make it so)."""
    cert = certify(DOUBLE_WELL, [z], [z0], h, steps, mode=mode)
    assert cert.certified, cert.reason
    d = _distances(lambda v: -v + v**3, _double_well_flow, z0, h, steps)
    assert np.all(cert.bound >= d)
    assert np.all(cert.bound[1:] <= 1.2 * d[1:])


def test_a_given_tube_radius_below_the_bound_is_refused():
    """With ``tube_radius`` r the bound is proven only while e_k ≤ r: on the cubic (M = 1 whatever
    the radius, so the bound does not depend on r) a radius of 3/4 of the largest bound must end the
    certificate at the first step whose bound exceeds r, with the proven part ≤ r."""
    h, steps = 0.2, 20
    full = certify(CUBIC, [z], [1.0], h, steps, tube_radius=1.0)
    assert full.certified, full.reason
    r = 0.75 * float(full.bound.max())
    cut = certify(CUBIC, [z], [1.0], h, steps, tube_radius=r)
    assert not cut.certified and "tube" in cut.reason
    first = int(np.argmax(full.bound > r))
    assert cut.valid_steps == first
    assert np.all(cut.bound[: cut.valid_steps] <= r)
    assert np.all(np.isinf(cut.bound[cut.valid_steps:]))


def test_reported_bound_covers_a_reference_flow_off_by_its_error_estimate(monkeypatch):
    """``bound`` must cover the *reported* distance, GD against the integrated flow ŷ_k, and not only
    the distance to the exact flow: ŷ_k may be off by up to its error estimate δ_k (the distance to a
    100× looser run).  An integrator that is off by b = 1e-9 (inside δ_k, pushing ŷ_k away from GD)
    is injected; the certificate must still cover the distance it reports.  (The real integrator is
    far more accurate than δ_k, which is why this needs an injected error.)"""
    import importlib

    cmod = importlib.import_module("bea.certificates.certify")
    real = cmod.solve
    b = 1e-9

    def biased(rhs, y0, t, p, *, rtol, **kw):
        sol = real(rhs, y0, t, p, rtol=rtol, **kw)
        if rtol in (1e-12, 1e-10) and len(sol.t) > 2:  # the reference flow (tight run) and its loose twin
            y = sol.y.copy()
            # GD lies below the flow of z²/2 from z0 = 1: +b moves the reference away from it; the
            # loose run moved the other way keeps |ŷ − y| = b inside the estimate δ ≈ 2b
            y[1:] += b if rtol == 1e-12 else -b
            sol = dataclasses.replace(sol, y=y)
        return sol

    monkeypatch.setattr(cmod, "solve", biased)
    cert = certify(z**2 / 2, [z], [1.0], 1e-4, 30)
    assert cert.certified, cert.reason
    assert np.all(cert.distance_error[1:] >= b)  # the estimate saw the bias
    assert np.all(cert.bound >= cert.distance)
