"""DAL optimisers (seed 002, Eq. 18–21) against the formulas computed independently in numpy on a
quadratic with a known Hessian, in a normal training loop, and on bad use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)
H = np.diag([2.0, 0.02])
TH0 = np.array([-0.35, -0.2])


def quad_problem(dtype=torch.float64):
    theta = torch.nn.Parameter(torch.tensor(TH0, dtype=dtype))

    def closure():
        return theta[0] ** 2 + 0.01 * theta[1] ** 2

    return theta, closure


def dal_reference(p, steps, numerator=2.0):
    th = TH0.copy()
    out, lrs = [th.copy()], []
    for _ in range(steps):
        g = H @ th
        lr = numerator / (np.linalg.norm(H @ g) / np.linalg.norm(g)) ** p
        th = th - lr * g
        out.append(th.copy())
        lrs.append(lr)
    return np.array(out), np.array(lrs)


@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_dal_first_step_is_design_value(hvp):
    theta, closure = quad_problem()
    opt = bt.DAL([theta], hvp=hvp)
    loss = opt.step(closure)
    assert float(loss) == pytest.approx(0.35**2 + 0.01 * 0.04)
    # design.md §3: ‖Hĝ‖ = 1.99998 → h = 1.000016 (exactly 1.99996735… and 1.00001632…)
    assert opt.last["drift_normalized"] == pytest.approx(1.99998, abs=2e-5)
    assert opt.last["lr"] == pytest.approx(1.000016, abs=5e-7)
    g = H @ TH0
    assert opt.last["lr"] == pytest.approx(2.0 * np.linalg.norm(g) / np.linalg.norm(H @ g), rel=1e-12 if hvp == "exact" else 1e-7)
    assert opt.param_groups[0]["lr"] == opt.last["lr"]
    assert np.allclose(theta.detach().numpy(), TH0 - opt.last["lr"] * g, rtol=1e-12 if hvp == "exact" else 1e-7)
    assert np.allclose(theta.grad.numpy(), g)


@pytest.mark.parametrize("p", [1.0, 0.5])
@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_dal_p_steps_equal_eq_18_19(p, hvp):
    theta, closure = quad_problem()
    opt = bt.DAL([theta], p=p, hvp=hvp)
    ref, lrs = dal_reference(p, 6)
    for k in range(6):
        opt.step(closure)
        assert opt.last["lr"] == pytest.approx(lrs[k], rel=1e-12 if hvp == "exact" else 1e-6)
        assert np.allclose(theta.detach().numpy(), ref[k + 1], rtol=1e-10 if hvp == "exact" else 1e-5, atol=1e-12)


def test_momentum_dal_eq_20_21():
    theta, closure = quad_problem()
    opt = bt.MomentumDAL([theta], momentum=0.8)
    th, v = TH0.copy(), np.zeros(2)
    for _ in range(5):
        g = H @ th
        lr = 1.0 / (2.0 * np.linalg.norm(H @ g) / np.linalg.norm(g))  # Eq. 21: 1/(2‖Hĝ‖)
        v = 0.8 * v - lr * g
        th = th + v
        opt.step(closure)
        assert opt.last["lr"] == pytest.approx(lr, rel=1e-12)
        assert np.allclose(theta.detach().numpy(), th, rtol=1e-11, atol=1e-14)


def test_per_parameter_dal_on_diagonal_hessian():
    # |g_j|/|(Hg)_j| = 1/λ_j on a diagonal H: rates 2/λ_j = (1, 100), the second capped at 10× DAL
    theta, closure = quad_problem()
    opt = bt.PerParameterDAL([theta])
    opt.step(closure)
    g = H @ TH0
    dal = 2.0 * np.linalg.norm(g) / np.linalg.norm(H @ g)
    expected = TH0 - np.array([1.0, 10.0 * dal]) * g
    assert np.allclose(theta.detach().numpy(), expected, rtol=1e-6)
    assert opt.last["lr_min"] == pytest.approx(1.0, rel=1e-12)
    assert opt.last["lr_max"] == pytest.approx(10.0 * dal, rel=1e-6)
    # without the cap the second coordinate takes its own rate 2/0.02
    theta, closure = quad_problem()
    bt.PerParameterDAL([theta], max_ratio=None).step(closure)
    assert np.allclose(theta.detach().numpy(), TH0 - np.array([1.0, 100.0]) * g, rtol=1e-10)


A_ND = np.array([[3.0, 1.0], [1.0, 2.0]])  # a non-diagonal Hessian


def nd_quad_problem(th0):
    theta = torch.nn.Parameter(torch.tensor(th0, dtype=torch.float64))
    A = torch.tensor(A_ND, dtype=torch.float64)

    def closure():
        return 0.5 * theta @ (A @ theta)

    return theta, closure


@pytest.mark.parametrize("scale", [40.0, 1e-3])
def test_fd_hvp_of_a_non_unit_vector(scale):
    """PerParameterDAL's finite-difference HVP is taken along the raw gradient g (‖g‖ ≠ 1): the
    difference quotient along ĝ must be scaled back by ‖v‖ = ‖g‖, so the rates equal the exact
    h_j = 2|g_j|/|(A g)_j| of the quadratic ½θᵀAθ (H = A, Hg = A·Aθ, computed in numpy)."""
    th0 = scale * np.array([0.7, -0.4])
    g = A_ND @ th0
    assert abs(np.linalg.norm(g) - 1.0) > 0.5
    expected = 2.0 * np.abs(g) / np.abs(A_ND @ g)
    theta, closure = nd_quad_problem(th0)
    opt = bt.PerParameterDAL([theta], max_ratio=None, hvp="fd")
    opt.step(closure)
    assert opt.last["lr_min"] == pytest.approx(expected.min(), rel=1e-6)
    assert opt.last["lr_max"] == pytest.approx(expected.max(), rel=1e-6)
    assert opt.last["drift"] == pytest.approx(np.linalg.norm(A_ND @ g), rel=1e-6)
    np.testing.assert_allclose(theta.detach().numpy(), th0 - expected * g, rtol=1e-6)


@pytest.mark.parametrize("p", [0.5, 2.0])
def test_per_parameter_cap_uses_the_power_p(p):
    """The per-parameter cap is max_ratio × numerator/‖Hĝ‖^p with the power p of the rates (not
    /‖Hĝ‖): at p ≠ 1 with a cap that binds, the capped coordinate's rate equals that formula
    (numpy, H = diag(2, 0.02)), and the free coordinate keeps 2/λ_0^p."""
    theta, closure = quad_problem()
    opt = bt.PerParameterDAL([theta], p=p, max_ratio=2.0)
    opt.step(closure)
    g = H @ TH0
    drift_n = np.linalg.norm(H @ g) / np.linalg.norm(g)
    cap = 2.0 * 2.0 / drift_n**p
    free = 2.0 / 2.0**p
    assert cap < 2.0 / 0.02**p and free < cap  # the cap binds on coordinate 1 only
    assert opt.last["lr_max"] == pytest.approx(cap, rel=1e-12)
    assert opt.last["lr_min"] == pytest.approx(free, rel=1e-12)
    np.testing.assert_allclose(theta.detach().numpy(), TH0 - np.array([free, cap]) * g, rtol=1e-12)


def test_dal_in_a_training_loop_with_groups_and_logger():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    X, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    opt = bt.DAL([{"params": model[0].parameters()}, {"params": model[2].parameters(), "p": 0.5}], p=1.0)
    f, _ = bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y)
    logger = bt.PFLogger(k=2)
    losses = []
    for it in range(25):
        theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        logger(f, theta, it, opt.param_groups[0]["lr"] if it else 1.0)

        def closure():
            return torch.nn.functional.cross_entropy(model(X), y)

        losses.append(float(opt.step(closure)))
    assert losses[-1] < 0.8 * losses[0]
    lrs = opt.last["lrs"]
    assert lrs[1] == pytest.approx(2.0 / opt.last["drift_normalized"] ** 0.5)
    assert lrs[0] == pytest.approx(2.0 / opt.last["drift_normalized"])
    trace = logger.trace()
    assert trace.eigenvalues.shape == (25, 2) and np.all(np.diff(trace.eigenvalues, axis=1) <= 1e-6)
    assert np.all(np.isfinite(trace.drift_normalized))


def test_bad_use():
    theta, closure = quad_problem()
    opt = bt.DAL([theta])
    with pytest.raises(bea.InvalidInputError, match="closure"):
        opt.step()

    def backward_closure():
        loss = closure()
        loss.backward()
        return loss.detach()

    with pytest.raises(bea.InvalidLossError, match="without calling backward"):
        opt.step(backward_closure)
    with pytest.raises(bea.InvalidLossError, match="scalar"):
        opt.step(lambda: theta * 2)
    with pytest.raises(bea.InvalidInputError, match="hvp"):
        bt.DAL([theta], hvp="approx")
    with pytest.raises(bea.InvalidInputError, match="p must"):
        bt.DAL([theta], p=-1.0)
    with pytest.raises(bea.InvalidInputError, match="momentum"):
        bt.MomentumDAL([theta], momentum=1.0)
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    with pytest.raises(bea.InvalidInputError, match="require gradients"):
        bt.DAL([frozen])
    nan_theta = torch.nn.Parameter(torch.tensor([float("nan")]))
    with pytest.raises(bea.InvalidLossError, match="not finite"):
        bt.DAL([nan_theta]).step(lambda: (nan_theta**2).sum())


def test_closure_that_calls_backward_is_explained():
    """The standard torch closure (zero_grad, backward, return loss) frees the graph the optimiser
    needs for its own double backward: refused with an InvalidLossError that says why, before any
    autograd error, and the parameters do not move."""
    theta, closure = quad_problem()
    for cls in (bt.DAL, bt.MomentumDAL, bt.PerParameterDAL):
        opt = cls([theta], hvp="exact")

        def standard_closure():
            opt.zero_grad()
            loss = closure()
            loss.backward()
            return loss

        with pytest.raises(bea.InvalidLossError, match="called backward"):
            opt.step(standard_closure)
        np.testing.assert_array_equal(theta.detach().numpy(), TH0)
    opt = bt.DAL([theta], hvp="fd")
    with pytest.raises(bea.InvalidLossError, match="called backward"):
        opt.step(standard_closure)


def test_huge_gradients_norm_without_overflow_and_overflow_is_divergence():
    """E = θ⁴/4 at θ = 4e61: g = θ³ = 6.4e184 (g² overflows), ĝ = 1, Hĝ = 3θ² — DAL's rate is
    2/(3θ²), not a spurious 'infinite rate' from ‖g‖ = inf; H·g = 3θ⁵ ≈ 3e308 overflows, which the
    per-parameter optimiser (raw direction) reports as divergence at that step."""
    t0 = 4e61
    theta = torch.nn.Parameter(torch.tensor([t0], dtype=torch.float64))
    opt = bt.DAL([theta])
    opt.step(lambda: theta[0] ** 4 / 4)
    assert opt.last["lr"] == pytest.approx(2.0 / (3.0 * t0**2), rel=1e-12)
    assert opt.last["grad_norm"] == pytest.approx(t0**3, rel=1e-12)
    assert float(theta.detach()) == pytest.approx(t0 - 2.0 / (3.0 * t0**2) * t0**3, rel=1e-12)
    theta2 = torch.nn.Parameter(torch.tensor([t0], dtype=torch.float64))
    opt2 = bt.PerParameterDAL([theta2])
    with pytest.raises(bea.IntegrationError, match="diverged at step 0") as info:
        opt2.step(lambda: theta2[0] ** 4 / 4)
    assert info.value.t == 0.0


def poly_problem(th0):
    theta = torch.nn.Parameter(torch.tensor(th0, dtype=torch.float64))

    def closure():
        return theta[0] ** 4 / 4 + theta[0] * theta[1] + theta[1] ** 2 + 0.1 * theta[0] ** 2 * theta[1] ** 2

    return theta, closure


@pytest.mark.parametrize(
    "kind, kwargs",
    [("dal", dict(p=1.0)), ("dal", dict(p=0.5)), ("momentum", dict(m=0.8)), ("per_parameter", {})],
)
def test_optimisers_match_numpy_dal(kind, kwargs):
    dal = pytest.importorskip("bea.flows.dal")
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    E = x**4 / 4 + x * y + y**2 + sp.Rational(1, 10) * x**2 * y**2
    th0, steps = [0.8, -0.5], 8
    theta, closure = poly_problem(th0)
    if kind == "dal":
        # DAL-0.5 blows up here (E ≈ 1e12 at step 8): the reference runs without the growth guard
        ref = dal.dal(E, [x, y], th0, steps, blowup=float("inf"), **kwargs)
        opt = bt.DAL([theta], **kwargs)
    elif kind == "momentum":
        ref = dal.dal_momentum(E, [x, y], th0, steps, **kwargs)
        opt = bt.MomentumDAL([theta], momentum=kwargs["m"])
    else:
        ref = dal.dal_per_parameter(E, [x, y], th0, steps)
        opt = bt.PerParameterDAL([theta], max_ratio=None)
    for k in range(steps):
        opt.step(closure)
        assert np.allclose(theta.detach().numpy(), ref.thetas[k + 1], rtol=1e-11, atol=1e-13)


def test_infinite_rate_raises_unless_capped():
    # E = θ₁ (linear): H = 0, so ‖Hĝ‖ = 0 with g ≠ 0 — an infinite DAL rate (as bea.flows.dal)
    theta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(bea.IntegrationError, match="infinite"):
        bt.DAL([theta]).step(lambda: theta[0] + 0.0 * theta[1])
    opt = bt.DAL([theta], max_lr=0.5)
    opt.step(lambda: theta[0] + 0.0 * theta[1])
    assert opt.last["lr"] == 0.5 and np.allclose(theta.detach().numpy(), [0.5, 2.0])
    # at a critical point nothing moves and nothing is NaN
    theta2 = torch.nn.Parameter(torch.tensor([0.0, 0.0], dtype=torch.float64))
    opt = bt.DAL([theta2])
    opt.step(lambda: (theta2**2).sum())
    assert torch.equal(theta2.detach(), torch.zeros(2, dtype=torch.float64)) and opt.last["lr"] == float("inf")


def test_missing_torch_message_gives_the_cpu_install_line():
    """Without torch, ``import bea.torch`` says how to get the CPU build (torch==2.13.0 before the
    extra) and that the extra alone pulls CUDA — the README's install line, not a bare 'pip install'."""
    import subprocess
    import sys

    code = "import sys, importlib; sys.modules['torch'] = None\ntry: importlib.import_module('bea.torch')\nexcept ImportError as e: print(e)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install torch==2.13.0" in out and "pip install -e '.[torch]'" in out and "CUDA" in out
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0" in readme and "CUDA" in readme
