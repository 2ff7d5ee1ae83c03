"""Tests of bea.compile.codegen: sympy -> numba kernels, cached in memory and on disk.

numba compiles each kernel in ~0.3-1 s, so the kernels are module-level fixtures shared by tests.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mpmath
import numba
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bea.compile.codegen import cache_dir, clear_memory_cache, compile_exprs, kernel_source
from bea.errors import BEAError, InvalidInputError, InvalidLossError, InvalidParamsError

x, y, z, h = sp.symbols("x y z h")
REPO = Path(__file__).resolve().parents[2]

# one expression list exercising polynomials, exp/log/sin/sqrt, rationals and negative powers
EXPRS = [
    (1 - x) ** 2 + 100 * (y - x**2) ** 2,
    sp.exp(x) * sp.log(y) - sp.sin(x * y) + sp.Rational(1, 3) * x**3,
    x / 3 + h * y / 7 + sp.sqrt(x) / y**2 - sp.Rational(5, 720) * h**2 * x**2 * y,
    sp.cos(x) ** 2 / (1 + h * y**2) + sp.atan(x) - sp.tanh(y) + sp.pi * h,
]
MATRIX = sp.Matrix([[x * y, x**2 - y, sp.Rational(1, 3)], [sp.exp(-x), h * x * y**3, y / 3 - x]])
PARAMS = [x, y]


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    """A private BEA_CACHE_DIR for this module (the memory cache is cleared around it)."""
    folder = tmp_path_factory.mktemp("bea_cache")
    old = os.environ.get("BEA_CACHE_DIR")
    os.environ["BEA_CACHE_DIR"] = str(folder)
    clear_memory_cache()
    yield folder
    clear_memory_cache()
    if old is None:
        del os.environ["BEA_CACHE_DIR"]
    else:
        os.environ["BEA_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def kern(kernel_cache):
    return compile_exprs(EXPRS, PARAMS, [h])


@pytest.fixture(scope="module")
def mkern(kernel_cache):
    return compile_exprs(MATRIX, PARAMS, [h], name="matrix_kernel")


def reference(exprs, point, hval, dps=40):
    """High-precision value of exprs at theta=point, h=hval (real or complex), via mpmath."""
    f = sp.lambdify([x, y, h], exprs, "mpmath")
    with mpmath.workdps(dps):
        args = [mpmath.mpmathify(complex(v) if np.iscomplexobj(v) else float(v)) for v in (*point, hval)]
        vals = f(*args)
        vals = vals.tolist() if hasattr(vals, "tolist") else vals
        return np.array(vals, dtype=complex)


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.max(np.abs(b)))))


# --------------------------------------------------------------------------- values
@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.1, 3.0), st.floats(0.2, 3.0), st.floats(-0.5, 0.5),
)
def test_kernel_equals_sympy_real(kern, a, b, hv):
    out = kern(np.array([a, b]), hv)
    assert out.dtype == np.float64 and out.shape == (4,)
    close(out, reference(EXPRS, (a, b), hv).real)


def test_kernel_matches_evalf(kern):
    theta = np.array([0.7, 1.3])
    subs = {x: sp.Float(0.7, 30), y: sp.Float(1.3, 30), h: sp.Float(0.05, 30)}
    expected = [float(e.evalf(30, subs=subs)) for e in EXPRS]
    close(kern(theta, 0.05), expected)


def test_rationals_are_float_division():
    k = compile_exprs([x / 3, sp.Rational(1, 3) * x, sp.Rational(7, 2), x ** sp.Rational(1, 3)], [x])
    assert "//" not in k.source
    np.testing.assert_allclose(k(np.array([1.0])), [1 / 3, 1 / 3, 3.5, 1.0], rtol=1e-15)
    # integer theta is promoted to float64: no truncating integer arithmetic anywhere
    out = k(np.array([1]))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [1 / 3, 1 / 3, 3.5, 1.0], rtol=1e-15)


def test_integer_powers_stay_integer(kern):
    src = kernel_source(kern)
    assert "**2" in src
    assert "**2.0" not in src and "**(-1.0)" not in src and "**(-2.0)" not in src


@pytest.mark.parametrize("dtype", [float, complex])
def test_integer_powers_exact(dtype):
    ks = [-7, -3, -2, -1, 2, 3, 4, 5, 7, 11, 16, 63, 64, 65, 100]
    long_base = sp.exp(x) + sp.cos(y) + sp.sqrt(x * y + 7)  # printed as a plain power
    k = compile_exprs([x**n for n in ks] + [(x + y) ** 5, long_base**5], PARAMS)
    assert "**2.0" not in k.source and "cpow" not in k.source
    a, b = dtype(0.9) + (0.35j if dtype is complex else 0), dtype(1.1)
    out = k(np.array([a, b], dtype=dtype))
    expected = [a**n for n in ks] + [(a + b) ** 5, (np.exp(a) + np.cos(b) + np.sqrt(a * b + 7)) ** 5]
    np.testing.assert_allclose(out, expected, rtol=2e-15 * 8)


# a loss with 1/x³ and x⁻² terms: in a sum sympy keeps them as bare negative powers (not denominators
# of a Mul), so they reach the printer's own ``1.0/(x^k)`` branch; its derivatives carry x⁻⁴, y⁻³, ...
NEG_POWER_LOSS = 1 / x**3 + 2 * y**-2 + x * y / 5 + (x + y) ** -3 + x**-7 / 10


@pytest.mark.parametrize("use_cse", [True, False])
def test_negative_integer_powers_against_sympy(use_cse):
    """Every kernel of a loss with negative integer powers (value, gradient, Hessian and a modified
    field) equals sympy's own high-precision evaluation at random points: ``x**-k`` is 1/x^k, never
    x^k (a single-character slip in the printer that cse hides when a positive power is shared)."""
    import bea

    E = NEG_POWER_LOSS
    grad = [sp.diff(E, v) for v in PARAMS]
    exprs = [E, *grad, *[sp.diff(g, v) for g in grad for v in PARAMS]]
    k = compile_exprs(exprs, PARAMS, cse=use_cse, name="neg_powers")
    mf = bea.modified_field(E, PARAMS, order=2)
    kf = compile_exprs(mf.field, PARAMS, (mf.h,), cse=use_cse, name="neg_powers_field")
    rng = np.random.default_rng(7)
    for a, b in rng.uniform(0.4, 2.5, size=(6, 2)):
        subs = {x: sp.Float(a, 30), y: sp.Float(b, 30)}
        close(k(np.array([a, b])), [float(e.evalf(30, subs=subs)) for e in exprs], rtol=1e-12)
        subs[mf.h] = sp.Float(0.01, 30)
        close(kf(np.array([a, b]), 0.01), [float(e.evalf(30, subs=subs)) for e in mf.field], rtol=1e-11)
    z = np.array([0.8 + 0.3j, 1.2 - 0.4j])
    zsubs = {x: sp.Float(0.8, 30) + sp.Float(0.3, 30) * sp.I, y: sp.Float(1.2, 30) - sp.Float(0.4, 30) * sp.I}
    close(k(z), [complex(e.evalf(30, subs=zsubs)) for e in exprs], rtol=1e-11)
    assert "(1.0/(" in k.source  # the bare negative powers went through the printer's own branch


def test_huge_coefficients_compile():
    k = compile_exprs([sp.Rational(10**30, 7) * x + 10**40, sp.Rational(1, 3 * 10**25) * x], [x])
    np.testing.assert_allclose(k(np.array([2.0])), [2e30 / 7 + 1e40, 2 / 3e25], rtol=1e-15)


def test_matrix_shape_and_values(mkern):
    theta = np.array([0.4, -1.1])
    out = mkern(theta, 0.2)
    assert out.shape == (2, 3) and out.dtype == np.float64
    close(out, reference(MATRIX, theta, 0.2).real)


def test_column_matrix_is_1d_row_matrix_is_2d():
    k = compile_exprs(sp.Matrix([x + y, x * y]), PARAMS)
    out = k(np.array([2.0, 3.0]))
    assert out.shape == (2,) and k.out_shape == (2,)
    np.testing.assert_array_equal(out, [5.0, 6.0])
    row = compile_exprs(sp.Matrix([[x + y, x * y]]), PARAMS)
    np.testing.assert_array_equal(row(np.array([2.0, 3.0])), [[5.0, 6.0]])


# positive real parts keep away from the branch cuts (and poles) of sqrt, log and atan, where numpy
# and mpmath may legitimately disagree about the side of the cut
@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 2.0), st.floats(-2.0, 2.0), st.floats(0.2, 2.0), st.floats(-2.0, 2.0))
def test_complex_theta(kern, ar, ai, br, bi):
    a, b = complex(ar, ai), complex(br, bi)
    out = kern(np.array([a, b]), 0.1)
    assert out.dtype == np.complex128
    close(out, reference(EXPRS, (a, b), 0.1), rtol=1e-10)


def test_complex_matrix(mkern):
    theta = np.array([0.4 + 0.3j, -1.1 - 2j])
    out = mkern(theta, 0.2)
    assert out.dtype == np.complex128 and out.shape == (2, 3)
    close(out, reference(MATRIX, theta, 0.2), rtol=1e-12)


def test_principal_branch_of_log():
    k = compile_exprs([sp.log(1 - h * x) / h], [x], [h])
    out = k(np.array([2.0 + 0j]), 1.05)
    np.testing.assert_allclose(out, [np.log(1 - 2.1 + 0j) / 1.05], rtol=1e-15)
    assert out[0].imag > 0  # log(-1.1) = log 1.1 + i pi


def test_nonsmooth_and_piecewise():
    k = compile_exprs(
        [sp.Piecewise((x, sp.And(x > 0, y > 0)), (y, sp.Eq(x, 1)), (0, True)), sp.Max(x, y, 1), sp.Min(x, y),
         sp.Abs(x)],
        PARAMS,
    )
    np.testing.assert_array_equal(k(np.array([1.0, -1.0])), [-1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(k(np.array([2.0, 3.0])), [2.0, 3.0, 2.0, 2.0])
    np.testing.assert_array_equal(k(np.array([-2.0, 0.5])), [0.0, 1.0, -2.0, 2.0])


def test_awkward_symbol_names():
    a, lam, th, kw = sp.Symbol("a[0]"), sp.Symbol("lambda"), sp.Symbol("theta"), sp.Symbol("_c0")
    x2 = sp.Symbol("x", positive=True)  # same name as x, a different symbol
    k = compile_exprs([a + 2 * lam + 3 * th + 4 * kw + 5 * x + 6 * x2], [a, lam, th, kw, x], [x2])
    assert k(np.array([1.0, 1.0, 1.0, 1.0, 1.0]), 1.0)[0] == 21.0


def test_no_scalars_and_no_cse():
    k = compile_exprs([x * y, x + y], PARAMS, cse=False)
    np.testing.assert_array_equal(k(np.array([2.0, 5.0])), [10.0, 7.0])


def test_scalar_as_int():
    k = compile_exprs([x / h, h ** (-2) * x], [x], [h])
    np.testing.assert_allclose(k(np.array([1.0]), 2), [0.5, 0.25])


def test_array_likes_as_lambdify_accepts(kern):
    """Python callers may pass θ as a list or tuple (``kern([0.3, 0.2], h)``), including ints and
    complex entries, and rows to ``batch`` as nested lists: the same numbers as for an ndarray,
    and a BEAError naming the problem for non-numbers or a wrong shape — never a numba TypingError."""
    import bea

    ref = kern(np.array([0.3, 0.2]), 0.05)
    np.testing.assert_array_equal(kern([0.3, 0.2], 0.05), ref)
    np.testing.assert_array_equal(kern((0.3, 0.2), 0.05), ref)
    np.testing.assert_array_equal(kern([1, 2], 0.05), kern(np.array([1.0, 2.0]), 0.05))
    np.testing.assert_array_equal(kern([0.3 + 0.1j, 0.2], 0.05), kern(np.array([0.3 + 0.1j, 0.2]), 0.05))
    np.testing.assert_array_equal(kern.batch([[0.3, 0.2], [1, 2]], 0.05), kern.batch(np.array([[0.3, 0.2], [1.0, 2.0]]), 0.05))
    for bad, match in ((["a", "b"], "numbers"), ([[0.3, 0.2]], "vector"), (0.3, "vector")):
        with pytest.raises(InvalidInputError, match=match):
            kern(bad, 0.05)
    mf = bea.modified_field((1 - x) ** 2 + 100 * (y - x**2) ** 2, PARAMS, order=2)
    mk = mf.compile()
    np.testing.assert_array_equal(mk([0.3, 0.2], 1e-3), mk(np.array([0.3, 0.2]), 1e-3))
    subs = {x: 0.3, y: 0.2, mf.h: 1e-3}
    close(mk([0.3, 0.2], 1e-3), [float(e.evalf(30, subs=subs)) for e in mf.field])


# --------------------------------------------------------------------------- batch
def test_batch_equals_rows(kern):
    rng = np.random.default_rng(1)
    thetas = rng.uniform(0.2, 2.0, size=(257, 2))
    out = kern.batch(thetas, 0.03)
    assert out.shape == (257, 4)
    np.testing.assert_array_equal(out, np.array([kern(t, 0.03) for t in thetas]))


def test_batch_matrix_and_complex(mkern):
    rng = np.random.default_rng(2)
    thetas = rng.normal(size=(50, 2)) + 1j * rng.normal(size=(50, 2))
    out = mkern.batch(thetas, 0.5)
    assert out.shape == (50, 2, 3) and out.dtype == np.complex128
    np.testing.assert_array_equal(out, np.array([mkern(t, 0.5) for t in thetas]))


def test_batch_bad_shape(kern):
    with pytest.raises(ValueError, match="shape"):
        kern.batch(np.ones((3, 5)), 0.1)


# --------------------------------------------------------------------------- inside numba
def test_called_from_njit(kern):
    @numba.njit
    def euler(theta, hh, n):
        for _ in range(n):
            theta = theta - hh * kern(theta, hh)[:2]
        return theta

    theta = np.array([0.5, 0.9])
    expected = theta.copy()
    for _ in range(5):
        expected = expected - 1e-4 * kern(expected, 1e-4)[:2]
    np.testing.assert_allclose(euler(theta, 1e-4, 5), expected, rtol=1e-14)


def test_passed_as_argument_and_into(kern):
    @numba.njit
    def apply(f, into, theta, hh):
        out = np.empty(4)
        into(theta, hh, out)
        return f(theta, hh), out

    theta = np.array([0.5, 0.9])
    a, b = apply(kern, kern.into, theta, 0.1)
    np.testing.assert_array_equal(a, kern(theta, 0.1))
    np.testing.assert_array_equal(b, a)


def test_first_class_function_type():
    k = compile_exprs([x * y, x - y], PARAMS, [h])
    ftype = numba.types.FunctionType(numba.float64[::1](numba.float64[::1], numba.float64))

    @numba.njit((ftype, numba.float64[::1]))
    def call(f, theta):
        return f(theta, 2.0)

    np.testing.assert_array_equal(call(k, np.array([3.0, 4.0])), [12.0, -1.0])


# --------------------------------------------------------------------------- caching
def test_memory_cache_returns_same_object(kern):
    assert compile_exprs(EXPRS, PARAMS, [h]) is kern
    rebuilt = [sp.sympify(str(e)) for e in EXPRS]  # equal, but new objects
    assert compile_exprs(rebuilt, tuple(PARAMS), (h,)) is kern
    assert compile_exprs(EXPRS, PARAMS, [h], cse=False) is not kern


def test_attributes(kern):
    assert kern.source == kernel_source(kern)
    assert len(kern.cache_key) == 64
    assert kern.params == (x, y) and kern.scalars == (h,) and kern.out_shape == (4,)
    assert Path(kern.path).read_text() == kern.source
    assert Path(kern.path).parent == cache_dir()
    assert isinstance(kern, numba.core.registry.CPUDispatcher)


def _python(script, cache, **kw):
    env = dict(os.environ, BEA_CACHE_DIR=str(cache), PYTHONHASHSEED="12345")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_disk_cache_in_new_process(kernel_cache):
    exprs = [x**7 - sp.Rational(3, 11) * y * h, sp.exp(-x * y) + z]
    k = compile_exprs(exprs, [x, y, z], [h])
    expected = k(np.array([0.3, 0.4, 0.5]), 0.25)
    assert not k.from_disk_cache
    files = sorted(p.name for p in Path(kernel_cache, "kernels").rglob("*"))
    script = """
        import numpy as np, sympy as sp
        import bea.compile.codegen
        from bea.compile.codegen import compile_exprs
        def no_generation(*args):
            raise AssertionError("the index should have found the module without cse and printing")
        bea.compile.codegen._generate = no_generation
        x, y, z, h = sp.symbols("x y z h")
        k = compile_exprs([x**7 - sp.Rational(3, 11)*y*h, sp.exp(-x*y) + z], [x, y, z], [h])
        out = k(np.array([0.3, 0.4, 0.5]), 0.25)
        print(k.from_disk_cache, sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()),
              k.cache_key, repr(out.tolist()))
        """
    proc = _python(script, kernel_cache)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    from_disk, hits, misses, key, out = stdout.split(maxsplit=4)
    assert from_disk == "True" and int(hits) >= 1 and int(misses) == 0
    assert key == k.cache_key
    np.testing.assert_array_equal(eval(out), expected)
    assert sorted(p.name for p in Path(kernel_cache, "kernels").rglob("*")) == files  # nothing new written


def test_concurrent_processes(tmp_path):
    """Two processes compiling the same kernel at once into an empty cache both succeed and leave
    exactly one module file (atomic create-once writes)."""
    script = """
        import numpy as np, sympy as sp
        from bea.compile.codegen import compile_exprs
        x, y, h = sp.symbols("x y h")
        k = compile_exprs([x**3 * y - h, sp.sin(x)], [x, y], [h])
        print(repr(k(np.array([2.0, 3.0]), 0.5).tolist()))
        """
    procs = [_python(script, tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert results[0][0] == results[1][0] and eval(results[0][0]) == [23.5, np.sin(2.0)]
    folder = tmp_path / "kernels"
    assert len(list(folder.glob("*.py"))) == 1 and not list(folder.glob(".*.tmp"))


def test_clear_memory_cache_reloads_from_disk():
    exprs = [x**5 + y]
    k1 = compile_exprs(exprs, PARAMS)
    v = k1(np.array([2.0, 1.0]))
    clear_memory_cache()
    k2 = compile_exprs(exprs, PARAMS)
    assert k2 is not k1 and k2.from_disk_cache and k2.cache_key == k1.cache_key
    np.testing.assert_array_equal(k2(np.array([2.0, 1.0])), v)
    assert sum(k2.stats.cache_hits.values()) == 1


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BEA_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "kernels" and cache_dir().is_dir()
    monkeypatch.delenv("BEA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "bea" / "kernels"


def test_unwritable_cache_dir_falls_back(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BEA_CACHE_DIR", str(blocker / "sub"))
    folder = cache_dir()
    assert folder.is_dir() and blocker not in folder.parents
    k = compile_exprs([x + 2 * y], PARAMS)  # compiles although the configured cache is unusable
    assert k(np.array([1.0, 1.0]))[0] == 3.0


def test_damaged_index_is_ignored(kernel_cache):
    exprs = [x**8 + 3 * y]
    k1 = compile_exprs(exprs, PARAMS)
    for index in Path(kernel_cache, "kernels").glob("*.key"):
        index.write_text("0" * 64)
    clear_memory_cache()
    k2 = compile_exprs(exprs, PARAMS)
    assert k2.from_disk_cache and k2.cache_key == k1.cache_key and k2(np.array([1.0, 1.0]))[0] == 4.0


def test_damaged_module_file_is_rewritten(kernel_cache):
    exprs = [x**9 - y]
    k1 = compile_exprs(exprs, PARAMS)
    Path(k1.path).write_text("garbage")
    clear_memory_cache()
    k2 = compile_exprs(exprs, PARAMS)
    assert not k2.from_disk_cache and Path(k2.path).read_text() == k2.source
    assert k2(np.array([1.0, 3.0]))[0] == -2.0


# --------------------------------------------------------------------------- errors
def test_wrong_theta_length(kern):
    with pytest.raises(ValueError, match="length 2"):
        kern(np.ones(3), 0.1)


def test_free_symbols_named():
    with pytest.raises(InvalidParamsError, match=r"\['h', 'z'\]"):
        compile_exprs([x + z * h], PARAMS)
    with pytest.raises(InvalidParamsError, match="assumptions"):
        compile_exprs([x + sp.Symbol("h", positive=True)], PARAMS, [h])


@pytest.mark.parametrize(
    "params, scalars, match",
    [
        ([x, "y"], (), "not symbols"),
        ([x, x * y], (), "not symbols"),
        ([x, y, x], (), "duplicate"),
        ([x, y], [x], "duplicate"),
        ([], (), "empty"),
        (x, (), "sequence"),
        ([x, y], [2], "not symbols"),
    ],
)
def test_bad_params(params, scalars, match):
    with pytest.raises(InvalidParamsError, match=match):
        compile_exprs([x + y], params, scalars)


@pytest.mark.parametrize(
    "exprs",
    [x + y, [], ["x + y"], [sp.Eq(x, y)], [sp.Function("f")(x)], [sp.LambertW(x)], [sp.Matrix([x])],
     sp.Array([[[x]]])],
)
def test_bad_exprs(exprs):
    with pytest.raises(InvalidLossError):
        compile_exprs(exprs, PARAMS)


def test_errors_are_bea_errors():
    assert issubclass(InvalidParamsError, (BEAError, ValueError))
    with pytest.raises(InvalidInputError):
        compile_exprs([x], [x], name="not an identifier")
    with pytest.raises(InvalidInputError):
        kernel_source(lambda t: t)


# --------------------------------------------------------------------------- LLVM backend (issue #12)
llvm = pytest.mark.skipif(not __import__("bea.compile.codegen", fromlist=["llvm_available"]).llvm_available(),
                          reason="symengine with LLVM is not installed")


@llvm
def test_llvm_backend_equals_mpmath_and_the_numba_kernel(kern, mkern):
    """backend="llvm" (symengine's machine code for float64) agrees with the expressions evaluated in mpmath at 30
    digits and with the numba kernel, for a vector and a matrix output; complex θ, integer arrays and lists take the
    same contract as the numba kernel."""
    lk = compile_exprs(EXPRS, PARAMS, [h], backend="llvm")
    lm = compile_exprs(MATRIX, PARAMS, [h], name="matrix_kernel", backend="llvm")
    assert lk.backend == "llvm" and lk is compile_exprs(EXPRS, PARAMS, [h], backend="llvm")
    rng = np.random.default_rng(0)
    for _ in range(5):
        th, hv = rng.uniform(0.2, 2.0, size=2), float(rng.uniform(0.01, 1))
        with mpmath.workdps(30):
            ref = [complex(sp.N(e.subs({x: th[0], y: th[1], h: hv}), 30)).real for e in EXPRS]
        np.testing.assert_allclose(lk(th, hv), ref, rtol=1e-13)
        np.testing.assert_allclose(lk(th, hv), kern(th, hv), rtol=1e-13)
        assert lm(th, hv).shape == (2, 3)
        np.testing.assert_allclose(lm(th, hv), mkern(th, hv), rtol=1e-13)
        thc = th + 0.1j
        np.testing.assert_allclose(lk(thc, hv), kern(thc, hv), rtol=1e-13)
    np.testing.assert_allclose(lk(np.array([1, 2]), 0.5), kern(np.array([1.0, 2.0]), 0.5), rtol=1e-13)
    np.testing.assert_allclose(lk([1.0, 2.0], 0.5), kern(np.array([1.0, 2.0]), 0.5), rtol=1e-13)
    pts = rng.uniform(0.2, 2.0, size=(7, 2))
    np.testing.assert_allclose(lk.batch(pts, 0.3), kern.batch(pts, 0.3), rtol=1e-13)
    with pytest.raises(ValueError):
        lk(np.ones(3), 0.1)
    assert lk.source == kern.source and lk.into is lk.generic.into


@llvm
def test_llvm_kernel_is_first_class_in_njit_code():
    """The llvm kernel is a numba dispatcher other njit code can call and take as a FunctionType value."""
    k = compile_exprs([x * h + y, x - y * h], PARAMS, [h], name="llvm_first_class", backend="llvm")
    assert isinstance(k, numba.core.registry.CPUDispatcher)
    ftype = numba.types.FunctionType(numba.float64[::1](numba.float64[::1], numba.float64))

    @numba.njit((ftype, numba.float64[::1]))
    def call(f, theta):
        return f(theta, 2.0)

    np.testing.assert_array_equal(call(k, np.array([3.0, 4.0])), [10.0, -5.0])


def test_llvm_falls_back_when_it_cannot_compile(kern):
    """Expressions symengine cannot take (here an unevaluated Piecewise comparison) or a missing symengine give the
    numba kernel, not an error; an unknown backend is an InvalidInputError."""
    pw = [sp.Piecewise((x, y > 1), (y, True)) + h]
    k = compile_exprs(pw, PARAMS, [h], name="llvm_fallback", backend="llvm")
    np.testing.assert_allclose(k(np.array([3.0, 2.0]), 1.0), [4.0])
    np.testing.assert_allclose(k(np.array([3.0, 0.5]), 1.0), [1.5])
    with pytest.raises(InvalidInputError):
        compile_exprs(EXPRS, PARAMS, [h], backend="gcc")


@llvm
def test_llvm_auto_threshold_and_pickled_machine_code(kernel_cache):
    """backend="auto" keeps numba for small kernels (disk-cached machine code) and takes the LLVM route for large
    ones; the LLVM object is pickled next to the module file and reused after the memory cache is cleared, with the
    same values."""
    import bea.compile.codegen as cg

    small = compile_exprs([x * y + h], PARAMS, [h], name="auto_small", backend="auto")
    assert getattr(small, "backend", "numba") == "numba"
    big_exprs = [sum(sp.tanh(k * x + y / (k + 1)) ** 2 * sp.exp(-k * h * y) for k in range(1, 120)) * (j + 1) + j * x
                 for j in range(3)]
    assert len(compile_exprs(big_exprs, PARAMS, [h], name="auto_big").source) > cg.LLVM_AUTO_MIN_SOURCE
    big = compile_exprs(big_exprs, PARAMS, [h], name="auto_big", backend="auto")
    assert big.backend == "llvm"
    th = np.array([0.4, -0.3])
    first = big(th, 0.2)
    np.testing.assert_allclose(first, big.generic(th, 0.2), rtol=1e-12)
    stores = list(Path(big.path).parent.glob(f"auto_big_{big.cache_key[:32]}.*.llvm.pkl"))
    assert len(stores) == 1
    clear_memory_cache()
    again = compile_exprs(big_exprs, PARAMS, [h], name="auto_big", backend="auto")
    assert again is not big and again.backend == "llvm"
    np.testing.assert_array_equal(again(th, 0.2), first)


def test_dispatcher_from_before_a_clear_caches_a_loadable_overload(tmp_path):
    """Regression (CI, notebook 03): a kernel made before clear_memory_cache and compiled for a new
    signature after it was written to numba's disk cache as a '<dynamic>' function, and every later
    process that loaded that overload failed with ModuleNotFoundError: No module named '<dynamic>'."""
    env = dict(os.environ, BEA_CACHE_DIR=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    script = """
        import sys, numpy as np, sympy as sp
        from bea.compile.codegen import clear_memory_cache, compile_exprs
        x, y = sp.symbols("x y")
        k = compile_exprs([sp.exp(x) * y**3 - x * y], [x, y], name="stale")
        k(np.array([0.3, 0.2]))
        if sys.argv[1] == "writer":
            clear_memory_cache()  # k stays alive, as in a flow cache
        print(complex(k(np.array([0.3 + 0.1j, 0.2]))[0]))  # a new (complex) signature
    """
    outs = []
    for role in ("writer", "reader"):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), role], env=env, text=True,
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(complex(proc.stdout.strip().splitlines()[-1]))
    z = 0.3 + 0.1j
    expected = np.exp(z) * 0.2**3 - z * 0.2
    assert outs[0] == outs[1] and abs(outs[0] - expected) < 1e-15
