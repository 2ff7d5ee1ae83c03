import os

import numba
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, settings

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default: "ci" when CI is set, else "dev"):
#   ci   — derandomized: the examples are a fixed function of each test, so a landing never depends
#          on luck; 30 examples per test (or the test's own @settings(max_examples=...)).
#   dev  — the same budgets, fresh random examples on every run.
#   deep — 20× every budget (30 → 600; a test that asks for 8 examples gets 160), random examples;
#          run it before resolving an issue that touches a property-tested formula.
# Every profile prints the @reproduce_failure blob of a falsifying example.
DEEP_FACTOR = 20
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=30, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=30, derandomize=False, **_COMMON)  # explicit: Hypothesis
# derandomizes by default when it detects a CI environment
settings.register_profile("deep", max_examples=30 * DEEP_FACTOR, derandomize=False, **_COMMON)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def pytest_report_header(config):
    return f"hypothesis profile: {PROFILE} (set HYPOTHESIS_PROFILE=ci, dev or deep)"


def pytest_collection_modifyitems(config, items):
    """Under ``deep``, scale the budget of tests that set their own ``max_examples`` as well.

    A test without ``@settings`` already runs the profile's 600 examples; one with
    ``@settings(max_examples=k)`` (an expensive test) gets min(20·k, 600).
    """
    if PROFILE != "deep":
        return
    cap = settings.get_profile("deep").max_examples
    seen = set()
    for item in items:
        fn = getattr(item, "obj", None)
        own = getattr(fn, "_hypothesis_internal_use_settings", None)  # where @given keeps them
        if own is None or not hasattr(fn, "hypothesis") or id(fn) in seen:
            continue
        seen.add(id(fn))
        target = min(cap, own.max_examples * DEEP_FACTOR)
        if own.max_examples < target:
            fn._hypothesis_internal_use_settings = settings(own, max_examples=target)


@pytest.fixture(autouse=True, scope="session")
def _isolated_kernel_cache(tmp_path_factory):
    """Compiled kernels go to a per-session cache directory, never the user's."""
    if "BEA_CACHE_DIR" not in os.environ:
        os.environ["BEA_CACHE_DIR"] = str(tmp_path_factory.mktemp("bea-cache"))
    yield


# --------------------------------------------------------------------------- shared test losses
# One definition each, imported by the test modules (``from conftest import ROSEN``). sympy symbols
# compare by name, so these mix with any test's own ``x, y = sp.symbols("x y")``.
_x, _y = sp.symbols("x y")
QUAD = _x**2 + _y**2 / 100  # H = diag(2, 0.02), design notes §3
ROSEN = (1 - _x) ** 2 + 100 * (_y - _x**2) ** 2  # Rosenbrock, minimum (1, 1), λ_max ≈ 1001.6 there
ROSEN10 = (1 - _x) ** 2 + 10 * (_y - _x**2) ** 2  # a milder banana


def rosen_grad(t):
    """∇ROSEN by hand (an independent route to the symbolic gradient)."""
    a, b = t
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def rosen_hess(t):
    """∇²ROSEN by hand."""
    a, b = t
    return np.array([[2 - 400 * (b - a * a) + 800 * a * a, -400 * a], [-400 * a, 200.0]])


@numba.njit
def rosenbrock_ngf(y, p):
    """y' = −∇ROSEN written out by hand, as a numba rhs ``f(y, p)`` (p unused)."""
    out = np.empty(2)
    out[0] = 2.0 * (1.0 - y[0]) + 400.0 * y[0] * (y[1] - y[0] * y[0])
    out[1] = -200.0 * (y[1] - y[0] * y[0])
    return out
