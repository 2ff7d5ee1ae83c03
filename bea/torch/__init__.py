r"""bea on PyTorch: Hessian spectra, flows, certificates and DAL for neural networks.

The numpy path of bea works on sympy losses; a network does not fit in sympy.  This backend does the
same jobs on a *flat parameter vector* θ ∈ ℝⁿ and a loss ``f(θ) -> scalar tensor`` built from any
``torch.nn.Module`` (:func:`flat_loss`), on whatever device and dtype θ lives on:

derive (autograd: :func:`grad`, :func:`hvp`, :func:`lanczos`) → integrate (:func:`solve`, the
Dormand–Prince tableaux of :mod:`bea.integrate`) → flows (:func:`gd`, :func:`trajectory`, names
and semantics of :mod:`bea.flows`) → certify (:func:`certify`, a :class:`bea.certificates.certify.Certificate`)
→ train (:class:`DAL`, :class:`MomentumDAL`, :class:`PerParameterDAL`, :func:`diagnostics`).

``import bea`` never imports torch; ``import bea.torch`` raises :class:`MissingTorchError` (an
``ImportError``) when torch is not installed.
"""

from __future__ import annotations

from bea.errors import BEAError


#: What :class:`MissingTorchError` tells the user (also in the README): the CPU build first, because
#: ``pip install 'bea[torch]'`` on its own resolves to the newest torch and, on Linux, to its CUDA
#: build with the CUDA runtime, cuDNN, NCCL and triton wheels (several GB).
INSTALL_HINT = (
    "for the CPU build run `pip install torch==2.13.0` first (where that name resolves to a CUDA build, add "
    "`--index-url https://download.pytorch.org/whl/cpu`), then `pip install -e '.[torch]'`; the extra on its "
    "own pulls the newest torch, on Linux with its CUDA, cuDNN, NCCL and triton wheels (several GB)"
)


class MissingTorchError(BEAError, ImportError):
    """PyTorch is not installed. CPU build: ``pip install torch==2.13.0`` *before*
    ``pip install -e '.[torch]'`` (the extra alone resolves to the newest, CUDA-enabled torch on Linux)."""


try:
    import torch as _torch  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingTorchError(f"bea.torch needs PyTorch, which is not installed: {INSTALL_HINT}") from _exc

from bea.torch.loss import FlatLoss, flat_loss  # noqa: E402
from bea.torch.linalg import (  # noqa: E402
    Spectrum,
    grad,
    hessian,
    hessian_spectrum,
    hvp,
    hvp_operator,
    lanczos,
    lanczos_operator,
    tgg,
    value_and_grad,
)
from bea.torch.integrate import TorchSolution, solve  # noqa: E402
from bea.torch.diagnostics import (  # noqa: E402
    PFDiagnostics,
    PFLogger,
    PFTrace,
    alpha,
    diagnostics,
    diagnostics_along,
    flow_alpha,
    stability_coefficients,
)
from bea.torch.flows import COMPLEX_FLOWS, FLOWS, flow_field, gd, trajectory  # noqa: E402
from bea.torch.optim import DAL, MomentumDAL, PerParameterDAL  # noqa: E402
from bea.torch.certify import certify  # noqa: E402  (after the submodule import: the name is the function)
from bea.torch.modified import TorchModifiedField, modified_field  # noqa: E402

__all__ = [
    "MissingTorchError",
    "FlatLoss",
    "flat_loss",
    "grad",
    "value_and_grad",
    "hvp",
    "hvp_operator",
    "tgg",
    "lanczos",
    "lanczos_operator",
    "hessian",
    "hessian_spectrum",
    "Spectrum",
    "solve",
    "TorchSolution",
    "alpha",
    "flow_alpha",
    "stability_coefficients",
    "diagnostics",
    "diagnostics_along",
    "PFDiagnostics",
    "PFTrace",
    "PFLogger",
    "FLOWS",
    "COMPLEX_FLOWS",
    "flow_field",
    "gd",
    "trajectory",
    "certify",
    "DAL",
    "MomentumDAL",
    "PerParameterDAL",
    "modified_field",
    "TorchModifiedField",
]

