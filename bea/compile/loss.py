r"""A sympy loss with its derivatives compiled to numba kernels, built once and shared.

Flows, certificates and optimisers of the numpy path all need the same numerical objects for a
loss E(θ): the value, g = ∇E, H = ∇²E and sometimes T(g, g) = ∇³E(g, g). :func:`compile_loss`
validates the loss once, differentiates it once and compiles each kernel lazily on first use (the
kernels themselves are cached by content in :mod:`bea.compile.codegen`).
"""

from __future__ import annotations

from functools import cached_property

import numba
import numpy as np
import sympy as sp

from bea.compile.codegen import compile_exprs
from bea.derive.differentials import field_from_series, validate_loss
from bea.errors import InvalidParamsError

__all__ = ["CompiledLoss", "compile_loss", "cached_loss"]


class CompiledLoss:
    """Numerical kernels of a loss: ``value(θ)``, ``grad(θ)``, ``hess(θ)``, ``tgg(θ)``.

    Every kernel is a numba dispatcher taking a float64 (or complex128) vector θ of length ``n``;
    they can be called from Python or from other ``@njit`` code.
    """

    def __init__(self, E, params):
        self.expr, self.params = validate_loss(E, params)
        self.n = len(self.params)

    @property
    def key(self):
        """A hashable identity of the loss for caches: ``(expr, params)`` (a :class:`bea.compile.data.DataLoss`
        gives a cheap one that does not unroll the data)."""
        return (self.expr, self.params)

    @cached_property
    def is_quadratic(self) -> bool:
        """Whether E is (at most) quadratic in θ: its Hessian is constant."""
        return all(not e.free_symbols for e in self.hess_expr)

    @cached_property
    def grad_exprs(self) -> list:
        return [sp.diff(self.expr, p) for p in self.params]

    @cached_property
    def hess_expr(self) -> sp.Matrix:
        return sp.Matrix(self.n, self.n, lambda i, j: sp.diff(self.grad_exprs[i], self.params[j]))

    @cached_property
    def value_kernel(self):
        return compile_exprs([self.expr], self.params, name="loss_value")

    @cached_property
    def grad(self):
        """g(θ) = ∇E(θ), shape (n,)."""
        return compile_exprs(self.grad_exprs, self.params, name="loss_grad")

    @cached_property
    def hess(self):
        """H(θ) = ∇²E(θ), shape (n, n), also for n = 1."""
        kern = compile_exprs(self.hess_expr, self.params, name="loss_hess")
        if self.n == 1:  # a 1x1 Matrix compiles as a column, shape (1,); keep the (n, n) contract
            base = kern

            @numba.njit
            def hess(theta):
                return base(theta).reshape((1, 1))

            return hess
        return kern

    @cached_property
    def tgg(self):
        """T(g, g)_i = Σ_jk ∂³E/∂θ_i∂θ_j∂θ_k g_j g_k, shape (n,)."""
        g = self.grad_exprs
        exprs = [
            sp.Add(*[sp.diff(self.hess_expr[i, j], self.params[k]) * g[j] * g[k] for j in range(self.n) for k in range(self.n)])
            for i in range(self.n)
        ]
        return compile_exprs(exprs, self.params, name="loss_tgg")

    def value(self, theta) -> float:
        return float(self.value_kernel(np.asarray(theta, dtype=float))[0])

    def field_from_series(self, series, params=None, *, simplify="auto", h=None):
        """The modified field of the B-series ``series`` on this loss, from its sympy expression
        (:func:`bea.derive.differentials.field_from_series` asks a compiled loss for its own field)."""
        self._check_params(params)
        return field_from_series(series, self.expr, self.params, simplify=simplify, h=h)

    def _check_params(self, params) -> None:
        if params is not None and tuple(params) != self.params:
            raise InvalidParamsError(f"params {list(params)} differ from the loss's parameters {list(self.params)}")

    def __repr__(self) -> str:
        return f"CompiledLoss({self.expr}, params={self.params})"


_CACHE: dict = {}


def compile_loss(E, params) -> CompiledLoss:
    """The (cached) :class:`CompiledLoss` of E over ``params``."""
    if isinstance(E, CompiledLoss):
        return E
    try:  # the common case, the same sympy objects again: skip validation (≈0.2 s for 50 params)
        raw = (E, tuple(params))
        hit = _CACHE.get(raw)
    except TypeError:  # unhashable input; validation will say what is wrong
        raw, hit = None, None
    if hit is not None:
        return hit
    loss = CompiledLoss(E, params)
    loss = _CACHE.setdefault((loss.expr, loss.params), loss)
    if raw is not None:
        _CACHE[raw] = loss
    return loss


_LOSSES: dict = {}


def cached_loss(E, params) -> CompiledLoss:
    """:func:`compile_loss`, memoised on (E, params); a :class:`CompiledLoss` is returned as is.

    Validating a large sympy loss costs far more (≈ 0.2 s for a 50-parameter quadratic) than a short
    trajectory, so every entry point that takes ``(E, params)`` goes through here."""
    if isinstance(E, CompiledLoss):
        return E
    try:
        key = (E, tuple(params))
        hash(key)
    except TypeError:  # not hashable: let compile_loss raise its error (or handle it)
        return compile_loss(E, params)
    loss = _LOSSES.get(key)
    if loss is None:
        loss = _LOSSES[key] = compile_loss(E, params)
    return loss
