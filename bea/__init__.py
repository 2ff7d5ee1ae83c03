"""bea — backward error analysis of gradient descent.

derive (:mod:`bea.trees`, :mod:`bea.methods`, :mod:`bea.series`, :mod:`bea.symbolic`) →
compile (:mod:`bea.codegen`, :mod:`bea.loss`, :mod:`bea.data`) → integrate → certify.
"""

from bea.certify import CERTIFIED_FLOWS, Certificate, StepSizeAnswer, certify, max_step
from bea.codegen import cache_dir, clear_memory_cache, compile_exprs, kernel_source
from bea.data import DataLoss, data_loss
from bea.errors import *  # noqa: F401,F403
from bea.errors import __all__ as _errors_all
from bea.dal import dal_learning_rate
from bea.flows import FLOWS, flow_field, gd, pf_closed_form, pf_field, trajectory
from bea.integrate import Solution
from bea.integrate import solve as solve_ode
from bea.methods import ButcherTableau, LinearMultistep, Momentum, RungeKutta, get_method
from bea.principal import PFDiagnostics, alpha, classify, diagnostics, diagnostics_along, pf_rates
from bea.series import ModifiedSeries, modified_series, modifying_integrator
from bea.symbolic import ModifiedField, modified_field
from bea.maps import MapField, modified_map, modified_map_with_state, sgd_epoch
from bea.optimizers import adam_field, nesterov_field, optimizer_field, rmsprop_field
from bea.trees import RootedTree, count_trees, rooted_trees

__version__ = "0.1.0"

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
