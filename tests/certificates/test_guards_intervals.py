"""Guards of bea.certificates.intervals written to kill mutations of ``tools/mutations.py``: the enclosure
property at the members that attain the extremes (random members rarely do), each against exact
rational arithmetic (``fractions.Fraction`` of the float inputs)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from bea.certificates.intervals import Iv, mr_matmul


def _contains(iv: Iv, exact) -> bool:
    return bool(Fraction(float(iv.lo)) <= exact <= Fraction(float(iv.hi)))


def test_sum_is_rounded_outwards():
    """[0.1] + [0.2] must contain the exact sum of the two doubles, which no double equals."""
    exact = Fraction(0.1) + Fraction(0.2)
    s = Iv(0.1) + Iv(0.2)
    assert _contains(s, exact) and float(s.lo) < float(s.hi)
    d = Iv(0.3) - Iv(0.1)
    assert _contains(d, Fraction(0.3) - Fraction(0.1))


@pytest.mark.parametrize("a,b", [((-1.0, 2.0), (-3.0, 1.0)), ((-2.0, -1.0), (0.5, 4.0)), ((-1.5, 0.5), (-2.0, -0.25))])
def test_product_attains_every_sign_combination(a, b):
    """[a]·[b] contains the product of every pair of end points (the extremes of x·y on a box are at
    its corners, with mixed signs any of the four)."""
    p = Iv(*a) * Iv(*b)
    for x in a:
        for y in b:
            assert _contains(p, Fraction(x) * Fraction(y))
    assert float(p.lo) <= float(p.hi)


@pytest.mark.parametrize("c", [-3.0, -0.1, 2.5])
def test_product_with_a_constant_keeps_the_order_of_the_end_points(c):
    """[1, 2]·c is [2c, c] for c < 0 and [c, 2c] for c > 0: a proper interval containing both."""
    p = Iv(1.0, 2.0) * c
    assert float(p.lo) <= float(p.hi)
    for x in (1.0, 2.0):
        assert _contains(p, Fraction(x) * Fraction(c))


@pytest.mark.parametrize("seed", [0, 1])
def test_midpoint_radius_product_holds_the_extreme_members(seed):
    """For C ± R = (Am ± Ar)(Bm ± Br) and each entry (i, j), the members A = Am + sign·Ar,
    B = Bm + sign·Br whose signs follow the signs of the midpoints (nearly) attain the extremes of
    (AB)_ij; their exact products (Fractions) must lie in C_ij ± R_ij."""
    rng = np.random.default_rng(seed)
    n = 3
    Am, Bm = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    Ar, Br = 0.1 * rng.random((n, n)), 0.1 * rng.random((n, n))
    for A_rad, B_rad in ((None, Br), (Ar, None), (Ar, Br)):
        C, R = mr_matmul(Am, A_rad, Bm, B_rad)
        for i in range(n):
            for j in range(n):
                for sgn in (1.0, -1.0):
                    # B's column j pushed along the signs of A's row i (and A's row i along B's column)
                    # (0.999: a member strictly inside, whatever the rounding of the float sum)
                    A = Am.copy() if A_rad is None else Am + sgn * np.sign(Bm[:, j])[None, :] * (0.999 * A_rad)
                    B = Bm.copy() if B_rad is None else Bm + sgn * np.sign(Am[i, :])[:, None] * (0.999 * B_rad)
                    exact = sum(Fraction(A[i, k]) * Fraction(B[k, j]) for k in range(n))
                    lo, hi = Fraction(float(C[i, j])) - Fraction(float(R[i, j])), Fraction(float(C[i, j])) + Fraction(float(R[i, j]))
                    assert lo <= exact <= hi, (A_rad is None, B_rad is None, i, j)
