"""Runge–Kutta methods other than GD, modifying integrators, tableau validation, the coefficient docs.

Independent routes: each method's actual step computed in mpmath from its tableau (bea.testing.rk_step_mp,
itself checked against a hand-written RK4 in tests/test_testing.py) against the flow of the modified
field (GBS in mpmath); the substitution law (a different algebra) against the s-polynomial recursion;
closed forms 1/(σγ) for the modifying integrator of Euler.
"""

import importlib.util
from fractions import Fraction
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea import BEAError, UnknownMethodError, modified_field, modified_series, rooted_trees
from bea.derive.methods import (
    METHODS,
    ImplicitMethodError,
    InvalidMethodError,
    InvalidTableauError,
    Momentum,
    RungeKutta,
    get_method,
)
from bea.derive.series import _modified_by_substitution, modifying_integrator, substitution
from bea.testing import assert_local_order, fit_order, integrate_mp, rk_step_mp

x, y = sp.symbols("x y")
LOSS = x**2 * y / 2 + x**3 / 3 + y**4 / 12 + x * y  # non-quadratic, all derivatives up to 4 present
THETA0 = [0.3, -0.7]


# ------------------------------------------------------------------------------------------------
# the modified field of an RK method applied to gradient flow, checked against its actual step
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,order,slope",
    [
        ("rk4", 3, 5),  # f_1 = f_2 = f_3 = 0: the gradient flow itself is RK4's field to O(h^5)
        ("rk4", 4, 6),
        ("midpoint", 2, 4),
        ("heun", 2, 4),
        ("implicit_euler", 2, 4),
        ("implicit_midpoint", 1, 3),  # f_1 = 0 but f_2 ≠ 0
        ("implicit_midpoint", 2, 5),  # f_3 = 0: order 2 is as good as order 3 (only even powers)
    ],
)
def test_local_error_of_rk_modified_fields(method, order, slope):
    mf = modified_field(LOSS, [x, y], order, method=method)
    result = assert_local_order(mf, theta0=THETA0)
    assert abs(result.slope - slope) < 0.25, result.summary()


def test_wrong_rk4_correction_is_detected():
    """The RK4 check has teeth: 0.9·f_4 gives slope 5, not 6."""
    mf = modified_field(LOSS, [x, y], 4, method="rk4")
    bad = bea.ModifiedField(mf.loss, mf.params, mf.h, mf.terms[:4] + [mf.terms[4] * sp.Rational(9, 10)], mf.series)
    with pytest.raises(AssertionError, match="does not match"):
        assert_local_order(bad, theta0=THETA0)


def test_the_gd_modified_field_does_not_describe_rk4():
    """Checking GD's field against RK4's step fails: the reference really is the method's step."""
    mf = modified_field(LOSS, [x, y], 2)
    with pytest.raises(AssertionError):
        assert_local_order(mf, method="rk4", theta0=THETA0)


def test_implicit_euler_field_is_explicit_euler_field_with_negative_h():
    a = modified_field(LOSS, [x, y], 4, method="implicit_euler")
    b = modified_field(LOSS, [x, y], 4, method="euler")
    assert sp.expand(a.field - b.field.subs(b.h, -b.h)) == sp.zeros(2, 1)


def test_symmetric_method_has_only_even_powers_on_a_concrete_loss():
    mf = modified_field(LOSS, [x, y], 5, method="implicit_midpoint")
    assert mf.terms[1] == mf.terms[3] == mf.terms[5] == sp.zeros(2, 1)
    assert mf.terms[2] != sp.zeros(2, 1) and mf.terms[4] != sp.zeros(2, 1)


# ------------------------------------------------------------------------------------------------
# substitution law: an independent algebra for the same coefficients
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(METHODS))
def test_substitution_law_reproduces_the_recursion(name):
    """b ⋆ e = a (Chartier–Hairer–Vilmart) gives the same modified equation as recursion (3)."""
    rec, sub = modified_series(5, name), _modified_by_substitution(5, name)
    for k in range(1, 7):
        for t in rooted_trees(k):
            assert rec.coefficient(t) == sub.coefficient(t)


def _tableaux():
    q = st.builds(Fraction, st.integers(-3, 3), st.integers(1, 4))

    @st.composite
    def build(draw):
        s = draw(st.integers(1, 3))
        explicit = draw(st.booleans())
        A = [[draw(q) if (j < i or not explicit) else Fraction(0) for j in range(s)] for i in range(s)]
        b = [draw(q) for _ in range(s - 1)]
        b.append(1 - sum(b, Fraction(0)))
        return RungeKutta(A, b, name="random")

    return build()


@settings(max_examples=15)
@given(_tableaux())
def test_substitution_law_on_random_tableaux(tab):
    rec = modified_series(4, tab)
    a = {tuple(t): tab.elementary_weight(t) for k in range(1, 6) for t in rooted_trees(k)}
    b = {tuple(t): rec.weight(t) for k in range(1, 6) for t in rooted_trees(k)}
    exact = {tuple(t): Fraction(1, t.gamma) for k in range(1, 6) for t in rooted_trees(k)}
    for k in range(1, 6):
        for t in rooted_trees(k):
            assert substitution(b, exact, t) == a[tuple(t)]


def test_substitution_with_the_identity_field_is_the_method():
    """b = δ_• (the field f itself): (δ ⋆ a)(t) = a(t)."""
    delta = lambda seq: Fraction(1) if seq == (1,) else Fraction(0)  # noqa: E731
    tab = get_method("rk4")
    for t in rooted_trees(5):
        assert substitution(delta, tab.elementary_weight, t) == tab.elementary_weight(t)


# ------------------------------------------------------------------------------------------------
# modifying integrators
# ------------------------------------------------------------------------------------------------


def test_modifying_integrator_of_gd_is_the_scaled_exact_flow():
    mi = modifying_integrator(6)
    for k in range(1, 8):
        for t in rooted_trees(k):
            assert mi.coefficient(t) == Fraction(1, t.sigma * t.gamma)


def test_modifying_integrator_of_gd_cancels_igr():
    mi, ms = modifying_integrator(3), modified_series(3)
    assert mi.gradient_notation(1) == "1/2 H g"
    assert mi.coefficient((1, 2)) == -ms.coefficient((1, 2)) == Fraction(1, 2)
    f_hat = mi.evaluate(LOSS, [x, y])
    g = sp.Matrix([sp.diff(LOSS, v) for v in (x, y)])
    H = sp.hessian(LOSS, (x, y))
    assert f_hat.terms[0] == -g
    assert sp.expand(f_hat.terms[1] - H * g / 2) == sp.zeros(2, 1)
    igr = modified_field(LOSS, [x, y], 1).terms[1]
    assert sp.expand(f_hat.terms[1] + igr) == sp.zeros(2, 1)


def _modifying_local_errors(method, n, hs):
    """‖Φ_h^{method}[f̂](θ0) − φ_h^{−∇E}(θ0)‖: the method on f̂ against the exact gradient flow."""
    fh = modifying_integrator(n, method).evaluate(LOSS, [x, y])
    field = sp.lambdify((fh.params, fh.h), list(fh.field), "mpmath")
    grad = sp.lambdify((fh.params,), [-sp.diff(LOSS, v) for v in (x, y)], "mpmath")
    out = []
    with mp.workdps(40):
        th = [mp.mpf(v) for v in THETA0]
        for h in hs:
            h = mp.mpf(h)
            exact = integrate_mp(grad, th, h, dps=40)
            step = rk_step_mp(method, lambda u: field(u, h), th, h)
            out.append(float(mp.sqrt(sum((a - b) ** 2 for a, b in zip(exact, step)))))
    return out


@pytest.mark.parametrize("method,n", [("gd", 0), ("gd", 1), ("gd", 2), ("gd", 3), ("rk4", 4), ("heun", 3)])
def test_method_on_modifying_integrator_is_the_exact_flow(method, n):
    hs = [2.0**-k for k in range(5, 9)]
    errs = _modifying_local_errors(method, n, hs)
    assert abs(fit_order(hs, errs) - (n + 2)) < 0.25, errs


def test_modifying_integrator_of_rk4_starts_at_h4_and_midpoint_is_even():
    s = modifying_integrator(5, "rk4")
    for k in range(2, 5):
        assert all(s.coefficient(t) == 0 for t in rooted_trees(k))
    assert any(s.coefficient(t) != 0 for t in rooted_trees(5))
    # to leading order the modifying integrator is minus the modified field's first correction
    ms = modified_series(5, "rk4")
    for t in rooted_trees(5):
        assert s.coefficient(t) == -ms.coefficient(t)
    im = modifying_integrator(5, "implicit_midpoint")
    for k in (2, 4, 6):
        assert all(im.coefficient(t) == 0 for t in rooted_trees(k))


def test_modifying_integrator_errors():
    with pytest.raises(InvalidMethodError):
        modifying_integrator(2, Momentum(0.5))
    with pytest.raises(bea.InvalidOrderError):
        modifying_integrator(-1)


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "A,b,c,match",
    [
        ([[0, 0]], [1], None, "square"),  # 1×2
        ([[0, 0], [1, 0]], [1], None, "square"),  # 2×2 with one weight
        ([[0], [1, 0]], [Fraction(1, 2)] * 2, None, "square"),  # ragged
        ([[0, 0, 0], [1, 0, 0]], [Fraction(1, 2)] * 2, None, "square"),  # 2×3
        (5, [1], None, "square matrix"),  # scalar A
        ("A", [1], None, "square matrix"),  # string A
        ([0, 1], [1, 0], None, "square matrix"),  # a vector, not a matrix
        ([[0]], 1, None, "sequence"),  # scalar b
        ([[0]], [], None, "stage"),
        ([[0, 0], [1, 0]], [1, 1], None, "sum to 1"),  # inconsistent: Σb = 2
        ([[0, 0], [1, 0]], [Fraction(1, 2)] * 2, [0, Fraction(1, 2)], "row sums"),  # c ≠ A·1
        ([[0, 0], [1, 0]], [Fraction(1, 2)] * 2, [0, 1, 2], "entries"),  # c of wrong length
        ([[float("nan")]], [1], None, "rational"),
        ([[float("inf")]], [1], None, "rational"),
        ([[object()]], [1], None, "rational"),
        ([[0.1]], [1], None, None),  # 0.1 is fine (a short decimal)
        ([[0.1 + 3e-17]], [1], None, "rational"),  # a float that is not one: no silent rounding
        ([[1 / 3]], [1], None, None),  # 1/3 as a float is recognised
        ([[True]], [1], None, "bool"),
    ],
)
def test_bad_tableaux_raise_clear_bea_errors(A, b, c, match):
    if match is None:
        RungeKutta(A, b, c)
        return
    with pytest.raises(InvalidTableauError, match=match) as info:
        RungeKutta(A, b, c)
    assert isinstance(info.value, BEAError) and isinstance(info.value, ValueError)


def test_tableau_inputs_accepted():
    t = RungeKutta(np.array([[0, 0], [0.5, 0]]), np.array([0, 1]))
    assert t == get_method("midpoint") and t.order() == 2
    t = RungeKutta([[0, 0], ["1/2", 0]], [sp.Integer(0), sp.Rational(1)])
    assert t == get_method("midpoint")


def test_implicit_methods_where_only_explicit_are_supported():
    f = lambda v: -v  # noqa: E731
    for name in ("implicit_euler", "implicit_midpoint"):
        tab = get_method(name)
        with pytest.raises(ImplicitMethodError, match="implicit") as info:
            tab.step(f, np.array([1.0]), 0.1)
        assert isinstance(info.value, BEAError)
        with pytest.raises(ImplicitMethodError):
            tab.as_arrays(require_explicit=True)
        # the B-series algebra handles them
        assert modified_series(2, name).order == 2
    A, b, c = get_method("implicit_midpoint").as_arrays()
    assert A[0, 0] == 0.5 and b[0] == 1 and c[0] == 0.5


def test_explicit_step_matches_the_mpmath_step():
    E = LOSS
    grad = sp.lambdify([(x, y)], [-sp.diff(E, v) for v in (x, y)], "numpy")
    gmp = sp.lambdify([(x, y)], [-sp.diff(E, v) for v in (x, y)], "mpmath")
    for name in ("euler", "midpoint", "heun", "rk4"):
        tab = get_method(name)
        a = tab.step(lambda v: np.array(grad(v)), np.array(THETA0), 0.1)
        with mp.workdps(30):
            b = rk_step_mp(tab, gmp, [mp.mpf(v) for v in THETA0], mp.mpf("0.1"))
        assert np.allclose(a, [float(v) for v in b], rtol=1e-14, atol=1e-15)


def test_method_names_and_momentum_errors():
    with pytest.raises(UnknownMethodError, match=r"Momentum\(m\)"):
        modified_series(2, "momentum")
    with pytest.raises(UnknownMethodError, match="rk4"):
        get_method("rk5")
    with pytest.raises(UnknownMethodError):
        get_method(42)
    assert get_method("GD") is get_method("euler")


# ------------------------------------------------------------------------------------------------
# docs/coefficients.md is generated by bea and up to date
# ------------------------------------------------------------------------------------------------


def _generator():
    path = Path(__file__).resolve().parents[2] / "docs" / "gen_coefficients.py"
    spec = importlib.util.spec_from_file_location("gen_coefficients", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_coefficient_docs_are_up_to_date():
    gen = _generator()
    text = gen.render()
    assert gen.OUT.read_text(encoding="utf-8") == text, "run: python docs/gen_coefficients.py"
    # and they say what the reference values say
    assert "| 2 | (1, 2, 2) | `[•,•]` | `f''(f,f)` | 2 | 3 | 1/12 | `T(g,g)` | -1/12 |" in text
    assert "    f_3 = -(1/4 H^3 g + 1/12 H T(g,g) + 1/12 T(g,H g))" in text
    assert text.count("\n| 6 |") == 48  # all 48 trees with 7 nodes
