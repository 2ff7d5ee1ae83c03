"""bea.sweep: grids of bea runs on dask.distributed, one DataFrame row per (start point, step size).

The contract: running on a cluster changes nothing — every row equals the serial call of the same
function in this process, bit for bit — and nothing is lost: a run that raises, or whose worker
dies, is a row with its error. One 2-worker LocalCluster serves the module (a start costs seconds).
"""

import math
import os

import numpy as np
import pytest
import sympy as sp

import bea

distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from bea.sweep import result_row, sweep  # noqa: E402

x, y = sp.symbols("x y", real=True)
HIMMELBLAU = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
STARTS = [[0.5, 0.5], [-1.0, 2.5]]
STEPS = [0.004, 0.002]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        env={"BEA_CACHE_DIR": str(bea.cache_dir().parent)}, silence_logs=40,
    )
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


def test_certify_sweep_equals_serial_calls(client):
    """Rows of a 2-worker sweep are exactly the serial certificates' final bound, distance, verdict
    and every other reduced column, in (theta0_index, h) order; the kernels come from the cache the
    serial calls wrote (same BEA_CACHE_DIR)."""
    serial = {(i, h): bea.certify(HIMMELBLAU, [x, y], th, h, 20) for i, th in enumerate(STARTS) for h in STEPS}
    df = sweep(bea.certify, HIMMELBLAU, [x, y], theta0=STARTS, h=STEPS, steps=20, client=client, progress=False)
    assert list(df["theta0_index"]) == [0, 0, 1, 1]
    assert list(df["h"]) == [0.002, 0.004, 0.002, 0.004]  # sorted, not in the order given
    assert df["error"].isna().all()
    for _, row in df.iterrows():
        c = serial[(row["theta0_index"], row["h"])]
        assert row["certified"] == c.certified
        assert row["bound"] == c.bound[-1] and row["distance"] == c.distance[-1]
        assert row["lambda_min"] == np.nanmin(c.lambda_min) and row["lambda_max"] == np.nanmax(c.lambda_max)
        for col, v in result_row(c).items():
            assert row[col] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(row[col])), col
    assert {"theta0_index", "h", "certified", "bound", "distance", "error"} <= set(df.columns)


def test_gd_and_trajectory_rows_hold_the_final_point(client):
    """bea.gd / bea.trajectory rows: the final iterate (complex for the PF) and its norm, equal to
    the serial arrays' last row; one start point and a scalar h give one row."""
    df = sweep(bea.gd, HIMMELBLAU, [x, y], theta0=STARTS[0], h=0.01, steps=30, client=client, progress=False)
    ref = bea.gd(HIMMELBLAU, [x, y], STARTS[0], 0.01, 30)[-1]
    assert len(df) == 1
    assert (df.loc[0, "final_0"], df.loc[0, "final_1"]) == (ref[0], ref[1])
    assert df.loc[0, "final_norm"] == np.linalg.norm(ref) and df.loc[0, "finite"]
    df = sweep(bea.trajectory, HIMMELBLAU, [x, y], theta0=STARTS, h=0.01, steps=5, flow="pf", client=client,
               progress=False)
    for i, th in enumerate(STARTS):
        ref = bea.trajectory(HIMMELBLAU, [x, y], th, 0.01, 5, flow="pf")[-1]
        assert complex(df.loc[i, "final_0"]) == ref[0] and complex(df.loc[i, "final_1"]) == ref[1]


def test_failed_tasks_are_rows_with_their_error(client):
    """A run that raises (bad step size: bea's InvalidInputError; a user function's ZeroDivisionError)
    is a row with 'Type: message' in ``error`` and missing results; the other rows are complete."""
    df = sweep(bea.certify, HIMMELBLAU, [x, y], theta0=STARTS, h=[0.004, -1.0], steps=5, client=client,
               progress=False)
    assert len(df) == 4
    bad = df[df["h"] == -1.0]
    assert list(bad["theta0_index"]) == [0, 1]
    assert all(e.startswith("InvalidInputError: ") and "h" in e for e in bad["error"])
    assert bad["bound"].isna().all() and bad["certified"].isna().all()
    good = df[df["h"] == 0.004]
    assert good["error"].isna().all() and good["certified"].all()

    def fragile(E, params, theta0, h, steps):
        return 1.0 / (h - 0.5)

    df = sweep(fragile, HIMMELBLAU, [x, y], theta0=STARTS[0], h=[0.25, 0.5], steps=1, client=client, progress=False)
    assert df.loc[0, "value"] == -4.0 and df.loc[0, "error"] is None
    assert df.loc[1, "error"] == "ZeroDivisionError: float division by zero"


def test_symbols_keep_their_assumptions_on_the_workers(client):
    """sympy symbols with assumptions survive the pickle to the workers (positive stays positive)."""
    a, b = sp.symbols("a b", positive=True)

    def positive(E, params, theta0, h, steps):
        return bool(all(p.is_positive for p in params) and E.free_symbols == set(params))

    df = sweep(positive, a**2 + b**2, [a, b], theta0=[1.0, 1.0], h=0.1, steps=1, client=client, progress=False)
    assert df.loc[0, "value"] is np.True_ or df.loc[0, "value"] is True


def test_max_step_is_called_with_the_time_horizon(client):
    """bea.max_step rows: called with t = h·steps, equal to the serial StepSizeAnswer."""
    E = x**2 + sp.Rational(1, 10) * y**2
    df = sweep(bea.max_step, E, [x, y], theta0=[0.3, -0.2], h=0.25, steps=2, tol=1e-3, client=client,
               progress=False)
    ans = bea.max_step(E, [x, y], [0.3, -0.2], 0.5, 1e-3)
    assert df.loc[0, "t"] == 0.5
    assert df.loc[0, "certified_step"] == ans.certified_step and df.loc[0, "empirical_step"] == ans.empirical_step


def test_own_local_cluster_shares_the_cache_and_reports_a_dead_worker():
    """client=None starts (and closes) a LocalCluster whose workers use this process's kernel cache
    folder; a task whose worker dies is reported as a KilledWorker row, not dropped."""
    dask = pytest.importorskip("dask")

    def where(E, params, theta0, h, steps):
        if h == 2.0:
            os._exit(1)  # the worker process dies
        return str(bea.cache_dir())

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        df = sweep(where, HIMMELBLAU, [x, y], theta0=STARTS[0], h=[1.0, 2.0], steps=1, progress=False)
    assert list(df["h"]) == [1.0, 2.0]
    assert df.loc[0, "value"] == str(bea.cache_dir())
    assert "KilledWorker" in df.loc[1, "error"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(theta0=[[0.0, 0.0, 1.0]], h=0.1), "theta0"),
        (dict(theta0=[], h=0.1), "theta0"),
        (dict(theta0=[0.0, 0.0], h=[]), "h must be"),
        (dict(theta0=[0.0, 0.0], h="0.1"), "real numbers"),
        (dict(theta0=[0.0, 0.0], h=0.1, n_workers=0), "n_workers"),
    ],
)
def test_a_grid_that_is_not_one_raises_before_any_cluster(kwargs, match):
    """Malformed grids raise InvalidInputError at once (no cluster is started for them)."""
    with pytest.raises(bea.InvalidInputError, match=match):
        sweep(bea.certify, HIMMELBLAU, [x, y], steps=1, **kwargs)
    with pytest.raises(bea.InvalidInputError, match="callable"):
        sweep("certify", HIMMELBLAU, [x, y], theta0=[0.0, 0.0], h=0.1, steps=1)


def test_one_parameter_start_points():
    """For a one-parameter loss a flat list is a list of start points, a number one point."""
    from bea.sweep import _points

    assert [p.tolist() for p in _points([0.1, 0.2, 0.3], 1)] == [[0.1], [0.2], [0.3]]
    assert [p.tolist() for p in _points(0.5, 1)] == [[0.5]]
    assert [p.tolist() for p in _points([0.1, 0.2], 2)] == [[0.1, 0.2]]


def test_result_row_reductions():
    """result_row: final bound/distance, extremes of the spectral bounds and local errors (NaN entries
    ignored), iterates by their last row; a result it cannot tabulate raises a bea error."""
    c = bea.certify(x**2 + y**2 / 10, [x, y], [0.3, 0.1], 0.1, 4)
    row = result_row(c)
    assert row["bound"] == c.bound[-1] and row["distance"] == c.distance[-1]
    assert row["local_error"] == max(v for v in c.local_error if not math.isnan(v))
    assert row["steps"] == 4 and row["t"] == c.t[-1] and row["certified"] is True
    it = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert result_row(it) == {"steps": 1, "final_0": 3.0, "final_1": 4.0, "final_norm": 5.0, "finite": True}
    assert result_row({"a": 1, "b": [1, 2]}) == {"a": 1}
    with pytest.raises(bea.InvalidInputError, match="table row"):
        result_row(object())
