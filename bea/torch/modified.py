r"""The modified field of gradient descent on a torch loss, numerically, to any order of the series.

For n beyond what symbolic code generation serves (hundreds to millions of parameters) the modified
field is evaluated from the loss-independent tree series (:func:`bea.modified_series`) by automatic
differentiation: with f = −∇E,

    f̃(θ, h) = Σ_{k=0}^{order} h^k f_k(θ),    f_k = Σ_{|t| = k+1} c(t) F(t),

F(•) = f, and for a tree t = [t_1, …, t_m] (root children t_i) the elementary differential

    F(t) = f^{(m)}(F(t_1), …, F(t_m)) = −D^m∇E(θ)[F(t_1), …, F(t_m)]

(design.md §1; Hairer, Lubich, Wanner, *GNI* III.1 and IX.1).  Only the coefficients c(t) come from
the exact engine (``fractions.Fraction``); they are rounded to θ's dtype when they multiply tensors.

How the work is organised (the *plan*: built once per series, independent of the loss)
    * **Linearised operators.**  A contraction is split into a *prefix* P (all root children but the
      first in canonical order) and an *argument* s (that first, largest child):
      D^m∇E[F(P), F(s)] = L_P(F(s)), where L_P: v ↦ D^{|P|+1}∇E[F(P), v] is a
      :class:`bea.torch.linalg.derivative_operator` — the map x ↦ D^{|P|}∇E(x)[F(P)] evaluated
      once with its graph recorded, then one backward pass per product.  L_() is the Hessian
      (:class:`~bea.torch.linalg.hvp_operator`), L_(g) is v ↦ T(g, v), …  The prefixes are small
      trees (g, Hg, …), shared by many trees: each operator is built once per call.
    * **Harvest.**  The output of L_P is itself D^{|P|}∇E[F(P)] = −F([P]): building L_() gives g,
      L_(g) gives Hg, L_(g,g) gives T(g,g) — no product is spent on them.
    * **Shared subtrees.**  F(s) is kept (memoised on its canonical level sequence) for every tree s
      that is a root child of another tree of the series, and freed after its last use; operators
      likewise.
    * **One product per prefix and order.**  f_k is linear in the argument, so the trees of f_k that
      are not kept vectors are merged by prefix: Σ_{t ∈ P} c(t) F(t) = −L_P(Σ_{t ∈ P} c(t) F(s_t)).
    * **Cost in HVP-equivalents** (one HVP ≈ one forward-over-reverse product): building an operator
      of depth d = |P| and each product through it count ½·2^d (:func:`pass_cost`; one HVP = build +
      product at d = 0), the gradient ½.  For GD, orders 1, 2, 3, 4 cost 1, 3, 4.5 and 19
      HVP-equivalents per call (:attr:`TorchModifiedField.hvp_equivalents`, :meth:`~TorchModifiedField.describe`);
      ``benchmarks/bench_torch_modified.py`` measures the time against the same unit.

Taylor mode and polarisation were considered: the m-th derivative along a single direction costs
O(m²) in Taylor (jet) arithmetic against 2^m with nested jvps, and polarisation turns mixed derivatives
into such pure ones, but torch has no Taylor-mode transform, and up to order 4 the only operator of
GD deeper than two is L_(g,g,g) (Q(g,g,g) and P(g,g,g,g), 4 + 4 HVP-equivalents), so nested jvps are
used throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
from torch.func import grad_and_value

from bea._checks import check_step
from bea.errors import InvalidInputError, InvalidMethodError
from bea.derive.series import ModifiedSeries, modified_series
from bea.torch.linalg import check_mode, derivative_operator
from bea.torch.loss import check_loss_value, check_theta
from bea.derive.trees import RootedTree

__all__ = ["TorchModifiedField", "modified_field", "PlanStep", "pass_cost"]

LevelSequence = tuple[int, ...]
Prefix = tuple[LevelSequence, ...]
_LEAF: LevelSequence = (1,)


def pass_cost(depth: int) -> float:
    """HVP-equivalents of building a :class:`~bea.torch.linalg.derivative_operator` of ``depth`` fixed
    directions, and of each product through it: ½·2^depth (so one HVP = build + product at depth 0)."""
    return 0.5 * 2**depth


@dataclass(frozen=True)
class PlanStep:
    r"""One pass of the plan of a :class:`TorchModifiedField`.

    Attributes
    ----------
    kind : ``"gradient"`` (F(•) = −∇E), ``"linearise"`` (build the operator L_P: v ↦ D^{|P|+1}∇E[F(P), v]),
        ``"apply"`` (F(tree) = −L_P(F(argument))) or ``"term"`` (assemble f_k).
    cost : HVP-equivalents of this pass (:func:`pass_cost`).
    prefix : P, the level sequences of the fixed directions (``"linearise"``, ``"apply"``).
    tree : the tree whose F is computed (``"apply"``), or harvested from the output of L_P, which is
        D^{|P|}∇E[F(P)] = −F([P]) (``"linearise"``; None when [P] is not needed).
    argument : the tree whose F is the product's argument (``"apply"``).
    k : the power of h (``"term"``).
    known : ``"term"``: (c(t), t) for the trees of f_k whose F(t) is a kept vector.
    groups : ``"term"``: (P, ((c(t), s_t), …)): one product −L_P(Σ c(t) F(s_t)) per prefix.
    """

    kind: str
    cost: float
    prefix: Prefix = ()
    tree: LevelSequence | None = None
    argument: LevelSequence | None = None
    k: int | None = None
    known: tuple[tuple[Fraction, LevelSequence], ...] = ()
    groups: tuple[tuple[Prefix, tuple[tuple[Fraction, LevelSequence], ...]], ...] = ()

    def __str__(self) -> str:
        cost = f"  ({self.cost:g} HVP)"
        if self.kind == "gradient":
            return f"F{_LEAF} = -grad E{cost}"
        if self.kind == "linearise":
            got = f"; F{self.tree} = -output" if self.tree is not None else ""
            return f"L{_name(self.prefix)}: v -> D^{len(self.prefix) + 1}grad E[{_args(self.prefix)}v]{got}{cost}"
        if self.kind == "apply":
            return f"F{self.tree} = -L{_name(self.prefix)}(F{self.argument}){cost}"
        parts = [f"{c}*F{t}" for c, t in self.known]
        for prefix, last in self.groups:
            parts.append(f"-L{_name(prefix)}(" + " + ".join(f"{c}*F{s}" for c, s in last) + ")")
        return f"f_{self.k} = " + (" + ".join(parts) or "0") + cost


def _name(prefix: Prefix) -> str:
    return "[" + ", ".join(map(str, prefix)) + "]"


def _args(prefix: Prefix) -> str:
    return "".join(f"F{p}, " for p in prefix)


def _children(seq: LevelSequence) -> Prefix:
    return tuple(c.level_sequence for c in RootedTree(seq).children)


def _split(seq: LevelSequence) -> tuple[Prefix, LevelSequence]:
    """(prefix, argument) of a contraction: the argument is the first (largest) root child, the
    prefix the others — small trees (g, Hg, …) that many trees share."""
    first, *rest = _children(seq)
    return tuple(rest), first


def _plan(series: ModifiedSeries) -> tuple[tuple[PlanStep, ...], dict]:
    """The passes that evaluate f_0..f_order, and the index of the last use of every vector/operator."""
    terms = [[(t.level_sequence, c) for t, c in series.terms(k)] for k in range(series.order + 1)]
    # vectors: the root children of every tree of the series, recursively
    vectors: set = {_LEAF}
    stack = [child for term in terms for seq, _ in term for child in _children(seq)]
    while stack:
        s = stack.pop()
        if s not in vectors:
            vectors.add(s)
            stack.extend(_children(s))
    needed = (vectors - {_LEAF}) | {seq for term in terms for seq, _ in term if seq not in vectors}
    # operators: one per prefix of a contraction; a needed tree [P] is the output of L_P (harvest)
    used = {_split(t)[0] for t in needed}
    harvest = {t for t in needed | {_LEAF} if _children(t) in used}
    operators = {_split(t)[0] for t in needed - harvest} | {_children(t) for t in harvest}
    kept = vectors | harvest
    steps: list[PlanStep] = []
    built: set = set()

    def build(prefix: Prefix) -> None:
        if prefix not in built:
            built.add(prefix)
            tree = RootedTree.from_children([RootedTree(p) for p in prefix]).level_sequence
            steps.append(PlanStep("linearise", pass_cost(len(prefix)), prefix=prefix, tree=tree if tree in kept else None))

    for k, term in enumerate(terms):
        for seq in sorted((s for s in kept if len(s) == k + 1), reverse=True):
            if seq in harvest:
                build(_children(seq))
            elif seq == _LEAF:
                steps.append(PlanStep("gradient", pass_cost(0)))
            else:
                prefix, arg = _split(seq)
                build(prefix)
                steps.append(PlanStep("apply", pass_cost(len(prefix)), prefix=prefix, tree=seq, argument=arg))
        known = tuple((c, seq) for seq, c in term if seq in kept)
        groups: dict = {}
        for seq, c in term:
            if seq not in kept:
                prefix, arg = _split(seq)
                groups.setdefault(prefix, []).append((c, arg))
        for prefix in groups:
            build(prefix)
        groups_t = tuple((prefix, tuple(last)) for prefix, last in groups.items())
        cost = sum(pass_cost(len(prefix)) for prefix, _ in groups_t)
        steps.append(PlanStep("term", float(cost), k=k, known=known, groups=groups_t))
    assert built == operators  # every operator is built once, where it is first needed
    last_use: dict = {}
    for i, step in enumerate(steps):
        if step.kind == "linearise":
            used_here = [("F", p) for p in step.prefix] + [("L", step.prefix)]
        elif step.kind == "apply":
            used_here = [("L", step.prefix), ("F", step.argument)]
        elif step.kind == "term":
            used_here = [("F", t) for _, t in step.known]
            for prefix, last in step.groups:
                used_here += [("L", prefix)] + [("F", s) for _, s in last]
        else:
            used_here = []
        for key in used_here:
            last_use[key] = i
    return tuple(steps), last_use


class TorchModifiedField:
    r"""f̃(θ, h) = Σ_{k=0}^{order} h^k f_k(θ) of a loss-independent series, evaluated on a torch loss.

    Build it with :func:`modified_field` (or directly from any numeric :class:`~bea.derive.series.ModifiedSeries`,
    e.g. :func:`bea.modifying_integrator`).  f = −∇E; see the module docstring for the formulas, the
    plan and its cost.

    Attributes
    ----------
    f : the loss, ``f(θ) -> scalar tensor`` (a :class:`bea.torch.FlatLoss` or any callable).
    series : the :class:`~bea.derive.series.ModifiedSeries` whose exact coefficients c(t) are used.
    order : the highest power of h.
    method : the method of the series (a tableau or a multistep method).
    mode : ``"rev"`` or ``"fwd"``, how the operators differentiate (:class:`bea.torch.linalg.derivative_operator`).
    plan : tuple of :class:`PlanStep`, the passes of one call (:meth:`describe` prints them).
    hvp_equivalents : the cost of one call (:meth:`terms` or ``__call__``) in Hessian-vector products.
    """

    def __init__(self, f, series: ModifiedSeries, *, mode: str = "rev"):
        if not callable(f):
            raise InvalidInputError(f"f must be a callable f(theta) -> scalar tensor (e.g. a FlatLoss), got {f!r}")
        if not isinstance(series, ModifiedSeries):
            raise InvalidInputError(f"series must be a bea.ModifiedSeries, got {type(series).__name__}")
        if series.is_symbolic:
            raise InvalidMethodError(
                f"the series of {series.method!r} has symbolic coefficients; the torch route needs numbers "
                "(e.g. Momentum(0.9) instead of Momentum(Symbol('m')))"
            )
        self.f = f
        self.series = series
        self.order = series.order
        self.method = series.method
        self.mode = check_mode(mode)
        self.plan, self._last_use = _plan(series)
        self.hvp_equivalents = float(sum(step.cost for step in self.plan))

    def _loss(self, x):
        return check_loss_value(self.f(x), "f(theta)")

    def terms(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """[f_0(θ), …, f_order(θ)], tensors of θ's shape, dtype and device."""
        theta = check_theta(theta, "theta")
        live: dict = {}  # ("F", tree) -> F(tree); ("L", prefix) -> derivative_operator
        out: list[torch.Tensor] = []
        for i, step in enumerate(self.plan):
            if step.kind == "gradient":
                g, value = grad_and_value(self._loss)(theta)
                self._check_value(value)
                live[("F", _LEAF)] = -g
            elif step.kind == "linearise":
                op = derivative_operator(self._loss, theta, [live[("F", p)] for p in step.prefix], mode=self.mode)
                if op.value is not None:
                    self._check_value(op.value)
                live[("L", step.prefix)] = op
                if step.tree is not None:
                    live[("F", step.tree)] = -op.output
            elif step.kind == "apply":
                live[("F", step.tree)] = -live[("L", step.prefix)](live[("F", step.argument)])
            else:
                acc = torch.zeros_like(theta)
                for c, seq in step.known:
                    acc = acc + float(c) * live[("F", seq)]
                for prefix, last in step.groups:
                    w = sum(float(c) * live[("F", s)] for c, s in last)
                    acc = acc - live[("L", prefix)](w)
                out.append(acc)
            for key in [key for key in live if self._last_use.get(key, -1) <= i]:
                del live[key]
        return out

    @staticmethod
    def _check_value(value) -> None:
        if not bool(torch.isfinite(value)):
            raise InvalidInputError(f"the loss at theta is not finite ({float(value)})")

    def __call__(self, theta: torch.Tensor, h: float) -> torch.Tensor:
        """f̃(θ, h) = Σ_k h^k f_k(θ) (Horner), for a step size h > 0."""
        h = check_step(h)
        terms = self.terms(theta)
        out = terms[-1]
        for term in reversed(terms[:-1]):
            out = term + h * out
        return out

    def describe(self) -> str:
        """The plan, one pass a line, with its cost."""
        lines = [f"{self!r}"] + [f"  {step}" for step in self.plan]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"TorchModifiedField(order={self.order}, method={self.method.name!r}, mode={self.mode!r}, "
            f"hvp_equivalents={self.hvp_equivalents:g})"
        )


def modified_field(f, order: int, method="gd", *, mode: str = "rev") -> TorchModifiedField:
    r"""The modified field of ``method`` (gradient descent by default) on a torch loss, to order h^order.

    The numeric counterpart of :func:`bea.modified_field` for losses given as torch functions of a
    flat parameter vector: GD θ_{k+1} = θ_k − h∇E(θ_k) is matched to O(h^{order+2}) per step by the
    exact flow of

        θ̇ = f̃(θ, h) = −g − h/2 Hg − h²(⅓H²g + 1/12 T(g,g)) − h³(¼H³g + 1/12 H T(g,g) + 1/12 T(g,Hg)) − …

    with every term computed from the exact tree coefficients of :func:`bea.modified_series` by
    automatic differentiation (module docstring).

    Parameters
    ----------
    f : ``f(θ) -> scalar tensor`` — a :class:`bea.torch.FlatLoss` (:func:`bea.torch.flat_loss`) or any
        callable differentiable with ``torch.func`` (forward and reverse mode).
    order : int ≥ 0 — the highest power of h kept; any order the series gives.
    method : anything :func:`bea.modified_series` accepts with numeric coefficients (``"gd"``,
        ``"rk4"``, ``Momentum(0.9)``, …).
    mode : ``"rev"`` (default) or ``"fwd"`` (:class:`bea.torch.linalg.derivative_operator`).

    Returns
    -------
    TorchModifiedField
        ``field(θ, h)`` is f̃(θ, h), ``field.terms(θ)`` the list [f_0(θ), …, f_order(θ)],
        ``field.hvp_equivalents`` the cost of one call.

    Raises
    ------
    InvalidOrderError : ``order`` is not a non-negative integer.
    InvalidInputError : ``f`` is not callable, ``mode`` is unknown; at call time θ is not a finite
        floating 1-D tensor, h is not a positive finite number, or the loss at θ is not finite.
    InvalidLossError : ``f`` does not return a real scalar tensor.
    InvalidMethodError : the method's coefficients are symbolic.

    Examples
    --------
    >>> import torch, bea.torch as bt
    >>> E = lambda th: 0.5 * (th ** 2).sum()
    >>> mf = bt.modified_field(E, order=2)
    >>> mf(torch.tensor([1.0, 2.0], dtype=torch.float64), 0.5)    # −(1 + h/2 + h²/3) θ
    tensor([-1.3333, -2.6667], dtype=torch.float64)
    >>> mf.hvp_equivalents
    3.0
    """
    return TorchModifiedField(f, modified_series(order, method), mode=mode)
