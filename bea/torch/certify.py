r"""GD against gradient flow on a network: the Elkabetz–Cohen bound in floating-point mode.

:func:`certify` returns the same :class:`bea.certificates.certify.Certificate` as the numpy path and runs the
*same* bound recursions (:func:`bea.certificates.tube.discrete_bound`, shared with :func:`bea.certificates.certify.certify`;
seed 000, Thm 1 in its computable form)::

    e_0 = 0,   e_{k+1} = ρ_k(e_k)·e_k + ℓ_k + ε_k,
    ρ_k(e) = max(|1 − h(λ_min,k − M_k e/2)|, |1 − h(λ_max,k + M_k e/2)|),

and, re-centred (:mod:`bea.certificates.tube`), the remainder w_k = (θ_k − y_k) − D_k around the first-order
propagation of the local errors along the flow, D_{k+1} = (I − hH(ŷ_k))D_k + δ̃_k (one
Hessian-vector product per step, δ̃_k = Φ(ŷ_k) − ŷ_{k+1})::

    W_{k+1} = max(|1 − hλ_min,k|, |1 − hλ_max,k|)·W_k + (h/2)·M_k·e_k² + ε_k + (rounding),
    e_{k+1} = min(ρ_k(e_k)e_k + ℓ_k + ε_k, ‖D_{k+1}‖ + W_{k+1})

(the mean-value form Φ(θ) − Φ(y) = (I − hH(y))d − h∫₀¹(1 − s)T(y + sd)[d, d]ds, d = θ − y; the
second term is at most (h/2)M‖d‖² where M bounds ‖∇³f‖ on the segment). The tube follows the bound:
M_k is estimated in a neighbourhood of the segment [ŷ_k, ŷ_k + D_k] of radius r_k ≥ W_k, chosen at
every step (:class:`bea.certificates.tube.Tube`), so there is no radius to guess and nothing to collapse. What
differs from the numpy path is where the ingredients come from — a network is not a sympy
expression, so nothing here is enclosed in ball arithmetic:

* the flow y_k = θ(kh): the tableau-driven integrator (:func:`bea.torch.solve`, ``"ngf"`` field)
  landing on every t_k; its error (``distance_error``) is estimated from the sum of its embedded
  local error estimates (``error_estimate="local"``, free) or, as the numpy float mode, by the
  distance to a 100× looser run (``"loose"``);
* λ_min,k, λ_max,k: Lanczos at y_k (both ends, warm-started along the trajectory), widened by the
  Ritz residuals; with ``spectrum_every = s > 1`` only every s-th point is decomposed and the others
  get Weyl's bound λ(y_k) ∈ λ(y_j) ± M‖y_k − y_j‖ from the nearest decomposed neighbours (‖y_k − y_j‖
  ≤ the arc length of the integrated flow between them);
* ℓ_k: GD's local error against the flow, taken a posteriori from the computed flow points ŷ_k:
  ℓ_k = ‖Φ(ŷ_k) − ŷ_{k+1}‖ (Φ(y) = y − h∇f(y); ∇f(ŷ_k) is the integrator's own first stage, so this
  costs nothing).  The recursion then bounds ‖θ_k − ŷ_k‖, and the reported bound is e_k plus the
  flow's error estimate at k (‖ŷ_k − θ(kh)‖).  ``local_error`` reports a_k = 2ℓ_k/h², the sup‖H∇f‖
  this local error corresponds to; with ``local_error="hvp"`` it reports instead the a priori
  a_k = max(‖H∇f‖(y_k), ‖H∇f‖(y_{k+1})) + (h/2)(M‖g‖² + λ²‖g‖) (one HVP per point);
* M_k: ‖∇³f‖ estimated by a few steps of the symmetric tensor power iteration u ← T(u,u)/‖T(u,u)‖
  (T(u,u) by three reverse passes, :func:`bea.torch.tgg`) from u = ∇f, u_0 (top Hessian eigenvector)
  and a random direction, at ``M_samples`` points of the flow and at the GD-side ends ŷ_j + D_j of
  their segments — for a tube of radius r also at the points displaced by ±r from them (radii
  rounded up to powers of 8, each estimated once) — times ``M_safety`` (2), the larger of the two
  neighbouring samples;
* ε_k = 2u(‖θ_k‖ + ‖θ_{k+1} − θ_k‖) for the rounding of the update (u the unit roundoff of the
  dtype).  Rounding inside the gradient itself is not covered: certify in float64.

Cost: GD (one gradient per step) + the flow (≥ one integrator step per GD step: 6 gradients with
dopri5, 12 with dop853) + one HVP per step (D) + one Lanczos run per decomposed point + 2 × 16 × ~20
T(u,u) products per tube radius.  For a network, ``spectrum_every`` is the knob (see
``benchmarks/bench_torch.py``).

**This is floating-point mode: every ingredient is an estimate, not an enclosure, and the result
is not a proof.**  ``rigorous=True`` exists only for sympy losses (:func:`bea.certificates.certify.certify`,
ball arithmetic over boxes); here it raises.

Modified flows (``flow=``, issue #14)
-------------------------------------
With ``flow="igr"``, ``"third"`` or ``"pf"`` the reference points ŷ_k are those of that flow (the
fields of :mod:`bea.torch.flows`: HVPs, T(g, g), Lanczos or dense eigen-decompositions for the PF,
whose complex state is real while h·λ_max < 1 — otherwise InvalidInputError) and everything above
is unchanged except that ∇f(ŷ_k) for the a-posteriori local error Φ(ŷ_k) − ŷ_{k+1} costs one extra
gradient per GD step (the integrator's first stage is the modified field, not −∇f). The local error
is then O(h^{n+2}) for the order-n flow (O(h³) for the PF), so the bound at a fixed time is
O(h^{n+1}). The order-n BEA flow for n > 2 needs a sympy loss (:func:`bea.certificates.certify.certify`).

Piecewise-linear activations (ReLU, LeakyReLU)
----------------------------------------------
The Hessian of a ReLU network jumps where a pre-activation changes sign; autodiff's T only sees the
smooth pieces. The recursion needs the loss smooth on the segment between GD and the flow, i.e. in
the ball of radius ρ_k = ‖D_k‖ + r_k + (flow error) around ŷ_k. For a :func:`bea.torch.flat_loss`
of an ``nn.Sequential`` of ``Linear`` layers and elementwise activations this is checked at every
step (:class:`ActivationMargins`): for a parameter change ‖δ‖ ≤ ρ, with a_l the activations at ŷ_k
and Δ_l ≥ ‖δa_l‖ (activations 1-Lipschitz),

    |δz_l,j| ≤ ρ(‖a_{l−1}‖ + Δ_{l−1} + 1) + ‖W_l,j·‖Δ_{l−1},    Δ_l = ρ(‖a_{l−1}‖ + Δ_{l−1} + 1) + ‖W_l‖₂Δ_{l−1}

per sample (δW, δb parts of δ, each ≤ ρ; Δ_0 = 0). When every pre-activation feeding a ReLU has
|z_l,j| above this bound, no unit changes sign in the ball, the loss is smooth there and the
certificate means what it says. Where the margin test fails, or the architecture cannot be checked,
``certified`` is False and the reason says which step and by how much; a plain callable ``f`` is not
inspected (``info["smoothness"]`` says so).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch.func import grad as _func_grad

from bea._checks import check_step as _check_h
from bea._checks import check_steps as _check_steps
from bea.certificates.certify import Certificate, certificate_from
from bea.errors import InvalidInputError, UnknownMethodError
from bea.torch.flows import check_function, check_k, complex_dtype, gd_run, make_field
from bea.torch.integrate import solve
from bea.torch.linalg import hvp, hvp_operator, lanczos_operator, tgg
from bea.torch.loss import FlatLoss, check_theta
from bea.certificates.tube import Recentred, StepBounds, Tube, TubeData, discrete_bound

__all__ = ["certify", "estimate_hessian_lipschitz", "ActivationMargins", "activation_margins", "TORCH_CERTIFIED_FLOWS"]

TORCH_CERTIFIED_FLOWS = ("ngf", "igr", "third", "pf")  # flows bea.torch.certify compares GD with

_RADIUS_GRID = 8.0  # M is estimated at radii rounded up to powers of this factor (each once)


def _t_norm_estimate(f, x, starts, iters):
    """max over starts and iterates of ‖T(u,u)‖, ‖u‖ = 1 (a lower estimate of ‖∇³f(x)‖₂)."""
    best = 0.0
    for u in starts:
        nrm = torch.linalg.vector_norm(u)
        if not bool(torch.isfinite(nrm)) or float(nrm) == 0.0:
            continue
        u = u / nrm
        for _ in range(iters):
            w = tgg(f, x, u)
            wn = float(torch.linalg.vector_norm(w))
            if not math.isfinite(wn):
                return math.inf
            best = max(best, wn)
            if wn == 0.0:
                break
            u = w / wn
    return best


def estimate_hessian_lipschitz(f, points, *, radius: float = 0.0, directions=None, iters: int = 3, seed: int = 0):
    r"""Estimate ‖∇³f‖ (the Hessian's Lipschitz constant) at each point and, for ``radius > 0``, at the
    points displaced by ±``radius`` along ``directions[i]`` (e.g. the top Hessian eigenvector) and a
    random unit direction.

    Tensor power iteration from u = ∇f, ``directions[i]`` and a random vector (``iters`` steps each;
    at the displaced points two steps from the displacement direction).  Returns a numpy array, one value per point —
    a floating-point estimate (a lower estimate of ‖T‖₂ at the points it sees), not a bound.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for i, x in enumerate(points):
        n = x.numel()
        rnd = torch.randn(n, generator=gen, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
        d = None if directions is None else directions[i]
        g = torch.func.grad(f)(x)
        val = _t_norm_estimate(f, x, [g, rnd] + ([d] if d is not None else []), iters)
        if radius > 0.0:
            for w in [rnd] + ([d] if d is not None else []):
                w = w / torch.linalg.vector_norm(w)
                for sgn in (1.0, -1.0):
                    xs = x + sgn * radius * w
                    val = max(val, _t_norm_estimate(f, xs, [w], 2))
        out.append(val)
    return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# piecewise-linear activations: is the loss smooth in a ball?
# --------------------------------------------------------------------------------------------------

_KINKED = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.ReLU6, torch.nn.Hardtanh, torch.nn.PReLU)
_SMOOTH_1LIP = (torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.Softplus, torch.nn.Identity, torch.nn.SiLU,
                torch.nn.ELU, torch.nn.GELU)


def _lipschitz_of(mod) -> float:
    """A Lipschitz constant of an elementwise activation module."""
    if isinstance(mod, torch.nn.LeakyReLU):
        return max(1.0, abs(float(mod.negative_slope)))
    if isinstance(mod, (torch.nn.SiLU,)):
        return 1.1  # sup |d/dx x·σ(x)| = 1.0998
    if isinstance(mod, torch.nn.GELU):
        return 1.13  # sup |d/dx x·Φ(x)| = 1.1289
    if isinstance(mod, torch.nn.ELU):
        return max(1.0, float(mod.alpha))
    if isinstance(mod, torch.nn.Sigmoid):
        return 0.25
    return 1.0


class ActivationMargins:
    r"""Pre-activation margins of an MLP at one parameter point, to test that no piecewise-linear unit
    changes sign within a distance ρ in parameter space (module docstring).

    Per layer l that feeds a kinked activation: ``margin[l]`` (per sample) min_j |z_l,j|, ``wrow[l]``
    max_j ‖W_l,j·‖; for every layer, ``anorm[l]`` (per sample) ‖a_{l−1}‖, ``wnorm[l]`` ‖W_l‖₂ and the
    Lipschitz constant of the activation after it.
    """

    def __init__(self, layers):
        self.layers = layers  # (anorm, wnorm, lip_after, margin or None, wrow)

    def holds(self, rho: float) -> tuple[bool, float, float]:
        """(ok, smallest margin, its bound ρ-part) for a parameter change of norm ≤ rho."""
        delta = None  # Δ_{l−1} per sample
        worst = (math.inf, 0.0)
        for anorm, wnorm, lip, margin, wrow in self.layers:
            d_prev = np.zeros_like(anorm) if delta is None else delta
            change = rho * (anorm + d_prev + 1.0)
            if margin is not None:
                need = change + wrow * d_prev
                slack = margin - need
                i = int(np.argmin(slack))
                if slack[i] < worst[0] - worst[1] or not math.isfinite(worst[0]):
                    worst = (float(margin[i]), float(need[i]))
                if not np.all(margin > need):
                    return False, float(margin[i]), float(need[i])
            delta = lip * (change + wnorm * d_prev)
        return True, worst[0], worst[1]


class ArchitectureNotCheckable(Exception):
    """The network's structure is not one :func:`activation_margins` can read."""


def _modules(model):
    if isinstance(model, torch.nn.Sequential):
        for name, mod in model.named_children():
            if isinstance(mod, torch.nn.Sequential):
                for sub, m in _modules(mod):
                    yield f"{name}.{sub}", m
            else:
                yield name, mod
    else:
        raise ArchitectureNotCheckable(f"{type(model).__name__} is not an nn.Sequential")


def has_kinks(f) -> bool:
    """Whether ``f`` is a FlatLoss of a model with piecewise-linear (kinked) activation modules."""
    return isinstance(f, FlatLoss) and any(isinstance(m, _KINKED) for m in f.model.modules())


def activation_margins(f: FlatLoss, theta: torch.Tensor) -> ActivationMargins:
    """The :class:`ActivationMargins` of an ``nn.Sequential`` MLP (``Linear``, ``Flatten`` and
    elementwise activations) at θ, from one forward pass on ``f.inputs``."""
    if not isinstance(f.inputs, torch.Tensor):
        raise ArchitectureNotCheckable("the model takes several inputs")
    params = f.unflatten(theta.detach())
    mods = list(_modules(f.model))
    a = f.inputs.reshape(f.inputs.shape[0], -1) if f.inputs.ndim > 1 else f.inputs.reshape(-1, 1)
    a = a.to(theta.dtype)
    layers = []
    pending = None  # (anorm, wnorm, z, wrownorm) of the last Linear layer
    with torch.no_grad():
        for name, mod in mods:
            if isinstance(mod, torch.nn.Linear):
                if pending is not None:  # two Linear layers in a row: identity activation between them
                    layers.append(pending[:2] + (1.0, None, 0.0))
                W = params.get(f"{name}.weight", mod.weight.to(theta.dtype))
                b = params.get(f"{name}.bias", None if mod.bias is None else mod.bias.to(theta.dtype))
                z = a @ W.T + (0.0 if b is None else b)
                anorm = torch.linalg.vector_norm(a, dim=1).cpu().numpy()
                wnorm = float(torch.linalg.matrix_norm(W, ord=2))
                wrow = float(torch.linalg.vector_norm(W, dim=1).max())
                pending = (anorm, wnorm, z, wrow)
                a = z
            elif isinstance(mod, torch.nn.Flatten):
                a = a.reshape(a.shape[0], -1)
            elif isinstance(mod, _KINKED + _SMOOTH_1LIP):
                if pending is None:
                    raise ArchitectureNotCheckable(f"activation {name} before any Linear layer")
                kink = isinstance(mod, _KINKED)
                margin = torch.abs(pending[2]).amin(dim=1).cpu().numpy() if kink else None
                layers.append((pending[0], pending[1], _lipschitz_of(mod), margin, pending[3] if kink else 0.0))
                pending = None
                a = mod(a)
            else:
                raise ArchitectureNotCheckable(f"module {name} ({type(mod).__name__}) is not a Linear layer or an elementwise activation")
    return ActivationMargins(layers)


# --------------------------------------------------------------------------------------------------
# the certificate
# --------------------------------------------------------------------------------------------------


def certify(
    f,
    theta0: torch.Tensor,
    h: float,
    steps: int,
    *,
    mode: str = "discrete",
    rigorous: bool = False,
    tube_radius: float | None = None,
    method: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    spectrum_every: int = 1,
    lanczos_tol: float = 1e-3,
    lanczos_max_iter: int | None = 80,
    M: float | None = None,
    M_samples: int = 16,
    M_iters: int = 3,
    M_safety: float = 2.0,
    error_estimate: str = "local",
    local_error: str = "aposteriori",
    progress: bool | None = None,
    seed: int = 0,
    flow: str = "ngf",
    k: int | None = None,
) -> Certificate:
    r"""Bound ‖θ_k − θ(kh)‖ for GD with step h against gradient flow, for a torch loss (float mode).

    Parameters
    ----------
    f, theta0 : the loss ``f(θ) -> scalar`` (e.g. :func:`bea.torch.flat_loss`) and the common start
    h, steps : GD step size (> 0) and number of steps (≥ 0)
    mode : ``"discrete"`` (the ρ_k recursion of :mod:`bea.certificates.certify`; the only mode here)
    rigorous : must be False — rigorous certificates need a sympy loss (:func:`bea.certificates.certify.certify`)
    tube_radius : r; None lets the tube follow the bound (module docstring)
    method, rtol, atol : integration of the flow (defaults of :func:`bea.torch.trajectory`)
    spectrum_every : Lanczos at every s-th flow point (Weyl + M in between); 1 = every point
    lanczos_tol, lanczos_max_iter : Lanczos controls: relative residual (the eigenvalue bounds are
        widened by the residual, so a loose tolerance costs bound, not validity: 1e-3·λ_max·h per
        step in ρ) and Krylov dimension
    M : a known Hessian-Lipschitz constant (skips the estimate); ``M_samples`` points of the flow are
        sampled for the estimate, ``M_iters`` power iterations each, multiplied by ``M_safety``
    error_estimate : the flow's error (``distance_error`` and a term of ℓ_k): ``"local"`` (default,
        free) sums the integrator's embedded local error estimates (no contraction assumed);
        ``"loose"`` integrates a second time with 100× looser tolerances and takes the difference
        (as the numpy float mode; doubles the flow's cost); ``"none"``: rounding level only
    local_error : what ``Certificate.local_error`` reports: ``"aposteriori"`` (default, free) a_k =
        2ℓ_k/h² from the computed flow; ``"hvp"``: sup‖H∇f‖ over the step estimated by HVPs at every
        flow point (module docstring).  The bound uses the a-posteriori ℓ_k in both cases.
    progress : tqdm bars (default: steps ≥ 200)
    flow : the flow GD is compared with: ``"ngf"`` (default), ``"igr"`` (−g − (h/2)Hg, one HVP per
        field evaluation), ``"third"`` (BEA order 2: two HVPs and a T(g, g)) or ``"pf"`` (the principal
        flow, Lanczos / dense eigen-decompositions; needs h·λ_max < 1 along the flow, where it is
        real, otherwise InvalidInputError). The local error Φ(ŷ_k) − ŷ_{k+1} is then formed with one
        extra gradient per GD step; everything else is unchanged (the propagation is GD's own).
    k : for ``flow="pf"``: None (dense Hessian, n ≤ DENSE_MAX) or the number of leading eigen-
        directions (NGF on their complement: the certificate is against that flow)

    Returns
    -------
    bea.certificates.certify.Certificate with ``rigorous=False``; ``info`` holds timings, Hessian-vector-product
    and gradient counts, the tube radii and the M samples, and ``smoothness`` (what was checked about
    kinked activations).  ``certified`` is False (with the reason) when the bound runs away (or
    leaves a given tube), a ReLU unit may change sign in the tube (module docstring), the flow or GD
    diverge, or h·λ_max ≥ 2 along the flow.
    """
    t_start = time.perf_counter()
    if rigorous:
        raise InvalidInputError(
            "rigorous=True needs a sympy loss (bea.certificates.certify.certify encloses the flow in ball arithmetic); "
            "the torch backend computes floating-point certificates (Lanczos eigenvalues, estimated M)"
        )
    if mode != "discrete":
        raise InvalidInputError(f"the torch backend implements mode='discrete' only, got {mode!r}")
    if not isinstance(flow, str) or flow not in TORCH_CERTIFIED_FLOWS:
        raise UnknownMethodError(
            f"flow must be one of {TORCH_CERTIFIED_FLOWS} for bea.torch.certify, got {flow!r}"
            + (" (the order-n BEA flow needs a sympy loss: bea.certify(..., flow='bea', order=n))" if flow == "bea" else ""))
    if flow != "pf" and k is not None:
        raise InvalidInputError(f"k applies only to flow='pf', got k={k!r} with flow={flow!r}")
    theta = check_theta(theta0)
    h = _check_h(h)
    steps = _check_steps(steps)
    check_function(f, theta)
    for name, v in (("spectrum_every", spectrum_every), ("M_samples", M_samples), ("M_iters", M_iters)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {v!r}")
    if tube_radius is not None:
        tube_radius = _check_h(tube_radius)
    if M is not None:
        if isinstance(M, bool) or not isinstance(M, (int, float)) or not math.isfinite(M) or M < 0:
            raise InvalidInputError(f"M must be a non-negative number, got {M!r}")
    n = theta.numel()
    if flow == "pf":
        check_k(flow, k, n)
    dtype, device = theta.dtype, theta.device
    u_round = torch.finfo(dtype).eps / 2
    show = progress if progress is not None else steps >= 200
    t = h * np.arange(steps + 1)
    info: dict = {"float_mode": "estimates, not enclosures: not a proof (see bea.torch.certify)", "n": n}

    if error_estimate not in ("local", "loose", "none"):
        raise InvalidInputError(f"error_estimate must be 'local', 'loose' or 'none', got {error_estimate!r}")
    if local_error not in ("aposteriori", "hvp"):
        raise InvalidInputError(f"local_error must be 'aposteriori' or 'hvp', got {local_error!r}")

    # --- GD and the flow (the field at every output comes with it: ‖g‖, the a-posteriori local error,
    # the re-centring vector D and the activation margins)
    t0 = time.perf_counter()
    thetas, _, bad = gd_run(f, theta, h, steps)
    n_gd = steps + 1 if bad < 0 else bad
    info["time_gd"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    f64 = dtype == torch.float64
    method = ("dop853" if f64 else "dopri5") if method is None else method
    rt = (1e-9 if f64 else 1e-5) if rtol is None else rtol
    at = (1e-12 if f64 else 1e-7) if atol is None else atol
    gnorm = np.full(steps + 1, np.nan)
    ell_direct = np.full(steps + 1, np.nan)
    Dnorm = np.full(steps + 1, np.nan)
    dloc_norm = np.full(steps + 1, np.nan)
    HDnorm = np.full(steps + 1, np.nan)
    m_plan = set(np.unique(np.linspace(0, max(n_gd - 1, 0), min(M_samples, n_gd)).round().astype(int)).tolist())
    D_at: dict = {}
    kinked = has_kinks(f)
    margins: dict = {}
    smooth_note = "not inspected (f is not a bea.torch.flat_loss)" if not isinstance(f, FlatLoss) else "no kinked activations"
    if kinked:
        smooth_note = "ReLU-type activations: pre-activation margin test at every step"
    prev: dict = {}
    bar = None
    if show and steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="certify: gradient flow", leave=False)
    n_hvp_D = 0

    def on_output(i, t_i, y, fy):
        nonlocal n_hvp_D, kinked, smooth_note
        if flow != "ngf":  # the field is not GD's −∇f: one gradient for the local error
            y = y.real if y.is_complex() else y
            fy = -grad_f(y)
        # fy = −∇f(y): the first stage of the next step, already computed by the integrator
        gnorm[i] = float(torch.linalg.vector_norm(fy))
        if kinked:
            try:
                margins[i] = activation_margins(f, y)
            except ArchitectureNotCheckable as exc:
                kinked = False
                smooth_note = f"ReLU-type activations, not checkable: {exc}"
                info["smoothness_unchecked"] = True
        if i:
            dloc = prev["y"] + h * prev["fy"] - y  # Φ(ŷ_{i−1}) − ŷ_i
            ell_direct[i - 1] = float(torch.linalg.vector_norm(dloc))
            dloc_norm[i - 1] = ell_direct[i - 1]
            D = prev["D"]
            HD = hvp(f, prev["y"], D) if bool(D.any()) else torch.zeros_like(D)
            n_hvp_D += 1
            HDnorm[i - 1] = float(torch.linalg.vector_norm(HD))
            D = D - h * HD + dloc
            prev["D"] = D
            if bar is not None:
                bar.update(1)
        else:
            prev["D"] = torch.zeros_like(y)
        Dnorm[i] = float(torch.linalg.vector_norm(prev["D"]))
        if i in m_plan:
            D_at[i] = prev["D"].clone()
        prev["y"], prev["fy"] = y, fy

    grad_f = _func_grad(f)
    ngf = make_field(f, flow, h, n, k=k, lanczos_tol=1e-8, lanczos_max_iter=None, seed=seed)
    y_start = theta.to(complex_dtype(theta.dtype)) if flow == "pf" else theta
    try:
        sol = solve(ngf, y_start, t, method=method, rtol=rt, atol=at, on_failure="return", callback=on_output)
    finally:
        if bar is not None:
            bar.close()
    Y = sol.y
    imag = np.zeros(steps + 1)
    if Y.is_complex():  # the PF: real while h·λ < 1 (checked below); its imaginary part counts as error
        imag = torch.linalg.vector_norm(torch.nan_to_num(Y.imag), dim=1).cpu().numpy()
        Y = Y.real
    finite = torch.isfinite(Y).all(dim=1)
    n_ok = steps + 1 if bool(finite.all()) else int(torch.argmin(finite.to(torch.int8)))
    nfev = sol.nfev
    floor = (16 * u_round * (1 + torch.linalg.vector_norm(torch.nan_to_num(Y), dim=1)) + at).cpu().numpy()
    if error_estimate == "loose" and steps:
        loose = solve(ngf, y_start, t, method=method, rtol=rt * 100, atol=at * 100, on_failure="return")
        ly = loose.y.real if loose.y.is_complex() else loose.y
        derr = np.maximum(torch.linalg.vector_norm(Y - ly, dim=1).cpu().numpy(), floor)
        derr = np.where(np.isfinite(derr), derr, np.inf)
        nfev += loose.nfev
    elif error_estimate == "local":
        derr = np.maximum(np.nan_to_num(sol.local_error_sum, nan=np.inf), floor)
    else:
        derr = floor
    derr = (derr + imag).astype(np.float64)
    info["time_flow"] = time.perf_counter() - t0
    info["nfev_flow"] = nfev
    info["smoothness"] = smooth_note
    K = min(n_ok, n_gd) - 1

    # --- the spectrum (Lanczos) at every s-th flow point; ‖Hg‖ by HVP where asked
    t0 = time.perf_counter()
    a_pt = np.full(steps + 1, np.nan)
    spec_idx = sorted(set(range(0, K + 1, spectrum_every)) | {K})
    ritz_lo = np.full(steps + 1, np.nan)
    ritz_hi = np.full(steps + 1, np.nan)
    top_vec: dict = {}
    n_hvp = n_hvp_D
    lanczos_ok = True
    v0 = None
    pts = range(K + 1) if local_error == "hvp" else spec_idx
    if show:
        from tqdm.auto import tqdm

        pts = tqdm(pts, desc="certify: spectra along the flow", leave=False)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    spec_set = set(spec_idx)
    for k in pts:
        op = hvp_operator(f, Y[k])
        if local_error == "hvp":
            a_pt[k] = float(torch.linalg.vector_norm(op(op.grad)))
        if k in spec_set:
            if v0 is not None:
                noise = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
                v0 = v0 + 1e-2 * torch.linalg.vector_norm(v0) / math.sqrt(n) * noise
            spec = lanczos_operator(lambda v: op(v.to(dtype)), n, 1, "both", device=device, dtype=torch.float64,
                                    tol=lanczos_tol, max_iter=lanczos_max_iter, seed=seed + k, v0=v0)
            lanczos_ok &= spec.converged
            vals = spec.values.cpu().numpy()
            res = spec.residuals.cpu().numpy()
            ritz_hi[k] = vals[0] + res[0]
            ritz_lo[k] = vals[-1] - res[-1]
            top_vec[k] = spec.vectors[:, 0].to(dtype)
            v0 = spec.vectors[:, 0] + spec.vectors[:, -1]
        n_hvp += op.count
    info["time_spectra"] = time.perf_counter() - t0
    if flow == "pf":
        hl = h * ritz_hi[: K + 1]
        bad_pf = np.nonzero(~(hl < 1.0) & np.isfinite(hl))[0]
        if bad_pf.size:
            j = int(bad_pf[0])
            raise InvalidInputError(
                f"flow='pf' needs h·λ_max < 1 along the flow (for h·λ ≥ 1, log(1 − hλ) is not real and the real "
                f"principal flow is undefined): h·λ_max ≈ {hl[j]:.6g} at t = {t[j]:g}; use flow='ngf' or 'igr', "
                f"or a smaller step")
    info["n_hvp"] = n_hvp
    info["n_spectra"] = len(spec_idx)
    info["lanczos_converged"] = bool(lanczos_ok)
    ynorm = torch.linalg.vector_norm(torch.nan_to_num(Y), dim=1).cpu().numpy()

    # --- M along the flow and on the GD side of its segments, in tubes of radii on a grid
    t0 = time.perf_counter()
    m_idx = np.array(sorted(j for j in m_plan if j <= K and j in D_at)) if K >= 0 else np.array([0])
    if m_idx.size == 0:
        m_idx = np.array([0])
    m_points = [Y[j] for j in m_idx] + [Y[j] + D_at[j].to(dtype) for j in m_idx if j in D_at]
    m_dirs = [top_vec.get(int(j)) for j in m_idx]
    m_dirs = m_dirs + m_dirs[: len(m_points) - len(m_dirs)]
    m_cache: dict = {}
    r0 = 2.0**-26 * (1.0 + float(np.nanmax(ynorm[: K + 1])) if K >= 0 else 1.0)

    def grid(r):
        return 0.0 if r <= r0 else r0 * _RADIUS_GRID ** math.ceil(math.log(r / r0) / math.log(_RADIUS_GRID))

    def M_profile(r):
        if M is not None:
            return np.full(steps + 1, float(M))
        key = grid(float(r))
        if key not in m_cache:
            vals = estimate_hessian_lipschitz(f, m_points, radius=key, directions=m_dirs, iters=M_iters, seed=seed)
            vals = vals.reshape(-1, m_idx.size).max(axis=0) if vals.size > m_idx.size else vals
            if key > 0.0:
                vals = np.maximum(vals, M_profile(0.0)[m_idx] / M_safety)
            m_cache[key] = vals
        vals = m_cache[key]
        prof = np.full(steps + 1, np.nan)
        # each k takes the largest sample of its two neighbouring sample points
        for a, b, va, vb in zip(m_idx[:-1], m_idx[1:], vals[:-1], vals[1:]):
            prof[a:b + 1] = np.fmax(prof[a:b + 1], max(va, vb))
        if m_idx.size == 1:
            prof[:] = vals[0]
        return M_safety * prof

    # --- the recursion's ingredients
    dist_y = (torch.linalg.vector_norm(Y[1:] - Y[:-1], dim=1).cpu().numpy() if steps else np.zeros(0))
    cum = np.concatenate([[0.0], np.cumsum(dist_y)])  # arc length along the flow: ‖y_k − y_j‖ ≤ |cum_k − cum_j|
    eps = np.full(steps + 1, np.nan)
    if steps:
        th_norm = torch.linalg.vector_norm(thetas, dim=1).cpu().numpy()
        dth = torch.linalg.vector_norm(thetas[1:] - thetas[:-1], dim=1).cpu().numpy()
        eps[:steps] = 2 * u_round * (th_norm[:-1] + dth)
    M0 = M_profile(0.0)
    lam_lo = np.full(steps + 1, np.nan)
    lam_hi = np.full(steps + 1, np.nan)
    sidx = np.array(spec_idx)
    for k in range(K + 1):
        pos = np.searchsorted(sidx, k)
        cands = [sidx[min(pos, sidx.size - 1)], sidx[max(pos - 1, 0)]]
        # Weyl: λ(y_k) ∈ λ(y_j) ± M‖y_k − y_j‖ for each decomposed neighbour j; keep the tighter
        lo, hi = -math.inf, math.inf
        for j in cands:
            dj = abs(cum[k] - cum[j]) * (M0[k] if np.isfinite(M0[k]) else 0.0)
            lo = max(lo, ritz_lo[j] - dj)
            hi = min(hi, ritz_hi[j] + dj)
        lam_lo[k], lam_hi[k] = lo, hi
    a = np.full(steps + 1, np.nan)
    ell = np.full(steps + 1, np.nan)
    for k in range(K):
        # ‖Φ(ŷ_k) − ŷ_{k+1}‖ of the computed flow points, plus the rounding of forming it
        ell[k] = ell_direct[k] + 4 * u_round * (ynorm[k] + ynorm[k + 1])
        a[k] = 2.0 * ell_direct[k] / (h * h)
        if local_error == "hvp":
            gs = max(gnorm[k], gnorm[k + 1])
            lam_abs = max(abs(lam_lo[k]), abs(lam_hi[k]), abs(lam_lo[k + 1]), abs(lam_hi[k + 1]))
            a[k] = max(a_pt[k], a_pt[k + 1]) + 0.5 * h * (max(M0[k], 0.0) * gs * gs + lam_abs * lam_abs * gs)
    sb = StepBounds(h, lam_lo[: K + 1], lam_hi[: K + 1], ell[:K], np.nan_to_num(eps[:K], nan=0.0))
    # D_{k+1} = (I − hH(ŷ_k))D_k + δ̃_k in floats: the rounding of each update, 4u(‖D‖ + h‖HD‖ + ‖δ̃‖)
    lin = 4 * u_round * (Dnorm[:K] + h * np.nan_to_num(HDnorm[:K]) + np.nan_to_num(dloc_norm[:K]) + Dnorm[1 : K + 1])
    rec = Recentred(D=None, Dnorm=Dnorm[: K + 1], lin=lin, lam_lo=lam_lo[: K + 1], lam_hi=lam_hi[: K + 1], Mt=None)

    def compute(r, start, stop):
        Mk = M_profile(r)[start:stop]
        smooth, why = None, ""
        if kinked:
            smooth = np.ones(stop - start, dtype=bool)
            for k in range(start, stop):
                rho = Dnorm[k] + r + derr[k]
                ok, margin, need = margins[k].holds(rho)
                if not ok:
                    smooth[k - start] = False
                    why = why or (f"a ReLU-type unit may change sign within distance {rho:.3g} of the flow (pre-activation "
                                  f"margin {margin:.3g} ≤ its change bound {need:.3g}): the loss is not smooth there, so "
                                  "autodiff's ∇³f does not bound the change of the Hessian")
        return TubeData(M=Mk, smooth=smooth, why=why)

    tube = Tube(compute, r_min=r0, K=max(K, 0), r_max=1e8 * (1.0 + float(np.nanmax(ynorm[: K + 1])) if K >= 0 else 1.0))
    res = discrete_bound(sb, tube, radius=tube_radius, recentred=rec)
    info["M_samples"] = {int(j): float(v) for j, v in zip(m_idx, m_cache.get(0.0, np.full(m_idx.size, np.nan)))} if M is None else {}
    info["time_tube"] = time.perf_counter() - t0

    # --- assemble (bea.certificates.certify.certificate_from: the same verdict as the numpy path)
    distance = np.full(steps + 1, np.nan)
    m = min(n_gd, n_ok)
    distance[:m] = torch.linalg.vector_norm(thetas[:m] - Y[:m], dim=1).cpu().numpy()
    distance_error = np.full(steps + 1, np.nan)
    distance_error[:m] = derr[:m]
    flow_word = "gradient flow" if flow == "ngf" else f"{flow} flow"
    flow_failure = ""
    if sol.status != 0:
        flow_failure = f"the {flow_word} could not be integrated: {sol.message}"
    elif n_ok < steps + 1:
        flow_failure = f"the {flow_word} is not finite at t = {t[n_ok]:g}"
    extra = []
    if info.get("smoothness_unchecked"):
        extra.append(f"the loss has ReLU-type activations and the activation pattern could not be checked ({smooth_note}): "
                     "autodiff's ∇³f misses the jumps of the Hessian, so the bound is not meaningful")
    return certificate_from(
        res, t=t, h=h, K=K, n_gd=n_gd, distance=distance, distance_error=distance_error, local_error=a,
        hessian_lipschitz=np.where(np.isfinite(res.M), res.M, np.nan), lambda_min=lam_lo, lambda_max=lam_hi,
        flow_failure=flow_failure, extra_reasons=extra, spectrum_enclosed=False, tube_radius=tube_radius,
        mode="discrete", rigorous=False, flow=flow, order={"ngf": 0, "igr": 1, "third": 2}.get(flow),
        info=info, t_start=t_start,
    )
