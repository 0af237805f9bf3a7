"""The ``hwsim`` command line: argument parsing only; the work is done by the library.

Exit codes (enforced here, in :func:`main`, and nowhere else): 0 success; 1 a check ran and
failed (bit-exactness mismatch, vector set that does not verify); 2 bad input (usage,
missing, unreadable or malformed file, invalid configuration, unwritable output path, a
size past ``--max-memory``), always one line on stderr naming what is wrong; 3 an internal
error (a bug: one line asking to report it; the traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from typing import NoReturn

from hwsim import __version__, commands
from hwsim.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, HwsimError

EPILOG = """exit codes:
  0  success
  1  a check ran and failed (bit-exactness mismatch, vector set that does not verify)
  2  bad input (usage error, missing, unreadable or malformed file, invalid configuration,
     unwritable output path, a size past --max-memory), as one line on stderr
  3  internal error (a bug in hwsim; please report it, --debug shows the traceback)
"""


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (``hwsim CMD: error: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _add_global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """--debug and --max-memory, accepted before or after the command name."""
    from hwsim.commands.options import size_bytes

    default = None if top else argparse.SUPPRESS
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="on an internal error, print the Python traceback")
    p.add_argument("--max-memory", type=size_bytes, default=default, metavar="SIZE",
                   help="memory a run may use, e.g. 2G or 512M (default: half of the physical "
                        "memory); inputs or models needing more are refused up front")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hwsim",
        description="Bit-exact simulator and emulator of fixed-point DNN accelerators.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):  # shared helpers (commands.options) register nothing
            module.register(subparsers)
    for sub in subparsers.choices.values():
        _add_global_options(sub, top=False)
    return parser


def _os_error_line(exc: OSError) -> str:
    """``PATH: what the OS said`` for an error on a user's path."""
    what = exc.strerror or type(exc).__name__
    names = [str(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f is not None]
    if not names:
        return f"{what} ({type(exc).__name__})"
    if type(exc) is FileNotFoundError:
        return f"file not found: {names[0]}"
    hint = {
        IsADirectoryError: "; expected a file, not a directory",
        NotADirectoryError: "; a component of the path is a file, expected a directory",
        FileExistsError: "; expected a directory, or a path that does not exist",
        PermissionError: "; check its permissions",
    }.get(type(exc), "")
    return f"{' -> '.join(names)}: {what}{hint}"


def _run(args: argparse.Namespace) -> int:
    from hwsim.limits import memory_limit

    with memory_limit(getattr(args, "max_memory", None)):
        return int(args.func(args))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and map every outcome to the exit-code contract."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (one line, see _Parser), --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        print("hwsim: error: expected a COMMAND (see hwsim --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    prefix = f"hwsim {args.command}"
    try:
        return _run(args)
    except HwsimError as exc:
        print(f"{prefix}: error: {_one_line(str(exc))}", file=sys.stderr)
    except OSError as exc:  # the user's paths: missing, permissions, file vs directory
        print(f"{prefix}: error: {_one_line(_os_error_line(exc))}", file=sys.stderr)
    except UnicodeError as exc:  # a user file that is not UTF-8 text
        print(f"{prefix}: error: a file is not valid UTF-8 text ({_one_line(str(exc))})",
              file=sys.stderr)
    except MemoryError:
        print(f"{prefix}: error: out of memory; the inputs are too large for this machine: "
              "use smaller inputs or fewer samples, or lower hwsim --max-memory so that the "
              "size checks refuse them up front", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: exit 3
        if getattr(args, "debug", False):
            traceback.print_exc(file=sys.stderr)
        print(f"{prefix}: internal error ({type(exc).__name__}: {_one_line(str(exc))[:300]}); "
              "please report it; rerun with --debug for the traceback", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT


def _one_line(text: str) -> str:
    """Messages are one line on stderr: newlines folded."""
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


if __name__ == "__main__":
    sys.exit(main())
