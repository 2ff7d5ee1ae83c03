"""Benchmark: bea.integrate.solve against scipy.integrate.solve_ivp on the Rosenbrock gradient flow.

    python benchmarks/bench_integrate.py [--repeat N] [--cold]

Problem: NGF y' = −∇E(y), E = (1 − x)² + 100 (y − x²)², y(0) = (−1.2, 1), integrated to t = 10
(the trajectory falls into the valley, then crawls along it; the Hessian eigenvalues reach ~1000,
so explicit steps are stability-limited — a typical BEA flow).

Same field, same tolerances, same end point for every solver.  scipy is run with a plain numpy rhs
and with the very njit rhs bea uses.  Accuracy is the max-norm error of y(10) against a tight
independent reference (scipy DOP853, rtol = 2.3e-14, atol = 1e-16), so speed is compared at the
accuracy actually reached.  Times are the best of N runs; numba compilation is excluded from
them and reported separately (first call in this process; with --cold also in a fresh process
with an empty numba cache, i.e. the one-off cost of compiling the driver itself).

Ratios are "baseline time / this time" against the named baseline (higher = faster).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
import scipy
import scipy.integrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bea import integrate as bi  # noqa: E402

T_END = 10.0
Y0 = np.array([-1.2, 1.0])


@numba.njit
def ngf_njit(y, p):
    x0, x1 = y[0], y[1]
    out = np.empty(2)
    out[0] = 2.0 * (1.0 - x0) + 400.0 * x0 * (x1 - x0 * x0)
    out[1] = -200.0 * (x1 - x0 * x0)
    return out


def ngf_numpy(t, y):
    x0, x1 = y
    return np.array([2.0 * (1.0 - x0) + 400.0 * x0 * (x1 - x0 * x0), -200.0 * (x1 - x0 * x0)])


def ngf_scipy_njit(t, y):
    return ngf_njit(y, 0.0)


# the same field, but with an explicit (A-layout) signature: bea falls back to its per-dispatcher driver
@numba.njit(numba.types.float64[:](numba.types.float64[:], numba.types.float64))
def ngf_explicit(y, p):
    out = np.empty(2)
    out[0] = 2.0 * (1.0 - y[0]) + 400.0 * y[0] * (y[1] - y[0] * y[0])
    out[1] = -200.0 * (y[1] - y[0] * y[0])
    return out


def best_time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def reference():
    sol = scipy.integrate.solve_ivp(ngf_numpy, (0.0, T_END), Y0, method="DOP853", rtol=2.3e-14, atol=1e-16)
    assert sol.success
    return sol.y[:, -1]


def cold_compile_seconds() -> dict:
    """Driver compile time in a fresh process with an empty numba cache (then the warm-cache load)."""
    code = textwrap.dedent(
        f"""
        import sys, time, numpy as np, numba
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        t0 = time.perf_counter()
        from bea.integrate import solve
        @numba.njit
        def f(y, p):
            return -y
        t1 = time.perf_counter()
        solve(f, np.ones(2), [0.0, 1.0])
        t2 = time.perf_counter()
        solve(f, np.ones(2) + 0j, [0.0, 1.0])
        t3 = time.perf_counter()
        print(t2 - t1, t3 - t2)
        """
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty cache)", "warm (on-disk cache)"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = tuple(float(v) for v in res.stdout.split())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="also measure the from-scratch driver compile in a subprocess")
    args = ap.parse_args(argv)

    print(f"numba {numba.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    y_ref = reference()
    print(f"Rosenbrock NGF, y0 = {Y0.tolist()}, t = 0..{T_END:g}; reference y(T) = {y_ref.tolist()}")

    # compile / first-call costs (excluded from the timings below)
    print("\nfirst call in this process (numba compile of the rhs + load or compile of the driver):")
    for method in ("dopri5", "dop853"):
        t0 = time.perf_counter()
        bi.solve(ngf_njit, Y0, [0.0, T_END], method=method)
        print(f"  bea {method:<7s} first-class driver   {time.perf_counter() - t0:7.3f} s")
    t0 = time.perf_counter()
    bi.solve(ngf_explicit, Y0, [0.0, T_END], method="dopri5")
    print(f"  bea dopri5  per-dispatcher driver  {time.perf_counter() - t0:7.3f} s  (paid again for every new rhs)")
    if args.cold:
        for label, (real, cplx) in cold_compile_seconds().items():
            print(f"  fresh process, {label:<21s}: float64 driver + tiny rhs {real:6.2f} s, complex128 driver {cplx:6.2f} s")

    rows = []
    for rtol, atol in ((1e-6, 1e-9), (1e-9, 1e-12)):
        runs = [
            ("scipy RK45", "numpy", lambda: scipy.integrate.solve_ivp(ngf_numpy, (0, T_END), Y0, method="RK45", rtol=rtol, atol=atol)),
            ("scipy DOP853", "numpy", lambda: scipy.integrate.solve_ivp(ngf_numpy, (0, T_END), Y0, method="DOP853", rtol=rtol, atol=atol)),
            ("scipy RK45", "njit", lambda: scipy.integrate.solve_ivp(ngf_scipy_njit, (0, T_END), Y0, method="RK45", rtol=rtol, atol=atol)),
            ("scipy DOP853", "njit", lambda: scipy.integrate.solve_ivp(ngf_scipy_njit, (0, T_END), Y0, method="DOP853", rtol=rtol, atol=atol)),
            ("bea dopri5", "njit", lambda: bi.solve(ngf_njit, Y0, [0.0, T_END], method="dopri5", rtol=rtol, atol=atol)),
            ("bea dop853", "njit", lambda: bi.solve(ngf_njit, Y0, [0.0, T_END], method="dop853", rtol=rtol, atol=atol)),
            ("bea dopri5 (per-disp.)", "njit", lambda: bi.solve(ngf_explicit, Y0, [0.0, T_END], method="dopri5", rtol=rtol, atol=atol)),
        ]
        for name, rhs, fn in runs:
            fn()  # warm-up
            sec, sol = best_time(fn, args.repeat)
            y_end = sol.y[:, -1] if hasattr(sol, "sol") or name.startswith("scipy") else sol.y[-1]
            err = float(np.max(np.abs(y_end - y_ref)))
            rows.append((rtol, name, rhs, sec, err, sol.nfev))

    print("\nbest of %d runs; speed-up = baseline time / time" % args.repeat)
    header = f"{'rtol':>6s}  {'solver':<24s} {'rhs':<6s} {'time [ms]':>10s} {'error':>9s} {'nfev':>7s}  {'vs scipy RK45 numpy':>19s}  {'vs scipy DOP853 numpy':>21s}"
    print(header)
    print("-" * len(header))
    for rtol in (1e-6, 1e-9):
        sub = [r for r in rows if r[0] == rtol]
        base_rk45 = next(r[3] for r in sub if r[1] == "scipy RK45" and r[2] == "numpy")
        base_853 = next(r[3] for r in sub if r[1] == "scipy DOP853" and r[2] == "numpy")
        for _, name, rhs, sec, err, nfev in sub:
            print(f"{rtol:6.0e}  {name:<24s} {rhs:<6s} {1e3 * sec:10.3f} {err:9.1e} {nfev:7d}  {base_rk45 / sec:18.1f}x  {base_853 / sec:20.1f}x")
        print()


if __name__ == "__main__":
    main()
