r"""Diagnostics of gradient descent through the principal flow (seed 002: Rosca et al. 2023, Sects. 3–6).

The PF θ̇ = Σ_i α(hλ_i)(gᵀu_i)u_i, α(z) = log(1 − z)/z, is built from :mod:`bea.flows.alpha` (α, the PF
rates log(1 − hλ)/h, the regime classes); the names there are re-exported here unchanged.

:func:`diagnostics` at one point (:class:`PFDiagnostics`: eigenvalues, PF Jacobian eigenvalues
log(1 − hλ)/h, stability coefficients sc_i = α(hλ_i)gᵀu_i (Def. 3.4), drift ‖Hg‖ and ‖Hĝ‖
(Thm 6.1), gᵀu_0, the relative progress ratio, per-direction classes) and :func:`diagnostics_along`
a GD run (:class:`PFTrace`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bea._checks import check_step, check_theta0
from bea.flows.alpha import __all__ as _ALPHA_NAMES
from bea.flows.alpha import (
    CLASSES,
    ONE_STEP_FLOOR,
    SERIES_RADIUS,
    alpha,
    alpha_coefficients,
    alpha_real_scalar,
    alpha_scalar,
    classify,
    flow_alpha,
    flow_alpha_scalar,
    log1m,
    pf_rates,
)
from bea.flows.descent import gd
from bea.compile.loss import cached_loss

__all__ = [
    *_ALPHA_NAMES,  # re-exported unchanged
    "PFQuantities",
    "PFDiagnostics",
    "PFTrace",
    "diagnostics",
    "diagnostics_along",
]


# --------------------------------------------------------------------------------------------------
# diagnostics of the principal flow at a point and along a GD trajectory
# --------------------------------------------------------------------------------------------------


def _eig_desc(H, g):
    """Eigenpairs of the symmetric H, λ in decreasing order (λ_0 the largest), signs with gᵀu_i ≥ 0."""
    lam, U = np.linalg.eigh(H)
    lam, U = lam[::-1].copy(), U[:, ::-1].copy()
    gu = U.T @ g
    flip = gu < 0
    U[:, flip] *= -1.0
    gu[flip] *= -1.0
    return lam, U, gu


def _stability_coefficients(lam, gu, h):
    """sc_i = α(hλ_i)·gᵀu_i with real and imaginary parts formed separately (α(1) = −inf: no NaN)."""
    a = alpha(h * lam, complex_output=True)
    with np.errstate(invalid="ignore"):
        re = np.where(gu == 0.0, 0.0, a.real * gu)
    return re + 1j * (a.imag * gu)


class PFQuantities:
    """What both backends derive from their PF diagnostics, written once: :class:`PFDiagnostics`
    here and :class:`bea.torch.PFDiagnostics` (which keeps k of the n directions) inherit it.

    Needs the fields ``h``, ``loss``, ``eigenvalues`` (decreasing), ``g_dot_u``,
    ``stability_coefficients``, ``classes``, ``drift``, ``drift_normalized``, ``progress_ratio`` and
    a ``grad_norm``.
    """

    @property
    def lambda_max(self) -> float:
        """λ_0, the largest Hessian eigenvalue."""
        return float(self.eigenvalues[0])

    @property
    def g_dot_u0(self) -> float:
        """gᵀu_0 (≥ 0): with λ_0 > 2/h, the size of the push along the unstable direction."""
        return float(self.g_dot_u[0])

    @property
    def sc0(self) -> complex:
        """The stability coefficient of the top direction; Re sc_0 > 0 large predicts a loss increase."""
        return complex(self.stability_coefficients[0])

    @property
    def edge_ratio(self) -> float:
        """hλ_0/2: 1 at the edge of stability (λ_0 = 2/h)."""
        return self.h * self.lambda_max / 2.0

    @property
    def unstable(self) -> bool:
        """Whether some direction with gᵀu_i > 0 has Re sc_i > 0 (the PF climbs there)."""
        return bool(np.any(self.stability_coefficients.real > 0.0))

    def _summary_lines(self) -> list:
        lines = [
            f"PF diagnostics at h = {self.h:g} (2/h = {2.0 / self.h:g}), E = {self.loss:.6g}, "
            f"|g| = {self.grad_norm:.4g}",
            f"  drift |Hg| = {self.drift:.4g}, |H g_hat| = {self.drift_normalized:.4g}"
            f" (DAL h = {2.0 / self.drift_normalized:.4g})"
            if np.isfinite(self.drift_normalized) and self.drift_normalized > 0
            else f"  drift |Hg| = {self.drift:.4g}, |H g_hat| undefined (critical point)",
            f"  progress ratio (E(θ-hg)-E(θ))/(h|g|²) = {self.progress_ratio:.4g}",
            "   i   lambda_i      h*lambda_i  class              g.u_i       Re sc_i      Im sc_i",
        ]
        for i, lam in enumerate(self.eigenvalues):
            sc = self.stability_coefficients[i]
            lines.append(
                f"  {i:2d}  {lam:11.4g}  {self.h * lam:10.4g}  {self.classes[i]:<17s}  "
                f"{self.g_dot_u[i]:10.4g}  {sc.real:11.4g}  {sc.imag:11.4g}"
            )
        return lines


@dataclass(frozen=True, eq=False)
class PFDiagnostics(PFQuantities):
    r"""Principal-flow diagnostics of gradient descent at one real point θ (seed 002, Sect. 3–6).

    Attributes
    ----------
    theta, h : the point and the GD step size
    loss : E(θ);  grad : g = ∇E(θ)
    eigenvalues : λ_i of H = ∇²E(θ) in **decreasing** order (λ_0 is the largest, the seed's u_0)
    eigenvectors : (n, n), column i is u_i; the sign of each u_i is chosen with gᵀu_i ≥ 0 (the seed's
        convention below Def. 3.4), so sign(sc_i) = sign(α(hλ_i)) — the sign of an eigenvector is not
        intrinsic, only this choice makes the sign of sc_i meaningful.
    g_dot_u : gᵀu_i ≥ 0
    rates : PF Jacobian eigenvalues log(1 − hλ_i)/h (complex; exact at critical points, Eq. 16;
        −inf at hλ_i = 1)
    stability_coefficients : sc_i = α(hλ_i)·gᵀu_i (Def. 3.4), complex; Re sc_i > 0 means the PF
        moves *up* the loss in direction u_i, which happens for hλ_i > 2.  Along a negative-curvature
        direction (λ_i < 0, a saddle) Re sc_i < 0: the PF still descends there, while its rate
        log(1 − hλ_i)/h > 0 carries it away from the critical point.  −inf when hλ_i = 1 and gᵀu_i > 0.
    drift : ‖Hg‖ — the discretisation drift per step is (h²/2)·H(θ′)g(θ′) (Thm 6.1)
    drift_normalized : ‖Hĝ‖ = ‖Hg‖/‖g‖ (Eq. 18: DAL takes h = 2/‖Hĝ‖); NaN at a critical point
        (g = 0), where ĝ is undefined
    progress_ratio : (E(θ − hg) − E(θ)) / (h‖g‖²), the loss change of one GD step relative to its
        first-order prediction −h‖g‖²: ≈ −1 for small h, > 0 when the step increases the loss; NaN
        at a critical point
    classes : per-direction class of :func:`classify` (real-stable, complex-stable, complex-unstable, …)
    """

    theta: np.ndarray
    h: float
    loss: float
    grad: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    g_dot_u: np.ndarray
    rates: np.ndarray
    stability_coefficients: np.ndarray
    drift: float
    drift_normalized: float
    progress_ratio: float
    classes: np.ndarray

    @property
    def grad_norm(self) -> float:
        """‖g‖."""
        return float(np.linalg.norm(self.grad))

    def summary(self) -> str:
        return "\n".join(self._summary_lines())

    def __repr__(self) -> str:
        return (
            f"PFDiagnostics(h={self.h:g}, loss={self.loss:.6g}, lambda_max={self.lambda_max:.6g}, "
            f"sc0={self.sc0:.4g}, drift={self.drift:.4g})"
        )


def _diagnose(loss, theta, h) -> PFDiagnostics:
    g = np.asarray(loss.grad(theta), dtype=np.float64)
    H = np.asarray(loss.hess(theta), dtype=np.float64)
    H = 0.5 * (H + H.T)
    lam, U, gu = _eig_desc(H, g)
    Hg = H @ g
    gnorm2 = float(g @ g)
    e0 = loss.value(theta)
    drift = float(np.linalg.norm(Hg))
    if gnorm2 > 0.0:
        drift_n = drift / math.sqrt(gnorm2)
        progress = (loss.value(theta - h * g) - e0) / (h * gnorm2)
    else:
        drift_n = math.nan
        progress = math.nan
    return PFDiagnostics(
        theta=theta.copy(), h=h, loss=e0, grad=g, eigenvalues=lam, eigenvectors=U, g_dot_u=gu,
        rates=pf_rates(lam, h), stability_coefficients=_stability_coefficients(lam, gu, h),
        drift=drift, drift_normalized=drift_n, progress_ratio=float(progress),
        classes=np.atleast_1d(classify(lam, h)),
    )


def diagnostics(E, params, theta, h) -> PFDiagnostics:
    """Principal-flow diagnostics of GD with step ``h`` at the real point ``theta``.

    See :class:`PFDiagnostics` for what is computed (eigenvalues, PF rates log(1 − hλ)/h,
    stability coefficients sc_i = α(hλ_i)gᵀu_i (Def. 3.4), drift ‖Hg‖ and ‖Hĝ‖ (Thm 6.1, Eq. 18),
    gᵀu_0, the relative progress ratio and the per-direction class).  ``E`` may also be a
    :class:`bea.compile.loss.CompiledLoss`.
    """
    loss = cached_loss(E, params)
    theta = check_theta0(theta, loss.n, name="theta")
    return _diagnose(loss, theta, check_step(h))


@dataclass(frozen=True, eq=False)
class PFTrace:
    """:class:`PFDiagnostics` at every iterate of a GD run, as arrays over k = 0..steps.

    Attributes
    ----------
    h : step size;  thetas : (steps+1, n) GD iterates;  losses : (steps+1,)
    eigenvalues : (steps+1, n), decreasing in each row;  stability_coefficients : (steps+1, n) complex
    g_dot_u0, drift, drift_normalized, progress_ratio : (steps+1,)
    """

    h: float
    thetas: np.ndarray
    losses: np.ndarray
    eigenvalues: np.ndarray
    stability_coefficients: np.ndarray
    g_dot_u0: np.ndarray
    drift: np.ndarray
    drift_normalized: np.ndarray
    progress_ratio: np.ndarray
    points: tuple = field(repr=False, default=())

    def __len__(self) -> int:
        return self.thetas.shape[0]

    def at(self, k: int) -> PFDiagnostics:
        """The full diagnostics at iterate k."""
        return self.points[k]

    @property
    def loss_increases(self) -> np.ndarray:
        """(steps,) bool: E(θ_{k+1}) > E(θ_k)."""
        return np.diff(self.losses) > 0.0

    def summary(self) -> str:
        inc = self.loss_increases
        above = self.eigenvalues[:-1, 0] > 2.0 / self.h
        lines = [
            f"PF trace of GD, h = {self.h:g}, {len(self) - 1} steps: E {self.losses[0]:.6g} -> {self.losses[-1]:.6g}",
            f"  lambda_0 in [{self.eigenvalues[:, 0].min():.4g}, {self.eigenvalues[:, 0].max():.4g}] (2/h = {2.0 / self.h:.4g}); "
            f"{int(above.sum())} steps start with lambda_0 > 2/h",
            f"  {int(inc.sum())} steps increase the loss; {int((inc & above).sum())} of them start with lambda_0 > 2/h; "
            f"{int((inc & (self.stability_coefficients[:-1, 0].real > 0)).sum())} with Re sc_0 > 0",
        ]
        return "\n".join(lines)

    def plot(self, **kwargs):
        """Eigenvalue and stability-coefficient traces (:func:`bea.plot.stability_traces`)."""
        from bea.plot import stability_traces

        return stability_traces(self, **kwargs)


def diagnostics_along(E, params, theta0, h, steps) -> PFTrace:
    """Run GD (:func:`bea.flows.gd`) and compute :func:`diagnostics` at every iterate."""
    loss = cached_loss(E, params)
    thetas = gd(loss, loss.params, theta0, h, steps)
    h = float(h)
    pts = tuple(_diagnose(loss, th, h) for th in thetas)
    return PFTrace(
        h=h, thetas=thetas, losses=np.array([p.loss for p in pts]),
        eigenvalues=np.array([p.eigenvalues for p in pts]),
        stability_coefficients=np.array([p.stability_coefficients for p in pts]),
        g_dot_u0=np.array([p.g_dot_u0 for p in pts]), drift=np.array([p.drift for p in pts]),
        drift_normalized=np.array([p.drift_normalized for p in pts]),
        progress_ratio=np.array([p.progress_ratio for p in pts]), points=pts,
    )
