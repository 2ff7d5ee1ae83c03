"""bea — backward error analysis of gradient descent.

The pipeline is the package tree: :mod:`bea.derive` (modified equations in exact arithmetic) →
:mod:`bea.compile` (numba kernels) → :mod:`bea.integrate` (adaptive Runge–Kutta) → :mod:`bea.flows`
(GD and its continuous models) → :mod:`bea.certificates` (GD–flow distance bounds); :mod:`bea.torch`
mirrors it on tensors. The names below are the stable public API.
"""

import sys as _sys
from importlib import import_module as _import_module

from bea._version import __version__
from bea.certificates.certify import CERTIFIED_FLOWS, Certificate, StepSizeAnswer, certify, max_step
from bea.compile.codegen import cache_dir, clear_memory_cache, compile_exprs, kernel_source
from bea.compile.data import DataLoss, data_loss
from bea.derive.maps import MapField, modified_map, modified_map_with_state, sgd_epoch
from bea.derive.methods import ButcherTableau, LinearMultistep, Momentum, RungeKutta, get_method
from bea.derive.optimizers import adam_field, nesterov_field, optimizer_field, rmsprop_field
from bea.derive.series import ModifiedSeries, modified_series, modifying_integrator
from bea.derive.symbolic import ModifiedField, modified_field
from bea.derive.trees import RootedTree, count_trees, rooted_trees
from bea.errors import *  # noqa: F401,F403
from bea.errors import __all__ as _errors_all
from bea.flows import FLOWS, flow_field, gd, pf_closed_form, pf_field, trajectory
from bea.flows.dal import dal_learning_rate
from bea.flows.diagnostics import PFDiagnostics, alpha, classify, diagnostics, diagnostics_along, pf_rates
from bea.integrate import Solution
from bea.integrate import solve as solve_ode

#: where the modules of the flat layout (before the subpackages) live now: ``import bea.series``,
#: ``from bea.loss import CompiledLoss`` and ``bea.series.modified_series`` keep working, and give
#: the very same module objects (so state such as caches and monkeypatches is shared)
MOVED_MODULES = {
    "trees": "bea.derive.trees",
    "methods": "bea.derive.methods",
    "series": "bea.derive.series",
    "differentials": "bea.derive.differentials",
    "symbolic": "bea.derive.symbolic",
    "momentum": "bea.derive.momentum",
    "maps": "bea.derive.maps",
    "optimizers": "bea.derive.optimizers",
    "codegen": "bea.compile.codegen",
    "loss": "bea.compile.loss",
    "data": "bea.compile.data",
    "alpha": "bea.flows.alpha",
    "principal": "bea.flows.diagnostics",
    "dal": "bea.flows.dal",
    "intervals": "bea.certificates.intervals",
    "tube": "bea.certificates.tube",
    "rigorous": "bea.certificates.rigorous",
    "certify": "bea.certificates.certify",  # bea.certify stays the function
}
for _old, _new in MOVED_MODULES.items():
    _module = _import_module(_new)
    _sys.modules.setdefault(f"{__name__}.{_old}", _module)
    if _old not in globals():  # bea.alpha stays the function alpha (as before: the module was shadowed)
        globals()[_old] = _module
del _old, _new, _module


__all__ = [
    *_errors_all,
    "ButcherTableau",
    "RungeKutta",
    "get_method",
    "LinearMultistep",
    "Momentum",
    "modifying_integrator",
    "ModifiedSeries",
    "modified_series",
    "ModifiedField",
    "modified_field",
    "MapField",
    "modified_map",
    "modified_map_with_state",
    "sgd_epoch",
    "nesterov_field",
    "rmsprop_field",
    "adam_field",
    "optimizer_field",
    "RootedTree",
    "rooted_trees",
    "count_trees",
    "compile_exprs",
    "kernel_source",
    "cache_dir",
    "clear_memory_cache",
    "solve_ode",
    "Solution",
    "alpha",
    "pf_rates",
    "classify",
    "diagnostics",
    "diagnostics_along",
    "PFDiagnostics",
    "gd",
    "trajectory",
    "FLOWS",
    "flow_field",
    "pf_field",
    "pf_closed_form",
    "dal_learning_rate",
    "certify",
    "max_step",
    "Certificate",
    "StepSizeAnswer",
    "CERTIFIED_FLOWS",
    "data_loss",
    "DataLoss",
]
