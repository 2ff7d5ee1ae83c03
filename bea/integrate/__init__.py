"""Integrate: adaptive explicit Runge–Kutta in numba, for real and complex states.

:mod:`bea.integrate.tableaux` (the methods as data), :mod:`bea.integrate.control` (step control,
initial step, status table — shared with :mod:`bea.torch.integrate`), :mod:`bea.integrate.solver`
(the numba driver and :func:`solve`).
"""

from bea.integrate.control import STATUS_MESSAGES, control_step, initial_step, initial_step_guess, status_message
from bea.integrate.solver import Solution, solve
from bea.integrate.tableaux import DOP853, DOPRI5, INTEGRATORS, ERKMethod

__all__ = [
    "solve", "Solution", "ERKMethod", "INTEGRATORS", "DOPRI5", "DOP853", "STATUS_MESSAGES", "status_message",
    "control_step", "initial_step", "initial_step_guess",
]


def __getattr__(name):
    if name == "METHODS":  # deprecated alias (three registries were all called METHODS)
        import warnings

        warnings.warn("bea.integrate.METHODS is renamed bea.integrate.INTEGRATORS", DeprecationWarning, stacklevel=2)
        return INTEGRATORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
