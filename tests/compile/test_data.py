"""Data losses (bea.compile.data.data_loss, issue #12), each checked against a route that does not loop over data:
the unrolled sympy mean, means of per-sample derivatives built symbolically from their definitions,
and torch autodiff."""

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import bea
from bea import BEAError, InvalidInputError, InvalidLossError, InvalidParamsError, NonSmoothLossError
from bea.compile.data import DataLoss, DataModifiedField, data_loss
from bea.compile.loss import CompiledLoss

w0, w1, b = sp.symbols("w0 w1 b")
x0, x1, y = sp.symbols("x0 x1 y")
PARAMS = [w0, w1, b]
INPUTS = [x0, x1, y]
LOGISTIC = sp.log(1 + sp.exp(-y * (w0 * x0 + w1 * x1 + b)))
POLY = (w0 * x0 + w1 * x1 + b - y) ** 2 / 2 + w0**2 * w1**2 * x0**2 / 4 + b**3 * x1 / 6


def make_data(N, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(size=(N, 2)), np.where(rng.random(N) < 0.5, -1.0, 1.0)])


def unrolled(e, data):
    """(1/N) Σ_i e(θ, x_i) written out, the data as exact rationals (via fractions.Fraction)."""
    rows = []
    for row in data:
        sub = {s: sp.Rational(Fraction(float(v)).numerator, Fraction(float(v)).denominator) for s, v in zip(INPUTS, row)}
        rows.append(e.xreplace(sub))
    return sp.Add(*rows) / len(data)


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------------------- symbolic
def test_expr_is_the_exact_unrolled_mean():
    """DataLoss.expr (used by the interval/rigorous routes) is exactly (1/N) Σ e(θ, x_i) with the float data as
    exact rationals."""
    data = make_data(4)
    dl = data_loss(POLY, PARAMS, INPUTS, data)
    assert sp.expand(dl.expr - unrolled(POLY, data)) == 0


def test_terms_equal_per_sample_means_exactly():
    """terms f_0, f_1, f_2 of a data field equal −g, −½Hg, −(⅓H²g + 1/12 T(g,g)) with g, H, T the exact means of
    the per-sample derivatives (built from their definitions, not from the tree series)."""
    data = make_data(3, seed=1)
    dl = data_loss(POLY, PARAMS, INPUTS, data)
    mf = bea.modified_field(dl, order=2)
    assert isinstance(mf, DataModifiedField)
    E = unrolled(POLY, data)
    g = sp.Matrix([sp.diff(E, p) for p in PARAMS])
    H = sp.Matrix(3, 3, lambda i, j: sp.diff(E, PARAMS[i], PARAMS[j]))
    T = sp.Matrix([sum(sp.diff(E, pi, pj, pk) * g[j] * g[k] for j, pj in enumerate(PARAMS) for k, pk in enumerate(PARAMS))
                   for pi in PARAMS])
    expected = [-g, -H * g / 2, -(H * H * g / 3 + T / 12)]
    for k in range(3):
        assert sp.expand(mf.terms[k] - expected[k]) == sp.zeros(3, 1)
    # and the unrolled route of modified_field gives the same expressions
    ref = bea.modified_field(E, PARAMS, order=2)
    for k in range(3):
        assert sp.expand(mf.terms[k] - ref.terms[k]) == sp.zeros(3, 1)


# ---------------------------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("e", [LOGISTIC, POLY], ids=["logistic", "poly"])
def test_loss_kernels_equal_unrolled_kernels(e):
    """value, g, H (per-sample Hessians summed in the data loop) and T(g, g) of a DataLoss equal the kernels of the
    unrolled sympy mean at random points, float64 and complex128 (the PF's θ)."""
    data = make_data(7, seed=2)
    dl = data_loss(e, PARAMS, INPUTS, data)
    ref = CompiledLoss(unrolled(e, data), PARAMS)
    rng = np.random.default_rng(3)
    for _ in range(3):
        th = rng.normal(size=3) * 0.7
        assert abs(dl.value(th) - ref.value(th)) <= 1e-13 * max(1.0, abs(ref.value(th)))
        for k in ("grad", "hess", "tgg"):
            assert rel(getattr(dl, k)(th), getattr(ref, k)(th)) < 1e-12, k
        thc = th + 0.1j * rng.normal(size=3)
        for k in ("grad", "hess"):
            assert rel(getattr(dl, k)(thc), getattr(ref, k)(thc)) < 1e-12, k
    assert dl.hess(th).shape == (3, 3)


@pytest.mark.parametrize("method", ["gd", "heun"])
@pytest.mark.parametrize("e", [LOGISTIC, POLY], ids=["logistic", "poly"])
def test_field_equals_unrolled_field_numerically(e, method):
    """The data-loop field (tree series over data passes) equals the compiled field of the unrolled sympy mean at
    random θ and h, orders 0..3."""
    data = make_data(6, seed=4)
    dl = data_loss(e, PARAMS, INPUTS, data)
    E = unrolled(e, data)
    rng = np.random.default_rng(5)
    for order in range(4):
        kern = bea.modified_field(dl, order=order, method=method).compile()
        ref = bea.modified_field(E, PARAMS, order=order, method=method).compile()
        for _ in range(2):
            th, h = rng.normal(size=3) * 0.5, float(rng.uniform(0.05, 0.5))
            assert rel(kern(th, h), ref(th, h)) < 1e-12, (order, th, h)


def test_field_matches_torch_autodiff():
    """f̃ at order 3 of a 5-parameter logistic regression on 200 samples equals −g − h/2 Hg − h²(⅓H²g + 1/12 T(g,g))
    − h³(¼H³g + 1/12 HT(g,g) + 1/12 T(g,Hg)) computed by torch.func (HVPs and nested jvps) on the same data."""
    torch = pytest.importorskip("torch")
    from torch.func import grad, jvp

    d, N = 4, 200
    ws = list(sp.symbols(f"v0:{d}"))
    xs = list(sp.symbols(f"u0:{d}"))
    e = sp.log(1 + sp.exp(-y * (sum(a * c for a, c in zip(ws, xs)) + b)))
    rng = np.random.default_rng(6)
    data = np.column_stack([rng.normal(size=(N, d)), np.where(rng.random(N) < 0.5, -1.0, 1.0)])
    dl = data_loss(e, ws + [b], xs + [y], data)
    X, Y = torch.tensor(data[:, :d]), torch.tensor(data[:, d])

    def f(th):
        return torch.nn.functional.softplus(-Y * (X @ th[:d] + th[d])).mean()

    gf = grad(f)

    def hv(th, v):
        return jvp(gf, (th,), (v,))[1]

    def t2(th, u, v):
        return jvp(lambda s: jvp(gf, (s,), (u,))[1], (th,), (v,))[1]

    kern = bea.modified_field(dl, order=3).compile()
    for _ in range(3):
        th_np, h = rng.normal(size=d + 1), 0.4
        th = torch.tensor(th_np)
        g = gf(th)
        Hg, Tgg = hv(th, g), t2(th, g, g)
        H2g = hv(th, Hg)
        ref = -g - h / 2 * Hg - h**2 * (H2g / 3 + Tgg / 12) - h**3 * (hv(th, H2g) / 4 + hv(th, Tgg) / 12 + t2(th, g, Hg) / 12)
        assert rel(kern(th_np, h), ref.numpy()) < 1e-12


def test_kernels_do_not_depend_on_N():
    """The generated per-sample and data-loop sources are identical for 3 and 300 samples (derivation and compile
    time independent of N), and the field is the mean: duplicating every row leaves it unchanged."""
    small, big = make_data(3, seed=7), make_data(300, seed=8)
    a, c = data_loss(LOGISTIC, PARAMS, INPUTS, small), data_loss(LOGISTIC, PARAMS, INPUTS, big)
    ka, kc = bea.modified_field(a, order=2).compile(), bea.modified_field(c, order=2).compile()
    assert ka.driver.source == kc.driver.source
    assert bea.kernel_source(a.per_sample_kernel(2)) == bea.kernel_source(c.per_sample_kernel(2))
    twice = data_loss(LOGISTIC, PARAMS, INPUTS, np.vstack([small, small]))
    th = np.array([0.3, -0.2, 0.1])
    assert rel(bea.modified_field(twice, order=2).compile()(th, 0.3), ka(th, 0.3)) < 1e-14


def test_data_is_copied_and_read_only():
    """The loss keeps its own read-only copy: changing the caller's array afterwards changes nothing."""
    data = make_data(5, seed=9)
    dl = data_loss(LOGISTIC, PARAMS, INPUTS, data)
    th = np.array([0.2, 0.1, -0.3])
    before = dl.grad(th).copy()
    data[:] = 0.0
    assert np.array_equal(dl.grad(th), before)
    with pytest.raises(ValueError):
        dl.data[0, 0] = 1.0


# ---------------------------------------------------------------------------------------------- flows
def test_gd_trajectory_certify_max_step_accept_a_data_loss():
    """gd, trajectory (igr, pf), certify and max_step take a DataLoss where they take a sympy loss and give the
    results of the unrolled loss (GD through the data-loop gradient against the symbolic one; the IGR flow against
    bea.solve_ode on the data-loop field)."""
    import bea.flows

    data = make_data(5, seed=10)
    dl = data_loss(LOGISTIC, PARAMS, INPUTS, data)
    E = unrolled(LOGISTIC, data)
    th0, h = np.array([0.3, -0.2, 0.1]), 0.5
    assert rel(bea.gd(dl, PARAMS, th0, h, 20), bea.gd(E, PARAMS, th0, h, 20)) < 1e-12

    igr = bea.trajectory(dl, PARAMS, th0, h, 10, flow="igr")
    sol = bea.solve_ode(bea.modified_field(dl, order=1).compile(), th0, h * np.arange(11), h, rtol=1e-12, atol=1e-14)
    assert rel(igr, sol.y) < 1e-8

    bea.flows.fields._FIELDS.clear()
    pf_data = bea.trajectory(dl, PARAMS, th0, h, 10, flow="pf")
    bea.flows.fields._FIELDS.clear()
    pf_ref = bea.trajectory(E, PARAMS, th0, h, 10, flow="pf")
    assert rel(pf_data, pf_ref) < 1e-8

    cert = bea.certify(dl, PARAMS, th0, h, 10)
    ref = bea.certify(E, PARAMS, th0, h, 10)
    assert cert.certified == ref.certified
    assert np.allclose(cert.bound, ref.bound, rtol=1e-9)
    ans = bea.max_step(dl, PARAMS, th0, 1.0, 0.05)
    assert ans.certified_step == bea.max_step(E, PARAMS, th0, 1.0, 0.05).certified_step


def test_flows_of_a_data_loss_never_unroll_the_data():
    """trajectory's fields of a DataLoss (every flow) are built from its data-loop kernels: the unrolled
    sympy mean (``expr``) is never built — so their cost is linear in N, not a symbolic expression over
    the data — and each flow equals the flow of the unrolled loss (small N, where that is cheap)."""
    import bea.flows

    data = make_data(6, seed=11)
    th0, h = np.array([0.3, -0.2, 0.1]), 0.5
    E = unrolled(LOGISTIC, data)
    for flow in ("ngf", "igr", "third", "pf", "pf+np", "positive", "flipped"):
        dl = data_loss(LOGISTIC, PARAMS, INPUTS, data)
        bea.flows.fields._FIELDS.clear()
        ours = bea.trajectory(dl, PARAMS, th0, h, 8, flow=flow, rtol=1e-12, atol=1e-14)
        assert "expr" not in vars(dl), f"{flow}: the unrolled mean was built"
        bea.flows.fields._FIELDS.clear()
        ref = bea.trajectory(E, PARAMS, th0, h, 8, flow=flow, rtol=1e-12, atol=1e-14)
        assert rel(ours, ref) < 1e-9, flow


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(data=np.zeros((4, 2))), InvalidInputError, "shape (N, 3)"),
        (dict(data=np.zeros((4, 3, 1))), InvalidInputError, "shape"),
        (dict(data=np.zeros((0, 3))), InvalidInputError, "no rows"),
        (dict(data=np.array([[0.0, 1.0, 1.0], [np.nan, 0.0, 1.0]])), InvalidInputError, "row 1"),
        (dict(data=np.array([[np.inf, 1.0, 1.0]])), InvalidInputError, "finite"),
        (dict(data=[["a", 1, 2]]), InvalidInputError, "real numbers"),
        (dict(inputs=[x0, x1, w0]), InvalidParamsError, "also in params"),
        (dict(inputs=[]), InvalidParamsError, "inputs is empty"),
        (dict(inputs=[x0, x0, y]), InvalidParamsError, "duplicated"),
        (dict(inputs=[x0, 2, y]), InvalidParamsError, "Symbol"),
        (dict(inputs=[x0, y], data=np.zeros((2, 2))), InvalidParamsError, "x1"),
        (dict(per_sample=sp.Abs(w0 * x0 - y) + b * x1 + w1), NonSmoothLossError, "Abs"),
        (dict(per_sample=sp.Matrix([w0, w1])), InvalidLossError, "scalar"),
        (dict(params=[]), InvalidParamsError, "empty"),
    ],
)
def test_bad_input_raises_a_clear_bea_error(kwargs, error, words):
    """Wrong data width/shape, empty or non-finite data, inputs overlapping params, symbols in neither, non-smooth
    or non-scalar per-sample losses raise the matching BEAError subclass naming the problem."""
    args = dict(per_sample=LOGISTIC, params=PARAMS, inputs=INPUTS, data=make_data(3))
    args.update(kwargs)
    with pytest.raises(error) as info:
        data_loss(**args)
    assert isinstance(info.value, BEAError)
    assert words in str(info.value)


def test_one_input_takes_a_vector_and_symbolic_coefficients_are_refused():
    """A single input accepts a 1-D data vector; a series with symbolic coefficients (momentum in m) is refused."""
    w, x = sp.symbols("w x")
    dl = data_loss((w - x) ** 2, [w], [x], np.array([1.0, 2.0, 4.0]))
    assert isinstance(dl, DataLoss) and dl.N == 3
    # E = mean (w - x_i)^2: g = 2(w - 7/3), f_1 = −½ H g = −2(w − 7/3)
    assert rel(bea.modified_field(dl, order=1).compile()(np.array([1.0]), 0.1), [-2 * (1 - 7 / 3) * (1 + 0.1)]) < 1e-14
    m = sp.Symbol("m")
    with pytest.raises(bea.InvalidMethodError, match="symbolic"):
        bea.modified_field(dl, order=1, method=bea.Momentum(m)).compile()
    # a numeric momentum: f_0 = −g/(1 − m) (c(•) = 1/(1 − m)), f_1 from the exact series, vs the unrolled loss
    E = ((w - 1) ** 2 + (w - 2) ** 2 + (w - 4) ** 2) / 3
    for order in (0, 1, 2):
        k = bea.modified_field(dl, order=order, method=bea.Momentum(sp.Rational(1, 2))).compile()
        ref = bea.modified_field(E, [w], order=order, method=bea.Momentum(sp.Rational(1, 2))).compile()
        assert rel(k(np.array([0.7]), 0.2), ref(np.array([0.7]), 0.2)) < 1e-13
