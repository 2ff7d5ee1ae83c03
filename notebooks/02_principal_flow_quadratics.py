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
# # 02 — The principal flow on quadratics
#
# Summing the principal terms −1/(p+1)·h^p H^p g of every order (notebook 01) gives the
# **principal flow** (PF) of seed 002 (Rosca et al. 2023, Def. 3.1, Eq. 12):
#
#     θ̇ = Σ_i α(hλ_i)(gᵀu_i)u_i,   α(z) = log(1 − z)/z,
#
# with (λ_i, u_i) the eigenpairs of H = ∇²E. For hλ > 1 the logarithm is complex
# (log(1 − z) = log|z − 1| + iπ), and so is the flow. On a quadratic loss the PF reproduces GD
# *exactly* at t = k·h (Remark 3.1). This notebook shows
#
# 1. the three regimes on E = z²/2 — real-stable, complex-stable, unstable (seed Fig. 4);
# 2. the coefficients α of NGF, IGR and PF against z = hλ (seed Fig. 3, Table 1);
# 3. GD vs NGF vs IGR vs PF on a 2-D quadratic in the three regimes (seed Figs. 2 and 5);
# 4. the closed-form PF solution of Remark 3.1 (and a correction to its printed b-term);
# 5. the PF Jacobian eigenvalues log(1 − hλ)/h in the complex plane (Sect. 3.2, Eq. 16).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import bea
import bea.plot
from bea.flows.diagnostics import alpha, diagnostics

T_START = time.perf_counter()
z = sp.Symbol("z")
E1 = z**2 / 2  # λ = 1, so hλ = h

# %% [markdown]
# ## 1. One dimension: E = z²/2 (seed Fig. 4)
#
# GD multiplies z by 1 − h per step. The NGF gives z(t) = e^{−t}, IGR z(t) = e^{−(1+h/2)t}: both decay
# for every h. The PF gives z(t) = e^{t·log(1−h)/h}: for h < 1 a real decay, for 1 < h < 2 a decaying
# rotation in the complex plane that is real (and of alternating sign) exactly at t = k·h, for h > 2
# a growing rotation. We plot Re and Im of the PF between the GD times.

# %%
regimes = [(0.5, "real stable, h < 1/λ"), (1.5, "complex stable, 1/λ < h < 2/λ"), (2.5, "unstable, h > 2/λ")]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, (h, name) in zip(axes, regimes):
    steps = 6
    t = np.linspace(0, steps * h, 400)
    pf = bea.pf_closed_form(np.array([[1.0]]), None, [1.0], h, t)[:, 0]
    gd = bea.gd(E1, [z], [1.0], h, steps)[:, 0]
    ax.plot(t, pf.real, "C3", label="PF (real part)")
    ax.plot(t, pf.imag, "C3--", lw=1, label="PF (imaginary part)")
    ax.plot(t, np.exp(-t), "C0", label="NGF")
    ax.plot(t, np.exp(-(1 + h / 2) * t), "C2", label="IGR")
    ax.plot(h * np.arange(steps + 1), gd, "ko", label="GD iterates")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_title(f"h = {h}: {name}")
    ax.set_xlabel("time t (GD iterate k at t = k·h)")
    ax.set_ylabel("z(t)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
print("reference values (design.md §3) for E = z²/2, z0 = 1")
print(f"h = 1.5, t = 1.5:  GD = {bea.gd(E1, [z], [1.0], 1.5, 1)[-1, 0]:.6f}, "
      f"PF = {bea.trajectory(E1, [z], [1.0], 1.5, 1, flow='pf')[-1, 0].real:.6f}, "
      f"NGF = {bea.trajectory(E1, [z], [1.0], 1.5, 1, flow='ngf')[-1, 0]:.6f} (e^-1.5 = {np.exp(-1.5):.6f}), "
      f"IGR = {bea.trajectory(E1, [z], [1.0], 1.5, 1, flow='igr')[-1, 0]:.6f} (e^-2.625 = {np.exp(-2.625):.6f})")
print(f"h = 2.5, t = 12.5: GD = {bea.gd(E1, [z], [1.0], 2.5, 5)[-1, 0]:.6f}, "
      f"PF = {bea.trajectory(E1, [z], [1.0], 2.5, 5, flow='pf')[-1, 0].real:.6f}  ((-1.5)^5 = {(-1.5) ** 5})")

# %% [markdown]
# **Reading.** Left: all three flows decay monotonically and GD sits on the PF curve; NGF and IGR
# are close but already off. Middle: GD alternates sign and decays; NGF and IGR cannot change sign
# (z = 0 is a fixed point of both), while the PF spirals through the complex plane and crosses the
# real axis exactly at the GD iterates. Right: GD diverges with alternating sign; only the PF, whose
# real part grows like (h − 1)^{t/h}, follows it. This is the seed's Fig. 4, panel by panel (the
# seed plots z for h < 1 and the complex trajectory for h > 1; we plot Re and Im against time).

# %% [markdown]
# ## 2. The coefficients α(hλ) (seed Fig. 3 and Table 1)
#
# Every flow here has the form θ̇ = Σ α(hλ_i)(gᵀu_i)u_i: α_NGF = −1, α_IGR = −(1 + z/2),
# α_PF = log(1 − z)/z. The sign of Re α decides whether a flow moves down (< 0) or up (> 0) the loss
# along u_i.

# %%
zs = np.linspace(-1.5, 4.0, 1101)
zs = zs[np.abs(zs - 1) > 1e-9]
a_pf = alpha(zs, complex_output=True)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(zs, -np.ones_like(zs), "C0", label="α_NGF = −1")
ax.plot(zs, -(1 + zs / 2), "C2", label="α_IGR = −(1 + z/2)")
ax.plot(zs, a_pf.real, "C3", label="Re α_PF = log|1 − z|/z")
ax.plot(zs, a_pf.imag, "C3--", label="Im α_PF = π/z for z > 1")
for zc, txt in [(1, "z = 1"), (2, "z = 2")]:
    ax.axvline(zc, color="0.5", ls=":", lw=1)
    ax.text(zc + 0.03, 1.7, txt, fontsize=8)
ax.axhline(0, color="0.7", lw=0.5)
ax.set_ylim(-4, 2)
ax.set_xlabel("z = hλ")
ax.set_ylabel("α(z)")
ax.legend(fontsize=8, loc="lower left")
plt.show()
print("α_PF at z = 0.5, 1.5, 2, 2.5:", np.round(alpha(np.array([0.5, 1.5, 2.0, 2.5])), 4))

# %% [markdown]
# **Reading.** As in seed Fig. 3, NGF and IGR coefficients are negative for every z > 0, so those
# flows always descend; Re α_PF is negative on (0, 2), tends to −∞ at z = 1 (GD lands on the
# minimiser's coordinate in one step), crosses zero exactly at z = 2 (hλ = 2, the edge of stability)
# and is positive beyond: there the PF — like GD — moves *up* the loss along that eigendirection.
# The seed draws the two coefficients only; we add α_IGR and the imaginary part.

# %% [markdown]
# ## 3. Two dimensions: GD, NGF, IGR and PF (seed Figs. 2 and 5)
#
# E = θ₁² + 0.01θ₂² (H = diag(2, 0.02)) from θ₀ = (−0.35, −0.2). With λ₀ = 2 the three regimes are
# h = 0.4 (hλ₀ = 0.8), h = 0.9 (1.8) and h = 1.05 (2.1). `bea.plot.trajectories` draws the GD
# iterates and each flow sampled at t = k·h on the contour plot (complex flows by their real part).

# %%
x, y = sp.symbols("x y")
E2 = x**2 + sp.Rational(1, 100) * y**2
theta0 = [-0.35, -0.2]
cases = [(0.4, 8, "stable"), (0.9, 8, "complex stable"), (1.05, 5, "unstable")]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
for ax, (h, steps, name) in zip(axes, cases):
    bea.plot.trajectories(E2, [x, y], theta0, h, steps, flows=("ngf", "igr", "pf"), ax=ax)
    ax.set_title(f"h = {h} (hλ₀ = {2 * h:.2f}, {name})")
    ax.set_xlabel("θ₁")
    ax.set_ylabel("θ₂")
fig.tight_layout()
plt.show()

# %% [markdown]
# The distance of each flow from the GD iterates, ‖θ_k − θ(kh)‖, along the run (the seed's Fig. 7
# measures the same on a small MLP). The third-order flow is added for comparison.

# %%
flows = ["ngf", "igr", "third", "pf"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), sharey=True)
print(f"{'h':>5} {'flow':>6}   max_k ‖θ_k − θ(kh)‖")
for ax, (h, steps, name) in zip(axes, cases):
    gd = bea.gd(E2, [x, y], theta0, h, steps)
    for fl in flows:
        tr = bea.trajectory(E2, [x, y], theta0, h, steps, flow=fl)
        err = np.linalg.norm(gd - tr.real, axis=1)
        ax.semilogy(np.arange(1, steps + 1), err[1:] + 1e-17, "o-", label=fl)
        print(f"{h:5g} {fl:>6}   {err.max():.3e}")
    ax.set_title(f"h = {h} ({name})")
    ax.set_xlabel("GD iteration k")
axes[0].set_ylabel("‖θ_k − θ(kh)‖ (+1e-17)")
axes[0].legend()
fig.tight_layout()
plt.show()

# %%
print("reference values (design.md §3), E = θ₁² + 0.01θ₂², θ₀ = (−0.35, −0.2)")
print("h = 1.05, 5 steps:   GD =", bea.gd(E2, [x, y], theta0, 1.05, 5)[-1],
      " PF =", bea.trajectory(E2, [x, y], theta0, 1.05, 5, flow="pf")[-1].real, " (expected (0.5636785, −0.17986367))")
print("h = 0.9, 200 steps:  GD =", bea.gd(E2, [x, y], theta0, 0.9, 200)[-1],
      " PF =", bea.trajectory(E2, [x, y], theta0, 0.9, 200, flow="pf")[-1].real)
print("                     θ₂: IGR = %.6e (expected −5.29052e−3), NGF = %.6e (expected −5.46474e−3)" % (
    bea.trajectory(E2, [x, y], theta0, 0.9, 200, flow="igr")[-1, 1],
    bea.trajectory(E2, [x, y], theta0, 0.9, 200, flow="ngf")[-1, 1]))

# %% [markdown]
# **Reading.** In the stable case all flows land close to GD, the PF to integration accuracy
# (≈ 1e-10) and the truncated flows with errors that shrink with their order. At h = 0.9 GD
# zig-zags across the valley in θ₁ and decays; NGF, IGR and the third-order flow slide straight
# into the θ₁ = 0 line and miss every iterate by ≈ |θ₁| (error ≈ 0.1–0.3), while the PF matches each
# iterate. At h = 1.05 GD's θ₁ grows (factor −1.1 per step) and only the PF follows; the other
# flows predict convergence. These are the seed's Figs. 2(b) and 5 (it shows the trajectories; the
# error curves are our addition). `bea.flows.diagnostics.diagnostics` reads the regimes off the Hessian:

# %%
for h, _, _ in cases:
    d = diagnostics(E2, [x, y], np.array(theta0), h)
    print(f"h = {h:4}: λ = {d.eigenvalues}, classes = {[str(c) for c in d.classes]}, "
          f"stability coefficients sc = {np.round(d.stability_coefficients, 4)}")

# %% [markdown]
# ## 4. Remark 3.1: the closed-form PF on E = ½θᵀAθ + bᵀθ
#
# In the eigenbasis of A, c_i = θᵀu_i satisfies ċ_i = r_i c_i + α(hλ_i)β_i with r_i = log(1 − hλ_i)/h
# and β_i = bᵀu_i, so c_i(t) = e^{r_i t}c_i(0) + β_i(e^{r_i t} − 1)/λ_i (`bea.pf_closed_form`). At
# t = k·h, e^{r_i t} = (1 − hλ_i)^k: GD. The seed prints the solution as
# Σ e^{r_i t}θ₀ᵀu_i u_i + t·Σ α(hλ_i)bᵀu_i (u_i) — correct for b = 0, but its b-term is only the
# first-order (small-t) part of the exact one. Below: a non-diagonal A with b ≠ 0 in the unstable
# regime (hλ₀ > 2), the exact closed form, the integrated PF and the seed's printed formula.

# %%
A = np.array([[1.6, 0.5], [0.5, 0.4]])
b = np.array([0.3, -0.2])
E3 = sp.Rational(1, 2) * (sp.Float(A[0, 0]) * x**2 + 2 * sp.Float(A[0, 1]) * x * y + sp.Float(A[1, 1]) * y**2) \
    + sp.Float(b[0]) * x + sp.Float(b[1]) * y
lam, U = np.linalg.eigh(A)
h, steps = 1.2, 10
print(f"eigenvalues of A: {lam.round(4)}, hλ = {(h * lam).round(3)} → {[str(c) for c in bea.classify(lam, h)]}")
ks = np.arange(steps + 1)
gd3 = bea.gd(E3, [x, y], [1.0, 1.0], h, steps)
closed = bea.pf_closed_form(A, b, [1.0, 1.0], h, ks * h)
integrated = bea.trajectory(E3, [x, y], [1.0, 1.0], h, steps, flow="pf")
rates = bea.pf_rates(lam, h)
c0 = U.T @ np.array([1.0, 1.0])
seed_formula = np.array([U @ (np.exp(rates * t) * c0 + t * alpha(h * lam, complex_output=True) * (U.T @ b)) for t in ks * h])
print(f"max_k |GD − closed form|       = {np.abs(gd3 - closed).max():.2e}")
print(f"max_k |GD − integrated PF|     = {np.abs(gd3 - integrated).max():.2e}")
print(f"max_k |GD − seed's b-term form| = {np.abs(gd3 - seed_formula).max():.2e}")
print(f"max_k |Im closed form|         = {np.abs(closed.imag).max():.2e}")
tt = np.linspace(0, steps * h, 600)
fine = bea.pf_closed_form(A, b, [1.0, 1.0], h, tt)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for ax, i, lab in [(axes[0], 1, "u₀ (top, hλ₀ > 2)"), (axes[1], 0, "u₁ (hλ₁ < 1)")]:
    ax.plot(tt, (fine @ U)[:, i].real, "C3", label="exact PF: real part")
    ax.plot(tt, (fine @ U)[:, i].imag, "C3--", lw=1, label="exact PF: imaginary part")
    ax.plot(ks * h, (gd3 @ U)[:, i], "ko", label="GD iterates")
    ax.plot(ks * h, (seed_formula @ U)[:, i].real, "C1x", ms=8, label="seed's printed formula at t = kh")
    ax.set_xlabel("time t")
    ax.set_ylabel(f"θ(t)ᵀ{lab.split()[0]}")
    ax.set_title(f"coordinate along {lab}, h = {h}")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Reading.** GD, the closed form and the numerically integrated complex PF agree to rounding
# (≈ 1e-14) and to integration accuracy (≈ 1e-9) over ten divergent, sign-flipping steps; the
# imaginary part of the exact PF is non-zero between GD times and vanishes (to rounding) at them.
# The formula as printed in the seed drifts away from GD as soon as b ≠ 0 (crosses): slightly along
# u₀, and grossly along the stable u₁, where its b-term t·α(hλ₁)β₁ grows linearly in t instead of
# saturating at the minimiser's coordinate −β₁/λ₁. bea implements the exact b-term; for b = 0 the
# two formulas coincide.

# %% [markdown]
# ## 5. The PF eigenvalue map r = log(1 − hλ)/h (seed Sect. 3.2, Eq. 16)
#
# Near a critical point the PF's Jacobian has eigenvalues r_i = log(1 − hλ_i)/h, and e^{hr_i} = 1 − hλ_i
# is GD's factor along u_i. As λ runs over the real line, r traces the real axis for hλ < 1 and the
# horizontal line Im r = π/h for hλ > 1, crossing into Re r > 0 (repelling) at hλ = 2. NGF and IGR
# have the real rates −λ and −λ − hλ²/2, always negative for λ > 0.

# %%
h = 1.0
lam_grid = np.concatenate([np.linspace(-1.0, 0.999, 1500), 1 - np.geomspace(1e-3, 1e-9, 200), 1 + np.geomspace(1e-9, 1e-3, 200), np.linspace(1.001, 6.0, 1500)])
r = bea.pf_rates(lam_grid, h)
classes = bea.classify(lam_grid, h)
fig, ax = plt.subplots(figsize=(10, 4.5))
for cls, col in [("real-unstable", "C1"), ("real-stable", "C0"), ("complex-stable", "C2"), ("complex-unstable", "C3")]:
    m = classes == cls
    ax.plot(r.real[m], r.imag[m], ".", ms=2, color=col, label=f"PF, {cls}")
for lam_pt, txt in [(-0.5, "λ=−0.5"), (0.5, "λ=0.5"), (1.5, "λ=1.5"), (2.0, "λ=2/h"), (3.0, "λ=3"), (5.0, "λ=5")]:
    rp = bea.pf_rates([lam_pt], h)[0]
    ax.plot(rp.real, rp.imag, "k^", ms=5)
    ax.annotate(txt, (rp.real, rp.imag), textcoords="offset points", xytext=(3, 6), fontsize=8)
lam_pos = np.linspace(0, 2.5, 26)
ax.plot(-lam_pos, np.zeros_like(lam_pos) - 0.3, "C0|", ms=5, label="NGF rate −λ, λ ∈ [0, 2.5] (drawn at Im = −0.3)")
ax.plot(-lam_pos - h * lam_pos**2 / 2, np.zeros_like(lam_pos) - 0.6, "C2|", ms=5,
        label="IGR rate −λ − hλ²/2, λ ∈ [0, 2.5] (drawn at Im = −0.6)")
ax.axvline(0, color="0.5", lw=0.8)
ax.axhline(np.pi / h, color="0.7", ls=":", lw=1)
ax.text(1.3, np.pi / h - 0.3, "Im r = π/h", fontsize=8)
ax.set_xlim(-4, 2)
ax.set_ylim(-0.9, 4)
ax.set_xlabel("Re r  (r = log(1 − hλ)/h, h = 1)")
ax.set_ylabel("Im r")
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=4)
fig.tight_layout()
plt.show()
print("example (design.md §3): λ = 2, h = 1.05 → r =", np.round(bea.pf_rates([2.0], 1.05)[0], 6), "(expected 0.090772+2.991993j)")

# %% [markdown]
# **Reading.** The map sends the stable real eigenvalues (0 < hλ < 1, blue) to the negative real axis,
# negative curvature (orange) to the positive real axis — saddles repel both PF and NGF — and every
# λ > 1/h to the line Im r = π/h (rotation by π per GD step), where λ < 2/h (green) is still
# attracting and λ > 2/h (red) repelling. The NGF and IGR rates (ticks, drawn slightly below the axis
# for visibility) stay on the negative real axis for any λ > 0, so those flows call every minimum
# attracting. This is the seed's Sect. 3.2 case analysis drawn as one picture; the seed has no
# such figure (its Fig. 15, left, plots the resulting growth of gᵀu against λ).

# %%
print(f"notebook 02 ran in {time.perf_counter() - T_START:.1f} s")
