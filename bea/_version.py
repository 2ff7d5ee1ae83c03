"""The version of bea: equal to ``version`` in pyproject.toml (``bea --version`` prints it)."""

__version__ = "0.1.0"
