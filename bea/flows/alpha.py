r"""α(z) = log(1 − z)/z and the principal-flow rates: the building blocks of the PF, no symbolic engine (seed 002: Rosca et al. 2023, Sect. 3).

The principal terms of the modified field of gradient descent are the parts of f_p made only of the
Hessian H and the gradient g, −1/(p+1)·H^p g.  Summed over p they give the *principal flow*
(Def. 3.2)

    θ̇ = Σ_i α(hλ_i) (gᵀu_i) u_i,        α(z) = log(1 − z)/z = −Σ_{p≥0} z^p/(p+1),

with (λ_i, u_i) the eigenpairs of H.  On a quadratic E the flow is linear and its Jacobian has the
eigenvalues (the *PF rates*)

    r_i = λ_i α(hλ_i) = log(1 − hλ_i)/h,

so the exact flow for time h multiplies the u_i-coordinate by exp(h r_i) = 1 − hλ_i: the GD factor
(Remark 3.1).  Re r_i = log|1 − hλ_i|/h decides growth; Im r_i = π/h (for hλ_i > 1) is the
rotation that reproduces GD's sign flip.

Branch convention: log is the principal branch, log(1 − z) = log|1 − z| + iπ for real z > 1.

For the flows (:mod:`bea.flows`): :func:`flow_alpha_scalar` / :func:`flow_alpha` — the same values
on the real axis, the cut moved off it (arg(1 − z) ∈ (−π/2, 3π/2]) and |1 − z| floored at ε so that
hλ = 1 is finite (:data:`ONE_STEP_FLOOR`).  That fixed branch serves single evaluations of the
field; a PF *trajectory* (:func:`bea.flows.trajectory`) instead continues each log(1 − hλ_i) along
the path, since on a non-quadratic loss the eigenvalues of the complex state can wind round z = 1
and cross any fixed cut.

The diagnostics built on these (:func:`bea.flows.diagnostics.diagnostics`) live in :mod:`bea.flows.diagnostics`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

from bea._checks import check_step
from bea.errors import InvalidInputError, InvalidOrderError

__all__ = [
    "alpha",
    "alpha_scalar",
    "alpha_real_scalar",
    "log1m",
    "pf_rates",
    "alpha_coefficients",
    "classify",
    "CLASSES",
    "SERIES_RADIUS",
    "SERIES_COEFFICIENTS",
    "ONE_STEP_FLOOR",
    "flow_alpha",
    "flow_alpha_scalar",
]

#: |z| below which α is evaluated by its Taylor series (no 0/0, no cancellation)
SERIES_RADIUS = 0.1
# terms p = 0..15: the remainder is below 0.1^16/17 ≈ 6e-18 relative to |α| ≥ 0.95 inside the radius
_SERIES_TERMS = 16
_SERIES_COEFFS = np.array([1.0 / (p + 1) for p in range(_SERIES_TERMS)])
#: the coefficients 1/(p+1), p = 0..15, of −α's Taylor series (float64; shared by the torch α)
SERIES_COEFFICIENTS = _SERIES_COEFFS
# |z| below which the complex log(1 − z) is computed by the log1p form (absolute error ~ eps·|z|)
_LOG1P_RADIUS = 0.5


# --------------------------------------------------------------------------------------------------
# vectorised (numpy)
# --------------------------------------------------------------------------------------------------


def _series(z):
    """−Σ_{p<16} z^p/(p+1) by Horner (valid for |z| ≤ SERIES_RADIUS)."""
    acc = np.full_like(z, _SERIES_COEFFS[-1])
    for c in _SERIES_COEFFS[-2::-1]:
        acc = acc * z + c
    return -acc


def _complex_log1m(z):
    """Principal log(1 − z) for complex arrays, accurate in relative terms also for small |z|.

    numpy's complex ``log1p`` computes log(1 + u) naively (relative error ~eps/|u|); here, for
    |z| < 0.5, Re log(1 + u) = ½·log1p(a(2 + a) + b²) and Im = atan2(b, 1 + a) with u = −z = a + ib.
    Far from 0, 1 − z is formed exactly enough and log is used directly.
    """
    out = np.empty_like(z)
    small = np.abs(z) < _LOG1P_RADIUS
    u = -z[small]
    a, b = u.real, u.imag
    out[small] = 0.5 * np.log1p(a * (2.0 + a) + b * b) + 1j * np.arctan2(b, 1.0 + a)
    with np.errstate(divide="ignore"):
        # (1 − z) with a +0 imaginary part when z is real (−0·i as well): log gives +iπ on the cut
        w = 1.0 - z[~small]
        out[~small] = np.log(w)
    return out


def log1m(z, *, complex_output: bool = False):
    """Principal log(1 − z), vectorised; same dtype rule as :func:`alpha`.

    Real z < 1 → log1p(−z) (float); z = 1 → −inf; real z > 1 → log(z − 1) + iπ.
    """
    z_arr, is_real, scalar = _prepare(z)
    if is_real:
        x = z_arr
        above = x > 1.0
        cplx = complex_output or bool(np.any(above))
        with np.errstate(divide="ignore", invalid="ignore"):
            re = np.where(above, np.log(np.where(above, x - 1.0, 1.0)), np.log1p(-np.where(above, 0.0, x)))
        re = np.where(x == 1.0, -np.inf, re)
        out = re + 1j * np.where(above, np.pi, 0.0) if cplx else re
    else:
        out = _complex_log1m(z_arr)
        out[z_arr == 1.0] = complex(-np.inf, 0.0)
    return out[0] if scalar else out


def _prepare(z):
    z_arr = np.asarray(z)
    if z_arr.dtype.kind not in "biufc":
        raise InvalidInputError(f"z must be numeric (real or complex), got dtype {z_arr.dtype}")
    scalar = z_arr.ndim == 0
    if z_arr.dtype.kind == "c":
        return np.array(z_arr, dtype=np.complex128, ndmin=1), False, scalar
    return np.array(z_arr, dtype=np.float64, ndmin=1), True, scalar


def alpha(z, *, complex_output: bool = False):
    r"""α(z) = log(1 − z)/z = −Σ_{p≥0} z^p/(p+1), vectorised (seed 002, Def. 3.2).

    Parameters
    ----------
    z : scalar or array, real or complex (z = hλ for the principal flow).
    complex_output : always return complex128.

    Returns
    -------
    Same shape as ``z`` (a numpy scalar for scalar input).  dtype rule: complex input → complex128;
    real input → float64 when every z ≤ 1, complex128 when some z > 1 (or ``complex_output``).

    Branches and special values
    ---------------------------
    * real z > 1: principal branch, α(z) = (log|1 − z| + iπ)/z, so Im α = π/z.  (numpy's
      ``np.log(1 - z)`` of a *real* array gives NaN there; the complex value needs ``1 − z + 0j``.)
      Complex input on the cut (z > 1 with imaginary part ±0) takes the same +iπ value.
    * z = 1: α = −inf (real; −inf + 0j in complex output), never NaN.  This is the one-step case:
      GD with hλ = 1 jumps to the minimiser's coordinate in one step (factor 1 − hλ = 0), which no
      finite flow rate reproduces; the flows must treat it explicitly.
    * |z| < 0.1: the Taylor series (16 terms, relative error ~1e-16), α(0) = −1 exactly.
    * z = ±inf: the limit 0.
    Accuracy: a few ulp relative error everywhere else (real z < 1 via log1p; complex via a
    cancellation-free log1p form for |z| < 0.5).
    """
    z_arr, is_real, scalar = _prepare(z)
    small = np.abs(z_arr) < SERIES_RADIUS
    inf = np.isinf(z_arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        num = log1m(z_arr, complex_output=complex_output)
        out = num / np.where(small | inf, 1.0, z_arr)
    if np.any(small):
        out[small] = _series(z_arr[small])
    out[inf] = 0.0
    out[z_arr == 1.0] = -np.inf  # complex division would turn (−inf + 0j)/1 into −inf + nan·i
    return out[0] if scalar else out


# --------------------------------------------------------------------------------------------------
# scalar (numba)
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _series_scalar(z):
    acc = 1.0 / 16.0 + 0.0 * z
    for p in range(_SERIES_TERMS - 2, -1, -1):
        acc = acc * z + 1.0 / (p + 1)
    return -acc


@numba.njit(cache=True)
def alpha_scalar(z):
    """α(z) = log(1 − z)/z for one real or complex z, as complex128; usable inside ``@njit`` code.

    Same branch (+iπ for real z > 1), special values (α(1) = −inf + 0j) and accuracy as :func:`alpha`.
    """
    w = complex(z)
    r = abs(w)
    if r < SERIES_RADIUS:
        return _series_scalar(w)
    if w == 1.0:
        return complex(-np.inf, 0.0)
    if math.isinf(w.real) or math.isinf(w.imag):
        return complex(0.0, 0.0)
    if r < _LOG1P_RADIUS:
        a = -w.real
        b = -w.imag
        lg = complex(0.5 * math.log1p(a * (2.0 + a) + b * b), math.atan2(b, 1.0 + a))
    else:
        one_minus = complex(1.0 - w.real, 0.0 - w.imag)
        lg = complex(math.log(abs(one_minus)), math.atan2(one_minus.imag, one_minus.real))
    return lg / w


@numba.njit(cache=True)
def alpha_real_scalar(x):
    """Re α(x) = log|1 − x|/x for one real x, as float64 (equal to α(x) for x ≤ 1); ``@njit``.

    x = 1 gives −inf; the series is used for |x| < 0.1.
    """
    if abs(x) < SERIES_RADIUS:
        acc = 1.0 / 16.0
        for p in range(_SERIES_TERMS - 2, -1, -1):
            acc = acc * x + 1.0 / (p + 1)
        return -acc
    if x == 1.0:
        return -np.inf
    if math.isinf(x):
        return 0.0
    if x < 1.0:
        return math.log1p(-x) / x
    return math.log(x - 1.0) / x


# --------------------------------------------------------------------------------------------------
# rates, coefficients, classification
# --------------------------------------------------------------------------------------------------


def _check_lams(lams):
    lam = np.asarray(lams)
    if lam.dtype.kind not in "biuf":
        raise InvalidInputError(f"eigenvalues must be real (H is symmetric), got dtype {lam.dtype}")
    lam = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam)):
        raise InvalidInputError(f"eigenvalues must be finite, got {lams!r}")
    return lam


def pf_rates(lams, h):
    r"""PF Jacobian eigenvalues r_i = log(1 − hλ_i)/h (complex128; seed 002, Sect. 3).

    exp(h r_i) = 1 − hλ_i is GD's factor in direction u_i.  hλ = 1 gives −inf + 0j (one-step
    convergence); hλ > 1 gives Im r = π/h.  Example: λ = 2, h = 1.05 → 0.090772 + 2.991993i.
    """
    hf = check_step(h)
    lam = _check_lams(lams)
    lg = log1m(hf * lam, complex_output=True)
    # divide the parts separately: (−inf + 0j)/h as a complex division would give −inf + nan·i
    return lg.real / hf + 1j * (lg.imag / hf)


def alpha_coefficients(order: int) -> tuple[Fraction, ...]:
    """Exact Taylor coefficients of α(z) = Σ_p a_p z^p, a_p = −1/(p+1), for p = 0..order.

    a_p·h^p·H^p g is the principal part of the modified-field term f_p of gradient descent.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise InvalidOrderError(f"order must be a non-negative integer, got {order!r}")
    return tuple(Fraction(-1, p + 1) for p in range(int(order) + 1))


#: the classes of :func:`classify`, in increasing z = hλ
CLASSES = (
    "real-unstable",  # z < 0: rate log(1 − z)/h > 0, the coordinate grows monotonically (as GD)
    "real-neutral",  # z = 0: rate 0, flat direction
    "real-stable",  # 0 < z < 1: rate < 0 real, monotone decay
    "one-step",  # z = 1: rate −inf, GD lands on the minimiser's coordinate in one step
    "complex-stable",  # 1 < z < 2: Re rate = log|1 − z|/h < 0, Im = π/h: oscillating decay
    "complex-neutral",  # z = 2: |1 − z| = 1, rate iπ/h: sign flip of constant size every step
    "complex-unstable",  # z > 2: Re rate > 0, oscillating growth (GD diverges)
)


def classify(lams, h, *, tol: float = 0.0):
    r"""Classify every eigendirection by its PF rate r = log(1 − hλ)/h (seed 002, Sect. 3, Def. 3.4).

    With z = hλ: Re r = log|1 − z|/h is negative iff 0 < z < 2 (stable), and r is real iff z < 1:

    ==================  ============  =====================================================
    class               z = hλ         behaviour of the u-coordinate under PF (= GD factor 1 − z)
    ==================  ============  =====================================================
    real-unstable       z < 0          grows monotonically (negative curvature)
    real-neutral        z = 0          constant
    real-stable         0 < z < 1      decays monotonically
    one-step            z = 1          reaches 0 in one GD step (rate −inf)
    complex-stable      1 < z < 2      decays while flipping sign (Im r = π/h)
    complex-neutral     z = 2          flips sign with constant magnitude
    complex-unstable    z > 2          grows while flipping sign
    ==================  ============  =====================================================

    Parameters
    ----------
    lams : real eigenvalues of the Hessian (scalar or array)
    h : the GD step size (> 0)
    tol : z within ``tol`` of 0, 1 or 2 is put in the boundary class (default: exact equality)

    Returns
    -------
    str for scalar ``lams``, else a numpy array of str of the same shape.
    """
    hf = check_step(h)
    lam = _check_lams(lams)
    tol = float(tol)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise InvalidInputError(f"tol must be a non-negative number, got {tol!r}")
    z = hf * lam
    conds = [
        np.abs(z) <= tol,
        np.abs(z - 1.0) <= tol,
        np.abs(z - 2.0) <= tol,
        z < 0.0,
        z < 1.0,
        z < 2.0,
    ]
    labels = ["real-neutral", "one-step", "complex-neutral", "real-unstable", "real-stable", "complex-stable"]
    out = np.select(conds, labels, default="complex-unstable")
    return str(out[()]) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------------
# α as used by the flows: branch cut off the real axis, |1 − z| floored at ε
# --------------------------------------------------------------------------------------------------

#: |1 − hλ| is floored at this value (machine ε) inside the flows: hλ = 1 gives the finite rate
#: log(ε)/h ≈ −36.04/h, so the u-coordinate shrinks by the factor ε ≈ 2.2e-16 per GD step — GD's
#: factor 1 − hλ = 0 to within rounding — instead of the rate −∞ (which no integrator can take).
ONE_STEP_FLOOR = 2.0**-52

_HALF_PI = 0.5 * math.pi
_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True)
def flow_alpha_scalar(z):
    r"""α(z) = log(1 − z)/z as evaluated by the principal flow (``@njit``; complex128 result).

    Two differences from :func:`alpha_scalar`, both needed to *integrate* the PF:

    * **branch**: log(1 − z) takes arg(1 − z) ∈ (−π/2, 3π/2] instead of (−π, π].  On the real axis
      the value is the same (+iπ for z > 1, the seed's convention) but the cut now runs from z = 1
      upwards (z = 1 + is, s > 0) instead of along z > 1: once the PF state is complex, the Hessian
      eigenvalues get small imaginary parts of either sign, and with the principal branch the field
      would jump between +iπ and −iπ there.  With this branch it is continuous (analytic) around
      the whole real axis except at z = 1.  It is still a fixed cut: an eigenvalue that winds
      round z = 1 crosses it, which is why :func:`bea.flows.trajectory` continues the branch along
      the path instead of calling this function.
    * **z = 1**: |1 − z| is floored at :data:`ONE_STEP_FLOOR` (= ε), so α(1) = log ε ≈ −36.04
      instead of −∞ (see :data:`ONE_STEP_FLOOR`).  Values |1 − z| ≥ ε are untouched.

    |z| < 0.5 is delegated to :func:`alpha_scalar` (series near 0, cancellation-free log1p form).
    """
    w = complex(z)
    if abs(w) < _LOG1P_RADIUS:
        return alpha_scalar(w)
    if math.isinf(w.real) or math.isinf(w.imag):
        return complex(0.0, 0.0)
    a = 1.0 - w.real
    b = 0.0 - w.imag
    mod = math.hypot(a, b)
    if mod < ONE_STEP_FLOOR:
        mod = ONE_STEP_FLOOR
    arg = math.atan2(b, a)
    if arg <= -_HALF_PI:
        arg += _TWO_PI
    return complex(math.log(mod), arg) / w


@numba.njit(cache=True)
def _flow_alpha_array(z):
    out = np.empty(z.shape[0], dtype=np.complex128)
    for k in range(z.shape[0]):
        out[k] = flow_alpha_scalar(z[k])
    return out


def flow_alpha(z):
    """Vectorised :func:`flow_alpha_scalar`: complex128 array of the shape of ``z`` (real or complex)."""
    z_arr = np.asarray(z)
    if z_arr.dtype.kind not in "biufc":
        raise InvalidInputError(f"z must be numeric (real or complex), got dtype {z_arr.dtype}")
    flat = np.ascontiguousarray(z_arr, dtype=np.complex128).reshape(-1)
    out = _flow_alpha_array(flat).reshape(z_arr.shape)
    return out[()] if z_arr.ndim == 0 else out
