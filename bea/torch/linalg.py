r"""Derivatives of a flat loss: gradient, Hessian-vector products, T(v, v), higher contractions, Lanczos, dense spectra.

All functions take ``f(θ) -> scalar`` (e.g. from :func:`bea.torch.flat_loss`) and a 1-D tensor θ and
return tensors on θ's device in θ's dtype (Lanczos can accumulate its basis in a wider dtype).

Hessian-vector products (Pearlmutter 1994)
    ``mode="rev"``: reverse-over-reverse, Hv = ∇(vᵀ∇f) — the vector-Jacobian product of ∇f with v
    (H is symmetric); ``mode="fwd"``: forward-over-reverse, the Jacobian-vector product of ∇f
    (``torch.func.jvp(torch.func.grad(f))``).  Both cost a small multiple of a gradient; which is
    faster depends on the ops and the device (``benchmarks/bench_torch.py`` measures both: on the
    2-core CPU of this project reverse-over-reverse is ~2× a gradient and forward-over-reverse ~4×,
    because several CPU kernels lack fused forward-mode rules), so ``"rev"`` is the default.
    :func:`hvp_operator` linearises ∇f once at θ and then reuses that graph for every product —
    one backward pass per product, what :func:`lanczos` uses.

Higher derivatives
    :func:`directional_derivative` (nested jvps: x ↦ D^m f(x)[v_1, …, v_m]), :class:`derivative_operator`
    (v ↦ D^{d+1}∇f(θ)[v_1, …, v_d, v], the inner pass recorded once; :class:`hvp_operator` is d = 0) and
    :func:`gradient_derivative` (one such contraction) — the elementary differentials of the modified
    field (:mod:`bea.torch.modified`).

Lanczos with full reorthogonalisation (Golub & Van Loan, *Matrix Computations*, Sect. 10.1; as in
PyHessian, Yao et al. 2020, and Ghorbani et al. 2019)
    The Krylov basis is reorthogonalised against all previous vectors twice at each step (classical
    Gram–Schmidt, "twice is enough"), so the Ritz values are those of the exact Rayleigh–Ritz
    projection — no ghost eigenvalues.  Convergence of a Ritz pair (θ_i, y_i) is read from the
    residual ‖Hy_i − θ_i y_i‖ = |β_j s_ji| without extra products, relative to the largest |Ritz value|
    (an estimate of ‖H‖).  The extreme eigenvalues converge first; with the basis in float64 they
    match a dense ``eigh`` to ~1e-10 relative on small networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import grad as _func_grad
from torch.func import grad_and_value, jvp, vjp

from bea.errors import InvalidInputError

__all__ = [
    "grad",
    "value_and_grad",
    "hvp",
    "hvp_operator",
    "tgg",
    "directional_derivative",
    "gradient_derivative",
    "derivative_operator",
    "check_mode",
    "lanczos",
    "lanczos_operator",
    "hessian",
    "hessian_spectrum",
    "Spectrum",
]

HVP_MODES = ("rev", "fwd")
_WHICH = ("both", "largest", "smallest")


def grad(f, theta: torch.Tensor) -> torch.Tensor:
    """∇f(θ) (``torch.func.grad``)."""
    return _func_grad(f)(theta)


def value_and_grad(f, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(θ), ∇f(θ)) from one forward and one backward pass."""
    g, value = grad_and_value(f)(theta)
    return value, g


def check_mode(mode) -> str:
    """``mode`` if it is one of :data:`HVP_MODES` (``"rev"``, ``"fwd"``); :class:`bea.InvalidInputError` otherwise."""
    if mode not in HVP_MODES:
        raise InvalidInputError(f"mode must be one of {HVP_MODES}, got {mode!r}")
    return mode


def hvp(f, theta: torch.Tensor, v: torch.Tensor, *, mode: str = "rev") -> torch.Tensor:
    r"""The Hessian-vector product ∇²f(θ)·v.

    ``mode="rev"`` (default): reverse-over-reverse (vjp of ∇f); ``mode="fwd"``: forward-over-reverse
    (``torch.func.jvp`` of ``torch.func.grad(f)``).  Same value to rounding; see the module docstring
    for the cost.
    """
    check_mode(mode)
    if v.shape != theta.shape:
        raise InvalidInputError(f"v must have the shape of theta {tuple(theta.shape)}, got {tuple(v.shape)}")
    if mode == "fwd":
        return jvp(_func_grad(f), (theta,), (v,))[1]
    _, pullback = vjp(_func_grad(f), theta)
    return pullback(v)[0]


class hvp_operator:
    r"""v ↦ ∇²f(θ)v at a fixed θ, with the forward and backward pass of ∇f done once.

    ``op(v)`` costs one backward pass through the recorded gradient computation (reverse-over-
    reverse; H symmetric, so the vector-Jacobian product is Hv).  ``op.grad`` is ∇f(θ), ``op.value``
    is f(θ), ``op.count`` the number of products so far.  Memory: the graph of ∇f stays alive as
    long as the operator does.
    """

    def __init__(self, f, theta: torch.Tensor):
        (self.grad, self.value), self._pullback = _vjp_aux(f, theta)
        self.count = 0
        self.n = theta.numel()
        self.dtype = theta.dtype
        self.device = theta.device

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return self._pullback(v.to(self.dtype))


def _vjp_aux(f, theta):
    """((∇f(θ), f(θ)), v ↦ Hv) with one recorded forward/backward."""
    g_fn = grad_and_value(f)
    (g, value), pull = vjp(g_fn, theta)
    zero = torch.zeros((), dtype=value.dtype, device=value.device)

    def pullback(v):
        return pull((v, zero))[0]

    return (g, value), pullback


def tgg(f, theta: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
    r"""T(v, v) = ∇³f(θ)(v, v) = ∇_θ(vᵀ∇²f(θ)v) (default v = ∇f(θ): the T(g, g) of design.md §1).

    Three reverse passes with ``torch.autograd`` (``create_graph``): Jᵀv of the Hessian-vector product
    Hv, which is T(v, ·, v) = T(v, v) by symmetry.  (Nested ``torch.func.jvp`` gives the same value but
    costs several times more per call.)  The non-principal term of the third-order flow and of PF+NP
    (seed 002, Eq. 8 and 14), and the power iteration for the Hessian's Lipschitz constant.
    """
    with torch.enable_grad():
        x = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(x), x, create_graph=True)
        u = g.detach() if v is None else v.to(theta.dtype)
        (Hu,) = torch.autograd.grad(g, x, u, create_graph=True)
        if not Hu.requires_grad:  # f is quadratic: T = 0
            return torch.zeros_like(theta)
        (T,) = torch.autograd.grad(Hu, x, u, allow_unused=True)
    return torch.zeros_like(theta) if T is None else T.detach()


def directional_derivative(f, directions):
    r"""The function x ↦ D^m f(x)[v_1, …, v_m], the m-th derivative of ``f`` along v_1, …, v_m.

    D^m f(x)[v_1, …, v_m] = ∂^m/∂ε_1⋯∂ε_m f(x + ε_1v_1 + ⋯ + ε_mv_m) at ε = 0, by m nested
    ``torch.func.jvp`` (forward mode; each level doubles the work, so it costs about 2^m evaluations
    of ``f``).  The v_i are constants: the result can itself be differentiated in x with
    ``torch.func`` (e.g. ``torch.func.grad`` of it is D^m∇f(x)[v_1, …, v_m], :func:`gradient_derivative`).
    ``directions`` empty returns ``f`` itself.
    """
    fn = f
    for v in directions:
        fn = _along(fn, v)
    return fn


def _along(fn, v):
    def derivative(x):
        return jvp(fn, (x,), (v,))[1]

    return derivative


class derivative_operator:
    r"""v ↦ D^{d+1}∇f(θ)[v_1, …, v_d, v] at a fixed θ and fixed v_1..v_d, with the inner pass done once.

    The generalisation of :class:`hvp_operator` (d = 0) to d fixed directions: the map
    φ(x) = D^d∇f(x)[v_1, …, v_d] is evaluated once with its graph recorded (``torch.func.vjp``), and
    each product is one backward pass through it — the vector-Jacobian product of φ, which is
    D^{d+1}∇f(θ)[v_1, …, v_d, v] because ∇^{d+2}f is symmetric.  φ itself is differentiated by
    ``mode="rev"``: ∇ of the scalar D^d f(x)[v_1, …, v_d] (:func:`directional_derivative`, reverse over
    d forward levels), or ``mode="fwd"``: d nested jvps of ∇f.

    Attributes
    ----------
    output : φ(θ) = D^d∇f(θ)[v_1, …, v_d] (∇f(θ) for d = 0, H v_1 for d = 1, T(v_1, v_2) for d = 2, …).
    value : f(θ) for d = 0, else None.
    depth : d.  count : products so far.

    Cost (measured on the 2-core CPU of this project, a 10⁵-parameter tanh MLP, in units of one
    forward-over-reverse HVP): building 0.3, 1.0, 3.0 and each product 0.4, 1.1, 3.0 for d = 0, 1, 2
    (``benchmarks/bench_torch_modified.py``).  Memory: the recorded graph lives as long as the operator.
    """

    def __init__(self, f, theta: torch.Tensor, directions=(), *, mode: str = "rev"):
        check_mode(mode)
        directions = _check_directions(directions, theta)
        self.depth = len(directions)
        self.count = 0
        self.dtype = theta.dtype
        if not directions:
            (self.output, self.value), self._pullback = _vjp_aux(f, theta)
            return
        if mode == "fwd":
            inner = directional_derivative(_func_grad(f), directions)
        else:
            inner = _func_grad(directional_derivative(f, directions))
        self.value = None
        self.output, pull = vjp(inner, theta)
        self._pullback = lambda v: pull(v)[0]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return self._pullback(v.to(self.dtype))


def gradient_derivative(f, theta: torch.Tensor, directions=(), *, mode: str = "rev") -> torch.Tensor:
    r"""D^m∇f(θ)[v_1, …, v_m] = ∇^{m+1}f(θ)(·, v_1, …, v_m): the gradient (m = 0), Hv (m = 1), T(v_1, v_2), …

    One product of a :class:`derivative_operator` on the first m − 1 directions (``mode`` as there);
    about 2^{m−1} Hessian-vector products for m ≥ 1.  The elementary differentials of the modified
    field are these contractions (:mod:`bea.torch.modified`).
    """
    directions = _check_directions(directions, theta)
    if not directions:
        check_mode(mode)
        return _func_grad(f)(theta)
    return derivative_operator(f, theta, directions[:-1], mode=mode)(directions[-1])


def _check_directions(directions, theta) -> tuple:
    directions = tuple(directions)
    for i, v in enumerate(directions):
        if not isinstance(v, torch.Tensor) or v.shape != theta.shape:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise InvalidInputError(f"direction {i} must be a tensor of the shape of theta {tuple(theta.shape)}, got {shape}")
    return directions


@dataclass(frozen=True, eq=False)
class Spectrum:
    r"""Eigenpairs of a Hessian, in **decreasing** order (``values[0]`` = λ_0, the seed's u_0 first).

    Attributes
    ----------
    values : (m,) real eigenvalues, decreasing.  For :func:`lanczos` with ``which="both"`` the k
        largest then the k smallest (m = 2k, or fewer if n < 2k); ``"largest"``/``"smallest"`` k each.
    vectors : (n, m) orthonormal columns (u_i = ``vectors[:, i]``), or None when not requested.
    residuals : (m,) ‖Hu_i − λ_i u_i‖ (Lanczos estimate |β s_i|; 0 for a dense decomposition).
    n_hvp : Hessian-vector products used (n for the dense route).
    converged : every returned pair met the tolerance.
    """

    values: torch.Tensor
    vectors: torch.Tensor | None
    residuals: torch.Tensor
    n_hvp: int
    converged: bool

    @property
    def lambda_max(self) -> float:
        return float(self.values[0])

    @property
    def lambda_min(self) -> float:
        return float(self.values[-1])

    def __repr__(self) -> str:
        vals = ", ".join(f"{float(v):.6g}" for v in self.values[:6])
        more = ", …" if self.values.numel() > 6 else ""
        return f"Spectrum([{vals}{more}], n_hvp={self.n_hvp}, converged={self.converged})"


def _check_k(k, n):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return min(k, n)


def lanczos_operator(
    matvec,
    n: int,
    k: int = 1,
    which: str = "both",
    *,
    device=None,
    dtype=torch.float64,
    max_iter: int | None = None,
    tol: float = 1e-8,
    seed: int = 0,
    v0: torch.Tensor | None = None,
    vectors: bool = True,
    min_iter: int = 0,
) -> Spectrum:
    r"""Extreme eigenpairs of the symmetric operator ``matvec`` on ℝⁿ by Lanczos (full reorthogonalisation).

    Parameters
    ----------
    matvec : v ↦ Av for a symmetric A (called with tensors of ``dtype`` on ``device``; its result is
        cast to ``dtype``).
    k, which : the k largest (``"largest"``), smallest (``"smallest"``) or both ends (``"both"``).
    dtype : dtype of the Krylov basis and the tridiagonal matrix (float64 by default).
    max_iter : Krylov dimension limit (default ``min(n, max(60, 8k))``).
    tol : a pair is converged when its residual ≤ tol·max|Ritz value|.
    seed, v0 : the start vector: ``v0`` if given, else N(0, I) from a CPU generator seeded with
        ``seed`` (the same vector on every device).
    vectors : also return the Ritz vectors (costs one (m × n) product at the end).
    min_iter : do at least this many iterations (e.g. to resolve a cluster).
    """
    if which not in _WHICH:
        raise InvalidInputError(f"which must be one of {_WHICH}, got {which!r}")
    k = _check_k(k, n)
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise InvalidInputError(f"tol must be a positive number, got {tol!r}")
    m_max = min(n, max(60, 8 * k)) if max_iter is None else min(n, int(max_iter))
    if m_max < 1:
        raise InvalidInputError(f"max_iter must be >= 1, got {max_iter!r}")
    if v0 is None:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        q = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    else:
        q = v0.detach().to(device=device, dtype=dtype).reshape(-1).clone()
        if q.numel() != n:
            raise InvalidInputError(f"v0 must have {n} entries, got {q.numel()}")
    nrm = torch.linalg.vector_norm(q)
    if not bool(torch.isfinite(nrm)) or float(nrm) == 0.0:
        raise InvalidInputError("the Lanczos start vector must be finite and nonzero")
    q = q / nrm
    Q = torch.empty((m_max, n), dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    first_check = min(max(int(min_iter), k if which != "both" else 2 * k), m_max)
    converged = False
    beta = 0.0
    ritz = None
    for j in range(m_max):
        Q[j] = q
        w = matvec(q).to(dtype)
        if not bool(torch.isfinite(w).all()):
            raise InvalidInputError(f"the Hessian-vector product is not finite (Lanczos iteration {j})")
        alphas.append(float(torch.dot(q, w)))
        # full reorthogonalisation, twice (Kahan–Parlett: "twice is enough")
        B = Q[: j + 1]
        w = w - B.T @ (B @ w)
        w = w - B.T @ (B @ w)
        beta = float(torch.linalg.vector_norm(w))
        scale = max(max(abs(x) for x in alphas), max(betas, default=0.0), 1e-300)
        breakdown = beta <= 1e-12 * scale  # an invariant subspace: the Ritz values are exact
        last = breakdown or j + 1 == m_max
        if last or (j + 1 >= first_check and (j + 1 - first_check) % 2 == 0):
            ritz = _ritz(alphas, betas)
            theta_r, S = ritz
            sel = _select(theta_r, k, which)
            ref = max(float(torch.max(torch.abs(theta_r))), 1e-300)
            ok = bool(torch.all(torch.abs(beta * S[-1, sel]) <= tol * ref))
            if ok or last:
                converged = ok or breakdown
                break
        betas.append(beta)
        q = w / beta
    theta_r, S = ritz
    sel = _select(theta_r, k, which)
    values = theta_r[sel].to(device=device, dtype=dtype)
    residuals = torch.abs(beta * S[-1, sel]).to(device=device, dtype=dtype)
    vecs = None
    if vectors:
        m = len(alphas)
        vecs = Q[:m].T @ S[:, sel].to(device=device, dtype=dtype)
    return Spectrum(values=values, vectors=vecs, residuals=residuals, n_hvp=len(alphas), converged=converged)


def _ritz(alphas, betas):
    """Eigen-decomposition of the Lanczos tridiagonal matrix (small: on the CPU in float64)."""
    m = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    vals, S = torch.linalg.eigh(T)
    # decreasing order
    return vals.flip(0), S.flip(1)


def _select(vals, k, which):
    m = vals.numel()
    if which == "largest":
        return torch.arange(min(k, m))
    if which == "smallest":
        return torch.arange(m - min(k, m), m)
    if 2 * k >= m:
        return torch.arange(m)
    return torch.cat([torch.arange(k), torch.arange(m - k, m)])


def lanczos(
    f,
    theta: torch.Tensor,
    k: int = 1,
    which: str = "both",
    *,
    dtype=None,
    max_iter: int | None = None,
    tol: float = 1e-8,
    seed: int = 0,
    v0: torch.Tensor | None = None,
    vectors: bool = True,
    min_iter: int = 0,
) -> Spectrum:
    r"""Extreme eigenpairs of the Hessian ∇²f(θ) by Lanczos with full reorthogonalisation.

    Each iteration is one Hessian-vector product through :class:`hvp_operator` (the gradient graph at
    θ is recorded once).  ``dtype`` is the dtype of the Krylov basis (default: float64 — the products
    themselves are done in θ's dtype, so a float32 network still gets a stable orthogonal basis).

    Returns a :class:`Spectrum` in decreasing order; ``which="both"``: the k largest then the k
    smallest eigenvalues.  See :func:`lanczos_operator` for the other parameters.
    """
    op = hvp_operator(f, theta)
    work = torch.float64 if dtype is None else dtype
    return lanczos_operator(
        lambda v: op(v.to(theta.dtype)), theta.numel(), k, which, device=theta.device, dtype=work,
        max_iter=max_iter, tol=tol, seed=seed, v0=v0, vectors=vectors, min_iter=min_iter,
    )


def hessian(f, theta: torch.Tensor, *, chunk_size: int | None = None) -> torch.Tensor:
    r"""The dense Hessian ∇²f(θ), (n, n), symmetrised (½(H + Hᵀ)).

    ``torch.func.hessian`` (forward-over-reverse, vmapped over the identity); with ``chunk_size`` the
    columns are computed by reverse-over-reverse in chunks (``jacrev(grad, chunk_size=...)``) to bound
    memory.  Only for small models: n² entries.
    """
    if chunk_size is None:
        H = torch.func.hessian(f)(theta)
    else:
        H = torch.func.jacrev(_func_grad(f), chunk_size=int(chunk_size))(theta)
    return 0.5 * (H + H.T)


def hessian_spectrum(f, theta: torch.Tensor, *, chunk_size: int | None = None, vectors: bool = True) -> Spectrum:
    r"""All eigenpairs of the dense Hessian (``torch.func.hessian`` + ``torch.linalg.eigh``), decreasing.

    The independent route against which :func:`lanczos` and :func:`hvp` are checked; O(n²) memory and
    O(n³) time, so for small models only.
    """
    H = hessian(f, theta, chunk_size=chunk_size)
    if vectors:
        vals, U = torch.linalg.eigh(H)
        U = U.flip(1)
    else:
        vals, U = torch.linalg.eigvalsh(H), None
    vals = vals.flip(0)
    return Spectrum(values=vals, vectors=U, residuals=torch.zeros_like(vals), n_hvp=theta.numel(), converged=True)
