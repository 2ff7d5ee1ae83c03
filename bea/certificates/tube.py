r"""The bound recursions of :mod:`bea.certificates.certify` and :mod:`bea.torch.certify`, and the tube they need.

Both certificates bound e_k ≥ ‖θ_k − y_k‖ (GD iterate against the gradient flow at t = kh) by a
recursion whose coefficients depend on the loss in a neighbourhood of the flow: the Hessian's
Lipschitz constant M_k (``mode="discrete"``) or λ₋ and a Lipschitz constant of Hg (``"theorem1"``)
must hold wherever the segment between θ_k and y_k (or the fan of flow lines) can be. This module
runs those recursions given

* :class:`StepBounds`: what does not depend on the neighbourhood (spectral bounds of H at y_k, the
  local-error bound ℓ_k, the rounding ε_k, and, for the componentwise refinement, the propagators
  in local eigenbases), and
* a :class:`Tube`: the neighbourhood-dependent quantities (:class:`TubeData`) for the tube of
  radius r around the flow, computed by the caller's ``compute(r)`` and cached on a geometric grid
  of radii.

The tube follows the bound
--------------------------
A single radius r for the whole run (valid while max_k e_k ≤ r) is a fixed-point problem in r: M is
bounded in the r-tube, the recursion with that M must stay below r. Its smallest solution can lie
anywhere between the bound of the first steps and the parameters' scale, and a search seeded by an
r = 0 pass collapses exactly when that pass runs away. The recursion does not need one radius: the
mean-value argument at step k only uses the segment [y_k, θ_k], which lies in the ball of radius
e_k around y_k (e_k is known before step k is taken). So at every step the tube radius is chosen as

    r_k = the smallest grid radius r_min·f^j ≥ e_k,     M_k = M(r_k) at step k,

and the step is valid by construction. There is nothing left to search, and nothing to collapse:
the tube is as thin as the bound itself at every step (smaller M early in the run than any single
radius), and the only way the recursion stops is that the bound itself runs off (M(r_k)·e_k feeds
back into ρ_k, or the quantities of the r_k-tube are not finite, or exceed ``r_max``) — the reason
then names the step, e_k, r_k and the radii tried. With a user-given radius (``radius=r``) the old
rule applies: M(r) for every step and the bound is proven while e_k ≤ r.

Recursions (upward rounding in floats: every result is rounded up one ulp per operation, with the
absolute error of ``1 − hμ`` bounded separately)
------------------------------------------------------------------------------------------------
``discrete`` (module docstring of :mod:`bea.certificates.certify`)::

    e_{k+1} = ρ_k(e_k)·e_k + ℓ_k + ε_k,
    ρ_k(e) = max(|1 − h(λ_lo,k − M_k e/2)|, |1 − h(λ_hi,k + M_k e/2)|)

and, componentwise in eigenbases Q_k (z_k = Q_k⁻¹(θ_k − y_k), Z_k ≥ |z_k| entrywise)::

    Z_{k+1} = |P_k|·Z_k + (h/2)·(Σ_jl C_k,ijl Z_k,j Z_k,l)_i + L_k + ε_k·rows_{k+1}
    e_{k+1} = min(scalar, ‖Q_{k+1}‖·‖Z_{k+1}‖),   Z_{k+1} ← min(Z_{k+1}, rows_{k+1}·e_{k+1})

with C_k ≥ |Q_{k+1}⁻¹ T Q_k Q_k| (T = ∇³E over the tube, contracted: the second-order term of
g(θ) − g(y) − H(y)(θ − y) = ∫₀¹(1 − s)T(y + s(θ − y))[θ − y, θ − y]ds, ∫(1 − s)ds = ½) or, when the
caller has no tensor (``C is None``), the isotropic h‖Q_{k+1}⁻¹‖‖Q_k‖(M_k e_k/2)‖Z_k‖ on every
component.

``theorem1``::

    E_{k+1} = γ_k E_k + ℓ_k + (h²/2)·L_k·γ_k E_k + ε_k,   γ_k = exp(−h·λ₋,k),

with the tube at step k chosen so that it contains the fan lines during the step: r_k ≥ γ_k(r_k)·E_k.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

__all__ = ["StepBounds", "Recentred", "TubeData", "Tube", "BoundResult", "discrete_bound", "theorem1_bound"]

_U = 2.0**-53
_TINY = 2.0**-1060
_INF = math.inf


@numba.njit(cache=True)
def _up(x):
    return np.nextafter(x, _INF)


@numba.njit(cache=True)
def _dn(x):
    return np.nextafter(x, -_INF)


@numba.njit(cache=True)
def _abs_one_minus_up(hmu):
    """≥ |1 − hμ| when hmu is within one rounding of h·μ: |1 − hmu| plus the absolute errors of the
    product and the subtraction."""
    return _up(abs(1.0 - hmu) + 4.0 * _U * (1.0 + abs(hmu)) + _TINY)


@numba.njit(cache=True)
def _up_vec(x, terms):
    """:func:`bea.certificates.intervals.inflate_sum` (the same formula, compiled: scalars and arrays)."""
    return np.nextafter(x * (1.0 + 4.0 * (terms + 4) * _U) + (terms + 1) * _TINY, _INF)


@numba.njit(cache=True)
def _norm_up(v, n):
    s = float(_up_vec(np.dot(v, v), n))
    return _up(math.sqrt(s)) if s > 0 else 0.0


@dataclass
class StepBounds:
    """The ingredients of the discrete recursion that do not depend on the tube.

    Arrays over the steps k = 0..K−1 (``lam_lo``, ``lam_hi``, ``rows``, ``nQ``, ``nQinv`` over the
    points k = 0..K). ``lam_lo ≤ λ_min(H(y_k))``, ``lam_hi ≥ λ_max(H(y_k))``; ``ell`` ≥ the local error
    ‖Φ(y_k) − φ_h(y_k)‖; ``eps`` ≥ the rounding of the GD step. Componentwise refinement (all or
    none): ``absP[k]`` ≥ |Q_{k+1}⁻¹(I − hH(y_k))Q_k| entrywise, ``L[k]`` ≥ |Q_{k+1}⁻¹(Φ(y_k) −
    φ_h(y_k))|, ``rows[k]`` ≥ the 2-norms of the rows of Q_k⁻¹, ``nQ``, ``nQinv`` ≥ ‖Q_k‖, ‖Q_k⁻¹‖.
    """

    h: float
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    ell: np.ndarray
    eps: np.ndarray
    absP: np.ndarray | None = None
    L: np.ndarray | None = None
    rows: np.ndarray | None = None
    nQ: np.ndarray | None = None
    nQinv: np.ndarray | None = None

    @property
    def K(self) -> int:
        return int(len(self.ell))

    @property
    def componentwise(self) -> bool:
        return self.absP is not None


@dataclass
class TubeData:
    """What the recursions need from the tube of one radius, per step k = 0..K−1.

    ``M``: Hessian-Lipschitz bound in the tube (discrete); ``C``: componentwise second-order
    coefficients, shape (K, n, n, n), or None; ``N``: ≥ sup ‖T − T̃_k‖_F over the tube (re-centred
    remainder with a second-order D); ``lam_neg``, ``L``: min(0, λ_min) and a Lipschitz
    constant of Hg over the flow during the step grown by the radius (theorem1); ``smooth``: False
    where the loss is not known to be smooth in the tube (e.g. a ReLU activation pattern may change),
    with ``why`` saying so.
    """

    M: np.ndarray | None = None
    C: np.ndarray | None = None
    N: np.ndarray | None = None
    lam_neg: np.ndarray | None = None
    L: np.ndarray | None = None
    smooth: np.ndarray | None = None
    why: str = ""


class Tube:
    """Tube data computed lazily, per window of steps, at radii just above what the bound needs.

    ``compute(r, start, stop) -> TubeData`` for the tube of radius r around the flow over the steps
    start..stop−1 (arrays indexed from ``start``). :meth:`at_least` returns, for step k and a bound
    ``need``, data of a radius R ≥ need: a radius already computed for k's window when one lies in
    [need, reuse·need], otherwise a new one, R = max(margin·need, r_min) (the margin lets the next
    steps of the window reuse it while the bound grows). Below ``coarse`` a thin tube hardly changes
    the data, so the margin and the reuse factor are ``coarse_margin`` and 4·``coarse_margin``
    there (fewer evaluations while the bound is small). :meth:`exact` gives the data of one given
    radius. ``r_max``: no tube beyond it (the recursion stops there).
    """

    def __init__(self, compute: Callable[[float, int, int], TubeData], *, r_min: float, K: int,
                 margin: float = 1.5, reuse: float = 3.0, r_max: float = _INF, window: int = 32,
                 coarse: float = 0.0, coarse_margin: float = 8.0):
        if not (r_min > 0 and margin > 1 and reuse >= margin and window >= 1 and coarse_margin >= margin):
            raise ValueError("need r_min > 0, margin > 1, reuse >= margin, coarse_margin >= margin and window >= 1")
        self.compute = compute
        self.r_min = float(r_min)
        self.margin = float(margin)
        self.reuse = float(reuse)
        self.r_max = float(r_max)
        self.K = int(K)
        self.window = int(window)
        self.coarse = float(coarse)
        self.coarse_margin = float(coarse_margin)
        self._cache: dict = {}  # window -> {radius: data}
        self._radii: set = set()

    def _window(self, k):
        w = k // self.window
        return self._cache.setdefault(w, {}), w * self.window

    def _compute(self, table, start, r):
        d = table[r] = self.compute(r, start, min(start + self.window, self.K))
        self._radii.add(r)
        return d

    def at_least(self, need: float, k: int) -> tuple[float, TubeData, int]:
        """(R, data, i) with R ≥ need: the data of the tube of radius R for k's window, at index i."""
        table, start = self._window(k)
        thin = need < self.coarse
        margin, reuse = (self.coarse_margin, 4 * self.coarse_margin) if thin else (self.margin, self.reuse)
        fits = [r for r in table if need <= r <= reuse * max(need, self.r_min)]
        if fits:
            R = min(fits)
            return R, table[R], k - start
        R = max(margin * need, self.r_min)
        if thin:
            R = min(R, max(self.coarse, need))
        return R, self._compute(table, start, R), k - start

    def exact(self, r: float, k: int) -> tuple[TubeData, int]:
        table, start = self._window(k)
        r = float(r)
        d = table.get(r)
        return (d if d is not None else self._compute(table, start, r)), k - start

    @property
    def tried(self) -> list:
        """The radii whose tube data were computed (for some window), in increasing order."""
        return sorted(self._radii)

    @property
    def evaluations(self) -> int:
        """How many (radius, window) pairs were computed."""
        return sum(len(t) for t in self._cache.values())


@dataclass
class BoundResult:
    """The outcome of a bound recursion.

    ``e[k]`` ≥ ‖θ_k − y_k‖ for k < ``valid`` (``valid = K + 1`` when every step is proven; the entries
    from ``valid`` on are inf). ``radius[k]``, ``M[k]``: the tube radius and the Hessian-Lipschitz
    bound (discrete) used at step k; ``need[k]``: what the tube had to cover at step k (the bound of
    the distance, or of the remainder around D_k when re-centred): ``radius[k] ≥ need[k]``. ``failure``: why the recursion stopped ("" if it did not),
    with the numbers. ``tried``: every tube radius whose data were computed.
    """

    e: np.ndarray
    radius: np.ndarray
    M: np.ndarray
    valid: int
    failure: str = ""
    need: np.ndarray | None = None
    tried: list = field(default_factory=list)
    adaptive: bool = True

    @property
    def max_radius(self) -> float:
        r = self.radius[np.isfinite(self.radius)]
        return float(r.max()) if r.size else 0.0


def _radii_text(tube: Tube) -> str:
    t = tube.tried
    if not t:
        return "no tube computed"
    if len(t) <= 6:
        return "radii tried " + ", ".join(f"{r:.3g}" for r in t)
    return f"{len(t)} radii tried from {t[0]:.3g} to {t[-1]:.3g}"


def _choose(tube: Tube, k: int, need: float, radius, h_check=None):
    """(R, data, i, failure) of the tube to use at step k for a bound ``need``."""
    if radius is not None:
        data, i = tube.exact(radius, k)
        return radius, data, i, ""
    if not math.isfinite(need):
        return math.nan, None, 0, f"the bound is not finite at step {k}"
    R, data, i = tube.at_least(need, k)
    if h_check is not None:  # theorem1: the fan must stay inside during the step
        ok = False
        for _ in range(64):
            ok, hopeless = h_check(data, i, need, R)
            if ok or hopeless or R > tube.r_max:
                break
            R, data, i = tube.at_least(R * tube.margin, k)
        if not ok and not R > tube.r_max:
            return R, None, i, (f"no tube holds the fan of flow lines at step {k} (bound {need:.3g}; the growth "
                                f"exp(−h·λ₋) over the tube of radius {R:.3g} is not finite); {_radii_text(tube)}")
    if R > tube.r_max:
        return R, None, i, (f"the bound {need:.3g} at step {k} needs a tube of radius {R:.3g}, beyond the "
                            f"largest allowed ({tube.r_max:.3g}): the bound ran away")
    return R, data, i, ""


def _fail_text(data: TubeData, i: int, k: int, R: float, e: float, tube: Tube) -> str:
    if data.smooth is not None and not bool(data.smooth[i]):
        return (f"{data.why} (step {k}, tube radius r = {R:.3g} around the flow, bound {e:.3g}); "
                f"{_radii_text(tube)}")
    return ""


@dataclass
class Recentred:
    """The error re-centred at float vectors D_k computed along the flow (module docstring).

    ``D[k]`` (k = 0..K) with ``Dnorm[k]`` ≥ ‖D_k‖; ``lin[k]`` ≥ h‖H(y_k) − H̃_k‖₂‖D_k‖ + ‖δ_k − δ̃_k‖ +
    ‖f_k‖ (the terms of the remainder recursion that do not depend on it); ``Mt[k]`` ≥ ‖T̃_k‖_F when
    D carries the second-order term −(h/2)T̃_k[D_k, D_k], None when D is first order;
    ``lam_lo[k]``, ``lam_hi[k]``: bounds of the spectrum of the remainder's linear part, H(y_k) +
    T̃_k[D_k] (second-order D) or H(y_k) (first-order D).
    """

    D: np.ndarray
    Dnorm: np.ndarray
    lin: np.ndarray
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    Mt: np.ndarray | None = None


def _accept(e, k, ek, enext, R, radius, tube, extra, controlled) -> str:
    """Store e_{k+1} = enext; the reason the recursion must stop there ("" if none)."""
    if not math.isfinite(enext):
        return (f"the bound ran away at step {k + 1} (from {ek:.3g} at step {k}, tube radius r = {R:.3g}{extra}); "
                f"{_radii_text(tube)}")
    e[k + 1] = enext
    if radius is not None and not enext <= radius:
        return (f"the bound left the tube of radius r = {radius:.3g} around the flow at step {k + 1} "
                f"(bound {enext:.3g} > r): beyond it {controlled} not controlled")
    return ""


_Steps = namedtuple("_Steps", "lam_lo lam_hi ell eps absP L rows nQ nQinv")
_Rec = namedtuple("_Rec", "lam_lo lam_hi lin Dnorm Mt")


def _f64(x, shape=(1,)):
    return np.zeros(shape) if x is None else np.ascontiguousarray(x, dtype=np.float64)


@numba.njit(cache=True)
def _run_steps(k, stop, start, i, ek, Wk, Z, h, h2, steps, rec, n, comp, recentre, fixed, radius, R,
               dM, dC, hasC, dN, hasMt, dsmooth, hasSmooth, cached, coarse, coarse_reuse, reuse, r_min,
               e, radii, Ms, needs):
    """The recursion of :func:`discrete_bound` from step k (its tube: radius R, data dM, dC, dN, dsmooth
    of k's window from ``start``, index i) on while the steps use the same tube data and no check fails.

    Returns (k, ek, Wk, enext, status): status 0: steps up to k − 1 done (e[k] = ek stored), step k
    needs the caller (another tube, the window's end, a failed check); status 1: step k computed with
    e_{k+1} = enext not yet accepted (not finite, or beyond the user-given radius). Z is updated in place.
    """
    while True:
        M = dM[i]
        lam_lo, lam_hi = float(steps.lam_lo[k]), float(steps.lam_hi[k])
        Me2 = _up(_up(M * ek) / 2) if ek > 0 and M > 0 else 0.0
        r_a = _abs_one_minus_up(h * _dn(lam_lo - Me2))
        r_b = _abs_one_minus_up(h * _up(lam_hi + Me2))
        rho = r_b if r_b > r_a else r_a  # = max(r_a, r_b)
        ell_eps = _up(float(steps.ell[k]) + float(steps.eps[k]))
        enext = float(_up_vec(rho * ek + ell_eps, 3))
        Zn = Z
        if comp:
            quad = np.empty(n)
            if hasC:
                for a in range(n):
                    acc = 0.0
                    for j in range(n):
                        for l in range(n):
                            acc += dC[i, a, j, l] * Z[j] * Z[l]
                    quad[a] = h2 * acc
            else:
                zn = _norm_up(Z, n)
                quad[:] = h * float(steps.nQinv[k + 1]) * float(steps.nQ[k]) * M * ek / 2 * zn
            Zn = _up_vec(steps.absP[k] @ Z + quad + steps.L[k] + steps.rows[k + 1] * float(steps.eps[k]), 2 * n * n + 4)
            t = _up(float(steps.nQ[k + 1]) * _norm_up(Zn, n))
            enext = t if t < enext else enext
        if recentre:
            # remainder w = d − D: W_{k+1} = ρ¹W + lin + ε + (h/2)·N·e² (+ (h/2)·M̃·W²)
            r_a = _abs_one_minus_up(h * float(rec.lam_lo[k]))
            r_b = _abs_one_minus_up(h * float(rec.lam_hi[k]))
            rho1 = r_b if r_b > r_a else r_a
            if hasMt:
                q2 = float(dN[i])
                cross = _up(h2 * float(rec.Mt[k]) * Wk * Wk)
            else:
                q2, cross = M, 0.0
            Wn = float(_up_vec(rho1 * Wk + float(rec.lin[k]) + float(steps.eps[k]) + h2 * q2 * ek * ek + cross, 6))
            t = _up(float(rec.Dnorm[k + 1]) + Wn)
            enext = t if t < enext else enext
            t = _up(enext + float(rec.Dnorm[k + 1]))
            Wk = t if t < Wn else Wn
        if comp:
            Zn = np.minimum(Zn, _up_vec(steps.rows[k + 1] * enext, 1))
            Z[:] = Zn
        if not math.isfinite(enext) or (fixed and not enext <= radius):
            return k, ek, Wk, enext, 1
        e[k + 1] = enext
        ek = enext
        k += 1
        i += 1
        if k >= stop:
            return k, ek, Wk, math.nan, 0
        need = Wk if recentre else ek
        if not math.isfinite(need):
            return k, ek, Wk, math.nan, 0
        if not fixed:  # Tube.at_least would choose the same radius
            thin = need < coarse
            ru = coarse_reuse if thin else reuse
            hi = ru * (r_min if r_min > need else need)
            best = math.inf
            for r in cached:
                if need <= r and r <= hi and r < best:
                    best = r
            if best != R:
                return k, ek, Wk, math.nan, 0
        if hasSmooth and not dsmooth[i]:
            return k, ek, Wk, math.nan, 0
        if not math.isfinite(dM[i]):
            return k, ek, Wk, math.nan, 0
        needs[k] = need
        radii[k], Ms[k] = R, dM[i]


def discrete_bound(steps: StepBounds, tube: Tube, *, radius: float | None = None,
                   recentred: Recentred | None = None) -> BoundResult:
    """Run the discrete recursion (module docstring) for k < K; see :class:`BoundResult`.

    ``radius=None``: the tube follows the bound (r_k = the smallest grid radius ≥ the bound of
    ‖θ_k − y_k − D_k‖, D = 0 without ``recentred``); a float: that radius at every step, proven while
    e_k ≤ radius (``recentred`` is then ignored: the tube is the ball around the flow).
    ``recentred``: also run the remainder recursion around D_k and keep the smaller bound.

    The steps themselves run in compiled code (:func:`_run_steps`), handing back here whenever the
    next step needs another tube (computed lazily, :class:`Tube`) or a check fails.
    """
    K = steps.K
    h = float(steps.h)
    rec = recentred if radius is None else None
    e = np.full(K + 1, _INF)
    e[0] = 0.0
    radii = np.full(K, np.nan)
    Ms = np.full(K, np.nan)
    needs = np.full(K, np.nan)
    comp = steps.componentwise
    n = steps.absP.shape[-1] if comp and K else 1
    Z = np.zeros(n)
    ek = 0.0
    Wk = 0.0  # ≥ ‖θ_k − y_k − D_k‖ (= e_k without re-centring)
    h2 = _up(h / 2)
    valid = K + 1
    failure = ""
    if comp:
        st = _Steps(_f64(steps.lam_lo), _f64(steps.lam_hi), _f64(steps.ell), _f64(steps.eps), _f64(steps.absP),
                    _f64(steps.L), _f64(steps.rows), _f64(steps.nQ), _f64(steps.nQinv))
    else:
        st = _Steps(_f64(steps.lam_lo), _f64(steps.lam_hi), _f64(steps.ell), _f64(steps.eps), _f64(None, (1, 1, 1)),
                    _f64(None, (1, 1)), _f64(None, (1, 1)), _f64(None), _f64(None))
    if rec is not None:
        rc = _Rec(_f64(rec.lam_lo), _f64(rec.lam_hi), _f64(rec.lin), _f64(rec.Dnorm), _f64(rec.Mt))
    else:
        rc = _Rec(_f64(None), _f64(None), _f64(None), _f64(None), _f64(None))
    fixed = radius is not None
    rad = float(radius) if fixed else math.nan
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while k < K:
            need = Wk if rec is not None else ek
            needs[k] = need
            R, data, i, failure = _choose(tube, k, need, radius)
            if failure:
                valid = k + 1
                break
            failure = _fail_text(data, i, k, R, ek, tube)
            if failure:
                valid = k + 1
                break
            M = float(data.M[i])
            radii[k], Ms[k] = R, M
            if not math.isfinite(M):
                failure = (f"no finite bound of the Hessian-Lipschitz constant in the tube of radius r = "
                           f"{R:.3g} at step {k} (bound {ek:.3g}); {_radii_text(tube)}")
                valid = k + 1
                break
            table, start = tube._window(k)
            stop = min(start + tube.window, K)
            hasC = comp and data.C is not None
            hasMt = rec is not None and rec.Mt is not None
            hasS = data.smooth is not None
            cached = np.array(sorted(table), dtype=np.float64)
            k, ek, Wk, enext, status = _run_steps(
                k, stop, start, i, ek, Wk, Z, h, h2, st, rc, n, comp, rec is not None, fixed, rad, float(R),
                _f64(data.M), _f64(data.C if hasC else None, (1, 1, 1, 1)), hasC,
                _f64(data.N if hasMt else None), hasMt,
                np.ascontiguousarray(data.smooth, dtype=np.bool_) if hasS else np.ones(1, dtype=np.bool_), hasS,
                cached, tube.coarse, 4 * tube.coarse_margin, tube.reuse, tube.r_min, e, radii, Ms, needs)
            if status == 1:
                failure = _accept(e, k, ek, enext, radii[k], radius, tube, f", M = {Ms[k]:.3g}",
                                  "the Hessian-Lipschitz constant is")
                if failure:
                    valid = k + 1
                    break
                ek = enext
                k += 1
    e[valid:] = _INF
    return BoundResult(e, radii, Ms, valid, failure, needs, tube.tried, radius is None)


def _grow(h, lam_neg):
    """γ = exp(−h·λ₋) rounded up (λ₋ ≤ 0); inf when it overflows or λ₋ is not finite."""
    x = -h * lam_neg
    if not x < 700.0:
        return _INF
    return _up(math.exp(x) * (1.0 + 8.0 * _U) + _TINY)


def theorem1_bound(h: float, ell, eps, tube: Tube, *, radius: float | None = None) -> BoundResult:
    """Run the theorem-1 recursion (module docstring) for k < len(ell)."""
    K = len(ell)
    h = float(h)
    e = np.full(K + 1, _INF)
    e[0] = 0.0
    radii = np.full(K, np.nan)
    Ms = np.full(K, np.nan)
    ek = 0.0
    valid = K + 1
    failure = ""
    h2 = _up(_up(h * h) / 2)

    def fan_inside(data, i, need, R):
        g = _grow(h, float(data.lam_neg[i]))
        return math.isfinite(g) and _up(g * need) <= R, not math.isfinite(g)

    needs = np.full(K, np.nan)
    for k in range(K):
        needs[k] = ek
        R, data, i, failure = _choose(tube, k, ek, radius, fan_inside if radius is None else None)
        if failure:
            valid = k + 1
            break
        radii[k] = R
        lam_neg, L = float(data.lam_neg[i]), float(data.L[i])
        if not (math.isfinite(lam_neg) and math.isfinite(L)):
            failure = (f"no finite bound of λ₋ or of the Lipschitz constant of Hg in the tube of radius r = {R:.3g} "
                       f"at step {k} (bound {ek:.3g}); {_radii_text(tube)}")
            valid = k + 1
            break
        g = _grow(h, lam_neg)
        gE = _up(g * ek)
        enext = float(_up_vec(gE + float(ell[k]) + h2 * L * gE + float(eps[k]), 4))
        failure = _accept(e, k, ek, enext, R, radius, tube, "", "λ₋ and the Lipschitz constant of Hg are")
        if failure:
            valid = k + 1
            break
        ek = enext
    e[valid:] = _INF
    return BoundResult(e, radii, Ms, valid, failure, needs, tube.tried, radius is None)
