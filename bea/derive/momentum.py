r"""Heavy-ball momentum: its modified equation on the slow manifold (seed 002, Eq. 20).

    v_t = m v_{t−1} − h ∇E(θ_{t−1}),     θ_t = θ_{t−1} + v_t          (0 ≤ m < 1)

is the two-step recursion θ_{n+1} − (1+m)θ_n + mθ_{n−1} = −h∇E(θ_n) (:class:`bea.derive.methods.Momentum`).
Its parasitic mode decays like m^n, so the iterates are attracted to a *slow manifold*
θ_{n−1} = φ_{−h}(θ_n) on which they are samples θ_n = θ(nh) of the flow of the modified equation

    θ̇ = −∇E/(1−m) − h (1+m)/(2(1−m)³) H∇E
          − h² ( (1+4m+m²)/(3(1−m)⁵) H²∇E + (1+10m+m²)/(12(1−m)⁵) T(∇E,∇E) ) + O(h³).

The coefficients come from the B-series recursion of :mod:`bea.derive.series` (Eq. (4)) in exact
arithmetic, as rationals for a given m or as rational functions of a sympy symbol m. m = 0 gives
back gradient descent's series. The leading term is the well-known effective learning rate h/(1−m);
the O(h) term generalises IGR (Ghosh et al. 2023, "Implicit regularization in heavy-ball momentum
accelerated SGD"; Kovachki & Stuart 2021).

Starting the iteration *on* the slow manifold (:func:`slow_manifold_velocity`) makes the iterates
follow the modified flow from the first step; a start with v_0 = 0 adds a transient ∝ m^n.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy as sp

from bea._checks import check_step, check_steps, check_theta0
from bea.derive.methods import InvalidMomentumError, Momentum
from bea._checks import check_order
from bea.derive.series import ModifiedSeries, series_state, modified_series
from bea.derive.trees import LevelSequence, RootedTree

__all__ = ["Momentum", "modified_field", "modified_series_of", "coefficients", "iterate", "slow_manifold_velocity"]


def _momentum(m) -> Momentum:
    return m if isinstance(m, Momentum) else Momentum(m)


def modified_series_of(m, order: int = 1) -> ModifiedSeries:
    """The loss-independent modified series of heavy-ball momentum with decay ``m`` (rational or a
    sympy Symbol); same as ``bea.modified_series(order, method=Momentum(m))``."""
    return modified_series(order, _momentum(m))


def modified_field(E, params: Sequence, m, order: int = 1, **kwargs):
    r"""The modified field of heavy-ball momentum on the loss E, up to h^order.

    ``m`` is the momentum in [0, 1) (a rational, a short-decimal float such as 0.9, or a sympy
    Symbol: then the terms are rational functions of it). Equivalent to
    ``bea.modified_field(E, params, order, method=Momentum(m))``; keyword arguments as there.

    >>> x = sp.Symbol("x")
    >>> modified_field(x**2 / 2, [x], sp.Rational(1, 2), order=1).field
    Matrix([[-6*h*x - 2*x]])
    """
    return modified_series(order, _momentum(m)).evaluate(E, params, **kwargs)


def coefficients(order: int, m=None) -> dict[RootedTree, object]:
    """c(t) of the modified field of momentum for every tree with ≤ order+1 nodes.

    ``m`` None means the symbol ``m`` (sympy expressions, rational functions of m); a number gives
    ``Fraction`` values.
    """
    m = sp.Symbol("m") if m is None else m
    s = modified_series(order, _momentum(m))
    return {t: s.coefficient(t) for k in range(1, order + 2) for t in s.trees(k)}


class _PreviousPointState:
    """Coefficients φ_{−1}(t): the B-series of θ_{n−1} on the slow manifold, in terms of θ_n."""

    def __init__(self, state):
        self._state = state
        self.ring = state.ring

    def value(self, seq: LevelSequence):
        return self._state.phi(seq, -1)


def _check_numeric_m(m) -> Momentum:
    mom = _momentum(m)
    if mom.is_symbolic:
        raise InvalidMomentumError(f"a numerical momentum iteration needs a numeric m, got {mom.m}")
    return mom


def slow_manifold_velocity(E, params: Sequence, theta0, h, m, order: int = 3) -> np.ndarray:
    r"""The velocity v_0 = θ_0 − θ_{−1} that puts the momentum iteration on its slow manifold.

    θ_{−1} = φ_{−h}(θ_0) is the modified flow run backwards one step, expanded as the B-series
    θ_0 + Σ_t h^{|t|}/σ(t) φ_{−1}(t) F(t)(θ_0) up to trees with ``order``+1 nodes (error
    O(h^{order+2})). To leading order v_0 = −h∇E/(1−m).
    """
    mom = _check_numeric_m(m)
    hf = check_step(h)
    order = check_order(order, minimum=0)
    modified_series(order, mom)  # extends the state to trees with order+1 nodes
    state = series_state(mom)
    prev = ModifiedSeries(order, mom, _PreviousPointState(state), kind="previous point on the slow manifold")
    pf = prev.evaluate(E, params)
    th = check_theta0(theta0, len(pf.params))
    fn = sp.lambdify((pf.params, pf.h), list(pf.field), "numpy")
    return -hf * np.asarray(fn(list(th), hf), dtype=np.float64)


def iterate(E, params: Sequence, theta0, h, m, steps: int, *, v0=None) -> np.ndarray:
    """Heavy-ball iterates θ_0..θ_steps (array (steps+1, n)) of Eq. 20, from velocity ``v0``.

    ``v0`` defaults to 0 (the usual initialisation; it starts off the slow manifold); use
    :func:`slow_manifold_velocity` to start on it.
    """
    from bea.derive.symbolic import validate_loss

    mom = _check_numeric_m(m)
    hf = check_step(h)
    steps = check_steps(steps)
    E, params = validate_loss(E, params)
    grad = sp.lambdify((params,), [sp.diff(E, p) for p in params], "numpy")
    th = check_theta0(theta0, len(params))
    v = np.zeros_like(th) if v0 is None else check_theta0(v0, len(params), name="v0")
    mf = float(mom.m)
    out = np.empty((int(steps) + 1, len(params)))
    out[0] = th
    for k in range(int(steps)):
        v = mf * v - hf * np.asarray(grad(list(th)), dtype=np.float64)
        th = th + v
        out[k + 1] = th
    return out
