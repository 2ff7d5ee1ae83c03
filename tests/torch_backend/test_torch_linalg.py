"""bea.torch.loss and bea.torch.linalg: flat losses, HVP, T(v,v), Lanczos — each against an independent
route (the dense ``torch.func.hessian`` + ``eigh``, finite differences, closed-form quadratics)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)
from bea.torch.linalg import hessian, hvp_operator, lanczos_operator  # noqa: E402


def small_mlp(act=torch.nn.Tanh, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), act(), torch.nn.Linear(8, 2)).to(dtype)
    X = torch.randn(20, 3, dtype=dtype)
    Y = torch.randn(20, 2, dtype=dtype)
    return bt.flat_loss(model, lambda out, t: ((out - t) ** 2).mean(), X, Y)


@pytest.fixture(scope="module")
def mlp():
    f, theta = small_mlp()
    return f, theta, hessian(f, theta)


# ----------------------------------------------------------------------------- flat_loss


def test_flat_loss_matches_module_and_roundtrips():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    X, y = torch.randn(7, 4, dtype=torch.float64), torch.randint(0, 3, (7,))
    f, theta0 = bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y)
    assert f.n == theta0.numel() == sum(p.numel() for p in model.parameters())
    assert float(f(theta0)) == pytest.approx(torch.nn.functional.cross_entropy(model(X), y).item(), rel=1e-14)
    # the gradient through functional_call equals the module's own backward
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(X), y).backward()
    ref = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(bt.grad(f, theta0), ref, rtol=1e-12, atol=1e-14)
    new = theta0 + 0.1
    f.load_into(new)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), new)


def test_flat_loss_dtype_cast_keeps_model():
    torch.manual_seed(2)
    model = torch.nn.Linear(3, 1)
    f, theta0 = bt.flat_loss(model, torch.nn.functional.mse_loss, torch.randn(5, 3), torch.randn(5, 1), dtype=torch.float64)
    assert theta0.dtype == torch.float64 and f(theta0).dtype == torch.float64
    assert next(model.parameters()).dtype == torch.float32


def test_flat_loss_bad_inputs():
    class Empty(torch.nn.Module):
        def forward(self, x):
            return x.sum()

    with pytest.raises(bea.InvalidParamsError, match="no trainable parameters"):
        bt.flat_loss(Empty(), lambda o, t: o, torch.ones(2), None)
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(bea.InvalidLossError, match="scalar"):
        bt.flat_loss(lin, lambda o, t: (o - t) ** 2, torch.ones(3, 2), torch.zeros(3, 2))
    with torch.no_grad():
        lin.weight[0, 1] = float("nan")
    with pytest.raises(bea.InvalidInputError, match="'weight'"):
        bt.flat_loss(lin, torch.nn.functional.mse_loss, torch.ones(3, 2), torch.zeros(3, 2))
    mixed = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).double())
    with pytest.raises(bea.InvalidParamsError, match="dtype"):
        bt.flat_loss(mixed, torch.nn.functional.mse_loss, torch.ones(3, 2), torch.zeros(3, 2))
    with pytest.raises(bea.InvalidInputError):
        bt.flat_loss("not a module", torch.nn.functional.mse_loss, None, None)


# ----------------------------------------------------------------------------- HVP, T(v, v)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_hvp_matches_dense_hessian(mlp, mode):
    f, theta, H = mlp
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(theta.numel(), generator=gen, dtype=torch.float64)
        assert torch.allclose(bt.hvp(f, theta, v, mode=mode), H @ v, rtol=1e-12, atol=1e-12)


def test_hvp_operator_reuses_graph(mlp):
    f, theta, H = mlp
    op = hvp_operator(f, theta)
    assert torch.allclose(op.grad, bt.grad(f, theta), rtol=1e-14, atol=1e-15)
    assert float(op.value) == pytest.approx(float(f(theta)), rel=1e-14)
    V = torch.eye(theta.numel(), dtype=torch.float64)[:5]
    for v in V:
        assert torch.allclose(op(v), H @ v, rtol=1e-12, atol=1e-12)
    assert op.count == 5


def test_dense_hessian_of_quadratic_is_exact():
    A = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, -1.0], [0.0, -1.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def f(t):
        return 0.5 * t @ A @ t + b @ t

    theta = torch.tensor([0.3, -0.1, 2.0], dtype=torch.float64)
    assert torch.allclose(hessian(f, theta), A, atol=1e-14)
    assert torch.allclose(hessian(f, theta, chunk_size=2), A, atol=1e-14)
    spec = bt.hessian_spectrum(f, theta)
    ref = torch.linalg.eigvalsh(A).flip(0)
    assert torch.allclose(spec.values, ref, atol=1e-13)
    assert torch.allclose(bt.tgg(f, theta), torch.zeros(3, dtype=torch.float64))


def test_tgg_against_finite_differences_and_polynomial():
    # E = x⁴/4 + x y + y² + x²y²/10: T(v,v) in closed form
    def f(t):
        return t[0] ** 4 / 4 + t[0] * t[1] + t[1] ** 2 + 0.1 * t[0] ** 2 * t[1] ** 2

    x, y = 0.8, -0.5
    theta = torch.tensor([x, y], dtype=torch.float64)
    u = torch.tensor([0.6, 0.8], dtype=torch.float64)
    # third derivatives: E_xxx = 6x, E_xxy = 0.4y, E_xyy = 0.4x, E_yyy = 0
    T = torch.zeros(2, 2, 2, dtype=torch.float64)
    T[0, 0, 0] = 6 * x
    for idx in [(0, 0, 1), (0, 1, 0), (1, 0, 0)]:
        T[idx] = 0.4 * y
    for idx in [(0, 1, 1), (1, 0, 1), (1, 1, 0)]:
        T[idx] = 0.4 * x
    exact = torch.einsum("ijk,j,k->i", T, u, u)
    assert torch.allclose(bt.tgg(f, theta, u), exact, rtol=1e-13)
    g = bt.grad(f, theta)
    assert torch.allclose(bt.tgg(f, theta), torch.einsum("ijk,j,k->i", T, g, g), rtol=1e-13)


def test_tgg_mlp_against_central_difference_of_hvp(mlp):
    f, theta, _ = mlp
    gen = torch.Generator().manual_seed(4)
    u = torch.randn(theta.numel(), generator=gen, dtype=torch.float64)
    u = u / u.norm()
    eps = 1e-4
    fd = (bt.hvp(f, theta + eps * u, u) - bt.hvp(f, theta - eps * u, u)) / (2 * eps)
    assert torch.allclose(bt.tgg(f, theta, u), fd, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- Lanczos


@pytest.mark.parametrize("which", ["both", "largest", "smallest"])
def test_lanczos_extremes_match_dense_eigh(mlp, which):
    f, theta, H = mlp
    dense = torch.linalg.eigvalsh(H).flip(0)
    k = 3
    spec = bt.lanczos(f, theta, k, which, tol=1e-10)
    assert spec.converged
    ref = {"largest": dense[:k], "smallest": dense[-k:], "both": torch.cat([dense[:k], dense[-k:]])}[which]
    assert torch.allclose(spec.values, ref, rtol=1e-6, atol=0)
    # Ritz vectors are eigenvectors: ‖Hu − λu‖ small, orthonormal columns
    U = spec.vectors
    R = H @ U - U * spec.values
    assert float(R.norm(dim=0).max()) < 1e-6 * float(dense.abs().max())
    assert torch.allclose(U.T @ U, torch.eye(U.shape[1], dtype=torch.float64), atol=1e-10)
    assert spec.n_hvp < theta.numel()  # fewer products than the dense Hessian's n


def test_lanczos_deterministic_and_float32_model():
    f, theta = small_mlp(dtype=torch.float32)
    s1 = bt.lanczos(f, theta, 1, "both", seed=7)
    s2 = bt.lanczos(f, theta, 1, "both", seed=7)
    assert torch.equal(s1.values, s2.values) and s1.values.dtype == torch.float64
    H = hessian(f, theta).double()
    dense = torch.linalg.eigvalsh(H)
    assert float(s1.values[0]) == pytest.approx(float(dense[-1]), rel=1e-4)
    assert float(s1.values[-1]) == pytest.approx(float(dense[0]), rel=1e-4)


def test_lanczos_operator_known_spectrum_and_breakdown():
    d = torch.linspace(-1.0, 10.0, 40, dtype=torch.float64)
    spec = lanczos_operator(lambda v: d * v, 40, 2, "both", tol=1e-12)
    assert torch.allclose(spec.values, torch.tensor([10.0, d[-2], d[1], -1.0], dtype=torch.float64), atol=1e-10)
    # a start vector in a 2-D invariant subspace: exact answer after 2 products, flagged converged
    v0 = torch.zeros(40, dtype=torch.float64)
    v0[0] = v0[-1] = 1.0
    spec = lanczos_operator(lambda v: d * v, 40, 1, "both", v0=v0)
    assert spec.n_hvp == 2 and spec.converged
    assert torch.allclose(spec.values, torch.tensor([10.0, -1.0], dtype=torch.float64), atol=1e-12)
    # n < 2k: the whole spectrum
    spec = lanczos_operator(lambda v: d[:3] * v, 3, 2, "both")
    assert spec.values.numel() == 3


def test_lanczos_bad_inputs(mlp):
    f, theta, _ = mlp
    with pytest.raises(bea.InvalidInputError, match="which"):
        bt.lanczos(f, theta, 1, "middle")
    with pytest.raises(bea.InvalidInputError, match="k must"):
        bt.lanczos(f, theta, 0)
    with pytest.raises(bea.InvalidInputError, match="tol"):
        bt.lanczos(f, theta, 1, tol=-1.0)
    with pytest.raises(bea.InvalidInputError, match="not finite"):
        lanczos_operator(lambda v: v * math.nan, 5, 1)
    with pytest.raises(bea.InvalidInputError, match="mode"):
        bt.hvp(f, theta, theta, mode="sideways")
    with pytest.raises(bea.InvalidInputError, match="shape"):
        bt.hvp(f, theta, theta[:3])


# ----------------------------------------------------------------------------- Lanczos on clustered spectra


def _clustered(eigenvalues, seed=0):
    """A = Q diag(d) Qᵀ with a random orthogonal Q (float64), and its spectrum by numpy's eigh."""
    import numpy as np

    d = np.asarray(eigenvalues, dtype=np.float64)
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d.size, d.size)))
    A = (Q * d) @ Q.T
    A = 0.5 * (A + A.T)
    return torch.tensor(A, dtype=torch.float64), np.linalg.eigh(A)[0][::-1].copy()


CLUSTERED = {
    # two outliers above a cluster of 58 eigenvalues within 6e-7 of 1
    "outliers+cluster": [10.0, 5.0] + [1.0 + 1e-8 * j for j in range(58)],
    # three tight clusters (widths 3e-5, 3e-5, 4e-5)
    "three clusters": [10.0 + 1e-6 * j for j in range(20)] + [5.0 + 1e-6 * j for j in range(20)]
    + [1.0 + 1e-6 * j for j in range(20)],
}


@pytest.mark.parametrize("case", list(CLUSTERED))
def test_lanczos_on_clustered_spectra_keeps_its_basis_orthogonal(case):
    """Full reorthogonalisation (twice) on clustered spectra: with the Krylov dimension equal to n
    the Ritz values are the whole spectrum (against numpy's eigh) and the Ritz vectors — the
    Lanczos basis rotated by the orthogonal eigenvectors of the tridiagonal matrix — are
    orthonormal to rounding.  A single Gram–Schmidt pass loses orthogonality as β_j becomes small
    next to ‖Aq_j‖ (clusters make it small early) and returns ghost copies of converged values."""
    A, ref = _clustered(CLUSTERED[case])
    n = A.shape[0]
    spec = lanczos_operator(lambda v: A @ v, n, n // 2, "both", max_iter=n, tol=1e-12)
    U = spec.vectors
    assert U.shape == (n, n)
    orth = float((U.T @ U - torch.eye(n, dtype=torch.float64)).abs().max())
    assert orth < 1e-12
    assert torch.allclose(spec.values, torch.tensor(ref), rtol=0, atol=1e-12 * float(abs(ref).max()))
    R = A @ U - U * spec.values
    assert float(R.norm(dim=0).max()) < 1e-10 * float(abs(ref).max())


@pytest.mark.parametrize("case", list(CLUSTERED))
def test_lanczos_largest_of_a_clustered_quadratic_loss_match_eigh(case):
    """The k largest Hessian eigenvalues of E(θ) = ½θᵀAθ by bea.torch.lanczos (HVP by autodiff),
    run to tight tolerance, are those of numpy's eigh — no ghost copy of λ_max among them — and
    their Ritz vectors are orthonormal."""
    A, ref = _clustered(CLUSTERED[case], seed=1)
    n = A.shape[0]

    def f(t):
        return 0.5 * t @ (A @ t)

    theta = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    k = 3
    spec = bt.lanczos(f, theta, k, "largest", tol=1e-14, max_iter=n)
    assert torch.allclose(spec.values, torch.tensor(ref[:k]), rtol=1e-12, atol=0)
    U = spec.vectors
    assert torch.allclose(U.T @ U, torch.eye(k, dtype=torch.float64), atol=1e-12)
