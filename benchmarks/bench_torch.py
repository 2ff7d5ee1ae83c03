"""Benchmarks of the torch backend (bea.torch), each against a named baseline in the same run.

    python benchmarks/bench_torch.py            # all sections, CPU, 1 intra-op thread
    python benchmarks/bench_torch.py --quick    # smaller sizes (smoke test, ~1 min)
    python benchmarks/bench_torch.py --device cuda --threads 0

Sections (the digits MLP is 64-50-50-10 without bias, tanh, cross-entropy on all 1797 images of
``sklearn.datasets.load_digits``, full batch: n = 6200 parameters):

1. HVP cost / gradient cost (target ≤ 3×): reverse-over-reverse, forward-over-reverse, and the
   linearised operator of Lanczos (one backward per product), float32 and float64.
2. Lanczos λ_min to 1e-3 relative in ≤ 50 HVPs: against the dense Hessian (chunked
   ``jacrev(grad)``) + ``eigvalsh`` — its eigenvalues are the reference and its time the baseline.
3. certify of the digits MLP for 1000 GD steps (target < 60 s on CPU), with its time breakdown;
   baseline: the same GD run alone (what a certificate costs relative to training).
4. The tableau-driven torch RK loop against the numba solver of bea.integrate on the same field and
   tolerance (same steps; the ratio is the per-step overhead of a Python loop over tensors).

Timings are the minimum over repeats (the machines these run on are shared).  Numbers go to stdout.
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
import torch

import bea.torch as bt
from bea.torch.linalg import hessian, hvp_operator, lanczos_operator


def digits_mlp(dtype, device, act=torch.nn.Tanh, seed=0, n_samples=None):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    X = torch.tensor(X / 16.0, dtype=dtype, device=device)
    y = torch.tensor(y, device=device)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 50, bias=False), act(), torch.nn.Linear(50, 50, bias=False), act(), torch.nn.Linear(50, 10, bias=False)
    ).to(device=device, dtype=dtype)
    return bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y)


def best(fn, number=10, repeat=7, sync=None):
    def run():
        fn()
        if sync:
            sync()

    run()
    return min(timeit.repeat(run, number=number, repeat=repeat)) / number


def section_hvp(device, quick, sync):
    print("\n== 1. HVP cost / gradient cost (digits MLP, n = 6200; target ≤ 3×) ==")
    rows = []
    for dtype in (torch.float32, torch.float64):
        f, th = digits_mlp(dtype, device)
        v = torch.randn_like(th)
        op = hvp_operator(f, th)
        n_rep = 3 if quick else 7
        t_grad = best(lambda: bt.grad(f, th), repeat=n_rep, sync=sync)
        t_rev = best(lambda: bt.hvp(f, th, v), repeat=n_rep, sync=sync)
        t_fwd = best(lambda: bt.hvp(f, th, v, mode="fwd"), repeat=n_rep, sync=sync)
        t_op = best(lambda: op(v), repeat=n_rep, sync=sync)
        t_init = best(lambda: hvp_operator(f, th), repeat=n_rep, sync=sync)
        print(f"  {str(dtype):14s} gradient {t_grad * 1e3:7.3f} ms (baseline)")
        print(f"  {'':14s} hvp rev-over-rev (default) {t_rev * 1e3:7.3f} ms  = {t_rev / t_grad:4.2f}× gradient")
        print(f"  {'':14s} hvp fwd-over-rev           {t_fwd * 1e3:7.3f} ms  = {t_fwd / t_grad:4.2f}× gradient")
        print(f"  {'':14s} operator: setup {t_init * 1e3:7.3f} ms ({t_init / t_grad:4.2f}×), then per product "
              f"{t_op * 1e3:7.3f} ms = {t_op / t_grad:4.2f}× gradient")
        rows.append((dtype, t_grad, t_rev, t_fwd, t_op))
    return rows


def section_lanczos(device, quick, sync):
    print("\n== 2. Lanczos λ_min to 1e-3 relative in ≤ 50 HVPs (digits MLP, float64) ==")
    f, th0 = digits_mlp(torch.float64, device, n_samples=300 if quick else None)
    points = {"init": th0}
    points["after 300 GD steps (h = 0.1)"] = bt.gd(f, th0, 0.1, 300 if not quick else 50)[-1]
    for label, th in points.items():
        t0 = time.perf_counter()
        H = hessian(f, th, chunk_size=310)
        t_hess = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev = torch.linalg.eigvalsh(H)
        if sync:
            sync()
        t_eigh = time.perf_counter() - t0
        lam_min, lam_max = float(ev[0]), float(ev[-1])
        del H
        op = hvp_operator(f, th)
        # the same seed gives nested Krylov spaces: the Ritz value after m products, m = 2, 4, …
        first = {}
        for m in range(2, 81, 2):
            s = lanczos_operator(op, th.numel(), 1, "both", device=th.device, tol=1e-14, max_iter=m, vectors=False)
            for name, ref, val in (("λ_min", lam_min, float(s.values[-1])), ("λ_max", lam_max, float(s.values[0]))):
                if name not in first and abs(val - ref) <= 1e-3 * abs(ref):
                    first[name] = m
            if len(first) == 2:
                break
        t_l = best(lambda: lanczos_operator(op, th.numel(), 1, "both", device=th.device, tol=1e-14,
                                            max_iter=first.get("λ_min", 80), vectors=False), number=1, repeat=3, sync=sync)
        print(f"  at {label}: dense λ_min = {lam_min:.6g}, λ_max = {lam_max:.6g} "
              f"(dense Hessian {t_hess:.1f} s + eigvalsh {t_eigh:.1f} s: the baseline)")
        print(f"    Lanczos reaches 1e-3 relative: λ_min after {first.get('λ_min', '>80')} HVPs, λ_max after "
              f"{first.get('λ_max', '>80')} HVPs; that run takes {t_l:.3f} s = {(t_hess + t_eigh) / t_l:.0f}× faster than dense")
        # the default tolerance as users call it
        s = bt.lanczos(f, th, 1, "both", tol=1e-6)
        print(f"    bt.lanczos(k=1, 'both', tol=1e-6): {s.n_hvp} HVPs, λ_min rel. error "
              f"{abs(float(s.values[-1]) - lam_min) / abs(lam_min):.1e}, λ_max rel. error {abs(float(s.values[0]) - lam_max) / abs(lam_max):.1e}")


def section_certify(device, quick, sync):
    steps = 200 if quick else 1000
    print(f"\n== 3. certify of the digits MLP for {steps} GD steps (float32, h = 0.01; target < 60 s on CPU) ==")
    f, th = digits_mlp(torch.float32, device)
    t0 = time.perf_counter()
    bt.gd(f, th, 0.01, steps)
    t_gd = time.perf_counter() - t0
    t0 = time.perf_counter()
    cert = bt.certify(f, th, 0.01, steps, method="bs3", progress=False)
    t_c = time.perf_counter() - t0
    i = cert.info
    print(cert.summary())
    print(f"  certify total {t_c:.1f} s (GD alone, the baseline: {t_gd:.1f} s → {t_c / t_gd:.0f}×): GD {i['time_gd']:.1f} s, "
          f"flow {i['time_flow']:.1f} s ({i['nfev_flow']} gradients, bs3), spectra {i['time_spectra']:.1f} s "
          f"({i['n_spectra']} Lanczos runs, {i['n_hvp']} HVPs), tube/M {i['time_tube']:.1f} s")
    return cert


def section_solver(quick):
    import numba

    from bea.integrate import solve as nsolve

    print("\n== 4. torch RK loop vs the numba solver (Rosenbrock NGF, dop853, rtol 1e-10, same steps) ==")

    @numba.njit
    def rb(y, p):
        out = np.empty(2)
        out[0] = 2.0 * (1.0 - y[0]) + 400.0 * y[0] * (y[1] - y[0] * y[0])
        out[1] = -200.0 * (y[1] - y[0] * y[0])
        return out

    def rb_t(y):
        return torch.stack([2.0 * (1.0 - y[0]) + 400.0 * y[0] * (y[1] - y[0] ** 2), -200.0 * (y[1] - y[0] ** 2)])

    t_eval = np.linspace(0.0, 1.0 if quick else 5.0, 11)
    y0 = np.array([-1.2, 1.0])
    nsolve(rb, y0, t_eval, 0.0, method="dop853", rtol=1e-10, atol=1e-12)
    t_n = best(lambda: nsolve(rb, y0, t_eval, 0.0, method="dop853", rtol=1e-10, atol=1e-12), number=3, repeat=3)
    sol_n = nsolve(rb, y0, t_eval, 0.0, method="dop853", rtol=1e-10, atol=1e-12)
    y0t = torch.tensor(y0, dtype=torch.float64)
    t_t = best(lambda: bt.solve(rb_t, y0t, t_eval, method="dop853", rtol=1e-10, atol=1e-12), number=1, repeat=3)
    sol_t = bt.solve(rb_t, y0t, t_eval, method="dop853", rtol=1e-10, atol=1e-12)
    print(f"  numba (baseline) {t_n * 1e3:.2f} ms, torch {t_t * 1e3:.1f} ms = {t_t / t_n:.0f}× slower "
          f"({sol_t.naccepted} vs {sol_n.naccepted} accepted steps, max |Δy| = {np.abs(sol_t.y.numpy() - sol_n.y).max():.1e}); "
          "the torch loop is for network fields, where one gradient costs milliseconds")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--only", nargs="*", type=int, default=None, help="sections to run (1-4)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    print(f"bea.torch benchmarks: torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads")
    todo = set(args.only or [1, 2, 3, 4])
    if 1 in todo:
        section_hvp(device, args.quick, sync)
    if 2 in todo:
        section_lanczos(device, args.quick, sync)
    if 3 in todo:
        section_certify(device, args.quick, sync)
    if 4 in todo:
        section_solver(args.quick)


if __name__ == "__main__":
    main()
