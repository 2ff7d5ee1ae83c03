"""Guards of bea.certificates.tube written to kill mutations of ``tools/mutations.py``: the theorem-1 recursion
against its formula evaluated in 40-digit arithmetic (``bea.certify``'s module docstring and seed 000,
Thm 1 through Lady Windermere's fan), on data where every term counts."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from bea.certificates.tube import Tube, TubeData, theorem1_bound


@pytest.mark.parametrize("lam_neg,L", [(-0.5, 2.0), (0.0, 5.0), (-2.0, 0.0)])
def test_theorem1_recursion_is_its_formula(lam_neg, L):
    """E_{k+1} = γE_k + ℓ_k + (h²/2)·L·γE_k + ε_k with γ = exp(−hλ₋): the computed bound is at least
    the exact value of the recursion and within 1e-12 of it (it only rounds upwards)."""
    h, K = 0.1, 30
    ell = 1e-4 * (1.0 + 0.1 * np.arange(K))
    eps = np.full(K, 1e-12)

    def compute(r, start, stop):
        return TubeData(lam_neg=np.full(stop - start, lam_neg), L=np.full(stop - start, L))

    res = theorem1_bound(h, ell, eps, Tube(compute, r_min=1e-12, K=K))
    assert res.valid == K + 1, res.failure
    with mp.workdps(40):
        H = mp.mpf(h)
        g = mp.exp(-H * mp.mpf(lam_neg))
        E = mp.mpf(0)
        exact = [E]
        for k in range(K):
            E = g * E + mp.mpf(ell[k]) + H**2 / 2 * mp.mpf(L) * g * E + mp.mpf(eps[k])
            exact.append(E)
        for k in range(K + 1):
            assert mp.mpf(res.e[k]) >= exact[k]
            assert mp.mpf(res.e[k]) <= exact[k] * (1 + mp.mpf(1e-12))
