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
# # 01 — Modified equations of gradient descent
#
# Gradient descent θ_{k+1} = θ_k − h∇E(θ_k) is the explicit Euler method on the negative gradient
# flow (NGF) θ̇ = −∇E. Backward error analysis (BEA) finds a *modified* field
# f̃ = f₀ + h f₁ + h² f₂ + … whose exact flow, run for time h, reproduces one GD step up to
# O(h^{n+2}) when truncated after h^n. This notebook
#
# 1. derives the first correction f₁ (implicit gradient regularisation, IGR) and the third-order
#    flow f₂ of seed 002 (Rosca et al. 2023, Eqs. 3 and 8) on a concrete loss and checks them against
#    hand-built formulas;
# 2. prints the loss-independent terms f₀ … f₆ in gradient notation (g = ∇E, H = ∇²E, T = ∇³E,
#    Q = ∇⁴E, P = ∇⁵E);
# 3. counts the rooted trees that index the series and lists their coefficients c(t);
# 4. measures the one-step (local) error of each truncation against GD and fits its order —
#    the slope must be n + 2 for the field truncated after hⁿ.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import bea
from bea.testing import fit_order, local_errors

T_START = time.perf_counter()
x, y = sp.symbols("x y")
E = (1 - x) ** 2 + 100 * (y - x**2) ** 2  # Rosenbrock's banana
print("E =", E)

# %% [markdown]
# ## 1. IGR and the third-order flow on Rosenbrock
#
# `bea.modified_field(E, params, order)` returns the terms f_k as sympy matrices with exact rational
# coefficients. f₁ should be −½Hg, which is the gradient of −¼‖∇E‖²: GD follows (to this order) the
# gradient flow of the *modified loss* E + (h/4)‖∇E‖² — the implicit regulariser of Barrett & Dherin.

# %%
mf = bea.modified_field(E, [x, y], order=2)
g = sp.Matrix([E.diff(v) for v in (x, y)])
H = sp.hessian(E, (x, y))
print("f_1 in gradient notation:", mf.gradient_notation(1))
print("f_1 == -1/2 H g          :", sp.expand(mf.terms[1] + H * g / 2) == sp.zeros(2, 1))
grad_sq = sp.Matrix([(g.dot(g)).diff(v) for v in (x, y)])
print("f_1 == -1/4 grad ||g||^2 :", sp.expand(mf.terms[1] + grad_sq / 4) == sp.zeros(2, 1))
print("f_1 (Rosenbrock) =", list(mf.terms[1]))

# %% [markdown]
# The third-order flow of seed 002 (Eq. 8) is θ̇ = −g − (h/2)Hg − h²(⅓H²g + 1/12 T(g,g)), where
# T(g,g)_i = Σ_jk ∂³E/∂θ_i∂θ_j∂θ_k g_j g_k. We build it by hand with sympy and compare it with the
# h² term bea derived from the tree series. Unlike f₁, f₂ is **not** a gradient: its Jacobian is not
# symmetric.

# %%
Tgg = sp.Matrix([sum(E.diff(a, b, c) * g[j] * g[k]
                     for j, b in enumerate((x, y)) for k, c in enumerate((x, y))) for a in (x, y)])
f2_hand = -(H * H * g / 3 + Tgg / 12)
print("f_2 in gradient notation:", mf.gradient_notation(2))
print("f_2 == -(1/3 H^2 g + 1/12 T(g,g)) :", sp.expand(mf.terms[2] - f2_hand) == sp.zeros(2, 1))
J2 = mf.terms[2].jacobian([x, y])
print("f_2 is a gradient (symmetric Jacobian):", sp.expand(J2[0, 1] - J2[1, 0]) == 0)
J1 = mf.terms[1].jacobian([x, y])
print("f_1 is a gradient (symmetric Jacobian):", sp.expand(J1[0, 1] - J1[1, 0]) == 0)

# %% [markdown]
# ## 2. The loss-independent series to order 6
#
# `bea.modified_series(order)` computes the modified equation of explicit Euler once for every
# vector field, as a B-series over rooted trees (Hairer–Lubich–Wanner IX.1). Evaluated on f = −∇E,
# each elementary differential becomes a contraction of derivatives of E with copies of g. The first
# four rows are those of seed 002 (f₀ … f₂) and of design.md (f₃, f₄). Note the leading term of
# every f_p: −1/(p+1)·H^p g — the *principal terms* whose sum is the principal flow (notebook 02).

# %%
t0 = time.perf_counter()
series = bea.modified_series(order=6)
print(f"series to h^6 (trees with <= 7 nodes) in {time.perf_counter() - t0:.3f} s\n")
for k in range(7):
    print(f"f_{k} = {series.gradient_notation(k)}\n")

# %% [markdown]
# The same terms as elementary differentials of a general field f (f′f, f″(f,f), …), the form in
# which the B-series is computed:

# %%
for k in range(4):
    print(f"f_{k} = {series.tree_notation(k)}")

# %% [markdown]
# ## 3. Trees: counts and coefficients
#
# The term h^{k−1} is a sum over the rooted trees with k nodes. Their numbers are OEIS A000081
# (1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766); `bea.count_trees` generates them as canonical
# level sequences. The coefficient table below (level sequence, bracket form, symmetry σ, c(t)) is
# the table of design.md §1. The bushy tree (1,2,2,2) — f‴(f,f,f) — has c = 0: no ∇⁴E term in f₃.

# %%
A000081 = [1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766]
counts = [bea.count_trees(k) for k in range(1, 13)]
print("nodes :", list(range(1, 13)))
print("trees :", counts)
print("matches A000081:", counts == A000081)

# %%
print(f"{'order':>5}  {'level sequence':<16} {'tree':<14} {'sigma':>5}  {'c(t)':>8}")
for row in series.table():
    if row["order"] <= 5:
        print(f"{row['order']:>5}  {str(row['level_sequence']):<16} {row['tree']:<14} {row['sigma']:>5}  {str(row['c']):>8}")
nonzero = [sum(1 for t in series.trees(k) if series.coefficient(t) != 0) for k in range(1, 8)]
print("\nnonzero coefficients per order (trees with 1..7 nodes):", nonzero, "of", counts[:7])

# %% [markdown]
# The principal (ladder) coefficients are the Taylor coefficients of α(z) = log(1 − z)/z: with
# F(ladder of p+1 nodes) = (−1)^{p+1}H^p g they give −1/(p+1)·H^p g.

# %%
ladders = [series.coefficient(tuple(range(1, p + 2))) for p in range(7)]
print("c(ladder_{p+1}), p = 0..6:", [str(c) for c in ladders])
print("(-1)^p c == 1/(p+1)      :", all((-1) ** p * c == sp.Rational(1, p + 1) for p, c in enumerate(ladders)))

# %% [markdown]
# ## 4. Local error of each truncation: the slopes
#
# For the field truncated after hⁿ, one step of its exact flow differs from one GD step by
# O(h^{n+2}). `bea.testing.local_errors` integrates the field's flow in mpmath (40 digits, so that
# float rounding does not hide the smallest errors) and compares it with the GD step; `fit_order`
# fits the slope of log(error) against log(h).

# %%
mf6 = bea.modified_field(E, [x, y], order=5)
theta0 = [0.3, 0.2]
hs = np.geomspace(1e-3, 1.25e-4, 5)
errors, slopes = {}, {}
t0 = time.perf_counter()
for n in range(6):
    errors[n] = local_errors(mf6.truncated(n), theta0, hs)
    slopes[n] = fit_order(hs, errors[n])
print(f"(local errors in {time.perf_counter() - t0:.1f} s)")
print(f"{'n':>2} {'flow':<10} {'fitted slope':>12} {'expected':>9}   error at h = {hs[0]:.0e} .. {hs[-1]:.2e}")
names = ["NGF", "IGR", "third", "order 3", "order 4", "order 5"]
for n in range(6):
    print(f"{n:>2} {names[n]:<10} {slopes[n]:12.3f} {n + 2:>9}   {errors[n][0]:.3e} .. {errors[n][-1]:.3e}")

# %%
fig, ax = plt.subplots(figsize=(6, 4.5))
for n in range(6):
    ax.loglog(hs, errors[n], "o-", label=f"{names[n]} (n={n}): slope {slopes[n]:.2f}")
    ref = errors[n][-1] * (hs / hs[-1]) ** (n + 2)
    ax.loglog(hs, ref, ":", color=ax.lines[-1].get_color(), lw=1)
ax.set_xlabel("step size h")
# the step sizes span less than a decade: label each of them (a log axis would show one tick)
ax.set_xticks(hs, [f"{v:.3g}" for v in hs])
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.set_ylabel("one-step error ‖φ_h(θ₀) − GD step‖")
ax.set_title("Rosenbrock, θ₀ = (0.3, 0.2): truncated modified flows vs one GD step")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Reading.** Each truncation's one-step error falls on a straight line in log–log axes with slope
# n + 2 (dotted lines: exact slopes through the smallest-h point): the NGF (n = 0) is the Euler
# local error O(h²), IGR O(h³), the third-order flow O(h⁴), and so on up to O(h⁷) for the field to
# h⁵. This is the claim "the modified equation truncated at order n tracks GD with error
# O(h^{n+2})" of seed 002 (Sect. 2.2, Eq. 5) checked numerically for n up to 5; the seed states it
# but has no such plot. The slopes hold only while hλ₀ is small. The next cell repeats the
# measurement at larger h, where the BEA series diverges (seed 002, Sect. 3: it converges only for
# hλ₀ < 1).

# %%
lams = np.linalg.eigvalsh(np.array(sp.hessian(E, (x, y)).subs({x: 0.3, y: 0.2}), dtype=float))
print(f"Hessian eigenvalues at θ₀: {lams.round(2)}  (1/λ₀ = {1 / lams.max():.2e})")
big_hs = [2e-3, 4e-3, 6e-3]
print(f"{'n':>2}  " + "  ".join(f"h={h:.0e} (hλ₀={h * lams.max():.2f})" for h in big_hs))
for n in range(6):
    errs = local_errors(mf6.truncated(n), theta0, big_hs)
    print(f"{n:>2}  " + "  ".join(f"{e:>22.3e}" for e in errs))

# %%
# %% [markdown]
# At hλ₀ = 0.52 each extra order still gains a factor ≈ 2.4; at hλ₀ ≈ 1 the gain per order is only
# between 1.5 and 1.1; at hλ₀ ≈ 1.6 adding orders no longer helps at all, and the order-5 flow is not even
# integrable over one step (its error is reported as inf: the flow blew up). Truncations of the
# series cannot describe GD there — the principal flow of notebook 02 sums the H^p g terms instead.

# %%
print(f"notebook 01 ran in {time.perf_counter() - T_START:.1f} s")
