"""The loss-independent B-series: coefficients against published values and known method facts."""

from fractions import Fraction

import pytest

from bea import InvalidOrderError, UnknownMethodError, modified_series, rooted_trees
from bea.derive.methods import InvalidTableauError, RungeKutta, get_method

# design.md section 1 (Hairer–Lubich–Wanner IX.1; brute-force flow matching)
REFERENCE = {
    (1, 2): Fraction(-1, 2),
    (1, 2, 3): Fraction(1, 3),
    (1, 2, 2): Fraction(1, 12),
    (1, 2, 3, 4): Fraction(-1, 4),
    (1, 2, 3, 3): Fraction(-1, 12),
    (1, 2, 3, 2): Fraction(-1, 12),
    (1, 2, 2, 2): Fraction(0),
}

# f_4 of GD in gradient notation (design.md), coefficient of each G(t) inside f_4 = Σ c(t)(−1)^|t| G(t)
F4 = {
    "H^4 g": Fraction(-1, 5),
    "H^2 T(g,g)": Fraction(-3, 40),
    "H T(g,H g)": Fraction(-1, 10),
    "H Q(g,g,g)": Fraction(-1, 180),
    "T(g,H^2 g)": Fraction(-1, 20),
    "T(g,T(g,g))": Fraction(-1, 120),
    "T(H g,H g)": Fraction(-1, 60),
    "Q(g,g,H g)": Fraction(1, 120),
    "P(g,g,g,g)": Fraction(1, 720),
}


def test_reference_coefficients():
    s = modified_series(order=3)
    for seq, c in REFERENCE.items():
        assert s.coefficient(seq) == c
        assert isinstance(s.coefficient(seq), Fraction)


def test_equivalent_level_sequences_give_the_same_coefficient():
    s = modified_series(order=3)
    assert s.coefficient((1, 2, 2, 3)) == s.coefficient((1, 2, 3, 2)) == Fraction(-1, 12)


def test_f4_gradient_notation_matches_design():
    from bea.derive.series import gradient_notation_of_tree

    s = modified_series(order=4)
    got = {gradient_notation_of_tree(t): c * (-1) ** t.order for t, c in s.terms(4)}
    assert got == F4


def test_gradient_notation_strings():
    s = modified_series(order=3)
    assert s.gradient_notation(0) == "-g"
    assert s.gradient_notation(1) == "-1/2 H g"
    assert s.gradient_notation(2) == "-(1/3 H^2 g + 1/12 T(g,g))"
    assert s.gradient_notation(3) == "-(1/4 H^3 g + 1/12 H T(g,g) + 1/12 T(g,H g))"
    assert s.gradient_notation(2, "unicode") == "-(1/3 H²g + 1/12 T(g,g))"
    assert r"\frac{1}{3}" in s.gradient_notation(2, "latex")


@pytest.mark.parametrize("p", range(0, 11))
def test_principal_terms_are_the_taylor_coefficients_of_log1m(p):
    # ladder tree with p+1 nodes carries H^p g; its coefficient must be −1/(p+1), the Taylor
    # coefficient of α(z) = log(1−z)/z = −Σ z^p/(p+1) (independent closed form)
    s = modified_series(order=10)
    ladder = tuple(range(1, p + 2))
    assert s.coefficient(ladder) * (-1) ** (p + 1) == Fraction(-1, p + 1)


def test_implicit_euler_is_explicit_euler_with_negative_step():
    ee, ie = modified_series(6, "euler"), modified_series(6, "implicit_euler")
    for k in range(1, 8):
        for t in rooted_trees(k):
            assert ie.coefficient(t) == (-1) ** (k - 1) * ee.coefficient(t)


def test_implicit_midpoint_has_only_even_powers():
    s = modified_series(6, "implicit_midpoint")
    for k in range(2, 8, 2):  # |t| even <=> odd power h^{|t|-1}
        assert all(s.coefficient(t) == 0 for t in rooted_trees(k))
    assert any(s.coefficient(t) != 0 for t in rooted_trees(3))


@pytest.mark.parametrize("method,order", [("midpoint", 2), ("heun", 2), ("rk4", 4), ("euler", 1)])
def test_method_of_order_p_has_no_correction_below_h_p(method, order):
    s = modified_series(order + 1, method)
    assert get_method(method).order() == order
    for k in range(2, order + 1):
        assert all(s.coefficient(t) == 0 for t in rooted_trees(k))
    assert any(s.coefficient(t) != 0 for t in rooted_trees(order + 1))


def test_modified_equation_is_consistent_with_rk_tableau_weights():
    # For a method a(t) whose modified field is the exact field (b(•)=1, b=0 otherwise), a = 1/γ:
    # an RK tableau cannot be exact, but Euler's weights with the series recomputed from a(t)=1/γ(t)
    # must give the exact field. Build such a "method" with a custom weight function.
    from bea.derive.series import _SeriesState

    class Exact:
        name = "exact"

        @staticmethod
        def elementary_weight(seq):
            from bea.derive.trees import density

            return Fraction(1, density(seq))

    state = _SeriesState(Exact)
    state.extend(8)
    assert state.b[(1,)] == 1
    assert all(v == 0 for seq, v in state.b.items() if len(seq) > 1)


def test_series_grows_incrementally_and_consistently():
    from bea.derive.series import _clear_cache

    _clear_cache()
    small = modified_series(3)
    big = modified_series(7)
    _clear_cache()
    fresh = modified_series(7)
    for k in range(1, 9):
        for t in rooted_trees(k):
            assert big.coefficient(t) == fresh.coefficient(t)
            if k <= 4:
                assert small.coefficient(t) == fresh.coefficient(t)


def test_trees_and_errors():
    s = modified_series(order=5)
    assert len(s.trees(6)) == 20
    with pytest.raises(InvalidOrderError):
        s.trees(7)
    with pytest.raises(InvalidOrderError):
        s.coefficient((1, 2, 3, 4, 5, 6, 7))
    with pytest.raises(InvalidOrderError):
        modified_series(-1)
    with pytest.raises(InvalidOrderError):
        modified_series(1.5)
    with pytest.raises(UnknownMethodError):
        modified_series(2, method="adam")


def test_tableau_validation():
    with pytest.raises(InvalidTableauError):
        RungeKutta([[0, 0]], [1])
    with pytest.raises(InvalidTableauError):
        RungeKutta([[0, 0], [1, 0]], [1])
    with pytest.raises(InvalidTableauError):
        RungeKutta([[0, 0], [1, 0]], [0.5, 0.5], c=[0, 0.5])
    with pytest.raises(InvalidTableauError):
        RungeKutta([["a"]], [1])
    # short decimals are read as the rationals they denote
    assert RungeKutta([[0.1]], [1]).A[0][0] == Fraction(1, 10)


def test_agrees_with_the_bseries_package_substitution_law():
    """Independent route: the BSeries package solves subs(b, 1/γ) = a by the substitution law."""
    pytest.importorskip("BSeries")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_series import bseries_coefficients, level_sequence_of
    from BSeries import trees as btrees

    nodes = 7
    B = bseries_coefficients(nodes)
    s = modified_series(order=nodes - 1)
    for p in range(1, nodes + 1):
        for t in btrees.all_trees(p):
            ours = s.weight(level_sequence_of(t))
            assert Fraction(str(B[t])) == ours, (level_sequence_of(t), B[t], ours)
