"""bea.torch.certify: the same Certificate as the numpy path, agreement with bea.certify on a loss
written in both, bound ≥ distance on a small network, the not-certified verdicts and bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)
F64 = torch.float64


def poly(t):
    return t[0] ** 4 / 4 + t[0] * t[1] + t[1] ** 2 + 0.1 * t[0] ** 2 * t[1] ** 2


@pytest.fixture(scope="module")
def poly_certificates():
    ncert = pytest.importorskip("bea.certify")
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    E = x**4 / 4 + x * y + y**2 + sp.Rational(1, 10) * x**2 * y**2
    th0, h, steps = [0.8, -0.5], 0.05, 60
    ref = ncert.certify(E, [x, y], th0, h, steps)
    got = bt.certify(poly, torch.tensor(th0, dtype=F64), h, steps)
    return ref, got


def test_returns_the_numpy_certificate_type(poly_certificates):
    from bea.certify import Certificate

    ref, got = poly_certificates
    assert type(got) is Certificate
    assert got.rigorous is False and got.mode == "discrete"
    for name in ("t", "bound", "distance", "lambda_min", "lambda_max", "local_error"):
        assert isinstance(getattr(got, name), np.ndarray) and getattr(got, name).shape == (61,)
    assert "CERTIFIED" in got.summary()


def test_agrees_with_numpy_path(poly_certificates):
    ref, got = poly_certificates
    assert ref.certified and got.certified
    # the same GD and the same flow (to the integrators' tolerance)
    assert np.allclose(got.distance, ref.distance, rtol=1e-6, atol=1e-12)
    # Lanczos eigenvalues at the flow points vs ball-arithmetic enclosures of the same spectrum
    assert np.allclose(got.lambda_min[:-1], ref.lambda_min[:-1], rtol=1e-6)
    assert np.allclose(got.lambda_max[:-1], ref.lambda_max[:-1], rtol=1e-6)
    # the same recursion with estimated (×2 safety) instead of enclosed M: a bound of the same size
    assert np.all(got.bound >= got.distance)
    assert np.all(got.bound <= 2.0 * ref.bound + 1e-10)
    assert np.all(got.bound[1:] >= 0.8 * ref.bound[1:])


def small_tanh_net(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    X = torch.randn(32, 4, dtype=F64)
    y = torch.randint(0, 3, (32,))
    return bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y)


def test_bound_dominates_distance_on_small_mlp():
    f, th = small_tanh_net()
    cert = bt.certify(f, th, 0.2, 40)
    assert cert.certified, cert.reason
    assert np.all(cert.bound >= cert.distance)
    assert cert.distance[-1] > 0
    assert cert.ratio < 20
    assert cert.info["n_hvp"] > 0 and cert.tube_radius > 0
    # the numbers it is made of are consistent with a direct spectrum at θ0
    dense = torch.linalg.eigvalsh(bt.linalg.hessian(f, th))
    assert cert.lambda_min[0] <= float(dense[0]) + 1e-8
    assert cert.lambda_max[0] >= float(dense[-1]) - 1e-8


def test_sparse_spectra_are_still_a_bound():
    f, th = small_tanh_net(1)
    every = bt.certify(f, th, 0.2, 30, spectrum_every=1, lanczos_tol=1e-8)
    sparse = bt.certify(f, th, 0.2, 30, spectrum_every=10, lanczos_tol=1e-8)
    assert sparse.certified
    # Weyl-widened between decomposed points (both Lanczos runs to 1e-8 relative residuals)
    tol = 1e-7 * np.max(np.abs(every.lambda_max))
    assert np.all(sparse.lambda_min <= every.lambda_min + tol)
    assert np.all(sparse.lambda_max >= every.lambda_max - tol)
    assert np.all(sparse.bound >= every.bound * (1 - 1e-6))
    assert np.all(sparse.bound >= sparse.distance)


def test_not_certified_beyond_stability_limit():
    def quad(t):
        return t[0] ** 2 + 0.01 * t[1] ** 2

    cert = bt.certify(quad, torch.tensor([-0.35, -0.2], dtype=F64), 1.05, 5)
    assert not cert.certified
    assert "stability limit" in cert.reason


def test_rigorous_mode_is_for_sympy_losses_only():
    with pytest.raises(bea.InvalidInputError, match="sympy"):
        bt.certify(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.1, 3, rigorous=True)
    with pytest.raises(bea.InvalidInputError, match="discrete"):
        bt.certify(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.1, 3, mode="theorem1")
    with pytest.raises(bea.InvalidInputError):
        bt.certify(poly, torch.tensor([0.8, float("nan")], dtype=F64), 0.1, 3)
    with pytest.raises(bea.InvalidInputError, match="spectrum_every"):
        bt.certify(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.1, 3, spectrum_every=0)
