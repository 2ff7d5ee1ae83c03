"""Flows: gradient descent and the continuous models of it.

=============================  ==============================================================
:mod:`bea.flows.descent`       GD itself (:func:`gd`, the compiled loop :func:`run_gd`)
:mod:`bea.flows.fields`        NGF, IGR, third order, BEA, the principal flow; :func:`trajectory`
:mod:`bea.flows.alpha`         α(z) = log(1 − z)/z, the PF rates and their classes
:mod:`bea.flows.diagnostics`   PF diagnostics of GD at a point and along a run
:mod:`bea.flows.dal`           drift-adjusted learning rates (DAL)
=============================  ==============================================================

``bea.flows`` keeps the names of the former module ``bea.flows`` (GD, the flows, their fields).
"""

from bea.flows.descent import gd, run_gd
from bea.flows.fields import (
    COMPLEX_FLOWS,
    FLOWS,
    MAX_NORM,
    flow_field,
    is_quadratic_loss,
    pf_closed_form,
    pf_field,
    trajectory,
)

__all__ = ["FLOWS", "COMPLEX_FLOWS", "MAX_NORM", "gd", "run_gd", "trajectory", "flow_field", "pf_field",
           "pf_closed_form", "is_quadratic_loss"]
