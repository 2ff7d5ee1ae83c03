r"""The explicit Runge–Kutta pairs of :func:`bea.integrate.solve`, as data.

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

A method is a tableau plus its error weights and controller constants (:class:`ERKMethod`); one
stepping loop (:mod:`bea.integrate.solver`) and one controller (:mod:`bea.integrate.control`) serve
all of them, in numba and in torch (:mod:`bea.torch.integrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["ERKMethod", "DOPRI5", "DOP853", "INTEGRATORS"]

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
#: :data:`bea.derive.methods.METHODS` is the registry of one-step *methods* whose modified equations bea derives)
INTEGRATORS: dict[str, ERKMethod] = {"dopri5": DOPRI5, "dop853": DOP853}
