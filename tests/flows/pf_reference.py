"""An independent, branch-free reference for the principal flow (and PF+NP) on non-quadratic losses.

The PF θ̇ = Σ_i α(z_i)(v_iᵀg)v_i, z_i = hλ_i, α(z) = log(1 − z)/z, continued analytically along the
path, is integrated here with the eigenvalues and the logarithms as *ODE states*:

    state  (θ, z, L),   L_i = log(1 − z_i) continued along the path,
    θ̇  = Σ_i (L_i/z_i)(v_iᵀg)v_i  [− h²/12 T(g, g) for PF+NP]
    ż_i = h·v_iᵀ (T·θ̇) v_i           (first-order perturbation of the eigenvalue of the complex
                                       symmetric H; v_i normalised by the bilinear form v_iᵀv_i = 1)
    L̇_i = −ż_i/(1 − z_i)

with g, H and the third-derivative tensor T from sympy (lambdified), the eigenvectors from numpy's
``eig`` (matched to the carried z by the permutation nearest to it) and scipy's DOP853.  The only
logarithm taken is the initial one, L_i(0) = log|1 − z_i(0)| + iπ·[z_i(0) > 1] (the seed's branch
at a real start); afterwards no branch is ever chosen.  At the end :func:`pf_reference` checks that
the carried states are consistent: exp L = 1 − z and z = h·eig H(θ) to the given tolerance.

Nothing here uses bea: it is the independent route against which bea's branch tracking is tested.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import sympy as sp


@dataclass(frozen=True)
class Reference:
    t: np.ndarray  # (m,)
    theta: np.ndarray  # (m, n) complex
    z: np.ndarray  # (m, n) the carried h·eigenvalues
    L: np.ndarray  # (m, n) the carried log(1 − z)
    consistency: float  # max |exp L − (1 − z)| and |z − h·eig H(θ)| along the output times
    min_gap: float  # min over output times of the smallest |z_i − z_j| (i ≠ j)

    @property
    def winding(self) -> np.ndarray:
        """(n,) total turn of arg(1 − z_i) over the run: Im(L_i(end) − L_i(0))."""
        return self.L[-1].imag - self.L[0].imag


def _kernels(E, params):
    g = sp.lambdify([params], [sp.diff(E, p) for p in params], "numpy")
    H = sp.lambdify([params], sp.hessian(E, params).tolist(), "numpy")
    n = len(params)
    T = sp.lambdify([params], [[[sp.diff(E, a, b, c) for c in params] for b in params] for a in params], "numpy")

    def as_array(fn, shape):
        def f(theta):
            return np.broadcast_to(np.array(fn(list(theta)), dtype=complex), shape).copy()

        return f

    return as_array(g, (n,)), as_array(H, (n, n)), as_array(T, (n, n, n))


def _eig_matched(H, h, z):
    """Eigenvalues (×h) and bilinear-normalised eigenvectors of the complex symmetric H, in the
    order (a permutation of numpy's) nearest to the carried z."""
    mu, V = np.linalg.eig(0.5 * (H + H.T))
    zz = h * mu
    n = len(z)
    if n <= 6:
        best = min(itertools.permutations(range(n)), key=lambda p: sum(abs(zz[p[i]] - z[i]) for i in range(n)))
    else:
        best = [int(np.argmin(np.abs(zz - zi))) for zi in z]
    perm = list(best)
    zz, V = zz[perm], V[:, perm]
    V = V / np.sqrt(np.sum(V * V, axis=0))  # v_iᵀ v_i = 1 (no conjugation: H is complex symmetric)
    return zz, V


def pf_reference(E, params, theta0, h, steps, *, nonprincipal=False, rtol=1e-12, atol=1e-14,
                 consistency_tol=1e-8, per_step=1) -> Reference:
    """The PF (or PF+NP) sampled at t = k·h/per_step, k = 0..steps·per_step, with (θ, z, L) as
    states (module docstring); rows ``::per_step`` are the GD times."""
    params = list(params)
    n = len(params)
    grad, hess, third = _kernels(E, params)
    theta0 = np.asarray(theta0, dtype=float)
    lam0 = np.linalg.eigvalsh(hess(theta0).real)
    z0 = h * lam0.astype(complex)
    L0 = np.array([complex(math.log(abs(1 - zi.real)), math.pi if zi.real > 1 else 0.0) for zi in z0])

    def rhs(_t, Y):
        th, z, L = Y[:n], Y[n : 2 * n], Y[2 * n :]
        g = grad(th)
        zz, V = _eig_matched(hess(th), h, z)
        c = V.T @ g
        thdot = V @ (L / z * c)
        if nonprincipal:
            thdot = thdot - h * h / 12.0 * np.einsum("ijk,j,k->i", third(th), g, g)
        Hdot = np.einsum("ijk,k->ij", third(th), thdot)
        zdot = h * np.einsum("ji,jk,ki->i", V, Hdot, V)
        return np.concatenate([thdot, zdot, -zdot / (1.0 - z)])

    t_eval = h * np.arange(steps * per_step + 1) / per_step
    y0 = np.concatenate([theta0.astype(complex), z0, L0])
    sol = scipy.integrate.solve_ivp(rhs, (0.0, t_eval[-1]), y0, method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"reference integration failed: {sol.message}")
    Y = sol.y.T
    theta, z, L = Y[:, :n], Y[:, n : 2 * n], Y[:, 2 * n :]
    cons, gap = 0.0, np.inf
    for k in range(len(t_eval)):
        zz, _ = _eig_matched(hess(theta[k]), h, z[k])
        cons = max(cons, np.abs(np.exp(L[k]) - (1 - z[k])).max(), np.abs(zz - z[k]).max())
        if n > 1:
            gap = min(gap, min(abs(z[k, i] - z[k, j]) for i in range(n) for j in range(i)))
    if cons > consistency_tol:
        raise RuntimeError(f"reference states inconsistent: {cons:.3g} > {consistency_tol:g}")
    return Reference(t=t_eval, theta=theta, z=z, L=L, consistency=cons, min_gap=gap)
