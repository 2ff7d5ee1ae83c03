"""bea — backward error analysis of gradient descent.

derive (:mod:`bea.trees`, :mod:`bea.methods`, :mod:`bea.series`, :mod:`bea.symbolic`) →
compile (:mod:`bea.codegen`) → integrate → certify.
"""

from bea.errors import *  # noqa: F401,F403
from bea.errors import __all__ as _errors_all
from bea.methods import ButcherTableau, RungeKutta, get_method
from bea.series import ModifiedSeries, modified_series
from bea.symbolic import ModifiedField, modified_field
from bea.trees import RootedTree, count_trees, rooted_trees

__version__ = "0.1.0"

__all__ = [
    *_errors_all,
    "ButcherTableau",
    "RungeKutta",
    "get_method",
    "ModifiedSeries",
    "modified_series",
    "ModifiedField",
    "modified_field",
    "RootedTree",
    "rooted_trees",
    "count_trees",
]
