"""Benchmark: BEA flows with bea's numba integrator against scipy.integrate.solve_ivp, and PF runs.

    python benchmarks/bench_flows.py [--repeat N]

Part 1 — the same field, the same tolerances, the same end point for every solver:
    Rosenbrock E = (1 − x)² + 100(y − x²)², θ0 = (−1.2, 1), GD step h = 1e-3, integrated to t = 5
    (2.5 GD-time units past the valley entry: the Hessian eigenvalues reach ~1000, a stability-limited
    explicit problem like every BEA flow of a stiff-ish loss).  Fields: the NGF (order 0) and the
    order-3 BEA field f̃ = Σ_{k≤3} h^k f_k, both as the numba kernel of ``modified_field(...).compile()``;
    scipy calls the very same kernel (so the comparison is of the integrators, not of the fields).
    Pairs: bea "dopri5" vs scipy "RK45" (the same Dormand–Prince 5(4) pair) and bea "dop853" vs
    scipy "DOP853".  Accuracy = max-norm error of y(5) against scipy DOP853 at rtol = 1e-13,
    atol = 1e-15.  Ratio = scipy time / bea time for the matching pair (higher = bea faster).

Part 2 — ``trajectory(..., flow="pf")`` for 200 GD steps:
    a 50-parameter quadratic (constant Hessian: eigendecomposition once, then two mat-vecs per field
    evaluation) and a 10-parameter non-quadratic loss (an eigendecomposition per field evaluation,
    complex once hλ > 1, branch of log(1 − hλ) continued along the path: the argument matrix of
    log(I − hH) is carried in the state and refreshed after every accepted step).  Also the 50-parameter
    quadratic through the general (per-evaluation eigendecomposition) field, for comparison.

Times are the best of N runs after a first, untimed call; numba compilation (the first call in this
process: kernels, field closures, and loading the integrator's cached driver) is reported separately.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.integrate
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bea  # noqa: E402
from bea import flows  # noqa: E402
from bea.flows import gd, trajectory  # noqa: E402
from bea.integrate import solve  # noqa: E402
from bea.compile.loss import compile_loss  # noqa: E402

H_GD = 1e-3
T_END = 5.0
Y0 = np.array([-1.2, 1.0])


def best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def timed_first(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def part1(repeat):
    x, y = sp.symbols("x y")
    E = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    rows, compile_rows = [], []
    for label, order in (("NGF", 0), ("BEA order 3", 3)):
        t0 = time.perf_counter()
        kern = bea.modified_field(E, [x, y], order=order).compile()
        derive = time.perf_counter() - t0
        c, _ = timed_first(lambda: kern(Y0, H_GD))
        compile_rows.append((f"{label}: derive + generate kernel", derive))
        compile_rows.append((f"{label}: compile kernel (or load it from the disk cache)", c))
        ref = scipy.integrate.solve_ivp(lambda t, u: kern(u, H_GD), (0, T_END), Y0, method="DOP853",
                                        rtol=1e-13, atol=1e-15).y[:, -1]
        for rtol in (1e-6, 1e-9, 1e-12):
            atol = rtol * 1e-2
            for ours, theirs in (("dopri5", "RK45"), ("dop853", "DOP853")):
                run_b = lambda: solve(kern, Y0, [0.0, T_END], H_GD, method=ours, rtol=rtol, atol=atol)  # noqa: E731
                c, _ = timed_first(run_b)
                if rtol == 1e-6:
                    compile_rows.append((f"{label}: first bea {ours} call (driver from numba's cache)", c))
                tb, sb = best_of(run_b, repeat)
                run_s = lambda: scipy.integrate.solve_ivp(lambda t, u: kern(u, H_GD), (0, T_END), Y0,  # noqa: E731
                                                          method=theirs, rtol=rtol, atol=atol)
                ts, ss = best_of(run_s, max(1, repeat // 2))
                eb = np.abs(sb.y[-1] - ref).max()
                es = np.abs(ss.y[:, -1] - ref).max()
                rows.append((label, rtol, f"scipy {theirs}", ts, ss.nfev, es, 1.0))
                rows.append((label, rtol, f"bea {ours}", tb, sb.nfev, eb, ts / tb))
    print(f"## Part 1: integrators on the Rosenbrock flows (h = {H_GD:g}, t = 0..{T_END:g}, atol = rtol/100)\n")
    print("| field | rtol | solver | time [ms] | rhs evals | error at t=5 | ratio vs scipy (same pair) |")
    print("|---|---|---|---|---|---|---|")
    for label, rtol, solver, t, nfev, err, ratio in rows:
        print(f"| {label} | {rtol:.0e} | {solver} | {1e3 * t:.3f} | {nfev} | {err:.2e} | {ratio:.1f}x |")
    return compile_rows


def quadratic50(seed=0):
    rng = np.random.default_rng(seed)
    n = 50
    Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    lam = np.concatenate([[1.9, 1.5, 1.2], rng.uniform(0.01, 0.9, n - 3)])  # h = 1: three complex directions
    A = Q @ np.diag(lam) @ Q.T
    A = (A + A.T) / 2
    b = rng.normal(size=n) * 0.1
    th = sp.symbols(f"t0:{n}")
    # sp.Add of all terms at once (a Python sum() re-sorts a growing Add: quadratic in sympy)
    E = sp.Add(*[sp.Float(A[i, i] / 2) * th[i] ** 2 for i in range(n)],
               *[sp.Float(A[i, j]) * th[i] * th[j] for i in range(n) for j in range(i + 1, n)],
               *[sp.Float(b[i]) * th[i] for i in range(n)])
    return E, th, A, b, rng.normal(size=n)


def nonquadratic10():
    n = 10
    th = sp.symbols(f"u0:{n}")
    lam = np.linspace(0.05, 1.0, n)
    E = sp.Add(*[sp.Float(lam[i]) / 2 * th[i] ** 2 + th[i] ** 4 / 40 for i in range(n)],
               *[sp.Rational(1, 20) * th[i] ** 2 * th[i + 1] ** 2 for i in range(n - 1)])
    return E, th, 0.5 * np.cos(np.arange(n))


def part2(repeat):
    compile_rows, rows = [], []
    E, th, A, b, theta0 = quadratic50()
    h, steps = 1.0, 200
    t0 = time.perf_counter()
    compile_loss(E, th).grad  # noqa: B018 - sympy differentiation and code generation
    compile_rows.append(("50-parameter quadratic: derive + generate gradient kernel", time.perf_counter() - t0))
    c, _ = timed_first(lambda: trajectory(E, th, theta0, h, steps, flow="pf"))
    compile_rows.append(("50-parameter quadratic: first PF trajectory (compiles, eigh once)", c))
    t, pf = best_of(lambda: trajectory(E, th, theta0, h, steps, flow="pf"), repeat)
    g = gd(E, th, theta0, h, steps)
    rows.append(("50-param quadratic, PF (constant-Hessian path)", t, np.abs(pf.real - g).max() / np.abs(g).max()))
    loss = compile_loss(E, th)
    rhs = flows._field(loss, "pf", None, general=True)
    tt = h * np.arange(steps + 1)
    c, _ = timed_first(lambda: solve(rhs, theta0.astype(complex), tt, h, method="dop853", rtol=1e-10, atol=1e-12))
    compile_rows.append(("50-parameter quadratic: general PF field (Hessian kernel + closure)", c))
    t, sol = best_of(lambda: solve(rhs, theta0.astype(complex), tt, h, method="dop853", rtol=1e-10, atol=1e-12), max(1, repeat // 2))
    rows.append(("50-param quadratic, PF (general field: eigh per evaluation)", t, np.abs(sol.y.real - g).max() / np.abs(g).max()))
    t, gd_run = best_of(lambda: gd(E, th, theta0, h, steps), repeat)
    rows.append(("50-param quadratic, GD itself", t, 0.0))

    E, th, theta0 = nonquadratic10()
    loss = compile_loss(E, th)
    H0 = np.asarray(loss.hess(theta0))
    h = 1.5 / np.linalg.eigvalsh(H0).max()  # hλ₀ = 1.5 at the start: complex-stable
    c, _ = timed_first(lambda: trajectory(E, th, theta0, h, steps, flow="pf"))
    compile_rows.append(("10-parameter non-quadratic: first PF trajectory (compiles)", c))
    t, pf = best_of(lambda: trajectory(E, th, theta0, h, steps, flow="pf"), repeat)
    g = gd(E, th, theta0, h, steps)
    ngf = trajectory(E, th, theta0, h, steps, flow="ngf")
    rows.append((f"10-param non-quadratic, PF (h = {h:.3g}, hλ₀ = 1.5)", t, np.abs(pf.real - g).max() / np.abs(g).max()))
    t, _ = best_of(lambda: trajectory(E, th, theta0, h, steps, flow="pf+np"), repeat)
    rows.append(("10-param non-quadratic, PF+NP", t, np.nan))
    t, _ = best_of(lambda: trajectory(E, th, theta0, h, steps, flow="ngf"), repeat)
    rows.append(("10-param non-quadratic, NGF", t, np.abs(ngf - g).max() / np.abs(g).max()))
    print(f"\n## Part 2: bea.trajectory for {steps} GD steps (dop853, rtol = 1e-10, default atol)\n")
    print("| run | time [ms] | max abs error vs GD / max abs GD |")
    print("|---|---|---|")
    for label, t, err in rows:
        e = "—" if np.isnan(err) else f"{err:.1e}"
        print(f"| {label} | {1e3 * t:.1f} | {e} |")
    return compile_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, python {sys.version.split()[0]}\n")
    c1 = part1(args.repeat)
    c2 = part2(args.repeat)
    print("\n## Compilation and set-up (first calls in this process; excluded from the times above)\n")
    print("| what | seconds |")
    print("|---|---|")
    for label, t in c1 + c2:
        print(f"| {label} | {t:.2f} |")


if __name__ == "__main__":
    main()
