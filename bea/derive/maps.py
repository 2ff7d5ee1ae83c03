r"""Modified equations of any smooth one-step map, of compositions of maps (SGD epochs), and of maps
with a state on their slow manifold (momentum, Nesterov, RMSProp, Adam: :mod:`bea.derive.optimizers`).

**One map.** Let Φ_h(θ) = θ + Σ_{j≥1} h^j d_j(θ) be a smooth update, a power series in the step size h.
Its modified field f̃ = Σ_{k≥0} h^k f_k is the vector field whose exact flow over time h reproduces
Φ_h to O(h^{order+2}). With the Lie derivative L_f u = (Du) f, the time-t flow of f is
exp(t L_f) id, so we solve

    exp(L_G) id = Φ_h,     G = h f̃ = Σ_{j≥1} h^j G_j,  G_j = f_{j−1},

order by order in h (the Lie series of the flow; Hairer, Lubich, Wanner, *GNI*, IX.1). Writing
U_n = L_G^n id = Σ_j h^j U_{n,j} (so U_{1,j} = G_j and U_{n,j} = Σ_{k≥1} D(U_{n−1,j−k}) G_k),
the h^J coefficient of the Lie series gives the explicit recursion

    G_J = d_J − Σ_{n=2}^{J} U_{n,J} / n!,                                                    (1)

whose right-hand side only contains G_1..G_{J−1}. For gradient descent (d_1 = −∇E) this gives
f_1 = −½ H∇E, f_2 = −(⅓H²∇E + 1/12 T(∇E,∇E)), ... exactly as :func:`bea.modified_field` does from
trees; nothing here uses trees, so the two routes check each other.

**Compositions.** One epoch θ ↦ Φᵐ_h ∘ … ∘ Φ¹_h(θ) (Φ¹ applied first) is again a map with a step
parameter h; its field is defined by exp(m h L_f̃) id = epoch, i.e. f̃ = G/(m h): the flow over time
m·h (one unit of time per step, ``MapField.flow_time``) reproduces the epoch, and ``MapField.h``
stays the step size of one step. The Taylor coefficients of the composition are computed exactly by
Taylor-expanding each map at the point the previous ones reach, truncated at h^{order+1}.

**Random reshuffling.** With the pull-back P_i u = u ∘ Φ^i = u + Q_i u, an epoch in the order σ is
P_{σ(1)} ⋯ P_{σ(m)} id = Σ Q_{σ(k_1)} ⋯ Q_{σ(k_r)} id over increasing positions k_1 < … < k_r.
For σ uniform, (σ(k_1), …, σ(k_r)) is a uniform ordered r-tuple of distinct indices, hence

    E_σ[epoch] = id + Σ_{r≥1} (1/r!) Σ_{|T| = r} W_T,   W_T = Σ_{i∈T} Q_i W_{T∖{i}},  W_∅ = id,      (2)

W_T the sum over the r! orderings of T. Q_i raises the order in h by one, so only |T| ≤ order+1
contributes: Σ_{r ≤ order+1} r·C(m, r) Taylor expansions instead of m! compositions (m = 10,
order 4: 2560 instead of 3.6 million). The field of the *expected map* (Smith et al.'s "mean
iterate") is returned; beyond first order it differs from the mean of the per-ordering fields.

**Maps with a state.** θ' = θ + A(θ, s, h), s' = S(θ, s, h) with S(θ, s, 0) = J s + c(θ) a
contraction (every eigenvalue of the constant matrix J inside the unit circle): the state is
attracted to a slow manifold s = σ_h(θ) = Σ_j h^j σ_j(θ), invariant under the iteration,

    σ_h(θ + A(θ, σ_h(θ), h)) = S(θ, σ_h(θ), h),                                              (3)

solved order by order: σ_0 = (I − J)^{-1} c and (I − J + Dσ_0 · ∂_sA) σ_j = −(the h^j residual of (3)
with σ_j = 0). On the manifold the iteration is the one-step map θ ↦ θ + A(θ, σ_h(θ), h), whose
modified field is (1). This is the same object as the B-series modified equation of a linear
multistep method on its slow manifold (:class:`bea.derive.methods.Momentum`), and the two agree exactly.

Arithmetic. Everything is exact: coefficients are rationals or rational functions of the other
symbols of the map (learning-rate schedules, β, ε, ...). The non-polynomial parts of a map (square
roots, exp, tanh, 1/(...)) become extra polynomial variables ("atoms") with their derivatives
attached, so that all algebra is sparse polynomial arithmetic (:mod:`sympy.polys.rings`, python-flint
rationals). Floats in a map are read as the short decimals they print as (0.9 → 9/10).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Sequence

import sympy as sp
from sympy.polys.polyerrors import CoercionFailed
from sympy.polys.rings import PolyRing

from bea.errors import InvalidInputError, InvalidMapError, NoGradientNotationError, NonSmoothMapError
from bea.derive.symbolic import ModifiedField, non_smooth_functions, scalar_expression, step_symbol, validate_loss
from bea._checks import check_order

__all__ = ["MapField", "modified_map", "sgd_epoch", "modified_map_with_state", "SHUFFLES"]

#: the orderings :func:`sgd_epoch` knows
SHUFFLES = ("fixed", "average")

_MAX_ATOMS = 200


# --------------------------------------------------------------------------------------------------
# exact jets: polynomials in θ, in the non-polynomial subexpressions ("atoms") and in h
# --------------------------------------------------------------------------------------------------


class _Jets:
    """A sparse polynomial ring Q(symbols)[θ, atoms, h] with the derivatives D_k = d/dθ_k.

    An atom is a non-polynomial subexpression that does not depend on h: b^{−1/q} for a root or an
    inverse, or any other function node (exp, tanh, ...); its derivatives dA/dθ_k are sympy
    derivatives converted back into the ring, so D_k is the true partial derivative. The atoms are
    found (and closed under differentiation) before the ring is built. Non-polynomial nodes that
    depend on h are replaced by their Taylor polynomial in h of degree ``N``; products are truncated
    at h^N.
    """

    def __init__(self, params, h, exprs, hyper, N: int):
        self.params = tuple(params)
        self.n = len(self.params)
        self.h = h
        self.N = N
        self.K = sp.QQ.frac_field(*hyper) if hyper else sp.QQ
        self._index = {p: i for i, p in enumerate(self.params)}
        self._keys: dict = {}  # atom key -> index
        self._values: list = []  # atom values (sympy expressions)
        self._scanned: set = set()
        self._hcoef: dict = {}
        for e in exprs:
            self._walk(e, False)
        i = 0
        while i < len(self._values):  # close the atoms under differentiation
            for p in self.params:
                self._walk(sp.diff(self._values[i], p), False)
            i += 1
            if len(self._values) > _MAX_ATOMS:
                raise InvalidMapError(
                    f"the map needs more than {_MAX_ATOMS} non-polynomial functions once differentiated "
                    f"(e.g. {self._values[-1]}); bea cannot close them under differentiation"
                )
        dummies = tuple(sp.Dummy(f"a{i}") for i in range(len(self._values)))
        self.R = PolyRing(self.params + dummies + (h,), self.K)
        gens = self.R.gens
        self.theta = gens[: self.n]
        self.atom_gens = gens[self.n : -1]
        self.hgen = gens[-1]
        self._hpos = len(gens) - 1
        self.zero = self.R.zero
        self.one = self.R.one
        self._memo: dict = {}
        self._datom: dict = {}
        self._theta_ring = PolyRing(self.params, self.K)
        self._rationals: dict = {}

    # -- conversion ---------------------------------------------------------------------------------
    def conv(self, e):
        """The ring element of a sympy expression (every atom of it was scanned at construction)."""
        return self._walk(sp.sympify(e), True)

    def to_expr(self, a) -> sp.Expr:
        """The sympy expression: Σ over atom monomials of (a polynomial in θ) · Π atom^k."""
        if not a:
            return sp.S.Zero
        if not self._values:
            return a.as_expr()
        n, na = self.n, len(self._values)
        groups: dict = {}
        for mono, c in a.items():
            groups.setdefault(mono[n : n + na], {})[mono[:n]] = c
        out = []
        for atoms, poly in groups.items():
            coef = self._theta_ring.from_dict(poly).as_expr()
            prod = [self._values[i] ** k for i, k in enumerate(atoms) if k]
            out.append(sp.Mul(coef, *prod))
        return sp.Add(*out)

    def rational(self, num: int, den: int = 1):
        key = (num, den)
        out = self._rationals.get(key)
        if out is None:
            out = self._rationals[key] = self.K.from_sympy(sp.Rational(num, den))
        return out

    def _walk(self, e, build: bool):
        if build:
            hit = self._memo.get(e)
            if hit is None:
                hit = self._memo[e] = self._node(e, True)
            return hit
        if e not in self._scanned:
            self._scanned.add(e)
            self._node(e, False)
        return None

    def _node(self, e, build: bool):
        if e.is_Symbol and e in self._index:
            return self.theta[self._index[e]] if build else None
        if e == self.h:
            return self.hgen if build else None
        if not e.has(self.h, *self.params):
            return self._constant(e, build)
        if e.is_Add or e.is_Mul:
            parts = [self._walk(a, build) for a in e.args]
            if not build:
                return None
            out = parts[0]
            for p in parts[1:]:
                out = out + p if e.is_Add else self.trunc(out * p)
            return out
        if e.is_Pow and e.exp.is_Integer and e.exp > 0:
            base = self._walk(e.base, build)
            return self._power(base, int(e.exp)) if build else None
        if e.has(self.h):
            return self._h_taylor(e, build)
        if e.is_Pow and e.exp.is_Rational:
            return self._root(e, build)
        if isinstance(e, sp.Derivative) or isinstance(e, sp.core.function.AppliedUndef):
            raise InvalidMapError(f"the map contains {e}, which bea cannot differentiate; write it out explicitly")
        return self._atom(e, e, build)

    def _constant(self, e, build: bool):
        try:
            c = self.K.from_sympy(e)
        except (CoercionFailed, ValueError, TypeError, NotImplementedError):
            return self._atom(e, e, build)  # e.g. sqrt(2), pi, sqrt(eps): a constant atom
        return self.R.ground_new(c) if build else None

    def _atom(self, key, value, build: bool):
        i = self._keys.get(key)
        if i is None:
            if build:
                raise InvalidMapError(f"internal: {value} was not scanned")  # pragma: no cover
            i = self._keys[key] = len(self._values)
            self._values.append(value)
        return self.atom_gens[i] if build else None

    def _root(self, e, build: bool):
        """b^{a/q} (a/q negative or not an integer) = b^k · u^j with the atom u = b^{−1/q}."""
        a, q = int(e.exp.p), int(e.exp.q)
        base = sp.expand(e.base)
        if base.free_symbols - set(self.params):  # rational functions of hyperparameters: a normal form
            base = sp.expand(sp.cancel(base))
        if not build and q % 2 == 0:
            _check_not_a_square(base, self.params, e)
        u = self._atom((base, q), sp.Pow(base, sp.Rational(-1, q), evaluate=False), build)
        j, k = (-a, 0) if a < 0 else ((-a) % q, (a + (-a) % q) // q)
        b = self._walk(base, build) if k else None
        if not build:
            return None
        out = u**j
        return out * b**k if k else out

    def _h_taylor(self, e, build: bool):
        coefs = self._hcoef.get(e)
        if coefs is None:
            coefs, d = [], e
            for k in range(self.N + 1):
                c = d.subs(self.h, 0)
                if c.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                    raise InvalidMapError(
                        f"{e} is not a power series in h at h = 0 (its h-derivative of order {k} is infinite "
                        "there, e.g. sqrt(h)); the map must be smooth in the step size"
                    )
                coefs.append(c / math.factorial(k))
                d = sp.diff(d, self.h)
            self._hcoef[e] = coefs
        parts = [self._walk(c, build) for c in coefs]
        if not build:
            return None
        out, hk = self.zero, self.one
        for c in parts:
            out += c * hk
            hk = hk * self.hgen
        return out

    def _power(self, base, k: int):
        if base.degree(self._hpos) <= 0:
            return base**k
        out = base
        for _ in range(k - 1):
            out = self.trunc(out * base)
        return out

    def trunc(self, p):
        """p without the powers of h above N."""
        if p.degree(self._hpos) <= self.N:
            return p
        hp = self._hpos
        return self.R.from_dict({m: c for m, c in p.items() if m[hp] <= self.N})

    def split(self, p) -> list:
        """The h-coefficients [p_0, ..., p_N] of an element (h-free elements)."""
        parts: list[dict] = [{} for _ in range(self.N + 1)]
        hp = self._hpos
        for m, c in p.items():
            parts[m[hp]][m[:hp] + (0,)] = c
        return [self.R.from_dict(d) if d else self.zero for d in parts]

    # -- derivatives ------------------------------------------------------------------------------
    def _atom_derivative(self, i: int, k: int):
        key = (i, k)
        out = self._datom.get(key)
        if out is None:
            out = self._datom[key] = self.conv(sp.diff(self._values[i], self.params[k]))
        return out

    def D(self, a, k: int):
        """d a / d θ_k (atoms differentiated by the chain rule)."""
        if not a:
            return self.zero
        out = a.diff(self.theta[k])
        if self.atom_gens:
            degs = a.degrees()
            for i, g in enumerate(self.atom_gens):
                if degs[self.n + i] > 0:
                    da = self._atom_derivative(i, k)
                    if da:
                        out += a.diff(g) * da
        return out


def _check_not_a_square(base, params, node) -> None:
    """An even root of a polynomial with a repeated factor, e.g. sqrt(u²) = |u|, is not smooth."""
    if not base.is_polynomial(*params):
        return
    try:
        _, factors = sp.sqf_list(sp.Poly(base, *params))
    except (sp.PolificationFailed, sp.GeneratorsNeeded, NotImplementedError):
        return
    for f, mult in factors:
        if mult >= 2 and f.total_degree() > 0:
            raise NonSmoothMapError(
                f"the map contains {node}, a root of ({f.as_expr()})^{mult}: like |{f.as_expr()}| it is not "
                f"differentiable where {f.as_expr()} = 0 (e.g. signSGD g/sqrt(g²), Adam with ε = 0 or with ε "
                "outside the square root); backward error analysis needs a smooth map (add ε inside the root)"
            )


# --------------------------------------------------------------------------------------------------
# truncated series in h; Taylor shifts; the Lie logarithm
# --------------------------------------------------------------------------------------------------


class _Shift:
    """Taylor expansion u(θ + ξ(h)) = Σ_α ∂^α u(θ) ξ^α/α! of h-series u, for a shift ξ = O(h).

    ``xi`` is a list of h-series (lists of ring elements, index = power of h), one per variable of
    the multi-indices (θ's coordinates, or the state and h in :func:`modified_map_with_state`). The
    lists may be *filled in later* (the slow-manifold recursion does): the coefficient t of a power
    ξ^α, |α| ≥ 2, only uses the coefficients of ξ below t, so it is computed on first use and kept,
    which is valid as long as those lower coefficients are final when it is asked for.
    """

    def __init__(self, alg: _Jets, xi: list, N: int):
        self.alg, self.xi, self.N = alg, xi, N
        self._pow: dict = {}
        self._partials: dict = {}

    def coefficient(self, idx: tuple, t: int):
        """[ξ^α]_t for a sorted multi-index α written as a tuple of variable positions."""
        if len(idx) == 1:
            return self.xi[idx[0]][t]
        key = (idx, t)
        hit = self._pow.get(key)
        if hit is None:
            head, last = idx[:-1], self.xi[idx[-1]]
            hit = self.alg.zero
            for b in range(1, t - len(head) + 1):
                if last[b]:
                    a = self.coefficient(head, t - b)
                    if a:
                        hit += a * last[b]
            self._pow[key] = hit
        return hit

    def apply(self, u: list, *, increment: bool = False, only: int | None = None, key=None) -> list:
        """The h-series of u(θ + ξ) (of u(θ + ξ) − u(θ) with ``increment``), truncated at h^N.

        With ``only`` = t just the coefficient of h^t is computed (the others are returned as they
        are). ``key`` names u so that its partial derivatives are kept for later calls.
        """
        out = [self.alg.zero] * (self.N + 1) if increment else list(u)
        top = self.N if only is None else only
        active = [k for k, s in enumerate(self.xi) if any(s[: top + 1])]
        for j, uj in enumerate(u):
            if uj and j < top:
                self._walk(uj, j, (), 0, out, top, only is not None, active, key)
        return out

    def _walk(self, part, j, idx, start, out, top, single, active, key) -> None:
        alg = self.alg
        for pos in range(start, len(active)):
            k = active[pos]
            nidx = idx + (k,)
            ck = None if key is None else (key, j, nidx)
            p = self._partials.get(ck) if ck is not None else None
            if p is None:
                p = alg.D(part, k)
                if ck is not None:
                    self._partials[ck] = p
            if not p:
                continue
            w = _multi_factorial(nidx)
            for t in range(top - j if single else len(nidx), top - j + 1):
                c = self.coefficient(nidx, t)
                if c:
                    term = p * c
                    out[j + t] += term if w == 1 else term * alg.rational(1, w)
            if len(nidx) < top - j:
                self._walk(p, j, nidx, pos, out, top, single, active, key)


def _logarithm(alg: _Jets, d: list, N: int) -> list:
    """G_1..G_N of recursion (1) from the map increments d (d[i][j]: component i, power h^j).

    Returns G with G[i][j] the h^j coefficient of component i (G[i][0] = 0).
    """
    n = alg.n
    zero = alg.zero
    G = [[zero] * (N + 1) for _ in range(n)]
    U: dict = {}  # (nn, j) -> vector U_{nn,j}, nn >= 2
    jac: dict = {}

    def vector(nn, j):
        return [G[i][j] for i in range(n)] if nn == 1 else U[(nn, j)]

    def jacobian(nn, j):
        hit = jac.get((nn, j))
        if hit is None:
            hit = jac[(nn, j)] = [[alg.D(c, k) for k in range(n)] for c in vector(nn, j)]
        return hit

    for J in range(1, N + 1):
        total = [d[i][J] for i in range(n)]
        for nn in range(2, J + 1):
            acc = [zero] * n
            for k in range(1, J - nn + 2):  # U_{nn-1, J-k} needs J - k >= nn - 1
                Gk = [G[i][k] for i in range(n)]
                if not any(Gk):
                    continue
                Jm = jacobian(nn - 1, J - k)
                for i in range(n):
                    row = Jm[i]
                    for c in range(n):
                        if row[c] and Gk[c]:
                            acc[i] += row[c] * Gk[c]
            U[(nn, J)] = acc
            w = alg.rational(1, math.factorial(nn))
            for i in range(n):
                if acc[i]:
                    total[i] -= acc[i] * w
        for i in range(n):
            G[i][J] = total[i]
    return G


def _compose(alg: _Jets, deltas: list, N: int) -> list:
    """Increments of Φᵐ ∘ … ∘ Φ¹ (Φ¹ first) from the increments δ^k of each map."""
    xi = [list(s) for s in deltas[0]]
    for delta in deltas[1:]:
        shift = _Shift(alg, xi, N)
        moved = [shift.apply(s) for s in delta]  # δ^k(θ + ξ)
        xi = [[a + b for a, b in zip(x, mv)] for x, mv in zip(xi, moved)]
    return xi


def _expected_composition(alg: _Jets, deltas: list, N: int) -> list:
    """Increments of the expectation of the epoch over the m! orderings, by Eq. (2)."""
    m, n = len(deltas), alg.n
    zero = alg.zero
    shifts = [_Shift(alg, delta, N) for delta in deltas]
    total = [[zero] * (N + 1) for _ in range(n)]
    prev: dict = {}
    for r in range(1, min(m, N) + 1):
        cur: dict = {}
        w = alg.rational(1, math.factorial(r))
        for T in itertools.combinations(range(m), r):
            W = [[zero] * (N + 1) for _ in range(n)]
            for i in T:
                if r == 1:
                    Q = deltas[i]
                else:
                    rest = prev[tuple(t for t in T if t != i)]
                    Q = [shifts[i].apply(s, increment=True) for s in rest]
                for c in range(n):
                    W[c] = [a + b for a, b in zip(W[c], Q[c])]
            cur[T] = W
            for c in range(n):
                total[c] = [a + b * w if b else a for a, b in zip(total[c], W[c])]
        prev = cur
    return total


# --------------------------------------------------------------------------------------------------
# the result object
# --------------------------------------------------------------------------------------------------


class MapField(ModifiedField):
    r"""The modified field of a map, an epoch of maps or an optimiser with state (a :class:`ModifiedField`).

    Same attributes as :func:`bea.modified_field`'s result: ``params``, ``h`` (the step size of one
    step), ``order``, ``terms`` (f_0 .. f_order, sympy column Matrices), ``field`` (Σ_k h^k f_k),
    ``compile()``, ``latex()``, ``truncated()`` (the attributes below in addition). Its
    ``gradient_notation`` raises :class:`bea.NoGradientNotationError`: a general map is not known to
    be a B-series method in f = −∇E, so there is no loss-independent notation (for GD, Runge–Kutta
    methods and heavy-ball momentum use :func:`bea.modified_field`, which has one).

    Attributes
    ----------
    steps : int
        Number of steps the field's flow reproduces at once (m for an epoch of m maps, else 1).
    flow_time : sympy.Expr
        ``steps * h``: the exact flow of ``field`` over this time reproduces the map (the epoch).
    kind : str
        What was derived (``"map"``, ``"epoch (fixed order)"``, ``"epoch (average over orderings)"``,
        ``"sgd epoch ..."``, ``"adam"``, ...).
    symbols : tuple of sympy.Symbol
        The other symbols the terms depend on (hyperparameters such as β or ε), sorted by name.
    state_series : list of sympy Matrices or None
        For a map with a state: σ_0, σ_1, ... of the slow manifold s = Σ_j h^j σ_j(θ).
    loss : sympy.Expr or None
        The loss when there is one (the mean of the batch losses for :func:`sgd_epoch`).
    """

    def __init__(self, params, h, terms, *, loss=None, steps: int = 1, kind: str = "map", state_series=None):
        self.loss = loss
        self.params = tuple(params)
        self.h = h
        self.terms = list(terms)
        self.series = None
        self.method = None
        self.order = len(self.terms) - 1
        self.steps = int(steps)
        self.flow_time = self.steps * h
        self.kind = kind
        self._states = state_series
        free = set().union(*(t.free_symbols for t in self.terms)) - set(self.params) - {h}
        self.symbols = tuple(sorted(free, key=str))

    @property
    def state_series(self):
        """σ_0, σ_1, ... of the slow manifold (sympy Matrices), or None; converted on first use."""
        if callable(self._states):
            self._states = self._states()
        return self._states

    def _copy(self, terms, state_series=None) -> "MapField":
        return MapField(
            self.params, self.h, terms, loss=self.loss, steps=self.steps, kind=self.kind,
            state_series=self._states if state_series is None else state_series,
        )

    def truncated(self, order: int) -> "MapField":
        """The same field keeping the powers h^0 .. h^order."""
        order = check_order(order, minimum=0)
        if order > self.order:
            from bea.errors import InvalidOrderError

            raise InvalidOrderError(f"can truncate to orders 0..{self.order}, got {order}")
        return self._copy(self.terms[: order + 1])

    def subs(self, values) -> "MapField":
        """The field with numbers (or expressions) substituted for hyperparameter symbols, e.g. ``{beta: 0.9}``."""
        values = {k: _exact(sp.sympify(v)) for k, v in dict(values).items()}
        bad = [k for k in values if k in self.params or k == self.h]
        if bad:
            raise InvalidInputError(f"subs replaces hyperparameters, not the parameters or h: {bad}")
        terms = [t.xreplace(values) for t in self.terms]
        states = None if self.state_series is None else [s.xreplace(values) for s in self.state_series]
        out = self._copy(terms, states)
        if self.loss is not None:
            out.loss = self.loss.xreplace(values)
        return out

    def compile(self, *, cse: bool = True):
        """A numba kernel ``kern(theta, h)`` of :attr:`field` (see :meth:`ModifiedField.compile`).

        Hyperparameter symbols must be given numbers first with :meth:`subs`.
        """
        if self.symbols:
            raise InvalidInputError(
                f"the field depends on {[str(s) for s in self.symbols]} besides the parameters and h; give them "
                "numbers first, e.g. mf.subs({...}).compile()"
            )
        return super().compile(cse=cse)

    def gradient_notation(self, k: int, style: str = "ascii") -> str:
        raise NoGradientNotationError(
            f"the modified field of a {self.kind} has no loss-independent gradient notation (it is not known to be "
            "a B-series method in f = -grad E); read mf.terms, or use bea.modified_field for GD, Runge-Kutta "
            "methods and heavy-ball momentum"
        )

    def __repr__(self) -> str:
        return f"MapField(kind={self.kind!r}, params={self.params}, order={self.order}, steps={self.steps})"

    def __str__(self) -> str:
        lines = [f"modified field of a {self.kind}, params {self.params}; flow time {self.flow_time}:"]
        for k, term in enumerate(self.terms):
            lines.append(f"  h^{k}:")
            for p, e in zip(self.params, term):
                lines.append(f"      [{p}] {e}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------


def _exact(e: sp.Expr) -> sp.Expr:
    """Floats replaced by the short decimals they print as (0.9 -> 9/10)."""
    floats = e.atoms(sp.Float)
    return e.xreplace({f: sp.Rational(repr(float(f))) for f in floats}) if floats else e


def _expressions(step, what: str) -> list:
    """A map given as a Matrix, a list/tuple or (one parameter) a scalar, as a list of expressions."""
    if isinstance(step, sp.MatrixBase):
        if 1 not in step.shape:
            raise InvalidMapError(f"{what} must be a column (or row) of expressions, got a {step.shape} Matrix")
        items = list(step)
    elif isinstance(step, (list, tuple)):
        items = list(step)
    else:
        items = [step]
    out = []
    for e in items:
        if isinstance(e, (sp.MatrixBase, list, tuple)):
            raise InvalidMapError(f"{what} must hold scalar expressions, one per parameter; got the entry {e!r}")
        e = scalar_expression(e, error=InvalidMapError, what=f"each entry of {what}")
        bad = non_smooth_functions(e)
        if bad:
            raise NonSmoothMapError(
                f"{what} contains the non-smooth functions {bad} (e.g. signSGD's sign(g)); backward error analysis "
                "needs a map that is smooth in θ and h"
            )
        out.append(_exact(e))
    return out


def _is_map_list(step) -> bool:
    return isinstance(step, (list, tuple)) and len(step) > 0 and all(
        isinstance(s, (list, tuple, sp.MatrixBase)) for s in step
    )


def _params_for(params, exprs) -> tuple:
    by_name = {s.name: s for e in exprs for s in e.free_symbols if isinstance(s, sp.Symbol)}
    if isinstance(params, (sp.Symbol, str)):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        params = [params]  # validate_loss names the problem
    params = [by_name.get(p, sp.Symbol(p)) if isinstance(p, str) else p for p in params]
    return validate_loss(sp.S.Zero, params)[1]


def _step_size_symbol(exprs, h, params) -> sp.Symbol:
    named = {s for e in exprs for s in e.free_symbols if isinstance(s, sp.Symbol) and s.name == "h"} - set(params)
    if h is None:
        if len(named) > 1:
            raise InvalidMapError(
                f"the map uses {len(named)} different symbols named 'h' ({sorted(map(sp.srepr, named))}); use one, "
                "or pass h= explicitly"
            )
        return named.pop() if named else step_symbol()
    if not isinstance(h, sp.Symbol):
        raise InvalidMapError(f"h must be a sympy Symbol (the step size), got {h!r}")
    if h in params:
        raise InvalidMapError(f"the step-size symbol {h} is also a parameter")
    others = named - {h}
    if others:
        raise InvalidMapError(
            f"the map contains a symbol named 'h' ({sp.srepr(others.pop())}) that is not the step size h = "
            f"{sp.srepr(h)}; write the map with the h you pass (or leave h=None)"
        )
    return h


def _increments(alg: _Jets, exprs: list, what: str) -> list:
    """[δ_i as an h-series] of a map θ ↦ exprs, checking Φ_0 = id."""
    out = []
    for i, e in enumerate(exprs):
        s = alg.split(alg.trunc(alg.conv(e)))
        if s[0] != alg.theta[i] and sp.simplify(alg.to_expr(s[0]) - alg.params[i]) != 0:
            raise InvalidMapError(
                f"{what} is not the identity at h = 0: its component {i} ({alg.params[i]}) becomes "
                f"{alg.to_expr(s[0])} at h = 0; a modified equation exists only for maps Φ_h with Φ_0(θ) = θ"
            )
        s[0] = alg.zero
        out.append(s)
    return out


def _result(alg: _Jets, d: list, N: int, steps: int, **kwargs) -> MapField:
    G = _logarithm(alg, d, N)
    scale = alg.rational(1, steps)
    terms = [
        sp.Matrix([alg.to_expr(G[i][k + 1] * scale if steps != 1 else G[i][k + 1]) for i in range(alg.n)])
        for k in range(N)
    ]
    return MapField(alg.params, alg.h, terms, steps=steps, **kwargs)


def _maps_field(maps: list, params, order: int, h, *, average: bool, loss=None, kind=None) -> MapField:
    every = [e for mp in maps for e in mp]
    h = _step_size_symbol(every, h, params)
    N = order + 1
    hyper = sorted(set().union(*(e.free_symbols for e in every)) - set(params) - {h}, key=str)
    alg = _Jets(params, h, every, hyper, N)
    label = "map" if len(maps) == 1 else "the map of step {}"
    deltas = [_increments(alg, mp, label.format(k + 1)) for k, mp in enumerate(maps)]
    if len(maps) == 1:
        d, kind = deltas[0], kind or "map"
    elif average:
        d, kind = _expected_composition(alg, deltas, N), kind or "epoch (average over orderings)"
    else:
        d, kind = _compose(alg, deltas, N), kind or "epoch (fixed order)"
    return _result(alg, d, N, len(maps), loss=loss, kind=kind)


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def modified_map(step, params: Sequence, order: int, h=None) -> MapField:
    r"""The modified field of a smooth one-step map Φ_h, or of an epoch Φᵐ_h ∘ … ∘ Φ¹_h.

    The exact flow of the result over time ``mf.flow_time`` (h for one map, m·h for m maps)
    reproduces the map to O(h^{order+2}); the terms come from the Lie-series recursion (1) of the
    module docstring, in exact arithmetic.

    Parameters
    ----------
    step : the new parameters Φ_h(θ) as a sympy column Matrix or a list of expressions (one per
        parameter; a scalar expression for one parameter), in terms of ``params``, the step size h and
        any other symbols (hyperparameters; they stay symbolic). Φ_h must be smooth in θ and a power
        series in h with Φ_0(θ) = θ. A list of maps [Φ¹, ..., Φᵐ] (each a Matrix or a list) is one
        epoch, Φ¹ applied first.
    params : sequence of sympy Symbols (or names) — the parameters θ, in this order
    order : int ≥ 0 — the highest power of h kept in the field
    h : the step-size symbol. ``None`` (default): the map's free Symbol named ``"h"`` (any assumptions,
        e.g. ``sympy.Symbol("h")`` or :func:`bea.derive.symbolic.step_symbol`), or a new positive Symbol
        ``"h"`` if it has none. Given explicitly, every symbol named "h" in the map must be this one.

    Returns
    -------
    MapField
        A :class:`~bea.derive.symbolic.ModifiedField` with ``terms`` f_0..f_order, ``field``, ``h`` (the
        symbol used), ``compile()``; ``steps`` and ``flow_time`` give the time scaling of an epoch.
        ``gradient_notation`` is not available (:class:`bea.NoGradientNotationError`).

    Raises
    ------
    InvalidMapError
        A step with the wrong number of components, a map that is not the identity at h = 0, one that
        is not a power series in h (e.g. sqrt(h)), ambiguous step-size symbols.
    NonSmoothMapError
        sign, Abs, Max, Piecewise, ... or the root of a square (|u| = sqrt(u²)) in the map.

    Examples
    --------
    Gradient descent written as a map gives the modified field of :func:`bea.modified_field`:

    >>> import sympy as sp
    >>> x, h = sp.symbols("x h")
    >>> modified_map([x - h * x**3], [x], order=1).terms[1]
    Matrix([[-3*x**5/2]])
    """
    order = check_order(order, minimum=0)
    if _is_map_list(step):
        maps = [_expressions(s, f"the map of step {k + 1}") for k, s in enumerate(step)]
    elif isinstance(step, (list, tuple)) and not step:
        raise InvalidMapError("step is empty: give the new parameters Φ_h(θ), one expression per parameter")
    else:
        maps = [_expressions(step, "the map")]
    params = _params_for(params, [e for mp in maps for e in mp])
    for k, mp in enumerate(maps):
        if len(mp) != len(params):
            where = "the map" if len(maps) == 1 else f"the map of step {k + 1}"
            raise InvalidMapError(
                f"{where} has {len(mp)} components but there are {len(params)} parameters {list(params)}; give one "
                "expression (the new value) per parameter"
            )
    return _maps_field(maps, params, order, h, average=False)


def sgd_epoch(batch_losses: Sequence, params: Sequence, order: int, shuffle: str = "fixed", *, h=None) -> MapField:
    r"""The modified field of one epoch of SGD over the batch losses E_1..E_m (Smith et al. 2021).

    One epoch is θ ↦ Φᵐ ∘ … ∘ Φ¹(θ), Φ^k(θ) = θ − h∇E_k(θ). The field's exact flow over time m·h
    reproduces the epoch (``shuffle="fixed"``: E_1 first, then E_2, ...) or the *expected* epoch over
    the m! orderings (``shuffle="average"``, random reshuffling: Smith et al.'s mean iterate), to
    O(h^{order+2}). With E = (1/m) Σ_k E_k (``mf.loss``) the first terms of "average" are

        f̃ = −∇E − h/(2m) Σ_k ∇²E_k ∇E_k + O(h²)
          = −∇( E + h/4 ‖∇E‖² + h/(4m) Σ_k ‖∇E_k − ∇E‖² ) + O(h²),

    the implicit regulariser of SGD with random shuffling: S. L. Smith, B. Dherin, D. G. T. Barrett,
    S. De, "On the origin of implicit regularization in stochastic gradient descent", ICLR 2021
    (their C̃_SGD = C + ε/(4m) Σ_k ‖∇Ĉ_k‖², learning rate ε, C the mean of the m minibatch losses Ĉ_k,
    mean iterate after one epoch ω(mε)). "average" is computed by Eq. (2) of the module docstring,
    Σ_{r ≤ order+1} r·C(m, r) Taylor expansions, never the m! orderings.

    Parameters
    ----------
    batch_losses : sequence of m ≥ 1 scalar sympy losses (each depends on some of ``params``)
    params : the parameter symbols
    order : the highest power of h kept
    shuffle : ``"fixed"`` or ``"average"``
    h : the step-size symbol (default :func:`bea.derive.symbolic.step_symbol`)
    """
    order = check_order(order, minimum=0)
    if shuffle not in SHUFFLES:
        raise InvalidInputError(f"shuffle must be one of {SHUFFLES}, got {shuffle!r}")
    if isinstance(batch_losses, (str, sp.Basic)) or not hasattr(batch_losses, "__iter__"):
        raise InvalidInputError(f"batch_losses must be a sequence of losses (one per batch), got {batch_losses!r}")
    batch_losses = list(batch_losses)
    if not batch_losses:
        raise InvalidInputError("batch_losses is empty: give one loss per batch")
    losses, p0 = [], None
    for E in batch_losses:
        E, ps = validate_loss(E, params)
        p0 = ps if p0 is None else p0
        losses.append(_exact(E))
    h = step_symbol() if h is None else h
    maps = [[p - h * sp.diff(E, p) for p in p0] for E in losses]
    mean = sp.Add(*losses) / len(losses)
    kind = f"sgd epoch of {len(losses)} batches ({'average over orderings' if shuffle == 'average' else 'fixed order'})"
    return _maps_field(maps, p0, order, h, average=shuffle == "average", loss=mean, kind=kind)


def modified_map_with_state(
    theta_step, state_step, params: Sequence, state: Sequence, order: int, h=None, *, loss=None, kind: str = "map with state"
) -> MapField:
    r"""The modified field of an iteration with a state, on its slow manifold (Eq. (3) of the module docstring).

    The iteration is θ' = ``theta_step``(θ, s, h), s' = ``state_step``(θ, s, h) (both in terms of the
    *old* state s). At h = 0 the state update must be s' = J s + c(θ) with a constant matrix J whose
    eigenvalues lie inside the unit circle (the state forgets its past: momentum buffers, moving
    averages), and θ' = θ on the resulting slow manifold s = σ_0(θ) = (I − J)^{-1} c(θ). Then the
    manifold s = σ_h(θ) is expanded to the needed order and the field of the one-step map on it is
    returned, with ``state_series`` = [σ_0, σ_1, ...] (start the iteration at s_0 = σ_h(θ_0) to follow
    the field from the first step; other starts add a transient decaying like the eigenvalues of J).

    Parameters
    ----------
    theta_step, state_step : sequences of expressions (or Matrices), one per parameter / state variable
    params : the parameter symbols θ
    state : the state symbols s (distinct from params and h)
    order : highest power of h kept
    h : the step-size symbol, as in :func:`modified_map`
    loss, kind : stored on the result (``loss`` is informative only)

    Raises
    ------
    InvalidMapError
        Wrong lengths, a state update that is not affine in s at h = 0 with constant coefficients, an
        eigenvalue of J on or outside the unit circle (no attracting slow manifold), a θ update that
        is not the identity at h = 0 on the manifold.
    NonSmoothMapError
        Non-smooth functions, also after the state is put on the manifold (e.g. sqrt(v) with v = g²).
    """
    order = check_order(order, minimum=0)
    th = _expressions(theta_step, "theta_step")
    st = _expressions(state_step, "state_step")
    if isinstance(state, (sp.Symbol, str)):
        state = [state]
    state = [sp.Symbol(s) if isinstance(s, str) else s for s in list(state)]
    if not state or not all(isinstance(s, sp.Symbol) for s in state) or len(set(state)) != len(state):
        raise InvalidMapError(f"state must be a non-empty list of distinct sympy Symbols, got {state!r}")
    params = _params_for(params, th + st)
    if set(state) & set(params):
        raise InvalidMapError(f"state symbols {sorted(map(str, set(state) & set(params)))} are also parameters")
    n, p = len(params), len(state)
    if len(th) != n:
        raise InvalidMapError(f"theta_step has {len(th)} components but there are {n} parameters {list(params)}")
    if len(st) != p:
        raise InvalidMapError(f"state_step has {len(st)} components but there are {p} state variables {state}")
    h = _step_size_symbol(th + st, h, list(params) + state)
    N = order + 1

    S = sp.Matrix(st)
    A = sp.Matrix(th) - sp.Matrix(params)
    at_zero = {v: 0 for v in state}
    J = S.jacobian(state).subs(h, 0)
    if J.free_symbols & (set(params) | set(state)):
        raise InvalidMapError(
            "at h = 0 the state update must be affine in the state with constant coefficients, s' = J s + c(θ); "
            f"here ds'/ds = {J.tolist()}"
        )
    I = sp.eye(p)
    if (I - J).det() == 0:
        raise InvalidMapError(
            f"ds'/ds = {J.tolist()} has the eigenvalue 1 at h = 0: the state never forgets its start, there is no "
            "slow manifold"
        )
    if not J.free_symbols:
        rho = max((abs(complex(ev)) for ev in J.eigenvals()), default=0.0)
        if rho >= 1:
            raise InvalidMapError(
                f"ds'/ds = {J.tolist()} has an eigenvalue of modulus {rho:.6g} >= 1 at h = 0: the state update is not "
                "contracting, so there is no attracting slow manifold (decay parameters must lie in [0, 1))"
            )
    sigma0 = ((I - J).inv() * S.subs(at_zero).subs(h, 0)).applyfunc(lambda e: sp.expand(sp.cancel(e)))
    on = dict(zip(state, sigma0))
    lead = A.subs(on).subs(h, 0).applyfunc(sp.simplify)
    if any(e != 0 for e in lead):
        raise InvalidMapError(
            f"theta_step is not the identity at h = 0 on the slow manifold s = {list(sigma0)}: θ' − θ = {list(lead)}"
        )
    As = A.jacobian(state).subs(on).subs(h, 0)
    L = (I - J + sigma0.jacobian(params) * As).applyfunc(sp.simplify)
    if L.free_symbols & set(params) or L.det() == 0:
        raise InvalidMapError(f"the slow-manifold equations are degenerate or θ-dependent (I − J + Dσ_0·A_s = {L.tolist()})")
    Linv = L.inv()

    # derivatives of A and S in (s, h) at (σ_0, 0), with pruning of vanishing derivatives
    zvars = list(state) + [h]
    base = dict(on)
    base[h] = 0
    tables = []
    for F in list(A) + list(S):
        rows = [((), F.subs(base))]
        _derivative_table(F, zvars, (), 0, N, base, rows)
        tables.append(rows)
    exprs = [e for rows in tables for _, e in rows] + list(sigma0) + list(Linv)
    hyper = sorted(set().union(*(sp.sympify(e).free_symbols for e in exprs)) - set(params) - {h}, key=str)
    alg = _Jets(params, h, exprs, hyper, N)
    conv = [[(idx, alg.rational(1, _multi_factorial(idx)), alg.conv(e)) for idx, e in rows] for rows in tables]
    Lq = [[alg.conv(Linv[a, b]) for b in range(p)] for a in range(p)]
    sigma = [[alg.conv(e)] + [alg.zero] * N for e in sigma0]  # sigma[a][j], filled in order by order
    # shifts of the Taylor expansions: the state by Δ = σ − σ_0 (and h by h), θ by δ = A(θ, σ, h)
    Delta = [[alg.zero] * (N + 1) for _ in range(p)]
    shift_s = _Shift(alg, Delta + [[alg.zero, alg.one] + [alg.zero] * (N - 1)], N)
    delta = [[alg.zero] * (N + 1) for _ in range(n)]
    shift_t = _Shift(alg, delta, N)

    def jet(rows, t):
        """[F(θ, σ_0 + Δ, h)]_t from F's derivative table."""
        acc = alg.zero
        for idx, w, c in rows:
            if c and len(idx) <= t and (idx or t == 0):
                pw = shift_s.coefficient(idx, t) if idx else alg.one
                if pw:
                    acc += c * pw * w
        return acc

    for j in range(1, N + 1):
        # σ_{j-1} is known now: δ_{j-1} is final; δ_j and the state's h^j term still lack σ_j
        for i in range(n):
            if j > 1:
                delta[i][j - 1] = jet(conv[i], j - 1)
            delta[i][j] = jet(conv[i], j)
        res = []
        for a in range(p):
            lhs = shift_t.apply(sigma[a][:j] + [alg.zero] * (N + 1 - j), only=j, key=a)[j]
            res.append(lhs - jet(conv[n + a], j))
        for a in range(p):
            acc = alg.zero
            for b in range(p):
                if Lq[a][b] and res[b]:
                    acc -= Lq[a][b] * res[b]
            sigma[a][j] = Delta[a][j] = acc
    for i in range(n):
        delta[i][N] = jet(conv[i], N)

    def states():
        return [sp.Matrix([alg.to_expr(sigma[a][j]) for a in range(p)]) for j in range(N + 1)]

    return _result(alg, delta, N, 1, loss=loss, kind=kind, state_series=states)


def _multi_factorial(idx: tuple) -> int:
    """α! of a multi-index written as a tuple of variable positions."""
    return math.prod(math.factorial(c) for c in Counter(idx).values())


def _derivative_table(F, zvars, idx, start, depth, base, rows) -> None:
    """Rows (multi-index, ∂^α F at the base point) for |α| ≤ depth, variables in sorted order."""
    if len(idx) >= depth:
        return
    free = F.free_symbols
    for pos in range(start, len(zvars)):
        v = zvars[pos]
        if v not in free:
            continue
        dF = sp.diff(F, v)
        if dF == 0:
            continue
        nidx = idx + (pos,)
        rows.append((nidx, dF.subs(base)))
        _derivative_table(dF, zvars, nidx, pos, depth, base, rows)
