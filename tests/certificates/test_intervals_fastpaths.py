"""The fast paths of bea.certificates.intervals (#11, speed) against the plain routes they replaced.

* ``BoxLoss._stacked`` (one kernel call, outputs written into one array, one sanitize pass) against
  ``stack`` of the per-output list ``IntervalKernel.__call__`` returns (each output sanitized);
* the cached index arrays and multiplicities of ``BoxLoss`` against their direct construction;
* the errstate skip inside kernels: numpy's warnings stay off inside a kernel and on outside it,
  and the per-thread depth counter is back to 0 after a kernel, also after one that raised.
"""

from __future__ import annotations

import threading
import warnings
from itertools import combinations_with_replacement

import numpy as np
import pytest
import sympy as sp

import bea.certificates.intervals as I
from bea.errors import InvalidLossError
from bea.certificates.intervals import Iv, box_loss, stack, t3_multiplicities
from bea.compile.loss import compile_loss

x, y, z = sp.symbols("x y z")

LOSSES = [
    ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, [x, y]),
    (sp.log(1 + sp.exp(x - y)) + sp.sqrt(1 + x**2) + sp.cos(z) * y + sp.Rational(1, 3) * z**4, [x, y, z]),
    (x**2 / 2 - y**2 / 2 + y**4 / 4, [x, y]),
    (sp.log(x) + sp.asin(y), [x, y]),  # undefined on part of the boxes below: NaN -> whole line
]


def _boxes(n, rng):
    c = rng.normal(size=(7, n)) * 3
    r = np.abs(rng.normal(size=(7, n)))
    r[0] = 0.0  # point boxes
    lo, hi = c - r, c + r
    lo[1, 0], hi[2, -1] = -np.inf, np.inf  # unbounded boxes
    lo[3], hi[3] = 1e200, 1e300  # overflow
    return Iv(lo, hi)


def _bits_equal(a: Iv, b: Iv):
    assert a.shape == b.shape
    for u, v in ((a.lo, b.lo), (a.hi, b.hi)):
        u, v = np.ascontiguousarray(u, dtype=float), np.ascontiguousarray(v, dtype=float)
        assert np.array_equal(u.view(np.uint64), v.view(np.uint64)), (u, v)


@pytest.mark.parametrize("k", range(len(LOSSES)))
@pytest.mark.parametrize("name", ["grad", "hess", "hg", "dhg", "t3"])
def test_stacked_kernel_outputs_equal_the_stacked_list_bit_for_bit(k, name):
    """Property: the one-pass stacked evaluation gives exactly (bit for bit, NaN ends written as
    the whole line) the intervals of stacking the list of separately sanitized kernel outputs, for
    finite, unbounded, overflowing and out-of-domain boxes, with no numpy warning."""
    E, params = LOSSES[k]
    bl = box_loss(compile_loss(E, params))
    boxes = _boxes(len(params), np.random.default_rng(k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = bl._stacked(name, boxes)
        ref = stack(bl._eval(name, boxes), axis=-1)
    _bits_equal(fast, ref)
    assert not np.isnan(fast.lo).any() and not np.isnan(fast.hi).any()
    assert I._QUIET.depth == 0


def test_cached_indices_equal_their_direct_construction():
    """Property: the index arrays BoxLoss caches (Hessian upper triangle, the symmetric ∇³E tensor,
    the multiplicities of the stored entries) equal a direct construction from the index tuples,
    and hess / t3_tensor built from them are symmetric and read the right stored entries."""
    for n in (1, 2, 3, 5):
        ps = sp.symbols(f"q0:{n}")
        bl = box_loss(compile_loss(sum((i + 1) * p**3 for i, p in enumerate(ps)) + sp.Mul(*ps), list(ps)))
        tri = [(i, j) for i in range(n) for j in range(i, n)]
        H = bl._indices("hess")
        for i in range(n):
            for j in range(n):
                assert tri[H[i, j]] == tuple(sorted((i, j)))
        trip = list(combinations_with_replacement(range(n), 3))
        T = bl._indices("t3")
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    assert trip[T[i, j, k]] == tuple(sorted((i, j, k)))
        mult = bl._indices("mult")
        assert list(mult) == t3_multiplicities(n) and mult.sum() == n**3


def test_warnings_stay_off_inside_kernels_and_on_outside():
    """Property: skipping np.errstate inside a kernel changes no value and leaks no warning; outside
    a kernel the operations still suppress their own deliberate inf/NaN warnings (the depth counter
    is 0 there), and a kernel that raises leaves the counter at 0."""
    big = Iv(np.array([1e300, -1e300]), np.array([1e300, 1e300]))
    inf = Iv(np.array([0.0, -np.inf]), np.array([np.inf, np.inf]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = big * big  # overflow -> inf end points, no warning
        q = (inf * Iv(np.array([0.0, 0.0]), np.array([1.0, 0.0]))).sanitize()  # 0·inf -> whole line
    assert np.all(p.hi == np.inf) and p.lo[1] == -np.inf
    assert q.lo[0] == -np.inf and q.hi[0] == np.inf
    kern = I.interval_kernel([sp.atan2(x, y)], [x, y])
    with pytest.raises(InvalidLossError):
        kern(Iv(1.0), Iv(2.0))
    assert I._QUIET.depth == 0
    # outside a kernel numpy warns as usual for a plain operation (the counter did not stay up)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            np.array([1e300]) * np.array([1e300])


def test_the_kernel_depth_counter_is_per_thread():
    """Property: a kernel running in one thread does not switch the errstate off for Iv operations
    in another thread (the counter is thread-local)."""
    seen = []
    start, done = threading.Event(), threading.Event()

    def slow(a):
        start.set()
        done.wait(5)
        return a

    kern = I.interval_kernel([x], [x])
    old = kern._fn
    kern._fn = lambda *v: [slow(v[0])]
    try:
        t = threading.Thread(target=lambda: kern(Iv(1.0)))
        t.start()
        start.wait(5)
        seen.append(I._QUIET.depth)
        done.set()
        t.join()
    finally:
        kern._fn = old
    assert seen == [0] and I._QUIET.depth == 0
