r"""Certified distance between gradient descent and gradient flow (Elkabetz & Cohen, seed 000).

Gradient descent θ_{k+1} = Φ(θ_k) = θ_k − h g(θ_k) (g = ∇E, H = ∇²E, T = ∇³E) against gradient flow
θ̇ = −g(θ) sampled at t_k = kh, y_k = θ(kh) = φ_h(y_{k−1}). :func:`certify` returns a
:class:`Certificate` with a bound e_k ≥ ‖θ_k − y_k‖ at every step, the actual distance, and the
quantities the bound is made of.

Derivation of ``mode="discrete"`` (default)
-------------------------------------------
Split one step of the error into the GD map's propagation and the local error of GD against GF::

    θ_{k+1} − y_{k+1} = [Φ(θ_k) − Φ(y_k)] + [Φ(y_k) − φ_h(y_k)].

*Local error.* Along the flow from y = y_k, d/ds g(θ(s)) = H·θ̇ = −(Hg)(θ(s)), so
Φ(y) − φ_h(y) = ∫₀ʰ [g(θ(s)) − g(y)] ds = −∫₀ʰ∫₀ˢ (Hg)(θ(u)) du ds and

    ‖Φ(y_k) − φ_h(y_k)‖ ≤ (h²/2)·a_k,   a_k ≥ sup_{s∈[0,h]} ‖(Hg)(θ(kh + s))‖.

a_k (``Certificate.local_error``) is bounded over boxes that provably contain the flow during the
step (a-priori Picard enclosures, :meth:`bea.rigorous.IntervalLoss.picard`) by interval evaluation of
the sympy Hg. The recursion uses ℓ_k = min((h²/2)a_k, ‖Φ(Y_k) − Y_{k+1}‖) where Y_k ∋ y_k are the
(tiny) boxes of the flow at the grid points: the local error itself, enclosed — both are bounds of
‖Φ(y_k) − φ_h(y_k)‖, the second does not suffer from the overestimation of ‖Hg‖ over a box when the
flow is stiff (``info["local_term"]`` holds ℓ_k).

*Propagation.* Mean-value form of the GD map: Φ(θ_k) − Φ(y_k) = (I − hA_k)(θ_k − y_k) with
A_k = ∫₀¹ H(y_k + τ(θ_k − y_k)) dτ, symmetric. Its eigenvalues lie in [min λ_min, max λ_max] of H
over the segment, and |1 − hμ| is convex in μ, so ‖I − hA_k‖ ≤ max(|1 − hλ_lo|, |1 − hλ_hi|). If H is
M-Lipschitz (‖H(u) − H(v)‖₂ ≤ M‖u − v‖) on the segment, ‖A_k − H(y_k)‖ ≤ ∫₀¹ Mτ e dτ = Me/2 with
e = ‖θ_k − y_k‖, which gives the recursion of the design notes::

    e_0 = 0,   e_{k+1} = ρ_k(e_k)·e_k + ℓ_k + ε_k,      ℓ_k ≤ (h²/2)·a_k,
    ρ_k(e) = max(|1 − h(λ_min,k − M_k e/2)|, |1 − h(λ_max,k + M_k e/2)|),

with λ_min,k ≤ λ_min(H(y_k)) and λ_max,k ≥ λ_max(H(y_k)) (rigorous eigenvalue bounds of the interval
Hessian over Y_k: Gershgorin after a similarity to the float eigenbasis) and M_k ≥ sup‖T‖_F over Y_k
grown by the tube radius r (‖T‖_F bounds the Lipschitz constant of H). ρ is increasing in e, so an
upper bound e_k of the distance may be used in it. The segment [y_k, θ_k] lies in the tube as long as
e_k ≤ r: the bound is valid while max_k e_k ≤ r, and otherwise the certificate says so
(``certified=False``, the unproven entries are ``inf``). With ``tube_radius=None`` the radius is
chosen automatically: a pass with r = 0 sizes the tube, then r = f·max e for a few factors f until
max e ≤ r holds, and one shrinking pass (smaller M, tighter bound).

*Componentwise refinement* (``componentwise=True``, the default). A single norm loses when H is
anisotropic: the error along a stiff direction contracts like |1 − hλ_max|ᵏ, but ρ_k only knows the
slowest rate, so on θ1² + 0.01θ2² the scalar bound can be 1000× the distance. The same one-step
identity is therefore also run in the float eigenbasis Q_k of H(Y_k), z_k = Q_k⁻¹(θ_k − y_k)::

    |z_{k+1}| ≤ |Q_{k+1}⁻¹(I − hH(Y_k))Q_k|·|z_k| + h‖Q_{k+1}⁻¹‖‖Q_k‖(M_k e_k/2)‖z_k‖·1
                + |Q_{k+1}⁻¹·ℓ_k| + ε_k·(row norms of Q_{k+1}⁻¹)

(entrywise; Q⁻¹ enclosed in ball arithmetic, the matrix of A_k − H(y_k) bounded entrywise by its
2-norm), and e_{k+1} = min(scalar recursion, ‖Q_{k+1}‖·‖z_{k+1}‖). Both are bounds of the same
distance, so their minimum is one; on a quadratic the eigenbasis is constant and the componentwise
bound is exact up to the enclosure widths.

ε_k ≥ ‖θ̂_{k+1} − Φ(θ̂_k)‖ is the rounding of the floating-point GD step that produced the reported
iterates θ̂ (computed in ball arithmetic: the exact g(θ̂_k) is enclosed); the recursion then bounds the
distance of both the float iterates and exact-arithmetic GD (ε = 0 for the latter).

The reported ``bound`` is e_k + ``distance_error[k]`` (the uncertainty of the reference flow), so that
it bounds the reported ``distance`` as well as the exact one.

Derivation of ``mode="theorem1"``
---------------------------------
Theorem 1 of seed 000 through Lady Windermere's fan (Hairer–Nørsett–Wanner I, Thm II.3.4): let u_j be
the flow started at the GD iterate θ_j at time jh. Then θ_k − y_k = Σ_{j<k} [u_{j+1}(kh) − u_j(kh)];
two flow lines separate at most like exp(−∫λ_min) ≤ exp(−∫λ₋) (λ₋ = min(λ_min, 0); −λ_min is the
logarithmic norm of −H), and u_{j+1}, u_j differ at (j+1)h by the local error at θ_j,
‖Φ(θ_j) − φ_h(θ_j)‖ ≤ ℓ_j + (h²/2)·L_j·exp(−hλ₋,j)·E_j (L_j a Lipschitz constant of Hg, the flow from
θ_j staying within exp(−hλ₋,j)E_j of the one from y_j). Hence::

    E_{k+1} = exp(−h·λ₋,k)·E_k + ℓ_k + (h²/2)·L_k·exp(−h·λ₋,k)·E_k + ε_k,    E_k ≥ ‖θ_k − y_k‖,

with λ₋,k ≤ min(0, λ_min(H)) and L_k ≥ ‖D(Hg)‖_F over the flow boxes of step k grown by r (the fan
lines stay within E_{k+1} of the flow, checked as E ≤ r). As h, r → 0 this is the continuous Grönwall
form (h/2)·∫₀ᵗ exp(−∫ₛᵗ λ₋)·‖∇²E∇E‖(θ(s)) ds — the O(e^{−∫λ₋} t η) of Theorem 1 with its constant
explicit. It ignores contraction (λ₋ ≤ 0), so on convex losses it grows like t·h while ``"discrete"``
decays; on stiff losses (Rosenbrock) it is rarely certifiable.

Floating-point vs ``rigorous=True``
-----------------------------------
Both modes bound every supremum over boxes with python-flint ball arithmetic, and run the recursion
with upward rounding. By default the flow itself comes from the adaptive dop853 integrator
(:func:`bea.integrate.solve`, rtol 1e-12) and the boxes Y_k around it are padded by an estimate of its
error (the difference to a 100× looser run), so the certificate is exact up to that estimate.
With ``rigorous=True`` the flow is *enclosed* (:func:`bea.rigorous.enclose_gf`: Picard a-priori
enclosure + Taylor step with Lagrange remainder + logarithmic-norm propagation) and GD is run in ball
arithmetic (:func:`bea.rigorous.enclose_gd`): the printed bound is then a proof for that loss, and
``distance_error`` bounds the error of the reported distance (of exact-arithmetic GD from the flow).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from flint import arb, arb_mat, ctx

from bea._checks import check_step, check_steps, check_theta0
from bea.codegen import compile_exprs
from bea.errors import InvalidInputError
from bea.integrate import solve
from bea.loss import compile_loss
from bea.rigorous import (
    abs_upper_matrix,
    eig_basis,
    eig_bounds,
    enclose_gd,
    enclose_gf,
    inflate,
    interval_loss,
    make_box,
    norm_upper,
    upper,
)

__all__ = ["Certificate", "certify", "StepSizeAnswer", "max_step", "MODES"]

MODES = ("discrete", "theorem1")
_U = np.finfo(float).eps / 2  # unit roundoff
_TUBE_FACTORS = (2.0, 1.2, 5.0, 1.05, 20.0, 100.0)


# --------------------------------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Certificate:
    """A certified bound on ‖θ_k − θ(kh)‖ along gradient descent (see :func:`certify`).

    All arrays have length ``steps + 1`` and are indexed by k (time ``t[k] = k·h``).

    Attributes
    ----------
    t : times k·h
    bound : e_k ≥ ‖θ_k − θ(kh)‖; ``inf`` after the bound stopped being proven (see ``valid_steps``)
    distance : the actual ‖θ_k − θ(kh)‖ (GD against the tightly integrated / enclosed flow)
    distance_error : an estimate (float mode) or a proven bound (rigorous mode) of the error of
        ``distance``
    lambda_min, lambda_max : rigorous lower / upper bounds of the Hessian spectrum at θ(kh)
    local_error : a_k ≥ sup ‖∇²E∇E‖ over the flow during step k (``theorem1``: over the tube around
        it); the last entry is NaN (no step follows)
    hessian_lipschitz : M_k ≥ the Lipschitz constant of the Hessian in the tube at step k
        (``discrete``; NaN in ``theorem1`` mode, which uses λ₋ over the tube instead)
    certified : True when the bound is proven at every step and the step is within GD's stability
        limit (h·λ_max < 2) along the flow
    reason : why ``certified`` is False ("" otherwise)
    mode, h, rigorous : how it was computed
    tube_radius : r, the radius of the tube around the flow in which M (or λ₋) was bounded
    valid_steps : ``bound[:valid_steps]`` is proven (``steps + 1`` when the tube was never left)
    info : timings, passes, substeps and other diagnostics
    """

    t: np.ndarray
    bound: np.ndarray
    distance: np.ndarray
    distance_error: np.ndarray
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    local_error: np.ndarray
    hessian_lipschitz: np.ndarray
    certified: bool
    reason: str
    mode: str
    h: float
    rigorous: bool
    tube_radius: float
    valid_steps: int
    info: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.t) - 1

    @property
    def ratio(self) -> float:
        """bound / distance at the final step (the tightness of the certificate)."""
        d = self.distance[-1]
        return float(self.bound[-1] / d) if d > 0 else math.inf

    def summary(self) -> str:
        kind = "rigorous (ball arithmetic, enclosed flow)" if self.rigorous else "floating point (integrated flow)"
        status = "CERTIFIED" if self.certified else f"NOT certified: {self.reason}"
        lines = [
            f"bea.certify: {self.mode} bound, {kind}",
            f"  h = {self.h:g}, {self.steps} steps, t = {self.t[-1]:g}",
            f"  {status}",
            f"  final bound     {self.bound[-1]:.6g}",
            f"  final distance  {self.distance[-1]:.6g}   (bound / distance = {self.ratio:.4g})",
            f"  λ_min along the flow ≥ {np.nanmin(self.lambda_min):.6g}, λ_max ≤ {np.nanmax(self.lambda_max):.6g}",
            f"  tube radius r = {self.tube_radius:.3g}",
        ]
        if self.mode == "discrete" and np.any(np.isfinite(self.hessian_lipschitz)):
            lines.append(f"  Hessian-Lipschitz M ≤ {np.nanmax(self.hessian_lipschitz):.4g} in the tube")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Certificate(mode={self.mode!r}, rigorous={self.rigorous}, h={self.h:g}, steps={self.steps}, "
            f"certified={self.certified}, bound={self.bound[-1]:.3g}, distance={self.distance[-1]:.3g})"
        )

    def plot(self, ax=None):
        """Bound vs actual distance (log scale) and λ_min, λ_max along the flow; returns the Figure."""
        import matplotlib.pyplot as plt  # lazily: matplotlib is optional

        if ax is None:
            fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(6.4, 6.0))
        else:
            ax1 = ax
            fig = ax.figure
            ax2 = None
        t = self.t
        ok = np.isfinite(self.bound) & (self.bound > 0)
        ax1.semilogy(t[ok], self.bound[ok], label=f"certified bound ({self.mode})")
        pos = self.distance > 0
        ax1.semilogy(t[pos], self.distance[pos], "--", label="actual ‖θ_k − θ(kh)‖")
        ax1.set_ylabel("distance")
        title = "certified" if self.certified else f"not certified: {self.reason[:60]}"
        ax1.set_title(f"GD vs GF, h = {self.h:g} ({title})", fontsize=9)
        ax1.legend(fontsize=8)
        if ax2 is not None:
            ax2.plot(t, self.lambda_min, label="λ_min (lower bound)")
            ax2.axhline(0.0, color="k", lw=0.5)
            ax2.set_xlabel("t")
            ax2.set_ylabel("Hessian eigenvalue")
            ax2.legend(fontsize=8)
        fig.tight_layout()
        return fig


@dataclass(frozen=True)
class StepSizeAnswer:
    """Result of :func:`max_step`.

    ``certified_step``: the largest η = t/k (k integer) whose certified bound at time t is ≤ tol
    (NaN if none with k ≤ max_steps); ``empirical_step``: the largest η = t/k at which the actual
    distance at time t is ≤ tol. ``*_steps`` are the matching k.
    """

    t: float
    tol: float
    certified_step: float
    empirical_step: float
    certified_steps: int
    empirical_steps: int
    mode: str
    rigorous: bool

    @property
    def ratio(self) -> float:
        """empirical_step / certified_step: how conservative the certified step size is."""
        return self.empirical_step / self.certified_step


# --------------------------------------------------------------------------------------------------
# numerics
# --------------------------------------------------------------------------------------------------

_P = sp.Symbol("_bea_certify_p")
_RHS: dict = {}


def _neg_grad_kernel(loss):
    """numba kernel rhs(θ, p) = −∇E(θ) (p unused), for the integrator and for GD."""
    key = (loss.expr, loss.params)
    k = _RHS.get(key)
    if k is None:
        k = _RHS[key] = compile_exprs([-e for e in loss.grad_exprs], loss.params, scalars=(_P,), name="neg_grad")
    return k


def _gd_float(rhs, theta0, h, steps):
    """Float GD iterates (rows), and the number of finite rows."""
    out = np.full((steps + 1, theta0.size), np.nan)
    th = theta0.copy()
    out[0] = th
    with np.errstate(all="ignore"):
        for k in range(steps):
            th = th + h * rhs(th, 0.0)
            if not np.all(np.isfinite(th)):
                return out, k + 1
            out[k + 1] = th
    return out, steps + 1


def _gd_rounding(iloss, thetas, h, n_gd, prec=64):
    """ε_k ≥ ‖θ̂_{k+1} − (θ̂_k − h∇E(θ̂_k))‖ (exact gradient enclosed in ball arithmetic)."""
    eps = np.full(max(n_gd - 1, 0), np.inf)
    with ctx.workprec(prec):
        ha = arb(h)
        for k in range(n_gd - 1):
            G = iloss.grad(make_box(thetas[k]))
            eps[k] = norm_upper([arb(float(b)) - (arb(float(a)) - ha * g) for a, b, g in zip(thetas[k], thetas[k + 1], G)])
    return eps


class _Trajectory:
    """Boxes Y_k ∋ θ(kh) and flow boxes per step, from either the integrator or the enclosure."""

    def __init__(self, centers, radii, step_boxes, n_ok, reason, t_fail, info):
        self.centers = centers
        self.radii = radii
        self.step_boxes = step_boxes
        self.n_ok = n_ok
        self.reason = reason
        self.t_fail = t_fail
        self.info = info

    def box(self, k):
        return make_box(self.centers[k], self.radii[k])


def _float_trajectory(loss, iloss, theta0, h, steps, t, rtol, atol, prec):
    rhs = _neg_grad_kernel(loss)
    sol = solve(rhs, theta0, t, 0.0, method="dop853", rtol=rtol, atol=atol, on_failure="return")
    Y = sol.y
    finite = np.all(np.isfinite(Y), axis=1)
    n_ok = int(np.argmin(finite)) if not finite.all() else steps + 1
    reason, t_fail = "", math.nan
    if sol.status != 0:
        n_ok = min(n_ok, max(1, int(np.searchsorted(t, sol.t_fail, side="right"))))
        reason, t_fail = f"the gradient flow could not be integrated: {sol.message}", float(sol.t_fail)
    # error estimate of the tight run: its distance to a 100x looser run (floored at rounding level)
    loose = solve(rhs, theta0, t, 0.0, method="dop853", rtol=rtol * 100, atol=atol * 100, on_failure="return")
    with np.errstate(all="ignore"):
        diff = np.linalg.norm(Y - loose.y, axis=1)
    floor = 16 * _U * (1 + np.linalg.norm(np.nan_to_num(Y, nan=0.0, posinf=0.0, neginf=0.0), axis=1)) + atol
    delta = np.where(np.isfinite(diff), np.maximum(diff, floor), np.inf)
    step_boxes = []
    with ctx.workprec(prec):
        for k in range(n_ok - 1):
            if not np.isfinite(delta[k]):
                n_ok, reason, t_fail = k + 1, "no error estimate for the integrated flow", float(t[k])
                break
            boxes, _ = iloss.flow_boxes(make_box(Y[k], delta[k]), h)
            if boxes is None:
                n_ok, t_fail = k + 1, float(t[k])
                reason = f"no a-priori enclosure of the gradient flow during the step at t = {t[k]:g}"
                break
            step_boxes.append(boxes)
    return _Trajectory(Y, delta, step_boxes, n_ok, reason, t_fail, {"nfev": sol.nfev})


def _rigorous_trajectory(iloss, theta0, h, steps, order, prec):
    enc = enclose_gf(iloss, theta0, h, steps, order=order, prec=prec)
    reason = f"the gradient-flow enclosure failed at t = {enc.t_fail:g}: {enc.reason}" if enc.reason else ""
    return _Trajectory(enc.centers, enc.radii, enc.step_boxes, enc.n_ok, reason, enc.t_fail,
                       {"substeps": enc.substeps, "taylor_order": order})


def _up(v, n):
    """Round a float result of sums/products of ≤ n+2 non-negative terms upwards (γ-bound)."""
    return np.nextafter(np.asarray(v, dtype=float) * (1.0 + 4.0 * (n + 4) * _U), np.inf)


@dataclass
class _StepData:
    """Everything the recursions need that does not depend on the tube radius."""

    K: int  # number of steps the recursion runs
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    a: np.ndarray  # sup ‖Hg‖ over the flow boxes of each step
    eps: np.ndarray  # rounding of the float GD steps
    ell: np.ndarray  # ≥ ‖Φ(y_k) − φ_h(y_k)‖: min((h²/2)a_k, enclosure of the local error)
    absP: list | None = None  # componentwise: |Q_{k+1}⁻¹ (I − hH(Y_k)) Q_k|
    L: list | None = None  # componentwise: (h²/2)|Q_{k+1}⁻¹ Hg(step boxes)|
    rows: list | None = None  # 2-norms of the rows of Q_k⁻¹
    nQ: np.ndarray | None = None
    nQinv: np.ndarray | None = None


def _recursion(mode, h, data: _StepData, M, lamneg, Lhg, r, componentwise):
    """Run the bound recursion for k < K, rounding upwards.

    discrete:  e_{k+1} = ρ_k(e_k)e_k + (h²/2)a_k + ε_k, and (componentwise) the same step in the
               local eigenbases, Z_{k+1} = |P_k|Z_k + h‖Q_{k+1}⁻¹‖‖Q_k‖(M_k e_k/2)‖Z_k‖·1 + L_k + ε_k·rows,
               e_{k+1} = min(scalar, ‖Q_{k+1}‖·‖Z_{k+1}‖);
    theorem1:  E_{k+1} = exp(−hλ₋,k)E_k + (h²/2)(a_k + Lhg_k·exp(−hλ₋,k)E_k) + ε_k.

    Returns (e, first): the K+1 values and the first index with e > r (K+1 if none); values after
    ``first`` are computed on (to size a larger tube) but are not proven.
    """
    K = data.K
    e = np.zeros(K + 1)
    first = K + 1
    ha = arb(h)
    h2 = ha * ha / 2
    ek = 0.0
    comp = componentwise and mode == "discrete" and data.absP is not None
    if comp:
        n = data.absP[0].shape[0] if K else 1
        Z = np.zeros(n)
    with np.errstate(over="ignore", invalid="ignore"):
        return _recursion_loop(mode, K, ha, h2, data, M, lamneg, Lhg, r, comp, e, first, ek, Z if comp else None)


def _recursion_loop(mode, K, ha, h2, data, M, lamneg, Lhg, r, comp, e, first, ek, Z):
    n = Z.shape[0] if comp else 1
    for k in range(K):
        if mode == "discrete":
            Me2 = arb(M[k]) * arb(ek) / 2
            rho = max(upper(abs(1 - ha * (arb(data.lam_lo[k]) - Me2))), upper(abs(1 - ha * (arb(data.lam_hi[k]) + Me2))))
            enext = upper(arb(rho) * arb(ek) + arb(data.ell[k]) + arb(data.eps[k]))
            if comp:
                zn = float(_up(np.sqrt(float(_up(np.sum(Z * Z), n))), n))
                coupling = upper(ha * arb(data.nQinv[k + 1]) * arb(data.nQ[k]) * arb(M[k]) * arb(ek) / 2 * arb(zn))
                Zn = _up(data.absP[k] @ Z + coupling + data.L[k] + data.rows[k + 1] * data.eps[k], n)
                ec = float(_up(data.nQ[k + 1] * float(_up(np.sqrt(float(_up(np.sum(Zn * Zn), n))), n)), n))
                enext = min(enext, ec)
                Z = np.minimum(Zn, _up(data.rows[k + 1] * enext, n))
        else:
            grow = (-ha * arb(lamneg[k])).exp()
            enext = upper(grow * arb(ek) + arb(data.ell[k]) + h2 * arb(Lhg[k]) * grow * arb(ek) + arb(data.eps[k]))
        ek = enext
        e[k + 1] = ek
        if first > K and not ek <= r:
            first = k + 1
        if not math.isfinite(ek):
            e[k + 1:] = math.inf
            break
    return e, first


def _step_data(iloss, traj, thetas, h, K, n_ok, steps, prec, mode, componentwise) -> _StepData:
    n = iloss.n
    lam_lo = np.full(steps + 1, np.nan)
    lam_hi = np.full(steps + 1, np.nan)
    comp = componentwise and mode == "discrete"
    bases = []
    Hs = []
    for k in range(n_ok):
        H = iloss.hess(traj.box(k))
        lam_lo[k], lam_hi[k] = eig_bounds(H)
        if comp and k <= K:
            Hs.append(H)
            bases.append(eig_basis(H))
    eps = _gd_rounding(iloss, thetas, h, K + 1, prec)
    a = np.full(steps + 1, np.nan)
    ell = np.full(steps + 1, np.nan)
    data = _StepData(K, lam_lo, lam_hi, a, eps, ell)
    ha = arb(h)
    h2 = ha * ha / 2
    hulls, diffs = [], []
    Y = traj.box(0) if K > 0 else None
    for k in range(K):
        vals = [iloss.hg(B) for B in traj.step_boxes[k]]
        a[k] = max(norm_upper(v) for v in vals)
        hull = vals[0]
        for v in vals[1:]:
            hull = [p.union(q) for p, q in zip(hull, v)]
        hulls.append(hull)
        # the local error itself: Φ(y_k) − φ_h(y_k) ∈ Φ(Y_k) − Y_{k+1}
        Ynext = traj.box(k + 1)
        diff = [yk - ha * gk - yn for yk, gk, yn in zip(Y, iloss.grad(Y), Ynext)]
        diffs.append(diff)
        ell[k] = min(upper(h2 * arb(a[k])), norm_upper(diff))
        Y = Ynext
    if comp:
        absP, L = [], []
        for k in range(K):
            IhH = arb_mat([[(1 if i == j else 0) - ha * Hs[k][i][j] for j in range(n)] for i in range(n)])
            P = bases[k + 1].Qinv * IhH * bases[k].Qa
            absP.append(abs_upper_matrix(P))
            lv = bases[k + 1].Qinv * arb_mat([[v] for v in hulls[k]])
            ld = bases[k + 1].Qinv * arb_mat([[v] for v in diffs[k]])
            L.append(np.array([min(upper(h2 * lv[i, 0].abs_upper()), upper(ld[i, 0].abs_upper())) for i in range(n)]))
        data.absP, data.L = absP, L
        data.rows = [b.inv_rows for b in bases]
        data.nQ = np.array([b.norm for b in bases])
        data.nQinv = np.array([b.inv_norm for b in bases])
    return data


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def certify(
    E,
    params,
    theta0,
    h,
    steps,
    *,
    mode: str = "discrete",
    rigorous: bool = False,
    tube_radius: float | None = None,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    componentwise: bool = True,
    taylor_order: int = 10,
    prec: int = 64,
) -> Certificate:
    """Certify ‖θ_k − θ(kh)‖ ≤ bound[k] for gradient descent with step h against gradient flow.

    Parameters
    ----------
    E, params : a smooth sympy loss and its parameter symbols (as for :func:`bea.modified_field`)
    theta0 : the common starting point
    h : GD step size (> 0); ``steps``: number of GD steps (≥ 0)
    mode : ``"discrete"`` (default; the ρ_k recursion) or ``"theorem1"`` (Theorem 1 of seed 000 with
        its constant explicit) — derivations in the module docstring
    rigorous : enclose the gradient flow and GD in ball arithmetic, so that the bound is a proof
    tube_radius : r of the tube around the flow in which the Hessian-Lipschitz constant (or λ₋) is
        bounded; None chooses it automatically
    componentwise : (discrete mode) also run the recursion componentwise in the local Hessian
        eigenbases and report the smaller of the two bounds at every step (see the module docstring);
        False gives the scalar ρ_k recursion alone
    rtol, atol : tolerances of the dop853 integration of the flow (float mode)
    taylor_order, prec : Taylor order and arb working precision (bits) of the enclosures

    Returns
    -------
    Certificate
        ``certified`` is False, with a ``reason``, when the bound left the tube, the flow could not
        be integrated or enclosed, GD overflowed, or h·λ_max ≥ 2 along the flow (beyond the
        stability limit, where GD does not follow GF); bounds that are not proven are ``inf``.
    """
    t_start = time.perf_counter()
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(rigorous, (bool, np.bool_)):
        raise InvalidInputError(f"rigorous must be True or False, got {rigorous!r}")
    loss = compile_loss(E, params)
    n = loss.n
    theta0 = check_theta0(theta0, n)
    h = check_step(h)
    steps = check_steps(steps)
    if tube_radius is not None:
        tube_radius = check_step(tube_radius, "tube_radius")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise InvalidInputError(f"{name} must be a positive number, got {v!r}")
    if isinstance(taylor_order, bool) or not isinstance(taylor_order, int) or taylor_order < 2:
        raise InvalidInputError(f"taylor_order must be an integer >= 2, got {taylor_order!r}")
    if isinstance(prec, bool) or not isinstance(prec, int) or prec < 53:
        raise InvalidInputError(f"prec must be an integer >= 53 (bits), got {prec!r}")

    iloss = interval_loss(loss)
    t = h * np.arange(steps + 1)
    info: dict = {}

    # --- gradient descent (floats) and the flow (integrated or enclosed)
    t0 = time.perf_counter()
    rhs = _neg_grad_kernel(loss)
    thetas, n_gd = _gd_float(rhs, theta0, h, steps)
    info["time_gd"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if rigorous:
        traj = _rigorous_trajectory(iloss, theta0, h, steps, taylor_order, prec)
    else:
        traj = _float_trajectory(loss, iloss, theta0, h, steps, t, rtol, atol, prec)
    info["time_flow"] = time.perf_counter() - t0
    info.update(traj.info)

    with ctx.workprec(prec):
        t0 = time.perf_counter()
        n_ok = traj.n_ok
        K = min(n_ok, n_gd) - 1  # number of steps the recursion can run
        data = _step_data(iloss, traj, thetas, h, K, n_ok, steps, prec, mode, componentwise)
        info["time_boxes"] = time.perf_counter() - t0

        # --- the recursion, with the tube radius chosen in passes
        t0 = time.perf_counter()
        Ybox = [traj.box(k) for k in range(K + 1)]

        def r_dependent(r):
            M = np.full(K + 1, np.nan)
            lamneg = np.full(K + 1, np.nan)
            Lhg = np.full(K + 1, np.nan)
            for k in range(K):
                if mode == "discrete":
                    M[k] = iloss.t3_norm(inflate(Ybox[k], r))
                else:
                    boxes = [inflate(B, r) for B in traj.step_boxes[k]]
                    lamneg[k] = min(0.0, min(iloss.eig_bounds(B)[0] for B in boxes))
                    Lhg[k] = max(iloss.dhg_norm(B) for B in boxes)
            return M, lamneg, Lhg

        def run(r):
            M, lamneg, Lhg = r_dependent(r)
            e, first = _recursion(mode, h, data, M, lamneg, Lhg, r, componentwise)
            return r, e, first, M

        scale = 1.0 + float(np.max(np.abs(theta0)))
        floor = 1e-12 * scale
        passes = []
        if tube_radius is not None:
            result = run(tube_radius)
            passes.append((tube_radius, float(np.max(result[1]))))
        else:
            # pass 0: the bound the tube would have to hold, r = 0 (M ≥ sup‖T‖ on the flow itself)
            _, e0, _, _ = run(0.0)
            e0max = float(np.max(e0))
            passes.append((0.0, e0max))
            # e(r) grows with r: look for r ≥ e(r) among a few multiples of e(0), the likeliest first
            proven, last = None, None
            for f in _TUBE_FACTORS:
                r = max(f * e0max, floor)
                if not (math.isfinite(r) and r <= 1e8 * scale):
                    break
                res = run(r)
                emax = float(np.max(res[1]))
                passes.append((r, emax))
                if res[2] > K:
                    proven = res
                    break
                if last is None or res[2] > last[2]:
                    last = res  # the failed tube that held longest
            if proven is not None and float(np.max(proven[1])) < proven[0] / 4:
                r = max(1.5 * float(np.max(proven[1])), floor)  # shrink once: smaller M, tighter bound
                res = run(r)
                passes.append((r, float(np.max(res[1]))))
                if res[2] > K:
                    proven = res
            result = proven or last or run(floor)
        r, e, first, M = result
        info["passes"] = passes
        info["local_term"] = data.ell.copy()
        info["time_recursion"] = time.perf_counter() - t0

    # --- assemble
    bound = np.full(steps + 1, math.inf)
    valid = min(first, K + 1)
    bound[:valid] = e[:valid]
    local_error = np.full(steps + 1, np.nan)
    local_error[:K] = data.a[:K]
    lam_lo, lam_hi = data.lam_lo, data.lam_hi
    lips = np.full(steps + 1, np.nan)
    if mode == "discrete":
        lips[:K] = M[:K]

    distance = np.full(steps + 1, np.nan)
    derr = np.full(steps + 1, np.nan)
    if rigorous:
        t0 = time.perf_counter()
        gd_c, gd_r, n_gdr = enclose_gd(iloss, theta0, h, steps, prec=prec)
        with ctx.workprec(prec):
            for k in range(min(n_gdr, n_ok)):
                d = norm_upper([arb(float(p)) - arb(float(q)) for p, q in zip(gd_c[k], traj.centers[k])])
                lo_d = math.sqrt(float(np.sum((gd_c[k] - traj.centers[k]) ** 2)))
                distance[k] = lo_d
                derr[k] = float(_up((d - lo_d) + 2 * _U * lo_d + gd_r[k] + traj.radii[k], 3))
        info["time_gd_enclosure"] = time.perf_counter() - t0
    else:
        m = min(n_gd, n_ok)
        distance[:m] = np.linalg.norm(thetas[:m] - traj.centers[:m], axis=1)
        derr[:m] = traj.radii[:m]
    if n_gd < steps + 1:
        distance[n_gd:] = math.inf
    # the bound also covers the reported distance: add the uncertainty of the reference flow
    # (proven radii in rigorous mode, the integrator's error estimate otherwise)
    derr[0] = 0.0  # both start at theta0 exactly
    pad = np.where(np.isfinite(derr[:valid]), derr[:valid], 0.0)
    bound[1:valid] = _up(bound[1:valid] + pad[1:], 1)

    # --- verdict
    reasons = []
    if n_gd < steps + 1:
        reasons.append(f"gradient descent overflowed at step {n_gd} (t = {t[n_gd]:g})")
    if traj.reason:
        reasons.append(traj.reason)
    if valid < K + 1:
        reasons.append(
            f"the bound left the tube of radius r = {r:.3g} around the flow at step {valid} "
            f"(t = {t[valid]:g}, bound {e[valid]:.3g} > r): beyond it the Hessian-Lipschitz constant "
            "is not controlled"
        )
    stab = np.nonzero(h * lam_hi[:valid] >= 2.0)[0]
    if stab.size:
        k = int(stab[0])
        reasons.append(
            f"the step is beyond gradient descent's stability limit: h·λ_max ≤ {h * lam_hi[k]:.4g} ≥ 2 at "
            f"t = {t[k]:g} (h > 2/λ_max), so GD does not follow the flow"
        )
    certified = not reasons
    info["time_total"] = time.perf_counter() - t_start
    return Certificate(
        t=t, bound=bound, distance=distance, distance_error=derr, lambda_min=lam_lo, lambda_max=lam_hi,
        local_error=local_error, hessian_lipschitz=lips, certified=certified, reason="; ".join(reasons),
        mode=mode, h=h, rigorous=bool(rigorous), tube_radius=float(r), valid_steps=int(valid), info=info,
    )


def max_step(
    E,
    params,
    theta0,
    t,
    tol,
    *,
    mode: str = "discrete",
    rigorous: bool = False,
    max_steps: int = 100_000,
    rel_tol: float = 0.0,
    **certify_kwargs,
) -> StepSizeAnswer:
    """The largest step size η = t/k whose certified bound at time t is ≤ tol, and the empirical one.

    Both are found by bisection on the integer number of steps k (η = t/k, so that time t is a GD
    iterate): first k = 1, 2, 4, … until the criterion holds, then bisection between the last
    failing and the first passing k. The certified criterion is ``cert.certified and
    cert.bound[-1] <= tol``; the empirical one ``distance(t) <= tol`` with GD against the tightly
    integrated flow (no certificate needed, so it is cheap). Both criteria are assumed monotone in η.
    The certified search starts from the empirical k (a certified η is never larger than the
    empirical one when the bound holds). ``rel_tol`` > 0 stops the bisection once the bracket of k is
    within that relative width (fewer certificates; the η returned is still one that passed).
    """
    loss = compile_loss(E, params)
    theta0 = check_theta0(theta0, loss.n)
    t = check_step(t, "t")
    tol = check_step(tol, "tol")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InvalidInputError(f"max_steps must be a positive integer, got {max_steps!r}")

    def cert_ok(k):
        c = certify(loss, loss.params, theta0, t / k, k, mode=mode, rigorous=rigorous, **certify_kwargs)
        return bool(c.certified and c.bound[-1] <= tol)

    rhs = _neg_grad_kernel(loss)
    sol = solve(rhs, theta0, [0.0, t], 0.0, method="dop853", rtol=1e-12, atol=1e-14)
    y_t = sol.y[-1]

    def emp_ok(k):
        th, n_ok = _gd_float(rhs, theta0, t / k, k)
        return n_ok == k + 1 and float(np.linalg.norm(th[-1] - y_t)) <= tol

    ke = _smallest_k(emp_ok, max_steps, 1, rel_tol)
    kc = _smallest_k(cert_ok, max_steps, max(ke, 1), rel_tol)
    return StepSizeAnswer(
        t=t, tol=tol,
        certified_step=t / kc if kc else math.nan, empirical_step=t / ke if ke else math.nan,
        certified_steps=kc or 0, empirical_steps=ke or 0, mode=mode, rigorous=bool(rigorous),
    )


def _smallest_k(ok, kmax, k0=1, rel_tol=0.0):
    """The smallest k ≤ kmax with ok(k) (0 if none), assuming ok is monotone: bracket by doubling
    (up from k0, or halving down when ok(k0)), then bisection."""
    k = max(1, min(k0, kmax))
    if ok(k):
        hi = k
        lo = k // 2
        while lo >= 1 and ok(lo):
            hi, lo = lo, lo // 2
    else:
        lo = k
        while True:
            if k >= kmax:
                return 0
            k = min(2 * k, kmax)
            if ok(k):
                break
            lo = k
        hi = k
    # ok(hi), not ok(lo) (or lo == 0)
    while hi - lo > max(1, int(rel_tol * hi)):
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
