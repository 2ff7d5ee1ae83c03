"""bea — backward error analysis of gradient descent."""

from bea.errors import *  # noqa: F401,F403
from bea.errors import __all__ as _errors_all

__version__ = "0.1.0"

__all__ = list(_errors_all)
