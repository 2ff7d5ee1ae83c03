"""Concrete modified fields, each checked against a route that does not use the tree series."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bea
from bea import (
    InvalidLossError,
    InvalidOrderError,
    InvalidParamsError,
    NonSmoothLossError,
    UnknownMethodError,
    modified_field,
    modified_series,
)
from bea.testing import fit_order, local_errors

x, y, z = sp.symbols("x y z")


def grad(E, params):
    return sp.Matrix([sp.diff(E, p) for p in params])


def third(E, params, a, b):
    """T(a, b)_i = Σ_jk ∂³E/∂θ_i∂θ_j∂θ_k a_j b_k, straight from the definition."""
    return sp.Matrix(
        [
            sum(sp.diff(E, pi, pj, pk) * a[j] * b[k] for j, pj in enumerate(params) for k, pk in enumerate(params))
            for pi in params
        ]
    )


def is_zero(m):
    return all(sp.simplify(e) == 0 for e in m)


LOSSES = [
    ((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y]),
    (x**2 * y / 2 + sp.sin(x) + y**4 / 12, [x, y]),
    (sp.exp(x * y) + sp.cos(x - z) + z**3, [x, y, z]),
    (sp.log(1 + x**2) + x * y**2, [x, y]),
]


@pytest.mark.parametrize("E,params", LOSSES)
def test_igr_and_third_order_flow(E, params):
    mf = modified_field(E, params, order=3)
    g = grad(E, params)
    H = sp.hessian(E, params)
    assert is_zero(mf.terms[1] + H * g / 2)
    assert is_zero(mf.terms[2] + (H * H * g / 3 + third(E, params, g, g) / 12))
    f3 = H**3 * g / 4 + H * third(E, params, g, g) / 12 + third(E, params, g, H * g) / 12
    assert is_zero(mf.terms[3] + f3)


def test_igr_is_the_gradient_of_the_gradient_norm():
    E = x**3 * y + sp.sin(y)
    mf = modified_field(E, [x, y], order=1)
    g = grad(E, [x, y])
    reg = (g.T * g)[0] / 4
    assert is_zero(mf.terms[1] + grad(reg, [x, y]))


def test_contract_attributes():
    E = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    mf = modified_field(E, [x, y], order=3)
    assert isinstance(mf.h, sp.Symbol) and mf.h.is_positive
    assert mf.params == (x, y)
    assert isinstance(mf.terms, list) and len(mf.terms) == 4
    assert all(isinstance(t, sp.MatrixBase) and t.shape == (2, 1) for t in mf.terms)
    assert mf.terms[0] == -grad(E, [x, y])
    assert mf.terms[0] == -sp.Matrix([E]).jacobian([x, y]).T
    assert sp.expand(mf.field - sum((mf.h**k * t for k, t in enumerate(mf.terms)), sp.zeros(2, 1))) == sp.zeros(2, 1)
    assert mf.gradient_notation(1) == "-1/2 H g"
    assert modified_field(E, [y, x], order=1).params == (y, x)


@pytest.mark.parametrize("E,params", LOSSES[:2])
def test_series_evaluate_equals_modified_field(E, params):
    s = modified_series(order=4)
    a, b = s.evaluate(E, params), modified_field(E, params, order=4)
    assert a.order == b.order == 4
    for ta, tb in zip(a.terms, b.terms):
        assert is_zero(ta - tb)


@st.composite
def quadratics(draw, n=st.integers(1, 3)):
    n = draw(n)
    entries = st.integers(-4, 4)
    M = sp.Matrix(n, n, lambda i, j: draw(entries))
    A = M + M.T
    bvec = sp.Matrix(n, 1, lambda i, j: sp.Rational(draw(entries), draw(st.integers(1, 3))))
    params = sp.symbols(f"t0:{n}")
    th = sp.Matrix(params)
    E = (th.T * A * th)[0] / 2 + (bvec.T * th)[0]
    return E, list(params), A, A * th + bvec


@given(quadratics())
def test_quadratic_losses_have_only_principal_terms(q):
    E, params, A, g = q
    mf = modified_field(E, params, order=5)
    for p, term in enumerate(mf.terms):
        assert sp.expand(term + A**p * g / (p + 1)) == sp.zeros(len(params), 1)


def _flow_taylor(mf, order):
    """Taylor coefficients in h of the exact time-h flow of f̃ (Lie series), powers 0..order.

    y(h) = Σ_k h^k/k! L^k θ with L u = (∂u/∂θ) f̃, f̃ = Σ_j h^j f_j: no trees involved.
    """
    params = mf.params
    fields = [list(t) for t in mf.terms]

    def lie(u):  # u: dict power -> vector; returns L u truncated at `order`
        out = {}
        for pu, vec in u.items():
            J = sp.Matrix(vec).jacobian(params)
            for pf, f in enumerate(fields):
                if pu + pf <= order:
                    w = list(J * sp.Matrix(f))
                    prev = out.get(pu + pf, [0] * len(params))
                    out[pu + pf] = [sp.expand(a + b) for a, b in zip(prev, w)]
        return out

    total = {0: list(params)}
    u = {0: list(params)}
    fact = 1
    for k in range(1, order + 1):
        u = lie(u)
        fact *= k
        for p, vec in u.items():
            if p + k <= order:
                prev = total.get(p + k, [0] * len(params))
                total[p + k] = [sp.expand(a + b / fact) for a, b in zip(prev, vec)]
    return total


@st.composite
def polynomial_losses(draw):
    monomials = [x, y, x**2, x * y, y**2, x**3, x**2 * y, x * y**2, y**3, x**4, y**4]
    coeffs = draw(st.lists(st.integers(-3, 3), min_size=len(monomials), max_size=len(monomials)))
    E = sum(c * m for c, m in zip(coeffs, monomials))
    return E if E.free_symbols == {x, y} else E + x * y


@settings(max_examples=8)
@given(polynomial_losses())
def test_flow_of_modified_field_matches_gd_step_symbolically(E):
    n = 2
    mf = modified_field(E, [x, y], order=n)
    taylor = _flow_taylor(mf, n + 1)
    g = grad(E, [x, y])
    assert [sp.expand(a - b) for a, b in zip(taylor[1], -g)] == [0, 0]
    for p in range(2, n + 2):
        assert taylor.get(p, [0, 0]) == [0, 0], f"h^{p} term of the flow does not vanish"


@pytest.mark.slow
@pytest.mark.parametrize("n", range(0, 6))
def test_local_error_of_truncated_field_is_order_n_plus_2(n):
    """Integrate the order-n field for time h (mpmath GBS, 40 digits): error vs GD ~ h^{n+2}."""
    E = x**2 * y / 2 + sp.sin(x) + y**4 / 12
    mf = modified_field(E, [x, y], order=n)
    hs = [2.0**-k for k in range(5, 9)] if n < 5 else [2.0**-k for k in range(5, 8)]
    errors = local_errors(mf, [0.3, -0.7], hs)
    assert abs(fit_order(hs, errors) - (n + 2)) < 0.2
    if n < 5:  # the next term is really there: one order more does better
        better = local_errors(modified_field(E, [x, y], order=n + 1), [0.3, -0.7], hs[-1:])
        assert better[0] < errors[-1] / 4


def test_wrong_coefficient_would_be_detected():
    """The local-error test has teeth: perturbing IGR's 1/2 breaks the h^3 slope."""
    E = x**2 * y / 2 + sp.sin(x) + y**4 / 12
    mf = modified_field(E, [x, y], order=1)
    bad = bea.ModifiedField(mf.loss, mf.params, mf.h, [mf.terms[0], mf.terms[1] * sp.Rational(11, 10)], mf.series)
    hs = [2.0**-k for k in range(5, 9)]
    assert abs(fit_order(hs, local_errors(bad, [0.3, -0.7], hs)) - 2) < 0.2


@pytest.mark.parametrize(
    "E,params,error",
    [
        (sp.Matrix([x, y]), [x, y], InvalidLossError),
        ([x, y], [x, y], InvalidLossError),
        (x < y, [x, y], InvalidLossError),
        (x * y, [x], InvalidParamsError),
        (x**2, [x, x], InvalidParamsError),
        (x**2, [], InvalidParamsError),
        (x**2, [x**2], InvalidParamsError),
        (sp.Abs(x) + y, [x, y], NonSmoothLossError),
        (sp.Max(x, y), [x, y], NonSmoothLossError),
        (sp.sign(x), [x], NonSmoothLossError),
        (sp.Piecewise((x, x > 0), (0, True)), [x], NonSmoothLossError),
        ("x**2 +", ["x"], InvalidLossError),
    ],
)
def test_bad_input_raises_clear_errors(E, params, error):
    with pytest.raises(error) as info:
        modified_field(E, params, order=1)
    assert isinstance(info.value, bea.BEAError)
    assert str(info.value)


def test_error_messages_name_the_problem():
    with pytest.raises(InvalidParamsError, match=r"\['y'\]"):
        modified_field(x * y, [x], 1)
    with pytest.raises(NonSmoothLossError, match="Abs"):
        modified_field(sp.Abs(x), [x], 1)
    with pytest.raises(InvalidOrderError):
        modified_field(x**2, [x], -1)
    with pytest.raises(InvalidOrderError):
        modified_field(x**2, [x], 2.5)
    with pytest.raises(UnknownMethodError, match="sgd"):
        modified_field(x**2, [x], 1, method="sgd")
    assert issubclass(InvalidParamsError, ValueError) and issubclass(InvalidLossError, TypeError)


def test_string_loss_and_params():
    mf = modified_field("x**2/2 + y**2", ["x", "y"], order=1)
    assert [str(p) for p in mf.params] == ["x", "y"]
    xs, ys = mf.params
    assert sp.expand(mf.terms[1][0] + xs / 2) == 0


def test_simplify_options_agree():
    E = sp.exp(x) * y**2 + x * y
    a = modified_field(E, [x, y], 2, simplify="none")
    b = modified_field(E, [x, y], 2, simplify="expand")
    for ta, tb in zip(a.terms, b.terms):
        assert is_zero(ta - tb)
    with pytest.raises(ValueError):
        modified_field(E, [x, y], 2, simplify="bogus")


_KERNEL_LOSSES = [
    ((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y], 4),
    (sp.exp(x) * sp.sin(y) + x**2 * y / 3, [x, y], 3),
]


@pytest.mark.parametrize("E,params,order", _KERNEL_LOSSES)
def test_compiled_kernel_equals_the_sympy_field(E, params, order):
    mf = modified_field(E, params, order=order)
    kern = mf.compile()
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.5, 1.5, size=(20, len(params)))
    hs = rng.uniform(1e-3, 0.1, size=20)
    for p, h in zip(pts, hs):
        exact = np.array(
            [float(e.evalf(30, subs={**dict(zip(params, map(sp.Float, p))), mf.h: sp.Float(h)})) for e in mf.field]
        )
        np.testing.assert_allclose(kern(p, h), exact, rtol=1e-10, atol=1e-10 * np.abs(exact).max())
    np.testing.assert_allclose(kern.batch(pts, 0.05), np.array([kern(p, 0.05) for p in pts]), rtol=1e-14)
    assert mf.compile() is kern  # cached by content


def test_compiled_kernel_on_complex_points():
    E = sp.exp(x) * sp.sin(y) + x**2 * y / 3
    mf = modified_field(E, [x, y], order=2)
    kern = mf.compile()
    p = np.array([0.3 + 0.2j, -0.4 - 0.1j])
    exact = np.array([complex(e.evalf(30, subs={x: p[0], y: p[1], mf.h: 0.05})) for e in mf.field])
    np.testing.assert_allclose(kern(p, 0.05), exact, rtol=1e-12)


def test_latex_rendering_protocols():
    """``sp.latex(mf)`` and Jupyter's rich display render a ModifiedField (sympy's ``_latex``
    protocol, IPython's ``_repr_latex_``): f̃ = Σ h^k f_k, each f_k's gradient notation and its
    components exactly as sympy prints the Matrix (the components come from the hand-written
    −∇E and −½Hg, not from the field's own terms)."""
    E = x**2 * y + sp.cos(x)
    mf = modified_field(E, [x, y], order=2)
    tex = sp.latex(mf)
    assert tex == mf.latex() and tex.startswith(r"\begin{aligned}") and tex.endswith(r"\end{aligned}")
    assert r"\tilde f &= f_{0} + h f_{1} + h^{2} f_{2}" in tex
    g = grad(E, [x, y])
    Hg = sp.hessian(E, [x, y]) * g
    assert sp.latex(-g) in tex and r"-\frac{1}{2} H g" in tex
    assert sp.simplify(mf.terms[1] + Hg / 2) == sp.zeros(2, 1)
    assert sp.latex(mf.terms[1]) in tex
    IPython = pytest.importorskip("IPython")
    data, _ = IPython.core.formatters.DisplayFormatter().format(mf)
    assert data["text/latex"] == f"$${tex}$$"
    assert "ModifiedField(" in data["text/plain"]


def test_compile_backends_agree_on_a_tanh_net():
    """ModifiedField.compile() (backend "auto": symengine's LLVM for float64 when installed) and
    compile(backend="numba") give the same field, float64 and complex128, single points and batches: the compile-time
    optimisation of issue #12 does not change values."""
    a0, a1, w0, w1 = sp.symbols("a0 a1 w0 w1")
    E = sum((a0 * sp.tanh(w0 * xi) + a1 * sp.tanh(w1 * xi) - sp.sin(xi)) ** 2 for xi in (sp.Rational(1, 3), -1, 2)) / 3
    mf = modified_field(E, [a0, a1, w0, w1], order=2)
    numba_k = mf.compile(backend="numba")
    rng = np.random.default_rng(11)
    for kern in (mf.compile(), mf.compile(backend="llvm")):
        for _ in range(4):
            th = rng.normal(size=4)
            np.testing.assert_allclose(kern(th, 0.2), numba_k(th, 0.2), rtol=1e-12)
            np.testing.assert_allclose(kern(th + 0.05j, 0.2), numba_k(th + 0.05j, 0.2), rtol=1e-12)
        pts = rng.normal(size=(5, 4))
        np.testing.assert_allclose(kern.batch(pts, 0.1), numba_k.batch(pts, 0.1), rtol=1e-12)
