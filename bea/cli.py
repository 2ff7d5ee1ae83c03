"""Command-line interface.

    bea derive  EXPR --params x,y --order N [--notation | --latex | --series]
    bea series  --order N [--method rk4]
    bea flows   EXPR --params x,y --theta0=-0.35,-0.2 --h 1.05 --steps 5 [--flows ngf,igr,pf] [--plot out.png]
    bea certify EXPR --params x,y --theta0=-0.35,-0.2 --h 0.1 --steps 50 [--mode theorem1] [--rigorous]

Errors in the input are printed as one line (``bea: error: ...``) with exit status 2, never as a
traceback. Write negative start points with ``=`` (``--theta0=-1,2``) so they are not read as options.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from bea.errors import BEAError

__all__ = ["main", "build_parser"]


def _cmd_derive(args: argparse.Namespace) -> int:
    import sympy as sp

    from bea.series import modified_series

    series = modified_series(args.order, args.method)
    if args.series:
        _print_series_table(series)
        return 0
    mf = series.evaluate(args.expr, _names(args.params), simplify=args.simplify)
    if args.notation:
        for k in range(mf.order + 1):
            print(f"f_{k} = {mf.gradient_notation(k)}")
        return 0
    if args.latex:
        print(mf.latex())
        return 0
    print(f"E = {mf.loss}")
    print(f"params = {', '.join(map(str, mf.params))}; method = {mf.method.name}; f~ = sum_k h^k f_k")
    for k, term in enumerate(mf.terms):
        print(f"f_{k} = {mf.gradient_notation(k)}")
        for p, e in zip(mf.params, term):
            print(f"    d{p}/dt: {sp.sstr(e)}")
    return 0


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _numbers(text: str, what: str) -> list[float]:
    from bea.errors import InvalidInputError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _print_series_table(series) -> None:
    print(f"# modified-equation coefficients c(t) of {series.method.name}, f~ = sum_t h^(|t|-1) c(t) F(t)")
    print(f"{'order':>5}  {'level sequence':<28} {'tree':<24} {'sigma':>5}  c(t)")
    for row in series.table():
        seq = "(" + ",".join(map(str, row["level_sequence"])) + ")"
        print(f"{row['order']:>5}  {seq:<28} {row['tree']:<24} {row['sigma']:>5}  {row['c']}")


def _cmd_series(args: argparse.Namespace) -> int:
    from bea.series import modified_series

    series = modified_series(args.order, args.method)
    print(series)
    print()
    _print_series_table(series)
    return 0


def _cmd_flows(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from bea.flows import FLOWS, gd, trajectory
    from bea.symbolic import validate_loss

    E, params = validate_loss(args.expr, _names(args.params))
    theta0 = _numbers(args.theta0, "--theta0")
    flows = _names(args.flows)
    unknown = [f for f in flows if f not in FLOWS or f == "bea"]
    if unknown:
        from bea.errors import UnknownMethodError

        raise UnknownMethodError(f"unknown flow(s) {unknown}; choose from {', '.join(f for f in FLOWS if f != 'bea')}")
    paths = {"gd": gd(E, params, theta0, args.h, args.steps)}
    for name in tqdm(flows, desc="integrating flows", unit="flow", disable=None, leave=False):
        paths[name] = trajectory(E, params, theta0, args.h, args.steps, flow=name)
    every = max(1, args.steps // 10) if args.every is None else args.every
    rows = sorted(set(range(0, args.steps + 1, every)) | {args.steps})
    print(f"E = {E}; h = {args.h}; {args.steps} steps; flows sampled at t = k h (complex flows: real part)")
    header = f"{'k':>6}  {'gd':<28}" + "".join(f"{name + ' |x-gd|':>16}" for name in flows)
    print(header)
    for k in rows:
        g = paths["gd"][k]
        line = f"{k:>6}  {np.array2string(g, precision=5, separator=','):<28}"
        for name in flows:
            line += f"{np.linalg.norm(np.real(paths[name][k]) - g):>16.4e}"
        print(line)
    if args.plot:
        if len(params) != 2:
            from bea.errors import InvalidInputError

            raise InvalidInputError("--plot draws 2-parameter losses on their contour plot")
        from bea.plot import trajectories

        fig = trajectories(E, params, theta0, args.h, args.steps, flows=flows)
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot written to {args.plot}")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from bea.certify import certify

    cert = certify(
        args.expr, _names(args.params), _numbers(args.theta0, "--theta0"), args.h, args.steps,
        mode=args.mode, rigorous=args.rigorous,
    )
    print(cert.summary())
    if args.plot:
        cert.plot().savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot written to {args.plot}")
    return 0 if cert.certified else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bea",
        description="Backward error analysis of gradient descent: modified equations, flows, certificates.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "derive",
        help="print the modified vector field of gradient descent (or another method) on a loss",
        description="Print f~ = sum_k h^k f_k, the modified field whose flow matches the method to O(h^(N+2)).",
    )
    p.add_argument("expr", metavar="EXPR", help='the loss, a sympy expression, e.g. "(1-x)**2 + 100*(y-x**2)**2"')
    p.add_argument("--params", required=True, help="comma-separated parameter names, e.g. x,y")
    p.add_argument("--order", type=int, default=2, help="highest power of h kept (default 2)")
    p.add_argument("--method", default="gd", help="gd (default), euler, rk4, midpoint, heun, implicit_midpoint, ...")
    p.add_argument(
        "--simplify", default="auto", choices=["auto", "expand", "simplify", "none"], help="how terms are simplified"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--notation", action="store_true", help="print only the gradient notation of each term")
    fmt.add_argument("--latex", action="store_true", help="print the terms as LaTeX")
    fmt.add_argument("--series", action="store_true", help="print the loss-independent tree coefficients c(t)")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser(
        "series",
        help="print the loss-independent modified series (trees and exact coefficients)",
        description="Print f~ in gradient notation and the coefficient c(t) of every rooted tree.",
    )
    p.add_argument("--order", type=int, default=4, help="highest power of h kept (default 4)")
    p.add_argument("--method", default="gd", help="gd (default), rk4, midpoint, heun, implicit_midpoint, ...")
    p.set_defaults(func=_cmd_series)

    def run_args(p, h_default):
        p.add_argument("expr", metavar="EXPR", help="the loss, a sympy expression")
        p.add_argument("--params", required=True, help="comma-separated parameter names, e.g. x,y")
        p.add_argument("--theta0", required=True, help="start point, comma-separated (write --theta0=-1,2)")
        p.add_argument("--h", type=float, default=h_default, help=f"GD step size (default {h_default})")
        p.add_argument("--steps", type=int, default=50, help="number of GD steps (default 50)")
        p.add_argument("--plot", metavar="OUT.png", help="also save a figure")

    p = sub.add_parser(
        "flows",
        help="compare gradient descent with its continuous models (NGF, IGR, PF, ...)",
        description="Run GD and integrate each flow, sampled at t = k h; print the distance of each flow to GD.",
    )
    run_args(p, 0.1)
    p.add_argument("--flows", default="ngf,igr,third,pf", help="comma-separated: ngf,igr,third,pf,pf+np,positive,flipped")
    p.add_argument("--every", type=int, help="print every k-th step (default: about 10 rows)")
    p.set_defaults(func=_cmd_flows)

    p = sub.add_parser(
        "certify",
        help="certify the distance between gradient descent and gradient flow (Elkabetz-Cohen bound)",
        description="Bound ||theta_k - theta(k h)|| along the integrated gradient flow; exit status 1 if not certified.",
    )
    run_args(p, 0.1)
    p.add_argument("--mode", default="discrete", choices=["discrete", "theorem1"], help="which bound (default discrete)")
    p.add_argument("--rigorous", action="store_true", help="validated ball arithmetic (python-flint): a proof")
    p.set_defaults(func=_cmd_certify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BEAError as exc:
        print(f"bea: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
