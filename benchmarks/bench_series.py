"""Benchmark the symbolic engine: B-series coefficients and concrete modified fields.

    python benchmarks/bench_series.py

Reports, in one run:
* the full explicit-Euler modified-equation series with trees of up to N = 8, 10, 12, 13 nodes
  (``modified_series(order=N-1)``: N = 13 covers "order 12" in the h-power sense),
  from scratch (every cache cleared), and the same recursion with ``fractions.Fraction`` instead of
  python-flint's ``fmpq``;
* the named baseline: the ``BSeries`` package (D. Ketcheson; substitution law, sympy rationals),
  when it is installed (``pip install --no-deps bseries``), at the orders it finishes in
  reasonable time, with the ratio against bea at the same order and a check that both agree;
* ``bea.modified_field`` for Rosenbrock (1-x)^2 + 100(y-x^2)^2 at orders 3, 6 and 8.

Targets (issue #3): series to order 10 <= 0.5 s, order 12 <= 10 s; Rosenbrock order 6 <= 5 s.
"""

from __future__ import annotations

import time
from fractions import Fraction

import sympy as sp

import bea
from bea import methods, series, trees


def clear_all():
    series._clear_cache()
    for fn in (trees.level_sequences, trees.canonical, trees.subtree_splits, trees.symmetry, trees.density):
        fn.cache_clear()
    methods._internal_weights.cache_clear()


def time_series(nodes: int, use_fraction: bool = False) -> float:
    clear_all()
    saved = series._Q
    if use_fraction:
        series._Q = Fraction
    try:
        t0 = time.perf_counter()
        bea.modified_series(order=nodes - 1)
        return time.perf_counter() - t0
    finally:
        series._Q = saved
        series._clear_cache()


def bseries_coefficients(nodes: int):
    """The BSeries package's modified-equation recursion (its ``modified_equation`` without F(t))."""
    import numpy as np
    from BSeries import bs
    from BSeries import trees as btrees

    A = np.array([[0, 0], [0, 0]], dtype=object)  # explicit Euler, padded: the package's 1x1 path is broken
    b = np.array([sp.Integer(1), 0], dtype=object)
    a = bs.TreeMap("a")
    for tree in btrees.trees_to_order(nodes).values():
        a[tree] = bs.elementary_weight(tree, A, b)
    e = lambda t: sp.Rational(1) / btrees.gamma(t)  # noqa: E731
    B = bs.TreeMap("b")
    B[btrees.canonical_forest["t1"]] = a[btrees.canonical_forest["t1"]]
    for p in range(2, nodes + 1):
        for t in btrees.all_trees(p):
            B[t] = a[t] - bs.subs(B, e, t) + B[t]
    return B


def level_sequence_of(btree) -> tuple[int, ...]:
    """Convert a BSeries tree (nested lists of children) to a level sequence."""
    out = []

    def walk(children, level):
        out.append(level)
        for child in children:
            walk(child, level + 1)

    walk(btree._nl, 1)
    return tuple(out)


def main():
    print("bea benchmark: B-series and modified fields (2-core machine, times in seconds)")
    print()
    print(f"{'series to N nodes':<20}{'trees':>8}{'bea (fmpq)':>14}{'bea (Fraction)':>16}")
    ours = {}
    for nodes in (8, 10, 12, 13):
        n_trees = sum(bea.count_trees(k) for k in range(1, nodes + 1))
        t_q = min(time_series(nodes) for _ in range(2 if nodes < 12 else 1))
        t_f = time_series(nodes, use_fraction=True)
        ours[nodes] = t_q
        print(f"{'order ' + str(nodes):<20}{n_trees:>8}{t_q:>14.3f}{t_f:>16.3f}")
    print()

    try:
        import BSeries  # noqa: F401
    except ImportError:
        print("baseline BSeries not installed (pip install --no-deps bseries) - skipped")
    else:
        print(f"{'baseline BSeries':<20}{'time':>10}{'bea same N':>14}{'ratio':>10}  agree")
        for nodes in (6, 7, 8, 9):
            t0 = time.perf_counter()
            B = bseries_coefficients(nodes)
            t_b = time.perf_counter() - t0
            t_ours = min(time_series(nodes) for _ in range(3))
            s = bea.modified_series(order=nodes - 1)
            agree = all(
                Fraction(int(sp.numer(B[t])), int(sp.denom(B[t]))) == s.weight(level_sequence_of(t))
                for p in range(1, nodes + 1)
                for t in __import__("BSeries").trees.all_trees(p)
            )
            print(f"{'order ' + str(nodes):<20}{t_b:>10.3f}{t_ours:>14.4f}{t_b / t_ours:>9.0f}x  {agree}")
        print()

    x, y = sp.symbols("x y")
    E = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    print(f"{'modified_field Rosenbrock':<28}{'time':>10}{'ops in field':>14}")
    for order in (3, 6, 8):
        clear_all()
        t0 = time.perf_counter()
        mf = bea.modified_field(E, [x, y], order=order)
        dt = time.perf_counter() - t0
        print(f"{'order ' + str(order):<28}{dt:>10.3f}{sp.count_ops(mf.field):>14}")


if __name__ == "__main__":
    main()
