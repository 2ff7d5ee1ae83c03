"""Guards of bea.certify written to kill mutations of ``tools/mutations.py``: certificates whose
soundness hinges on a single ingredient of the recursion, each checked against a distance known in
closed form (not the certificate's own reference flow)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from bea.certify import certify

z = sp.Symbol("z")


@pytest.mark.parametrize("steps", [60, 200])
def test_bound_covers_float_gd_that_rounds_to_no_move(steps):
    """E = z²/2 from z0 = 1.5 with h = 6e-17: every exact GD step moves by h·z ≈ 0.45 ulp, so the
    float iterate never moves, and the whole distance to the flow, 1.5(1 − e^{−kh}), is rounding of
    the float GD steps — the ε_k term of the recursion.  The bound must still cover it."""
    h = 6.0e-17
    assert 1.5 - h * 1.5 == 1.5  # the premise: float GD stands still
    cert = certify(z**2 / 2, [z], [1.5], h, steps, atol=1e-20)
    assert cert.certified, cert.reason
    k = np.arange(steps + 1)
    exact = -1.5 * np.expm1(-k * h)  # |θ̂_k − θ(kh)| with θ̂_k = 1.5 for every k
    assert np.all(cert.bound >= exact)
