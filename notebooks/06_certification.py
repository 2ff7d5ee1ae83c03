# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Certified distance between GD and gradient flow
#
# Elkabetz & Cohen (seed 000, NeurIPS 2021) bound the distance between GD with step η and the
# gradient flow (GF) it discretises:
#
#     ‖θ(t) − θ_{k=t/η}‖ ≤ O(e^{−∫₀ᵗ λ₋(t′)dt′} · t · η),   λ₋ = min(λ_min(∇²f(θ(t′))), 0)   (Thm 1)
#
# so GD tracks GF with a moderate step wherever the loss is roughly convex *along the flow*.
# `bea.certify` computes an explicit bound of this kind step by step (design.md §1): e_0 = 0,
# e_{k+1} = ρ_k(e_k)e_k + (η²/2)a_k with ρ_k from the Hessian spectrum along the flow, a_k ≥ the
# GF local error and M a Hessian-Lipschitz constant in a tube of radius r around the flow. The
# bound holds while it stays inside the tube; otherwise the certificate says *not certified*.
# `rigorous=True` encloses the flow and GD in ball arithmetic, which turns the bound into a proof.
#
# 1. bound vs actual distance on a convex quadratic and on a non-convex loss;
# 2. Prop. 1: an objective on which η must shrink like e^{−mt};
# 3. seed 000 Thm 2: λ_min along GF of a deep linear network vs λ_min across space;
# 4. seed 000 Fig. 2: GD with η₀ vs η₀/r (r = 2, 5, 10, 20), on that network and, with PyTorch, on
#    an MLP on the scikit-learn digits, with a certificate for the MLP;
# 5. the certified distance between GD and the modified flows (IGR, third order, BEA of order n,
#    PF) against h, with the slopes n + 1 (issue 14).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import bea
import bea.testing
from bea.compile.loss import compile_loss

T_START = time.perf_counter()
x, y = sp.symbols("x y")

# %% [markdown]
# ## 1. Bound vs actual distance
#
# ### A convex quadratic
# E = θ₁² + 0.01θ₂² from (−0.35, −0.2) with η = 0.1, 50 steps. λ_min > 0 everywhere, so ρ_k < 1
# and the bound stays O(tη).

# %%
Eq = x**2 + sp.Rational(1, 100) * y**2
cq = bea.certify(Eq, [x, y], [-0.35, -0.2], 0.1, 50)
cq_rig = bea.certify(Eq, [x, y], [-0.35, -0.2], 0.1, 50, rigorous=True)
cq_t1 = bea.certify(Eq, [x, y], [-0.35, -0.2], 0.1, 50, mode="theorem1")
print(cq.summary())
print(f"\nbound/distance at the last step: discrete {cq.ratio:.6f}, rigorous {cq_rig.ratio:.6f}, "
      f"theorem-1 form {cq_t1.ratio:.3f}")
fig = cq.plot()  # top: bound and actual distance; bottom: λ_min along the flow
plt.show()

# %% [markdown]
# **Reading.** On this quadratic the discrete recursion is essentially exact: the bound exceeds
# the actual distance by a factor 1.0000001 (the padding that makes it an upper bound in floating
# point), in float and in rigorous ball-arithmetic mode alike. Theorem 1 with its constant made
# explicit (`mode="theorem1"`) is valid too but ≈ 4000× looser here: it uses worst-case
# constants over a tube instead of the step-by-step contraction. The top panel is what Thm 1
# predicts for convex losses: the distance grows like tη at first and then decays with the flow.

# %% [markdown]
# ### A non-convex loss
# E = (x² − 1)²/4 + y²/2 + xy/5 from (0.3, 1): the flow starts where λ_min < 0 (near the saddle at
# the origin) and ends in a minimum. Three step sizes.

# %%
Enc = (x**2 - 1) ** 2 / 4 + y**2 / 2 + x * y / 5
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
print(f"{'η':>5} {'steps':>5}  {'λ_min along GF':>18}  {'∫λ₋dt':>7}  {'bound':>9} {'distance':>9} "
      f"{'ratio':>6} {'rigorous':>8} {'thm-1 ratio':>11}")
for i, (h, steps) in enumerate([(0.1, 60), (0.05, 120), (0.02, 300)]):
    c = bea.certify(Enc, [x, y], [0.3, 1.0], h, steps)
    cr = bea.certify(Enc, [x, y], [0.3, 1.0], h, steps, rigorous=True)
    ct = bea.certify(Enc, [x, y], [0.3, 1.0], h, steps, mode="theorem1")
    int_neg = h * np.minimum(c.lambda_min, 0).sum()
    print(f"{h:5g} {steps:5d}  [{c.lambda_min.min():7.3f}, {c.lambda_min.max():6.3f}]  {int_neg:7.3f}  "
          f"{c.bound[-1]:9.2e} {c.distance[-1]:9.2e} {c.ratio:6.3f} {str(cr.certified):>8} "
          f"{ct.ratio if ct.certified else float('nan'):11.1f}")
    axes[0].semilogy(c.t[1:], c.bound[1:], "-", color=f"C{i}", label=f"bound, η = {h}")
    axes[0].semilogy(c.t[1:], c.distance[1:], "--", color=f"C{i}", label=f"distance, η = {h}")
    if i == 0:
        axes[1].plot(c.t, c.lambda_min, "k", label="λ_min (lower bound) along GF")
        axes[1].plot(c.t, c.lambda_max, "0.5", label="λ_max (upper bound) along GF")
axes[1].axhline(0, color="C3", lw=0.8)
axes[0].set_xlabel("time t = kη")
axes[0].set_ylabel("‖θ_k − θ(kη)‖ and its bound")
axes[0].legend(fontsize=7, ncol=2)
axes[1].set_xlabel("time t")
axes[1].set_ylabel("Hessian eigenvalue bounds")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Reading.** While λ_min < 0 (the first ≈ 1.3 time units, right panel) the distance and its
# bound grow fast — the e^{−∫λ₋} factor of Thm 1, here e^{0.65} ≈ 1.9 — and once the flow is in the
# convex basin both decay. Both scale linearly with η (Thm 1's tη): 1.2e-3, 6.2e-4 and 2.5e-4 at the
# end for η = 0.1, 0.05, 0.02. The discrete bound stays within a factor 1.35–1.45 of the true
# distance, and rigorous mode proves it. The explicit theorem-1 form certifies only the smallest
# step, and is 84× looser there. The seed states Thm 1 with an unspecified constant; here the
# constant is explicit and checked.

# %% [markdown]
# ## 2. Prop. 1: a step size that must shrink like e^{−mt}
#
# f = −cφ − (m/2)(r − 1)² in polar coordinates (seed 000, Prop. 1): GF from (1, 0) circles on r = 1
# for ever (the angular term pushes it round, the radial term is a ridge), while GD leaves the
# circle by O(η²) per step and the ridge amplifies the deviation like e^{mt}. `bea.max_step` finds,
# for each horizon t, the largest η = t/k whose certified bound (and, separately, whose actual
# distance) is ≤ 0.02 at time t.

# %%
def repelling_circle(m, c):
    return -c * sp.atan2(y, x) - sp.Rational(1, 2) * m * (sp.sqrt(x**2 + y**2) - 1) ** 2


fig, ax = plt.subplots(figsize=(7, 4.5))
for m, c, ts, col in [(1.0, sp.Rational(1, 5), [2.0, 3.0, 4.0, 5.0], "C0"), (2.0, sp.Rational(2, 5), [1.0, 1.5, 2.0, 2.5], "C1")]:
    E = repelling_circle(m, c)
    answers = [bea.max_step(E, [x, y], [1.0, 0.0], t, 0.02, rel_tol=0.02) for t in ts]
    cert = np.array([a.certified_step for a in answers])
    emp = np.array([a.empirical_step for a in answers])
    slope_c = -np.polyfit(ts[-3:], np.log(cert[-3:]), 1)[0]
    slope_e = -np.polyfit(ts[-3:], np.log(emp[-3:]), 1)[0]
    lam = (m + np.sqrt(m * m + 4 * float(c) ** 2)) / 2
    print(f"m = {m}: t = {ts}\n   certified η = {np.round(cert, 5)}\n   empirical η = {np.round(emp, 5)}")
    print(f"   decay rate of η (log-slope over the last three t): certified {slope_c:.3f}, empirical {slope_e:.3f}; "
          f"m = {m}, |λ_min| on the circle = {lam:.3f}")
    ax.semilogy(ts, cert, "o-", color=col, label=f"certified η, m = {m}")
    ax.semilogy(ts, emp, "s--", color=col, label=f"empirical η, m = {m}")
ax.set_xlabel("horizon t")
ax.set_ylabel("largest η with ‖θ_{t/η} − θ(t)‖ ≤ 0.02")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Reading.** The admissible step falls exponentially with the horizon, at rate ≈ 1.06–1.10 for
# m = 1 and ≈ 2.13–2.19 for m = 2. These are close to |λ_min| of the Hessian on the circle,
# (m + √(m² + 4c²))/2 = 1.04 and 2.08, which tends to m as c → 0: Prop. 1's e^{−mt}. The certified
# step is within 8–15% of the empirical one, so the bound costs little even in this worst case.
# (The seed's blog states the proposition without a figure.)

# %% [markdown]
# ## 3. Thm 2: along GF of a neural network the loss is "roughly convex"
#
# A depth-3 linear network with scalar output (seed 000's Thm 3 setting), w_e = W₃W₂W₁ with
# W₁, W₂ ∈ ℝ^{2×2}, W₃ ∈ ℝ^{1×2} (10 parameters), loss ½‖w_e − Φ‖², Φ = (1, −0.5). Theorem 2 says
# λ_min of the Hessian is arbitrarily negative across parameter space but almost non-negative along
# GF trajectories started near zero. We compute λ_min at random points of norm R and along GF from
# random starts of norm 0.1 to 1.

# %%
def mats(name, r, c):
    return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}{i}{j}"))


W1, W2, W3 = mats("a", 2, 2), mats("b", 2, 2), mats("c", 1, 2)
we = W3 * W2 * W1
Phi = [1.0, -0.5]
Edl = sp.Rational(1, 2) * sum((we[i] - sp.Float(Phi[i])) ** 2 for i in range(2))
pdl = list(W1) + list(W2) + list(W3)
dl = compile_loss(Edl, pdl)
rng = np.random.default_rng(0)
direction = rng.normal(size=10)
direction /= np.linalg.norm(direction)

fig, ax = plt.subplots(figsize=(8, 5))
radii = np.geomspace(0.05, 6, 25)
samples = np.array([[np.linalg.eigvalsh(dl.hess(R * u / np.linalg.norm(u))).min() for u in rng.normal(size=(60, 10))]
                    for R in radii])
ax.fill_between(radii, samples.min(1), np.median(samples, 1), color="0.85", label="random points: min to median λ_min")
ax.plot(radii, samples.min(1), "0.5", lw=1)
print(f"λ_min at random points: norm 1 → min {samples[np.argmin(abs(radii - 1))].min():.2f}; "
      f"norm 6 → min {samples[-1].min():.1f}")
eta = 0.05
for i, s in enumerate([0.1, 0.3, 1.0]):
    gf = bea.trajectory(Edl, pdl, s * direction, eta, 600, flow="ngf")
    lam_min = np.array([np.linalg.eigvalsh(dl.hess(t)).min() for t in gf])
    norms = np.linalg.norm(gf, axis=1)
    ax.plot(norms, lam_min, "-", color=f"C{i}", lw=2, label=f"along GF from norm {s}")
    print(f"GF from ‖θ₀‖ = {s}: min λ_min = {lam_min.min():.3f}, ∫λ₋ dt = {eta * np.minimum(lam_min, 0).sum():.2f}, "
          f"final loss {dl.value(gf[-1]):.1e}, final ‖θ‖ = {norms[-1]:.2f}")
ax.set_xscale("log")
ax.set_yscale("symlog", linthresh=0.1)
ax.set_xlabel("‖θ‖")
ax.set_ylabel("λ_min(∇²E(θ))")
ax.set_title("depth-3 linear network: λ_min across space vs along gradient flow")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Reading.** Across space λ_min falls without bound as ‖θ‖ grows (to ≈ −130 at ‖θ‖ = 6 among 60
# random points; the cubic loss gives λ_min ∝ −‖θ‖⁴ at large norm), while along GF it never goes
# below ≈ −1 and returns to ≈ 0 at the solution (‖θ‖ ≈ 1.8). That is the qualitative content of
# Thm 2. The picture also shows its limits on this small network. At small norms GF is no better
# than a random point: there the Hessian is dominated by the −(residual)·∇²w_e term, whatever the
# direction. "Almost non-negative" is relative, too: λ_min along GF reaches −0.8 during the escape
# from the saddle at 0, and ∫λ₋dt is −2.2, −4.5 and −6.6 for starts of norm 1, 0.3 and 0.1 (the
# norm-0.1 run has not even converged by t = 30). That is an amplification e^{2…6.6} of the GD–GF
# distance in Thm 1, and starting closer to zero makes it *larger* here, because the saddle escape
# takes longer. The seed's blog gives no numbers to compare with.

# %% [markdown]
# ## 4. Seed 000 Fig. 2: does a smaller step change GD? (deep linear network)
#
# GD with η₀ = 0.1 from the norm-0.3 start, against every r-th iterate of GD with η₀/r for r = 2, 5,
# 10, 20. Left: training loss against time kη₀; right: ‖θ_k^{η₀} − θ_0‖ (distance from the start)
# against ‖θ_k^{η₀} − θ_{rk}^{η₀/r}‖ (distance to the smaller-step run). Then a certificate for
# η₀ itself.

# %%
eta0, steps = 0.1, 200
theta0_dl = 0.3 * direction
base = bea.gd(Edl, pdl, theta0_dl, eta0, steps)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
tgrid = eta0 * np.arange(steps + 1)
axes[0].semilogy(tgrid, [dl.value(t) for t in base], "k", lw=2, label=f"η₀ = {eta0}")
axes[1].plot(tgrid, np.linalg.norm(base - theta0_dl, axis=1), "k", lw=2, label="‖θ_k − θ₀‖ (η₀ run)")
for i, r in enumerate([2, 5, 10, 20]):
    small = bea.gd(Edl, pdl, theta0_dl, eta0 / r, steps * r)[::r]
    d = np.linalg.norm(base - small, axis=1)
    axes[0].semilogy(tgrid, [dl.value(t) for t in small], "--", color=f"C{i}", label=f"η₀/{r}")
    axes[1].plot(tgrid, d, color=f"C{i}", label=f"‖θ^(η₀) − θ^(η₀/{r})‖")
    print(f"r = {r:2d}: max_k distance to the η₀ run {d.max():.4f}  (max distance from start {np.linalg.norm(base - theta0_dl, axis=1).max():.3f})")
axes[0].set_xlabel("time t = kη₀")
axes[0].set_ylabel("training loss")
axes[0].legend(fontsize=8)
axes[1].set_xlabel("time t = kη₀")
axes[1].set_ylabel("distance in weight space")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
cdl = bea.certify(Edl, pdl, theta0_dl, eta0, steps, tube_radius=0.3)
print(f"certificate for η₀ = {eta0}: certified {cdl.certified}; final bound {cdl.bound[-1]:.3g}, actual distance to GF "
      f"{cdl.distance[-1]:.3g}; max actual distance {cdl.distance.max():.3g}; {cdl.reason}")

# %% [markdown]
# **Reading.** The loss curves for η₀ and η₀/r nearly coincide; they separate slightly only in
# the last decades of the loss (below 1e-8). The distance between the runs peaks during the
# escape from the saddle (t ≈ 9.5) at 0.07 (r = 2) to 0.13 (r = 20), 4–8% of the 1.6 travelled,
# and returns to ≈ 0 once both reach the same solution. As in the seed's Fig. 2, reducing the step
# changes the trajectory little, so GD with η₀ is close to its GF limit, although here it is not
# "barely": the saddle transition is where GD and GF part most. The distances grow with r towards
# the GD–GF distance (r → ∞). The certificate for η₀ agrees only in part. The actual GD–GF distance
# stays ≤ 0.14, but the discrete bound amplifies the local errors by ≈ e^{−∫λ₋} through the saddle
# region and leaves its tube (the reason printed above). So η₀ = 0.1 is empirically fine here but
# not *certified* over the whole run. (The automatic tube radius gives an unusable r on this loss,
# 1e-12 at η = 0.05; we pass `tube_radius=0.3`.)

# %% [markdown]
# ### The same on an MLP on the digits (PyTorch)
#
# A 64-8-10 tanh MLP (610 parameters), full batch on 200 scikit-learn digits, cross-entropy, in
# float64. GD with η₀ = 0.2 for 100 steps against η₀/r, with `bea.torch.gd(..., every=r)` keeping
# every r-th iterate. Then `bea.torch.certify` over t = 2 for three step sizes. Skipped when torch or
# scikit-learn is missing.

# %%
try:
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    import bea.torch as bt
    HAVE_TORCH = True
except ImportError as exc:
    HAVE_TORCH = False
    print("skipping the torch section:", exc)

if HAVE_TORCH:
    torch.set_num_threads(1)  # tiny model: threads only add overhead (and contend on a shared CI runner)
    Xd, yd = load_digits(return_X_y=True)
    Xd = torch.tensor(Xd[:200] / 16.0, dtype=torch.float64)
    yd = torch.tensor(yd[:200])
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.Tanh(), torch.nn.Linear(8, 10))
    f, th0 = bt.flat_loss(mlp, F.cross_entropy, Xd, yd, dtype=torch.float64)
    eta0, steps = 0.2, 100
    base = bt.gd(f, th0, eta0, steps, progress=False)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    tg = eta0 * np.arange(steps + 1)
    travelled = (base - th0).norm(dim=1).numpy()
    with torch.no_grad():
        axes[0].semilogy(tg, [float(f(t)) for t in base], "k", lw=2, label=f"η₀ = {eta0}")
    axes[1].plot(tg, travelled, "k", lw=2, label="‖θ_k − θ₀‖ (η₀ run)")
    for i, r in enumerate([2, 5, 10, 20]):
        small = bt.gd(f, th0, eta0 / r, steps * r, every=r, progress=False)
        d = (base - small).norm(dim=1).numpy()
        with torch.no_grad():
            axes[0].semilogy(tg, [float(f(t)) for t in small], "--", color=f"C{i}", label=f"η₀/{r}")
        axes[1].plot(tg, d, color=f"C{i}", label=f"‖θ^(η₀) − θ^(η₀/{r})‖")
        print(f"r = {r:2d}: max distance to the η₀ run {d.max():.4f}  (the η₀ run travels {travelled.max():.3f})")
    axes[0].set_xlabel("time t = kη₀")
    axes[0].set_ylabel("training loss")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("time t = kη₀")
    axes[1].set_ylabel("distance in weight space")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    plt.show()

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (h, n_steps) in enumerate([(0.1, 20), (0.05, 40), (0.02, 100)]):
        t0 = time.perf_counter()
        cm = bt.certify(f, th0, h, n_steps, tube_radius=0.2, progress=False)
        print(f"bea.torch.certify η = {h}, {n_steps} steps ({time.perf_counter() - t0:.1f} s): certified {cm.certified}, "
              f"bound {cm.bound[-1]:.3g}, distance {cm.distance[-1]:.3g} (ratio {cm.ratio:.2f}), "
              f"λ_min along GF ≥ {np.min(cm.lambda_min):.3g}, λ_max ≤ {np.max(cm.lambda_max):.3g} {cm.reason}")
        ax.semilogy(cm.t[1:], cm.bound[1:], "-", color=f"C{i}", label=f"bound, η = {h}")
        ax.semilogy(cm.t[1:], cm.distance[1:], "--", color=f"C{i}", label=f"distance, η = {h}")
    ax.set_xlabel("time t = kη")
    ax.set_ylabel("‖θ_k − θ(kη)‖ and its bound")
    ax.set_title("digits MLP: certified GD–GF distance")
    ax.legend(fontsize=8, ncol=2)
    plt.show()

# %% [markdown]
# **Reading (torch).** On the digits MLP the η₀/r runs stay within 0.02 (r = 2) to 0.04 (r = 20) of
# the η₀ run, which travels 5.2 in weight space (under 1%), and the loss curves coincide. This is
# the seed's Fig. 2 ("reducing the step size barely made a difference") reproduced on a small MLP
# instead of its larger networks. Unlike the linear network above, this MLP has no saddle to escape
# from its start, and GD stays within 1% of its small-step limit throughout. The certificates hold up
# to t = 2 for all three steps, within a factor ≈ 3 of the actual distance, and bound and distance
# both shrink in proportion to η (Thm 1's tη), even though λ_min along the flow is as low as −0.7.
# This is a float-mode certificate, not a proof: the Hessian-Lipschitz constant M is estimated from
# samples along the flow (`bea.torch.certify`). With the tube radius fixed at 0.2, longer horizons
# at these steps leave the tube. We did not get a certificate in reasonable time for a ReLU network
# (see notebooks/README.md).

# %% [markdown]
# ## 5. GD against the modified flows: IGR, third order, BEA of order n, PF
#
# The same recursion bounds the distance between GD and any flow whose local error against the GD
# step is controlled (`bea.certify(..., flow=...)`): the order-n BEA flow matches one GD step to
# O(h^{n+2}), so at a fixed time T = kh its distance to GD is O(h^{n+1}); IGR is n = 1, the
# third-order flow n = 2. The principal flow holds every term −h^p/(p+1)·H^p g but not the
# −h²/12·T(g,g) of order 2, so on a non-quadratic loss it is as close to GD as IGR (slope 2); on a
# quadratic it is GD exactly. Here: the non-convex loss of §1 from (0.3, 1), T = 2, four step sizes,
# fitted log-log slopes of the certified bound and of the distance.

# %%
T_flow = 2.0
hs = np.array([0.1, 0.05, 0.025, 0.0125])
flow_cases = [("ngf", {}, 1), ("igr", {}, 2), ("third", {}, 3), ("bea", {"order": 3}, 4), ("pf", {}, 2)]
fig, ax = plt.subplots(figsize=(7, 4.5))
print(f"{'flow':>12} {'certified':>9} {'slope bound':>11} {'slope dist':>10} {'expected':>8} {'max bound/dist':>14}")
for i, (flow, kw, expected) in enumerate(flow_cases):
    certs = [bea.certify(Enc, [x, y], [0.3, 1.0], h, int(round(T_flow / h)), flow=flow, **kw) for h in hs]
    b = np.array([c.bound[-1] for c in certs])
    d = np.array([c.distance[-1] for c in certs])
    name = flow if flow != "bea" else f"bea order {kw['order']}"
    print(f"{name:>12} {str(all(c.certified for c in certs)):>9} {bea.testing.fit_order(hs, b):11.3f} "
          f"{bea.testing.fit_order(hs, d):10.3f} {expected:8d} {np.max(b / d):14.6f}")
    ax.loglog(hs, b, "o-", color=f"C{i}", label=f"{name}: bound (slope {bea.testing.fit_order(hs, b):.2f})")
    ax.loglog(hs, d, "x--", color=f"C{i}", ms=8)
    ax.loglog(hs, b[0] * (hs / hs[0]) ** expected, ":", color=f"C{i}", lw=0.8)
ax.set_xlabel("step size h")
ax.set_ylabel(f"‖θ_k − θ̃(kh)‖ at t = {T_flow:g} (×: distance, o: bound)")
ax.set_title("certified GD-flow distance; dotted: slope n + 1")
ax.legend(fontsize=7)
plt.show()
t0 = time.perf_counter()
cr = bea.certify(Enc, [x, y], [0.3, 1.0], 0.05, 40, flow="igr", rigorous=True)
print(f"rigorous IGR certificate, h = 0.05, t = 2: certified {cr.certified}, bound {cr.bound[-1]:.6g}, "
      f"distance {cr.distance[-1]:.6g} ({time.perf_counter() - t0:.2f} s)")

# %% [markdown]
# **Reading.** Every flow is certified at every step size, and the bound is within 0.4% of the
# actual distance (max bound/distance 1.004). The fitted slopes are 1.01 (GF), 1.99 (IGR), 2.99
# (third order), 3.99 (BEA order 3) and 2.03 (PF), the n + 1 of the theory: at h = 0.0125 GD is
# 1.6e-3 from the gradient flow but 1.5e-9 from the order-3 modified flow. With
# `rigorous=True` (a Lohner enclosure of the modified field in ball arithmetic) the IGR distance is
# proved. This answers, on this loss, the open question at the end of the PF paper's error
# discussion: the distance between GD and the PF is bounded explicitly, and like the IGR flow's it
# falls as h².

# %%
print(f"notebook 06 ran in {time.perf_counter() - T_START:.1f} s")
