"""bea.torch.modified_field: the numeric modified field of a torch loss, each term against an independent
route — the symbolic kernel of bea.modified_field on the same loss written in sympy, direct autodiff
(hvp, tgg), closed forms for quadratics, and the defining property that the flow of f̃ for time h
reproduces a GD step to O(h^{order+2}) (numerical integration)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sp = pytest.importorskip("sympy")

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402
from bea.compile.codegen import compile_exprs  # noqa: E402
from bea.torch.linalg import gradient_derivative, hessian, hvp_operator, tgg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)

F64 = torch.float64
MODES = ("rev", "fwd")


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# ----------------------------------------------------------------------------- the same losses twice

_X_NET = [(Fraction(1, 2), Fraction(1, 3)), (Fraction(-1), Fraction(1, 2)), (Fraction(3, 2), Fraction(-1))]
_X_LOG = [((1, 2), 1), ((-1, Fraction(1, 2)), -1), ((Fraction(1, 2), -1), 1)]


def _sympy_losses():
    x, y = sp.symbols("x y")
    a, b = sp.symbols("a b")
    w1, w2 = sp.symbols("w1 w2")
    q = sp.Rational
    net = sum((a * sp.tanh(b * q(xi) + 1) - q(yi)) ** 2 for xi, yi in _X_NET) / len(_X_NET)
    logreg = sum(
        sp.log(1 + sp.exp(-yi * (q(x1) * w1 + q(x2) * w2))) for (x1, x2), yi in _X_LOG
    ) / len(_X_LOG) + sp.log(sp.exp(w1) + sp.exp(w2) + sp.exp(-w1 - w2)) / 10
    return {
        "rosenbrock": ((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y]),
        "himmelblau": ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, [x, y]),
        "tanh_net": (net, [a, b]),
        "softplus_lse": (logreg, [w1, w2]),
    }


def rosenbrock(t):
    return (1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2


def himmelblau(t):
    return (t[0] ** 2 + t[1] - 11) ** 2 + (t[0] + t[1] ** 2 - 7) ** 2


_NET_X = torch.tensor([float(x) for x, _ in _X_NET], dtype=F64)
_NET_Y = torch.tensor([float(y) for _, y in _X_NET], dtype=F64)
_LOG_X = torch.tensor([[float(a), float(b)] for (a, b), _ in _X_LOG], dtype=F64)
_LOG_Y = torch.tensor([float(y) for _, y in _X_LOG], dtype=F64)


def tanh_net(t):
    """One tanh unit with a fixed bias, squared error on three points (the sympy loss above)."""
    return ((t[0] * torch.tanh(t[1] * _NET_X + 1) - _NET_Y) ** 2).mean()


def softplus_lse(t):
    """Logistic regression (softplus) plus a tenth of a log-sum-exp, in torch's own functions."""
    z = -_LOG_Y * (_LOG_X @ t)
    lse = torch.logsumexp(torch.stack([t[0], t[1], -t[0] - t[1]]), dim=0)
    return torch.nn.functional.softplus(z).mean() + lse / 10


TORCH_LOSSES = {"rosenbrock": rosenbrock, "himmelblau": himmelblau, "tanh_net": tanh_net, "softplus_lse": softplus_lse}
POINTS = {
    "rosenbrock": [(-1.2, 1.0), (0.3, -0.4), (1.1, 1.3)],
    "himmelblau": [(1.0, 1.0), (-2.5, 3.1), (0.2, -3.7)],
    "tanh_net": [(0.7, -0.4), (-1.3, 0.9), (0.2, 1.6)],
    "softplus_lse": [(0.5, -0.3), (-1.1, 0.8), (1.4, 1.2)],
}
ORDER = 4


@pytest.fixture(scope="module")
def symbolic_terms():
    """{name: kernel θ -> (n, ORDER+1) array of the symbolic terms f_0..f_4} (one numba kernel per loss)."""
    out = {}
    for name, (E, params) in _sympy_losses().items():
        mf = bea.modified_field(E, params, ORDER)
        out[name] = compile_exprs(sp.Matrix.hstack(*mf.terms), params, name=f"terms_{name}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(TORCH_LOSSES))
def test_terms_equal_symbolic_field_to_order_4(symbolic_terms, name, mode):
    """Every f_k, k ≤ 4, of the numeric route equals the symbolic (sympy-differentiated) term to 1e-10
    relative in float64, at three points of each of four losses — the tree coefficients, the signs
    (−1)^{|t|} and every contraction ∇^{m+1}E(…) are checked at once."""
    mf = bt.modified_field(TORCH_LOSSES[name], ORDER, mode=mode)
    kern = symbolic_terms[name]
    for p in POINTS[name]:
        ref = kern(np.array(p))
        got = mf.terms(torch.tensor(p, dtype=F64))
        assert len(got) == ORDER + 1
        for k in range(ORDER + 1):
            assert rel(got[k].numpy(), ref[:, k]) < 1e-10, (name, p, k)


def test_field_equals_compiled_symbolic_kernel():
    """f̃(θ, h) equals ``bea.modified_field(E, params, 4).compile()(θ, h)`` (the public symbolic kernel)
    to 1e-10 relative for steps from 1e-4 to 1e-2 (where h^4 f_4 is not negligible against f_0)."""
    name = "himmelblau"
    E, params = _sympy_losses()[name]
    kern = bea.modified_field(E, params, ORDER).compile()
    mf = bt.modified_field(TORCH_LOSSES[name], ORDER)
    for p in POINTS[name]:
        for h in (1e-4, 1e-3, 1e-2):
            assert rel(mf(torch.tensor(p, dtype=F64), h).numpy(), kern(np.array(p), h)) < 1e-10, (p, h)


def test_momentum_series_equals_symbolic():
    """Another method's series (heavy ball, m = 1/2: c(•) = 1/(1−m) = 2, every coefficient changes)
    through the same machinery equals the symbolic field of that method, order 3."""
    E, params = _sympy_losses()["himmelblau"]
    method = bea.Momentum(Fraction(1, 2))
    kern = compile_exprs(sp.Matrix.hstack(*bea.modified_field(E, params, 3, method=method).terms), params)
    mf = bt.modified_field(himmelblau, 3, method=method)
    for p in POINTS["himmelblau"]:
        ref = kern(np.array(p))
        got = mf.terms(torch.tensor(p, dtype=F64))
        for k in range(4):
            assert rel(got[k].numpy(), ref[:, k]) < 1e-10, (p, k)


# ----------------------------------------------------------------------------- direct autodiff


def small_mlp(seed=0, dtype=F64):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).to(F64)
    X = torch.randn(15, 3, dtype=F64)
    y = torch.randint(0, 2, (15,))
    return bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y, dtype=dtype)


@pytest.mark.parametrize("mode", MODES)
def test_first_terms_equal_hvp_and_tgg(mode):
    """On a FlatLoss (tanh MLP, cross-entropy, n = 38): f_1 = −½Hg and f_2 = −(⅓H²g + 1/12 T(g,g)) with
    H from ``hvp_operator`` and T(g,g) from ``tgg`` (three reverse passes), and
    f_3 = −(¼H³g + 1/12 H T(g,g) + 1/12 T(g,Hg)) with T(g,Hg) by polarisation ¼(T(a+b) − T(a−b)) —
    design.md §1, to 1e-12 relative."""
    f, th = small_mlp()
    terms = bt.modified_field(f, 3, mode=mode).terms(th)
    op = hvp_operator(f, th)
    g = op.grad
    Hg = op(g)
    Tgg = tgg(f, th, g)
    T_g_Hg = 0.25 * (tgg(f, th, g + Hg) - tgg(f, th, g - Hg))
    ref = [-g, -0.5 * Hg, -(op(Hg) / 3 + Tgg / 12), -(op(op(Hg)) / 4 + op(Tgg) / 12 + T_g_Hg / 12)]
    for k, (a, b) in enumerate(zip(terms, ref)):
        assert rel(a.numpy(), b.numpy()) < 1e-12, k


def test_quadratic_terms_are_principal_all_orders():
    """For E = ½θᵀAθ + bᵀθ (T = 0): f_k = −H^k g/(k+1) (the Taylor coefficients of log(1−z)/z), k ≤ 6,
    with a dense A; the h-sum is the truncated principal flow."""
    gen = torch.Generator().manual_seed(3)
    M = torch.randn(5, 5, generator=gen, dtype=F64)
    A = M @ M.T / 5
    bvec = torch.randn(5, generator=gen, dtype=F64)

    def E(t):
        return 0.5 * t @ (A @ t) + bvec @ t

    th = torch.randn(5, generator=gen, dtype=F64)
    mf = bt.modified_field(E, 6)
    g = A @ th + bvec
    v, ref = g, []
    for k in range(7):
        ref.append(-v / (k + 1))
        v = A @ v
    for k, term in enumerate(mf.terms(th)):
        assert rel(term.numpy(), ref[k].numpy()) < 1e-12, k
    h = 0.3
    assert rel(mf(th, h).numpy(), sum(h**k * r for k, r in enumerate(ref)).numpy()) < 1e-12


def test_critical_point_gives_zero_field():
    """At a critical point every elementary differential contains g = 0: f̃ = 0 exactly (Himmelblau's
    minimum (3, 2), where g vanishes in exact arithmetic)."""
    th = torch.tensor([3.0, 2.0], dtype=F64)
    for term in bt.modified_field(himmelblau, 4).terms(th):
        assert torch.equal(term, torch.zeros(2, dtype=F64))


def _flow(field, th, h, substeps=8):
    """θ(h) of θ' = field(θ) by classical RK4."""
    dt = h / substeps
    y = th.clone()
    for _ in range(substeps):
        k1 = field(y)
        k2 = field(y + 0.5 * dt * k1)
        k3 = field(y + 0.5 * dt * k2)
        k4 = field(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


@pytest.mark.parametrize("order", [1, 2, 3])
def test_flow_of_field_reproduces_gd_step(order):
    """The defining property, by numerical integration: ‖φ_h(θ) − (θ − h∇E(θ))‖ = O(h^{order+2}) for the
    flow φ of f̃ truncated at h^order (softplus/log-sum-exp loss): halving h divides the error by
    ≈ 2^{order+2}."""
    mf = bt.modified_field(softplus_lse, order)
    th = torch.tensor([0.5, -0.3], dtype=F64)
    g = torch.func.grad(softplus_lse)(th)
    errs = []
    for h in (0.4, 0.2):
        y = _flow(lambda x, h=h: mf(x, h), th, h)
        errs.append(float(torch.linalg.vector_norm(y - (th - h * g))))
    slope = np.log2(errs[0] / errs[1])
    assert abs(slope - (order + 2)) < 0.35, (errs, slope)


# ----------------------------------------------------------------------------- plan, dtype, helpers


def test_plan_covers_every_tree_once():
    """Each tree with c(t) ≠ 0 of order ≤ 6 enters exactly one term pass of its own order (as a kept
    vector or inside a merged contraction), and the cost is the sum of the passes."""
    mf = bt.modified_field(rosenbrock, 6)
    series = bea.modified_series(6)
    for k in range(7):
        (step,) = [s for s in mf.plan if s.kind == "term" and s.k == k]
        seen = [t for _, t in step.known]
        for prefix, last in step.groups:
            seen += [tuple(bea.RootedTree.from_children([bea.RootedTree(s)] + [bea.RootedTree(p) for p in prefix]))
                     for _, s in last]
        expected = [tuple(t) for t, _ in series.terms(k)]
        assert sorted(seen) == sorted(expected), k
    assert mf.hvp_equivalents == sum(s.cost for s in mf.plan)
    assert bt.modified_field(rosenbrock, 3).hvp_equivalents <= 50


def test_float32_follows_theta():
    """A float32 FlatLoss gives float32 terms, equal to the float64 ones to float32 accuracy."""
    f64, th64 = small_mlp()
    f32, th32 = small_mlp(dtype=torch.float32)
    t32 = bt.modified_field(f32, 2).terms(th32)
    t64 = bt.modified_field(f64, 2).terms(th64)
    assert all(t.dtype == torch.float32 for t in t32)
    for a, b in zip(t32, t64):
        assert rel(a.double().numpy(), b.numpy()) < 1e-4


def test_gradient_derivative_against_dense_hessian_and_fd():
    """gradient_derivative: m = 1 is H v of the dense Hessian; m = 2 is the central difference of H(θ)v
    along w (step 1e-4, O(ε²) error), both modes."""
    f, th = small_mlp()
    gen = torch.Generator().manual_seed(5)
    v = torch.randn(th.shape, generator=gen, dtype=F64)
    w = torch.randn(th.shape, generator=gen, dtype=F64)
    H = hessian(f, th)
    eps = 1e-4
    fd = (hessian(f, th + eps * w) - hessian(f, th - eps * w)) @ v / (2 * eps)
    for mode in MODES:
        assert rel(gradient_derivative(f, th, [v], mode=mode).numpy(), (H @ v).numpy()) < 1e-12
        assert rel(gradient_derivative(f, th, [v, w], mode=mode).numpy(), fd.numpy()) < 1e-6
        assert rel(gradient_derivative(f, th, (), mode=mode).numpy(), bt.grad(f, th).numpy()) < 1e-14


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_bea_errors():
    """Bad order, loss, θ, h, mode and symbolic coefficients raise bea.BEAError subclasses naming the problem."""
    th = torch.tensor([0.1, 0.2], dtype=F64)
    with pytest.raises(bea.InvalidOrderError):
        bt.modified_field(rosenbrock, -1)
    with pytest.raises(bea.InvalidOrderError):
        bt.modified_field(rosenbrock, 1.5)
    with pytest.raises(bea.InvalidInputError, match="callable"):
        bt.modified_field("not a loss", 2)
    with pytest.raises(bea.InvalidInputError, match="mode"):
        bt.modified_field(rosenbrock, 2, mode="sideways")
    with pytest.raises(bea.InvalidMethodError, match="symbolic"):
        bt.modified_field(rosenbrock, 2, method=bea.Momentum(sp.Symbol("m")))
    mf = bt.modified_field(rosenbrock, 2)
    with pytest.raises(bea.InvalidInputError, match="floating"):
        mf.terms(torch.tensor([1, 2]))
    with pytest.raises(bea.InvalidInputError, match="1-D"):
        mf.terms(th.reshape(1, 2))
    with pytest.raises(bea.InvalidInputError, match="finite"):
        mf.terms(torch.tensor([float("nan"), 0.0], dtype=F64))
    with pytest.raises(bea.InvalidInputError, match="step size"):
        mf(th, 0.0)
    with pytest.raises(bea.InvalidInputError, match="step size"):
        mf(th, float("inf"))
    with pytest.raises(bea.InvalidLossError, match="scalar"):
        bt.modified_field(lambda t: t**2, 1).terms(th)
    with pytest.raises(bea.InvalidInputError, match="not finite"):
        bt.modified_field(lambda t: torch.log(t[0] - 1.0), 1).terms(th)
    with pytest.raises(bea.InvalidInputError, match="direction 0"):
        gradient_derivative(rosenbrock, th, [torch.zeros(3, dtype=F64)])
