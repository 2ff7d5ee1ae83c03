r"""Elementary differentials on a sympy loss: a B-series of :mod:`bea.derive.series` evaluated on E.

For gradient descent on E the vector field is f = −∇E and the elementary differentials are

    F(•) = f = −g,   F([t_1, ..., t_m]) = f^{(m)}(F(t_1), ..., F(t_m)) = −∇(D^m E[F(t_1), ..., F(t_m)]),

so F([•]) = H g, F([•,•]) = −T(g,g), and in general F(t) = (−1)^{|t|} G(t) with G the contraction of
∇^{m+1}E with the children's vectors (:func:`bea.derive.series.gradient_notation_of_tree`). The modified field

    f̃ = Σ_{k=0}^{order} h^k f_k,   f_k = Σ_{|t|=k+1} c(t) F(t)

is assembled with exact rational c(t). Each F(t) is computed once and shared by every tree that
contains t (memoised by canonical subtree); multilinear derivatives are directional derivatives of
the scalar E along placeholder vectors, never full derivative tensors.

This is the evaluation step of the pipeline and imports nothing above :mod:`bea.derive.trees`;
:mod:`bea.derive.symbolic` adds :func:`bea.derive.symbolic.modified_field` (build a method's series, then evaluate
it) and re-exports every name here.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Sequence

import sympy as sp

from bea.errors import InvalidLossError, InvalidOrderError, InvalidParamsError, NonSmoothLossError
from bea.derive.trees import LevelSequence, child_blocks

if TYPE_CHECKING:  # the algebra sits below: bea.derive.series imports this module, never the reverse
    from bea.derive.series import ModifiedSeries

__all__ = [
    "ModifiedField",
    "field_from_series",
    "check_simplify",
    "validate_loss",
    "step_symbol",
    "non_smooth_functions",
    "scalar_expression",
    "symbol_sequence",
]

_NON_SMOOTH = (
    sp.Abs,
    sp.Max,
    sp.Min,
    sp.sign,
    sp.Piecewise,
    sp.Heaviside,
    sp.floor,
    sp.ceiling,
    sp.frac,
    sp.DiracDelta,
    sp.re,
    sp.im,
    sp.arg,
)

_SIMPLIFY_OPTIONS = ("auto", "expand", "simplify", "none")


def step_symbol() -> sp.Symbol:
    """The step-size symbol h used by every modified field (positive)."""
    return sp.Symbol("h", positive=True)


def non_smooth_functions(expr) -> list[str]:
    """Sorted names of the non-smooth functions (Abs, sign, Max, Piecewise, ...) in a sympy expression."""
    return sorted({type(a).__name__ for a in sp.sympify(expr).atoms(*_NON_SMOOTH)})


def scalar_expression(e, *, error=InvalidLossError, what: str = "the loss") -> sp.Expr:
    """``e`` sympified and checked to be a finite scalar expression; otherwise ``error`` naming ``what``."""
    try:
        e = sp.sympify(e)
    except (sp.SympifyError, TypeError):
        raise error(f"{what} must be a sympy expression, got {e!r}") from None
    if not isinstance(e, sp.Expr) or isinstance(e, sp.core.relational.Relational):
        raise error(f"{what} must be a scalar sympy expression, got {type(e).__name__}: {e}")
    if e.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise error(f"{what} contains an infinity or nan: {e}")
    return e


def symbol_sequence(value, name: str, hint: str) -> list:
    """``value`` as a non-empty list (one Symbol or string becomes a list of one); the entries are
    checked by the caller. ``name`` and ``hint`` go into the :class:`bea.InvalidParamsError`."""
    if isinstance(value, (sp.Symbol, str)):
        value = [value]
    try:
        value = list(value)
    except TypeError:
        raise InvalidParamsError(f"{name} must be a sequence of sympy Symbols, got {value!r}") from None
    if not value:
        raise InvalidParamsError(f"{name} is empty: {hint}")
    return value


def validate_loss(E, params) -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """Check and normalise a loss and its parameters; raise a :class:`bea.BEAError` subclass if bad.

    ``E`` is a scalar sympy expression (or a string sympy can parse); ``params`` a non-empty sequence
    of distinct sympy Symbols (strings are accepted and matched by name to the loss's symbols) that
    contains every free symbol of E.
    """
    params = symbol_sequence(params, "params", "give the parameter symbols of the loss, e.g. [x, y]")

    if isinstance(E, str):
        names = {p: sp.Symbol(p) for p in params if isinstance(p, str)}
        names.update({p.name: p for p in params if isinstance(p, sp.Symbol)})
        try:
            E = sp.parse_expr(E, local_dict=names)
        except Exception as exc:  # sympy raises many kinds here
            raise InvalidLossError(f"could not parse the loss {E!r}: {exc}") from None
    if isinstance(E, (sp.MatrixBase, sp.NDimArray, list, tuple)):
        raise InvalidLossError(
            f"the loss must be a scalar expression, got a {type(E).__name__} "
            f"(shape {getattr(E, 'shape', len(E) if hasattr(E, '__len__') else '?')})"
        )
    E = scalar_expression(E)

    by_name = {s.name: s for s in E.free_symbols if isinstance(s, sp.Symbol)}
    symbols = []
    for p in params:
        if isinstance(p, str):
            p = by_name.get(p, sp.Symbol(p))
        if not isinstance(p, sp.Symbol):
            raise InvalidParamsError(f"every parameter must be a sympy Symbol, got {p!r} ({type(p).__name__})")
        symbols.append(p)
    seen = set()
    dups = [p for p in symbols if p in seen or seen.add(p)]
    if dups:
        raise InvalidParamsError(f"duplicated parameters: {sorted(set(map(str, dups)))}")
    missing = E.free_symbols - set(symbols)
    if missing:
        raise InvalidParamsError(
            f"the loss depends on {sorted(map(str, missing))}, which are not in params {[str(p) for p in symbols]}; "
            "every free symbol of the loss must be a parameter (substitute numbers for constants)"
        )
    bad = non_smooth_functions(E)
    if bad:
        raise NonSmoothLossError(
            f"the loss contains non-smooth functions {bad}; backward error analysis needs a smooth loss "
            "(replace e.g. Abs(x) by sqrt(x**2 + eps))"
        )
    return E, tuple(symbols)


class _Differentials:
    """Elementary differentials F(t) of f = −∇E, memoised by canonical subtree.

    F([t_1..t_m])_i = −Σ_{j_1..j_m} ∂_{i j_1 .. j_m}E · Π_k F(t_k)_{j_k}. Partial derivatives are
    cached by sorted multi-index (symmetry), and a branch of the sum is pruned as soon as its partial
    derivative vanishes, since all higher ones then vanish too (polynomial losses stop early).
    Polynomial losses are handled as ``sympy.Poly`` (fast exact arithmetic), other losses as
    expressions.
    """

    def __init__(self, E: sp.Expr, params: tuple[sp.Symbol, ...], simplify: str):
        self.params = params
        self.n = len(params)
        self.poly = simplify in ("auto", "expand") and E.is_polynomial(*params)
        self.expand = simplify == "expand"
        self.simplify = simplify == "simplify"
        self.grad = [sp.diff(E, p) for p in params]
        if self.poly:
            base = sp.Poly(E, *params)
            self._zero = sp.Poly(0, *params, domain=base.domain)
        else:
            base = E
            self._zero = sp.S.Zero
        self._partials: dict[tuple[int, ...], object] = {(): base}
        self._cache: dict[LevelSequence, list] = {}

    def to_expr(self, value) -> sp.Expr:
        return value.as_expr() if self.poly else value

    def _tidy(self, e):
        if self.simplify:
            return sp.simplify(e)
        if self.expand:
            return sp.expand(e)
        return e

    def partial(self, idx: tuple[int, ...]):
        """∂_{idx} E for a sorted multi-index (cached)."""
        out = self._partials.get(idx)
        if out is None:
            parent = self.partial(idx[:-1])
            var = self.params[idx[-1]]
            out = parent.diff(var) if self.poly else sp.diff(parent, var)
            self._partials[idx] = out
        return out

    @staticmethod
    def _is_zero(value) -> bool:
        return value.is_zero is True if isinstance(value, sp.Expr) else value.is_zero

    def _contract(self, i: int, vectors: list) -> object:
        """Σ_J ∂_{i J}E Π_k vectors[k][J_k], pruning vanishing partial derivatives."""
        terms = []

        def walk(k: int, idx: tuple[int, ...], factor):
            if k == len(vectors):
                terms.append(self.partial(idx) * factor if factor is not None else self.partial(idx))
                return
            for j, vj in enumerate(vectors[k]):
                if self._is_zero(vj):
                    continue
                nxt = tuple(sorted(idx + (j,)))
                if self._is_zero(self.partial(nxt)):
                    continue
                walk(k + 1, nxt, vj if factor is None else factor * vj)

        walk(0, (i,), None)
        if not terms:
            return self._zero
        if self.poly:
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            return total
        return sp.Add(*terms)

    def __call__(self, seq: LevelSequence) -> list:
        cached = self._cache.get(seq)
        if cached is not None:
            return cached
        vectors = [self(child) for child in child_blocks(seq)]
        out = [-self._contract(i, vectors) for i in range(self.n)]
        if not self.poly:
            out = [self._tidy(e) for e in out]
        self._cache[seq] = out
        return out


class ModifiedField:
    r"""The modified vector field f̃ = Σ_k h^k f_k of a method applied to a concrete loss.

    Attributes
    ----------
    loss : sympy.Expr
    params : tuple of sympy.Symbol, in the order given
    h : sympy.Symbol, the step size (positive)
    order : int, the highest power of h kept
    terms : list of ``order + 1`` sympy column Matrices; ``terms[0] == −∇E`` and ``terms[k]`` is f_k
    field : sympy column Matrix Σ_k h^k terms[k]
    series : the loss-independent :class:`~bea.derive.series.ModifiedSeries` it was evaluated from
    """

    def __init__(self, loss, params, h, terms, series: ModifiedSeries):
        self.loss = loss
        self.params = tuple(params)
        self.h = h
        self.terms = list(terms)
        self.series = series
        self.order = len(self.terms) - 1
        self.method = series.method

    @cached_property
    def field(self) -> sp.Matrix:
        out = sp.zeros(len(self.params), 1)
        for k, term in enumerate(self.terms):
            out += self.h**k * term
        return out

    def truncated(self, order: int) -> "ModifiedField":
        """The same field keeping the powers h^0 .. h^order."""
        if not 0 <= order <= self.order:
            from bea.errors import InvalidOrderError

            raise InvalidOrderError(f"can truncate to orders 0..{self.order}, got {order}")
        return ModifiedField(self.loss, self.params, self.h, self.terms[: order + 1], self.series)

    def compile(self, *, cse: bool = True, backend: str = "auto"):
        """A numba-jitted kernel ``kern(theta, h) -> ndarray`` of :attr:`field` (cached by content).

        ``kern`` works for float64 and complex128 ``theta``, can be called from other njit code, and
        ``kern.batch(thetas, h)`` evaluates many points in parallel. One kernel for the whole field,
        one cse over all its components. ``backend="auto"`` (default) compiles the float64 path of a
        large field with symengine's LLVM backend when it is installed (seconds to minutes of numba
        compile time saved; complex θ still goes through numba, compiled on first use) and small
        fields with numba; ``"numba"`` / ``"llvm"`` force one. See :func:`bea.compile.codegen.compile_exprs`.
        """
        from bea.compile.codegen import compile_exprs

        return compile_exprs(self.field, self.params, (self.h,), cse=cse, name="modified_field", backend=backend)

    def gradient_notation(self, k: int, style: str = "ascii") -> str:
        """f_k in gradient notation (loss independent), e.g. ``-1/2 H g`` for k = 1 of GD."""
        if not 0 <= k <= self.order:
            from bea.errors import InvalidOrderError

            raise InvalidOrderError(f"this field has terms f_0..f_{self.order}, asked for f_{k}")
        return self.series.gradient_notation(k, style)

    def latex(self, printer=None) -> str:
        r"""LaTeX of f̃ term by term: ``f_k = <gradient notation> = <components>`` in an ``aligned``
        block, headed by f̃ = Σ_k h^k f_k. ``sp.latex(mf)`` and Jupyter's rich display
        (:meth:`_repr_latex_`) use it. ``printer`` (a sympy ``LatexPrinter``) carries ``sp.latex``'s
        settings to the components."""
        tex = sp.latex if printer is None else printer.doprint
        h = tex(self.h)
        powers = ["f_{0}"] + [f"{h} f_{{{k}}}" if k == 1 else f"{h}^{{{k}}} f_{{{k}}}" for k in range(1, self.order + 1)]
        lines = [r"\tilde f &= " + " + ".join(powers)]
        for k, term in enumerate(self.terms):
            lines.append(rf"f_{{{k}}} &= {self.series.gradient_notation(k, 'latex')} = {tex(term)}")
        return r"\begin{aligned}" + r"\\ ".join(lines) + r"\end{aligned}"

    def _latex(self, printer) -> str:  # sympy's printing protocol: sp.latex(mf)
        return self.latex(printer)

    def _repr_latex_(self) -> str:  # Jupyter / IPython rich display
        return f"$${self.latex()}$$"

    def __repr__(self) -> str:
        return (
            f"ModifiedField(loss={self.loss}, params={self.params}, order={self.order}, "
            f"method={self.method.name!r})"
        )

    def __str__(self) -> str:
        lines = [f"modified field of {self.method.name} on E = {self.loss}, params {self.params}:"]
        for k, term in enumerate(self.terms):
            lines.append(f"  h^{k}: f_{k} = {self.series.gradient_notation(k)}")
            for p, e in zip(self.params, term):
                lines.append(f"      [{p}] {e}")
        return "\n".join(lines)


def check_simplify(simplify) -> str:
    """The ``simplify`` option as one of ``auto``, ``expand``, ``simplify``, ``none`` (True/False accepted)."""
    if simplify is True:
        return "simplify"
    if simplify is False or simplify is None:
        return "none"
    if simplify in _SIMPLIFY_OPTIONS:
        return simplify
    raise ValueError(f"simplify must be one of {_SIMPLIFY_OPTIONS} (or True/False), got {simplify!r}")


def field_from_series(series: ModifiedSeries, E, params=None, *, simplify="auto", h=None) -> ModifiedField:
    """Evaluate a loss-independent series on the loss E (see :func:`modified_field`).

    E may also be a :class:`bea.compile.loss.CompiledLoss` (its expression is used; ``params`` may be None)
    or a :class:`bea.compile.data.DataLoss`, whose field is a :class:`bea.compile.data.DataModifiedField` evaluated
    numerically over the data (no unrolling; its sympy ``terms`` are built lazily): any object with a
    ``field_from_series(series, params, simplify=, h=)`` method is asked for its own field."""
    own = None if isinstance(E, (sp.Basic, str)) else getattr(E, "field_from_series", None)
    if own is not None:  # a compiled loss evaluates the series itself (CompiledLoss, DataLoss)
        return own(series, params, simplify=simplify, h=h)
    if params is None:
        raise InvalidParamsError("params is missing: give the parameter symbols of the loss, e.g. [x, y]")
    E, params = validate_loss(E, params)
    simplify = check_simplify(simplify)
    h = step_symbol() if h is None else h
    F = _Differentials(E, params, simplify)
    # terms[0] keeps −diff(E, p) exactly as sympy builds it (scaled by c(•) when that is not 1,
    # e.g. 1/(1 − m) for heavy-ball momentum)
    c0 = _sympy_coefficient(series.coefficient((1,)))
    terms = [sp.Matrix([-g if c0 == 1 else -g * c0 for g in F.grad])]
    for k in range(1, series.order + 1):
        pieces: list[list] = [[] for _ in params]
        for tree, c in series.terms(k):
            coef = _sympy_coefficient(c)
            for i, e in enumerate(F(tree.level_sequence)):
                if F.poly and not coef.is_Rational:  # a symbolic coefficient (e.g. in m) leaves the ring
                    e = e.as_expr()
                pieces[i].append(e * coef)
        acc = [_sum_pieces(p, F) for p in pieces]
        terms.append(sp.Matrix(acc))
    return ModifiedField(E, params, h, terms, series)


def _sympy_coefficient(c) -> sp.Expr:
    """A series coefficient (``Fraction`` or a sympy expression) as a sympy number/expression."""
    if isinstance(c, Fraction):
        return sp.Rational(c.numerator, c.denominator)
    return sp.sympify(c)


def _sum_pieces(pieces: list, F: "_Differentials") -> sp.Expr:
    if not pieces:
        return sp.S.Zero
    polys = [p for p in pieces if isinstance(p, sp.Poly)]
    exprs = [p for p in pieces if not isinstance(p, sp.Poly)]
    total = sum(polys[1:], polys[0]).as_expr() if polys else sp.S.Zero
    if exprs:
        total = F._tidy(sp.Add(total, *exprs))
    return total
