"""``hwsim demo``: the built-in digits CNN end to end. Argument parsing only; the work is
:func:`hwsim.demo.run_demo`."""

from __future__ import annotations

import argparse
import json

from hwsim.commands.options import add_run_options, batch_of, progress_enabled
from hwsim.commands.report import stderr_progress
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK, HwsimError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="quantize, simulate, verify the demo CNN; write report and vectors",
        description="Quantize the built-in digits CNN (int8, dyadic requantization), simulate "
                    "it on a 16x16 weight-stationary array, verify float / fake-quant / golden "
                    "/ cycle model (fast and stepped) bit for bit, write the report and the "
                    "golden vectors to --out and print a summary table. Exit 1 if a normative "
                    "executor pair mismatches or the vectors do not verify, 2 on bad options.")
    p.add_argument("--out", default="hwsim-demo", metavar="DIR",
                   help="output directory (default ./hwsim-demo)")
    p.add_argument("--samples", type=int, default=0, metavar="N",
                   help="evaluate at most N test inputs (default all)")
    p.add_argument("--stepped-samples", type=int, default=1, metavar="N",
                   help="inputs also run on the cycle-stepped model (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.demo import run_demo

    if args.samples < 0 or args.stepped_samples < 0:
        raise HwsimError("--samples and --stepped-samples: expected integers >= 0")
    from hwsim.progress import progress_scope

    with progress_scope(progress_enabled(args)):
        res = run_demo(args.out, samples=args.samples, stepped_samples=args.stepped_samples,
                       progress=stderr_progress("demo"), batch=batch_of(args))
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(res.summary, end="")
    return EXIT_OK if res.ok else EXIT_CHECK_FAILED
