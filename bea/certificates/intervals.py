r"""Interval arithmetic on numpy arrays: enclosures for a whole batch of boxes at once.

:mod:`bea.certificates.rigorous` evaluates a loss's derivatives over *one* box in python-flint ball arithmetic;
:mod:`bea.certificates.certify` needs them over one box per GD step, hundreds of times. This module does the same
job on arrays: an :class:`Iv` holds two float arrays ``lo ≤ hi`` (one interval per entry, any shape),
and every operation returns an :class:`Iv` that contains the exact result for every choice of points
in its operands. Compiled sympy expressions (:func:`interval_kernel`) therefore enclose the value of
the expression over every box of a batch in one vectorised call.

Rounding
--------
IEEE 754 makes +, −, ×, ÷ and √ correctly rounded: the computed result is within half an ulp of the
exact one, so one ``nextafter`` step outwards (:func:`down`, :func:`up`) gives a guaranteed bound
(overflow to ±inf and NaN are kept and propagate: a NaN end point means nothing is known, the whole
line — :meth:`Iv.sanitize` writes it so, kernels return sanitized values — and consumers treat a
non-finite bound as "no enclosure"). Exact zeros (the constant 0 of a quadratic's ∇³E) stay exact: they never go through an
operation.
Elementary functions have two backends:

* ``"float"`` (default): numpy's values, widened by 64 ulp relative and 2⁻¹⁰⁶⁰ absolute. This
  assumes the platform libm is accurate to 64 ulp (glibc documents ≤ 4 ulp for exp, log, sin, cos,
  tan, tanh, atan, asin, acos, sinh, cosh on x86-64 and aarch64; scipy's erf is ≤ 2 ulp).
* ``"arb"``: each entry enclosed by python-flint ball arithmetic (a proof, whatever libm does;
  ~µs per entry). :func:`bea.certificates.certify.certify` uses it with ``rigorous=True``.

Monotone functions are evaluated at the end points; sin and cos as f(mid) ± |f'|·rad with |f'| ≤ 1;
cosh from the interval's magnitude and mignitude.

Linear algebra on batches
-------------------------
:func:`eig_bounds` encloses the spectrum of every symmetric matrix in a batch of interval matrices:
with Q the float eigenvectors of the midpoint, B = QᵀHQ is nearly diagonal and Gershgorin's discs of
B (an interval matrix, computed in midpoint–radius form with the rounding of the products bounded)
enclose the spectrum of every QᵀH'Q; Ostrowski's theorem (λ_k(QᵀH'Q) = θ_k λ_k(H') with θ_k between
the extreme eigenvalues of QᵀQ, which lie in [1 − δ, 1 + δ] for δ ≥ ‖QᵀQ − I‖₂) turns that into
bounds of the spectrum of H'. :func:`eigenbases` gives the same Q with an enclosure of Q⁻¹: writing
F = I − QᵀQ (‖F‖₂ ≤ δ < 1), Q⁻¹ = (I − F)⁻¹Qᵀ and ‖(I − F)⁻¹ − I‖₂ ≤ δ/(1 − δ), so every entry of
Q⁻¹ − Qᵀ is at most κ = δ√(1 + δ)/(1 − δ) in modulus. Products of interval matrices
(:func:`mr_matmul`) use the midpoint–radius rule C = A·B, rad C = |mid A|·rad B + rad A·(|mid B| +
rad B) + γ_n·|mid A|·|mid B| (γ_n = nu/(1 − nu) bounds the rounding of the float product, Higham
§3.5), every radius inflated for its own rounding.
"""

from __future__ import annotations

import math
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import combinations_with_replacement, permutations
from typing import Sequence

import numba
import numpy as np
import sympy as sp
from flint import arb, ctx, fmpq

from bea.errors import InvalidLossError

__all__ = [
    "Iv",
    "down",
    "up",
    "upper",
    "lower",
    "constant_ball",
    "KernelPrinter",
    "IntervalKernel",
    "interval_kernel",
    "BoxLoss",
    "box_loss",
    "norm_upper",
    "inflate_sum",
    "stack",
    "t3_multiplicities",
    "derivative_exprs",
    "mr_matmul",
    "eig_bounds",
    "Eigenbases",
    "eigenbases",
    "similar",
    "BACKENDS",
]

BACKENDS = ("float", "arb")
U = np.finfo(float).eps / 2  # unit roundoff
TINY = 2.0**-1060  # absolute slack for underflow and libm errors near 0
_LIBM = 64 * U  # relative widening of libm values (backend "float")
_INF = math.inf
_PINF, _NINF = np.array(np.inf), np.array(-np.inf)  # 0-d: np.nextafter's direction without a conversion per call
_NULL = nullcontext()
_sum = np.add.reduce


class _Quiet(threading.local):
    depth = 0  # > 0 while an IntervalKernel runs in this thread: numpy's warnings are already off there


_QUIET = _Quiet()


def _errstate(**kw):
    """np.errstate(**kw), or a no-op inside a kernel call (all warnings already ignored there): the
    same values either way — errstate only decides whether numpy warns."""
    return _NULL if _QUIET.depth else np.errstate(**kw)


# --------------------------------------------------------------------------------------------------
# rounding
# --------------------------------------------------------------------------------------------------


def down(x):
    """The next float below ``x`` (elementwise): a lower bound of a correctly rounded result."""
    return np.nextafter(x, _NINF)


def up(x):
    """The next float above ``x`` (elementwise): an upper bound of a correctly rounded result."""
    return np.nextafter(x, _PINF)


def upper(x) -> float:
    """A float ≥ every point of the arb ball ``x`` (+inf when x is not finite); exact when the upper
    end point is a float (so an exact 0 stays 0)."""
    if not isinstance(x, arb):
        x = arb(x)
    if not x.is_finite():
        return _INF
    u = x.upper()
    f = float(u)
    return f if arb(f) >= u else math.nextafter(f, _INF)


def lower(x) -> float:
    """A float ≤ every point of the arb ball ``x`` (−inf when x is not finite); exact when the lower
    end point is a float."""
    if not isinstance(x, arb):
        x = arb(x)
    if not x.is_finite():
        return -_INF
    v = x.lower()
    f = float(v)
    return f if arb(f) <= v else math.nextafter(f, -_INF)


def inflate_sum(x, terms: int):
    """An upper bound of an exact non-negative sum of products whose float value (round to nearest,
    ≤ ``terms`` operations deep) is ``x``: x·(1 + 4(terms + 4)u) + (terms + 1)·2⁻¹⁰⁶⁰, rounded up
    (the relative error of such a sum is ≤ γ_terms = terms·u/(1 − terms·u), Higham Lemma 3.1)."""
    return up(x * (1.0 + 4.0 * (terms + 4) * U) + (terms + 1) * TINY)


# --------------------------------------------------------------------------------------------------
# the interval type
# --------------------------------------------------------------------------------------------------


# Compiled cores of the commonest operations on 1-d interval arrays (one pass instead of a dozen
# numpy calls): the same IEEE products / sums, the same min / max (NaN in any product makes both
# ends NaN, as np.minimum / np.maximum do) and the same outward rounding by one ulp (np.nextafter's
# result, see _round_out), so the end points are bit for bit those of the numpy formulas in Iv.__mul__ / Iv.__add__.


@numba.njit(cache=True, nogil=True)
def _round_out(lo, hi):
    """In place: lo[i] ← np.nextafter(lo[i], −inf), hi[i] ← np.nextafter(hi[i], +inf), bit for bit
    (NaN stays NaN; ±0 → ∓/± the smallest subnormal; ∓inf stays, ±inf → ±the largest float), by
    stepping the IEEE bit pattern: for a finite x ≠ 0, x > 0 steps down by bits − 1, x < 0 by bits
    + 1 (the magnitude grows), and the other way round upwards (libm's nextafter is the slow part)."""
    li, hu = lo.view(np.int64), hi.view(np.int64)
    for i in range(lo.shape[0]):
        x = lo[i]
        if x > 0:  # +inf → the largest float, as nextafter
            li[i] -= 1
        elif x < 0:
            if x != -np.inf:
                li[i] += 1
        elif x == 0:
            lo[i] = -5e-324
        y = hi[i]
        if y > 0:
            if y != np.inf:
                hu[i] += 1
        elif y < 0:  # −inf → −the largest float, as nextafter
            hu[i] -= 1
        elif y == 0:
            hi[i] = 5e-324


@numba.njit(cache=True, nogil=True)
def _mul_vv(alo, ahi, blo, bhi):
    n = alo.shape[0]
    lo, hi = np.empty(n), np.empty(n)
    for i in range(n):
        p1, p2, p3, p4 = alo[i] * blo[i], alo[i] * bhi[i], ahi[i] * blo[i], ahi[i] * bhi[i]
        if p1 != p1 or p2 != p2 or p3 != p3 or p4 != p4:
            lo[i] = hi[i] = np.nan
        else:
            lo[i] = min(min(p1, p2), min(p3, p4))
            hi[i] = max(max(p1, p2), max(p3, p4))
    _round_out(lo, hi)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _mul_sv(alo, ahi, blo, bhi):
    """[alo, ahi] (scalars) times the 1-d interval array [blo, bhi] (the products of :func:`_mul_vv`)."""
    n = blo.shape[0]
    return _mul_vv(np.full(n, alo), np.full(n, ahi), blo, bhi)


@numba.njit(cache=True, nogil=True)
def _scale(alo, ahi, c):
    """The 1-d interval array [alo, ahi] times the float c ≠ 0 (exact point)."""
    n = alo.shape[0]
    lo, hi = np.empty(n), np.empty(n)
    if c > 0:
        for i in range(n):
            lo[i] = alo[i] * c
            hi[i] = ahi[i] * c
    else:
        for i in range(n):
            lo[i] = ahi[i] * c
            hi[i] = alo[i] * c
    _round_out(lo, hi)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _add_vv(alo, ahi, blo, bhi):
    n = alo.shape[0]
    lo, hi = np.empty(n), np.empty(n)
    for i in range(n):
        lo[i] = alo[i] + blo[i]
        hi[i] = ahi[i] + bhi[i]
    _round_out(lo, hi)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _add_sv(alo, ahi, blo, bhi):
    """[alo, ahi] (scalars) plus the 1-d interval array [blo, bhi]."""
    n = blo.shape[0]
    lo, hi = np.empty(n), np.empty(n)
    for i in range(n):
        lo[i] = alo + blo[i]
        hi[i] = ahi + bhi[i]
    _round_out(lo, hi)
    return lo, hi


def _exact_scalar(c):
    """(lo, hi) floats enclosing a python int or float constant."""
    f = float(c)
    if isinstance(c, float) or f == c and abs(f) < 2.0**53:
        return f, f
    return float(down(f)), float(up(f))


class Iv:
    """An array of intervals ``[lo, hi]`` (numpy arrays of one shape, or 0-d).

    Arithmetic with another :class:`Iv` or a python number returns an :class:`Iv` enclosing the
    exact result for all points of the operands (module docstring). Comparisons and indexing act on
    the intervals entrywise; ``Iv(lo, hi)[k]`` is the interval array of entry ``k``.
    """

    __slots__ = ("lo", "hi")
    __array_priority__ = 100  # so that numpy scalars defer to Iv's reflected operators

    def __init__(self, lo, hi=None):
        lo = np.asarray(lo, dtype=float)
        hi = lo if hi is None else np.asarray(hi, dtype=float)
        if lo.shape != hi.shape:
            lo, hi = np.broadcast_arrays(lo, hi)
        self.lo, self.hi = lo, hi

    # ---- construction
    @classmethod
    def ball(cls, center, radius=0.0) -> Iv:
        """The intervals ``center ± radius`` (end points rounded outwards)."""
        c = np.asarray(center, dtype=float)
        r = np.asarray(radius, dtype=float)
        if not np.any(r):
            return cls(c, c)
        return cls(down(c - r), up(c + r))

    @property
    def shape(self):
        return self.lo.shape

    def __getitem__(self, idx) -> Iv:
        return _iv(self.lo[idx], self.hi[idx])

    def __repr__(self) -> str:
        return f"Iv(lo={self.lo!r}, hi={self.hi!r})"

    # ---- measures
    def mid(self) -> np.ndarray:
        return 0.5 * (self.lo + self.hi)

    def mid_rad(self) -> tuple[np.ndarray, np.ndarray]:
        """(m, r) with [lo, hi] ⊆ [m − r, m + r]."""
        m = 0.5 * (self.lo + self.hi)
        r = np.maximum(up(self.hi - m), up(m - self.lo))
        return m, np.where(self.lo == self.hi, 0.0, r)

    def mag(self) -> np.ndarray:
        """max |x| over each interval (exact)."""
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def mig(self) -> np.ndarray:
        """min |x| over each interval (exact; 0 when it contains 0)."""
        m = np.minimum(np.abs(self.lo), np.abs(self.hi))
        return np.where((self.lo <= 0) & (self.hi >= 0), 0.0, m)

    def isfinite(self) -> np.ndarray:
        return np.isfinite(self.lo) & np.isfinite(self.hi)

    def contains(self, other) -> np.ndarray:
        o = other if isinstance(other, Iv) else Iv(other)
        return (self.lo <= o.lo) & (o.hi <= self.hi)

    def hull(self, other: Iv) -> Iv:
        return Iv(np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))

    def inflate(self, r) -> Iv:
        """Every interval grown by r ≥ 0 at both ends (rounded outwards)."""
        r = np.asarray(r, dtype=float)
        return Iv(down(self.lo - r), up(self.hi + r))

    def sanitize(self) -> Iv:
        """NaN end points (an undefined operation) replaced by the whole real line."""
        with _errstate(invalid="ignore"):  # inf − inf in the test is NaN on purpose (checked below)
            clean = not math.isnan(_sum(self.lo, None) + _sum(self.hi, None))
        if clean:  # no NaN (nor ±inf mixing): nothing to do
            return self
        bad = np.isnan(self.lo) | np.isnan(self.hi)
        return Iv(np.where(bad, -np.inf, self.lo), np.where(bad, np.inf, self.hi))

    # ---- arithmetic
    def __neg__(self) -> Iv:
        return _iv(-self.hi, -self.lo)

    def __pos__(self) -> Iv:
        return self

    def __add__(self, other) -> Iv:
        if isinstance(other, Iv):
            olo, ohi = other.lo, other.hi
            a, b = self.lo.ndim, olo.ndim
            if a == 1 and b == 1 and self.lo.shape == olo.shape:
                return _iv(*_add_vv(self.lo, self.hi, olo, ohi))
            if a == 0 and b == 1:
                return _iv(*_add_sv(float(self.lo), float(self.hi), olo, ohi))
            if a == 1 and b == 0:
                return _iv(*_add_sv(float(olo), float(ohi), self.lo, self.hi))
        elif isinstance(other, np.ndarray):  # float arrays are exact points
            olo = ohi = other
        elif isinstance(other, (int, float, np.integer, np.floating)):
            olo, ohi = _exact_scalar(other)
            if self.lo.ndim == 1:
                return _iv(*_add_sv(olo, ohi, self.lo, self.hi))
        else:
            return NotImplemented
        lo, hi = down(self.lo + olo), up(self.hi + ohi)
        return _iv(lo, hi) if lo.shape == hi.shape else Iv(lo, hi)

    __radd__ = __add__

    def __sub__(self, other) -> Iv:
        if isinstance(other, (Iv, np.ndarray, int, float, np.integer, np.floating)):
            return self + (-other)
        return NotImplemented

    def __rsub__(self, other) -> Iv:
        return (-self) + other

    def __mul__(self, other) -> Iv:
        if type(other) is Iv:  # the common case first (the kernels): the compiled 1-d cores
            a, b = self.lo.ndim, other.lo.ndim
            if a == 1:
                if b == 1 and self.lo.shape == other.lo.shape:
                    return _iv(*_mul_vv(self.lo, self.hi, other.lo, other.hi))
                if b == 0:
                    return _iv(*_mul_sv(float(other.lo), float(other.hi), self.lo, self.hi))
            elif a == 0 and b == 1:
                return _iv(*_mul_sv(float(self.lo), float(self.hi), other.lo, other.hi))
        elif isinstance(other, (int, float, np.integer, np.floating)):
            clo, chi = _exact_scalar(other)
            if clo == chi:
                if clo == 0:
                    z = np.zeros(self.shape)
                    return Iv(z, z)
                if self.lo.ndim == 1:
                    return _iv(*_scale(self.lo, self.hi, clo))
                a, b = (self.lo * clo, self.hi * clo) if clo > 0 else (self.hi * clo, self.lo * clo)
                return _iv(down(a), up(b))
            other = Iv(clo, chi)
        if isinstance(other, np.ndarray):
            other = Iv(other)
        if not isinstance(other, Iv):
            return NotImplemented
        with _errstate(invalid="ignore", over="ignore"):  # 0·inf is NaN: an undefined end point (see
            # sanitize); an overflow gives ±inf, a valid end once rounded outwards
            p1, p2 = self.lo * other.lo, self.lo * other.hi
            p3, p4 = self.hi * other.lo, self.hi * other.hi
        lo = np.minimum(np.minimum(p1, p2), np.minimum(p3, p4))
        hi = np.maximum(np.maximum(p1, p2), np.maximum(p3, p4))
        return _iv(down(lo), up(hi))

    __rmul__ = __mul__

    def __truediv__(self, other) -> Iv:
        if isinstance(other, (int, float, np.integer, np.floating)):
            other = Iv(*_exact_scalar(other))
        if not isinstance(other, Iv):
            return NotImplemented
        return self * _inv(other)

    def __rtruediv__(self, other) -> Iv:
        return Iv(*_exact_scalar(other)) * _inv(self)

    def __pow__(self, k) -> Iv:
        if isinstance(k, (int, np.integer)):
            return _ipow(self, int(k)) if k >= 0 else _inv(_ipow(self, -int(k)))
        return NotImplemented


def _iv(lo, hi) -> Iv:
    """An :class:`Iv` from two float arrays of one shape (no checks: for the operations)."""
    out = object.__new__(Iv)
    out.lo, out.hi = lo, hi
    return out


def _lift(a) -> Iv:
    return a if isinstance(a, Iv) else Iv(*_exact_scalar(a))


def stack(ivs: Sequence, axis: int = -1) -> Iv:
    """Stack interval arrays (broadcast to a common shape) along a new axis."""
    ivs = [_lift(v) for v in ivs]
    shapes = {v.shape for v in ivs}
    if len(shapes) == 1:
        return _iv(np.stack([v.lo for v in ivs], axis=axis), np.stack([v.hi for v in ivs], axis=axis))
    shape = np.broadcast_shapes(*shapes)
    lo = np.stack([np.broadcast_to(v.lo, shape) for v in ivs], axis=axis)
    hi = np.stack([np.broadcast_to(v.hi, shape) for v in ivs], axis=axis)
    return Iv(lo, hi)


# --------------------------------------------------------------------------------------------------
# powers and elementary functions
# --------------------------------------------------------------------------------------------------


def _pow_nonneg(x, k, rnd):
    """x**k for x ≥ 0 by binary powering, each product rounded by ``rnd`` (down or up)."""
    out, base = None, x
    while k:
        if k & 1:
            out = base if out is None else rnd(out * base)
        k >>= 1
        if k:
            base = rnd(base * base)
    return out


def _ipow(a, k: int):
    """a**k for an integer k ≥ 0: monotone on each sign, so the end points give the range (and 0 for
    an even k on an interval containing 0)."""
    a = _lift(a)
    if k == 0:
        return Iv(np.ones(a.shape))
    if k == 1:
        return a
    alo, ahi = np.abs(a.lo), np.abs(a.hi)
    if k % 2 == 0:
        big = np.maximum(alo, ahi)
        small = np.where((a.lo <= 0) & (a.hi >= 0), 0.0, np.minimum(alo, ahi))
        return Iv(_pow_nonneg(small, k, down), _pow_nonneg(big, k, up))
    # odd: increasing; x^k = −|x|^k for x < 0
    lo = np.where(a.lo >= 0, _pow_nonneg(alo, k, down), -_pow_nonneg(alo, k, up))
    hi = np.where(a.hi >= 0, _pow_nonneg(ahi, k, up), -_pow_nonneg(ahi, k, down))
    return Iv(lo, hi)


def _inv(a):
    a = _lift(a)
    bad = (a.lo <= 0) & (a.hi >= 0)
    with _errstate(divide="ignore", invalid="ignore", over="ignore"):  # 1/subnormal = inf: a valid end
        lo = down(1.0 / a.hi)
        hi = up(1.0 / a.lo)
    return Iv(np.where(bad, -np.inf, lo), np.where(bad, np.inf, hi))


def _sqrt(a):
    """√ on [lo, hi] ∩ [0, ∞); NaN (the whole line) when the interval reaches below −2⁻¹⁰⁷⁰, a lower
    end within 2⁻¹⁰⁷⁰ of 0 being the outward rounding of an exact 0 (a sum of squares)."""
    a = _lift(a)
    with _errstate(invalid="ignore"):
        lo = np.where(a.lo > 0, down(np.sqrt(np.maximum(a.lo, 0.0))), 0.0)
        hi = up(np.sqrt(a.hi))
    return Iv(np.where(a.lo < -(2.0**-1070), np.nan, lo), hi).sanitize()


def _rsqrt(a):
    return _inv(_sqrt(a))


def _wdown(v):
    return down(v - np.abs(v) * _LIBM - TINY)


def _wup(v):
    return up(v + np.abs(v) * _LIBM + TINY)


def _monotone(fn, increasing=True, domain=None):
    """A float-backend interval extension of a monotone numpy function (end points, widened)."""

    def ext(a):
        a = _lift(a)
        lo, hi = (a.lo, a.hi) if increasing else (a.hi, a.lo)
        with _errstate(all="ignore"):
            out = Iv(_wdown(fn(lo)), _wup(fn(hi)))
        if domain is not None:
            d0, d1 = domain
            bad = (a.lo < d0) | (a.hi > d1)
            out = Iv(np.where(bad, np.nan, out.lo), out.hi)
        return out.sanitize()

    return ext


def _log_float(a):
    a = _lift(a)
    with _errstate(all="ignore"):
        lo = np.where(a.lo > 0, _wdown(np.log(np.where(a.lo > 0, a.lo, 1.0))), -np.inf)
        hi = _wup(np.log(a.hi))
    return Iv(np.where(a.hi <= 0, np.nan, lo), hi).sanitize()


def _periodic(fn):
    """sin / cos: f(mid) ± rad (|f'| ≤ 1), clipped to [−1, 1]."""

    def ext(a):
        a = _lift(a)
        m, r = a.mid_rad()
        with _errstate(all="ignore"):
            v = fn(m)
            lo, hi = down(_wdown(v) - r), up(_wup(v) + r)
        return Iv(np.maximum(lo, -1.0), np.minimum(hi, 1.0)).sanitize()

    return ext


_sin_float, _cos_float = _periodic(np.sin), _periodic(np.cos)


def _tan_float(a):
    c = _cos_float(a)
    through_pole = (c.lo <= 0) & (c.hi >= 0)
    t = _monotone(np.tan)(a)
    return Iv(np.where(through_pole, -np.inf, t.lo), np.where(through_pole, np.inf, t.hi))


def _cosh_float(a):
    a = _lift(a)
    with _errstate(over="ignore"):
        return Iv(np.maximum(_wdown(np.cosh(a.mig())), 1.0), _wup(np.cosh(a.mag())))


def _tanh_float(a):
    t = _monotone(np.tanh)(a)
    return Iv(np.maximum(t.lo, -1.0), np.minimum(t.hi, 1.0))


def _erf_float(a):
    from scipy.special import erf

    return _monotone(erf)(a)


def _atan2(y, x):
    raise InvalidLossError("atan2 cannot be evaluated over intervals by bea.certificates.intervals (write it with atan)")


_FLOAT_FUNCS = {
    "_exp": _monotone(np.exp),
    "_log": _log_float,
    "_sin": _sin_float,
    "_cos": _cos_float,
    "_tan": _tan_float,
    "_atan": _monotone(np.arctan),
    "_asin": _monotone(np.arcsin, domain=(-1.0, 1.0)),
    "_acos": _monotone(np.arccos, increasing=False, domain=(-1.0, 1.0)),
    "_sinh": _monotone(np.sinh),
    "_cosh": _cosh_float,
    "_tanh": _tanh_float,
    "_erf": _erf_float,
}


def _arb_func(name):
    """An "arb"-backend interval extension: every entry enclosed by python-flint."""

    def ext(a):
        a = _lift(a)
        m, r = a.mid_rad()
        shape = np.broadcast_shapes(m.shape, r.shape)
        m, r = np.broadcast_to(m, shape).ravel(), np.broadcast_to(r, shape).ravel()
        lo, hi = np.empty(m.size), np.empty(m.size)
        for i in range(m.size):
            if not (math.isfinite(m[i]) and math.isfinite(r[i])):
                lo[i], hi[i] = -_INF, _INF
                continue
            v = getattr(arb(float(m[i]), float(r[i])), name)()
            lo[i], hi[i] = lower(v), upper(v)
        return Iv(lo.reshape(shape), hi.reshape(shape))

    return ext


_ARB_FUNCS = {k: _arb_func(k[1:]) for k in _FLOAT_FUNCS}


def _powr_factory(funcs):
    def powr(a, c):
        """a**c for a non-integer exponent: exp(c·log a)."""
        return funcs["_exp"](_lift(c) * funcs["_log"](a))

    return powr


# --------------------------------------------------------------------------------------------------
# sympy -> source (shared with bea.certificates.rigorous's arb kernels)
# --------------------------------------------------------------------------------------------------


def constant_ball(e) -> arb:
    """An arb ball containing the exact value of the sympy number ``e`` (at the current ctx.prec)."""
    if e.is_Rational:
        return arb(fmpq(int(e.p), int(e.q)))
    if e.is_Float:  # the exact binary value sympy stores
        r = sp.Rational(e)
        return arb(fmpq(int(r.p), int(r.q)))
    if e is sp.pi:
        return arb.pi()
    if e is sp.E:
        return arb(1).exp()
    if e is sp.EulerGamma:
        return arb.const_euler()
    if e is sp.Catalan:
        return arb.const_catalan()
    if e is sp.GoldenRatio:
        return (1 + arb(5).sqrt()) / 2
    raise InvalidLossError(f"bea cannot evaluate the constant {e} in interval or ball arithmetic")


_SYMPY_FUNCS = {
    sp.exp: "_exp",
    sp.log: "_log",
    sp.sin: "_sin",
    sp.cos: "_cos",
    sp.tan: "_tan",
    sp.atan: "_atan",
    sp.asin: "_asin",
    sp.acos: "_acos",
    sp.sinh: "_sinh",
    sp.cosh: "_cosh",
    sp.tanh: "_tanh",
    sp.erf: "_erf",
    sp.atan2: "_atan2",
}


class KernelPrinter:
    """Python source of sympy expressions over an abstract number type.

    Sums and products print as ``+`` and ``*``, integers as Python ints, other numbers as ``_C[i]``
    (the sympy constant ``constants[i]``, for the backend to enclose), and powers and functions as
    calls ``_ipow(a, k)``, ``_inv(a)``, ``_sqrt``, ``_rsqrt``, ``_powr(a, c)``, ``_exp``, …
    """

    def __init__(self, names: dict):
        self.names = names
        self.constants: list = []
        self._index: dict = {}

    def const(self, e) -> str:
        if e not in self._index:
            self._index[e] = len(self.constants)
            self.constants.append(e)
        return f"_C[{self._index[e]}]"

    def __call__(self, e) -> str:
        if e in self.names:
            return self.names[e]
        if e.is_Integer:
            return f"({int(e)})"
        if e.is_Number or e.is_NumberSymbol:
            return self.const(e)
        if e.is_Add:
            return "(" + " + ".join(self(a) for a in e.args) + ")"
        if e.is_Mul:
            return "(" + "*".join(self(a) for a in e.args) + ")"
        if e.is_Pow:
            b, k = e.args
            base = self(b)
            if k.is_Integer:
                k = int(k)
                if k == 1:
                    return base
                return f"_ipow({base}, {k})" if k >= 0 else f"_inv(_ipow({base}, {-k}))"
            if k.is_Rational and k.q == 2:
                p = int(k.p)
                if p == 1:
                    return f"_sqrt({base})"
                if p == -1:
                    return f"_rsqrt({base})"
                return f"_ipow(_sqrt({base}), {p})" if p > 0 else f"_inv(_ipow(_sqrt({base}), {-p}))"
            return f"_powr({base}, {self(k)})"
        if isinstance(e, sp.Function) and e.func in _SYMPY_FUNCS:
            return f"{_SYMPY_FUNCS[e.func]}({', '.join(self(a) for a in e.args)})"
        raise InvalidLossError(
            f"bea cannot evaluate {type(e).__name__} ({e}) in interval or ball arithmetic; supported: + - * /, "
            "powers, sqrt, exp, log, sin, cos, tan, atan, asin, acos, sinh, cosh, tanh, erf, atan2"
        )

    @classmethod
    def source(cls, exprs: Sequence[sp.Expr], params: Sequence[sp.Symbol], name: str = "_kern"):
        """``(source, constants)``: a function ``name(*params, _C) -> [values]`` (common
        subexpressions shared) and the sympy constants it reads from ``_C``."""
        names = {p: f"_p{i}" for i, p in enumerate(params)}
        repl, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_z", cls=sp.Dummy), order="none")
        for i, (sym, _sub) in enumerate(repl):
            names[sym] = f"_t{i}"
        pr = cls(names)
        lines = [f"    {names[sym]} = {pr(sub)}" for sym, sub in repl]
        outs = ", ".join(pr(e) for e in reduced)
        args = ", ".join(names[p] for p in params)
        src = f"def {name}({args}{', ' if args else ''}_C):\n" + "\n".join(lines) + f"\n    return [{outs}]\n"
        return src, pr.constants


# --------------------------------------------------------------------------------------------------
# interval kernels
# --------------------------------------------------------------------------------------------------


class IntervalKernel:
    """``kern(*values) -> list[Iv]``: sympy expressions over interval arrays (one per parameter).

    Every output encloses the exact value of its expression at every point of the input boxes,
    entrywise over the batch. ``backend`` selects how elementary functions are enclosed (module
    docstring).
    """

    def __init__(self, exprs: Sequence[sp.Expr], params: Sequence[sp.Symbol], backend: str = "float"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        exprs = [sp.sympify(e) for e in exprs]
        self.params = tuple(params)
        self.size = len(exprs)
        self.backend = backend
        self.source, consts = KernelPrinter.source(exprs, self.params)
        funcs = dict(_FLOAT_FUNCS if backend == "float" else _ARB_FUNCS)
        namespace = dict(funcs, _ipow=_ipow, _inv=_inv, _sqrt=_sqrt, _rsqrt=_rsqrt, _atan2=_atan2,
                         _powr=_powr_factory(funcs))
        exec(compile(self.source, f"<bea.certificates.intervals kernel ({backend})>", "exec"), namespace)
        self._fn = namespace["_kern"]
        with ctx.workprec(max(ctx.prec, 80)):
            balls = [constant_ball(c) for c in consts]
            self._consts = [Iv(lower(b), upper(b)) for b in balls]

    def __call__(self, *values) -> list:
        with np.errstate(all="ignore"):
            _QUIET.depth += 1
            try:
                out = self._fn(*values, self._consts)
                return [_lift(v).sanitize() for v in out]
            finally:
                _QUIET.depth -= 1

    def stacked(self, batch: tuple, *values) -> Iv:
        """The outputs for boxes of shape ``batch`` stacked along a new last axis (shape batch +
        (size,)), sanitized: the same intervals as ``stack`` of :meth:`__call__`'s list, with one
        sanitize pass over the whole array instead of one per output (sanitize is entrywise)."""
        with np.errstate(all="ignore"):
            _QUIET.depth += 1
            try:
                out = self._fn(*values, self._consts)
                lo, hi = np.empty(batch + (len(out),)), np.empty(batch + (len(out),))
                for i, v in enumerate(out):
                    v = _lift(v)
                    lo[..., i], hi[..., i] = v.lo, v.hi  # a constant output broadcasts over the batch
                return _iv(lo, hi).sanitize()
            finally:
                _QUIET.depth -= 1


_KERNELS: dict = {}


def interval_kernel(exprs: Sequence[sp.Expr], params: Sequence[sp.Symbol], backend: str = "float") -> IntervalKernel:
    """The (cached) :class:`IntervalKernel` of ``exprs`` over ``params``."""
    key = (tuple(sp.sympify(e) for e in exprs), tuple(params), backend)
    kern = _KERNELS.get(key)
    if kern is None:
        kern = _KERNELS[key] = IntervalKernel(*key)
    return kern


# --------------------------------------------------------------------------------------------------
# derivatives of a loss over batches of boxes
# --------------------------------------------------------------------------------------------------


DERIVATIVES = ("grad", "hess", "hg", "dhg", "t3")


def derivative_exprs(loss, name: str) -> list:
    """The sympy expressions of one derivative of a :class:`bea.compile.loss.CompiledLoss`, flattened:
    ``"grad"`` g, ``"hess"`` the upper triangle of H row by row, ``"hg"`` Hg, ``"dhg"`` the Jacobian
    T(g, ·) + H² of Hg row by row, ``"t3"`` the entries ∂³E/∂θ_i∂θ_j∂θ_k, i ≤ j ≤ k, in
    ``combinations_with_replacement`` order."""
    n, P = loss.n, loss.params
    g = loss.grad_exprs
    H = loss.hess_expr
    if name == "grad":
        return list(g)
    if name == "hess":
        return [H[i, j] for i in range(n) for j in range(i, n)]
    hg = [sp.Add(*[H[i, j] * g[j] for j in range(n)]) for i in range(n)]
    if name == "hg":
        return hg
    if name == "dhg":
        return [sp.diff(hg[i], P[j]) for i in range(n) for j in range(n)]
    if name == "t3":
        return [sp.diff(H[i, j], P[k]) for i, j, k in combinations_with_replacement(range(n), 3)]
    raise KeyError(f"unknown derivative {name!r}; one of {DERIVATIVES}")


def t3_multiplicities(n: int) -> list:
    """How many entries of a symmetric n×n×n tensor each sorted index triple stands for (the entries
    of ∇³E are stored once per ``combinations_with_replacement(range(n), 3)``)."""
    return [len(set(permutations(idx))) for idx in combinations_with_replacement(range(n), 3)]


class BoxLoss:
    """g = ∇E, H = ∇²E, Hg, D(Hg) and ∇³E of a :class:`bea.compile.loss.CompiledLoss` over a batch of boxes.

    A batch of boxes is an :class:`Iv` of shape (..., n) (the last axis the parameters); every
    method returns interval arrays over the same batch. Kernels are built lazily per backend.
    """

    def __init__(self, loss, backend: str = "float"):
        self.loss = loss
        self.params = loss.params
        self.n = loss.n
        self.backend = backend
        self._kernels: dict = {}
        self._index: dict = {}  # index arrays and multiplicities, built once (they depend on n only)

    def _indices(self, what):
        v = self._index.get(what)
        if v is None:
            n = self.n
            if what == "hess":
                v = np.zeros((n, n), dtype=int)
                it = 0
                for i in range(n):
                    for j in range(i, n):
                        v[i, j] = v[j, i] = it
                        it += 1
            elif what == "t3":
                pos = {idx: i for i, idx in enumerate(combinations_with_replacement(range(n), 3))}
                v = np.array([[[pos[tuple(sorted((i, j, k)))] for k in range(n)] for j in range(n)] for i in range(n)])
            else:  # "mult"
                v = np.array(t3_multiplicities(n), dtype=float)
            self._index[what] = v
        return v

    def _kernel(self, name):
        k = self._kernels.get(name)
        if k is None:
            k = self._kernels[name] = interval_kernel(derivative_exprs(self.loss, name), self.params, self.backend)
        return k

    def _eval(self, name, boxes: Iv) -> list:
        args = [boxes[..., i] for i in range(self.n)]
        batch = boxes.shape[:-1]
        return [v if v.lo.shape == batch else Iv(np.broadcast_to(v.lo, batch), np.broadcast_to(v.hi, batch))
                for v in self._kernel(name)(*args)]

    def _stacked(self, name, boxes: Iv) -> Iv:
        """``stack(self._eval(name, boxes), axis=-1)`` (the same intervals), in one pass."""
        return self._kernel(name).stacked(boxes.shape[:-1], *[boxes[..., i] for i in range(self.n)])

    def grad(self, boxes: Iv) -> Iv:
        """∇E over each box, shape (..., n)."""
        return self._stacked("grad", boxes)

    def hg(self, boxes: Iv) -> Iv:
        """H g over each box, shape (..., n)."""
        return self._stacked("hg", boxes)

    def hess(self, boxes: Iv) -> Iv:
        """∇²E over each box, shape (..., n, n) (symmetric)."""
        s = self._stacked("hess", boxes)
        idx = self._indices("hess")
        return Iv(s.lo[..., idx], s.hi[..., idx])

    def dhg_norm(self, boxes: Iv) -> np.ndarray:
        """Upper bound of ‖D(Hg)‖_F over each box (a Lipschitz constant of Hg there)."""
        return norm_upper(self._stacked("dhg", boxes))

    def t3_entries(self, boxes: Iv) -> Iv:
        """The distinct entries T_ijk (i ≤ j ≤ k, in ``combinations_with_replacement`` order) of
        ∇³E over each box, shape (..., m)."""
        return self._stacked("t3", boxes)

    def t3_tensor(self, entries: Iv) -> Iv:
        """The full symmetric tensor, shape (..., n, n, n), from :meth:`t3_entries`."""
        idx = self._indices("t3")
        return Iv(entries.lo[..., idx], entries.hi[..., idx])

    def t3_norm(self, boxes: Iv | None = None, *, entries: Iv | None = None) -> np.ndarray:
        """Upper bound of ‖∇³E‖_F over each box (or from precomputed :meth:`t3_entries`); it bounds
        the Hessian-Lipschitz constant there: ‖H(u) − H(v)‖₂ ≤ sup‖∇³E‖_F·‖u − v‖ on a convex box.
        Each stored entry T_ijk (i ≤ j ≤ k) counts with the number of its index permutations."""
        if entries is None:
            entries = self.t3_entries(boxes)
        mult = self._indices("mult")
        return norm_upper(entries, weights=mult)

    def picard(self, Y: Iv, tau: float, *, iterations: int = 12, guess: Iv | None = None):
        """A-priori enclosures of the gradient flow from each box of Y over [0, tau].

        Returns ``(B, f, ok)``: boxes B with Y + [0, tau]·(−g(B)) ⊆ B where ``ok`` (so B contains the
        whole flow, Picard–Lindelöf), f = −g(B), and ``ok`` a boolean per box. ``guess``: boxes where
        the flow is expected (e.g. the hull of the integrated flow at both ends of the step), a start
        for the iteration — the test is the same, so any guess is safe."""
        T = Iv(0.0, up(tau))  # contains [0, tau]
        f = -self.grad(Y)
        B = Y + T * f
        if guess is not None:
            B = B.hull(guess)
        shape = Y.shape[:-1]
        ok = np.zeros(shape, dtype=bool)
        outB, outf = Iv(np.full(Y.shape, -np.inf), np.full(Y.shape, np.inf)), Iv(np.full(Y.shape, -np.inf), np.full(Y.shape, np.inf))
        for it in range(iterations):
            grow = 0.25 if it < 4 else 1.0
            m, r = B.mid_rad()
            Bi = B.inflate(r * grow + 2.0**-60 * (np.abs(m) + 1e-300) + 1e-300)
            fi = -self.grad(Bi)
            cand = Y + T * fi
            good = np.all(Bi.contains(cand) & fi.isfinite(), axis=-1) & ~ok
            if np.any(good):
                outB.lo[good], outB.hi[good] = cand.lo[good], cand.hi[good]
                outf.lo[good], outf.hi[good] = fi.lo[good], fi.hi[good]
                ok |= good
            if ok.all():
                break
            B = cand.hull(B)
        return outB, outf, ok


_BOXLOSS: dict = {}


def box_loss(loss, backend: str = "float") -> BoxLoss:
    """The cached :class:`BoxLoss` of a :class:`bea.compile.loss.CompiledLoss`."""
    key = (loss.expr, loss.params, backend)
    bl = _BOXLOSS.get(key)
    if bl is None:
        bl = _BOXLOSS[key] = BoxLoss(loss, backend)
    return bl


# --------------------------------------------------------------------------------------------------
# norms and batched linear algebra
# --------------------------------------------------------------------------------------------------


def norm_upper(v, axis=-1, weights=None) -> np.ndarray:
    """Upper bound of max ‖x‖₂ over the boxes of ``v`` (an :class:`Iv`, or floats: |v|), along
    ``axis``; ``weights`` multiply the squares (√Σ w_i x_i²). An exactly zero box gives exactly 0;
    a non-finite one inf."""
    a = v.mag() if isinstance(v, Iv) else np.abs(np.asarray(v, dtype=float))
    n = a.shape[axis] if a.ndim else 1
    with np.errstate(over="ignore", invalid="ignore"):
        sq = a * a if weights is None else (a * a) * weights
        s = _sum(sq, axis)
        # squares, weights and the sum in round to nearest: ≤ n + 2 roundings deep
        out = up(np.sqrt(inflate_sum(s, n + 2)))
    zero = s == 0
    if zero.any():  # (skipped when no sum is 0: np.where would copy out unchanged)
        out = np.where(zero, np.where(np.all(a == 0, axis=axis), 0.0, out), out)
    nan = np.isnan(out)
    return np.where(nan, np.inf, out) if nan.any() else np.asarray(out)


def mr_matmul(Am, Ar, Bm, Br):
    """Midpoint–radius product of (batched) interval matrices: the exact A·B of every A ∈ Am ± Ar,
    B ∈ Bm ± Br lies in C ± R (returned as (C, R)). ``Ar``/``Br`` may be None (point matrices)."""
    n = Am.shape[-1]
    C = Am @ Bm
    with np.errstate(over="ignore", invalid="ignore"):
        aA, aB = np.abs(Am), np.abs(Bm)
        R = (2.0 * (n + 1) * U) * (aA @ aB)  # rounding of the float product (γ_n with room)
        if Br is not None:
            R = R + aA @ Br
        if Ar is not None:
            R = R + Ar @ (aB if Br is None else aB + Br)
        R = inflate_sum(R, 2 * n + 4)
    return C, R


def _sym_mid_rad(H: Iv):
    m, r = H.mid_rad()
    mT = np.swapaxes(m, -1, -2)
    ms = 0.5 * (m + mT)
    # the symmetrised midpoint moves by at most |m − mᵀ|/2 (+ its rounding)
    r = up(r + up(0.5 * np.abs(m - mT)) + U * np.abs(ms))
    return ms, r


def _orth_defect(Q):
    """δ ≥ ‖QᵀQ − I‖₂ for float matrices Q (batched), from the Frobenius norm of the float QᵀQ − I
    plus the rounding of the product (|Q|ᵀ|Q| has entries ≤ 1 + δ for a near-orthogonal Q)."""
    n = Q.shape[-1]
    QtQ = np.swapaxes(Q, -1, -2) @ Q
    F = QtQ - np.eye(n)
    aQ = np.abs(Q)
    round_err = (2.0 * (n + 2) * U) * (np.swapaxes(aQ, -1, -2) @ aQ) + U * np.abs(QtQ)
    return inflate_sum(np.sqrt(np.sum((np.abs(F) + round_err) ** 2, axis=(-1, -2))), n * n + 2)


def _float_eigenvectors(mid):
    """Float eigenvectors of symmetric matrices (batched; the identity where mid is not finite)."""
    n = mid.shape[-1]
    Q = np.broadcast_to(np.eye(n), mid.shape).copy()
    good = np.all(np.isfinite(mid), axis=(-1, -2))
    if np.any(good):
        try:
            Q[good] = np.linalg.eigh(mid[good])[1]
        except np.linalg.LinAlgError:  # pragma: no cover
            pass
    return Q


def eig_bounds(H: Iv, Q=None) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous (lo, hi) for the spectrum of every symmetric matrix in each interval matrix of the
    batch H (shape (..., n, n)): Gershgorin on QᵀHQ and Ostrowski's theorem (module docstring).
    ``Q``: float bases to use (default: the eigenvectors of the midpoints)."""
    n = H.shape[-1]
    finite = np.all(H.isfinite(), axis=(-1, -2))
    if n == 1:
        lo, hi = H.lo[..., 0, 0], H.hi[..., 0, 0]
        return np.where(finite, lo, -np.inf), np.where(finite, hi, np.inf)
    Hm, Hr = _sym_mid_rad(H)
    Hm = np.where(finite[..., None, None], Hm, 0.0)
    Hr = np.where(finite[..., None, None], Hr, 0.0)
    if Q is None:
        Q = _float_eigenvectors(Hm)
    Qt = np.swapaxes(Q, -1, -2)
    Bm, Br = mr_matmul(*mr_matmul(Qt, None, Hm, Hr), Q, None)
    delta = _orth_defect(Q)
    diag = np.diagonal(Bm, axis1=-2, axis2=-1)
    off = np.sum(np.abs(Bm), axis=-1) - np.abs(diag) + np.sum(Br, axis=-1)
    R = inflate_sum(off, n + 2)
    mu_lo = down(diag - R).min(axis=-1)
    mu_hi = up(diag + R).max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        good = delta < 0.5
        lo = down(np.where(mu_lo < 0, mu_lo / down(1.0 - delta), mu_lo / up(1.0 + delta)))
        hi = up(np.where(mu_hi > 0, mu_hi / down(1.0 - delta), mu_hi / up(1.0 + delta)))
    ok = finite & good
    return np.where(ok, lo, -np.inf), np.where(ok, hi, np.inf)


@dataclass
class Eigenbases:
    """Float bases Q_k (columns: eigenvectors of the midpoint Hessians) with Q_k⁻¹ ∈ Q_kᵀ ± κ_k
    entrywise, ‖Q_k‖₂ ≤ ``norm``, ‖Q_k⁻¹‖₂ ≤ ``inv_norm`` and the 2-norms of the rows of Q_k⁻¹ ≤
    ``inv_rows`` (module docstring)."""

    Q: np.ndarray  # (K, n, n)
    kappa: np.ndarray  # (K,)
    norm: np.ndarray
    inv_norm: np.ndarray
    inv_rows: np.ndarray  # (K, n)

    def __getitem__(self, idx) -> Eigenbases:
        return Eigenbases(self.Q[idx], self.kappa[idx], self.norm[idx], self.inv_norm[idx], self.inv_rows[idx])


def eigenbases(H: Iv) -> Eigenbases:
    """The :class:`Eigenbases` of a batch of interval Hessians (shape (K, n, n))."""
    n = H.shape[-1]
    Hm, _ = _sym_mid_rad(H)
    Q = _float_eigenvectors(Hm)
    delta = _orth_defect(Q)
    bad = ~(delta < 0.5)
    if np.any(bad):  # an eigh result that is not near-orthogonal: fall back to the identity
        Q[bad] = np.eye(n)
        delta = np.where(bad, 0.0, delta)
    kappa = up(up(delta * up(np.sqrt(up(1.0 + delta)))) / down(1.0 - delta))
    kappa = np.where(delta == 0, 0.0, kappa)
    norm = up(np.sqrt(up(1.0 + delta)))
    inv_norm = up(1.0 / down(np.sqrt(down(1.0 - delta))))
    rows = up(norm_upper(np.swapaxes(Q, -1, -2), axis=-1) + kappa[..., None] * math.sqrt(n))
    return Eigenbases(Q, kappa, norm, inv_norm, rows)


def similar(bases_left: Eigenbases, M_mid, M_rad, right=None):
    """Midpoint–radius enclosure of Q_L⁻¹·M·Q_R (batched): Q_L⁻¹ from ``bases_left`` (Qᵀ ± κ),
    M ∈ M_mid ± M_rad, Q_R = ``right`` (float matrices; None: the identity, e.g. for a vector
    M of shape (K, n, 1))."""
    QL = bases_left.Q
    Lm = np.swapaxes(QL, -1, -2)
    Lr = np.broadcast_to(bases_left.kappa[..., None, None], Lm.shape)
    C, R = mr_matmul(Lm, Lr, M_mid, M_rad)
    if right is not None:
        C, R = mr_matmul(C, R, right, None)
    return C, R
