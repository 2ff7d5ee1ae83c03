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
step (a-priori Picard enclosures, :meth:`bea.certificates.rigorous.IntervalLoss.picard`) by interval evaluation of
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
Hessian over Y_k: Gershgorin after a congruence with the float eigenbasis, :func:`bea.certificates.intervals.eig_bounds`)
and M_k ≥ sup‖T‖_F over the box Y_k grown by a tube radius r_k ≥ e_k (‖T‖_F bounds the Lipschitz
constant of H). ρ is increasing in e, so an upper bound e_k of the distance may be used in it.

*The tube follows the bound.* The mean-value step at k only involves the segment [y_k, θ_k], and
that segment lies in the ball of radius e_k around y_k ∈ Y_k — e_k is known before step k is taken.
So M_k is bounded over Y_k grown by r_k = the smallest radius of a geometric grid (factor 2) that is
≥ e_k, and every step is valid by construction (:mod:`bea.certificates.tube`): no radius for the whole run has
to be guessed, and a thin tube is used while the bound is small (smaller M early in the run). The
recursion stops only when the bound itself runs off (M(r_k)·e_k feeding back into ρ_k until the
tube's quantities are not finite); the reason then names the step, the bound and the radii tried.
With ``tube_radius=r`` one radius is used at every step and the bound is valid while max_k e_k ≤ r
(otherwise ``certified=False``; unproven entries are ``inf``).

*Componentwise refinement* (``componentwise=True``, the default). A single norm loses when H is
anisotropic: the error along a stiff direction contracts like |1 − hλ_max|ᵏ, but ρ_k only knows the
slowest rate, so on θ1² + 0.01θ2² the scalar bound can be 1000× the distance. The same one-step
identity is therefore also run in the float eigenbasis Q_k of H(Y_k), z_k = Q_k⁻¹(θ_k − y_k). With
d = θ_k − y_k, Taylor's formula with integral remainder for g gives

    Φ(θ_k) − Φ(y_k) = (I − hH(y_k))d − h∫₀¹(1 − s)·T(y_k + sd)[d, d] ds,

and T(y_k + sd) lies in the interval tensor T(Y_k + r_k) for every s (the segment is in the tube),
so the remainder lies in ½·T(Y_k + r_k)[d, d] (∫₀¹(1 − s)ds = ½; an average of members of an
interval tensor is a member). In eigen-coordinates d = Q_k z_k, so entrywise

    |z_{k+1}| ≤ |Q_{k+1}⁻¹(I − hH(Y_k))Q_k|·|z_k| + (h/2)·(Σ_jl C_k,ijl |z_k,j||z_k,l|)_i
                + |Q_{k+1}⁻¹(Φ(y_k) − φ_h(y_k))| + ε_k·(row norms of Q_{k+1}⁻¹),
    C_k,ijl ≥ |Σ_abc (Q_{k+1}⁻¹)_ia T_abc (Q_k)_bj (Q_k)_cl|   over T ∈ T(Y_k + r_k)

(Q⁻¹ and every product enclosed in midpoint–radius interval arithmetic, :mod:`bea.certificates.intervals`), and
e_{k+1} = min(scalar recursion, ‖Q_{k+1}‖·‖z_{k+1}‖). Both are bounds of the same distance, so their
minimum is one. The second-order term is anisotropic: a component only feels the entries of T that
couple it to the error that is actually there (the scalar ρ_k puts M_k = ‖T‖_F, all of the tensor,
on every direction). On a quadratic the eigenbasis is constant, T = 0, and the componentwise bound is
exact up to the enclosure widths.

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

with λ₋,k ≤ min(0, λ_min(H)) and L_k ≥ ‖D(Hg)‖_F over the flow boxes of step k grown by r_k (every
fan line u_j, j ≤ k, is within E_k of y_k at kh and within γ_k E_k, γ_k = exp(−hλ₋,k), during the
step; the tube follows the bound as in discrete mode, r_k the smallest grid radius with
γ_k(r_k)·E_k ≤ r_k, or a given ``tube_radius`` checked as E ≤ r). As h, r → 0 this is the continuous Grönwall
form (h/2)·∫₀ᵗ exp(−∫ₛᵗ λ₋)·‖∇²E∇E‖(θ(s)) ds — the O(e^{−∫λ₋} t η) of Theorem 1 with its constant
explicit. It ignores contraction (λ₋ ≤ 0), so on convex losses it grows like t·h while ``"discrete"``
decays; on stiff losses (Rosenbrock) it is rarely certifiable.

Modified flows (``flow=``, issue #14)
-------------------------------------
The fundamental split holds for any reference curve y_k = θ̃(kh)::

    θ_{k+1} − y_{k+1} = [Φ(θ_k) − Φ(y_k)] + [Φ(y_k) − φ̃_h(y_k)],

and the propagation term is the GD map's alone, so the discrete recursion (scalar, componentwise
and re-centred, the tube following the bound) runs unchanged once boxes Y_k ∋ θ̃(kh) and the local
errors are known. ``flow="igr"`` / ``"third"`` / ``"bea"`` (``order=n``) is the BEA field of GD
truncated at order n (:func:`bea.modified_field`; IGR n = 1, third n = 2), whose local error
against the GD step is O(h^{n+2}) — so the bound at a fixed time is O(h^{n+1})
(``benchmarks/bench_certify_flows.py`` measures slopes 1.01, 1.95, 2.94, 3.95, 4.95 for n = 0..4).
``flow="pf"`` is the principal flow θ̇ = Σ_i α(hλ_i)(gᵀu_i)u_i, α(z) = log(1 − z)/z, defined as a
real flow only while h·λ_max < 1 (otherwise InvalidInputError); its local error is its non-principal
part, O(h³) in general and 0 on a quadratic.

The local error is enclosed *a posteriori*, Φ(y_k) − φ̃_h(y_k) ∈ Φ(Y_k) − Y_{k+1} (interval GD step
of the box Y_k minus the next box): a bound of order h^{n+2} plus the widths of the boxes, valid for
any flow whose points are enclosed — no a-priori sup over the step is needed (the GF's (h²/2)·a_k
has no analogue here; ``local_error`` reports the norm bound of the enclosure itself). The boxes:

* float mode: the flow integrated by dop853 (:func:`bea.trajectory`, the same field) at ``rtol``,
  padded by its distance to a 100× looser run (the imaginary part of the PF state added);
* ``rigorous=True``: :func:`bea.certificates.rigorous.enclose_field` — the Lohner enclosure of
  :func:`bea.certificates.rigorous.enclose_gf` applied to the BEA field (with h entered exactly), the spread of
  the ball grown by the logarithmic norm μ₂(Df̃) instead of −λ_min(H);
* PF on a quadratic: θ̃(kh) *is* exact GD (Remark 3.1), so Y_k are the ball-arithmetic GD iterates
  (:func:`bea.certificates.rigorous.enclose_gd`), in both modes: the bound is a few roundings.
  ``rigorous=True`` with the PF of a non-quadratic loss raises (no validated matrix logarithm).

``mode="theorem1"`` is the GF's fan argument and accepts ``flow="ngf"`` only.

Floating-point vs ``rigorous=True``
-----------------------------------
Both modes bound every supremum over boxes by interval arithmetic on numpy arrays, all steps at
once (:mod:`bea.certificates.intervals`: IEEE operations rounded outwards; elementary functions from libm widened
by 64 ulp in float mode, enclosed by python-flint with ``rigorous=True``), and run the recursion
with upward rounding (:mod:`bea.certificates.tube`). By default the flow itself comes from the adaptive dop853 integrator
(:func:`bea.integrate.solve`, rtol 1e-12) and the boxes Y_k around it are padded by an estimate of its
error (the difference to a 100× looser run), so the certificate is exact up to that estimate.
With ``rigorous=True`` the flow is *enclosed* (:func:`bea.certificates.rigorous.enclose_gf`: Picard a-priori
enclosure + Taylor step with Lagrange remainder + logarithmic-norm propagation) and GD is run in ball
arithmetic (:func:`bea.certificates.rigorous.enclose_gd`): the printed bound is then a proof for that loss, and
``distance_error`` bounds the error of the reported distance (of exact-arithmetic GD from the flow).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numba
import numpy as np
import sympy as sp
from flint import ctx

from bea._checks import check_step, check_steps, check_theta0
from bea.compile.codegen import compile_exprs
from bea.errors import IntegrationError, InvalidInputError, InvalidOrderError, UnknownMethodError
from bea.integrate.solver import solve
from bea.certificates.intervals import (
    Iv,
    box_loss,
    down,
    eig_bounds,
    eigenbases,
    inflate_sum,
    mr_matmul,
    norm_upper,
    similar,
    t3_multiplicities,
    up,
)
from bea.compile.loss import compile_loss
from bea.flows.descent import run_gd
from bea.flows.fields import is_quadratic_loss
from bea.flows.fields import trajectory as _trajectory
from bea.certificates.rigorous import enclose_field, enclose_gd, enclose_gf, field_interval_loss, interval_loss, lower, upper
from bea.certificates.tube import BoundResult, Recentred, StepBounds, Tube, TubeData, discrete_bound, theorem1_bound

__all__ = ["Certificate", "certify", "StepSizeAnswer", "max_step", "MODES", "CERTIFIED_FLOWS", "certificate_from"]

MODES = ("discrete", "theorem1")
CERTIFIED_FLOWS = ("ngf", "igr", "third", "bea", "pf")  # the flows certify(flow=...) compares GD with
_FLOW_ORDER = {"ngf": 0, "igr": 1, "third": 2}
_U = np.finfo(float).eps / 2  # unit roundoff
TUBE_MIN = 2.0**-26  # the thinnest tube, relative to 1 + |θ0|: thinner ones change M by nothing visible
TUBE_COARSE = 2.0**-12  # below this radius (relative to 1 + |θ0|) tubes are chosen with a wide margin
TUBE_WINDOW = 64  # steps that share the radii computed for them (fewer tube evaluations than 32: ~15% faster)


# --------------------------------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------------------------------


def _nan_extreme(a, fn) -> float:
    """fn (np.nanmin / np.nanmax) of a, NaN (without numpy's all-NaN warning) when nothing is finite."""
    a = np.asarray(a, dtype=float)
    return float(fn(a)) if np.any(~np.isnan(a)) else math.nan


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
        it); the last entry is NaN (no step follows). For a modified flow (``flow`` ≠ "ngf"): the
        bound of the local error ‖Φ(θ̃(kh)) − θ̃((k+1)h)‖ itself
    flow, order : the flow the distance is measured to and its BEA order (None for "pf")
    hessian_lipschitz : M_k ≥ the Lipschitz constant of the Hessian in the tube at step k
        (``discrete``; NaN in ``theorem1`` mode, which uses λ₋ over the tube instead)
    certified : True when the bound is proven at every step and the step is within GD's stability
        limit (h·λ_max < 2) along the flow
    reason : why ``certified`` is False ("" otherwise)
    mode, h, rigorous : how it was computed
    tube_radius : the largest radius of the tube around the flow in which M (or λ₋) was bounded
        (the tube follows the bound: ``info["tube_radii"][k]`` is the radius at step k)
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
    flow: str = "ngf"
    order: int | None = 0

    @property
    def flow_name(self) -> str:
        """The flow the distance is measured to, in words ("gradient flow", "BEA flow of order 3", ...)."""
        return {"ngf": "gradient flow", "igr": "IGR flow (BEA order 1)", "third": "third-order flow (BEA order 2)",
                "pf": "principal flow"}.get(self.flow, f"BEA flow of order {self.order}")

    @property
    def steps(self) -> int:
        return len(self.t) - 1

    @property
    def ratio(self) -> float:
        """bound / distance at the final step (the tightness of the certificate)."""
        b, d = float(self.bound[-1]), float(self.distance[-1])
        return b / d if d > 0 else math.inf  # python floats: inf / inf is NaN without a warning

    @property
    def ratios(self) -> np.ndarray:
        """bound[k] / distance[k] over the proven steps whose distance is resolved (above the
        reported distance error and 1e-300); the tightness along the run."""
        b, d = self.bound[: self.valid_steps], self.distance[: self.valid_steps]
        derr = np.nan_to_num(self.distance_error[: self.valid_steps], nan=0.0)
        ok = np.isfinite(b) & np.isfinite(d) & (d > np.maximum(derr, 1e-300))
        return b[ok] / d[ok]

    def summary(self) -> str:
        kind = "rigorous (ball arithmetic, enclosed flow)" if self.rigorous else "floating point (integrated flow)"
        status = "CERTIFIED" if self.certified else f"NOT certified: {self.reason}"
        rs = self.ratios
        tight = (f"bound / distance: final {self.ratio:.4g}, median {np.median(rs):.4g}, max {np.max(rs):.4g} "
                 f"over {rs.size} steps" if rs.size else "bound / distance: no resolved distance")
        lines = [
            f"bea.certify: {self.mode} bound, {kind}, GD vs the {self.flow_name}",
            f"  h = {self.h:g}, {self.steps} steps, t = {self.t[-1]:g}",
            f"  {status}",
            f"  final bound     {self.bound[-1]:.6g}",
            f"  final distance  {self.distance[-1]:.6g}",
            f"  {tight}",
            f"  λ_min along the flow ≥ {_nan_extreme(self.lambda_min, np.nanmin):.6g}, "
            f"λ_max ≤ {_nan_extreme(self.lambda_max, np.nanmax):.6g}",
            f"  tube radius r ≤ {self.tube_radius:.3g}" + (" (following the bound)" if self.info.get("tube") == "adaptive" else ""),
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
        """Bound vs actual distance (log scale) and the Hessian spectrum along the flow
        (:func:`bea.plot.certificate`; ``ax``: one Axes for the top panel only); returns the Figure."""
        from bea.plot import certificate  # lazily: matplotlib is optional

        return certificate(self, axes=ax)


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
    key = loss.key
    k = _RHS.get(key)
    if k is None:
        k = _RHS[key] = compile_exprs([-e for e in loss.grad_exprs], loss.params, scalars=(_P,), name="neg_grad")
    return k


def _gd_numba(loss, theta0, h, steps):
    """Float GD iterates (rows; NaN from the first non-finite one on) and the number of finite rows,
    by the numba loop of :func:`bea.gd` — the one float GD loop of certify and max_step."""
    out, bad = run_gd(loss.grad, np.ascontiguousarray(theta0, dtype=float), h, steps)
    if bad < 0:
        return out, steps + 1
    out[bad:] = np.nan
    return out, int(bad)


def _gd_rounding(bl, thetas, h, n_gd):
    """ε_k ≥ ‖θ̂_{k+1} − (θ̂_k − h∇E(θ̂_k))‖ (the exact gradient enclosed), k < n_gd − 1."""
    if n_gd < 2:
        return np.zeros(0)
    th = Iv(thetas[: n_gd - 1])
    G = bl.grad(th)
    return norm_upper(Iv(thetas[1:n_gd]) - (th - h * G))


class _Trajectory:
    """Boxes Y_k ∋ θ(kh) (centre ± Euclidean radius) and, per step, a box containing the flow during
    the step (``step_hull``, an :class:`Iv` of shape (n_ok − 1, n)), from the integrator or the
    enclosure."""

    def __init__(self, centers, radii, step_hull, n_ok, reason, t_fail, info):
        self.centers = centers
        self.radii = radii
        self.step_hull = step_hull
        self.n_ok = n_ok
        self.reason = reason
        self.t_fail = t_fail
        self.info = info

    def boxes(self, upto) -> Iv:
        return Iv.ball(self.centers[:upto], self.radii[:upto, None])


def _float_trajectory(loss, bl, theta0, h, steps, t, rtol, atol):
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
    bad = np.nonzero(~np.isfinite(delta[:n_ok]))[0]
    if bad.size:
        n_ok, reason, t_fail = int(bad[0]), "no error estimate for the integrated flow", float(t[bad[0]])
    n_ok = max(n_ok, 1)
    hull, ok = _float_step_boxes(rhs, bl, theta0, h, Y, delta, n_ok - 1, rtol, atol)
    if not ok.all():
        k = int(np.argmin(ok))
        n_ok, t_fail = k + 1, float(t[k])
        reason = f"no a-priori enclosure of the gradient flow during the step at t = {t[k]:g}"
        hull = hull[:k]
    return _Trajectory(Y, delta, hull, n_ok, reason, t_fail, {"nfev": sol.nfev})


def _float_step_boxes(rhs, bl, theta0, h, Y, delta, K, rtol, atol, max_halvings=10):
    """Boxes containing the flow during each of the first K steps (float mode), and whether found.

    A Picard enclosure (:meth:`bea.certificates.intervals.BoxLoss.picard`) from the box Y_k = ŷ_k ± δ_k over
    [0, h]; where it fails, the step is split into m = 2, 4, … substeps, each enclosed from the
    integrated flow at its start (the run on the grid h/m, with the larger of the error estimates at
    the two ends of the step) — no enclosure is chained through the substeps, so nothing wraps."""
    n = theta0.size
    hull = Iv(np.full((K, n), -np.inf), np.full((K, n), np.inf))
    ok = np.zeros(K, dtype=bool)
    if K == 0:
        return hull, ok
    Yb = Iv.ball(Y[: K + 1], delta[: K + 1, None])
    B, _, good = bl.picard(Yb[:K], h, guess=Yb[:K].hull(Yb[1 : K + 1]))
    hull.lo[good], hull.hi[good] = B.lo[good], B.hi[good]
    ok |= good
    todo = np.nonzero(~ok)[0]
    m = 1
    for _ in range(max_halvings):
        if todo.size == 0:
            break
        m *= 2
        last = int(todo.max()) + 1
        fine = solve(rhs, theta0, (h / m) * np.arange(last * m + 1), 0.0, method="dop853", rtol=rtol, atol=atol,
                     on_failure="return")
        idx = (todo[:, None] * m + np.arange(m)[None, :]).ravel()
        pts = fine.y[idx]
        rad = np.repeat(np.maximum(delta[todo], delta[todo + 1]), m)
        if not np.all(np.isfinite(pts)):
            break
        Bs, _, gs = bl.picard(Iv.ball(pts, rad[:, None]), h / m)
        gs = gs.reshape(todo.size, m).all(axis=1)
        lo = Bs.lo.reshape(todo.size, m, n).min(axis=1)
        hi = Bs.hi.reshape(todo.size, m, n).max(axis=1)
        done = todo[gs]
        hull.lo[done], hull.hi[done] = lo[gs], hi[gs]
        ok[done] = True
        todo = todo[~gs]
    return hull, ok


def _check_flow(flow, order, mode):
    """(flow, order) normalised: "igr"/"third" are the BEA flows of order 1/2, "bea" needs ``order``."""
    if not isinstance(flow, str) or flow not in CERTIFIED_FLOWS:
        raise UnknownMethodError(f"flow must be one of {CERTIFIED_FLOWS} for bea.certify, got {flow!r}")
    if flow == "bea":
        if order is None:
            raise InvalidOrderError("flow='bea' needs the truncation order: certify(..., flow='bea', order=n)")
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise InvalidOrderError(f"order must be a non-negative integer, got {order!r}")
        order = int(order)
    elif order is not None:
        raise InvalidInputError(f"order applies only to flow='bea' (flow {flow!r} has a fixed field)")
    else:
        order = _FLOW_ORDER.get(flow)
    if flow != "ngf" and mode != "discrete":
        raise InvalidInputError(f"mode={mode!r} is the gradient-flow fan of Theorem 1; flow={flow!r} needs mode='discrete'")
    return flow, order


def _flow_points(loss, flow, order, theta0, h, steps, rtol, atol):
    """The modified flow at t = kh (float64 rows; the PF's real part), the number of finite rows and
    the failure message ("" if none). A run that fails is repeated up to the last GD time reached."""
    fl, kw = ("bea", {"order": order}) if flow == "bea" else (flow, {})
    n = loss.n
    out = np.full((steps + 1, n), np.nan)
    try:
        Y = _trajectory(loss, loss.params, theta0, h, steps, flow=fl, rtol=rtol, atol=atol, **kw)
        msg = ""
    except IntegrationError as exc:
        msg = f"the {flow} flow could not be integrated: {exc}"
        reach = int(math.floor(exc.t / h)) if exc.t is not None and math.isfinite(exc.t) else 0
        reach = min(max(reach, 0), steps)
        try:
            Y = _trajectory(loss, loss.params, theta0, h, reach, flow=fl, rtol=rtol, atol=atol, **kw) if reach else theta0[None]
        except IntegrationError:
            Y = theta0[None]
    m = len(Y)
    imag = np.full(steps + 1, np.nan)
    imag[:m] = np.linalg.norm(Y.imag, axis=1) if np.iscomplexobj(Y) else 0.0
    out[:m] = Y.real
    return out, imag, msg


def _pf_check(bl, points, h):
    """Refuse the PF where its real flow is undefined (h·λ_max ≥ 1 at one of the points)."""
    pts = points[np.all(np.isfinite(points), axis=1)]
    if not len(pts):
        return
    lam = np.linalg.eigvalsh(_sym(bl.hess(Iv(pts)).mid()))[:, -1]
    k = int(np.argmax(h * lam))
    if h * lam[k] >= 1.0:
        raise InvalidInputError(
            f"flow='pf' needs h·λ_max < 1 along the flow (for h·λ ≥ 1, log(1 − hλ) is not real and the real "
            f"principal flow is undefined): h·λ_max = {h * lam[k]:.6g} at t = {k * h:g}; use flow='ngf' or a bea "
            f"flow, or a step below {1.0 / lam[k]:.6g}")


def _sym(H):
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def _modified_trajectory(loss, bl, flow, order, theta0, h, steps, t, rtol, atol, rigorous, taylor_order, prec):
    """Boxes Y_k ∋ θ̃(kh) of a modified flow (``step_hull`` is None: the discrete recursion only needs
    the grid points). PF on a quadratic: θ̃(kh) is exact GD (Remark 3.1), enclosed in ball
    arithmetic; otherwise the float integration padded by its error estimate, or (rigorous) the
    validated enclosure of the modified field (:func:`bea.certificates.rigorous.enclose_field`)."""
    if flow == "pf":
        if is_quadratic_loss(loss):
            lo, hi = eig_bounds(bl.hess(Iv(theta0[None])))
            if h * float(hi[0]) >= 1.0:
                raise InvalidInputError(
                    f"flow='pf' needs h·λ_max < 1 (the real principal flow is undefined for h·λ ≥ 1): h·λ_max ≤ "
                    f"{h * float(hi[0]):.6g} on this quadratic; use a step below {1.0 / float(hi[0]):.6g}")
            c, r, n_ok = enclose_gd(interval_loss(loss), theta0, h, steps, prec=prec)
            reason = "" if n_ok == steps + 1 else f"the exact GD iterates (= the PF on a quadratic) overflowed at step {n_ok}"
            return _Trajectory(c, r, None, n_ok, reason, math.nan if not reason else float(t[n_ok]),
                               {"flow_model": "exact GD (PF of a quadratic)"})
        if rigorous:
            raise InvalidInputError(
                "rigorous=True with flow='pf' is available on quadratic losses only: a validated enclosure of the "
                "principal flow of a non-quadratic loss needs ball-arithmetic eigen-decompositions of the Hessian "
                "(the matrix function log(I − hH)/(hH)·g), which bea does not have; use rigorous=False")
    if rigorous:
        enc = enclose_field(field_interval_loss(loss, flow, order, h), theta0, h, steps, order=taylor_order, prec=prec)
        reason = f"the {flow} flow enclosure failed at t = {enc.t_fail:g}: {enc.reason}" if enc.reason else ""
        return _Trajectory(enc.centers, enc.radii, None, enc.n_ok, reason, enc.t_fail,
                           {"substeps": enc.substeps, "taylor_order": taylor_order})
    Y, imag, msg = _flow_points(loss, flow, order, theta0, h, steps, rtol, atol)
    if flow == "pf":
        _pf_check(bl, Y, h)
    loose, limag, _ = _flow_points(loss, flow, order, theta0, h, steps, rtol * 100, atol * 100)
    with np.errstate(all="ignore"):
        diff = np.linalg.norm(Y - loose, axis=1) + imag + limag
    floor = 16 * _U * (1 + np.linalg.norm(np.nan_to_num(Y, nan=0.0, posinf=0.0, neginf=0.0), axis=1)) + atol
    delta = np.where(np.isfinite(diff), np.maximum(diff, floor), np.inf)
    finite = np.isfinite(delta)
    n_ok = int(np.argmin(finite)) if not finite.all() else steps + 1
    n_ok = max(n_ok, 1)
    reason, t_fail = "", math.nan
    if n_ok < steps + 1:
        reason = msg or f"no error estimate for the integrated {flow} flow at t = {t[n_ok]:g}"
        t_fail = float(t[n_ok])
    return _Trajectory(Y, delta, None, n_ok, reason, t_fail, {"flow_model": f"{flow} (dop853, rtol {rtol:g})"})


def _rigorous_trajectory(iloss, theta0, h, steps, order, prec):
    enc = enclose_gf(iloss, theta0, h, steps, order=order, prec=prec)
    reason = f"the gradient-flow enclosure failed at t = {enc.t_fail:g}: {enc.reason}" if enc.reason else ""
    n = iloss.n
    lo = np.array([[min(lower(B[i]) for B in boxes) for i in range(n)] for boxes in enc.step_boxes]).reshape(-1, n)
    hi = np.array([[max(upper(B[i]) for B in boxes) for i in range(n)] for boxes in enc.step_boxes]).reshape(-1, n)
    return _Trajectory(enc.centers, enc.radii, Iv(lo, hi), enc.n_ok, reason, enc.t_fail,
                       {"substeps": enc.substeps, "taylor_order": order})


def _up(v, n):
    """Round a float result of sums/products of ≤ n+2 non-negative terms upwards (γ-bound)."""
    return inflate_sum(v, n)


def _abs_up(C, R):
    """Entrywise upper bounds of |x| over the midpoint–radius enclosures C ± R."""
    return up(np.abs(C) + R)


@dataclass
class _Ingredients:
    """What the recursions need that does not depend on the tube: the per-step bounds (ℓ_k, ε_k and
    the eigenbasis terms), a_k, the eigenbases, the spectrum enclosure [λ_lo, λ_hi] along the flow and
    the re-centred data (None when not used)."""

    step_bounds: StepBounds
    local_error: np.ndarray
    bases: object
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    recentred: Recentred | None


def _ingredients(bl, traj, thetas, h, K, steps, mode, componentwise, gf=True) -> _Ingredients:
    """Everything the recursions need that does not depend on the tube (all steps at once).
    ``gf=False`` (a modified flow): no a-priori GF local error, the local error is the enclosure
    Φ(Y_k) − Y_{k+1} alone (``a`` then holds its norm bound)."""
    n = bl.n
    n_ok = traj.n_ok
    Yb = traj.boxes(n_ok)
    HY = bl.hess(Yb)
    comp = componentwise and mode == "discrete" and K > 0
    bases = eigenbases(HY) if comp else None
    lam_lo = np.full(steps + 1, np.nan)
    lam_hi = np.full(steps + 1, np.nan)
    lo, hi = eig_bounds(HY, None if bases is None else bases.Q)
    lam_lo[:n_ok], lam_hi[:n_ok] = lo, hi
    eps = _gd_rounding(bl, thetas, h, K + 1)
    a = np.full(steps + 1, np.nan)
    h2 = float(up(up(h * h) / 2))
    hull_hg = bl.hg(traj.step_hull[:K]) if K and gf else None
    if K and gf:
        a[:K] = norm_upper(hull_hg)
    # the local error itself: Φ(y_k) − φ_h(y_k) ∈ Φ(Y_k) − Y_{k+1}
    D = Yb[:K] - h * bl.grad(Yb[:K]) - Yb[1 : K + 1] if K else None
    if K and gf:
        ell = np.minimum(up(h2 * a[:K]), norm_upper(D))
    elif K:
        ell = norm_upper(D)
        a[:K] = ell
    else:
        ell = np.zeros(0)
    sb = StepBounds(h, lam_lo[: K + 1], lam_hi[: K + 1], ell, eps)
    rec = _recentred(bl, Yb, HY, D, h, K) if mode == "discrete" and K else None
    if comp:
        nxt = bases[1 : K + 1]
        Hm, Hr = HY[:K].mid_rad()
        Mm = np.eye(n) - h * Hm
        Mr = _up(h * Hr + _U * (np.abs(h * Hm) + np.abs(Mm)), 3)
        sb.absP = _abs_up(*similar(nxt, Mm, Mr, right=bases.Q[:K]))
        Dm, Dr = D.mid_rad()
        post = _abs_up(*similar(nxt, Dm[..., None], Dr[..., None]))[..., 0]
        if gf:
            Gm, Gr = hull_hg.mid_rad()
            prior = up(h2 * _abs_up(*similar(nxt, Gm[..., None], Gr[..., None]))[..., 0])
            sb.L = np.minimum(post, prior)
        else:
            sb.L = post
        sb.rows, sb.nQ, sb.nQinv = bases.inv_rows, bases.norm, bases.inv_norm
    return _Ingredients(sb, a, bases, lam_lo, lam_hi, rec)


@numba.njit(cache=True)
def _propagate(A, Tt, dt, h):
    """D_0 = 0, D_{k+1} = A_k D_k − (h/2)T̃_k[D_k, D_k] + δ̃_k in floats (NaN from the first
    non-finite one on)."""
    K, n = dt.shape
    D = np.zeros((K + 1, n))
    for k in range(K):
        finite = True
        for i in range(n):
            acc = dt[k, i]
            for j in range(n):
                acc += A[k, i, j] * D[k, j]
                q = 0.0
                for l in range(n):
                    q += Tt[k, i, j, l] * D[k, l]
                acc -= 0.5 * h * q * D[k, j]
            D[k + 1, i] = acc
            finite = finite and np.isfinite(acc)
        if not finite:
            D[k + 1 :] = np.nan
            break
    return D


def _recentred(bl, Yb, HY, Dloc, h, K):
    """The second-order linearised error along the flow (module docstring, "re-centred"):
    D_{k+1} = (I − hH̃_k)D_k − (h/2)T̃_k[D_k, D_k] + δ̃_k in floats, with the bounds the remainder
    recursion needs (:class:`bea.certificates.tube.Recentred`)."""
    n = bl.n
    Hm = HY[:K].mid()
    Hm = 0.5 * (Hm + np.swapaxes(Hm, -1, -2))
    ent = bl.t3_entries(Yb[:K])
    Tt = bl.t3_tensor(Iv(ent.mid())).lo  # float symmetric tensors T̃_k
    dt = Dloc.mid()
    A = np.eye(n) - h * Hm
    Dv = _propagate(np.ascontiguousarray(A), np.ascontiguousarray(Tt), np.ascontiguousarray(dt), float(h))
    with np.errstate(all="ignore"):
        aD = np.abs(Dv[:K])
        # f_k: the float evaluation of the update against its exact value (γ-bound of every term:
        # each entry is a sum of n + n² products of ≤ 4 factors)
        terms = (np.abs(A) + h * np.abs(Hm)) @ aD[..., None]
        terms = terms[..., 0] + (0.5 * h) * np.einsum("kijl,kj,kl->ki", np.abs(Tt), aD, aD) + np.abs(dt)
        f = up(norm_upper(terms) * (4.0 * (n * n + n + 8) * _U))
        Dnorm = norm_upper(Dv)
        hr = norm_upper((HY[:K] - Hm).mag().reshape(K, n * n))  # ≥ ‖H(y_k) − H̃_k‖₂
        lr = norm_upper(Dloc - dt)  # ≥ ‖δ_k − δ̃_k‖
        lin = _up(h * hr * Dnorm[:K] + lr + f, 3)
        mult = np.array(t3_multiplicities(n), dtype=float)
        Mt = norm_upper(np.abs(ent.mid()), weights=mult)
        # the remainder's linear part: H(y_k) + T̃_k[D_k] (T̃[D] in floats, its rounding as a radius)
        Dz = np.nan_to_num(Dv[:K], nan=0.0)
        TD = Tt @ Dz[:, None, :, None]
        TD = TD[..., 0]
        TDr = up((2.0 * (n + 2) * _U) * (np.abs(Tt) @ np.abs(Dz)[:, None, :, None])[..., 0] + 2.0**-1060)
        lam1_lo, lam1_hi = eig_bounds(HY[:K] + Iv(down(TD - TDr), up(TD + TDr)))
    bad = ~np.isfinite(Dnorm)
    Dnorm = np.where(bad, np.inf, Dnorm)
    return Recentred(D=np.nan_to_num(Dv, nan=0.0), Dnorm=Dnorm, lin=np.where(np.isfinite(lin), lin, np.inf),
                     lam_lo=lam1_lo, lam_hi=lam1_hi, Mt=Mt)


SEGMENT_PIECES = 16  # the most boxes a re-centred segment is covered with (bea.certificates.certify._discrete_tube)


def _discrete_tube(bl, Yb, bases, K, D=None, scale=1.0):
    """compute(w, start, stop) for :class:`bea.certificates.tube.Tube`: boxes around the segments
    {Y_k + τD_k, τ ∈ [0, 1]} grown by w (D = 0: the box of the ball of radius w around the flow), each
    segment covered by S_k consecutive boxes (S_k ≈ ‖D_k‖_∞/max(w, 2⁻¹⁰·scale), at most
    ``SEGMENT_PIECES``: interval evaluation over a long thin cover overestimates far less than over the
    hull of the segment). Returns M_k ≥ sup‖T‖_F, N_k ≥ sup‖T − T̃_k‖_F (T̃_k the float tensor at the
    flow) and (with bases) C_k ≥ |Q_{k+1}⁻¹ T Q_k Q_k| over the cover of step k."""
    n = bl.n
    mult = np.array(t3_multiplicities(n), dtype=float)
    if D is not None:
        Dk = D[:K]
        Dmax = np.max(np.abs(Dk), axis=1)
        Tt = bl.t3_entries(Yb[:K]).mid()
        slack = 4.0 * _U * np.abs(Dk) + 2.0**-1060
    coarse = 2.0**-7 * scale

    def cover(r, start, stop):
        """(boxes, first): the sub-boxes of steps start..stop−1 and where each step's run starts."""
        base = Yb[start:stop]
        if D is None:
            return base.inflate(r), np.arange(stop - start)
        S = np.clip(np.ceil(Dmax[start:stop] / max(r, coarse)), 1, SEGMENT_PIECES).astype(int)
        owner = np.repeat(np.arange(stop - start), S)
        first = np.concatenate([[0], np.cumsum(S)[:-1]])
        frac = (np.arange(owner.size) - first[owner]) / S[owner]
        d, sl = Dk[start:stop][owner], slack[start:stop][owner]
        a, b = frac[:, None] * d, (frac + 1.0 / S[owner])[:, None] * d
        seg = Iv(np.minimum(a, b) - sl, np.maximum(a, b) + sl)
        return (base[owner] + seg).inflate(r), first

    def compute(r, start, stop):
        boxes, first = cover(r, start, stop)
        m = stop - start
        ent = bl.t3_entries(boxes)
        M = np.maximum.reduceat(bl.t3_norm(entries=ent), first)
        N = None
        if D is not None:
            owner = np.repeat(np.arange(m), np.diff(np.append(first, len(ent.lo))))
            N = np.maximum.reduceat(norm_upper(ent - Tt[start:stop][owner], weights=mult), first)
        C = None
        if bases is not None:
            if D is not None:  # the hull of the cover's tensors, per step
                ent = Iv(np.minimum.reduceat(ent.lo, first, axis=0), np.maximum.reduceat(ent.hi, first, axis=0))
            Tm, Tr = bl.t3_tensor(ent).mid_rad()  # (m, a, b, c)
            Q = bases.Q[start:stop, None]
            Xm, Xr = mr_matmul(Tm, Tr, Q, None)  # Σ_c T_abc Q_cl -> (m, a, b, l)
            Xm, Xr = np.swapaxes(Xm, -1, -2), np.swapaxes(Xr, -1, -2)  # (m, a, l, b)
            Xm, Xr = mr_matmul(Xm, Xr, Q, None)  # Σ_b X_alb Q_bj -> (m, a, l, j)
            Xm = np.swapaxes(Xm, -1, -2).reshape(m, n, n * n)  # (m, a, j·l)
            Xr = np.swapaxes(Xr, -1, -2).reshape(m, n, n * n)
            C = _abs_up(*similar(bases[start + 1 : stop + 1], Xm, Xr)).reshape(m, n, n, n)
        return TubeData(M=M, C=C, N=N)

    return compute


def _theorem1_tube(bl, hull):
    """compute(r, start, stop): λ₋ and ‖D(Hg)‖_F over the flow during each step grown by r."""

    def compute(r, start, stop):
        boxes = hull[start:stop].inflate(r)
        lo, _ = eig_bounds(bl.hess(boxes))
        return TubeData(lam_neg=np.minimum(lo, 0.0), L=bl.dhg_norm(boxes))

    return compute


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
    flow: str = "ngf",
    order: int | None = None,
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
        bounded; None (default) lets the tube follow the bound (a radius ≥ e_k at every step, from a
        geometric grid; module docstring)
    componentwise : (discrete mode) also run the recursion componentwise in the local Hessian
        eigenbases and report the smaller of the two bounds at every step (see the module docstring);
        False gives the scalar ρ_k recursion alone
    rtol, atol : tolerances of the dop853 integration of the flow (float mode)
    taylor_order, prec : Taylor order and arb working precision (bits) of the enclosures
    flow : the flow θ̃ that GD is compared with (``distance`` and ``bound`` are ‖θ_k − θ̃(kh)‖):
        ``"ngf"`` (default, gradient flow), ``"igr"``, ``"third"``, ``"bea"`` (with ``order=n``: the BEA
        field of order n) or ``"pf"`` (principal flow; h·λ_max < 1 needed) — see "Modified flows" in the
        module docstring. ``order``: only with ``flow="bea"``.

    Returns
    -------
    Certificate
        ``certified`` is False, with a reason, when the bound ran away (or left a given tube), the flow
        could not be integrated or enclosed, GD overflowed, or h·λ_max ≥ 2 along the flow (beyond the
        stability limit, where GD does not follow GF); bounds that are not proven are ``inf``.
    """
    t_start = time.perf_counter()
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {MODES}, got {mode!r}")
    flow, order = _check_flow(flow, order, mode)
    gf = flow == "ngf"
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

    bl = box_loss(loss, "arb" if rigorous else "float")
    t = h * np.arange(steps + 1)
    info: dict = {}

    # --- gradient descent (floats) and the flow (integrated or enclosed)
    t0 = time.perf_counter()
    thetas, n_gd = _gd_numba(loss, theta0, h, steps)
    info["time_gd"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ctx.workprec(prec):
        if not gf:
            traj = _modified_trajectory(loss, bl, flow, order, theta0, h, steps, t, rtol, atol, rigorous,
                                        taylor_order, prec)
        elif rigorous:
            traj = _rigorous_trajectory(interval_loss(loss), theta0, h, steps, taylor_order, prec)
        else:
            traj = _float_trajectory(loss, bl, theta0, h, steps, t, rtol, atol)
    info["time_flow"] = time.perf_counter() - t0
    info.update(traj.info)

    with ctx.workprec(prec):
        t0 = time.perf_counter()
        n_ok = traj.n_ok
        K = min(n_ok, n_gd) - 1  # number of steps the recursion can run
        ing = _ingredients(bl, traj, thetas, h, K, steps, mode, componentwise, gf)
        sb, rec = ing.step_bounds, ing.recentred
        info["time_boxes"] = time.perf_counter() - t0

        # --- the recursion, in a tube that follows the bound (or a given one)
        t0 = time.perf_counter()
        scale = 1.0 + float(np.max(np.abs(theta0)))
        if mode == "discrete":
            fixed = tube_radius is not None
            compute = _discrete_tube(bl, traj.boxes(K + 1), ing.bases, K, None if fixed or rec is None else rec.D, scale)
        else:
            compute = _theorem1_tube(bl, traj.step_hull)
        tube = Tube(compute, r_min=TUBE_MIN * scale, K=K, r_max=1e8 * scale, coarse=TUBE_COARSE * scale, window=TUBE_WINDOW)
        if mode == "discrete":
            res = discrete_bound(sb, tube, radius=tube_radius, recentred=rec)
        else:
            res = theorem1_bound(h, sb.ell, sb.eps, tube, radius=tube_radius)
        info["tube_evaluations"] = tube.evaluations
        info["local_term"] = sb.ell.copy()
        info["time_recursion"] = time.perf_counter() - t0
    # --- the distance (to report; the bound does not use it) and the uncertainty of the flow points
    distance = np.full(steps + 1, np.nan)
    derr = np.full(steps + 1, np.nan)
    if rigorous:
        t0 = time.perf_counter()
        gd_c, gd_r, n_gdr = enclose_gd(interval_loss(loss), theta0, h, steps, prec=prec)
        m = min(n_gdr, n_ok)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run: inf distance (inf − inf: NaN error)
            d_up = norm_upper(Iv(gd_c[:m]) - Iv(traj.centers[:m]))
            lo_d = np.sqrt(np.sum((gd_c[:m] - traj.centers[:m]) ** 2, axis=1))
            distance[:m] = lo_d
            derr[:m] = _up((d_up - lo_d) + 2 * _U * lo_d + gd_r[:m] + traj.radii[:m], 3)
        info["time_gd_enclosure"] = time.perf_counter() - t0
    else:
        m = min(n_gd, n_ok)
        with np.errstate(over="ignore"):  # a diverging GD: the distance is inf, reported as such
            distance[:m] = np.linalg.norm(thetas[:m] - traj.centers[:m], axis=1)
        derr[:m] = traj.radii[:m]
    # the bound also covers the reported distance: certificate_from adds derr, the uncertainty of the
    # reference flow (proven radii in rigorous mode, the integrator's error estimate otherwise)
    return certificate_from(
        res, t=t, h=h, K=K, n_gd=n_gd, distance=distance, distance_error=derr, local_error=ing.local_error,
        hessian_lipschitz=res.M if mode == "discrete" else None, lambda_min=ing.lam_lo, lambda_max=ing.lam_hi,
        flow_failure=traj.reason, tube_radius=tube_radius, mode=mode, rigorous=rigorous, flow=flow, order=order,
        info=info, t_start=t_start,
    )


def certificate_from(result: BoundResult, *, t, h: float, K: int, n_gd: int, distance, distance_error,
                     local_error, hessian_lipschitz, lambda_min, lambda_max, flow_failure: str = "",
                     extra_reasons=(), spectrum_enclosed: bool = True, tube_radius: float | None = None,
                     mode: str = "discrete", rigorous: bool = False, flow: str = "ngf", order: int | None = None,
                     info: dict, t_start: float) -> Certificate:
    """The :class:`Certificate` of a bound recursion — one assembly and one verdict for both backends
    (:func:`certify` and :func:`bea.torch.certify`).

    ``result``: the recursion's :class:`~bea.certificates.tube.BoundResult` over steps 0..K (e_k ≥
    ‖θ_k − ŷ_k‖, ŷ_k the computed flow points); ``n_gd``: GD iterates that are finite (steps + 1 when
    none overflowed); ``distance`` (NaN where not computed), ``distance_error`` (the uncertainty of
    ŷ_k against the exact flow θ(kh)); ``local_error`` a_k and ``hessian_lipschitz`` M_k for
    k < K (``None``: not part of this mode); ``lambda_max`` an upper bound of the spectrum
    (``spectrum_enclosed``) or an estimate of it (torch).  The reported bound is
    e_k + distance_error[k], rounded up, where the recursion is proven and inf after; the reasons,
    in order: GD diverged, the flow failed (``flow_failure``), the recursion stopped, ``extra_reasons``,
    h·λ_max ≥ 2 (beyond GD's stability limit).
    """
    steps = len(t) - 1
    valid = int(result.valid)
    derr = np.array(distance_error, dtype=np.float64)
    derr[0] = 0.0  # both start at theta0 exactly
    bound = np.full(steps + 1, math.inf)
    bound[:valid] = result.e[:valid]
    pad = np.where(np.isfinite(derr[:valid]), derr[:valid], 0.0)
    bound[1:valid] = _up(bound[1:valid] + pad[1:], 1)
    local = np.full(steps + 1, np.nan)
    lips = np.full(steps + 1, np.nan)
    if K > 0:
        local[:K] = local_error[:K]
        if hessian_lipschitz is not None:
            lips[:K] = hessian_lipschitz[:K]
    distance = np.array(distance, dtype=np.float64)
    if n_gd < steps + 1:
        distance[n_gd:] = math.inf
    lam_hi = np.asarray(lambda_max, dtype=np.float64)
    reasons = []
    if n_gd < steps + 1:
        reasons.append(f"gradient descent diverged: the iterate overflowed at step {n_gd} (t = {t[n_gd]:g})")
    if flow_failure:
        reasons.append(flow_failure)
    if valid < K + 1:
        reasons.append(result.failure)
    reasons.extend(extra_reasons)
    stab = np.nonzero(h * lam_hi[:valid] >= 2.0)[0]
    if stab.size:
        k = int(stab[0])
        rel = "≤" if spectrum_enclosed else "≈"
        reasons.append(
            f"the step is beyond gradient descent's stability limit: h·λ_max {rel} {h * lam_hi[k]:.4g} ≥ 2 at "
            f"t = {t[k]:g} (h > 2/λ_max), so GD does not follow the flow"
        )
    info["tube"] = "adaptive" if tube_radius is None else "fixed"
    info["tube_radii"] = result.radius
    info["tube_need"] = result.need
    info["tube_tried"] = result.tried
    info["flow"], info["order"] = flow, order
    info["time_total"] = time.perf_counter() - t_start
    return Certificate(
        t=t, bound=bound, distance=distance, distance_error=derr, lambda_min=np.asarray(lambda_min, dtype=np.float64),
        lambda_max=lam_hi, local_error=local, hessian_lipschitz=lips, certified=not reasons,
        reason="; ".join(reasons), mode=mode, h=h, rigorous=bool(rigorous),
        tube_radius=float(tube_radius) if tube_radius is not None else result.max_radius, valid_steps=valid,
        info=info, flow=flow, order=order,
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
    flow: str = "ngf",
    order: int | None = None,
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
    ``flow``/``order``: the flow GD is compared with (as in :func:`certify`); a modified flow depends
    on η, so the empirical criterion integrates it again for every k.
    """
    loss = compile_loss(E, params)
    theta0 = check_theta0(theta0, loss.n)
    t = check_step(t, "t")
    tol = check_step(tol, "tol")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InvalidInputError(f"max_steps must be a positive integer, got {max_steps!r}")

    order_arg = order
    flow, order = _check_flow(flow, order, mode)

    def cert_ok(k):
        try:
            c = certify(loss, loss.params, theta0, t / k, k, mode=mode, rigorous=rigorous, flow=flow, order=order_arg,
                        **certify_kwargs)
        except InvalidInputError:  # e.g. the PF at h·λ ≥ 1: no certificate at this step
            if flow != "pf":
                raise
            return False
        return bool(c.certified and c.bound[-1] <= tol)

    rhs = _neg_grad_kernel(loss)
    if flow == "ngf":
        sol = solve(rhs, theta0, [0.0, t], 0.0, method="dop853", rtol=1e-12, atol=1e-14)
        y_t = sol.y[-1]

    def emp_ok(k):
        th, n_ok = _gd_numba(loss, theta0, t / k, k)
        if n_ok != k + 1:
            return False
        if flow == "ngf":
            return float(np.linalg.norm(th[-1] - y_t)) <= tol
        Y, _, msg = _flow_points(loss, flow, order, theta0, t / k, k, 1e-12, 1e-14)
        return not msg and bool(np.all(np.isfinite(Y[-1]))) and float(np.linalg.norm(th[-1] - Y[-1])) <= tol

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
