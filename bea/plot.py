"""Matplotlib views of GD, its flows and the principal-flow diagnostics.

matplotlib is imported inside the functions (it is an optional dependency, ``pip install bea[plot]``);
every function returns the :class:`matplotlib.figure.Figure` it drew on and never calls ``show``.
"""

from __future__ import annotations

import numpy as np

from bea.errors import InvalidInputError

__all__ = ["trajectories", "stability_traces", "dal_traces"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("bea.plot needs matplotlib: pip install 'bea[plot]'") from exc
    return plt


def _figure(ax, nrows=1, figsize=None):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, [ax]
    fig, axes = plt.subplots(nrows, 1, figsize=figsize or (6.0, 2.6 * nrows + 1.0), squeeze=False)
    return fig, list(axes[:, 0])


def trajectories(
    E,
    params,
    theta0,
    h,
    steps,
    flows=("ngf", "igr", "pf"),
    *,
    paths: dict | None = None,
    ax=None,
    levels: int = 30,
    margin: float = 0.25,
    grid: int = 200,
):
    """GD iterates and flows (sampled at t = k·h) on the contour plot of a 2-parameter loss.

    Parameters
    ----------
    E, params : a loss of exactly two parameters
    theta0, h, steps : the GD run; each name in ``flows`` is integrated by :func:`bea.trajectory`
        (complex flows are drawn by their real part, the model of GD)
    paths : extra named (steps+1, 2) arrays to draw (e.g. a DAL run's ``thetas``)
    ax : draw into this Axes instead of a new figure
    levels, margin, grid : contour levels, relative margin around the paths, contour resolution
    """
    from bea.flows import _loss, gd, trajectory

    loss = _loss(E, params)
    if loss.n != 2:
        raise InvalidInputError(f"trajectories draws 2-parameter losses, this one has {loss.n}")
    curves = {"GD": gd(loss, loss.params, theta0, h, steps)}
    for name in flows:
        curves[name] = np.real(trajectory(loss.expr, loss.params, theta0, h, steps, flow=name))
    for name, arr in (paths or {}).items():
        arr = np.real(np.asarray(arr))
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InvalidInputError(f"path {name!r} must have shape (m, 2), got {arr.shape}")
        curves[name] = arr
    pts = np.vstack([c[np.all(np.isfinite(c), axis=1)] for c in curves.values()])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-3 * np.maximum(1.0, np.abs(hi)))
    lo, hi = lo - pad, hi + pad
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    X, Y = np.meshgrid(xs, ys)
    import sympy as sp

    with np.errstate(all="ignore"):  # a vectorised numpy evaluation: no kernel to compile for a picture
        Z = np.broadcast_to(sp.lambdify(loss.params, loss.expr, "numpy")(X, Y), X.shape).astype(float)

    fig, (axis,) = _figure(ax, figsize=(6.0, 5.0))
    finite = Z[np.isfinite(Z)]
    if finite.size and finite.max() > finite.min():
        if finite.min() > 0 and finite.max() / finite.min() > 1e3:
            lev = np.geomspace(finite.min(), finite.max(), levels)
        else:
            lev = np.linspace(finite.min(), finite.max(), levels)
        axis.contour(X, Y, Z, levels=lev, cmap="Greys", linewidths=0.6)
    gd_path = curves.pop("GD")
    axis.plot(gd_path[:, 0], gd_path[:, 1], "o--", color="black", ms=3, lw=0.8, label="GD")
    for name, c in curves.items():
        axis.plot(c[:, 0], c[:, 1], ".-", ms=3, lw=1.2, label=name)
    axis.set_xlabel(str(loss.params[0]))
    axis.set_ylabel(str(loss.params[1]))
    axis.set_title(f"h = {float(h):g}, {int(steps)} steps")
    axis.legend(fontsize="small")
    return fig


def stability_traces(trace, *, axes=None):
    """Eigenvalues, stability coefficient sc_0 and loss along a GD run.

    ``trace`` is a :class:`bea.principal.PFTrace` (:func:`bea.principal.diagnostics_along`).  Top:
    λ_i against the iteration with the lines 1/h and 2/h; middle: Re and Im of sc_0 (Def. 3.4; a
    positive real part predicts a loss increase); bottom: the loss, steps that increase it marked.
    """
    if axes is None:
        fig, axs = _figure(None, nrows=3, figsize=(6.5, 8.0))
    else:
        axs = list(axes)
        if len(axs) != 3:
            raise InvalidInputError("axes must be three Axes")
        fig = axs[0].figure
    k = np.arange(len(trace))
    ax0, ax1, ax2 = axs
    for i in range(trace.eigenvalues.shape[1]):
        ax0.plot(k, trace.eigenvalues[:, i], lw=1.0, label=f"λ_{i}" if i < 4 else None)
    ax0.axhline(2.0 / trace.h, color="red", ls="--", lw=0.8, label="2/h")
    ax0.axhline(1.0 / trace.h, color="orange", ls=":", lw=0.8, label="1/h")
    ax0.set_ylabel("Hessian eigenvalues")
    ax0.legend(fontsize="small", ncol=3)
    sc = trace.stability_coefficients[:, 0]
    with np.errstate(invalid="ignore"):
        ax1.plot(k, np.where(np.isfinite(sc.real), sc.real, np.nan), label="Re sc_0")
        ax1.plot(k, np.where(np.isfinite(sc.imag), sc.imag, np.nan), label="Im sc_0")
    ax1.axhline(0.0, color="grey", lw=0.6)
    ax1.set_ylabel("stability coefficient")
    ax1.legend(fontsize="small")
    ax2.plot(k, trace.losses, color="black", lw=1.0)
    inc = np.flatnonzero(trace.loss_increases) + 1
    ax2.plot(inc, trace.losses[inc], "v", color="red", ms=4, label="loss increases")
    if np.all(trace.losses > 0):
        ax2.set_yscale("log")
    ax2.set_ylabel("loss")
    ax2.set_xlabel("GD iteration")
    ax2.legend(fontsize="small")
    return fig


def dal_traces(result, *, axes=None):
    """Loss and learning rate of a :class:`bea.dal.DALResult` against the iteration."""
    if axes is None:
        fig, axs = _figure(None, nrows=2, figsize=(6.0, 5.0))
    else:
        axs = list(axes)
        if len(axs) != 2:
            raise InvalidInputError("axes must be two Axes")
        fig = axs[0].figure
    ax0, ax1 = axs
    ax0.plot(np.arange(len(result.losses)), result.losses, color="black")
    if np.all(result.losses > 0):
        ax0.set_yscale("log")
    ax0.set_ylabel("loss")
    ax0.set_title(result.method)
    lrs = np.atleast_2d(result.lrs.T).T if result.lrs.ndim == 1 else result.lrs
    for j in range(lrs.shape[1]):
        ax1.plot(np.arange(lrs.shape[0]), lrs[:, j], lw=1.0, label=None if lrs.shape[1] == 1 else f"h_{j}")
    if lrs.shape[1] > 1:
        ax1.legend(fontsize="small")
    ax1.set_yscale("log")
    ax1.set_ylabel("learning rate")
    ax1.set_xlabel("iteration")
    return fig
