r"""Modified equations of optimisers with a state: Nesterov momentum, RMSProp and Adam.

Each optimiser is an iteration θ' = θ + A(θ, s, h), s' = S(θ, s, h) whose state s (a velocity, moving
averages of g and g²) forgets its past geometrically; on the attracting slow manifold s = σ_h(θ) the
iterates are samples θ_n = θ(nh) of the flow of a modified equation, derived to any order by
:func:`bea.derive.maps.modified_map_with_state` in exact arithmetic (β's, ε as numbers or sympy symbols).
Notation: g = ∇E, H = ∇²E, everything in the time t = nh of the learning rate h.

**Nesterov** (Nesterov 1983; in the form of Sutskever et al. 2013 and Kovachki & Stuart 2021),
v' = m v − h∇E(θ + m v), θ' = θ + v':

    θ̇ = −g/(1−m) − h (1 − m + 2m²)/(2(1−m)³) H g + O(h²)
      = −∇( E/(1−m) + h (1 − m + 2m²)/(4(1−m)³) ‖g‖² ) + O(h²).

Heavy-ball momentum has (1 + m) in place of (1 − m + 2m²) (:mod:`bea.derive.momentum`): the look-ahead
gradient ∇E(θ + m v) ≈ g + m h H θ̇ = g − h m/(1−m) H g adds + h m/(1−m)² H g to θ̇, so Nesterov's
implicit gradient-norm penalty is weaker by 2m(1−m); both belong to the "a-family" of Kovachki & Stuart,
"Continuous time analysis of momentum methods", JMLR 22 (2021) (a = 0 heavy ball, a = 1 Nesterov,
coefficient (1 + m − 2a m(1 − m))/(4(1 − m)³) of h‖g‖²). Shi, Du, Jordan & Su (2018, "Understanding
the acceleration phenomenon via high-resolution differential equations") keep the same gradient
correction as a Hessian-damping term √s ∇²f Ẋ in a second-order ODE, in a scaling where m → 1.

**Adam** (Kingma & Ba 2015) in the form of Cattaneo, Klusowski & Shigida, "On the implicit bias of
Adam", ICML 2024, Definition 1.1 (ε inside the square root, which keeps the map smooth):

    m' = β₁ m + (1−β₁) g(θ),   v' = β₂ v + (1−β₂) g(θ)²,   θ' = θ − h (m'/b₁) / sqrt(v'/b₂ + ε),

b_i = 1 − β_i^{n+1} with bias correction, 1 without. **RMSProp** is β₁ = 0. On the slow manifold
m = g + O(h), v = g² + O(h) and, with R_j = sqrt(g_j² + ε) and the perturbed one-norm
‖g‖_{1,ε} = Σ_j R_j (∇‖g‖_{1,ε} = H (g/R)), the first two terms are

    θ̇_j = −(1/R_j) [ g_j + h ( β₁/(1−β₁) − β₂/(1−β₂) + (β₂/(1−β₂) + ½) ε/R_j² ) ∂_j‖g‖_{1,ε} ] + O(h²).

For √ε ≪ |g_j| the O(h) term is −h(β₂/(1−β₂) − β₁/(1−β₁)) ∂_j‖g‖₁/|g_j|: with β₂ > β₁ (the usual
0.999 > 0.9) the flow *increases* the gradient one-norm, Cattaneo et al.'s anti-regularisation; for
large ε it is GD with rate h/√ε and the momentum penalty (1+β₁)/(2(1−β₁)). With ε outside the root
(PyTorch's m̂/(√v̂ + ε)) or ε = 0 the map contains |g| on the slow manifold and is not smooth where a
gradient component vanishes: :class:`bea.NonSmoothMapError`.

**Bias correction.** The factors 1/(1 − β^{n+1}) make the iteration time-dependent. At a fixed time
t = nh > 0 they equal 1 + O(β^{t/h}), smaller than every power of h: the modified equation — a power
series in h at fixed t — is the *same* with and without bias correction. The correction acts in an
initial layer of O(1/(1 − β)) steps, where it puts moving averages started at zero close to the slow
manifold (which is its purpose). ``bias_correction=True`` therefore returns the large-n field (the
same terms) and records the choice in ``kind``; the tests check it against bias-corrected iterates
started from zero moments, after the initial layer.
"""

from __future__ import annotations

from typing import Sequence

import sympy as sp

from bea.errors import InvalidInputError, InvalidMomentumError, NonSmoothMapError, UnknownMethodError
from bea.derive.maps import MapField, modified_map_with_state
from bea.derive.methods import Momentum, is_symbolic, to_fraction
from bea.derive.symbolic import modified_field, step_symbol, validate_loss

__all__ = ["nesterov_field", "rmsprop_field", "adam_field", "optimizer_field", "OPTIMIZERS"]

#: names accepted by :func:`optimizer_field`
OPTIMIZERS = ("gd", "momentum", "nesterov", "rmsprop", "adam")


def _decay(value, name: str):
    """A decay parameter in [0, 1): exact rational (short-decimal floats accepted) or a sympy expression."""
    if is_symbolic(value):
        return sp.sympify(value)
    frac = to_fraction(value, name, InvalidMomentumError)
    if not 0 <= frac < 1:
        raise InvalidMomentumError(
            f"{name} must be in [0, 1), got {frac} (a moving average with weight ≥ 1 on the past never forgets it: "
            "there is no slow manifold)"
        )
    return sp.Rational(frac.numerator, frac.denominator)


def _epsilon(value):
    if is_symbolic(value):
        return sp.sympify(value)
    frac = to_fraction(value, "eps", InvalidInputError)
    if frac < 0:
        raise InvalidInputError(f"eps must be > 0, got {frac}")
    if frac == 0:
        raise NonSmoothMapError(
            "eps = 0 makes the update g/sqrt(g²) = sign(g) on the slow manifold (signSGD): not smooth where a gradient "
            "component vanishes; use eps > 0 (inside the square root)"
        )
    return sp.Rational(frac.numerator, frac.denominator)


def _setup(E, params, h):
    E, params = validate_loss(E, params)
    h = step_symbol() if h is None else h
    return E, params, h, [sp.diff(E, p) for p in params]


def nesterov_field(E, params: Sequence, m, order: int = 1, *, h=None) -> MapField:
    r"""The modified field of Nesterov momentum v' = m v − h∇E(θ + m v), θ' = θ + v' on its slow manifold.

    ``m`` in [0, 1) (a rational, a short-decimal float, or a sympy Symbol). Leading terms (module
    docstring; Kovachki & Stuart 2021, a = 1): −∇E/(1−m) − h (1 − m + 2m²)/(2(1−m)³) H∇E. The
    velocity on the manifold is ``mf.state_series`` (v = −h∇E/(1−m) + O(h²)).
    """
    m = _decay(m, "the momentum m")
    E, params, h, g = _setup(E, params, h)
    vs = sp.symbols(f"_v0:{len(params)}", real=True)
    look = dict(zip(params, [p + m * v for p, v in zip(params, vs)]))
    new_v = [m * v - h * gi.xreplace(look) for v, gi in zip(vs, g)]
    theta = [p + nv for p, nv in zip(params, new_v)]
    return modified_map_with_state(theta, new_v, params, vs, order, h, loss=E, kind=f"nesterov (m={m})")


def _adaptive(E, params, beta1, beta2, eps, order, h, bias_correction, name):
    b2 = _decay(beta2, "beta2")
    b1 = None if beta1 is None else _decay(beta1, "beta1")
    eps = _epsilon(eps)
    E, params, h, g = _setup(E, params, h)
    n = len(params)
    vs = sp.symbols(f"_nu0:{n}", real=True)
    new_v = [b2 * v + (1 - b2) * gi**2 for v, gi in zip(vs, g)]
    if b1 is None:
        ms, new_m, num = (), [], list(g)
    else:
        ms = sp.symbols(f"_m0:{n}", real=True)
        new_m = [b1 * mm + (1 - b1) * gi for mm, gi in zip(ms, g)]
        num = new_m
    theta = [p - h * a / sp.sqrt(v + eps) for p, a, v in zip(params, num, new_v)]
    label = f"{name} (beta1={b1}, beta2={b2}, eps={eps}" if b1 is not None else f"{name} (beta2={b2}, eps={eps}"
    label += ", bias correction: large-n limit)" if bias_correction else ")"
    return modified_map_with_state(theta, new_m + new_v, params, list(ms) + list(vs), order, h, loss=E, kind=label)


def adam_field(
    E, params: Sequence, beta1=0.9, beta2=0.999, eps=1e-8, order: int = 1, *, bias_correction: bool = False, h=None
) -> MapField:
    r"""The modified field of Adam (ε inside the square root) on its slow manifold.

    m' = β₁m + (1−β₁)g, v' = β₂v + (1−β₂)g², θ' = θ − h m'/sqrt(v' + ε) (Cattaneo, Klusowski & Shigida
    2024, Definition 1.1, without the bias-correction factors). Leading terms, R_j = sqrt(g_j² + ε):

        θ̇_j = −g_j/R_j − h/R_j ( β₁/(1−β₁) − β₂/(1−β₂) + (β₂/(1−β₂) + ½) ε/R_j² ) ∂_j Σ_k R_k + O(h²).

    ``beta1``, ``beta2`` in [0, 1), ``eps`` > 0: exact rationals, short-decimal floats (0.9, 1e-8) or
    sympy Symbols (then the terms are functions of them). ``bias_correction=True`` gives the same
    field: the bias-correction factors 1/(1 − β^{n+1}) change the iteration only by O(β^{t/h}) at time
    t = nh, beyond all orders in h (module docstring). The moving averages on the manifold are
    ``mf.state_series`` (m first, then v).
    """
    return _adaptive(E, params, beta1, beta2, eps, order, h, bias_correction, "adam")


def rmsprop_field(E, params: Sequence, beta2=0.99, eps=1e-8, order: int = 1, *, bias_correction: bool = False, h=None) -> MapField:
    r"""The modified field of RMSProp v' = β₂v + (1−β₂)g², θ' = θ − h g/sqrt(v' + ε) (Adam with β₁ = 0).

    Leading terms: θ̇_j = −g_j/R_j − h/R_j ( −β₂/(1−β₂) + (β₂/(1−β₂) + ½) ε/R_j² ) ∂_j Σ_k R_k + O(h²),
    R_j = sqrt(g_j² + ε): for small ε the O(h) term raises the gradient one-norm (Cattaneo et al. 2024).
    Arguments as in :func:`adam_field`.
    """
    return _adaptive(E, params, None, beta2, eps, order, h, bias_correction, "rmsprop")


def optimizer_field(optimizer: str, E, params: Sequence, order: int = 1, **hyper):
    """The modified field of an optimiser by name: ``"gd"``, ``"momentum"`` (heavy ball), ``"nesterov"``,
    ``"rmsprop"``, ``"adam"``.

    Keyword arguments: ``m`` (momentum, nesterov), ``beta1``, ``beta2``, ``eps``, ``bias_correction``
    (rmsprop, adam), ``h``; ``simplify`` for gd and momentum. gd and momentum return the B-series
    :class:`~bea.derive.symbolic.ModifiedField` of :func:`bea.modified_field` (with gradient notation), the
    others a :class:`~bea.derive.maps.MapField`.
    """
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise UnknownMethodError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    name = optimizer.lower()
    allowed = {
        "gd": {"h", "simplify"},
        "momentum": {"m", "h", "simplify"},
        "nesterov": {"m", "h"},
        "rmsprop": {"beta2", "eps", "bias_correction", "h"},
        "adam": {"beta1", "beta2", "eps", "bias_correction", "h"},
    }[name]
    extra = set(hyper) - allowed
    if extra:
        raise InvalidInputError(f"{name} takes the options {sorted(allowed)}, got {sorted(extra)}")
    if name == "gd":
        return modified_field(E, params, order, **hyper)
    if name in ("momentum", "nesterov") and "m" not in hyper:
        raise InvalidInputError(f"{name} needs its momentum m, e.g. m=0.9")
    if name == "momentum":
        m = hyper.pop("m")
        return modified_field(E, params, order, method=Momentum(m), **hyper)
    if name == "nesterov":
        return nesterov_field(E, params, hyper.pop("m"), order, **hyper)
    if name == "rmsprop":
        return rmsprop_field(E, params, order=order, **hyper)
    return adam_field(E, params, order=order, **hyper)
