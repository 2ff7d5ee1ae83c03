r"""Adaptive explicit Runge–Kutta integration in numba, for real and complex states.

This is the one place where bea brings its own ODE solver: the flows of backward error analysis
(NGF, IGR, third-order, principal flow, …) are autonomous fields ``rhs(y, p)`` compiled by numba
(``p`` is a scalar parameter, typically the step size ``h`` of gradient descent), and the principal
flow is complex.  scipy's ``solve_ivp`` calls back into Python at every stage; here the whole loop
runs in nopython mode.

Output times
    The integrator *lands exactly* on every output time: a step that would pass the next output time
    is shortened to end on it (a step within 1% of it is stretched to it, as in Hairer's codes).
    Every returned row is therefore a genuine step end-point, with the full order of the method and
    no interpolation error; the cost is at most one extra (short) step per output interval.  After a
    shortened step the controller resumes from the step it had proposed before shortening.

Failures are never silent, and they come fast
    A trial step whose stages, new state or field at the new state contain a non-finite value is
    rejected and retried with a 10× smaller step; if the step size then underflows the run stops
    with status 3 (divergence) at that time.  Status 2 is a step-size underflow with finite values —
    in practice a finite-time blow-up or extreme stiffness.  Status 1: ``max_steps`` attempted steps.
    Status 4: the optional magnitude guard ``max_norm`` was exceeded.  Status 5: the run stalled —
    over two consecutive windows of max(500, max_steps/200) attempted steps the pace projects the
    end time more than 100× the remaining budget away (a step size pinned by a discontinuity of the
    field: the fixed-branch principal flow at its cut spent all 10⁶ default steps, ≈ 100 s, before
    this check; it now stops after 15 000).  Every failure carries its time (``t_fail``, and
    :class:`bea.IntegrationError`'s ``.t``) and the state reached (``y_last``).

Fields with a history (``on_accept``)
    A field may depend on constants carried in the state (components with zero derivative) that an
    ``on_accept(y, p)`` hook rewrites after every accepted step — the principal flow carries the
    branch of log(1 − hλ) this way (:mod:`bea.flows.fields`).  The hook must not change the field's value
    at the accepted state (its last stage is reused as the first stage of the next step).

numba and compilation
    ``rhs`` must be a numba ``@njit`` function ``rhs(y, p) -> ndarray`` (y a 1-D array, p a float).
    The driver is compiled once per state dtype (float64, complex128) with ``rhs`` typed as a
    *first-class function* ``dtype[:](dtype[::1], float64)``, and that compiled driver is cached on
    disk (``cache=True``): a new rhs costs only the compilation of the rhs itself, never a
    re-compilation of the integrator.  A numba driver that takes the dispatcher itself as argument
    is specialised per dispatcher (each rhs re-compiles the whole loop, about a second) and its
    on-disk cache never hits (the dispatcher type is keyed by object identity, so every new process
    misses and adds another cache entry).  When an rhs cannot be typed with the first-class signature
    (e.g. it was compiled with an explicit signature taking ``float64[:]``, or it returns another
    dtype), :func:`solve` falls back to that per-dispatcher driver automatically (in-process cache
    only).

    Measured (numba 0.68, 2-core x86 machine; ``benchmarks/bench_integrate.py --cold``): compiling the
    driver from scratch ≈ 5.5 s (float64) and ≈ 3.5 s (complex128), once per machine; loading it from
    the disk cache ≈ 0.2–0.7 s per process; a new rhs then costs only its own compilation (≈ 0.1 s
    for a small field).  The per-dispatcher fallback costs ≈ 5 s for *every* new rhs.  Run time of the
    two variants is the same (±10%); on the Rosenbrock gradient flow both are ~100× faster than
    ``scipy.integrate.solve_ivp`` at equal tolerance, equal accuracy and equal rhs evaluations.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
from numba import types

from bea._checks import check_positive
from bea.errors import IntegrationError, InvalidInputError, UnknownMethodError
from bea.integrate.control import all_finite, control_step, error_norm, hinit, status_message
from bea.integrate.tableaux import INTEGRATORS

__all__ = ["solve", "Solution"]

# shrink factor of a step whose trial values were not finite (an overshoot into overflow or outside
# the field's domain): much stronger than the controller's fac_min, so that a blow-up is found fast
_NONFINITE_SHRINK = 0.1
# stall detection (see _rk_core): window of attempted steps, and how far beyond the remaining budget
# the projected number of steps must be (twice in a row) before the run is stopped
_STALL_WINDOW = 500
_STALL_FACTOR = 100.0

def _rk_core(rhs, accept, y0, t_eval, p, A, b, E, ctrl, rtol, atol, max_steps, first_step, max_norm):
    """The shared stepping loop (compiled per state dtype; see the module docstring).

    ``accept(y, p)`` is called on the state after every accepted step (it may rewrite components
    the field treats as constants; False stops the run as a divergence).  Returns
    (Y, stats, t_fail, y_last) with stats = [status, nfev, nsteps, naccepted, nrejected].
    Rows of Y not reached are NaN.
    """
    n = y0.shape[0]
    s = b.shape[0]
    m = E.shape[0]
    nout = t_eval.shape[0]
    safety = ctrl[0]
    fac_min = ctrl[1]
    fac_max = ctrl[2]
    beta = ctrl[3]
    expo = ctrl[4]
    order = ctrl[5]
    eps = np.finfo(np.float64).eps

    last_in_error = False
    for r in range(m):
        if E[r, s] != 0.0:
            last_in_error = True

    Y = np.empty((nout, n), dtype=y0.dtype)
    Y[:, :] = np.nan
    stats = np.zeros(5, dtype=np.int64)
    y = y0.copy()
    Y[0, :] = y
    t = t_eval[0]
    t_end = t_eval[nout - 1]
    t_fail = np.nan

    K = np.empty((s + 1, n), dtype=y0.dtype)
    ys = np.empty(n, dtype=y0.dtype)
    ynew = np.empty(n, dtype=y0.dtype)

    f0 = rhs(y, p)
    nfev = 1
    K[0, :] = f0
    if not all_finite(K[0]):
        stats[0] = 3
        stats[1] = nfev
        return Y, stats, t, y
    if nout == 1:
        stats[1] = nfev
        return Y, stats, t_fail, y

    if first_step > 0.0:
        h = first_step
    else:
        h = hinit(rhs, y, K[0], p, order, t_end - t, rtol, atol)
        nfev += 1

    # stall detection: every `window` attempted steps, the pace of the last window is projected to
    # t_end; twice in a row beyond _STALL_FACTOR times the remaining budget means max_steps would
    # be hit long before t_end (e.g. a step size pinned by a discontinuity of the field): stop now
    window = max(_STALL_WINDOW, max_steps // 200)
    t_mark = t
    slow = 0

    facold = 1e-4
    rejected = False
    nonfinite = False
    nsteps = 0
    nacc = 0
    nrej = 0
    iout = 1
    status = 0
    while True:
        if nsteps >= max_steps:
            status = 1
            t_fail = t
            break
        if nsteps > 0 and nsteps % window == 0:
            left = max_steps - nsteps
            pace = t - t_mark
            if pace <= 0.0 or (t_end - t) / pace * window > _STALL_FACTOR * left:
                slow += 1
            else:
                slow = 0
            t_mark = t
            if slow >= 2:
                status = 5
                t_fail = t
                break
        t_out = t_eval[iout]
        h_prop = h
        clipped = False
        if t + 1.01 * h >= t_out:
            h = t_out - t
            clipped = True
        # a step must exceed ~10 ulps of t (written without 0.1·h, which is 0 for a subnormal h),
        # except one that spans a whole output interval: the user's grid may have times an ulp
        # apart, and that step moves t (t < t_out) however short it is
        whole = clipped and t == t_eval[iout - 1]
        if h <= 0.0 or (not whole and h <= abs(t) * (10.0 * eps)):
            status = 3 if nonfinite else 2
            t_fail = t
            break
        nsteps += 1

        # stages
        bad = False
        for i in range(1, s):
            for k in range(n):
                ys[k] = y[k]
            for j in range(i):
                a = h * A[i, j]
                if a != 0.0:
                    for k in range(n):
                        ys[k] += a * K[j, k]
            K[i, :] = rhs(ys, p)
            nfev += 1
            if not all_finite(K[i]):
                bad = True  # later stages would only propagate the NaN/inf
                break
        if not bad:
            for k in range(n):
                ynew[k] = y[k]
            for j in range(s):
                bj = h * b[j]
                if bj != 0.0:
                    for k in range(n):
                        ynew[k] += bj * K[j, k]
            if not all_finite(ynew):
                bad = True
        if last_in_error and not bad:
            K[s, :] = rhs(ynew, p)
            nfev += 1
            if not all_finite(K[s]):
                bad = True
        err = np.inf
        if not bad:
            err = error_norm(K, E, h, y, ynew, rtol, atol)
            if not (err <= 1e300):
                err = np.inf  # finite stages, an estimate too large to represent: an ordinary rejection
        if not bad and err <= 1.0 and not last_in_error:
            # DOP853: the error estimate does not need rhs(ŷ); evaluate it only for accepted steps
            K[s, :] = rhs(ynew, p)
            nfev += 1
            if not all_finite(K[s]):
                bad = True

        if bad:
            # an overshoot into overflow (or outside the field's domain): retry much shorter
            nonfinite = True
            rejected = True
            nrej += 1
            h = h * _NONFINITE_SHRINK
            continue

        accepted, hnew, facold = control_step(h, err, facold, rejected, clipped, h_prop, safety, fac_min, fac_max,
                                              beta, expo)
        if accepted:
            nonfinite = False
            nacc += 1
            if clipped:
                t = t_out
            else:
                t = t + h
            big = 0.0
            for k in range(n):
                y[k] = ynew[k]
                K[0, k] = K[s, k]
                big = max(big, abs(ynew[k]))
            rejected = False
            if not accept(y, p):
                status = 3
                t_fail = t
                break
            if big > max_norm:
                status = 4
                t_fail = t
                break
            if clipped:
                Y[iout, :] = y
                iout += 1
                if iout == nout:
                    break
            h = hnew
        else:
            nonfinite = False
            rejected = True
            nrej += 1
            h = hnew

    stats[0] = status
    stats[1] = nfev
    stats[2] = nsteps
    stats[3] = nacc
    stats[4] = nrej
    return Y, stats, t_fail, y


@numba.njit(cache=True)
def _accept_real(y, p):
    """The default ``on_accept``: nothing to update."""
    return y.shape[0] >= 0


@numba.njit(cache=True)
def _accept_complex(y, p):
    """The default ``on_accept`` for complex states."""
    return y.shape[0] >= 0


# per-dispatcher driver: specialised (and compiled) for each rhs, in-process cache only
_rk_core_generic = numba.njit(_rk_core)


@lru_cache(maxsize=None)
def _rk_core_fn(dtype_name: str):
    """The driver for one state dtype, with rhs typed as a first-class function; cached on disk.

    Created lazily so that importing bea compiles nothing.
    """
    D = {"float64": types.float64, "complex128": types.complex128}[dtype_name]
    f64 = types.float64
    rhs_t = types.FunctionType(D[:](D[::1], f64))
    accept_t = types.FunctionType(types.boolean(D[::1], f64))
    sig = types.Tuple((D[:, ::1], types.int64[::1], f64, D[::1]))(
        rhs_t, accept_t, D[::1], f64[::1], f64, f64[:, ::1], f64[::1], f64[:, ::1], f64[::1], f64, f64, types.int64,
        f64, f64,
    )
    return numba.njit(sig, cache=True)(_rk_core)


def _fits_first_class(rhs, dtype_name: str, accept: bool = False) -> bool:
    """Whether rhs compiles for (dtype[::1], float64) and returns a 1-D array of that dtype (with
    ``accept``: returns a bool)."""
    D = {"float64": types.float64, "complex128": types.complex128}[dtype_name]
    args = (types.Array(D, 1, "C"), types.float64)
    try:
        rhs.compile(args)
        ret = rhs.overloads[args].signature.return_type
    except Exception:  # compilation disabled (explicit signatures) or a typing error: use the generic driver
        return False
    if accept:
        return isinstance(ret, types.Boolean)
    return isinstance(ret, types.Array) and ret.ndim == 1 and ret.dtype == D


# (rhs, dtype) pairs known to fit the first-class signature: skips the ~30 µs check on repeated calls
_FITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _fits(fn, dtype_name: str, accept: bool) -> bool:
    key = (dtype_name, accept)
    known = _FITS.get(fn, frozenset())
    if key in known:
        return True
    if _fits_first_class(fn, dtype_name, accept):
        _FITS[fn] = known | {key}
        return True
    return False


def _run_core(rhs, accept, args, dtype_name):
    if accept is None:
        accept = _accept_real if dtype_name == "float64" else _accept_complex
    if _fits(rhs, dtype_name, False) and _fits(accept, dtype_name, True):
        return _rk_core_fn(dtype_name)(rhs, accept, *args)
    return _rk_core_generic(rhs, accept, *args)


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Solution:
    """Result of :func:`solve`.

    Attributes
    ----------
    t : (m,) the output times (``t_eval``)
    y : (m, n) the state at ``t``; dtype float64 or complex128 (``y0`` promoted with the rhs output).
        After a failure (``on_failure="return"``) the rows after the last time reached are NaN.
    status : 0 success, 1 ``max_steps`` reached, 2 step-size underflow (likely a finite-time blow-up),
        3 non-finite values (divergence), 4 ``max_norm`` exceeded (divergence), 5 stalled (see
        ``max_steps`` of :func:`solve`)
    message : human-readable account of ``status`` (names the time of a failure)
    t_fail : the time at which the integration stopped, NaN on success
    nfev, nsteps, naccepted, nrejected : work counters (``nsteps`` counts attempted steps)
    method : the method name
    y_last : the state where the run ended (at ``t[-1]``, or at ``t_fail`` after a failure)
    """

    t: np.ndarray
    y: np.ndarray
    status: int
    message: str
    t_fail: float
    nfev: int
    nsteps: int
    naccepted: int
    nrejected: int
    method: str = "dopri5"
    y_last: np.ndarray | None = None

    @property
    def success(self) -> bool:
        return self.status == 0

    def summary(self) -> str:
        return (
            f"{self.method}: {self.message}; {len(self.t)} output times in [{self.t[0]:g}, {self.t[-1]:g}], "
            f"{self.nsteps} steps ({self.naccepted} accepted, {self.nrejected} rejected), {self.nfev} rhs evaluations"
        )

    def __repr__(self):
        return f"Solution(status={self.status}, message={self.message!r}, y.shape={self.y.shape}, nfev={self.nfev})"


def solve(
    rhs,
    y0,
    t_eval,
    p=0.0,
    *,
    method: str = "dopri5",
    rtol: float = 1e-9,
    atol: float = 1e-12,
    max_steps: int = 1_000_000,
    first_step: float | None = None,
    on_failure: str = "raise",
    max_norm: float = math.inf,
    on_accept=None,
) -> Solution:
    """Integrate the autonomous ODE ``y' = rhs(y, p)`` and return the states at ``t_eval``.

    Parameters
    ----------
    rhs : numba ``@njit`` function ``rhs(y, p) -> ndarray`` of the same length as ``y``
        (e.g. a compiled modified field ``kern(theta, h)``).  Called with a C-contiguous 1-D array of
        the state dtype and a float.
    y0 : 1-D finite array (real or complex), the state at ``t_eval[0]``.
    t_eval : 1-D strictly increasing finite times; ``t_eval[0]`` is the initial time.  The solver
        lands exactly on every one of them (no interpolation).
    p : float passed to ``rhs`` unchanged (the GD step size for modified fields).
    method : ``"dopri5"`` (order 5, error order 4) or ``"dop853"`` (order 8) — see the module docstring.
    rtol, atol : tolerances of the mixed error norm (``atol + rtol·|y_i|`` per component).  The global
        error is typically 1–100× rtol·|y| for a stable problem; rtol below ~1e-14 cannot be met.
    max_steps : maximum number of attempted steps.  The run also stops early (status 5) when, twice
        in a row over a window of max(500, max_steps/200) attempted steps, the pace of that window
        projects the end time more than 100× the remaining budget away — a step size pinned far
        below the time scale of the problem (a discontinuous field, a stuck controller) would
        otherwise spend the whole budget first.
    first_step : initial step size; None selects it by Hairer's ``hinit``.
    on_failure : ``"raise"`` raises :class:`bea.IntegrationError` (with ``.t``) on any failure;
        ``"return"`` returns the :class:`Solution` with its ``status`` set and NaN rows after the
        failure time.
    max_norm : magnitude guard: an accepted state with max_i |y_i| > max_norm stops the run as a
        divergence (status 4) at that time.  Default: no guard (only non-finite values stop it).
    on_accept : optional numba ``@njit`` function ``on_accept(y, p) -> bool`` called on the state
        after every accepted step (not at ``t_eval[0]``).  It may rewrite, in place, components of
        ``y`` that ``rhs`` treats as constants (zero derivative) — e.g. references that select a
        branch of a multivalued field — provided ``rhs`` at the rewritten state has the same value
        (the last stage is reused as the first of the next step).  Returning False stops the run
        with status 3 at that time.

    Returns
    -------
    Solution
        ``y`` has dtype ``np.result_type(y0, rhs(y0, p))`` (float64 or complex128).

    Raises
    ------
    InvalidInputError, UnknownMethodError
        bad arguments (also ``ValueError``).
    IntegrationError
        divergence (non-finite values, or ``max_norm`` exceeded), step-size underflow or too many
        steps (or a stalled run), with the time ``t``.
    """
    try:
        meth = INTEGRATORS[method]
    except (KeyError, TypeError):
        raise UnknownMethodError(f"unknown integration method {method!r}; known methods: {sorted(INTEGRATORS)}") from None
    if on_failure not in ("raise", "return"):
        raise InvalidInputError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    if not isinstance(rhs, numba.core.dispatcher.Dispatcher):
        raise InvalidInputError(
            f"rhs must be a numba-jitted function rhs(y, p) (decorate it with @numba.njit), got {rhs!r}"
        )

    y0 = np.asarray(y0)
    if y0.dtype.kind not in "biufc" or y0.ndim != 1 or y0.size == 0:
        raise InvalidInputError(f"y0 must be a non-empty 1-D numeric array, got shape {y0.shape} dtype {y0.dtype}")
    if not np.all(np.isfinite(y0)):
        raise InvalidInputError(f"y0 must be finite, got {y0}")
    t_eval_arr = np.asarray(t_eval)
    if t_eval_arr.dtype.kind not in "biuf" or t_eval_arr.ndim != 1 or t_eval_arr.size == 0:
        raise InvalidInputError(f"t_eval must be a non-empty 1-D real array, got {t_eval!r}")
    t_eval_arr = np.array(t_eval_arr, dtype=np.float64)  # a private writable copy
    if not np.all(np.isfinite(t_eval_arr)):
        raise InvalidInputError("t_eval must be finite")
    if np.any(np.diff(t_eval_arr) <= 0):
        i = int(np.argmax(np.diff(t_eval_arr) <= 0))
        raise InvalidInputError(
            f"t_eval must be strictly increasing; t_eval[{i}] = {t_eval_arr[i]!r} >= t_eval[{i + 1}] = {t_eval_arr[i + 1]!r}"
        )
    rtol = check_positive(rtol, "rtol")
    atol = check_positive(atol, "atol")
    if isinstance(p, (complex, np.complexfloating)):
        raise InvalidInputError(f"p must be a real number, got {p!r}")
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise InvalidInputError(f"p must be a real number, got {p!r}") from None
    if not math.isfinite(p):
        raise InvalidInputError(f"p must be finite, got {p!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise InvalidInputError(f"max_steps must be a positive integer, got {max_steps!r}")
    h0 = 0.0 if first_step is None else check_positive(first_step, "first_step")
    if not (isinstance(max_norm, (float, np.floating)) and max_norm == math.inf):
        max_norm = check_positive(max_norm, "max_norm")
    if on_accept is not None and not isinstance(on_accept, numba.core.dispatcher.Dispatcher):
        raise InvalidInputError(f"on_accept must be a numba-jitted function on_accept(y, p) -> bool, got {on_accept!r}")

    # probe the field once: output dtype and shape (this also compiles rhs for the state dtype)
    dtype = np.result_type(y0.dtype, np.float64)
    y_probe = np.ascontiguousarray(y0, dtype=dtype)
    f0 = np.asarray(rhs(y_probe.copy(), p))
    if f0.shape != y0.shape:
        raise InvalidInputError(f"rhs(y0, p) must return an array of shape {y0.shape}, got shape {f0.shape}")
    dtype = np.result_type(dtype, f0.dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.complex128)):
        raise InvalidInputError(f"unsupported state dtype {dtype} (float64 and complex128 are supported)")
    y_start = np.array(y0, dtype=dtype)  # private C-contiguous copy

    args = (
        y_start, t_eval_arr, p, np.array(meth.A), np.array(meth.b), np.array(meth.E), np.array(meth._ctrl),
        rtol, atol, int(max_steps), h0, max_norm,
    )
    Y, stats, t_fail, y_last = _run_core(rhs, on_accept, args, dtype.name)
    status, nfev, nsteps, nacc, nrej = (int(v) for v in stats)
    t_fail = float(t_fail)
    if status == 0:
        t_fail = math.nan
    message = status_message(meth.name, status, t_fail, float(t_eval_arr[-1]), nsteps=nsteps, max_steps=max_steps,
                             max_abs_y=float(np.max(np.abs(y_last))) if status else 0.0, max_norm=max_norm,
                             on_accept=on_accept is not None)
    sol = Solution(
        t=t_eval_arr, y=Y, status=status, message=message, t_fail=t_fail,
        nfev=nfev, nsteps=nsteps, naccepted=nacc, nrejected=nrej, method=meth.name, y_last=y_last,
    )
    if status != 0 and on_failure == "raise":
        raise IntegrationError(message, t=t_fail)
    return sol
