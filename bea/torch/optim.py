r"""Drift-adjusted learning rates (DAL, seed 002 Sect. 6.2–7) as ``torch.optim.Optimizer`` subclasses.

The per-iteration drift of gradient descent is (h²/2)·H(θ′)g(θ′) (Thm 6.1); its size relative to the
gradient, ‖Hĝ‖ with ĝ = g/‖g‖, sets the step:

* :class:`DAL` — Eq. 18–19:  θ ← θ − h(θ)·g,  h(θ) = numerator/‖Hĝ‖^p  (numerator = 2; p = 1 is DAL, p = 0.5
  the paper's recommended DAL-0.5).  With p = 1 the "signal-to-drift ratio" h‖g‖ / ((h²/2)‖Hg‖) is 1.
* :class:`MomentumDAL` — Eq. 20–21:  v ← m·v − h(θ)·g,  θ ← θ + v.  Eq. 21 as printed scales the
  gradient by 1/(2‖Hĝ‖), i.e. ``numerator = 0.5`` with p = 1 — the default here; Eq. 20 with a fixed h
  is plain heavy-ball momentum.
* :class:`PerParameterDAL` — Sect. 7 ("use the per parameter information provided by Hg"): the same
  signal-to-drift balance coordinate by coordinate, h_j = numerator·(|g_j|/|(Hg)_j|)^p — for p = 1 and
  numerator = 2 the ratio h_j|g_j| / ((h_j²/2)|(Hg)_j|) of coordinate j's gradient step to its drift is
  1, as Eq. 18 makes it for the whole vector (the rule of :func:`bea.flows.dal.dal_per_parameter`).  On a
  network many coordinates have (Hg)_j ≈ 0 and would take unbounded steps, so here every h_j is also
  capped at ``max_ratio`` times the global DAL-p rate (default 10; ``None``: bea.flows.dal's rule exactly).

Names and rules follow the numpy path :mod:`bea.flows.dal` (``p``, ``numerator``, ``max_lr``; g = 0: no move,
rate ``max_lr``; an infinite rate along g ≠ 0 raises :class:`bea.IntegrationError` naming the step),
and ``tests/torch_backend/test_torch_optim.py`` checks the iterates against it.

Hessian-vector product: ``hvp="exact"`` (double backward: the gradient is taken with
``create_graph=True`` and differentiated once more along ĝ) or ``hvp="fd"`` — the one-extra-backward
finite difference Hĝ ≈ (∇E(θ + εĝ) − ∇E(θ))/ε (Geiping et al. 2021, cited in seed 002 Sect. 6.1)
with ε = ``fd_eps`` (default √u·max(1, ‖θ‖), u the unit roundoff of the parameters' dtype).

The closure
    ``step(closure)`` needs a closure that computes and **returns** the loss *without* calling
    ``backward()`` (the optimiser differentiates it itself; with ``hvp="fd"`` the closure is called
    twice).  A standard closure that calls ``loss.backward()`` is detected (it fills ``p.grad``,
    which the step clears first) and refused with an :class:`bea.InvalidLossError` saying so.
    A gradient or Hessian-vector product that overflows raises :class:`bea.IntegrationError` naming
    the step (divergence), as :func:`bea.flows.dal.dal` does.  After the step ``p.grad`` holds the gradient at the old parameters, and ``opt.last``
    (also each group's ``"lr"``) the learning rate and drift used — for logging::

        opt = bea.torch.DAL(model.parameters(), p=0.5)
        for it in range(steps):
            def closure():
                return F.cross_entropy(model(X), y)
            loss = opt.step(closure)
            print(it, float(loss), opt.last["lr"], opt.last["drift_normalized"])
"""

from __future__ import annotations

import math

import torch

from bea.errors import IntegrationError, InvalidInputError, InvalidLossError

__all__ = ["DAL", "MomentumDAL", "PerParameterDAL", "dal_lr"]


def dal_lr(drift_normalized: float, p: float = 1.0, numerator: float = 2.0) -> float:
    """h_p = numerator/‖Hĝ‖^p (seed 002, Eq. 18–19); +inf when ‖Hĝ‖ = 0."""
    if drift_normalized <= 0.0:
        return math.inf
    return numerator / drift_normalized**p


def _norm(tensors) -> float:
    """‖(t_1, ..., t_m)‖₂ of a list of tensors, scaled so that entries beyond √(max float) do not
    overflow (inf or NaN only when an entry is)."""
    big = max((float(t.detach().abs().max()) for t in tensors if t.numel()), default=0.0)
    if big == 0.0 or not math.isfinite(big):
        return big
    return big * math.sqrt(sum(float(torch.sum((t.detach() / big) ** 2)) for t in tensors))


def _check_pos(name, v, allow_none=False, allow_zero=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInputError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {v!r}")
    return float(v)


class _DALBase(torch.optim.Optimizer):
    def __init__(self, params, defaults, hvp, fd_eps, max_lr):
        if hvp not in ("exact", "fd"):
            raise InvalidInputError(f"hvp must be 'exact' (double backward) or 'fd' (finite difference), got {hvp!r}")
        self.hvp_mode = hvp
        self.fd_eps = _check_pos("fd_eps", fd_eps, allow_none=True)
        self.max_lr = _check_pos("max_lr", max_lr, allow_none=True)
        super().__init__(params, defaults)
        if not any(p.requires_grad for g in self.param_groups for p in g["params"]):
            raise InvalidInputError("the optimiser got no parameters that require gradients")
        self.last: dict = {}
        self._steps = 0

    def _params(self):
        return [p for g in self.param_groups for p in g["params"] if p.requires_grad]

    def _loss(self, closure):
        if closure is None:
            raise InvalidInputError(
                f"{type(self).__name__}.step needs a closure that computes and returns the loss "
                "(without calling backward): the drift ‖Hĝ‖ needs a Hessian-vector product"
            )
        params = self._params()
        for p in params:
            p.grad = None  # a closure that calls backward() fills them: detected below
        with torch.enable_grad():
            loss = closure()
        if any(p.grad is not None for p in params):
            raise InvalidLossError(
                f"the closure called backward(): {type(self).__name__} differentiates the loss itself (twice, "
                "for the Hessian-vector product of the drift ‖Hĝ‖), so the closure must compute and return the "
                "loss without calling backward() or zero_grad()-then-backward(); e.g. "
                "`opt.step(lambda: loss_fn(model(X), y))`"
            )
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise InvalidLossError(f"the closure must return the scalar loss tensor, got {loss!r}")
        if loss.grad_fn is None:
            raise InvalidLossError(
                "the loss returned by the closure has no autograd graph: compute it from the parameters "
                "inside the closure and return it without calling backward() (or detaching it)"
            )
        return loss.reshape(())

    def _grad_and_hg(self, closure, direction: str):
        """(loss, grads, gnorm, Hv) with v = ĝ (direction 'unit') or v = g ('raw')."""
        with torch.enable_grad():
            return self._grad_and_hg_impl(closure, direction)

    def _grad_and_hg_impl(self, closure, direction: str):
        params = self._params()
        loss = self._loss(closure)
        if not bool(torch.isfinite(loss.detach())):
            raise InvalidLossError(f"the loss is not finite ({loss.detach().item()}): training diverged")
        exact = self.hvp_mode == "exact"
        grads = torch.autograd.grad(loss, params, create_graph=exact, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        gnorm = _norm(grads)
        if not math.isfinite(gnorm):
            raise self._diverged(f"the gradient is not finite (loss {float(loss.detach()):.4g})")
        if gnorm == 0.0:
            return loss.detach(), [g.detach() for g in grads], 0.0, [torch.zeros_like(p) for p in params]
        v = [g.detach() / gnorm for g in grads] if direction == "unit" else [g.detach() for g in grads]
        if exact:
            # gradients that are constant in θ (a loss linear in some parameters) carry no graph
            live = [(g, vi) for g, vi in zip(grads, v) if g.requires_grad]
            Hv = [None] * len(params)
            if live:
                Hv = torch.autograd.grad([g for g, _ in live], params, grad_outputs=[vi for _, vi in live], allow_unused=True)
            Hv = [torch.zeros_like(p) if h is None else h for p, h in zip(params, Hv)]
        else:
            # one extra gradient at θ + εv̂ (v̂ = ĝ); Hv = ‖v‖·(∇E(θ + εv̂) − ∇E(θ))/ε
            vnorm = 1.0 if direction == "unit" else gnorm
            theta_norm = _norm(params)
            eps = self.fd_eps
            if eps is None:
                eps = math.sqrt(torch.finfo(params[0].dtype).eps) * max(1.0, theta_norm)
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, vi in zip(params, v):
                    p.add_(vi, alpha=eps / vnorm)
            try:
                loss2 = self._loss(closure)
                g2 = torch.autograd.grad(loss2, params, allow_unused=True)
            finally:
                with torch.no_grad():
                    for p, s in zip(params, saved):
                        p.copy_(s)
            Hv = [
                (torch.zeros_like(p) if b is None else (b - a.detach())) * (vnorm / eps)
                for p, a, b in zip(params, grads, g2)
            ]
        grads = [g.detach() for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        Hv = [h.detach() for h in Hv]
        if not all(bool(torch.all(torch.isfinite(h))) for h in Hv):
            raise self._diverged(f"the Hessian-vector product overflows (‖g‖ = {gnorm:.4g}, loss {float(loss.detach()):.4g})")
        return loss.detach(), grads, gnorm, Hv

    def _diverged(self, what: str) -> IntegrationError:
        return IntegrationError(
            f"DAL diverged at step {self._steps}: {what}; a smaller numerator or another p may converge",
            t=float(self._steps),
        )

    def _global_lr(self, drift_n, p, numerator, gnorm):
        """numerator/‖Hĝ‖^p capped at ``max_lr``, as :func:`bea.flows.dal.dal`: at g = 0 the rate is ``max_lr``
        (inf by default; nothing moves), an infinite rate along g ≠ 0 raises."""
        cap = math.inf if self.max_lr is None else self.max_lr
        if gnorm == 0.0:
            return cap
        lr = min(cap, dal_lr(drift_n, p, numerator))
        if not math.isfinite(lr):
            raise IntegrationError(
                f"DAL step {self._steps}: the learning rate is infinite (H ĝ = 0 along a nonzero gradient); "
                "pass max_lr to cap it",
                t=float(self._steps),
            )
        return lr

    def _global_step(self, closure, move):
        """One step at the global drift-adjusted rate of each group: ``move(prm, g, lr, group, gnorm)``
        updates one parameter in place (DAL: θ ← θ − h g; momentum: through the velocity)."""
        loss, grads, gnorm, Hg_hat = self._grad_and_hg(closure, "unit")
        drift_n = _norm(Hg_hat) if gnorm > 0 else math.nan
        it = iter(grads)
        lrs = []
        for group in self.param_groups:
            lr = self._global_lr(drift_n, group["p"], group["numerator"], gnorm)
            group["lr"] = lr
            lrs.append(lr)
            for prm in group["params"]:
                if prm.requires_grad:
                    move(prm, next(it), lr, group, gnorm)
        self._steps += 1
        self.last = dict(lr=lrs[0], lrs=lrs, drift_normalized=drift_n, grad_norm=gnorm, loss=float(loss))
        return loss


class DAL(_DALBase):
    r"""Gradient descent with the drift-adjusted learning rate h = numerator/‖Hĝ‖^p (seed 002, Eq. 18–19).

    The torch counterpart of :func:`bea.flows.dal.dal` (same names and rules: ``numerator``, ``p``,
    ``max_lr``; at g = 0 nothing moves and the rate is ``max_lr``; an infinite rate along g ≠ 0 —
    Hĝ = 0 — raises :class:`bea.IntegrationError` unless ``max_lr`` caps it).

    Parameters
    ----------
    params : parameters or parameter groups (groups may set their own ``p`` and ``numerator``; the drift
        ‖Hĝ‖ is always that of the whole parameter vector)
    p : the power of Eq. 19 (1: DAL, 0.5: DAL-0.5)
    numerator : c in c/‖Hĝ‖^p (2 in Eq. 18)
    hvp : ``"exact"`` (double backward) or ``"fd"`` (one extra gradient, finite difference)
    fd_eps : finite-difference step (default √u·max(1, ‖θ‖))
    max_lr : optional cap of the learning rate
    """

    def __init__(self, params, p: float = 1.0, *, numerator: float = 2.0, hvp: str = "exact", fd_eps=None, max_lr=None):
        p = _check_pos("p", p, allow_zero=True)
        numerator = _check_pos("numerator", numerator)
        super().__init__(params, dict(p=p, numerator=numerator, lr=math.nan), hvp, fd_eps, max_lr)

    @torch.no_grad()
    def step(self, closure=None):
        def move(prm, g, lr, group, gnorm):
            if gnorm > 0:
                prm.add_(g, alpha=-lr)

        return self._global_step(closure, move)


class MomentumDAL(_DALBase):
    r"""Heavy-ball momentum with a drift-adjusted step (seed 002, Eq. 20–21; :func:`bea.flows.dal.dal_momentum`).

    v ← m·v − h(θ)·g,  θ ← θ + v,  h(θ) = numerator/‖Hĝ‖^p.  ``numerator=0.5, p=1`` (default) is Eq. 21
    as printed (1/(2‖Hĝ‖)); pass ``numerator=2`` for the rate of Eq. 18.  Other parameters as :class:`DAL`.
    """

    def __init__(self, params, momentum: float = 0.9, p: float = 1.0, *, numerator: float = 0.5, hvp: str = "exact",
                 fd_eps=None, max_lr=None):
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (0.0 <= momentum < 1.0):
            raise InvalidInputError(f"momentum must be in [0, 1), got {momentum!r}")
        p = _check_pos("p", p, allow_zero=True)
        numerator = _check_pos("numerator", numerator)
        super().__init__(params, dict(momentum=float(momentum), p=p, numerator=numerator, lr=math.nan), hvp, fd_eps, max_lr)

    @torch.no_grad()
    def step(self, closure=None):
        def move(prm, g, lr, group, gnorm):
            state = self.state[prm]
            v = state.get("velocity")
            if v is None:
                v = state["velocity"] = torch.zeros_like(prm)
            v.mul_(group["momentum"])
            if gnorm > 0:
                v.add_(g, alpha=-lr)
            prm.add_(v)

        return self._global_step(closure, move)


class PerParameterDAL(_DALBase):
    r"""Coordinate-wise drift-adjusted rates h_j = numerator/r_j^p, r_j = |(Hg)_j|/|g_j| (seed 002, Sect. 7).

    The rule of :func:`bea.flows.dal.dal_per_parameter` (coordinates with g_j = 0 do not move; an infinite
    rate along g_j ≠ 0 raises unless capped), plus one safeguard for networks, where many coordinates
    have (Hg)_j ≈ 0: every h_j is capped at ``max_ratio`` × the global DAL-p rate numerator/‖Hĝ‖^p
    (default 10; ``max_ratio=None`` gives bea.flows.dal's rule exactly).  ``max_lr`` caps them absolutely.
    ``opt.last["lr"]`` is the mean rate, ``"lr_min"``/``"lr_max"`` the extremes.
    """

    def __init__(self, params, p: float = 1.0, *, numerator: float = 2.0, max_ratio: float | None = 10.0,
                 hvp: str = "exact", fd_eps=None, max_lr=None):
        p = _check_pos("p", p, allow_zero=True)
        numerator = _check_pos("numerator", numerator)
        self.max_ratio = _check_pos("max_ratio", max_ratio, allow_none=True)
        super().__init__(params, dict(p=p, numerator=numerator, lr=math.nan), hvp, fd_eps, max_lr)

    @torch.no_grad()
    def step(self, closure=None):
        loss, grads, gnorm, Hg = self._grad_and_hg(closure, "raw")
        drift = _norm(Hg)
        drift_n = drift / gnorm if gnorm > 0 else math.nan
        it = iter(zip(grads, Hg))
        stats = []
        for group in self.param_groups:
            p, numerator = group["p"], group["numerator"]
            cap = math.inf if self.max_lr is None else self.max_lr
            if self.max_ratio is not None and gnorm > 0 and drift_n > 0:
                cap = min(cap, self.max_ratio * numerator / drift_n**p)
            for prm in group["params"]:
                if not prm.requires_grad:
                    continue
                g, hg = next(it)
                r = hg.abs() / g.abs()  # nan where g_j = 0 (no move), 0 where (Hg)_j = 0
                lr = torch.clamp(numerator / r.pow(p), max=cap)
                moving = g != 0
                if bool(torch.any(~torch.isfinite(lr) & moving)):
                    raise IntegrationError(
                        f"DAL step {self._steps}: a per-parameter learning rate is infinite ((Hg)_j = 0 along "
                        "g_j ≠ 0); pass max_lr or max_ratio to cap it",
                        t=float(self._steps),
                    )
                lr = torch.where(moving, lr, torch.full_like(lr, cap))
                prm.sub_(torch.where(moving, lr * g, torch.zeros_like(g)))
                stats.append(lr.reshape(-1))
            group["lr"] = cap
        self._steps += 1
        lr_all = torch.cat(stats)
        fin = lr_all[torch.isfinite(lr_all)]
        self.last = dict(
            lr=float(fin.mean()) if fin.numel() else math.inf, lr_min=float(lr_all.min()), lr_max=float(lr_all.max()),
            drift=drift, drift_normalized=drift_n, grad_norm=gnorm, loss=float(loss),
        )
        return loss
