"""Benchmark the B-series of methods other than gradient descent.

    python benchmarks/bench_methods.py [--order 8] [--repeat 5]

CPU and wall times (best of ``--repeat``, every cache cleared before each run) of the loss-independent modified
equation up to h^order (all trees with ≤ order+1 nodes: 486 trees for order 8) for rk4 and implicit
midpoint, with the ratio against explicit Euler (gradient descent) measured in the same run. Also:
heavy-ball momentum with a rational m and with a symbolic m, the modifying integrator (substitution
law) of GD and rk4, and the substitution-law route to rk4's modified equation (the cross-check used
by the tests) against the recursion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sympy as sp  # noqa: E402

from bea import methods, series, trees  # noqa: E402
from bea.derive.methods import Momentum  # noqa: E402


def clear_all():
    series._clear_cache()
    for fn in (trees.level_sequences, trees.canonical, trees.subtree_splits, trees.symmetry, trees.density):
        fn.cache_clear()
    methods._internal_weights.cache_clear()


def best_of(fn, repeat: int) -> tuple[float, float]:
    """(best CPU time, best wall time): CPU time is robust to other load on a shared machine."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        clear_all()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - t0)
    clear_all()
    return cpu, wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    order, rep = args.order, args.repeat
    n_trees = sum(trees.count_trees(k) for k in range(1, order + 2))
    print(f"modified equations up to h^{order} ({n_trees} trees, ≤ {order + 1} nodes), best of {rep}, caches cleared\n")

    rows = []
    base = best_of(lambda: series.modified_series(order, "euler"), rep)
    rows.append(("explicit Euler (GD), recursion", base))
    for name in ("rk4", "implicit_midpoint", "midpoint", "heun"):
        rows.append((f"{name}, recursion", best_of(lambda name=name: series.modified_series(order, name), rep)))
    rows.append(("momentum m = 9/10, recursion (4)", best_of(lambda: series.modified_series(order, Momentum("9/10")), rep)))
    sym_order = min(order, 4)
    rows.append(
        (f"momentum symbolic m, to h^{sym_order} only", best_of(lambda: series.modified_series(sym_order, Momentum(sp.Symbol("m"))), 1))
    )
    sub_order = min(order, 6)
    rows.append((f"modifying integrator of GD, to h^{sub_order}", best_of(lambda: series.modifying_integrator(sub_order), rep)))
    rows.append((f"modifying integrator of rk4, to h^{sub_order}", best_of(lambda: series.modifying_integrator(sub_order, "rk4"), rep)))
    rows.append(
        (f"rk4 via substitution law b⋆e = a, to h^{sub_order}", best_of(lambda: series._modified_by_substitution(sub_order, "rk4"), rep))
    )
    rows.append((f"rk4, recursion, to h^{sub_order} (same work)", best_of(lambda: series.modified_series(sub_order, "rk4"), rep)))

    print("| series | CPU time (s) | wall (s) | CPU ratio vs GD to h^%d |" % order)
    print("|---|---|---|---|")
    for label, (cpu, wall) in rows:
        print(f"| {label} | {cpu:.4f} | {wall:.4f} | {cpu / base[0]:.2f} |")


if __name__ == "__main__":
    main()
