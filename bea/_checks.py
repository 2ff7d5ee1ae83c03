"""Validation of numerical inputs shared by flows, certification and optimisers."""

from __future__ import annotations

import numbers

import numpy as np

from bea.errors import InvalidInputError, InvalidOrderError

__all__ = ["check_theta0", "check_positive", "check_step", "check_steps"]


def check_theta0(theta0, n: int, name: str = "theta0") -> np.ndarray:
    """A finite float64 vector of length n (a copy)."""
    try:
        arr = np.array(theta0, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a vector of {n} real numbers, got {theta0!r}") from None
    if arr.ndim == 0 and n == 1:
        arr = arr.reshape(1)
    if arr.shape != (n,):
        raise InvalidInputError(f"{name} must have shape ({n},) (one value per parameter), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must be finite, got {arr}")
    return arr


def check_positive(value, name: str) -> float:
    """A finite real number > 0 (tolerances, step sizes, radii); a real 0-d array counts as a number."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a positive real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be finite and > 0, got {value}")
    return value


def check_step(h, name: str = "h") -> float:
    """A finite step size > 0."""
    return check_positive(h, f"the step size {name}")


def check_steps(steps, name: str = "steps") -> int:
    """A non-negative integer number of steps."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise InvalidInputError(f"{name} must be a non-negative integer, got {steps!r}")
    if steps < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {steps}")
    return int(steps)


def check_order(order, minimum: int = 1) -> int:
    """An integer order ≥ ``minimum`` (integral floats and numpy integers accepted), else
    :class:`bea.errors.InvalidOrderError`."""
    if isinstance(order, bool) or not isinstance(order, int):
        try:
            is_int = int(order) == order
        except (TypeError, ValueError):
            is_int = False
        if not is_int:
            raise InvalidOrderError(f"the order must be an integer, got {order!r}")
        order = int(order)
    if order < minimum:
        raise InvalidOrderError(f"the order must be >= {minimum}, got {order}")
    return order
