r"""The B-series algebra: modified equations of B-series methods, in exact arithmetic.

A method whose step is the B-series y_1 = B(a, y_0) = y_0 + Σ_t h^{|t|}/σ(t) a(t) F(t)(y_0) (for a
Runge–Kutta method a(t) is the elementary weight, :mod:`bea.methods`) has a *modified equation*

    ỹ' = f̃(ỹ) = Σ_t h^{|t|-1} b(t)/σ(t) F(t)(ỹ)                                         (1)

whose exact flow over time h equals the method step to all orders (Hairer, Lubich, Wanner, *GNI*,
IX.1 and IX.9). We write c(t) = b(t)/σ(t) for the coefficient of h^{|t|-1} F(t).

How b is computed. Scale time by h. The time-s flow of (1) is the B-series B(φ_s) with φ_0 = ε (the
identity) and φ_1 = a. As a one-parameter subgroup of the Butcher group it satisfies the left
equation d/ds φ_s = b ⋆ φ_s, where b is an infinitesimal character; with the Connes–Kreimer
coproduct only the cuts that prune *one* subtree survive:

    d/ds φ_s(t) = b(t) + Σ_{v ≠ root} b(t_v) φ_s(t ∖ t_v),                               (2)

t_v the subtree rooted at v and t ∖ t_v what remains. φ_s(t) is a polynomial in s of degree ≤ |t|
with φ_s(t) = s b(t) + Σ_v b(t_v) ∫_0^s φ_σ(t ∖ t_v) dσ, so imposing φ_1 = a gives the recursion

    b(t) = a(t) − Σ_{v ≠ root} b(t_v) ∫_0^1 φ_s(t ∖ t_v) ds,                              (3)

in which every tree on the right is smaller than t. All polynomials have ``Fraction`` coefficients:
no floating point enters. For explicit Euler (a(•) = 1, a(t) = 0 otherwise) this gives
c([•]) = −1/2 (implicit gradient regularisation), c([[•]]) = 1/3, c([•,•]) = 1/12, ...

This module knows nothing about losses: :meth:`ModifiedSeries.evaluate` hands a concrete loss to
:mod:`bea.symbolic`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from bea.errors import InvalidOrderError
from bea.methods import ButcherTableau, get_method
from bea.trees import (
    LevelSequence,
    RootedTree,
    _check_order,
    _child_blocks,
    _sigma,
    _subtree_splits,
    _trees_of_order,
)

__all__ = ["ModifiedSeries", "modified_series", "modified_equation_weights", "gradient_notation_of_tree"]

Poly = list  # coefficients of a polynomial in s, lowest degree first


try:  # python-flint's fmpq is ~10x faster than Fraction; both are exact
    from flint import fmpq as _Q
except ImportError:  # pragma: no cover - python-flint is a dependency, this is a safety net
    _Q = Fraction


def _to_q(x: Fraction):
    return _Q(x.numerator, x.denominator)


def _to_fraction(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(int(x.p), int(x.q))


@dataclass
class _SeriesState:
    """Incrementally extended solution of recursion (3) for one method.

    ``integral[t]`` holds the coefficients of ∫_0^s φ_σ(t) dσ and ``at_one[t]`` its value at s = 1.
    The polynomials are only needed for trees that can still be trunks of larger trees, so the
    trees of the highest order asked for are solved with scalars alone.
    """

    method: ButcherTableau
    b: dict = field(default_factory=dict)  # LevelSequence -> exact rational (fmpq or Fraction)
    integral: dict = field(default_factory=dict)  # LevelSequence -> Poly
    at_one: dict = field(default_factory=dict)  # LevelSequence -> ∫_0^1 φ_s(t) ds
    done: int = 0  # b is known for all trees with at most `done` nodes
    poly_done: int = 0  # integral is known for all trees with at most `poly_done` nodes

    def extend(self, order: int) -> None:
        # trees of order < `order` will be trunks: give them their polynomials
        for n in range(self.poly_done + 1, order):
            for seq in _trees_of_order(n):
                self._solve_poly(seq)
            self.poly_done = n
        for n in range(max(self.done, order - 1) + 1, order + 1):
            for seq in _trees_of_order(n):
                self._solve_scalar(seq)
        self.done = max(self.done, order)

    def _a(self, seq: LevelSequence):
        return _to_q(self.method.elementary_weight(seq))

    def _solve_scalar(self, seq: LevelSequence) -> None:
        b, at_one = self.b, self.at_one
        acc = _Q(0)
        for sub, trunk, mult in _subtree_splits(seq):
            acc += b[sub] * at_one[trunk] * mult
        b[seq] = self._a(seq) - acc

    def _solve_poly(self, seq: LevelSequence) -> None:
        b, integral = self.b, self.integral
        # rest(s) = Σ_v b(t_v) ∫_0^s φ(t ∖ t_v); first gather the coefficient of each distinct trunk
        weights: dict = {}
        for sub, trunk, mult in _subtree_splits(seq):
            weights[trunk] = weights.get(trunk, 0) + b[sub] * mult
        rest: Poly = [_Q(0)] * (len(seq) + 1)
        for trunk, w in weights.items():
            if w:
                for k, ck in enumerate(integral[trunk]):
                    rest[k] += w * ck
        bt = self._a(seq) - sum(rest, _Q(0))
        b[seq] = bt
        # φ_s(t) = s b(t) + rest(s); keep its integral from 0 to s
        rest[1] += bt
        poly = [_Q(0)] + [ck / (k + 1) for k, ck in enumerate(rest)]
        while len(poly) > 1 and poly[-1] == 0:
            poly.pop()
        integral[seq] = poly
        self.at_one[seq] = sum(poly, _Q(0))


_STATES: dict[ButcherTableau, _SeriesState] = {}


def modified_equation_weights(method="gd", max_nodes: int = 4) -> dict[RootedTree, Fraction]:
    """The σ-normalised coefficients b(t) of the modified equation for all trees with ≤ max_nodes nodes."""
    tab = get_method(method)
    max_nodes = _check_order(max_nodes)
    state = _STATES.setdefault(tab, _SeriesState(tab))
    state.extend(max_nodes)
    return {
        RootedTree._from_canonical(seq): _to_fraction(state.b[seq]) for n in range(1, max_nodes + 1) for seq in _trees_of_order(n)
    }


def _clear_cache() -> None:
    """Forget every computed series (used by benchmarks to time from scratch)."""
    _STATES.clear()


class ModifiedSeries:
    r"""The loss-independent modified vector field of a method, truncated at h^order.

    f̃ = Σ_{k=0}^{order} h^k f_k,   f_k = Σ_{|t| = k+1} c(t) F(t),   c(t) = b(t)/σ(t)

    with F(t) the elementary differentials of the vector field f (F(•) = f, F([•]) = f'f,
    F([•,•]) = f''(f,f), ...). For gradient descent f = −∇E.

    Use :func:`modified_series` to build one.
    """

    def __init__(self, order: int, method: ButcherTableau, state: _SeriesState):
        self.order = order
        self.method = method
        self._state = state

    # -- trees and coefficients -------------------------------------------------------------------
    def trees(self, k: int) -> tuple[RootedTree, ...]:
        """The trees of order k (k = 1 .. order + 1), which carry the term h^{k-1}."""
        k = _check_order(k)
        if k > self.order + 1:
            raise InvalidOrderError(f"this series has trees of order at most {self.order + 1}, asked for {k}")
        from bea.trees import rooted_trees

        return rooted_trees(k)

    def _seq(self, tree) -> LevelSequence:
        seq = tree.level_sequence if isinstance(tree, RootedTree) else RootedTree(tree).level_sequence
        if len(seq) > self.order + 1:
            raise InvalidOrderError(
                f"tree {seq} has {len(seq)} nodes; this series of order {self.order} has trees up to "
                f"{self.order + 1} nodes (use modified_series(order={len(seq) - 1}))"
            )
        return seq

    def coefficient(self, tree) -> Fraction:
        """c(t), the exact coefficient of h^{|t|-1} F(t); ``tree`` is any equivalent level sequence."""
        seq = self._seq(tree)
        return _to_fraction(self._state.b[seq]) / _sigma(seq)

    def weight(self, tree) -> Fraction:
        """b(t) = σ(t) c(t), the σ-normalised B-series coefficient."""
        return _to_fraction(self._state.b[self._seq(tree)])

    def terms(self, k: int) -> list[tuple[RootedTree, Fraction]]:
        """The nonzero (tree, c(t)) of the h^k term f_k, trees in generation order."""
        return [(t, c) for t in self.trees(k + 1) if (c := self.coefficient(t)) != 0]

    # -- notation ---------------------------------------------------------------------------------
    def gradient_notation(self, k: int, style: str = "ascii") -> str:
        """f_k for f = −∇E in gradient notation, e.g. ``-(1/3 H^2 g + 1/12 T(g,g))`` for GD, k = 2.

        g = ∇E, H = ∇²E, T = ∇³E, Q = ∇⁴E, P = ∇⁵E, and D^m E for higher derivatives; a tree
        [t_1..t_m] is ∇^{m+1}E(G(t_1), ..., G(t_m)) and F(t) = (−1)^{|t|} G(t). ``style`` is
        ``"ascii"``, ``"unicode"`` or ``"latex"``.
        """
        pairs = [(c * (-1) ** t.order, gradient_notation_of_tree(t, style)) for t, c in self.terms(k)]
        return _format_sum(pairs, style)

    def tree_notation(self, k: int) -> str:
        """f_k in elementary differentials of f, e.g. ``1/3 f'f'f + 1/12 f''(f,f)``."""
        return _format_sum([(c, _elementary_differential_name(t)) for t, c in self.terms(k)], "ascii", factor=False)

    def table(self) -> list[dict]:
        """Rows (order, level sequence, tree, σ, c(t)) of every tree of the series."""
        rows = []
        for k in range(1, self.order + 2):
            for t in self.trees(k):
                rows.append(
                    {"order": k, "level_sequence": tuple(t), "tree": str(t), "sigma": t.sigma, "c": self.coefficient(t)}
                )
        return rows

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, E, params, **kwargs):
        """The concrete :class:`~bea.symbolic.ModifiedField` of this series for the loss E."""
        from bea.symbolic import field_from_series

        return field_from_series(self, E, params, **kwargs)

    def __repr__(self) -> str:
        return f"ModifiedSeries(order={self.order}, method={self.method.name!r})"

    def __str__(self) -> str:
        lines = [f"modified field of {self.method.name}, f = -grad E:"]
        for k in range(self.order + 1):
            lines.append(f"  f_{k} = {self.gradient_notation(k)}")
        return "\n".join(lines)


def modified_series(order: int, method="gd") -> ModifiedSeries:
    """The loss-independent modified field of ``method`` up to h^order (trees with ≤ order+1 nodes).

    >>> s = modified_series(order=2)
    >>> s.coefficient((1, 2)), s.coefficient((1, 2, 2)), s.coefficient((1, 2, 3))
    (Fraction(-1, 2), Fraction(1, 12), Fraction(1, 3))
    >>> s.gradient_notation(2)
    '-(1/3 H^2 g + 1/12 T(g,g))'
    """
    order = _check_order(order, minimum=0)
    tab = get_method(method)
    state = _STATES.setdefault(tab, _SeriesState(tab))
    state.extend(order + 1)
    return ModifiedSeries(order, tab, state)


# -- notation helpers ---------------------------------------------------------------------------

_TENSOR_NAMES = {2: "T", 3: "Q", 4: "P"}


def _notation_parts(seq: LevelSequence, style: str) -> tuple[int, str]:
    """(power of H in front, core) of G(t): G(•) = g, G([s]) = H G(s), G([s1..sm]) = ∇^{m+1}E(...)."""
    children = _child_blocks(seq)
    if not children:
        return 0, "g"
    if len(children) == 1:
        p, core = _notation_parts(children[0], style)
        return p + 1, core
    # children are canonical in decreasing order; humans read the simpler argument first
    args = ",".join(_render(*_notation_parts(c, style), style) for c in reversed(children))
    m = len(children)
    if m in _TENSOR_NAMES:
        name = _TENSOR_NAMES[m]
    else:
        name = {"ascii": f"D^{m + 1}E", "unicode": f"∇{_superscript(m + 1)}E", "latex": rf"\nabla^{{{m + 1}}}E"}[style]
    return 0, f"{name}({args})"


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _render(p: int, core: str, style: str) -> str:
    if p == 0:
        return core
    if style == "unicode":
        return "H" + (_superscript(p) if p > 1 else "") + core
    if style == "latex":
        return "H" + (f"^{{{p}}}" if p > 1 else "") + " " + core
    return "H" + (f"^{p}" if p > 1 else "") + " " + core


def gradient_notation_of_tree(tree, style: str = "ascii") -> str:
    """G(t) in gradient notation (F(t) = (−1)^{|t|} G(t) for f = −∇E), e.g. ``T(g,H g)``."""
    if style not in ("ascii", "unicode", "latex"):
        raise ValueError(f"style must be 'ascii', 'unicode' or 'latex', got {style!r}")
    seq = tree.level_sequence if isinstance(tree, RootedTree) else RootedTree(tree).level_sequence
    return _render(*_notation_parts(seq, style), style)


def _elementary_differential_name(tree: RootedTree) -> str:
    def name(seq):
        children = _child_blocks(seq)
        if not children:
            return "f"
        m = len(children)
        d = "f" + "'" * m if m <= 3 else f"f^({m})"
        if m == 1:
            return d + name(children[0])
        return d + "(" + ",".join(name(c) for c in children) + ")"

    return name(tree.level_sequence)


def _format_coef(c: Fraction, style: str) -> str:
    if style == "latex" and c.denominator != 1:
        return rf"\frac{{{c.numerator}}}{{{c.denominator}}}"
    return str(c)


def _format_sum(pairs: Iterable[tuple[Fraction, str]], style: str, factor: bool = True) -> str:
    pairs = [(c, s) for c, s in pairs if c != 0]
    if not pairs:
        return "0"
    sign = ""
    if factor and pairs[0][0] < 0:
        sign = "-"
        pairs = [(-c, s) for c, s in pairs]
    out = []
    for i, (c, s) in enumerate(pairs):
        mag = abs(c)
        piece = s if mag == 1 else f"{_format_coef(mag, style)} {s}"
        if i == 0:
            out.append(("-" if c < 0 else "") + piece)
        else:
            out.append((" - " if c < 0 else " + ") + piece)
    body = "".join(out)
    if sign and len(pairs) > 1:
        return f"-({body})"
    return sign + body
