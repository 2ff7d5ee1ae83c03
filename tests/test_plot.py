"""bea.plot draws and returns figures (Agg backend, nothing shown)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from bea import plot  # noqa: E402
from bea.dal import dal  # noqa: E402
from bea.errors import InvalidInputError  # noqa: E402
from bea.principal import diagnostics_along  # noqa: E402

x, y, w = sp.symbols("x y w")
P2 = [x, y]
QUAD = x**2 + y**2 / 100
THETA0 = [-0.35, -0.2]


def test_trajectories_on_contour(tmp_path):
    run = dal(QUAD, P2, THETA0, 5)
    fig = plot.trajectories(QUAD, P2, THETA0, 1.05, 5, flows=("ngf", "pf"), paths={"DAL": run.thetas})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["GD", "ngf", "pf", "DAL"]
    # the PF line is the real part of the flow: GD itself on this quadratic
    np.testing.assert_allclose(ax.get_lines()[2].get_xydata(), ax.get_lines()[0].get_xydata(), atol=1e-8)
    fig.savefig(tmp_path / "t.png")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_trajectories_into_given_axes_and_errors():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot.trajectories(QUAD, P2, THETA0, 0.5, 3, flows=(), ax=ax) is fig
    with pytest.raises(InvalidInputError, match="2-parameter"):
        plot.trajectories(x**2 + y**2 + w**2, [x, y, w], [1, 1, 1], 0.1, 2)
    with pytest.raises(InvalidInputError, match="shape"):
        plot.trajectories(QUAD, P2, THETA0, 0.5, 3, flows=(), paths={"bad": np.zeros((3, 3))})
    plt.close("all")


def test_stability_and_dal_traces():
    import matplotlib.pyplot as plt

    tr = diagnostics_along(QUAD, P2, THETA0, 1.05, 6)
    fig = tr.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    fig2 = dal(QUAD, P2, THETA0, 5).plot()
    assert isinstance(fig2, Figure) and len(fig2.axes) == 2
    fig3 = plot.dal_traces(dal(QUAD, P2, THETA0, 4, per_parameter=True))
    assert len(fig3.axes[1].get_lines()) == 2
    with pytest.raises(InvalidInputError):
        plot.stability_traces(tr, axes=[fig.axes[0]])
    plt.close("all")
