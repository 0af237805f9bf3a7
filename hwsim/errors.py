"""Errors raised for bad user input, and the exit codes of the ``hwsim`` command line.

Every error a user can cause (a malformed model, an invalid config field, a missing file,
an input too large for the memory limit) is an :class:`HwsimError` whose message names the
node, tensor, op, field or file and says what was expected. The CLI prints it as one line
and exits with :data:`EXIT_BAD_INPUT`; operating-system errors on the user's paths
(permission denied, a directory where a file is expected, ...) are reported the same way.
Anything else is a bug in hwsim: one "internal error, please report it" line and
:data:`EXIT_INTERNAL` (the traceback with ``hwsim --debug``).
"""

from __future__ import annotations

#: Exit codes of the ``hwsim`` command line (documented in ``hwsim --help``).
EXIT_OK = 0
#: A check ran and failed: a bit-exactness mismatch, a vector set that does not verify.
EXIT_CHECK_FAILED = 1
#: The input was bad: usage error, missing or malformed file, invalid configuration, an
#: unwritable output path, a size past the memory limit.
EXIT_BAD_INPUT = 2
#: A bug in hwsim (an unexpected exception): please report it; ``--debug`` shows the traceback.
EXIT_INTERNAL = 3


class HwsimError(ValueError):
    """Bad input from a user: the message says what and where, and what was expected."""


class ModelError(HwsimError):
    """A model (ONNX file, graph) that hwsim cannot read or does not support."""


class ConfigError(HwsimError):
    """An invalid configuration field (array, requantization, energy table, sweep grid)."""


class InputDataError(HwsimError):
    """An input data file (.npy calibration / evaluation inputs, labels) that is unusable."""


class ResourceError(HwsimError):
    """A run that would need more memory or time than allowed (``--max-memory``, ``--yes``);
    raised before anything is allocated or started."""
