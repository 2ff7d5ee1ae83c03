"""Exceptions raised by bea.

Every error that bea raises on purpose derives from :class:`BEAError`. Subclasses also derive from the
built-in exception that fits (``ValueError`` for bad values, ``TypeError`` for wrong kinds of object)
so that callers who do not know about bea still catch them naturally.
"""

from __future__ import annotations

__all__ = [
    "BEAError",
    "InvalidLossError",
    "InvalidParamsError",
    "InvalidOrderError",
    "NonSmoothLossError",
    "UnknownMethodError",
    "InvalidTreeError",
    "InvalidInputError",
    "IntegrationError",
    "InvalidMethodError",
    "InvalidTableauError",
    "InvalidMomentumError",
    "ImplicitMethodError",
    "InvalidMapError",
    "NonSmoothMapError",
    "NoGradientNotationError",
]


class BEAError(Exception):
    """Base class of every error raised by bea."""


class InvalidLossError(BEAError, TypeError):
    """The loss is not a scalar sympy expression (or cannot be turned into one)."""


class InvalidParamsError(BEAError, ValueError):
    """The parameter list is empty, has duplicates, non-symbols, or misses symbols of the loss."""


class InvalidOrderError(BEAError, ValueError):
    """An order (truncation order of a series, tree order) is negative or not an integer."""


class NonSmoothLossError(BEAError, ValueError):
    """The loss contains a non-smooth function (Abs, Max, Min, sign, Piecewise, ...).

    Backward error analysis expands the loss in Taylor series; the modified field of a non-smooth
    loss is not defined where the loss is not differentiable.
    """


class UnknownMethodError(BEAError, ValueError):
    """The name of a numerical method (or flow) is not known to bea."""


class InvalidTreeError(BEAError, ValueError):
    """A sequence is not a valid level sequence of a rooted tree."""


class InvalidInputError(BEAError, ValueError):
    """A numerical input (initial point, step size, number of steps, ...) is invalid."""


class IntegrationError(BEAError, RuntimeError):
    """A numerical integration failed (divergence, too many steps, step size underflow).

    Attributes
    ----------
    t : float or None
        The time at which the integration failed, when known.
    """

    def __init__(self, message: str, t: float | None = None):
        super().__init__(message)
        self.t = t


class InvalidMethodError(BEAError, ValueError):
    """The definition of a numerical method is invalid."""


class InvalidTableauError(InvalidMethodError):
    """A Butcher tableau is malformed (non-square A, inconsistent b or c, non-rational entries)."""


class InvalidMomentumError(InvalidMethodError):
    """A momentum (decay) parameter outside [0, 1), or not a real number."""


class ImplicitMethodError(BEAError, ValueError):
    """An implicit method was given where only explicit methods are supported (a plain numerical step)."""


class InvalidMapError(BEAError, ValueError):
    """A one-step map (or an optimiser's update) cannot be expanded: a step with the wrong number of
    components, a map that is not the identity at h = 0, one that is not a power series in h, or a
    state update without an attracting slow manifold."""


class NonSmoothMapError(InvalidMapError):
    """The map contains a non-smooth function (sign, Abs, Max, ...) or the root of a square, |u| =
    sqrt(u²) (signSGD, Adam with ε = 0 or with ε outside the square root); its modified equation is
    not defined where the function is not differentiable."""


class NoGradientNotationError(BEAError, TypeError):
    """The field is not the B-series of a method applied to f = −∇E (a general map, an SGD epoch,
    Adam), so it has no loss-independent gradient notation; its ``terms`` are still available."""
