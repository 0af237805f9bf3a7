"""Options shared by several commands, defined once: ``--batch`` (streamed execution) and
``--progress`` / ``--no-progress`` (bars on stderr, :mod:`hwsim.progress`).

This module registers no command (it has no ``register``); command modules import it.
"""

from __future__ import annotations

import argparse

from hwsim.errors import HwsimError

#: Inputs per batch when --batch is not given (specs/compiler.md §7: results do not depend
#: on it; peak memory grows with it).
DEFAULT_BATCH = 16


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_batch_option(p: argparse.ArgumentParser) -> None:
    """``--batch N``: inputs run through every executor N at a time (memory bound)."""
    p.add_argument("--batch", type=_positive_int, default=DEFAULT_BATCH, metavar="N",
                   help=f"inputs per batch: every executor runs on N inputs at a time and "
                        f"results are reduced per batch, so peak memory does not grow with "
                        f"the number of inputs; results do not depend on N "
                        f"(default {DEFAULT_BATCH})")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: bars only when stderr is a terminal and
    --json is not given)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when stderr is a terminal "
                        "and --json is not given)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Both ``--batch`` and ``--progress``."""
    add_batch_option(p)
    add_progress_option(p)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether this command shows bars (hwsim.progress.auto_enabled of its options)."""
    from hwsim.progress import auto_enabled

    return auto_enabled(getattr(args, "progress", None), bool(getattr(args, "json", False)))


def batch_of(args: argparse.Namespace) -> int:
    """The validated --batch value (HwsimError if it is not an integer >= 1)."""
    b = getattr(args, "batch", DEFAULT_BATCH)
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise HwsimError(f"--batch: expected an integer >= 1, got {b!r}")
    return b
