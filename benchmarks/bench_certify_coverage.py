"""Benchmark: how often bea.certify certifies, how tight it is and what it costs, on a public corpus.

    python benchmarks/bench_certify_coverage.py [--steps K] [--only NAME ...] [--rigorous]

Corpus: 16 losses nobody wrote for bea (classic optimisation test functions, small nets, saddles,
deep linear nets, Prop. 1's repelling circle), each at two step sizes: a large one (h·λ_max ≈ 0.6–1.8
along the run) and a small one, 100 GD steps from a fixed start.

Per case the table shows

* ``stable``: h·λ_max(H) < 2 at every GD iterate and flow point (numpy eigenvalues of the float
  Hessian) and GD stays finite — the cases a certificate should be able to cover;
* ``cert``: ``Certificate.certified``; ``max b/d``, ``med b/d``: the largest and the median
  bound[k]/distance[k] over the steps whose distance is resolved (``Certificate.ratios``: above
  the reported error of the distance — once GD and the flow have both converged to rounding level
  the ratio says nothing);
* time (CPU seconds of the process, best of ``--repeat``): ``certify`` (second call: kernels
  cached) against the named baseline measured in the same run, "GD + GF" — the float GD iterates and the dop853 flow at every t = kh (``bea.gd`` and
  ``bea.trajectory(..., flow="ngf")`` with the integrator's default tolerances), i.e. the actual
  distance alone, without any certificate.

Goal (issue #11): every stable case certified, median bound/distance ≤ 2, max ≤ 20, ≤ 2 s and
≤ 20× the baseline for the ≤ 5-parameter losses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bea  # noqa: E402
from bea.certificates.certify import certify  # noqa: E402

x, y, z = sp.symbols("x y z")


def _q(p, q=1):
    return sp.Rational(p, q)


def corpus():
    """name -> (E, params, theta0, (h_large, h_small))."""
    c = {}
    c["himmelblau"] = ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, [x, y], [0.0, 0.0], (0.01, 0.001))
    c["beale"] = (
        (_q(3, 2) - x + x * y) ** 2 + (_q(9, 4) - x + x * y**2) ** 2 + (_q(21, 8) - x + x * y**3) ** 2,
        [x, y], [1.0, 1.0], (0.01, 0.001),
    )
    c["booth"] = ((x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2, [x, y], [0.0, 0.0], (0.05, 0.005))
    c["matyas"] = (_q(26, 100) * (x**2 + y**2) - _q(48, 100) * x * y, [x, y], [1.0, -0.5], (1.0, 0.1))
    c["styblinski_tang"] = ((x**4 - 16 * x**2 + 5 * x + y**4 - 16 * y**2 + 5 * y) / 2, [x, y], [0.5, -0.5], (0.02, 0.002))
    c["rosenbrock"] = ((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y], [-1.2, 1.0], (5e-4, 1e-4))
    c["three_hump_camel"] = (2 * x**2 - _q(105, 100) * x**4 + x**6 / 6 + x * y + y**2, [x, y], [1.0, 0.5], (0.2, 0.02))
    c["six_hump_camel"] = ((4 - _q(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2, [x, y], [0.5, 0.5], (0.05, 0.005))
    c["saddle_quartic"] = (x**2 / 2 - y**2 / 2 + y**4 / 4, [x, y], [0.8, 0.05], (0.5, 0.05))
    c["softplus_mix"] = (
        sp.log(1 + sp.exp(x - y)) + sp.log(1 + sp.exp(-x - 2 * y)) + (x**2 + y**2) / 10, [x, y], [1.0, -1.0], (0.5, 0.05),
    )
    w = sp.symbols("w1:5")
    a, b = [_q(-1), _q(-3, 10), _q(2, 5), _q(6, 5)], [_q(-1, 2), _q(1, 10), _q(3, 10), _q(3, 5)]
    c["tanh_net4"] = (
        sum((w[2] * sp.tanh(w[0] * ai) + w[3] * sp.tanh(w[1] * ai) - bi) ** 2 for ai, bi in zip(a, b)) / 8,
        list(w), [0.1, -0.2, 0.15, 0.05], (0.5, 0.1),
    )
    p = sp.symbols("p1:7")
    xs, ys = [_q(-1), _q(-1, 3), _q(1, 3), _q(1)], [_q(1, 2), _q(-1, 4), _q(1, 4), _q(-1, 2)]
    c["mlp_1_2_1"] = (
        sum((p[4] * sp.tanh(p[0] * ai + p[2]) + p[5] * sp.tanh(p[1] * ai + p[3]) - bi) ** 2 for ai, bi in zip(xs, ys)) / 8,
        list(p), [0.5, -0.4, 0.1, -0.2, 0.3, 0.6], (1.0, 0.1),
    )
    v = sp.symbols("v1:4")
    X = [(_q(1), _q(2)), (_q(-1), _q(1, 2)), (_q(1, 2), _q(-1)), (_q(-3, 2), _q(-1, 2)), (_q(2), _q(1))]
    lab = [1, -1, 1, -1, 1]
    c["logistic3"] = (
        sum(sp.log(1 + sp.exp(-li * (v[0] * xi + v[1] * yi + v[2]))) for (xi, yi), li in zip(X, lab)) / 5
        + (v[0] ** 2 + v[1] ** 2 + v[2] ** 2) / 20,
        list(v), [0.0, 0.0, 0.0], (1.0, 0.1),
    )
    c["linear_depth3"] = ((x * y * z - 1) ** 2 / 2, [x, y, z], [0.3, 0.25, 0.35], (0.2, 0.05))
    u = sp.symbols("u1:11")
    c["linear_depth10"] = (
        (sp.Mul(*u) - 2) ** 2 / 2, list(u), [1.0, 0.95, 1.05, 0.9, 1.1, 1.0, 0.97, 1.03, 0.92, 1.02], (0.05, 0.01),
    )
    c["repelling_circle"] = (
        -_q(1, 5) * sp.atan2(y, x) - _q(1, 2) * (sp.sqrt(x**2 + y**2) - 1) ** 2, [x, y], [1.0, 0.0], (0.05, 0.01),
    )
    return c


def stability(E, params, gd, flow, h):
    """max h·λ_max(H) over the GD iterates and the flow points (numpy, float Hessian)."""
    H = sp.lambdify([params], sp.hessian(E, params), "numpy")
    pts = np.concatenate([gd[np.all(np.isfinite(gd), axis=1)], flow[np.all(np.isfinite(flow), axis=1)]])
    worst = max(float(np.linalg.eigvalsh(np.array(H(p), dtype=float))[-1]) for p in pts)
    return h * worst, bool(np.all(np.isfinite(gd)))


def baseline(E, params, theta0, h, steps):
    gd = bea.gd(E, params, theta0, h, steps)
    flow = bea.trajectory(E, params, theta0, h, steps, flow="ngf")
    return gd, flow


def timed(fn, repeat):
    """(best CPU seconds of this process, result): CPU time, not wall time, so that the numbers
    mean the same on a machine shared with other jobs (single-threaded work: the two agree on an
    idle machine)."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def tightness(cert):
    """(max, median) of bound/distance over the steps whose distance is resolved
    (``Certificate.ratios``: above the reported distance error)."""
    r = cert.ratios
    return (float(np.max(r)), float(np.median(r))) if r.size else (np.nan, np.nan)


def run_case(name, E, params, theta0, h, steps, repeat=1, **kw):
    certify(E, params, theta0, h, 2, **kw)  # warm-up: kernels
    baseline(E, params, theta0, h, 2)
    tb, (gd, flow) = timed(lambda: baseline(E, params, theta0, h, steps), repeat)
    hl, gd_ok = stability(E, params, gd, flow, h)
    tc, cert = timed(lambda: certify(E, params, theta0, h, steps, **kw), repeat)
    worst, med = tightness(cert)
    return dict(name=name, n=len(params), h=h, hlam=hl, stable=bool(hl < 2 and gd_ok), cert=cert.certified,
                worst=worst, median=med, t_cert=tc, t_base=tb, reason=cert.reason)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--rigorous", action="store_true", help="rigorous=True (enclosed flow, GD in ball arithmetic)")
    args = ap.parse_args(argv)
    kw = dict(rigorous=True) if args.rigorous else {}
    rows = []
    head = f"{'case':<18} {'n':>2} {'h':>7} {'hλmax':>6} {'stable':>6} {'cert':>5} {'max b/d':>8} {'med b/d':>8} {'certify':>8} {'GD+GF':>7} {'ratio':>6}"
    print(f"bea.certify coverage, {args.steps} steps per case{' (rigorous)' if args.rigorous else ''}\n")
    print(head)
    for name, (E, params, th0, hs) in corpus().items():
        if args.only and name not in args.only:
            continue
        for h in hs:
            r = run_case(name, E, params, th0, h, args.steps, args.repeat, **kw)
            rows.append(r)
            print(f"{name:<18} {r['n']:>2} {h:>7g} {r['hlam']:6.2f} {str(r['stable']):>6} {str(r['cert']):>5} "
                  f"{r['worst']:8.3g} {r['median']:8.3g} {r['t_cert']:7.2f}s {r['t_base']:6.3f}s {r['t_cert'] / r['t_base']:5.0f}x",
                  flush=True)
            if not r["cert"]:
                print(f"{'':<20}reason: {r['reason'][:160]}")
    stable = [r for r in rows if r["stable"]]
    ratios = np.array([r["worst"] for r in rows if r["cert"] and np.isfinite(r["worst"])])
    medians = np.array([r["median"] for r in rows if r["cert"] and np.isfinite(r["median"])])
    small = [r for r in rows if r["n"] <= 5]
    print(f"\ncertified {sum(r['cert'] for r in rows)}/{len(rows)}; stable cases certified "
          f"{sum(r['cert'] for r in stable)}/{len(stable)}")
    if ratios.size:
        q = np.quantile(ratios, [0.0, 0.25, 0.5, 0.75, 1.0])
        print("max-over-steps bound/distance of the certified cases: min {:.3g}, q25 {:.3g}, median {:.3g}, q75 {:.3g}, max {:.3g}".format(*q))
        q = np.quantile(medians, [0.0, 0.25, 0.5, 0.75, 1.0])
        print("median-over-steps bound/distance of the certified cases: min {:.3g}, q25 {:.3g}, median {:.3g}, q75 {:.3g}, max {:.3g}".format(*q))
    if small:
        tc = np.array([r["t_cert"] for r in small])
        rt = np.array([r["t_cert"] / r["t_base"] for r in small])
        print(f"n ≤ 5: certify time median {np.median(tc):.3f} s, max {tc.max():.3f} s; "
              f"/ (GD + GF) median {np.median(rt):.1f}x, max {rt.max():.1f}x")
    return rows


if __name__ == "__main__":
    main()
