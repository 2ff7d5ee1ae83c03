r"""Grids of bea runs on dask.distributed: one table row per (start point, step size).

Studies of backward error analysis run the same function over grids — seed 000's Figure 2 compares
η₀ with η₀/r for r = 2…20, max-step studies sweep η, every experiment repeats over start points.
:func:`sweep` maps ``fn(E, params, θ0_i, h_j, steps, **kwargs)`` over the grid θ0 × h with
`dask.distributed <https://distributed.dask.org>`_ (no scheduler of bea's own) and collects one
row of scalars per task into a :class:`pandas.DataFrame`.

How the work is distributed
---------------------------
* ``client=None`` starts a ``LocalCluster`` of ``n_workers`` processes (one thread each) on this
  machine and closes it afterwards; a ``distributed.Client`` that is passed in (a real cluster:
  ``Client("tcp://scheduler:8786")``, dask-jobqueue, …) is used as it is and left open.
* The loss travels to the workers as a pickle of the sympy expression and its symbols (sympy pickles
  symbols with their assumptions, so ``Symbol("x", positive=True)`` arrives as the same symbol). It
  is scattered once to every worker; the tasks only carry θ0 and h.
* Kernels compile once per worker: :func:`bea.compile.loss.compile_loss` keeps them in the worker process
  between tasks, and the numba machine code is shared through bea's disk cache
  (:func:`bea.cache_dir`). A ``LocalCluster`` started here gets this process's cache folder in
  ``BEA_CACHE_DIR``, so a kernel compiled once on this machine is loaded, not recompiled, by every
  worker. On a cluster of several machines, point ``BEA_CACHE_DIR`` at a shared folder (or accept
  one compilation per machine).
* A task that raises becomes a row whose ``error`` column holds ``"ExceptionType: message"`` (the
  other result columns are missing values); a task lost with its worker (``KilledWorker`` after
  dask's retries) is reported the same way. No row is ever dropped.
* Rows are sorted by (``theta0_index``, ``h``) whatever the order the tasks finished in.

From a result to a row (:func:`result_row`)
-------------------------------------------
:class:`bea.Certificate`
    ``certified``, ``reason``; ``bound``, ``distance``, ``distance_error`` and ``t`` at the final
    step k = steps (``bound`` is ``inf`` when not proven there); ``ratio`` = bound/distance at the
    final step; ``lambda_min`` / ``lambda_max``: the smallest lower / largest upper eigenvalue bound
    along the flow, ``local_error`` and ``hessian_lipschitz``: their maxima over the steps — the
    numbers :meth:`bea.Certificate.summary` prints; ``tube_radius``, ``valid_steps``, ``steps``,
    ``mode``, ``rigorous``. Timings (``info``) are left out, so rows are reproducible.
:class:`bea.StepSizeAnswer`
    its fields and ``ratio``. :func:`bea.max_step` has no step size of its own: a sweep calls it
    with the time horizon t = h·steps of ``steps`` GD steps of size h (pass ``tol=`` in kwargs).
an array of iterates (:func:`bea.gd`, :func:`bea.trajectory`), shape (steps+1, n)
    ``steps``, the final point ``final_0 … final_{n-1}`` (complex for ``flow="pf"``/``"pf+np"``),
    ``final_norm`` = ‖θ_steps‖ and ``finite`` (no overflow along the run).
other results
    the scalar fields of a dataclass, 1-D arrays by their final value; a dict by its scalar entries;
    a number as ``value``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import uuid

import numpy as np

from bea.certificates.certify import Certificate, StepSizeAnswer, max_step
from bea.compile.codegen import cache_dir
from bea.errors import InvalidInputError, InvalidParamsError
from bea.compile.loss import CompiledLoss

__all__ = ["sweep", "result_row"]

_KEYS = ("theta0_index", "h")


# --------------------------------------------------------------------------------------------------
# results -> rows
# --------------------------------------------------------------------------------------------------


def _scalar(v):
    """v as a plain Python scalar, or None when it is not one."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (numbers.Integral, np.integer)):
        return int(v)
    if isinstance(v, (numbers.Real, np.floating)):
        return float(v)
    if isinstance(v, (numbers.Complex, np.complexfloating)):
        return complex(v)
    if isinstance(v, str):
        return v
    return None


def _extreme(a, fn) -> float:
    """nanmin / nanmax of a float array, NaN when it has no number (no warning)."""
    a = np.asarray(a, dtype=float)
    a = a[~np.isnan(a)]
    return float(fn(a)) if a.size else math.nan


def _certificate_row(c: Certificate) -> dict:
    return {
        "certified": bool(c.certified),
        "bound": float(c.bound[-1]),
        "distance": float(c.distance[-1]),
        "ratio": float(c.ratio),
        "distance_error": float(c.distance_error[-1]),
        "lambda_min": _extreme(c.lambda_min, np.min),
        "lambda_max": _extreme(c.lambda_max, np.max),
        "local_error": _extreme(c.local_error, np.max),
        "hessian_lipschitz": _extreme(c.hessian_lipschitz, np.max),
        "tube_radius": float(c.tube_radius),
        "valid_steps": int(c.valid_steps),
        "steps": int(c.steps),
        "t": float(c.t[-1]),
        "mode": c.mode,
        "rigorous": bool(c.rigorous),
        "reason": c.reason,
    }


def _iterates_row(a: np.ndarray) -> dict:
    if a.ndim != 2 or a.shape[0] == 0:
        raise InvalidInputError(f"an array result must have shape (steps+1, n), got {a.shape}")
    last = a[-1]
    row = {"steps": a.shape[0] - 1}
    for i, v in enumerate(last):
        row[f"final_{i}"] = _scalar(v)
    row["final_norm"] = float(np.linalg.norm(last))
    row["finite"] = bool(np.all(np.isfinite(a)))
    return row


def _generic_row(result) -> dict:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        row = {}
        for f in dataclasses.fields(result):
            v = getattr(result, f.name)
            if isinstance(v, np.ndarray) and v.ndim == 1 and v.size:
                v = v[-1]
            s = _scalar(v)
            if s is not None:
                row[f.name] = s
        for name, attr in vars(type(result)).items():
            if isinstance(attr, property) and not name.startswith("_") and name not in row:
                s = _scalar(getattr(result, name))
                if s is not None:
                    row[name] = s
        return row
    if isinstance(result, dict):
        return {str(k): s for k, v in result.items() if (s := _scalar(v)) is not None}
    s = _scalar(result)
    if s is not None:
        return {"value": s}
    raise InvalidInputError(f"cannot turn a result of type {type(result).__name__} into a table row")


def result_row(result) -> dict:
    """The table row (column name → scalar) of one result, as :func:`sweep` builds it.

    See the module docstring for what each kind of result gives; a bool, int, float, complex or str
    entry per column, always.
    """
    if isinstance(result, Certificate):
        return _certificate_row(result)
    if isinstance(result, StepSizeAnswer):
        return {**_generic_row(result), "ratio": float(result.ratio)}
    if isinstance(result, np.ndarray):
        return _iterates_row(result)
    return _generic_row(result)


# --------------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------------


def _points(theta0, n: int) -> list[np.ndarray]:
    """theta0 as a list of start points: one point (shape (n,), or a number when n = 1) or many."""
    try:
        arr = np.array(theta0, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"theta0 must be one point ({n} numbers) or a list of points, got {theta0!r}"
        ) from None
    if arr.ndim == 0 and n == 1:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1 and arr.shape[0] == n:
        arr = arr.reshape(1, n)
    elif arr.ndim == 1 and n == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n or arr.shape[0] == 0:
        raise InvalidInputError(
            f"theta0 must be one point of {n} numbers or a non-empty list of such points, got shape {arr.shape}"
        )
    return [row.copy() for row in arr]


def _steps_sizes(h) -> list[float]:
    hs = list(h) if isinstance(h, (list, tuple, np.ndarray)) else [h]
    if not hs:
        raise InvalidInputError("h must be a step size or a non-empty list of step sizes, got an empty list")
    out = []
    for v in hs:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
            raise InvalidInputError(f"the step sizes h must be real numbers, got {v!r}")
        out.append(float(v))
    return out


def _call(fn, E, params, theta0, h, steps, kwargs):
    if fn is max_step:
        return fn(E, params, theta0, h * steps, **kwargs)
    return fn(E, params, theta0, h, steps, **kwargs)


def _task(fn, problem, i, theta0, h, steps, kwargs) -> dict:
    """One grid point on a worker: the result reduced to a row there (small rows travel back)."""
    E, params = problem
    keys = {"theta0_index": i, "h": h}
    try:
        row = result_row(_call(fn, E, params, theta0, h, steps, kwargs))
    except Exception as exc:  # noqa: BLE001 - every failure becomes its row's error
        return {**keys, "error": _describe(exc)}
    return {**keys, **row, "error": None}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _frame(rows: list[dict]):
    import pandas as pd

    columns: list[str] = list(_KEYS)
    for r in rows:
        columns += [k for k in r if k not in columns and k != "error"]
    columns.append("error")
    df = pd.DataFrame.from_records(rows, columns=columns)
    df["theta0_index"] = df["theta0_index"].astype("int64")
    df["h"] = df["h"].astype("float64")
    df["error"] = pd.Series([r.get("error") for r in rows], dtype=object)  # None where the run returned
    for col in columns[2:-1]:
        vals = [r[col] for r in rows if r.get(col) is not None]
        if len(vals) < len(rows) and vals:  # rows without the value: nullable dtypes keep bool/int typed
            if all(isinstance(v, bool) for v in vals):
                df[col] = df[col].astype("boolean")
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                df[col] = df[col].astype("Int64")
    order = np.lexsort((np.arange(len(df)), df["h"].to_numpy(), df["theta0_index"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def sweep(
    fn,
    E,
    params,
    *,
    theta0,
    h,
    steps,
    client=None,
    n_workers: int = 2,
    progress: bool = True,
    **kwargs,
):
    r"""Run ``fn(E, params, θ0_i, h_j, steps, **kwargs)`` for every start point and step size on dask.distributed.

    Parameters
    ----------
    fn : :func:`bea.certify`, :func:`bea.max_step` (called with t = h·steps), :func:`bea.trajectory`,
        :func:`bea.gd`, or any picklable callable with that signature.
    E, params : the sympy loss and its parameter symbols (a :class:`bea.compile.loss.CompiledLoss` is sent
        as its expression and symbols).
    theta0 : one start point or a list of them (rows); ``theta0_index`` in the table is the position
        in that list.
    h : one step size or a list of them.
    steps : the number of GD steps of every run.
    client : a ``distributed.Client`` to run on (left open); None starts a ``LocalCluster`` of
        ``n_workers`` processes with one thread each, closed when the sweep ends.
    n_workers : worker processes of that ``LocalCluster`` (ignored when ``client`` is given).
    progress : show a tqdm progress bar of finished tasks.
    **kwargs : passed to ``fn`` (e.g. ``mode="theorem1"``, ``flow="pf"``, ``tol=1e-3``).

    Returns
    -------
    pandas.DataFrame
        One row per (θ0_i, h_j), sorted by ``theta0_index`` then ``h``: the columns ``theta0_index``,
        ``h``, the result's scalars (:func:`result_row`; for a certificate ``certified``, ``bound``,
        ``distance``, …) and ``error``: None for a run that returned, ``"ExceptionType: message"``
        for one that raised (its result columns are then missing values).

    Raises
    ------
    InvalidInputError
        ``theta0`` or ``h`` do not describe a grid (wrong shape, empty, not numbers), ``fn`` is not
        callable, ``n_workers`` is not a positive integer. Errors *inside* the runs (a bad step size,
        a divergence, an invalid loss) are reported in the rows instead.
    InvalidParamsError
        ``params`` is not a sequence.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("bea.sweep needs dask.distributed and pandas: pip install 'bea[distributed]'") from exc
    import pandas  # noqa: F401  (fail before starting a cluster)
    from tqdm.auto import tqdm

    if not callable(fn):
        raise InvalidInputError(f"fn must be callable (e.g. bea.certify), got {fn!r}")
    if isinstance(n_workers, bool) or not isinstance(n_workers, numbers.Integral) or n_workers < 1:
        raise InvalidInputError(f"n_workers must be a positive integer, got {n_workers!r}")
    if isinstance(E, CompiledLoss):
        E, params = E.expr, E.params
    try:
        params = tuple(params)
    except TypeError:
        raise InvalidParamsError(f"params must be a sequence of sympy Symbols, got {params!r}") from None
    points = _points(theta0, len(params))
    hs = _steps_sizes(h)

    def collect(cl):
        problem = cl.scatter([(E, params)], broadcast=True, hash=False)[0]
        tag = uuid.uuid4().hex[:8]
        futures, where = [], {}
        for i, th in enumerate(points):
            for j, hj in enumerate(hs):
                fut = cl.submit(_task, fn, problem, i, th, hj, steps, kwargs, key=f"bea-sweep-{tag}-{i}-{j}", pure=False)
                futures.append(fut)
                where[fut.key] = (i, hj)
        rows = []
        bar = tqdm(total=len(futures), desc="bea.sweep", unit="run", disable=not progress)
        try:
            for fut in as_completed(futures):
                i, hj = where[fut.key]
                try:
                    rows.append(fut.result())
                except Exception as exc:  # noqa: BLE001 - a lost task (KilledWorker, cancelled) is a row too
                    rows.append({"theta0_index": i, "h": hj, "error": _describe(exc)})
                bar.update(1)
        finally:
            bar.close()
            cl.cancel(futures + [problem])
        return rows

    if client is not None:
        return _frame(collect(client))
    env = {"BEA_CACHE_DIR": str(cache_dir().parent)}
    with LocalCluster(
        n_workers=int(n_workers), threads_per_worker=1, processes=True, dashboard_address=":0", env=env,
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as cl:
        return _frame(collect(cl))
