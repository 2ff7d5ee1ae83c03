r"""Numerical methods as exact data: Butcher tableaux with rational entries.

A Runge–Kutta method with tableau (A, b, c = A·1)

    k_i = f(y_0 + h Σ_j a_ij k_j),      y_1 = y_0 + h Σ_i b_i k_i

has the B-series y_1 = y_0 + Σ_t h^{|t|}/σ(t) · a(t) F(t)(y_0) with the *elementary weights*

    a(t) = Σ_i b_i Φ_i(t),    Φ_i(•) = 1,    Φ_i([t_1, ..., t_m]) = Π_k Σ_j a_ij Φ_j(t_k)

(Hairer, Lubich, Wanner, *Geometric Numerical Integration*, Thm III.1.4). Everything here is exact
(``fractions.Fraction``): the same tableau feeds the B-series engine (:mod:`bea.series`) and, as a
float copy, numerical integrators.

Gradient descent θ_{k+1} = θ_k − h∇E(θ_k) is explicit Euler (A = 0, b = 1) applied to f = −∇E.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

from bea.errors import BEAError, UnknownMethodError
from bea.trees import LevelSequence, RootedTree, _child_blocks

__all__ = ["ButcherTableau", "RungeKutta", "get_method", "METHODS", "InvalidTableauError"]


class InvalidTableauError(BEAError, ValueError):
    """A Butcher tableau is malformed (non-square A, inconsistent b or c, non-rational entries)."""


def _to_fraction(value, what: str) -> Fraction:
    try:
        if isinstance(value, float):
            # floats are accepted only when they are exactly a short decimal (e.g. 0.5), never 0.1+eps
            frac = Fraction(value).limit_denominator(10**12)
            if float(frac) != value:
                raise ValueError
            return frac
        return Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise InvalidTableauError(f"{what} must be an exact rational number, got {value!r}") from None


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
        try:
            A = tuple(tuple(_to_fraction(v, "an entry of A") for v in row) for row in self.A)
            b = tuple(_to_fraction(v, "an entry of b") for v in self.b)
        except TypeError:
            raise InvalidTableauError("A must be a square matrix (nested sequence) and b a sequence") from None
        s = len(b)
        if s == 0:
            raise InvalidTableauError("a tableau needs at least one stage (b is empty)")
        if len(A) != s or any(len(row) != s for row in A):
            raise InvalidTableauError(
                f"A must be {s}×{s} to match the {s} weights in b; got rows of lengths {[len(r) for r in A]}"
            )
        row_sums = tuple(sum(row, Fraction(0)) for row in A)
        if self.c is None:
            c = row_sums
        else:
            c = tuple(_to_fraction(v, "an entry of c") for v in self.c)
            if c != row_sums:
                raise InvalidTableauError(f"c must be the row sums of A, {row_sums}, got {c}")
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

    def elementary_weight(self, tree) -> Fraction:
        """a(t) = Σ_i b_i Φ_i(t), the B-series coefficient of the method (σ-normalised)."""
        phi = _internal_weights(self, RootedTree(tree).level_sequence)
        return sum((bi * p for bi, p in zip(self.b, phi)), Fraction(0))

    def order(self, max_order: int = 8) -> int:
        """Classical order p: a(t) = 1/γ(t) for every tree with |t| ≤ p (checked up to max_order)."""
        from bea.trees import rooted_trees

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
    for child in _child_blocks(seq):
        phi_c = _internal_weights(tab, child)
        for i in range(s):
            out[i] *= sum((tab.A[i][j] * phi_c[j] for j in range(s)), Fraction(0))
    return tuple(out)


def RungeKutta(A: Sequence[Sequence], b: Sequence, c: Sequence | None = None, name: str = "rk") -> ButcherTableau:
    """Build a Runge–Kutta method from its Butcher tableau (exact rationals)."""
    return ButcherTableau(A=A, b=b, c=c, name=name)


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


def get_method(method) -> ButcherTableau:
    """Resolve a method name (``"gd"``, ``"euler"``, ``"rk4"``, ...) or pass a tableau through."""
    if isinstance(method, ButcherTableau):
        return method
    if isinstance(method, str):
        key = _ALIASES.get(method.lower(), method.lower())
        if key in METHODS:
            return METHODS[key]
    known = sorted(set(METHODS) | set(_ALIASES))
    raise UnknownMethodError(f"unknown method {method!r}; known methods: {', '.join(known)} or a ButcherTableau")
