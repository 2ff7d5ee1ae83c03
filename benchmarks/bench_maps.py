"""Benchmark the modified equations of maps, epochs and optimisers with state (bea.derive.maps, bea.derive.optimizers).

    python benchmarks/bench_maps.py [--order 4] [--repeat 3]

CPU and wall times (best of ``--repeat``, sympy's cache cleared before each run) on a 3-parameter quartic loss split into 4 batch losses:

* the task of issue #15: ``modified_map`` of one epoch of 4 SGD steps (a list of 4 maps) to h^order;
* baselines measured in the same run: ``bea.modified_field`` of full-batch GD on the mean loss
  (B-series trees) and ``modified_map`` of that single GD map (Lie series), to the same order;
  the "brute-force" route for the epoch: the 4 steps composed by sympy substitution into one
  map, handed to ``modified_map`` as a single (large) map;
* random reshuffling: ``sgd_epoch(..., shuffle="average")`` for 4 batches (Eq. (2) of bea.derive.maps, 32
  Taylor expansions) against its brute-force route (the mean of the 24 composed epochs as one map),
  and for 8 batches (the 40320 orderings are never formed);
* optimisers: Nesterov (m = 9/10) and Adam (1/10, 1/5, 1/3) on two parameters of the same loss.

The epoch fields are checked against their brute-force routes (they must agree exactly).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sympy as sp  # noqa: E402
from sympy.core.cache import clear_cache  # noqa: E402

import bea  # noqa: E402
from bea.derive.symbolic import step_symbol  # noqa: E402

x, y, z = sp.symbols("x y z")
P = [x, y, z]
h = step_symbol()
BATCHES = [
    x**2 * y / 2 + z**3 / 3 + x * z,
    y**4 / 12 + x * y * z + x**2,
    (x - y) ** 2 * z + z**2 / 2 + y,
    x**3 / 5 - y * z**2 + x**2 + y**2,
]


def best_of(fn, repeat: int):
    """(best CPU time, best wall time, result), sympy's cache cleared before each run."""
    cpu = wall = float("inf")
    out = None
    for _ in range(repeat):
        clear_cache()
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - t0)
    return cpu, wall, out


def gd_map(E):
    return [p - h * sp.diff(E, p) for p in P]


def composed_epoch(batches=BATCHES):
    """Φ⁴ ∘ Φ³ ∘ Φ² ∘ Φ¹ by substitution: one map in θ and h."""
    point = list(P)
    for E in batches:
        g = [sp.diff(E, p) for p in P]
        at = dict(zip(P, point))
        point = [c - h * gi.xreplace(at) for c, gi in zip(point, g)]
    return point


def enumerated_average():
    """The mean of the 4! = 24 composed epochs: one map in θ and h."""
    perms = list(itertools.permutations(BATCHES))
    maps = [composed_epoch(list(p)) for p in perms]
    return [sp.Add(*c) / len(perms) for c in zip(*maps)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    order, rep = args.order, args.repeat
    mean = sp.Add(*BATCHES) / len(BATCHES)
    epoch = [gd_map(E) for E in BATCHES]

    rows = []
    base = best_of(lambda: bea.modified_field(mean, P, order), rep)
    rows.append(("baseline: modified_field, full-batch GD on the mean loss (trees)", base))
    rows.append(("baseline: modified_map of the full-batch GD map (Lie series)", best_of(lambda: bea.modified_map(gd_map(mean), P, order), rep)))
    task = best_of(lambda: bea.modified_map(epoch, P, order), rep)
    rows.append(("**modified_map of an epoch of 4 batches (fixed order)**", task))
    brute = best_of(lambda: bea.modified_map(composed_epoch(), P, order), rep)
    rows.append(("brute force: the epoch composed by substitution, one map", brute))
    average = best_of(lambda: bea.sgd_epoch(BATCHES, P, order, "average"), rep)
    rows.append(("sgd_epoch, 4 batches, shuffle='average'", average))
    enum = best_of(lambda: bea.modified_map(enumerated_average(), P, order), 1)
    rows.append(("brute force: mean of the 24 composed epochs, one map", enum))
    rows.append(("sgd_epoch, 8 batches, shuffle='average'", best_of(lambda: bea.sgd_epoch(BATCHES * 2, P, order, "average"), 1)))
    two = [E.subs(z, sp.Rational(1, 2)) for E in BATCHES[:2]]
    E2 = two[0] + two[1]
    rows.append(("nesterov_field, m = 9/10, 2 parameters", best_of(lambda: bea.nesterov_field(E2, [x, y], "9/10", order), rep)))
    adam_order = min(order, 3)
    rows.append(
        (f"adam_field (1/10, 1/5, 1/3), 2 parameters, to h^{adam_order}",
         best_of(lambda: bea.adam_field(E2, [x, y], "1/10", "1/5", "1/3", adam_order), 1))
    )

    def agree(epoch_field, one_map_field):
        # the one-map routes flow over time h, the epoch over 4h: the same G = 4h·f̃_epoch = h·f̃_map
        return all(
            sp.expand(a - b / 4) == 0 for ta, tb in zip(epoch_field.terms, one_map_field.terms) for a, b in zip(ta, tb)
        )

    same = agree(task[2], brute[2]) and agree(average[2], enum[2])
    print(f"modified fields to h^{order} on a 3-parameter quartic loss, 4 batches; best of {rep}")
    print(f"epoch fields (fixed, average) equal the brute-force routes exactly: {same}\n")
    print("| what | CPU (s) | wall (s) | CPU ratio vs modified_field of GD |")
    print("|---|---|---|---|")
    for label, (cpu, wall, _) in rows:
        print(f"| {label} | {cpu:.3f} | {wall:.3f} | {cpu / base[0]:.1f} |")
    if not same:
        raise SystemExit("an epoch's field differs from its brute-force route")


if __name__ == "__main__":
    main()
