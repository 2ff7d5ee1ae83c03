"""Benchmark of bea.compile.codegen: compile time, disk-cache hits, per-call and batched evaluation.

    python benchmarks/bench_codegen.py [--order 4] [--points 100000] [--repeat 7]

The workload is the order-``order`` modified field of gradient descent on the Rosenbrock loss
E = (1-x)² + 100(y-x²)² (``bea.modified_field``; before that existed, :func:`stand_in_field` built it
from the gradient-notation formulas f_0..f_4 of design.md). Baselines, timed in the same run:
``sympy.lambdify(..., "numpy")`` (with and without its ``cse=True``) and symengine
``Lambdify(..., backend="llvm", cse=True)``. Compile times are measured in fresh processes: one with an
empty BEA_CACHE_DIR (cold) and one reusing it (cached). Times are best of ``--repeat`` repeats.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
import sympy as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

X, Y = sp.symbols("x y")
LOSS = (1 - X) ** 2 + 100 * (Y - X**2) ** 2


def stand_in_field(order: int = 4):
    """(field, params, h) for the Rosenbrock loss: ``bea.modified_field(E, [x, y], order).field`` when
    bea provides it, else the gradient-notation terms f_0..f_4 of design.md §1 built with sympy."""
    modified_field = getattr(importlib.import_module("bea"), "modified_field", None)
    if modified_field is not None:
        mf = modified_field(LOSS, [X, Y], order)
        return mf.field, list(mf.params), mf.h
    return formula_field(order)


def formula_field(order: int = 4):
    """The stand-in: f_0..f_order of design.md §1 (gradient notation), summed with powers of h."""
    if order > 4:
        raise ValueError("the stand-in field is known up to order 4")
    h, P = sp.Symbol("h", positive=True), [X, Y]
    d = lambda k: sp.derive_by_array(d(k - 1), P) if k else LOSS  # noqa: E731  (∇^k E as an Array)

    def contract(k, *vecs):  # ∇^k E (v_1, ..., v_{k-1}) as a column Matrix
        t = d(k)
        for v in vecs:
            t = sp.tensorcontraction(sp.tensorproduct(t, sp.Array(list(v))), (t.rank() - 1, t.rank()))
        return sp.Matrix(list(t))

    R = sp.Rational
    g, H = contract(1), sp.Matrix(d(2).tolist())
    Hg = H * g
    T = lambda a, b: contract(3, a, b)  # noqa: E731
    Tgg = T(g, g)
    terms = [
        -g,
        -R(1, 2) * Hg,
        -(R(1, 3) * H * Hg + R(1, 12) * Tgg),
        -(R(1, 4) * H**2 * Hg + R(1, 12) * H * Tgg + R(1, 12) * T(g, Hg)),
        -(R(1, 5) * H**3 * Hg + R(3, 40) * H**2 * Tgg + R(1, 10) * H * T(g, Hg)
          + R(1, 180) * H * contract(4, g, g, g) + R(1, 20) * T(g, H * Hg) + R(1, 120) * T(g, Tgg)
          + R(1, 60) * T(Hg, Hg) - R(1, 120) * contract(4, g, g, Hg) - R(1, 720) * contract(5, g, g, g, g)),
    ]
    return sum((h**k * terms[k] for k in range(order + 1)), sp.zeros(2, 1)), P, h


# --------------------------------------------------------------------------- child process
def child(order: int) -> None:
    """Time one new process: numba init, compile_exprs, first calls. Prints JSON."""
    t0 = time.perf_counter()
    import numba

    @numba.njit
    def warm(a):
        return a.sum()

    warm(np.ones(2))  # numba's one-time process initialisation, paid by any first jitted call
    t_init = time.perf_counter() - t0
    field, params, h = stand_in_field(order)
    from bea.compile.codegen import compile_exprs

    theta = np.array([-0.7, 1.3])
    steps = {
        "gen": lambda: compile_exprs(field, params, [h]),
        "call": lambda: compile_exprs(field, params, [h])(theta, 0.01),
        "complex": lambda: compile_exprs(field, params, [h])(theta.astype(complex), 0.01),
        "batch": lambda: compile_exprs(field, params, [h]).batch(np.tile(theta, (64, 1)), 0.01),
        # symengine's LLVM code behind a numba wrapper (ModifiedField.compile()'s default when installed)
        "llvm": lambda: compile_exprs(field, params, [h], backend="llvm")(theta, 0.01),
    }
    out = {"init": t_init}
    for key, step in steps.items():
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        out[key] = time.perf_counter() - wall
        out[key + "_cpu"] = time.process_time() - cpu
    kern = compile_exprs(field, params, [h])
    out.update(from_disk=kern.from_disk_cache, hits=sum(kern.stats.cache_hits.values()))
    print(json.dumps(out))


def run_child(order: int, cache: str) -> dict:
    env = dict(os.environ, BEA_CACHE_DIR=cache)
    res = subprocess.run([sys.executable, __file__, "--child", "--order", str(order)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def best(f, repeat: int) -> float:
    """Best time per call (s) over ``repeat`` repeats of an autoranged number of calls."""
    timer = timeit.Timer(f)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def fmt(t: float) -> str:
    return f"{t * 1e6:9.2f} µs" if t < 1e-3 else f"{t * 1e3:9.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.order)

    import numba
    import symengine as se  # the dev extra of pyproject

    import bea
    from bea.compile.codegen import compile_exprs

    field, params, h = stand_in_field(args.order)
    repl, reduced = sp.cse(list(field))
    nops = sum(sp.count_ops(e) for _, e in repl) + sum(sp.count_ops(e) for e in reduced)
    source = "bea.modified_field" if hasattr(bea, "modified_field") else "stand-in: design.md formulas"

    with tempfile.TemporaryDirectory() as cache:
        cold = run_child(args.order, cache)
        warm = run_child(args.order, cache)

    with tempfile.TemporaryDirectory() as cache:
        os.environ["BEA_CACHE_DIR"] = cache
        kern = compile_exprs(field, params, [h])
        theta, hv = np.array([-0.7, 1.3]), 0.01
        ours = kern(theta, hv)
        lkern = compile_exprs(field, params, [h], backend="llvm")
        np.testing.assert_allclose(lkern(theta, hv), ours, rtol=1e-10)
        t0 = time.perf_counter()
        lam = sp.lambdify([*params, h], field, "numpy")
        t_lam = time.perf_counter() - t0
        lam_cse = sp.lambdify([*params, h], field, "numpy", cse=True)
        t0 = time.perf_counter()
        sel = se.Lambdify([*params, h], list(field), backend="llvm", cse=True)
        t_se = time.perf_counter() - t0
        point = np.array([*theta, hv])
        for other in (np.ravel(lam(*theta, hv)), np.ravel(lam_cse(*theta, hv)), sel(point)):
            np.testing.assert_allclose(other, ours, rtol=1e-10)

        calls = {
            "bea kernel kern(theta, h)": lambda: kern(theta, hv),
            "bea kernel, backend='llvm'": lambda: lkern(theta, hv),
            "sympy lambdify numpy": lambda: lam(*theta, hv),
            "sympy lambdify numpy, cse=True": lambda: lam_cse(*theta, hv),
            "symengine Lambdify llvm, cse=True": lambda: sel(point),
        }
        per_call = {k: best(f, args.repeat) for k, f in calls.items()}
        ctheta = theta + 0.1j
        kern(ctheta, hv)
        per_call_complex = best(lambda: kern(ctheta, hv), args.repeat)

        rng = np.random.default_rng(0)
        thetas = rng.uniform([-1.5, -0.5], [1.5, 2.0], size=(args.points, 2))
        with_h = np.column_stack([thetas, np.full(args.points, hv)])
        into = kern.into

        @numba.njit
        def serial(ths, hh):
            out = np.empty((ths.shape[0], 2))
            for i in range(ths.shape[0]):
                into(ths[i], hh, out[i])
            return out

        batch_ref = kern.batch(thetas, hv)
        # a guard against garbage only: near the zeros of the field both lose digits to cancellation
        np.testing.assert_allclose(sel(with_h), batch_ref, rtol=1e-8, atol=1e-12 * np.abs(batch_ref).max())
        np.testing.assert_array_equal(serial(thetas, hv), batch_ref)
        batched = {
            f"bea kern.batch (prange, {numba.get_num_threads()} threads)": lambda: kern.batch(thetas, hv),
            "bea kern.into in a serial njit loop": lambda: serial(thetas, hv),
            "symengine Lambdify llvm, batched": lambda: sel(with_h),
            "sympy lambdify numpy, vectorised": lambda: lam(thetas[:, 0], thetas[:, 1], hv),
        }
        per_batch = {k: best(f, args.repeat) for k, f in batched.items()}
        cthetas = thetas + 0.1j
        kern.batch(cthetas, hv)
        per_batch_complex = best(lambda: kern.batch(cthetas, hv), args.repeat)

    print(f"bea.compile.codegen benchmark: Rosenbrock modified field, order {args.order} (from {source})")
    print(f"  {len(field)} outputs, {sp.count_ops(field)} ops, {nops} ops after cse")
    print(f"  numba {numba.__version__}, threading layer {numba.threading_layer()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} (other processes make parallel timings noisy)\n")

    print("compile, in a new process, wall (cpu)          cold (empty cache)    cached (same cache)")
    label = "numba one-time process init (any njit)"
    print(f"  {label:44s} {cold['init']:8.3f} s {'':9s} {warm['init']:8.3f} s")
    rows = [("compile_exprs (cse+print, or index lookup)", "gen"), ("first call, float64 theta", "call"),
            ("first call, complex128 theta", "complex"), ("first kern.batch call (parallel=True)", "batch"),
            ("backend='llvm': symengine + wrapper + call", "llvm")]
    for label, key in rows:
        print(f"  {label:44s} {cold[key]:8.3f} s ({cold[key + '_cpu']:5.3f}) "
              f"{warm[key]:8.3f} s ({warm[key + '_cpu']:5.3f})")
    for label, c in (("compile_exprs + first float64 call", lambda r: r["gen"] + r["call"]),
                     ("... including numba's process init", lambda r: r["init"] + r["gen"] + r["call"])):
        print(f"  {label:44s} {c(cold):8.3f} s {'':9s} {c(warm):8.3f} s")
    print(f"  {'module file reused / numba cache hits':44s} {cold['from_disk']!s:>5} / {cold['hits']}"
          f"{'':11s} {warm['from_disk']!s:>5} / {warm['hits']}")
    print(f"  for reference: sympy lambdify {t_lam:.3f} s, symengine Lambdify llvm {t_se:.3f} s\n")

    ref = per_call["bea kernel kern(theta, h)"]
    print(f"per call, theta float64[2], h float      {'time':>12s}   {'time / bea kernel':>17s}")
    for k, t in per_call.items():
        print(f"  {k:38s} {fmt(t)}   {t / ref:16.1f}x")
    print(f"  {'bea kernel, complex128 theta':38s} {fmt(per_call_complex)}   {per_call_complex / ref:16.1f}x")
    ref = per_batch["symengine Lambdify llvm, batched"]
    print(f"\nbatched over {args.points:.0e} points              {'time':>12s}   {'time / symengine':>17s}")
    for k, t in per_batch.items():
        print(f"  {k:38s} {fmt(t)}   {t / ref:16.2f}x")
    label, t = "bea kern.batch, complex128 thetas", per_batch_complex
    print(f"  {label:38s} {fmt(t)}   {t / ref:16.2f}x")


if __name__ == "__main__":
    main()
