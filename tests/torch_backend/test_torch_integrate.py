"""bea.torch.solve against the numba solver of bea.integrate on the same fields (one tableau feeds
both), closed forms, a finite-time blow-up, and bad input."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bea  # noqa: E402
from bea.integrate import solve as nsolve  # noqa: E402
from bea.torch.integrate import TorchSolution, solve  # noqa: E402
from conftest import rosenbrock_ngf

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)


def rosenbrock_ngf_t(y):
    return torch.stack([2.0 * (1.0 - y[0]) + 400.0 * y[0] * (y[1] - y[0] ** 2), -200.0 * (y[1] - y[0] ** 2)])


@numba.njit
def rotation(y, p):
    # y' = (−0.1 + 3i) y componentwise: complex state
    return (-0.1 + 3.0j) * y


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_same_steps_as_numba_solver(method):
    t_eval = np.linspace(0.0, 0.3, 7)
    y0 = np.array([-1.2, 1.0])
    ref = nsolve(rosenbrock_ngf, y0, t_eval, 0.0, method=method, rtol=1e-8, atol=1e-10)
    sol = solve(rosenbrock_ngf_t, torch.tensor(y0, dtype=torch.float64), t_eval, method=method, rtol=1e-8, atol=1e-10)
    assert isinstance(sol, TorchSolution) and sol.success
    # the same algorithm and tableau: the same accepted/rejected sequence and (to rounding) the same states
    assert (sol.naccepted, sol.nrejected, sol.nfev) == (ref.naccepted, ref.nrejected, ref.nfev)
    assert np.allclose(sol.y.numpy(), ref.y, rtol=1e-11, atol=1e-13)


def test_complex_state_closed_form():
    lam = complex(-0.1, 3.0)
    y0 = torch.tensor([1.0 + 0.5j, -2.0j], dtype=torch.complex128)
    t_eval = [0.0, 0.5, 1.0, 2.0]
    sol = solve(lambda y: lam * y, y0, t_eval, method="dop853", rtol=1e-11, atol=1e-13)
    exact = np.exp(lam * np.array(t_eval))[:, None] * y0.numpy()[None, :]
    assert np.allclose(sol.y.numpy(), exact, rtol=1e-9, atol=1e-11)
    ref = nsolve(rotation, y0.numpy(), t_eval, 0.0, method="dop853", rtol=1e-11, atol=1e-13)
    assert sol.naccepted == ref.naccepted


def test_real_start_complex_field_is_promoted():
    sol = solve(lambda y: (1j * y), torch.tensor([1.0], dtype=torch.float64), [0.0, math.pi / 2], rtol=1e-10, atol=1e-12)
    assert sol.y.dtype == torch.complex128
    assert abs(complex(sol.y[-1, 0]) - 1j) < 1e-8


def test_float32_state_stays_float32():
    sol = solve(lambda y: -y, torch.ones(3), [0.0, 1.0], rtol=1e-5, atol=1e-7)
    assert sol.y.dtype == torch.float32
    assert torch.allclose(sol.y[-1], torch.full((3,), math.exp(-1.0)), rtol=1e-4)


def test_blow_up_reports_time():
    # y' = y², y(0) = 1: y = 1/(1 − t) blows up at t = 1
    with pytest.raises(bea.IntegrationError) as exc:
        solve(lambda y: y * y, torch.ones(1, dtype=torch.float64), [0.0, 2.0])
    assert exc.value.t == pytest.approx(1.0, abs=1e-3)
    sol = solve(lambda y: y * y, torch.ones(1, dtype=torch.float64), [0.0, 0.5, 2.0], on_failure="return")
    assert sol.status in (2, 3) and sol.y[1, 0].item() == pytest.approx(2.0, rel=1e-6)
    assert torch.isnan(sol.y[2]).all()


def test_nonfinite_field_is_reported():
    # the field is NaN beyond y = 2: the solver shrinks, then stops there with status 3
    def field(y):
        return torch.where(y < 2.0, torch.ones_like(y), torch.full_like(y, math.nan))

    with pytest.raises(bea.IntegrationError, match="non-finite") as exc:
        solve(field, torch.zeros(1, dtype=torch.float64), [0.0, 5.0])
    assert exc.value.t == pytest.approx(2.0, abs=1e-6)


def test_callback_sees_every_output():
    seen = []
    solve(lambda y: -y, torch.ones(2, dtype=torch.float64), [0.0, 0.1, 0.2, 0.3], callback=lambda i, t, y, fy: seen.append((i, t, float(fy[0] + y[0]))))
    assert [(i, t) for i, t, _ in seen] == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3)]
    assert all(abs(r) < 1e-15 for _, _, r in seen)  # fy = −y, the field at the output


def test_bad_inputs():
    y0 = torch.ones(2, dtype=torch.float64)
    with pytest.raises(bea.UnknownMethodError):
        solve(lambda y: -y, y0, [0.0, 1.0], method="rk4")
    with pytest.raises(bea.InvalidInputError, match="increasing"):
        solve(lambda y: -y, y0, [0.0, 1.0, 1.0])
    with pytest.raises(bea.InvalidInputError, match="finite"):
        solve(lambda y: -y, torch.tensor([math.nan, 1.0]), [0.0, 1.0])
    with pytest.raises(bea.InvalidInputError, match="shape"):
        solve(lambda y: y[:1], y0, [0.0, 1.0])
    with pytest.raises(bea.InvalidInputError, match="rtol"):
        solve(lambda y: -y, y0, [0.0, 1.0], rtol=0.0)
    with pytest.raises(bea.InvalidInputError):
        solve(lambda y: -y, torch.ones(2, 2), [0.0, 1.0])


@pytest.mark.parametrize("method, order", [("bs3", 3), ("dopri5", 5)])
def test_fixed_grid_convergence_order(method, order):
    # a huge tolerance accepts every step, so the output grid is the step grid: the global error at
    # t = 1 then falls like N^-order (y' = −y + sin(y), a nonlinear scalar field)
    def rhs(y):
        return -y + torch.sin(y)

    ref = solve(rhs, torch.tensor([1.0], dtype=torch.float64), [0.0, 1.0], method="dop853", rtol=1e-13, atol=1e-15).y[-1]
    errs = []
    for N in (8, 16, 32):
        sol = solve(rhs, torch.tensor([1.0], dtype=torch.float64), np.linspace(0.0, 1.0, N + 1), method=method, rtol=1e3, atol=1e3)
        assert sol.naccepted == N and sol.nrejected == 0
        errs.append(float((sol.y[-1] - ref).abs()))
    slopes = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(slopes - order) < 0.6), slopes


def test_torch_methods_registry_is_a_deprecated_alias():
    """bea.torch.integrate.METHODS still works, with a warning; INTEGRATORS extends the numba registry."""
    import bea.integrate as bi
    import bea.torch.integrate as ti

    with pytest.warns(DeprecationWarning, match="INTEGRATORS"):
        assert ti.METHODS is ti.INTEGRATORS
    assert set(ti.INTEGRATORS) == set(bi.INTEGRATORS) | {"bs3"}
