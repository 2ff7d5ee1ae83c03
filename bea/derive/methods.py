r"""Numerical methods as exact data: Butcher tableaux with rational entries.

A Runge–Kutta method with tableau (A, b, c = A·1)

    k_i = f(y_0 + h Σ_j a_ij k_j),      y_1 = y_0 + h Σ_i b_i k_i

has the B-series y_1 = y_0 + Σ_t h^{|t|}/σ(t) · a(t) F(t)(y_0) with the *elementary weights*

    a(t) = Σ_i b_i Φ_i(t),    Φ_i(•) = 1,    Φ_i([t_1, ..., t_m]) = Π_k Σ_j a_ij Φ_j(t_k)

(Hairer, Lubich, Wanner, *Geometric Numerical Integration*, Thm III.1.4). Everything here is exact
(``fractions.Fraction``): the same tableau feeds the B-series engine (:mod:`bea.derive.series`) and, as a
float copy, numerical integrators.

Gradient descent θ_{k+1} = θ_k − h∇E(θ_k) is explicit Euler (A = 0, b = 1) applied to f = −∇E.
Any other method here, used on a loss, is that method applied to the gradient flow f = −∇E: the
modified field of ``rk4`` is the field whose exact flow matches one RK4 step of θ̇ = −∇E.

Besides one-step Runge–Kutta methods, :class:`LinearMultistep` describes two- and more-step methods
Σ_j α_j y_{n+j} = h Σ_j β_j f(y_{n+j}); heavy-ball momentum (seed 002, Eq. 20) is
:class:`Momentum`. Their modified equation describes the dynamics on the method's slow (attracting)
invariant manifold, see :mod:`bea.derive.series`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

from bea.errors import (
    ImplicitMethodError,
    InvalidMethodError,
    InvalidMomentumError,
    InvalidTableauError,
    UnknownMethodError,
)
from bea.derive.trees import LevelSequence, RootedTree, child_blocks

__all__ = [
    "ButcherTableau",
    "RungeKutta",
    "LinearMultistep",
    "Momentum",
    "get_method",
    "METHODS",
    "InvalidMethodError",
    "InvalidTableauError",
    "InvalidMomentumError",
    "ImplicitMethodError",
]


def to_fraction(value, what: str, error=InvalidTableauError) -> Fraction:
    if isinstance(value, bool):
        raise error(f"{what} must be an exact rational number, got the bool {value!r}")
    try:
        if isinstance(value, float):
            # floats are accepted only when they are exactly a short decimal (e.g. 0.5), never 0.1+eps
            frac = Fraction(value).limit_denominator(10**12)
            if float(frac) != value:
                raise ValueError
            return frac
        return Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise error(f"{what} must be an exact rational number, got {value!r}") from None


def _rows(A) -> list:
    """A as a list of rows, refusing scalars and strings with a clear message."""
    if isinstance(A, (str, bytes)) or not hasattr(A, "__iter__"):
        raise InvalidTableauError(f"A must be a square matrix (a sequence of rows), got {A!r}")
    rows = list(A)
    for r in rows:
        if isinstance(r, (str, bytes)) or not hasattr(r, "__iter__"):
            raise InvalidTableauError(f"A must be a square matrix (a sequence of rows); a row is {r!r}")
    return [list(r) for r in rows]


@dataclass(frozen=True)
class ButcherTableau:
    """An exact Runge–Kutta tableau (A, b, c).

    Parameters
    ----------
    A : s×s nested sequence of rationals (ints, ``Fraction``, strings like ``"1/3"``)
    b : length-s weights
    c : optional nodes; must equal the row sums of A when given
    name : a label used in messages and reprs
    """

    A: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    c: tuple[Fraction, ...] = field(default=None)  # type: ignore[assignment]
    name: str = "rk"

    def __post_init__(self):
        if isinstance(self.b, (str, bytes)) or not hasattr(self.b, "__iter__"):
            raise InvalidTableauError(f"b must be a sequence of weights, got {self.b!r}")
        A = tuple(tuple(to_fraction(v, "an entry of A") for v in row) for row in _rows(self.A))
        b = tuple(to_fraction(v, "an entry of b") for v in self.b)
        s = len(b)
        if s == 0:
            raise InvalidTableauError("a tableau needs at least one stage (b is empty)")
        if len(A) != s or any(len(row) != s for row in A):
            raise InvalidTableauError(
                f"A must be {s}×{s} (square, one row and column per weight in b); got {len(A)} rows of "
                f"lengths {[len(r) for r in A]}"
            )
        if sum(b, Fraction(0)) != 1:
            # Σ b_i = 1 is the first order condition; without it the method does not approximate the flow
            raise InvalidTableauError(
                f"inconsistent tableau: the weights b must sum to 1 (consistency), they sum to {sum(b, Fraction(0))}"
            )
        row_sums = tuple(sum(row, Fraction(0)) for row in A)
        if self.c is None:
            c = row_sums
        else:
            if isinstance(self.c, (str, bytes)) or not hasattr(self.c, "__iter__"):
                raise InvalidTableauError(f"c must be a sequence of nodes, got {self.c!r}")
            c = tuple(to_fraction(v, "an entry of c") for v in self.c)
            if len(c) != s:
                raise InvalidTableauError(f"c must have {s} entries, one per stage; got {len(c)}")
            if c != row_sums:
                raise InvalidTableauError(
                    f"inconsistent tableau: c must be the row sums of A, {[str(v) for v in row_sums]}, "
                    f"got {[str(v) for v in c]}"
                )
        if not isinstance(self.name, str):
            raise InvalidTableauError(f"name must be a string, got {self.name!r}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def is_explicit(self) -> bool:
        """True when A is strictly lower triangular."""
        return all(self.A[i][j] == 0 for i in range(self.stages) for j in range(i, self.stages))

    def require_explicit(self, purpose: str = "this operation") -> "ButcherTableau":
        """Return self when explicit, else raise :class:`ImplicitMethodError` naming ``purpose``."""
        if not self.is_explicit:
            raise ImplicitMethodError(
                f"{purpose} supports only explicit methods (A strictly lower triangular); {self.name!r} is "
                f"implicit (A = {[[str(v) for v in r] for r in self.A]}). Its step needs a nonlinear solve: "
                "the B-series algebra (modified_series, modified_field) handles implicit methods, and "
                "bea.testing.rk_step_mp solves the stages by fixed-point iteration in high precision"
            )
        return self

    def as_arrays(self, *, require_explicit: bool = False):
        """Float64 copies ``(A, b, c)`` as numpy arrays, for numerical integrators (e.g. numba code).

        With ``require_explicit`` an implicit tableau raises :class:`ImplicitMethodError`.
        """
        import numpy as np

        if require_explicit:
            self.require_explicit("a float tableau for an explicit integrator")
        A = np.array([[float(v) for v in row] for row in self.A], dtype=np.float64)
        return A, np.array([float(v) for v in self.b]), np.array([float(v) for v in self.c])

    def step(self, f, y, h):
        """One step y_1 = y_0 + h Σ b_i k_i of this *explicit* method for y' = f(y) (numpy arrays).

        Implicit methods raise :class:`ImplicitMethodError` (no nonlinear solver here).
        """
        import numpy as np

        self.require_explicit("ButcherTableau.step")
        A, b, _ = self.as_arrays()
        y = np.asarray(y)
        ks = []
        for i in range(self.stages):
            yi = y + h * sum((A[i, j] * ks[j] for j in range(i) if A[i, j] != 0), np.zeros_like(y))
            ks.append(np.asarray(f(yi)))
        return y + h * sum((b[i] * ks[i] for i in range(self.stages) if b[i] != 0), np.zeros_like(y))

    def elementary_weight(self, tree) -> Fraction:
        """a(t) = Σ_i b_i Φ_i(t), the B-series coefficient of the method (σ-normalised)."""
        phi = _internal_weights(self, RootedTree(tree).level_sequence)
        return sum((bi * p for bi, p in zip(self.b, phi)), Fraction(0))

    def order(self, max_order: int = 8) -> int:
        """Classical order p: a(t) = 1/γ(t) for every tree with |t| ≤ p (checked up to max_order)."""
        from bea.derive.trees import rooted_trees

        p = 0
        for k in range(1, max_order + 1):
            if all(self.elementary_weight(t) == Fraction(1, t.gamma) for t in rooted_trees(k)):
                p = k
            else:
                break
        return p

    def __hash__(self):
        return hash((self.A, self.b))

    def __eq__(self, other):
        return isinstance(other, ButcherTableau) and (self.A, self.b) == (other.A, other.b)


@lru_cache(maxsize=None)
def _internal_weights(tab: ButcherTableau, seq: LevelSequence) -> tuple[Fraction, ...]:
    """Φ_i(t) for every stage i (HLW III.1)."""
    s = tab.stages
    out = [Fraction(1)] * s
    for child in child_blocks(seq):
        phi_c = _internal_weights(tab, child)
        for i in range(s):
            out[i] *= sum((tab.A[i][j] * phi_c[j] for j in range(s)), Fraction(0))
    return tuple(out)


def RungeKutta(A: Sequence[Sequence], b: Sequence, c: Sequence | None = None, name: str = "rk") -> ButcherTableau:
    """Build a Runge–Kutta method from its Butcher tableau (exact rationals).

    Entries may be ints, ``Fraction``, strings such as ``"1/3"``, sympy rationals, or floats that are
    exactly short decimals (0.5, 0.1). A must be s×s for s weights, Σ b_i = 1, and c (optional) the row
    sums of A; anything else raises :class:`InvalidTableauError` (a :class:`bea.BEAError`).

    >>> RungeKutta([[0, 0], ["1/2", 0]], [0, 1]).order()
    2
    """
    return ButcherTableau(A=A, b=b, c=c, name=name)


# --------------------------------------------------------------------------------------------------
# linear multistep methods and heavy-ball momentum
# --------------------------------------------------------------------------------------------------


def is_symbolic(value) -> bool:
    return getattr(value, "free_symbols", None) not in (None, set())


def _coefficient(value, what: str, error=InvalidMethodError):
    """An exact coefficient: a Fraction, or a sympy expression when it has free symbols."""
    if is_symbolic(value):
        import sympy as sp

        return sp.sympify(value)
    return to_fraction(value, what, error)


class LinearMultistep:
    r"""A linear multistep method  Σ_j α_j y_{n+j} = h Σ_j β_j f(y_{n+j}),  j ∈ ``offsets``.

    Offsets are distinct integers (negative ones refer to past steps, e.g. (−1, 0, 1) for a two-step
    method written around y_n). Coefficients are exact rationals, or sympy expressions in symbols
    (then every derived coefficient is a rational function of those symbols). Requirements, checked:
    ρ(1) = Σ α_j = 0 (constants are fixed points) and ρ'(1) = Σ j α_j ≠ 0.

    The modified equation of such a method (:func:`bea.derive.series.modified_series`) is the vector field
    whose exact flow y(t), sampled at t = nh, satisfies the recursion to all orders: the dynamics on
    the slow invariant manifold (the underlying one-step method; Hairer, Lubich, Wanner, *GNI*,
    XV.2–3). Its leading term is Σ_j β_j / ρ'(1) · f.
    """

    def __init__(self, alpha: Sequence, beta: Sequence, offsets: Sequence[int] | None = None, name: str = "lmm"):
        alpha, beta = list(alpha), list(beta)
        if len(alpha) != len(beta) or not alpha:
            raise InvalidMethodError(f"alpha and beta must be non-empty and of equal length, got {len(alpha)} and {len(beta)}")
        offsets = list(range(len(alpha))) if offsets is None else list(offsets)
        if len(offsets) != len(alpha):
            raise InvalidMethodError(f"offsets must have one entry per coefficient ({len(alpha)}), got {offsets!r}")
        try:
            ok = not any(isinstance(j, bool) or int(j) != j for j in offsets) and len(set(offsets)) == len(offsets)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise InvalidMethodError(f"offsets must be distinct integers, got {offsets!r}")
        self.alpha = tuple(_coefficient(a, "an entry of alpha") for a in alpha)
        self.beta = tuple(_coefficient(b, "an entry of beta") for b in beta)
        self.offsets = tuple(int(j) for j in offsets)
        self.name = str(name)
        rho1 = sum(self.alpha, Fraction(0))
        drho1 = sum((j * a for j, a in zip(self.offsets, self.alpha)), Fraction(0))
        if _is_zero(rho1) is not True:
            raise InvalidMethodError(f"inconsistent multistep method: Σ alpha_j must be 0, got {rho1}")
        if _is_zero(drho1) is True:
            raise InvalidMethodError(f"Σ j·alpha_j must be nonzero (it scales the leading term), got {drho1}")

    @property
    def is_symbolic(self) -> bool:
        return any(is_symbolic(v) for v in self.alpha + self.beta)

    @property
    def symbols(self) -> tuple:
        out: set = set()
        for v in self.alpha + self.beta:
            out |= getattr(v, "free_symbols", set())
        return tuple(sorted(out, key=str))

    def _key(self):
        return (type(self).__name__, self.alpha, self.beta, self.offsets)

    def __eq__(self, other):
        return isinstance(other, LinearMultistep) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha}, beta={self.beta}, offsets={self.offsets}, name={self.name!r})"


def _is_zero(value):
    if isinstance(value, Fraction):
        return value == 0
    import sympy as sp

    return sp.simplify(value).is_zero


class Momentum(LinearMultistep):
    r"""Heavy-ball momentum with decay m (seed 002, Eq. 20; Polyak 1964):

        v_t = m v_{t−1} − h ∇E(θ_{t−1}),     θ_t = θ_{t−1} + v_t,

    i.e. θ_{n+1} − (1 + m) θ_n + m θ_{n−1} = −h ∇E(θ_n): a linear two-step method for f = −∇E with
    α = (m, −(1+m), 1), β = (0, 1, 0) at offsets (−1, 0, 1). For 0 ≤ m < 1 the second root m of
    ρ(ζ) = (ζ − 1)(ζ − m) is damped, the iterates are attracted to a slow manifold θ_{n−1} = φ_{−h}(θ_n)
    and follow the flow of the modified equation

        θ̇ = −∇E/(1−m) − h (1+m)/(2(1−m)³) H∇E + O(h²)

    (:func:`bea.derive.momentum.modified_field` gives the exact higher terms). ``m`` is a rational number in
    [0, 1) (a float must be a short decimal such as 0.9), or a sympy Symbol for coefficients as
    rational functions of m. m = 0 is gradient descent. Anything else raises
    :class:`InvalidMomentumError`.
    """

    def __init__(self, m):
        if is_symbolic(m):
            import sympy as sp

            m = sp.sympify(m)
        else:
            m = to_fraction(m, "the momentum m", InvalidMomentumError)
            if not 0 <= m < 1:
                raise InvalidMomentumError(
                    f"the momentum m must be in [0, 1), got {m} (m ≥ 1 never forgets old gradients: the "
                    "iteration is not stable and has no modified equation; m < 0 is not momentum)"
                )
        self.m = m
        super().__init__([m, -1 - m, 1], [0, 1, 0], offsets=(-1, 0, 1), name=f"momentum(m={m})")

    def __repr__(self):
        return f"Momentum({self.m})"


_h = Fraction(1, 2)
METHODS: dict[str, ButcherTableau] = {
    "euler": ButcherTableau(A=[[0]], b=[1], name="euler"),
    "implicit_euler": ButcherTableau(A=[[1]], b=[1], name="implicit_euler"),
    "midpoint": ButcherTableau(A=[[0, 0], [_h, 0]], b=[0, 1], name="midpoint"),
    "implicit_midpoint": ButcherTableau(A=[[_h]], b=[1], name="implicit_midpoint"),
    "heun": ButcherTableau(A=[[0, 0], [1, 0]], b=[_h, _h], name="heun"),
    "rk4": ButcherTableau(
        A=[[0, 0, 0, 0], [_h, 0, 0, 0], [0, _h, 0, 0], [0, 0, 1, 0]],
        b=[Fraction(1, 6), Fraction(1, 3), Fraction(1, 3), Fraction(1, 6)],
        name="rk4",
    ),
}
# gradient descent is explicit Euler on f = -grad E
_ALIASES = {"gd": "euler", "explicit_euler": "euler", "gradient_descent": "euler"}


def get_method(method):
    """Resolve a method name (``"gd"``, ``"euler"``, ``"rk4"``, ...) or pass a method object through.

    Method objects are a :class:`ButcherTableau` (``RungeKutta(A, b)``) or a :class:`LinearMultistep`
    such as ``Momentum(0.9)``.
    """
    if isinstance(method, (ButcherTableau, LinearMultistep)):
        return method
    if isinstance(method, str):
        key = _ALIASES.get(method.lower(), method.lower())
        if key in METHODS:
            return METHODS[key]
        if key in ("momentum", "heavy_ball", "heavyball", "polyak"):
            raise UnknownMethodError(
                f"{method!r} needs its decay m: pass method=bea.derive.methods.Momentum(m), e.g. Momentum(0.9)"
            )
    known = sorted(set(METHODS) | set(_ALIASES))
    raise UnknownMethodError(
        f"unknown method {method!r}; known methods: {', '.join(known)}, a ButcherTableau (RungeKutta(A, b)) "
        "or Momentum(m)"
    )
