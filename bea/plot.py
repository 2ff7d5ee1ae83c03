"""Matplotlib views of GD, its flows, certificates and the principal-flow diagnostics.

matplotlib is imported inside the functions (it is an optional dependency, ``pip install bea[plot]``);
every function returns the :class:`matplotlib.figure.Figure` it drew on and never calls ``show``.

Conventions: GD is drawn last and on top (black open circles joined by a thin line), so a flow that
coincides with it (the principal flow on a quadratic) stays visible around its markers; flows get
distinct colours *and* line styles; legends sit outside the data (beside the axes), never over the
minimum; contours are drawn in a readable grey with the level of the minimum darkest.
"""

from __future__ import annotations

import numpy as np

from bea.errors import InvalidInputError

__all__ = ["trajectories", "stability_traces", "dal_traces", "certificate"]

_STYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1))]


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


def _legend_outside(axis, **kwargs):
    """A legend beside the axes (upper left corner at the right edge): it never hides data."""
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)


def _path(name, arr):
    arr = np.real(np.asarray(arr))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInputError(f"path {name!r} must have shape (m, 2), got {arr.shape}")
    return arr


def trajectories(
    E,
    params,
    theta0=None,
    h=None,
    steps=None,
    flows=None,
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
    theta0, h, steps : the GD run. GD is computed with :func:`bea.gd` unless ``paths`` has a
        ``"GD"`` entry, and each name in ``flows`` is integrated by :func:`bea.trajectory`
        (complex flows are drawn by their real part, the model of GD). Not needed when every path
        is given in ``paths``.
    flows : names of flows to integrate; default ``("ngf", "igr", "pf")`` without ``paths`` and
        none with ``paths`` (pass them explicitly to integrate more)
    paths : arrays you already computed, name -> (m, 2) array: ``"GD"`` is drawn as GD, every other
        entry as a flow (e.g. ``{"GD": bea.gd(...), "pf": pf, "DAL": run.thetas}``); nothing is
        integrated again
    ax : draw into this Axes instead of a new figure
    levels, margin, grid : contour levels, relative margin around the paths, contour resolution
    """
    from bea.flows import gd, trajectory
    from bea.compile.loss import cached_loss

    loss = cached_loss(E, params)
    if loss.n != 2:
        raise InvalidInputError(f"trajectories draws 2-parameter losses, this one has {loss.n}")
    given = {name: _path(name, arr) for name, arr in (paths or {}).items()}
    if flows is None:
        flows = () if paths else ("ngf", "igr", "pf")
    need_run = list(flows) or "GD" not in given
    if need_run and (theta0 is None or h is None or steps is None):
        raise InvalidInputError("trajectories needs theta0, h and steps to compute GD or a flow; "
                                "pass computed arrays in paths= (including 'GD') to draw them only")
    gd_path = given.pop("GD", None)
    if gd_path is None:
        gd_path = gd(loss, loss.params, theta0, h, steps, on_failure="return")
    curves = {name: np.real(trajectory(loss.expr, loss.params, theta0, h, steps, flow=name)) for name in flows}
    curves.update(given)

    everything = [gd_path, *curves.values()]
    pts = np.vstack([c[np.all(np.isfinite(c), axis=1)] for c in everything])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-3 * np.maximum(1.0, np.abs(hi)))
    lo, hi = lo - pad, hi + pad
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    X, Y = np.meshgrid(xs, ys)
    import sympy as sp

    with np.errstate(all="ignore"):  # a vectorised numpy evaluation: no kernel to compile for a picture
        Z = np.broadcast_to(sp.lambdify(loss.params, loss.expr, "numpy")(X, Y), X.shape).astype(float)

    fig, (axis,) = _figure(ax, figsize=(7.2, 5.0))
    finite = Z[np.isfinite(Z)]
    if finite.size and finite.max() > finite.min():
        if finite.min() > 0 and finite.max() / finite.min() > 1e3:
            lev = np.geomspace(finite.min(), finite.max(), levels)
        else:
            # denser near the bottom of the valley, where the paths end
            lev = finite.min() + (finite.max() - finite.min()) * np.linspace(0.0, 1.0, levels) ** 2
        axis.contourf(X, Y, Z, levels=lev, cmap="Greys_r", alpha=0.25, zorder=0)
        axis.contour(X, Y, Z, levels=lev, colors="0.35", linewidths=0.7, zorder=1)
    for i, (name, c) in enumerate(curves.items()):
        axis.plot(c[:, 0], c[:, 1], ls=_STYLES[i % len(_STYLES)], color=f"C{i}", lw=1.8, marker=".", ms=4,
                  label=name, zorder=3 + i / 100)
    # GD: a thin line under the flows and open circles over them, so a flow that coincides with GD
    # (the principal flow on a quadratic) is seen inside the circles
    axis.plot(gd_path[:, 0], gd_path[:, 1], "-", color="0.2", lw=0.5, zorder=2)
    axis.plot(gd_path[:, 0], gd_path[:, 1], ls="none", marker="o", ms=7, mfc="none", mec="black", mew=1.2,
              label="GD", zorder=10)
    axis.plot(gd_path[0, 0], gd_path[0, 1], marker="*", ms=13, color="gold", mec="black", ls="none",
              label="start", zorder=11)
    axis.set_xlabel(str(loss.params[0]))
    axis.set_ylabel(str(loss.params[1]))
    if h is not None and steps is not None:
        axis.set_title(f"h = {float(h):g}, {int(steps)} steps")
    _legend_outside(axis)
    if ax is None:
        fig.tight_layout()
    return fig


def stability_traces(trace, *, axes=None):
    """Eigenvalues, stability coefficient sc_0 and loss along a GD run.

    ``trace`` is a :class:`bea.flows.diagnostics.PFTrace` (:func:`bea.flows.diagnostics.diagnostics_along`)
    or a :class:`bea.torch.diagnostics.PFTrace` (logged at the iterations ``trace.steps``, with the
    learning rate ``trace.lr`` of each: the lines 1/h and 2/h follow it).  Top: λ_i against the
    iteration with the lines 1/h and 2/h; middle: Re and Im of sc_0 (Def. 3.4; a positive real part
    predicts a loss increase); bottom: the loss, logged iterations that increase it marked (and
    named in the legend only when there are any).
    """
    if axes is None:
        fig, axs = _figure(None, nrows=3, figsize=(7.5, 8.0))
    else:
        axs = list(axes)
        if len(axs) != 3:
            raise InvalidInputError("axes must be three Axes")
        fig = axs[0].figure
    steps = getattr(trace, "steps", None)  # the torch trace logs every s-th iteration
    k = np.arange(len(trace)) if steps is None else np.asarray(steps)
    ax0, ax1, ax2 = axs
    for i in range(trace.eigenvalues.shape[1]):
        ax0.plot(k, trace.eigenvalues[:, i], lw=1.2, ls=_STYLES[i % len(_STYLES)], label=f"λ_{i}" if i < 4 else None)
    lr = np.broadcast_to(np.asarray(getattr(trace, "lr", trace.h), dtype=float), k.shape)
    if np.all(lr == lr[0]):
        ax0.axhline(2.0 / lr[0], color="red", ls="--", lw=0.9, label="2/h")
        ax0.axhline(1.0 / lr[0], color="orange", ls=":", lw=0.9, label="1/h")
    else:  # a varying learning rate (DAL): the limits move with it
        ax0.plot(k, 2.0 / lr, color="red", ls="--", lw=0.9, label="2/h")
        ax0.plot(k, 1.0 / lr, color="orange", ls=":", lw=0.9, label="1/h")
    ax0.set_ylabel("Hessian eigenvalues")
    _legend_outside(ax0)
    sc = trace.stability_coefficients[:, 0]
    with np.errstate(invalid="ignore"):
        ax1.plot(k, np.where(np.isfinite(sc.real), sc.real, np.nan), label="Re sc_0")
        ax1.plot(k, np.where(np.isfinite(sc.imag), sc.imag, np.nan), "--", label="Im sc_0")
    ax1.axhline(0.0, color="grey", lw=0.6)
    ax1.set_ylabel("stability coefficient")
    _legend_outside(ax1)
    ax2.plot(k, trace.losses, color="black", lw=1.0, label="loss")
    inc = np.flatnonzero(np.diff(trace.losses) > 0) + 1
    if inc.size:
        ax2.plot(k[inc], trace.losses[inc], "v", color="red", ms=5, ls="none", label="loss increases")
    if np.all(trace.losses > 0):
        ax2.set_yscale("log")
    ax2.set_ylabel("loss")
    ax2.set_xlabel("GD iteration")
    _legend_outside(ax2)
    if axes is None:
        fig.tight_layout()
    return fig


def dal_traces(result, *, axes=None):
    """Loss and learning rate of a :class:`bea.flows.dal.DALResult` against the iteration (a diverged run
    is drawn up to the iterate where it diverged, marked)."""
    if axes is None:
        fig, axs = _figure(None, nrows=2, figsize=(6.5, 5.0))
    else:
        axs = list(axes)
        if len(axs) != 2:
            raise InvalidInputError("axes must be two Axes")
        fig = axs[0].figure
    ax0, ax1 = axs
    losses = result.losses
    ax0.plot(np.arange(len(losses)), losses, color="black")
    stop = getattr(result, "diverged_at", None)
    if stop is not None:
        ax0.axvline(stop, color="red", ls="--", lw=0.9, label=f"diverged at {stop}")
        _legend_outside(ax0)
    fin = losses[np.isfinite(losses)]
    if fin.size and np.all(fin > 0):
        ax0.set_yscale("log")
    ax0.set_ylabel("loss")
    ax0.set_title(result.method)
    lrs = np.atleast_2d(result.lrs.T).T if result.lrs.ndim == 1 else result.lrs
    for j in range(lrs.shape[1]):
        ax1.plot(np.arange(lrs.shape[0]), lrs[:, j], lw=1.0, ls=_STYLES[j % len(_STYLES)],
                 label=None if lrs.shape[1] == 1 else f"h_{j}")
    if lrs.shape[1] > 1:
        _legend_outside(ax1)
    ax1.set_yscale("log")
    ax1.set_ylabel("learning rate")
    ax1.set_xlabel("iteration")
    if axes is None:
        fig.tight_layout()
    return fig


def certificate(cert, *, axes=None):
    """A :class:`bea.certificates.certify.Certificate`: top, the certified bound and the actual distance
    ‖θ_k − θ(kh)‖ (log scale; the steps where the bound is not proven are shaded); bottom, the
    enclosure [λ_min, λ_max] of the Hessian spectrum along the flow with the stability limit 2/h.
    ``axes``: one Axes (top panel only) or two."""
    if axes is None:
        fig, axs = _figure(None, nrows=2, figsize=(8.4, 6.0))
        axs[0].sharex(axs[1])
    else:
        axs = list(axes) if np.iterable(axes) else [axes]
        if len(axs) not in (1, 2):
            raise InvalidInputError("axes must be one or two Axes")
        fig = axs[0].figure
    ax1 = axs[0]
    t = np.asarray(cert.t)
    ok = np.isfinite(cert.bound) & (cert.bound > 0)
    ax1.semilogy(t[ok], cert.bound[ok], color="C0", lw=1.8, label=f"certified bound ({cert.mode})")
    pos = np.isfinite(cert.distance) & (cert.distance > 0)
    ax1.semilogy(t[pos], cert.distance[pos], "--", color="C1", lw=1.5, label="actual ‖θ_k − θ(kh)‖")
    if cert.valid_steps < len(t):
        ax1.axvspan(t[min(cert.valid_steps, len(t) - 1)], t[-1], color="red", alpha=0.1, lw=0,
                    label="bound not proven")
    ax1.set_ylabel("distance")
    title = "certified" if cert.certified else f"not certified: {cert.reason[:60]}"
    vs = "GF" if cert.flow == "ngf" else f"the {cert.flow} flow"
    ax1.set_title(f"GD vs {vs}, h = {cert.h:g} ({title})", fontsize=9)
    _legend_outside(ax1)
    if len(axs) == 2:
        ax2 = axs[1]
        lo, hi = np.asarray(cert.lambda_min, float), np.asarray(cert.lambda_max, float)
        ax2.fill_between(t, lo, hi, color="C2", alpha=0.2, lw=0, label="spectrum enclosure")
        ax2.plot(t, lo, color="C2", lw=1.5, label="λ_min (lower bound)")
        ax2.plot(t, hi, "--", color="C3", lw=1.5, label="λ_max (upper bound)")
        ax2.axhline(0.0, color="k", lw=0.5)
        finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
        limit = 2.0 / cert.h
        if finite.size and limit > finite.max() + 1.5 * max(finite.max() - finite.min(), 1e-12):
            # 2/h far above the spectrum: say so instead of squashing the spectrum to draw it
            span = max(finite.max() - finite.min(), 1e-12)
            ax2.set_ylim(min(finite.min(), 0.0) - 0.15 * span, finite.max() + 0.15 * span)
            ax2.plot([], [], color="red", ls=":", lw=0.9, label=f"2/h = {limit:.3g} (GD stability, above)")
        else:
            ax2.axhline(limit, color="red", ls=":", lw=0.9, label="2/h (GD stability)")
        ax2.set_xlabel("t")
        ax2.set_ylabel("Hessian eigenvalue")
        _legend_outside(ax2)
    else:
        ax1.set_xlabel("t")
    if axes is None:
        fig.tight_layout()
    return fig
