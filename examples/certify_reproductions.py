"""Reproductions for bea.certify (seed 000: Elkabetz & Cohen, Theorem 1 and Proposition 1).

    python examples/certify_reproductions.py [--plots DIR] [--quick]

1. Convex quadratics: the certified bound against the actual GD–GF distance (bound / distance).
2. A non-convex 2-D loss, E = (x² − 1)²/4 + y²/2 + xy/5 from (0.3, 1): λ_min < 0 on the first part of
   the trajectory (the flow leaves the saddle region), > 0 near the minimum.
3. Prop. 1, the repelling circle f = −cφ − (m/2)(r − 1)²: the flow turns on r = 1 forever, GD drifts
   off it and the drift grows like e^{mt}, so the step size η needed for a fixed accuracy at time t
   decays like e^{−mt}. We compute, for several t, the largest certified η (bisection on the bound)
   and the empirical η (bisection on the actual distance) and fit the exponent.
4. Rosenbrock, floating-point and rigorous (ball-arithmetic) certificates.

φ = atan2(y, x) is a multivalued angle; only its gradient (−y, x)/r² enters GD, GF and the
certificate, and it is smooth away from the origin: atan2's branch cut (the negative x-axis) is a
cut in the loss *value* only, which none of them evaluates.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bea.certificates.certify import certify, max_step  # noqa: E402

x, y = sp.symbols("x y")


def repelling_circle(m, c):
    return -c * sp.atan2(y, x) - sp.Rational(1, 2) * m * (sp.sqrt(x**2 + y**2) - 1) ** 2


def fit_rate(ts, eta):
    """κ in η(t) ≈ A/(e^{κt} − 1) (least squares on log η) and the plain log-linear slope."""
    from scipy.optimize import curve_fit

    ts, eta = np.asarray(ts, float), np.asarray(eta, float)
    model = lambda t, a, k: a - np.log(np.expm1(k * t))  # noqa: E731
    kappa = float(curve_fit(model, ts, np.log(eta), p0=[0.0, 1.0])[0][1])
    slope = float(-np.polyfit(ts, np.log(eta), 1)[0])
    return kappa, slope


def section(title):
    print("\n" + title + "\n" + "-" * len(title))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plots", type=Path, default=None, help="save certificate plots (PNG) to this folder")
    ap.add_argument("--quick", action="store_true", help="fewer times in the Prop. 1 fit")
    args = ap.parse_args(argv)
    plots = []

    section("1. convex quadratics (discrete bound; ratio = bound / distance at the final step)")
    quads = [
        ("θ1² + 0.01θ2² (design §3)", x**2 + sp.Rational(1, 100) * y**2, [-0.35, -0.2], 0.9, 200),
        ("θ1² + 0.01θ2²", x**2 + sp.Rational(1, 100) * y**2, [-0.35, -0.2], 0.1, 50),
        ("(x² + 3y² + xy)/2", (x**2 + 3 * y**2 + x * y) / 2, [1.0, 0.5], 0.1, 50),
        ("(x² + y²)/2", (x**2 + y**2) / 2, [0.3, -0.7], 0.5, 20),
    ]
    print(f"{'loss':<28} {'h':>5} {'steps':>5}  {'float ratio':>11} {'rigorous ratio':>14}  {'theorem1 ratio':>14}")
    for name, E, th0, h, steps in quads:
        cf = certify(E, [x, y], th0, h, steps)
        cr = certify(E, [x, y], th0, h, steps, rigorous=True)
        ct = certify(E, [x, y], th0, h, steps, mode="theorem1")
        t1 = f"{ct.ratio:.4g}" if ct.certified else "not cert."
        print(f"{name:<28} {h:5g} {steps:5d}  {cf.ratio:11.6g} {cr.ratio:14.6g}  {t1:>14}   certified: {cf.certified}/{cr.certified}")
        plots.append((f"quadratic_{len(plots)}", cf))

    section("2. non-convex: E = (x² − 1)²/4 + y²/2 + xy/5, θ0 = (0.3, 1)")
    E = (x**2 - 1) ** 2 / 4 + y**2 / 2 + x * y / 5
    for h, steps in [(0.1, 60), (0.05, 100), (0.02, 250)]:
        c = certify(E, [x, y], [0.3, 1.0], h, steps)
        cr = certify(E, [x, y], [0.3, 1.0], h, steps, rigorous=True)
        ct = certify(E, [x, y], [0.3, 1.0], h, steps, mode="theorem1")
        neg = np.mean(c.lambda_min < 0)
        t1 = f"{ct.ratio:.3g}" if ct.certified else "not certified"
        print(f"h = {h:<5g} steps = {steps:<4d} λ_min ∈ [{np.min(c.lambda_min):.3f}, {np.max(c.lambda_min):.3f}] "
              f"(< 0 on {neg:.0%} of the steps)  ratio float {c.ratio:.3f}, rigorous {cr.ratio:.3f}, theorem1 {t1}")
        if h == 0.05:
            plots.append(("nonconvex", c))

    section("3. Prop. 1: repelling circle, η needed for accuracy tol at time t")
    results = []
    for m, c, tol, ts in [
        (1.0, sp.Rational(1, 5), 0.02, [2.0, 3.0, 4.0] if args.quick else [2.0, 3.0, 4.0, 5.0, 6.0]),
        (2.0, sp.Rational(2, 5), 0.02, [1.0, 1.5, 2.0] if args.quick else [1.0, 1.5, 2.0, 2.5, 3.0]),
    ]:
        E = repelling_circle(m, c)
        lam = (m + np.sqrt(m * m + 4 * float(c) ** 2)) / 2
        print(f"m = {m:g}, c = {c}, tol = {tol:g}  (|λ_min| on the circle = (m + √(m² + 4c²))/2 = {lam:.4f})")
        print(f"  {'t':>4} {'certified η':>12} {'empirical η':>12} {'ratio':>6}  time")
        ce, ee = [], []
        for t in ts:
            t0 = time.perf_counter()
            a = max_step(E, [x, y], [1.0, 0.0], t, tol, rel_tol=0.01)
            ce.append(a.certified_step)
            ee.append(a.empirical_step)
            print(f"  {t:4g} {a.certified_step:12.5g} {a.empirical_step:12.5g} {a.ratio:6.3f}  {time.perf_counter() - t0:.1f} s")
        kc, sc = fit_rate(ts, ce)
        ke, se = fit_rate(ts, ee)
        kc2, sc2 = fit_rate(ts[-3:], ce[-3:])
        ke2, se2 = fit_rate(ts[-3:], ee[-3:])
        print(f"  fitted exponent κ in η ≈ A/(e^(κt) − 1): certified {kc:.4f}, empirical {ke:.4f}  (m = {m:g})")
        print(f"  log-linear slope of η: certified {sc:.4f}, empirical {se:.4f}; on the last three t: {sc2:.4f}, {se2:.4f}")
        results.append((m, kc, ke))
        cert = certify(E, [x, y], [1.0, 0.0], ts[1] / 200, 200)
        plots.append((f"circle_m{m:g}", cert))

    section("4. Rosenbrock, θ0 = (−1.2, 1), h = 1e-4, 1000 steps")
    E = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    for rig in (False, True):
        t0 = time.perf_counter()
        c = certify(E, [x, y], [-1.2, 1.0], 1e-4, 1000, rigorous=rig)
        print(f"rigorous={rig!s:<5}: certified {c.certified}, bound {c.bound[-1]:.6g}, distance {c.distance[-1]:.6g}, "
              f"ratio {c.ratio:.3f}, λ_min ≥ {np.min(c.lambda_min):.3f}, {time.perf_counter() - t0:.2f} s")
    print("\n" + c.summary())

    if args.plots:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.plots.mkdir(parents=True, exist_ok=True)
        for name, cert in plots:
            fig = cert.plot()
            fig.savefig(args.plots / f"{name}.png", dpi=100)
            plt.close(fig)
        print(f"\nplots written to {args.plots}/")
    return results


if __name__ == "__main__":
    main()
