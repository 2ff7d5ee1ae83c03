"""Benchmark (issue #14): bea.certify against the modified flows, on the coverage corpus.

    python benchmarks/bench_certify_flows.py [--steps K] [--only NAME ...] [--rigorous]

For every loss of ``benchmarks/bench_certify_coverage.py`` (both step sizes) and every flow
("ngf", "igr", "third", "bea" order 3, "pf"), 100 GD steps: ``cert`` (certified), the median and max
of bound[k]/distance[k] over the resolved steps (``Certificate.ratios``) and the CPU time of
certify(flow=...) relative to certify(flow="ngf") in the same run (second calls: kernels cached).
"pf" is refused (InvalidInputError) where h·λ_max ≥ 1 along the flow: shown as "h·λ≥1".
Then the order check: the bound at t = 1.6 against the order-n flow for h = 1.6/k, k = 16, 32, 64,
and the fitted slope of log bound against log h (n + 1 expected).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_certify_coverage import corpus  # noqa: E402

from bea.certificates.certify import certify  # noqa: E402
from bea.errors import InvalidInputError  # noqa: E402
from bea.testing import fit_order  # noqa: E402

FLOWS = [("ngf", None), ("igr", None), ("third", None), ("bea", 3), ("pf", None)]


def _label(flow, order):
    return f"bea{order}" if flow == "bea" else flow


def timed(fn):
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--rigorous", action="store_true")
    args = ap.parse_args(argv)
    stats = {_label(*f): dict(cert=0, total=0, med=[], worst=[], rel=[]) for f in FLOWS}
    print(f"bea.certify(flow=...), {args.steps} steps{' (rigorous)' if args.rigorous else ''}; per flow: "
          "certified, median b/d, max b/d, time / time(ngf)\n")
    print(f"{'case':<18} {'h':>7} " + " ".join(f"{_label(*f):>24}" for f in FLOWS))
    for name, (E, params, th0, hs) in corpus().items():
        if args.only and name not in args.only:
            continue
        for h in hs:
            cells, t_ngf = [], None
            for flow, order in FLOWS:
                lab = _label(flow, order)
                kw = dict(flow=flow, order=order, rigorous=args.rigorous)
                try:
                    certify(E, params, th0, h, 2, **kw)  # warm-up: kernels
                    tc, c = timed(lambda: certify(E, params, th0, h, args.steps, **kw))
                except InvalidInputError as exc:
                    cells.append("h·λ≥1" if "h·λ_max < 1" in str(exc) else "refused")
                    continue
                if flow == "ngf":
                    t_ngf = tc
                r = c.ratios
                med, worst = (float(np.median(r)), float(np.max(r))) if r.size else (np.nan, np.nan)
                s = stats[lab]
                s["total"] += 1
                s["cert"] += bool(c.certified)
                if c.certified and r.size:
                    s["med"].append(med)
                    s["worst"].append(worst)
                s["rel"].append(tc / t_ngf)
                cells.append(f"{'T' if c.certified else 'F'} {med:5.3g} {worst:7.3g} {tc / t_ngf:5.2g}x")
            print(f"{name:<18} {h:>7g} " + " ".join(f"{cell:>24}" for cell in cells), flush=True)
    print()
    for lab, s in stats.items():
        if not s["total"]:
            continue
        med = np.median(s["med"]) if s["med"] else np.nan
        mx = np.max(s["worst"]) if s["worst"] else np.nan
        print(f"{lab:>6}: certified {s['cert']}/{s['total']}; median-over-steps b/d median {med:.3g}; "
              f"max-over-steps b/d max {mx:.3g}; time / ngf median {np.median(s['rel']):.2f}x, max {np.max(s['rel']):.2f}x")

    x, y = sp.symbols("x y")
    E = x**2 / 2 + y**2 + x**4 / 4 + sp.Rational(3, 10) * x * y
    print("\norder check: E = x²/2 + y² + x⁴/4 + 0.3xy from (0.8, 0.5), bound at t = 1.6, h = 1.6/k")
    for flow, order, n in [("ngf", None, 0), ("igr", None, 1), ("third", None, 2), ("bea", 3, 3), ("bea", 4, 4)]:
        hs, bs = [], []
        for k in (16, 32, 64):
            c = certify(E, [x, y], [0.8, 0.5], 1.6 / k, k, flow=flow, order=order, rigorous=args.rigorous)
            hs.append(1.6 / k)
            bs.append(c.bound[-1])
        print(f"  {_label(flow, order):>6} (n = {n}): bounds " + ", ".join(f"{b:.3e}" for b in bs)
              + f"; slope {fit_order(hs, bs):.3f} (expected {n + 1})")


if __name__ == "__main__":
    main()
