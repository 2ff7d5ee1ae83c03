r"""The B-series algebra: modified equations of B-series methods, in exact arithmetic.

A method whose step is the B-series y_1 = B(a, y_0) = y_0 + Σ_t h^{|t|}/σ(t) a(t) F(t)(y_0) (for a
Runge–Kutta method a(t) is the elementary weight, :mod:`bea.derive.methods`) has a *modified equation*

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

Linear multistep methods (heavy-ball momentum, :class:`bea.derive.methods.Momentum`). For
Σ_j α_j y_{n+j} = h Σ_j β_j f(y_{n+j}) the smooth solution y(t) = φ_{t}(y_0) of the modified equation
satisfies Σ_j α_j φ_j(t) = Σ_j β_j φ'_j(t) tree by tree, with φ'_j(•) = 1 and
φ'_j([t_1..t_m]) = Π_k φ_j(t_k) (the B-series of h f(B(φ_j))). Writing φ_s(t) = s b(t) + rest_s(t),

    b(t) = ( Σ_j β_j φ'_j(t) − Σ_j α_j rest_j(t) ) / Σ_j j α_j,                                  (4)

the same polynomials as in (3), now evaluated at the integer offsets j (also negative ones). The
result is the flow on the slow manifold of the method (Hairer, Lubich, Wanner, *GNI*, XV.3).
Coefficients may be rational functions of a symbol (e.g. the momentum m): they are then computed
in the exact field QQ(m) of sympy's polys.

Modifying integrators (:func:`modifying_integrator`; Chartier, Hairer, Vilmart, *Math. Comp.* 76
(2007)). A method with weights a applied to a field with B-series b̂ (in the elementary
differentials of f) is the B-series with the *substitution law*

    (b̂ ⋆ a)(t) = Σ_{P ⊆ edges(t)} a(t/P) Π_{s ∈ t∖P} b̂(s),                                     (5)

the sum over all subsets P of the edges of one labelled representative of t, t∖P the connected
pieces left when the edges P are cut and t/P the tree of the pieces (the skeleton). Solving
b̂ ⋆ a = e, e(t) = 1/γ(t) the exact flow, gives the field f̂ whose numerical solution by the method is
the exact flow of f to all orders; b ⋆ e = a is a second, independent route to the modified equation.

This module knows nothing about losses: :meth:`ModifiedSeries.evaluate` hands a concrete loss to
:mod:`bea.derive.symbolic`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Iterable

from bea._checks import check_order
from bea.derive.differentials import field_from_series
from bea.errors import InvalidOrderError
from bea.derive.methods import ButcherTableau, LinearMultistep, get_method
from bea.derive.trees import (
    LevelSequence,
    RootedTree,
    canonical,
    child_blocks,
    density,
    level_sequences,
    subtree_splits,
    symmetry,
)

__all__ = [
    "ModifiedSeries",
    "modified_series",
    "modifying_integrator",
    "modified_equation_weights",
    "substitution",
    "gradient_notation_of_tree",
]

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
            for seq in level_sequences(n):
                self._solve_poly(seq)
            self.poly_done = n
        for n in range(max(self.done, order - 1) + 1, order + 1):
            for seq in level_sequences(n):
                self._solve_scalar(seq)
        self.done = max(self.done, order)

    def _a(self, seq: LevelSequence):
        return _to_q(self.method.elementary_weight(seq))

    def value(self, seq: LevelSequence) -> Fraction:
        return _to_fraction(self.b[seq])

    def phi(self, seq: LevelSequence, s) -> Fraction:
        """φ_s(t) for a tree whose polynomial is known (|t| < the largest order extended to)."""
        poly = self.integral[seq]
        # φ_s = d/ds ∫_0^s φ
        return _to_fraction(sum((k * ck * _Q(s) ** (k - 1) for k, ck in enumerate(poly) if k), _Q(0)))

    def _solve_scalar(self, seq: LevelSequence) -> None:
        b, at_one = self.b, self.at_one
        acc = _Q(0)
        for sub, trunk, mult in subtree_splits(seq):
            acc += b[sub] * at_one[trunk] * mult
        b[seq] = self._a(seq) - acc

    def _solve_poly(self, seq: LevelSequence) -> None:
        b, integral = self.b, self.integral
        # rest(s) = Σ_v b(t_v) ∫_0^s φ(t ∖ t_v); first gather the coefficient of each distinct trunk
        weights: dict = {}
        for sub, trunk, mult in subtree_splits(seq):
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


class _Ring:
    """Exact scalars of a series: python-flint fmpq (or Fraction) for rational methods, sympy's
    rational-function field QQ(symbols) for methods with symbolic coefficients."""

    def __init__(self, symbols=()):
        self.symbolic = bool(symbols)
        if self.symbolic:
            import sympy as sp

            self._sp = sp
            self.K = sp.QQ.frac_field(*symbols)
            self.zero, self.one = self.K.zero, self.K.one
        else:
            self.zero, self.one = _Q(0), _Q(1)

    def convert(self, x):
        if self.symbolic:
            return self.K.from_sympy(self._sp.sympify(x))
        return _to_q(x if isinstance(x, Fraction) else Fraction(x))

    def output(self, x):
        """Fraction, or a factored sympy expression for symbolic rings."""
        if self.symbolic:
            return self._sp.factor(self.K.to_sympy(x))
        return _to_fraction(x)


def _horner(poly, s, zero):
    acc = zero
    for ck in reversed(poly):
        acc = acc * s + ck
    return acc


@dataclass
class _MultistepState:
    """Recursion (4) for a linear multistep method, extended incrementally like :class:`_SeriesState`.

    ``integral[t]`` holds ∫_0^s φ_σ(t) dσ as a polynomial in s, ``phi_at[t][j]`` the value φ_j(t) at
    every offset j and ``rest_at`` nothing (rest is summed on the fly).
    """

    method: LinearMultistep
    ring: _Ring = None  # type: ignore[assignment]
    b: dict = field(default_factory=dict)
    integral: dict = field(default_factory=dict)
    int_at: dict = field(default_factory=dict)  # t -> {j: ∫_0^j φ(t)}
    phi_at: dict = field(default_factory=dict)  # t -> {j: φ_j(t)}
    done: int = 0
    poly_done: int = 0

    def __post_init__(self):
        self.ring = _Ring(self.method.symbols)
        R = self.ring
        self.alpha = [R.convert(a) for a in self.method.alpha]
        self.beta = [R.convert(b) for b in self.method.beta]
        self.offsets = list(self.method.offsets)
        self.drho = sum((j * a for j, a in zip(self.offsets, self.alpha)), R.zero)

    def extend(self, order: int) -> None:
        for n in range(self.poly_done + 1, order):
            for seq in level_sequences(n):
                self._solve(seq, poly=True)
            self.poly_done = n
        for n in range(max(self.done, order - 1) + 1, order + 1):
            for seq in level_sequences(n):
                if seq not in self.b:
                    self._solve(seq, poly=False)
        self.done = max(self.done, order)

    def _solve(self, seq: LevelSequence, poly: bool) -> None:
        R = self.ring
        weights: dict = {}
        for sub, trunk, mult in subtree_splits(seq):
            weights[trunk] = weights.get(trunk, R.zero) + self.b[sub] * mult
        # right-hand side Σ_j β_j φ'_j(t)
        children = child_blocks(seq)
        rhs = R.zero
        for j, beta in zip(self.offsets, self.beta):
            if beta == 0:
                continue
            prod = R.one
            for c in children:
                prod = prod * self.phi_at[c][j]
            rhs += beta * prod
        rest_at = {j: sum((w * self.int_at[tr][j] for tr, w in weights.items()), R.zero) for j in self.offsets}
        bt = (rhs - sum((a * rest_at[j] for j, a in zip(self.offsets, self.alpha)), R.zero)) / self.drho
        self.b[seq] = bt
        self.phi_at[seq] = {j: j * bt + rest_at[j] for j in self.offsets}
        if poly:
            rest = [R.zero] * (len(seq) + 1)
            for trunk, w in weights.items():
                for k, ck in enumerate(self.integral[trunk]):
                    rest[k] += w * ck
            rest[1] += bt
            integ = [R.zero] + [ck / (k + 1) for k, ck in enumerate(rest)]
            while len(integ) > 1 and integ[-1] == 0:
                integ.pop()
            self.integral[seq] = integ
            self.int_at[seq] = {j: _horner(integ, j, R.zero) for j in self.offsets}

    def value(self, seq: LevelSequence):
        return self.ring.output(self.b[seq])

    def phi(self, seq: LevelSequence, j: int):
        """φ_j(t) at an offset j of the method (the B-series of y_{n+j} in terms of y_n)."""
        return self.ring.output(self.phi_at[seq][j])


# -- the substitution law ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _partitions(seq: LevelSequence) -> tuple[tuple[LevelSequence, tuple[LevelSequence, ...], int], ...]:
    """Every edge subset P of the labelled tree ``seq``: (skeleton t/P, pieces t∖P sorted, count)."""
    n = len(seq)
    parent = [-1] * n
    last_at_level: dict[int, int] = {}
    for i, lev in enumerate(seq):
        if i:
            parent[i] = last_at_level[lev - 1]
        last_at_level[lev] = i
    counts: Counter = Counter()
    for mask in range(1 << (n - 1)):  # bit i-1 set: the edge (parent[i], i) is cut
        comp = list(range(n))
        depth = [0] * n  # depth inside the piece
        for i in range(1, n):
            if not (mask >> (i - 1)) & 1:
                comp[i] = comp[parent[i]]
                depth[i] = depth[parent[i]] + 1
        roots = sorted(set(comp))  # preorder of the pieces = preorder of the skeleton
        pieces = []
        for r in roots:
            pieces.append(canonical(tuple(depth[i] + 1 for i in range(n) if comp[i] == r)))
        # skeleton level of a piece = 1 + level of the piece holding its root's parent
        level = {}
        skel = []
        for r in roots:
            level[r] = 1 if r == 0 else level[comp[parent[r]]] + 1
            skel.append(level[r])
        counts[(canonical(tuple(skel)), tuple(sorted(pieces)))] += 1
    return tuple((sk, pcs, k) for (sk, pcs), k in counts.items())


def substitution(b, a, tree):
    r"""(b ⋆ a)(t) of Eq. (5): the weight on ``tree`` of the method ``a`` applied to the field ``b``.

    ``b`` and ``a`` are callables (or dicts) from canonical level sequences to exact rationals.
    """
    seq = RootedTree(tree).level_sequence
    get_b = b.__getitem__ if isinstance(b, dict) else b
    get_a = a.__getitem__ if isinstance(a, dict) else a
    total = Fraction(0)
    for skel, pieces, k in _partitions(seq):
        prod = Fraction(k) * get_a(skel)
        for p in pieces:
            if prod == 0:
                break
            prod *= get_b(p)
        total += prod
    return total


@dataclass
class _SubstitutionState:
    """Solve b ⋆ a = target tree by tree (``kind`` "modifying": a = method, target = exact flow e)."""

    method: ButcherTableau
    kind: str = "modifying"
    b: dict = field(default_factory=dict)
    done: int = 0

    def _a(self, seq):
        if self.kind == "modifying":
            return _to_q(self.method.elementary_weight(seq))
        return _Q(1, density(seq))

    def _target(self, seq):
        if self.kind == "modifying":
            return _Q(1, density(seq))
        return _to_q(self.method.elementary_weight(seq))

    def extend(self, order: int) -> None:
        a_bullet = self._a((1,))
        if a_bullet == 0:
            raise InvalidOrderError(f"the method {self.method.name!r} has a(•) = 0: no modifying integrator")
        for n in range(self.done + 1, order + 1):
            for seq in level_sequences(n):
                acc = _Q(0)
                for skel, pieces, k in _partitions(seq):
                    if skel == (1,):
                        continue  # the term a(•) b(t) itself
                    prod = self._a(skel) * k
                    for p in pieces:
                        if prod == 0:
                            break
                        prod *= self.b[p]
                    acc += prod
                self.b[seq] = (self._target(seq) - acc) / a_bullet
        self.done = max(self.done, order)

    def value(self, seq: LevelSequence) -> Fraction:
        return _to_fraction(self.b[seq])


_STATES: dict = {}
_SUBST_STATES: dict = {}


def series_state(method):
    """The (memoised, growing) recursion state of ``method``'s modified equation: ``.extend(n)``
    computes b(t) for all trees with ≤ n nodes, ``.value(seq)`` returns one of them exactly."""
    state = _STATES.get(method)
    if state is None:
        if isinstance(method, LinearMultistep):
            state = _MultistepState(method)
        else:
            state = _SeriesState(method)
        _STATES[method] = state
    return state


def modified_equation_weights(method="gd", max_nodes: int = 4) -> dict[RootedTree, Fraction]:
    """The σ-normalised coefficients b(t) of the modified equation for all trees with ≤ max_nodes nodes."""
    tab = get_method(method)
    max_nodes = check_order(max_nodes)
    state = series_state(tab)
    state.extend(max_nodes)
    return {
        RootedTree._from_canonical(seq): state.value(seq) for n in range(1, max_nodes + 1) for seq in level_sequences(n)
    }


def _clear_cache() -> None:
    """Forget every computed series (used by benchmarks to time from scratch)."""
    _STATES.clear()
    _SUBST_STATES.clear()
    _partitions.cache_clear()


class ModifiedSeries:
    r"""A loss-independent vector field Σ_t h^{|t|-1} c(t) F(t), truncated at h^order.

    f̃ = Σ_{k=0}^{order} h^k f_k,   f_k = Σ_{|t| = k+1} c(t) F(t),   c(t) = b(t)/σ(t)

    with F(t) the elementary differentials of the vector field f (F(•) = f, F([•]) = f'f,
    F([•,•]) = f''(f,f), ...). On a loss, f = −∇E: for gradient descent this is the modified field
    of GD; for another method it is the modified field of that method applied to the gradient flow.

    ``kind`` says what the series is: ``"modified"`` (the modified equation of ``method``: its exact
    flow reproduces the method), ``"modifying"`` (the field that the method must be applied to so as
    to reproduce the exact flow of f, :func:`modifying_integrator`), or a label of a derived series.
    Coefficients are ``Fraction`` (sympy expressions for methods with symbolic coefficients such as
    ``Momentum(sympy.Symbol("m"))``).

    Use :func:`modified_series` or :func:`modifying_integrator` to build one.
    """

    def __init__(
        self,
        order: int,
        method,
        state,
        *,
        kind: str = "modified",
        keep: Callable[[LevelSequence], bool] | None = None,
    ):
        self.order = order
        self.method = method
        self.kind = kind
        self._state = state
        self._keep = keep

    @property
    def is_symbolic(self) -> bool:
        """True when the coefficients are sympy expressions (a method with symbolic coefficients)."""
        ring = getattr(self._state, "ring", None)
        return bool(ring is not None and ring.symbolic)

    def _zero(self):
        if self.is_symbolic:
            import sympy as sp

            return sp.S.Zero
        return Fraction(0)

    # -- trees and coefficients -------------------------------------------------------------------
    def trees(self, k: int) -> tuple[RootedTree, ...]:
        """The trees of order k (k = 1 .. order + 1), which carry the term h^{k-1}."""
        k = check_order(k)
        if k > self.order + 1:
            raise InvalidOrderError(f"this series has trees of order at most {self.order + 1}, asked for {k}")
        from bea.derive.trees import rooted_trees

        return rooted_trees(k)

    def _seq(self, tree) -> LevelSequence:
        seq = tree.level_sequence if isinstance(tree, RootedTree) else RootedTree(tree).level_sequence
        if len(seq) > self.order + 1:
            raise InvalidOrderError(
                f"tree {seq} has {len(seq)} nodes; this series of order {self.order} has trees up to "
                f"{self.order + 1} nodes (use modified_series(order={len(seq) - 1}))"
            )
        return seq

    def weight(self, tree):
        """b(t) = σ(t) c(t), the σ-normalised B-series coefficient."""
        seq = self._seq(tree)
        if self._keep is not None and not self._keep(seq):
            return self._zero()
        return self._state.value(seq)

    def coefficient(self, tree):
        """c(t), the exact coefficient of h^{|t|-1} F(t); ``tree`` is any equivalent level sequence."""
        seq = self._seq(tree)
        w = self.weight(seq)
        if self.is_symbolic:
            import sympy as sp

            return sp.factor(w / symmetry(seq))
        return w / symmetry(seq)

    def terms(self, k: int) -> list[tuple[RootedTree, Fraction]]:
        """The nonzero (tree, c(t)) of the h^k term f_k, trees in generation order."""
        return [(t, c) for t in self.trees(k + 1) if (c := self.coefficient(t)) != 0]

    # -- derived series ---------------------------------------------------------------------------
    def restricted(self, keep: Callable[[RootedTree], bool], kind: str | None = None) -> "ModifiedSeries":
        """The same series with c(t) set to 0 for every tree where ``keep(tree)`` is false."""
        prev = self._keep

        def _keep(seq, prev=prev):
            return (prev is None or prev(seq)) and bool(keep(RootedTree._from_canonical(seq)))

        return ModifiedSeries(
            self.order, self.method, self._state, kind=kind or f"restriction of the {_describe(self.kind)}", keep=_keep
        )

    def principal_part(self) -> "ModifiedSeries":
        """Only the ladder trees (1, 2, ..., n): for f = −∇E their F(t) = −H^{n−1}g, the *principal
        terms* (seed 002, Def. 3.1). For GD c(ladder_{p+1}) F = −1/(p+1) H^p g, the Taylor
        coefficients of α(hH)g, α(z) = log(1−z)/z: the principal flow."""
        return self.restricted(lambda t: t.is_ladder(), kind=f"principal part of the {_describe(self.kind)}")

    def non_principal_part(self) -> "ModifiedSeries":
        """Every tree but the ladders: the terms that contain ∇³E or higher (seed 002, Def. 3.2)."""
        return self.restricted(lambda t: not t.is_ladder(), kind=f"non-principal part of the {_describe(self.kind)}")

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
        """The concrete :class:`~bea.derive.differentials.ModifiedField` of this series for the loss E (f = −∇E).

        ``terms[0]`` is c(•)·(−∇E): −∇E for every consistent one-step method, −∇E/(1−m) for momentum.
        Keyword arguments are those of :func:`bea.derive.differentials.field_from_series` (``simplify``, ``h``).
        """
        return field_from_series(self, E, params, **kwargs)

    def __repr__(self) -> str:
        kind = "" if self.kind == "modified" else f", kind={self.kind!r}"
        return f"ModifiedSeries(order={self.order}, method={self.method.name!r}{kind})"

    def __str__(self) -> str:
        lines = [f"{_describe(self.kind)} of {self.method.name}, f = -grad E:"]
        for k in range(self.order + 1):
            lines.append(f"  f_{k} = {self.gradient_notation(k)}")
        return "\n".join(lines)


def _describe(kind: str) -> str:
    return {"modified": "modified field", "modifying": "modifying integrator"}.get(kind, kind)


def modified_series(order: int, method="gd") -> ModifiedSeries:
    """The loss-independent modified field of ``method`` up to h^order (trees with ≤ order+1 nodes).

    ``method`` is a name (``"gd"``, ``"rk4"``, ``"implicit_midpoint"``, ...), a
    :class:`~bea.derive.methods.ButcherTableau` (``RungeKutta(A, b)``, explicit or implicit), or a
    :class:`~bea.derive.methods.LinearMultistep` such as ``Momentum(m)`` (the flow on the slow manifold).
    Used on a loss, F(t) are the elementary differentials of the gradient flow f = −∇E.

    >>> s = modified_series(order=2)
    >>> s.coefficient((1, 2)), s.coefficient((1, 2, 2)), s.coefficient((1, 2, 3))
    (Fraction(-1, 2), Fraction(1, 12), Fraction(1, 3))
    >>> s.gradient_notation(2)
    '-(1/3 H^2 g + 1/12 T(g,g))'
    """
    order = check_order(order, minimum=0)
    tab = get_method(method)
    state = series_state(tab)
    state.extend(order + 1)
    return ModifiedSeries(order, tab, state)


def modifying_integrator(order: int, method="gd") -> ModifiedSeries:
    r"""The field f̂ = Σ_t h^{|t|-1} ĉ(t) F(t) whose numerical solution by ``method`` is the exact flow
    of f up to O(h^{order+2}) per step (Chartier–Hairer–Vilmart; BSeries.jl ``modifying_integrator``).

    Solved from the substitution law b̂ ⋆ a = e (Eq. (5)) in exact arithmetic. For gradient descent
    (explicit Euler) on f = −∇E this is a *corrected gradient descent*: θ_{k+1} = θ_k + h f̂(θ_k)
    follows gradient flow, with

        f̂ = −g + h/2 Hg − h²(1/6 H²g + 1/6 T(g,g)) + ...,   ĉ(t) = 1/(σ(t)γ(t))

    (for Euler, f̂ = (φ_h − id)/h); its first correction +½Hg cancels IGR's −½Hg. Implicit
    methods are fine here (the algebra never solves for stages).

    >>> modifying_integrator(1).gradient_notation(1)
    '1/2 H g'
    """
    order = check_order(order, minimum=0)
    tab = get_method(method)
    if not isinstance(tab, ButcherTableau):
        from bea.derive.methods import InvalidMethodError

        raise InvalidMethodError(f"modifying integrators are available for Runge–Kutta methods, got {tab!r}")
    state = _SUBST_STATES.get((tab, "modifying"))
    if state is None:
        state = _SUBST_STATES[(tab, "modifying")] = _SubstitutionState(tab, "modifying")
    state.extend(order + 1)
    return ModifiedSeries(order, tab, state, kind="modifying")


def _modified_by_substitution(order: int, method="gd") -> ModifiedSeries:
    """The modified equation from b ⋆ e = a (a second route, used to cross-check recursion (3))."""
    order = check_order(order, minimum=0)
    tab = get_method(method)
    state = _SubstitutionState(tab, "modified")
    state.extend(order + 1)
    return ModifiedSeries(order, tab, state)


# -- notation helpers ---------------------------------------------------------------------------

_TENSOR_NAMES = {2: "T", 3: "Q", 4: "P"}


def _notation_parts(seq: LevelSequence, style: str) -> tuple[int, str]:
    """(power of H in front, core) of G(t): G(•) = g, G([s]) = H G(s), G([s1..sm]) = ∇^{m+1}E(...)."""
    children = child_blocks(seq)
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
        children = child_blocks(seq)
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


def _format_symbolic(pairs, style: str) -> str:
    import sympy as sp

    out = []
    for c, s in pairs:
        c = sp.factor(c)
        if style == "latex":
            out.append(s if c == 1 else rf"\left({sp.latex(c)}\right) {s}")
        else:
            out.append(s if c == 1 else f"({sp.sstr(c)}) {s}")
    return " + ".join(out)


def _format_sum(pairs: Iterable[tuple[Fraction, str]], style: str, factor: bool = True) -> str:
    pairs = [(c, s) for c, s in pairs if c != 0]
    if not pairs:
        return "0"
    if not all(isinstance(c, (Fraction, int)) for c, _ in pairs):
        return _format_symbolic(pairs, style)
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
