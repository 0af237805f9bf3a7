"""``hwsim run``: quantize a float ONNX model for an array and simulate it layer by layer.
Argument parsing only; the work is :mod:`hwsim.sim` (specs/cycle_model.md)."""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.options import add_run_options, batch_of, positive_int, progress_enabled
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="simulate a model on a MAC array (cycles, counters, values)",
        description="Quantize MODEL.onnx for the array of ARRAY.toml (its requantization "
                    "unit and accumulator), simulate it and print per-layer cycles and "
                    "counters (specs/cycle_model.md). Exit 1 if --check finds a difference "
                    "from the integer golden model.")
    p.add_argument("model", metavar="MODEL.onnx", help="float ONNX model")
    p.add_argument("--array", required=True, metavar="ARRAY.toml",
                   help="array configuration (e.g. examples/arrays/ws16x16.toml)")
    p.add_argument("--inputs", metavar="X.npy", help="inputs to simulate (float, NCHW)")
    p.add_argument("--calib", metavar="X.npy", help="calibration inputs (default: --inputs)")
    p.add_argument("--samples", type=positive_int, default=1, metavar="N",
                   help="number of inputs simulated (default 1), --batch at a time: each "
                        "batch is one run on the array; cycles and counters are summed")
    p.add_argument("--stepped", action="store_true",
                   help="cycle-stepped kernel instead of fast mode (same results, slower)")
    p.add_argument("--check", action="store_true",
                   help="also run the integer golden model and compare every tensor")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_scope
    from hwsim.sim.run import run_model, summary_lines

    with progress_scope(progress_enabled(args)):
        report, warnings = run_model(args.model, args.array, inputs=args.inputs,
                                     calib=args.calib, samples=args.samples,
                                     stepped=args.stepped, check=args.check,
                                     batch=batch_of(args))
    for w in warnings:
        print(f"hwsim run: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print("\n".join(summary_lines(report)))
    if args.check and not report["check"]["ok"]:
        return EXIT_CHECK_FAILED
    return EXIT_OK
