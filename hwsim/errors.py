"""Errors raised for bad user input.

Every error a user can cause (a malformed model, an invalid config field, a missing file)
is an :class:`HwsimError` whose message names the node, tensor, op, field or file and says
what was expected. The CLI prints it as one line and exits with :data:`EXIT_BAD_INPUT`.
"""

from __future__ import annotations

#: Exit codes of the ``hwsim`` command line (documented in ``hwsim --help``).
EXIT_OK = 0
#: A check ran and failed: a bit-exactness mismatch, a vector set that does not verify.
EXIT_CHECK_FAILED = 1
#: The input was bad: usage error, missing or malformed file, invalid configuration.
EXIT_BAD_INPUT = 2


class HwsimError(ValueError):
    """Bad input from a user: the message says what and where, and what was expected."""


class ModelError(HwsimError):
    """A model (ONNX file, graph) that hwsim cannot read or does not support."""


class ConfigError(HwsimError):
    """An invalid configuration field (array, requantization, energy table, sweep grid)."""
