"""Neural-network experiments of seeds 000 and 002 with the torch backend (bea.torch), on CPU.

    python examples/torch_experiments.py                 # all four, figures into examples/out/
    python examples/torch_experiments.py fig2 --quick    # one experiment, smaller sizes
    python examples/torch_experiments.py thm2 thm3 eos --out /tmp/figs

Each experiment is an importable function returning a dict of numbers (notebooks call them with
smaller sizes) and saving one PNG:

``fig2_digits``   Elkabetz & Cohen (seed 000), Fig. 2 on ``sklearn.datasets.load_digits``: fully
                  connected 64-50-50-10 nets without bias (linear and ReLU), cross-entropy, full batch;
                  GD with η0 against every r-th iterate of GD with η0/r (r ∈ {2, 5, 10, 20}): the
                  distance between the runs against the distance travelled from the initialisation,
                  plus GD against the integrated gradient flow and its floating-point certified bound.
``thm2_lambda_min`` Theorem 2: the minimal Hessian eigenvalue along the gradient flow from a
                  near-zero initialisation, for homogeneous (linear, ReLU) and non-homogeneous
                  (tanh, softplus) nets, against λ_min at random points of the same norm.
``thm3_deep_linear`` Theorem 3: depth-3 and depth-4 linear nets with scalar output, loss
                  ½‖w_e − Φ‖², balanced near-zero initialisation: GD with a moderate step converges to
                  the global minimum (several seeds), and stays close to the gradient flow.
``edge_of_stability`` Seed 002, Sect. 5: a small MLP trained with GD reaches λ_0 ≈ 2/h (progressive
                  sharpening, then the edge of stability); stability coefficients sc_0 = α(hλ_0)gᵀu_0
                  per iteration; at an edge-of-stability iterate the one-direction-flipped flow
                  (NGF except +gᵀu_0 u_0, Fig. 14) against the NGF and GD.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import bea.torch as bt

ACTIVATIONS = {
    "linear": torch.nn.Identity,
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "softplus": torch.nn.Softplus,
}


# --------------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------------


def digits(n_samples=None, dtype=torch.float32, device="cpu", one_hot=False):
    """``load_digits`` inputs scaled to [0, 1] and the labels (or one-hot targets)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    X = torch.tensor(X / 16.0, dtype=dtype, device=device)
    y = torch.tensor(y, device=device)
    if one_hot:
        y = torch.nn.functional.one_hot(y, 10).to(dtype)
    return X, y


def mlp(widths=(64, 50, 50, 10), act="relu", bias=False, init_scale=1.0, seed=0, dtype=torch.float32, device="cpu"):
    """A fully connected net; ``init_scale`` multiplies PyTorch's default initialisation."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[act]())
    model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(init_scale)
    return model


def _figure(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return plt


# --------------------------------------------------------------------------------------------------
# (a) seed 000, Fig. 2
# --------------------------------------------------------------------------------------------------


def fig2_digits(acts=("linear", "relu"), h0=0.05, steps=300, rs=(2, 5, 10, 20), certify_steps=150,
                n_samples=None, out="examples/out/torch_fig2_digits.png", seed=0, verbose=True):
    r"""GD with η0 against every r-th iterate of GD with η0/r, and against the gradient flow (Fig. 2).

    Returns ``{act: {"loss": …, "dist_from_init": …, "dist_r": {r: …}, "gf_distance": …, "bound": …}}``
    with arrays over the η0 iterates k = 0..steps.  The certificate (float mode, see
    :func:`bea.torch.certify`) covers ``certify_steps`` (default: all) steps; for ReLU nets its
    Hessian-Lipschitz estimate sees only the smooth pieces (a diagnostic, not a bound).
    """
    X, y = digits(n_samples)
    certify_steps = steps if certify_steps is None else min(certify_steps, steps)
    results = {}
    for act in acts:
        f, th0 = bt.flat_loss(mlp(act=act, seed=seed), torch.nn.functional.cross_entropy, X, y)
        t0 = time.perf_counter()
        ref, losses = bt.gd(f, th0, h0, steps, return_losses=True, progress=False)
        dist_init = torch.linalg.vector_norm(ref - th0, dim=1).numpy()
        dist_r = {}
        for r in rs:
            small = bt.gd(f, th0, h0 / r, r * steps, every=r, progress=False)
            dist_r[r] = torch.linalg.vector_norm(small - ref, dim=1).numpy()
        cert = bt.certify(f, th0, h0, certify_steps, method="bs3", progress=False)
        results[act] = dict(
            loss=losses.numpy(), dist_from_init=dist_init, dist_r=dist_r, gf_distance=cert.distance,
            bound=cert.bound, certified=cert.certified, reason=cert.reason, time=time.perf_counter() - t0,
        )
        if verbose:
            last = {r: f"{d[-1]:.3g}" for r, d in dist_r.items()}
            print(f"[fig2] {act}: loss {float(losses[0]):.4f} -> {float(losses[-1]):.4f}; distance from init "
                  f"{dist_init[-1]:.4g}; distance to eta0/r runs {last}; GD vs GF {cert.distance[-1]:.3g} "
                  f"(certified bound {cert.bound[-1]:.3g}, {'certified' if cert.certified else 'NOT certified: ' + cert.reason[:80]}) "
                  f"[{results[act]['time']:.0f} s]")
    if out:
        plt = _figure(out)
        fig, axes = plt.subplots(len(acts), 2, figsize=(11, 3.6 * len(acts)), squeeze=False)
        for row, act in zip(axes, acts):
            res = results[act]
            k = np.arange(steps + 1)
            row[0].plot(k, res["loss"], "k", label=f"η0 = {h0:g}")
            row[0].set_yscale("log")
            row[0].set_xlabel("iteration k (of η0)")
            row[0].set_ylabel("training loss")
            row[0].set_title(f"{act} 64-50-50-10, digits, full batch")
            row[1].plot(res["dist_from_init"], res["dist_from_init"], "k:", lw=0.8, label="y = x")
            for r, d in res["dist_r"].items():
                row[1].plot(res["dist_from_init"], d, label=f"η0 vs η0/{r}")
            kc = np.arange(res["gf_distance"].size)
            row[1].plot(res["dist_from_init"][kc], res["gf_distance"], "k--", label="η0 vs gradient flow")
            ok = np.isfinite(res["bound"])
            row[1].plot(res["dist_from_init"][kc][ok], res["bound"][ok], color="m", lw=1.5, label="certified bound (float)")
            row[1].set_yscale("log")
            row[1].set_xlabel("‖θ_k − θ_0‖ (distance from init)")
            row[1].set_ylabel("distance between trajectories")
            row[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
    return results


# --------------------------------------------------------------------------------------------------
# (b) Theorem 2: λ_min along the gradient flow from near-zero init
# --------------------------------------------------------------------------------------------------


def thm2_lambda_min(acts=("linear", "relu", "tanh", "softplus"), init_scale=0.1, t_end=300.0, points=20,
                    n_samples=300, n_random=2, out="examples/out/torch_thm2_lambda_min.png", seed=0, verbose=True):
    r"""λ_min(∇²f(θ(t))) along the gradient flow θ(t) from a near-zero initialisation (seed 000, Thm 2).

    For each activation: the flow (float64, dopri5) sampled at ``points`` times in [0, t_end]; at each
    sample λ_min and λ_max by Lanczos, and λ_min at ``n_random`` random points of the same norm (the
    "arbitrarily negative across space" half of the theorem).  Returns arrays per activation and the
    integral ∫λ₋ dt that enters Theorem 1's exp(−∫λ₋).
    """
    X, y = digits(n_samples, dtype=torch.float64)
    results = {}
    for act in acts:
        t0 = time.perf_counter()
        model = mlp((64, 50, 50, 10), act=act, init_scale=init_scale, seed=seed, dtype=torch.float64)
        f, th0 = bt.flat_loss(model, torch.nn.functional.cross_entropy, X, y)
        dt = t_end / points
        # moderate tolerances: the flow of a ReLU net is only piecewise smooth (kinks cost tiny steps)
        Y = bt.trajectory(f, th0, dt, points, "ngf", method="dopri5", rtol=1e-5, atol=1e-8, progress=False)
        lam_min, lam_max, rnd_min, rnd_ratio, loss = [], [], [], [], []
        gen = torch.Generator().manual_seed(seed)
        v0 = None
        for yk in Y:
            s = bt.lanczos(f, yk, 1, "both", tol=1e-6, v0=v0)
            v0 = s.vectors[:, 0] + s.vectors[:, -1]
            lam_max.append(float(s.values[0]))
            lam_min.append(float(s.values[-1]))
            loss.append(float(f(yk)))
            r, rr = [], []
            for _ in range(n_random):
                z = torch.randn(yk.numel(), generator=gen, dtype=torch.float64)
                z = z / z.norm() * yk.norm()
                sz = bt.lanczos(f, z, 1, "both", tol=1e-4)
                r.append(float(sz.values[-1]))
                rr.append(float(sz.values[-1] / sz.values[0]))
            rnd_min.append(min(r))
            rnd_ratio.append(min(rr))
        t = dt * np.arange(points + 1)
        lam_min, lam_max, rnd_min, rnd_ratio = map(np.array, (lam_min, lam_max, rnd_min, rnd_ratio))
        neg = np.minimum(lam_min, 0.0)
        results[act] = dict(t=t, lambda_min=lam_min, lambda_max=lam_max, random_lambda_min=rnd_min,
                            random_ratio=rnd_ratio, loss=np.array(loss),
                            int_lambda_minus=float(np.sum(0.5 * (neg[1:] + neg[:-1]) * np.diff(t))),
                            time=time.perf_counter() - t0)
        if verbose:
            r = results[act]
            print(f"[thm2] {act}: loss {r['loss'][0]:.4f} -> {r['loss'][-1]:.4f}; along GF min λ_min = {lam_min.min():.4g} "
                  f"(max λ_max = {lam_max.max():.4g}, min λ_min/λ_max = {np.min(lam_min / lam_max):.3g}); "
                  f"random points of the same norm: min λ_min = {rnd_min.min():.4g} (λ_min/λ_max ≥ {rnd_ratio.min():.3g}); "
                  f"∫λ₋dt = {r['int_lambda_minus']:.3g} "
                  f"[{r['time']:.0f} s]")
    if out:
        plt = _figure(out)
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        for act, r in results.items():
            line = ax[0].plot(r["t"], r["lambda_min"], label=f"{act}: along GF")[0]
            ax[0].plot(r["t"], r["random_lambda_min"], ":", color=line.get_color(), label=f"{act}: random, same norm")
            ax[1].plot(r["t"], r["lambda_min"] / r["lambda_max"], color=line.get_color(), label=f"{act}: along GF")
            ax[1].plot(r["t"], r["random_ratio"], ":", color=line.get_color(), label=f"{act}: random, same norm")
        ax[0].axhline(0.0, color="k", lw=0.5)
        ax[0].set_xlabel("t (gradient-flow time)")
        ax[0].set_ylabel("λ_min of the Hessian")
        ax[0].set_title(f"digits ({n_samples} images), 64-50-50-10, init ×{init_scale:g}")
        ax[0].legend(fontsize=7)
        ax[1].axhline(0.0, color="k", lw=0.5)
        ax[1].set_xlabel("t")
        ax[1].set_ylabel("λ_min / λ_max along GF")
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
    return results


# --------------------------------------------------------------------------------------------------
# (c) Theorem 3: deep linear nets with scalar output
# --------------------------------------------------------------------------------------------------


class DeepLinearScalar(torch.nn.Module):
    """w_e = W_N ⋯ W_1 ∈ ℝ^{1×d} (forward returns the end-to-end row vector; no data)."""

    def __init__(self, d, width, depth, scale, generator):
        super().__init__()
        # balanced rank-one init: W_1 = s·v_1 uᵀ, W_j = s·v_j v_{j−1}ᵀ, W_N = s·v_{N−1}ᵀ (unit u, v_j), so
        # W_{j+1}ᵀW_{j+1} = s²v_j v_jᵀ = W_j W_jᵀ exactly; ‖w_e‖ = s^N
        u = torch.randn(d, generator=generator, dtype=torch.float64)
        vs = [torch.randn(width, generator=generator, dtype=torch.float64) for _ in range(depth - 1)]
        u, vs = u / u.norm(), [v / v.norm() for v in vs]
        mats = [scale * torch.outer(vs[0], u)]
        mats += [scale * torch.outer(vs[j], vs[j - 1]) for j in range(1, depth - 1)]
        mats.append(scale * vs[-1][None, :])
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(m) for m in mats])

    def forward(self, _):
        w = self.weights[0]
        for W in self.weights[1:]:
            w = W @ w
        return w.reshape(-1)


def thm3_deep_linear(depths=(3, 4), d=10, width=10, scale=0.5, hs=(0.1, 0.3), steps=2000, seeds=(0, 1, 2, 3),
                     certify_steps=300, out="examples/out/torch_thm3_deep_linear.png", verbose=True):
    r"""GD on ½‖W_N⋯W_1 − Φ‖² from a balanced near-zero init converges (seed 000, Thm 3).

    Φ is a fixed random unit row vector (global minimum 0).  Returns the loss curves per (depth, h,
    seed), the final losses, and for depth 3 and the first h/seed the GD–GF distance and its
    certificate over ``certify_steps`` steps.
    """
    gen = torch.Generator().manual_seed(1234)
    phi = torch.randn(d, generator=gen, dtype=torch.float64)
    phi = phi / phi.norm()

    def loss_fn(w, target):
        return 0.5 * ((w - target) ** 2).sum()

    results = {"curves": {}, "final": {}}
    for depth in depths:
        for h in hs:
            for seed in seeds:
                model = DeepLinearScalar(d, width, depth, scale, torch.Generator().manual_seed(seed))
                f, th0 = bt.flat_loss(model, loss_fn, torch.zeros(()), phi)
                _, losses = bt.gd(f, th0, h, steps, return_losses=True, every=steps, progress=False)
                results["curves"][(depth, h, seed)] = losses.numpy()
                results["final"][(depth, h, seed)] = float(losses[-1])
            if verbose:
                fin = [results["final"][(depth, h, s)] for s in seeds]
                print(f"[thm3] depth {depth}, h = {h:g}: loss {float(losses[0]):.3f} -> max over {len(seeds)} seeds "
                      f"{max(fin):.3g} after {steps} steps")
    model = DeepLinearScalar(d, width, depths[0], scale, torch.Generator().manual_seed(seeds[0]))
    f, th0 = bt.flat_loss(model, loss_fn, torch.zeros(()), phi)
    cert = bt.certify(f, th0, hs[0], certify_steps, progress=False)
    results["certificate"] = cert
    if verbose:
        print(f"[thm3] depth {depths[0]}, h = {hs[0]:g}, {certify_steps} steps: GD vs GF distance {np.nanmax(cert.distance):.3g}, "
              f"bound {cert.bound[-1]:.3g} ({'certified' if cert.certified else 'NOT certified: ' + cert.reason[:80]}); "
              f"min λ_min along GF {np.nanmin(cert.lambda_min):.3g}")
    if out:
        plt = _figure(out)
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        for (depth, h, seed), c in results["curves"].items():
            ax[0].semilogy(c, color="C0" if depth == depths[0] else "C1", alpha=0.4 + 0.6 * (h == hs[-1]),
                           lw=0.8, label=f"depth {depth}, h = {h:g}" if seed == seeds[0] else None)
        ax[0].set_xlabel("GD iteration")
        ax[0].set_ylabel("½‖w_e − Φ‖²")
        ax[0].set_title("deep linear, scalar output, balanced near-zero init")
        ax[0].legend(fontsize=7)
        ok = np.isfinite(cert.bound)
        ax[1].semilogy(cert.t[ok], cert.bound[ok], "r", label="certified bound (float)")
        ax[1].semilogy(cert.t[1:], cert.distance[1:], "k--", label="‖GD − GF‖")
        ax[1].set_xlabel("t")
        ax[1].legend(fontsize=7)
        ax[1].set_title(f"depth {depths[0]}, h = {hs[0]:g}: GD follows the flow")
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
    return results


# --------------------------------------------------------------------------------------------------
# (d) seed 002: edge of stability, stability coefficients, one flipped direction
# --------------------------------------------------------------------------------------------------


def edge_of_stability(h=0.2, steps=1500, every=5, k=2, n_samples=500, flip_at=None, flip_steps=3,
                      out="examples/out/torch_edge_of_stability.png", seed=0, verbose=True):
    r"""GD on a small MLP (64-32-32-10, tanh, squared loss on one-hot digits) until λ_0 ≈ 2/h.

    Logs :func:`bea.torch.diagnostics` every ``every`` steps (λ_0, λ_1, sc_i, drift, progress ratio).
    At iterate ``flip_at`` (default: 60% of the run, well inside the edge-of-stability phase) the NGF,
    GD and the flipped flow (θ̇ = +(gᵀu_0)u_0 − Σ_{i>0}(gᵀu_i)u_i, seed 002 Fig. 14) are run for
    ``flip_steps`` GD times, with the loss and λ_0 along each.
    """
    X, Y = digits(n_samples, one_hot=True)
    model = mlp((64, 32, 32, 10), act="tanh", bias=True, seed=seed)
    f, th0 = bt.flat_loss(model, lambda o, t: 0.5 * ((o - t) ** 2).sum(1).mean(), X, Y)
    t0 = time.perf_counter()
    logger = bt.PFLogger(k, every=every)
    theta = th0
    thetas = {}
    flip_at = int(0.6 * steps) if flip_at is None else flip_at
    for it in range(steps + 1):
        logger(f, theta, it, h)
        if it == flip_at:
            thetas["flip"] = theta.clone()
        if it == steps:
            break
        theta = theta - h * bt.grad(f, theta)
    trace = logger.trace()
    res = dict(trace=trace, time_train=time.perf_counter() - t0)
    lam0 = trace.lambda_max
    i_edge = int(np.argmax(lam0 >= 0.95 * 2 / h)) if np.any(lam0 >= 0.95 * 2 / h) else None
    if verbose:
        print(f"[eos] h = {h:g} (2/h = {2 / h:g}), n = {th0.numel()}: λ_0 {lam0[0]:.3g} -> max {lam0.max():.3g}, "
              f"final {lam0[-1]:.3g}; first within 5% of 2/h at step {trace.steps[i_edge] if i_edge is not None else '—'}; "
              f"loss {trace.losses[0]:.4f} -> {trace.losses[-1]:.4f}; {int(np.sum(np.diff(trace.losses) > 0))} logged "
              f"loss increases; median progress ratio after the edge {np.median(trace.progress_ratio[i_edge or 0:]):.3f} "
              f"[{res['time_train']:.0f} s, {logger.n_hvp} HVPs]")
        print(trace.summary())
    # Fig. 14: flows from an edge-of-stability iterate, sampled every h/sub (GD at every h)
    t0 = time.perf_counter()
    start = thetas["flip"]
    sub = 5
    flows = {"GD": (h * np.arange(flip_steps + 1), bt.gd(f, start, h, flip_steps))}
    for name, flow in (("NGF", "ngf"), ("flipped u_0", "flipped")):
        sol = bt.trajectory(f, start, h / sub, sub * flip_steps, flow, progress=False, lanczos_tol=1e-6,
                            max_steps=3000, return_solution=True, on_failure="return")
        ok = torch.isfinite(sol.y).all(dim=1).numpy()
        flows[name] = (sol.t[ok], sol.y[ok])
        if sol.status:
            res[f"{name} stopped"] = sol.message
    curves = {}
    for name, (t, Th) in flows.items():
        ls, l0 = [], []
        for th in Th:
            ls.append(float(f(th)))
            l0.append(float(bt.lanczos(f, th, 1, "largest", tol=1e-5).values[0]))
        curves[name] = (t, np.array(ls), np.array(l0))
    res["flows"] = curves
    res["time_flows"] = time.perf_counter() - t0
    if verbose:
        for name, (t, ls, l0) in curves.items():
            print(f"[eos] from step {flip_at}, t in [0, {t[-1]:.3g}]: {name:12s} loss {ls[0]:.4f} -> {ls[-1]:.4g}, "
                  f"λ_0 {l0[0]:.3g} -> {l0[-1]:.3g}" + (f" ({res[name + ' stopped']})" if name + " stopped" in res else ""))
    if out:
        plt = _figure(out)
        fig, ax = plt.subplots(1, 3, figsize=(15, 3.8))
        ax[0].plot(trace.steps, trace.eigenvalues[:, 0], label="λ_0")
        if trace.eigenvalues.shape[1] > 1:
            ax[0].plot(trace.steps, trace.eigenvalues[:, 1], lw=0.8, label="λ_1")
        ax[0].axhline(2 / h, color="k", ls="--", label="2/h")
        ax[0].set_xlabel("GD iteration")
        ax[0].set_title(f"edge of stability, h = {h:g}")
        ax[0].legend(fontsize=7)
        ax2 = ax[1]
        ax2.plot(trace.steps, trace.stability_coefficients[:, 0].real, label="Re sc_0")
        ax2.plot(trace.steps, trace.progress_ratio, lw=0.8, label="relative progress ratio")
        ax2.axhline(0.0, color="k", lw=0.5)
        ax2.set_xlabel("GD iteration")
        ax2.legend(fontsize=7)
        for name, (t, ls, _) in curves.items():
            ax[2].plot(t / h, ls, "o-" if name == "GD" else "-", ms=3, label=name)
        ax[2].set_xlabel(f"GD steps (t/h) after iteration {flip_at}")
        ax[2].set_ylabel("loss")
        ax[2].set_yscale("log")
        ax[2].set_title("one flipped direction (seed 002, Fig. 14)")
        ax[2].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
    return res


# --------------------------------------------------------------------------------------------------


EXPERIMENTS = {"fig2": fig2_digits, "thm2": thm2_lambda_min, "thm3": thm3_deep_linear, "eos": edge_of_stability}
QUICK = {
    "fig2": dict(steps=60, rs=(2, 5), n_samples=300),
    "thm2": dict(acts=("linear", "tanh"), t_end=60.0, points=10, n_random=1, n_samples=200),
    "thm3": dict(steps=300, seeds=(0, 1), certify_steps=50),
    "eos": dict(steps=300, every=10, flip_steps=2, n_samples=200),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", help=f"experiments to run: {', '.join(EXPERIMENTS)} (default: all)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (seconds, for smoke tests)")
    ap.add_argument("--out", default="examples/out", help="directory of the PNG files")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args(argv)
    names = args.which or list(EXPERIMENTS)
    for name in names:
        if name not in EXPERIMENTS:
            ap.error(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in names:
        kwargs = dict(QUICK[name]) if args.quick else {}
        kwargs["out"] = os.path.join(args.out, f"torch_{name}.png")
        t0 = time.perf_counter()
        EXPERIMENTS[name](**kwargs)
        print(f"== {name}: {time.perf_counter() - t0:.0f} s, figure {kwargs['out']}")


if __name__ == "__main__":
    main()
