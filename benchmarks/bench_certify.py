"""Benchmark: bea.certify on the Rosenbrock loss, 1000 GD steps, floating-point and rigorous modes.

    python benchmarks/bench_certify.py [--repeat N] [--h H] [--steps K]

Problem: E = (1 − x)² + 100 (y − x²)², θ0 = (−1.2, 1), h = 1e-4, 1000 steps (t = 0.1: the fall into
the valley, Hessian eigenvalues from ~1500 down to ~900, λ_min < 0 on part of the way).

Baseline (named, measured in the same run): "GD + GF" — the 1000 float GD iterates and the
gradient flow integrated by bea's dop853 at every t = kh (rtol 1e-12), i.e. the actual distance
alone, without any certificate. Ratios are "certify time / baseline time" (the price of the proof).

Times are the best of N runs after a warm-up call (numba kernels, arb kernels and the codegen
caches are built once per process; the first-call time is reported separately).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bea.certificates.certify import _gd_float, _neg_grad_kernel, certify  # noqa: E402
from bea.integrate import solve  # noqa: E402
from bea.compile.loss import compile_loss  # noqa: E402

x, y = sp.symbols("x y")
E = (1 - x) ** 2 + 100 * (y - x**2) ** 2
THETA0 = [-1.2, 1.0]


def baseline(h, steps):
    loss = compile_loss(E, [x, y])
    rhs = _neg_grad_kernel(loss)
    th, _ = _gd_float(rhs, np.array(THETA0), h, steps)
    sol = solve(rhs, np.array(THETA0), h * np.arange(steps + 1), 0.0, method="dop853", rtol=1e-12, atol=1e-14)
    return np.linalg.norm(th - sol.y, axis=1)


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--h", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args(argv)
    h, steps = args.h, args.steps

    t0 = time.perf_counter()
    certify(E, [x, y], THETA0, h, 5)
    first = time.perf_counter() - t0

    t_base, dist = best_of(lambda: baseline(h, steps), args.repeat)
    rows = [("baseline: GD + GF (dop853), no certificate", t_base, None)]
    certs = {}
    for label, kw in [
        ("certify, float (discrete)", dict()),
        ("certify, float (theorem1)", dict(mode="theorem1")),
        ("certify, rigorous (discrete)", dict(rigorous=True)),
    ]:
        t, cert = best_of(lambda: certify(E, [x, y], THETA0, h, steps, **kw), args.repeat)
        rows.append((label, t, cert))
        certs[label] = cert

    print(f"Rosenbrock, theta0 = {THETA0}, h = {h:g}, {steps} steps (t = {h * steps:g}); best of {args.repeat}")
    print(f"first call in this process (kernel compilation, 5 steps): {first:.2f} s\n")
    print(f"{'job':<44} {'time [s]':>9} {'/ baseline':>11}   certified  bound/dist  final bound")
    for label, t, cert in rows:
        if cert is None:
            print(f"{label:<44} {t:9.3f} {'1':>11}   {'-':>9}  {'-':>10}  distance {dist[-1]:.4g}")
        else:
            print(f"{label:<44} {t:9.3f} {t / t_base:10.0f}x   {str(cert.certified):>9}  {cert.ratio:10.3g}  {cert.bound[-1]:.4g}")
    rig = certs["certify, rigorous (discrete)"]
    parts = {k: v for k, v in rig.info.items() if k.startswith("time_")}
    print("\nrigorous mode, where the time goes: " + ", ".join(f"{k[5:]} {v:.2f} s" for k, v in parts.items()))
    subs = rig.info.get("substeps", [])
    if subs:
        print(f"  Taylor order {rig.info.get('taylor_order')}, substeps per GD step: mean {np.mean(subs):.2f}, max {max(subs)}")
    print(f"  max distance_error (proven) {np.nanmax(rig.distance_error):.2e}")


if __name__ == "__main__":
    main()
