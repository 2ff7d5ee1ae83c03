"""The compiled cores of Iv's product and sum on 1-d arrays (bea.certificates.intervals._mul_vv, _mul_sv,
_scale, _add_vv, _add_sv) against two independent routes: the numpy formulas they replace (bit for
bit, on the 0-d path that still runs them, entry by entry) and exact rational arithmetic
(fractions.Fraction) at the end points."""

from fractions import Fraction

import numpy as np
import pytest

from bea.certificates.intervals import Iv

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.1, -2.5, 1e308, -1e308, 5e-324, np.inf, -np.inf, 3.0, -7.25]


def _boxes(seed, n=60):
    rng = np.random.default_rng(seed)
    a = rng.choice(SPECIAL + list(rng.normal(size=20) * 10.0 ** rng.integers(-5, 5, size=20)), size=(n, 2))
    lo, hi = np.minimum(a[:, 0], a[:, 1]), np.maximum(a[:, 0], a[:, 1])
    return lo, hi


def _pointwise(op, alo, ahi, blo, bhi):
    """op on 0-d intervals entry by entry: the numpy route (0-d operands never take the compiled path)."""
    out = [op(Iv(alo[i], ahi[i]), Iv(blo[i], bhi[i])) for i in range(alo.size)]
    return np.array([float(v.lo) for v in out]), np.array([float(v.hi) for v in out])



@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("op", ["mul", "add"])
def test_compiled_array_ops_equal_the_numpy_formulas_bit_for_bit(seed, op):
    """Protects the equivalence of the compiled 1-d product / sum with the numpy formulas (same
    products, NaN propagation, one-ulp outward rounding): array op == entrywise 0-d op."""
    f = (lambda u, v: u * v) if op == "mul" else (lambda u, v: u + v)
    alo, ahi = _boxes(seed)
    blo, bhi = _boxes(seed + 10)
    got = f(Iv(alo, ahi), Iv(blo, bhi))
    want = _pointwise(f, alo, ahi, blo, bhi)
    assert np.array_equal(got.lo, want[0], equal_nan=True) and np.array_equal(got.hi, want[1], equal_nan=True)
    # scalar interval with an array (both orders) and a constant
    for j in range(5):
        s = Iv(blo[j], bhi[j])
        for got in (f(s, Iv(alo, ahi)), f(Iv(alo, ahi), s)):
            want = _pointwise(f, np.full_like(alo, blo[j]), np.full_like(alo, bhi[j]), alo, ahi)
            assert np.array_equal(got.lo, want[0], equal_nan=True) and np.array_equal(got.hi, want[1], equal_nan=True)
    for c in (-3, 2.5, -0.1, 7):
        got = f(Iv(alo, ahi), c)
        want = [f(Iv(alo[i], ahi[i]), c) for i in range(alo.size)]
        assert np.array_equal(got.lo, [float(w.lo) for w in want], equal_nan=True)
        assert np.array_equal(got.hi, [float(w.hi) for w in want], equal_nan=True)


@pytest.mark.parametrize("seed", [3, 4])
def test_compiled_array_ops_enclose_exact_products_and_sums(seed):
    """Protects the soundness of the compiled 1-d product / sum: for finite end points, every exact
    rational product / sum of end points (the extremes: corners of the box) lies in the result,
    and so does the exact product with a constant; non-finite or NaN ends are left to sanitize."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(50, 2)) * 10.0 ** rng.integers(-3, 3, size=(50, 2))
    b = rng.normal(size=(50, 2))
    A = Iv(a.min(axis=1), a.max(axis=1))
    B = Iv(b.min(axis=1), b.max(axis=1))
    P, S, C = A * B, A + B, A * -3
    s0 = Iv(float(b[0].min()), float(b[0].max()))
    P0 = s0 * A
    for i in range(50):
        for x in (A.lo[i], A.hi[i]):
            fx = Fraction(float(x))
            assert Fraction(float(C.lo[i])) <= fx * -3 <= Fraction(float(C.hi[i]))
            for y in (B.lo[i], B.hi[i]):
                fy = Fraction(float(y))
                assert Fraction(float(P.lo[i])) <= fx * fy <= Fraction(float(P.hi[i]))
                assert Fraction(float(S.lo[i])) <= fx + fy <= Fraction(float(S.hi[i]))
                assert Fraction(float(S.lo[i])) < Fraction(float(S.hi[i]))
            for y in (s0.lo, s0.hi):
                assert Fraction(float(P0.lo[i])) <= fx * Fraction(float(y)) <= Fraction(float(P0.hi[i]))


def test_compiled_ops_accept_views_and_read_only_arrays():
    """Protects the compiled path on strided and read-only inputs (slices of a batch, broadcast
    views): the same end points as on contiguous copies."""
    lo = np.linspace(-2, 3, 40).reshape(20, 2)
    hi = lo + 0.5
    a = Iv(lo[:, 0], hi[:, 0])  # strided
    b = Iv(np.broadcast_to(np.array(0.25), (20,)), np.broadcast_to(np.array(1.5), (20,)))  # read-only
    ac = Iv(lo[:, 0].copy(), hi[:, 0].copy())
    bc = Iv(np.full(20, 0.25), np.full(20, 1.5))
    for f in (lambda u, v: u * v, lambda u, v: u + v):
        g, w = f(a, b), f(ac, bc)
        assert np.array_equal(g.lo, w.lo) and np.array_equal(g.hi, w.hi)


def test_round_out_equals_nextafter_bit_for_bit():
    """Protects the one-ulp outward rounding of the compiled cores (_round_out, which steps the
    IEEE bit pattern) against np.nextafter itself: signed zeros, subnormals, the normal/subnormal
    border, the largest float, ±inf, NaN and random floats over the whole exponent range."""
    from bea.certificates.intervals import _round_out

    big, tiny = np.finfo(float).max, np.finfo(float).tiny
    special = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-323, tiny, -tiny, np.nextafter(tiny, 0), 1.0, -1.0,
                        big, -big, np.inf, -np.inf, np.nan])
    rng = np.random.default_rng(7)
    x = np.concatenate([special, rng.normal(size=4000) * 10.0 ** rng.integers(-320, 308, size=4000)])
    lo, hi = x.copy(), x.copy()
    _round_out(lo, hi)
    with np.errstate(over="ignore"):
        want_lo, want_hi = np.nextafter(x, -np.inf), np.nextafter(x, np.inf)
    fin = ~np.isnan(x)
    assert np.array_equal(lo[fin].view(np.int64), want_lo[fin].view(np.int64))
    assert np.array_equal(hi[fin].view(np.int64), want_hi[fin].view(np.int64))
    assert np.all(np.isnan(lo[~fin])) and np.all(np.isnan(hi[~fin]))
