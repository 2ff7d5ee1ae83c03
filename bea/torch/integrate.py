r"""Adaptive explicit Runge–Kutta on torch tensors, driven by the tableaux of :mod:`bea.integrate`.

One tableau feeds both integrators: the numba solver of the numpy path and this loop read the same
:class:`bea.integrate.ERKMethod` (``INTEGRATORS["dopri5"]``, ``INTEGRATORS["dop853"]``) — coefficients, error
weights and controller constants — so adding a method there adds it here.  The stepping logic is the
numba core's, transcribed to tensor operations: Hairer's mixed error norm, the PI controller, the
initial step of ``hinit``, exact landing on every output time (no interpolation), a 10× shrink and
retry after a non-finite trial step, and the same status codes (:data:`bea.integrate.STATUS_MESSAGES`).

Device and dtype
    The state stays on ``y0``'s device in ``y0``'s dtype (real or complex; the dtype of ``rhs(y0)``
    promotes it, e.g. a complex field on a real start).  Per step, one scalar — the error norm, with
    non-finite trial values folded into it as +inf — is read on the host to drive the controller;
    nothing else leaves the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from bea._checks import check_positive
from bea.errors import IntegrationError, InvalidInputError, UnknownMethodError
from bea.integrate.control import control_step, initial_step, initial_step_guess, status_message
from bea.integrate.solver import Solution
from bea.integrate.tableaux import INTEGRATORS as _NUMBA_INTEGRATORS
from bea.integrate.tableaux import ERKMethod

__all__ = ["solve", "TorchSolution", "INTEGRATORS", "BS3"]


def _bs3() -> ERKMethod:
    # Bogacki–Shampine 3(2), FSAL (3 new evaluations per step); Bogacki & Shampine, Appl. Math. Lett.
    # 2 (1989) 321–325; MATLAB's ode23.  Exact rationals, as the tableaux of bea.integrate.
    F = Fraction
    A = [[0, 0, 0], [F(1, 2), 0, 0], [0, F(3, 4), 0]]
    b = [F(2, 9), F(1, 3), F(4, 9)]
    bhat = [F(7, 24), F(1, 4), F(1, 3), F(1, 8)]
    E = [bi - bh for bi, bh in zip(b + [0], bhat)]
    c = [sum(row, F(0)) for row in A]
    return ERKMethod(
        name="bs3", order=3, error_order=2,
        A=[[float(v) for v in row] for row in A], b=[float(v) for v in b], c=[float(v) for v in c],
        E=[[float(v) for v in E]], safety=0.9, fac_min=0.2, fac_max=10.0, beta=0.0, expo=1.0 / 3.0,
        reference="Bogacki & Shampine (1989), Appl. Math. Lett. 2, 321-325 (MATLAB ode23)",
    )


#: Bogacki–Shampine 3(2): a tableau not (yet) in bea.integrate; cheap when the output grid, not the
#: error, limits the step (gradient flow sampled at every GD step: 3 gradients per GD step, not 6)
BS3 = _bs3()
#: the tableaux this solver runs: those of :data:`bea.integrate.INTEGRATORS` plus ``"bs3"``
INTEGRATORS: dict[str, ERKMethod] = {**_NUMBA_INTEGRATORS, "bs3": BS3}

_NONFINITE_SHRINK = 0.1


@dataclass(frozen=True, eq=False)
class TorchSolution(Solution):
    """Result of :func:`solve`: as :class:`bea.integrate.Solution`, with ``y`` a torch tensor.

    ``t`` is a float64 numpy array of the output times; ``y`` is (m, n) on ``y0``'s device; rows after
    a failure (``on_failure="return"``) are NaN.  ``local_error_sum[i]`` is Σ‖h·Σ_j E_j k_j‖₂ over the
    accepted steps up to ``t[i]`` — the sum of the embedded local error estimates, a cheap (no
    contraction assumed) estimate of the global error at ``t[i]``.
    """

    local_error_sum: np.ndarray | None = None


def _scale(y, ynew, rtol, atol):
    return atol + rtol * torch.maximum(y.abs(), ynew.abs())


def _error_norm(K, E, h, y, ynew, rtol, atol):
    """Hairer's scaled error of a step as a 0-dim real tensor (see bea.integrate._error_norm)."""
    n = y.numel()
    inv = 1.0 / _scale(y, ynew, rtol, atol)
    rows = []
    for r in range(E.shape[0]):
        e = None
        for j, w in enumerate(E[r]):
            if w != 0.0:
                term = float(w) * (K[j] * inv)
                e = term if e is None else e + term
        rows.append(e)
    if len(rows) == 1:
        return abs(h) * torch.linalg.vector_norm(rows[0]) / math.sqrt(n)
    err5 = torch.sum(rows[0].abs() ** 2)
    err3 = torch.sum(rows[1].abs() ** 2)
    deno = err5 + 0.01 * err3
    deno = torch.where(deno > 0, deno, torch.ones_like(deno))
    return abs(h) * err5 / torch.sqrt(n * deno)


def _local_error(K, E, h):
    """The unscaled 2-norm of an accepted step's error estimate: ‖h·Σ_j E_j k_j‖ (one row), or for
    DOP853 Hairer's combination ‖e5‖²/√(‖e5‖² + 0.01‖e3‖²) of its two rows (what its controller uses)."""
    norms = []
    for r in range(E.shape[0]):
        e = None
        for j, w in enumerate(E[r]):
            if w != 0.0:
                term = float(w) * K[j]
                e = term if e is None else e + term
        norms.append(torch.linalg.vector_norm(e).to(torch.float64))
    if len(norms) == 1:
        return abs(h) * norms[0]
    e5, e3 = norms
    deno = torch.sqrt(e5 * e5 + 0.01 * e3 * e3)
    return abs(h) * torch.where(deno > 0, e5 * e5 / deno, torch.zeros_like(deno))


def _hinit(rhs, y0, f0, order, hmax, rtol, atol):
    """Hairer's initial step on tensors: the weighted norms here, the formula shared with the numba
    driver (:func:`bea.integrate.initial_step_guess`, :func:`bea.integrate.initial_step`)."""
    sk = atol + rtol * y0.abs()
    dnf = float(torch.sum((f0.abs() / sk) ** 2))
    dny = float(torch.sum((y0.abs() / sk) ** 2))
    h = initial_step_guess(dnf, dny, math.sqrt(dnf), math.sqrt(dny), False, float(hmax))
    f1 = rhs(y0 + h * f0)
    d2 = float(torch.sqrt(torch.sum(((f1 - f0).abs() / sk) ** 2)))
    return initial_step(h, math.sqrt(dnf), d2 / h, order, float(hmax))


def solve(
    rhs,
    y0: torch.Tensor,
    t_eval,
    *,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    max_steps: int = 1_000_000,
    first_step: float | None = None,
    on_failure: str = "raise",
    callback=None,
) -> TorchSolution:
    r"""Integrate the autonomous ODE ``y' = rhs(y)`` on torch tensors; states at ``t_eval``.

    Parameters
    ----------
    rhs : ``rhs(y) -> tensor`` of ``y``'s shape (any torch code; autograd inside is fine).
    y0 : 1-D finite tensor (real or complex); its device and dtype are kept.
    t_eval : 1-D strictly increasing finite times (sequence, numpy array or tensor); ``t_eval[0]`` is
        the initial time.  The solver lands exactly on each (no interpolation).
    method : ``"dopri5"``, ``"dop853"`` (:data:`bea.integrate.INTEGRATORS`) or ``"bs3"`` (:data:`BS3`).
    rtol, atol : mixed error-norm tolerances.  In float32 keep rtol ≳ 1e-5.
    max_steps : limit on attempted steps;  first_step : None → Hairer's ``hinit``.
    on_failure : ``"raise"`` (an :class:`bea.IntegrationError` with ``.t``) or ``"return"``.
    callback : optional ``callback(i, t, y, fy)`` called at every output time (i = 0..m−1) with the
        state and the field ``fy = rhs(y)`` there (already computed: the first stage of the next step).

    Returns
    -------
    TorchSolution (``y`` of shape (m, n) on the device of ``y0``).
    """
    try:
        meth = INTEGRATORS[method]
    except (KeyError, TypeError):
        raise UnknownMethodError(f"unknown integration method {method!r}; known methods: {sorted(INTEGRATORS)}") from None
    if on_failure not in ("raise", "return"):
        raise InvalidInputError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    if not callable(rhs):
        raise InvalidInputError(f"rhs must be callable rhs(y) -> tensor, got {rhs!r}")
    if not isinstance(y0, torch.Tensor) or y0.ndim != 1 or y0.numel() == 0:
        raise InvalidInputError(f"y0 must be a non-empty 1-D torch tensor, got {type(y0).__name__}")
    if not (y0.is_floating_point() or y0.is_complex()):
        raise InvalidInputError(f"y0 must be floating or complex, got {y0.dtype}")
    if not bool(torch.isfinite(y0).all()):
        raise InvalidInputError("y0 must be finite")
    t_arr = np.array(t_eval.detach().cpu() if isinstance(t_eval, torch.Tensor) else t_eval, dtype=np.float64)
    if t_arr.ndim != 1 or t_arr.size == 0 or not np.all(np.isfinite(t_arr)):
        raise InvalidInputError(f"t_eval must be a non-empty 1-D array of finite times, got {t_eval!r}")
    if np.any(np.diff(t_arr) <= 0):
        i = int(np.argmax(np.diff(t_arr) <= 0))
        raise InvalidInputError(f"t_eval must be strictly increasing; t_eval[{i}] = {t_arr[i]!r} >= t_eval[{i + 1}] = {t_arr[i + 1]!r}")
    rtol = check_positive(rtol, "rtol")
    atol = check_positive(atol, "atol")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise InvalidInputError(f"max_steps must be a positive integer, got {max_steps!r}")
    h = 0.0 if first_step is None else check_positive(first_step, "first_step")

    A, b, E = meth.A, meth.b, meth.E
    s = b.shape[0]
    safety, fac_min, fac_max, beta, expo = meth.safety, meth.fac_min, meth.fac_max, meth.beta, meth.expo
    eps = float(np.finfo(np.float64).eps)
    last_in_error = bool(np.any(E[:, s] != 0.0))

    y = y0.detach()
    f0 = rhs(y)
    if not isinstance(f0, torch.Tensor) or f0.shape != y.shape:
        raise InvalidInputError(f"rhs(y0) must return a tensor of shape {tuple(y.shape)}, got {getattr(f0, 'shape', f0)!r}")
    dtype = torch.promote_types(y.dtype, f0.dtype)
    y = y.to(dtype)
    f0 = f0.to(dtype)
    nout = t_arr.size
    Y = torch.full((nout, y.numel()), float("nan"), dtype=dtype, device=y.device)
    Y[0] = y
    err_acc = torch.zeros((), dtype=torch.float64, device=y.device)
    err_out = torch.full((nout,), float("nan"), dtype=torch.float64, device=y.device)
    err_out[0] = 0.0
    if callback is not None:
        callback(0, float(t_arr[0]), y, f0)
    t = float(t_arr[0])
    nfev, nsteps, nacc, nrej = 1, 0, 0, 0
    status, t_fail = 0, math.nan

    def field(x):
        return rhs(x).to(dtype)

    if not bool(torch.isfinite(f0).all()):
        status, t_fail = 3, t
    elif nout > 1:
        if h <= 0.0:
            h = _hinit(field, y, f0, meth.order, t_arr[-1] - t, rtol, atol)
            nfev += 1
        K = [None] * (s + 1)
        K[0] = f0
        facold = 1e-4
        rejected = False
        nonfinite = False
        iout = 1
        while True:
            if nsteps >= max_steps:
                status, t_fail = 1, t
                break
            if h <= 0.0 or 0.1 * h <= abs(t) * eps:
                status, t_fail = (3 if nonfinite else 2), t
                break
            t_out = float(t_arr[iout])
            h_prop = h
            clipped = False
            if t + 1.01 * h >= t_out:
                h = t_out - t
                clipped = True
            nsteps += 1
            for i in range(1, s):
                ys = y
                for j in range(i):
                    if A[i, j] != 0.0:
                        ys = ys + (h * float(A[i, j])) * K[j]
                K[i] = field(ys)
                nfev += 1
            ynew = y
            for j in range(s):
                if b[j] != 0.0:
                    ynew = ynew + (h * float(b[j])) * K[j]
            if last_in_error:
                K[s] = field(ynew)
                nfev += 1
            else:
                K[s] = torch.zeros_like(y)
            err_t = _error_norm(K, E, h, y, ynew, rtol, atol)
            finite = torch.isfinite(ynew).all() & torch.isfinite(K[s]).all()
            err = float(torch.where(finite, err_t, torch.full_like(err_t, math.inf)))  # the one sync per step
            if math.isfinite(err) and err <= 1.0 and not last_in_error:
                K[s] = field(ynew)
                nfev += 1
                if not bool(torch.isfinite(K[s]).all()):
                    err = math.inf
            if not math.isfinite(err):
                nonfinite = True
                rejected = True
                nrej += 1
                h = h * _NONFINITE_SHRINK
                continue
            accepted, hnew, facold = control_step(h, err, facold, rejected, clipped, h_prop, safety, fac_min,
                                                  fac_max, beta, expo)
            if accepted:
                nonfinite = False
                nacc += 1
                if clipped:
                    t = t_out
                else:
                    t = t + h
                err_acc = err_acc + _local_error(K, E, h)  # before K[0] is overwritten
                y = ynew
                K[0] = K[s]
                rejected = False
                if clipped:
                    Y[iout] = y
                    err_out[iout] = err_acc
                    if callback is not None:
                        callback(iout, t, y, K[0])
                    iout += 1
                    if iout == nout:
                        break
                h = hnew
            else:
                nonfinite = False
                rejected = True
                nrej += 1
                h = hnew

    message = status_message(meth.name, status, t_fail, float(t_arr[-1]), max_steps=max_steps,
                             max_abs_y=float(y.abs().max()) if status == 2 else math.nan)
    sol = TorchSolution(
        t=t_arr, y=Y, status=status, message=message, t_fail=t_fail, nfev=nfev, nsteps=nsteps,
        naccepted=nacc, nrejected=nrej, method=meth.name, local_error_sum=err_out.cpu().numpy(),
    )
    if status != 0 and on_failure == "raise":
        raise IntegrationError(message, t=t_fail)
    return sol


def __getattr__(name):
    if name == "METHODS":  # deprecated alias
        import warnings

        warnings.warn("bea.torch.integrate.METHODS is renamed bea.torch.integrate.INTEGRATORS", DeprecationWarning,
                      stacklevel=2)
        return INTEGRATORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
