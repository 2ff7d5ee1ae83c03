r"""Drift-adjusted learning rates (DAL) of seed 002 (Rosca et al. 2023, Sect. 6–7), on any sympy loss.

One GD step drifts from the negative gradient flow by (h²/2)·H(θ′)g(θ′) (Thm 6.1); balancing this
drift against the step's signal h‖g‖ gives the drift-adjusted learning rate

    DAL      h = 2/‖Hĝ‖,   ĝ = g/‖g‖                                  (Eq. 18)
    DAL-p    h = 2/‖Hĝ‖^p                                              (Eq. 19)
    momentum v_t = m·v_{t−1} − (c/‖Hĝ‖^p)·g(θ_{t−1}),  θ_t = θ_{t−1} + v_t   (Eqs. 20–21; c = ½ in Eq. 21)
    per-parameter  h_j = c/r_j^p,  r_j = |(Hg)_j| / |g_j|

Per-parameter DAL: the seed (Sect. 7) proposes to "use the per parameter information provided by
Hg" without printing a formula (its details are in an appendix that is not part of the seed text).
We use the coordinate-wise version of the seed's signal-to-noise argument: the step of parameter j
moves it by h_j|g_j| while the drift moves it by (h_j²/2)|(Hg)_j|, and their ratio is 1 at
h_j = 2|g_j|/|(Hg)_j| = 2/r_j — on a diagonal quadratic r_j = λ_j, i.e. each coordinate gets the
step 2/λ_j, as global DAL gives 2/λ along an eigenvector.  A coordinate with g_j = 0 does not move.

Hessian-vector products: Hg is compiled once per loss as the symbolic Σ_j ∂²E/∂θ_i∂θ_j·∂E/∂θ_j
(the gradient of ½‖g‖²), so no Hessian matrix is formed at run time; the symbolic expression has
n² terms, which is fine for the losses bea handles symbolically (tens of parameters).

Non-finite cases are explicit: a step size that is infinite (‖Hĝ‖ = 0 with g ≠ 0, e.g. a loss that
is linear along g) is capped at ``max_lr`` (default: raise :class:`bea.IntegrationError` naming the
step); at g = 0 the iterate is stationary and the recorded rate is ``max_lr`` (inf by default).

Divergence is detected at the step it happens, never reported as something else: the run has
diverged at iterate k when g(θ_k), H(θ_k)g(θ_k), E(θ_k) or θ_k is not finite (overflow), or when
|E(θ_k)| exceeds ``blowup``·max(1, |E(θ_0)|) (default 1e10: DAL-0.5 on Himmelblau from 0 reaches
E ≈ 6e157 in 100 steps while every number stays finite, because the rate 2/‖Hĝ‖^½ underflows to 0
and freezes the iterate). ``on_failure="raise"`` (default) raises :class:`bea.IntegrationError`
with the step (``.t = k``) and the loss; ``"return"`` returns the rows up to iterate k (NaN after
it) with ``result.diverged_at = k`` and ``result.reason``.

Calling the module
    ``bea.flows.dal`` is this module, and calling it runs :func:`dal`: ``bea.dal(E, params, theta0,
    steps, p=0.5)`` is ``bea.flows.dal.dal(...)``, and ``from bea.flows.dal import dal_p`` still works.
"""

from __future__ import annotations

import inspect
import math
import sys
import types
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import sympy as sp

from bea._checks import check_steps, check_theta0
from bea.compile.codegen import compile_exprs
from bea.errors import IntegrationError, InvalidInputError
from bea.compile.loss import cached_loss

__all__ = ["DALResult", "dal", "dal_p", "dal_momentum", "dal_per_parameter", "dal_learning_rate", "hvp_kernel"]

_HG: dict = {}


def hvp_kernel(E, params=None):
    """The compiled kernel θ ↦ H(θ)g(θ) (shape (n,)) of a loss, built once per loss."""
    loss = cached_loss(E, params)
    key = (loss.expr, loss.params)
    k = _HG.get(key)
    if k is None:
        g = loss.grad_exprs
        exprs = [sp.Add(*[loss.hess_expr[i, j] * g[j] for j in range(loss.n)]) for i in range(loss.n)]
        k = _HG[key] = compile_exprs(exprs, loss.params, name="loss_hg")
    return k


@dataclass(frozen=True, eq=False)
class DALResult:
    """A DAL run.

    Attributes
    ----------
    method : "dal", "dal-p", "dal-momentum" or "dal-per-parameter"
    thetas : (steps+1, n) iterates;  losses : (steps+1,) E(θ_k)
    lrs : (steps,) learning rate used at step k (``(steps, n)`` for per-parameter DAL)
    drift_normalized : (steps,) ‖H(θ_k)ĝ(θ_k)‖ (NaN where g = 0)
    p, numerator, momentum : the settings
    diverged_at : None, or the first iterate k at which the run diverged (``on_failure="return"``;
        rows after k are NaN, row k holds what was reached)
    reason : None, or why the run counts as diverged at ``diverged_at``
    """

    method: str
    thetas: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray
    drift_normalized: np.ndarray
    p: float
    numerator: float
    momentum: float
    diverged_at: int | None = None
    reason: str | None = None

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (then :attr:`diverged_at` and :attr:`reason` say where and why)."""
        return self.diverged_at is not None

    def summary(self) -> str:
        k = len(self.thetas) - 1 if self.diverged_at is None else self.diverged_at
        lr = self.lrs[:k]
        with np.errstate(invalid="ignore"):
            span = f"[{np.nanmin(lr):.4g}, {np.nanmax(lr):.4g}]" if np.any(np.isfinite(lr)) else "-"
        head = (f"{self.method} (p = {self.p:g}, c = {self.numerator:g}, momentum = {self.momentum:g}), "
                f"{len(self.thetas) - 1} steps: E {self.losses[0]:.6g} -> {self.losses[k]:.6g}")
        if self.diverged:
            return f"{head} — DIVERGED at iterate {k}: {self.reason}; learning rate before it in {span}"
        return f"{head}; learning rate in {span}, final {np.ravel(lr[-1]) if lr.size else '-'}"

    def plot(self, **kwargs):
        """Loss and learning-rate traces (:func:`bea.plot.dal_traces`)."""
        from bea.plot import dal_traces

        return dal_traces(self, **kwargs)


def _check_real(name, value, *, positive=False, allow_inf=False):
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf) or (positive and v <= 0):
        raise InvalidInputError(f"{name} must be {'> 0' if positive else 'finite'}, got {value!r}")
    return v


def _norm(v) -> float:
    """‖v‖₂ without overflow for entries beyond 1e154 (BLAS nrm2 scales; numpy's dot does not)."""
    return float(scipy.linalg.norm(v, check_finite=False))


def dal_learning_rate(E, params, theta, *, p: float = 1.0, numerator: float = 2.0) -> float:
    """The DAL-p learning rate c/‖H(θ)ĝ(θ)‖^p at one point (c = 2: Eq. 18/19); inf where ‖Hĝ‖ = 0."""
    p = _check_real("p", p)
    c = _check_real("numerator", numerator, positive=True)
    loss = cached_loss(E, params)
    theta = check_theta0(theta, loss.n, name="theta")
    g = loss.grad(theta)
    gn = _norm(g)
    if gn == 0.0:
        return math.inf
    d = _norm(hvp_kernel(loss)(theta)) / gn
    return math.inf if d == 0.0 else c / d**p


def dal(
    E,
    params,
    theta0,
    steps: int,
    *,
    p: float = 1.0,
    numerator: float = 2.0,
    momentum: float = 0.0,
    per_parameter: bool = False,
    max_lr: float = math.inf,
    blowup: float = 1e10,
    on_failure: str = "raise",
) -> DALResult:
    r"""Gradient descent with a drift-adjusted learning rate (module docstring for the formulas).

    Parameters
    ----------
    E, params : sympy loss and parameters (or a :class:`~bea.compile.loss.CompiledLoss`)
    theta0 : (n,) finite start;  steps : number of updates ≥ 0
    p : power of ‖Hĝ‖ (1: DAL, Eq. 18; 0.5: the seed's recommended DAL-0.5, Eq. 19)
    numerator : c in c/‖Hĝ‖^p (2 in Eqs. 18–19)
    momentum : m in Eqs. 20–21 (0: plain DAL)
    per_parameter : h_j = c/r_j^p with r_j = |(Hg)_j|/|g_j| instead of one global rate
    max_lr : cap on the learning rate (inf: an infinite rate raises :class:`bea.IntegrationError`)
    blowup : the run has diverged once |E(θ_k)| > blowup·max(1, |E(θ_0)|) (inf: only overflow counts)
    on_failure : ``"raise"`` (default): divergence raises :class:`bea.IntegrationError` naming the
        step k (``.t = k``) and the loss; ``"return"``: the result with ``diverged_at = k``, its
        ``reason``, and NaN rows after iterate k

    Returns
    -------
    DALResult

    Raises
    ------
    InvalidInputError
        bad settings (p, numerator, momentum outside [0, 1), max_lr, blowup, on_failure, steps, θ0).
    IntegrationError
        an infinite learning rate along g ≠ 0 without ``max_lr``, or divergence (``on_failure="raise"``).
    """
    loss = cached_loss(E, params)
    theta = check_theta0(theta0, loss.n)
    steps = check_steps(steps)
    p = _check_real("p", p)
    c = _check_real("numerator", numerator, positive=True)
    m = _check_real("momentum", momentum)
    if not 0.0 <= m < 1.0:
        raise InvalidInputError(f"momentum must be in [0, 1), got {momentum!r}")
    cap = _check_real("max_lr", max_lr, positive=True, allow_inf=True)
    blowup = _check_real("blowup", blowup, positive=True, allow_inf=True)
    if on_failure not in ("raise", "return"):
        raise InvalidInputError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    grad, hg, value = loss.grad, hvp_kernel(loss), loss.value
    n = loss.n
    thetas = np.full((steps + 1, n), np.nan)
    thetas[0] = theta
    losses = np.full(steps + 1, np.nan)
    losses[0] = value(theta)
    if not math.isfinite(losses[0]):
        raise InvalidInputError(f"the loss is not finite at theta0 = {theta}: E = {losses[0]}")
    bound = blowup * max(1.0, abs(losses[0]))
    lrs = np.full((steps, n) if per_parameter else steps, np.nan)
    drift = np.full(steps, np.nan)
    v = np.zeros(n)
    failed = reason = None
    for k in range(steps):
        g = grad(theta)
        Hg = hg(theta)
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(Hg))):
            what = "the gradient" if not np.all(np.isfinite(g)) else "H g"
            failed, reason = k, f"{what} overflows at θ_{k} = {theta} (E = {losses[k]:.4g})"
            break
        gn = _norm(g)
        with np.errstate(over="ignore", invalid="ignore"):
            drift[k] = _norm(Hg) / gn if gn > 0.0 else math.nan
        if per_parameter:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.abs(Hg) / np.abs(g)
                lr = np.where(g == 0.0, cap, np.minimum(cap, c / r**p))
            bad = ~np.isfinite(lr) & (g != 0.0)
        else:
            if gn == 0.0:
                lr = cap
            else:
                d = drift[k]
                lr = min(cap, c / d**p) if d > 0.0 else cap
            bad = np.array([not math.isfinite(lr) and gn > 0.0])
        if np.any(bad):
            raise IntegrationError(
                f"DAL step {k}: the learning rate is infinite (H g = 0 along a nonzero gradient at θ = {theta}); "
                "pass max_lr to cap it",
                t=float(k),
            )
        with np.errstate(invalid="ignore", over="ignore"):
            step = np.where(g == 0.0, 0.0, lr * g)  # g = 0 with lr = inf would give NaN
        v = m * v - step
        theta = theta + v
        thetas[k + 1] = theta
        lrs[k] = lr
        if not np.all(np.isfinite(theta)):
            failed, reason = k + 1, f"iterate {k + 1} is not finite: {theta}"
            break
        losses[k + 1] = value(theta)
        if not abs(losses[k + 1]) <= bound:  # also NaN
            failed, reason = k + 1, (f"E(θ_{k + 1}) = {losses[k + 1]:.4g} left [-{bound:.3g}, {bound:.3g}] "
                                     f"(blowup = {blowup:g} × max(1, |E(θ_0)|))")
            break
    if failed is not None and on_failure == "raise":
        raise IntegrationError(
            f"DAL diverged at step {failed}: {reason}; a smaller numerator or another p may converge "
            "(on_failure='return' keeps the iterates)",
            t=float(failed),
        )
    if per_parameter:
        method = "dal-per-parameter"
    elif m > 0.0:
        method = "dal-momentum"
    else:
        method = "dal" if p == 1.0 else "dal-p"
    return DALResult(method=method, thetas=thetas, losses=losses, lrs=lrs, drift_normalized=drift,
                     p=p, numerator=c, momentum=m, diverged_at=failed, reason=reason)


def dal_p(E, params, theta0, steps: int, p: float = 0.5, **kwargs) -> DALResult:
    """DAL-p, h = 2/‖Hĝ‖^p (Eq. 19); p = 0.5 is the seed's recommendation (Remark 6.2)."""
    return dal(E, params, theta0, steps, p=p, **kwargs)


def dal_momentum(E, params, theta0, steps: int, m: float = 0.9, *, p: float = 1.0, numerator: float = 0.5, **kwargs) -> DALResult:
    """DAL with momentum, Eqs. 20–21: v_t = m v_{t−1} − g/(2‖Hĝ‖^p), θ_t = θ_{t−1} + v_t.

    The default ``numerator = 0.5`` is Eq. 21 as printed (1/(2‖Hĝ‖)); pass 2 for the rate of Eq. 18.
    """
    return dal(E, params, theta0, steps, p=p, numerator=numerator, momentum=m, **kwargs)


def dal_per_parameter(E, params, theta0, steps: int, **kwargs) -> DALResult:
    """Per-parameter DAL: h_j = c/(|(Hg)_j|/|g_j|)^p (see the module docstring for the definition)."""
    return dal(E, params, theta0, steps, per_parameter=True, **kwargs)


class _CallableModule(types.ModuleType):
    """``bea.dal`` (this module, :mod:`bea.flows.dal`) stays a module (``bea.dal.dal_p``, ``import bea.dal``)
    and calling it runs :func:`dal`: one name for what users type first."""

    def __call__(self, *args, **kwargs) -> DALResult:
        return dal(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
sys.modules[__name__].__signature__ = inspect.signature(dal)
