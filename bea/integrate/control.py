r"""Step-size control, the initial step and the status table of every bea integrator (numba and torch).

Step-size control (Hairer's ``dopri5.f``/``dop853.f``; *Solving ODEs I*, Sect. II.4)
    Mixed error norm ``err = ‖e_i / (atol + rtol·max(|y_i|, |ŷ_i|))‖_rms``, step accepted when
    ``err ≤ 1``; new step ``h·min(fac_max, max(fac_min, 0.9·err^{−expo}·err_old^{β}))`` (a PI
    controller; β = 0.04 for dopri5, β = 0 — the elementary controller — for dop853), no growth right
    after a rejection.  Initial step by Hairer's ``hinit`` when ``first_step`` is None.

Status codes (:data:`STATUS_MESSAGES`, built into messages by :func:`status_message` for both
backends): 0 success, 1 ``max_steps`` reached, 2 step-size underflow, 3 non-finite values, 4 the
magnitude guard ``max_norm``, 5 stalled.  Everything here is numba-compiled and called from the numba
driver (:mod:`bea.integrate.solver`) and from :func:`bea.torch.solve` alike, so both take the same
steps.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["STATUS_MESSAGES", "status_message", "control_step", "initial_step_guess", "initial_step", "hinit",
           "error_norm", "scaled_error", "largest_error_term", "scaled_norm", "all_finite"]

STATUS_MESSAGES = {
    0: "success",
    1: "maximum number of steps reached",
    2: "step size underflow",
    3: "non-finite value (divergence)",
    4: "magnitude guard max_norm exceeded (divergence)",
    5: "stalled (max_steps would be reached long before the end)",
}


def status_message(method: str, status: int, t_fail: float, t_end: float, *, nsteps: int = 0, max_steps: int = 0,
                   max_abs_y: float = math.nan, max_norm: float = math.inf, on_accept: bool = False) -> str:
    """The message of a :data:`STATUS_MESSAGES` code, with the numbers of the run (both backends)."""
    if status == 0:
        return "success"
    if status == 1:
        return f"{method}: maximum number of steps ({max_steps}) reached at t = {t_fail!r} before t = {t_end!r}"
    if status == 2:
        return (f"{method}: step size underflow at t = {t_fail!r} (max|y| = {max_abs_y:.3g}): "
                "the solution probably blows up in finite time there, or the problem is extremely stiff")
    if status == 3:
        return (f"{method}: non-finite values at t = {t_fail!r}: the solution diverges (overflow, or the field "
                "is not finite there" + (", or on_accept refused the state)" if on_accept else ")"))
    if status == 4:
        return (f"{method}: the solution diverges: max|y| = {max_abs_y:.3g} exceeds max_norm = {max_norm:.3g} "
                f"at t = {t_fail!r}")
    return (f"{method}: stalled at t = {t_fail!r} after {nsteps} steps: at the pace of the last steps "
            f"t = {t_end!r} would need far more than max_steps = {max_steps} "
            "(the step size is pinned far below the time scale: a discontinuous field, or extreme stiffness)")


@numba.njit(cache=True)
def all_finite(x):
    for k in range(x.shape[0]):
        if not np.isfinite(x[k]):
            return False
    return True


@numba.njit(cache=True)
def scaled_error(K, E, h, y, ynew, rtol, atol, scale):
    """Hairer's error norm of a step with every weight multiplied by ``scale`` (the norm is
    homogeneous of degree 1 in the weights, so the result is ``scale`` times the norm)."""
    n = y.shape[0]
    ns = K.shape[0]
    if E.shape[0] == 1:
        acc = 0.0
        for k in range(n):
            inv = scale / (atol + rtol * max(abs(y[k]), abs(ynew[k])))
            e = E[0, 0] * (K[0, k] * inv)
            for j in range(1, ns):
                if E[0, j] != 0.0:
                    e += E[0, j] * (K[j, k] * inv)
            acc += abs(h * e) ** 2
        return math.sqrt(acc / n)
    err5 = 0.0
    err3 = 0.0
    for k in range(n):
        inv = scale / (atol + rtol * max(abs(y[k]), abs(ynew[k])))
        e5 = E[0, 0] * (K[0, k] * inv)
        e3 = E[1, 0] * (K[0, k] * inv)
        for j in range(1, ns):
            kj = K[j, k] * inv
            if E[0, j] != 0.0:
                e5 += E[0, j] * kj
            if E[1, j] != 0.0:
                e3 += E[1, j] * kj
        err5 += abs(e5) ** 2
        err3 += abs(e3) ** 2
    deno = err5 + 0.01 * err3
    if deno <= 0.0:
        deno = 1.0
    return abs(h) * err5 / math.sqrt(n * deno)


@numba.njit(cache=True)
def largest_error_term(K, E, y, ynew, rtol, atol):
    """max over components and estimates of |Σ_j E_rj K_jk| / (atol + rtol·max(|y_k|, |ŷ_k|))."""
    n = y.shape[0]
    ns = K.shape[0]
    big = 0.0
    for k in range(n):
        sk = atol + rtol * max(abs(y[k]), abs(ynew[k]))
        for r in range(E.shape[0]):
            e = E[r, 0] * K[0, k]
            for j in range(1, ns):
                if E[r, j] != 0.0:
                    e += E[r, j] * K[j, k]
            big = max(big, abs(e) / sk)
    return big


@numba.njit(cache=True)
def error_norm(K, E, h, y, ynew, rtol, atol):
    """Scaled error of a step (Hairer's norm); m = 2 rows of E is DOP853's (err5, err3) estimate.

    The stages are divided by the scale before they are combined, so that the estimate itself
    cannot overflow while the stages are finite; when the squares of the scaled terms overflow
    (a component near 0 under a pure relative tolerance: weights ~1/atol) the norm is formed again
    with the largest term factored out.
    """
    err = scaled_error(K, E, h, y, ynew, rtol, atol, 1.0)
    if err <= 1e300:
        return err
    big = largest_error_term(K, E, y, ynew, rtol, atol)
    if not (big > 0.0) or math.isinf(big):
        return err
    return scaled_error(K, E, h, y, ynew, rtol, atol, 1.0 / big) * big


@numba.njit(cache=True, error_model="numpy")
def scaled_norm(v, y0, rtol, atol):
    """‖v_k / (atol + rtol·|y0_k|)‖₂ without overflow (the largest ratio is factored out); inf when
    a ratio itself overflows (a component with a vanishing scale, e.g. y0_k = 0 under a pure
    relative tolerance)."""
    n = v.shape[0]
    m = 0.0
    for k in range(n):
        r = abs(v[k]) / (atol + rtol * abs(y0[k]))
        if r > m or r != r:
            m = r
    if not (m > 0.0) or math.isinf(m):
        return m
    acc = 0.0
    for k in range(n):
        r = abs(v[k]) / (atol + rtol * abs(y0[k])) / m
        acc += r * r
    return m * math.sqrt(acc)


@numba.njit(cache=True, error_model="numpy")
def initial_step_guess(dnf, dny, nf, ny, scaled, hmax):
    """First stage of Hairer's initial step (HNW I, Sect. II.4), shared by both backends: h0 with
    h0·‖f0‖ = 0.01·‖y0‖ in the weighted norm ‖v‖² = Σ (v_k / (atol + rtol|y0_k|))².

    ``dnf``, ``dny`` are the squared norms, ``nf``, ``ny`` the norms (``scaled``: formed with the largest
    term factored out because the squares overflowed). 1e-6 when either norm is ≤ 1e-5; a guess that
    is not a positive finite number falls back to 1e-6·hmax; never above hmax.
    """
    if nf <= 1e-5 or ny <= 1e-5:
        h = 1e-6
    elif scaled:
        h = (ny / nf) * 0.01
    else:
        h = math.sqrt(dny / dnf) * 0.01
    if not (h > 0.0) or not math.isfinite(h):
        h = 1e-6 * hmax
    return min(h, hmax)


@numba.njit(cache=True, error_model="numpy")
def initial_step(h, nf, d2, order, hmax):
    """Second stage of Hairer's initial step: with d2 = ‖f(y0 + h·f0) − f0‖/h (an estimate of ‖f′‖),
    h1 = (0.01 / max(d2, ‖f0‖))^(1/order), and the start is min(100·h, h1, hmax); a non-finite d2 or
    ‖f0‖ (the trial point overflowed) starts at h·1e-3 and lets the controller grow the step."""
    if not math.isfinite(d2) or not math.isfinite(nf):
        h1 = h * 1e-3
    else:
        der12 = max(d2, nf)
        if der12 <= 1e-15:
            h1 = max(1e-6, h * 1e-3)
        else:
            h1 = (0.01 / der12) ** (1.0 / order)
    return min(100.0 * h, h1, hmax)


@numba.njit(cache=True, error_model="numpy")
def hinit(rhs, y0, f0, p, order, hmax, rtol, atol):
    """Hairer's initial step: h with h·‖f0‖ ~ 0.01‖y0‖, then h^order·max(‖f′‖,‖f0‖) ~ 0.01.

    The weighted norms are formed without overflow, and a first guess that is not a positive
    number (‖f0‖ infinite in the weighted norm: a zero component with a vanishing scale) falls back
    to 1e-6·hmax, so the result is always a positive step (the controller then finds the scale).
    """
    dnf = 0.0
    dny = 0.0
    for k in range(y0.shape[0]):
        sk = atol + rtol * abs(y0[k])
        dnf += (abs(f0[k]) / sk) ** 2
        dny += (abs(y0[k]) / sk) ** 2
    nf = math.sqrt(dnf)
    ny = math.sqrt(dny)
    scaled = not (math.isfinite(nf) and math.isfinite(ny))
    if scaled:  # the squares overflowed: form the norms with the largest term factored out
        nf = scaled_norm(f0, y0, rtol, atol)
        ny = scaled_norm(y0, y0, rtol, atol)
    h = initial_step_guess(dnf, dny, nf, ny, scaled, hmax)
    y1 = y0 + h * f0
    f1 = rhs(y1, p)
    der2 = 0.0
    for k in range(y0.shape[0]):
        der2 += (abs(f1[k] - f0[k]) / (atol + rtol * abs(y0[k]))) ** 2
    d2 = math.sqrt(der2)
    if not math.isfinite(d2):
        d2 = scaled_norm(f1 - f0, y0, rtol, atol)
    return initial_step(h, nf, d2 / h, order, hmax)


@numba.njit(cache=True, error_model="numpy")
def control_step(h, err, facold, rejected, clipped, h_prop, safety, fac_min, fac_max, beta, expo):
    """The step-size controller of every bea integrator, numba and torch (Hairer, Nørsett & Wanner I,
    Sect. II.4; the DOPRI5/DOP853 codes' PI variant): one place, so both backends take the same steps.

    ``err`` is the scaled error norm of the step of size ``h`` just tried (accepted when ≤ 1);
    fac = err^expo / facold^beta (beta = 0: plain I control) and q = fac / safety.

    Returns ``(accepted, hnew, facold)``. Accepted: hnew = h / clip(q, 1/fac_max, 1/fac_min), never
    above h right after a rejection; after a step shortened to land on an output time (``clipped``)
    it resumes from the step proposed before shortening, ``h_prop``, as far as the error allows;
    facold = max(err, 1e-4). Rejected: hnew = h / min(1/fac_min, err^expo / safety), facold unchanged.
    """
    fac11 = err**expo
    if err <= 1.0:
        fac = fac11 / facold**beta
        q = fac / safety
        hnew = h / min(1.0 / fac_min, max(1.0 / fac_max, q))
        if rejected:
            hnew = min(hnew, h)
        if clipped:
            h_unlimited = h / q if q > 0.0 else np.inf
            hnew = max(hnew, min(h_prop, h_unlimited))
        return True, hnew, max(err, 1e-4)
    return False, h / min(1.0 / fac_min, fac11 / safety), facold

