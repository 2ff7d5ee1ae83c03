r"""Concrete modified fields: the B-series of :mod:`bea.derive.series` evaluated on a sympy loss.

:func:`modified_field` builds the series of a method (:func:`bea.derive.series.modified_series`) and evaluates
it with :mod:`bea.derive.differentials`, whose names (:class:`ModifiedField`, :func:`field_from_series`,
:func:`validate_loss`, ...) are re-exported here.

The modified field of a one-step method is f̃ = Σ_{k=0}^{order} h^k f_k with f_k = Σ_{|t|=k+1} c(t) F(t),
exact rational c(t) from the series and the elementary differentials F(t) of f = −∇E (see
:mod:`bea.derive.differentials` for how they are computed).
"""

from __future__ import annotations

from typing import Sequence

from bea.derive.differentials import (
    ModifiedField,
    check_simplify,
    field_from_series,
    non_smooth_functions,
    scalar_expression,
    step_symbol,
    symbol_sequence,
    validate_loss,
)
from bea.errors import InvalidOrderError
from bea.derive.series import modified_series

__all__ = [
    "ModifiedField",
    "modified_field",
    "field_from_series",
    "validate_loss",
    "step_symbol",
    "non_smooth_functions",
    "scalar_expression",
    "symbol_sequence",
    "check_simplify",
]


def modified_field(E, params: Sequence | None = None, order: int | None = None, method="gd", *, simplify="auto",
                   h=None) -> ModifiedField:
    r"""The modified vector field of ``method`` (gradient descent by default) on the loss E.

    GD θ_{k+1} = θ_k − h∇E(θ_k) is matched to O(h^{order+2}) per step by the exact flow of

        θ̇ = f̃(θ) = −∇E − h/2 Hg − h²(⅓H²g + 1/12 T(g,g)) − ...

    Parameters
    ----------
    E : scalar sympy expression (or string) — the loss; or a :class:`bea.compile.data.DataLoss`
        (:func:`bea.data_loss`, a mean over data): then the result is a
        :class:`bea.compile.data.DataModifiedField` whose ``compile()`` loops over the data and whose sympy
        ``terms`` are built lazily from the unrolled mean (small data sets only)
    params : sequence of sympy Symbols — the parameters θ, in this order (may be omitted for a
        DataLoss or CompiledLoss, which carry their own)
    order : int ≥ 0 — the highest power of h kept
    method : ``"gd"`` (explicit Euler), another name from :data:`bea.derive.methods.METHODS`, or a tableau
    simplify : ``"auto"`` (expand polynomial losses, leave others as built), ``"expand"``,
        ``"simplify"`` (slow), or ``"none"``/False. ``terms[0]`` is always ``−diff(E, p)`` as sympy
        builds it.
    h : the step-size symbol (default ``Symbol("h", positive=True)``)

    Returns
    -------
    ModifiedField
        ``terms[k]`` is f_k (``terms[0] == −∇E``), ``field`` is Σ_k h^k f_k.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> modified_field(x**2 / 2, [x], order=2).field
    Matrix([[-h**2*x/3 - h*x/2 - x]])
    """
    if order is None and isinstance(params, int) and not isinstance(params, bool):  # modified_field(loss, 2)
        params, order = None, params
    if order is None:
        raise InvalidOrderError("order is missing: modified_field(E, params, order=k)")
    return modified_series(order, method).evaluate(E, params, simplify=simplify, h=h)
