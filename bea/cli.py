"""Command-line interface.

    bea derive  EXPR --params x,y --order N [--notation | --latex | --series]
    bea derive  EXPR --params x,y --order N --optimizer adam --beta1 0.9 --beta2 0.999 --eps 1e-8
    bea series  --order N [--method rk4]
    bea flows   EXPR --params x,y --theta0=-0.35,-0.2 --h 1.05 --steps 5 [--flows ngf,igr,pf] [--plot out.png]
    bea certify EXPR --params x,y --theta0=-0.35,-0.2 --h 0.1 --steps 50 [--mode theorem1] [--rigorous]
    bea --version

Errors in the input are printed as one line (``bea: error: ...``) with exit status 2, never as a
traceback, and are found before any long computation (a ``--plot`` file in a missing folder, no
matplotlib, ``--plot`` of a loss that does not have two parameters). Exit status 1 means the run
finished with a negative result: a flow that failed (its row says where and why; the other flows
are printed as usual) or a certificate that does not hold. Write negative start points with ``=``
(``--theta0=-1,2``) and a loss that starts with a minus after ``--`` (``bea flows --params x
--theta0=1 -- -x**4``) so they are not read as options; powers are ``**`` (``x^2`` is refused with
that hint). Progress goes to stderr when it is a terminal (``BEA_PROGRESS=1`` forces it, ``0``
turns it off).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

from bea.errors import BEAError, InvalidInputError, InvalidLossError

__all__ = ["main", "build_parser"]


# ------------------------------------------------------------------------------------------ checks
def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _loss(args):
    """The validated loss and parameters; ``^`` is refused with the hint that powers are ``**``."""
    from bea.derive.symbolic import validate_loss

    if "^" in args.expr:
        raise InvalidLossError(f"'^' is not a power in sympy syntax (it is XOR): write x**2 for x squared, in {args.expr!r}")
    return validate_loss(args.expr, _names(args.params))


def _check_plot_target(path: str | None, n_params: int | None = None) -> None:
    """Everything ``--plot`` needs, checked before the computation: matplotlib, an existing writable
    folder, a file type matplotlib writes and (for contour plots) a 2-parameter loss."""
    if not path:
        return
    if n_params is not None and n_params != 2:
        raise InvalidInputError(f"--plot draws the paths on the contour plot of a 2-parameter loss; this loss has {n_params}")
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window, never need a display
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise InvalidInputError("--plot needs matplotlib, which is not installed: pip install matplotlib (or the 'plot' extra)") from None
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"--plot {path}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"--plot {path}: the folder {str(folder)!r} is not writable")
    kinds = FigureCanvasBase.get_supported_filetypes()
    ext = target.suffix.lstrip(".").lower()
    if ext not in kinds:
        raise InvalidInputError(f"--plot {path}: unknown file type {target.suffix or '(none)'!r}; use one of {', '.join(sorted(kinds))}")


def _progress_enabled() -> bool:
    flag = os.environ.get("BEA_PROGRESS", "")
    if flag in ("0", "1"):
        return flag == "1"
    return sys.stderr.isatty()


class _Elapsed:
    """A one-line 'still working' indicator on stderr for a computation with no progress of its own:
    the description and the elapsed seconds, refreshed twice a second, removed at the end."""

    def __init__(self, desc: str):
        self.desc, self.enabled = desc, _progress_enabled()
        self._stop = threading.Event()

    def __enter__(self):
        if self.enabled:
            self._t0 = time.perf_counter()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._show()
            self._thread.start()
        return self

    def _show(self):
        sys.stderr.write(f"\r{self.desc}: {time.perf_counter() - self._t0:.0f} s elapsed")
        sys.stderr.flush()

    def _run(self):
        while not self._stop.wait(0.5):
            self._show()

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            sys.stderr.write(f"\r{self.desc}: done in {time.perf_counter() - self._t0:.1f} s\n")
            sys.stderr.flush()
        return False


# ----------------------------------------------------------------------------------------- derive
def _cmd_derive(args: argparse.Namespace) -> int:
    import sympy as sp

    from bea.derive.series import modified_series

    series = modified_series(args.order, args.method)
    if args.series:
        print(
            "bea: note: --series prints the loss-independent coefficients c(t); EXPR and --params are not used "
            "(`bea series` prints the same table)",
            file=sys.stderr,
        )
        _print_series_table(series)
        return 0
    E, params = _loss(args)
    if args.optimizer is not None:
        return _derive_optimizer(args, E, params)
    mf = series.evaluate(E, params, simplify=args.simplify)
    if args.notation:
        for k in range(mf.order + 1):
            print(f"f_{k} = {mf.gradient_notation(k)}")
        return 0
    if args.latex:
        print(mf.latex())
        return 0
    print(f"E = {mf.loss}")
    print(f"params = {', '.join(map(str, mf.params))}; method = {mf.method.name}")
    print("f~ = sum_k h^k f_k (f_k is the coefficient of h^k; the flow is dtheta/dt = f~)")
    for k, term in enumerate(mf.terms):
        print(f"f_{k} = {mf.gradient_notation(k)}")
        for p, e in zip(mf.params, term):
            print(f"    f_{k}[{p}] = {sp.sstr(e)}")
    return 0


_HYPER = {"m": "--m", "beta1": "--beta1", "beta2": "--beta2", "eps": "--eps"}
_NEEDS = {"gd": (), "momentum": ("m",), "nesterov": ("m",), "rmsprop": ("beta2", "eps"), "adam": ("beta1", "beta2", "eps")}


def _hyper_value(text: str, flag: str):
    """An exact hyperparameter: a number as a Rational (0.9 -> 9/10, 1e-8 -> 1/100000000, 1/3) or a
    name as a positive symbol (--beta1 beta1 keeps β₁ symbolic)."""
    import sympy as sp

    if text.isidentifier():
        return sp.Symbol(text, positive=True)
    try:
        value = sp.Rational(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{flag} must be a number (0.9, 1/3, 1e-8) or a symbol name, got {text!r}") from None
    return value


def _derive_optimizer(args, E, params) -> int:
    """``derive --optimizer NAME``: the modified field of an optimiser (bea.optimizer_field) with exact
    hyperparameters; the terms are printed as for GD, with the gradient notation where it exists."""
    import sympy as sp

    from bea.errors import NoGradientNotationError
    from bea.derive.optimizers import OPTIMIZERS, optimizer_field

    name = args.optimizer.lower()
    if name not in OPTIMIZERS:
        raise InvalidInputError(f"unknown --optimizer {args.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if args.method != "gd":
        raise InvalidInputError("--optimizer and --method exclude each other (--method picks a Runge-Kutta method of GF)")
    given = {k: getattr(args, k) for k in _HYPER if getattr(args, k) is not None}
    missing = [_HYPER[k] for k in _NEEDS[name] if k not in given]
    unused = [_HYPER[k] for k in given if k not in _NEEDS[name]]
    if missing:
        raise InvalidInputError(f"--optimizer {name} needs {', '.join(missing)} (e.g. --beta1 0.9 --beta2 0.999 --eps 1e-8)")
    if unused:
        raise InvalidInputError(f"--optimizer {name} does not take {', '.join(unused)}")
    if args.bias_correction and name not in ("rmsprop", "adam"):
        raise InvalidInputError(f"--bias-correction applies to rmsprop and adam, not {name}")
    hyper = {k: _hyper_value(v, _HYPER[k]) for k, v in given.items()}
    if args.bias_correction:
        hyper["bias_correction"] = True
    with _Elapsed(f"bea derive: {name} to order {args.order}"):
        mf = optimizer_field(name, E, params, args.order, **hyper)
    print(f"E = {E}")
    shown = ", ".join(f"{k} = {v}" for k, v in hyper.items())
    print(f"params = {', '.join(map(str, params))}; optimizer = {name}" + (f" ({shown})" if shown else ""))
    if getattr(mf, "kind", None):
        print(f"kind: {mf.kind}")
    print("f~ = sum_k h^k f_k (f_k is the coefficient of h^k; the flow is dtheta/dt = f~)")
    for k, term in enumerate(mf.terms):
        try:
            notation = mf.gradient_notation(k)
        except NoGradientNotationError:
            notation = None
        if args.latex:
            print(f"f_{k} = {sp.latex(term)}")
            continue
        print(f"f_{k} = {notation}" if notation else f"f_{k}:")
        if not args.notation or notation is None:
            for p, e in zip(mf.params, term):
                print(f"    f_{k}[{p}] = {sp.sstr(e)}")
    return 0


def _print_series_table(series) -> None:
    print(f"# modified-equation coefficients c(t) of {series.method.name}, f~ = sum_t h^(|t|-1) c(t) F(t)")
    print("# h^k: the power of h a tree carries (k = nodes - 1, as in --order); nodes: |t|")
    print(f"{'h^k':>4} {'nodes':>5}  {'level sequence':<28} {'tree':<24} {'sigma':>5}  c(t)")
    for row in series.table():
        seq = "(" + ",".join(map(str, row["level_sequence"])) + ")"
        print(f"{row['order'] - 1:>4} {row['order']:>5}  {seq:<28} {row['tree']:<24} {row['sigma']:>5}  {row['c']}")


def _cmd_series(args: argparse.Namespace) -> int:
    from bea.derive.series import modified_series

    series = modified_series(args.order, args.method)
    print(series)
    print()
    _print_series_table(series)
    return 0


# ------------------------------------------------------------------------------------------ flows
def _cmd_flows(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from bea.errors import IntegrationError, UnknownMethodError
    from bea.flows import FLOWS, gd, trajectory

    E, params = _loss(args)
    theta0 = _numbers(args.theta0, "--theta0")
    flows = _names(args.flows)
    unknown = [f for f in flows if f not in FLOWS or f == "bea"]
    if unknown:
        raise UnknownMethodError(f"unknown flow(s) {unknown}; choose from {', '.join(f for f in FLOWS if f != 'bea')}")
    _check_plot_target(args.plot, len(params))
    gd_path = gd(E, params, theta0, args.h, args.steps, on_failure="return")
    paths, failures = {}, {}
    for name in tqdm(flows, desc="integrating flows", unit="flow", disable=not _progress_enabled(), leave=False):
        try:
            paths[name] = trajectory(E, params, theta0, args.h, args.steps, flow=name)
        except IntegrationError as exc:  # this flow's result is its failure; the others stand
            failures[name] = exc
    every = max(1, args.steps // 10) if args.every is None else args.every
    rows = sorted(set(range(0, args.steps + 1, every)) | {args.steps})
    print(f"E = {E}; h = {args.h}; {args.steps} steps; flows sampled at t = k h (complex flows: real part)")
    print(f"{'k':>6}  {'gd':<28}" + "".join(f"{name + ' |x-gd|':>16}" for name in flows))
    for k in rows:
        g = gd_path[k]
        line = f"{k:>6}  {np.array2string(g, precision=5, separator=','):<28}"
        for name in flows:
            if name in failures:
                t_fail = failures[name].t
                line += f"{'failed' if t_fail is None or k * args.h >= t_fail else '-':>16}"
            else:
                line += f"{np.linalg.norm(np.real(paths[name][k]) - g):>16.4e}"
        print(line)
    bad_gd = np.flatnonzero(~np.all(np.isfinite(gd_path), axis=1))
    if bad_gd.size:
        print(f"gd: diverged at iterate {bad_gd[0]} (t = {bad_gd[0] * args.h:g}): not finite; a smaller --h may converge")
    for name, exc in failures.items():
        msg = " ".join(str(exc).split())
        where = "" if exc.t is None or "t =" in msg else f" at t = {exc.t:.6g} (GD step {exc.t / args.h:.4g})"
        print(f"{name}: FAILED{where}: {msg}  ('-': no value, the integration stopped at the failure)")
    if args.plot:
        from bea.plot import trajectories

        fig = trajectories(E, params, theta0, args.h, args.steps, flows=(), paths={"GD": gd_path, **paths})
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot written to {args.plot}")
    return 1 if failures or bad_gd.size else 0


# ---------------------------------------------------------------------------------------- certify
def _cmd_certify(args: argparse.Namespace) -> int:
    from bea.certificates.certify import certify

    E, params = _loss(args)
    theta0 = _numbers(args.theta0, "--theta0")
    _check_plot_target(args.plot)
    kind = "ball arithmetic" if args.rigorous else "floating point"
    with _Elapsed(f"bea certify: {args.steps} GD steps, {args.mode} bound, {kind}"):
        cert = certify(E, params, theta0, args.h, args.steps, mode=args.mode, rigorous=args.rigorous)
    print(cert.summary())
    if args.plot:
        from bea.plot import certificate

        certificate(cert).savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot written to {args.plot}")
    return 0 if cert.certified else 1


# ----------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from bea._version import __version__

    parser = argparse.ArgumentParser(
        prog="bea",
        description="Backward error analysis of gradient descent: modified equations, flows, certificates.",
        epilog="Losses are sympy expressions: powers are ** (x**2), a loss that starts with '-' goes after '--'.",
    )
    parser.add_argument("--version", action="version", version=f"bea {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    expr_help = 'the loss, a sympy expression, e.g. "(1-x)**2 + 100*(y-x**2)**2" (powers are **)'

    p = sub.add_parser(
        "derive",
        help="print the modified vector field of gradient descent (or another method) on a loss",
        description="Print f~ = sum_k h^k f_k, the modified field whose flow matches the method to O(h^(N+2)); "
        "f_k is the coefficient of h^k.",
    )
    p.add_argument("expr", metavar="EXPR", help=expr_help + "; not used with --series")
    p.add_argument("--params", required=True, help="comma-separated parameter names, e.g. x,y")
    p.add_argument("--order", type=int, default=2, help="highest power of h kept (default 2)")
    p.add_argument("--method", default="gd", help="gd (default), euler, rk4, midpoint, heun, implicit_midpoint, ...")
    p.add_argument(
        "--simplify", default="auto", choices=["auto", "expand", "simplify", "none"], help="how terms are simplified"
    )
    p.add_argument(
        "--optimizer", metavar="NAME",
        help="an optimiser instead of GD: momentum, nesterov (need --m), rmsprop (--beta2 --eps), adam "
        "(--beta1 --beta2 --eps); hyperparameters are exact (0.9 -> 9/10) or symbol names",
    )
    p.add_argument("--m", help="momentum of --optimizer momentum|nesterov, e.g. 0.9")
    p.add_argument("--beta1", help="first-moment decay of --optimizer adam, e.g. 0.9")
    p.add_argument("--beta2", help="second-moment decay of --optimizer rmsprop|adam, e.g. 0.999")
    p.add_argument("--eps", help="epsilon of --optimizer rmsprop|adam (inside the square root), e.g. 1e-8")
    p.add_argument("--bias-correction", action="store_true", help="Adam/RMSProp with bias correction (large-n field)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--notation", action="store_true", help="print only the gradient notation of each term")
    fmt.add_argument("--latex", action="store_true", help="print the terms as LaTeX")
    fmt.add_argument(
        "--series", action="store_true",
        help="print the loss-independent tree coefficients c(t) up to h^order instead (EXPR is not used)",
    )
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser(
        "series",
        help="print the loss-independent modified series (trees and exact coefficients)",
        description="Print f~ in gradient notation and the coefficient c(t) of every rooted tree up to h^order "
        "(trees of up to order + 1 nodes).",
    )
    p.add_argument("--order", type=int, default=4, help="highest power of h kept (default 4)")
    p.add_argument("--method", default="gd", help="gd (default), rk4, midpoint, heun, implicit_midpoint, ...")
    p.set_defaults(func=_cmd_series)

    def run_args(p, h_default):
        p.add_argument("expr", metavar="EXPR", help=expr_help)
        p.add_argument("--params", required=True, help="comma-separated parameter names, e.g. x,y")
        p.add_argument("--theta0", required=True, help="start point, comma-separated (write --theta0=-1,2)")
        p.add_argument("--h", type=float, default=h_default, help=f"GD step size (default {h_default})")
        p.add_argument("--steps", type=int, default=50, help="number of GD steps (default 50)")
        p.add_argument("--plot", metavar="OUT.png", help="also save a figure (the folder must exist)")

    p = sub.add_parser(
        "flows",
        help="compare gradient descent with its continuous models (NGF, IGR, PF, ...)",
        description="Run GD and integrate each flow, sampled at t = k h; print the distance of each flow to GD. "
        "A flow that fails (e.g. the positive flow blowing up) is reported in its column and a row below the "
        "table; the others are printed as usual and the exit status is 1.",
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
        with warnings.catch_warnings():
            # the printed numbers say inf/nan themselves; numpy's warnings about them are noise here
            warnings.simplefilter("ignore", RuntimeWarning)
            return args.func(args)
    except BEAError as exc:
        print(f"bea: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
