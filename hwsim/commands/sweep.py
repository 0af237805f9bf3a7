"""``hwsim sweep``: design-space sweep of a model over a grid of arrays.

Argument parsing only; the work is :mod:`hwsim.sweep`.
"""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.report import add_model_options
from hwsim.errors import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="sweep array size x dataflow x SRAM size x accumulator width",
        description="Evaluate MODEL (one inference) at every point of the grid in SWEEP.toml "
                    "(see examples/sweeps/small.toml) on local processes, or on a Dask "
                    "distributed cluster with --scheduler. Writes sweep.csv, sweep.json and "
                    "pareto.png (energy vs cycles) to --out and prints the Pareto-optimal "
                    "points (all points with --json). Exit 2 on bad input (missing file, bad "
                    "TOML, invalid grid).")
    add_model_options(p)
    p.add_argument("--grid", required=True, metavar="SWEEP.toml", help="the sweep grid")
    p.add_argument("--out", default="hwsim-sweep", metavar="DIR",
                   help="output directory (default ./hwsim-sweep)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: CPU count; 0: in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (needs hwsim[dask])")
    p.add_argument("--json", action="store_true", help="print every result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.commands.report import source_from_args
    from hwsim.report import table_text
    from hwsim.report.evaluate import load_source
    from hwsim.sweep import (
        ModelWorkload,
        load_grid,
        pareto_front,
        run_sweep,
        stderr_progress,
        write_sweep,
    )

    grid = load_grid(args.grid)
    src = source_from_args(args)
    _, data = load_source(src)  # fail fast on a bad model or data, before any worker starts
    for w in data.warnings:
        print(f"hwsim sweep: warning: {w}", file=sys.stderr)
    results = run_sweep(ModelWorkload(src), grid, workers=args.workers,
                        scheduler=args.scheduler, progress=stderr_progress)
    written = write_sweep(args.out, results, title=f"{args.model}: energy vs cycles")
    front = pareto_front(results)
    if args.json:
        print(json.dumps({"results": results, "pareto": [results[i]["index"] for i in front],
                          "files": {k: str(v) for k, v in written.items()}}, indent=2))
        return EXIT_OK
    rows = [[results[i]["label"], results[i]["cycles"], results[i]["energy_pj"] * 1e-6,
             f"{100 * results[i]['utilization']:.1f}%", results[i]["overflow_events"]]
            for i in front]
    print(table_text(["Pareto point", "cycles", "energy uJ", "util", "acc overflows"], rows),
          end="")
    bad = sum(1 for r in results if r["status"] != "ok")
    ovf = sum(1 for r in results if r["status"] == "ok" and r["overflow_events"])
    print(f"{len(results)} points ({bad} invalid or failed, {ovf} with accumulator overflow, "
          f"not Pareto candidates), results in {args.out}/")
    return EXIT_OK
