"""User-facing errors.

Anything a user can get wrong (a path, a name, a size, a config value) raises :class:`UserError`
with one line that names the file or value at fault. The command-line entry points print that line
and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us: printed as one line, exit code 2."""

    exit_code: int = 2


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, truncated, unsafe, or of another model type."""


class DataError(UserError):
    """A dataset folder or image that cannot be used as given."""


class CapabilityError(UserError):
    """A model asked for something it cannot do: a DCGAN to translate, a one-way Pix2Pix to translate BtoA."""


class NonFiniteLossError(UserError):
    """A training loss became NaN or infinite: training stops and the last good checkpoint is kept."""
