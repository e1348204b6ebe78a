"""The package version (also in pyproject.toml), written into every checkpoint and evaluation file."""

__version__ = "0.2.0"
