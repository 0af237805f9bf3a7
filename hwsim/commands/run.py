"""``hwsim run``: simulate a model on an array layer by layer (a float model is quantized
for the array first). Argument parsing only; the work is :mod:`hwsim.sim`
(specs/cycle_model.md). Options come from :mod:`hwsim.commands.options`."""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.options import (
    add_array_options,
    add_data_options,
    add_json_option,
    add_model_argument,
    add_quant_options,
    add_run_options,
    add_topology_options,
    array_from_args,
    batch_of,
    progress_enabled,
    source_from_args,
    topology_array_from_args,
    topology_from_args,
)
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="simulate a model on a MAC array (cycles, counters, values)",
        description="Quantize MODEL for the array of --array (its requantization unit and "
                    "accumulator; a quantized model keeps its own qparams), simulate it and "
                    "print per-layer cycles and counters (specs/cycle_model.md). Exit 1 if "
                    "--check finds a difference from the integer golden model.")
    add_model_argument(p, required=False)
    add_topology_options(p)
    add_data_options(p, labels=False,
                     samples_help="inputs simulated (default 1; a model with a fixed leading "
                                  "dimension D: runs of D inputs), --batch at a time: each "
                                  "batch is one run on the array; cycles and counters are "
                                  "summed")
    add_quant_options(p)
    add_array_options(p, energy=False)
    p.add_argument("--stepped", action="store_true",
                   help="cycle-stepped kernel instead of fast mode (same results, slower)")
    p.add_argument("--check", action="store_true",
                   help="also run the integer golden model and compare every tensor")
    add_json_option(p)
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_scope
    from hwsim.sim.run import run_model, summary_lines

    layers = topology_from_args(args)
    if layers is not None:
        return _run_topology(args, layers)

    with progress_scope(progress_enabled(args)):
        report, warnings = run_model(source_from_args(args), array_from_args(args),
                                     samples=args.samples or 1, stepped=args.stepped,
                                     check=args.check, batch=batch_of(args),
                                     array_name=args.array)
    for w in warnings:
        print(f"hwsim run: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print("\n".join(summary_lines(report)))
    if args.check and not report["check"]["ok"]:
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _run_topology(args: argparse.Namespace, layers) -> int:  # noqa: ANN001
    """``hwsim run --topology LAYERS.csv``: per-layer COMPUTE_REPORT rows (hwsim.topology)."""
    from hwsim.report import table_text
    from hwsim.topology import compute_report_rows

    config = topology_array_from_args(args)
    rows = compute_report_rows(layers, config, seed=args.seed)
    total = sum(r["total_cycles"] for r in rows)
    if args.json:
        print(json.dumps({"topology": args.topology, "array": config.to_dict(),
                          "layers": rows, "total_cycles": total}, sort_keys=True))
        return EXIT_OK
    cols = ["layer", "m", "k", "n", "total_cycles", "stall_cycles", "overall_util_pct",
            "compute_util_pct", "mapping_efficiency_pct"]
    print(table_text(cols, [[r[c] if not c.endswith("_pct") else f"{r[c]:.1f}"
                             for c in cols] for r in rows]), end="")
    print(f"total_cycles {total} ({total / config.clock_mhz:.1f} us at {config.clock_mhz} "
          f"MHz) on {config.rows}x{config.cols} {config.dataflow}")
    return EXIT_OK
