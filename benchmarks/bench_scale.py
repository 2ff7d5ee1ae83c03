"""Scaling of data losses (issue #12): build time and per-call time of the modified field vs n and N.

    python benchmarks/bench_scale.py              # full tables (≈ 10 min on a shared 2-core machine)
    python benchmarks/bench_scale.py --quick      # a smoke run (small n and N)
    python benchmarks/bench_scale.py --json out.json

Workload: logistic regression, per-sample loss e(θ, x, y) = log(1 + exp(−y(w·x + b))), θ = (w, b),
n = d + 1 parameters, N synthetic samples (x ~ N(0, I), y = ±1), θ ~ N(0, 0.1²). Loss E = mean over
the rows, given to bea as :func:`bea.compile.data.data_loss` (the per-sample expression and the data array).

* **build** — ``data_loss`` + ``modified_field(loss, order)`` + ``compile()`` + the first call, in a
  fresh process with an empty ``BEA_CACHE_DIR`` (cold: sympy derivation, code generation and numba
  compilation all paid; in the vs-N table the minimum of two such processes), and again in a second
  process sharing that cache (warm: numba loads its machine code).
* **per call** — ``kern(θ, h)`` (best of repeats).
* **torch, same run** — the same f̃ = −g − h/2 Hg − h²(⅓H²g + 1/12 T(g,g)) − h³(¼H³g + 1/12 HT(g,g)
  + 1/12 T(g,Hg)) by (a) ``bea.torch.modified.modified_field`` (numeric tree series) and (b) plain
  ``torch.func`` (grad, jvp-of-grad HVPs, nested jvps for T), float64, ``torch.set_num_threads(1)``
  (bea's kernel is single-threaded too). ``first`` is torch's first call (no compilation: eager);
  ``rel`` is the largest relative difference of f̃ between bea and torch.func.
* **unrolled** — the route users took before: the mean written out as one sympy expression
  (``modified_field(E, params, order).compile()`` + first call), cold, with a time limit.

Goals (issue #12): a 31-parameter logistic regression with 500 samples at order 2 built in ≤ 10 s;
build time flat in N (≤ 1.3× from 500 to 50 000); per call within 2× of torch autodiff; a
100-parameter data loss at order 3 built in ≤ 60 s. Timings are minima over repeats (shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

H = 0.3


def make_problem(n: int, N: int, seed: int = 0):
    import numpy as np
    import sympy as sp

    d = n - 1
    w = list(sp.symbols(f"w0:{d}"))
    b = sp.Symbol("b")
    x = list(sp.symbols(f"x0:{d}"))
    y = sp.Symbol("y")
    e = sp.log(1 + sp.exp(-y * (sum(wi * xi for wi, xi in zip(w, x)) + b)))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    Y = np.where(rng.random(N) < 0.5, -1.0, 1.0)
    theta = 0.1 * rng.normal(size=n)
    return e, w + [b], x + [y], np.column_stack([X, Y]), theta


def best_time(fn, repeat: int = 5, min_s: float = 0.1) -> float:
    best = float("inf")
    for _ in range(repeat):
        k, t0 = 0, time.perf_counter()
        while True:
            fn()
            k += 1
            el = time.perf_counter() - t0
            if el >= min_s:
                break
        best = min(best, el / k)
    return best


def torch_fields(data, n: int, order: int):
    """(numeric-route field, torch.func field) as functions θ (tensor) -> f̃(θ, H) tensor."""
    import torch
    from torch.func import grad, jvp

    from bea.torch.modified import modified_field as torch_modified_field

    torch.set_num_threads(1)
    X = torch.tensor(data[:, : n - 1])
    Y = torch.tensor(data[:, n - 1])

    def f(th):
        return torch.nn.functional.softplus(-Y * (X @ th[: n - 1] + th[n - 1])).mean()

    numeric = torch_modified_field(f, order)
    g_fn = grad(f)

    def hvp(th, v):
        return jvp(g_fn, (th,), (v,))[1]

    def t2(th, u, v):
        return jvp(lambda s: jvp(g_fn, (s,), (u,))[1], (th,), (v,))[1]

    def direct(th, h=H):
        g = g_fn(th)
        out = -g
        if order >= 1:
            Hg = hvp(th, g)
            out = out - h / 2 * Hg
        if order >= 2:
            H2g = hvp(th, Hg)
            Tgg = t2(th, g, g)
            out = out - h**2 * (H2g / 3 + Tgg / 12)
        if order >= 3:
            out = out - h**3 * (hvp(th, H2g) / 4 + hvp(th, Tgg) / 12 + t2(th, g, Hg) / 12)
        if order >= 4:
            raise ValueError("torch.func baseline written up to order 3")
        return out

    return (lambda th: numeric(th, H)), direct


# --------------------------------------------------------------------------- child processes
def child_build(n: int, N: int, order: int, torch_too: bool) -> dict:
    import numpy as np

    t0 = time.perf_counter()
    import bea
    from bea.compile.data import data_loss

    t_import = time.perf_counter() - t0
    e, params, inputs, data, theta = make_problem(n, N)
    t0 = time.perf_counter()
    loss = data_loss(e, params, inputs, data)
    mf = bea.modified_field(loss, order=order)
    kern = mf.compile()
    val = kern(theta, H)
    build = time.perf_counter() - t0
    out = {"n": n, "N": N, "order": order, "build_s": build, "import_s": t_import,
           "from_disk": bool(getattr(kern.driver, "stats", None) and kern.driver.stats.cache_hits)}
    out["call_s"] = best_time(lambda: kern(theta, H))
    if torch_too:
        import torch

        numeric, direct = torch_fields(data, n, order)
        th = torch.tensor(theta)
        t0 = time.perf_counter()
        a = numeric(th)
        out["torch_numeric_first_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = direct(th)
        out["torch_func_first_s"] = time.perf_counter() - t0
        out["torch_numeric_call_s"] = best_time(lambda: numeric(th))
        out["torch_func_call_s"] = best_time(lambda: direct(th))
        ref = b.numpy()
        scale = np.max(np.abs(ref))
        out["rel_vs_torch_func"] = float(np.max(np.abs(val - ref)) / scale)
        out["rel_numeric_vs_torch_func"] = float(np.max(np.abs(a.numpy() - ref)) / scale)
    return out


def child_unrolled(n: int, N: int, order: int) -> dict:
    import bea
    from bea.compile.data import data_loss

    e, params, inputs, data, theta = make_problem(n, N)
    t0 = time.perf_counter()
    E = data_loss(e, params, inputs, data).expr  # the exact unrolled mean
    kern = bea.modified_field(E, params, order=order).compile()
    val = kern(theta, H)
    build = time.perf_counter() - t0
    return {"n": n, "N": N, "order": order, "build_s": build, "call_s": best_time(lambda: kern(theta, H)),
            "value0": float(val[0])}


def tanh_net(weights: int, N: int = 10, seed: int = 0):
    """A small tanh net written in sympy, the mean over N unrolled points (issue #12's measurement):
    E = (1/N) Σ_i (Σ_j a_j tanh(w_j x_i) − y_i)², weights = 2 × hidden units."""
    import numpy as np
    import sympy as sp

    k = weights // 2
    a, w = sp.symbols(f"a0:{k}"), sp.symbols(f"w0:{k}")
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=N)
    E = sum((sum(a[j] * sp.tanh(w[j] * sp.Float(x)) for j in range(k)) - sp.Float(np.sin(x))) ** 2 for x in xs) / N
    return E, list(a) + list(w)


def child_tanh(weights: int, order: int, backend: str) -> dict:
    import numpy as np

    import bea

    E, params = tanh_net(weights)
    t0 = time.perf_counter()
    mf = bea.modified_field(E, params, order=order)
    field = mf.field
    t1 = time.perf_counter()
    kern = mf.compile(backend=backend)
    theta = np.full(len(params), 0.3)
    kern(theta, H)
    t2 = time.perf_counter()
    return {"weights": weights, "order": order, "backend": backend, "derive_s": t1 - t0, "compile_s": t2 - t1,
            "build_s": t2 - t0, "call_s": best_time(lambda: kern(theta, H)), "ops": int(sum(e.count_ops() for e in field))}


def child_hess(n: int, N: int) -> dict:
    from bea.compile.data import data_loss

    e, params, inputs, data, theta = make_problem(n, N)
    t0 = time.perf_counter()
    loss = data_loss(e, params, inputs, data)
    loss.hess(theta)
    build = time.perf_counter() - t0
    return {"n": n, "N": N, "build_s": build, "call_s": best_time(lambda: loss.hess(theta))}


def run_child(args: list[str], cache: str, timeout: float) -> dict:
    env = dict(os.environ, BEA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
    try:
        p = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout_s": timeout}
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"rc {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def fmt(v, unit="s"):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{1e3 * v:.3g}"
    return f"{v:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--no-unrolled", action="store_true")
    ap.add_argument("--sections", help="comma-separated subset of N,n,unrolled,tanh,hess (default: all)")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "build":
            n, N, order, torch_too = map(int, rest)
            print(json.dumps(child_build(n, N, order, bool(torch_too))))
        elif kind == "tanh":
            print(json.dumps(child_tanh(int(rest[0]), int(rest[1]), rest[2])))
        elif kind == "hess":
            print(json.dumps(child_hess(int(rest[0]), int(rest[1]))))
        else:
            n, N, order = map(int, rest)
            print(json.dumps(child_unrolled(n, N, order)))
        return

    Ns = [500, 5000] if a.quick else [500, 5_000, 50_000]
    ns = [2, 5, 10] if a.quick else [2, 5, 10, 20, 31, 50, 100]
    orders = [1, 2] if a.quick else [1, 2, 3]
    results = {"vs_N": [], "vs_n": [], "unrolled": [], "tanh": [], "hess": []}
    ap_sections = set(a.sections.split(",")) if a.sections else {"N", "n", "unrolled", "tanh", "hess"}

    if "tanh" in ap_sections:
        limit = 120 if a.quick else 300
        print(f"## ordinary sympy loss: tanh net, mean over 10 unrolled points, order 1, cold, limit {limit} s")
        print("(modified_field + compile() + first call; backend numba = the generated source compiled by numba, "
              "llvm = symengine's LLVM backend for the float64 path, the default when installed)")
        print("| weights | ops in field | derive (s) | compile+first, numba (s) | compile+first, llvm (s) | "
              "call numba (us) | call llvm (us) |")
        print("|---|---|---|---|---|---|---|")
        for weights in ([6, 12] if a.quick else [6, 12, 18, 24, 36]):
            row = {}
            for backend in ("numba", "llvm"):
                with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:
                    row[backend] = run_child(["tanh", str(weights), "1", backend], cache, limit)
            results["tanh"].append(row)
            nb, lv = row["numba"], row["llvm"]
            cn = fmt(nb["compile_s"]) if "compile_s" in nb else (f"> {limit} (total)" if "timeout_s" in nb else nb.get("error"))
            cl = fmt(lv["compile_s"]) if "compile_s" in lv else (f"> {limit} (total)" if "timeout_s" in lv else lv.get("error"))
            print(f"| {weights} | {lv.get('ops', nb.get('ops', '-'))} | {fmt(lv.get('derive_s', nb.get('derive_s')))} | "
                  f"{cn} | {cl} | {fmt(nb.get('call_s') and 1e3 * nb['call_s'], 'ms')} | "
                  f"{fmt(lv.get('call_s') and 1e3 * lv['call_s'], 'ms')} |", flush=True)
        print()

    if "hess" in ap_sections:
        print("## PF Hessian of a data loss (per-sample Hessian columns K_1(θ, x_i; e_j) summed in the data loop), N = 500, cold")
        print("| n | build + first call (s) | call (ms) |")
        print("|---|---|---|")
        for n in ([10, 31] if a.quick else [10, 31, 50]):
            with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:
                r = run_child(["hess", str(n), "500"], cache, 600)
            results["hess"].append(r)
            print(f"| {n} | {fmt(r.get('build_s'))} | {fmt(r.get('call_s'), 'ms')} |", flush=True)
        print()

    if "N" in ap_sections:
        print("## vs N: logistic regression, n = 31; build = data_loss + modified_field + compile + first call")
        print("| N | order | build cold (s) | build warm (s) | bea call (ms) | torch numeric call (ms) | "
              "torch.func call (ms) | bea / torch.func | rel. diff |")
        print("|---|---|---|---|---|---|---|---|---|")
        for order in orders:
            for N in Ns:
                with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:
                    cold = run_child(["build", "31", str(N), str(order), "1"], cache, 600)
                    warm = run_child(["build", "31", str(N), str(order), "0"], cache, 600)
                with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:  # a second cold build
                    again = run_child(["build", "31", str(N), str(order), "0"], cache, 600)
                if "build_s" in cold and "build_s" in again:  # the minimum of two (the machine is shared)
                    cold["build_s"] = min(cold["build_s"], again["build_s"])
                cold["warm_build_s"] = warm.get("build_s")
                results["vs_N"].append(cold)
                if "build_s" not in cold:
                    print(f"| {N} | {order} | {cold} |")
                    continue
                ratio = cold["call_s"] / cold["torch_func_call_s"]
                print(f"| {N} | {order} | {fmt(cold['build_s'])} | {fmt(warm.get('build_s'))} | "
                      f"{fmt(cold['call_s'], 'ms')} | {fmt(cold['torch_numeric_call_s'], 'ms')} | "
                      f"{fmt(cold['torch_func_call_s'], 'ms')} | {ratio:.2f} | {cold['rel_vs_torch_func']:.1e} |",
                      flush=True)

    if "n" in ap_sections:
        print("\n## vs n: logistic regression, N = 500, cold builds")
        print("| n | order | build cold (s) | bea call (ms) | torch.func call (ms) | rel. diff |")
        print("|---|---|---|---|---|---|")
        for order in orders:
            for n in ns:
                with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:
                    r = run_child(["build", str(n), "500", str(order), "1"], cache, 600)
                results["vs_n"].append(r)
                if "build_s" not in r:
                    print(f"| {n} | {order} | {r} |")
                    continue
                print(f"| {n} | {order} | {fmt(r['build_s'])} | {fmt(r['call_s'], 'ms')} | "
                      f"{fmt(r['torch_func_call_s'], 'ms')} | {r['rel_vs_torch_func']:.1e} |", flush=True)

    if not a.no_unrolled and "unrolled" in ap_sections:
        limit = 60 if a.quick else 180
        print(f"\n## unrolled sympy mean (the route before data_loss), order 1, cold, limit {limit} s")
        print("| n | N | build cold (s) | call (ms) |")
        print("|---|---|---|---|")
        for n, N in ([(2, 50), (5, 50)] if a.quick else [(2, 50), (2, 500), (5, 50), (5, 500), (31, 50)]):
            with tempfile.TemporaryDirectory(prefix="bea-bench-scale-") as cache:
                r = run_child(["unrolled", str(n), str(N), "1"], cache, limit)
            results["unrolled"].append({"n": n, "N": N, **r})
            b = fmt(r["build_s"]) if "build_s" in r else (f"> {limit}" if "timeout_s" in r else r.get("error"))
            print(f"| {n} | {N} | {b} | {fmt(r.get('call_s'), 'ms')} |", flush=True)

    # goals
    def find(rows, **kw):
        for r in rows:
            if all(r.get(k) == v for k, v in kw.items()) and "build_s" in r:
                return r
        return None

    print("\n## goals")
    r = find(results["vs_N"], N=500, order=2)
    if r:
        print(f"- n = 31, N = 500, order 2 built in {r['build_s']:.2f} s (goal <= 10 s): "
              f"{'met' if r['build_s'] <= 10 else 'NOT met'}")
    for order in orders:
        lo, hi = find(results["vs_N"], N=Ns[0], order=order), find(results["vs_N"], N=Ns[-1], order=order)
        if lo and hi:
            q = hi["build_s"] / lo["build_s"]
            print(f"- order {order}: build N = {Ns[-1]} / N = {Ns[0]} = {q:.2f} (goal <= 1.3): "
                  f"{'met' if q <= 1.3 else 'NOT met'}")
    worst = max((r["call_s"] / r["torch_func_call_s"] for r in results["vs_N"] + results["vs_n"]
                 if "call_s" in r and "torch_func_call_s" in r), default=None)
    if worst is not None:
        print(f"- per call, worst bea / torch.func ratio over all rows: {worst:.2f} (goal <= 2): "
              f"{'met' if worst <= 2 else 'NOT met'}")
    r = find(results["vs_n"], n=100, order=3)
    if r:
        print(f"- n = 100, order 3 built in {r['build_s']:.2f} s (goal <= 60 s): {'met' if r['build_s'] <= 60 else 'NOT met'}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
