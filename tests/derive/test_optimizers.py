"""Optimisers with a state on their slow manifold (bea.derive.optimizers, bea.derive.maps.modified_map_with_state).

Independent routes: the B-series of heavy-ball momentum as a linear multistep method (bea.derive.series,
Eq. 4) against the slow-manifold expansion of the same iteration; hand-derived closed forms of the
first two terms (Nesterov: Kovachki & Stuart 2021; Adam/RMSProp: the Cattaneo, Klusowski & Shigida
2024 form, derived in the docstrings below); and the iterations themselves in mpmath from zero
moments (Definition 1.1 of Cattaneo et al., with and without bias correction), against the exact
flow of the order-4 field after the initial layer (local error slope 6).
"""

from fractions import Fraction

import mpmath as mp
import pytest
import sympy as sp
from hypothesis import given, settings

import bea
from bea import InvalidMapError, NonSmoothMapError, adam_field, modified_map_with_state, nesterov_field, rmsprop_field
from bea.derive.methods import InvalidMomentumError, Momentum
from bea.derive.symbolic import step_symbol
from bea.testing import polynomial_losses

from _map_checks import assert_slope, mp_function, step_scale, warm_start

x, y = sp.symbols("x y")
h = step_symbol()
LOSS = x**2 * y / 2 + x**3 / 3 + y**4 / 12 + x * y
THETA0 = [0.3, -0.7]


def grad(E, params):
    return sp.Matrix([sp.diff(E, p) for p in params])


def heavy_ball(E, params, m):
    vs = sp.symbols("v0:%d" % len(params))
    new_v = [m * v - h * gi for v, gi in zip(vs, grad(E, params))]
    return [p + nv for p, nv in zip(params, new_v)], new_v, vs


@pytest.mark.parametrize("m, order", [(Fraction(1, 2), 4), (Fraction(9, 10), 3), (sp.Symbol("m"), 2)])
def test_heavy_ball_slow_manifold_equals_multistep_series(m, order):
    """Heavy ball v' = m v − h∇E, θ' = θ + v': the slow-manifold expansion (Eq. 3 of bea.derive.maps) and the
    B-series of the two-step method θ_{n+1} − (1+m)θ_n + mθ_{n−1} = −h∇E(θ_n) (bea.derive.series, Eq. 4)
    are independent derivations of the same field; equal exactly (m a number, or a symbol)."""
    ms = m if isinstance(m, sp.Symbol) else sp.Rational(m.numerator, m.denominator)
    theta, new_v, vs = heavy_ball(LOSS, [x, y], ms)
    mf = modified_map_with_state(theta, new_v, [x, y], vs, order)
    ref = bea.modified_field(LOSS, [x, y], order, method=Momentum(m))
    for a, b in zip(mf.terms, ref.terms):
        assert all(sp.cancel(u - v) == 0 for u, v in zip(a, b))
    # the velocity on the manifold starts as −h∇E/(1−m)
    v1 = mf.state_series[1]
    assert all(sp.cancel(a + b / (1 - ms)) == 0 for a, b in zip(v1, grad(LOSS, [x, y])))


def test_nesterov_leading_terms():
    """Nesterov v' = m v − h∇E(θ + m v): θ̇ = −g/(1−m) − h(1 − m + 2m²)/(2(1−m)³) Hg + O(h²) (by hand:
    v = hθ̇ − h²/2 θ̈, ∇E(θ + m v) = g + m h H θ̇; Kovachki & Stuart 2021's a-family at a = 1)."""
    m = sp.Symbol("m")
    mf = nesterov_field(LOSS, [x, y], m, order=1)
    g, H = grad(LOSS, [x, y]), sp.hessian(LOSS, [x, y])
    assert all(sp.cancel(a + b / (1 - m)) == 0 for a, b in zip(mf.terms[0], g))
    c = (1 - m + 2 * m**2) / (2 * (1 - m) ** 3)
    assert all(sp.cancel(a + c * b) == 0 for a, b in zip(mf.terms[1], H * g))
    # m = 0 is gradient descent
    gd = bea.modified_field(LOSS, [x, y], 3)
    mf0 = nesterov_field(LOSS, [x, y], 0, order=3)
    assert all(sp.expand(u - v) == 0 for a, b in zip(mf0.terms, gd.terms) for u, v in zip(a, b))


def nesterov_run(E, params, m, K, start):
    """θ_K and θ_{K+1} of Nesterov from v_0 = 0 and θ = start(h), in mpmath from the definition."""
    gfun = mp_function(grad(E, params), params)

    def reference(H):
        M = mp.mpf(m.p) / m.q  # at the working precision (see adam_run)
        th, v = start(H), [mp.mpf(0)] * len(params)
        for _ in range(K):
            v = [M * a - H * b for a, b in zip(v, gfun([t + M * a for t, a in zip(th, v)]))]
            th = [t + a for t, a in zip(th, v)]
        begin = th
        v = [M * a - H * b for a, b in zip(v, gfun([t + M * a for t, a in zip(th, v)]))]
        return begin, [t + a for t, a in zip(th, v)]

    return reference


@settings(max_examples=2)
@given(polynomial_losses(n_params=2, max_degree=3, min_degree=3, max_terms=4))
def test_nesterov_local_error_slope(case):
    """Nesterov (m = 1/3) iterated from v_0 = 0 for 50 steps (the transient is 3^-50 ≈ 1e-24), then one
    more step against the exact flow (mpmath) of the order-4 field: local error O(h^6)."""
    E, params = case
    m = sp.Rational(1, 3)
    mf = nesterov_field(E, params, m, order=4)
    scale = step_scale(E, params, THETA0) / (1 - m) ** 2
    run = nesterov_run(E, params, m, 50, lambda H: warm_start(mf, THETA0, H, 50))
    assert_slope(mf, run, [2.0**-k / scale for k in range(6, 10)])


def adam_closed_form(E, params, b1, b2, eps):
    """f_0, f_1 of Adam by hand. On the manifold m = g + h b₁/(1−b₁)·Hu, v = g² + 2h b₂/(1−b₂)·g⊙Hu,
    u = g/R, R = sqrt(g² + ε); the step is θ − hu − h²(b Hu/R − c g²⊙Hu/R³), b = b₁/(1−b₁),
    c = b₂/(1−b₂); with Du = ε H/R³ (rows) the modified field is f_1 = d_2 − ½(Du)u:

        f_1,j = −(Hu)_j/R_j (b − c + (c + ½) ε/R_j²),  Hu = ∇‖g‖_{1,ε}."""
    g, H = grad(E, params), sp.hessian(E, params)
    R = [sp.sqrt(sp.expand(gi**2 + eps)) for gi in g]
    u = sp.Matrix([gi / r for gi, r in zip(g, R)])
    Hu = H * u
    b1, b2 = sp.sympify(b1), sp.sympify(b2)
    b, c = b1 / (1 - b1), b2 / (1 - b2)
    f1 = sp.Matrix([-Hu[j] / R[j] * (b - c + (c + sp.Rational(1, 2)) * eps / R[j] ** 2) for j in range(len(params))])
    return -u, f1


def equal_mod_roots(u, v) -> bool:
    """u == v exactly, for expressions in θ and half-integer powers of polynomials b_j: with
    r_j = sqrt(b_j) the numerator of u − v is a polynomial in the r_j that must vanish modulo r_j² − b_j."""
    d = sp.sympify(u - v)
    halves = [q for q in d.atoms(sp.Pow) if q.exp.is_Rational and q.exp.q == 2]
    bases = sorted({q.base for q in halves}, key=sp.default_sort_key)
    rs = sp.symbols(f"r0:{len(bases)}")
    num = sp.expand(sp.numer(sp.together(d.xreplace({q: rs[bases.index(q.base)] ** int(2 * q.exp) for q in halves}))))
    for r, base in zip(rs, bases):
        num = sp.rem(num, r**2 - base, r)
    return sp.expand(num) == 0


def _equal(a, b) -> bool:
    return all(equal_mod_roots(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize(
    "b1, b2, eps",
    [
        (sp.Rational(9, 10), sp.Rational(999, 1000), sp.Rational(1, 10**8)),
        (sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 7)),
        (sp.Symbol("beta1"), sp.Symbol("beta2"), sp.Symbol("epsilon", positive=True)),
    ],
)
def test_adam_leading_terms(b1, b2, eps):
    """Adam's f_0 = −g/R and f_1 = −(1/R)(β₁/(1−β₁) − β₂/(1−β₂) + (β₂/(1−β₂) + ½)ε/R²)∇‖g‖_{1,ε}
    (Cattaneo, Klusowski & Shigida 2024's perturbed one-norm, closed form derived by hand)."""
    mf = adam_field(LOSS, [x, y], b1, b2, eps, order=1)
    f0, f1 = adam_closed_form(LOSS, [x, y], b1, b2, eps)
    # symbolic β's: the terms are rational functions of them, compared exactly at two rational points
    # (ε stays a symbol); comparing the rational functions themselves takes minutes in sympy
    points = [{}] if isinstance(b1, sp.Rational) else [{b1: sp.Rational(2, 7), b2: sp.Rational(5, 11)}, {b1: sp.Rational(3, 13), b2: sp.Rational(16, 17)}]
    for at in points:
        assert _equal(mf.terms[0].subs(at), f0.subs(at)) and _equal(mf.terms[1].subs(at), f1.subs(at))


def test_rmsprop_leading_terms_and_anti_regularisation():
    """RMSProp is Adam with β₁ = 0; for √ε ≪ |g| its O(h) term is +h β₂/(1−β₂) ∂_j‖g‖₁/|g_j|: it raises
    the gradient one-norm (Cattaneo et al.'s anti-regularisation), unlike GD's −h/2 H g."""
    b2, eps = sp.Rational(99, 100), sp.Rational(1, 10**6)
    mf = rmsprop_field(LOSS, [x, y], b2, eps, order=1)
    f0, f1 = adam_closed_form(LOSS, [x, y], 0, b2, eps)
    assert _equal(mf.terms[0], f0) and _equal(mf.terms[1], f1)
    at = {x: sp.Rational(3, 10), y: sp.Rational(-7, 10)}
    g, H = grad(LOSS, [x, y]).subs(at), sp.hessian(LOSS, [x, y]).subs(at)
    grad_l1 = H * g.applyfunc(sp.sign)  # ∇‖g‖₁ where no component of g vanishes
    first = mf.terms[1].subs(at)
    assert sum(float(a * b) for a, b in zip(first, grad_l1)) > 0


def adam_run(E, params, b1, b2, eps, K, start, bias):
    """θ_K, θ_{K+1} of Adam (Cattaneo et al. Definition 1.1) from zero moments and θ = start(h), in mpmath."""
    gfun = mp_function(grad(E, params), params)

    def reference(H):
        # the constants at the working precision of the comparison (made outside it, 1/3 carries a
        # 1e-17 error that shows as an O(h·1e-17) floor under the local errors)
        B1, B2, EP = (mp.mpf(c.p) / c.q for c in (b1, b2, eps))
        th = start(H)
        m = [mp.mpf(0)] * len(params)
        v = [mp.mpf(0)] * len(params)
        begin = None
        for n in range(K + 1):
            if n == K:
                begin = list(th)
            g = gfun(th)
            m = [B1 * a + (1 - B1) * b for a, b in zip(m, g)]
            v = [B2 * a + (1 - B2) * b**2 for a, b in zip(v, g)]
            c1 = 1 - B1 ** (n + 1) if bias else 1
            c2 = 1 - B2 ** (n + 1) if bias else 1
            th = [t - H * (a / c1) / mp.sqrt(b / c2 + EP) for t, a, b in zip(th, m, v)]
        return begin, th

    return reference


@settings(max_examples=2)
@given(polynomial_losses(n_params=1, max_degree=4, min_degree=3, max_terms=4))
def test_adam_local_error_slope_with_and_without_bias_correction(case):
    """Adam (β₁ = 1/10, β₂ = 1/5, ε = 1/3) from zero moments, 40 steps (transient 5^-40 ≈ 1e-28), then
    one more step against the exact flow (mpmath) of the order-5 field: local error O(h^7), the same
    field with bias correction (its factors 1 + O(β^n) are beyond all orders at fixed t = nh). Order 5,
    not 4: on E = −3x⁴ − x³/2 − 3x²/4 + x/2 the h⁶ coefficient of the order-4 error nearly cancels and
    the ratios at these steps are 38, 54, 60 on their way to 64 (the order-5 ratios are 127–128)."""
    E, params = case
    b1, b2, eps = sp.Rational(1, 10), sp.Rational(1, 5), sp.Rational(1, 3)
    mf = adam_field(E, params, b1, b2, eps, order=5)
    hs = [2.0**-k / step_scale(E, params, [0.3]) for k in range(6, 10)]
    for bias in (False, True):
        assert_slope(mf, adam_run(E, params, b1, b2, eps, 40, lambda H: warm_start(mf, [0.3], H, 40), bias), hs)


def test_adam_two_parameters_local_error_slope():
    """The coupled two-parameter case at order 2 (RMSProp, β₂ = 1/4, ε = 1/2): local error O(h^4)."""
    E = x**3 / 3 + x * y + y**2 - x**2 * y / 2
    b2, eps = sp.Rational(1, 4), sp.Rational(1, 2)
    mf = rmsprop_field(E, [x, y], b2, eps, order=2)
    hs = [2.0**-k / step_scale(E, [x, y], THETA0) for k in range(6, 10)]
    assert_slope(mf, adam_run(E, [x, y], sp.S.Zero, b2, eps, 40, lambda H: warm_start(mf, THETA0, H, 40), False), hs)


def test_bias_correction_gives_the_large_n_field():
    """bias_correction=True returns the same terms (the large-n limit) and says so in ``kind``."""
    a = adam_field(LOSS, [x, y], sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 7), order=2)
    b = adam_field(LOSS, [x, y], sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 7), order=2, bias_correction=True)
    assert a.terms == b.terms and "large-n" in b.kind and "large-n" not in a.kind


def test_optimizer_field_dispatch():
    """optimizer_field by name equals the direct calls (gd and momentum are B-series fields)."""
    gd = bea.optimizer_field("gd", LOSS, [x, y], 2)
    assert gd.terms == bea.modified_field(LOSS, [x, y], 2).terms and gd.gradient_notation(1) == "-1/2 H g"
    mom = bea.optimizer_field("momentum", LOSS, [x, y], 2, m=0.5)
    assert mom.terms == bea.modified_field(LOSS, [x, y], 2, method=Momentum("1/2")).terms
    nes = bea.optimizer_field("Nesterov", LOSS, [x, y], 2, m=0.5)
    assert nes.terms == nesterov_field(LOSS, [x, y], sp.Rational(1, 2), 2).terms
    ad = bea.optimizer_field("adam", LOSS, [x, y], 1, beta1=0.5, beta2=0.75, eps=0.25)
    assert ad.terms == adam_field(LOSS, [x, y], 0.5, 0.75, 0.25, 1).terms
    with pytest.raises(bea.UnknownMethodError, match="known: gd, momentum, nesterov, rmsprop, adam"):
        bea.optimizer_field("lion", LOSS, [x, y], 1)
    with pytest.raises(bea.InvalidInputError, match="needs its momentum m"):
        bea.optimizer_field("nesterov", LOSS, [x, y], 1)
    with pytest.raises(bea.InvalidInputError, match="takes the options"):
        bea.optimizer_field("rmsprop", LOSS, [x, y], 1, beta1=0.9)


# -- bad input ----------------------------------------------------------------------------------------


def test_bad_hyperparameters():
    """Decays outside [0, 1) have no slow manifold; ε = 0 makes Adam signSGD (not smooth); ε < 0 is no ε."""
    with pytest.raises(InvalidMomentumError, match=r"beta2 must be in \[0, 1\)"):
        adam_field(LOSS, [x, y], 0.9, 1.0)
    with pytest.raises(InvalidMomentumError, match="momentum m"):
        nesterov_field(LOSS, [x, y], 1.5)
    with pytest.raises(NonSmoothMapError, match="sign"):
        adam_field(LOSS, [x, y], 0.9, 0.999, 0)
    with pytest.raises(bea.InvalidInputError, match="eps must be > 0"):
        rmsprop_field(LOSS, [x, y], 0.9, -1e-8)


def test_eps_outside_the_root_is_not_smooth():
    """PyTorch's m/(sqrt(v) + ε): on the manifold v = g², sqrt(g²) = |g|: NonSmoothMapError."""
    nu = sp.Symbol("nu")
    g = sp.diff(x**3 / 3 - x, x)
    with pytest.raises(NonSmoothMapError, match="root of"):
        modified_map_with_state([x - h * g / (sp.sqrt(nu / 2 + g**2 / 2) + sp.Rational(1, 10))], [nu / 2 + g**2 / 2], [x], [nu], 2)


def test_bad_state_maps():
    """Wrong lengths, a state that never forgets (eigenvalue 1 or beyond), a non-affine state update
    and a θ update that moves at h = 0 are refused with InvalidMapError."""
    v = sp.Symbol("v")
    g = sp.diff(x**4, x)
    with pytest.raises(InvalidMapError, match="state_step has 2 components"):
        modified_map_with_state([x + v], [v, v], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="theta_step has 2 components"):
        modified_map_with_state([x + v, x], [v / 2], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="eigenvalue 1"):
        modified_map_with_state([x + v - h * g], [v - h * g], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="not contracting"):
        modified_map_with_state([x + 2 * v - h * g], [2 * v - h * g], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="affine in the state"):
        modified_map_with_state([x + v - h * g], [v**2 / 2 - h * g], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="not the identity at h = 0 on the slow manifold"):
        modified_map_with_state([x + 1 + v - h * g], [v / 2 - h * g], [x], [v], 1)
    with pytest.raises(InvalidMapError, match="also parameters"):
        modified_map_with_state([x - h * g], [x / 2], [x], [x], 1)
