"""The command line, run as a user would (a subprocess)."""

import subprocess
import sys
from fractions import Fraction

import sympy as sp


def run(*args):
    return subprocess.run([sys.executable, "-m", "bea", *args], capture_output=True, text=True, timeout=120)


def test_derive_prints_terms_that_match_the_formulas():
    out = run("derive", "x**3/3 + x*y**2", "--params", "x,y", "--order", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "f_1 = -1/2 H g" in lines
    x, y = sp.symbols("x y")
    E = x**3 / 3 + x * y**2
    g = sp.Matrix([E.diff(x), E.diff(y)])
    expected = -sp.hessian(E, (x, y)) * g / 2
    i = lines.index("f_1 = -1/2 H g")
    got = [sp.sympify(lines[i + 1 + k].split(":", 1)[1]) for k in range(2)]
    assert [sp.expand(a - b) for a, b in zip(got, expected)] == [0, 0]


def test_derive_notation_and_series():
    out = run("derive", "x**2", "--params", "x", "--order", "2", "--notation")
    assert out.returncode == 0
    assert out.stdout.splitlines() == ["f_0 = -g", "f_1 = -1/2 H g", "f_2 = -(1/3 H^2 g + 1/12 T(g,g))"]
    out = run("derive", "x**2", "--params", "x", "--order", "2", "--series")
    assert out.returncode == 0
    rows = {line.split()[1]: line.split()[-1] for line in out.stdout.splitlines()[2:]}
    assert Fraction(rows["(1,2,2)"]) == Fraction(1, 12) and Fraction(rows["(1,2)"]) == Fraction(-1, 2)


def test_derive_latex():
    out = run("derive", "x**2/2", "--params", "x", "--order", "1", "--latex")
    assert out.returncode == 0 and r"\begin{aligned}" in out.stdout


def test_bad_input_is_one_line_and_nonzero():
    for args in (
        ("derive", "abs(x)", "--params", "x"),
        ("derive", "x*y", "--params", "x"),
        ("derive", "x**2", "--params", "x", "--order", "-1"),
        ("derive", "x**2", "--params", "x", "--method", "adam"),
    ):
        out = run(*args)
        assert out.returncode == 2
        assert out.stderr.startswith("bea: error:") and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0 and "derive" in out.stdout


def test_series_command():
    out = run("series", "--order", "2", "--method", "rk4")
    assert out.returncode == 0
    assert "f_1 = 0" in out.stdout  # rk4 has no h^1 correction
    assert run("series", "--order", "2", "--method", "adam").returncode == 2


def test_flows_command_matches_reference_values(tmp_path):
    # design.md section 3: on E = x^2 + 0.01 y^2 with h = 1.05, PF reproduces GD exactly
    png = tmp_path / "flows.png"
    out = run(
        "flows", "x**2 + 0.01*y**2", "--params", "x,y", "--theta0=-0.35,-0.2", "--h", "1.05", "--steps", "5",
        "--flows", "ngf,pf", "--plot", str(png),
    )
    assert out.returncode == 0, out.stderr
    last = [line for line in out.stdout.splitlines() if line.strip().startswith("5 ")][0]
    assert "0.56368" in last and "-0.17986" in last
    ngf_dist, pf_dist = (float(v) for v in last.split()[-2:])
    assert pf_dist < 1e-8 < ngf_dist
    assert png.stat().st_size > 1000
    bad = run("flows", "x**2", "--params", "x", "--theta0=1", "--flows", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("bea: error:") and "nope" in bad.stderr


def test_certify_command():
    out = run("certify", "x**2 + y**2/10", "--params", "x,y", "--theta0=0.5,-0.2", "--h", "0.05", "--steps", "20")
    assert out.returncode == 0, out.stderr
    assert "CERTIFIED" in out.stdout
    bad = run("certify", "x**2", "--params", "x", "--theta0=1,2")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    unstable = run("certify", "x**2", "--params", "x", "--theta0=1", "--h", "1.5", "--steps", "5")
    assert unstable.returncode == 1 and "NOT CERTIFIED" in unstable.stdout.upper()
