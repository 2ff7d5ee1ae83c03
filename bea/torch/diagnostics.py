r"""Principal-flow quantities on tensors, and per-iteration PF diagnostics of network training.

α on tensors
    :func:`alpha` is :func:`bea.flows.diagnostics.alpha` for torch tensors — α(z) = log(1 − z)/z with the
    principal branch (+iπ for real z > 1), α(1) = −inf, the Taylor series −Σ z^p/(p+1) for |z| < 0.1
    (the coefficients and radius are those of :mod:`bea.flows.diagnostics`), a cancellation-free log1p form
    for |z| < 0.5.  :func:`flow_alpha` is :func:`bea.flows.diagnostics.flow_alpha`: the same on the real axis
    but |1 − z| floored at :data:`bea.flows.diagnostics.ONE_STEP_FLOOR` (hλ = 1 gives a finite rate) and the
    branch cut moved to z = 1 + is, s > 0; it is what the flows integrate.

Diagnostics (seed 002, Sect. 5–6; the numpy counterpart is :func:`bea.flows.diagnostics.diagnostics`)
    At a GD iterate θ with step h, from the top-k Hessian eigenpairs (Lanczos) and one Hessian-vector
    product: λ_0 against 2/h; the stability coefficients sc_i = α(hλ_i)·gᵀu_i (Def. 3.4) with the
    seed's sign convention gᵀu_i ≥ 0 (so sign Re sc_i = sign Re α(hλ_i)); the drift ‖Hg‖ and ‖Hĝ‖
    (Thm 6.1, Eq. 18 — DAL takes h = 2/‖Hĝ‖); the relative progress ratio
    (E(θ − hg) − E(θ))/(h‖g‖²) (Ahn et al. 2022; ≈ −1 + (h/2)ĝᵀHĝ, > 0 when the step increases the loss).
    Cost per call: one recorded gradient, ~10–40 products for Lanczos (fewer when warm-started from
    the previous iterate's eigenvectors, as :class:`PFLogger` does), one loss evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bea._checks import check_step as _check_h
from bea.flows.alpha import CLASSES, ONE_STEP_FLOOR, SERIES_COEFFICIENTS, SERIES_RADIUS, classify, pf_rates
from bea.errors import InvalidInputError
from bea.flows.diagnostics import PFQuantities

__all__ = [
    "alpha",
    "flow_alpha",
    "stability_coefficients",
    "PFDiagnostics",
    "diagnostics",
    "PFLogger",
    "PFTrace",
    "diagnostics_along",
    "CLASSES",
]

# the series coefficients 1/(p+1), p = 0..15, shared with the numpy α (bea.flows.alpha)
_SERIES_COEFFS = tuple(float(c) for c in SERIES_COEFFICIENTS)
_LOG1P_RADIUS = 0.5
# ONE_STEP_FLOOR: the |1 − z| floor of the flows (bea.flows.alpha: machine ε, α(1) = log ε ≈ −36.04)


def _as_tensor(z):
    if isinstance(z, torch.Tensor):
        return z
    return torch.as_tensor(np.asarray(z))


def _series(z):
    acc = torch.full_like(z, _SERIES_COEFFS[-1])
    for c in _SERIES_COEFFS[-2::-1]:
        acc = acc * z + c
    return -acc


def _complex_log1m(z, *, flow: bool):
    """log(1 − z) for complex tensors: log1p form for |z| < 0.5, principal (or flow) branch otherwise."""
    a, b = -z.real, -z.imag  # 1 − z = (1 + a) + ib
    small = z.abs() < _LOG1P_RADIUS
    mod_small = 0.5 * torch.log1p(a * (2.0 + a) + b * b)
    one_re, one_im = 1.0 + a, b
    mod = torch.hypot(one_re, one_im)
    if flow:
        mod = torch.clamp(mod, min=ONE_STEP_FLOOR)
    arg = torch.atan2(one_im, one_re)
    if flow:
        arg = torch.where(arg <= -0.5 * math.pi, arg + 2.0 * math.pi, arg)
    re = torch.where(small, mod_small, torch.log(mod))
    return torch.complex(re, arg)


def _alpha(z, *, complex_output: bool, flow: bool):
    z = _as_tensor(z)
    if not (z.is_floating_point() or z.is_complex()):
        z = z.to(torch.float64)
    small = z.abs() < SERIES_RADIUS
    inf = torch.isinf(z.real) | (torch.isinf(z.imag) if z.is_complex() else torch.zeros_like(small))
    safe_z = torch.where(small | inf, torch.ones_like(z), z)
    if z.is_complex():
        out = _complex_log1m(safe_z, flow=flow) / safe_z
        out = torch.where(small, _series(z), out)
        out = torch.where(inf, torch.zeros_like(out), out)
        if not flow:
            one = z == 1.0
            out = torch.where(one, torch.full_like(out, complex(-math.inf, 0.0)), out)
        return out
    above = z > 1.0
    # real part: log|1 − z|; log1p keeps the accuracy for z < 1
    absd = torch.where(above, safe_z - 1.0, torch.ones_like(z))
    if flow:
        absd = torch.clamp(absd, min=ONE_STEP_FLOOR)
        below_arg = torch.clamp(-safe_z, min=ONE_STEP_FLOOR - 1.0)
    else:
        below_arg = -safe_z
    re = torch.where(above, torch.log(absd), torch.log1p(torch.where(above, torch.zeros_like(z), below_arg))) / safe_z
    re = torch.where(small, _series(z), re)
    re = torch.where(inf, torch.zeros_like(re), re)
    if not flow:
        re = torch.where(z == 1.0, torch.full_like(re, -math.inf), re)
    cplx = complex_output or flow or bool(above.any())
    if not cplx:
        return re
    im = torch.where(above & ~inf, math.pi / safe_z, torch.zeros_like(z))
    return torch.complex(re, im)


def alpha(z, *, complex_output: bool = False) -> torch.Tensor:
    r"""α(z) = log(1 − z)/z = −Σ_{p≥0} z^p/(p+1) on a tensor (seed 002, Def. 3.2); as :func:`bea.flows.diagnostics.alpha`.

    Real z: a real tensor when every z ≤ 1, complex (Im α = π/z for z > 1) when some z > 1 or with
    ``complex_output``; α(1) = −inf, α(0) = −1 (series for |z| < 0.1), α(±inf) = 0.  Complex z: the
    principal branch.  Device and precision of ``z`` are kept (float32 → complex64).
    """
    return _alpha(z, complex_output=complex_output, flow=False)


def flow_alpha(z) -> torch.Tensor:
    r"""α as integrated by the flows (:func:`bea.flows.diagnostics.flow_alpha`), always complex.

    |1 − z| floored at ε (α(1) = log ε ≈ −36.04, finite) and arg(1 − z) ∈ (−π/2, 3π/2]: equal to
    :func:`alpha` on the real axis away from z = 1.
    """
    return _alpha(z, complex_output=True, flow=True)


def stability_coefficients(lams, g_dot_u, h: float) -> torch.Tensor:
    r"""sc_i = α(hλ_i)·gᵀu_i (Def. 3.4), complex; 0 where gᵀu_i = 0 (no −inf·0 = NaN at hλ = 1)."""
    lams = _as_tensor(lams)
    g_dot_u = _as_tensor(g_dot_u).to(lams.dtype)
    a = alpha(h * lams, complex_output=True)
    re = torch.where(g_dot_u == 0.0, torch.zeros_like(g_dot_u), a.real * g_dot_u)
    return torch.complex(re, a.imag * g_dot_u)


@dataclass(frozen=True, eq=False)
class PFDiagnostics(PFQuantities):
    r"""PF diagnostics at one iterate from the top-k eigenpairs (torch counterpart of
    :class:`bea.flows.diagnostics.PFDiagnostics`; same field names, k directions instead of all n).

    Attributes
    ----------
    h : GD step size;  loss : E(θ);  grad_norm : ‖g‖
    eigenvalues : (k,) the k largest Hessian eigenvalues, decreasing (λ_0 first), float64 numpy
    eigenvectors : (n, k) tensor on θ's device (signs with gᵀu_i ≥ 0), or None
    g_dot_u : (k,) gᵀu_i ≥ 0;  rates : (k,) log(1 − hλ_i)/h (complex)
    stability_coefficients : (k,) sc_i = α(hλ_i) gᵀu_i (complex)
    drift : ‖Hg‖;  drift_normalized : ‖Hĝ‖ (NaN at g = 0)
    progress_ratio : (E(θ − hg) − E(θ))/(h‖g‖²) (NaN at g = 0)
    classes : (k,) :func:`bea.flows.diagnostics.classify` of hλ_i
    lambda_min : the smallest eigenvalue when requested (``smallest=True``), else NaN
    n_hvp : Hessian-vector products spent
    """

    h: float
    loss: float
    grad_norm: float
    eigenvalues: np.ndarray
    eigenvectors: torch.Tensor | None
    g_dot_u: np.ndarray
    rates: np.ndarray
    stability_coefficients: np.ndarray
    drift: float
    drift_normalized: float
    progress_ratio: float
    classes: np.ndarray
    lambda_min: float
    n_hvp: int

    def summary(self) -> str:
        lines = self._summary_lines()
        if np.isfinite(self.lambda_min):
            lines.append(f"  lambda_min = {self.lambda_min:.4g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"PFDiagnostics(h={self.h:g}, loss={self.loss:.6g}, lambda_max={self.lambda_max:.6g}, "
            f"sc0={self.sc0:.4g}, drift={self.drift:.4g})"
        )


def diagnostics(
    f,
    theta: torch.Tensor,
    h: float,
    k: int = 1,
    *,
    smallest: bool = False,
    tol: float = 1e-4,
    max_iter: int | None = None,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    vectors: bool = True,
) -> PFDiagnostics:
    r"""PF diagnostics of GD with step h at θ from the k leading Hessian eigenpairs (see module docstring).

    ``smallest=True`` also estimates λ_min (Lanczos at both ends).  ``v0`` warm-starts Lanczos (e.g.
    the previous iterate's u_0).  ``tol`` is Lanczos' relative residual tolerance (1e-4 is plenty
    for logging).
    """
    from bea.torch.linalg import hvp_operator, lanczos_operator
    from bea.torch.loss import check_theta

    theta = check_theta(theta, "theta")
    h = _check_h(h)
    op = hvp_operator(f, theta)
    g = op.grad
    loss = float(op.value)
    gnorm = float(torch.linalg.vector_norm(g))
    spec = lanczos_operator(
        lambda v: op(v.to(theta.dtype)), theta.numel(), k, "both" if smallest else "largest",
        device=theta.device, dtype=torch.float64, max_iter=max_iter, tol=tol, seed=seed, v0=v0, vectors=True,
    )
    kk = min(k, spec.values.numel())
    lam = spec.values[:kk]
    U = spec.vectors[:, :kk]
    gu = g.to(U.dtype) @ U
    sign = torch.where(gu < 0, -torch.ones_like(gu), torch.ones_like(gu))
    U = U * sign
    gu = gu * sign
    Hg = op(g)
    drift = float(torch.linalg.vector_norm(Hg))
    if gnorm > 0:
        with torch.no_grad():
            e1 = float(f(theta - h * g))
        progress = (e1 - loss) / (h * gnorm**2)
        drift_n = drift / gnorm
    else:
        progress = drift_n = math.nan
    lam_np = lam.detach().cpu().numpy().astype(np.float64)
    gu_np = gu.detach().cpu().numpy().astype(np.float64)
    sc = stability_coefficients(torch.as_tensor(lam_np), torch.as_tensor(gu_np), h).numpy()
    lam_min = float(spec.values[-1]) if smallest else math.nan
    return PFDiagnostics(
        h=h, loss=loss, grad_norm=gnorm, eigenvalues=lam_np, eigenvectors=U.to(theta.dtype) if vectors else None,
        g_dot_u=gu_np, rates=pf_rates(lam_np, h), stability_coefficients=sc, drift=drift,
        drift_normalized=drift_n, progress_ratio=float(progress), classes=np.atleast_1d(classify(lam_np, h)),
        lambda_min=lam_min, n_hvp=op.count,
    )


@dataclass(frozen=True, eq=False)
class PFTrace:
    """Diagnostics logged along a run, as numpy arrays over the logged iterations.

    steps : (m,) iteration numbers;  losses, lambda_max, lambda_min, drift, drift_normalized,
    progress_ratio, grad_norm, lr : (m,);  eigenvalues, g_dot_u : (m, k);  stability_coefficients :
    (m, k) complex;  h : the (last) step size.
    """

    h: float
    steps: np.ndarray
    losses: np.ndarray
    eigenvalues: np.ndarray
    g_dot_u: np.ndarray
    stability_coefficients: np.ndarray
    lambda_min: np.ndarray
    drift: np.ndarray
    drift_normalized: np.ndarray
    progress_ratio: np.ndarray
    grad_norm: np.ndarray
    lr: np.ndarray

    @property
    def lambda_max(self) -> np.ndarray:
        return self.eigenvalues[:, 0]

    def __len__(self) -> int:
        return self.steps.shape[0]

    def summary(self) -> str:
        two_over_h = 2.0 / self.lr
        above = self.lambda_max >= two_over_h
        inc = np.diff(self.losses) > 0
        return "\n".join(
            [
                f"PF trace: {len(self)} logged iterations, E {self.losses[0]:.6g} -> {self.losses[-1]:.6g}",
                f"  lambda_0 in [{self.lambda_max.min():.4g}, {self.lambda_max.max():.4g}], 2/h at the end = {two_over_h[-1]:.4g}; "
                f"{int(above.sum())} logged iterates with lambda_0 >= 2/h",
                f"  {int(inc.sum())} logged loss increases, {int((inc & (self.stability_coefficients[:-1, 0].real > 0)).sum())} "
                "of them from an iterate with Re sc_0 > 0",
            ]
        )

    def plot(self, **kwargs):
        """Eigenvalues against 1/h and 2/h, sc_0 and the loss over the logged iterations
        (:func:`bea.plot.stability_traces`, the figure of the numpy trace)."""
        from bea.plot import stability_traces

        return stability_traces(self, **kwargs)


class PFLogger:
    r"""Per-iteration PF diagnostics during training, cheap enough to call every step.

    ``logger(f, theta, step, h)`` computes :func:`diagnostics` with Lanczos warm-started from the
    previous iterate's leading eigenvectors (typically a handful of products once λ_0 settles) and
    appends to the history; ``logger.trace()`` returns a :class:`PFTrace`.  ``every`` logs every
    n-th call only.
    """

    def __init__(self, k: int = 1, *, every: int = 1, smallest: bool = False, tol: float = 1e-4, seed: int = 0):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InvalidInputError(f"every must be a positive integer, got {every!r}")
        self.k, self.every, self.smallest, self.tol, self.seed = k, every, smallest, tol, seed
        self._rows: list = []
        self._v0 = None
        self.n_hvp = 0

    def __call__(self, f, theta: torch.Tensor, step: int, h: float):
        if step % self.every:
            return None
        v0 = None
        if self._v0 is not None:
            # previous eigenvectors plus a little noise, so no direction is missed entirely
            gen = torch.Generator(device="cpu").manual_seed(self.seed + step)
            noise = torch.randn(self._v0.numel(), generator=gen, dtype=torch.float64).to(self._v0.device)
            v0 = self._v0.to(torch.float64) + 1e-3 * torch.linalg.vector_norm(self._v0) / math.sqrt(noise.numel()) * noise
        d = diagnostics(f, theta, h, self.k, smallest=self.smallest, tol=self.tol, v0=v0, seed=self.seed)
        self._v0 = d.eigenvectors.sum(dim=1) if d.eigenvectors is not None else None
        self.n_hvp += d.n_hvp
        self._rows.append((step, h, d))
        return d

    def trace(self) -> PFTrace:
        if not self._rows:
            raise InvalidInputError("nothing was logged yet")
        ds = [r[2] for r in self._rows]
        kk = min(d.eigenvalues.size for d in ds)

        def arr(fn, dtype=np.float64):
            return np.array([fn(d) for d in ds], dtype=dtype)

        return PFTrace(
            h=float(self._rows[-1][1]), steps=np.array([r[0] for r in self._rows]), losses=arr(lambda d: d.loss),
            eigenvalues=np.array([d.eigenvalues[:kk] for d in ds]), g_dot_u=np.array([d.g_dot_u[:kk] for d in ds]),
            stability_coefficients=np.array([d.stability_coefficients[:kk] for d in ds]),
            lambda_min=arr(lambda d: d.lambda_min), drift=arr(lambda d: d.drift),
            drift_normalized=arr(lambda d: d.drift_normalized), progress_ratio=arr(lambda d: d.progress_ratio),
            grad_norm=arr(lambda d: d.grad_norm), lr=np.array([r[1] for r in self._rows], dtype=np.float64),
        )


def diagnostics_along(
    f, theta0: torch.Tensor, h: float, steps: int, k: int = 1, *, every: int = 1, smallest: bool = False,
    progress: bool | None = None, tol: float = 1e-4,
):
    r"""Run GD θ_{k+1} = θ_k − h∇f(θ_k) and log :func:`diagnostics` every ``every`` iterations.

    Returns ``(thetas_last, trace)``: the final iterate and a :class:`PFTrace`.  ``progress`` shows a
    tqdm bar (default: when steps ≥ 200).  Raises :class:`bea.IntegrationError` naming the step when
    the loss becomes non-finite.
    """
    from bea.errors import IntegrationError
    from bea.torch.linalg import value_and_grad
    from bea.torch.loss import check_theta

    theta = check_theta(theta0)
    h = _check_h(h)
    logger = PFLogger(k, every=every, smallest=smallest, tol=tol)
    it = range(steps + 1)
    if progress if progress is not None else steps >= 200:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="GD + PF diagnostics", leave=False)
    for step in it:
        d = logger(f, theta, step, h)
        if step == steps:
            break
        value, g = value_and_grad(f, theta)
        if d is not None and not math.isfinite(d.loss) or not bool(torch.isfinite(value)):
            err = IntegrationError(f"gradient descent diverged: the loss is not finite at step {step} (t = {step * h!r})", t=step * h)
            err.step = step
            raise err
        theta = theta - h * g
    return theta, logger.trace()
