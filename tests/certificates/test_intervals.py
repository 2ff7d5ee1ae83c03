"""bea.certificates.intervals: interval arithmetic on numpy arrays (the batched twin of bea.certificates.rigorous).

Every enclosure is checked against an independent exact or high-precision computation (Fractions,
mpmath) at points of the intervals: an enclosure that misses a point is a bug, however small.
"""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bea.certificates.intervals import (
    Iv,
    eig_bounds,
    eigenbases,
    interval_kernel,
    mr_matmul,
    norm_upper,
    similar,
)

x, y = sp.symbols("x y")

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def _contains(iv: Iv, i, value) -> bool:
    """Whether entry i of iv contains the exact (Fraction or mpmath) value (a NaN end point means
    nothing is known: the whole line, as documented)."""
    lo, hi = float(np.ravel(iv.lo)[i]), float(np.ravel(iv.hi)[i])
    if np.isnan(lo) or np.isnan(hi):
        return True
    if isinstance(value, Fraction):
        return (lo == -np.inf or Fraction(lo) <= value) and (hi == np.inf or value <= Fraction(hi))
    with mp.workdps(60):
        return mp.mpf(lo) <= value <= mp.mpf(hi)


@st.composite
def intervals(draw, size=8):
    a = np.array(draw(st.lists(finite, min_size=size, max_size=size)))
    w = np.array(draw(st.lists(st.sampled_from([0.0, 1e-12, 1e-3, 0.5, 10.0]), min_size=size, max_size=size)))
    return Iv(a, a + w)


@settings(max_examples=40)
@given(a=intervals(), b=intervals(), t=st.floats(0, 1), s=st.floats(0, 1))
def test_arithmetic_encloses_exact_results_at_points(a, b, t, s):
    """Protects the outward rounding of +, −, ×, ÷: at points p ∈ a, q ∈ b, the exact rational p∘q
    lies in the computed interval."""
    for i in range(a.lo.size):
        p = Fraction(float(a.lo[i])) + (Fraction(float(a.hi[i])) - Fraction(float(a.lo[i]))) * Fraction(t)
        q = Fraction(float(b.lo[i])) + (Fraction(float(b.hi[i])) - Fraction(float(b.lo[i]))) * Fraction(s)
        assert _contains(a + b, i, p + q)
        assert _contains(a - b, i, p - q)
        assert _contains(a * b, i, p * q)
        assert _contains(a * -3, i, p * -3) and _contains(2 - a, i, 2 - p)
        if not (b.lo[i] <= 0 <= b.hi[i]):
            assert _contains(a / b, i, p / q)
        for k in (2, 3, 4):
            assert _contains(a**k, i, p**k)


def test_even_power_of_an_interval_around_zero_contains_zero():
    """Protects x² over [−1, 2]: the range is [0, 4], not [1, 4]."""
    v = Iv(np.array([-1.0]), np.array([2.0])) ** 2
    assert v.lo[0] <= 0.0 and v.hi[0] >= 4.0


EXPRS = [
    x**2 * y - sp.Rational(1, 3) * y**3 + sp.Float("0.1") * x,
    sp.exp(-x * y) + sp.sin(x) * sp.cos(y) + sp.atan(x - y),
    sp.sqrt(x**2 + y**2 + 1) + (x**2 + 1) ** sp.Rational(-3, 2) + (y**2 + 2) ** sp.Rational(1, 3),
    sp.log(1 + x**2) + sp.tanh(y) + sp.sinh(x) / 3 + sp.cosh(y) * sp.pi,
    sp.erf(x) + sp.E * y + sp.tan(x / 3),
    1 / (x**2 + y**2 + 1) ** 2 + x**7 - y**6 + sp.sqrt(x**2 + y**2),
]


@pytest.mark.parametrize("backend", ["float", "arb"])
@pytest.mark.parametrize("expr", EXPRS, ids=range(len(EXPRS)))
@settings(max_examples=6)
@given(seed=st.integers(0, 10**6))
def test_kernel_encloses_the_value_at_points_of_every_box(backend, expr, seed):
    """Protects interval_kernel (both backends): over a batch of boxes of widths 0 to 0.6, the value
    of the expression (mpmath, 50 digits) at points of each box lies in its interval."""
    rng = np.random.default_rng(seed)
    K = 24
    c = rng.uniform(-1.5, 1.5, (K, 2))
    r = rng.choice([0.0, 1e-9, 1e-3, 0.3], K)
    X, Y = Iv.ball(c[:, 0], r), Iv.ball(c[:, 1], r)
    val = interval_kernel([expr], [x, y], backend)(X, Y)[0]
    f = sp.lambdify((x, y), expr, "mpmath")
    for k in range(K):
        for u in rng.uniform(-1, 1, (3, 2)):
            q = c[k] + u * r[k]
            with mp.workdps(50):
                assert _contains(val, k, f(mp.mpf(q[0]), mp.mpf(q[1]))), (expr, c[k], r[k], q)


@settings(max_examples=20)
@given(n=st.integers(1, 5), seed=st.integers(0, 10**6), rad=st.sampled_from([0.0, 1e-12, 1e-4, 0.1]))
def test_batched_eig_bounds_enclose_the_spectrum_of_members(n, seed, rad):
    """Protects eig_bounds (Gershgorin after a congruence, Ostrowski): the spectra of random
    symmetric members of each interval matrix of a batch lie in its bounds, which are tight for
    point matrices."""
    rng = np.random.default_rng(seed)
    K = 6
    A = rng.normal(size=(K, n, n)) * 3
    A = (A + np.swapaxes(A, 1, 2)) / 2
    lo, hi = eig_bounds(Iv.ball(A, rad))
    for k in range(K):
        for _ in range(5):
            D = rng.uniform(-rad, rad, size=(n, n))
            w = np.linalg.eigvalsh(A[k] + (D + D.T) / 2)
            assert lo[k] <= w[0] + 1e-12 * (1 + abs(w[0])) and w[-1] - 1e-12 * (1 + abs(w[-1])) <= hi[k]
        if rad == 0:
            w = np.linalg.eigvalsh(A[k])
            assert w[0] - lo[k] < 1e-10 * (1 + np.abs(w).max()) and hi[k] - w[-1] < 1e-10 * (1 + np.abs(w).max())


@settings(max_examples=10)
@given(n=st.integers(2, 5), seed=st.integers(0, 10**6))
def test_eigenbases_enclose_the_inverse(n, seed):
    """Protects Eigenbases: the exact inverse of the float basis Q (mpmath, 50 digits) lies within κ of
    Qᵀ entrywise, and ‖Q‖, ‖Q⁻¹‖ and the row norms of Q⁻¹ are bounded as claimed."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(1, n, n))
    A = (A + np.swapaxes(A, 1, 2)) / 2
    b = eigenbases(Iv(A))
    Q = b.Q[0]
    with mp.workdps(50):
        inv = mp.matrix(Q.tolist()) ** -1
        dev = max(abs(inv[i, j] - mp.mpf(Q[j, i])) for i in range(n) for j in range(n))
        assert dev <= b.kappa[0]
        rows = [mp.sqrt(sum(inv[i, j] ** 2 for j in range(n))) for i in range(n)]
        assert all(r <= b.inv_rows[0][i] for i, r in enumerate(rows))
    s = np.linalg.svd(Q, compute_uv=False)
    assert s.max() <= b.norm[0] and 1 / s.min() <= b.inv_norm[0]


@settings(max_examples=15)
@given(n=st.integers(1, 4), seed=st.integers(0, 10**6), rad=st.sampled_from([0.0, 1e-8, 0.1]))
def test_midpoint_radius_products_enclose_products_of_members(n, seed, rad):
    """Protects mr_matmul and similar: the exact product (Fractions) of members of interval matrices
    lies in the midpoint–radius enclosure."""
    rng = np.random.default_rng(seed)
    Am, Bm = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    Ar, Br = np.full((n, n), rad), np.full((n, n), rad / 2)
    C, R = mr_matmul(Am, Ar, Bm, Br)
    for _ in range(3):
        A = Am + rng.uniform(-1, 1, (n, n)) * Ar
        B = Bm + rng.uniform(-1, 1, (n, n)) * Br
        for i in range(n):
            for j in range(n):
                exact = sum(Fraction(float(A[i, l])) * Fraction(float(B[l, j])) for l in range(n))
                assert abs(exact - Fraction(float(C[i, j]))) <= Fraction(float(R[i, j]))
    basis = eigenbases(Iv((Am + Am.T)[None] / 2))
    S, SR = similar(basis, Bm[None], Br[None], right=basis.Q)
    with mp.workdps(50):
        Qi = mp.matrix(basis.Q[0].tolist()) ** -1
        exact = Qi * mp.matrix(Bm.tolist()) * mp.matrix(basis.Q[0].tolist())
        for i in range(n):
            for j in range(n):
                assert abs(exact[i, j] - mp.mpf(S[0, i, j])) <= SR[0, i, j]


@settings(max_examples=20)
@given(v=st.lists(finite, min_size=1, max_size=6))
def test_norm_upper_bounds_the_exact_norm_and_keeps_zero(v):
    """Protects norm_upper: ≥ the exact Euclidean norm (Fractions, then a rational square root
    bound), and exactly 0 for the zero vector (so M ≤ 0 prints as 0 on quadratics)."""
    got = float(norm_upper(np.array(v)))
    exact_sq = sum(Fraction(t) ** 2 for t in v)
    assert Fraction(got) ** 2 >= exact_sq
    assert norm_upper(np.zeros(3)) == 0.0
    assert norm_upper(Iv(np.zeros((2, 3)))).tolist() == [0.0, 0.0]
