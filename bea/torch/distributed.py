r"""Data-parallel losses for :mod:`bea.torch` on a ``torch.distributed`` process group.

A certificate on a network needs hundreds of Hessian-vector products, each a pass over the whole
data set. With the data set split over R ranks (processes: gloo on CPUs, NCCL on GPUs), the loss is

    f(θ) = Σ_r w_r f_r(θ),    w_r = N_r / N  (``reduction="mean"``)  or  w_r = 1  (``"sum"``),

f_r the loss of rank r's shard of N_r samples. :func:`sharded_loss` returns f as a
:class:`ShardedLoss`: an ordinary :class:`~bea.torch.FlatLoss` whose *value on every rank is the full
f(θ)*, and so are its gradient, Hessian-vector products, T(v, v) and dense Hessian — each all-reduced
over the group inside autograd. :func:`bea.torch.certify`, :func:`~bea.torch.lanczos`,
:func:`~bea.torch.trajectory`, :func:`~bea.torch.gd` and the rest of :mod:`bea.torch` then run unchanged
on every rank, in lockstep, with identical numbers.

How the all-reduce enters autograd
----------------------------------
Two linear maps between *replicated* tensors (the same on every rank: θ, f, ∇f, Hv) and *partial*
ones (rank r's term of a sum), transposes of each other (the pair of Megatron-LM's tensor-parallel
regions, Shoeybi et al. 2019)::

    copy_to_ranks:     replicated θ  ↦ θ on every rank          backward: Σ_r (all-reduce)
    reduce_from_ranks: partial x_r   ↦ Σ_r x_r on every rank    backward: identity

f(θ) = reduce_from_ranks(w_r f_r(copy_to_ranks(θ))). The backward of each is the other one, applied
as a differentiable function, so derivatives of every order stay correct: ∇f = Σ_r w_r ∇f_r is one
all-reduce of an n-vector (plus one of the scalar value), a reverse-over-reverse HVP
∇²f·v = Σ_r w_r ∇²f_r·v one more, forward mode (``torch.func.jvp``) all-reduces the tangents, and
``vmap`` (dense Hessians) all-reduces the batch at once. Every rank therefore issues the same
collectives in the same order, as long as every rank calls the same bea function with the same
arguments.

Lockstep
--------
Ranks agree because their inputs agree: θ0 is broadcast from the group's first rank by
:func:`sharded_loss` (a model initialised differently elsewhere is overwritten), the all-reduced
results are bitwise identical on every rank (gloo and NCCL reduce each entry once and send the result
to all: check with :func:`is_replicated`), and Lanczos start vectors come from a CPU generator seeded
with ``seed``, the same on every rank. Every branch bea takes on a number (convergence tests, step
acceptance, tube checks) is then taken identically on every rank. Pass the same ``seed``/``v0``
everywhere; a ``v0`` computed on one rank only can be shared with :meth:`ShardedLoss.replicate`.

The sharded f equals the one-process loss on the whole data set up to the rounding of the sum
(relative ~1e-16 in float64) when ``loss_fn`` is a mean (or sum) over samples, as
``F.cross_entropy``/``F.mse_loss`` with their default ``reduction="mean"`` are.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from bea.errors import BEAError, InvalidInputError
from bea.torch.loss import FlatLoss, flat_loss

__all__ = ["ShardedLoss", "sharded_loss", "copy_to_ranks", "reduce_from_ranks", "is_replicated"]

_REDUCTIONS = ("mean", "sum")


# --------------------------------------------------------------------------------------------------
# the two collectives, as autograd functions (torch.autograd and torch.func: grad, vjp, jvp, vmap)
# --------------------------------------------------------------------------------------------------


def _all_reduce(x: torch.Tensor, group) -> torch.Tensor:
    # a fresh, materialised buffer: forward-mode tangents may be (immutable) ZeroTensors
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    y.copy_(x)
    dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
    return y


class _Collective(torch.autograd.Function):
    """``reduce=False``: copy_to_ranks (identity); ``reduce=True``: reduce_from_ranks (all-reduce).
    Each one's backward is the other (the transpose), applied differentiably; tangents and vmap
    batches go through the map itself (it is linear)."""

    @staticmethod
    def forward(x, group, reduce):
        return _all_reduce(x, group) if reduce else x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.group, ctx.reduce = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx, grad):
        return _Collective.apply(grad, ctx.group, not ctx.reduce), None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        return _Collective.apply(tangent, ctx.group, ctx.reduce)

    @staticmethod
    def vmap(info, in_dims, x, group, reduce):
        # a vmap batch (columns of a dense Hessian) is all-reduced at once, in one collective
        return _Collective.apply(x, group, reduce), in_dims[0]


def copy_to_ranks(theta: torch.Tensor, group=None) -> torch.Tensor:
    """θ itself (a replicated tensor entering per-rank work); its backward sums the ranks' cotangents."""
    return _Collective.apply(theta, group, False)


def reduce_from_ranks(x: torch.Tensor, group=None) -> torch.Tensor:
    """Σ_r x_r over the group (all-reduce), on every rank; its backward passes the cotangent to each term."""
    return _Collective.apply(x, group, True)


def is_replicated(x: torch.Tensor, group=None) -> bool:
    """Whether ``x`` is bitwise identical on every rank of the group (a collective: call it on all)."""
    world = dist.get_world_size(group)
    flat = x.detach().reshape(-1).contiguous()
    parts = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(parts, flat, group=group)
    same = torch.tensor([all(torch.equal(p, parts[0]) for p in parts)], dtype=torch.int32, device=flat.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN, group=group)  # every rank answers the same
    return bool(same.item())


# --------------------------------------------------------------------------------------------------
# the sharded loss
# --------------------------------------------------------------------------------------------------


class ShardedLoss(FlatLoss):
    r"""f(θ) = Σ_r w_r f_r(θ): a :class:`~bea.torch.FlatLoss` of this rank's shard, all-reduced.

    Calling it gives the full loss on every rank; so do ``torch.func.grad``, HVPs, ``tgg`` and
    ``hessian`` of it (see the module docstring). ``local(θ)`` is this rank's f_r (not reduced).

    Attributes
    ----------
    group : the process group (None: the default group)
    rank, world_size : this process's rank in the group and the group's size
    local_size, global_size : N_r and N, samples on this rank and on all
    weight : w_r (N_r / N for ``reduction="mean"``, 1 for ``"sum"``)
    reduction : ``"mean"`` or ``"sum"``
    """

    def __init__(self, local: FlatLoss, *, group, rank, world_size, local_size, global_size, reduction):
        super().__init__(local.model, local.loss_fn, local.inputs, local.targets, local.names, local.shapes, local.buffers)
        self.group = group
        self.rank = rank
        self.world_size = world_size
        self.local_size = local_size
        self.global_size = global_size
        self.reduction = reduction
        self.weight = local_size / global_size if reduction == "mean" else 1.0

    def local(self, theta: torch.Tensor) -> torch.Tensor:
        """f_r(θ), the loss of this rank's shard alone."""
        return FlatLoss.__call__(self, theta)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return reduce_from_ranks(self.weight * self.local(copy_to_ranks(theta, self.group)), self.group)

    def replicate(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as the group's first rank has it, on every rank (a broadcast: call it on all ranks)."""
        return _broadcast(x, self.group)

    def __repr__(self) -> str:
        return (
            f"ShardedLoss({type(self.model).__name__}, n={self.n}, rank {self.rank}/{self.world_size}, "
            f"{self.local_size}/{self.global_size} samples, reduction={self.reduction!r})"
        )


def _broadcast(x: torch.Tensor, group) -> torch.Tensor:
    src = 0 if group is None else dist.get_global_rank(group, 0)
    out = x.detach().clone().contiguous()
    dist.broadcast(out, src=src, group=group)
    return out


def _comm_device(group):
    """Where small bookkeeping tensors must live for the group's backend (NCCL: the current GPU)."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _num_samples(inputs, targets) -> int:
    first = inputs[0] if isinstance(inputs, tuple) else inputs
    if not isinstance(first, torch.Tensor) or first.ndim == 0:
        raise InvalidInputError("inputs must be a tensor (or a tuple of tensors) with the samples along dim 0")
    n = first.shape[0]
    for name, t in [("inputs", v) for v in (inputs if isinstance(inputs, tuple) else (inputs,))] + [("targets", targets)]:
        if isinstance(t, torch.Tensor) and (t.ndim == 0 or t.shape[0] != n):
            raise InvalidInputError(
                f"every tensor of inputs and targets must hold the {n} samples along dim 0; {name} has shape {tuple(t.shape)}"
            )
    return n


def _shard(x, rank: int, world: int):
    if isinstance(x, torch.Tensor):
        return torch.tensor_split(x, world)[rank]
    if isinstance(x, tuple):
        return tuple(_shard(v, rank, world) for v in x)
    return x


def _agree(failure: BaseException | None, values: list[int], group, device) -> torch.Tensor:
    """All ranks learn whether any rank failed (and the values' max / −min): raise on every rank then,
    instead of leaving the healthy ranks waiting in the next collective."""
    data = torch.tensor([1 if failure is not None else 0, *values, *[-v for v in values]], dtype=torch.int64, device=device)
    dist.all_reduce(data, op=dist.ReduceOp.MAX, group=group)
    if failure is not None:
        raise failure
    if int(data[0]):
        raise BEAError("sharded_loss failed on another rank of the group (see that rank's error)")
    return data[1:].cpu()


def sharded_loss(
    model,
    loss_fn,
    inputs,
    targets,
    *,
    group=None,
    sharded: bool = False,
    reduction: str = "mean",
    dtype=None,
    device=None,
    trainable_only: bool = True,
):
    r"""The data-parallel loss of ``model`` on a data set split over the ranks of ``group``.

    Call it on every rank of the group (a collective), after ``torch.distributed.init_process_group``.

    Parameters
    ----------
    model, loss_fn, dtype, device, trainable_only : as for :func:`bea.torch.flat_loss` (``device``:
        this rank's device, e.g. ``f"cuda:{local_rank}"`` with NCCL).
    inputs, targets : the whole data set, the same on every rank (``sharded=False``, the default:
        rank r keeps the r-th of R contiguous, nearly equal chunks along dim 0, ``torch.tensor_split``),
        or this rank's own shard (``sharded=True``, e.g. from a ``DistributedSampler``); inputs may be a
        tuple of tensors, each with the samples along dim 0.
    group : the ``torch.distributed`` process group (None: the default one).
    reduction : ``"mean"`` (``loss_fn`` is a mean over samples: shards are weighted by N_r/N) or
        ``"sum"`` (a sum over samples: weights 1).

    Returns
    -------
    (f, theta0) : ``f`` a :class:`ShardedLoss` — the full loss on every rank, with its derivatives
        all-reduced — and ``theta0`` the model's parameters as the group's first rank has them,
        broadcast to all ranks.

    Raises
    ------
    InvalidInputError : torch.distributed is not initialised, an unknown reduction, samples not along
        dim 0, fewer samples than ranks (an empty shard), or models of different sizes on the ranks.
    bea.BEAError : building the loss failed on another rank (each rank raises, none is left waiting).
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise InvalidInputError(
            "sharded_loss needs an initialised torch.distributed process group: call "
            "torch.distributed.init_process_group(...) on every rank first (one process: use bea.torch.flat_loss)"
        )
    if reduction not in _REDUCTIONS:
        raise InvalidInputError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    comm = _comm_device(group)
    failure, local, theta0, local_n = None, None, None, 0
    try:
        local_n = _num_samples(inputs, targets)
        if not sharded:
            if local_n < world:
                raise InvalidInputError(f"{local_n} samples cannot be split over {world} ranks (a shard would be empty)")
            inputs, targets = _shard(inputs, rank, world), _shard(targets, rank, world)
            local_n = _num_samples(inputs, targets)
        elif local_n == 0:
            raise InvalidInputError(f"the shard of rank {rank} is empty")
        local, theta0 = flat_loss(model, loss_fn, inputs, targets, dtype=dtype, device=device, trainable_only=trainable_only)
        if comm.type == "cuda" and theta0.device.type != "cuda":
            raise InvalidInputError(
                f"the group's backend is NCCL, which reduces CUDA tensors only, but the parameters are on "
                f"{theta0.device}: pass device=f'cuda:{{local_rank}}' (or move the model there)"
            )
    except Exception as exc:  # noqa: BLE001 - re-raised on this rank after the others have heard of it
        failure = exc
    n_params = 0 if local is None else local.n
    counts = torch.zeros(world, dtype=torch.int64)
    counts[rank] = local_n
    agreed = _agree(failure, [n_params, *counts.tolist()], group, comm)
    k = world + 1
    hi, lo = agreed[:k], -agreed[k:]
    if int(hi[0]) != int(lo[0]):
        raise InvalidInputError(
            f"the models on the ranks have different numbers of parameters ({int(lo[0])} to {int(hi[0])}): "
            "every rank must build the same model"
        )
    sizes = hi[1:]  # each rank wrote its own entry, the others are 0
    f = ShardedLoss(local, group=group, rank=rank, world_size=world, local_size=int(sizes[rank]),
                    global_size=int(sizes.sum()), reduction=reduction)
    return f, _broadcast(theta0, group)
