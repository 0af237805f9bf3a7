"""``hwsim sweep``: design-space sweep of a model over a grid of arrays.

Argument parsing only; the work is :mod:`hwsim.sweep`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwsim.commands.options import (
    add_array_options,
    add_json_option,
    add_progress_option,
    check_output_path,
    nonneg_int,
    progress_enabled,
)
from hwsim.commands.report import add_model_options
from hwsim.errors import EXIT_OK, HwsimError, ResourceError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="sweep array size x dataflow x SRAM size x accumulator width",
        description="Evaluate MODEL (one inference) at every point of the grid in SWEEP.toml "
                    "(see examples/sweeps/small.toml) on local processes, or on a Dask "
                    "distributed cluster with --scheduler. Writes sweep.csv, sweep.json and "
                    "pareto.png (energy vs cycles) to --out and prints the Pareto-optimal "
                    "points (all points with --json). Every grid value is checked up front "
                    "(a dataflow, accumulator width, size the array rejects is an error, exit "
                    "2); a combination no buffer can hold (SRAM too small for the array) is "
                    "an 'invalid' row. A sweep estimated to take more than 10 minutes needs "
                    "--yes. Exit 2 on bad input (missing file, bad TOML, invalid grid).")
    add_model_options(p, model_required=False, topology=True)
    p.add_argument("--grid", required=True, metavar="SWEEP.toml", help="the sweep grid")
    add_array_options(p)
    p.add_argument("--out", default="hwsim-sweep", metavar="DIR",
                   help="output directory (default ./hwsim-sweep)")
    p.add_argument("--workers", type=nonneg_int, default=None, metavar="N",
                   help="local worker processes (default: CPU count; 0: in this process)")
    p.add_argument("--accuracy", action="store_true",
                   help="also measure each point's top-1 accuracy with the cycle model on "
                        "the labelled inputs (--inputs/--labels, or the demo model's test "
                        "set; --samples N of them): accuracy.png (accuracy vs energy), and "
                        "points more than 1 point below the best are excluded from the front")
    p.add_argument("--yes", action="store_true",
                   help="run a sweep estimated to take more than 10 minutes without asking")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (needs hwsim[dask])")
    add_json_option(p)
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.commands.options import source_from_args
    from hwsim.progress import bar
    from hwsim.report import table_text
    from hwsim.report.evaluate import load_source
    from hwsim.sweep import (
        ModelWorkload,
        grid_points,
        load_grid,
        pareto_front,
        run_sweep,
        write_sweep,
    )

    check_output_path(args.out)
    from hwsim.commands.options import topology_from_args

    grid = _grid_with_overrides(load_grid(args.grid), args)
    layers = topology_from_args(args)
    if layers is not None:
        from hwsim.topology import TopologyWorkload

        if args.accuracy:
            raise HwsimError("--accuracy: --topology workloads have random operands and no "
                             "labels; drop --accuracy")
        name = Path(args.topology).stem
        workload = TopologyWorkload(name, layers, seed=args.seed)
        _check_size(args, grid, sum(layer.macs for layer in layers))
    else:
        src = source_from_args(args)
        loaded, data = load_source(src)  # fail fast on a bad model or data, before any worker
        _check_size(args, grid, _macs(loaded))
        for w in data.warnings:
            print(f"hwsim sweep: warning: {w}", file=sys.stderr)
        workload = ModelWorkload(src, accuracy=args.accuracy)
        name = Path(args.model).name
    # One bar over the design points (hwsim.progress); a Dask run reports no progress.
    with bar(len(grid_points(grid)), "sweep", unit="pt", enabled=progress_enabled(args)) as b:
        results = run_sweep(workload, grid, workers=args.workers,
                            scheduler=args.scheduler, progress=lambda done, total: b.update(1))
    written = write_sweep(args.out, results, title=f"{name}: energy vs cycles")
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


def _grid_with_overrides(grid, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """The grid with --array as its base and --energy as its table, then the datapath
    overrides (precedence: defaults < grid file < --array < command-line options)."""
    import dataclasses

    from hwsim.commands.options import array_from_args, table_from_args, with_overrides

    if getattr(args, "acc_bits", None) is not None:
        raise HwsimError("--acc-bits: a sweep takes accumulator widths from its grid "
                         f"(acc_bits in {args.grid}); drop --acc-bits")
    changes = {}
    if getattr(args, "scalesim_cfg", None):
        from hwsim.commands.options import topology_array_from_args

        changes["base"] = topology_array_from_args(args)
    elif args.array:
        changes["base"] = array_from_args(args)
    else:
        changes["base"] = with_overrides(grid.base, args, f"the base array of {args.grid}")
    if args.energy:
        changes["energy_table"] = table_from_args(args)
    return dataclasses.replace(grid, **changes)


def _macs(loaded) -> int:  # noqa: ANN001
    """MACs of one inference; a quantized source has no float graph: its weight count
    stands in for them (an estimate for the time check only)."""
    from hwsim.sweep import graph_macs

    if loaded.graph is not None:
        return graph_macs(loaded.graph)
    return sum(int(nd.arrays["weight"].size) for nd in loaded.qgraph.nodes
               if "weight" in nd.arrays)


def _check_size(args: argparse.Namespace, grid, macs: int) -> None:  # noqa: ANN001
    """Refuse, before starting, a grid whose results would not fit the memory limit, and
    ask for --yes when the estimated run time is past hwsim.sweep.CONFIRM_SECONDS."""
    import os

    from hwsim.limits import check_memory
    from hwsim.sweep import CONFIRM_SECONDS, estimate_seconds

    n = grid.size
    workers = 1 if args.workers == 0 or args.scheduler else (args.workers or os.cpu_count() or 1)
    est = estimate_seconds(n, macs, workers)
    if est > CONFIRM_SECONDS and not args.yes:
        hours = est / 3600
        raise ResourceError(
            f"sweep grid {args.grid}: {n} points, an estimated {hours:.1f} h on {workers} "
            f"worker(s); shrink the grid or pass --yes to run it anyway")
    check_memory(n * 2048, f"sweep grid {args.grid}: {n} points (their results)")
