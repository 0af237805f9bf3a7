"""``hwsim demo``: the built-in digits CNN end to end. Argument parsing only; the work is
:func:`hwsim.demo.run_demo`."""

from __future__ import annotations

import argparse
import json

from hwsim.commands.options import (
    add_run_options,
    batch_of,
    check_output_path,
    nonneg_int,
    positive_int,
    progress_enabled,
)
from hwsim.commands.report import stderr_progress
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK


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
    p.add_argument("--samples", type=positive_int, default=None, metavar="N",
                   help="evaluate at most N test inputs (default all)")
    p.add_argument("--stepped-samples", type=nonneg_int, default=1, metavar="N",
                   help="inputs also run on the cycle-stepped model (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.demo import run_demo

    check_output_path(args.out)
    from hwsim.progress import progress_scope

    samples = 0 if args.samples is None else args.samples  # run_demo: 0 = all
    with progress_scope(progress_enabled(args)):
        res = run_demo(args.out, samples=samples, stepped_samples=args.stepped_samples,
                       progress=stderr_progress("demo"), batch=batch_of(args))
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(res.summary, end="")
    return EXIT_OK if res.ok else EXIT_CHECK_FAILED
