"""Modified equations of general one-step maps and of compositions (bea.derive.maps).

Independent routes: the tree recursion of bea.derive.series (GD and Runge–Kutta maps must give the same
field as ``bea.modified_field``), closed forms (Smith et al.'s first-order term of random
reshuffling, the fixed-order epoch's first term), and the exact flow of the derived field in mpmath
against the map, the composition, or the average over every ordering, iterated from their
definitions (local error slope order + 2).
"""

import itertools
import math

import mpmath as mp
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea import InvalidMapError, NoGradientNotationError, NonSmoothMapError, modified_map, sgd_epoch
from bea.derive.symbolic import step_symbol
from bea.testing import polynomial_losses

from _map_checks import assert_slope, mp_function, step_scale

x, y, z = sp.symbols("x y z")
h = step_symbol()
LOSS = x**2 * y / 2 + x**3 / 3 + y**4 / 12 + x * y
THETA0 = [0.3, -0.7]


def gd_map(E, params):
    return [p - h * sp.diff(E, p) for p in params]


def same_terms(a, b) -> bool:
    return len(a.terms) == len(b.terms) and all(
        sp.expand(u - v) == 0 for ta, tb in zip(a.terms, b.terms) for u, v in zip(ta, tb)
    )


@settings(max_examples=6)
@given(polynomial_losses(n_params=2, max_degree=4, max_terms=5))
def test_gd_map_equals_modified_field(case):
    """The Lie-series recursion on the map θ − h∇E and the B-series (tree) recursion of
    bea.modified_field are two independent routes to GD's modified field: equal to h^5, exactly."""
    E, params = case
    assert same_terms(modified_map(gd_map(E, params), params, 5), bea.modified_field(E, params, 5))


def rk_map(E, params, name):
    """One step of the explicit RK method ``name`` on θ' = −∇E, written out from its tableau."""
    tab = bea.get_method(name)
    A = [[sp.Rational(a.numerator, a.denominator) for a in row] for row in tab.A]
    b = [sp.Rational(v.numerator, v.denominator) for v in tab.b]
    ks = []
    for i in range(tab.stages):
        point = [p + h * sum(A[i][j] * ks[j][c] for j in range(i)) for c, p in enumerate(params)]
        at = dict(zip(params, point))
        ks.append([-sp.diff(E, p).xreplace(at) for p in params])
    return [p + h * sum(b[i] * ks[i][c] for i in range(tab.stages)) for c, p in enumerate(params)]


@pytest.mark.parametrize("name", ["midpoint", "heun", "rk4"])
def test_rk_step_as_a_map_equals_method(name):
    """An RK step written out as a map has the modified field of ``method=name`` (tree recursion
    with the tableau's elementary weights), to h^4, exactly."""
    assert same_terms(modified_map(rk_map(LOSS, [x, y], name), [x, y], 4), bea.modified_field(LOSS, [x, y], 4, method=name))


def test_non_polynomial_loss_gd_map():
    """exp, cos, tanh and a square root become atoms with chain-rule derivatives: the GD map's field
    equals bea.modified_field's (evaluated at two rational points to 60 digits)."""
    E = sp.exp(x) * sp.cos(y) + sp.tanh(x * y) + sp.sqrt(1 + x**2)
    mf = modified_map(gd_map(E, [x, y]), [x, y], 3)
    ref = bea.modified_field(E, [x, y], 3)
    for a, b in zip(mf.terms, ref.terms):
        diff = mp_function(a - b, [x, y])
        with mp.workdps(60):
            for pt in ([mp.mpf(3) / 10, mp.mpf(-2) / 7], [mp.mpf(-1) / 3, mp.mpf(5) / 4]):
                assert max(abs(v) for v in diff(pt)) < mp.mpf(10) ** -50


def preconditioned_map(E, params):
    """θ_i − h g_i/(1 + θ_i²) + h² θ_i g_i²/2 + h³ sin(θ_i) g_i/6: smooth, no B-series method."""
    out = []
    for p in params:
        g = sp.diff(E, p)
        out.append(p - h * g / (1 + p**2) + h**2 * p * g**2 / 2 + h**3 * sp.sin(p) * g / 6)
    return out


@settings(max_examples=2)
@given(polynomial_losses(n_params=2, max_degree=3, min_degree=3, max_terms=4))
def test_map_local_error_slope(case):
    """The exact flow (mpmath, 40 digits) of the order-4 field of a map that is no B-series method
    reproduces the map, evaluated from its definition, with local error O(h^6)."""
    E, params = case
    step = preconditioned_map(E, params)
    mf = modified_map(step, params, 4)
    fn = mp_function(step, params, h)

    def reference(H):
        start = [mp.mpf(v) for v in THETA0]
        return start, fn(start, H)

    scale = step_scale(E, params, THETA0) * 2
    assert_slope(mf, reference, [2.0**-k / scale for k in range(5, 9)])


def iterate_sgd(losses, params, order_of_batches, start, H):
    grads = [mp_function([sp.diff(E, p) for p in params], params) for E in losses]
    th = list(start)
    for k in order_of_batches:
        th = [a - H * b for a, b in zip(th, grads[k](th))]
    return th


def batch_losses(draw_losses):
    return [E for E, _ in draw_losses]


@settings(max_examples=2)
@given(st.lists(polynomial_losses(n_params=2, max_degree=3, max_terms=3, symbols=(x, y)), min_size=3, max_size=3, unique_by=str))
def test_epoch_local_error_slope_fixed_order(cases):
    """One epoch of 3 SGD steps in the given order, iterated in mpmath, against the exact flow of the
    order-4 field over time 3h: local error O(h^6)."""
    losses = batch_losses(cases)
    mf = sgd_epoch(losses, [x, y], 4)
    assert mf.steps == 3 and mf.flow_time == 3 * h

    def reference(H):
        start = [mp.mpf(v) for v in THETA0]
        return start, iterate_sgd(losses, [x, y], range(3), start, H)

    scale = 3 * max(step_scale(E, [x, y], THETA0) for E in losses)
    assert_slope(mf, reference, [2.0**-k / scale for k in range(4, 8)])


@settings(max_examples=2)
@given(st.lists(polynomial_losses(n_params=2, max_degree=3, max_terms=3, symbols=(x, y)), min_size=3, max_size=3, unique_by=str))
def test_epoch_local_error_slope_average(cases):
    """The mean of the 3! = 6 epochs (every ordering, iterated in mpmath) against the exact flow of
    the "average" field over time 3h: local error O(h^6) — Eq. (2) without enumerating orderings."""
    losses = batch_losses(cases)
    mf = sgd_epoch(losses, [x, y], 4, shuffle="average")

    def reference(H):
        start = [mp.mpf(v) for v in THETA0]
        ends = [iterate_sgd(losses, [x, y], perm, start, H) for perm in itertools.permutations(range(3))]
        return start, [sum(c) / len(ends) for c in zip(*ends)]

    scale = 3 * max(step_scale(E, [x, y], THETA0) for E in losses)
    assert_slope(mf, reference, [2.0**-k / scale for k in range(4, 8)])


def grad(F, params):
    return sp.Matrix([sp.diff(F, p) for p in params])


@settings(max_examples=4)
@given(st.lists(polynomial_losses(n_params=3, max_degree=4, max_terms=4, symbols=(x, y, z)), min_size=4, max_size=4, unique_by=str))
def test_average_first_order_term_is_smith_et_al(cases):
    """Smith, Dherin, Barrett & De (ICLR 2021): with E the mean of the m batch losses and time m·h per
    epoch, random reshuffling follows −∇(E + h/4‖∇E‖² + h/(4m)Σ_k‖∇E_k − ∇E‖²) to first order; the
    same as −∇(E + h/(4m)Σ_k‖∇E_k‖²), their C̃_SGD."""
    losses = batch_losses(cases)
    P, m = [x, y, z], len(losses)
    mf = sgd_epoch(losses, P, 1, shuffle="average")
    E = sp.Add(*losses) / m
    g = grad(E, P)
    smith = g.dot(g) / 4 + sum(((grad(Ek, P) - g).dot(grad(Ek, P) - g) for Ek in losses)) / (4 * m)
    smith_b = sum(grad(Ek, P).dot(grad(Ek, P)) for Ek in losses) / (4 * m)
    assert sp.expand(mf.loss - E) == 0
    assert all(sp.expand(a) == 0 for a in mf.terms[0] + g)
    assert all(sp.expand(a) == 0 for a in mf.terms[1] + grad(smith, P))
    assert all(sp.expand(a) == 0 for a in mf.terms[1] + grad(smith_b, P))


def test_fixed_order_first_term_closed_form():
    """In the given order Φ^k(θ) = θ − h g_k, the epoch is θ − hΣg_k + h²Σ_{i<j} H_j g_i + O(h³), so
    f_1 = −(1/2m)Σ_k H_k g_k + (1/2m)Σ_{i<j}(H_j g_i − H_i g_j): the antisymmetric part that the
    average over orderings removes."""
    losses = [x**2 * y + y**3 / 3, x * y**2 - x**3, (x - 2 * y) ** 2 * x + y]
    P, m = [x, y], 3
    mf = sgd_epoch(losses, P, 1)
    gs = [grad(E, P) for E in losses]
    Hs = [sp.hessian(E, P) for E in losses]
    f1 = -sum((Hs[k] * gs[k] for k in range(m)), sp.zeros(2, 1)) / (2 * m)
    for i, j in itertools.combinations(range(m), 2):
        f1 += (Hs[j] * gs[i] - Hs[i] * gs[j]) / (2 * m)
    assert all(sp.expand(a - b) == 0 for a, b in zip(mf.terms[1], f1))


def test_average_symmetric_and_one_batch():
    """The average over orderings does not depend on the order the batches are listed in (7 batches,
    to h^2: 5040 orderings never enumerated); one batch is plain GD."""
    losses = [x**2 + k * x * y + y**3 / (k + 1) for k in range(7)]
    a = sgd_epoch(losses, [x, y], 2, shuffle="average")
    b = sgd_epoch(losses[::-1][3:] + losses[::-1][:3], [x, y], 2, shuffle="average")
    assert same_terms(a, b)
    one = sgd_epoch(losses[:1], [x, y], 3, shuffle="average")
    assert same_terms(one, bea.modified_field(losses[0], [x, y], 3)) and one.steps == 1


def test_two_gd_steps_on_a_quadratic():
    """On a quadratic E two GD steps are (I − hA)²; the epoch's field over time 2h is log(I − hA)/h,
    GD's own field: the time scaling of compositions, to h^4."""
    E = x**2 + x * y / 2 + 3 * y**2 / 4
    two = modified_map([gd_map(E, [x, y]), gd_map(E, [x, y])], [x, y], 4)
    assert same_terms(two, bea.modified_field(E, [x, y], 4))


def test_step_size_symbol_choices():
    """h=None takes the map's symbol named "h" (any assumptions) or a fresh positive one; an explicit h
    is used as given; two different symbols named h are refused."""
    hp = sp.Symbol("h")  # no assumptions
    mf = modified_map([x - hp * x**3], [x], 1)
    assert mf.h is hp and sp.expand(mf.terms[1][0] + sp.Rational(3, 2) * x**5) == 0
    eta = sp.Symbol("eta", positive=True)
    mf = modified_map(x - eta * x**3, [x], 1, h=eta)
    assert mf.h is eta and mf.flow_time == eta
    assert modified_map([x], [x], 2).h == step_symbol()
    with pytest.raises(InvalidMapError, match="named 'h'"):
        modified_map([x - hp * x - h * x**2], [x], 1)
    with pytest.raises(InvalidMapError, match="not the step size"):
        modified_map([x - hp * x], [x], 1, h=eta)


def test_hyperparameters_stay_symbolic():
    """A map with a symbolic learning-rate factor c: f_0 = −c g, f_1 = −c²/2 H g, exactly."""
    c = sp.Symbol("c", positive=True)
    mf = modified_map([x - c * h * sp.diff(LOSS, x), y - c * h * sp.diff(LOSS, y)], [x, y], 1)
    g, H = grad(LOSS, [x, y]), sp.hessian(LOSS, [x, y])
    assert mf.symbols == (c,)
    assert all(sp.expand(a + c * b) == 0 for a, b in zip(mf.terms[0], g))
    assert all(sp.expand(a + c**2 / 2 * b) == 0 for a, b in zip(mf.terms[1], H * g))
    num = mf.subs({c: 0.5})
    assert num.symbols == () and sp.expand(num.terms[1][0] + (H * g)[0] / 8) == 0


def test_map_field_object():
    """MapField keeps the ModifiedField contract (terms, field, truncated, compile) and names what it lacks."""
    mf = modified_map(gd_map(LOSS, [x, y]), [x, y], 3)
    assert isinstance(mf, bea.ModifiedField) and mf.order == 3 and len(mf.terms) == 4
    assert sp.expand(mf.field[0] - sum(h**k * t[0] for k, t in enumerate(mf.terms))) == 0
    assert mf.truncated(1).order == 1 and mf.truncated(1).terms == mf.terms[:2]
    with pytest.raises(NoGradientNotationError, match="no loss-independent gradient notation"):
        mf.gradient_notation(1)
    kern = mf.compile()
    import numpy as np

    ref = sp.lambdify(([x, y], h), list(mf.field))(THETA0, 0.01)
    assert np.allclose(kern(np.array(THETA0), 0.01), ref, rtol=1e-12, atol=0)
    c = sp.Symbol("c")
    with pytest.raises(bea.InvalidInputError, match="numbers first"):
        modified_map([x - c * h * x], [x], 1).compile()
    assert "map" in repr(mf) and "h^1" in str(mf)


# -- bad input ----------------------------------------------------------------------------------------


def test_wrong_length():
    """A step with a component per parameter missing or extra: InvalidMapError naming both counts."""
    with pytest.raises(InvalidMapError, match="has 1 components but there are 2 parameters"):
        modified_map([x - h * x], [x, y], 1)
    with pytest.raises(InvalidMapError, match="step 2 has 3 components"):
        modified_map([[x - h * x, y], [x, y, x]], [x, y], 1)
    with pytest.raises(InvalidMapError, match="empty"):
        modified_map([], [x], 1)
    with pytest.raises(InvalidMapError, match="column"):
        modified_map(sp.Matrix([[x, y], [x, y]]), [x, y], 1)


def test_not_identity_at_zero_step():
    """Φ_0 ≠ id (a map that moves without a step, or a rescaling) has no modified equation."""
    with pytest.raises(InvalidMapError, match="not the identity at h = 0.*component 0"):
        modified_map([x + 1 - h * x], [x], 2)
    with pytest.raises(InvalidMapError, match="not the identity at h = 0"):
        modified_map([[x - h * x, y], [2 * x, y]], [x, y], 2)


@pytest.mark.parametrize(
    "step",
    [
        [x - h * sp.sign(sp.diff(LOSS, x)), y - h * sp.sign(sp.diff(LOSS, y))],  # signSGD
        [x - h * sp.Abs(x), y],
        [x - h * sp.diff(LOSS, x) / sp.sqrt(sp.diff(LOSS, x) ** 2), y],  # signSGD written with a root
        [x - h * sp.Max(x, y), y],
    ],
)
def test_non_smooth_maps(step):
    """sign, Abs, Max and sqrt(u²) = |u| are not differentiable: NonSmoothMapError (a BEAError)."""
    with pytest.raises(NonSmoothMapError) as info:
        modified_map(step, [x, y], 2)
    assert isinstance(info.value, bea.BEAError)


def test_not_a_power_series_in_h():
    """sqrt(h) has no Taylor series at h = 0."""
    with pytest.raises(InvalidMapError, match="not a power series in h"):
        modified_map([x - sp.sqrt(h) * x], [x], 2)


def test_bad_sgd_input():
    """Unknown shuffles, empty batch lists, non-smooth batch losses and bad orders are refused."""
    with pytest.raises(bea.InvalidInputError, match="shuffle"):
        sgd_epoch([x**2], [x], 1, shuffle="random")
    with pytest.raises(bea.InvalidInputError, match="empty"):
        sgd_epoch([], [x], 1)
    with pytest.raises(bea.NonSmoothLossError):
        sgd_epoch([sp.Abs(x)], [x], 1)
    with pytest.raises(bea.InvalidOrderError):
        sgd_epoch([x**2], [x], -1)
    with pytest.raises(bea.InvalidParamsError):
        sgd_epoch([x**2 * y], [x], 1)


def test_exact_floats():
    """Floats are read as the short decimals they print as: 0.1·h gives the same field as h/10."""
    a = modified_map([x - 0.1 * h * x**3], [x], 2)
    b = modified_map([x - sp.Rational(1, 10) * h * x**3], [x], 2)
    assert same_terms(a, b) and math.isclose(float(a.terms[1][0].subs(x, 1)), -3 / 200)
