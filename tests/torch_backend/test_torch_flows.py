"""bea.torch.gd / trajectory against design.md reference values, closed forms and the numpy path
(bea.flows on the same loss written in sympy), plus divergence and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)

F64 = torch.float64


def quad(t):
    """E = θ₁² + 0.01θ₂² (H = diag(2, 0.02)), design.md §3."""
    return t[0] ** 2 + 0.01 * t[1] ** 2


TH0 = torch.tensor([-0.35, -0.2], dtype=F64)


def poly(t):
    return t[0] ** 4 / 4 + t[0] * t[1] + t[1] ** 2 + 0.1 * t[0] ** 2 * t[1] ** 2


def poly_sympy():
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    return x**4 / 4 + x * y + y**2 + sp.Rational(1, 10) * x**2 * y**2, [x, y]


# ----------------------------------------------------------------------------- reference values


def test_quadratic_unstable_step_gd_equals_pf():
    ref = np.array([0.5636785, -0.17986367])
    assert np.allclose(bt.gd(quad, TH0, 1.05, 5)[-1].numpy(), ref, atol=1e-7)
    pf = bt.trajectory(quad, TH0, 1.05, 5, flow="pf")
    assert pf.dtype == torch.complex128
    assert np.allclose(pf[-1].real.numpy(), ref, atol=1e-7)
    assert float(pf[-1].imag.abs().max()) < 1e-7
    # every GD iterate, not only the last
    assert np.allclose(pf.real.numpy(), bt.gd(quad, TH0, 1.05, 5).numpy(), atol=1e-7)


def test_quadratic_h09_ngf_igr_values():
    ngf = bt.trajectory(quad, TH0, 0.9, 200, flow="ngf", rtol=1e-10)
    igr = bt.trajectory(quad, TH0, 0.9, 200, flow="igr", rtol=1e-10)
    gd = bt.gd(quad, TH0, 0.9, 200)
    assert float(gd[-1, 1]) == pytest.approx(-5.28844e-3, rel=1e-5)
    assert float(ngf[-1, 1]) == pytest.approx(-5.46474e-3, rel=1e-5)
    assert float(igr[-1, 1]) == pytest.approx(-5.29052e-3, rel=1e-5)


def test_one_dimensional_values():
    def half_sq(z):
        return 0.5 * z[0] ** 2

    z0 = torch.tensor([1.0], dtype=F64)
    assert float(bt.gd(half_sq, z0, 1.5, 1)[-1, 0]) == -0.5
    assert complex(bt.trajectory(half_sq, z0, 1.5, 1, flow="pf")[-1, 0]).real == pytest.approx(-0.5, abs=1e-8)
    assert float(bt.trajectory(half_sq, z0, 1.5, 1, flow="ngf")[-1, 0]) == pytest.approx(math.exp(-1.5), rel=1e-8)
    assert float(bt.trajectory(half_sq, z0, 1.5, 1, flow="igr")[-1, 0]) == pytest.approx(math.exp(-2.625), rel=1e-8)
    pf = bt.trajectory(half_sq, z0, 2.5, 5, flow="pf")
    assert complex(pf[-1, 0]).real == pytest.approx(-7.59375, rel=1e-7)


def test_positive_and_flipped_closed_forms():
    h, steps = 0.1, 3
    t = h * np.arange(steps + 1)
    pos = bt.trajectory(quad, TH0, h, steps, flow="positive").numpy()
    assert np.allclose(pos, np.stack([-0.35 * np.exp(2 * t), -0.2 * np.exp(0.02 * t)], 1), rtol=1e-8)
    # flipped: +g along u_0 = e_1 (λ = 2), NGF along e_2
    flipped = bt.trajectory(quad, TH0, h, steps, flow="flipped").numpy()
    assert np.allclose(flipped, np.stack([-0.35 * np.exp(2 * t), -0.2 * np.exp(-0.02 * t)], 1), rtol=1e-8)


def test_pf_top_k_uses_ngf_on_the_complement():
    # k = 1: α(hλ₀) along e_1 (GD exactly), α = −1 (NGF) along e_2
    h, steps = 1.05, 4
    pf1 = bt.trajectory(quad, TH0, h, steps, flow="pf", k=1)
    t = h * np.arange(steps + 1)
    assert np.allclose(pf1.real[:, 0].numpy(), -0.35 * (1 - 2 * h) ** np.arange(steps + 1), atol=1e-7)
    assert np.allclose(pf1.real[:, 1].numpy(), -0.2 * np.exp(-0.02 * t), rtol=1e-8)


def test_pf_lanczos_with_all_directions_equals_dense_on_mlp():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    f, th = bt.flat_loss(model, torch.nn.functional.mse_loss, torch.randn(10, 2, dtype=F64), torch.randn(10, 1, dtype=F64))
    dense = bt.trajectory(f, th, 0.3, 2, flow="pf", rtol=1e-8)
    full_k = bt.trajectory(f, th, 0.3, 2, flow="pf", k=th.numel(), rtol=1e-8, lanczos_tol=1e-12)
    assert torch.allclose(dense, full_k, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- against the numpy path


FLOW_STEPS = {"ngf": 10, "igr": 10, "third": 10, "pf": 10, "pf+np": 10, "flipped": 5, "positive": 5}


@pytest.mark.parametrize("flow", sorted(FLOW_STEPS))
def test_flows_match_numpy_path(flow):
    nflows = pytest.importorskip("bea.flows")
    E, params = poly_sympy()
    th0, h, steps = [0.8, -0.5], 0.2, FLOW_STEPS[flow]
    ref = nflows.trajectory(E, params, th0, h, steps, flow=flow)
    got = bt.trajectory(poly, torch.tensor(th0, dtype=F64), h, steps, flow=flow).numpy()
    assert got.dtype == ref.dtype
    assert np.allclose(got, ref, rtol=1e-8, atol=1e-10)


def test_gd_matches_numpy_path():
    nflows = pytest.importorskip("bea.flows")
    E, params = poly_sympy()
    ref = nflows.gd(E, params, [0.8, -0.5], 0.2, 50)
    got = bt.gd(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.2, 50).numpy()
    assert np.allclose(got, ref, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- dtype, divergence, bad input


def test_float32_is_followed():
    th = TH0.float()
    assert bt.gd(quad, th, 0.1, 3).dtype == torch.float32
    assert bt.trajectory(quad, th, 0.1, 2, flow="igr").dtype == torch.float32
    assert bt.trajectory(quad, th, 0.1, 2, flow="pf").dtype == torch.complex64
    out, losses = bt.gd(quad, th, 0.1, 3, return_losses=True)
    assert losses.shape == (4,) and float(losses[0]) == pytest.approx(0.35**2 + 0.01 * 0.04)


def test_gd_loss_becomes_nan_names_the_step():
    def f(t):
        return ((t + 1.0) ** 2).sum() + torch.sqrt(t).sum()

    with pytest.raises(bea.IntegrationError, match="step 1") as exc:
        bt.gd(f, torch.tensor([1.0], dtype=F64), 0.3, 10)
    assert exc.value.step == 1 and exc.value.t == pytest.approx(0.3)


def test_gd_overflow_names_the_step():
    with pytest.raises(bea.IntegrationError, match="not finite at step 28") as exc:
        bt.gd(lambda t: (t**2).sum(), torch.ones(2), 3.0, 200)
    # |1 − 2h|^k = 5^k: the loss 2·25^k passes float32's 3.4e38 at k = 28
    assert exc.value.step == 28 and exc.value.t == pytest.approx(84.0)


def test_flow_divergence_reports_time():
    with pytest.raises(bea.IntegrationError, match="GD step") as exc:
        bt.trajectory(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.2, 10, flow="positive")
    assert exc.value.t == pytest.approx(1.6685, abs=1e-3)


def test_bad_inputs():
    with pytest.raises(bea.InvalidInputError, match=r"entries \[1\]"):
        bt.gd(quad, torch.tensor([0.0, math.nan], dtype=F64), 0.1, 3)
    with pytest.raises(bea.InvalidInputError, match="floating"):
        bt.gd(quad, torch.tensor([1, 2]), 0.1, 3)
    with pytest.raises(bea.InvalidInputError, match="1-D"):
        bt.gd(quad, torch.ones(2, 2), 0.1, 3)
    with pytest.raises(bea.InvalidInputError, match="step size"):
        bt.gd(quad, TH0, 0.0, 3)
    with pytest.raises(bea.InvalidInputError, match="step size"):
        bt.trajectory(quad, TH0, math.inf, 3)
    with pytest.raises(bea.InvalidInputError, match="steps"):
        bt.gd(quad, TH0, 0.1, -1)
    with pytest.raises(bea.InvalidInputError, match="steps"):
        bt.trajectory(quad, TH0, 0.1, 2.5)
    with pytest.raises(bea.UnknownMethodError, match="known flows"):
        bt.trajectory(quad, TH0, 0.1, 3, flow="sgd")
    with pytest.raises(bea.UnknownMethodError, match="sympy"):
        bt.trajectory(quad, TH0, 0.1, 3, flow="bea")
    with pytest.raises(bea.InvalidLossError, match="scalar"):
        bt.gd(lambda t: t**2, TH0, 0.1, 3)
    with pytest.raises(bea.InvalidInputError, match="k must"):
        bt.trajectory(quad, TH0, 0.1, 3, flow="pf", k=0)
    with pytest.raises(bea.InvalidInputError, match="pass k"):
        bt.trajectory(lambda t: (t**2).sum(), torch.zeros(1001, dtype=F64), 0.1, 3, flow="pf")
    with pytest.raises(bea.InvalidInputError, match="not finite"):
        bt.gd(lambda t: torch.log(t).sum(), torch.tensor([-1.0], dtype=F64), 0.1, 3)


def test_gd_every_keeps_every_rth_iterate():
    full, losses = bt.gd(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.05, 20, return_losses=True)
    thin, losses2 = bt.gd(poly, torch.tensor([0.8, -0.5], dtype=F64), 0.05, 20, every=5, return_losses=True)
    assert thin.shape == (5, 2) and torch.equal(thin, full[::5])
    assert torch.equal(losses, losses2)
    with pytest.raises(bea.IntegrationError) as exc:
        bt.gd(lambda t: (t**2).sum(), torch.ones(2), 3.0, 200, every=7)
    assert exc.value.step == 28


def test_dense_pf_is_refused_beyond_dense_max_in_flow_field_and_trajectory():
    """k=None means an n×n Hessian: flow_field and trajectory both refuse it beyond DENSE_MAX
    parameters, before any Hessian is built, and name the way out (k); at n = DENSE_MAX the field is built."""
    from bea.torch.flows import DENSE_MAX, flow_field

    def f(t):
        return (t**2).sum() / 2

    n = DENSE_MAX + 1
    with pytest.raises(bea.InvalidInputError, match="pass k"):
        flow_field(f, "pf", 0.1, n=n)
    with pytest.raises(bea.InvalidInputError, match="pass k"):
        bea.torch.trajectory(f, torch.zeros(n, dtype=torch.float64), 0.1, 1, flow="pf")
    with pytest.raises(bea.InvalidInputError, match="positive integer"):
        flow_field(f, "pf", 0.1, n=3, k=0)
    F = flow_field(f, "pf", 0.1, n=DENSE_MAX)  # allowed: built lazily, evaluated on a small case below
    assert callable(F)
    small = flow_field(f, "pf", 0.1, n=3)
    theta = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    # E = |θ|²/2: H = I, α(h) = log(1 − h)/h on every direction
    expected = torch.log(torch.tensor(0.9, dtype=torch.float64)) / 0.1 * theta
    assert torch.allclose(small(theta).real, expected, atol=1e-12)
