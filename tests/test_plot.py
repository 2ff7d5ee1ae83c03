"""bea.plot draws and returns figures (Agg backend, nothing shown): what is drawn is the data given
(or computed once), GD stays visible over flows that coincide with it, legends stay off the data."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bea  # noqa: E402
from bea import plot  # noqa: E402
from bea.flows.dal import dal  # noqa: E402
from bea.errors import InvalidInputError  # noqa: E402
from bea.flows.diagnostics import diagnostics_along  # noqa: E402
from conftest import QUAD

x, y, w = sp.symbols("x y w")
P2 = [x, y]
THETA0 = [-0.35, -0.2]
HIMMELBLAU = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_trajectories_on_contour(tmp_path):
    """GD, the flows and extra paths are drawn from the arrays bea computes; on the quadratic the PF
    curve is GD itself (Remark 3.1), so GD's markers must be open and drawn above it."""
    run = dal(QUAD, P2, THETA0, 5)
    fig = plot.trajectories(QUAD, P2, THETA0, 1.05, 5, flows=("ngf", "pf"), paths={"DAL": run.thetas})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = _lines(ax)
    assert {"GD", "ngf", "pf", "DAL", "start"} <= set(lines)
    np.testing.assert_allclose(lines["GD"].get_xydata(), bea.gd(QUAD, P2, THETA0, 1.05, 5), rtol=1e-14)
    np.testing.assert_allclose(lines["DAL"].get_xydata(), run.thetas, rtol=1e-14)
    np.testing.assert_allclose(lines["pf"].get_xydata(), lines["GD"].get_xydata(), atol=1e-8)
    gd_line = lines["GD"]
    assert gd_line.get_markerfacecolor() == "none" and gd_line.get_markersize() > lines["pf"].get_markersize()
    assert all(gd_line.get_zorder() > lines[n].get_zorder() for n in ("ngf", "pf", "DAL"))
    assert lines["ngf"].get_linestyle() != lines["pf"].get_linestyle()
    fig.savefig(tmp_path / "t.png")


def test_trajectories_draws_given_arrays_without_integrating(monkeypatch):
    """Computed arrays are drawn as given: with paths={'GD': ..., ...} neither GD nor any flow is
    run again (bea.flows.gd / trajectory would raise here)."""
    import bea.flows

    gd_path = bea.gd(HIMMELBLAU, P2, [0.0, 0.0], 0.01, 30)
    ngf = bea.trajectory(HIMMELBLAU, P2, [0.0, 0.0], 0.01, 30, flow="ngf")

    def refuse(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(bea.flows, "gd", refuse)
    monkeypatch.setattr(bea.flows, "trajectory", refuse)
    fig = plot.trajectories(HIMMELBLAU, P2, paths={"GD": gd_path, "ngf": ngf})
    lines = _lines(fig.axes[0])
    np.testing.assert_array_equal(lines["GD"].get_xydata(), gd_path)
    np.testing.assert_array_equal(lines["ngf"].get_xydata(), ngf)
    with pytest.raises(InvalidInputError, match="theta0, h and steps"):
        plot.trajectories(HIMMELBLAU, P2, paths={"ngf": ngf})


def test_legend_beside_the_data_and_contours_visible():
    """The legend's box lies outside the axes (it never covers the minimum the paths run into), and
    the contour lines are drawn dark enough to read (grey ≤ 0.5, width ≥ 0.6)."""
    fig = plot.trajectories(HIMMELBLAU, P2, [0.0, 0.0], 0.01, 40, flows=("ngf", "igr", "pf"))
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    axes_box = ax.get_window_extent()
    assert legend.x0 >= axes_box.x1  # entirely to the right of the axes
    sets = [c for c in ax.collections if len(c.get_edgecolor()) and len(c.get_linewidths())]
    lines = [c for c in sets if np.all(np.asarray(c.get_linewidths()) >= 0.6)]
    assert lines and all(np.max(c.get_edgecolor()[:, :3]) <= 0.5 for c in lines)


def test_trajectories_into_given_axes_and_errors():
    fig, ax = plt.subplots()
    assert plot.trajectories(QUAD, P2, THETA0, 0.5, 3, flows=(), ax=ax) is fig
    with pytest.raises(InvalidInputError, match="2-parameter"):
        plot.trajectories(x**2 + y**2 + w**2, [x, y, w], [1, 1, 1], 0.1, 2)
    with pytest.raises(InvalidInputError, match="shape"):
        plot.trajectories(QUAD, P2, THETA0, 0.5, 3, flows=(), paths={"bad": np.zeros((3, 3))})


def test_stability_traces_legend_only_names_what_is_drawn():
    """A 'loss increases' legend entry appears exactly when some step increases the loss: none on
    the quadratic at hλ₀ = 1.8 (GD contracts), some on Himmelblau at h = 0.03 (GD oscillates)."""
    quiet = diagnostics_along(QUAD, P2, THETA0, 0.9, 10)
    assert not np.any(quiet.loss_increases)
    labels = [t.get_text() for t in quiet.plot().axes[2].get_legend().get_texts()]
    assert "loss increases" not in labels
    noisy = diagnostics_along(HIMMELBLAU, P2, [0.0, 0.0], 0.03, 20)
    assert np.any(noisy.loss_increases)
    fig = noisy.plot()
    assert "loss increases" in [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert len(fig.axes) == 3
    with pytest.raises(InvalidInputError):
        plot.stability_traces(noisy, axes=[fig.axes[0]])


def test_dal_traces():
    fig2 = dal(QUAD, P2, THETA0, 5).plot()
    assert isinstance(fig2, Figure) and len(fig2.axes) == 2
    fig3 = plot.dal_traces(dal(QUAD, P2, THETA0, 4, per_parameter=True))
    assert len(fig3.axes[1].get_lines()) == 2
    r = dal(HIMMELBLAU, P2, [0.0, 0.0], 50, p=0.5, on_failure="return")
    fig4 = r.plot()
    assert any(f"diverged at {r.diverged_at}" == t.get_text() for t in fig4.axes[0].get_legend().get_texts())


def test_certificate_plot_draws_lambda_min_and_lambda_max():
    """The certificate figure shows what its title promises: bound and distance on top, and both
    ends of the Hessian-spectrum enclosure (λ_min and λ_max, the arrays of the certificate) below."""
    E = (x**2 - 1) ** 2 / 4 + y**2 / 2 + x * y / 5
    cert = bea.certify(E, P2, [0.3, 1.0], 0.05, 40)
    fig = plot.certificate(cert)
    top, bottom = fig.axes
    lines = _lines(bottom)
    np.testing.assert_array_equal(lines["λ_min (lower bound)"].get_ydata(), cert.lambda_min)
    np.testing.assert_array_equal(lines["λ_max (upper bound)"].get_ydata(), cert.lambda_max)
    ok = np.isfinite(cert.bound) & (cert.bound > 0)
    np.testing.assert_array_equal(_lines(top)[f"certified bound ({cert.mode})"].get_ydata(), cert.bound[ok])
    assert len(cert.plot().axes) == 2


def test_torch_trace_is_drawn_by_the_same_figure_at_its_logged_iterations():
    """``bea.torch`` traces plot through :func:`bea.plot.stability_traces` (no plotting code of their
    own): the curves sit at the logged iterations ``trace.steps``, 2/h follows the learning rate of
    each logged iterate, and the loss increases of the edge-of-stability run (every step on this
    quadratic at h = 1.05) are marked where they happen."""
    import dataclasses

    torch = pytest.importorskip("torch")
    import bea.torch as bt

    def f(t):
        return 0.5 * t[0] ** 2 + 0.5 * (t[0] - t[1]) ** 2  # not QUAD's coefficients: any edge-of-stability quadratic

    _, trace = bt.diagnostics_along(f, torch.tensor([-0.35, -0.2], dtype=torch.float64), 1.05, 6, k=1, every=2)
    assert len(trace) >= 3 and np.all(np.diff(trace.steps) == 2)
    fig = trace.plot()
    top, _, bottom = fig.axes
    lines = _lines(top)
    np.testing.assert_array_equal(lines["λ_0"].get_xdata(), trace.steps)
    assert np.allclose(lines["2/h"].get_ydata(), 2.0 / 1.05)
    marks = _lines(bottom).get("loss increases")
    inc = np.flatnonzero(np.diff(trace.losses) > 0) + 1
    assert inc.size and marks is not None
    np.testing.assert_array_equal(marks.get_xdata(), trace.steps[inc])
    plt.close(fig)
    lr = np.linspace(1.05, 0.5, len(trace))  # as DAL would change it
    fig = plot.stability_traces(dataclasses.replace(trace, lr=lr))
    line = _lines(fig.axes[0])["2/h"]
    np.testing.assert_allclose(line.get_xdata(), trace.steps)
    np.testing.assert_allclose(line.get_ydata(), 2.0 / lr)
    plt.close(fig)
