r"""Gradient descent and its continuous models on flat torch parameter vectors.

Names and semantics are those of :mod:`bea.flows` (the numpy path); with g = ∇f, H = ∇²f, T = ∇³f:

=============  =================================================================  ==========================
flow           field                                                              cost per evaluation
=============  =================================================================  ==========================
``"ngf"``      −g                                                                 1 gradient
``"igr"``      −g − (h/2)Hg                                                       + 1 HVP
``"third"``    −g − (h/2)Hg − h²(⅓H²g + 1/12 T(g,g))                              + 2 HVP + T(g,g)
``"pf"``       Σ_{i<k} α(hλ_i)(gᵀu_i)u_i − (g − Σ_{i<k}(gᵀu_i)u_i)                 + Lanczos (or dense eigh)
``"pf+np"``    PF − (h²/12) T(g,g)   (seed 002, Eq. 14)                           as "pf" + T(g,g)
``"positive"`` +g                                                                 1 gradient
``"flipped"``  −g + 2(gᵀu_0)u_0 (NGF except +gᵀu_0 u_0 along the top u_0)          + Lanczos (k = 1)
=============  =================================================================  ==========================

The principal flow on a network: top-k directions, NGF on the complement
    The PF needs every eigenpair of H at every field evaluation — impossible for a network.  With
    ``k`` set, :func:`trajectory` computes the k largest eigenpairs (λ_i, u_i) by Lanczos
    (:func:`bea.torch.lanczos`, warm-started from the previous evaluation) and applies α(hλ_i) in
    those directions only; on the orthogonal complement it uses α = −1, i.e. **the NGF**.  This is
    the PF's own value in the limit hλ → 0 (α(0) = −1) and the error is −(α(hλ) + 1)(gᵀu)u ≈
    (hλ/2)(gᵀu)u per omitted direction, small when the omitted eigenvalues satisfy hλ ≪ 1.  The large
    eigenvalues, which carry the instabilities, are exactly the ones Lanczos finds.  With
    ``k=None`` (only for n ≤ 1000) the dense Hessian and its full eigendecomposition are used: the
    exact PF field.

The complex PF state
    As in :mod:`bea.flows`, the PF state is complex (complex64/128 following θ's precision) and its
    real part is the model of GD.  A network cannot be evaluated at complex parameters (ReLU, cross
    entropy), so at a complex point z = x + iy the field uses the first-order continuation
    g(z) ≈ g(x) + iH(x)y and the eigenpairs of the real symmetric H(x).  For a quadratic loss this
    **is** the analytic continuation, and the flow reproduces GD exactly (seed 002, Remark 3.1); for
    other losses it agrees with the numpy path's analytic PF to O(|y|²) in g and O(|y|) in H —
    exactly while hλ_0 < 1 (then y ≡ 0), and the PF's own caveat for long complex runs applies
    (seed 002, Remark 4.1).  T(g,g) of PF+NP is taken at x.

hλ = 1 and α
    The flows use :func:`bea.torch.diagnostics.flow_alpha` — |1 − hλ| floored at ε, as
    :func:`bea.flows.diagnostics.flow_alpha` — so the field stays finite, never NaN.

Device and dtype
    Everything follows θ0: the iterates, the Lanczos vectors, the integrator state.  Nothing is
    copied to the host inside the loops except the integrator's per-step error norm and Lanczos'
    scalar recurrence coefficients.
"""

from __future__ import annotations

import math

import torch
from torch.func import grad as _func_grad
from torch.func import grad_and_value

from bea._checks import check_step as _check_h  # the numpy path's validators
from bea._checks import check_steps as _check_steps
from bea.errors import BEAError, IntegrationError, InvalidInputError, UnknownMethodError
from bea.torch.diagnostics import flow_alpha
from bea.torch.integrate import solve
from bea.torch.linalg import hessian, hvp_operator, lanczos_operator, tgg
from bea.torch.loss import check_loss_value, check_theta

__all__ = ["FLOWS", "COMPLEX_FLOWS", "gd", "trajectory", "flow_field", "DENSE_MAX"]

#: flow names accepted by :func:`trajectory` (those of :data:`bea.flows.FLOWS` except ``"bea"``)
FLOWS = ("ngf", "igr", "third", "pf", "pf+np", "positive", "flipped")
#: flows whose state is complex (the real part is the model of GD)
COMPLEX_FLOWS = ("pf", "pf+np")
#: largest n for which ``k=None`` (dense Hessian, exact PF) is allowed
DENSE_MAX = 1000


def complex_dtype(dtype):
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _check_flow(flow):
    if flow == "bea":
        raise UnknownMethodError(
            "flow 'bea' (any truncation order) needs the symbolic loss: use bea.trajectory with a sympy "
            "loss; the torch backend has the orders 0, 1, 2 as 'ngf', 'igr', 'third'"
        )
    if not isinstance(flow, str) or flow not in FLOWS:
        raise UnknownMethodError(f"unknown flow {flow!r}; known flows: {', '.join(FLOWS)}")


def check_function(f, theta0):
    if not callable(f):
        raise InvalidInputError(f"f must be a callable f(theta) -> scalar tensor, got {f!r}")
    with torch.no_grad():
        value = check_loss_value(f(theta0), "f(theta0)")
    if not bool(torch.isfinite(value)):
        raise InvalidInputError(f"the loss at theta0 is not finite ({float(value)})")


def _diverged(what, step, h, extra=""):
    err = IntegrationError(f"{what} diverged: {extra}at step {step} (t = {step * h!r}); a smaller step h may help", t=step * h)
    err.step = step
    return err


def gd(
    f,
    theta0: torch.Tensor,
    h: float,
    steps: int,
    *,
    every: int = 1,
    return_losses: bool = False,
    check_every: int = 50,
    progress: bool | None = None,
):
    r"""Gradient descent θ_{k+1} = θ_k − h∇f(θ_k); the iterates as a (steps+1, n) tensor on θ0's device.

    Parameters
    ----------
    f : ``f(θ) -> scalar tensor`` (e.g. from :func:`bea.torch.flat_loss`);  theta0 : 1-D finite tensor
    h : step size > 0;  steps : number of steps ≥ 0
    every : keep only the iterates k = 0, every, 2·every, … (rows ``steps // every + 1``) — for long
        runs of large models (e.g. η/r for r·N steps compared with η every r-th iterate)
    return_losses : also return the losses f(θ_k) of *every* step, shape (steps+1,)
    check_every : how often (in steps) the loop checks for a non-finite loss (one host sync each)
    progress : tqdm bar (default: when steps ≥ 2000)

    Raises
    ------
    InvalidInputError : bad θ0 (NaN/inf entries are named), h, steps, or a non-finite f(θ0).
    IntegrationError : the loss or an iterate became non-finite; ``.step`` and ``.t`` = step·h name
        the first such iterate.
    """
    theta = check_theta(theta0)
    h = _check_h(h)
    steps = _check_steps(steps)
    check_function(f, theta)
    out, losses, bad = gd_run(f, theta, h, steps, every=every, check_every=check_every, progress=progress)
    if bad >= 0:
        raise _diverged("gradient descent", bad, h, "the loss or the iterate is not finite ")
    return (out, losses) if return_losses else out


def gd_run(f, theta, h, steps, *, every=1, check_every=50, progress=None):
    """GD iterates (every ``every``-th) and all losses; the first step with a non-finite loss or
    iterate (−1 if none).  The loop stops at the first check after a failure; later rows are NaN."""
    for name, v in (("every", every), ("check_every", check_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {v!r}")
    n = theta.numel()
    out = torch.full((steps // every + 1, n), float("nan"), dtype=theta.dtype, device=theta.device)
    losses = torch.full((steps + 1,), float("nan"), dtype=theta.dtype, device=theta.device)
    # ‖θ_k‖ of every step (a NaN/inf iterate shows here even when only some rows are kept)
    norms = torch.full((steps + 1,), float("nan"), dtype=theta.dtype, device=theta.device)
    out[0] = theta
    norms[0] = torch.linalg.vector_norm(theta)
    gv = grad_and_value(f)
    checked = 0

    def first_bad(upto):
        bad = ~torch.isfinite(losses[checked:upto]) | ~torch.isfinite(norms[checked:upto])
        return checked + int(torch.nonzero(bad)[0]) if bool(bad.any()) else -1

    def fail(bad):
        out[bad // every + (1 if bad % every else 0):] = float("nan")
        if bad % every == 0:
            out[bad // every] = float("nan")
        return out, losses, bad

    it = range(steps)
    if progress if progress is not None else steps >= 2000:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="GD", leave=False)
    for k in it:
        g, value = gv(theta)
        losses[k] = value.detach()
        theta = theta - h * g.detach()
        norms[k + 1] = torch.linalg.vector_norm(theta)
        if (k + 1) % every == 0:
            out[(k + 1) // every] = theta
        if (k + 1) % check_every == 0:
            bad = first_bad(k + 1)
            if bad >= 0:
                return fail(bad)
            checked = k + 1
    with torch.no_grad():
        losses[steps] = f(theta)
    bad = first_bad(steps + 1)
    if bad >= 0:
        return fail(bad)
    return out, losses, bad


class _Eig:
    """Top-k eigenpairs of H(x) for the PF fields: dense for k=None, else warm-started Lanczos."""

    def __init__(self, k, n, tol, max_iter, seed):
        self.k, self.n, self.tol, self.max_iter, self.seed = k, n, tol, max_iter, seed
        self.prev = None
        self.n_hvp = 0

    def __call__(self, f, x):
        if self.k is None:
            H = hessian(f, x)
            lam, U = torch.linalg.eigh(H)
            self.n_hvp += self.n
            return lam.flip(0), U.flip(1), _func_grad(f)(x), (lambda v: H @ v)
        op = hvp_operator(f, x)
        v0 = None if self.prev is None else self.prev
        spec = lanczos_operator(
            lambda v: op(v.to(x.dtype)), self.n, self.k, "largest", device=x.device, dtype=torch.float64,
            max_iter=self.max_iter, tol=self.tol, seed=self.seed, v0=v0,
        )
        self.n_hvp += op.count
        U = spec.vectors.to(x.dtype)
        self.prev = spec.vectors.sum(dim=1)
        return spec.values.to(x.dtype), U, op.grad, op


def make_field(f, flow, h, n, *, k, lanczos_tol, lanczos_max_iter, seed):
    """The field of ``flow`` as a function of the (real or complex) state."""
    if flow == "ngf":
        g = _func_grad(f)
        return lambda x: -g(x)
    if flow == "positive":
        g = _func_grad(f)
        return lambda x: g(x)
    if flow == "igr":
        def igr(x):
            op = hvp_operator(f, x)
            return -op.grad - (0.5 * h) * op(op.grad)

        return igr
    if flow == "third":
        def third(x):
            op = hvp_operator(f, x)
            g = op.grad
            Hg = op(g)
            HHg = op(Hg)
            return -g - (0.5 * h) * Hg - h * h * (HHg / 3.0 + tgg(f, x, g) / 12.0)

        return third

    eig = _Eig(k, n, lanczos_tol, lanczos_max_iter, seed)

    if flow == "flipped":
        eig.k = None if (k is None and n <= DENSE_MAX) else 1  # u_0 only: dense for small n

        def flipped(x):
            try:
                lam, U, g, _ = eig(f, x)
            except BEAError:
                return torch.full_like(x, float("nan"))
            u0 = U[:, 0]
            return -g + 2.0 * torch.dot(g, u0) * u0

        return flipped

    nonprincipal = flow == "pf+np"

    def pf(z):
        x = z.real if z.is_complex() else z
        try:
            lam, U, g, Hop = eig(f, x)
        except BEAError:
            return torch.full_like(z, float("nan"))
        gz = g.to(z.dtype)
        if z.is_complex():
            y = z.imag
            if bool(torch.any(y != 0)):
                # first-order continuation g(x + iy) ≈ g(x) + iH(x)y (exact for quadratics)
                gz = torch.complex(g, Hop(y).to(g.dtype))
        a = flow_alpha(h * lam.to(torch.float64)).to(complex_dtype(x.dtype))
        Uc = U.to(complex_dtype(x.dtype))
        c = Uc.T @ gz.to(Uc.dtype)
        out = Uc @ (a * c)
        if eig.k is not None:
            out = out - (gz.to(Uc.dtype) - Uc @ c)  # NGF (α = −1) on the complement of the top-k directions
        if nonprincipal:
            out = out - (h * h / 12.0) * tgg(f, x).to(out.dtype)
        return out

    return pf


def check_k(flow: str, k, n: int) -> None:
    """k: None or a positive integer; None means the dense Hessian for the PF fields, allowed up to
    DENSE_MAX parameters."""
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InvalidInputError(f"k must be a positive integer or None, got {k!r}")
    if flow in COMPLEX_FLOWS and k is None and n > DENSE_MAX:
        raise InvalidInputError(
            f"flow {flow!r} with k=None uses the dense Hessian, allowed for n <= {DENSE_MAX} (n = {n}); "
            "pass k (the number of leading eigendirections, e.g. k=20)"
        )


def flow_field(f, flow: str, h: float, *, n: int | None = None, k: int | None = None,
               lanczos_tol: float = 1e-8, lanczos_max_iter: int | None = None, seed: int = 0):
    r"""The field ``F(θ)`` of a flow (module table) as a Python callable on tensors.

    ``n`` is the number of parameters (needed for the Lanczos-based fields); ``k`` as in
    :func:`trajectory`.  PF fields accept real or complex θ and return complex tensors.
    """
    _check_flow(flow)
    h = _check_h(h)
    if flow in ("pf", "pf+np", "flipped") and n is None:
        raise InvalidInputError(f"flow {flow!r} needs n, the number of parameters")
    check_k(flow, k, 0 if n is None else n)
    return make_field(f, flow, h, n, k=k, lanczos_tol=lanczos_tol, lanczos_max_iter=lanczos_max_iter, seed=seed)


def trajectory(
    f,
    theta0: torch.Tensor,
    h: float,
    steps: int,
    flow: str = "ngf",
    *,
    k: int | None = None,
    method: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 1_000_000,
    lanczos_tol: float = 1e-8,
    lanczos_max_iter: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    return_solution: bool = False,
    on_failure: str = "raise",
):
    r"""A continuous model of GD sampled at the GD times t = j·h, j = 0..steps: a (steps+1, n) tensor.

    Parameters
    ----------
    f : ``f(θ) -> scalar tensor``;  theta0 : 1-D finite tensor (device and dtype are followed)
    h : the GD step size (a parameter of the field);  steps ≥ 0
    flow : one of :data:`FLOWS` (see the module docstring for each field and its cost)
    k : for ``"pf"``/``"pf+np"``: the number of leading Hessian directions given α(hλ_i) (Lanczos);
        the complement follows the NGF.  None: the exact PF from the dense Hessian (n ≤ 1000).
        ``"flipped"`` uses u_0 only (dense for k=None and small n, else Lanczos).
    method, rtol, atol, max_steps : the integrator (:func:`bea.torch.solve`; tableaux of
        :data:`bea.integrate.INTEGRATORS`).  Defaults: dop853 with rtol 1e-9 / atol 1e-12 in float64,
        dopri5 with 1e-5 / 1e-7 in float32.
    lanczos_tol, lanczos_max_iter, seed : Lanczos controls of the PF/flipped fields
    progress : tqdm bar over the output times (default: when steps ≥ 200)
    return_solution : return the :class:`bea.torch.integrate.TorchSolution` (work counters) instead
    on_failure : ``"raise"`` (default) or ``"return"``: keep the rows reached, NaN after the failure
        (the solution's ``message`` and ``t_fail`` say where)

    Returns
    -------
    complex tensor for ``"pf"`` and ``"pf+np"`` (its real part is the model of GD), θ0's dtype
    otherwise.

    Raises
    ------
    UnknownMethodError, InvalidInputError, and IntegrationError when the flow diverges (``.t``, and
    ``.step`` the GD step it corresponds to).
    """
    _check_flow(flow)
    theta = check_theta(theta0)
    h = _check_h(h)
    steps = _check_steps(steps)
    check_function(f, theta)
    n = theta.numel()
    check_k(flow, k, n)
    f64 = theta.dtype == torch.float64
    method = ("dop853" if f64 else "dopri5") if method is None else method
    rtol = (1e-9 if f64 else 1e-5) if rtol is None else rtol
    atol = (1e-12 if f64 else 1e-7) if atol is None else atol
    y0 = theta.to(complex_dtype(theta.dtype)) if flow in COMPLEX_FLOWS else theta
    field = make_field(f, flow, h, n, k=k, lanczos_tol=lanczos_tol, lanczos_max_iter=lanczos_max_iter, seed=seed)
    t_eval = [h * j for j in range(steps + 1)]
    bar = None
    callback = None
    if steps > 0 and (progress if progress is not None else steps >= 200):
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"flow {flow}", leave=False)

        def _tick(i, t, y, fy):
            if i:
                bar.update(1)

        callback = _tick

    try:
        sol = solve(field, y0, t_eval, method=method, rtol=rtol, atol=atol, max_steps=max_steps, callback=callback,
                    on_failure=on_failure)
    except IntegrationError as exc:
        step = None if exc.t is None or not math.isfinite(exc.t) else exc.t / h
        where = "" if step is None else f" (GD step {step:.4g})"
        err = IntegrationError(f"flow {flow!r} with h = {h!r}: {exc}{where}", t=exc.t)
        err.step = step
        raise err from None
    finally:
        if bar is not None:
            bar.close()
    return sol if return_solution else sol.y
