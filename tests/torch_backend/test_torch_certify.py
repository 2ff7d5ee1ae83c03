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
    ncert = pytest.importorskip("bea.certificates.certify")
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    E = x**4 / 4 + x * y + y**2 + sp.Rational(1, 10) * x**2 * y**2
    th0, h, steps = [0.8, -0.5], 0.05, 60
    ref = ncert.certify(E, [x, y], th0, h, steps)
    got = bt.certify(poly, torch.tensor(th0, dtype=F64), h, steps)
    return ref, got


def test_returns_the_numpy_certificate_type(poly_certificates):
    from bea.certificates.certify import Certificate

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


# --------------------------------------------------------------------------------------------------
# issue #11: the shared recursion and tube, the collapsed case, ReLU networks
# --------------------------------------------------------------------------------------------------

A4 = torch.tensor([-1.0, -0.3, 0.4, 1.2], dtype=F64)
B4 = torch.tensor([-0.5, 0.1, 0.3, 0.6], dtype=F64)


def tanh_net4(t):
    """The 4-weight tanh net of issue #11 (the same loss as tests/certificates/test_certify.py's sympy one)."""
    return torch.sum((t[2] * torch.tanh(t[0] * A4) + t[3] * torch.tanh(t[1] * A4) - B4) ** 2) / 8


def test_collapsed_case_is_certified_by_the_shared_tube():
    """Protects the torch twin of the tube that follows the bound: on the issue #11 run where the old
    r = 0 pass blew up (h = 0.5, 100 steps), the torch certificate is certified, its radii cover what
    each step needs, and it agrees with the numpy path's (enclosed) bound within a factor 3 (M here
    is an estimate ×2, and D is re-centred to first order only: no ∇³f tensor on a network)."""
    sp = pytest.importorskip("sympy")
    ncert = pytest.importorskip("bea.certificates.certify")
    th0 = [0.1, -0.2, 0.15, 0.05]
    got = bt.certify(tanh_net4, torch.tensor(th0, dtype=F64), 0.5, 100)
    assert got.certified, got.reason
    assert np.all(got.bound >= got.distance)
    assert np.all(got.info["tube_radii"] >= got.info["tube_need"])
    w = sp.symbols("w1:5")
    a = [sp.Rational(-1), sp.Rational(-3, 10), sp.Rational(2, 5), sp.Rational(6, 5)]
    b = [sp.Rational(-1, 2), sp.Rational(1, 10), sp.Rational(3, 10), sp.Rational(3, 5)]
    E = sum((w[2] * sp.tanh(w[0] * ai) + w[3] * sp.tanh(w[1] * ai) - bi) ** 2 for ai, bi in zip(a, b)) / 8
    ref = ncert.certify(E, list(w), th0, 0.5, 100)
    assert ref.certified
    assert np.allclose(got.distance, ref.distance, rtol=1e-5, atol=1e-12)
    assert np.all(got.bound[1:] <= 3 * ref.bound[1:]) and np.all(ref.bound[1:] <= 2 * got.bound[1:])


def relu_net(seed=0, width=6, bias_shift=0.0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)).double()
    with torch.no_grad():
        model[0].bias += bias_shift
    X = torch.randn(16, 2, dtype=F64)
    y = torch.sin(X[:, :1])
    return bt.flat_loss(model, torch.nn.functional.mse_loss, X, y)


def test_activation_margins_hold_against_brute_force_perturbations():
    """Protects the ReLU margin test: where ``holds(ρ)`` says no pre-activation changes sign, no
    parameter perturbation of norm ≤ ρ (random directions, and the one that moves the tightest unit
    fastest) changes the activation pattern; and for a large ρ it says the pattern may change."""
    from bea.torch.certify import activation_margins

    f, th = relu_net()
    am = activation_margins(f, th)
    lo, hi = 0.0, 10.0
    for _ in range(40):  # the largest ρ the test accepts
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if am.holds(mid)[0] else (lo, mid)
    rho = lo
    assert 0 < rho < 10 and not am.holds(10.0)[0]

    def pattern(theta):
        p = f.unflatten(theta)
        return (f.inputs @ p["0.weight"].T + p["0.bias"]) > 0

    base = pattern(th)
    gen = torch.Generator().manual_seed(1)
    dirs = [torch.randn(th.numel(), generator=gen, dtype=F64) for _ in range(200)]
    z = f.inputs @ f.unflatten(th)["0.weight"].T + f.unflatten(th)["0.bias"]
    i, j = divmod(int(torch.argmin(torch.abs(z))), z.shape[1])
    grad = torch.func.grad(lambda t: (f.inputs[i] @ f.unflatten(t)["0.weight"][j] + f.unflatten(t)["0.bias"][j]))(th)
    dirs.append(-torch.sign(z[i, j]) * grad)
    for d in dirs:
        assert torch.equal(pattern(th + rho * d / torch.linalg.vector_norm(d)), base)


def relu_fit(bias, seed=0, width=6, perturb=0.05):
    """A one-hidden-layer ReLU regression near its least-squares fit; every first-layer bias set to
    ``bias`` (2: all units far from their kinks on the data; 0.05: some close)."""
    g = torch.Generator().manual_seed(seed)
    X = 0.5 * torch.randn(32, 2, generator=g, dtype=F64)
    y = X @ torch.tensor([[0.5], [-0.3]], dtype=F64) + 0.1 + 0.01 * torch.randn(32, 1, generator=g, dtype=F64)
    model = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(0.3 * torch.randn(width, 2, generator=g, dtype=F64))
        model[0].bias.fill_(bias)
        A = torch.cat([torch.relu(model[0](X)), torch.ones(32, 1, dtype=F64)], 1)
        sol = torch.linalg.lstsq(A, y).solution
        model[2].weight.copy_(sol[:-1].T + perturb * torch.randn(1, width, generator=g, dtype=F64))
        model[2].bias.copy_(sol[-1])
    f, th = bt.flat_loss(model, torch.nn.functional.mse_loss, X, y)
    lam = float(torch.linalg.eigvalsh(bt.linalg.hessian(f, th))[-1])
    return f, th, 0.5 / lam  # h·λ_max = 0.5 at the start


def test_relu_network_certified_where_the_pattern_is_fixed_and_refused_where_not():
    """Protects the ReLU check of bea.torch.certify: with every unit far from its kink the margin test
    passes at every step, the certificate holds and the bound covers the distance; with units near
    their kinks it is refused with a reason naming the ReLU margin, instead of trusting autodiff's
    ∇³f across the kinks."""
    f, th, h = relu_fit(bias=2.0)
    far = bt.certify(f, th, h, 30)
    assert "margin test" in far.info["smoothness"]
    assert far.certified, far.reason
    assert np.all(far.bound >= far.distance) and far.distance[-1] > 0
    f, th, h = relu_fit(bias=0.05)
    near = bt.certify(f, th, h, 30)
    assert not near.certified and "ReLU" in near.reason and "margin" in near.reason


def test_plain_callable_is_reported_as_not_inspected():
    """Protects the smoothness report: a loss given as a plain callable cannot be inspected for
    kinked activations, and the certificate says so in ``info``."""
    cert = bt.certify(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.05, 5)
    assert "not inspected" in cert.info["smoothness"]
