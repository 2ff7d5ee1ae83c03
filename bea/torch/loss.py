r"""A network's training loss as a function of one flat parameter vector.

Everything in :mod:`bea.torch` works on ``f(θ) -> scalar`` with θ a 1-D tensor: the gradient, Hessian-
vector products, Lanczos, the flows and the certificate are then plain functions of a vector, as in
the numpy path, whatever the architecture.  :func:`flat_loss` builds such an ``f`` from a module with
:func:`torch.func.functional_call`, so the module itself is never modified.
"""

from __future__ import annotations

import math

import torch
from torch.func import functional_call

from bea.errors import InvalidInputError, InvalidLossError, InvalidParamsError

__all__ = ["FlatLoss", "flat_loss", "check_loss_value", "check_theta"]


def check_loss_value(value, where: str = "the loss") -> torch.Tensor:
    """``value`` as a 0-dim real tensor; :class:`bea.InvalidLossError` when it is not a scalar."""
    if not isinstance(value, torch.Tensor):
        raise InvalidLossError(f"{where} must return a torch tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise InvalidLossError(
            f"{where} must return a scalar (one number), got a tensor of shape {tuple(value.shape)}; "
            "reduce it (e.g. reduction='mean') before returning it"
        )
    if value.is_complex():
        raise InvalidLossError(f"{where} must be real, got dtype {value.dtype}")
    return value.reshape(())


def check_theta(theta, name: str = "theta0", *, n: int | None = None) -> torch.Tensor:
    """A finite, floating 1-D tensor (of length ``n`` when given); bea errors otherwise.

    Device and dtype are kept: everything downstream follows them.
    """
    if not isinstance(theta, torch.Tensor):
        raise InvalidInputError(f"{name} must be a 1-D torch tensor, got {type(theta).__name__}")
    if not theta.is_floating_point():
        raise InvalidInputError(f"{name} must have a floating dtype (float32/float64), got {theta.dtype}")
    if theta.ndim != 1 or theta.numel() == 0:
        raise InvalidInputError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(theta.shape)}")
    if n is not None and theta.numel() != n:
        raise InvalidInputError(f"{name} must have {n} entries (one per parameter), got {theta.numel()}")
    bad = ~torch.isfinite(theta)
    if bool(bad.any()):
        idx = torch.nonzero(bad).reshape(-1)[:5].tolist()
        raise InvalidInputError(f"{name} must be finite; entries {idx} are {theta[idx].tolist()}")
    return theta.detach()


class FlatLoss:
    """``f(θ)``: the loss of ``model`` on fixed data with parameters taken from the flat vector θ.

    Attributes
    ----------
    names, shapes, numels : the parameters of the model in ``named_parameters()`` order; θ is their
        concatenation (row-major flattening).
    n : the number of parameters.
    """

    def __init__(self, model, loss_fn, inputs, targets, names, shapes, buffers):
        self.model = model
        self.loss_fn = loss_fn
        self.inputs = inputs
        self.targets = targets
        self.names = tuple(names)
        self.shapes = tuple(tuple(s) for s in shapes)
        self.numels = tuple(math.prod(s) for s in self.shapes)
        self.n = sum(self.numels)
        self.buffers = buffers

    def unflatten(self, theta: torch.Tensor) -> dict:
        """``{name: tensor}`` views of θ with the parameter shapes (no copy)."""
        return {name: chunk.view(shape) for name, chunk, shape in zip(self.names, theta.split(self.numels), self.shapes)}

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        inputs = self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)
        out = functional_call(self.model, (self.unflatten(theta), self.buffers), inputs)
        return check_loss_value(self.loss_fn(out, self.targets), "loss_fn(model(inputs), targets)")

    def load_into(self, theta: torch.Tensor, model=None) -> None:
        """Copy θ into the parameters of ``model`` (default: the model this loss was built from)."""
        model = self.model if model is None else model
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.unflatten(theta.detach()).items():
                params[name].copy_(value)

    def __repr__(self) -> str:
        return f"FlatLoss({type(self.model).__name__}, n={self.n}, loss_fn={getattr(self.loss_fn, '__name__', self.loss_fn)!r})"


def _cast(x, dtype, device):
    if isinstance(x, torch.Tensor):
        if dtype is not None and x.is_floating_point():
            x = x.to(dtype)
        if device is not None:
            x = x.to(device)
        return x
    if isinstance(x, tuple):
        return tuple(_cast(v, dtype, device) for v in x)
    return x


def flat_loss(model, loss_fn, inputs, targets, *, dtype=None, device=None, trainable_only: bool = True):
    r"""The loss of ``model`` on ``(inputs, targets)`` as a function of one flat parameter vector.

    Parameters
    ----------
    model : ``torch.nn.Module`` with at least one parameter.
    loss_fn : ``loss_fn(model(inputs), targets) -> scalar tensor`` (e.g. ``F.cross_entropy``).
    inputs : a tensor, or a tuple of tensors passed as positional arguments to the model.
    targets : passed to ``loss_fn`` unchanged.
    dtype, device : optional cast of θ, of the floating inputs/targets and of the buffers (e.g.
        ``dtype=torch.float64`` for eigenvalues to 1e-6); the model itself is not modified.
    trainable_only : use only parameters with ``requires_grad`` (frozen ones stay fixed).

    Returns
    -------
    (f, theta0) : ``f`` a :class:`FlatLoss` mapping a 1-D tensor of length n to the scalar loss
        (``torch.func.functional_call``; differentiable with ``torch.func``), ``theta0`` the model's
        current parameters flattened (detached, on the parameters' device and dtype unless cast).

    Raises
    ------
    InvalidParamsError : the model has no (trainable) parameters, or they mix dtypes/devices.
    InvalidLossError : the loss is not a real scalar.
    InvalidInputError : a parameter is NaN/inf (named), or the loss at θ0 is not finite.
    """
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise InvalidInputError(f"loss_fn must be callable, got {loss_fn!r}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad or not trainable_only]
    if not named:
        raise InvalidParamsError(
            f"the model {type(model).__name__} has no {'trainable ' if trainable_only else ''}parameters: "
            "there is nothing to differentiate"
        )
    dtypes = {p.dtype for _, p in named}
    devices = {p.device for _, p in named}
    if len(dtypes) > 1 or len(devices) > 1:
        raise InvalidParamsError(
            f"all parameters must share one dtype and device to form one flat vector, got dtypes "
            f"{sorted(map(str, dtypes))} and devices {sorted(map(str, devices))}"
        )
    if not named[0][1].is_floating_point():
        raise InvalidParamsError(f"parameters must be floating point, got {named[0][1].dtype}")
    for name, p in named:
        if not bool(torch.isfinite(p).all()):
            raise InvalidInputError(f"parameter {name!r} of the model contains NaN or inf values")
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
    theta0 = _cast(theta0, dtype, device)
    buffers = {n: _cast(b, dtype, device) for n, b in model.named_buffers()}
    # frozen parameters enter as constants (functional_call needs every tensor it replaces, or none)
    frozen = {n: _cast(p.detach(), dtype, device) for n, p in model.named_parameters() if trainable_only and not p.requires_grad}
    buffers.update(frozen)
    f = FlatLoss(
        model, loss_fn, _cast(inputs, dtype, device), _cast(targets, dtype, device),
        [n for n, _ in named], [p.shape for _, p in named], buffers,
    )
    with torch.no_grad():
        value = f(theta0)
    if not bool(torch.isfinite(value)):
        raise InvalidInputError(f"the loss at the model's parameters is not finite ({value.item()})")
    return f, theta0
