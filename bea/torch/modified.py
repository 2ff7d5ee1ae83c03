r"""The modified field of gradient descent on a torch loss, numerically, to any order of the series.

For n beyond what symbolic code generation serves (hundreds to millions of parameters) the modified
field is evaluated from the loss-independent tree series (:func:`bea.modified_series`) by automatic
differentiation: with f = −∇E,

    f̃(θ, h) = Σ_{k=0}^{order} h^k f_k(θ),    f_k = Σ_{|t| = k+1} c(t) F(t),

F(•) = f, and for a tree t = [t_1, …, t_m] (root children t_i) the elementary differential

    F(t) = f^{(m)}(F(t_1), …, F(t_m)) = −D^m∇E(θ)[F(t_1), …, F(t_m)]

(design.md §1; Hairer, Lubich, Wanner, *GNI* III.1 and IX.1).  Each contraction is one
:func:`bea.torch.linalg.gradient_derivative`: m nested forward-mode derivatives of E along the F(t_i)
followed by one reverse pass (``mode="rev"``) or m nested jvps of ∇E (``mode="fwd"``).  Only the
coefficients c(t) come from the exact engine (``fractions.Fraction``); they are rounded to θ's dtype
when they multiply tensors.

How the work is organised (the *plan*, built once per series, independent of the loss)
    * **Shared subtrees.**  F(s) is computed once per call for every tree s that is a root child of
      another tree in the series (memoised on its canonical level sequence) and freed after its last
      use.  These are the only vectors computed one by one.
    * **One pass per order.**  The other trees of order k+1 only enter f_k, which is linear in each
      argument of D^m∇E: trees t = [s, p_1, …, p_{m−1}] with the same *prefix* (p_1, …, p_{m−1}) (all
      children but the first in canonical order, s) are merged into one contraction with the
      direction Σ_t c(t) F(s_t), and in ``"rev"`` mode all prefixes of an order are summed as scalars
      before the single reverse pass:  f_k ⊇ −∇_θ Σ_P D^{|P|+1}E(θ)[F(P), Σ_{t ∈ P} c(t) F(s_t)].
    * **Cost in HVP-equivalents** (one HVP ≈ one forward-over-reverse product): ½ for the gradient and
      2^{m−1} for a contraction with m directions (each forward level doubles the work).  For GD,
      order 1, 2, 3, 4 cost 1.5, 4.5, 7.5 and 18.5 HVP-equivalents per call (:attr:`TorchModifiedField.hvp_equivalents`;
      ``benchmarks/bench_torch_modified.py`` measures the time against the same count).

Taylor mode and polarisation were considered: the m-th derivative along a single direction costs
O(m²) in Taylor (jet) arithmetic against 2^m with nested jvps, and polarisation turns mixed derivatives
into such pure ones, but torch has no Taylor-mode transform and up to order 4 only one tree of GD has
more than three root children (P(g,g,g,g), 8 HVP-equivalents), so nested jvps are used throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
from torch.func import grad as _func_grad
from torch.func import grad_and_value

from bea._checks import check_step
from bea.errors import InvalidInputError, InvalidMethodError
from bea.series import ModifiedSeries, modified_series
from bea.torch.linalg import check_mode, directional_derivative, gradient_derivative
from bea.torch.loss import check_loss_value, check_theta
from bea.trees import RootedTree

__all__ = ["TorchModifiedField", "modified_field", "PlanStep", "contraction_cost"]

LevelSequence = tuple[int, ...]
_LEAF: LevelSequence = (1,)


def contraction_cost(m: int) -> float:
    """HVP-equivalents of one contraction D^m∇E[v_1, …, v_m]: ½ for the gradient (m = 0), else 2^{m−1}."""
    return 0.5 if m == 0 else float(2 ** (m - 1))


@dataclass(frozen=True)
class PlanStep:
    r"""One pass of the plan of a :class:`TorchModifiedField`.

    Attributes
    ----------
    kind : ``"vector"`` (compute F(tree) and keep it) or ``"term"`` (assemble f_k).
    tree : the tree whose F is computed (``"vector"``), or None.
    k : the power of h of the term (``"term"``), or None.
    directions : ``"vector"``: the level sequences of the root children of ``tree``.
    known : ``"term"``: (c(t), t) for the trees of f_k whose F(t) is already a kept vector.
    groups : ``"term"``: (prefix, ((c(t), s_t), …)) — the contraction −D^m∇E[F(prefix), Σ c(t) F(s_t)].
    cost : HVP-equivalents of this pass.
    """

    kind: str
    cost: float
    tree: LevelSequence | None = None
    k: int | None = None
    directions: tuple[LevelSequence, ...] = ()
    known: tuple[tuple[Fraction, LevelSequence], ...] = ()
    groups: tuple[tuple[tuple[LevelSequence, ...], tuple[tuple[Fraction, LevelSequence], ...]], ...] = ()

    def __str__(self) -> str:
        if self.kind == "vector":
            return f"F{self.tree} = -D^{len(self.directions)}grad E[{', '.join(map(str, self.directions))}]  ({self.cost:g} HVP)"
        parts = [f"{c}*F{t}" for c, t in self.known]
        for prefix, last in self.groups:
            w = " + ".join(f"{c}*F{s}" for c, s in last)
            parts.append(f"-D^{len(prefix) + 1}grad E[{', '.join(map(str, prefix + ('w',)))}], w = {w}")
        return f"f_{self.k} = " + (" + ".join(parts) or "0") + f"  ({self.cost:g} HVP)"


def _children(seq: LevelSequence) -> tuple[LevelSequence, ...]:
    return tuple(c.level_sequence for c in RootedTree(seq).children)


def _plan(series: ModifiedSeries) -> tuple[tuple[PlanStep, ...], dict]:
    """The passes that evaluate f_0..f_order, in order, and the index of the last use of each vector."""
    terms = [[(t.level_sequence, c) for t, c in series.terms(k)] for k in range(series.order + 1)]
    # vectors: every root child of a tree of the series, and recursively their children
    vectors: set = {_LEAF}
    stack = [child for term in terms for seq, _ in term for child in _children(seq)]
    while stack:
        s = stack.pop()
        if s not in vectors:
            vectors.add(s)
            stack.extend(_children(s))
    steps: list[PlanStep] = []
    for k, term in enumerate(terms):
        size = k + 1
        for seq in sorted((s for s in vectors if len(s) == size), reverse=True):
            children = _children(seq)
            steps.append(PlanStep("vector", contraction_cost(len(children)), tree=seq, directions=children))
        known = tuple((c, seq) for seq, c in term if seq in vectors)
        groups: dict = {}
        for seq, c in term:
            if seq in vectors:
                continue
            first, *prefix = _children(seq)
            groups.setdefault(tuple(prefix), []).append((c, first))
        groups_t = tuple((prefix, tuple(last)) for prefix, last in groups.items())
        cost = sum(contraction_cost(len(prefix) + 1) for prefix, _ in groups_t)
        steps.append(PlanStep("term", float(cost), k=k, known=known, groups=groups_t))
    last_use: dict = {}
    for i, step in enumerate(steps):
        used = list(step.directions) + [seq for _, seq in step.known]
        for prefix, last in step.groups:
            used.extend(prefix)
            used.extend(seq for _, seq in last)
        for seq in used:
            last_use[seq] = i
    return tuple(steps), last_use


class TorchModifiedField:
    r"""f̃(θ, h) = Σ_{k=0}^{order} h^k f_k(θ) of a loss-independent series, evaluated on a torch loss.

    Build it with :func:`modified_field` (or directly from any numeric :class:`~bea.series.ModifiedSeries`,
    e.g. :func:`bea.modifying_integrator`).  f = −∇E; see the module docstring for the formulas, the
    plan and its cost.

    Attributes
    ----------
    f : the loss, ``f(θ) -> scalar tensor`` (a :class:`bea.torch.FlatLoss` or any callable).
    series : the :class:`~bea.series.ModifiedSeries` whose exact coefficients c(t) are used.
    order : the highest power of h.
    method : the method of the series (a tableau or a multistep method).
    mode : ``"rev"`` or ``"fwd"``, how each contraction is differentiated
        (:func:`bea.torch.linalg.gradient_derivative`).
    plan : tuple of :class:`PlanStep`, the passes of one call.
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
        g, value = grad_and_value(self._loss)(theta)
        if not bool(torch.isfinite(value)):
            raise InvalidInputError(f"the loss at theta is not finite ({float(value)})")
        F = {_LEAF: -g}
        out: list[torch.Tensor] = []
        for i, step in enumerate(self.plan):
            if step.kind == "vector":
                if step.tree != _LEAF:
                    F[step.tree] = -gradient_derivative(
                        self._loss, theta, [F[s] for s in step.directions], mode=self.mode
                    )
            else:
                out.append(self._term(theta, step, F))
            for seq in [s for s in F if self._last_use.get(s, -1) <= i]:
                del F[seq]
        return out

    def _term(self, theta, step: PlanStep, F: dict) -> torch.Tensor:
        acc = torch.zeros_like(theta)
        for c, seq in step.known:
            acc = acc + float(c) * F[seq]
        if not step.groups:
            return acc
        dirs = [[F[s] for s in prefix] + [sum(float(c) * F[s] for c, s in last)] for prefix, last in step.groups]
        if self.mode == "fwd":
            for d in dirs:
                acc = acc - gradient_derivative(self._loss, theta, d, mode="fwd")
            return acc
        parts = [directional_derivative(self._loss, d) for d in dirs]
        return acc - _func_grad(lambda x: sum(p(x) for p in parts))(theta)

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
    mode : ``"rev"`` (default) or ``"fwd"`` (:func:`bea.torch.linalg.gradient_derivative`).

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
    4.5
    """
    return TorchModifiedField(f, modified_series(order, method), mode=mode)
