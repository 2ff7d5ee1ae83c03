"""bea.certificates.rigorous: ball-arithmetic kernels, eigenvalue bounds, a-priori boxes and validated flows.

Every enclosure is checked against an independent computation (numpy / mpmath at high precision) at
points inside the box: an enclosure that misses a point is a bug, however small the miss.
"""

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from flint import arb, arb_series, ctx
from hypothesis import given, settings
from hypothesis import strategies as st

from bea.errors import InvalidLossError
from bea.compile.loss import compile_loss
from bea.certificates.rigorous import (
    arb_kernel,
    eig_basis,
    eig_bounds,
    enclose_gd,
    enclose_gf,
    inflate,
    interval_loss,
    lower,
    make_box,
    norm_upper,
    upper,
)
from bea.testing import integrate_mp
from conftest import ROSEN

x, y, z = sp.symbols("x y z")


def _contains(ball, value) -> bool:
    """Whether the arb ball contains the mpmath/float value (endpoints compared at 45 digits)."""
    with mp.workdps(60):
        v = mp.mpf(value)
        lo = mp.mpf(ball.lower().str(45, radius=False))
        hi = mp.mpf(ball.upper().str(45, radius=False))
        slack = mp.mpf(10) ** -40 * (1 + abs(v))
        return lo - slack <= v <= hi + slack


def _mp_eval(expr, point, dps=50):
    f = sp.lambdify((x, y), expr, "mpmath")
    with mp.workdps(dps):
        return f(*[mp.mpf(float(v)) for v in point])


# ----------------------------------------------------------------------------------- upper / lower


def test_upper_lower_bracket_the_ball():
    b = arb(1) / 3
    assert lower(b) < 1 / 3 < upper(b) or lower(b) <= 1 / 3 <= upper(b)
    assert upper(arb(2)) >= 2.0 and lower(arb(2)) <= 2.0
    assert upper(arb.nan()) == math.inf and lower(arb.nan()) == -math.inf


def test_make_box_and_inflate_contain_the_ball():
    B = inflate(make_box([1.0, -2.0], 0.5), 0.25)
    for b, lo, hi in zip(B, (0.25, -2.75), (1.75, -1.25)):
        assert lower(b) <= lo and upper(b) >= hi
    assert norm_upper(make_box([3.0, 4.0])) >= 5.0


# ----------------------------------------------------------------------------------- kernels

EXPRS = [
    x**2 * y - sp.Rational(1, 3) * y**3 + sp.Float("0.1") * x,
    sp.exp(-x * y) + sp.sin(x) * sp.cos(y) + sp.atan(x - y),
    sp.sqrt(x**2 + y**2 + 1) + (x**2 + 1) ** sp.Rational(-3, 2) + (y**2 + 2) ** sp.Rational(1, 3),
    sp.log(1 + x**2) + sp.tanh(y) + sp.sinh(x) / 3 + sp.cosh(y) * sp.pi,
    sp.erf(x) + sp.E * y + sp.atan2(y + 3, x + 3),
    1 / (x**2 + y**2 + 1) ** 2 + x**7 - y**6,
]


@pytest.mark.parametrize("expr", EXPRS, ids=range(len(EXPRS)))
@settings(max_examples=10)
@given(p=st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)), r=st.sampled_from([0.0, 1e-9, 1e-3, 0.3]),
       u=st.tuples(st.floats(-1, 1), st.floats(-1, 1)))
def test_arb_kernel_encloses_the_value_at_points_of_the_box(expr, p, r, u):
    kern = arb_kernel([expr], [x, y])
    box = make_box(p, r)
    val = kern(*box)[0]
    q = (p[0] + u[0] * r, p[1] + u[1] * r)  # a point of the box
    assert _contains(val, _mp_eval(expr, q)), (expr, p, r, q, val)


def test_integer_power_of_a_ball_around_zero_is_not_nan():
    kern = arb_kernel([x**2 + y**4 + x**3], [x, y])
    v = kern(arb(0, 1e-3), arb(0, 1e-3))[0]
    assert v.is_finite() and upper(v) >= 0 and lower(v) >= -2e-9


def test_arb_kernel_on_power_series_gives_taylor_coefficients():
    kern = arb_kernel([sp.exp(x) * x**2], [x])
    old = ctx.cap
    ctx.cap = 12
    try:
        s = kern(arb_series([arb(0), 1], prec=8))[0]
    finally:
        ctx.cap = old
    # x² eˣ = Σ x^{k+2}/k!
    cs = s.coeffs()
    for k in range(6):
        assert _contains(cs[k + 2], 1 / math.factorial(k))


def test_unsupported_function_is_a_clear_error():
    with pytest.raises(InvalidLossError, match="cannot evaluate"):
        arb_kernel([sp.besselj(0, x)], [x])


# ----------------------------------------------------------------------------------- eigenvalues


@settings(max_examples=25)
@given(n=st.integers(1, 4), seed=st.integers(0, 10**6), rad=st.sampled_from([0.0, 1e-12, 1e-4, 0.1]))
def test_eig_bounds_enclose_the_spectrum_of_members(n, seed, rad):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * 3
    A = (A + A.T) / 2
    H = [[arb(float(A[i, j]), rad) for j in range(n)] for i in range(n)]
    lo, hi = eig_bounds(H)
    for _ in range(5):
        D = rng.uniform(-rad, rad, size=(n, n))
        w = np.linalg.eigvalsh(A + (D + D.T) / 2)
        assert lo <= w[0] + 1e-12 * (1 + abs(w[0])) and w[-1] - 1e-12 * (1 + abs(w[-1])) <= hi
    # tight for a point matrix
    if rad == 0:
        w = np.linalg.eigvalsh(A)
        assert w[0] - lo < 1e-10 * (1 + np.abs(w).max()) and hi - w[-1] < 1e-10 * (1 + np.abs(w).max())


def test_eig_basis_norms_are_near_one():
    H = [[arb(2.0), arb(1.0)], [arb(1.0), arb(3.0)]]
    b = eig_basis(H)
    assert 1.0 <= b.norm < 1 + 1e-12 and 1.0 <= b.inv_norm < 1 + 1e-12
    assert np.all(b.inv_rows < 1 + 1e-12)


# ----------------------------------------------------------------------------------- flows


def _mp_flow(E, params, theta0, ts, dps=30):
    g = sp.lambdify(params, [sp.diff(E, p) for p in params], "mpmath")
    out, prev, t_prev = [], [mp.mpf(float(v)) for v in theta0], 0.0
    with mp.workdps(dps):
        for t in ts:
            if t > t_prev:
                prev = integrate_mp(lambda u: [-v for v in g(*u)], prev, mp.mpf(t) - mp.mpf(t_prev), dps=dps, steps=2)
            out.append(list(prev))
            t_prev = t
    return out


DW = (x**2 - 1) ** 2 / 4 + y**2 / 2 + x * y / 5


@pytest.mark.parametrize("E,theta0,tau", [(ROSEN, [-1.2, 1.0], 2e-4), (DW, [0.1, 1.0], 0.2)])
def test_picard_box_contains_the_flow(E, theta0, tau):
    il = interval_loss(compile_loss(E, [x, y]))
    B, _ = il.picard(make_box(theta0), tau)
    assert B is not None
    ts = np.linspace(0, tau, 6)
    for pt in _mp_flow(E, [x, y], theta0, ts):
        for b, v in zip(B, pt):
            assert lower(b) <= float(v) <= upper(b)


def test_taylor_coefficients_of_linear_flow():
    # E = z²/2: z(t) = z0 e^{-t}, coefficients z0 (−1)^j / j!
    il = interval_loss(compile_loss(z**2 / 2, [z]))
    F = il.taylor(make_box([0.7]), 16)
    for j in range(17):
        assert _contains(F[j][0], 0.7 * (-1) ** j / math.factorial(j))
    assert ctx.cap == 10  # restored


@pytest.mark.parametrize("E,theta0,h,steps", [(ROSEN, [-1.2, 1.0], 2e-4, 30), (DW, [0.1, 1.0], 0.1, 30)])
def test_enclose_gf_contains_the_high_precision_flow(E, theta0, h, steps):
    il = interval_loss(compile_loss(E, [x, y]))
    prec = ctx.prec
    enc = enclose_gf(il, theta0, h, steps)
    assert ctx.prec == prec
    assert enc.n_ok == steps + 1 and enc.reason == ""
    ref = _mp_flow(E, [x, y], theta0, h * np.arange(steps + 1))
    with mp.workdps(30):
        for k in range(steps + 1):
            d = mp.sqrt(sum((mp.mpf(float(c)) - v) ** 2 for c, v in zip(enc.centers[k], ref[k])))
            assert d <= enc.radii[k], (k, d, enc.radii[k])
    assert enc.radii[-1] < 1e-11
    # every step box contains the flow at the step's end points
    for k in range(steps):
        pts = [ref[k], ref[k + 1]]
        for pt in pts:
            assert any(all(lower(b) <= float(v) <= upper(b) for b, v in zip(B, pt)) for B in enc.step_boxes[k])


def test_enclose_gd_contains_exact_gradient_descent():
    E, theta0, h, steps = DW, [0.1, 1.0], 0.3, 20
    il = interval_loss(compile_loss(E, [x, y]))
    c, r, n_ok = enclose_gd(il, theta0, h, steps)
    assert n_ok == steps + 1
    g = sp.lambdify((x, y), [sp.diff(E, x), sp.diff(E, y)], "mpmath")
    with mp.workdps(40):
        th = [mp.mpf(v) for v in theta0]
        for k in range(steps + 1):
            d = mp.sqrt(sum((mp.mpf(float(a)) - b) ** 2 for a, b in zip(c[k], th)))
            assert d <= r[k]
            gk = g(*th)
            th = [a - mp.mpf(h) * b for a, b in zip(th, gk)]
    assert r[-1] < 1e-13


def test_enclose_gf_reports_a_blow_up():
    # θ̇ = 4θ³ blows up at t = 1/(8θ0²) = 0.125
    il = interval_loss(compile_loss(-(z**4), [z]))
    enc = enclose_gf(il, [1.0], 0.05, 5, max_substeps=64)
    assert enc.n_ok <= 3 and enc.reason and enc.t_fail <= 0.125


def test_integer_power_of_a_wide_ball_is_tight_and_invertible():
    # arb's own ** multiplies without dependency: (3 ± 1.38)^2 -> 9 ± 10.2 contains 0, so 1/x^2 = nan
    kern = arb_kernel([1 / (x**2 + y**2 + 1) ** 2], [x, y])
    (val,) = kern(*make_box((1.0, 1.0), 0.3))
    lo, hi = 1 / (1 + 2 * 1.3**2) ** 2, 1 / (1 + 2 * 0.7**2) ** 2
    assert lower(val) <= lo and upper(val) >= hi
    assert upper(val) < 2 * hi and lower(val) > lo / 2


# ----------------------------------------------------------------------------------- issue #17 guards

XYZ = sp.symbols("x y z")


def _box_samples(center, radius, count, seed):
    """The corners of the box center ± radius and random points inside it."""
    rng = np.random.default_rng(seed)
    c = np.asarray(center, dtype=float)
    n = c.size
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * n)).reshape(n, -1).T
    inside = rng.uniform(-1.0, 1.0, size=(count, n))
    return c + radius * np.concatenate([corners, inside])


@pytest.mark.parametrize("backend", ["arb", "intervals"])
@pytest.mark.parametrize(
    "E,center,radius",
    [
        # H = [[1, z, y], [z, 1, x], [y, x, 0]] at the origin: the midpoint is diagonal, the spread of the
        # spectrum over the box comes from the off-diagonal entries alone (Gershgorin's radius R)
        ((XYZ[0] ** 2 + XYZ[1] ** 2) / 2 + XYZ[0] * XYZ[1] * XYZ[2], [0.0, 0.0, 0.0], 0.1),
        (XYZ[0] ** 4 / 4 - XYZ[0] ** 2 / 2 + XYZ[0] * XYZ[1] * XYZ[2] + XYZ[1] ** 3 / 3 + XYZ[2] ** 2, [0.3, -0.2, 0.5], 0.05),
    ],
)
def test_eig_bounds_enclose_a_brute_force_spectrum_over_the_box(backend, E, center, radius):
    """Protects the Gershgorin enclosure of the spectrum of an interval Hessian (lower end d − R, upper
    d + R; issue #17): over the box, λ_min and λ_max of H at its corners and 400 random points
    (numpy eigvalsh of the float Hessian) lie within the bounds, and the bounds are not vacuous."""
    from bea.certificates.intervals import Iv, box_loss
    from bea.certificates.intervals import eig_bounds as eig_bounds_batch

    loss = compile_loss(E, list(XYZ))
    if backend == "arb":
        lo, hi = eig_bounds(interval_loss(loss).hess(make_box(center, radius)))
    else:
        lo, hi = (float(v[0]) for v in eig_bounds_batch(box_loss(loss).hess(Iv.ball(np.array([center]), radius))))
    Hf = sp.lambdify([list(XYZ)], sp.hessian(E, list(XYZ)), "numpy")
    spec = np.array([np.linalg.eigvalsh(np.array(Hf(p), dtype=float)) for p in _box_samples(center, radius, 400, 1)])
    assert lo <= spec[:, 0].min() and spec[:, -1].max() <= hi
    width = spec[:, -1].max() - spec[:, 0].min()
    assert hi - lo <= 3 * width + 1.0  # tight enough to matter


@pytest.mark.parametrize("backend", ["arb", "intervals"])
def test_t3_norm_matches_the_tensor_built_entry_by_entry(backend):
    """Protects ‖∇³E‖_F (the Hessian-Lipschitz constant of the certificate; issue #17): at a point,
    the bound equals the Frobenius norm of the full n×n×n tensor of third derivatives, every entry
    ∂³E/∂θ_i∂θ_j∂θ_k differentiated by sympy on its own and evaluated in mpmath — so each stored
    entry must count with the number of its index permutations."""
    from bea.certificates.intervals import Iv, box_loss

    x_, y_, z_ = XYZ
    E = x_**2 * y_ * z_ + 3 * x_ * y_**2 + y_ * z_**3 / 2 + sp.sin(x_) * z_**2
    loss = compile_loss(E, list(XYZ))
    point = [0.7, -0.4, 1.3]
    with mp.workdps(40):
        vals = {p: mp.mpf(v) for p, v in zip(XYZ, point)}
        total = mp.mpf(0)
        for i in XYZ:
            for j in XYZ:
                for k in XYZ:
                    total += sp.N(sp.diff(E, i, j, k).subs(vals), 40) ** 2
        exact = float(mp.sqrt(total))
    if backend == "arb":
        got = interval_loss(loss).t3_norm(make_box(point))
    else:
        got = float(box_loss(loss).t3_norm(Iv.ball(np.array([point]), 0.0))[0])
    assert exact <= got <= exact * (1 + 1e-12)
