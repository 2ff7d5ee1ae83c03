"""The numeric modified field (bea.torch.modified_field) vs n, against direct torch autodiff in the same run.

    python benchmarks/bench_torch_modified.py            # n = 1e2 … 1e6, orders 1–3, CPU, 1 thread
    python benchmarks/bench_torch_modified.py --quick    # n ≤ 1e4 (smoke test)
    python benchmarks/bench_torch_modified.py --device cuda --threads 0 --dtype float32

The loss: a tanh MLP d-w-w-10 with biases, cross-entropy on 256 synthetic samples (d = 32), with the
width w chosen so that n ≈ 1e2, 1e3, 1e4, 1e5, 1e6.  For each n and order 1–3:

* the unit: one HVP, forward-over-reverse (``bea.torch.hvp(mode="fwd")``) — "one HVP-equivalent";
* the numeric route: time per call of ``modified_field(f, order).terms(θ)``, its counted cost (the
  plan's ``hvp_equivalents``) and its measured cost (time / HVP time);
* the baseline: the same terms written by hand with ``bea.torch.linalg`` — g and H^k g from one
  ``hvp_operator`` (one backward per product), T(g, g) from ``tgg`` (three reverse passes) and, at
  order 3, T(g, Hg) by polarisation ¼(T(g+Hg, g+Hg) − T(g−Hg, g−Hg));
* agreement: the largest relative difference of the terms, numeric route vs baseline.

Goal (issue #12): at n ≈ 1e5, order 3, ≤ 50 HVP-equivalents per call (measured).  Timings are the
minimum over repeats (the machines these run on are shared).  Numbers go to stdout.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import bea.torch as bt
from bea.torch.linalg import hvp_operator, tgg

D_IN, N_OUT, N_SAMPLES = 32, 10, 256


def width_for(n_target: int) -> int:
    """Hidden width w with n(w) = (D_IN + 1)w + (w + 1)w + (w + 1)N_OUT closest to n_target."""
    b = D_IN + 1 + 1 + N_OUT
    return max(1, round((-b + math.sqrt(b * b + 4 * (n_target - N_OUT))) / 2))


def mlp_loss(n_target, dtype, device, seed=0):
    w = width_for(n_target)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(N_SAMPLES, D_IN, generator=gen, dtype=torch.float64)
    y = torch.randint(0, N_OUT, (N_SAMPLES,), generator=gen)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(D_IN, w), torch.nn.Tanh(), torch.nn.Linear(w, w), torch.nn.Tanh(), torch.nn.Linear(w, N_OUT)
    )
    return bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y, dtype=dtype, device=device)


def interleaved_best(fns: dict, repeat: int, sync) -> dict:
    """{name: min time} with the candidates timed round-robin, so that a load change on the shared
    machine hits all of them alike (one warm-up call each first)."""
    times = {name: [] for name in fns}
    for rnd in range(repeat + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            if rnd:
                times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def direct_terms(f, th, order):
    """f_0..f_order (order ≤ 3) written by hand with hvp_operator and tgg (design.md §1)."""
    op = hvp_operator(f, th)
    g = op.grad
    out = [-g]
    if order >= 1:
        Hg = op(g)
        out.append(-0.5 * Hg)
    if order >= 2:
        HHg = op(Hg)
        Tgg = tgg(f, th, g)
        out.append(-(HHg / 3 + Tgg / 12))
    if order >= 3:
        T_g_Hg = 0.25 * (tgg(f, th, g + Hg) - tgg(f, th, g - Hg))
        out.append(-(op(HHg) / 4 + op(Tgg) / 12 + T_g_Hg / 12))
    return out


def rel_diff(a, b):
    return max(float(torch.linalg.vector_norm(x - y) / torch.linalg.vector_norm(y).clamp_min(1e-300)) for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n up to 1e4 only")
    ap.add_argument("--sizes", type=str, default=None, help="comma-separated target n (default 1e2..1e6)")
    ap.add_argument("--orders", type=str, default="1,2,3")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave torch's default)")
    ap.add_argument("--modes", type=str, default="rev", help="comma-separated: rev,fwd")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else [100, 1000, 10_000, 100_000, 1_000_000]
    if args.quick and not args.sizes:
        sizes = [100, 1000, 10_000]
    orders = [int(o) for o in args.orders.split(",")]
    modes = args.modes.split(",")
    print(f"device {device}, dtype {args.dtype}, threads {torch.get_num_threads()}, MLP {D_IN}-w-w-{N_OUT} tanh, "
          f"{N_SAMPLES} samples, cross-entropy")
    print(f"{'n':>9s} {'order':>5s} {'mode':>4s} {'HVP ms':>9s} {'numeric ms':>11s} {'HVP-eq counted':>14s} "
          f"{'measured':>9s} {'direct ms':>10s} {'direct HVP-eq':>13s} {'numeric/direct':>14s} {'rel diff':>9s}")
    goal = None
    for n_target in sizes:
        f, th = mlp_loss(n_target, dtype, device)
        repeat = 5 if f.n <= 200_000 else 2
        v = torch.randn_like(th)
        fields = {(order, mode): bt.modified_field(f, order, mode=mode) for order in orders for mode in modes}
        fns = {"hvp": lambda: bt.hvp(f, th, v, mode="fwd")}
        for order in orders:
            fns[("direct", order)] = lambda order=order: direct_terms(f, th, order)
        for key, mf in fields.items():
            fns[key] = lambda mf=mf: mf.terms(th)
        t = interleaved_best(fns, repeat, sync)
        t_hvp = t["hvp"]
        for (order, mode), mf in fields.items():
            t_num, t_dir = t[(order, mode)], t[("direct", order)]
            diff = rel_diff(mf.terms(th), direct_terms(f, th, order))
            measured = t_num / t_hvp
            print(f"{f.n:9d} {order:5d} {mode:>4s} {t_hvp * 1e3:9.2f} {t_num * 1e3:11.2f} {mf.hvp_equivalents:14.1f} "
                  f"{measured:9.2f} {t_dir * 1e3:10.2f} {t_dir / t_hvp:13.2f} {t_num / t_dir:14.2f} {diff:9.1e}")
            if order == 3 and mode == "rev" and 50_000 <= f.n <= 200_000:
                goal = (f.n, measured)
        del f, th, fields, fns
    if goal is not None:
        n, measured = goal
        print(f"\ngoal (n ≈ 1e5, order 3, ≤ 50 HVP-equivalents per call): n = {n}: {measured:.1f} measured "
              f"-> {'met' if measured <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
