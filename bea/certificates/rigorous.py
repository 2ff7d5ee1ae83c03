r"""Validated numerics for :mod:`bea.certificates.certify`: ball arithmetic (python-flint ``arb``) on sympy losses.

Everything here returns *enclosures*: a value computed from a box is a ball that contains the exact
value at every point of the box, whatever rounding happened on the way (arb tracks it). Floats that
leave this module are rounded outwards (:func:`upper`, :func:`lower`).

Pieces
------
:func:`arb_kernel`
    sympy expressions → a Python function over ``arb`` (boxes) *and* ``arb_series`` (truncated power
    series with ball coefficients, for Taylor-mode differentiation). Rationals, floats and constants
    enter as balls (never as rounded Python floats). Cached by content.
:class:`IntervalLoss`
    natural interval extensions of g = ∇E, H = ∇²E, Hg and ∇³E of a loss over a box, with
    rigorous bounds on ``‖Hg‖``, ``‖∇³E‖_F`` and the spectrum of H (:meth:`IntervalLoss.eig_bounds`).
:meth:`IntervalLoss.picard`
    a-priori enclosure of gradient flow θ̇ = −g(θ) over ``[0, τ]`` from a box Y: a box B with
    ``Y + [0, τ]·(−g(B)) ⊆ B`` contains the whole flow (Picard–Lindelöf: the Picard operator maps
    the continuous curves in B into themselves; Lohner 1987, Nedialkov–Jackson–Corliss 1999).
:func:`enclose_gf`
    a validated gradient-flow trajectory at t = kh: a Lohner-type method that avoids the wrapping
    effect by carrying a float centre c and a *Euclidean* radius r. One (sub)step of length τ:

    1. B = Picard enclosure of the box ``c ± r`` over ``[0, τ]``;
    2. the flow from the point c, by its Taylor polynomial of order p (coefficients by Taylor-mode
       differentiation in ``arb_series``) plus the Lagrange remainder ``τ^p·F_p(B)`` (F_p the p-th
       Taylor coefficient as a function of the initial point, evaluated over B);
    3. the spread of the ball, by the logarithmic norm of the gradient field: for two flow lines in
       B, d/dt‖u − v‖ ≤ −λ_min(A)‖u − v‖ with A = ∫₀¹ H(v + s(u − v))ds, so
       ‖φ_τ(u) − φ_τ(c)‖ ≤ exp(−τ·λ_lo(B))·r, λ_lo(B) ≤ min_B λ_min(H);
    4. new centre = the float midpoint, new radius = exp(−τλ_lo)r + (radius of step 2) + rounding.

    The radius grows only as fast as nearby gradient-flow lines really separate (for a convex loss it
    shrinks), not like the interval hull of a rotated box.
:func:`enclose_gd`
    gradient-descent iterates of exact arithmetic in the same centre/radius form, the spread
    propagated by ``‖I − hA‖ ≤ max(|1 − hλ_lo|, |1 − hλ_hi|)`` over the ball.

Eigenvalue bounds of an interval Hessian: with Q the float eigenvectors of the midpoint matrix, the
entries of ``Q⁻¹·H·Q`` (computed in ball arithmetic, ``Q⁻¹`` enclosed by arb) are nearly diagonal, and
Gershgorin's discs of this similar matrix enclose the (real) spectrum of every symmetric matrix in the
box: tight for small boxes and valid for any box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import sympy as sp
from flint import arb, arb_mat, arb_series, ctx

from bea.certificates.intervals import KernelPrinter, constant_ball, derivative_exprs, lower, t3_multiplicities, upper
from bea.derive.symbolic import modified_field
from bea.errors import InvalidLossError

__all__ = [
    "upper",
    "lower",
    "arb_kernel",
    "ArbKernel",
    "IntervalLoss",
    "interval_loss",
    "eig_bounds",
    "eig_basis",
    "Basis",
    "abs_upper_matrix",
    "make_box",
    "inflate",
    "norm_upper",
    "FlowEnclosure",
    "enclose_gf",
    "enclose_gd",
    "FieldIntervalLoss",
    "field_interval_loss",
    "enclose_field",
]

_INF = math.inf


# --------------------------------------------------------------------------------------------------
# floats out of balls, boxes
# --------------------------------------------------------------------------------------------------


def make_box(center, radius=0.0) -> list:
    """The box ``center ± radius`` (radius a float or one per coordinate) as a list of arb balls."""
    c = np.asarray(center, dtype=float)
    rad = np.broadcast_to(np.asarray(radius, dtype=float), c.shape)
    return [arb(float(ci), float(ri)) if ri > 0 else arb(float(ci)) for ci, ri in zip(c, rad)]


def inflate(box: Sequence, r: float) -> list:
    """The box grown by ``r`` in every coordinate (it contains the Euclidean r-neighbourhood)."""
    if r <= 0:
        return list(box)
    e = arb(0, float(r))
    return [b + e for b in box]


def norm_upper(vec: Sequence) -> float:
    """An upper bound of ``max ‖v‖₂`` over the box ``vec``."""
    s = arb(0)
    for v in vec:
        a = v.abs_upper() if isinstance(v, arb) else abs(arb(v)).upper()
        s += a * a
    return upper(s.sqrt())


def _mids(vec) -> np.ndarray:
    return np.array([float(v.mid()) for v in vec], dtype=float)


def _all_finite(vec) -> bool:
    return all(v.is_finite() for v in vec)


# --------------------------------------------------------------------------------------------------
# sympy -> arb / arb_series
# --------------------------------------------------------------------------------------------------


def _lift(a):
    return a if isinstance(a, (arb, arb_series)) else arb(a)


def _method(name: str):
    """The ball (or ball power series) function ``name``, e.g. ``_method("exp")(a) = a.exp()``."""

    def call(a):
        return getattr(_lift(a), name)()

    call.__name__ = f"_{name}"
    return call


_exp, _log, _sin, _cos, _tan, _atan, _asin, _acos, _erf, _sqrt, _rsqrt = (
    _method(n) for n in ("exp", "log", "sin", "cos", "tan", "atan", "asin", "acos", "erf", "sqrt", "rsqrt")
)


def _point_pow(p: arb, k: int) -> arb:
    """p**k for a (nearly) exact ball p by binary powering: tight, unlike arb's ``**``."""
    out, base = arb(1), p
    while k:
        if k & 1:
            out = out * base
        k >>= 1
        if k:
            base = base * base
    return out


def _ipow(a, k):
    """a**k for an integer k ≥ 0.

    python-flint's ``**`` on a wide ball can return a symmetric ball around 0 (or NaN when the ball
    contains 0), which ruins a later division. x ↦ x^k is monotone on each sign, so the power of a
    ball is the hull of the powers of its endpoints (and of 0 for an even k on a ball containing 0).
    """
    if not isinstance(a, arb):
        return _lift(a) ** k if isinstance(a, arb_series) else arb(a) ** k
    if k == 0:
        return arb(1)
    lo, hi = _point_pow(a.lower(), k), _point_pow(a.upper(), k)
    out = lo.union(hi)
    if k % 2 == 0 and a.contains(0):
        out = out.union(arb(0))
    return out


def _inv(a):
    a = _lift(a)
    return a.inv() if isinstance(a, arb_series) else 1 / a


def _sinh(a):
    a = _lift(a)
    if isinstance(a, arb):
        return a.sinh()
    e = a.exp()
    return (e - e.inv()) / 2


def _cosh(a):
    a = _lift(a)
    if isinstance(a, arb):
        return a.cosh()
    e = a.exp()
    return (e + e.inv()) / 2


def _tanh(a):
    a = _lift(a)
    if isinstance(a, arb):
        return a.tanh()
    return 1 - 2 * ((2 * a).exp() + 1).inv()


def _powr(a, c):
    """a**c for a non-integer exponent c (an arb or an expression value): exp(c·log a)."""
    a = _lift(a)
    if isinstance(a, arb) and isinstance(c, arb):
        return a**c
    return (_lift(c) * a.log()).exp()


def _atan2(y, x):
    y, x = _lift(y), _lift(x)
    if isinstance(y, arb_series) or isinstance(x, arb_series):
        raise InvalidLossError("atan2 cannot be expanded in Taylor series by bea.certificates.rigorous (write it with atan)")
    return arb.atan2(y, x)


_NAMESPACE = {
    "_exp": _exp, "_log": _log, "_sin": _sin, "_cos": _cos, "_tan": _tan, "_atan": _atan,
    "_asin": _asin, "_acos": _acos, "_sinh": _sinh, "_cosh": _cosh, "_tanh": _tanh, "_erf": _erf,
    "_atan2": _atan2, "_ipow": _ipow, "_sqrt": _sqrt, "_rsqrt": _rsqrt, "_inv": _inv, "_powr": _powr,
}


class ArbKernel:
    """``kern(*values) -> list``: sympy expressions evaluated over arb balls or arb_series.

    Every output contains the exact value of its expression at every point of the input balls (and,
    on power series, every coefficient is enclosed). The arguments are the parameters in order.
    """

    def __init__(self, exprs: Sequence[sp.Expr], params: Sequence[sp.Symbol]):
        exprs = [sp.sympify(e) for e in exprs]
        self.params = tuple(params)
        self.size = len(exprs)
        self.source, self._constants = KernelPrinter.source(exprs, self.params)
        namespace = dict(_NAMESPACE)
        exec(compile(self.source, "<bea.certificates.rigorous kernel>", "exec"), namespace)
        self._fn = namespace["_kern"]
        self._consts: dict = {}

    def __call__(self, *values) -> list:
        prec = ctx.prec
        C = self._consts.get(prec)
        if C is None:
            C = self._consts[prec] = [constant_ball(c) for c in self._constants]
        return [_lift(v) for v in self._fn(*values, C)]


_KERNELS: dict = {}


def arb_kernel(exprs: Sequence[sp.Expr], params: Sequence[sp.Symbol]) -> ArbKernel:
    """The (cached) :class:`ArbKernel` of ``exprs`` over ``params``."""
    key = (tuple(sp.sympify(e) for e in exprs), tuple(params))
    kern = _KERNELS.get(key)
    if kern is None:
        kern = _KERNELS[key] = ArbKernel(*key)
    return kern


# --------------------------------------------------------------------------------------------------
# interval extensions of the derivatives of a loss
# --------------------------------------------------------------------------------------------------


class IntervalLoss:
    """Ball-arithmetic g, H, Hg, ∇³E of a :class:`bea.compile.loss.CompiledLoss` (kernels built lazily)."""

    def __init__(self, loss):
        self.loss = loss
        self.params = loss.params
        self.n = loss.n
        self._kernels: dict = {}

    # ---- kernels
    def _kernel(self, name):
        k = self._kernels.get(name)
        if k is None:
            k = self._kernels[name] = arb_kernel(derivative_exprs(self.loss, name), self.params)
        return k

    @property
    def _t3_mult(self):
        m = self._kernels.get("t3_mult")
        if m is None:
            m = self._kernels["t3_mult"] = t3_multiplicities(self.n)
        return m

    # ---- evaluations over a box (list of arb)
    def grad(self, box) -> list:
        return self._kernel("grad")(*box)

    def hess(self, box) -> list:
        n = self.n
        flat = self._kernel("hess")(*box)
        H = [[None] * n for _ in range(n)]
        it = iter(flat)
        for i in range(n):
            for j in range(i, n):
                H[i][j] = H[j][i] = next(it)
        return H

    def hg(self, box) -> list:
        """Enclosure of the vector H g over the box."""
        return self._kernel("hg")(*box)

    def hg_norm(self, box) -> float:
        """Upper bound of ``‖H g‖₂`` over the box (the gradient-flow local-error density)."""
        return norm_upper(self._kernel("hg")(*box))

    def dhg_norm(self, box) -> float:
        """Upper bound of the Frobenius norm of the Jacobian of Hg over the box (a Lipschitz
        constant of Hg there)."""
        return norm_upper(self._kernel("dhg")(*box))

    def t3_norm(self, box) -> float:
        """Upper bound of the Frobenius norm of ∇³E over the box; it bounds the Hessian-Lipschitz
        constant there: ‖H(u) − H(v)‖₂ ≤ sup‖∇³E‖_F·‖u − v‖ on a convex box."""
        vals = self._kernel("t3")(*box)
        s = arb(0)
        for m, v in zip(self._t3_mult, vals):
            a = v.abs_upper()
            s += m * a * a
        return upper(s.sqrt())

    def eig_bounds(self, box) -> tuple[float, float]:
        """Floats (lo, hi) with lo ≤ λ_min(H(θ)) and λ_max(H(θ)) ≤ hi for every θ in the box."""
        return eig_bounds(self.hess(box))

    # ---- gradient flow
    def picard(self, Y, tau: float, *, iterations: int = 12):
        """(B, −g(B)) with B ⊇ the gradient flow from the box Y over [0, tau], or (None, None)."""
        T = arb(tau / 2, tau / 2)  # contains [0, tau]
        f = [-v for v in self.grad(Y)]
        if not _all_finite(f):
            return None, None
        B = [y + T * fi for y, fi in zip(Y, f)]
        for it in range(iterations):
            # inflate (the test needs room) then check Y + [0, tau]·f(B) ⊆ B
            grow = 0.25 if it < 4 else 1.0
            Bi = [b + arb(0, float(b.rad()) * grow + 2.0**-60 * (abs(float(b.mid())) + 1e-300) + 1e-300) for b in B]
            f = [-v for v in self.grad(Bi)]
            if not _all_finite(f):
                return None, None
            cand = [y + T * fi for y, fi in zip(Y, f)]
            if all(b.contains(c) for b, c in zip(Bi, cand)):
                return cand, f
            B = [c.union(b) for c, b in zip(cand, B)]
        return None, None

    def taylor(self, Y, order: int) -> list:
        """Taylor coefficients F_0..F_order (each a list of n balls) of the gradient flow from the box
        Y: y(t) = Σ_j F_j t^j with F_j enclosing the coefficient for every initial point in Y."""
        n = self.n
        coeffs = [[y] for y in Y]
        kern = self._kernel("grad")
        cap = ctx.cap
        ctx.cap = max(cap, order + 2)  # arb_series silently truncates at ctx.cap terms
        try:
            for j in range(order):
                ys = [arb_series(coeffs[i], prec=j + 1) for i in range(n)]
                fs = kern(*ys)
                for i in range(n):
                    fi = fs[i]
                    if isinstance(fi, arb_series):
                        if fi.prec < j + 1:  # pragma: no cover - a truncated series would be unsound
                            raise RuntimeError("arb_series truncated below the requested order")
                        cs = fi.coeffs()
                        cj = cs[j] if j < len(cs) else arb(0)
                    else:
                        cj = fi if j == 0 else arb(0)
                    coeffs[i].append(-cj / (j + 1))
        finally:
            ctx.cap = cap
        return [[coeffs[i][j] for i in range(n)] for j in range(order + 1)]


_ILOSS: dict = {}


def interval_loss(loss) -> IntervalLoss:
    """The cached :class:`IntervalLoss` of a :class:`bea.compile.loss.CompiledLoss`."""
    key = (loss.expr, loss.params)
    il = _ILOSS.get(key)
    if il is None:
        il = _ILOSS[key] = IntervalLoss(loss)
    return il


@dataclass
class Basis:
    """A float basis Q (columns: approximate eigenvectors of a symmetric matrix) with a rigorous
    enclosure of Q⁻¹ and upper bounds of ‖Q‖₂, ‖Q⁻¹‖₂ and of the 2-norms of the rows of Q⁻¹."""

    Q: np.ndarray
    Qa: object  # arb_mat(Q), exact
    Qinv: object  # arb_mat enclosing Q⁻¹
    norm: float
    inv_norm: float
    inv_rows: np.ndarray


def eig_basis(H) -> Basis:
    """The :class:`Basis` of float eigenvectors of mid(H) (H a list of lists of arb)."""
    n = len(H)
    mid = np.array([[float(v.mid()) for v in row] for row in H])
    mid = (mid + mid.T) / 2
    Q = np.eye(n)
    if np.all(np.isfinite(mid)):
        try:
            Q = np.linalg.eigh(mid)[1]
        except np.linalg.LinAlgError:  # pragma: no cover
            pass
    Qa = arb_mat(Q.tolist())
    G = Qa.transpose() * Qa
    dev = arb(0)
    for i in range(n):
        for j in range(n):
            v = G[i, j] - (1 if i == j else 0)
            a = v.abs_upper()
            dev += a * a
    d = upper(dev.sqrt())  # ‖QᵀQ − I‖_F ≥ |σ² − 1| for every singular value σ of Q
    if not d < 0.5:
        Q = np.eye(n)
        Qa = arb_mat(Q.tolist())
        d = 0.0
    Qinv = Qa.inv()
    norm = upper(arb(1 + d).sqrt())
    inv_norm = upper(1 / arb(1 - d).sqrt())
    rows = np.array([norm_upper([Qinv[i, j] for j in range(n)]) for i in range(n)])
    return Basis(Q, Qa, Qinv, norm, inv_norm, rows)


def abs_upper_matrix(A) -> np.ndarray:
    """Entrywise upper bounds of |A| for an arb_mat A (floats)."""
    return np.array([[upper(A[i, j].abs_upper()) for j in range(A.ncols())] for i in range(A.nrows())])


def eig_bounds(H) -> tuple[float, float]:
    """Rigorous (lo, hi) for the spectrum of every symmetric matrix in the interval matrix H
    (a list of lists of arb): Gershgorin on ``Q⁻¹HQ`` with Q the float eigenvectors of mid(H)."""
    n = len(H)
    if not all(v.is_finite() for row in H for v in row):
        return -_INF, _INF
    if n == 1:
        return lower(H[0][0]), upper(H[0][0])
    mid = np.array([[float(v.mid()) for v in row] for row in H])
    mid = (mid + mid.T) / 2
    try:
        _, Q = np.linalg.eigh(mid)
        Qa = arb_mat(Q.tolist())
        B = Qa.inv() * arb_mat(H) * Qa
    except (np.linalg.LinAlgError, ZeroDivisionError, ValueError):
        B = arb_mat(H)
    lo, hi = _INF, -_INF
    for i in range(n):
        R = arb(0)
        for j in range(n):
            if j != i:
                R += B[i, j].abs_upper()
        d = B[i, i]
        lo = min(lo, lower(d - R))
        hi = max(hi, upper(d + R))
    return lo, hi


# --------------------------------------------------------------------------------------------------
# validated trajectories
# --------------------------------------------------------------------------------------------------


@dataclass
class FlowEnclosure:
    """A validated gradient-flow trajectory at t_k = k·h.

    ``centers[k]`` (float) and ``radii[k]``: the exact θ(kh) lies within Euclidean distance
    ``radii[k]`` of ``centers[k]``; ``step_boxes[k]`` is a list of boxes whose union contains the flow
    over [kh, (k+1)h]. ``n_ok`` nodes are valid (``n_ok = steps + 1`` on success); on failure
    ``reason`` says why and ``t_fail`` when.
    """

    centers: np.ndarray
    radii: np.ndarray
    step_boxes: list
    n_ok: int
    reason: str = ""
    t_fail: float = math.nan
    substeps: list = field(default_factory=list)

    def box(self, k: int) -> list:
        return make_box(self.centers[k], self.radii[k])


def enclose_gf(iloss: IntervalLoss, theta0, h: float, steps: int, *, order: int = 8, prec: int = 64,
               max_substeps: int = 4096) -> FlowEnclosure:
    """Validated enclosure of the gradient flow θ̇ = −∇E(θ), θ(0) = theta0, at t = kh, k ≤ steps.

    The Lohner-type centre/radius method of the module docstring, with Taylor order ``order`` and
    an adaptive number of substeps per GD step (doubled while the Picard test fails or the Taylor
    remainder of a GD step exceeds ~2⁻⁴⁶·(1 + |θ|); halved again when it is far below).
    """
    n = iloss.n
    centers = np.full((steps + 1, n), np.nan)
    radii = np.full(steps + 1, np.nan)
    c = np.array(theta0, dtype=float)
    r = 0.0
    centers[0], radii[0] = c, r
    step_boxes, subs = [], []
    m = 1
    with ctx.workprec(prec):
        ha = arb(h)
        for k in range(steps):
            tol = 2.0**-46 * (1.0 + float(np.max(np.abs(c))))
            while True:
                res = _gf_step(iloss, c, r, ha, h, m, order, tol)
                if res[0] == "ok":
                    break
                if m >= max_substeps:
                    return FlowEnclosure(centers, radii, step_boxes, k + 1, res[1], k * h, subs)
                m *= 2
            _, c, r, boxes, rem = res
            if not (np.all(np.isfinite(c)) and math.isfinite(r)):
                return FlowEnclosure(centers, radii, step_boxes, k + 1, "the enclosure of the gradient flow is no longer finite", k * h, subs)
            centers[k + 1], radii[k + 1] = c, r
            step_boxes.append(boxes)
            subs.append(m)
            if m > 1 and rem * 2.0 ** (order + 3) < tol / m:
                m //= 2
    return FlowEnclosure(centers, radii, step_boxes, steps + 1, "", math.nan, subs)


def _gf_step(iloss, c, r, ha, h, m, order, tol):
    boxes = []
    tau = ha / m  # a ball containing h/m
    tau_up = upper(tau)
    rem_total = 0.0
    for _s in range(m):
        Y = make_box(c, r)
        B, _ = iloss.picard(Y, tau_up)
        if B is None:
            return ("fail", f"no a-priori enclosure of the gradient flow with {m} substeps per GD step")
        F_pt = iloss.taylor(make_box(c), order - 1)
        F_B = iloss.taylor(B, order)[order]
        tp = tau**order
        y = []
        for i in range(iloss.n):
            # Horner on the Taylor polynomial of the point, then the Lagrange remainder ball
            poly = F_pt[order - 1][i]
            for j in range(order - 2, -1, -1):
                poly = poly * tau + F_pt[j][i]
            y.append(poly + F_B[i] * tp)
        rem = upper(arb(norm_upper(F_B)) * tp)
        rem_total += rem
        if rem_total > tol:
            return ("fail", f"Taylor remainder {rem_total:.3g} above the tolerance {tol:.3g} with {m} substeps")
        if not _all_finite(y):
            return ("fail", "non-finite Taylor enclosure")
        if r > 0:
            lo, _ = iloss.eig_bounds(B)
            if not math.isfinite(lo):
                return ("fail", "no finite bound of λ_min over the a-priori enclosure")
            growth = upper((-(tau * arb(lo))).exp())
        else:
            growth = 0.0
        c_new = _mids(y)
        spread = norm_upper([yi - ci for yi, ci in zip(y, c_new)])
        r = upper(arb(growth) * arb(r) + arb(spread))
        c = c_new
        boxes.append(B)
    return ("ok", c, r, boxes, rem_total)


def enclose_gd(iloss: IntervalLoss, theta0, h: float, steps: int, *, prec: int = 64):
    """Exact-arithmetic gradient descent θ_{k+1} = θ_k − h∇E(θ_k) in centre/radius form.

    Returns ``(centers, radii, n_ok)``: the exact iterate θ_k is within ``radii[k]`` of
    ``centers[k]`` for k < n_ok.
    """
    n = iloss.n
    centers = np.full((steps + 1, n), np.nan)
    radii = np.full(steps + 1, np.nan)
    c = np.array(theta0, dtype=float)
    r = 0.0
    centers[0], radii[0] = c, r
    with ctx.workprec(prec):
        ha = arb(h)
        for k in range(steps):
            G = iloss.grad(make_box(c))
            phi = [arb(ci) - ha * gi for ci, gi in zip(c, G)]
            if not _all_finite(phi):
                return centers, radii, k + 1
            if r > 0:
                lo, hi = iloss.eig_bounds(make_box(c, r))
                rho = max(upper(abs(1 - ha * arb(lo))), upper(abs(1 - ha * arb(hi))))
            else:
                rho = 0.0
            c_new = _mids(phi)
            spread = norm_upper([p - ci for p, ci in zip(phi, c_new)])
            r = upper(arb(rho) * arb(r) + arb(spread))
            if not (np.all(np.isfinite(c_new)) and math.isfinite(r)):
                return centers, radii, k + 1
            c = c_new
            centers[k + 1], radii[k + 1] = c, r
    return centers, radii, steps + 1


# --------------------------------------------------------------------------------------------------
# modified flows θ̇ = f̃(θ) (bea.certify(flow=...))
# --------------------------------------------------------------------------------------------------


class FieldIntervalLoss(IntervalLoss):
    r"""The ball-arithmetic view of an autonomous field θ̇ = f̃(θ) that :func:`enclose_gf` needs.

    :func:`enclose_gf` uses a loss only through ``grad`` (the field is −grad: Picard test and
    Taylor-mode coefficients) and ``eig_bounds`` (its growth factor exp(−τ·λ_lo), λ_lo ≤ λ_min(H)
    over the a-priori box, is the logarithmic norm of the field's Jacobian −H). For a general field
    with Jacobian J, two flow lines in a convex box B separate at most like exp(τ·μ₂(J)),
    μ₂(J) = λ_max((J + Jᵀ)/2); so here ``grad`` is −f̃ and ``hess`` is S = −(J + Jᵀ)/2 (λ_min(S) =
    −μ₂(J)), and :func:`enclose_gf` run on this object encloses the flow of f̃. Nothing else of the
    loss interface is defined (a KeyError names it)."""

    def __init__(self, loss, field_exprs: Sequence[sp.Expr]):
        super().__init__(loss)
        self.field_exprs = [sp.sympify(e) for e in field_exprs]
        if len(self.field_exprs) != self.n:
            raise ValueError("the field needs one component per parameter")

    def _kernel(self, name):
        k = self._kernels.get(name)
        if k is None:
            n, P, f = self.n, self.params, self.field_exprs
            if name == "grad":
                exprs = [-e for e in f]
            elif name == "hess":
                J = [[sp.diff(f[i], P[j]) for j in range(n)] for i in range(n)]
                exprs = [-(J[i][j] + J[j][i]) / 2 for i in range(n) for j in range(i, n)]
            else:
                raise KeyError(f"{name!r} is not defined for a modified field (only grad = −f̃ and hess = −sym Df̃)")
            k = self._kernels[name] = arb_kernel(exprs, P)
        return k


_FIELDS: dict = {}


def field_interval_loss(loss, flow: str, order: int, h: float) -> FieldIntervalLoss:
    """The (cached) :class:`FieldIntervalLoss` of the BEA field of GD of order ``order`` (``flow``:
    "igr", "third" or "bea") at the step h, with h entered as the exact rational value of the float."""
    key = (loss.expr, loss.params, int(order), float(h))
    fl = _FIELDS.get(key)
    if fl is None:
        mf = modified_field(loss.expr, list(loss.params), order=int(order))
        hq = sp.Rational(float(h))  # exact: the same h as the float GD and the float field
        exprs = [e.subs(mf.h, hq) for e in mf.field]
        fl = _FIELDS[key] = FieldIntervalLoss(loss, exprs)
    return fl


def enclose_field(fl: FieldIntervalLoss, theta0, h: float, steps: int, *, order: int = 8, prec: int = 64,
                  max_substeps: int = 4096) -> FlowEnclosure:
    """Validated enclosure of the flow θ̇ = f̃(θ) of a :class:`FieldIntervalLoss` at t = kh: the
    Lohner-type method of :func:`enclose_gf` (Picard box, Taylor step with Lagrange remainder,
    spread by the logarithmic norm of Df̃), see :class:`FieldIntervalLoss`."""
    return enclose_gf(fl, theta0, h, steps, order=order, prec=prec, max_substeps=max_substeps)
