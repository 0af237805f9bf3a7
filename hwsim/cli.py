"""The ``hwsim`` command line: argument parsing only; the work is done by the library.

Exit codes: 0 success; 1 a check ran and failed (bit-exactness mismatch, vector set that
does not verify); 2 bad input (usage, missing or malformed file, invalid configuration).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from hwsim import __version__, commands
from hwsim.errors import EXIT_BAD_INPUT, HwsimError

EPILOG = """exit codes:
  0  success
  1  a check ran and failed (bit-exactness mismatch, vector set that does not verify)
  2  bad input (usage error, missing or malformed file, invalid configuration)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Bit-exact simulator and emulator of fixed-point DNN accelerators.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):  # shared helpers (commands.options) register nothing
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except HwsimError as exc:
        print(f"hwsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        print(f"hwsim {args.command}: error: file not found: {exc.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
