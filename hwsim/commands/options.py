"""Options shared by several commands, defined once: ``--batch`` (streamed execution) and
``--progress`` / ``--no-progress`` (bars on stderr, :mod:`hwsim.progress`).

Also argparse ``type=`` callables that validate a value up front (an invalid value is a
one-line usage error, exit 2, naming the option) and :func:`check_output_path`, run before any
work so that an unusable ``--out`` fails in a second, not after the simulation. One meaning
everywhere: ``--samples N`` is N >= 1 (omitted: all inputs); ``--workers N`` is N >= 0 (0: in
this process); ``--acc-bits`` is checked against the one accumulator range of
:func:`hwsim.sim.config.acc_bits_range`.

This module registers no command (it has no ``register``); command modules import it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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


# --- value types and output checks (issue 9) ---------------------------------------

def int_at_least(lo: int, hi: int | None = None):  # noqa: ANN201 - an argparse type
    """An argparse type: an integer ``>= lo`` (and ``<= hi`` if given)."""
    want = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


#: N ≥ 1 (``--samples``, ``--batch``).
positive_int = int_at_least(1)
#: N ≥ 0 (``--stepped-samples``, ``--sample``, ``--seed``, ``--workers``).
nonneg_int = int_at_least(0)


def size_bytes(text: str) -> int:
    """An argparse type for ``--max-memory``: ``512M``, ``4G``, ``1.5GiB`` → bytes."""
    from hwsim.limits import parse_size

    try:
        return parse_size(text)
    except HwsimError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_output_path(path: str | os.PathLike[str], option: str = "--out",
                      directory: bool = True) -> Path:
    """Fail early (HwsimError naming ``option`` and the path) if ``path`` cannot become the
    output directory (``directory=True``) or output file: it is empty, exists with the wrong
    kind, or its nearest existing ancestor is not a directory or refuses new entries (probed
    by creating and removing an empty hidden directory there). Writes nothing else."""
    if not os.fspath(path).strip():
        raise HwsimError(f"{option}: empty path; expected an output "
                         f"{'directory' if directory else 'file'}")
    p = Path(path)
    kind = "directory" if directory else "file"
    if p.exists() or p.is_symlink():
        if directory and not p.is_dir():
            raise HwsimError(f"{option} {p}: exists and is not a directory; expected an "
                             "output directory")
        if not directory and p.is_dir():
            raise HwsimError(f"{option} {p}: is a directory; expected an output file")
        if directory:  # an existing output directory: no probe inside it (a vector set
            # must hold only itself), its permission bits only
            if not os.access(p, os.W_OK | os.X_OK):
                raise HwsimError(f"{option} {p}: directory is not writable")
            return p
    probe = p.parent
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise HwsimError(f"{option} {p}: {probe} is not a directory, so the output {kind} "
                         "cannot be created there")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise HwsimError(f"{option} {p}: directory {probe} is not writable")
    if probe.is_dir():  # os.access is not enough (root, read-only or pseudo file systems)
        import tempfile

        try:
            os.rmdir(tempfile.mkdtemp(prefix=".hwsim-probe-", dir=probe))
        except OSError as exc:
            raise HwsimError(f"{option} {p}: cannot create files in {probe} "
                             f"({exc.strerror or exc})") from None
    return p
