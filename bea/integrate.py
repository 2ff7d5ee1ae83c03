r"""Adaptive explicit Runge–Kutta integration in numba, for real and complex states.

This is the one place where bea brings its own ODE solver: the flows of backward error analysis
(NGF, IGR, third-order, principal flow, …) are autonomous fields ``rhs(y, p)`` compiled by numba
(``p`` is a scalar parameter, typically the step size ``h`` of gradient descent), and the principal
flow is complex.  scipy's ``solve_ivp`` calls back into Python at every stage; here the whole loop
runs in nopython mode.

Methods (a method is *data*: a tableau plus its error weights; one stepping loop serves all)

``"dopri5"``
    Dormand–Prince 5(4), 7 stages with FSAL (6 new evaluations per step), error estimate of order 4,
    local extrapolation (the 5th-order solution is propagated).  Dormand & Prince, *J. Comput. Appl.
    Math.* 6 (1980) 19–26; Hairer, Nørsett & Wanner, *Solving ODEs I*, Sect. II.5, Table 5.2 and the
    code ``dopri5.f``.
``"dop853"``
    Dormand–Prince 8(5,3): 12 stages (FSAL, 12 evaluations per step), order 8, with Hairer's combined
    error estimator ``err = |h|·err5² / sqrt(n·(err5² + 0.01·err3²))`` built from an embedded 5th-order
    and an embedded 3rd-order formula (*Solving ODEs I*, Sect. II.5 and II.10, code ``dop853.f``).
    The coefficients are those of ``dop853.f``.

Step-size control (Hairer's ``dopri5.f``/``dop853.f``; *Solving ODEs I*, Sect. II.4)
    Mixed error norm ``err = ‖e_i / (atol + rtol·max(|y_i|, |ŷ_i|))‖_rms``, step accepted when
    ``err ≤ 1``; new step ``h·min(fac_max, max(fac_min, 0.9·err^{−expo}·err_old^{β}))`` (a PI
    controller; β = 0.04 for dopri5, β = 0 — the elementary controller — for dop853), no growth right
    after a rejection.  Initial step by Hairer's ``hinit`` when ``first_step`` is None.

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
    branch of log(1 − hλ) this way (:mod:`bea.flows`).  The hook must not change the field's value
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
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numba
import numpy as np
from numba import types

from bea._checks import check_positive
from bea.errors import IntegrationError, InvalidInputError, UnknownMethodError

__all__ = ["solve", "Solution", "ERKMethod", "INTEGRATORS", "DOPRI5", "DOP853", "STATUS_MESSAGES", "status_message"]

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


# shrink factor of a step whose trial values were not finite (an overshoot into overflow or outside
# the field's domain): much stronger than the controller's fac_min, so that a blow-up is found fast
_NONFINITE_SHRINK = 0.1
# stall detection (see _rk_core): window of attempted steps, and how far beyond the remaining budget
# the projected number of steps must be (twice in a row) before the run is stopped
_STALL_WINDOW = 500
_STALL_FACTOR = 100.0


# --------------------------------------------------------------------------------------------------
# methods as data
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ERKMethod:
    """An embedded explicit Runge–Kutta pair with its step-size controller constants.

    Stages ``k_i = rhs(y + h Σ_{j<i} A_ij k_j)``, ``i = 0..s−1``, new state ``ŷ = y + h Σ b_i k_i``
    and ``k_s = rhs(ŷ)`` (first same as last: it is ``k_0`` of the next step).

    Attributes
    ----------
    A, b, c : the s-stage tableau (float64; ``c = A·1``)
    E : (m, s+1) error weights acting on ``(k_0, …, k_s)``; m = 1 gives the usual estimate
        ``h Σ E_j k_j``, m = 2 is DOP853's pair (E5, E3) combined by Hairer's formula.
    order : order of the propagated solution; ``error_order`` the order of the embedded one.
    safety, fac_min, fac_max, beta, expo : controller ``h_new = h·clip(safety·err^{−expo}·err_old^{β})``.
    """

    name: str
    order: int
    error_order: int
    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    E: np.ndarray
    safety: float = 0.9
    fac_min: float = 0.2
    fac_max: float = 10.0
    beta: float = 0.0
    expo: float = 0.2
    reference: str = ""
    _ctrl: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        A = np.array(self.A, dtype=np.float64)
        b = np.array(self.b, dtype=np.float64)
        c = np.array(self.c, dtype=np.float64)
        E = np.atleast_2d(np.array(self.E, dtype=np.float64))
        s = b.shape[0]
        if A.shape != (s, s) or c.shape != (s,) or E.shape[1] != s + 1 or E.shape[0] not in (1, 2):
            raise ValueError(f"inconsistent tableau shapes for {self.name}")
        if np.any(np.triu(A) != 0):
            raise ValueError(f"{self.name}: A must be strictly lower triangular (explicit method)")
        for arr in (A, b, c, E):
            arr.setflags(write=False)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "E", E)
        ctrl = np.array([self.safety, self.fac_min, self.fac_max, self.beta, self.expo, self.order], dtype=np.float64)
        ctrl.setflags(write=False)
        object.__setattr__(self, "_ctrl", ctrl)

    @property
    def stages(self) -> int:
        return self.b.shape[0]

    def __repr__(self):
        return f"ERKMethod({self.name!r}, order={self.order}({self.error_order}), stages={self.stages})"


def _fr(x) -> Fraction:
    return Fraction(x)


def _dopri5() -> ERKMethod:
    # exact rationals (Dormand & Prince 1980; Hairer–Nørsett–Wanner I, Table II.5.2)
    F = _fr
    A = [
        [0, 0, 0, 0, 0, 0],
        [F("1/5"), 0, 0, 0, 0, 0],
        [F("3/40"), F("9/40"), 0, 0, 0, 0],
        [F("44/45"), F("-56/15"), F("32/9"), 0, 0, 0],
        [F("19372/6561"), F("-25360/2187"), F("64448/6561"), F("-212/729"), 0, 0],
        [F("9017/3168"), F("-355/33"), F("46732/5247"), F("49/176"), F("-5103/18656"), 0],
    ]
    b = [F("35/384"), 0, F("500/1113"), F("125/192"), F("-2187/6784"), F("11/84")]
    bhat = [F("5179/57600"), 0, F("7571/16695"), F("393/640"), F("-92097/339200"), F("187/2100"), F("1/40")]
    E = [bi - bh for bi, bh in zip(b + [0], bhat)]
    c = [sum(row, Fraction(0)) for row in A]
    beta = 0.04
    return ERKMethod(
        name="dopri5", order=5, error_order=4,
        A=[[float(v) for v in row] for row in A], b=[float(v) for v in b], c=[float(v) for v in c],
        E=[[float(v) for v in E]],
        safety=0.9, fac_min=0.2, fac_max=10.0, beta=beta, expo=0.2 - 0.75 * beta,
        reference="Dormand & Prince (1980); Hairer, Nørsett, Wanner, Solving ODEs I, II.5 (dopri5.f)",
    )


# DOP853 coefficients of Hairer's dop853.f (Dormand–Prince 8(5,3), Solving ODEs I, II.5).
# Rows i = 1..11 of A (row 0 is zero); written sparsely as {j: a_ij}.
_DOP853_C = (
    "0.0", "0.526001519587677318785587544488e-01", "0.789002279381515978178381316732e-01",
    "0.118350341907227396726757197510", "0.281649658092772603273242802490",
    "0.333333333333333333333333333333", "0.25", "0.307692307692307692307692307692",
    "0.651282051282051282051282051282", "0.6", "0.857142857142857142857142857142", "1.0",
)
_DOP853_A = {
    1: {0: "5.26001519587677318785587544488e-2"},
    2: {0: "1.97250569845378994544595329183e-2", 1: "5.91751709536136983633785987549e-2"},
    3: {0: "2.95875854768068491816892993775e-2", 2: "8.87627564304205475450678981324e-2"},
    4: {0: "2.41365134159266685502369798665e-1", 2: "-8.84549479328286085344864962717e-1",
        3: "9.24834003261792003115737966543e-1"},
    5: {0: "3.7037037037037037037037037037e-2", 3: "1.70828608729473871279604482173e-1",
        4: "1.25467687566822425016691814123e-1"},
    6: {0: "3.7109375e-2", 3: "1.70252211019544039314978060272e-1",
        4: "6.02165389804559606850219397283e-2", 5: "-1.7578125e-2"},
    7: {0: "3.70920001185047927108779319836e-2", 3: "1.70383925712239993810214054705e-1",
        4: "1.07262030446373284651809199168e-1", 5: "-1.53194377486244017527936158236e-2",
        6: "8.27378916381402288758473766002e-3"},
    8: {0: "6.24110958716075717114429577812e-1", 3: "-3.36089262944694129406857109825",
        4: "-8.68219346841726006818189891453e-1", 5: "2.75920996994467083049415600797e1",
        6: "2.01540675504778934086186788979e1", 7: "-4.34898841810699588477366255144e1"},
    9: {0: "4.77662536438264365890433908527e-1", 3: "-2.48811461997166764192642586468",
        4: "-5.90290826836842996371446475743e-1", 5: "2.12300514481811942347288949897e1",
        6: "1.52792336328824235832596922938e1", 7: "-3.32882109689848629194453265587e1",
        8: "-2.03312017085086261358222928593e-2"},
    10: {0: "-9.3714243008598732571704021658e-1", 3: "5.18637242884406370830023853209",
         4: "1.09143734899672957818500254654", 5: "-8.14978701074692612513997267357",
         6: "-1.85200656599969598641566180701e1", 7: "2.27394870993505042818970056734e1",
         8: "2.49360555267965238987089396762", 9: "-3.0467644718982195003823669022"},
    11: {0: "2.27331014751653820792359768449", 3: "-1.05344954667372501984066689879e1",
         4: "-2.00087205822486249909675718444", 5: "-1.79589318631187989172765950534e1",
         6: "2.79488845294199600508499808837e1", 7: "-2.85899827713502369474065508674",
         8: "-8.87285693353062954433549289258", 9: "1.23605671757943030647266201528e1",
         10: "6.43392746015763530355970484046e-1"},
}
_DOP853_B = {0: "5.42937341165687622380535766363e-2", 5: "4.45031289275240888144113950566",
             6: "1.89151789931450038304281599044", 7: "-5.8012039600105847814672114227",
             8: "3.1116436695781989440891606237e-1", 9: "-1.52160949662516078556178806805e-1",
             10: "2.01365400804030348374776537501e-1", 11: "4.47106157277725905176885569043e-2"}
# the 3rd-order embedded weights bhh differ from b only at stages 0, 8, 11
_DOP853_BHH = {0: "0.244094488188976377952755905512", 8: "0.733846688281611857341361741547",
               11: "0.220588235294117647058823529412e-1"}
_DOP853_ER = {0: "0.1312004499419488073250102996e-1", 5: "-0.1225156446376204440720569753e+1",
              6: "-0.4957589496572501915214079952", 7: "0.1664377182454986536961530415e+1",
              8: "-0.3503288487499736816886487290", 9: "0.3341791187130174790297318841",
              10: "0.8192320648511571246570742613e-1", 11: "-0.2235530786388629525884427845e-1"}


def _dop853() -> ERKMethod:
    s = 12
    A = np.zeros((s, s))
    for i, row in _DOP853_A.items():
        for j, v in row.items():
            A[i, j] = float(v)
    b = np.zeros(s)
    for j, v in _DOP853_B.items():
        b[j] = float(v)
    c = np.array([float(v) for v in _DOP853_C])
    E = np.zeros((2, s + 1))
    for j, v in _DOP853_ER.items():
        E[0, j] = float(v)
    E[1, :s] = b
    for j, v in _DOP853_BHH.items():
        E[1, j] -= float(v)
    return ERKMethod(
        name="dop853", order=8, error_order=5, A=A, b=b, c=c, E=E,
        safety=0.9, fac_min=0.333, fac_max=6.0, beta=0.0, expo=1.0 / 8.0,
        reference="Hairer, Nørsett, Wanner, Solving ODEs I, II.5 and II.10 (dop853.f)",
    )


DOPRI5 = _dopri5()
DOP853 = _dop853()
#: the integrators of :func:`solve` by name (``METHODS`` before 0.2, still accepted with a warning;
#: :data:`bea.methods.METHODS` is the registry of one-step *methods* whose modified equations bea derives)
INTEGRATORS: dict[str, ERKMethod] = {"dopri5": DOPRI5, "dop853": DOP853}


# --------------------------------------------------------------------------------------------------
# the numba core
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _all_finite(x):
    for k in range(x.shape[0]):
        if not np.isfinite(x[k]):
            return False
    return True


@numba.njit(cache=True)
def _scaled_error(K, E, h, y, ynew, rtol, atol, scale):
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
def _largest_error_term(K, E, y, ynew, rtol, atol):
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
def _error_norm(K, E, h, y, ynew, rtol, atol):
    """Scaled error of a step (Hairer's norm); m = 2 rows of E is DOP853's (err5, err3) estimate.

    The stages are divided by the scale before they are combined, so that the estimate itself
    cannot overflow while the stages are finite; when the squares of the scaled terms overflow
    (a component near 0 under a pure relative tolerance: weights ~1/atol) the norm is formed again
    with the largest term factored out.
    """
    err = _scaled_error(K, E, h, y, ynew, rtol, atol, 1.0)
    if err <= 1e300:
        return err
    big = _largest_error_term(K, E, y, ynew, rtol, atol)
    if not (big > 0.0) or math.isinf(big):
        return err
    return _scaled_error(K, E, h, y, ynew, rtol, atol, 1.0 / big) * big


@numba.njit(cache=True, error_model="numpy")
def _scaled_norm(v, y0, rtol, atol):
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
def _hinit(rhs, y0, f0, p, order, hmax, rtol, atol):
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
        nf = _scaled_norm(f0, y0, rtol, atol)
        ny = _scaled_norm(y0, y0, rtol, atol)
    h = initial_step_guess(dnf, dny, nf, ny, scaled, hmax)
    y1 = y0 + h * f0
    f1 = rhs(y1, p)
    der2 = 0.0
    for k in range(y0.shape[0]):
        der2 += (abs(f1[k] - f0[k]) / (atol + rtol * abs(y0[k]))) ** 2
    d2 = math.sqrt(der2)
    if not math.isfinite(d2):
        d2 = _scaled_norm(f1 - f0, y0, rtol, atol)
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
    if not _all_finite(K[0]):
        stats[0] = 3
        stats[1] = nfev
        return Y, stats, t, y
    if nout == 1:
        stats[1] = nfev
        return Y, stats, t_fail, y

    if first_step > 0.0:
        h = first_step
    else:
        h = _hinit(rhs, y, K[0], p, order, t_end - t, rtol, atol)
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
            if not _all_finite(K[i]):
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
            if not _all_finite(ynew):
                bad = True
        if last_in_error and not bad:
            K[s, :] = rhs(ynew, p)
            nfev += 1
            if not _all_finite(K[s]):
                bad = True
        err = np.inf
        if not bad:
            err = _error_norm(K, E, h, y, ynew, rtol, atol)
            if not (err <= 1e300):
                err = np.inf  # finite stages, an estimate too large to represent: an ordinary rejection
        if not bad and err <= 1.0 and not last_in_error:
            # DOP853: the error estimate does not need rhs(ŷ); evaluate it only for accepted steps
            K[s, :] = rhs(ynew, p)
            nfev += 1
            if not _all_finite(K[s]):
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


def __getattr__(name):
    if name == "METHODS":  # deprecated alias (three registries were all called METHODS)
        import warnings

        warnings.warn("bea.integrate.METHODS is renamed bea.integrate.INTEGRATORS", DeprecationWarning, stacklevel=2)
        return INTEGRATORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
