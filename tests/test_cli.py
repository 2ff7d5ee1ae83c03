"""The command line, run as a user would: in-process through ``bea.cli.main`` (fast) and, for the
entry point itself, as a subprocess. Each failure case checks the exit status, that the message
is one line, and — for prerequisites — that nothing was computed before the refusal."""

import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import bea
from bea.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "bea", *args], capture_output=True, text=True, timeout=300)


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("bea: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.fixture
def no_computation(monkeypatch):
    """Fail the test if GD, a flow or a certificate is computed (prerequisites come first)."""
    import bea.flows

    def refuse(*a, **k):
        raise AssertionError("computed before the prerequisites were checked")

    certify_module = sys.modules["bea.certificates.certify"]  # bea.certify is the function
    for mod, name in ((bea.flows, "gd"), (bea.flows, "trajectory"), (certify_module, "certify")):
        monkeypatch.setattr(mod, name, refuse)


# -------------------------------------------------------------------------------------------- derive
def test_derive_prints_terms_that_match_the_formulas(capsys):
    """Each component of f_1 printed for E = x³/3 + xy² is −½(Hg)_i computed by hand, and is
    labelled as the coefficient of h^1 (``f_1[x] = ...``), not as a time derivative."""
    code, out, _ = cli(capsys, "derive", "x**3/3 + x*y**2", "--params", "x,y", "--order", "1")
    assert code == 0
    lines = out.splitlines()
    assert "f_1 = -1/2 H g" in lines and not any("/dt:" in line for line in lines)
    x, y = sp.symbols("x y")
    E = x**3 / 3 + x * y**2
    g = sp.Matrix([E.diff(x), E.diff(y)])
    expected = -sp.hessian(E, (x, y)) * g / 2
    i = lines.index("f_1 = -1/2 H g")
    assert [lines[i + 1 + k].split(" = ")[0].strip() for k in range(2)] == ["f_1[x]", "f_1[y]"]
    got = [sp.sympify(lines[i + 1 + k].split(" = ", 1)[1]) for k in range(2)]
    assert [sp.expand(a - b) for a, b in zip(got, expected)] == [0, 0]


def test_derive_notation(capsys):
    code, out, _ = cli(capsys, "derive", "x**2", "--params", "x", "--order", "2", "--notation")
    assert code == 0
    assert out.splitlines() == ["f_0 = -g", "f_1 = -1/2 H g", "f_2 = -(1/3 H^2 g + 1/12 T(g,g))"]


def test_derive_series_says_it_ignores_the_loss_and_counts_powers_like_order(capsys):
    """``derive --series`` states on stderr that EXPR is not used; its table's power column h^k
    uses --order's convention (k = nodes − 1, so the largest k is --order) and the coefficients are
    the design values c((1,2)) = −1/2, c((1,2,2)) = 1/12."""
    code, out, err = cli(capsys, "derive", "x**2", "--params", "x", "--order", "2", "--series")
    assert code == 0 and "EXPR" in err and "not used" in err
    lines = out.splitlines()
    header = next(line for line in lines if not line.startswith("#"))
    assert header.split()[:2] == ["h^k", "nodes"]
    rows = [line.split() for line in lines[lines.index(header) + 1:]]
    assert all(int(r[0]) == int(r[1]) - 1 for r in rows) and max(int(r[0]) for r in rows) == 2
    c = {r[2]: Fraction(r[-1]) for r in rows}
    assert c["(1,2,2)"] == Fraction(1, 12) and c["(1,2)"] == Fraction(-1, 2)
    code, out2, _ = cli(capsys, "series", "--order", "2")
    assert code == 0 and header in out2.splitlines()


def test_derive_latex(capsys):
    code, out, _ = cli(capsys, "derive", "x**2/2", "--params", "x", "--order", "1", "--latex")
    assert code == 0 and r"\begin{aligned}" in out


def test_caret_gets_the_power_hint(capsys):
    """``x^2`` (XOR in sympy) is refused with the hint to write ``**``."""
    code, _, err = cli(capsys, "derive", "x^2 + y", "--params", "x,y")
    one_line_error(code, err, "**", "XOR")


@pytest.mark.parametrize(
    "args",
    [
        ("derive", "abs(x)", "--params", "x"),
        ("derive", "x*y", "--params", "x"),
        ("derive", "x**2", "--params", "x", "--order", "-1"),
        ("derive", "x**2", "--params", "x", "--method", "adam"),
        ("series", "--order", "2", "--method", "adam"),
        ("flows", "x**2", "--params", "x", "--theta0=1", "--flows", "nope"),
        ("certify", "x**2", "--params", "x", "--theta0=1,2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args):
    code, _, err = cli(capsys, *args)
    one_line_error(code, err)


def test_entry_point_version_help_and_errors():
    """``python -m bea``: --version prints the package version, --help the commands, and bad input
    is one line on stderr with status 2 (a real process, no traceback)."""
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"bea {bea.__version__}"
    out = run("--help")
    assert out.returncode == 0 and "derive" in out.stdout and "certify" in out.stdout
    out = run("derive", "abs(x)", "--params", "x")
    assert out.returncode == 2 and out.stderr.startswith("bea: error:") and len(out.stderr.strip().splitlines()) == 1


def test_series_command(capsys):
    code, out, _ = cli(capsys, "series", "--order", "2", "--method", "rk4")
    assert code == 0
    assert "f_1 = 0" in out  # rk4 has no h^1 correction


# --------------------------------------------------------------------------------------------- flows
def test_flows_command_matches_reference_values(capsys, tmp_path):
    """design.md §3: on E = x² + 0.01y² with h = 1.05, PF reproduces GD = (0.5636785, −0.17986367)."""
    png = tmp_path / "flows.png"
    code, out, _ = cli(
        capsys, "flows", "x**2 + 0.01*y**2", "--params", "x,y", "--theta0=-0.35,-0.2", "--h", "1.05", "--steps", "5",
        "--flows", "ngf,pf", "--plot", str(png),
    )
    assert code == 0
    last = [line for line in out.splitlines() if line.strip().startswith("5 ")][0]
    assert "0.56368" in last and "-0.17986" in last
    ngf_dist, pf_dist = (float(v) for v in last.split()[-2:])
    assert pf_dist < 1e-8 < ngf_dist
    assert png.stat().st_size > 1000


def test_a_failing_flow_is_a_row_and_the_others_survive(capsys):
    """The positive flow θ̇ = +∇E of E = x⁴ + y² blows up at t = 1/(8x₀²) = 0.125 (x₀ = 1): its
    column says 'failed' from there on and a row below the table names the failure, while NGF and
    IGR are printed in full (their distances to GD independently of the failure); exit status 1."""
    args = ("flows", "x**4 + y**2", "--params", "x,y", "--theta0=1,0.5", "--h", "0.01", "--steps", "50",
            "--flows", "ngf,igr,positive", "--every", "5")
    code, out, err = cli(capsys, *args)
    assert code == 1 and "Traceback" not in err
    lines = out.splitlines()
    table = [line.split() for line in lines if line.strip() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in table] == list(range(0, 51, 5))
    x, y = sp.symbols("x y")
    gd = bea.gd(x**4 + y**2, [x, y], [1.0, 0.5], 0.01, 50)
    ngf = bea.trajectory(x**4 + y**2, [x, y], [1.0, 0.5], 0.01, 50, flow="ngf")
    for r in table:
        k = int(r[0])
        assert float(r[-3]) == pytest.approx(np.linalg.norm(ngf[k] - gd[k]), rel=1e-3, abs=1e-12)
        assert float(r[-2]) >= 0.0
        assert r[-1] == ("failed" if k * 0.01 >= 0.125 else "-")
    failed = [line for line in lines if line.startswith("positive: FAILED")]
    assert len(failed) == 1 and "t = 0.125" in failed[0]


def test_flows_plot_prerequisites_are_checked_first(capsys, tmp_path, monkeypatch, no_computation):
    """--plot into a missing folder, to an unknown file type, of a 3-parameter loss, or without
    matplotlib: refused in one line before GD or any flow is computed."""
    base = ("flows", "x**2 + y**2", "--params", "x,y", "--theta0=1,1", "--steps", "5000", "--plot")
    code, _, err = cli(capsys, *base, str(tmp_path / "missing" / "out.png"))
    one_line_error(code, err, "does not exist")
    code, _, err = cli(capsys, *base, str(tmp_path / "out.xyz"))
    one_line_error(code, err, "file type")
    code, _, err = cli(capsys, "flows", "x**2 + y**2 + z**2", "--params", "x,y,z", "--theta0=1,1,1", "--plot",
                       str(tmp_path / "out.png"))
    one_line_error(code, err, "2-parameter", "3")
    for mod in ("matplotlib", "matplotlib.pyplot", "matplotlib.backend_bases"):
        monkeypatch.setitem(sys.modules, mod, None)
    code, _, err = cli(capsys, *base, str(tmp_path / "out.png"))
    one_line_error(code, err, "matplotlib")


# ------------------------------------------------------------------------------------------- certify
def test_certify_command(capsys, tmp_path):
    png = tmp_path / "cert.png"
    code, out, _ = cli(capsys, "certify", "x**2 + y**2/10", "--params", "x,y", "--theta0=0.5,-0.2", "--h", "0.05",
                       "--steps", "20", "--plot", str(png))
    assert code == 0 and "CERTIFIED" in out and png.stat().st_size > 1000
    code, out, _ = cli(capsys, "certify", "x**2", "--params", "x", "--theta0=1", "--h", "1.5", "--steps", "5")
    assert code == 1 and "NOT CERTIFIED" in out.upper()


def test_certify_plot_prerequisites_first(capsys, tmp_path, no_computation):
    code, _, err = cli(capsys, "certify", "x**2", "--params", "x", "--theta0=1", "--rigorous", "--steps", "5000",
                       "--plot", str(tmp_path / "no" / "c.png"))
    one_line_error(code, err, "does not exist")


def test_uncertified_run_prints_no_numpy_warning(capsys):
    """GD on −x⁴ overflows and the flow blows up at t = 1/8: the summary prints inf/nan values
    itself, with exit status 1 and no RuntimeWarning (a loss starting with '-' goes after '--')."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli(capsys, "certify", "--params", "x", "--theta0=1", "--h", "0.1", "--steps", "20", "--", "-x**4")
    assert code == 1 and "NOT certified" in out
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "Warning" not in err


def test_certify_shows_progress(capsys, monkeypatch):
    """A certificate run reports that it is working and how long it took on stderr (forced with
    BEA_PROGRESS=1; by default only when stderr is a terminal), and nothing with BEA_PROGRESS=0."""
    args = ("certify", "x**2 + y**2/10", "--params", "x,y", "--theta0=0.5,-0.2", "--h", "0.05", "--steps", "20",
            "--rigorous")
    monkeypatch.setenv("BEA_PROGRESS", "1")
    code, out, err = cli(capsys, *args)
    assert code == 0 and "CERTIFIED" in out
    assert "bea certify: 20 GD steps" in err and "ball arithmetic" in err and "elapsed" in err and "done in" in err
    monkeypatch.setenv("BEA_PROGRESS", "0")
    code, _, err = cli(capsys, *args)
    assert code == 0 and err == ""


# ----------------------------------------------------------------------------------- derive --optimizer
def _components(out: str, k: int) -> dict:
    """{param name: sympy expr} of the printed ``f_k[p] = ...`` lines."""
    rows = [line.strip() for line in out.splitlines() if line.strip().startswith(f"f_{k}[")]
    return {r.split("]", 1)[0][len(f"f_{k}["):]: sp.sympify(r.split(" = ", 1)[1]) for r in rows}


def test_derive_optimizer_adam_exact_hyperparameters(capsys):
    """``--optimizer adam --beta1 0.9 --beta2 0.999 --eps 1e-8`` takes the decimals exactly (9/10,
    999/1000, 10^-8): f_0 is the closed form −g/√(g² + ε) of Adam's slow manifold (v → g²) and f_1 equals
    bea.optimizer_field with those Rationals."""
    x, y = sp.symbols("x y")
    E = x**4 / 4 + x * y + y**2
    code, out, _ = cli(capsys, "derive", "x**4/4 + x*y + y**2", "--params", "x,y", "--order", "1",
                       "--optimizer", "adam", "--beta1", "0.9", "--beta2", "0.999", "--eps", "1e-8")
    assert code == 0 and "beta1 = 9/10" in out and "eps = 1/100000000" in out
    eps = sp.Rational(1, 10**8)
    f0 = _components(out, 0)
    for p in (x, y):
        g = E.diff(p)
        assert sp.simplify(f0[str(p)] + g / sp.sqrt(g**2 + eps)) == 0
    mf = bea.optimizer_field("adam", E, [x, y], 1, beta1=sp.Rational(9, 10), beta2=sp.Rational(999, 1000), eps=eps)
    f1 = _components(out, 1)
    pt = {x: sp.Rational(3, 10), y: sp.Rational(-1, 7)}
    for p, term in zip((x, y), mf.terms[1]):
        assert sp.N((f1[str(p)] - term).subs(pt), 30) == 0


def test_derive_optimizer_symbolic_and_momentum_notation(capsys):
    """Names keep hyperparameters symbolic (RMSProp f_0 = −g/√(g² + ε)); heavy-ball momentum with
    --notation prints the B-series notation −g/(1−m) and −(1+m)/(2(1−m)³) H g at m = 1/2."""
    code, out, _ = cli(capsys, "derive", "x**3", "--params", "x", "--order", "1", "--optimizer", "rmsprop",
                       "--beta2", "b", "--eps", "e")
    assert code == 0
    x, e = sp.Symbol("x"), sp.Symbol("e", positive=True)
    f0 = _components(out, 0)["x"].subs(sp.Symbol("e"), e)
    assert sp.simplify(f0 + 3 * x**2 / sp.sqrt(9 * x**4 + e)) == 0
    code, out, _ = cli(capsys, "derive", "x**2", "--params", "x", "--order", "1", "--optimizer", "momentum",
                       "--m", "1/2", "--notation")
    assert code == 0 and out.splitlines()[-2:] == ["f_0 = -2 g", "f_1 = -6 H g"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (("--optimizer", "lion"), "unknown --optimizer"),
        (("--optimizer", "adam", "--beta1", "0.9"), "--beta2"),
        (("--optimizer", "nesterov"), "--m"),
        (("--optimizer", "momentum", "--m", "0.9", "--eps", "1e-8"), "does not take --eps"),
        (("--optimizer", "adam", "--beta1", "0.9", "--beta2", "x0.9", "--eps", "1"), "--beta2 must be a number"),
        (("--optimizer", "momentum", "--m", "0.5", "--method", "rk4"), "exclude each other"),
        (("--optimizer", "nesterov", "--m", "0.5", "--bias-correction"), "--bias-correction"),
    ],
)
def test_derive_optimizer_bad_input(capsys, extra, needle):
    code, _, err = cli(capsys, "derive", "x**2", "--params", "x", *extra)
    one_line_error(code, err, needle)
