r"""Gradient descent θ_{k+1} = θ_k − h∇E(θ_k) in numba: the discrete map every flow of bea models.

:func:`run_gd` is the compiled loop over a numba gradient kernel (the first non-finite iterate
stops it); :func:`gd` is the user-facing verb on a sympy loss or a compiled loss. The flows
(:mod:`bea.flows.fields`) are sampled at the GD times t = k·h, so row k of :func:`gd` is
comparable with row k of :func:`bea.trajectory`.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
from numba import types

from bea._checks import check_step, check_steps, check_theta0
from bea.compile.loss import cached_loss
from bea.errors import IntegrationError, InvalidInputError

__all__ = ["gd", "run_gd"]

def _gd_loop(grad, theta0, h, steps):
    n = theta0.shape[0]
    out = np.empty((steps + 1, n))
    th = theta0.copy()
    out[0, :] = th
    for k in range(steps):
        g = grad(th)
        ok = True
        for i in range(n):
            th[i] = th[i] - h * g[i]
            if not np.isfinite(th[i]):
                ok = False
        out[k + 1, :] = th
        if not ok:
            return out, k + 1
    return out, -1


_gd_loop_generic = numba.njit(error_model="numpy")(_gd_loop)


@lru_cache(maxsize=None)
def _gd_loop_fn():
    """The GD loop with ``grad`` typed as a first-class function (compiled once, cached on disk)."""
    f64 = types.float64
    grad_t = types.FunctionType(f64[:](f64[::1]))
    sig = types.Tuple((f64[:, ::1], types.int64))(grad_t, f64[::1], f64, types.int64)
    return numba.njit(sig, error_model="numpy", cache=True)(_gd_loop)


def run_gd(grad, theta0, h, steps):
    """``steps`` float GD iterates of the numba gradient ``grad`` from ``theta0`` (compiled loop):
    (iterates (steps+1, n), index of the first non-finite iterate or −1)."""
    args = (types.Array(types.float64, 1, "C"),)
    try:
        grad.compile(args)
        ret = grad.overloads[args].signature.return_type
        fits = isinstance(ret, types.Array) and ret.ndim == 1 and ret.dtype == types.float64
    except Exception:  # an explicit-signature kernel: use the per-dispatcher loop
        fits = False
    loop = _gd_loop_fn() if fits else _gd_loop_generic
    return loop(grad, theta0, h, steps)


def gd(E, params, theta0, h, steps, *, on_failure: str = "raise") -> np.ndarray:
    """Gradient descent θ_{k+1} = θ_k − h∇E(θ_k); returns the iterates, shape (steps+1, n), float64.

    The loop runs in numba over the compiled gradient (:func:`bea.compile.loss.compile_loss`).

    Parameters
    ----------
    E, params : sympy loss and its parameter symbols (or a :class:`~bea.compile.loss.CompiledLoss`)
    theta0 : (n,) finite start;  h : step size > 0;  steps : number of steps ≥ 0
    on_failure : ``"raise"`` (default): an iterate that overflows to ±inf/NaN raises
        :class:`bea.IntegrationError` naming the step k and time t = k·h (``.t``);
        ``"return"``: the array is returned with the non-finite iterate k and NaN rows after it.
    """
    if on_failure not in ("raise", "return"):
        raise InvalidInputError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    loss = cached_loss(E, params)
    theta0 = check_theta0(theta0, loss.n)
    h = check_step(h)
    steps = check_steps(steps)
    out, bad = run_gd(loss.grad, np.ascontiguousarray(theta0), h, steps)
    if bad >= 0:
        if on_failure == "raise":
            raise IntegrationError(
                f"gradient descent diverged: iterate {bad} (t = {bad * h!r}) is not finite "
                f"(last finite iterate {out[bad - 1]}); a smaller step h may converge",
                t=bad * h,
            )
        out[bad + 1 :] = np.nan
    return out
