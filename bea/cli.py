"""Command-line interface: ``bea derive EXPR --params x,y --order N``.

Errors in the input are printed as one line (``bea: error: ...``) with exit status 2, never as a
traceback.
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

    names = [p.strip() for p in args.params.split(",") if p.strip()]
    series = modified_series(args.order, args.method)
    if args.series:
        print(f"# modified-equation coefficients c(t) of {series.method.name}, f~ = sum_t h^(|t|-1) c(t) F(t)")
        print(f"{'order':>5}  {'level sequence':<28} {'tree':<24} {'sigma':>5}  c(t)")
        for row in series.table():
            seq = "(" + ",".join(map(str, row["level_sequence"])) + ")"
            print(f"{row['order']:>5}  {seq:<28} {row['tree']:<24} {row['sigma']:>5}  {row['c']}")
        return 0
    mf = series.evaluate(args.expr, names, simplify=args.simplify)
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
