"""α on tensors against bea.flows.diagnostics, PF diagnostics against the numpy path and closed forms, and the
import contract (``import bea`` never imports torch; a clear error without torch)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bea.torch as bt  # noqa: E402
from bea import principal  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# the problems here are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine
torch.set_num_threads(1)

Z = np.concatenate([
    [0.0, 1e-12, -1e-9, 0.05, -0.0999, 0.1, 0.3, 0.4999, 0.5, 0.9, 0.999999, 1.0, 1.000001, 1.5, 2.0, 2.1, 3.0, 50.0,
     -0.5, -3.0, -1e6, math.inf, -math.inf],
    np.linspace(-4, 4, 401),
])


def test_alpha_matches_numpy_alpha():
    ref = principal.alpha(Z)
    got = bt.alpha(torch.tensor(Z, dtype=torch.float64)).numpy()
    assert got.dtype == np.complex128
    fin = np.isfinite(ref)
    assert np.allclose(got[fin], ref[fin], rtol=4e-16 * 8, atol=0)
    assert np.array_equal(np.isneginf(got.real), np.isneginf(ref.real))  # α(1) = −inf, never NaN
    assert not np.any(np.isnan(got))
    # real in, real out while every z ≤ 1 (as bea.flows.diagnostics.alpha)
    below = Z[Z <= 1.0]
    out = bt.alpha(torch.tensor(below, dtype=torch.float64))
    assert not out.is_complex()
    assert float(bt.alpha(torch.tensor(0.0, dtype=torch.float64))) == -1.0


def test_alpha_complex_input_and_float32():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200) * 2 + 1j * rng.normal(size=200)
    z = np.concatenate([z, [0.01 + 0.02j, 0.3 - 0.2j]])
    assert np.allclose(bt.alpha(torch.tensor(z)).numpy(), principal.alpha(z), rtol=1e-14)
    z32 = torch.tensor([0.05, 0.5, 1.5], dtype=torch.float32)
    out = bt.alpha(z32)
    assert out.dtype == torch.complex64
    assert np.allclose(out.numpy(), principal.alpha(z32.double().numpy()), rtol=1e-6)


def test_flow_alpha_matches_numpy_flow_alpha():
    if not hasattr(principal, "flow_alpha"):
        pytest.skip("bea.flows.diagnostics.flow_alpha not available")
    z = np.concatenate([Z[np.isfinite(Z)], [1.0, 1.0 + 1e-17]])
    got = bt.flow_alpha(torch.tensor(z, dtype=torch.float64)).numpy()
    assert np.allclose(got, principal.flow_alpha(z), rtol=1e-14, atol=1e-300)
    assert np.isfinite(got).all()
    assert got[z == 1.0][0].real == pytest.approx(math.log(2.0**-52))
    zc = np.array([1.5 + 0.01j, 1.5 - 0.01j, 0.2 + 0.1j, 3.0 - 1e-9j])
    assert np.allclose(bt.flow_alpha(torch.tensor(zc)).numpy(), principal.flow_alpha(zc), rtol=1e-14)


def test_stability_coefficients_no_nan_at_one_step():
    sc = bt.stability_coefficients(torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64), torch.tensor([0.3, 0.0, -1.0], dtype=torch.float64), 1.0)
    assert sc[1] == 0  # hλ = 1 with gᵀu = 0: 0, not −inf·0
    assert complex(sc[0]) == pytest.approx(complex(principal.alpha(2.0, complex_output=True)) * 0.3)


def test_diagnostics_on_quadratic_closed_forms():
    A = np.diag([3.0, 1.0, 0.25])

    def f(t):
        return 0.5 * (torch.tensor(np.diag(A)) * t * t).sum()

    theta = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    h = 0.8
    d = bt.diagnostics(f, theta, h, k=2, smallest=True, tol=1e-12)
    g = A @ theta.numpy()
    assert np.allclose(d.eigenvalues, [3.0, 1.0], rtol=1e-10)
    assert d.lambda_min == pytest.approx(0.25, rel=1e-10)
    assert np.allclose(d.g_dot_u, np.abs(g[:2]), rtol=1e-10)  # signs chosen so that gᵀu ≥ 0
    assert np.allclose(d.stability_coefficients, principal.alpha(h * np.array([3.0, 1.0]), complex_output=True) * np.abs(g[:2]), rtol=1e-9)
    assert d.drift == pytest.approx(np.linalg.norm(A @ g), rel=1e-12)
    assert d.drift_normalized == pytest.approx(np.linalg.norm(A @ g) / np.linalg.norm(g), rel=1e-12)
    # progress ratio of a quadratic: −1 + (h/2)ĝᵀAĝ exactly
    gh = g / np.linalg.norm(g)
    assert d.progress_ratio == pytest.approx(-1 + h / 2 * gh @ A @ gh, rel=1e-10)
    assert list(d.classes) == ["complex-unstable", "real-stable"]
    assert d.unstable and "lambda_i" in d.summary()


def test_diagnostics_match_numpy_path_on_polynomial():
    if not hasattr(principal, "diagnostics"):
        pytest.skip("bea.flows.diagnostics.diagnostics not available")
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    E = x**4 / 4 + x * y + y**2 + sp.Rational(1, 10) * x**2 * y**2
    th = [0.8, -0.5]
    ref = principal.diagnostics(E, [x, y], th, 0.9)

    def f(t):
        return t[0] ** 4 / 4 + t[0] * t[1] + t[1] ** 2 + 0.1 * t[0] ** 2 * t[1] ** 2

    got = bt.diagnostics(f, torch.tensor(th, dtype=torch.float64), 0.9, k=2, tol=1e-12)
    assert np.allclose(got.eigenvalues, ref.eigenvalues, rtol=1e-10)
    assert np.allclose(got.stability_coefficients, ref.stability_coefficients, rtol=1e-9)
    assert np.allclose(got.g_dot_u, ref.g_dot_u, rtol=1e-9)
    for name in ("drift", "drift_normalized", "progress_ratio", "loss"):
        assert getattr(got, name) == pytest.approx(getattr(ref, name), rel=1e-10)
    assert list(got.classes) == list(ref.classes)


def test_diagnostics_along_gd_edge_of_stability_quadratic():
    # H = diag(2, 0.02) at h = 1.05 (> 2/λ₀): λ₀ ≥ 2/h, Re sc₀ > 0 at every iterate, the loss grows
    def f(t):
        return t[0] ** 2 + 0.01 * t[1] ** 2

    last, trace = bt.diagnostics_along(f, torch.tensor([-0.35, -0.2], dtype=torch.float64), 1.05, 6, k=1)
    assert len(trace) == 7
    assert np.allclose(trace.lambda_max, 2.0, rtol=1e-8)
    assert np.all(trace.stability_coefficients[:, 0].real > 0)
    assert np.all(np.diff(trace.losses) > 0)
    assert "lambda_0" in trace.summary()
    assert np.allclose(last.numpy(), bt.gd(f, torch.tensor([-0.35, -0.2], dtype=torch.float64), 1.05, 6)[-1].numpy())


def test_import_bea_does_not_import_torch():
    code = (
        "import sys, bea, bea.flows.diagnostics, bea.integrate\n"
        "import importlib\n"
        "for m in ('bea.flows', 'bea.certify'):\n"
        "    try: importlib.import_module(m)\n"
        "    except ImportError: pass\n"
        "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')][:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_gives_clear_import_error():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "try:\n"
        "    import bea.torch\n"
        "except ImportError as e:\n"
        "    import bea\n"
        "    assert isinstance(e, bea.BEAError), type(e)\n"
        "    assert 'pip install' in str(e) and 'torch' in str(e)\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "ok"
