r"""Tools for testing backward error analysis claims, for bea's own tests and for users' test suites.

* A high-precision reference integrator, :func:`integrate_mp`, independent of every other part of
  bea: the Gragg–Bulirsch–Stoer extrapolation method (modified midpoint rule + Aitken–Neville
  extrapolation in the squared step; Hairer, Nørsett, Wanner, *Solving ODEs I*, II.9) in mpmath
  arithmetic. With ``levels`` = k it has order 2k per macro step, so with k = 8 and dps = 40 it
  resolves errors far below 1e-20 on the short intervals (one GD step) where modified equations are
  checked.
* The numerical methods themselves in mpmath, straight from their definitions (never from a
  B-series): gradient descent, any Runge–Kutta tableau (:func:`rk_step_mp`; implicit stages by
  fixed-point iteration), linear multistep methods such as heavy-ball momentum.
* Measurements and assertions: :func:`local_errors`, :func:`fit_order`, :func:`assert_local_order`
  (the one-step error of a flow against a method has the slope it should) and
  :func:`assert_matches_gd` (a flow sampled at t = kh equals the GD iterates).
* `hypothesis <https://hypothesis.readthedocs.io>`_ strategies: :func:`polynomial_losses`,
  :func:`quadratics` (with exactly known spectra, placed relative to a step size h: hλ > 1 and
  hλ > 2 included), :func:`points` and :func:`step_sizes`. hypothesis is imported only when a
  strategy is built, so ``import bea.testing`` works without it.

Example (in a user's test suite)::

    from hypothesis import given
    import bea
    from bea.testing import polynomial_losses, assert_local_order

    @given(polynomial_losses(n_params=2, max_degree=4))
    def test_third_order_flow(case):
        E, params = case
        assert_local_order(bea.modified_field(E, params, order=2), order=2)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

import mpmath as mp
import numpy as np
import sympy as sp

__all__ = [
    "integrate_mp",
    "local_errors",
    "fit_order",
    "gd_step_mp",
    "rk_step_mp",
    "multistep_step_mp",
    "LocalOrder",
    "assert_local_order",
    "assert_matches_gd",
    "LossCase",
    "QuadraticCase",
    "polynomial_losses",
    "quadratics",
    "points",
    "step_sizes",
    "REGIMES",
]


# --------------------------------------------------------------------------------------------------
# the reference integrator
# --------------------------------------------------------------------------------------------------


def _midpoint(rhs, y0, H, n):
    d = H / n
    z_prev = list(y0)
    f0 = rhs(z_prev)
    z = [a + d * b for a, b in zip(z_prev, f0)]
    for _ in range(n - 1):
        fz = rhs(z)
        z_prev, z = z, [a + 2 * d * b for a, b in zip(z_prev, fz)]
    fz = rhs(z)
    return [(a + b + d * c) / 2 for a, b, c in zip(z, z_prev, fz)]


def integrate_mp(
    rhs: Callable[[list], Sequence],
    y0: Sequence,
    t: float,
    *,
    dps: int = 40,
    steps: int = 2,
    levels: int = 8,
) -> list:
    """Integrate y' = rhs(y) from y0 over [0, t] in mpmath precision ``dps`` (GBS extrapolation).

    ``rhs`` takes and returns lists of mpmath numbers (real or complex). ``t`` may be negative
    (backward in time). Returns the list y(t).
    """
    with mp.workdps(dps):
        y = [v if isinstance(v, (mp.mpf, mp.mpc)) else (mp.mpc(v) if isinstance(v, complex) else mp.mpf(v)) for v in y0]
        H = mp.mpf(t) / steps
        seq = [2 * (j + 1) for j in range(levels)]
        for _ in range(steps):
            table: list[list] = []
            for j, n in enumerate(seq):
                row = [_midpoint(rhs, y, H, n)]
                for k in range(1, j + 1):
                    ratio = mp.mpf(seq[j]) ** 2 / mp.mpf(seq[j - k]) ** 2 - 1
                    row.append([a + (a - b) / ratio for a, b in zip(row[k - 1], table[j - 1][k - 1])])
                table.append(row)
            y = table[-1][-1]
        return y


# --------------------------------------------------------------------------------------------------
# the methods, from their definitions
# --------------------------------------------------------------------------------------------------


def _mpf(x):
    if isinstance(x, (mp.mpf, mp.mpc)):
        return x
    if isinstance(x, Fraction):
        return mp.mpf(x.numerator) / x.denominator
    if isinstance(x, sp.Basic):
        return mp.mpmathify(sp.N(x, mp.mp.dps + 5))
    if isinstance(x, complex):
        return mp.mpc(x)
    return mp.mpf(x)


def _norm(v) -> float:
    return float(mp.sqrt(sum(abs(a) ** 2 for a in v)))


def gd_step_mp(grad: Callable[[list], Sequence], y: Sequence, h) -> list:
    """θ − h∇E(θ) in mpmath (``grad`` returns ∇E as a list)."""
    h = _mpf(h)
    return [a - h * g for a, g in zip(y, grad(list(y)))]


def rk_step_mp(method, rhs: Callable[[list], Sequence], y: Sequence, h, *, tol=None, maxiter: int = 500) -> list:
    """One step of the Runge–Kutta method ``method`` (name or tableau) for y' = rhs(y), in mpmath.

    Computed from the Butcher tableau (A, b) directly, in the current mpmath precision. Implicit
    stages are solved by fixed-point iteration k ← rhs(y + hAk), which converges when h·‖A‖·Lip(rhs)
    < 1; failure to converge raises :class:`bea.IntegrationError`.
    """
    from bea.errors import IntegrationError
    from bea.derive.methods import get_method

    tab = get_method(method)
    h = _mpf(h)
    A = [[_mpf(v) for v in row] for row in tab.A]
    b = [_mpf(v) for v in tab.b]
    s = tab.stages
    y = list(y)

    def stage_point(i, ks):
        return [yj + h * sum((A[i][j] * ks[j][c] for j in range(s) if A[i][j] != 0), mp.mpf(0)) for c, yj in enumerate(y)]

    if tab.is_explicit:
        ks: list = [None] * s
        for i in range(s):
            ks[i] = list(rhs(stage_point(i, ks)))
    else:
        tol = mp.mpf(10) ** (-mp.mp.dps + 3) if tol is None else _mpf(tol)
        f0 = list(rhs(y))
        ks = [list(f0) for _ in range(s)]
        for _ in range(maxiter):
            new = [list(rhs(stage_point(i, ks))) for i in range(s)]
            change = max(abs(a - c) for ki, ni in zip(ks, new) for a, c in zip(ki, ni))
            ks = new
            if change <= tol * (1 + max(abs(a) for a in f0)):
                break
        else:
            raise IntegrationError(
                f"fixed-point iteration for the implicit stages of {tab.name!r} did not converge in {maxiter} "
                f"iterations at h = {mp.nstr(h, 5)}; use a smaller step"
            )
    return [yj + h * sum((b[i] * ks[i][c] for i in range(s) if b[i] != 0), mp.mpf(0)) for c, yj in enumerate(y)]


def multistep_step_mp(method, rhs: Callable[[list], Sequence], past: dict, h, *, tol=None, maxiter: int = 500) -> list:
    """The new point y_{n+k} of a linear multistep method from the earlier points ``past`` = {j: y_{n+j}}.

    Σ_j α_j y_{n+j} = h Σ_j β_j f(y_{n+j}) solved for the largest offset k (fixed-point iteration
    when β_k ≠ 0). For :class:`~bea.derive.methods.Momentum` this is θ_{n+1} = θ_n + m(θ_n − θ_{n−1}) − h∇E(θ_n).
    """
    from bea.errors import IntegrationError
    from bea.derive.methods import get_method

    lmm = get_method(method)
    if lmm.is_symbolic:
        raise ValueError(f"a numerical step needs numeric coefficients, {lmm.name} has symbols")
    h = _mpf(h)
    k = max(lmm.offsets)
    coef = dict(zip(lmm.offsets, zip(map(_mpf, lmm.alpha), map(_mpf, lmm.beta))))
    n = len(next(iter(past.values())))
    known = [mp.mpf(0)] * n
    for j, (a, bb) in coef.items():
        if j == k:
            continue
        yj = past[j]
        fj = rhs(list(yj)) if bb != 0 else None
        for c in range(n):
            known[c] += h * bb * fj[c] if fj is not None else 0
            known[c] -= a * yj[c]
    ak, bk = coef[k]
    y = [v / ak for v in known]
    if bk == 0:
        return y
    tol = mp.mpf(10) ** (-mp.mp.dps + 3) if tol is None else _mpf(tol)
    for _ in range(maxiter):
        fy = rhs(list(y))
        new = [(kc + h * bk * fc) / ak for kc, fc in zip(known, fy)]
        if max(abs(a - c) for a, c in zip(new, y)) <= tol * (1 + max(abs(a) for a in y)):
            return new
        y = new
    raise IntegrationError(f"fixed-point iteration of the implicit multistep method {lmm.name!r} did not converge")


# --------------------------------------------------------------------------------------------------
# fields and steps as mpmath callables
# --------------------------------------------------------------------------------------------------


def _field_callable(field, params=None, h_symbol=None):
    """(callable(theta_list, h) -> list, params, loss-or-None, method-or-None) for a field given as a
    ModifiedField, a sympy Matrix/list in (params, h), or a callable."""
    from bea.derive.symbolic import ModifiedField

    if isinstance(field, ModifiedField):
        fn = sp.lambdify((field.params, field.h), list(field.field), "mpmath")
        return fn, field.params, field.loss, field.method
    if callable(field) and not isinstance(field, sp.Basic):
        return field, params, None, None
    exprs = list(field) if not isinstance(field, sp.MatrixBase) else list(field)
    exprs = [sp.sympify(e) for e in exprs]
    if params is None:
        raise ValueError("a sympy field needs params=[...] (the parameter symbols, in order)")
    params = tuple(params)
    if h_symbol is None:
        extra = set().union(*(e.free_symbols for e in exprs)) - set(params)
        if len(extra) > 1:
            raise ValueError(f"cannot tell the step-size symbol among {sorted(map(str, extra))}; pass h=")
        h_symbol = extra.pop() if extra else sp.Symbol("h", positive=True)
    fn = sp.lambdify((params, h_symbol), exprs, "mpmath")
    return fn, params, None, None


def _grad_callable(E, params):
    from bea.derive.symbolic import validate_loss

    E, params = validate_loss(E, params)
    return sp.lambdify((params,), [sp.diff(E, p) for p in params], "mpmath"), E, params


def _reference_step(method, grad, flow):
    """step(theta, h) -> the method's new point, for GD / RK / multistep (the latter uses ``flow``
    to place the earlier points on the modified flow: flow(theta, t) = φ_t(theta))."""
    from bea.derive.methods import ButcherTableau, LinearMultistep, get_method

    tab = get_method(method)
    if isinstance(tab, LinearMultistep):
        k = max(tab.offsets)

        def step(th, h):
            # θ0 is the newest known point, at offset k−1; the older ones lie on the flow
            past = {j: (th if j == k - 1 else flow(th, (j - k + 1) * h)) for j in tab.offsets if j != k}
            return multistep_step_mp(tab, lambda u: [-g for g in grad(u)], past, h)

        return step
    assert isinstance(tab, ButcherTableau)
    if tab == get_method("euler"):
        return lambda th, h: gd_step_mp(grad, th, h)
    return lambda th, h: rk_step_mp(tab, lambda u: [-g for g in grad(u)], th, h)


def local_errors(mf, theta0: Sequence[float], hs: Sequence, *, dps: int = 40, method=None, E=None, params=None) -> np.ndarray:
    """‖φ_h^{f̃}(θ0) − Φ_h(θ0)‖ for each h: the one-step error of a field's flow against a method.

    ``mf`` is a :class:`~bea.derive.symbolic.ModifiedField` (or, with ``E`` and ``params``, a sympy field
    or a callable ``field(theta_list, h)``). ``method`` defaults to the field's method (gradient
    descent for ``bea.modified_field(E, params, n)``); Φ_h is that method applied to θ' = −∇E,
    computed in mpmath from its definition. For a multistep method (momentum) the earlier points
    are placed on the field's flow, θ_{−j} = φ_{−jh}(θ0): the error is that of the slow manifold.
    For a modifying integrator (``bea.derive.series.modifying_integrator(n, method).evaluate(E, params)``)
    the roles swap: the method's step on the field against the exact gradient flow of E.
    """
    fn, fparams, loss, fmethod = _field_callable(mf, params)
    E = loss if E is None else E
    if E is None or fparams is None:
        raise ValueError("local_errors needs the loss E and params for a field that is not a ModifiedField")
    method = method if method is not None else (fmethod if fmethod is not None else "gd")
    grad, _, _ = _grad_callable(E, fparams)
    if getattr(getattr(mf, "series", None), "kind", "modified") == "modifying":
        return _modifying_errors(fn, grad, method, theta0, hs, dps)
    out = []
    with mp.workdps(dps):
        th = [_mpf(v) for v in theta0]
        for h in hs:
            h = _mpf(h)

            def flow(y, t, h=h):
                return integrate_mp(lambda u: fn(u, h), y, t, dps=dps)

            step = _reference_step(method, grad, flow)
            y = flow(th, h)
            ref = step(th, h)
            out.append(_norm([a - c for a, c in zip(y, ref)]))
    return np.array(out)


def _modifying_errors(fn, grad, method, theta0, hs, dps) -> np.ndarray:
    """A modifying integrator f̂: ‖Φ_h^{method}[f̂](θ0) − φ_h^{−∇E}(θ0)‖ (the method on f̂ against
    the exact gradient flow)."""
    from bea.derive.methods import ButcherTableau, get_method

    tab = get_method(method)
    if not isinstance(tab, ButcherTableau):
        raise ValueError(f"modifying integrators are one-step (Runge–Kutta) methods, got {tab!r}")
    out = []
    with mp.workdps(dps):
        th = [_mpf(v) for v in theta0]
        for h in hs:
            h = _mpf(h)
            exact = integrate_mp(lambda u: [-g for g in grad(u)], th, h, dps=dps)
            step = rk_step_mp(tab, lambda u, h=h: fn(u, h), th, h)
            out.append(_norm([a - c for a, c in zip(exact, step)]))
    return np.array(out)


def fit_order(hs: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(h)."""
    return float(np.polyfit(np.log(np.asarray(hs, float)), np.log(np.asarray(errors, float)), 1)[0])


# --------------------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalOrder:
    """The measured one-step errors of :func:`assert_local_order` and their log-log slope."""

    hs: tuple
    errors: tuple
    slope: float
    expected: float

    def summary(self) -> str:
        rows = ", ".join(f"h={h:.3g}: {e:.3e}" for h, e in zip(self.hs, self.errors))
        return f"local error slope {self.slope:.3f} (expected ≥ {self.expected}); {rows}"


def _default_hs(E, params, theta0, method) -> list[float]:
    """Steps small enough that the series is in its asymptotic regime: h·max(1, ‖H‖, ‖g‖)/|c(•)| ≤ 2^-5."""
    from bea.derive.methods import LinearMultistep, Momentum, get_method

    grad = [sp.diff(E, p) for p in params]
    subs = dict(zip(params, [sp.Float(v, 30) for v in theta0]))
    g = np.array([float(e.subs(subs)) for e in grad])
    H = np.array([[float(sp.diff(e, p).subs(subs)) for p in params] for e in grad])
    scale = max(1.0, float(np.max(np.abs(np.linalg.eigvalsh(H)))), float(np.linalg.norm(g)))
    tab = get_method(method)
    if isinstance(tab, Momentum):
        # the series of momentum is one in h/(1−m)²: f_k/f_0 ~ (h λ/(1−m)²)^k
        scale /= float(1 - tab.m) ** 2
    elif isinstance(tab, LinearMultistep):
        lead = sum(tab.beta, Fraction(0)) / sum((j * a for j, a in zip(tab.offsets, tab.alpha)), Fraction(0))
        scale *= max(1.0, abs(float(lead)))
    return [2.0**-k / scale for k in range(5, 9)]


def assert_local_order(
    field,
    E=None,
    params=None,
    order: int | None = None,
    *,
    method=None,
    theta0=None,
    hs: Sequence[float] | None = None,
    dps: int = 40,
    tol: float = 0.3,
    sharp: bool = False,
    h=None,
) -> LocalOrder:
    r"""Assert that the time-h flow of ``field`` matches one step of ``method`` to O(h^{order+2}).

    Parameters
    ----------
    field : a :class:`~bea.derive.symbolic.ModifiedField` (then E, params, order and method default to its
        own), a sympy Matrix/list of expressions in ``params`` and the step symbol ``h``, or a callable
        ``field(theta: list[mpf], h: mpf) -> list`` (e.g. a principal-flow field).
    E, params : the loss and its parameters (the method is applied to θ' = −∇E).
    order : the truncation order n: the local error must be O(h^{n+2}).
    method : ``"gd"`` (default), any name or tableau of :mod:`bea.derive.methods`, or ``Momentum(m)``.
    theta0 : the point (default: 0.3, −0.2, 0.1, ...).
    hs : step sizes (default: four halvings from 2^-5 / max(1, ‖H(θ0)‖, ‖g(θ0)‖)).
    tol : allowed shortfall of the fitted slope.
    sharp : also require the slope to be at most order + 2 + tol (the next term really is there).

    Returns
    -------
    LocalOrder
        The measurement: the step sizes, the one-step errors (computed by :func:`local_errors`,
        mpmath GBS integration with ``dps`` digits) and their fitted log-log slope.

    Raises
    ------
    AssertionError
        When the fitted slope falls short of order + 2 − tol (or, with ``sharp``, exceeds
        order + 2 + tol); the message carries the measured errors.
    """
    from bea.derive.symbolic import ModifiedField

    if isinstance(field, ModifiedField):
        E = field.loss if E is None else E
        params = field.params if params is None else params
        order = field.order if order is None else order
        method = field.method if method is None else method
    if E is None or params is None or order is None:
        raise ValueError("assert_local_order needs E, params and order for a field that is not a ModifiedField")
    method = "gd" if method is None else method
    from bea.derive.symbolic import validate_loss

    E, params = validate_loss(E, params)
    if theta0 is None:
        theta0 = [0.3, -0.2, 0.1, -0.4, 0.25, -0.15][: len(params)] + [0.1] * max(0, len(params) - 6)
    if hs is None:
        hs = _default_hs(E, params, theta0, method)
    if h is not None and not isinstance(field, ModifiedField) and not callable(field):
        fn, _, _, _ = _field_callable(field, params, h)
        field = fn
    errors = local_errors(field, theta0, hs, dps=dps, method=method, E=E, params=params)
    expected = order + 2
    floor = 10.0 ** (-dps + 8)
    if np.any(errors < floor) and not np.all(errors < floor):
        raise AssertionError(
            f"local errors {errors} reach the precision floor {floor:.0e}: raise dps or the step sizes"
        )
    if np.all(errors < floor):
        # the flow reproduces the method to working precision (e.g. PF on a quadratic)
        return LocalOrder(tuple(hs), tuple(errors), float("inf"), expected)
    slope = fit_order(hs, errors)
    result = LocalOrder(tuple(float(v) for v in hs), tuple(float(e) for e in errors), slope, expected)
    if slope < expected - tol:
        raise AssertionError(f"the flow does not match {getattr(method, 'name', method)} to O(h^{expected}): {result.summary()}")
    if sharp and slope > expected + tol:
        raise AssertionError(f"the local error is smaller than O(h^{expected}) (sharp=True): {result.summary()}")
    return result


def _gd_iterates_mp(E, params, theta0, h, steps, dps):
    grad, _, _ = _grad_callable(E, params)
    with mp.workdps(dps):
        th = [_mpf(v) for v in theta0]
        out = [th]
        hh = _mpf(h)
        for _ in range(steps):
            th = gd_step_mp(grad, th, hh)
            out.append(th)
        return out


def assert_matches_gd(
    flow,
    E,
    params,
    theta0,
    h,
    steps: int,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    dps: int = 30,
    substeps: int = 8,
) -> float:
    r"""Assert that a flow sampled at t = kh reproduces the GD iterates θ_k, k = 0..steps.

    ``flow`` is a trajectory array of shape (steps+1, n) (real or complex, e.g. from
    ``bea.trajectory(..., flow="pf")``), a flow name for ``bea.trajectory``, a ModifiedField, or a
    callable field ``field(theta: list, h) -> list`` that is integrated here in mpmath from θ0
    (GBS, ``substeps`` macro steps per GD step; complex values allowed, e.g. the principal flow).
    GD is iterated in mpmath with ``dps`` digits. Every entry must satisfy
    |flow − GD| ≤ atol + rtol·|GD| (an imaginary part must vanish to that tolerance). Returns the
    largest deviation.
    """
    gd = _gd_iterates_mp(E, params, theta0, h, steps, dps)
    gd_arr = np.array([[complex(v) for v in row] for row in gd])
    if isinstance(flow, str):
        from bea.flows.fields import trajectory

        flow = trajectory(E, params, np.asarray(theta0, float), float(h), steps, flow=flow)
    if isinstance(flow, np.ndarray):
        arr = np.asarray(flow)
        if arr.shape != gd_arr.shape:
            raise ValueError(f"the trajectory has shape {arr.shape}, expected {gd_arr.shape}")
    else:
        fn, _, _, _ = _field_callable(flow, params)
        with mp.workdps(dps):
            hh = _mpf(h)
            y = [_mpf(v) for v in theta0]
            rows = [y]
            for _ in range(steps):
                y = integrate_mp(lambda u: fn(u, hh), y, hh, dps=dps, steps=substeps)
                rows.append(y)
        arr = np.array([[complex(v) for v in row] for row in rows])
    dev = np.abs(arr - gd_arr)
    bad = dev > atol + rtol * np.abs(gd_arr)
    if np.any(bad):
        k, i = map(int, np.argwhere(bad)[0])
        raise AssertionError(
            f"the flow departs from GD at step {k}, coordinate {i}: flow {arr[k, i]}, GD {gd_arr[k, i]} "
            f"(|diff| = {dev[k, i]:.3e} > atol + rtol|GD|; max |diff| {dev.max():.3e})"
        )
    return float(dev.max())


# --------------------------------------------------------------------------------------------------
# hypothesis strategies
# --------------------------------------------------------------------------------------------------


def _st():
    try:
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise ImportError("the strategies of bea.testing need hypothesis: pip install hypothesis") from exc
    return st


@dataclass(frozen=True)
class LossCase:
    """A generated loss: ``E`` (sympy) and its ``params``; unpacks as ``E, params = case``."""

    E: sp.Expr
    params: tuple

    def __iter__(self):
        return iter((self.E, self.params))


@dataclass(frozen=True)
class QuadraticCase(LossCase):
    """E = ½θᵀAθ + bᵀθ with an exactly known spectrum: A = Q diag(eigenvalues) Qᵀ, Q rational orthogonal.

    ``h`` is the step size the spectrum was placed for; ``hlambda`` = h·eigenvalues.
    """

    A: sp.Matrix = None  # type: ignore[assignment]
    b: sp.Matrix = None  # type: ignore[assignment]
    eigenvalues: tuple = ()
    eigenvectors: sp.Matrix = None  # type: ignore[assignment]
    h: sp.Rational = None  # type: ignore[assignment]

    @property
    def hlambda(self) -> tuple:
        return tuple(self.h * lam for lam in self.eigenvalues)

    def gradient(self) -> sp.Matrix:
        return self.A * sp.Matrix(self.params) + self.b


def _symbols(n: int, symbols) -> tuple:
    if symbols is not None:
        syms = tuple(sp.Symbol(s) if isinstance(s, str) else s for s in symbols)
        if len(syms) != n:
            raise ValueError(f"got {len(syms)} symbols for n_params = {n}")
        return syms
    if n <= 3:
        return sp.symbols("x y z")[:n]
    return tuple(sp.symbols(f"x0:{n}"))


def _check_count(value, name, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _exponents(n: int, degree: int):
    if n == 1:
        yield (degree,)
        return
    for first in range(degree, -1, -1):
        for rest in _exponents(n - 1, degree - first):
            yield (first,) + rest


def polynomial_losses(
    n_params: int = 2,
    max_degree: int = 4,
    *,
    min_degree: int = 1,
    max_terms: int = 6,
    max_coefficient: int = 3,
    max_denominator: int = 4,
    symbols=None,
):
    """Strategy for polynomial losses with small rational coefficients that depend on every parameter.

    Draws up to ``max_terms`` distinct monomials of total degree 1..``max_degree`` with coefficients
    p/q (0 < |p| ≤ ``max_coefficient``, 1 ≤ q ≤ ``max_denominator``); at least one monomial has
    degree ≥ ``min_degree`` (``min_degree=3`` gives genuinely non-quadratic losses), and a term
    c·x_i² (c·x_i when ``max_degree`` = 1) is added for every parameter that would be missing.
    Generates :class:`LossCase` (``E, params = case``); params are x, y, z (x0, x1, ... for n > 3).
    """
    st = _st()
    n = _check_count(n_params, "n_params")
    max_degree = _check_count(max_degree, "max_degree")
    min_degree = _check_count(min_degree, "min_degree")
    if min_degree > max_degree:
        raise ValueError(f"min_degree {min_degree} > max_degree {max_degree}")
    max_terms = _check_count(max_terms, "max_terms")
    syms = _symbols(n, symbols)
    monos = [e for d in range(1, max_degree + 1) for e in _exponents(n, d)]
    high = [e for e in monos if sum(e) >= min_degree]
    coef = st.builds(
        lambda p, q: sp.Rational(p, q),
        st.integers(1, max_coefficient).flatmap(lambda a: st.sampled_from([a, -a])),
        st.integers(1, max_denominator),
    )

    def mono(e):
        return sp.Mul(*[s**k for s, k in zip(syms, e)])

    @st.composite
    def build(draw):
        chosen = draw(st.lists(st.sampled_from(monos), min_size=1, max_size=max_terms, unique=True))
        if max(sum(e) for e in chosen) < min_degree:
            chosen.append(draw(st.sampled_from(high)))
        E = sp.Add(*[draw(coef) * mono(e) for e in chosen])
        for i, s in enumerate(syms):
            if s not in E.free_symbols:
                e = tuple((2 if max_degree >= 2 else 1) if j == i else 0 for j in range(n))
                E += abs(draw(coef)) * mono(e)
        return LossCase(E, syms)

    return build()


#: named intervals of z = hλ for :func:`quadratics` (open intervals, except "flat" = {0})
REGIMES = {
    "negative": (Fraction(-1, 2), Fraction(0)),  # negative curvature: GD and PF grow
    "flat": (Fraction(0), Fraction(0)),
    "stable": (Fraction(0), Fraction(1)),  # real PF, monotone decay
    "oscillating": (Fraction(1), Fraction(2)),  # complex PF, decaying sign flips (hλ > 1)
    "unstable": (Fraction(2), Fraction(3)),  # complex PF, growing sign flips (hλ > 2)
}


def _rational(x, what) -> Fraction:
    """Exact value; a float is read as the short decimal it prints as (0.1 -> 1/10)."""
    if isinstance(x, sp.Rational):
        return Fraction(int(x.p), int(x.q))
    try:
        if isinstance(x, float):
            return Fraction(repr(x))
        return Fraction(x)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be a rational number, got {x!r}") from None


def quadratics(
    n: int = 2,
    *,
    h=Fraction(1, 10),
    regimes: Sequence[str] = ("negative", "stable", "oscillating", "unstable"),
    require: Sequence[str] = (),
    linear_term: bool = True,
    rotate: bool = True,
    grid: int = 8,
    symbols=None,
):
    r"""Strategy for quadratics E = ½θᵀAθ + bᵀθ whose spectrum is placed relative to a step size h.

    Every eigenvalue is λ = z/h with z = hλ a multiple of 1/``grid`` strictly inside one of the
    ``regimes`` (see :data:`REGIMES`: ``"stable"`` 0 < hλ < 1, ``"oscillating"`` 1 < hλ < 2,
    ``"unstable"`` 2 < hλ ≤ 3, ``"negative"`` −½ < hλ < 0, ``"flat"`` λ = 0); hλ = 1 (GD's one-step
    case, α = −∞) is never drawn. ``require`` lists regimes that must each hold at least one
    eigenvalue (e.g. ``require=("oscillating", "unstable")`` for hλ > 1 and hλ > 2). The eigenvectors
    are the columns of a rational orthogonal matrix (Cayley transform of a random skew matrix) when
    ``rotate``, so A, b, the spectrum and the eigenvectors are all exact. E depends on every parameter.
    Generates :class:`QuadraticCase`.
    """
    st = _st()
    from hypothesis import assume

    n = _check_count(n, "n")
    hq = _rational(h, "h")
    if hq <= 0:
        raise ValueError(f"h must be positive, got {h}")
    unknown = [r for r in list(regimes) + list(require) if r not in REGIMES]
    if unknown:
        raise ValueError(f"unknown regimes {unknown}; known: {sorted(REGIMES)}")
    if not regimes:
        raise ValueError("regimes is empty")
    if len(require) > n:
        raise ValueError(f"cannot require {len(require)} regimes with n = {n} eigenvalues")
    grid = _check_count(grid, "grid", 2)
    syms = _symbols(n, symbols)

    def z_in(regime):
        lo, hi = REGIMES[regime]
        if regime == "flat":
            return st.just(Fraction(0))
        k_lo, k_hi = int(lo * grid) + 1, int(hi * grid) - (0 if regime == "unstable" else 1)
        return st.integers(k_lo, k_hi).map(lambda k: Fraction(k, grid)).filter(lambda z: z != 1)

    @st.composite
    def build(draw):
        names = list(require) + [draw(st.sampled_from(list(regimes))) for _ in range(n - len(require))]
        names = draw(st.permutations(names))
        zs = [draw(z_in(r)) for r in names]
        lams = [sp.Rational(z.numerator, z.denominator) / sp.Rational(hq.numerator, hq.denominator) for z in zs]
        if rotate and n > 1:
            S = sp.zeros(n, n)
            for i in range(n):
                for j in range(i + 1, n):
                    v = draw(st.integers(-2, 2))
                    S[i, j], S[j, i] = v, -v
            I = sp.eye(n)
            Q = (I - S) * (I + S).inv()
        else:
            Q = sp.eye(n)
        A = Q * sp.diag(*lams) * Q.T
        if linear_term:
            bvec = sp.Matrix([sp.Rational(draw(st.integers(-3, 3)), draw(st.integers(1, 3))) for _ in range(n)])
        else:
            bvec = sp.zeros(n, 1)
        th = sp.Matrix(syms)
        E = sp.expand((th.T * A * th)[0] / 2 + (bvec.T * th)[0])
        assume(E.free_symbols == set(syms))
        return QuadraticCase(E, syms, A, bvec, tuple(lams), Q, sp.Rational(hq.numerator, hq.denominator))

    return build()


def points(n: int, bound: float = 1.0, *, grid: int | None = None):
    """Strategy for points θ ∈ [−bound, bound]^n as float64 arrays.

    With ``grid`` = k the coordinates are multiples of bound/k (exact binary fractions when k is a
    power of two, handy for exact sympy substitution); otherwise finite floats without subnormals.
    """
    st = _st()
    n = _check_count(n, "n")
    if grid is not None:
        k = _check_count(grid, "grid")
        coord = st.integers(-k, k).map(lambda i: bound * i / k)
    else:
        coord = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return st.lists(coord, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.float64))


def step_sizes(min_value: float = 2.0**-10, max_value: float = 0.25, *, exact: bool = False):
    """Strategy for step sizes h in [min_value, max_value] (floats; ``exact`` gives Fractions k/1024)."""
    st = _st()
    if not (0 < min_value <= max_value):
        raise ValueError(f"need 0 < min_value <= max_value, got {min_value}, {max_value}")
    if exact:
        lo, hi = int(np.ceil(min_value * 1024)), int(np.floor(max_value * 1024))
        if lo > hi:
            raise ValueError("no multiple of 1/1024 in [min_value, max_value]")
        return st.integers(max(lo, 1), hi).map(lambda k: Fraction(k, 1024))
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
