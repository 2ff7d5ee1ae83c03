"""Benchmarks of the distributed engines (bea.sweep on dask.distributed, bea.torch.distributed on gloo).

    python benchmarks/bench_sweep.py            # both sections
    python benchmarks/bench_sweep.py --quick    # smaller sizes (smoke test)
    python benchmarks/bench_sweep.py --section sweep|hvp

1. A 24-point certify sweep (Himmelblau, 4 start points × 6 step sizes, ``bea.certify``) on a
   2-worker LocalCluster against the same 24 calls in a loop in this process (baseline, kernels
   compiled beforehand). Reported: the cold sweep (cluster start + workers loading the kernels from
   the disk cache), the warm one (a second sweep on the same cluster), their speed-ups over the loop,
   and that the rows equal the loop's results.
2. Data-parallel HVPs on the digits MLP (64-50-50-10 tanh, no bias, cross-entropy on the 1797 images,
   n = 6200, float64, 1 intra-op thread per process): the linearised HVP operator of Lanczos and a
   40-step Lanczos on a 2-rank gloo group (each rank half the images) against one process on all
   images (1 and 2 threads). The distribution overhead is the 2-rank product minus the same product
   on the rank's own half without the all-reduce (measured on the same rank); the all-reduce of one
   n-vector alone is reported too.

Timings are minima over repeats (the machines these run on are shared).  Numbers go to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import tempfile
import time
import timeit

import numpy as np


# --------------------------------------------------------------------------------------------------
# 1. certify sweep
# --------------------------------------------------------------------------------------------------


def section_sweep(quick):
    import sympy as sp
    from distributed import Client, LocalCluster

    import bea
    from bea.sweep import result_row, sweep

    x, y = sp.symbols("x y")
    E = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
    starts = [[0.5, 0.5], [-1.0, 2.5], [1.5, -1.0], [-2.0, -1.5]]
    hs = [0.008, 0.006, 0.005, 0.004, 0.003, 0.002]
    steps = 60 if quick else 300
    bea.certify(E, [x, y], starts[0], hs[0], 2)  # compile (and fill the disk cache) first

    t0 = time.perf_counter()
    serial = [[result_row(bea.certify(E, [x, y], th, h, steps)) for h in hs] for th in starts]
    t_serial = time.perf_counter() - t0

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"BEA_CACHE_DIR": str(bea.cache_dir().parent)}, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        t_start = time.perf_counter() - t0
        df = sweep(bea.certify, E, [x, y], theta0=starts, h=hs, steps=steps, client=client, progress=False)
        t_cold = time.perf_counter() - t0
        t1 = time.perf_counter()
        df2 = sweep(bea.certify, E, [x, y], theta0=starts, h=hs, steps=steps, client=client, progress=False)
        t_warm = time.perf_counter() - t1
    same = all(
        df.loc[df.index[(df.theta0_index == i) & (df.h == h)][0], k] == v or (isinstance(v, float) and np.isnan(v))
        for i in range(len(starts)) for j, h in enumerate(hs) for k, v in serial[i][j].items()
    ) and df.equals(df2)
    n = len(starts) * len(hs)
    print(f"\n1. certify sweep: {n} points ({len(starts)} starts x {len(hs)} h), {steps} steps each, Himmelblau")
    print(f"   serial loop in this process (baseline)  {t_serial:8.2f} s   ({t_serial / n * 1e3:.0f} ms per certificate)")
    print(f"   2-worker LocalCluster, cold             {t_cold:8.2f} s   speed-up {t_serial / t_cold:.2f}x"
          f"   (cluster start {t_start:.2f} s)")
    print(f"   2-worker LocalCluster, warm             {t_warm:8.2f} s   speed-up {t_serial / t_warm:.2f}x")
    print(f"   rows equal the serial certificates and the two sweeps: {same};"
          f" certified {int(df.certified.sum())}/{n}, errors {int(df.error.notna().sum())}")


# --------------------------------------------------------------------------------------------------
# 2. data-parallel HVPs
# --------------------------------------------------------------------------------------------------


def _digits(n_samples):
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:n_samples], y[:n_samples]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 50, bias=False), torch.nn.Tanh(), torch.nn.Linear(50, 50, bias=False), torch.nn.Tanh(),
        torch.nn.Linear(50, 10, bias=False),
    ).double()
    return model, torch.tensor(X / 16.0, dtype=torch.float64), torch.tensor(y)


def _best(fn, number, repeat):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def _hvp_times(f, theta, number, repeat, lanczos_iter):
    import torch

    import bea.torch as bt
    from bea.torch.linalg import hvp_operator

    op = hvp_operator(f, theta)
    v = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(3), dtype=theta.dtype)
    t_hvp = _best(lambda: op(v), number, repeat)
    t_grad = _best(lambda: bt.grad(f, theta), number, repeat)
    t_lan = _best(lambda: bt.lanczos(f, theta, k=1, which="largest", max_iter=lanczos_iter, tol=1e-14), 1, max(2, repeat // 2))
    lam = bt.lanczos(f, theta, k=1, which="largest", max_iter=lanczos_iter, tol=1e-14).values
    return t_hvp, t_grad, t_lan, float(lam[0])


def _rank(rank, world, store, n_samples, number, repeat, lanczos_iter, out):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    import bea.torch as bt
    from bea.torch.distributed import sharded_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=300))
    try:
        model, X, y = _digits(n_samples)
        f, theta = sharded_loss(model, F.cross_entropy, X, y)
        dist.barrier()
        _, t_grad, t_lan, lam = _hvp_times(f, theta, number, repeat, lanczos_iter)
        # the same product on this rank's half alone (no collective), interleaved with the sharded
        # one so that both see the same load: the difference is what distribution adds
        from bea.torch.linalg import hvp_operator

        local, _ = bt.flat_loss(model, F.cross_entropy, f.inputs, f.targets)
        op, op_local = hvp_operator(f, theta), hvp_operator(local, theta)
        v = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(3), dtype=theta.dtype)
        op(v), op_local(v)
        t_hvp = t_local = float("inf")
        for _ in range(repeat):
            dist.barrier()
            t_hvp = min(t_hvp, timeit.timeit(lambda: op(v), number=number) / number)
            t_local = min(t_local, timeit.timeit(lambda: op_local(v), number=number) / number)
        buf = torch.randn(theta.numel(), dtype=torch.float64)
        dist.barrier()
        t_ar = _best(lambda: dist.all_reduce(buf), number, repeat)
        np.save(os.path.join(out, f"rank{rank}.npy"), np.array([t_hvp, t_grad, t_lan, lam, t_local, t_ar]))
    finally:
        dist.destroy_process_group()


def section_hvp(quick):
    import torch
    import torch.multiprocessing as mp
    import torch.nn.functional as F

    import bea.torch as bt

    n_samples = 600 if quick else 1797
    number, repeat = (5, 3) if quick else (20, 5)
    lanczos_iter = 40
    model, X, y = _digits(n_samples)
    f, theta = bt.flat_loss(model, F.cross_entropy, X, y)
    single = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        single[threads] = _hvp_times(f, theta, number, repeat, lanczos_iter)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_rank, args=(2, os.path.join(tmp, "store"), n_samples, number, repeat, lanczos_iter, tmp),
                           nprocs=2, join=True, start_method="spawn")
        ranks = [np.load(os.path.join(tmp, f"rank{r}.npy")) for r in range(2)]
    t_hvp, t_grad, t_lan, lam, t_local, t_ar = np.max(ranks, axis=0)  # the slower rank sets the pace
    s1, s2 = single[1], single[2]
    print(f"\n2. data-parallel HVPs: digits MLP, n = {theta.numel()}, {n_samples} images, float64")
    print("                                  HVP (ms)   grad (ms)   Lanczos 40 it (s)   lambda_max")
    print(f"   1 process, 1 thread (baseline)  {s1[0] * 1e3:7.2f}    {s1[1] * 1e3:7.2f}      {s1[2]:8.3f}        {s1[3]:.15g}")
    print(f"   1 process, 2 threads            {s2[0] * 1e3:7.2f}    {s2[1] * 1e3:7.2f}      {s2[2]:8.3f}        {s2[3]:.15g}")
    print(f"   2 ranks (gloo), 1 thread each   {t_hvp * 1e3:7.2f}    {t_grad * 1e3:7.2f}      {t_lan:8.3f}        {lam:.15g}")
    print(f"   2-rank speed-up over 1 process x 1 thread: HVP {s1[0] / t_hvp:.2f}x, Lanczos {s1[2] / t_lan:.2f}x; "
          f"over 1 process x 2 threads: HVP {s2[0] / t_hvp:.2f}x")
    print(f"   overhead of distribution per HVP: {(t_hvp - t_local) * 1e3:.2f} ms = sharded {t_hvp * 1e3:.2f} ms - "
          f"local half alone {t_local * 1e3:.2f} ms ({(t_hvp / t_local - 1) * 100:.0f}%); "
          f"all-reduce of one {theta.numel()}-vector {t_ar * 1e3:.3f} ms")
    print(f"   |lambda_max(2 ranks) - lambda_max(1 process)| = {abs(lam - s1[3]):.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--section", choices=["sweep", "hvp"], default=None)
    args = ap.parse_args()
    if args.section in (None, "sweep"):
        section_sweep(args.quick)
    if args.section in (None, "hvp"):
        section_hvp(args.quick)


if __name__ == "__main__":
    main()
